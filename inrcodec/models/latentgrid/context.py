"""Context model: the entropy model of the latents.

Every latent symbol gets a Laplace whose mean and scale a small MLP (``arm``) predicts from a context the decoder
already knows: the coarser level around the parent sample (parent, and the nearer and farther neighbour of the
parent along each axis) and, in a checkerboard split of each level, the 2d axis neighbours of the "odd" samples
(all "even", decoded first). So decoding is 2 vectorised passes per level, not one pass per sample.

The same features serve training (``rate_bits``: differentiable -log2 P(bin), compiled kernels for 2-D levels) and
the coder (``ExactArm``: the MLP with quantised weights evaluated exactly in float64, so the decoder reproduces the
encoder's probabilities bit for bit on any machine).
"""

from __future__ import annotations

import numpy as np
import torch

from ...kernels import latentgrid_context as context_kernel
from ...kernels.latentgrid_arm import arm_rate, arm_rate_ctx2d
from ...kernels.latentgrid_exact import context_2d_f64, exact_mlp
from ...quant.exact import latent_scale_table
from ..coordnet import relu_mlp
from .quantiser import LATENT_CAP
from .synthesis import _linears

# Scale table of the coder: log2(scale) in [LOG2_SCALE_MIN, LOG2_SCALE_MAX) in steps of 1/SCALE_STEPS.
LOG2_SCALE_MIN, LOG2_SCALE_MAX, SCALE_STEPS = -5.0, 7.0, 8
N_SCALES = int((LOG2_SCALE_MAX - LOG2_SCALE_MIN) * SCALE_STEPS)
SCALE_TABLE = latent_scale_table(LOG2_SCALE_MIN, SCALE_STEPS, N_SCALES)  # quant.exact: 2**(m/16) without libm
FRAC_BITS = 8  # fixed-point fraction bits of context-MLP activations and predicted means
ACT_CAP = 2.0**16  # activations are clamped to +-this (keeps every exact sum far below 2**53)


def make_arm(ndim: int, hidden: int, layers: int) -> torch.nn.Sequential:
    """The context MLP: n_context(ndim) features -> (mean, raw log2 scale)."""
    arm = relu_mlp(n_context(ndim), hidden, layers, 2)
    with torch.no_grad():
        arm[-1].weight.mul_(0.1)
        arm[-1].bias.copy_(torch.tensor([0.0, -2.0]))
    return arm


def _shift(x: torch.Tensor, axis: int, off: int, replicate: bool) -> torch.Tensor:
    """result[p] = x[p + off e_axis]; outside: edge value (replicate) or 0."""
    n = x.shape[axis]
    if n <= abs(off):
        return x.clone() if replicate else torch.zeros_like(x)
    if off > 0:
        body = x.narrow(axis, off, n - off)
        edge = x.narrow(axis, n - 1, 1) if replicate else torch.zeros_like(x.narrow(axis, 0, 1))
        return torch.cat([body] + [edge] * off, dim=axis)
    body = x.narrow(axis, 0, n + off)
    edge = x.narrow(axis, 0, 1) if replicate else torch.zeros_like(x.narrow(axis, 0, 1))
    return torch.cat([edge] * (-off) + [body], dim=axis)



def _parent_up(c: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Value of the parent sample (index // 2 on every axis) at each position of a grid of ``shape``."""
    for axis, n in enumerate(shape):
        c = c.repeat_interleave(2, dim=axis).narrow(axis, 0, n)
    return c


def _parity(shape: tuple[int, ...], axis: int) -> torch.Tensor:
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return (torch.arange(shape[axis]) % 2).view(view).expand(shape)


def checkerboard(shape: tuple[int, ...]) -> torch.Tensor:
    """True on the 'odd' samples (coordinate sum odd): decoded in the second pass of a level."""
    total = torch.zeros(shape, dtype=torch.long)
    for axis in range(len(shape)):
        total = total + _parity(shape, axis)
    return (total % 2).bool()


def context_features(level: int, levels: int, y: torch.Tensor, coarse: torch.Tensor | None) -> torch.Tensor:
    """(*shape, 4d + 3) context of every sample of level ``level`` (values y, coarser level ``coarse``).
    Features: parent; per axis the nearer and farther neighbour of the parent; per axis the two same-level
    neighbours (only for odd samples, else 0); an odd flag; the level position. Dimension-generic."""
    shape = tuple(y.shape)
    d = len(shape)
    odd = checkerboard(shape).to(y.dtype)
    feats = []
    if coarse is None:
        feats += [torch.zeros_like(y)] * (1 + 2 * d)
    else:
        feats.append(_parent_up(coarse, shape))
        for axis in range(d):
            lo = _parent_up(_shift(coarse, axis, -1, True), shape)
            hi = _parent_up(_shift(coarse, axis, +1, True), shape)
            even = (_parity(shape, axis) == 0)
            feats.append(torch.where(even, lo, hi))  # nearer neighbour of the parent
            feats.append(torch.where(even, hi, lo))  # farther one
    for axis in range(d):
        feats.append(_shift(y, axis, -1, False) * odd)
        feats.append(_shift(y, axis, +1, False) * odd)
    feats.append(odd)
    feats.append(torch.full_like(y, level / max(levels - 1, 1)))
    return torch.stack(feats, dim=-1)


def coder_features(level: int, levels: int, y: torch.Tensor, coarse: torch.Tensor | None, parity: int = -1
                   ) -> np.ndarray:
    """The context features the coder evaluates: float64 (count, 4d + 3) of all samples (parity -1) or of one
    checkerboard half (0: even, 1: odd; row-major order). 2-D: compiled kernel, bit-identical to the reference
    ``context_features`` (copies of the inputs only), which serves the other cases."""
    if y.dim() == 2:
        f = context_2d_f64(y.numpy(), None if coarse is None else coarse.numpy(), level / max(levels - 1, 1), parity)
        if f is not None:
            return f
    feats = context_features(level, levels, y, coarse).reshape(-1, n_context(y.dim())).numpy()
    if parity < 0:
        return feats
    odd = checkerboard(tuple(y.shape)).reshape(-1).numpy()
    return feats[odd if parity else ~odd]


def n_context(ndim: int) -> int:
    return 4 * ndim + 3



# Training's rate term on a subset (benchmarks/results/latentgrid_step.json, latentgrid_rate_subsample_rd.json):
# the context model is half of a step's arithmetic, three quarters of it on the full-resolution level. With
# RATE_SUBSAMPLE = k > 1, on levels of at least RATE_SUBSAMPLE_MIN latents one row in k (every k-th row from a random
# phase, so each row is in with probability 1/k) is evaluated in the noise phase and its bits scaled by k: an
# unbiased estimate of the level's bits and of their gradients; every latent still gets the distortion gradient
# every step, and the straight-through phase and the coder use every latent. Measured at k = 4: the noise-phase
# step -30 % CPU, but -0.33 dB at equal bpp on average over kodim01/03 at 0.3/1 bpp in 400 steps (worst -0.75 dB;
# likely the sparse x4 rate gradients inflating Adam's second moments of the level-0 latents), so it is off (1)
# by default; ``LatentGrid.rate_subsample`` sets it per model.
RATE_SUBSAMPLE = 1
RATE_SUBSAMPLE_MIN = 1 << 16


def subsample_rows(y: torch.Tensor, stride: int, generator: torch.Generator | None) -> torch.Tensor | None:
    """Rows (indices along axis 0) of the systematic 1-in-``stride`` sample of a level, or None for all rows."""
    if stride <= 1 or y.numel() < RATE_SUBSAMPLE_MIN or y.shape[0] < stride:
        return None
    phase = int(torch.randint(stride, (1,), generator=generator))
    return torch.arange(phase, y.shape[0], stride)


def rate_bits(arm: torch.nn.Sequential, latents: list[torch.Tensor], subsample: int = 1,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Differentiable estimate of the coded size of the latents (bits) under the context model; with
    ``subsample`` > 1 an unbiased estimate from 1 row in ``subsample`` of the large levels (see RATE_SUBSAMPLE)."""
    total = latents[0].new_zeros(())
    levels = len(latents)
    for level, y in enumerate(latents):
        coarse = latents[level + 1] if level + 1 < levels else None
        rows = subsample_rows(y, subsample, generator)
        if context_kernel.usable(y) and arm[0].in_features == 11 and _linears(arm)[-1].out_features == 2:
            # 2-D: features built per block inside the fused context MLP + rate kernel (reference: the next branch)
            bits = arm_rate_ctx2d(level, levels, y, coarse, rows, _linears(arm), (LOG2_SCALE_MIN, LOG2_SCALE_MAX))
            total = total + (bits if rows is None else bits * subsample)
            continue
        if context_kernel.usable(y):  # 2-D: one-pass compiled kernel (reference: context_features)
            feats = context_kernel.context_2d(level, levels, y, coarse, rows)
        else:
            feats = context_features(level, levels, y, coarse)
            if rows is not None:
                feats = feats.index_select(0, rows)
            feats = feats.reshape(-1, n_context(y.dim()))
        values = y if rows is None else y.index_select(0, rows)
        # context MLP -> (mean, raw log2 scale) -> Laplace bits, forward and backward fused in one compiled pass
        # (torch reference: mlp, then entropy.rate.laplace_rate_bits)
        bits = arm_rate(feats, values.reshape(-1), _linears(arm), (LOG2_SCALE_MIN, LOG2_SCALE_MAX))
        total = total + (bits if rows is None else bits * subsample)
    return total


# -- exact context MLP for the coder -----------------------------------------------------------------------------
def _floor_fixed(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x * 2.0**FRAC_BITS) / 2.0**FRAC_BITS, -ACT_CAP, ACT_CAP)


class ExactArm:
    """The context MLP with quantised weights (w_int * 2**-e) evaluated exactly in float64."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]]):
        self.layers = layers  # [(W (in, out), b (out,))] already dequantised (dyadic) float64

    def __call__(self, feats: np.ndarray, use_kernel: bool = True) -> tuple[np.ndarray, np.ndarray]:
        # compiled float64 kernel (same bits: every sum is exact); numpy reference where it cannot be built
        h = exact_mlp(feats, self.layers, FRAC_BITS, ACT_CAP) if use_kernel else None
        if h is None:
            h = self.reference(feats)
        mean = np.clip(h[:, 0], -LATENT_CAP, LATENT_CAP)
        idx = np.clip(np.floor((h[:, 1] - LOG2_SCALE_MIN) * SCALE_STEPS), 0, N_SCALES - 1).astype(np.int64)
        return mean, SCALE_TABLE[idx]

    def reference(self, feats: np.ndarray) -> np.ndarray:
        h = _floor_fixed(feats.astype(np.float64))
        for i, (w, b) in enumerate(self.layers):
            h = _floor_fixed(h @ w + b)
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h



def exact_arm(arrays: list[np.ndarray]) -> ExactArm:
    """ExactArm from the dequantised parameters of the arm in module order (W (out, in), b (out,), ...)."""
    return ExactArm([(arrays[i].T.copy(), arrays[i + 1]) for i in range(0, len(arrays), 2)])
