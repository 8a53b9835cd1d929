"""Rate-distortion comparison of inrcodec against the classical codecs, behind one interface.

Our codec is wrapped as a ``baselines.Codec`` (``InrcodecCodec``) whose *quality is the target bpp*, so that
``baselines.measure`` / ``sweep`` time, size and score it exactly like JPEG or AVIF: ``encode`` fits the model and
returns the whole ``.inrc`` file, ``decode`` runs ``decompress``. ``compare`` then

1. runs each inrcodec model at >= 3 target rates (default 0.25, 0.5, 1 bpp),
2. runs each baseline over the matching bpp range (``sweep_to_range`` over [lowest / 2, highest * 2] of the rates
   our codec actually reached, so that the baseline curves enclose ours),
3. computes the Bjøntegaard delta rate of every inrcodec curve against every baseline curve (``metrics.bd_rate``:
   log-rate, cubic fit, over the shared PSNR interval; negative = inrcodec needs fewer bits for the same PSNR).

The result is a JSON-able dict (documented in ``compare``); ``plot_rd`` draws it and ``format_table`` prints it. The
CLI command ``inrcodec compare`` (``register_cli``) writes both next to each other.

Measurement conventions (DESIGN.md, contract 2): bpp counts every byte of each stream over H * W; PSNR is on the
decoded image in its own dtype (8-bit: peak 255); MS-SSIM is pytorch-msssim's (fewer scales below 161 px, see
``metrics.ms_ssim``); times are wall-clock seconds of one run on this machine (encode includes the whole fit).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from . import __version__, baselines, metrics
from .errors import InputError
from .signal import Signal

__all__ = [
    "InrcodecCodec",
    "DEFAULT_CODECS",
    "DEFAULT_RATES",
    "PREFIX",
    "compare",
    "bd_rates",
    "software_versions",
    "rd_figure",
    "plot_rd",
    "format_table",
    "to_json",
    "crop_signal",
    "register_cli",
]

PREFIX = "inrcodec-"  # curve names of our models: "inrcodec-fourier", ...
DEFAULT_CODECS = ("jpeg", "webp", "avif", "jpegxl", "jpeg2000")
DEFAULT_RATES = (0.25, 0.5, 1.0)
BASELINE_POINTS = 8
# Baselines sweep [lowest rate / RANGE_FACTOR, highest rate * RANGE_FACTOR]: wide enough that their PSNR range
# usually encloses ours (BD-rate integrates only over the shared PSNR interval), narrow enough to stay relevant.
RANGE_FACTOR = 2.0
FRAGILE_OVERLAP_DB = 1.0  # BD-rate over a shorter shared PSNR interval rests on the fits' ends: flagged

# progress(fraction in [0, 1], message)
ProgressFn = Callable[[float, str], None]


# ---------------------------------------------------------------------------------------------------------------
# our codec behind the baselines interface
# ---------------------------------------------------------------------------------------------------------------
class InrcodecCodec(baselines.ImageCodec):
    """inrcodec with one model, as a ``baselines.Codec``: ``quality`` is the target bpp (whole file).

    ``encode`` fits ``model`` to the image and returns the ``.inrc`` bytes; ``decode`` decompresses them. The
    report of the last ``encode`` (fit steps, seconds, whether the rate target was met ...) is kept in
    ``last_report``. Images only for now (``kind = "image"``, uint8/uint16, 1-4 channels).
    """

    qualities = DEFAULT_RATES
    quality_bounds = (1e-3, 64.0)
    integer_quality = False
    log_quality = True  # rate spans decades: search it on a log scale
    channels = (1, 2, 3, 4)
    dtypes = ("uint8", "uint16")

    def __init__(self, model: str, *, time_budget: float | None = None, steps: int | None = None, seed: int = 0):
        self.model = str(model)
        self.name = PREFIX + self.model
        self.time_budget = time_budget
        self.steps = steps
        self.seed = int(seed)
        self.last_report: dict[str, Any] = {}

    @property
    def available(self) -> bool:
        from .models import get_model

        try:
            get_model(self.model)
        except InputError:
            return False
        return True

    def why_unsupported(self, data: np.ndarray) -> str | None:
        if not self.available:
            return f"model {self.model!r} is not registered"
        return super().why_unsupported(data)

    def encode(self, data: np.ndarray, quality: float) -> bytes:
        data = np.asarray(data)
        self.check(data, quality)
        return self._encode(np.ascontiguousarray(data), float(quality))

    def _encode(self, data: np.ndarray, quality: float) -> bytes:
        from .codec import compress

        arr = data[:, :, None] if data.ndim == 2 else data
        result = compress(Signal(arr, kind="image"), self.model, bpp=quality, time_budget=self.time_budget,
                          seed=self.seed, steps=self.steps)
        self.last_report = dict(result.report)
        self.last_data = result.data
        return result.data

    def _decode(self, data: bytes) -> np.ndarray:
        from .codec import decompress

        return decompress(data).data

    def library_version(self) -> str:
        return f"inrcodec {__version__}"

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "model": self.model, "time_budget": self.time_budget, "steps": self.steps,
                "seed": self.seed}


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
def _as_signal(signal: Any) -> Signal:
    if isinstance(signal, Signal):
        return signal
    arr = np.asarray(signal)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return Signal(np.ascontiguousarray(arr), kind="image")


def crop_signal(signal: Signal, width: int, height: int, x: int | None = None, y: int | None = None) -> Signal:
    """A ``width`` x ``height`` window of an image signal; centred unless ``x``/``y`` (top-left) are given."""
    h, w = signal.coord_shape[:2]
    if signal.kind != "image" or signal.ndim_coords != 2:
        raise InputError("crop applies to images only")
    if not (0 < width <= w and 0 < height <= h):
        raise InputError(f"crop {width}x{height} does not fit in the {w}x{h} image")
    x0 = (w - width) // 2 if x is None else int(x)
    y0 = (h - height) // 2 if y is None else int(y)
    if not (0 <= x0 <= w - width and 0 <= y0 <= h - height):
        raise InputError(f"crop {width}x{height}+{x0}+{y0} does not fit in the {w}x{h} image")
    data = np.ascontiguousarray(signal.data[y0:y0 + height, x0:x0 + width])
    meta = dict(signal.metadata, crop=[width, height, x0, y0])
    return Signal(data, kind=signal.kind, value_range=signal.value_range, metadata=meta)


def _finite_points(points: Iterable[dict]) -> list[dict]:
    """Points usable in a log-rate fit and on a plot: finite PSNR (lossless points have inf) and positive bpp."""
    return [p for p in points if p.get("psnr") is not None and math.isfinite(p["psnr"]) and p["bpp"] > 0]


def _resolve_codecs(names: Sequence[str]) -> list[baselines.Codec]:
    out, seen = [], set()
    for n in names:
        codec = baselines.get_codec(n)  # InputError for unknown names
        if codec.kind != "image":
            raise InputError(f"codec {codec.name!r} is a {codec.kind} codec; compare takes image codecs only")
        if codec.name not in seen:
            seen.add(codec.name)
            out.append(codec)
    return out


def _resolve_models(names: Sequence[str]) -> list[str]:
    from .models import get_model

    out = []
    for n in names:
        get_model(n)  # InputError naming the available models
        if n not in out:
            out.append(n)
    return out


def _check_rates(rates: Sequence[float]) -> list[float]:
    try:
        r = sorted({float(x) for x in rates})
    except (TypeError, ValueError):
        raise InputError(f"rates must be numbers, got {rates!r}") from None
    if len(r) < 3:
        raise InputError(f"give at least 3 distinct rates for an RD curve (BD-rate needs 3 points), got {r}")
    if not all(math.isfinite(x) and 0 < x <= InrcodecCodec.quality_bounds[1] for x in r):
        raise InputError(f"rates must be in (0, {InrcodecCodec.quality_bounds[1]:g}] bpp, got {r}")
    return r


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def software_versions() -> dict[str, Any]:
    """Versions of everything that shapes the numbers, and the machine they were taken on."""
    import imagecodecs
    import torch

    return {
        "inrcodec": __version__,
        "torch": torch.__version__,
        "imagecodecs": imagecodecs.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------------------------------------------------------
# BD-rate
# ---------------------------------------------------------------------------------------------------------------
def bd_rates(curves: dict[str, list[dict]]) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, str]]]:
    """BD-rate (%) of every inrcodec curve against every other curve in ``curves``.

    Returns ``(table, notes)``: ``table[ours][baseline]`` is the percentage (negative: ours needs fewer bits at equal
    PSNR) or ``None`` when it cannot be computed, and ``notes[ours][baseline]`` says why (curves that do not overlap
    in PSNR, fewer than 3 distinct points) or, for a number, the PSNR interval it was averaged over.
    """
    ours = [k for k in curves if k.startswith(PREFIX)]
    others = [k for k in curves if not k.startswith(PREFIX)]
    table: dict[str, dict[str, float | None]] = {}
    notes: dict[str, dict[str, str]] = {}
    for m in ours:
        table[m], notes[m] = {}, {}
        pm = _finite_points(curves[m])
        for b in others:
            pb = _finite_points(curves[b])
            try:
                value = metrics.bd_rate(pb, pm)
            except InputError as exc:
                table[m][b] = None
                notes[m][b] = str(exc)
                continue
            if not math.isfinite(value):
                table[m][b], notes[m][b] = None, "fit diverged"
                continue
            table[m][b] = value
            lo = max(min(p["psnr"] for p in pm), min(p["psnr"] for p in pb))
            hi = min(max(p["psnr"] for p in pm), max(p["psnr"] for p in pb))
            notes[m][b] = f"over {lo:.2f}-{hi:.2f} dB" + (
                f" (only {hi - lo:.2f} dB of overlap: fragile)" if hi - lo < FRAGILE_OVERLAP_DB else "")
    return table, notes


# ---------------------------------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------------------------------
def compare(signal: Signal | np.ndarray, codecs: Sequence[str] = DEFAULT_CODECS, models: Sequence[str] | None = None,
            rates: Sequence[float] | None = None, time_budget: float | None = None,
            progress: ProgressFn | None = None, *, steps: int | None = None, seed: int = 0, name: str | None = None,
            bpp_range: tuple[float, float] | None = None, baseline_points: int = BASELINE_POINTS) -> dict[str, Any]:
    """Rate-distortion curves of inrcodec models and classical codecs on one image, with BD-rates.

    ``codecs``: baseline names (aliases jpg/jxl/j2k accepted). ``models``: inrcodec models (``None``: the default
    image model; ``[]``: baselines only). ``rates``: target bpp for our models (>= 3, default 0.25/0.5/1).
    ``time_budget``: seconds per fit; ``steps``: optimisation steps per fit (default: the model's). ``bpp_range``:
    the range the baselines are swept over (default: derived from the rates our models reached, see module doc).
    ``progress(fraction, message)`` is called before each measurement and once at the end.

    Returns::

        {"input": {"name", "shape", "dtype", "pixels"},
         "curves": {"jpeg": [{"bpp", "psnr", "ms_ssim", "encode_s", "decode_s", "bytes", "quality", ...}, ...],
                    ..., "inrcodec-fourier": [... plus "target_bpp", "target_met", "fit_steps", "fit_seconds"]},
         "bd_rate": {"inrcodec-fourier": {"jpeg": -12.3 | None, ...}},
         "bd_rate_notes": {"inrcodec-fourier": {"jpeg": "over 27.10-31.90 dB" | why None}},
         "skipped": {codec: reason},      # baselines that cannot take this image or reach the range
         "settings": {...}, "codecs": {name: config}, "versions": {...}, "seconds": total}

    Curves are sorted by bpp. Unknown codec or model names raise ``InputError`` before any work is done.
    """
    t_start = time.perf_counter()
    sig = _as_signal(signal)
    if sig.kind != "image" or sig.ndim_coords != 2:
        raise InputError(f"compare takes images for now, got a {sig.kind} signal of shape {sig.data.shape}")
    base_codecs = _resolve_codecs(codecs)
    if models is None:
        from .presets import preset_model

        models = [preset_model("image", None, None, sig.describe())]
    model_names = _resolve_models(models)
    target_rates = _check_rates(DEFAULT_RATES if rates is None else rates)
    if time_budget is not None and not time_budget > 0:
        raise InputError(f"time budget must be positive, got {time_budget}")
    if steps is not None and steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    if bpp_range is not None and not (0 < bpp_range[0] < bpp_range[1]):
        raise InputError(f"bpp range must satisfy 0 < lo < hi, got {bpp_range}")
    if not base_codecs and not model_names:
        raise InputError("nothing to compare: no codecs and no models")

    total = len(model_names) * len(target_rates) + len(base_codecs)
    done = 0

    def report(message: str) -> None:
        if progress is not None:
            progress(min(done / max(total, 1), 1.0), message)

    curves: dict[str, list[dict]] = {}
    configs: dict[str, dict] = {}
    skipped: dict[str, str] = {}

    for model in model_names:
        codec = InrcodecCodec(model, time_budget=time_budget, steps=steps, seed=seed)
        configs[codec.name] = codec.get_config()
        points = []
        for rate in target_rates:
            report(f"{codec.name} at {rate:g} bpp")
            p = baselines.measure(codec, sig, rate)
            rep = codec.last_report
            p.update(target_bpp=rate, target_met=rep.get("target_met"), fit_steps=rep.get("fit_steps"),
                     fit_seconds=rep.get("fit_seconds"), fit_psnr_unquantised=rep.get("fit_psnr_unquantised"),
                     encode_cpu_s=rep.get("cpu_seconds"))
            if "search" in rep:  # an encoder-side search: each fit's coded result
                p["search"] = rep["search"]
            if model == "gaussian+dct":  # the same file without its restoration filters: a paired point
                from .codec import decompress
                from .models.gaussian_dct import without_restoration

                plain = without_restoration(codec.last_data)
                if plain is not None:
                    rec = decompress(plain).data
                    p["without_restoration"] = {"bytes": len(plain), "bpp": 8.0 * len(plain) / sig.num_pixels,
                                                "psnr": metrics.psnr(sig.data, rec)}
            points.append(p)
            done += 1
        curves[codec.name] = sorted(points, key=lambda p: p["bpp"])

    if bpp_range is None:
        reached = [p["bpp"] for name_ in curves for p in curves[name_]] or list(target_rates)
        bpp_range = (min(reached) / RANGE_FACTOR, max(reached) * RANGE_FACTOR)
    lo, hi = float(bpp_range[0]), float(bpp_range[1])

    for codec in base_codecs:
        report(f"{codec.name} over {lo:.3g}-{hi:.3g} bpp")
        configs[codec.name] = codec.get_config()
        reason = codec.why_unsupported(sig.data)
        if reason is not None:
            skipped[codec.name] = reason
        else:
            try:
                curves[codec.name] = baselines.sweep_to_range(codec, sig, lo, hi, n=baseline_points)
            except InputError as exc:  # e.g. the codec's smallest file is above the range on this image
                skipped[codec.name] = str(exc)
        done += 1

    table, notes = bd_rates(curves)
    h, w = sig.coord_shape
    result = {
        "input": {"name": name or str(sig.metadata.get("source", "signal")), "shape": list(sig.data.shape),
                  "dtype": str(sig.dtype), "pixels": int(h * w)},
        "curves": curves,
        "bd_rate": table,
        "bd_rate_notes": notes,
        "skipped": skipped,
        "settings": {"codecs": [c.name for c in base_codecs], "models": model_names, "rates": target_rates,
                     "time_budget": time_budget, "steps": steps, "seed": seed, "baseline_bpp_range": [lo, hi],
                     "baseline_points": baseline_points},
        "codecs": configs,
        "versions": software_versions(),
        "seconds": time.perf_counter() - t_start,
    }
    done = total
    report("done")
    return result


# ---------------------------------------------------------------------------------------------------------------
# output: JSON, plot, table
# ---------------------------------------------------------------------------------------------------------------
def _clean(obj: Any) -> Any:
    """JSON-safe copy: non-finite floats become None (strict JSON has no NaN/Infinity), numpy scalars plain."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def to_json(result: dict[str, Any]) -> str:
    """The result as strict JSON (inf/NaN written as null)."""
    return json.dumps(_clean(result), indent=2, allow_nan=False)


# Fixed colours, so that a codec looks the same in every plot; our models get the strong reds/pinks.
CODEC_COLORS = {"jpeg": "tab:orange", "webp": "tab:purple", "avif": "tab:blue", "avif-slow": "tab:cyan",
                "jpegxl": "tab:green", "jpeg2000": "tab:brown"}
MODEL_COLORS = {"fourier": "tab:red", "siren": "crimson", "hashgrid": "darkorange", "latentgrid": "deeppink",
                "gaussian": "black", "gaussian+dct": "darkred"}


def _style(name: str) -> dict[str, Any]:
    if name.startswith(PREFIX):
        style = {"linewidth": 2.4, "marker": "o", "markersize": 6, "zorder": 3}
        color = MODEL_COLORS.get(name[len(PREFIX):])
    else:
        style = {"linewidth": 1.3, "marker": ".", "markersize": 6, "zorder": 2}
        color = CODEC_COLORS.get(name)
    return {**style, "color": color} if color else style


def rd_figure(result: dict[str, Any], *, title: str | None = None, extra_curves: dict[str, dict] | None = None,
              xlim: tuple[float, float] | None = None):
    """A matplotlib Figure (Agg) of PSNR against bpp, one line per curve of ``result``.

    ``extra_curves``: ``{label: {"bpp": [...], "psnr": [...], "style": {...matplotlib kwargs}}}``, drawn dashed
    (published reference curves). The caller owns the figure (``plt.close(fig)`` when done).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    names = sorted(result["curves"], key=lambda n: (not n.startswith(PREFIX), n))
    for name in names:
        pts = _finite_points(result["curves"][name])
        if not pts:
            continue
        ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], label=name, **_style(name))
    for label, c in (extra_curves or {}).items():
        if not c.get("bpp"):
            continue
        style = {"linestyle": "--", "linewidth": 1.2, "marker": "x", "markersize": 5, **c.get("style", {})}
        ax.plot(c["bpp"], c["psnr"], label=label, **style)
    inp = result.get("input", {})
    shape = inp.get("shape") or []
    size = f" ({shape[1]}x{shape[0]})" if len(shape) >= 2 else ""
    ax.set_title(title or f"Rate-distortion: {inp.get('name', '')}{size}")
    ax.set_xlabel("bits per pixel (whole file)")
    ax.set_ylabel("PSNR (dB, RGB)")
    if xlim:
        ax.set_xlim(*xlim)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_rd(result: dict[str, Any], path: str | os.PathLike, **kwargs) -> Path:
    """Write the RD plot of ``result`` as a PNG at ``path`` (atomically); returns the path."""
    from .signals._atomic import atomic_output

    fig = rd_figure(result, **kwargs)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def _fmt_range(values: list[float], fmt: str) -> str:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "-"
    return f"{format(min(vals), fmt)}–{format(max(vals), fmt)}"


def format_table(result: dict[str, Any]):
    """A rich Table: one row per curve (points, bpp and PSNR ranges, median encode/decode seconds) and, for each
    inrcodec model, a column with its BD-rate against that row's codec ("n/a" with the reason in the caption)."""
    from rich.table import Table

    curves = result["curves"]
    ours = [n for n in curves if n.startswith(PREFIX)]
    inp = result.get("input", {})
    table = Table(title=f"{inp.get('name', '')} {'x'.join(map(str, inp.get('shape', [])))}", title_justify="left")
    table.add_column("codec", no_wrap=True)
    for col in ("pts", "bpp", "PSNR dB", "MS-SSIM", "enc s", "dec s"):
        table.add_column(col, justify="right")
    for m in ours:
        table.add_column(f"BD-rate\n{m[len(PREFIX):]}", justify="right", no_wrap=True)
    captions = []
    names = sorted(curves, key=lambda n: (not n.startswith(PREFIX), n))
    for n in names:
        pts = curves[n]
        row = [n, str(len(pts)), _fmt_range([p["bpp"] for p in pts], ".3g"),
               _fmt_range([p["psnr"] for p in pts], ".1f"),
               _fmt_range([p.get("ms_ssim") for p in pts], ".3f"),
               f"{np.median([p['encode_s'] for p in pts]):.3g}" if pts else "-",
               f"{np.median([p['decode_s'] for p in pts]):.3g}" if pts else "-"]
        for m in ours:
            if n.startswith(PREFIX):
                row.append("")
                continue
            v = result.get("bd_rate", {}).get(m, {}).get(n)
            if v is None or not math.isfinite(v):
                why = result.get("bd_rate_notes", {}).get(m, {}).get(n, "no value")
                captions.append(f"{m} vs {n}: n/a ({why})")
                row.append("n/a")
            else:
                note = result.get("bd_rate_notes", {}).get(m, {}).get(n, "")
                if "fragile" in note:
                    captions.append(f"{m} vs {n}: * {note}")
                row.append(f"{v:+.1f} %" + (" *" if "fragile" in note else ""))
        table.add_row(*row)
    for codec, why in result.get("skipped", {}).items():
        captions.append(f"{codec} skipped: {why}")
    if ours:
        captions.insert(0, "BD-rate: extra bits the inrcodec model needs for the same PSNR as the row's codec "
                           "(negative = inrcodec smaller)")
    if captions:
        table.caption = "\n".join(captions)
        table.caption_justify = "left"
    return table


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------
def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def parse_crop(text: str) -> tuple[int, int, int | None, int | None]:
    """``WxH`` (centred) or ``WxH+X+Y`` (top-left corner) -> (w, h, x, y)."""
    import re

    m = re.fullmatch(r"\s*(\d+)[xX](\d+)(?:\+(\d+)\+(\d+))?\s*", text or "")
    if not m:
        raise InputError(f"--crop {text!r}: expected WxH or WxH+X+Y, e.g. 256x256")
    w, h = int(m.group(1)), int(m.group(2))
    x = None if m.group(3) is None else int(m.group(3))
    y = None if m.group(4) is None else int(m.group(4))
    return w, h, x, y


def register_cli(app) -> None:
    """Add ``inrcodec compare`` to the typer app (called by ``inrcodec.cli`` at start-up)."""
    import typer

    @app.command("compare")
    def compare_cmd(
        input: Path = typer.Argument(..., help="image (.png, .tif, ...), video (.mp4, .mkv, ..., frames) or field "
                                                "(.npy, raw, .nc/.h5/.zarr)"),
        codecs: Optional[str] = typer.Option(None, "--codecs",
                                             help="baselines, comma-separated: jpeg,webp,avif,avif-slow,jxl,j2k "
                                                  "(images; default all of them), x264,x265,svtav1 (video) or "
                                                  "sz3,zfp,sperr (fields)"),
        models: Optional[str] = typer.Option(None, "--models", "-m",
                                             help="inrcodec models, comma-separated (default: the image default; "
                                                  "'none' for baselines only)"),
        rates: str = typer.Option(",".join(f"{r:g}" for r in DEFAULT_RATES), "--rates",
                                  help="target bpp for our models, comma-separated (>= 3)"),
        time_budget: Optional[float] = typer.Option(None, "--time-budget", help="seconds per fit"),
        steps: Optional[int] = typer.Option(None, "--steps", help="optimisation steps per fit (default: model's)"),
        seed: int = typer.Option(0, "--seed", help="random seed of the fits"),
        crop: Optional[str] = typer.Option(None, "--crop", help="compare on a WxH (centred) or WxH+X+Y window"),
        output: Optional[Path] = typer.Option(None, "-o", "--output-dir",
                                              help="folder for <stem>.json and <stem>.png (default: <stem>-compare "
                                                   "next to INPUT)"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress lines"),
        var: Optional[str] = typer.Option(None, "--var", help="fields: the dataset variable to compare"),
        bounds: Optional[str] = typer.Option(None, "--bounds",
                                             help="fields: relative error bounds, comma-separated "
                                                  "(default 1e-1 ... 1e-5)"),
    ) -> None:
        """Rate-distortion curves of inrcodec vs JPEG/WebP/AVIF/JPEG XL/JPEG 2000 (images) or vs SZ3/ZFP/SPERR at
        the same error bounds (fields: .npy, raw, NetCDF/HDF5/zarr with --var), with BD-rates."""
        from rich.console import Console

        from .signals import load
        from .signals._atomic import atomic_output

        from .compare_field import DATASET_SUFFIXES, run_cli as compare_field_cli
        from .signals.video import is_video_path

        video = is_video_path(input)
        if video:  # a clip: video baselines and rates unless others were asked for (video_compare.py)
            from .video_compare import DEFAULT_VIDEO_CODECS, DEFAULT_VIDEO_RATES

            codecs = codecs or ",".join(DEFAULT_VIDEO_CODECS)
            if rates == ",".join(f"{r:g}" for r in DEFAULT_RATES):
                rates = ",".join(f"{r:g}" for r in DEFAULT_VIDEO_RATES)
        else:  # a field: SZ3/ZFP/SPERR at the same bounds (compare_field.py)
            field_codecs = codecs is not None and all(
                isinstance(baselines.get_codec(c), baselines.ArrayCodec) for c in _split(codecs))
            if (var is not None or bounds is not None or field_codecs or input.suffix.lower() in DATASET_SUFFIXES
                    or (input.exists() and not input.is_dir() and load(input).kind != "image")):
                return compare_field_cli(input, var, codecs, bounds, output, quiet)
            codecs = codecs or ",".join(DEFAULT_CODECS)

        codec_names = _split(codecs)
        if not video:
            _resolve_codecs(codec_names)  # fail on a bad name before loading anything
        model_list = None if models is None else ([] if models.strip().lower() == "none" else _split(models))
        if model_list:
            _resolve_models(model_list)
        try:
            rate_list = [float(r) for r in _split(rates)]
        except ValueError:
            raise InputError(f"--rates {rates!r}: expected comma-separated numbers") from None
        _check_rates(rate_list)
        if time_budget is not None and not time_budget > 0:
            raise InputError("--time-budget must be positive")
        if steps is not None and steps < 1:
            raise InputError("--steps must be >= 1")
        crop_box = parse_crop(crop) if crop else None

        out_dir = output if output is not None else input.parent / f"{input.stem}-compare"
        json_path, png_path = out_dir / f"{input.stem}.json", out_dir / f"{input.stem}.png"
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError(f"{out_dir}: exists and is not a directory")
        if input.exists() and any(p.exists() and p.samefile(input) for p in (json_path, png_path)):
            raise InputError(f"{input}: output would overwrite the input; choose another -o folder")

        if video:
            from .video_compare import run_cli

            command = "inrcodec compare " + " ".join(
                [str(input)] + _cli_args(codecs, models, rates, time_budget, steps, seed, crop, output))
            return run_cli(input, codec_names, model_list, [float(r) for r in _split(rates)], time_budget, steps,
                           seed, out_dir, json_path, png_path, quiet, command)
        sig = load(input)
        if sig.kind != "image":
            raise InputError(f"{input}: compare takes images for now (got {sig.kind})")
        name = input.name
        if crop_box is not None:
            sig = crop_signal(sig, *crop_box)
            cw, ch, cx, cy = sig.metadata["crop"]
            name = f"{input.name} [{cw}x{ch}+{cx}+{cy}]"

        console = Console(stderr=True)

        def progress(frac: float, message: str) -> None:
            if not quiet:
                console.print(f"[{100 * frac:3.0f}%] {message}", highlight=False)

        result = compare(sig, codec_names, model_list, rate_list, time_budget, progress, steps=steps, seed=seed,
                         name=name)
        result["command"] = "inrcodec compare " + " ".join(
            [str(input)] + [a for a in _cli_args(codecs, models, rates, time_budget, steps, seed, crop, output)])
        out_dir.mkdir(parents=True, exist_ok=True)
        text = to_json(result)
        fig = rd_figure(result)
        with atomic_output(png_path) as tmp_png, atomic_output(json_path) as tmp_json:
            fig.savefig(tmp_png, format="png")
            tmp_json.write_text(text)
        # piped output would be cut to 80 columns, too narrow for the table
        Console(width=None if sys.stdout.isatty() else 150).print(format_table(result))
        typer.echo(f"wrote {json_path} and {png_path}")


def _cli_args(codecs, models, rates, time_budget, steps, seed, crop, output) -> list[str]:
    args = ["--codecs", codecs, "--rates", rates]
    if models is not None:
        args += ["--models", models]
    if time_budget is not None:
        args += ["--time-budget", f"{time_budget:g}"]
    if steps is not None:
        args += ["--steps", str(steps)]
    if seed:
        args += ["--seed", str(seed)]
    if crop:
        args += ["--crop", crop]
    if output is not None:
        args += ["-o", str(output)]
    return args
