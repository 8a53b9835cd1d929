"""The video side of ``inrcodec fit`` / ``decode`` / ``info`` (kept here so that cli.py only dispatches)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from .container import Container
from .errors import InputError
from .signals.video import is_glob, is_video_output


def default_output(input: Path) -> Path:
    if is_glob(input):  # "frames/f_*.png" -> "frames/frames.inrc"
        return Path(os.path.dirname(str(input)) or ".") / "frames.inrc"
    return input.with_suffix(".inrc") if input.suffix else input.with_name(input.name + ".inrc")


def fit_video(input: Path, output: Path | None, *, model: str | None, bpp: float | None, psnr: float | None,
              max_error: float | None, time_budget: float | None, steps: int | None, seed: int, audio: bool,
              json_report: Path | None, quiet: bool) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .cli import write_result
    from .signals._atomic import check_output_path
    from .video_codec import compress_video

    if max_error is not None:
        raise InputError("--max-error is not supported for video (use --bpp or --psnr)")
    out_path = output or default_output(input)
    check_output_path(out_path)
    if json_report is not None:
        check_output_path(json_report)
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[frames]}"),
                  TextColumn("PSNR {task.fields[psnr]}"), TimeElapsedColumn(), console=console,
                  disable=quiet or not console.is_terminal and not os.environ.get("INRCODEC_PROGRESS")) as bar:
        task = bar.add_task("fitting GOPs", total=1.0, frames="frames 0", psnr="-")

        def progress(done: int, total: int, value: float, elapsed: float) -> None:
            bar.update(task, completed=done / max(total, 1), frames=f"frames {done}/{total}",
                       psnr=f"{value:.2f} dB")

        result = compress_video(input, model, bpp=bpp, psnr=psnr, time_budget=time_budget, steps=steps,
                                seed=seed, audio=audio, progress=progress)
    report = write_result(out_path, result, json_report, input=str(input))
    met = report.get("target_met")
    note = "" if met is None or met else "  (target not reached: best found)"
    typer.echo(f"{out_path}: {report['bytes']} bytes ({report['audio_bytes']} audio), {report['bpp']:.4f} bpp, "
               f"{report['kbps']:.1f} kbit/s, PSNR {report['psnr']:.2f} dB (Y {report['psnr_y']:.2f}), "
               f"{report['frames']} frames in {report['gops']} GOPs, {report['seconds']:.1f} s, "
               f"model {report['model']}{note}")


def decode_video(input: Path, data: bytes, header: Container, output: Path | None, *, size: str | None,
                 scale: float | None, frames: str | None, fps: float | None, fraction: float | None,
                 parse_size: Any) -> None:
    from .signals.video import write_video
    from .video_codec import decode_windows, open_video, parse_frames

    if fraction is not None:
        raise InputError("--fraction is not supported for video")
    vf = open_video(header)
    t, h, w = header.signal["shape"][:3]
    shape = None
    if size is not None:
        shape = parse_size(size, 2)
    elif scale is not None:
        if not 0 < scale <= 16:
            raise InputError("--scale must be in (0, 16]")
        shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    span = None if frames is None else parse_frames(frames, t)
    if output is None:
        output = input.with_name(input.stem + ".decoded.mp4")
    if not is_video_output(output) and output.suffix.lower() != ".npy":
        raise InputError(f"{output}: a video decodes to .mp4, .mkv, .y4m, .npy or a folder of PNG frames")
    rate = vf.fps
    if fps is not None:
        from fractions import Fraction

        rate = Fraction(fps).limit_denominator(1001)
    # The audio track spans the whole clip: re-muxed when the whole clip is decoded (at any frame rate).
    audio = vf.audio if span is None else None
    windows = decode_windows(header, frames=span, size=shape, fps=fps)
    count = write_video(output, windows, rate, audio)
    out_h, out_w = shape or (h, w)
    note = " + audio" if audio and output.suffix.lower() in (".mp4", ".mkv", ".mov", ".m4v") else ""
    typer.echo(f"{output}: {count} frames of {out_w}x{out_h} at {float(rate):g} fps{note}")
