"""Context features of a 2-D latent level in one pass (kernels ``lg_context2d_*`` in ``cuda/latentgrid_cpu.cpp``),
with an autograd wrapper; the torch reference is ``context_features`` in ``inrcodec/models/latentgrid/context.py``
(dimension-generic, and the one the exact entropy coder uses).

``context_2d(level, levels, y, coarse, rows=None)`` returns (len(rows) * W, 11), the same values as
``context_features(level, levels, y, coarse)[rows].reshape(-1, 11)`` (all H rows when ``rows`` is None), stored
feature-major (its ``.t()`` is contiguous). ``rows`` lets the training step's rate term evaluate a subset of the
rows of a level (``rate_bits``' subsampling) without building the features of the others.
"""

from __future__ import annotations

import torch

from . import latentgrid_mlp

_p = latentgrid_mlp.ptr


class _Context2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, coarse, level_pos, rows, threads):
        lib = latentgrid_mlp.library()
        H, W = y.shape
        Hc, Wc = (1, 1) if coarse is None else coarse.shape
        n_rows = H if rows is None else rows.shape[0]
        feats = torch.empty(11, n_rows * W)  # feature-major; returned as its (n_rows * W, 11) transpose view
        latentgrid_mlp.check(lib.lg_context2d_forward(_p(y), _p(coarse), H, W, Hc, Wc, level_pos, _p(rows), n_rows,
                                                      _p(feats), threads), "context")
        ctx.shapes = (H, W, Hc, Wc, coarse is not None)
        ctx.rows, ctx.threads = rows, threads
        return feats.t()

    @staticmethod
    def backward(ctx, grad):
        H, W, Hc, Wc, has_coarse = ctx.shapes
        rows = ctx.rows
        lib = latentgrid_mlp.library()
        grad = grad.t().contiguous()  # feature-major (no copy when it already is, as the fused arm kernel makes it)
        gy = torch.empty(H, W)
        gz = torch.empty(Hc, Wc) if has_coarse and ctx.needs_input_grad[1] else None
        latentgrid_mlp.check(lib.lg_context2d_backward(_p(grad), H, W, Hc, Wc, _p(rows),
                                                       H if rows is None else rows.shape[0], _p(gy), _p(gz),
                                                       ctx.threads), "context")
        return gy, gz, None, None, None


def context_2d(level: int, levels: int, y: torch.Tensor, coarse: torch.Tensor | None,
               rows: torch.Tensor | None = None) -> torch.Tensor:
    if coarse is not None:
        coarse = coarse.contiguous()
    if rows is not None:
        rows = rows.to(torch.int32).contiguous()
    return _Context2d.apply(y.contiguous(), coarse, float(level / max(levels - 1, 1)), rows,
                            torch.get_num_threads())


def usable(y: torch.Tensor) -> bool:
    return y.dim() == 2 and latentgrid_mlp.kernel_usable(y)
