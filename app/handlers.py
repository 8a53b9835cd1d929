"""What the UI does, without the UI: fit and compress, decode, compare. Gradio-free so the logic stays small and
the layout in ``main.py`` only wires components to these functions. Only inrcodec's public API is used.

Every problem the user can fix is an ``InputError`` whose message names the uploaded file by its name (not the
server's temporary path); ``main.py`` shows it in the page.
"""

from __future__ import annotations

import html
import inspect
import json
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from inrcodec import InputError, Signal, compress, decompress, load, save

from .display import to_display

MAX_UPLOAD_BYTES = 25 * 2**20  # also Gradio's upload cap (launch(max_file_size=...))
MAX_FIT_VALUES = 2**23  # samples x channels: ~2.8 Mpx RGB; larger inputs would not fit in a UI-sized budget
MAX_RENDER_VALUES = 2**26  # decode at another size: 64 M values (e.g. 4.8k x 4.8k RGB)
# 0: the preset's own schedule. (A fixed 20 s gave kodim19 at 1 bpp 29.5 dB after 101 steps on a loaded machine,
# where the command line's default, the medium preset, gives 32.4 dB.)
DEFAULT_TIME_BUDGET = 0.0
PRESETS = ("fast", "medium", "slow")
DEFAULT_PRESET = "medium"
DEFAULT_BPP = 1.0
DEFAULT_PSNR = 30.0
TARGETS = ("bpp", "PSNR (dB)", "none")
AUTO = "auto"
PREVIEW_EVERY = 1.5  # seconds between preview renders (each costs one full render of the current fit)
WORK_TTL = 3600.0  # seconds a request's output folder is kept

_WORK_ROOT = Path(tempfile.gettempdir()) / "inrcodec-ui"


# -- small helpers ---------------------------------------------------------------------------------------------


def _upload_path(file: Any, what: str = "a file") -> Path:
    """The uploaded file's path (Gradio gives a str, or an object with ``.name``/``.path``), checked for size."""
    if file is None or file == "":
        raise InputError(f"upload {what} first")
    if isinstance(file, (str, Path)):
        path = Path(file)
    else:
        path = Path(getattr(file, "path", None) or getattr(file, "name", None) or str(file))
    if not path.is_file():
        raise InputError(f"{path.name}: the upload is missing, please upload it again")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name}: file is empty")
    if size > MAX_UPLOAD_BYTES:
        raise InputError(f"{path.name}: {_size_text(size)} is over the {_size_text(MAX_UPLOAD_BYTES)} upload cap")
    return path


def _size_text(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.1f} KB"


def _named(exc: InputError, path: Path) -> InputError:
    """The same error naming the file by its name: the server's temporary path replaced, or the name prefixed."""
    text = str(exc).replace(str(path), path.name)
    if path.name not in text:
        text = f"{path.name}: {text}"
    return type(exc)(text) if text != str(exc) else exc


def load_upload(file: Any, what: str = "a signal file") -> tuple[Path, Signal]:
    path = _upload_path(file, what)
    try:
        return path, load(path)
    except InputError as exc:
        raise _named(exc, path) from None


def workdir() -> Path:
    """A fresh folder for one request's output files; folders older than WORK_TTL are removed on the way."""
    _WORK_ROOT.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in _WORK_ROOT.iterdir():
        try:
            if now - old.stat().st_mtime > WORK_TTL:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(dir=_WORK_ROOT))


def decoded_extension(desc: dict[str, Any]) -> str:
    """Where a decoded signal is written: like ``inrcodec decode``'s default (8/16-bit PNG, WAV, else .npy)."""
    if desc["kind"] == "image" and desc["dtype"] in ("uint8", "uint16") and desc["shape"][-1] in (1, 2, 3, 4):
        return ".png"
    if desc["kind"] == "audio":
        return ".wav"
    return ".npy"


def image_quality(original: Signal, decoded: Signal) -> float | None:
    """MS-SSIM for pictures (images and 2-D fields); None where it has no meaning (audio, volumes, NaNs)."""
    from inrcodec.metrics import ms_ssim

    if original.ndim_coords != 2 or original.kind not in ("image", "array"):
        return None
    ref, test = original.data, decoded.data
    if original.kind == "image" and ref.shape[-1] in (2, 4):  # alpha is not part of the picture's quality
        ref, test = ref[..., :-1], test[..., :-1]
    try:
        return float(ms_ssim(ref, test, data_range=original.value_range[1] - original.value_range[0]))
    except InputError:
        return None


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else format(value, spec)


# -- Fit & compress --------------------------------------------------------------------------------------------


@dataclass
class FitProgress:
    stage: str
    step: int
    fraction: float
    psnr: float  # of the unquantised fit, on the normalised signal
    elapsed: float
    preview: np.ndarray | None = None  # display picture of the current fit, when the codec offers one
    history: list[tuple[float, float]] = field(default_factory=list)  # (seconds, psnr)


@dataclass
class FitOutcome:
    original: np.ndarray  # display pictures for the before/after slider
    decoded: np.ndarray
    metrics: dict[str, Any]
    inrc_path: Path
    decoded_path: Path
    history: list[tuple[float, float]]


class _Cancelled(Exception):
    pass


def fit_options(model: str | None, target: str | None, target_value: float | None, time_budget: float | None,
                seed: float | None, steps: float | None, preset: str | None = None) -> dict[str, Any]:
    """Checked keyword arguments for ``compress`` from the form's values (None/empty means the default; a time
    budget of 0 means the preset's schedule)."""
    opts: dict[str, Any] = {"model": None if model in (None, "", AUTO) else model}
    preset = preset or DEFAULT_PRESET
    if preset not in PRESETS:
        raise InputError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    opts["preset"] = preset
    target = target or TARGETS[0]
    if target not in TARGETS:
        raise InputError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    if target == "bpp":
        value = DEFAULT_BPP if target_value is None else float(target_value)
        if not 0 < value <= 64:
            raise InputError(f"target bpp must be in (0, 64], got {value:g}")
        opts["bpp"] = value
    elif target == "PSNR (dB)":
        value = DEFAULT_PSNR if target_value is None else float(target_value)
        if not 0 < value <= 150:
            raise InputError(f"target PSNR must be in (0, 150] dB, got {value:g}")
        opts["psnr"] = value
    budget = DEFAULT_TIME_BUDGET if time_budget in (None, "") else float(time_budget)
    if not 0 <= budget <= 3600:
        raise InputError(f"time budget must be in [0, 3600] seconds (0: the preset's), got {budget:g}")
    if budget > 0:
        opts["time_budget"] = budget
    opts["seed"] = 0 if seed is None else int(seed)
    if steps not in (None, 0, "") and int(steps) != 0:
        if int(steps) < 1:
            raise InputError(f"steps must be a positive number (0 = the model's default), got {steps}")
        opts["steps"] = int(steps)
    return opts


def codec_has_preview() -> bool:
    """Whether ``compress`` can hand out renders of the fit in progress (``preview=fn(step, render)``)."""
    return "preview" in inspect.signature(compress).parameters


def fit_stream(file: Any, model: str | None = None, target: str | None = None, target_value: float | None = None,
               time_budget: float | None = None, seed: float | None = 0, steps: float | None = None,
               preset: str | None = None) -> Iterator[FitProgress | FitOutcome]:
    """Fit and compress an uploaded file. Yields FitProgress while fitting (at each evaluation of the fit, with
    a preview picture every PREVIEW_EVERY seconds where the codec offers renders), then one FitOutcome."""
    path, signal = load_upload(file)
    if signal.data.size > MAX_FIT_VALUES:
        raise InputError(f"{path.name}: {signal.data.size:,} values is more than this UI fits "
                         f"({MAX_FIT_VALUES:,}); use the command line (inrcodec fit) for large signals")
    opts = fit_options(model, target, target_value, time_budget, seed, steps, preset)
    if "steps" not in opts and "time_budget" in opts:
        # On the page a budget is a cap: the fit also stops at the preset's number of steps, so a small picture
        # comes back in seconds. (The command line spends a --time-budget in full, for quality.)
        from inrcodec.models import get_model
        from inrcodec.presets import resolve
        plan = resolve(signal.kind, signal.num_pixels, opts["preset"], opts["model"], None, None,
                       lambda m: get_model(m).default_steps, signal.describe())
        opts["steps"] = plan.steps

    events: queue.Queue = queue.Queue()
    cancel = threading.Event()
    last_preview = [-PREVIEW_EVERY]

    def on_progress(stage: str, step: int, fraction: float, psnr_db: float, elapsed: float) -> None:
        if cancel.is_set():
            raise _Cancelled()  # unwinds compress() in this worker thread when the page goes away
        events.put(("progress", FitProgress(stage, step, fraction, psnr_db, elapsed)))

    def on_preview(step: int, render) -> None:
        if cancel.is_set():
            raise _Cancelled()
        now = time.perf_counter()
        if now - last_preview[0] >= PREVIEW_EVERY:
            last_preview[0] = now
            events.put(("preview", to_display(render(), signal)))

    def work() -> None:
        try:
            extra = {"preview": on_preview} if codec_has_preview() else {}
            events.put(("done", compress(signal, progress=on_progress, **opts, **extra)))
        except BaseException as exc:  # handed to the request's thread, which reports it
            events.put(("error", exc))

    worker = threading.Thread(target=work, name="inrcodec-ui-fit", daemon=True)
    worker.start()
    history: list[tuple[float, float]] = []
    preview = None
    last: FitProgress | None = None
    try:
        while True:
            kind, payload = events.get()
            if kind == "progress":
                if np.isfinite(payload.psnr):
                    history.append((round(payload.elapsed, 3), round(float(payload.psnr), 3)))
                payload.preview, payload.history = preview, list(history)
                last = payload
                yield payload
            elif kind == "preview":
                preview = payload
                if last is not None:  # show it now rather than at the next evaluation
                    last = replace(last, preview=preview)
                    yield last
            elif kind == "error":
                if isinstance(payload, InputError):
                    raise _named(payload, path) from None
                raise payload
            else:
                result = payload
                break
    finally:
        cancel.set()
    yield _finish(path, signal, result, opts, history)


def _finish(path: Path, signal: Signal, result, opts: dict[str, Any], history) -> FitOutcome:
    decoded = decompress(result.data)  # decode the file itself: what the user downloads is what is measured
    report = result.report
    out = workdir()
    inrc_path = out / (path.stem + ".inrc")
    inrc_path.write_bytes(result.data)
    decoded_path = out / (path.stem + ".decoded" + decoded_extension(signal.describe()))
    save(decoded, decoded_path)
    metrics = {
        "file": path.name,
        "model": report.get("model"),
        "preset": report.get("preset"),
        "bytes": int(report["bytes"]),
        "bpp": float(report["bpp"]),
        "psnr": float(report["psnr"]),
        "ms_ssim": image_quality(signal, decoded),
        "encode_seconds": float(report["seconds"]),
        "target": {k: opts[k] for k in ("bpp", "psnr") if k in opts} or None,
        "target_met": report.get("target_met"),
        "fit_steps": report.get("fit_steps"),
        "shape": list(signal.data.shape),
        "dtype": str(signal.dtype),
        "original_bytes": path.stat().st_size,
    }
    return FitOutcome(to_display(signal), to_display(decoded, signal), metrics, inrc_path, decoded_path, history)


def metrics_markdown(m: dict[str, Any]) -> str:
    target = m.get("target") or {}
    note = ""
    if m.get("target_met") is False:
        note = " (target not reached: best found)"
    rows = [
        ("Size", f"{m['bytes']:,} bytes ({m['original_bytes'] / max(m['bytes'], 1):.1f}x smaller than the upload)"),
        ("Bits per pixel", f"{m['bpp']:.4f}" + (f" (target {target['bpp']:g})" if "bpp" in target else "")),
        ("PSNR", f"{_fmt(m['psnr'], '.2f')} dB" + (f" (target {target['psnr']:g} dB)" if "psnr" in target else "")),
        ("MS-SSIM", _fmt(m["ms_ssim"], ".4f")),
        ("Encode time", f"{m['encode_seconds']:.1f} s ({m['fit_steps']} fit steps)"),
        ("Model", str(m["model"]) + (f" (preset {m['preset']})" if m.get("preset") else "")),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"| Metric | Value |\n|---|---|\n{table}\n\n{note.strip()}"


def status_html(head: str, text: str, fraction: float | None = None) -> str:
    """One status line (``head`` in bold) with a progress bar under it when ``fraction`` is given."""
    bar = "" if fraction is None else (
        f'<div class="bar" role="progressbar" aria-valuenow="{100 * min(max(fraction, 0), 1):.0f}" '
        f'aria-valuemin="0" aria-valuemax="100"><div style="width:{100 * min(max(fraction, 0), 1):.1f}%"></div></div>')
    return f"<div><b>{html.escape(head)}</b> - {html.escape(text)}{bar}</div>"


def progress_html(p: FitProgress, budget: float | None) -> str:
    of = f" of {budget:g} s" if budget else ""
    text = f"step {p.step}, PSNR {_fmt(p.psnr, '.2f')} dB (before quantisation), {p.elapsed:.1f} s{of}"
    return status_html("Fitting", text, p.fraction)


def done_html(m: dict[str, Any]) -> str:
    return status_html("Done", f"{m['bytes']:,} bytes, {m['bpp']:.3f} bpp, PSNR {_fmt(m['psnr'], '.2f')} dB "
                       f"in {m['encode_seconds']:.1f} s", 1.0)


# -- Decode ----------------------------------------------------------------------------------------------------


def container_info(data: bytes, name: str) -> dict[str, Any]:
    from inrcodec.container import read_container

    c = read_container(data)
    shape = list(c.signal["shape"])
    pixels = int(np.prod(shape[:-1]))
    return {
        "file": name,
        "bytes": len(data),
        "bpp": 8.0 * len(data) / pixels,
        "kind": c.signal["kind"],
        "shape": shape,
        "dtype": c.signal["dtype"],
        "value_range": list(c.signal["range"]),
        "model": c.model,
        "config": c.config,
        "sections": {k: len(v) for k, v in c.sections.items()},
        "metadata": c.signal.get("meta") or {},
        "encoder": (c.extra or {}).get("encoder"),
    }


def info_markdown(info: dict[str, Any]) -> str:
    shape = "x".join(str(s) for s in info["shape"])
    sections = ", ".join(f"{k} {v:,} B" for k, v in info["sections"].items())
    rows = [
        ("File", f"{info['file']} ({info['bytes']:,} bytes, {info['bpp']:.4f} bpp)"),
        ("Signal", f"{info['kind']} {shape} {info['dtype']}"),
        ("Model", f"{info['model']} `{json.dumps(info['config'])}`"),
        ("Sections", sections or "none"),
    ]
    if info.get("encoder"):
        rows.append(("Encoder", info["encoder"]))
    return "| Header | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def parse_size(text: str, ndim: int) -> tuple[int, ...]:
    """'WxH' (width first, like the CLI's --size) -> (H, W); 'N' for audio; 'XxYxZ' for volumes."""
    try:
        parts = [int(p) for p in text.lower().replace(" ", "").split("x")]
    except ValueError:
        parts = []
    if len(parts) != ndim or any(p <= 0 or p > (1 << 16) for p in parts):
        raise InputError(f"size {text!r}: expected {'x'.join(['N'] * ndim)} (width first) with positive sizes")
    return tuple(reversed(parts))


@dataclass
class DecodeOutcome:
    info: dict[str, Any]
    picture: np.ndarray
    path: Path
    shape: list[int]
    picture_path: Path | None = None  # the picture as a PNG named after this request's own work folder


def decode_file(file: Any, scale: float | None = 1.0, size: str | None = "") -> DecodeOutcome:
    path = _upload_path(file, "an .inrc file")
    data = path.read_bytes()
    try:
        info = container_info(data, path.name)
        native = tuple(info["shape"][:-1])
        shape = None
        if size and size.strip():
            shape = parse_size(size.strip(), len(native))
        elif scale not in (None, "") and float(scale) != 1.0:
            if not 0 < float(scale) <= 16:
                raise InputError(f"scale must be in (0, 16], got {float(scale):g}")
            shape = tuple(max(1, round(n * float(scale))) for n in native)
        if shape is not None and int(np.prod(shape)) * info["shape"][-1] > MAX_RENDER_VALUES:
            raise InputError(f"rendering at {'x'.join(map(str, reversed(shape)))} is larger than this UI allows")
        signal = decompress(data, shape=shape)
    except InputError as exc:
        raise _named(exc, path) from None
    desc = signal.describe()
    suffix = "" if shape is None else "." + "x".join(str(n) for n in reversed(shape))
    out = workdir() / (path.stem + ".decoded" + suffix + decoded_extension(desc))
    save(signal, out)
    picture = to_display(signal)
    # Gradio caches a returned array under a hash of its content and writes that file without a rename, so two
    # clients decoding the same file at once could be served each other's half-written picture (seen in CI as a
    # truncated response). A PNG with a name unique to this request gets a cache path of its own.
    picture_path = out.parent / f"view-{out.parent.name}.png"
    import imageio.v3 as iio

    iio.imwrite(picture_path, picture)
    return DecodeOutcome(info, picture, out, list(signal.data.shape), picture_path)


# -- Compare ---------------------------------------------------------------------------------------------------

CLASSICAL_CODECS = ("jpeg", "webp", "avif", "jpegxl", "jpeg2000")
DEFAULT_CODECS = ("jpeg", "webp", "avif")
DEFAULT_RATES = "0.25, 0.5, 1"
DEFAULT_COMPARE_BUDGET = 10.0  # seconds per inrcodec fit
MAX_COMPARE_PIXELS = 2**20  # an RD sweep fits one network per rate: keep it to ~1 Mpx in the UI
SIMILAR_SIZE = 0.10  # "a similar size" for the side-by-side: within 10 % of inrcodec's file


def default_image_model() -> str:
    """The image model the default preset uses (what ``inrcodec fit photo.png`` runs)."""
    from inrcodec.presets import preset_model

    return preset_model("image", None)


def parse_rates(text: Any) -> list[float] | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, (list, tuple)):
        parts = list(text)
    else:
        parts = [p for p in str(text).replace(";", ",").split(",") if p.strip()]
    try:
        return [float(p) for p in parts]
    except (TypeError, ValueError):
        raise InputError(f"rates {text!r}: expected comma-separated numbers, e.g. {DEFAULT_RATES}") from None


@dataclass
class SideBySide:
    original: np.ndarray | None
    ours: np.ndarray | None
    theirs: np.ndarray | None
    caption: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompareOutcome:
    result: dict[str, Any]
    result_json: dict[str, Any]
    plot_path: Path
    table_markdown: str
    side_by_side: SideBySide


def compare_file(file: Any, models: list[str] | None = None, codecs: list[str] | None = None, rates: Any = None,
                 time_budget: float | None = None, progress=None, steps: int | None = None) -> CompareOutcome:
    """RD curves and BD-rates (``inrcodec.compare``) for an uploaded image, plus inrcodec next to the best
    classical codec at a similar file size. ``progress(fraction, message)``."""
    from inrcodec.compare import compare, plot_rd, to_json

    path, signal = load_upload(file, "an image")
    if signal.kind != "image" or signal.ndim_coords != 2:
        raise InputError(f"{path.name}: Compare takes images, this is a {signal.kind} signal")
    if signal.num_pixels > MAX_COMPARE_PIXELS:
        raise InputError(f"{path.name}: {signal.num_pixels:,} pixels is more than this UI compares "
                         f"({MAX_COMPARE_PIXELS:,}); use the command line (inrcodec compare --crop)")
    models = [m for m in (models or []) if m and m != AUTO] or [default_image_model()]
    codecs = [c for c in (codecs or []) if c] or list(DEFAULT_CODECS)
    budget = DEFAULT_COMPARE_BUDGET if time_budget in (None, "") else float(time_budget)
    say = progress or (lambda fraction, message: None)

    def scaled(fraction: float, message: str) -> None:  # the sweep is most of the work; the side-by-side the rest
        say(0.85 * fraction, message)

    try:
        result = compare(signal, codecs, models, parse_rates(rates), budget, scaled, steps=steps, name=path.name)
    except InputError as exc:
        raise _named(exc, path) from None
    out = workdir()
    plot_path = plot_rd(result, out / (path.stem + ".rd.png"))
    say(0.85, "side by side at a similar size")
    side = side_by_side(signal, result, models[0], budget, steps)
    result_json = json.loads(to_json(result))
    result_json["side_by_side"] = side.details
    (out / (path.stem + ".compare.json")).write_text(json.dumps(result_json, indent=2))
    say(1.0, "done")
    return CompareOutcome(result, result_json, plot_path, bd_markdown(result), side)


def side_by_side(signal: Signal, result: dict[str, Any], model: str, time_budget: float | None,
                 steps: int | None = None) -> SideBySide:
    """inrcodec at the middle of the requested rates (fitted again: the sweep keeps numbers, not pictures) and
    each classical codec of the comparison tuned to within SIMILAR_SIZE of that file; the best PSNR wins."""
    from inrcodec import baselines
    from inrcodec.metrics import psnr

    rates = result["settings"]["rates"]
    rate = float(rates[len(rates) // 2])
    ours = compress(signal, model, bpp=rate, time_budget=time_budget, steps=steps,
                    seed=int(result["settings"].get("seed", 0)))
    ours_signal = decompress(ours.data)
    ours_bpp = 8.0 * len(ours.data) / signal.num_pixels
    details: dict[str, Any] = {"inrcodec": {"model": model, "bytes": len(ours.data), "bpp": ours_bpp,
                                            "psnr": psnr(signal.data, ours_signal.data)}}
    best = None
    tried = {}
    for name in result["settings"]["codecs"]:
        if name in result.get("skipped", {}):
            continue
        codec = baselines.get_codec(name)
        try:
            point = baselines.sweep_to_range(codec, signal, ours_bpp * (1 - SIMILAR_SIZE),
                                             ours_bpp * (1 + SIMILAR_SIZE), n=1)[0]
        except InputError as exc:  # cannot land near that size on this image
            tried[name] = str(exc)
            continue
        tried[name] = {k: point[k] for k in ("bytes", "bpp", "psnr", "quality")}
        if best is None or point["psnr"] > best["psnr"]:
            best = point
    details["classical"] = tried
    pic_ours = to_display(ours_signal, signal)
    caption_ours = f"inrcodec {model}: {len(ours.data):,} bytes, {ours_bpp:.3f} bpp, " \
                   f"PSNR {details['inrcodec']['psnr']:.2f} dB"
    if best is None:
        return SideBySide(to_display(signal), pic_ours, None,
                          f"{caption_ours}. No classical codec reached a size within {SIMILAR_SIZE:.0%} of it.",
                          details)
    codec = baselines.get_codec(best["codec"])
    theirs = codec.decode(codec.encode(signal.data, best["quality"]))
    details["best_classical"] = best["codec"]
    caption = (f"{caption_ours} | {best['codec']} (quality {best['quality']:g}): {best['bytes']:,} bytes, "
               f"{best['bpp']:.3f} bpp, PSNR {best['psnr']:.2f} dB")
    return SideBySide(to_display(signal), pic_ours, to_display(Signal(theirs, "image", signal.value_range), signal),
                      caption, details)


def bd_markdown(result: dict[str, Any]) -> str:
    """The comparison as a Markdown table: per curve its rate/PSNR span and each model's BD-rate against it."""
    from inrcodec.compare import PREFIX

    curves = result["curves"]
    ours = [n for n in curves if n.startswith(PREFIX)]
    head = ["codec", "points", "bpp", "PSNR (dB)"] + [f"BD-rate {m[len(PREFIX):]}" for m in ours]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for name in sorted(curves, key=lambda n: (not n.startswith(PREFIX), n)):
        pts = [p for p in curves[name] if p.get("psnr") is not None and np.isfinite(p["psnr"])]
        bpp = f"{min(p['bpp'] for p in pts):.3g}-{max(p['bpp'] for p in pts):.3g}" if pts else "-"
        db = f"{min(p['psnr'] for p in pts):.1f}-{max(p['psnr'] for p in pts):.1f}" if pts else "-"
        row = [name, str(len(curves[name])), bpp, db]
        for m in ours:
            if name.startswith(PREFIX):
                row.append("")
                continue
            v = result.get("bd_rate", {}).get(m, {}).get(name)
            if v is None or not np.isfinite(v):
                notes.append(f"{m} vs {name}: {result.get('bd_rate_notes', {}).get(m, {}).get(name, 'no value')}")
                row.append("n/a")
            else:
                row.append(f"{v:+.1f} %")
        lines.append("| " + " | ".join(row) + " |")
    for name, why in result.get("skipped", {}).items():
        notes.append(f"{name} skipped: {why}")
    text = "\n".join(lines)
    text += "\n\nBD-rate: how many more bits inrcodec needs for the same PSNR (negative: inrcodec is smaller)."
    if notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in notes)
    return text
