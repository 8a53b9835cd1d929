"""Video as a file of parts: one independently fitted ``.inrc`` per GOP, plus the audio track, in bounded memory.

    result = compress_video("clip.mp4", bpp=0.05)           # streams the clip GOP by GOP
    for window in decode_windows(result.data, frames=(30, 60)):  # decodes only the GOPs that hold 30..59
        ...

Layout (``inrcodec.parts``): the outer container's model is ``"video"``; its config holds the GOP lengths and the
inner model's name; ``part:i`` is GOP ``i``, a complete ``.inrc`` of kind ``video`` and shape (n, H, W, 3) fitted
alone (so GOPs can be encoded in parallel and decoded alone); the shared section ``audio`` is the stream-copied
audio track (a small Matroska file), counted in the file size and reported apart.

Rate control: the byte budget of the whole file (bpp x frames x H x W / 8) less the audio and the outer header is
split over the GOPs in proportion to their frames; after each wave of GOPs the budget left is split again on the
*real* coded sizes, so a GOP that came in under its share passes the rest on. Each GOP lands at the largest file
not above its share (``codec.compress``'s bisection), so the whole file lands within 10 % of the target whenever
the model can spend the budget.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import math
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterator

import numpy as np

from . import __version__
from .codec import CompressResult, compress, decompress, mark_targets
from .container import Container, read_container
from .errors import FormatError, InputError
from .models import default_model, get_model
from .parts import pack_parts, part_count, part_section, register_layout
from .signal import Signal
from .signals.video import VideoSource, _rate

LAYOUT = "video"
AUDIO_SECTION = "audio"
GOP_PIXELS = 1_500_000  # pixels per GOP by default: 6 frames of 640x360, 2 of 1280x720 (memory and step time)
MAX_GOP = 64
DEFAULT_SECONDS_PER_MPIXEL = 40.0  # fit time per million pixels when no --time-budget/--steps is given
# (for a GOP model with its own ``DEFAULT_STEPS``, e.g. mcvideo's intra fits, a cap: the steps are the schedule)
MIN_GOP_SECONDS = 5.0

# progress(done_frames, total_frames, psnr_so_far, elapsed)
VideoProgress = Callable[[int, int, float, float], None]


def default_gop(height: int, width: int, frames: int, model: str = "", bpp: float | None = None) -> int:
    if model in GOP_MODELS:  # a GOP model may choose its length by the rate (mcvideo.gop_for)
        coder = GOP_MODELS[model]
        return int(min(coder.gop_for(bpp) if hasattr(coder, "gop_for") else coder.DEFAULT_GOP, frames))
    return int(max(1, min(MAX_GOP, frames, round(GOP_PIXELS / (height * width)))))


def _gop_models() -> dict[str, Any]:
    """Models that code a GOP themselves (not a Representation fitted to the (t, y, x) volume)."""
    from .models import mcvideo

    return {mcvideo.NAME: mcvideo}


GOP_MODELS = _gop_models()


# -- metrics (Contract 2: mean over frames of per-frame RGB PSNR; Y-PSNR beside it) -----------------------------
def frame_psnrs(ref: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame RGB PSNR and Y-PSNR (BT.601 luma, full range) of uint8 (n, H, W, 3) windows, peak 255."""
    r = ref.astype(np.float32)
    d = dec.astype(np.float32)
    mse = np.mean((r - d) ** 2, axis=(1, 2, 3))
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    mse_y = np.mean(((r - d) @ luma) ** 2, axis=(1, 2))
    with np.errstate(divide="ignore"):
        to_db = lambda m: np.where(m > 0, 10 * np.log10(255.0**2 / np.maximum(m, 1e-30)), 100.0)  # noqa: E731
        return to_db(mse), to_db(mse_y)


@dataclass
class _Plan:
    frames: int
    height: int
    width: int
    gop: int

    @property
    def pixels(self) -> int:
        return self.frames * self.height * self.width


def _source(src: str | os.PathLike | Signal) -> tuple[Any, dict[str, Any], Callable[[int], Iterator[np.ndarray]]]:
    """(info-like, metadata, windows(size)) for a path or a uint8 video Signal."""
    if isinstance(src, Signal):
        if src.kind != "video" or src.data.ndim != 4 or src.data.shape[-1] != 3 or src.data.dtype != np.uint8:
            raise InputError(f"video needs a (frames, H, W, 3) uint8 signal, got {src.kind} {src.data.shape} "
                             f"{src.data.dtype}")
        t, h, w, _ = src.data.shape
        meta = {k: v for k, v in src.metadata.items() if k in ("fps", "fps_rational", "time_base", "pix_fmt",
                                                                 "color", "source")}
        meta.setdefault("fps", 25.0)
        meta["frames"] = int(t)
        return (t, h, w), meta, lambda n: (src.data[i:i + n] for i in range(0, t, n))
    source = VideoSource(src)
    info = source.info
    return (info.frames, info.height, info.width), info.metadata(), source.windows


def compress_video(src: str | os.PathLike | Signal, model: str | None = None, *, bpp: float | None = None,
                   psnr: float | None = None, time_budget: float | None = None, steps: int | None = None,
                   seed: int = 0, gop: int | None = None, audio: bool = True, workers: int | None = None,
                   config: dict[str, Any] | None = None, progress: VideoProgress | None = None) -> CompressResult:
    """Encode a clip (path, folder/glob of frames, or a video Signal) GOP by GOP into one ``.inrc``.

    ``time_budget`` is for the whole encode (split over GOPs by frames); with neither it nor ``steps`` each GOP
    gets ``DEFAULT_SECONDS_PER_MPIXEL`` seconds per million pixels (a GOP model with ``DEFAULT_STEPS`` runs that
    many fit steps, within those seconds: the same seed gives the same file on the same machine). ``workers`` GOPs are fitted at once (threads,
    one torch thread each; default: min(2, CPUs))."""
    t0 = time.perf_counter()
    if bpp is not None and psnr is not None:
        raise InputError("give at most one of bpp, psnr")
    if bpp is not None and not bpp > 0:
        raise InputError(f"bpp must be positive, got {bpp}")
    if gop is not None and not 1 <= gop <= MAX_GOP:
        raise InputError(f"GOP length must be 1..{MAX_GOP}, got {gop}")
    (frames, height, width), meta, windows = _source(src)
    if frames < 1:
        raise InputError(f"{src}: the video has no frames")
    name = model or default_model("video")
    if name not in GOP_MODELS:
        cls = get_model(name)
        if 3 not in cls.supported_ndims:
            raise InputError(f"model {name!r} cannot code video (it takes {cls.supported_ndims} coordinate axes)")
    plan = _Plan(frames, height, width, gop or default_gop(height, width, frames, name, bpp))
    n_gops = math.ceil(frames / plan.gop)

    audio_bytes = None
    if audio and not isinstance(src, Signal):
        audio_bytes = VideoSource(src).audio_track()
    shared = {AUDIO_SECTION: audio_bytes} if audio_bytes else {}
    if audio_bytes:
        from .signals.video import audio_codec_name

        meta["audio_codec"] = audio_codec_name(audio_bytes)
    desc = {"kind": "video", "shape": [frames, height, width, 3], "dtype": "uint8", "range": [0.0, 255.0],
            "meta": meta}

    target_total = None if bpp is None else bpp * plan.pixels / 8.0
    overhead = _outer_overhead(desc, name, n_gops, shared)
    budget_left = None if target_total is None else target_total - overhead
    if budget_left is not None and budget_left < 64 * n_gops:
        raise InputError(f"--bpp {bpp} leaves {budget_left:.0f} bytes for {n_gops} GOPs after the audio track and "
                         "headers: raise the rate, or use --no-audio")
    workers = max(1, min(workers or min(2, os.cpu_count() or 1), n_gops))

    parts: list[bytes] = []
    lengths: list[int] = []
    reports: list[dict[str, Any]] = []
    psnrs: list[float] = []
    ypsnrs: list[float] = []
    frames_left = frames
    done = 0

    coder = GOP_MODELS.get(name)
    cache: dict = {}

    def encode_gop(window: np.ndarray, index: int, target_bytes: float | None, seconds: float | None,
                   next_frame: np.ndarray | None) -> CompressResult:
        if coder is not None:
            default = getattr(coder, "DEFAULT_STEPS", None) if time_budget is None else None
            info = {"model": name}  # the intra fit's steps too (the report's fit_steps, one per GOP)
            blob = coder.encode_gop(window, target_bytes, psnr=psnr, time_budget=seconds, steps=steps or default,
                                    seed=seed + index, next_frame=next_frame, report=info, **(config or {}))
            return CompressResult(blob, info)
        sig = Signal(np.ascontiguousarray(window), kind="video", value_range=(0.0, 255.0))
        gop_bpp = None if target_bytes is None else 8.0 * target_bytes / sig.num_pixels
        return compress(sig, name, bpp=gop_bpp, psnr=psnr, time_budget=seconds, steps=steps, seed=seed + index,
                        config=config)

    # A GOP of a bidirectional model decodes with the next GOP's intra frame: it is scored once that is coded.
    pending: list[tuple[np.ndarray, bytes]] = []

    def score(window: np.ndarray, blob: bytes, next_blob: bytes | None) -> None:
        decoded = coder.decode_gop(blob, next_blob, cache) if coder is not None else decompress(blob).data
        p, y = frame_psnrs(window, decoded)
        psnrs.extend(p.tolist())
        ypsnrs.extend(y.tolist())

    import torch

    threads = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(1)  # one intra-op thread per GOP in flight: the GOPs are the parallelism
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            stream = windows(plan.gop)
            lookahead = next(stream, None)  # one window ahead: a GOP may be predicted from the next one's start
            while lookahead is not None:
                wave: list[np.ndarray] = []
                while lookahead is not None and len(wave) < workers:
                    wave.append(lookahead)
                    lookahead = next(stream, None)
                elapsed = time.perf_counter() - t0
                left_frames = max(frames_left, sum(len(w) for w in wave))
                wave_frames = sum(len(w) for w in wave)
                jobs = []
                for window in wave:
                    tb = None if budget_left is None else max(budget_left * len(window) / left_frames, 64.0)
                    sec = None
                    if time_budget is not None:  # the wave runs its GOPs side by side: its share of the time
                        sec = max((0.95 * time_budget - elapsed) * wave_frames / left_frames, MIN_GOP_SECONDS)
                    elif steps is None:
                        sec = max(DEFAULT_SECONDS_PER_MPIXEL * window[..., 0].size / 1e6, MIN_GOP_SECONDS)
                    following = wave[len(jobs) + 1] if len(jobs) + 1 < len(wave) else lookahead
                    nxt = None if following is None else following[0]
                    jobs.append(pool.submit(encode_gop, window, len(parts) + len(jobs), tb, sec, nxt))
                for window, job in zip(wave, jobs):
                    r = job.result()
                    for old_window, old_blob in pending:
                        score(old_window, old_blob, r.data)
                    pending = [(window, r.data)]
                    parts.append(r.data)
                    lengths.append(len(window))
                    reports.append(r.report)
                    frames_left -= len(window)
                    done += len(window)
                    if budget_left is not None:
                        budget_left -= len(r.data)
                if progress is not None and psnrs:
                    progress(done, frames, float(np.mean(psnrs)), time.perf_counter() - t0)
        for old_window, old_blob in pending:
            score(old_window, old_blob, None)
    finally:
        torch.set_num_threads(threads)

    if done != frames:  # the container's frame count was an estimate: the decoded frames are the truth
        desc["shape"][0] = done
        meta["frames"] = done
    config_out = {"model": name, "gops": lengths}
    data = pack_parts(desc, LAYOUT, config_out, parts, shared, {"encoder": f"inrcodec {__version__}"})
    pixels = done * height * width
    report = {
        "model": name,
        "layout": LAYOUT,
        "bytes": len(data),
        "bpp": 8.0 * len(data) / pixels,
        "kbps": 8.0 * len(data) / 1000.0 / (done / float(meta.get("fps") or 25.0)),
        "psnr": float(np.mean(psnrs)),
        "psnr_y": float(np.mean(ypsnrs)),
        "frame_psnr": [round(v, 3) for v in psnrs],
        "seconds": time.perf_counter() - t0,
        "frames": done,
        "shape": [done, height, width, 3],
        "gops": len(parts),
        "gop_frames": lengths,
        "audio_bytes": len(audio_bytes or b""),
        "video_bytes": len(data) - len(audio_bytes or b""),
        "fps": meta.get("fps"),
        "workers": workers,
        "fit_steps": [r.get("fit_steps") for r in reports],
    }
    mark_targets(report, bpp, psnr)
    return CompressResult(data, report)


def _outer_overhead(desc: dict[str, Any], model: str, n_gops: int, shared: dict[str, bytes]) -> int:
    """Bytes of the outer file that are not GOP payloads: its header (with a section table entry per GOP) plus
    the shared sections. Measured on a stand-in with random CRCs (they do not compress) and plausible sizes."""
    rng = np.random.default_rng(0)
    fake = [rng.bytes(int(rng.integers(1000, 100000)) % 97 + 1) for _ in range(n_gops)]
    cfg = {"model": model, "gops": [MAX_GOP] * n_gops}
    data = pack_parts(desc, LAYOUT, cfg, fake, shared, {"encoder": f"inrcodec {__version__}"})
    return len(data) - sum(len(f) for f in fake) + 3 * n_gops  # + table digits of real (larger) lengths


# -- decoding ---------------------------------------------------------------------------------------------------
@dataclass
class VideoFile:
    container: Container
    lengths: list[int]
    model: str

    @property
    def frames(self) -> int:
        return sum(self.lengths)

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.container.signal.get("meta", {}))

    @property
    def fps(self) -> Fraction:
        return _rate(self.meta)

    @property
    def audio(self) -> bytes | None:
        return self.container.sections.get(AUDIO_SECTION) or None


def open_video(data: bytes | Container) -> VideoFile:
    c = read_container(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if c.model != LAYOUT:
        raise InputError(f"not a video file (model {c.model!r})")
    cfg = c.config
    lengths = cfg.get("gops")
    if not (isinstance(lengths, list) and all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                              for n in lengths)):
        raise FormatError("video config has no valid GOP table")
    if not isinstance(cfg.get("model"), str):
        raise FormatError("video config names no model")
    if part_count(c) != len(lengths):
        raise FormatError(f"video has {part_count(c)} GOP sections but a table of {len(lengths)}")
    if sum(lengths) != c.signal["shape"][0]:
        raise FormatError("GOP lengths do not add up to the frame count")
    return VideoFile(c, lengths, cfg["model"])


def parse_frames(text: str, total: int) -> tuple[int, int]:
    """``A:B`` (Python slice, B exclusive; either may be empty or negative) -> (start, stop) within the clip."""
    try:
        a, b = text.split(":")
        start = int(a) if a.strip() else 0
        stop = int(b) if b.strip() else total
    except ValueError:
        raise InputError(f"--frames {text!r}: expected A:B (first frame A, up to but not including B)") from None
    start, stop, _ = slice(start, stop).indices(total)
    if stop <= start:
        raise InputError(f"--frames {text!r} selects no frame of the {total} in the file")
    return start, stop


def decode_windows(data: bytes | Container, frames: tuple[int, int] | None = None,
                   size: tuple[int, int] | None = None, fps: float | None = None,
                   workers: int | None = None) -> Iterator[np.ndarray]:
    """Decoded (n, H, W, 3) uint8 windows, one GOP at a time. ``frames=(a, b)`` decodes only the GOPs holding
    frames a..b-1; ``size=(H, W)`` renders at another resolution and ``fps`` at another frame rate, where the
    GOP model is continuous in space / time (else InputError "not supported by this model"). ``workers`` GOPs are
    decoded side by side (threads; default min(2, CPUs)): GOPs are independent, the windows come out in order,
    and at most ``workers`` decoded GOPs are held ahead of the caller."""
    vf = open_video(data)
    coder = GOP_MODELS.get(vf.model)
    try:
        resamplable = coder is None and get_model(vf.model).resamplable
    except InputError:
        raise FormatError(f"file uses unknown video model {vf.model!r}") from None
    t, h, w = vf.container.signal["shape"][:3]
    if (size is not None and tuple(size) != (h, w)) or fps is not None:
        if not resamplable:
            what = "--fps" if fps is not None else "--size/--scale"
            raise InputError(f"{what} is not supported by this model ({vf.model!r} is not continuous in "
                             f"{'time' if fps is not None else 'space'})")
    if fps is not None and frames is not None:
        raise InputError("give --frames or --fps, not both")
    if fps is not None and not 0 < fps <= 1000:
        raise InputError(f"--fps must be in (0, 1000], got {fps}")
    a, b = frames if frames is not None else (0, t)
    out_h, out_w = size if size is not None else (h, w)
    ratio = None if fps is None else float(fps) / float(vf.fps)
    jobs = []  # (GOP index, first frame, frames out) of the GOPs to decode
    start = 0
    for i, n in enumerate(vf.lengths):
        end = start + n
        if end > a and start < b:
            n_out = n if ratio is None else round(end * ratio) - round(start * ratio)  # frames of the new rate
            if n_out > 0:
                jobs.append((i, start, n_out))
        start = end
    workers = max(1, min(workers or min(2, os.cpu_count() or 1), len(jobs) or 1))
    # a bidirectional GOP model decodes each intra frame once, for its GOP and the one before (serial decoding only)
    cache: dict | None = {} if workers == 1 else None

    def decode_gop(job: tuple[int, int, int]) -> np.ndarray:
        i, first, n_out = job
        n = vf.lengths[i]
        inner = vf.container.sections[part_section(i)]
        shape = (n_out, out_h, out_w)
        if coder is not None:
            window = coder.decode_gop(inner, vf.container.sections.get(part_section(i + 1)), cache)
        else:
            window = decompress(inner, shape=None if shape == (n, h, w) else shape).data
        if window.shape[1:] != (out_h, out_w, 3) or window.dtype != np.uint8:
            raise FormatError(f"GOP {i} decodes to {window.shape} {window.dtype}")
        if ratio is None:
            window = window[max(a - first, 0): min(b, first + n) - first]
        return window

    if workers == 1:
        for job in jobs:
            yield decode_gop(job)
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one intra-op thread per GOP in flight (an intra frame may render with torch)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            ahead: list[concurrent.futures.Future] = []
            todo = iter(jobs)
            for job in todo:
                # each GOP runs in a copy of the caller's context: the decoded-size cap (limits.pixel_cap) and
                # any other context variable apply inside the worker thread too
                ahead.append(pool.submit(contextvars.copy_context().run, decode_gop, job))
                if len(ahead) < workers:
                    continue
                yield ahead.pop(0).result()
            for future in ahead:
                yield future.result()
    finally:
        torch.set_num_threads(threads)


def decode_video(data: bytes, **kwargs) -> Signal:
    """The whole decoded clip (or the ``frames`` range) as one uint8 Signal (for small clips and tools)."""
    vf = open_video(data)
    frames = np.concatenate(list(decode_windows(vf.container, **kwargs)))
    meta = vf.meta
    if kwargs.get("fps") is not None:
        r = Fraction(kwargs["fps"]).limit_denominator(1001)
        meta.update(fps=float(r), fps_rational=[r.numerator, r.denominator])
    return Signal(frames, kind="video", value_range=(0.0, 255.0), metadata=meta)


def _layout_decoder(c: Container, shape=None, region=None, fraction=None) -> Signal:
    if region is not None or fraction is not None:
        raise InputError("region and fraction decoding are not supported for video")
    size = None if shape is None else tuple(shape)[1:3]
    if shape is not None and shape[0] != c.signal["shape"][0]:
        raise InputError("render video at another frame rate with fps=, not shape")
    vf = open_video(c)
    frames = np.concatenate(list(decode_windows(c, size=size)))
    return Signal(frames, kind="video", value_range=(0.0, 255.0), metadata=vf.meta)


register_layout(LAYOUT, _layout_decoder)


def describe(data: bytes) -> list[str]:
    """Lines for ``inrcodec info``."""
    vf = open_video(data)
    t, h, w = vf.container.signal["shape"][:3]
    audio = vf.audio
    seconds = t / float(vf.fps)
    lines = [
        f"video:    {t} frames of {w}x{h} at {float(vf.fps):g} fps ({seconds:.2f} s), "
        f"{8 * len(data) / (t * h * w):.4f} bpp, {8 * len(data) / 1000 / seconds:.1f} kbit/s",
        f"GOPs:     {len(vf.lengths)} of {min(vf.lengths)}-{max(vf.lengths)} frames, model {vf.model}",
        f"audio:    " + (f"{len(audio)} bytes ({vf.meta.get('audio_codec', '?')}, stream copy)" if audio else "none"),
    ]
    return lines

