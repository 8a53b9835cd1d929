"""k x k convolution, C -> C channels, with replicate padding, on a 2-D (C, H, W) signal (kernels ``lg_conv2d_*``
in ``cuda/latentgrid_cpu.cpp``) and its autograd wrapper; the torch reference is ``conv_replicate_torch`` (the
model's ``conv(_replicate_pad(x, k // 2))``). ``residual_block`` is the synthesis' whole residual block fused,
``act(x + conv(x))`` with act ReLU or identity (reference: ``residual_block_torch``).
"""

from __future__ import annotations

import torch

from . import latentgrid_mlp

_p = latentgrid_mlp.ptr


def conv_replicate_torch(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    p = weight.shape[-1] // 2
    xp = torch.nn.functional.pad(x.unsqueeze(0), (p, p, p, p), mode="replicate") if p else x.unsqueeze(0)
    return torch.nn.functional.conv2d(xp, weight, bias).squeeze(0)


def _forward_buffers(x: torch.Tensor, weight: torch.Tensor):
    """Shape, kernel size and the padded input and output buffers a convolution forward kernel fills."""
    C, H, W = x.shape
    k = weight.shape[-1]
    p = k // 2
    return C, H, W, k, torch.empty(C, H + 2 * p, W + 2 * p), torch.empty(C, H, W)


def _backward_buffers(x: torch.Tensor, weight: torch.Tensor, g: torch.Tensor):
    """Shape, contiguous output gradient and the padded/gradient buffers a convolution backward kernel fills."""
    C, H, W, k, xp, gx = _forward_buffers(x, weight)
    return C, H, W, k, g.contiguous(), xp, torch.empty_like(xp), gx, torch.empty_like(weight), torch.empty(C)


class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, threads, strict):
        lib = latentgrid_mlp.forward_library(not strict)
        C, H, W, k, xp, out = _forward_buffers(x, weight)
        latentgrid_mlp.check(lib.lg_conv2d_forward(_p(x), C, H, W, _p(weight), _p(bias), k, _p(xp), _p(out),
                                                   threads), "conv")
        ctx.save_for_backward(x, weight)
        ctx.threads = threads
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        lib = latentgrid_mlp.library()
        C, H, W, k, g, xp, gxp, gx, gw, gb = _backward_buffers(x, weight, g)
        latentgrid_mlp.check(lib.lg_conv2d_backward(_p(x), _p(g), C, H, W, _p(weight), k, _p(xp), _p(gxp), _p(gx),
                                                    _p(gw), _p(gb), ctx.threads), "conv")
        return gx, gw, gb, None, None


def conv_replicate(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x (C, H, W) -> (C, H, W)."""
    return _Conv2d.apply(x.contiguous(), weight.contiguous(), bias.contiguous(), torch.get_num_threads(),
                         not latentgrid_mlp.needs_grad(x, weight, bias))


def usable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    k = weight.shape[-1]
    return (x.dim() == 3 and weight.dim() == 4 and k % 2 == 1 and k <= 5 and x.shape[1] > k // 2
            and x.shape[2] > k // 2 and latentgrid_mlp.kernel_usable(x))


def residual_block_torch(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, relu: bool) -> torch.Tensor:
    out = x + conv_replicate_torch(x, weight, bias)
    return torch.relu(out) if relu else out


class _Residual2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, relu, threads, strict):
        lib = latentgrid_mlp.forward_library(not strict)
        C, H, W, k, xp, out = _forward_buffers(x, weight)
        latentgrid_mlp.check(lib.lg_conv2d_residual_forward(_p(x), C, H, W, _p(weight), _p(bias), k, int(relu),
                                                            _p(xp), _p(out), threads), "conv")
        ctx.save_for_backward(x, weight, out)
        ctx.relu, ctx.threads = relu, threads
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight, out = ctx.saved_tensors
        lib = latentgrid_mlp.library()
        C, H, W, k, g, xp, gxp, gx, gw, gb = _backward_buffers(x, weight, g)
        gpre = torch.empty_like(x) if ctx.relu else x  # (unused without the ReLU)
        latentgrid_mlp.check(lib.lg_conv2d_residual_backward(_p(x), _p(out), _p(g), C, H, W, _p(weight), k,
                                                             int(ctx.relu), _p(xp), _p(gxp), _p(gpre), _p(gx), _p(gw),
                                                             _p(gb), ctx.threads), "conv")
        return gx, gw, gb, None, None, None


def residual_block(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, relu: bool) -> torch.Tensor:
    """act(x + conv(x)) for x (C, H, W); act = ReLU when ``relu``, else the identity."""
    return _Residual2d.apply(x.contiguous(), weight.contiguous(), bias.contiguous(), bool(relu),
                             torch.get_num_threads(), not latentgrid_mlp.needs_grad(x, weight, bias))
