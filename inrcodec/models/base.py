"""What every representation provides, so that one training loop and one codec serve them all.

A representation is a ``torch.nn.Module`` built from a JSON-able dataclass config (the config *is* the
architecture, as in tiny-cuda-nn) plus the signal description. Its life:

1. ``Model.config_for(desc, target_bits)`` chooses an architecture for a bit budget (the rate-control prior);
2. ``Model(config, desc)`` builds it; ``init_from_signal(target)`` may initialise it from the data;
3. ``fit.fit()`` trains it (``training_batch`` / ``regularizer`` / ``after_step`` hooks);
4. ``encode(quality)`` quantises and entropy-codes it into named sections; ``quality`` in (0, 1] is the
   continuous knob the codec bisects on to land a byte target (larger = more bytes, better fidelity);
5. ``Model.decode(config, desc, sections)`` rebuilds it from a file; ``render(shape, region)`` draws it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from ..errors import FormatError
from ..schema import check_config_types


class Representation(torch.nn.Module):
    name: ClassVar[str] = "base"
    Config: ClassVar[type]
    # Signal kinds this model can represent (by number of coordinate axes).
    supported_ndims: ClassVar[tuple[int, ...]] = (1, 2, 3)
    # Whether render() can draw another resolution / a crop (coordinate networks and Gaussians can).
    resamplable: ClassVar[bool] = True
    # Adam learning rate the fit loop uses unless told otherwise, and steps a default fit plans for.
    default_lr: ClassVar[float] = 1e-3
    default_steps: ClassVar[int] = 2000
    # Quality the codec encodes at when no rate/fidelity target is given (None: the codec's default).
    default_quality: ClassVar[float | None] = None
    # True when the model steers its own rate during training (rate term): the fit loop then does not stop early
    # at a PSNR target, because the rest of the schedule lowers the rate.
    rate_controlled: ClassVar[bool] = False

    @classmethod
    def accepts(cls, desc: dict[str, Any]) -> bool:
        """Whether the model codes a signal of this description (shape, dtype); a preset whose model does not
        falls back to the kind's default model (``presets.preset_model``)."""
        return True

    def __init__(self, config: Any, desc: dict[str, Any]):
        super().__init__()
        self.config = config
        self.desc = desc
        self.coord_shape = tuple(desc["shape"][:-1])
        self.channels = int(desc["shape"][-1])
        self.target_bits: float | None = None
        self.target_psnr: float | None = None
        self.max_steps: int | None = None  # the fit's schedule (set_schedule), for models that size fixed costs
        # the encode's seed (codec.compress): a model that draws its own seeds from it, not from torch's global
        # generator, can be fitted beside another in a second thread (None: the global generator)
        self.fit_seed: int | None = None
        self.time_budget: float | None = None

    def set_targets(self, bits: float | None = None, psnr: float | None = None) -> None:
        """What the codec aims for (payload bits, or PSNR in dB on the normalised signal); rate-aware training
        reads these. Not part of the config: the decoder never needs them."""
        self.target_bits, self.target_psnr = bits, psnr

    def set_schedule(self, max_steps: int | None, time_budget: float | None) -> None:
        """The fit's step cap and time budget (seconds, initialisation included), told before
        ``init_from_signal``: a model whose set-up costs passes over the signal can size it to the schedule."""
        self.max_steps, self.time_budget = max_steps, time_budget

    # -- rate-control prior ---------------------------------------------------------------------------------
    @classmethod
    def config_for(cls, desc: dict[str, Any], target_bits: float | None, **overrides: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def search_plan(cls, max_steps: int, target_bits: float, overrides: dict[str, Any]) -> tuple | None:
        """An encoder-side search for a byte target, or None (one fit of ``max_steps``): (config overrides of short
        probe fits, their steps, the steps of each main fit, ``choose``[, ``workers``]), where ``choose(psnrs)``
        gives the main fit's overrides (a dict), or a list of them for several main fits, from the probes' PSNRs at
        the target (codec.compress runs it; the best file wins). With ``workers`` the fits run that many at a time in
        threads of one torch thread each (``codec.search_workers``; the same file as one at a time), and the model
        must draw its random numbers from ``fit_seed``. No probes: one fit of the main steps with ``choose([])``'s
        overrides (a setting chosen by the schedule alone)."""
        return None

    @classmethod
    def coding_seconds(cls, desc: dict[str, Any], target_bits: float | None) -> float:
        """Expected wall seconds of an encode's work after the fit's steps (finishing the fit, the codec's rate
        search over real encodes, the kept file's render), for a signal of ``desc`` coded to ``target_bits``: the
        codec keeps that much of a time budget out of the fit (``codec.compress``). 0: the codec's default
        share (``CODING_SHARE``) covers it."""
        return 0.0

    def size_search_hint(self, target_bytes: float) -> tuple[float, float] | None:
        """After the fit: (quality, d ln bytes / d quality there) where the model expects its file to land on
        ``target_bytes``, for a model whose size is about exponential in quality; the codec's byte search then
        starts there and steps on the log size (``codec._search_log_size``). None: the generic search."""
        return None

    @classmethod
    def lr_for(cls, config: Any) -> float:
        """Adam learning rate the codec's fit uses for this config (default: ``default_lr``)."""
        return cls.default_lr

    # -- training hooks used by fit.fit() -------------------------------------------------------------------
    def init_from_signal(self, target: torch.Tensor) -> None:
        """Data-driven initialisation (target: normalised signal, shape (*coords, C))."""

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    def training_batch(self, target: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(prediction, reference) for one optimisation step; default: the whole signal."""
        return self.render(), target

    def on_progress(self, frac: float) -> None:
        """Called before each step with the schedule position in [0, 1] (phase switches such as QAT)."""

    def lr_multiplier(self, frac: float) -> float:
        """Factor on the fit's learning-rate schedule at progress ``frac`` (a model's own phases)."""
        return 1.0

    # Global gradient-norm clip applied by the fit before each optimiser step (None: no clipping).
    grad_clip_norm: float | None = None

    def loss(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """The fit's data term; default the MSE (one fused op, forward and backward: the three-op form cost 7.4 CPU
        ms per step on a Kodak image, ~10 % of a Gaussian fit step, benchmarks/README.md "Gaussian step cost")."""
        return torch.nn.functional.mse_loss(pred, ref)

    def regularizer(self) -> torch.Tensor | None:
        """Extra loss term (e.g. a rate estimate), added to the MSE."""
        return None

    def after_step(self, step: int, target: torch.Tensor) -> None:
        """Called after each optimiser step (clamping, closed-form updates, pruning...)."""

    # -- rendering ------------------------------------------------------------------------------------------
    def render(self, shape: tuple[int, ...] | None = None,
               region: tuple[tuple[int, int], ...] | None = None) -> torch.Tensor:
        """Draw the signal on a grid of ``shape`` samples spanning the original extent (default: the original
        grid), optionally only the sub-box ``region = ((start, stop), ...)`` of that grid. Returns (*grid, C)."""
        raise NotImplementedError

    # -- coding ---------------------------------------------------------------------------------------------
    def encode(self, quality: float) -> dict[str, bytes]:
        raise NotImplementedError

    @classmethod
    def decode(cls, config: Any, desc: dict[str, Any], sections: dict[str, bytes]) -> "Representation":
        raise NotImplementedError

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> Any:
        """Rebuild a config from an untrusted header: unknown keys or wrong types are a FormatError."""
        fields = {f.name: f for f in dataclasses.fields(cls.Config)}
        unknown = set(data) - set(fields)
        if unknown:
            raise FormatError(f"unknown config keys for model {cls.name!r}: {sorted(unknown)}")
        check_config_types(cls.Config, data, cls.name)  # types before ranges: validate() may compare/multiply
        try:
            config = cls.Config(**data)
        except TypeError as exc:
            raise FormatError(f"invalid config for model {cls.name!r}: {exc}") from None
        check = getattr(config, "validate", None)
        if check is not None:
            check()
        return config


def grid_coords(shape: tuple[int, ...], full_shape: tuple[int, ...] | None = None,
                region: tuple[tuple[int, int], ...] | None = None) -> torch.Tensor:
    """Sample-centre coordinates in [-1, 1] for a grid of ``shape`` covering the whole extent, restricted to
    ``region``. Returns (*region_shape, ndim). Sample i of n sits at -1 + (2i + 1) / n, so any resolution
    samples the same continuous signal."""
    axes = []
    for axis, n in enumerate(shape):
        lo, hi = (0, n) if region is None else region[axis]
        idx = torch.arange(lo, hi, dtype=torch.float32)
        axes.append(-1.0 + (2.0 * idx + 1.0) / n)
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh, dim=-1)
