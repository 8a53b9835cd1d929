"""``inrcodec compare clip.mp4``: inrcodec's video layout against x264/x265/SVT-AV1 on one clip.

The same result dict, BD-rates (``compare.bd_rates``), plot (``compare.rd_figure``) and table as the image
comparison, with video's measurement conventions (DESIGN.md contract 2): bpp = file bytes x 8 / (frames x H x W),
kbit/s at the clip's frame rate, PSNR = mean over frames of the per-frame RGB PSNR against the source's own decoded
frames, Y-PSNR beside it. Baselines are swept over [lowest rate we reached / 2, highest x 2] so that their curves
enclose ours.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import baselines
from .compare import PREFIX, RANGE_FACTOR, bd_rates, software_versions
from .errors import InputError
from .signal import Signal

DEFAULT_VIDEO_CODECS = ("x264", "x265", "svtav1")
DEFAULT_VIDEO_RATES = (0.02, 0.05, 0.1, 0.2)
BASELINE_POINTS = 6


def compare_video(clip: Signal, codecs: Sequence[str] = DEFAULT_VIDEO_CODECS, models: Sequence[str] | None = None,
                  rates: Sequence[float] = DEFAULT_VIDEO_RATES, time_budget: float | None = None,
                  steps: int | None = None, seed: int = 0, name: str | None = None, gop: int | None = None,
                  workers: int | None = None, progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    """RD curves of inrcodec models (``time_budget``: seconds per encode of the whole clip) and video baselines."""
    from .models import default_model
    from .video_baselines import sweep_video
    from .video_codec import compress_video, decode_video

    t_start = time.perf_counter()
    if clip.kind != "video" or clip.data.ndim != 4:
        raise InputError(f"compare_video takes a video signal, got {clip.kind} {clip.data.shape}")
    codec_objs = [baselines.get_codec(c) for c in codecs]
    for c in codec_objs:
        if c.kind != "video":
            raise InputError(f"{c.name} is not a video codec (video: {', '.join(DEFAULT_VIDEO_CODECS)})")
    model_names = [default_model("video")] if models is None else list(models)
    if any(not r > 0 for r in rates) or (model_names and len(rates) < 1):
        raise InputError(f"rates must be positive, got {list(rates)}")
    frames = clip.data
    t, h, w = frames.shape[:3]
    fps = float(clip.metadata.get("fps") or 25.0)
    total = len(model_names) * len(rates) + len(codec_objs)
    done = 0

    def report(msg: str) -> None:
        if progress is not None:
            progress(min(done / max(total, 1), 1.0), msg)

    curves: dict[str, list[dict]] = {}
    skipped: dict[str, str] = {}
    for model in model_names:
        points = []
        for rate in rates:
            report(f"{PREFIX}{model} at {rate:g} bpp")
            cpu0 = time.process_time()  # all threads of this process: the GOPs fitted side by side
            r = compress_video(clip, model, bpp=rate, time_budget=time_budget, steps=steps, seed=seed, gop=gop,
                               workers=workers)
            cpu = time.process_time() - cpu0
            t0 = time.perf_counter()
            decode_video(r.data)
            dec = time.perf_counter() - t0
            rep = r.report
            points.append({"codec": PREFIX + model, "bytes": rep["bytes"], "bpp": rep["bpp"], "kbps": rep["kbps"],
                           "psnr": rep["psnr"], "psnr_y": rep["psnr_y"], "encode_s": rep["seconds"],
                           "encode_cpu_s": cpu, "load_after": os.getloadavg()[0],
                           "decode_s": dec, "decode_fps": t / dec, "target_bpp": rate,
                           "target_met": rep.get("target_met"), "gops": rep["gops"], "fit_steps": rep["fit_steps"]})
            done += 1
        curves[PREFIX + model] = sorted(points, key=lambda p: p["bpp"])
    reached = [p["bpp"] for pts in curves.values() for p in pts] or list(rates)
    lo, hi = min(reached) / RANGE_FACTOR, max(reached) * RANGE_FACTOR
    for codec in codec_objs:
        report(f"{codec.name} over {lo:.3g}-{hi:.3g} bpp")
        why = codec.why_unsupported(frames)
        if why:
            skipped[codec.name] = why
        else:
            pts = sweep_video(codec, frames, fps, lo, hi, BASELINE_POINTS)
            if pts:
                curves[codec.name] = pts
            else:
                skipped[codec.name] = f"no CRF lands in {lo:.3g}-{hi:.3g} bpp"
        done += 1
    table, notes = bd_rates(curves)
    report("done")
    return {
        "input": {"name": name or "clip", "shape": [h, w, 3], "frames": t, "fps": fps, "pixels": int(t * h * w)},
        "curves": curves,
        "bd_rate": table,
        "bd_rate_notes": notes,
        "skipped": skipped,
        "settings": {"codecs": [c.name for c in codec_objs], "models": model_names, "rates": list(rates),
                     "time_budget": time_budget, "steps": steps, "seed": seed, "gop": gop,
                     "baseline_bpp_range": [lo, hi], "psnr": "mean of per-frame RGB PSNR (psnr_y: BT.601 luma)"},
        "codecs": {c.name: c.get_config() for c in codec_objs},
        "versions": software_versions(),
        "seconds": time.perf_counter() - t_start,
    }


def run_cli(input: Path, codec_names: list[str], model_list: list[str] | None, rate_list: list[float],
            time_budget: float | None, steps: int | None, seed: int, out_dir: Path, json_path: Path,
            png_path: Path, quiet: bool, command: str) -> None:
    """The body of ``inrcodec compare`` for a clip (called from compare.register_cli)."""
    import typer
    from rich.console import Console

    from .compare import format_table, rd_figure, to_json
    from .signals import load
    from .signals._atomic import atomic_output
    from .signals.video import VideoSource

    clip = load(input) if input.is_file() else _load_frames(VideoSource(input))
    console = Console(stderr=True)

    def progress(frac: float, message: str) -> None:
        if not quiet:
            console.print(f"[{100 * frac:3.0f}%] {message}", highlight=False)

    result = compare_video(clip, codec_names, model_list, rate_list, time_budget, steps, seed, name=input.name,
                           progress=progress)
    result["command"] = command
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = rd_figure(result, title=f"Rate-distortion: {input.name} ({clip.data.shape[2]}x{clip.data.shape[1]}, "
                                  f"{clip.data.shape[0]} frames)")
    with atomic_output(png_path) as tmp_png, atomic_output(json_path) as tmp_json:
        fig.savefig(tmp_png, format="png")
        tmp_json.write_text(to_json(result))
    Console(width=None if sys.stdout.isatty() else 150).print(format_table(result))
    typer.echo(f"wrote {json_path} and {png_path}")


def _load_frames(src) -> Signal:
    frames = np.concatenate(list(src.windows(32)))
    return Signal(frames, kind="video", metadata=src.info.metadata())
