"""The context model's MLP and the Laplace rate of the latents, fused (kernel ``lg_arm_rate`` in
``cuda/latentgrid_cpu.cpp``), with its autograd wrapper; the torch reference is the composition it replaces,
``mlp`` then ``laplace_rate`` (each with its own torch reference in ``latentgrid_mlp.py`` / ``latentgrid_rate.py``).

``arm_rate(feats, y, layers, log2_range)``: feats (n, d) context features, y (n,) latents, ``layers`` the context
MLP (``torch.nn.Linear`` list, ReLU between, 2 outputs: mean, raw log2 scale); returns the total bits (0-d),
differentiable in feats, y and the layers' parameters.

Why fused: the total bits enter the loss linearly, so their gradient with respect to everything here does not
depend on the rest of the step. The kernel therefore runs the backward in the same pass as the forward, per
64-latent block while the activations are in L1, and keeps the (unit-upstream) gradients; autograd's backward
only scales them. That drops the backward's recomputation of the MLP forward and three round trips through
memory (MLP output, rate forward, rate backward).

``arm_rate_ctx2d(level, levels, y, coarse, rows, layers, log2_range)``: the same for the latents of a 2-D level
(on the rows listed, or all), with the context features built per block inside the kernel (``lg_arm_rate_ctx2d``)
instead of read from the (n, 11) matrix ``context_2d`` writes, and their gradients scattered onto the levels in the
same pass; reference: ``context_2d`` then ``arm_rate``.
"""

from __future__ import annotations

import ctypes

import torch

from ..entropy.rate import MAX_BITS_PER_SYMBOL
from . import latentgrid_mlp
from .latentgrid_mlp import mlp
from .latentgrid_rate import laplace_rate

_p = latentgrid_mlp.ptr


def arm_rate_reference(feats, y, layers, log2_range, use_kernel: bool | None = False) -> torch.Tensor:
    return laplace_rate(y, mlp(feats, layers, use_kernel=use_kernel), log2_range, use_kernel=use_kernel)


def _total(ctx, kernel, args: tuple, threads: int, grads: tuple, dtype) -> torch.Tensor:
    """Run a fused rate kernel (``args``: its arguments before the total's address), keep the unit-upstream
    gradients it filled (``grads``; None without gradients) for ``_scaled``, return the total bits."""
    total = ctypes.c_double()
    latentgrid_mlp.check(kernel(*args, ctypes.byref(total), threads), "arm/rate")
    ctx.save_for_backward(*grads)
    return torch.tensor(total.value, dtype=dtype)


def _scaled(ctx, name: str, grad, n_inputs: int) -> tuple:
    """backward of a fused rate kernel: the saved gradients times ``grad``, then None for the other inputs. The
    gradients are scaled in place (no new buffers), so the backward may run once per graph, and only on a forward
    that computed them."""
    grads = ctx.saved_tensors
    if grads[-1] is None:  # the parameters' gradient: None exactly when the forward ran without gradients
        raise RuntimeError(f"{name} was evaluated without gradients")
    if getattr(ctx, "scaled", False):
        raise RuntimeError(f"{name}: backward called twice on the same graph")
    ctx.scaled = True
    return (*(None if g is None else g.mul_(grad) for g in grads), *(None,) * (n_inputs - len(grads)))


class _ArmRate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feats, y, flat, dims, lo, hi, threads, with_grad, feats_grad):
        n = feats.shape[0]
        grad_feats = None
        if with_grad and feats_grad:  # the same layout as feats (feature-major from the context kernel)
            grad_feats = torch.empty(dims[0], n).t() if feats.stride(0) == 1 else torch.empty(n, dims[0])
        grad_y = torch.empty(n) if with_grad else None
        grad_flat = torch.empty_like(flat) if with_grad else None
        args = (_p(feats), feats.stride(0), feats.stride(1), _p(y), n, len(dims) - 1, latentgrid_mlp.c_ints(dims),
                _p(flat), lo, hi, MAX_BITS_PER_SYMBOL, _p(grad_feats), _p(grad_y), _p(grad_flat))
        return _total(ctx, latentgrid_mlp.library().lg_arm_rate, args, threads, (grad_feats, grad_y, grad_flat),
                      y.dtype)

    @staticmethod
    def backward(ctx, grad):
        return _scaled(ctx, "arm_rate", grad, 9)


def arm_rate(feats: torch.Tensor, y: torch.Tensor, layers: list[torch.nn.Linear], log2_range: tuple[float, float],
             use_kernel: bool | None = None) -> torch.Tensor:
    if use_kernel is None:
        use_kernel = latentgrid_mlp.kernel_usable(feats) and latentgrid_mlp.kernel_usable(y)
    if not use_kernel or feats.shape[0] == 0 or layers[-1].out_features != 2:
        return arm_rate_reference(feats, y, layers, log2_range, use_kernel=None)
    flat, widths = latentgrid_mlp.flat_params(layers)
    dims = [feats.shape[1]] + widths
    with_grad = torch.is_grad_enabled() and (feats.requires_grad or y.requires_grad or flat.requires_grad)
    if not (feats.stride(0) == 1 or feats.stride(1) == 1):
        feats = feats.contiguous()
    return _ArmRate.apply(feats, y.contiguous(), flat, dims, float(log2_range[0]),
                          float(log2_range[1]), torch.get_num_threads(), with_grad, feats.requires_grad)


class _ArmRateCtx2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, coarse, flat, dims, level_pos, rows, lo, hi, threads, with_grad):
        H, W = y.shape
        Hc, Wc = (1, 1) if coarse is None else coarse.shape
        n_rows = H if rows is None else rows.shape[0]
        # the kernel scatters the features' gradients onto the levels itself: unit-upstream gradients of y, coarse
        grad_y = torch.empty(H, W) if with_grad else None
        grad_z = torch.empty(Hc, Wc) if with_grad and coarse is not None else None
        grad_flat = torch.empty_like(flat) if with_grad else None
        args = (_p(y), _p(coarse), H, W, Hc, Wc, level_pos, _p(rows), n_rows, len(dims) - 1,
                latentgrid_mlp.c_ints(dims), _p(flat), lo, hi, MAX_BITS_PER_SYMBOL, _p(grad_y), _p(grad_z),
                _p(grad_flat))
        return _total(ctx, latentgrid_mlp.library().lg_arm_rate_ctx2d, args, threads, (grad_y, grad_z, grad_flat),
                      y.dtype)

    @staticmethod
    def backward(ctx, grad):
        return _scaled(ctx, "arm_rate_ctx2d", grad, 10)


def arm_rate_ctx2d(level: int, levels: int, y: torch.Tensor, coarse: torch.Tensor | None, rows: torch.Tensor | None,
                   layers: list[torch.nn.Linear], log2_range: tuple[float, float]) -> torch.Tensor:
    """Total bits of the 2-D level ``y`` (its rows ``rows``, or all) under the context model ``layers``; the
    caller checks ``latentgrid_context.usable(y)`` and an 11-feature, 2-output MLP."""
    flat, widths = latentgrid_mlp.flat_params(layers)
    dims = [layers[0].in_features] + widths
    with_grad = latentgrid_mlp.needs_grad(y, coarse, flat)
    if rows is not None:
        rows = rows.to(torch.int32).contiguous()
    return _ArmRateCtx2d.apply(y.contiguous(), None if coarse is None else coarse.contiguous(), flat, dims,
                               float(level / max(levels - 1, 1)), rows, float(log2_range[0]), float(log2_range[1]),
                               torch.get_num_threads(), with_grad)
