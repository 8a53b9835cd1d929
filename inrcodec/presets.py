"""Encoder presets (``--preset fast|medium|slow``, like x264's): what each means, per signal kind, in one table.

A preset chooses the model (unless ``--model`` names one) and the fit's schedule: a number of steps, as a multiple
of the model's own ``default_steps``, capped by a wall-clock allowance per million samples (so encode time stays
linear in the signal's size, and a slow machine still finishes). ``--steps`` or ``--time-budget`` replace the
preset's schedule entirely (the preset then still picks the model). ``medium`` is the default; it runs each model's
default steps, except that the Gaussian image model runs twice its 800 since its step got cheaper (before: 800, so
earlier Gaussian benchmarks at 800 steps are the old ``medium``).

Steps rather than seconds drive the schedule because a step count gives the same file for the same seed on the
same machine; the cap only binds on inputs much larger than a Kodak image, or under heavy CPU contention.

A new signal kind (video, dataset) adds a row to ``PRESETS``; kinds without a row use ``"*"``.
Measured RD and seconds per preset: README "Presets" and ``benchmarks/results/presets_kodak.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InputError

NAMES = ("fast", "medium", "slow")
DEFAULT = "medium"


@dataclass(frozen=True)
class Preset:
    model: str | None = None  # None: the kind's default model (models.DEFAULT_MODEL)
    steps_scale: float = 1.0  # fit steps = round(steps_scale * model.default_steps)
    seconds_per_msample: float | None = None  # wall-clock cap of the fit per million samples (None: no cap)
    min_seconds: float = 120.0  # the cap never goes below this (start-up and coding costs do not scale down)...
    # ...for signals up to this many million samples; above, the floor fades as min_seconds x floor_msamples / size,
    # so that it stops lifting the per-sample allowance where that is the target (None: a floor at every size)
    floor_msamples: float | None = None
    config: dict[str, Any] = field(default_factory=dict)  # architecture overrides passed to config_for
    steps_scale_for: dict[str, float] = field(default_factory=dict)  # per model name, replaces steps_scale


# Images: ``gaussian+dct`` (a Gaussian base at 40 % of the bytes plus a DCT-coded residual) is the best measured
# image model at fast and medium (session 19, kodim03/07: BD-rate vs gaussian at the same steps -24 % at medium,
# vs WebP +11 % at fast and -0.6 % at medium where gaussian alone is +63 % and +30 %; benchmarks/README.md), and
# slow runs it too (its base is the same Gaussian fit). Images it does not code (RGBA, float) fall back to the kind's
# default model, ``gaussian`` (``preset_model``). latentgrid at slow's ~1600 steps: +15 % vs gaussian slow on kodim03. fast ~ a quarter of the default steps
# (its 200-step fit takes a 0.3 base share, ``gaussian_dct.SHORT_SHARE``: a schedule rule, so ``--steps 200`` too); slow ~ 6x
# (gaussian+dct 8x since session 25: 6400 steps, four fits of 3200 at four base shares, two at a time on two cores,
# since session 26 in two waves, the second at the first's winner's neighbours (``gaussian_dct.GRID_SHARES``,
# ``NEXT_WAVE``): about one 3200-step fit's wall time per core pair and wave, ~2x 150 CPU-s), which the 300 s benchmark
# (benchmarks/results/gaussian_kodak_rd_300s.json: 4700-5900 steps in 270 s on kodim01/03/07) shows still gains.
# The caps are a safety net, not the schedule: on this shared 2-core machine (load 8-9) a 10 s cap left the fast
# preset with 0 fit steps on kodim01 (initialisation alone took longer). slow's 280 s floor keeps a Kodak encode
# within ~5 min. medium's cap is issue 13's allowance for large photos, 60 s/Mpx for the whole encode (the codec
# leaves the model's coding estimate out of the fit): the floor keeps Kodak-size images on their steps and fades
# above 0.5 Mpx; the Gaussian fit sizes its fixed costs to it (benchmarks/README.md "Large photos").
PRESETS: dict[str, dict[str, Preset]] = {
    "image": {
        "fast": Preset(model="gaussian+dct", steps_scale=0.25, seconds_per_msample=30.0,
                       min_seconds=60.0),  # caps stay ordered
        # gaussian 1.25x: the cheaper step (factorised rasteriser weights, fused loss: 100 -> 73 CPU ms per Kodak step)
        # buys more steps in issue 13's 60 s per Kodak image. Timed on 2 idle threads (lead, session 18): kodim03 at
        # 0.5 bpp 41.6 s for 800 steps and 84.9 s for 1600; kodim01 at 1 bpp 68.8 s for 1000. 2x overran the 60 s.
        # The floor keeps Kodak-size images on their steps; from 0.5 MP it fades (120 s x 0.5 MP / size), so a photo
        # of 1 MP or more gets issue 13's 60 s/MP for the whole encode (the 120 s floor gave a 1.3 MP photo 94 s/MP)
        "medium": Preset(model="gaussian+dct", steps_scale=1.0, seconds_per_msample=60.0, min_seconds=120.0,
                         floor_msamples=0.5,
                         steps_scale_for={"gaussian": 1.25, "gaussian+dct": 1.25}),  # its base is the same fit
        "slow": Preset(model="gaussian+dct", steps_scale=6.0, seconds_per_msample=700.0, min_seconds=280.0,
                       steps_scale_for={"gaussian+dct": 8.0}),
    },
    "*": {
        "fast": Preset(steps_scale=0.25, seconds_per_msample=100.0, min_seconds=60.0),
        "medium": Preset(steps_scale=1.0, seconds_per_msample=300.0, min_seconds=120.0),
        "slow": Preset(steps_scale=4.0, seconds_per_msample=700.0, min_seconds=280.0),
    },
}


@dataclass(frozen=True)
class Schedule:
    model: str
    steps: int | None
    time_budget: float | None
    config: dict[str, Any]


def get_preset(kind: str, name: str | None) -> Preset:
    name = DEFAULT if name is None else name
    if name not in NAMES:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(NAMES)}")
    return PRESETS.get(kind, PRESETS["*"])[name]


def preset_model(kind: str, preset: str | None, model: str | None = None, desc: dict | None = None) -> str:
    """The model a fit uses: the one named, else the preset's where it codes this signal (``accepts``; e.g. an RGBA
    or float image is not for ``gaussian+dct``), else the kind's default."""
    from .models import default_model, get_model

    if model:
        return model
    chosen = get_preset(kind, preset).model
    if chosen and (desc is None or get_model(chosen).accepts(desc)):
        return chosen
    return default_model(kind)


def resolve(kind: str, samples: int, preset: str | None, model: str | None, steps: int | None,
            time_budget: float | None, default_steps_of, desc: dict | None = None) -> Schedule:
    """Model, steps, time budget and config overrides of a fit. ``default_steps_of(model_name)`` gives a model's
    default step count. Explicit ``steps``/``time_budget`` replace the preset's schedule. ``desc`` (the signal's
    description) lets the preset's model decline a signal it does not code (``preset_model``)."""
    p = get_preset(kind, preset)
    name = preset_model(kind, preset, model, desc)
    if steps is not None or time_budget is not None:
        return Schedule(name, steps, time_budget, {})
    n_steps = max(1, round(p.steps_scale_for.get(name, p.steps_scale) * default_steps_of(name)))
    cap = None
    if p.seconds_per_msample is not None:
        floor = p.min_seconds
        if p.floor_msamples is not None and samples > p.floor_msamples * 1e6:
            floor *= p.floor_msamples * 1e6 / samples
        cap = max(floor, p.seconds_per_msample * samples / 1e6)
    # config overrides are tuned for the preset's own model, not for one the user named
    return Schedule(name, n_steps, cap, dict(p.config) if model is None or model == p.model else {})
