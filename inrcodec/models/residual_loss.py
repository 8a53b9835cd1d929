"""A loss for a base image that prices what the 8x8 DCT residual coded over it will cost (``gaussian+dct``).

The ``gaussian`` fit minimises the error of the Gaussians alone. Under a residual coded at luma step ``delta``
that is the wrong target: an error coefficient the quantiser zeroes (below its dead zone) stays in the decoded
image as distortion, one above it is coded at a rate that grows only with the log of its size and leaves about a
uniform quantisation error. So, per coefficient of the orthonormal 8x8 DCT of (original - base) in YCoCg (as
``image_dct`` codes it), in units ``u`` of the channel's step, the Lagrangian cost in RDOQ's units (luma step^2
weighted by the channel's weight in RGB, ``image_dct.rdo_quantise``; lambda ``LAMBDA``):

    J(u) = min(w u^2, w / 12 + lambda * (BITS_CODED + BITS_PER_OCTAVE * log2(1 + |u|)))

i.e. zeroed (its energy is distortion) or coded, whichever costs less (what RDOQ decides). Where nothing is coded
(a coarse step) this is the weighted squared error, the ``gaussian`` loss in another basis. The bit counts are
a model of ``coefcoder``'s cost of a non-zero symbol (sign 1 bit, significance and magnitude ~3; ~2 bits per
doubling), which places the zero/coded threshold near |u| = 0.8, where RDOQ's dead zone puts it.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..kernels import residual_loss as kernel
from . import image_dct
from .mcdct import N, _forward_matrix

BITS_CODED = 4.0  # bits of a coded (non-zero) coefficient of size ~1 step over a zeroed one
BITS_PER_OCTAVE = 2.0  # more bits per doubling of its size
# lambda of J (per luma step^2): the encoder's RDOQ lambda until session 26 (image_dct.RDOQ_LAMBDA, 0.3, now 0.25);
# kept at 0.3 so that every preset's Gaussian fit is the one measured with it (a lower one is not measured here)
LAMBDA = 0.3
# step_for_bytes from a guess: estimates per call, and the first secant's slope, -d ln(bytes) / d ln(step), of a
# Kodak residual at fast's and medium's steps (1.2-1.6)
SECANT_EVALS = 2
BYTES_PER_STEP_SLOPE = 1.4


@functools.lru_cache(maxsize=1)
def _dct() -> torch.Tensor:
    return torch.from_numpy(_forward_matrix()).to(torch.float32)


def ycocg(x: torch.Tensor) -> torch.Tensor:
    """(h, w, c) -> the coded colour space (``image_dct.to_ycocg``): RGB to YCoCg, gray unchanged."""
    if x.shape[-1] == 1:
        return x
    r, g, b = x.unbind(-1)
    return torch.stack([0.25 * r + 0.5 * g + 0.25 * b, 0.5 * (r - b), -0.25 * r + 0.5 * g - 0.25 * b], dim=-1)


def block_dct(x: torch.Tensor) -> torch.Tensor:
    """(h, w, c) -> (c, by, bx, 8, 8) orthonormal 8x8 DCT coefficients (raster order within a block), the image
    padded by replicating its last row/column as ``image_dct.coefficients`` does."""
    h, w, c = x.shape
    by, bx = -(-h // N), -(-w // N)
    if (by * N, bx * N) != (h, w):
        x = F.pad(x.permute(2, 0, 1)[None], (0, bx * N - w, 0, by * N - h), mode="replicate")[0].permute(1, 2, 0)
    blocks = x.reshape(by, N, bx, N, c).permute(4, 0, 2, 1, 3)
    d = _dct().to(x.dtype)
    return d @ blocks @ d.T


def channel_steps(delta: float, channels: int, chroma: float = image_dct.CHROMA_FACTOR) -> list[float]:
    return [delta * f for f in (1.0, chroma, chroma)[:channels]]


def channel_weights(channels: int, chroma: float = image_dct.CHROMA_FACTOR) -> list[float]:
    """RDOQ's distortion weight of an error of one channel step, in luma step^2 (``image_dct.rdo_quantise``)."""
    return [3.0, 2.0 * chroma**2, 3.0 * chroma**2][:channels] if channels == 3 else [1.0]


def coefficient_cost(u: torch.Tensor, w: torch.Tensor, lam: float) -> torch.Tensor:
    """J(u) of the module doc, elementwise (``w`` broadcast against ``u``)."""
    coded = w / 12.0 + lam * (BITS_CODED + BITS_PER_OCTAVE * torch.log2(1.0 + u.abs()))
    return torch.minimum(w * u * u, coded)


def residual_rd_loss_reference(pred: torch.Tensor, ref: torch.Tensor, delta: float, scale: float,
                               lam: float = LAMBDA,
                               chroma: float = image_dct.CHROMA_FACTOR) -> torch.Tensor:
    """``residual_rd_loss`` by autograd: the reference the fused form is tested against."""
    c = pred.shape[-1]
    coef = block_dct(ycocg((ref - pred) * scale))
    steps = torch.tensor(channel_steps(delta, c, chroma), dtype=coef.dtype).view(c, 1, 1, 1, 1)
    w = torch.tensor(channel_weights(c, chroma), dtype=coef.dtype).view(c, 1, 1, 1, 1)
    return coefficient_cost(coef / steps, w, lam).mean() * (delta * delta)


def step_for_bytes(raw: np.ndarray, goal_bytes: float, lo: float = 1.0, hi: float = 256.0, iters: int = 7,
                   guess: float | None = None, evals: int = SECANT_EVALS) -> float:
    """Luma step at which the residual of ``raw`` coefficients (``image_dct.raw_coefficients``) is estimated to
    take ``goal_bytes`` (plain dead-zone quantiser, ``coefcoder``'s estimate): bisection in log step, ``iters``
    halvings after a first estimate at ``lo``; or, from a ``guess`` (the last estimate, during a fit), ``evals``
    estimates on secants of log size over log step (the first along BYTES_PER_STEP_SLOPE), the step returned where
    the last secant meets the goal (each estimate ~50 CPU-ms on a Kodak image; the bisection takes 8)."""
    def size(log_step: float) -> float:
        return image_dct.estimate_bytes(image_dct.quantise_raw(raw, math.exp(log_step))[0])

    def log_size(log_step: float) -> float:
        return math.log(max(size(log_step), 1.0))

    a, b = math.log(lo), math.log(hi)
    if guess is not None:
        goal = math.log(max(goal_bytes, 1.0))
        pts: list[tuple[float, float]] = []
        x = min(max(math.log(guess), a), b)
        for _ in range(max(evals, 1)):
            pts.append((x, log_size(x)))
            over = [p for p in pts if p[1] > goal]
            under = [p for p in pts if p[1] <= goal]
            bracketed = bool(over and under)
            if bracketed:  # the secant of the closest points either side (cliffs, flat ends)
                (x0, y0), (x1, y1) = max(over), min(under)
            else:  # the two latest points
                (x0, y0), (x1, y1) = pts[-2] if len(pts) > 1 else pts[-1], pts[-1]
            slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 0.0
            slope = slope if slope < 0.0 else -BYTES_PER_STEP_SLOPE  # one point, flat or rising: the prior slope
            move = (goal - y1) / slope
            if not bracketed:  # at most an octave (a flat end extrapolates far)
                move = min(max(move, -math.log(2.0)), math.log(2.0))
            x = min(max(x1 + move, a), b)
        return math.exp(x)
    if size(a) <= goal_bytes:
        return lo
    for _ in range(iters):
        mid = 0.5 * (a + b)
        if size(mid) > goal_bytes:
            a = mid
        else:
            b = mid
    return math.exp(0.5 * (a + b))


def _planes_ycocg(p: torch.Tensor) -> torch.Tensor:
    """(3, h, w) RGB planes -> YCoCg planes (``ycocg``)."""
    r, g, b = p
    return torch.stack([(r + b).mul_(0.25).add_(g, alpha=0.5), (r - b).mul_(0.5), (g * 0.5).sub_(r + b, alpha=0.25)])


def _planes_ycocg_transposed(p: torch.Tensor) -> torch.Tensor:
    """The transpose of ``_planes_ycocg``'s matrix applied to (3, h, w) planes (a gradient back to RGB)."""
    y, co, cg = p
    return torch.stack([(y * 0.25).add_(co, alpha=0.5).sub_(cg, alpha=0.25), (y + cg).mul_(0.5),
                        (y * 0.25).sub_(co, alpha=0.5).sub_(cg, alpha=0.25)])


def _rows(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``m`` (8, 8) applied to the 8 rows of every block of (c, H, W) planes, H a multiple of 8: one batched GEMM
    whose output rows are whole image rows (an 8-wide GEMM along the columns is ~4x slower on a CPU)."""
    c, hh, ww = x.shape
    return (m @ x.reshape(c * (hh // N), N, ww)).reshape(c, hh, ww)


def _dct2(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """(c, H, W) -> the 8x8 block transform ``d @ block @ d.T`` of every block, returned transposed (c, W, H)."""
    return _rows(_rows(x, d).transpose(1, 2).contiguous(), d)


def _fused_torch(pred: torch.Tensor, ref: torch.Tensor, delta: float, scale: float, lam: float,
                 chroma: float) -> tuple[float, torch.Tensor]:
    """(mean J times delta^2, its gradient in ``pred``) without autograd: the compiled kernel's reference and the
    fallback where it cannot run (float64, no library)."""
    h, w, c = pred.shape
    hh, ww = -(-h // N) * N, -(-w // N) * N
    with torch.no_grad():
        x = (ref - pred).mul_(scale).permute(2, 0, 1)
        x = _planes_ycocg(x) if c == 3 else x.contiguous()
        if (hh, ww) != (h, w):
            x = F.pad(x[None], (0, ww - w, 0, hh - h), mode="replicate")[0]
        d = _dct().to(x.dtype)
        u = _dct2(x, d)  # (c, W, H)
        steps = channel_steps(delta, c, chroma)
        wts = channel_weights(c, chroma)
        k = lam * BITS_PER_OCTAVE / math.log(2.0)
        n = u.numel()
        norm = delta * delta / n
        total = 0.0
        g = torch.empty_like(u)
        for i in range(c):  # per channel: its step and weight are scalars
            ui = u[i].div_(steps[i])
            mag = ui.abs()
            coded = torch.log1p(mag).mul_(k).add_(lam * BITS_CODED + wts[i] / 12.0)
            sq = (ui * ui).mul_(wts[i])
            total += float(torch.minimum(sq, coded).sum())
            zeroed = (sq <= coded).to(ui.dtype)
            # dJ/du: 2 w u where zeroed, lam b1 sign(u) / ((1 + |u|) ln 2) where coded; then d/dcoef = / step
            gc_ = torch.copysign(mag.add_(1.0).reciprocal_().mul_(k), ui)
            gz = ui.mul_(2.0 * wts[i])
            g[i] = gz.sub_(gc_).mul_(zeroed).add_(gc_).mul_(norm / steps[i])
        g = _dct2(g, d.T.contiguous())  # inverse (orthonormal), back to (c, H, W)
        if (hh, ww) != (h, w):  # the padding's share goes to the pixels it replicates
            full = g
            g = full[:, :h, :w].clone()
            g[:, :, w - 1] += full[:, :h, w:].sum(-1)
            g[:, h - 1, :] += full[:, h:, :w].sum(-2)
            g[:, h - 1, w - 1] += full[:, h:, w:].sum((-1, -2))
        g = _planes_ycocg_transposed(g) if c == 3 else g
        return total * norm, g.mul_(-scale).permute(1, 2, 0)


class _FusedLoss(torch.autograd.Function):
    """Loss and gradient in one pass (the gradient is computed with the value and scaled in ``backward``): the
    autograd form's ~15 elementwise ops and small matmuls cost 46 CPU-ms per step on a Kodak image, ``_fused_torch``
    18-21, the compiled kernel (``kernels.residual_loss``) ~2 (benchmarks/README.md "compiled")."""

    @staticmethod
    def forward(ctx, pred, ref, delta, scale, lam, chroma, weight, mse_weight, compiled):
        h, w, c = pred.shape
        out = None
        if compiled:
            n = c * (-(-h // N) * N) * (-(-w // N) * N)
            out = kernel.loss_and_grad(pred, ref, channel_steps(delta, c, chroma), channel_weights(c, chroma),
                                       lam * BITS_CODED, lam * BITS_PER_OCTAVE / math.log(2.0), scale,
                                       weight * delta * delta / n, mse_weight)
        if out is not None:
            cost, sse, g = out
            value = cost * weight * delta * delta / n + mse_weight * sse / pred.numel()
        else:
            value, g = _fused_torch(pred, ref, delta, scale, lam, chroma)
            value *= weight
            g.mul_(weight)
            if mse_weight:
                with torch.no_grad():
                    diff = pred - ref
                    value += mse_weight * float(diff.square().mean())
                    g.add_(diff, alpha=2.0 * mse_weight / pred.numel())
        ctx.save_for_backward(g)
        return torch.tensor(value, dtype=pred.dtype)

    @staticmethod
    def backward(ctx, grad):
        (g,) = ctx.saved_tensors
        return (g if float(grad) == 1.0 else g * grad), None, None, None, None, None, None, None, None


def residual_rd_loss(pred: torch.Tensor, ref: torch.Tensor, delta: float, scale: float,
                     lam: float = LAMBDA, chroma: float = image_dct.CHROMA_FACTOR,
                     weight: float = 1.0, mse_weight: float = 0.0, compiled: bool = True) -> torch.Tensor:
    """Mean J over the DCT coefficients of ``scale * (ref - pred)`` ((h, w, c) images; ``scale`` takes them to
    8-bit levels) at luma step ``delta`` (8-bit levels), times delta^2: where nothing is coded it is about the
    mean squared error in 8-bit levels (the ``gaussian`` fit's loss times 255^2; RGB's YCoCg weights 3/2/3).
    Returned as ``weight`` times that plus ``mse_weight`` times the MSE of ``pred`` (unscaled), both in one pass.
    Differentiable in ``pred`` only (the target is fixed). ``compiled``: the C++ kernel where it can run (float32),
    else (and with False) the torch form."""
    return _FusedLoss.apply(pred, ref, float(delta), float(scale), float(lam), float(chroma), float(weight),
                            float(mse_weight), bool(compiled))
