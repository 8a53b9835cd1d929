"""Separable resampling of a 2-D latent level onto the output grid in one call (kernels ``lg_upsample2d_*`` in
``cuda/latentgrid_cpu.cpp``), with an autograd wrapper; the torch reference is ``_resample_axis`` of
``inrcodec/models/latentgrid/upsampling.py`` applied along axis 0 then axis 1 (index_select + weighted sums, whose backward
is a scatter-add per tap).

``upsample_2d(y, (idx0, w0), (idx1, w1))``: y (h, w); idx/w (T, k) taps per axis as ``_taps`` makes them.
"""

from __future__ import annotations

import torch

from . import latentgrid_mlp

_p = latentgrid_mlp.ptr


class _Upsample2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, i0, w0, i1, w1, threads, strict):
        lib = latentgrid_mlp.forward_library(not strict)
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
        return gy, None, None, None, None, None, None


def upsample_2d(y: torch.Tensor, taps0, taps1) -> torch.Tensor:
    (i0, w0), (i1, w1) = taps0, taps1
    if i0.shape[1] != i1.shape[1]:
        raise ValueError("both axes need the same number of taps")
    return _Upsample2d.apply(y.contiguous(), i0.contiguous(), w0.contiguous(), i1.contiguous(), w1.contiguous(),
                             torch.get_num_threads(), not latentgrid_mlp.needs_grad(y))


def usable(y: torch.Tensor) -> bool:
    return y.dim() == 2 and latentgrid_mlp.kernel_usable(y)


class _Levels2d(torch.autograd.Function):
    """All levels' features on one box in one (L, H, W) buffer: level l resampled with its taps, or (taps None)
    the box of a level already at the output size copied. The torch reference is per level ``upsample_2d`` / a
    narrow, then ``torch.stack``; writing each level in place saves the stack's copy of L x H x W floats forward,
    and its backward hands each level a contiguous slice of the incoming gradient."""

    @staticmethod
    def forward(ctx, spec, box, threads, strict, *ys):
        lib = latentgrid_mlp.forward_library(not strict)
        (r0, r1), (c0, c1) = box
        H, W = r1 - r0, c1 - c0
        out = torch.empty(len(ys), H, W)
        for level, (y, taps) in enumerate(zip(ys, spec)):
            if taps is None:
                out[level].copy_(y[r0:r1, c0:c1])
                continue
            i0, w0, i1, w1 = taps
            tmp = torch.empty(y.shape[0], W)
            lib.lg_upsample2d_forward(_p(y), y.shape[0], y.shape[1], _p(i0), _p(w0), _p(i1), _p(w1), i0.shape[1], H, W,
                                      _p(tmp), _p(out[level]), threads)
        ctx.spec, ctx.box, ctx.threads = spec, box, threads
        ctx.shapes = [tuple(y.shape) for y in ys]
        return out

    @staticmethod
    def backward(ctx, g):
        lib = latentgrid_mlp.library()
        g = g.contiguous()
        (r0, r1), (c0, c1) = ctx.box
        H, W = r1 - r0, c1 - c0
        grads = []
        for level, (shape, taps) in enumerate(zip(ctx.shapes, ctx.spec)):
            if taps is None:
                if shape == (H, W):
                    grads.append(g[level])
                else:
                    gy = torch.zeros(shape)
                    gy[r0:r1, c0:c1] = g[level]
                    grads.append(gy)
                continue
            i0, w0, i1, w1 = taps
            gtmp = torch.empty(shape[0], W)
            gy = torch.empty(shape)
            lib.lg_upsample2d_backward(_p(g[level]), shape[0], shape[1], _p(i0), _p(w0), _p(i1), _p(w1), i0.shape[1],
                                       H, W, _p(gtmp), _p(gy), ctx.threads)
            grads.append(gy)
        return (None, None, None, None, *grads)


def levels_2d(ys: list[torch.Tensor], taps: list, box) -> torch.Tensor:
    """(L, H, W) features of the box ((r0, r1), (c0, c1)) from 2-D levels ``ys``; ``taps[l]``: None for a level
    at the output size, else ((idx0, w0), (idx1, w1)) as ``_taps`` makes them for the box."""
    spec = []
    for t in taps:
        if t is None:
            spec.append(None)
            continue
        (i0, w0), (i1, w1) = t
        if i0.shape[1] != i1.shape[1]:
            raise ValueError("both axes need the same number of taps")
        spec.append((i0.contiguous(), w0.contiguous(), i1.contiguous(), w1.contiguous()))
    return _Levels2d.apply(spec, tuple(tuple(b) for b in box), torch.get_num_threads(),
                           not latentgrid_mlp.needs_grad(*ys), *[y.contiguous() for y in ys])
