"""compress(signal) -> bytes and decompress(bytes) -> Signal: fitting, rate control and the container together.

Rate control in two stages. Before fitting, the model's ``config_for`` sizes the architecture for the byte
budget (the prior). After fitting, the codec bisects the continuous ``quality`` knob of ``encode`` on the *real*
file size (header included), so ``bpp=R`` lands at the largest file not above R (within 10 % below it when the
model has the capacity; the report says when it had not). ``psnr=`` bisects for the smallest file whose
*decoded* output reaches the target. ``max_error=`` adds a residual section (uniform step 2E, entropy-coded) that
guarantees every decoded value within E whatever the model achieved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from . import __version__
from .container import Container, read_container, write_container
from .entropy import decode_ints, encode_ints
from .errors import FormatError, InputError
from .fit import FitSettings, fit
from .metrics import psnr as psnr_metric
from .models import default_model, get_model
from .models.base import Representation
from .signal import Signal

BPP_TOLERANCE = 0.10
QUALITY_SEARCH_STEPS = 12
DEFAULT_QUALITY = 0.6  # with no rate/quality target: ~9 bits per weight, visually transparent for MLPs
BUDGET_STEP_CAP = 1_000_000  # steps of a fit governed by --time-budget alone (the clock stops it long before)


@dataclass
class CompressResult:
    data: bytes
    report: dict[str, Any] = field(default_factory=dict)


# progress(stage, step, fraction, psnr, elapsed)
ProgressFn = Callable[[str, int, float, float, float], None]
# preview(step, render): called at each evaluation of the fit; render() gives the current (unquantised) fit as a
# Signal in the input's layout. Rendering costs a forward pass, so the caller decides when to call it.
PreviewFn = Callable[[int, Callable[[], Signal]], None]


def compress(signal: Signal, model: str | None = None, *, bpp: float | None = None, psnr: float | None = None,
             max_error: float | None = None, relative: bool = False, time_budget: float | None = None,
             seed: int = 0, steps: int | None = None, config: dict[str, Any] | None = None,
             progress: ProgressFn | None = None, preview: PreviewFn | None = None) -> CompressResult:
    """Fit ``model`` to ``signal`` and code it. At most one of ``bpp``/``psnr``/``max_error`` sets the target.

    ``time_budget`` (seconds, the whole encode) without ``steps`` is the fit's schedule: it runs until about 90 %
    of the budget is spent, then codes. ``steps`` alone fixes the schedule; both: whichever ends first. Neither:
    the model's default number of steps."""
    t0 = time.perf_counter()
    if sum(x is not None for x in (bpp, psnr, max_error)) > 1:
        raise InputError("give at most one of bpp, psnr, max_error")
    if bpp is not None and not bpp > 0:
        raise InputError(f"bpp must be positive, got {bpp}")
    if max_error is not None and not max_error > 0:
        raise InputError(f"max error must be positive, got {max_error}")
    name = model or default_model(signal.kind)
    cls = get_model(name)
    if signal.ndim_coords not in cls.supported_ndims:
        raise InputError(f"model {name!r} does not support signals with {signal.ndim_coords} coordinate axes")

    desc = signal.describe()
    target_bytes = None if bpp is None else bpp * signal.num_pixels / 8.0
    overhead = len(write_container(Container(desc, name, {}, {"a": b"", "b": b""})))
    payload_bits = None if target_bytes is None else max(8.0 * (target_bytes - overhead) - 64 * 8, 256.0)

    torch.manual_seed(seed)
    cfg = cls.config_for(desc, payload_bits, **(config or {}))
    net = cls(cfg, desc)
    net.set_targets(payload_bits, psnr)
    target = torch.from_numpy(np.nan_to_num(signal.normalized(), nan=0.5))
    # Leave a tenth of the budget for the quality search and coding.
    budget = None if time_budget is None else max(0.9 * time_budget - (time.perf_counter() - t0), 0.5)
    # A time budget without --steps is the schedule: the fit runs until the budget is spent (a longer budget buys
    # quality; gaussian at 0.35 bpp on kodim03: 33.84 dB after 800 steps, 34.29 dB after 2400). --steps caps it.
    max_steps = steps or (cls.default_steps if budget is None else BUDGET_STEP_CAP)
    settings = FitSettings(max_steps=max_steps, time_budget=budget, lr=cls.lr_for(cfg),
                           target_psnr=None if psnr is None else psnr + 1.0, seed=seed)
    def fit_progress(s: int, f: float, p: float, e: float) -> None:
        if progress is not None:
            progress("fit", s, f, p, e)
        if preview is not None:
            preview(s, lambda: _render_now(net, desc))
    result = fit(net, target, settings, fit_progress)
    net.eval()

    error_bound = None
    if max_error is not None:
        error_bound = max_error * (signal.value_range[1] - signal.value_range[0]) if relative else max_error

    def build(quality: float) -> tuple[bytes, Signal]:
        sections = net.encode(quality)
        decoded_net = cls.decode(cfg, desc, sections)
        with torch.no_grad():
            decoded = Signal.from_normalized(decoded_net.render().numpy(), desc)
        if error_bound is not None:
            sections["residual"], decoded = _encode_residual(signal, decoded, error_bound)
        extra = {"encoder": f"inrcodec {__version__}"}
        return write_container(Container(desc, name, net.config_dict(), sections, extra)), decoded

    default_q = DEFAULT_QUALITY if cls.default_quality is None else cls.default_quality
    quality, data, decoded = _search_quality(build, signal, target_bytes, psnr, error_bound, default_q)
    seconds = time.perf_counter() - t0
    report = {
        "model": name,
        "bytes": len(data),
        "bpp": 8.0 * len(data) / signal.num_pixels,
        "psnr": psnr_metric(signal.data, decoded.data),
        "max_abs_error": float(np.max(np.abs(signal.data.astype(np.float64) - decoded.data.astype(np.float64)))),
        "seconds": seconds,
        "fit_seconds": result.seconds,
        "fit_steps": result.steps,
        "fit_psnr_unquantised": result.psnr,
        "quality": quality,
        "config": net.config_dict(),
        "shape": list(signal.data.shape),
        "dtype": str(signal.dtype),
    }
    if target_bytes is not None:
        report["target_bpp"] = bpp
        report["target_met"] = abs(len(data) - target_bytes) <= BPP_TOLERANCE * target_bytes
    if psnr is not None:
        report["target_psnr"] = psnr
        report["target_met"] = report["psnr"] >= psnr
    if error_bound is not None:
        report["target_max_error"] = error_bound
        report["target_met"] = report["max_abs_error"] <= error_bound * (1 + 1e-6)
    return CompressResult(data, report)


@torch.no_grad()
def _render_now(net: Representation, desc: dict[str, Any]) -> Signal:
    return Signal.from_normalized(net.render().clamp(0, 1).numpy(), desc)


def _search_quality(build, signal: Signal, target_bytes: float | None, target_psnr: float | None,
                    error_bound: float | None, default_quality: float = DEFAULT_QUALITY) -> tuple[float, bytes, Signal]:
    """Bisect the quality knob. Size grows with quality; so (approximately) does PSNR."""
    if target_bytes is None and target_psnr is None:
        return default_quality, *build(default_quality)

    def ok(data: bytes, decoded: Signal) -> bool:
        if target_bytes is not None:
            return len(data) <= target_bytes
        return psnr_metric(signal.data, decoded.data) < target_psnr  # "too low": go up

    lo, hi = 0.0, 1.0
    best = None
    data_hi, dec_hi = build(hi)
    if target_bytes is not None and ok(data_hi, dec_hi):
        return hi, data_hi, dec_hi  # model too small to spend the budget: report says target_met=False
    if target_psnr is not None and ok(data_hi, dec_hi):
        return hi, data_hi, dec_hi  # even the finest quantisation misses the PSNR: best we found
    for _ in range(QUALITY_SEARCH_STEPS):
        mid = 0.5 * (lo + hi)
        data, decoded = build(mid)
        if ok(data, decoded):
            lo, best = mid, (mid, data, decoded)
        else:
            hi, data_hi, dec_hi = mid, data, decoded
    if target_psnr is not None:
        return hi, data_hi, dec_hi  # smallest quality known to reach the PSNR
    if best is None:  # even quality 0 is over budget
        return 0.0, *build(0.0)
    return best


def _encode_residual(signal: Signal, decoded: Signal, bound: float) -> tuple[bytes, Signal]:
    """Uniform quantisation of the residual so that |x - x_hat| <= bound for every value.

    Integer data: the residual is an integer, so an odd integer step 2k+1 (k = floor(bound)) is exact.
    Float data: step 2*(bound - ulp) leaves room for the rounding of the final cast to the output dtype."""
    x = signal.data.astype(np.float64)
    base = decoded.data.astype(np.float64)
    if np.issubdtype(signal.dtype, np.integer):
        step = 2.0 * np.floor(bound) + 1.0
    else:
        ulp = float(np.spacing(np.array(np.nanmax(np.abs(x)), dtype=signal.dtype)))
        step = 2.0 * (bound - 2.0 * ulp)
        if step <= 0:
            raise InputError(f"max error {bound:g} is below the precision of {signal.dtype} for this data")
    q = np.rint((x - base) / step).astype(np.int64)
    corrected = _apply_residual(base, q, step, signal.dtype)
    payload = np.float64(step).tobytes() + encode_ints(q.ravel())
    return payload, Signal(corrected, signal.kind, signal.value_range, dict(signal.metadata))


def _apply_residual(base: np.ndarray, q: np.ndarray, step: float, dtype: np.dtype) -> np.ndarray:
    out = base + q * step
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(dtype)


def load_representation(data: bytes, fraction: float | None = None) -> tuple[Container, Representation]:
    """Rebuild the representation of a file. ``fraction`` in (0, 1] (progressive models only, e.g. "gaussian")
    decodes only that most important part of it."""
    c = read_container(data)
    try:
        cls = get_model(c.model)
    except InputError:
        raise FormatError(f"file uses unknown model {c.model!r}") from None
    cfg = cls.config_from_dict(c.config)
    extra = {}
    if fraction is not None:
        if not (isinstance(fraction, (int, float)) and 0.0 < fraction <= 1.0):
            raise InputError(f"fraction must be in (0, 1], got {fraction!r}")
        if not getattr(cls, "progressive", False):
            raise InputError(f"model {c.model!r} cannot decode a fraction of its representation")
        extra["fraction"] = float(fraction)
    try:
        net = cls.decode(cfg, c.signal, c.sections, **extra)
    except FormatError:
        raise
    except (ValueError, RuntimeError, KeyError, IndexError) as exc:
        raise FormatError(f"cannot decode {c.model} payload: {exc}") from None
    return c, net


def decompress(data: bytes, shape: tuple[int, ...] | None = None,
               region: tuple[tuple[int, int], ...] | None = None, fraction: float | None = None) -> Signal:
    """Decode a ``.inrc`` file. ``shape`` renders the signal on another grid (same extent); ``region`` renders
    only a sub-box of that grid; ``fraction`` (progressive models) decodes only the most important part of the
    representation (a coarser image from a prefix of the data). The max-error residual applies at the native
    grid of a complete decode only. A file of parts (video) is decoded by its layout (``inrcodec.parts``)."""
    from . import video_codec  # noqa: F401  (registers the "video" layout)
    from .parts import LAYOUTS

    outer = read_container(data)
    if outer.model in LAYOUTS:
        return LAYOUTS[outer.model](outer, shape=shape, region=region, fraction=fraction)
    c, net = load_representation(data, fraction)
    native = tuple(c.signal["shape"][:-1])
    if shape is not None and len(shape) != len(native):
        raise InputError(f"size has {len(shape)} axes, the signal has {len(native)}")
    if (shape is not None and tuple(shape) != native) or region is not None:
        if not net.resamplable:
            raise InputError(f"model {c.model!r} cannot render at another size or region")
    with torch.no_grad():
        values = net.render(shape=tuple(shape) if shape else None, region=region).numpy()
    desc = dict(c.signal)
    desc["shape"] = list(values.shape)
    out = Signal.from_normalized(values, desc)
    if "residual" in c.sections and values.shape[:-1] == native and (fraction is None or fraction >= 1.0):
        blob = c.sections["residual"]
        if len(blob) < 8:
            raise FormatError("residual section truncated")
        step = float(np.frombuffer(blob[:8], dtype="<f8")[0])
        if not np.isfinite(step) or step <= 0:
            raise FormatError("invalid residual step")
        q = decode_ints(blob[8:], out.data.size).reshape(out.data.shape)
        out = Signal(_apply_residual(out.data.astype(np.float64), q, step, out.dtype), out.kind,
                     out.value_range, out.metadata)
    return out


class InrCodec:
    """numcodecs-shaped codec (``codec_id``, ``encode``, ``decode``, ``get_config``, ``from_config``) for
    float/int arrays, so it can sit in a zarr pipeline. Arrays are treated as signals of their own shape."""

    codec_id = "inrcodec"

    def __init__(self, model: str = "fourier", bpp: float | None = None, psnr: float | None = None,
                 max_error: float | None = None, time_budget: float | None = None, seed: int = 0,
                 steps: int | None = None):
        self.model, self.bpp, self.psnr, self.max_error = model, bpp, psnr, max_error
        self.time_budget, self.seed, self.steps = time_budget, seed, steps

    def encode(self, buf) -> bytes:
        arr = np.asarray(buf)
        data = arr.reshape(*arr.shape, 1) if arr.ndim <= 3 else arr
        kind = {1: "audio", 2: "array", 3: "volume"}.get(arr.ndim, "array")
        sig = Signal(data, kind=kind, metadata={"npy_shape": list(arr.shape)})
        return compress(sig, self.model, bpp=self.bpp, psnr=self.psnr, max_error=self.max_error,
                        time_budget=self.time_budget, seed=self.seed, steps=self.steps).data

    def decode(self, buf, out=None):
        sig = decompress(bytes(buf))
        arr = sig.data.reshape(sig.metadata.get("npy_shape", sig.data.shape))
        if out is not None:
            np.copyto(out, arr.reshape(out.shape))
            return out
        return arr

    def get_config(self) -> dict[str, Any]:
        return {"id": self.codec_id, "model": self.model, "bpp": self.bpp, "psnr": self.psnr,
                "max_error": self.max_error, "time_budget": self.time_budget, "seed": self.seed,
                "steps": self.steps}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "InrCodec":
        config = dict(config)
        config.pop("id", None)
        return cls(**config)
