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


def _p(t):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def arm_rate_reference(feats, y, layers, log2_range, use_kernel: bool | None = False) -> torch.Tensor:
    return laplace_rate(y, mlp(feats, layers, use_kernel=use_kernel), log2_range, use_kernel=use_kernel)


def _backward_once(ctx, name: str, grad_y) -> None:
    """The rate kernels keep their gradients from the forward and scale them in place in the backward, so the
    backward may run once per graph, and only on a forward that computed them."""
    if grad_y is None:
        raise RuntimeError(f"{name} was evaluated without gradients")
    if getattr(ctx, "scaled", False):
        raise RuntimeError(f"{name}: backward called twice on the same graph")
    ctx.scaled = True

class _ArmRate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feats, y, flat, dims, lo, hi, threads, with_grad, feats_grad):
        lib = latentgrid_mlp.library()
        n = feats.shape[0]
        dims_c = (ctypes.c_int * len(dims))(*dims)
        total = ctypes.c_double()
        grad_feats = None
        if with_grad and feats_grad:  # the same layout as feats (feature-major from the context kernel)
            grad_feats = torch.empty(dims[0], n).t() if feats.stride(0) == 1 else torch.empty(n, dims[0])
        grad_y = torch.empty(n) if with_grad else None
        grad_flat = torch.empty_like(flat) if with_grad else None
        rc = lib.lg_arm_rate(_p(feats), feats.stride(0), feats.stride(1), _p(y), n, len(dims) - 1, dims_c, _p(flat),
                             lo, hi, MAX_BITS_PER_SYMBOL, _p(grad_feats), _p(grad_y), _p(grad_flat),
                             ctypes.byref(total), threads)
        if rc != 0:
            raise RuntimeError(f"latentgrid arm/rate kernel failed ({rc})")
        ctx.save_for_backward(grad_feats, grad_y, grad_flat)
        return torch.tensor(total.value, dtype=y.dtype)

    @staticmethod
    def backward(ctx, grad):
        grad_feats, grad_y, grad_flat = ctx.saved_tensors
        _backward_once(ctx, "arm_rate", grad_y)
        # in place: the saved gradients are used once (a step calls backward once), and this avoids new buffers
        return (None if grad_feats is None else grad_feats.mul_(grad), grad_y.mul_(grad), grad_flat.mul_(grad),
                None, None, None, None, None, None)


def arm_rate(feats: torch.Tensor, y: torch.Tensor, layers: list[torch.nn.Linear], log2_range: tuple[float, float],
             use_kernel: bool | None = None) -> torch.Tensor:
    if use_kernel is None:
        use_kernel = latentgrid_mlp.kernel_usable(feats) and latentgrid_mlp.kernel_usable(y)
    if not use_kernel or feats.shape[0] == 0 or layers[-1].out_features != 2:
        return arm_rate_reference(feats, y, layers, log2_range, use_kernel=None)
    weights = [m.weight for m in layers]
    biases = [m.bias for m in layers]
    flat = torch.cat([t.reshape(-1) for pair in zip(weights, biases) for t in pair])
    dims = [feats.shape[1]] + [w.shape[0] for w in weights]
    with_grad = torch.is_grad_enabled() and (feats.requires_grad or y.requires_grad or flat.requires_grad)
    if not (feats.stride(0) == 1 or feats.stride(1) == 1):
        feats = feats.contiguous()
    return _ArmRate.apply(feats, y.contiguous(), flat, dims, float(log2_range[0]),
                          float(log2_range[1]), torch.get_num_threads(), with_grad, feats.requires_grad)


class _ArmRateCtx2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, coarse, flat, dims, level_pos, rows, lo, hi, threads, with_grad):
        lib = latentgrid_mlp.library()
        H, W = y.shape
        Hc, Wc = (1, 1) if coarse is None else coarse.shape
        n_rows = H if rows is None else rows.shape[0]
        dims_c = (ctypes.c_int * len(dims))(*dims)
        total = ctypes.c_double()
        # the kernel scatters the features' gradients onto the levels itself: unit-upstream gradients of y, coarse
        grad_y = torch.empty(H, W) if with_grad else None
        grad_z = torch.empty(Hc, Wc) if with_grad and coarse is not None else None
        grad_flat = torch.empty_like(flat) if with_grad else None
        rc = lib.lg_arm_rate_ctx2d(_p(y), _p(coarse), H, W, Hc, Wc, level_pos, _p(rows), n_rows, len(dims) - 1, dims_c,
                                   _p(flat), lo, hi, MAX_BITS_PER_SYMBOL, _p(grad_y), _p(grad_z), _p(grad_flat),
                                   ctypes.byref(total), threads)
        if rc != 0:
            raise RuntimeError(f"latentgrid arm/rate context kernel failed ({rc})")
        ctx.save_for_backward(grad_y, grad_z, grad_flat)
        return torch.tensor(total.value, dtype=y.dtype)

    @staticmethod
    def backward(ctx, grad):
        grad_y, grad_z, grad_flat = ctx.saved_tensors
        _backward_once(ctx, "arm_rate_ctx2d", grad_y)
        return (grad_y.mul_(grad), None if grad_z is None else grad_z.mul_(grad), grad_flat.mul_(grad),
                None, None, None, None, None, None, None)


def arm_rate_ctx2d(level: int, levels: int, y: torch.Tensor, coarse: torch.Tensor | None, rows: torch.Tensor | None,
                   layers: list[torch.nn.Linear], log2_range: tuple[float, float]) -> torch.Tensor:
    """Total bits of the 2-D level ``y`` (its rows ``rows``, or all) under the context model ``layers``; the
    caller checks ``latentgrid_context.usable(y)`` and an 11-feature, 2-output MLP."""
    weights = [m.weight for m in layers]
    biases = [m.bias for m in layers]
    flat = torch.cat([t.reshape(-1) for pair in zip(weights, biases) for t in pair])
    dims = [layers[0].in_features] + [w.shape[0] for w in weights]
    with_grad = latentgrid_mlp.needs_grad(y, coarse, flat)
    if rows is not None:
        rows = rows.to(torch.int32).contiguous()
    return _ArmRateCtx2d.apply(y.contiguous(), None if coarse is None else coarse.contiguous(), flat, dims,
                               float(level / max(levels - 1, 1)), rows, float(log2_range[0]), float(log2_range[1]),
                               torch.get_num_threads(), with_grad)
