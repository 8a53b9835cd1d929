"""Latent grid (the Cool-chic / C3 class of overfitted codecs), dimension-generic.

Signal = synthesis(upsample(latents)). ``levels`` latent grids, level l with ceil(n / 2**l) samples per axis,
are quantised to integers, upsampled to the output grid by separable interpolation (linear or cubic, any
resolution, any region), stacked into one feature per level, and mapped to the C output values by a small
per-sample MLP followed by residual k^d convolutions.

Entropy model (the part the rate term trains and the coder uses): every latent symbol gets a Laplace with mean and
scale predicted by a small MLP (``arm``) from a context that the decoder already knows: the coarser level around
the parent sample (parent, and the nearer and farther neighbour of the parent along each axis) and, in a
checkerboard split of each level, the 2d axis neighbours of the "odd" samples (all "even", decoded first). So
decoding is 2 vectorised passes per level, not one pass per sample. The same function gives

* the rate term of the loss: -log2 P(bin) of the (noisy or rounded) latents under those Laplaces, and
* the coder's probabilities: constriction's QuantizedLaplace with the predicted means and scales per symbol.

To make the decoder reproduce the encoder's probabilities bit for bit on any machine, the coder evaluates the
context MLP in exact arithmetic: weights are integers times a power of two, inputs are dyadic, every layer output
is floored to 2**-8, and all of it stays far below 2**53 in float64, so sums are exact in any order; the predicted
log2-scale then indexes a fixed table of scales.

Training (``fit.fit``): loss = MSE + lambda * rate (bits per sample). Uniform noise stands in for rounding until
``STE_START`` of the schedule, then the latents are rounded with a straight-through gradient. lambda is steered
by dual ascent so that the estimated rate lands on the byte target (``set_targets(bits=...)``), or the
distortion on the PSNR target; without a target it stays at ``DEFAULT_LAMBDA``.

``encode(quality)``: quality 1 codes the latents as trained (step 1); lower quality coarsens the latent step up to
2x (``quality_setting``; the context model sees dequantised values, the coder divides its means/scales by the
step), which lets the codec's bisection trim a file that came out over budget. Network weights are coded with
power-of-two steps whose precision is searched once per module (synthesis: rate + lambda * distortion within the
byte target; context model: total bits).

Speed: on CPU the training step's hot path (MLPs, Laplace rate, and for 2-D signals context features, upsampling
and convolutions) runs on compiled kernels (``inrcodec/kernels/latentgrid_*.py``, ``cuda/latentgrid_cpu.cpp``),
each tested against the torch code it replaces, which still runs where the kernels cannot be built.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import constriction
import numpy as np
import torch

from ..entropy import decode_ints, encode_ints
from ..entropy.rate import laplace_rate_bits
from ..errors import FormatError
from ..kernels.latentgrid_mlp import mlp
from ..kernels import latentgrid_context as context_kernel
from ..kernels import latentgrid_conv as conv_kernel
from ..kernels import latentgrid_upsample as upsample_kernel
from ..kernels.latentgrid_rate import laplace_rate
from ..quant.exact import laplace_decode, laplace_encode_reverse, latent_scale_table
from . import register
from .base import Representation

# Scale table of the coder: log2(scale) in [LOG2_SCALE_MIN, LOG2_SCALE_MAX) in steps of 1/SCALE_STEPS.
LOG2_SCALE_MIN, LOG2_SCALE_MAX, SCALE_STEPS = -5.0, 7.0, 8
N_SCALES = int((LOG2_SCALE_MAX - LOG2_SCALE_MIN) * SCALE_STEPS)
SCALE_TABLE = latent_scale_table(LOG2_SCALE_MIN, SCALE_STEPS, N_SCALES)  # quant.exact: 2**(m/16) without libm
FRAC_BITS = 8  # fixed-point fraction bits of context-MLP activations and predicted means
ACT_CAP = 2.0**16  # activations are clamped to +-this (keeps every exact sum far below 2**53)
LATENT_CAP = 1 << 12  # |latent symbol| bound (a symbol beyond it is clipped at encode)
STE_START = 0.9  # measured: a long noise phase gives lower rates at equal PSNR on short schedules
LATENT_LR_FACTOR = 10.0  # latents move in integer units: they need a larger step than the network weights
DEFAULT_LAMBDA = 2e-3
DUAL_RATE = 15.0  # dual-ascent rate: change of log(lambda) per unit of log rate error and of schedule progress
CONTROL_START = 0.15  # early rates mostly reflect unconverged latents and context model: do not steer on them
LAMBDA_RANGE = (1e-9, 10.0)
WEIGHT_BITS_PRIOR = 9.0  # bits per network weight assumed while training (refined at encode)
QUALITY_STEP_RANGE = 1.0  # log2 of the coarsest latent step (quality 0)
STEP_FRAC = 64  # latent step is k / STEP_FRAC


@dataclass
class LatentGridConfig:
    ndim: int
    channels: int
    levels: int = 7
    hidden: int = 16  # synthesis MLP width
    hidden_layers: int = 2
    conv_layers: int = 2  # residual k^d convolutions after the MLP
    kernel: int = 3
    arm_hidden: int = 16
    arm_layers: int = 2
    upsampling: str = "cubic"  # "linear" or "cubic" (Catmull-Rom)

    def validate(self) -> None:
        ints = ("ndim", "channels", "levels", "hidden", "hidden_layers", "conv_layers", "kernel", "arm_hidden",
                "arm_layers")
        for name in ints:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise FormatError(f"config field {name}={v!r} is not an integer")
        if not (1 <= self.ndim <= 3 and 1 <= self.channels <= 64 and 1 <= self.levels <= 16
                and 1 <= self.hidden <= 256 and 0 <= self.hidden_layers <= 8 and 0 <= self.conv_layers <= 8
                and self.kernel in (1, 3, 5) and 1 <= self.arm_hidden <= 128 and 0 <= self.arm_layers <= 6):
            raise FormatError("latentgrid config out of range")
        if self.upsampling not in ("linear", "cubic"):
            raise FormatError(f"unknown upsampling {self.upsampling!r}")


def latent_shapes(shape: tuple[int, ...], levels: int) -> list[tuple[int, ...]]:
    return [tuple(-(-n // 2**lvl) for n in shape) for lvl in range(levels)]


def default_levels(shape: tuple[int, ...]) -> int:
    return int(max(1, min(7, math.floor(math.log2(max(min(shape), 1))) + 1)))


# -- separable resampling ------------------------------------------------------------------------------------
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


# -- shifts for contexts ---------------------------------------------------------------------------------------
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


def _replicate_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Replicate-pad every axis after the first two by ``pad`` (concatenation: compiles and runs in any ndim)."""
    for axis in range(2, x.dim()):
        n = x.shape[axis]
        x = torch.cat([x.narrow(axis, 0, 1)] * pad + [x] + [x.narrow(axis, n - 1, 1)] * pad, dim=axis)
    return x


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


def n_context(ndim: int) -> int:
    return 4 * ndim + 3


def network_param_count(c: "LatentGridConfig") -> int:
    """Weights + biases of synthesis MLP, convolutions and context MLP for a config."""
    def mlp(d_in, width, layers, d_out):
        total, d = 0, d_in
        for _ in range(layers):
            total += (d + 1) * width
            d = width
        return total + (d + 1) * d_out

    convs = c.conv_layers * (c.channels * c.channels * c.kernel**c.ndim + c.channels)
    return mlp(c.levels, c.hidden, c.hidden_layers, c.channels) + convs + mlp(n_context(c.ndim), c.arm_hidden,
                                                                              c.arm_layers, 2)


# -- exact context MLP for the coder -----------------------------------------------------------------------------
def _floor_fixed(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x * 2.0**FRAC_BITS) / 2.0**FRAC_BITS, -ACT_CAP, ACT_CAP)


class ExactArm:
    """The context MLP with quantised weights (w_int * 2**-e) evaluated exactly in float64."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]]):
        self.layers = layers  # [(W (in, out), b (out,))] already dequantised (dyadic) float64

    def __call__(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = _floor_fixed(feats.astype(np.float64))
        for i, (w, b) in enumerate(self.layers):
            h = _floor_fixed(h @ w + b)
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        mean = np.clip(h[:, 0], -LATENT_CAP, LATENT_CAP)
        idx = np.clip(np.floor((h[:, 1] - LOG2_SCALE_MIN) * SCALE_STEPS), 0, N_SCALES - 1).astype(np.int64)
        return mean, SCALE_TABLE[idx]


# -- weight coding -----------------------------------------------------------------------------------------------
def _pow2_exponent(values: np.ndarray, rel_bits: int) -> int:
    rms = math.sqrt(float(np.mean(values**2))) if values.size else 0.0
    if rms <= 0:
        return 0
    return int(np.clip(rel_bits - math.floor(math.log2(rms)), -20, 40))


def _code_weights(tensors: list[np.ndarray], rel_bits: int) -> tuple[bytes, list[np.ndarray]]:
    """Per tensor an int8 exponent e (step 2**-e, about rms * 2**-rel_bits); the symbols round(w * 2**e) of all
    tensors of a module share one entropy-coded blob (they are all on the same relative scale). Returns the blob
    and the dequantised tensors."""
    exps, syms, deq = [], [], []
    for v in tensors:
        e = _pow2_exponent(v, rel_bits)
        q = np.clip(np.rint(v * 2.0**e), -(2**30), 2**30).astype(np.int64)
        exps.append(e)
        syms.append(q.ravel())
        deq.append(q.astype(np.float64) * 2.0**-e)
    head = struct.pack(f"<{len(exps)}b", *exps)
    return head + encode_ints(np.concatenate(syms) if syms else np.zeros(0, np.int64)), deq


def _decode_weights(blob: bytes, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    n = len(shapes)
    if len(blob) < n + 1:
        raise FormatError("weights section truncated")
    exps = struct.unpack(f"<{n}b", blob[:n])
    sizes = [int(np.prod(s)) for s in shapes]
    q = decode_ints(blob[n:], sum(sizes))
    out, pos = [], 0
    for e, shape, size in zip(exps, shapes, sizes):
        out.append((q[pos : pos + size].astype(np.float64) * 2.0**-e).reshape(shape))
        pos += size
    return out


@register
class LatentGrid(Representation):
    name = "latentgrid"
    Config = LatentGridConfig
    default_lr = 1e-2
    default_steps = 1500
    default_quality = 1.0
    rate_controlled = True

    def __init__(self, config: LatentGridConfig, desc: dict[str, Any]):
        super().__init__(config, desc)
        c = config
        if len(self.coord_shape) != c.ndim:
            raise FormatError("latentgrid config does not match the signal's number of axes")
        self.shapes = latent_shapes(self.coord_shape, c.levels)
        self.latents = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(s)) for s in self.shapes])
        layers: list[torch.nn.Module] = []
        d_in = c.levels
        for _ in range(c.hidden_layers):
            layers += [torch.nn.Linear(d_in, c.hidden), torch.nn.ReLU()]
            d_in = c.hidden
        layers.append(torch.nn.Linear(d_in, c.channels))
        self.synth = torch.nn.Sequential(*layers)
        with torch.no_grad():
            self.synth[-1].bias.fill_(0.5)
        conv = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[c.ndim]
        self.convs = torch.nn.ModuleList([conv(c.channels, c.channels, c.kernel) for _ in range(c.conv_layers)])
        with torch.no_grad():
            for m in self.convs:  # residual blocks start as the identity
                m.weight.zero_()
                m.bias.zero_()
        arm: list[torch.nn.Module] = []
        d_in = n_context(c.ndim)
        for _ in range(c.arm_layers):
            arm += [torch.nn.Linear(d_in, c.arm_hidden), torch.nn.ReLU()]
            d_in = c.arm_hidden
        arm.append(torch.nn.Linear(d_in, 2))
        self.arm = torch.nn.Sequential(*arm)
        with torch.no_grad():
            self.arm[-1].weight.mul_(0.1)
            self.arm[-1].bias.copy_(torch.tensor([0.0, -2.0]))
        self.latent_step = 1.0  # dequantisation step of the coded latents (set by decode / encode)
        self.lmbda = DEFAULT_LAMBDA
        self._frac = 0.0
        self._dfrac = 0.0
        self._scaled_prior = False
        self._rate = None
        self._stats = None
        self._ema_rate = self._ema_mse = None
        self._weight_bits: float | None = None
        self._taps_cache: dict = {}
        self._weights_cache: dict | None = None

    # -- architecture prior -----------------------------------------------------------------------------------
    @classmethod
    def config_for(cls, desc, target_bits, **overrides):
        """The largest network from a ladder whose weights (about WEIGHT_BITS_PRIOR bits each) take at most a
        quarter of the byte budget; the rest goes to the latents."""
        shape, channels = tuple(desc["shape"][:-1]), int(desc["shape"][-1])
        base = dict(ndim=len(shape), channels=channels, levels=default_levels(shape))
        base.update({k: overrides.pop(k) for k in list(overrides) if k in ("ndim", "channels", "levels")})
        n = int(np.prod(shape))
        bps = (target_bits / n) if target_bits else 1.0
        ladder = [dict(hidden=4, hidden_layers=1, conv_layers=0, arm_hidden=4, arm_layers=1),
                  dict(hidden=8, hidden_layers=1, conv_layers=1, arm_hidden=8, arm_layers=1),
                  dict(hidden=8, hidden_layers=2, conv_layers=1, arm_hidden=8, arm_layers=2),
                  dict(hidden=12, hidden_layers=2, conv_layers=2, arm_hidden=12, arm_layers=2),
                  dict(hidden=16, hidden_layers=2, conv_layers=2, arm_hidden=16, arm_layers=2),
                  dict(hidden=24, hidden_layers=2, conv_layers=2, arm_hidden=16, arm_layers=2)]
        budget = 0.25 * (target_bits if target_bits else n * bps)
        if bps < 0.6:
            ladder = ladder[:-1]  # low rates: the 16-wide synthesis measured as good as 24 and cheaper
        choice = ladder[0]
        for rung in ladder:
            cfg = LatentGridConfig(**base, **rung)
            if WEIGHT_BITS_PRIOR * network_param_count(cfg) <= budget:
                choice = rung
        cfg = dict(base, **choice)
        cfg.update(overrides)
        return LatentGridConfig(**cfg)

    def param_groups(self, lr):
        return [{"params": list(self.latents), "lr": lr * LATENT_LR_FACTOR},
                {"params": self.network_params(), "lr": lr}]

    def network_params(self) -> list[torch.nn.Parameter]:
        return list(self.synth.parameters()) + list(self.convs.parameters()) + list(self.arm.parameters())

    # -- rendering ----------------------------------------------------------------------------------------
    def _level_taps(self, level: int, axis: int, n: int, lo: int, hi: int):
        key = (level, axis, n, lo, hi)
        if key not in self._taps_cache:
            if len(self._taps_cache) > 256:
                self._taps_cache.clear()
            self._taps_cache[key] = _taps(self.shapes[level][axis], n, lo, hi, self.config.upsampling)
        return self._taps_cache[key]

    def _features(self, latents: list[torch.Tensor], shape: tuple[int, ...], box: list[tuple[int, int]]):
        """Upsampled latents on the box of the shape-grid, feature-major: (levels, *box)."""
        feats = []
        for level, y in enumerate(latents):
            if tuple(y.shape) == tuple(shape):
                # same grid (level 0 at native size): the taps are (0, 1, 0, 0), i.e. the identity, exactly
                for axis, (lo, hi) in enumerate(box):
                    y = y.narrow(axis, lo, hi - lo)
                feats.append(y)
                continue
            taps = [self._level_taps(level, axis, n, *box[axis]) for axis, n in enumerate(shape)]
            if upsample_kernel.usable(y):  # 2-D: compiled separable resampler (reference: _resample_axis)
                y = upsample_kernel.upsample_2d(y, *taps)
            else:
                for axis, (idx, w) in enumerate(taps):
                    y = _resample_axis(y, axis, idx, w)
            feats.append(y)
        return torch.stack(feats, dim=0)

    def _synthesis(self, latents, shape, region):
        """Synthesis on ``region`` of the ``shape`` grid, computed on the region grown by the convolutions'
        reach (clipped to the grid) so the crop equals the same crop of a full render."""
        halo = self.config.conv_layers * (self.config.kernel // 2)
        box = [(max(lo - halo, 0), min(hi + halo, n)) for (lo, hi), n in zip(region, shape)]
        feats = self._features(latents, shape, box)  # (levels, *box)
        # fused per-pixel MLP (compiled kernel, torch reference as fallback), feature-major in and out
        x = mlp(feats.reshape(feats.shape[0], -1).t(), _linears(self.synth), feature_major=True)
        x = x.t().reshape(1, self.channels, *feats.shape[1:])  # (1, C, *box)
        if self.convs:
            pad = self.config.kernel // 2
            for i, conv in enumerate(self.convs):
                if conv_kernel.usable(x[0], conv.weight):  # 2-D: compiled kernel (reference: the next branch)
                    x = x + conv_kernel.conv_replicate(x[0], conv.weight, conv.bias).unsqueeze(0)
                else:
                    h = _replicate_pad(x, pad) if pad else x
                    x = x + conv(h)
                if i < len(self.convs) - 1:
                    x = torch.relu(x)  # all but the last block
        x = x.squeeze(0).movedim(0, -1)
        for axis, ((lo, hi), (blo, _)) in enumerate(zip(region, box)):
            x = x.narrow(axis, lo - blo, hi - lo)
        return x

    def quantised_latents(self) -> list[torch.Tensor]:
        s = self.latent_step
        return [torch.round(y.detach() / s) * s for y in self.latents]

    def render(self, shape=None, region=None):
        shape = tuple(shape or self.coord_shape)
        region = [tuple(r) for r in region] if region is not None else [(0, n) for n in shape]
        latents = self.quantised_latents()
        with torch.no_grad():
            per_slab = max(1, (1 << 21) // max(1, int(np.prod([hi - lo for lo, hi in region[1:]]))))
            lo0, hi0 = region[0]
            slabs = [self._synthesis(latents, shape, [(a, min(a + per_slab, hi0))] + region[1:])
                     for a in range(lo0, hi0, per_slab)]
        return torch.cat(slabs, dim=0) if len(slabs) > 1 else slabs[0]

    # -- training -----------------------------------------------------------------------------------------
    def on_progress(self, frac: float) -> None:
        self._dfrac = float(np.clip(frac - self._frac, 0.0, 0.05))
        self._frac = frac

    def _arm_params(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = mlp(feats.reshape(-1, feats.shape[-1]), _linears(self.arm)).reshape(*feats.shape[:-1], 2)
        return out[..., 0], torch.exp2(out[..., 1].clamp(LOG2_SCALE_MIN, LOG2_SCALE_MAX))

    def rate_bits(self, latents: list[torch.Tensor]) -> torch.Tensor:
        """Differentiable estimate of the coded size of the latents (bits) under the context model."""
        total = latents[0].new_zeros(())
        levels = len(latents)
        for level, y in enumerate(latents):
            coarse = latents[level + 1] if level + 1 < levels else None
            if context_kernel.usable(y):  # 2-D: one-pass compiled kernel (reference: context_features)
                feats = context_kernel.context_2d(level, levels, y, coarse)
            else:
                feats = context_features(level, levels, y, coarse).reshape(-1, n_context(y.dim()))
            out = mlp(feats, _linears(self.arm))  # (n, 2): mean, raw log2 scale
            # fused Laplace rate (compiled kernel; torch reference: entropy.rate.laplace_rate_bits)
            total = total + laplace_rate(y.reshape(-1), out, (LOG2_SCALE_MIN, LOG2_SCALE_MAX))
        return total

    def training_batch(self, target, generator):
        if self._frac < STE_START:
            lat = [y + torch.rand(y.shape, generator=generator) - 0.5 for y in self.latents]
        else:
            lat = [y + (torch.round(y) - y).detach() for y in self.latents]
        full = [(0, n) for n in self.coord_shape]
        pred = self._synthesis(lat, self.coord_shape, full)
        self._rate = self.rate_bits(lat)
        self._stats = (pred.detach(), target)
        return pred, target

    def regularizer(self):
        if self._rate is None:
            return None
        return self.lmbda * self._rate / float(np.prod(self.coord_shape))

    def after_step(self, step, target):
        if self._stats is None:
            return
        pred, ref = self._stats
        mse = float(torch.mean((pred - ref) ** 2))
        if self._frac >= STE_START:
            rate = float(self._rate.detach())
        elif step % 4 == 0 or self._ema_rate is None:
            # the noisy latents' rate overstates what rounding will code: steer on the rounded latents' rate
            with torch.no_grad():
                rate = float(self.rate_bits([torch.round(y) for y in self.latents]))
        else:
            rate = self._ema_rate
        a = 0.1
        self._ema_rate = rate if self._ema_rate is None else (1 - a) * self._ema_rate + a * rate
        self._ema_mse = mse if self._ema_mse is None else (1 - a) * self._ema_mse + a * mse
        if self._frac < CONTROL_START:
            return
        if self.target_bits is not None:
            if step % 50 == 0 or self._weight_bits is None:
                self._weight_bits = self._weight_bits_now()
            # aim 5 % low: a file over budget costs far more (encode has to coarsen the latent step, which the
            # synthesis and context model were not trained for) than one a little under
            goal = 0.95 * max(self.target_bits - self._weight_bits, 0.05 * self.target_bits)
            err = math.log(max(self._ema_rate, 1.0) / goal)
            if err > 0 and self._frac >= STE_START:
                err *= 3.0  # over budget in the last phase: push back hard
        elif self.target_psnr is not None:
            goal = 10.0 ** (-self.target_psnr / 10.0)
            err = math.log(goal / max(self._ema_mse, 1e-12))
        else:
            return
        # Early rates are transients (latents growing or settling, context model still learning): steer gently
        # then, firmly towards the end, when the rate is what will be coded.
        # Integrated over schedule progress, not steps, so a fit cut short by a time budget still corrects fully.
        gain = DUAL_RATE * self._frac**2 * self._dfrac
        self.lmbda = float(np.clip(self.lmbda * math.exp(gain * float(np.clip(err, -2, 2))), *LAMBDA_RANGE))

    def _weight_bits_now(self) -> float:
        """Coded size of the network weights at a typical precision, plus the sections' framing."""
        syn = self._weight_tensors(self.synth) + self._weight_tensors(self.convs)
        size = len(_code_weights(syn, 6)[0]) + len(_code_weights(self._weight_tensors(self.arm), 6)[0])
        return 8.0 * size + 32.0 * 8

    def _weight_bits_prior(self) -> float:
        return WEIGHT_BITS_PRIOR * sum(p.numel() for p in self.network_params()) + 64.0 * 8

    def set_targets(self, bits=None, psnr=None):
        super().set_targets(bits, psnr)
        n = float(np.prod(self.coord_shape))
        if bits is not None:  # prior: slope of a typical image RD curve at that rate, refined by dual ascent
            bps = max((bits - self._weight_bits_prior()) / n, 0.01)
            self.lmbda = float(np.clip(4e-4 / bps**1.5, *LAMBDA_RANGE))
        elif psnr is not None:
            self.lmbda = float(np.clip(10 ** (-psnr / 10.0) * 3.0, *LAMBDA_RANGE))

    # -- coding -------------------------------------------------------------------------------------------
    def _weight_tensors(self, module: torch.nn.Module) -> list[np.ndarray]:
        return [p.detach().cpu().numpy().astype(np.float64) for p in module.parameters()]

    def _exact_arm(self, arrays: list[np.ndarray]) -> ExactArm:
        pairs = [(arrays[i].T.copy(), arrays[i + 1]) for i in range(0, len(arrays), 2)]
        return ExactArm(pairs)

    def _latent_symbols(self, step: float) -> list[np.ndarray]:
        return [np.clip(np.rint(y.detach().cpu().numpy().astype(np.float64) / step), -LATENT_CAP, LATENT_CAP)
                .astype(np.int64) for y in self.latents]

    def _level_params(self, arm: ExactArm, syms: list[np.ndarray], step: float):
        """Per level: coder means and scales of every symbol (in symbol units), from dequantised values."""
        out = []
        levels = len(syms)
        vals = [torch.from_numpy(s.astype(np.float64) * step) for s in syms]
        for level in range(levels):
            coarse = vals[level + 1] if level + 1 < levels else None
            feats = context_features(level, levels, vals[level], coarse).reshape(-1, n_context(self.config.ndim))
            mean, scale = arm(feats.numpy())
            out.append((mean / step, scale / step))
        return out

    def _code_latents(self, arm: ExactArm, step: float) -> bytes:
        syms = self._latent_symbols(step)
        params = self._level_params(arm, syms, step)
        head = bytearray()
        coder = constriction.stream.stack.AnsCoder()
        chunks = []
        for level, s in enumerate(syms):
            flat = s.reshape(-1)
            lo, hi = int(flat.min()), int(flat.max())
            head += _varint(_zigzag(lo)) + _varint(hi - lo)
            if hi > lo:
                odd = checkerboard(self.shapes[level]).reshape(-1).numpy()
                mean, scale = params[level]
                model = (lo, hi)  # quant.exact: constriction's QuantizedLaplace(lo, hi) without libm
                chunks.append((flat, odd, mean, scale, model))
        for flat, odd, mean, scale, model in chunks:  # a stack: fine levels first, odd before even in each
            for sel in (odd, ~odd):
                if sel.any():
                    laplace_encode_reverse(coder, flat[sel], model[0], model[1], mean[sel], scale[sel])
        check = _symbols_crc(syms)
        return struct.pack("<HI", int(round(step * STEP_FRAC)), check) + bytes(head) + _ans_bytes(coder)

    def _choose_weights(self) -> dict:
        """Precision of the network weights, searched once: context model by total bits (its weights + the latents
        it codes); synthesis by rate + lambda * distortion on the rendered signal, among the precisions that keep
        the file within the byte target (training assumed ~6 bits per weight: a finer synthesis grid chosen on
        distortion alone overshot small targets by up to ~10 %)."""
        if self._weights_cache is not None:
            return self._weights_cache
        n = float(np.prod(self.coord_shape))
        target = getattr(self, "_fit_target", None)
        synth_arrays = self._weight_tensors(self.synth) + self._weight_tensors(self.convs)
        arm_arrays = self._weight_tensors(self.arm)
        originals = [p.detach().clone() for p in self.network_params()]
        best_arm = None
        syms = self._latent_symbols(1.0)
        for rel in range(4, 13):
            blob, deq = _code_weights(arm_arrays, rel)
            arm = self._exact_arm(deq)
            bits = 8 * len(blob) + _estimate_bits(self._level_params(arm, syms, 1.0), syms)
            if best_arm is None or bits < best_arm[0]:
                best_arm = (bits, rel, blob, deq)
        room = None if self.target_bits is None else self.target_bits - best_arm[0] - 32.0 * 8
        best_syn = None
        for rel in range(4, 13):
            blob, deq = _code_weights(synth_arrays, rel)
            if best_syn is not None and room is not None and 8 * len(blob) > room:
                break  # finer precisions only get larger
            with torch.no_grad():
                for p, v in zip(list(self.synth.parameters()) + list(self.convs.parameters()), deq):
                    p.copy_(torch.from_numpy(v).float())
                if target is not None:
                    mse = float(torch.mean((self.render() - target) ** 2))
                else:
                    mse = 0.0
            cost = mse + self.lmbda * 8 * len(blob) / n
            if target is None:
                cost = -rel if rel <= 8 else cost  # no reference: 8 relative bits
            if best_syn is None or cost < best_syn[0]:
                best_syn = (cost, rel, blob)
        with torch.no_grad():
            for p, v in zip(self.network_params(), originals):
                p.copy_(v)
            _, deq_syn = _code_weights(synth_arrays, best_syn[1])
            for p, v in zip(list(self.synth.parameters()) + list(self.convs.parameters()), deq_syn):
                p.copy_(torch.from_numpy(v).float())
            for p, v in zip(self.arm.parameters(), best_arm[3]):
                p.copy_(torch.from_numpy(v).float())
        self._weights_cache = {"synth": best_syn[2], "arm": best_arm[2], "arm_exact": self._exact_arm(best_arm[3])}
        return self._weights_cache

    def init_from_signal(self, target):
        self._fit_target = target
        # The lambda prior of set_targets is calibrated on natural images (variance ~0.06 on [0, 1]); distortion
        # scales with the signal's variance (quiet audio, flat fields), so scale the prior with it.
        var = float(target.var()) if target.numel() > 1 else 0.06
        if self.target_bits is not None and not self._scaled_prior:
            self.lmbda = float(np.clip(self.lmbda * max(var, 1e-8) / 0.06, *LAMBDA_RANGE))
            self._scaled_prior = True

    def encode(self, quality: float) -> dict[str, bytes]:
        w = self._choose_weights()
        latents = self._code_latents(w["arm_exact"], quality_setting(quality))
        return {"synth": w["synth"], "arm": w["arm"], "latents": latents}

    @classmethod
    def decode(cls, config, desc, sections):
        model = cls(config, desc)
        for key in ("synth", "arm", "latents"):
            if key not in sections:
                raise FormatError(f"latentgrid file lacks the {key!r} section")
        syn_params = list(model.synth.parameters()) + list(model.convs.parameters())
        syn = _decode_weights(sections["synth"], [tuple(p.shape) for p in syn_params])
        arm = _decode_weights(sections["arm"], [tuple(p.shape) for p in model.arm.parameters()])
        with torch.no_grad():
            for p, v in zip(syn_params, syn):
                p.copy_(torch.from_numpy(v).float())
            for p, v in zip(model.arm.parameters(), arm):
                p.copy_(torch.from_numpy(v).float())
        model._decode_latents(model._exact_arm(arm), sections["latents"])
        return model.eval()

    def _decode_latents(self, arm: ExactArm, blob: bytes) -> None:
        if len(blob) < 6:
            raise FormatError("latents section truncated")
        k, check = struct.unpack("<HI", blob[:6])
        if not 0 < k <= 16 * STEP_FRAC:
            raise FormatError(f"invalid latent step {k}/{STEP_FRAC}")
        step = k / STEP_FRAC
        pos = 6
        ranges = []
        for _ in self.shapes:
            zlo, pos = _read_varint(blob, pos)
            span, pos = _read_varint(blob, pos)
            lo = _unzigzag(zlo)
            if abs(lo) > LATENT_CAP or lo + span > LATENT_CAP:
                raise FormatError("latent range out of bounds")
            ranges.append((lo, lo + span))
        payload = blob[pos:]
        payload += b"\0" * ((-len(payload)) % 4)
        try:
            coder = constriction.stream.stack.AnsCoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        except BaseException as exc:  # noqa: BLE001 - constriction panics are BaseException
            raise FormatError(f"corrupt latents: {exc}") from None
        levels = len(self.shapes)
        vals: list[torch.Tensor | None] = [None] * levels
        d = self.config.ndim
        for level in reversed(range(levels)):
            shape = self.shapes[level]
            lo, hi = ranges[level]
            sym = np.full(int(np.prod(shape)), lo, dtype=np.int64)
            if hi > lo:
                odd = checkerboard(shape).reshape(-1).numpy()
                coarse = vals[level + 1] if level + 1 < levels else None
                for sel in (~odd, odd):
                    if not sel.any():
                        continue
                    y = torch.from_numpy(sym.reshape(shape).astype(np.float64) * step)
                    feats = context_features(level, levels, y, coarse).reshape(-1, n_context(d)).numpy()
                    mean, scale = arm(feats[sel])
                    try:
                        sym[sel] = laplace_decode(coder, lo, hi, mean / step, scale / step)
                    except BaseException as exc:  # noqa: BLE001
                        raise FormatError(f"corrupt latents: {exc}") from None
            vals[level] = torch.from_numpy(sym.reshape(shape).astype(np.float64) * step)
        if not coder.is_empty():  # a consistent stream is used up exactly
            raise FormatError("corrupt latents: entropy-coded stream not fully consumed")
        # ANS decodes garbage from a damaged stream without noticing; a checksum of the symbols does notice.
        if _symbols_crc([np.rint(v.numpy() / step).astype(np.int64) for v in vals]) != check:
            raise FormatError("corrupt latents: checksum mismatch")
        self.latent_step = step  # values are multiples of it, so render's re-rounding keeps them
        with torch.no_grad():
            for p, v in zip(self.latents, vals):
                p.copy_(v.float())


def _linears(seq: torch.nn.Sequential) -> list[torch.nn.Linear]:
    return [m for m in seq if isinstance(m, torch.nn.Linear)]


def quality_setting(quality: float) -> float:
    """encode's knob -> latent step. Quality 1 codes the latents as trained; lower quality coarsens the step up to
    2**QUALITY_STEP_RANGE. (A rounding dead zone growing at step 1 was tried instead: the file size is not monotone
    in it, because the context model's means sit where training put the latents, so the bisection cannot use it.)"""
    q = float(np.clip(quality, 0.0, 1.0))
    return round(STEP_FRAC * 2.0 ** (QUALITY_STEP_RANGE * (1.0 - q))) / STEP_FRAC


def _estimate_bits(params, syms) -> float:
    total = 0.0
    for (mean, scale), s in zip(params, syms):
        x = torch.from_numpy(s.reshape(-1).astype(np.float64))
        total += float(laplace_rate_bits(x, torch.from_numpy(scale), torch.from_numpy(mean)))
    return total


def _symbols_crc(syms: list[np.ndarray]) -> int:
    crc = 0
    for s in syms:
        crc = zlib.crc32(np.ascontiguousarray(s, dtype="<i4").tobytes(), crc)
    return crc


def _zigzag(v: int) -> int:
    return (v << 1) if v >= 0 else ((-v << 1) - 1)


def _unzigzag(u: int) -> int:
    return (u >> 1) if not (u & 1) else -((u + 1) >> 1)


def _varint(u: int) -> bytes:
    out = bytearray()
    while True:
        b = u & 0x7F
        u >>= 7
        out.append(b | (0x80 if u else 0))
        if not u:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(data) or shift > 35:
            raise FormatError("malformed varint in latents section")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _ans_bytes(coder) -> bytes:
    b = coder.get_compressed().astype("<u4", copy=False).tobytes()
    k = 0
    while k < 3 and k < len(b) and b[len(b) - 1 - k] == 0:
        k += 1
    return b[: len(b) - k]
