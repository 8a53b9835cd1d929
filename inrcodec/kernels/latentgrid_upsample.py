"""Separable resampling of a 2-D latent level onto the output grid in one call (kernels ``lg_upsample2d_*`` in
``cuda/latentgrid_cpu.cpp``), with an autograd wrapper; the torch reference is ``_resample_axis`` of
``inrcodec/models/latentgrid/upsampling.py`` applied along axis 0 then axis 1 (index_select + weighted sums, whose backward
is a scatter-add per tap).

``upsample_2d(y, (idx0, w0), (idx1, w1))``: y (h, w); idx/w (T, k) taps per axis as ``_taps`` makes them.
"""

from __future__ import annotations

import ctypes

import torch

from . import latentgrid_mlp


def _p(t):
    return ctypes.c_void_p(t.data_ptr())


class _Upsample2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, i0, w0, i1, w1, threads):
        lib = latentgrid_mlp.library()
        h, w = y.shape
        H, k = i0.shape
        W = i1.shape[0]
        tmp = torch.empty(h, W)
        out = torch.empty(H, W)
        lib.lg_upsample2d_forward(_p(y), h, w, _p(i0), _p(w0), _p(i1), _p(w1), k, H, W, _p(tmp), _p(out), threads)
        ctx.save_for_backward(i0, w0, i1, w1)
        ctx.dims = (h, w, H, W, k, threads)
        return out

    @staticmethod
    def backward(ctx, g):
        i0, w0, i1, w1 = ctx.saved_tensors
        h, w, H, W, k, threads = ctx.dims
        lib = latentgrid_mlp.library()
        g = g.contiguous()
        gtmp = torch.empty(h, W)
        gy = torch.empty(h, w)
        lib.lg_upsample2d_backward(_p(g), h, w, _p(i0), _p(w0), _p(i1), _p(w1), k, H, W, _p(gtmp), _p(gy), threads)
        return gy, None, None, None, None, None


def upsample_2d(y: torch.Tensor, taps0, taps1) -> torch.Tensor:
    (i0, w0), (i1, w1) = taps0, taps1
    if i0.shape[1] != i1.shape[1]:
        raise ValueError("both axes need the same number of taps")
    return _Upsample2d.apply(y.contiguous(), i0.contiguous(), w0.contiguous(), i1.contiguous(), w1.contiguous(),
                             torch.get_num_threads())


def usable(y: torch.Tensor) -> bool:
    return y.dim() == 2 and latentgrid_mlp.kernel_usable(y)
