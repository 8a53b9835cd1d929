"""2D Gaussian image (``--model gaussian``): GaussianImage's representation (ECCV 2024), fitted fast on a CPU.

An image is ``I(p) = sum_i c_i exp(-d^T Sigma_i^-1 d / 2)``, ``d = p - mu_i`` (accumulated summation, no opacity,
no sorting), with N Gaussians of position ``mu`` (pixels), Cholesky factor ``L`` (``Sigma = L L^T``) and colour
``c`` in the signal's own channels (gray, RGB, RGBA, 8 or 16 bit: colours live in the normalised [0, 1] space).
Rendering is ``inrcodec.kernels.rasterize_gaussians`` (compiled CPU kernel, torch fallback); any output grid or
crop is a rescaled/translated set of Gaussians, and downscaled renders are low-pass filtered analytically
(Gaussian * Gaussian is a Gaussian) instead of aliasing.

Fitting, in the one training loop of ``inrcodec.fit`` (hooks below), built for a 2-core CPU where each full-image
render+gradient costs tens of milliseconds, so every step has to count:

1. **Content-adaptive placement** (``init_from_signal``): Gaussians are placed with a density that follows the
   local contrast (standard deviation in a small window plus a floor, to a power > 1 so edges and texture get
   most of them), by stratified inverse-CDF sampling along a Hilbert curve (blue-noise-like spacing, no clumps);
   each one is sized to the local spacing and stretched along the local edge direction (structure tensor).
2. **Least-squares colours**: with the geometry fixed the image is linear in the colours, so the optimal colours
   solve the normal equations ``(W^T W) c = W^T y``; a few Jacobi-preconditioned conjugate-gradient iterations,
   each one forward + one backward pass of the rasteriser, give them before the first Adam step and again after
   the geometry is quantised. Each solve gets a share of the passes the schedule affords (``_cg_iters``): on a
   Kodak image the fixed counts bind, on a large photo within 60 s/MP they would otherwise take half the fit.
3. **Adam on everything** with per-attribute learning rates (sizes need large steps: they are what the
   placement gets least right).
4. **Rate control and quantisation-aware fine-tuning** (``on_progress``). With a byte target, the count is set
   right after placement from the measured coded size of the placed set; at ``QAT_START`` the real coded size
   is measured again, the least energetic Gaussians are dropped if it is over (or the steps refined if under),
   and the positions are rounded onto their coded lattice and frozen, so that the rest of the schedule adapts
   shapes and colours to the coded positions. At the end the shapes are rounded, the colours solved again on
   the coded geometry (CG) and rounded: the model then renders exactly what the decoder will.
   (Straight-through rounding of all attributes was tried instead and lost ~0.1 dB against this.)

The bitstream is ``gaussian_codec`` (lattice-gap positions, log-covariance shapes, decorrelated colours, all
entropy-coded with constriction, in importance layers that decode progressively: ``decompress(data,
fraction=0.5)``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FormatError, InputError
from ..kernels import rasterize_gaussians
from ..limits import check_raster_work
from . import register
from . import gaussian_codec as gc
from .base import Representation

# -- fitting constants (tuned on Kodak images; see benchmarks/bench_gaussian.py and the module docstring) -------
BITS_PER_GAUSSIAN = 20.0  # rate-control prior (optimistic: init_from_signal measures and lowers the count)
BITS_GROWTH = 1.1  # coded size per Gaussian after training / right after placement
PIXELS_PER_GAUSSIAN = 40.0  # density with no byte target
MIN_GAUSSIANS = 8
DENSITY_SIGMA = 1.5  # px, window of the local standard deviation that drives placement
DENSITY_FLOOR = 0.02  # added to the local std: flat regions still get Gaussians
DENSITY_GAMMA = 1.6
UNIFORM_SHARE = 0.02  # of the Gaussians placed regardless of content
SIZE_FACTOR = 0.9  # initial std = SIZE_FACTOR * local spacing
ANISOTROPY = 1.0  # initial aspect ratio (1 + ANISOTROPY * coherence)^2 along edges
CG_INIT_ITERS = 20
CG_FINAL_ITERS = 12
# The colour solves are fixed costs of a fit: each CG iteration is one raster forward + backward, as much as an Adam
# step. On a Kodak image (800 steps) they are a few percent of the fit; on a large photo within 60 s/MP the fit
# affords only ~100-200 passes and 2 x 20 + 12 iterations would take half of them (benchmarks/README.md "Large
# photos"). So each solve gets at most this share of the passes the schedule affords (max_steps, or the time
# budget over the measured seconds of one pass), with at least CG_MIN_ITERS: on a Kodak image the caps above bind.
PROBE_PASS_SHARE = 0.025  # colours of the first placement: only its coded size per Gaussian and PSNR are used
# The initial solve keeps most of its iterations: with 6 instead of 20 (0.3 MP crop of wikimedia_044, 0.4 bpp,
# 18 CPU-s) the fit's own PSNR was as good but the last trim of the rate search cost 0.33 dB instead of 0.01-0.2
# (the energy ranking that picks what to drop assumes colours near their optimum): 31.97 against 32.40 dB.
INIT_PASS_SHARE = 0.15
FINAL_PASS_SHARE = 0.015  # warm-started from the trained colours: a few iterations suffice
CG_MIN_ITERS = 2
LR_MEANS, LR_CHOL, LR_COLORS = 30.0, 40.0, 1.0  # multiples of the base lr (px/step for means and factors)
QAT_START = 0.75
# Default steps (codes: step = 2**(code/8)) at the reference size/colour of gaussian_codec's adaptive precision.
DEFAULT_CODES = (0, 2, -24, -44)  # position lattice 1 px + 2 refinement bits, log-covariance, colour
PSNR_REF = 35.0  # fit PSNR (dB) at which DEFAULT_CODES are the right precision
INIT_GAIN = 4.0  # dB the schedule typically adds to the PSNR of the initial placement
SHIFT_RANGE = (-40, 24)  # steps from 5 octaves finer to 3 octaves coarser than DEFAULT_CODES
REFINE_LIMIT = 8  # when under budget, refine steps by at most 1 octave beyond the PSNR-matched precision
KEEP_MIN = 0.5  # encode(quality=0) keeps the most energetic half of the Gaussians
RATE_MARGIN = 1.02  # aim a little over the byte target: the codec trims the weakest Gaussians to land it
LAYER_MIN = 256  # fewest Gaussians in the first importance layer


def layers_for(n: int, layers: int) -> int:
    """Importance layers actually used for n Gaussians. Each layer costs ~20 bytes of blob headers, so small sets
    get fewer. (On Kodak sets of 6000, 1-6 layers code within 0.5 % of each other: the positions' extra cost in
    sparser layers is paid back by more homogeneous attribute statistics within each layer.)"""
    return int(max(1, min(layers, 1 + math.floor(math.log2(max(n, 1) / LAYER_MIN)))))


def base_steps_for(channels: int) -> gc.Steps:
    pos, refine, shape, color = DEFAULT_CODES
    return gc.Steps(pos, refine, (shape,) * 3, (color,) * channels)


def precision_shift(psnr: float) -> int:
    """Step shift (1/8 octaves) that keeps the quantisation error in proportion to the fit's error: steps scale
    with 10**(-PSNR/20), DEFAULT_CODES being right at PSNR_REF."""
    if not math.isfinite(psnr):
        return SHIFT_RANGE[0]
    return int(np.clip(round(-(psnr - PSNR_REF) * gc.STEP_DENOM * math.log2(10.0) / 20.0), *SHIFT_RANGE))


@dataclass
class GaussianConfig:
    n_gaussians: int = 4096
    layers: int = 3

    def validate(self) -> None:
        for name, cap in (("n_gaussians", gc.MAX_GAUSSIANS), ("layers", gc.MAX_LAYERS)):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= cap):
                raise FormatError(f"config field {name}={v!r} out of range")


# ---------------------------------------------------------------------------------------------------------------
# rendering helpers
# ---------------------------------------------------------------------------------------------------------------
def transform_gaussians(means: torch.Tensor, chol: torch.Tensor, colors: torch.Tensor, native: tuple[int, int],
                        shape: tuple[int, int], offset: tuple[int, int] = (0, 0)) -> tuple[torch.Tensor, ...]:
    """Gaussians fitted on the ``native`` (H, W) grid, expressed on a grid of ``shape`` (H', W') spanning the same
    extent (pixel centres at ((x + 0.5) W / W', ...)), shifted so that output pixel ``offset`` = (y0, x0) is the
    origin. Where the new grid is coarser, each Gaussian is convolved with the footprint of an output pixel
    (variance ((W / W')^2 - 1) / 12 native px^2 per axis, colour scaled to keep its integral): a low-pass filter
    that the accumulated sum can apply exactly, instead of point-sampling small Gaussians."""
    sy, sx = shape[0] / native[0], shape[1] / native[1]
    if sx < 1.0 or sy < 1.0:
        vx, vy = max(1.0 / sx**2 - 1.0, 0.0) / 12.0, max(1.0 / sy**2 - 1.0, 0.0) / 12.0
        c = chol.to(torch.float64)
        l11, l21, l22 = c.unbind(1)
        sxx, sxy, syy = l11 * l11 + vx, l11 * l21, l21 * l21 + l22 * l22 + vy
        det0 = (l11 * l22) ** 2
        det1 = sxx * syy - sxy * sxy
        n11 = torch.sqrt(sxx)
        n21 = sxy / n11
        n22 = torch.sqrt((det1 / sxx).clamp_min(0))
        chol = torch.stack([n11, n21, n22], 1).to(chol.dtype)
        colors = colors * torch.sqrt(det0 / det1).to(colors.dtype)[:, None]
    scale = torch.tensor([sx, sy], dtype=means.dtype, device=means.device)
    means = means * scale - torch.tensor([offset[1], offset[0]], dtype=means.dtype, device=means.device)
    # Sigma' = S Sigma S with S = diag(sx, sy): L' = S L is still lower triangular.
    chol = chol * torch.tensor([sx, sy, sy], dtype=chol.dtype, device=chol.device)
    return means, chol, colors


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, C, H, W) with replicate borders."""
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=img.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = img.shape[1]
    img = F.pad(img, (r, r, 0, 0), mode="replicate") if img.shape[-1] > r else F.pad(img, (r, r, 0, 0), mode="constant")
    img = F.conv2d(img, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    img = F.pad(img, (0, 0, r, r), mode="replicate") if img.shape[-2] > r else F.pad(img, (0, 0, r, r), mode="constant")
    return F.conv2d(img, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _hilbert_index(x: np.ndarray, y: np.ndarray, order: int) -> np.ndarray:
    """Position of (x, y) along a Hilbert curve over a 2**order square (vectorised xy2d)."""
    x, y = x.astype(np.int64).copy(), y.astype(np.int64).copy()
    d = np.zeros_like(x)
    s = 1 << (order - 1)
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        x = np.where(flip, s - 1 - x, x)
        y = np.where(flip, s - 1 - y, y)
        swap = ~ry
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s >>= 1
    return d


def place_gaussians(target: torch.Tensor, n: int, seed: int = 0, weights: torch.Tensor | None = None,
                    size_factor: float = SIZE_FACTOR) -> tuple[torch.Tensor, torch.Tensor]:
    """Content-adaptive placement: n positions (N, 2) with density ~ (local std + floor) ** gamma (or ``weights``,
    an (H, W) density), and isotropic Cholesky factors (N, 3) sized to the local spacing."""
    h, w, c = target.shape
    if weights is None:
        x = target.permute(2, 0, 1)[None].to(torch.float32)
        mu = _blur(x, DENSITY_SIGMA)
        var = (_blur(x * x, DENSITY_SIGMA) - mu * mu).clamp_min(0).sum(1)[0]
        dens = (var.sqrt() + DENSITY_FLOOR) ** DENSITY_GAMMA
        dens = dens / dens.mean() + UNIFORM_SHARE / (1.0 - UNIFORM_SHARE)  # a share spread evenly: no empty areas
    else:
        dens = weights.to(torch.float32).clamp_min(0) + 1e-12
    dens_np = dens.numpy().astype(np.float64)
    order = max(1, math.ceil(math.log2(max(h, w, 2))))
    yy, xx = np.mgrid[0:h, 0:w]
    path = np.argsort(_hilbert_index(xx.ravel(), yy.ravel(), order), kind="stable")
    cdf = np.cumsum(dens_np.ravel()[path])
    cdf /= cdf[-1]
    rng = np.random.default_rng(seed)
    u = (np.arange(n) + rng.random(n)) / n  # stratified: one sample per 1/n of the mass
    pix = path[np.searchsorted(cdf, u).clip(0, h * w - 1)]
    px = (pix % w) + rng.random(n)
    py = (pix // w) + rng.random(n)
    lam = n * dens / dens.sum()  # Gaussians per pixel
    lam = _blur(lam[None, None], 2.0)[0, 0].numpy().astype(np.float64)
    std = size_factor / np.sqrt(np.maximum(lam.ravel()[pix], 1e-6))
    std = np.clip(std, 0.3, max(h, w) / 2.0)
    means = torch.tensor(np.stack([px, py], 1), dtype=torch.float32)
    if ANISOTROPY > 0 and weights is None:
        chol = _oriented(target, pix, std)
    else:
        chol = torch.tensor(np.stack([std, np.zeros(n), std], 1), dtype=torch.float32)
    return means, chol


def _oriented(target: torch.Tensor, pix: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """Cholesky factors of Gaussians stretched along the local edge direction (structure tensor), area kept."""
    x = target.permute(2, 0, 1)[None].to(torch.float32)
    gx = x[..., :, 1:] - x[..., :, :-1]
    gy = x[..., 1:, :] - x[..., :-1, :]
    gx = F.pad(gx, (0, 1, 0, 0))
    gy = F.pad(gy, (0, 0, 0, 1))
    j = torch.cat([(gx * gx).sum(1, keepdim=True), (gx * gy).sum(1, keepdim=True), (gy * gy).sum(1, keepdim=True)], 1)
    j = _blur(j, 2.0)[0].reshape(3, -1)[:, torch.from_numpy(pix)].numpy().astype(np.float64)
    a, b, c = j
    tr = a + c
    disc = np.sqrt(((a - c) / 2) ** 2 + b * b)
    coherence = np.where(tr > 1e-12, 2 * disc / np.maximum(tr, 1e-12), 0.0)
    theta = 0.5 * np.arctan2(2 * b, a - c)  # gradient direction
    r = 1.0 + ANISOTROPY * coherence
    s_across, s_along = std / r, std * r
    ct, st = np.cos(theta), np.sin(theta)
    # Sigma = R diag(across^2, along^2) R^T, R's first column = gradient direction
    sxx = ct * ct * s_across**2 + st * st * s_along**2
    sxy = ct * st * (s_across**2 - s_along**2)
    syy = st * st * s_across**2 + ct * ct * s_along**2
    l11 = np.sqrt(sxx)
    l21 = sxy / l11
    l22 = np.sqrt(np.maximum(syy - l21 * l21, 1e-12))
    return torch.tensor(np.stack([l11, l21, l22], 1), dtype=torch.float32)


def solve_colors(means: torch.Tensor, chol: torch.Tensor, target: torch.Tensor, iters: int | Callable[[float], int],
                 x0: torch.Tensor | None = None) -> torch.Tensor:
    """Least-squares colours for fixed geometry: Jacobi-preconditioned CG on (W^T W) c = W^T y, one rasteriser
    forward + backward per iteration (W c is a render; W^T g is the colour gradient of <render, g>).
    ``iters`` may be a function of the measured seconds of one such pass (the first, W^T y), so that a solve can
    be sized to a time budget."""
    h, w, nc = target.shape
    n = means.shape[0]
    means, chol = means.detach().contiguous(), chol.detach().contiguous()
    if n == 0:
        return torch.zeros(0, nc)

    def normal(c: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            cc = c.detach().requires_grad_(True)
            img = rasterize_gaussians(means, chol, cc, h, w)
            (g,) = torch.autograd.grad(img, cc, img.detach())
        return g

    def adjoint(y: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            cc = torch.zeros(n, nc, requires_grad=True)
            img = rasterize_gaussians(means, chol, cc, h, w)
            (g,) = torch.autograd.grad(img, cc, y)
        return g

    # diag(W^T W)_i = sum_p exp(-q_i(p)) ~ pi sqrt(det Sigma_i) (a Gaussian of half the variance), floored for
    # sub-pixel Gaussians whose footprint may miss every pixel centre.
    diag = (math.pi * (chol[:, 0] * chol[:, 2]).abs()).clamp_min(0.05)[:, None]
    t_pass = time.perf_counter()
    b = adjoint(target.to(torch.float32))
    if callable(iters):
        iters = int(iters(time.perf_counter() - t_pass))
    x = torch.zeros(n, nc) if x0 is None else x0.detach().clone().to(torch.float32)
    r = b - normal(x) if x0 is not None else b.clone()
    z = r / diag
    p = z.clone()
    rz = (r * z).sum(0)
    for _ in range(iters):
        ap = normal(p)
        alpha = rz / (p * ap).sum(0).clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        z = r / diag
        rz_new = (r * z).sum(0)
        p = z + (rz_new / rz.clamp_min(1e-30)) * p
        rz = rz_new
    return x


# ---------------------------------------------------------------------------------------------------------------
# the representation
# ---------------------------------------------------------------------------------------------------------------
def raster_work(logcov: np.ndarray, h: int, w: int) -> float:
    """Upper bound of the (Gaussian, pixel) pairs the rasteriser visits: each Gaussian's pixel bbox (3 sqrt(Sxx)
    by 3 sqrt(Syy) each side, as the kernels compute it, plus a pixel), clipped to the image. For log-covariance
    (v0, v1, v2), r = |(v1, v2)|: Sxx, Syy = exp(v0) (cosh r +- v1 sinh(r) / r). (A box of the largest sigma in
    both axes, used before, over-counted elongated Gaussians 3x on real files.)"""
    v = np.clip(np.asarray(logcov, np.float64), -gc.SHAPE_CLAMP, gc.SHAPE_CLAMP)
    r = np.hypot(v[:, 1], v[:, 2])
    shr = np.where(r < 1e-4, 1.0 + r * r / 6.0, np.sinh(r) / np.maximum(r, 1e-4))
    e = np.exp(v[:, 0])
    sxx = e * (np.cosh(r) + v[:, 1] * shr)
    syy = e * (np.cosh(r) - v[:, 1] * shr)
    side_x = 6.0 * np.sqrt(np.maximum(sxx, 0.0)) + 2.0
    side_y = 6.0 * np.sqrt(np.maximum(syy, 0.0)) + 2.0
    return float(np.sum(np.minimum(side_x, w) * np.minimum(side_y, h)))


@register
class GaussianImage(Representation):
    name = "gaussian"
    Config = GaussianConfig
    supported_ndims = (2,)
    resamplable = True
    progressive = True  # decode(..., fraction=) renders the most important part of the Gaussians
    default_lr = 4e-2
    default_steps = 800
    default_quality = 1.0  # the grid chosen for the target and trained on

    def __init__(self, config: GaussianConfig, desc: dict[str, Any]):
        super().__init__(config, desc)
        if len(self.coord_shape) != 2:
            raise InputError("the gaussian model represents images (2 coordinate axes)")
        n = config.n_gaussians
        self.means = torch.nn.Parameter(torch.zeros(n, 2))
        self.chol = torch.nn.Parameter(torch.ones(n, 3) * torch.tensor([1.0, 0.0, 1.0]))
        self.colors = torch.nn.Parameter(torch.zeros(n, self.channels))
        self.register_buffer("active", torch.ones(n, dtype=torch.bool))
        self._target: torch.Tensor | None = None
        self.base_steps = base_steps_for(self.channels)
        self._steps: gc.Steps | None = None  # quantisation grid, chosen at QAT_START
        self._steps_chosen = False
        self._final: gc.QuantizedGaussians | None = None  # what encode(1.0) writes
        self._pass_seconds = 0.0  # of one raster forward + backward, measured by the first colour solve

    # -- rate-control prior ---------------------------------------------------------------------------------
    @classmethod
    def config_for(cls, desc, target_bits, **overrides):
        pixels = int(np.prod(desc["shape"][:-1]))
        if target_bits is None:
            n = pixels / PIXELS_PER_GAUSSIAN
        else:
            n = target_bits / BITS_PER_GAUSSIAN
        n = int(np.clip(round(n), MIN_GAUSSIANS, max(MIN_GAUSSIANS, pixels)))
        cfg = GaussianConfig(n_gaussians=int(overrides.pop("n_gaussians", n)), layers=int(overrides.pop("layers", 3)))
        if overrides:
            raise InputError(f"unknown gaussian config options: {sorted(overrides)}")
        cfg.validate()
        return cfg

    # -- views of the parameters -----------------------------------------------------------------------------
    @property
    def hw(self) -> tuple[int, int]:
        return int(self.coord_shape[0]), int(self.coord_shape[1])

    def active_params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if bool(self.active.all()):
            return self.means, self.chol, self.colors
        idx = torch.nonzero(self.active).flatten()
        return self.means[idx], self.chol[idx], self.colors[idx]

    # -- fitting ---------------------------------------------------------------------------------------------
    def init_from_signal(self, target: torch.Tensor) -> None:
        """Place and size the Gaussians from the image, solve their colours. With a byte target, the count is
        set here from the *measured* coded size of this placement (its size per Gaussian grows by about
        BITS_GROWTH during training), so that rate control at QAT_START only trims. The colour solves are sized
        to the schedule (``_cg_iters``)."""
        self._target = target.to(torch.float32)
        n = self.config.n_gaussians
        # the same draw as torch's global generator just seeded with fit_seed (codec.compress seeds it so), from a
        # generator of this fit's own: concurrent fits (slow's search) must not share one
        gen = None if self.fit_seed is None else torch.Generator().manual_seed(self.fit_seed)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen).item())
        means, chol = place_gaussians(self._target, n, seed=seed)
        probe = self.target_bits is not None and n > MIN_GAUSSIANS  # this placement only measures the rate
        first = self._cg_iters(PROBE_PASS_SHARE if probe else INIT_PASS_SHARE, CG_INIT_ITERS)
        done = []  # CG iterations the first solve ran

        def first_iters(pass_seconds: float) -> int:
            done.append(first(pass_seconds))
            return done[0]
        colors = solve_colors(means, chol, self._target, first_iters)
        with torch.no_grad():
            self.means.copy_(means)
            self.chol.copy_(chol)
            self.colors.copy_(colors)
            self.active.fill_(True)
        if probe:
            h, w = self.hw
            with torch.no_grad():
                err = torch.mean((rasterize_gaussians(means, chol, colors, h, w) - self._target) ** 2).item()
            steps = self.base_steps.shifted(precision_shift(-10 * math.log10(max(err, 1e-12)) + INIT_GAIN))
            per = BITS_GROWTH * self._coded_bits(steps) / n
            fit_n = int(np.clip(RATE_MARGIN * self.target_bits / per, MIN_GAUSSIANS, n))
            init = self._cg_iters(INIT_PASS_SHARE, CG_INIT_ITERS)
            if fit_n < 0.97 * n:
                means, chol = place_gaussians(self._target, fit_n, seed=seed)
                colors = solve_colors(means, chol, self._target, init)
            else:  # the probe's placement stays: only the iterations it was short of, warm-started
                fit_n = n
                if init(self._pass_seconds) > done[0]:
                    colors = solve_colors(means, chol, self._target, lambda t: init(t) - done[0], x0=colors)
            with torch.no_grad():
                self.means[:fit_n] = means
                self.chol[:fit_n] = chol
                self.colors[:fit_n] = colors
                self.colors[fit_n:] = 0.0
                self.active[fit_n:] = False

    def _cg_iters(self, share: float, cap: int) -> Callable[[float], int]:
        """CG iterations for a colour solve: ``share`` of the raster passes the schedule affords (its step cap,
        or the time budget over the measured seconds of one pass), between CG_MIN_ITERS and ``cap``."""
        def iters(pass_seconds: float) -> int:
            self._pass_seconds = pass_seconds
            passes = float(self.max_steps or GaussianImage.default_steps)
            if self.time_budget is not None:
                passes = min(passes, self.time_budget / max(pass_seconds, 1e-6))
            return int(np.clip(round(share * passes), CG_MIN_ITERS, cap))
        return iters

    def param_groups(self, lr):
        return [{"params": [self.means], "lr": lr * LR_MEANS}, {"params": [self.chol], "lr": lr * LR_CHOL},
                {"params": [self.colors], "lr": lr * LR_COLORS}]

    def on_progress(self, frac: float) -> None:
        if frac >= 1.0:
            if self._final is None and self._target is not None:
                self.finalize()
            return
        if not self._steps_chosen and frac >= QAT_START and self._target is not None:
            self.choose_steps()
            self._steps_chosen = True

    def training_batch(self, target, generator):
        h, w = self.hw
        return rasterize_gaussians(*self.active_params(), h, w), target

    def after_step(self, step: int, target: torch.Tensor) -> None:
        h, w = self.hw
        with torch.no_grad():
            # positions stay on the coded lattice's extent
            self.means[:, 0].clamp_(0.0, float(w))
            self.means[:, 1].clamp_(0.0, float(h))

    # -- quantisation ----------------------------------------------------------------------------------------
    def _quantize_active(self, steps: gc.Steps, idx: torch.Tensor | None = None) -> gc.QuantizedGaussians:
        m, c, col = self.active_params()
        if idx is not None:
            m, c, col = m[idx], c[idx], col[idx]
        h, w = self.hw
        with torch.no_grad():
            v = gc.chol_to_logcov(c.detach().to(torch.float64)).numpy()
        return gc.quantize(m.detach().numpy(), v, col.detach().numpy(), steps, h, w)

    def _section(self, q: gc.QuantizedGaussians, steps: gc.Steps) -> bytes:
        h, w = self.hw
        means, v, colors = gc.dequantize(q, steps, h, w)
        chol = gc.logcov_to_chol(torch.from_numpy(v)).numpy()
        e = gc.energy(chol, colors)
        rank = np.empty(len(e), dtype=np.int64)
        rank[np.argsort(-e, kind="stable")] = np.arange(len(e))
        sizes = gc.layer_sizes(len(e), layers_for(len(e), self.config.layers))
        layer_of = np.searchsorted(np.cumsum(sizes), rank, side="right")
        return gc.encode_section(q, layer_of, len(sizes), steps)

    def _coded_bits(self, steps: gc.Steps, keep: int | None = None) -> float:
        idx = None
        if keep is not None:
            _, c, col = self.active_params()
            order = np.argsort(-gc.energy(c, col), kind="stable")
            idx = torch.from_numpy(np.sort(order[:keep]))
        return 8.0 * len(self._section(self._quantize_active(steps, idx), steps))

    def choose_steps(self) -> None:
        """Rate control on the real coded size. The precision follows the current fit error
        (``precision_shift``); with a byte target, a set over budget loses its least energetic Gaussians until
        it fits (a bit spent on precision is worth about as much as one spent on Gaussians at that precision),
        one under budget gets finer steps (at most REFINE_LIMIT more), and only if a handful of Gaussians does
        not fit are the steps coarsened."""
        h, w = self.hw
        with torch.no_grad():
            err = torch.mean((rasterize_gaussians(*self.active_params(), h, w) - self._target) ** 2).item()
        shift0 = precision_shift(-10 * math.log10(max(err, 1e-12)))
        if self.target_bits is None:
            self._steps = self.base_steps.shifted(shift0)
            return
        goal = RATE_MARGIN * self.target_bits
        fits = lambda shift: self._coded_bits(self.base_steps.shifted(shift)) <= goal  # noqa: E731
        if fits(shift0):
            a, b = max(shift0 - REFINE_LIMIT, SHIFT_RANGE[0]), shift0  # b fits; smallest shift that fits
            if fits(a):
                b = a
            while b - a > 1:
                mid = (a + b) // 2
                a, b = (a, mid) if fits(mid) else (mid, b)
            self._steps = self.base_steps.shifted(b)
            return
        n = int(self.active.sum())
        steps = self.base_steps.shifted(shift0)
        for shift in range(shift0, SHIFT_RANGE[1] + 1, 4):
            steps = self.base_steps.shifted(shift)
            if self._coded_bits(steps, keep=min(n, MIN_GAUSSIANS)) <= goal:
                break
        self._steps = steps
        self.prune(max(1, self._largest_count_fitting(steps, n, goal)))

    def _largest_count_fitting(self, steps: gc.Steps, n: int, goal: float) -> int:
        """Largest count of the most energetic Gaussians whose coded size fits ``goal`` bits, to 0.5 % of n or of
        the goal. The size is nearly proportional to the count, so secant steps (every third a bisection, as a
        safeguard) need ~3 encodes where bisection needed ~8; each encode costs ~0.45 CPU s at 25 000 Gaussians."""
        lo, hi = 0, n
        b_lo, b_hi = 0.0, self._coded_bits(steps, keep=n)
        if b_hi <= goal:
            return n
        for i in range(64):
            if hi - lo <= max(1, n // 200):
                break
            mid = (lo + hi) // 2
            if i % 3 != 2 and b_hi > b_lo:
                mid = lo + int((goal * 0.9975 - b_lo) / (b_hi - b_lo) * (hi - lo))
            mid = min(max(mid, lo + 1), hi - 1)
            b = self._coded_bits(steps, keep=mid)
            if b <= goal:
                lo, b_lo = mid, b
                if b >= 0.995 * goal:
                    break
            else:
                hi, b_hi = mid, b
        return lo

    @torch.no_grad()
    def prune(self, keep: int) -> None:
        idx = torch.nonzero(self.active).flatten()
        if keep >= idx.numel():
            return
        _, c, col = self.active_params()
        order = np.argsort(-gc.energy(c, col), kind="stable")
        drop = idx[torch.from_numpy(order[keep:])]
        self.active[drop] = False
        self.colors[drop] = 0.0

    @torch.no_grad()
    def finalize(self) -> None:
        """Round the geometry onto the grid, solve the colours on it, round them: the model now renders exactly
        what the decoder of ``encode(1.0)`` will. (Geometry steps depend on the rounded colours; the few
        Gaussians whose step changes with the re-solved colours are rounded again from their float values.)"""
        if self._steps is None:
            self.choose_steps()
        h, w = self.hw
        st = self._steps
        m0, c0, col0 = (t.detach() for t in self.active_params())
        v_float = gc.chol_to_logcov(c0.to(torch.float64)).numpy()
        q = gc.quantize(m0.numpy(), v_float, col0.numpy(), st, h, w)
        means, v, _ = gc.dequantize(q, st, h, w)
        m = torch.from_numpy(means).to(torch.float32)
        c = gc.logcov_to_chol(torch.from_numpy(v)).to(torch.float32)
        colors = solve_colors(m, c, self._target, self._cg_iters(FINAL_PASS_SHARE, CG_FINAL_ITERS), x0=col0)
        q = gc.quantize(m0.numpy(), v_float, colors.numpy(), st, h, w)
        self._set_from_quantized(q, st)
        self._final = q

    def _set_from_quantized(self, q: gc.QuantizedGaussians, steps: gc.Steps) -> None:
        h, w = self.hw
        means, v, colors = gc.dequantize(q, steps, h, w)
        idx = torch.nonzero(self.active).flatten()
        with torch.no_grad():
            self.means[idx] = torch.from_numpy(means).to(torch.float32)
            self.chol[idx] = gc.logcov_to_chol(torch.from_numpy(v)).to(torch.float32)
            self.colors[idx] = torch.from_numpy(colors).to(torch.float32)

    # -- rendering -------------------------------------------------------------------------------------------
    def render(self, shape=None, region=None):
        h, w = self.hw
        shape = tuple(int(s) for s in (shape or (h, w)))
        if len(shape) != 2 or min(shape) < 1:
            raise InputError(f"bad render size {shape}")
        if region is None:
            region = ((0, shape[0]), (0, shape[1]))
        (y0, y1), (x0, x1) = region
        means, chol, colors = self.active_params()
        means, chol, colors = transform_gaussians(means, chol, colors, (h, w), shape, (y0, x0))
        return rasterize_gaussians(means, chol, colors, y1 - y0, x1 - x0)

    # -- coding ----------------------------------------------------------------------------------------------
    def encode(self, quality: float) -> dict[str, bytes]:
        """quality 1: every Gaussian of the fit on its trained grid; lower: only the most energetic
        KEEP_MIN + (1 - KEEP_MIN) * quality of them (the codec's bisection trims a file a little over its byte
        target this way, which costs less than coarsening every step)."""
        if self._final is None:
            if self._target is None:
                raise RuntimeError("encode needs a fitted model")
            self.finalize()
        q = self._final
        n = len(q.index)
        keep = int(round(n * (KEEP_MIN + (1.0 - KEEP_MIN) * float(np.clip(quality, 0.0, 1.0)))))
        if 0 < keep < n:
            _, c, col = self.active_params()
            sel = np.sort(np.argsort(-gc.energy(c, col), kind="stable")[:keep])
            q = q.select(sel)
        return {"gaussians": self._section(q, self._steps)}

    @classmethod
    def decode(cls, config, desc, sections, fraction: float | None = None):
        if "gaussians" not in sections:
            raise FormatError("gaussian model: missing section 'gaussians'")
        h, w, nc = (int(s) for s in desc["shape"])
        blob = sections["gaussians"]
        max_layers = None
        keep = None
        if fraction is not None:
            if not 0.0 < fraction <= 1.0:
                raise InputError(f"fraction must be in (0, 1], got {fraction}")
            counts = gc.decode_section(blob, h, w, nc, max_layers=0)[3]
            keep = max(1, int(round(fraction * sum(counts))))
            max_layers = int(np.searchsorted(np.cumsum(counts), keep)) + 1
        q, _, steps, _ = gc.decode_section(blob, h, w, nc, max_layers=max_layers)
        means, v, colors = gc.dequantize(q, steps, h, w)
        check_raster_work(raster_work(v, h, w), h * w)
        chol = gc.logcov_to_chol(torch.from_numpy(v)).numpy()
        if keep is not None and keep < len(means):
            order = np.sort(np.argsort(-gc.energy(chol, colors), kind="stable")[:keep])
            means, chol, colors = means[order], chol[order], colors[order]
        if len(means) == 0:  # nothing decoded: one Gaussian of colour 0 renders the empty (black) image
            means, chol, colors = np.zeros((1, 2)), np.array([[1.0, 0.0, 1.0]]), np.zeros((1, nc))
        model = cls(GaussianConfig(n_gaussians=len(means), layers=config.layers), desc)
        with torch.no_grad():
            model.means.copy_(torch.from_numpy(means).to(torch.float32))
            model.chol.copy_(torch.from_numpy(chol).to(torch.float32))
            model.colors.copy_(torch.from_numpy(colors).to(torch.float32))
        return model.eval()

