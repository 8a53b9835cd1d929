"""Analysis initialisation of a latent-grid model (issue 13: quality per step from a better starting point).

A latent grid normally starts from zero latents and a synthesis that outputs mid-grey, and spends its first
hundreds of steps learning what an analysis transform gives at once. ``analysis_init`` instead sets, before step 0:

* a colour decorrelation: the KLT (PCA) of the signal's channels, components sorted by variance (for RGB photos
  about luma, then two chroma axes); a level carries one component (a level has one channel), the first component
  most levels, the others one level each at reduced resolution (``CHROMA_LEVELS``: chroma is smooth, as JPEG's 4:2:0
  assumes);
* the latents: a closed-loop pyramid of each component, coarsest level first: each level is the least-squares fit
  (a few conjugate-gradient iterations through the model's own upsampling and its adjoint) of what the coarser
  levels, already rounded, left over, divided by that level's quantiser gain ``s_l = s_0 * 2**(-alpha * l)`` and
  rounded (high-rate theory: a coarse latent touches 4**l pixels for the same per-pixel noise, so it is worth a
  finer step, alpha = 1; the recipe uses 0.5: the gains are first-layer weights, and the weight coder's per-tensor
  step cannot hold a 64x range, benchmarks/README.md); ``s_0`` is bisected so that the latents' zeroth-order
  entropy fills the latent budget (target bits less the networks' prior), or follows lambda without a byte target;
* the synthesis: a near-linear map from the upsampled latents to the image: the first layer's units come in +/-
  pairs (relu(a) - relu(-a) = a), later hidden layers pass the pairs through, the output layer applies the inverse
  colour transform plus the channel means; the spare hidden units keep small random weights (the non-linear
  capacity training grows from); the residual convolutions stay the identity;
* the context model's output bias: the Laplace scale that fits the rounded latents (then a few rate-only steps of
  the context model on them, ``arm_steps``), so the rate term does not start by pulling every latent to zero.

So step 0 already decodes to a pyramid-coded image (JPEG-like at about the target rate), and training refines it.
Encoder-side only: nothing here is stored, every init decodes with the same decoder.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .context import LOG2_SCALE_MAX, LOG2_SCALE_MIN, rate_bits
from .synthesis import _linears
from .upsampling import upsample

# Which component each level carries when there are several channels: chroma (components 1, 2) on the levels of
# 1/8 and 1/16 resolution, everything else luma. Step 0 on the kodim03 crop at 0.28 bpp (alpha 1): 27.8 dB, against
# 25.2 dB with chroma on levels 2, 3, 20.0 dB on levels 1, 2, 27.5 dB on 4, 5.
CHROMA_LEVELS = (3, 4)
CG_ITERATIONS = 10
GAIN_MIN = 0.015  # level_gains()
MIN_FILL = 0.8  # analysis_init(): the least share of the latent budget the initial latents must fill
MIN_PIXELS = 1 << 16  # applicable(): the smallest image it was measured on (256 x 256)
MIN_LATENT_SHARE = 0.5  # applicable(): the least share of the byte target left to the latents
SPARE_SCALE = 0.05  # spare hidden units' weights: this x torch's default init


def level_plan(levels: int, components: int, chroma_levels: tuple[int, ...] = CHROMA_LEVELS) -> list[int]:
    """Component carried by each level (0: the first KLT component)."""
    plan = [0] * levels
    extra = [lv for lv in chroma_levels if lv < levels - 1][: max(components - 1, 0)]
    for j, lv in enumerate(extra):
        plan[lv] = j + 1
    return plan


def klt(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (C,), basis (C, C): rows are the principal axes by decreasing variance, sign fixed) of the channel
    vectors of x (*shape, C). float64."""
    flat = x.reshape(-1, x.shape[-1]).double()
    mean = flat.mean(0)
    cov = (flat - mean).T @ (flat - mean) / max(flat.shape[0] - 1, 1)
    _, vecs = torch.linalg.eigh(cov)
    basis = vecs.flip(1).T.contiguous()  # descending variance
    for row in basis:  # a deterministic sign: the largest entry positive
        if row[row.abs().argmax()] < 0:
            row.neg_()
    return mean, basis


def _level_ops(model, level: int):
    """(U, U^T) of one level: its upsampling onto the full grid and the adjoint (by autograd)."""
    shape = model.coord_shape
    taps = [model._level_taps(level, axis, n, 0, n) for axis, n in enumerate(shape)]
    native = tuple(model.shapes[level]) == tuple(shape)

    def up(z):
        return z if native else upsample(z, taps)

    def adj(r):
        if native:
            return r
        z = torch.zeros(model.shapes[level], requires_grad=True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(upsample(z, taps), z, grad_outputs=r)
        return g

    return up, adj


def least_squares_level(model, level: int, residual: torch.Tensor, iterations: int = CG_ITERATIONS) -> torch.Tensor:
    """argmin_z ||U z - residual||^2 by conjugate gradients on the normal equations (from the adjoint as start)."""
    up, adj = _level_ops(model, level)
    b = adj(residual)
    if tuple(model.shapes[level]) == tuple(model.coord_shape):
        return b
    z = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = float((r * r).sum())
    for _ in range(iterations):
        if rr <= 1e-20:
            break
        ap = adj(up(p))
        alpha = rr / max(float((p * ap).sum()), 1e-30)
        z += alpha * p
        r -= alpha * ap
        rr_new = float((r * r).sum())
        p = r + (rr_new / rr) * p
        rr = rr_new
    return z


def level_gains(s0: float, alpha: float, levels: int) -> list[float]:
    """s_l = s0 * 2**(-alpha * l), at least GAIN_MIN: the network's Adam steps (lr 1e-2) must stay small against
    the weights that hold these gains, or the first steps undo the init (a 32x48 image at 6 bpp bisected s0 to
    0.003: 16.7 dB after 200 steps against 27.0 dB from the zero init). Kodak images at 0.2-1 bpp have s_l >= 0.02
    (whole image, 1 bpp, level 6), where the floor does not bind."""
    return [max(s0 * 2.0 ** (-alpha * lv), GAIN_MIN) for lv in range(levels)]


def _entropy_bits(symbols: torch.Tensor) -> float:
    _, counts = torch.unique(symbols, return_counts=True)
    p = counts.double() / symbols.numel()
    return float(-(counts.double() * torch.log2(p)).sum())


def pyramid(model, comps: torch.Tensor, plan: list[int], gains: list[float],
            with_error: bool = False) -> tuple[list[torch.Tensor], float] | tuple[list[torch.Tensor], float, float]:
    """Closed-loop pyramid: rounded latents (in quantiser units) per level, coarsest first, and their zeroth-order
    entropy in bits; with ``with_error`` also the reconstruction's summed squared error (components the levels do
    not carry count whole). comps: (components, *shape)."""
    levels = len(plan)
    recon = torch.zeros_like(comps)
    out: list[torch.Tensor | None] = [None] * levels
    bits = 0.0
    for level in reversed(range(levels)):
        c = plan[level]
        if c >= comps.shape[0]:
            out[level] = torch.zeros(model.shapes[level])
            continue
        z = least_squares_level(model, level, comps[c] - recon[c])
        q = torch.round(z / gains[level])
        up, _ = _level_ops(model, level)
        recon[c] += up(q * gains[level])
        out[level] = q
        bits += _entropy_bits(q)
    if with_error:
        return out, bits, float(((comps - recon).double() ** 2).sum())
    return out, bits


def choose_gain(model, comps: torch.Tensor, plan: list[int], budget_bits: float | None, lmbda: float,
                alpha: float) -> float:
    """s_0: bisected (on log s_0) so the latents' zeroth-order entropy is about the latent budget; without a budget
    the high-rate optimum for lambda (D = s^2/12 per component sample, spread over C channels:
    s_0^2 = 6 C lambda / ln 2)."""
    s_lambda = math.sqrt(6.0 * max(model.channels, 1) * lmbda / math.log(2.0))
    if budget_bits is None or budget_bits <= 0:
        return s_lambda
    lo, hi = math.log(1e-3), math.log(4.0)
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        gains = level_gains(math.exp(mid), alpha, len(plan))
        _, bits = pyramid(model, comps, plan, gains)
        if bits > budget_bits:
            lo = mid
        else:
            hi = mid
    return math.exp(hi)


def rd_exponent(model, comps: torch.Tensor, plan: list[int], s0: float, alpha: float,
                spread: float = 2.0 ** 0.25) -> float | None:
    """-k of the analysis start's own local power law D = c R^k at gain s0: D the mean squared error per sample
    (the fit's MSE, the KLT being orthonormal), R the latents' zeroth-order entropy, from the pyramid at
    s0 / spread and s0 * spread (a central difference on log-log, as jpeg_rd_slope). Its RD slope there is
    -k D / R: the lambda (loss = MSE + lambda * bpp) at which this start is optimal among its own gains. The
    exponent is dimensionless (a scale of R, as the context model's coding below the zeroth-order entropy, does
    not change it) and describes how fast this image's distortion falls with rate. None when it cannot be
    measured (no rate or distortion change between the gains)."""
    pts = []
    for s in (s0 / spread, s0 * spread):
        _, bits, err = pyramid(model, comps, plan, level_gains(s, alpha, len(plan)), with_error=True)
        pts.append((bits, err))
    (r_hi, d_hi), (r_lo, d_lo) = pts  # the finer gain: more rate, less error
    if not (r_hi > r_lo > 0 and d_lo > d_hi > 0):
        return None
    k = (math.log(d_hi) - math.log(d_lo)) / (math.log(r_hi) - math.log(r_lo))
    return float(-k) if k < 0 else None


@torch.no_grad()
def linear_synthesis(model, basis: torch.Tensor, mean: torch.Tensor, plan: list[int], gains: list[float]) -> None:
    """Set the synthesis MLP to (about) x = mean + sum_l gains[l] * basis[plan[l]] * feature_l."""
    linears = _linears(model.synth)
    channels = mean.shape[0]
    comps = sorted(set(plan))
    if len(linears) == 1:  # no hidden layer: the map is linear already
        w = torch.zeros_like(linears[0].weight)
        for lv, c in enumerate(plan):
            w[:, lv] = gains[lv] * basis[c].float()
        linears[0].weight.copy_(w)
        linears[0].bias.copy_(mean.float())
        return
    hidden = linears[0].out_features
    comps = comps[: hidden // 2]  # +/- pairs that fit
    first, last = linears[0], linears[-1]
    for m in linears:
        m.weight.mul_(SPARE_SCALE)
        m.bias.mul_(SPARE_SCALE)
    pairs = 2 * len(comps)
    first.weight[:pairs].zero_()
    first.bias[:pairs].zero_()
    for j, c in enumerate(comps):
        for lv, cl in enumerate(plan):
            if cl == c:
                first.weight[2 * j, lv] = gains[lv]
                first.weight[2 * j + 1, lv] = -gains[lv]
    for m in linears[1:-1]:  # pass the pairs through: (u+, u-) -> (u+ - u-, u- - u+), relu keeps the split
        m.weight[:pairs].zero_()
        m.weight[:, :pairs].zero_()
        m.bias[:pairs].zero_()
        for j in range(len(comps)):
            m.weight[2 * j, 2 * j], m.weight[2 * j, 2 * j + 1] = 1.0, -1.0
            m.weight[2 * j + 1, 2 * j], m.weight[2 * j + 1, 2 * j + 1] = -1.0, 1.0
    last.weight[:, :pairs].zero_()
    for j, c in enumerate(comps):
        last.weight[:, 2 * j] = basis[c].float()
        last.weight[:, 2 * j + 1] = -basis[c].float()
    last.bias.copy_(mean.float()[:channels])


def fit_context_model(model, latents: list[torch.Tensor], steps: int, lr: float = 3e-2) -> None:
    """Initial context model for the given (rounded) latents: the output bias at the Laplace scale that fits them
    (mean |y|), then ``steps`` Adam steps of the context model alone on their rate (noisy, as training starts)."""
    arm_last = _linears(model.arm)[-1]
    mags = torch.cat([y.reshape(-1).abs() for y in latents])
    scale = max(float(mags.mean()), 2.0**LOG2_SCALE_MIN)
    with torch.no_grad():
        arm_last.bias[0] = 0.0
        arm_last.bias[1] = float(np.clip(math.log2(scale), LOG2_SCALE_MIN, LOG2_SCALE_MAX))
    if steps <= 0:
        return
    params = list(model.arm.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        noisy = [y + torch.rand(y.shape, generator=gen) - 0.5 for y in latents]
        loss = rate_bits(model.arm, noisy) / float(sum(y.numel() for y in latents))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def applicable(model) -> bool:
    """Whether the analysis init is worth using: photographs (2-D images, the only signals it was measured on; on
    1-D audio it was worse than the zero start) of at least MIN_PIXELS (it was measured on 256x256 crops and 768x512
    images; on a 64x96 smooth image at 1.5 bpp the fit from it reached 37.4 dB but at 1.27 bpp, outside the +-10 %
    of the byte target, where the zero start lands 1.49 bpp at 27.0 dB) whose byte target leaves the latents at
    least MIN_LATENT_SHARE of it after the networks' prior."""
    if model.config.ndim != 2 or model.desc.get("kind") != "image" or int(np.prod(model.coord_shape)) < MIN_PIXELS:
        return False
    if model.target_bits is None:
        return True
    return model.target_bits - model._weight_bits_prior() >= MIN_LATENT_SHARE * model.target_bits


def analysis_init(model, target: torch.Tensor, alpha: float = 0.5, arm_steps: int = 0,
                  chroma_levels: tuple[int, ...] = CHROMA_LEVELS, budget_share: float = 1.0) -> dict:
    """Set ``model``'s latents, synthesis and context-model bias from ``target`` (*shape, C) before step 0.
    Returns what it chose (for benchmarks' records)."""
    target = target.detach().float()
    mean, basis = klt(target)
    comps = ((target.reshape(-1, target.shape[-1]).double() - mean) @ basis.T).T.float()
    comps = comps.reshape(target.shape[-1], *model.coord_shape)
    linears = _linears(model.synth)
    carried = comps.shape[0] if len(linears) == 1 else min(comps.shape[0], linears[0].out_features // 2)
    plan = level_plan(len(model.shapes), carried, chroma_levels)  # only components the synthesis can pass
    budget = None
    if model.target_bits is not None:
        budget = budget_share * (model.target_bits - model._weight_bits_prior())
    s0 = choose_gain(model, comps, plan, budget, model.lmbda, alpha)
    gains = level_gains(s0, alpha, len(plan))
    latents, bits, err = pyramid(model, comps, plan, gains, with_error=True)
    if budget is not None and bits < MIN_FILL * budget:
        # even the finest gains allowed (GAIN_MIN) leave the budget unfilled: a very high rate for this image, where
        # training from this point did not climb back to the byte target (64x96 smooth image at 1.5 bpp: 1.27 bpp)
        # and the zero start lands it; keep the model as constructed
        return {"applied": False, "s0": s0, "entropy_bits": bits, "budget_bits": budget}
    with torch.no_grad():
        for p, q in zip(model.latents, latents):
            p.copy_(q)
    linear_synthesis(model, basis, mean, plan, gains)
    fit_context_model(model, latents, arm_steps)
    n = float(np.prod(model.coord_shape))
    return {"applied": True, "s0": s0, "alpha": alpha, "plan": plan, "entropy_bits": bits, "budget_bits": budget,
            "start_mse": err / (n * target.shape[-1]),
            "rd_exponent": rd_exponent(model, comps, plan, s0, alpha)}
