"""Training recipe of the latent grid: how rounding is simulated over the schedule, the learning-rate shape, the
rate control. Encoder-side only (nothing here is stored in the file: every recipe decodes with the same decoder).

Phases on schedule progress ``frac`` (``fit.fit`` calls ``on_progress``):

* ``frac < ste_start``: a differentiable stand-in for rounding. ``rounding="noise"``: y + U(-1/2, 1/2).
  ``rounding="softround"`` (C3, Kim et al. 2023; Cool-chic 3): y~ = sr(sr(y, T) + n, T) with the soft round
  sr(x, T) = floor(x) + 1/2 + tanh((x - floor(x) - 1/2) / T) / (2 tanh(1 / (2T))), T annealed linearly from
  ``softround_t[0]`` to ``softround_t[1]`` and n Kumaraswamy noise on (-1/2, 1/2) whose shape parameter goes from
  ``noise_shape[0]`` (peaked) to ``noise_shape[1]`` (1 = uniform). Soft-to-hard: the decoder's rounding is
  approached gradually instead of switching from noise to rounding at once.
* ``frac >= ste_start``: hard rounding forward; backward through the soft round at the last temperature
  (``softround`` recipe) or identity (``noise`` recipe); the learning rate is multiplied by ``ste_lr_factor``
  (quantisation-aware fine-tune at a lowered rate, as C3 / Cool-chic end their training).

Rate control (``model.after_step``): dual ascent on log(lambda) towards the byte target; ``control_end`` freezes
lambda from that progress on, so the last phase fine-tunes at a fixed rate-distortion trade-off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Recipe:
    latent_lr_factor: float = 10.0  # latents' Adam lr = this x the fit's lr
    network_lr_factor: float = 1.0  # synthesis and context model: this x the fit's lr
    rounding: str = "noise"  # "noise" or "softround"
    ste_start: float = 0.9
    softround_t: tuple[float, float] = (0.3, 0.1)
    noise_shape: tuple[float, float] = (2.0, 1.0)  # Kumaraswamy a (1: uniform)
    ste_lr_factor: float = 1.0
    grad_clip: float | None = None  # global gradient-norm clip (None: off)
    control_start: float = 0.15  # lambda steering starts at this progress (earlier rates are transients)
    control_end: float = 1.0  # lambda steering stops at this progress
    control_shape: str = "late"  # gain over progress: "late" (~ frac**2), "flat" or "lr" (~ the cosine lr: act while
    control_gain: float = 15.0   # the latents can still move); log(lambda) change per unit error and progress
    lambda_prior: str = "jpeg"  # prior of lambda for a byte target: "bits" (from the bits per sample only) or
    lambda_prior_scale: float = 1.0  # "jpeg" (JPEG's RD slope on the image at that rate, images); x this factor
    goal_drift: float = 0.3  # steer towards goal * (1 + goal_drift * (1 - frac)): the rate keeps falling late
    init: str = "analysis"  # starting point: "analysis" (warmstart.py) or "zero" (zero latents, mid-grey output)
    init_alpha: float = 0.5  # level l gain s_0 * 2**(-alpha * l) (1: high-rate theory; see warmstart.py)
    init_chroma_levels: tuple[int, ...] = (3, 4)  # levels that carry the 2nd, 3rd colour component
    init_arm_steps: int = 40  # rate-only steps of the context model on the initial latents (lr 3e-2)
    init_budget_share: float = 1.0  # the initial latents' zeroth-order entropy = this x the latent budget


# The recipe before issue 13's recipe work (measured baseline of benchmarks/lg_recipe_curves.py).
BASELINE = dict(latent_lr_factor=10.0, network_lr_factor=1.0, rounding="noise", ste_start=0.9, ste_lr_factor=1.0,
                grad_clip=None, control_start=0.15, control_end=1.0, control_shape="late", control_gain=15.0,
                lambda_prior="bits", lambda_prior_scale=1.0, goal_drift=0.0, init="zero")

RECIPE = Recipe()  # the encoder's recipe (module-level so benchmarks can swap it)


def softround(x: torch.Tensor, t: float) -> torch.Tensor:
    """Soft rounding at temperature t (t -> 0: round; t large: identity); Agustsson & Theis 2020."""
    base = torch.floor(x)
    return base + 0.5 + 0.5 * torch.tanh((x - base - 0.5) / t) / math.tanh(0.5 / t)


def kumaraswamy_noise(shape, a: float, generator: torch.Generator) -> torch.Tensor:
    """Noise on (-1/2, 1/2) with mode 0 (Kumaraswamy(a, b) shifted; b chosen so the mode is 1/2; a = 1: uniform).
    Inverse-CDF sampling of a uniform draw."""
    u = torch.rand(shape, generator=generator)
    if a == 1.0:
        return u - 0.5
    b = (2.0**a * (a - 1.0) + 1.0) / a
    return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a) - 0.5


def _lerp(pair: tuple[float, float], t: float) -> float:
    return pair[0] + (pair[1] - pair[0]) * min(max(t, 0.0), 1.0)


def temperature(recipe: Recipe, frac: float) -> float:
    return _lerp(recipe.softround_t, frac / max(recipe.ste_start, 1e-9))


def training_latents(latents, frac: float, generator: torch.Generator, recipe: Recipe) -> list[torch.Tensor]:
    """Differentiable stand-ins for the rounded latents at schedule progress ``frac``."""
    if frac >= recipe.ste_start:
        if recipe.rounding == "softround":
            t = recipe.softround_t[1]
            out = []
            for y in latents:
                s = softround(y, t)
                out.append(s + (torch.round(y) - s).detach())  # value: round(y); gradient: d softround / dy
            return out
        return [y + (torch.round(y) - y).detach() for y in latents]
    if recipe.rounding == "softround":
        t = temperature(recipe, frac)
        a = _lerp(recipe.noise_shape, frac / max(recipe.ste_start, 1e-9))
        return [softround(softround(y, t) + kumaraswamy_noise(y.shape, a, generator), t) for y in latents]
    return [y + torch.rand(y.shape, generator=generator) - 0.5 for y in latents]


def control_gain(recipe: Recipe, frac: float) -> float:
    """Gain of the dual ascent on log(lambda) per unit of log rate error and of schedule progress."""
    if recipe.control_shape == "lr":
        return recipe.control_gain * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))
    if recipe.control_shape == "both":  # while the latents can still move (cosine lr) and firmly at the end
        return recipe.control_gain * (0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0))) + frac**2)
    if recipe.control_shape == "flat":  # as firm from control_start as at the end: for a start near the goal
        return recipe.control_gain
    return recipe.control_gain * frac**2


def lr_multiplier(recipe: Recipe, frac: float) -> float:
    return recipe.ste_lr_factor if frac >= recipe.ste_start else 1.0


JPEG_QUALITIES = tuple(range(2, 99, 3))


def jpeg_rd_slope(image: "np.ndarray", bpp: float) -> float | None:
    """-dMSE/dbpp of JPEG on ``image`` (H, W, 1|3 floats in [0, 1]) at ``bpp``: a cheap, content-aware estimate of
    the rate-distortion slope, i.e. of the lambda (loss = MSE + lambda * bits per pixel) whose optimum lands at that
    rate. A codec's RD slope at a given rate depends far more on the image (detail, noise) than on the codec; the
    bits-only prior was 20x off on a detailed crop (kodim07) and steering could not catch up. Fitted on log-log
    over the JPEG points within a factor 2 of the rate (a local power law is much less noisy than one finite
    difference between two quality steps). None when JPEG cannot be measured there."""
    import imagecodecs
    import numpy as np

    if image.ndim != 3 or image.shape[2] not in (1, 3) or min(image.shape[:2]) < 8 or not bpp > 0:
        return None
    x = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    if x.shape[2] == 1:
        x = x[..., 0]
    n = x.shape[0] * x.shape[1]
    rates, mses = [], []
    for q in JPEG_QUALITIES:
        blob = imagecodecs.jpeg8_encode(x, level=q, optimize=True)
        err = imagecodecs.jpeg8_decode(blob).astype(np.float64).reshape(x.shape) - x
        rates.append(8.0 * len(blob) / n)
        mses.append(max(float(np.mean(err**2)) / 255.0**2, 1e-12))
    r, d = np.log(np.array(rates)), np.log(np.array(mses))
    near = np.abs(r - math.log(bpp)) <= math.log(2.0)
    if near.sum() < 3:  # the rate is outside JPEG's range: use the 4 points nearest to it
        near = np.argsort(np.abs(r - math.log(bpp)))[:4]
    k, c = np.polyfit(r[near], d[near], 1)  # log mse = k log bpp + c
    if not k < 0:
        return None
    return float(-k * math.exp(c) * bpp ** (k - 1.0))  # -d(e^c bpp^k)/d bpp
