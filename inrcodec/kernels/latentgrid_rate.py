"""Fused rate of the latents under the context model's Laplaces (kernel ``lg_laplace_rate`` in
``cuda/latentgrid_cpu.cpp``), its autograd wrapper, and the torch reference (``laplace_rate_bits`` of
``inrcodec/entropy/rate.py``, the function training used before and the tests hold the kernel against).

``laplace_rate(x, arm_out, log2_range)``: x (n,) latents, arm_out (n, 2) = (mean, raw log2 scale) as the context
MLP outputs them; returns the total bits (a 0-d tensor), differentiable in x and arm_out.
"""

from __future__ import annotations

import ctypes

import torch

from ..entropy.rate import MAX_BITS_PER_SYMBOL, laplace_rate_bits
from . import latentgrid_mlp

_p = latentgrid_mlp.ptr


def laplace_rate_torch(x: torch.Tensor, arm_out: torch.Tensor, log2_range: tuple[float, float]) -> torch.Tensor:
    scale = torch.exp2(arm_out[:, 1].clamp(*log2_range))
    return laplace_rate_bits(x, scale, arm_out[:, 0])


class _RateFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, arm_out, lo, hi):
        lib = latentgrid_mlp.library()
        total = ctypes.c_double()
        latentgrid_mlp.check(lib.lg_laplace_rate(_p(x), _p(arm_out), x.shape[0], lo, hi, MAX_BITS_PER_SYMBOL, 0, 0.0,
                                                 None, None, ctypes.byref(total), torch.get_num_threads()), "rate")
        ctx.save_for_backward(x, arm_out)
        ctx.lo, ctx.hi = lo, hi
        return torch.tensor(total.value, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, arm_out = ctx.saved_tensors
        lib = latentgrid_mlp.library()
        grad_x = torch.empty(x.shape[0])
        grad_arm = torch.empty(x.shape[0], 2)
        total = ctypes.c_double()
        latentgrid_mlp.check(lib.lg_laplace_rate(_p(x), _p(arm_out), x.shape[0], ctx.lo, ctx.hi, MAX_BITS_PER_SYMBOL,
                                                 1, float(grad), _p(grad_x), _p(grad_arm), ctypes.byref(total),
                                                 torch.get_num_threads()), "rate")
        return grad_x, grad_arm, None, None


def laplace_rate(x: torch.Tensor, arm_out: torch.Tensor, log2_range: tuple[float, float],
                 use_kernel: bool | None = None) -> torch.Tensor:
    if use_kernel is None:
        use_kernel = latentgrid_mlp.kernel_usable(x)
    if not use_kernel or x.shape[0] == 0:
        return laplace_rate_torch(x, arm_out, log2_range)
    return _RateFunction.apply(x.contiguous(), arm_out.contiguous(), float(log2_range[0]), float(log2_range[1]))
