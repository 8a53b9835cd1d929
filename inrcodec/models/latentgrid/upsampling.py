"""Latent upsampling: separable resampling of a latent level onto (a box of) the output grid.

``_taps`` gives per output sample the source indices and weights along one axis (linear or Catmull-Rom cubic,
sample-centre convention, clamped ends); ``upsample`` applies them on every axis, through the compiled 2-D kernel
(``inrcodec/kernels/latentgrid_upsample.py``) where it can run and ``_resample_axis`` (its torch reference, any
ndim) elsewhere; ``upsample_levels`` does all levels into one stacked buffer (the synthesis input).
"""

from __future__ import annotations

import torch

from ...kernels import latentgrid_upsample as upsample_kernel


def _taps(m: int, n: int, lo: int, hi: int, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices (T, k) and weights (T, k) to sample a length-m axis at samples lo..hi-1 of an n-sample grid
    over the same extent (sample-centre convention, clamped at the ends)."""
    i = torch.arange(lo, hi, dtype=torch.float64)
    src = (i + 0.5) * (m / n) - 0.5
    base = torch.floor(src)
    t = src - base
    if kind == "linear":
        offsets = torch.tensor([0.0, 1.0], dtype=torch.float64)
        w = torch.stack([1 - t, t], dim=-1)
    else:  # Catmull-Rom (a = -0.5)
        offsets = torch.tensor([-1.0, 0.0, 1.0, 2.0], dtype=torch.float64)
        t2, t3 = t * t, t * t * t
        w = torch.stack([-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1, -1.5 * t3 + 2 * t2 + 0.5 * t,
                         0.5 * t3 - 0.5 * t2], dim=-1)
    idx = (base[:, None] + offsets).clamp(0, m - 1).long()
    return idx, w.float()


def _resample_axis(x: torch.Tensor, axis: int, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    shape = [1] * x.dim()
    shape[axis] = idx.shape[0]
    out = None
    for k in range(idx.shape[1]):
        term = x.index_select(axis, idx[:, k]) * w[:, k].view(shape)
        out = term if out is None else out + term
    return out


def upsample(y: torch.Tensor, taps: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Resample ``y`` along every axis with per-axis ``taps`` (as ``_taps`` makes them)."""
    if upsample_kernel.usable(y):  # 2-D: compiled separable resampler (reference: _resample_axis)
        return upsample_kernel.upsample_2d(y, *taps)
    for axis, (idx, w) in enumerate(taps):
        y = _resample_axis(y, axis, idx, w)
    return y


def upsample_levels(latents: list[torch.Tensor], taps: list, box: list[tuple[int, int]]) -> torch.Tensor:
    """Features of every level on ``box``, stacked: (levels, *box). ``taps[l]`` is None for a level already at the
    output size (its box is taken as is: the taps would be the identity) or the per-axis taps of the box. 2-D:
    one compiled call writing each level into the stacked buffer; elsewhere per level, then ``torch.stack``."""
    if all(upsample_kernel.usable(y) for y in latents):
        return upsample_kernel.levels_2d(latents, taps, box)
    feats = []
    for y, t in zip(latents, taps):
        if t is None:
            for axis, (lo, hi) in enumerate(box):
                if hi - lo < y.shape[axis]:  # (a no-op narrow would still cost a zero-fill + copy backward)
                    y = y.narrow(axis, lo, hi - lo)
            feats.append(y)
        else:
            feats.append(upsample(y, t))
    return torch.stack(feats, dim=0)
