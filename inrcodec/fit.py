"""The one training loop for every representation.

The schedule runs on *progress*, the larger of step / max_steps and elapsed / time_budget, so a time budget
shortens the whole schedule (warm-up, cosine decay) instead of cutting it off in the middle. Training stops at
max_steps, at the time budget, or once the full-signal PSNR reaches ``target_psnr`` (not for models that steer
their own rate: the rest of their schedule lowers the rate at that PSNR).

Models see the schedule position through ``on_progress(frac)`` before every step; rate-aware models use it to
switch phases (noise -> straight-through quantisation, start of quantisation-aware training).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .models.base import Representation


EVAL_SHARE = 0.05  # most of the fit's time the progress evaluations may take


@dataclass
class FitSettings:
    max_steps: int = 2000
    time_budget: float | None = None  # seconds of optimisation
    lr: float = 1e-2
    warmup: float = 0.02  # fraction of progress spent warming up the learning rate
    final_lr_fraction: float = 0.02
    target_psnr: float | None = None  # dB on the normalised signal (peak 1)
    eval_every: int = 50
    seed: int = 0


@dataclass
class FitResult:
    steps: int
    seconds: float
    psnr: float  # full-signal PSNR (peak 1) of the unquantised representation at the end
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (step, seconds, psnr)


ProgressFn = Callable[[int, float, float, float], None]  # (step, progress in [0,1], psnr dB, elapsed s)


def mse_to_psnr(mse: float) -> float:
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


@torch.no_grad()
def evaluate_psnr(model: Representation, target: torch.Tensor) -> float:
    pred = model.render().clamp(0, 1)
    return mse_to_psnr(torch.mean((pred - target) ** 2).item())


def fit(model: Representation, target: torch.Tensor, settings: FitSettings,
        progress: ProgressFn | None = None) -> FitResult:
    # Denormal floats (tiny activations and gradients early in training) make CPU kernels several times slower;
    # flushing them to zero changes nothing measurable in the result. (Process-wide; reset to torch's default.)
    torch.set_flush_denormal(True)
    try:
        return _fit(model, target, settings, progress)
    finally:
        torch.set_flush_denormal(False)


def _fit(model: Representation, target: torch.Tensor, settings: FitSettings,
         progress: ProgressFn | None) -> FitResult:
    generator = torch.Generator().manual_seed(settings.seed)
    start = time.perf_counter()  # before the data-driven init: it is part of the time budget
    model.set_schedule(settings.max_steps, settings.time_budget)
    model.init_from_signal(target)
    optimiser = torch.optim.Adam(model.param_groups(settings.lr))
    base_lrs = [g["lr"] for g in optimiser.param_groups]

    history: list[tuple[int, float, float]] = []
    psnr = float("nan")
    step = 0
    eval_cost, last_eval = 0.0, -math.inf
    while step < settings.max_steps:
        elapsed = time.perf_counter() - start
        frac = step / settings.max_steps
        if settings.time_budget is not None:
            frac = max(frac, elapsed / max(settings.time_budget, 1e-9))
        if frac >= 1.0:
            break
        factor = _lr_factor(frac, settings) * model.lr_multiplier(frac)
        for group, base in zip(optimiser.param_groups, base_lrs):
            group["lr"] = base * factor
        model.on_progress(frac)

        pred, ref = model.training_batch(target, generator)
        loss = model.loss(pred, ref)
        extra = model.regularizer()
        total = loss if extra is None else loss + extra
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        if model.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_([p for g in optimiser.param_groups for p in g["params"]],
                                           model.grad_clip_norm)
        optimiser.step()
        step += 1
        model.after_step(step, target)

        # A full-signal render every eval_every steps, but at most EVAL_SHARE of the time: for a Kodak image a
        # coordinate MLP's render costs ~16 training steps, a quarter of the fit at every 50 steps.
        due = step % settings.eval_every == 0 or step == settings.max_steps
        if due and time.perf_counter() - last_eval >= eval_cost / EVAL_SHARE:
            t_eval = time.perf_counter()
            psnr = evaluate_psnr(model, target)
            last_eval = time.perf_counter()
            eval_cost = last_eval - t_eval
            elapsed = last_eval - start
            history.append((step, elapsed, psnr))
            if progress is not None:
                progress(step, frac, psnr, elapsed)
            if settings.target_psnr is not None and psnr >= settings.target_psnr and not model.rate_controlled:
                break

    model.on_progress(1.0)
    psnr = evaluate_psnr(model, target)
    seconds = time.perf_counter() - start
    history.append((step, seconds, psnr))
    if progress is not None:
        progress(step, 1.0, psnr, seconds)
    return FitResult(steps=step, seconds=seconds, psnr=psnr, history=history)


def _lr_factor(frac: float, s: FitSettings) -> float:
    if frac < s.warmup:
        return max(frac / s.warmup, 0.05)
    t = (frac - s.warmup) / max(1.0 - s.warmup, 1e-9)
    return s.final_lr_fraction + (1 - s.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
