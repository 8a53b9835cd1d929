"""The latent-grid representation: latents + synthesis + context model, its training hooks (rate term, lambda
steering) and its coding (weight precision search, latents bitstream). The parts live in the sibling files."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ...errors import FormatError
from .. import register
from ..base import Representation
from .bitstream import _estimate_bits, decode_latents, encode_latents, level_params
from .config import LatentGridConfig, default_levels, latent_shapes, network_param_count
from .context import RATE_SUBSAMPLE, ExactArm, exact_arm, make_arm, rate_bits
from . import recipe as recipes
from . import warmstart
from .quantiser import LATENT_CAP, _code_weights, _decode_weights, quality_setting
from .synthesis import make_synthesis, synthesize
from .upsampling import _taps, upsample_levels

DEFAULT_LAMBDA = 2e-3
LAMBDA_RANGE = (1e-9, 10.0)
WEIGHT_BITS_PRIOR = 9.0  # bits per network weight assumed while training (refined at encode)


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
        self.synth, self.convs = make_synthesis(c.ndim, c.levels, c.channels, c.hidden, c.hidden_layers,
                                                c.conv_layers, c.kernel)
        self.arm = make_arm(c.ndim, c.arm_hidden, c.arm_layers)
        self.latent_step = 1.0  # dequantisation step of the coded latents (set by decode / encode)
        self.recipe = recipes.RECIPE  # encoder-side training recipe (rounding phases, lr shape, rate control)
        self.lmbda = DEFAULT_LAMBDA
        self._frac = 0.0
        self._dfrac = 0.0
        self._scaled_prior = False
        self._rate = None
        self._stats = None
        self._ema_rate = self._ema_mse = None
        self._weight_bits: float | None = None
        self._rd_exponent: float | None = None  # lambda_prior "analysis": the start's RD exponent (after_step)
        self._kappa = 1.0
        self._start_mse = 0.0
        self._taps_cache: dict = {}
        self.rate_subsample = RATE_SUBSAMPLE  # training only (1: the exact rate every step)
        self._gen: torch.Generator | None = None
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
        return [{"params": list(self.latents), "lr": lr * self.recipe.latent_lr_factor},
                {"params": self.network_params(), "lr": lr * self.recipe.network_lr_factor}]

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
        # a level already on the shape grid (level 0 at native size) has the identity as taps, exactly
        taps = [None if tuple(y.shape) == tuple(shape)
                else [self._level_taps(level, axis, n, *box[axis]) for axis, n in enumerate(shape)]
                for level, y in enumerate(latents)]
        return upsample_levels(latents, taps, box)

    def _synthesis(self, latents, shape, region):
        """Synthesis on ``region`` of the ``shape`` grid, computed on the region grown by the convolutions'
        reach (clipped to the grid) so the crop equals the same crop of a full render."""
        halo = self.config.conv_layers * (self.config.kernel // 2)
        box = [(max(lo - halo, 0), min(hi + halo, n)) for (lo, hi), n in zip(region, shape)]
        feats = self._features(latents, shape, box)  # (levels, *box)
        x = synthesize(feats, self.synth, self.convs, self.config.kernel)  # (1, C, *box)
        x = x.squeeze(0).movedim(0, -1)
        for axis, ((lo, hi), (blo, _)) in enumerate(zip(region, box)):
            if hi - lo < x.shape[axis]:
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

    def lr_multiplier(self, frac: float) -> float:
        return recipes.lr_multiplier(self.recipe, frac)

    @property
    def grad_clip_norm(self) -> float | None:
        return self.recipe.grad_clip

    def rate_bits(self, latents: list[torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
        """Differentiable estimate of the coded size of the latents (bits) under the context model; before the
        straight-through phase (given a generator) an unbiased estimate on a row subsample of the large levels
        (context.py; off by default)."""
        sub = self.rate_subsample if generator is not None and self._frac < self.recipe.ste_start else 1
        return rate_bits(self.arm, latents, sub, generator)

    def training_batch(self, target, generator):
        lat = recipes.training_latents(self.latents, self._frac, generator, self.recipe)
        full = [(0, n) for n in self.coord_shape]
        pred = self._synthesis(lat, self.coord_shape, full)
        self._gen = generator
        self._rate = self.rate_bits(lat, generator)
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
        if self._frac >= self.recipe.ste_start:
            rate = float(self._rate.detach())
        elif step % 4 == 0 or self._ema_rate is None:
            # the noisy latents' rate overstates what rounding will code: steer on the rounded latents' rate
            with torch.no_grad():
                rate = float(self.rate_bits([torch.round(y) for y in self.latents], self._gen))
        else:
            rate = self._ema_rate
        a = 0.1
        self._ema_rate = rate if self._ema_rate is None else (1 - a) * self._ema_rate + a * rate
        self._ema_mse = mse if self._ema_mse is None else (1 - a) * self._ema_mse + a * mse
        steer = self.recipe.control_start <= self._frac < self.recipe.control_end
        if self._rd_exponent is not None and self.target_bits is not None:
            # lambda from the analysis start's own RD law (set_lambda_from_rd): the slope -k D / R at the fit's
            # current distortion and the rate goal, so lambda falls as training lowers D; steering corrects kappa
            goal = self._rate_goal(step)
            if steer:
                gain = recipes.control_gain(self.recipe, self._frac) * self._dfrac
                err = float(np.clip(math.log(max(self._ema_rate, 1.0) / goal), -2, 2))
                if err > 0 and self._frac >= self.recipe.ste_start:
                    err *= 3.0
                self._kappa = float(np.clip(self._kappa * math.exp(gain * err), 1e-3, 1e3))
            self._set_lambda_from_rd(goal)
            return
        if not steer:
            return
        if self.target_bits is not None:
            goal = self._rate_goal(step)
            err = math.log(max(self._ema_rate, 1.0) / goal)
            if err > 0 and self._frac >= self.recipe.ste_start:
                err *= 3.0  # over budget in the last phase: push back hard
        elif self.target_psnr is not None:
            goal = 10.0 ** (-self.target_psnr / 10.0)
            err = math.log(goal / max(self._ema_mse, 1e-12))
        else:
            return
        # Early rates are transients (latents growing or settling, context model still learning): steer gently
        # then, firmly towards the end, when the rate is what will be coded.
        # Integrated over schedule progress, not steps, so a fit cut short by a time budget still corrects fully.
        gain = recipes.control_gain(self.recipe, self._frac) * self._dfrac
        self.lmbda = float(np.clip(self.lmbda * math.exp(gain * float(np.clip(err, -2, 2))), *LAMBDA_RANGE))

    def _rate_goal(self, step: int) -> float:
        """Latent bits the rate control steers to at this point of the schedule."""
        if step % 50 == 0 or self._weight_bits is None:
            self._weight_bits = self._weight_bits_now()
        # aim 5 % low: a file over budget costs far more (encode has to coarsen the latent step, which the
        # synthesis and context model were not trained for) than one a little under
        goal = 0.95 * max(self.target_bits - self._weight_bits, 0.05 * self.target_bits)
        return goal * (1.0 + self.recipe.goal_drift * (1.0 - self._frac))

    def _set_lambda_from_rd(self, goal_bits: float) -> None:
        """lambda = kappa * k * D / R: the RD slope of a power law D = c R^k with the start's exponent k at the
        fit's current distortion D (EMA of the training MSE) and the rate goal R (bits per pixel)."""
        n = float(np.prod(self.coord_shape))
        mse = self._ema_mse if self._ema_mse is not None else self._start_mse
        self.lmbda = float(np.clip(self._kappa * self._rd_exponent * mse * n / max(goal_bits, 1.0), *LAMBDA_RANGE))

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
            self.lmbda = float(np.clip(self.recipe.lambda_prior_scale * 4e-4 / bps**1.5, *LAMBDA_RANGE))
        elif psnr is not None:
            self.lmbda = float(np.clip(10 ** (-psnr / 10.0) * 3.0, *LAMBDA_RANGE))

    # -- coding -------------------------------------------------------------------------------------------
    def _weight_tensors(self, module: torch.nn.Module) -> list[np.ndarray]:
        return [p.detach().cpu().numpy().astype(np.float64) for p in module.parameters()]

    def _exact_arm(self, arrays: list[np.ndarray]) -> ExactArm:
        return exact_arm(arrays)

    def _latent_symbols(self, step: float) -> list[np.ndarray]:
        return [np.clip(np.rint(y.detach().cpu().numpy().astype(np.float64) / step), -LATENT_CAP, LATENT_CAP)
                .astype(np.int64) for y in self.latents]

    def _level_params(self, arm: ExactArm, syms: list[np.ndarray], step: float):
        return level_params(arm, syms, step)

    def _code_latents(self, arm: ExactArm, step: float) -> bytes:
        return encode_latents(arm, self._latent_symbols(step), step)

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
            slope = None
            # images only: JPEG's slope is a proxy for photographs, not for fields or spectrogram-like arrays
            if self.recipe.lambda_prior in ("jpeg", "analysis") and self.config.ndim == 2 and self.desc.get("kind") == "image":
                n = float(np.prod(self.coord_shape))
                slope = recipes.jpeg_rd_slope(target.detach().cpu().numpy(), self.target_bits / n)
            if slope is not None:
                self.lmbda = float(np.clip(self.recipe.lambda_prior_scale * slope, *LAMBDA_RANGE))
            else:
                self.lmbda = float(np.clip(self.lmbda * max(var, 1e-8) / 0.06, *LAMBDA_RANGE))
            self._scaled_prior = True
        # encoder-side starting point (warmstart.py), where it applies (photographs whose latents get at least half
        # of the bytes; on 1-D audio and on tiny images it was worse): elsewhere the model starts as constructed
        if self.recipe.init == "analysis" and warmstart.applicable(self):
            self.init_info = warmstart.analysis_init(self, target, self.recipe.init_alpha, self.recipe.init_arm_steps,
                                                     tuple(self.recipe.init_chroma_levels),
                                                     self.recipe.init_budget_share)
            exponent = self.init_info.get("rd_exponent")
            if (self.recipe.lambda_prior == "analysis" and self.init_info["applied"] and exponent
                    and self.target_bits is not None):
                # JPEG's slope (the prior above) was calibrated on the zero start and, for a fit that starts near
                # its goal, left it 10-15 % under the byte target in 350 steps (benchmarks/README.md): take the
                # slope of the start's own RD law instead, tracking the fit's distortion (after_step)
                self._rd_exponent = exponent
                self._kappa = self.recipe.lambda_prior_scale
                self._start_mse = self.init_info["start_mse"]
                self._set_lambda_from_rd(self._rate_goal(0))

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
        step, vals = decode_latents(arm, blob, self.shapes)
        self.latent_step = step  # values are multiples of it, so render's re-rounding keeps them
        with torch.no_grad():
            for p, v in zip(self.latents, vals):
                p.copy_(v.float())
