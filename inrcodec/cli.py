"""Command line (contract in DESIGN.md): fit, decode, info, compare, ui.

Exit codes: 0 success; 2 bad input or usage (one line on stderr, no traceback, no partial output file);
1 internal error (one line; set INRCODEC_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

try:  # typer >= 0.20 vendors click; older typer uses the click package
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from .errors import FormatError, InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compress signals as small neural networks or clouds of 2D Gaussians.")


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"inrcodec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """Compress signals as small neural networks or clouds of 2D Gaussians."""


def _fail(message: str) -> None:
    raise InputError(message)


def _read_input_file(path: Path) -> bytes:
    if not path.exists():
        _fail(f"{path}: no such file")
    if path.is_dir():
        _fail(f"{path}: is a directory")
    data = path.read_bytes()
    if not data:
        _fail(f"{path}: file is empty")
    return data


def _read_container_named(path: Path, data: bytes):
    """read_container with the file name in front of any FormatError (the CLI's messages name the file)."""
    from .container import read_container
    from .errors import FormatError

    try:
        return read_container(data)
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from None


@app.command()
def fit(
    input: Path = typer.Argument(..., help="signal file: .png/.jpg/.tif, .npy, .wav, raw (.f32/.d64 ...)"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="output .inrc (default: INPUT with .inrc)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="representation (default: best for the signal type)"),
    preset: str = typer.Option("medium", "--preset",
                               help="fast | medium | slow: the model and schedule (--steps/--time-budget override)"),
    bpp: Optional[float] = typer.Option(None, "--bpp", help="target bits per pixel, whole file included"),
    psnr: Optional[float] = typer.Option(None, "--psnr", help="target PSNR in dB of the decoded output"),
    max_error: Optional[float] = typer.Option(None, "--max-error", help="bound on every decoded value's error"),
    relative: bool = typer.Option(False, "--relative", help="--max-error is relative to the value range"),
    time_budget: Optional[float] = typer.Option(
        None, "--time-budget", help="seconds for the whole encode; without --steps the fit uses all of it"),
    steps: Optional[int] = typer.Option(None, "--steps", help="optimisation steps (default: the model's)"),
    seed: int = typer.Option(0, "--seed", help="random seed: same seed, same machine, same file"),
    json_report: Optional[Path] = typer.Option(None, "--json", help="also write the report as JSON"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    var: Optional[list[str]] = typer.Option(None, "--var", help="datasets: variable to compress (repeatable; "
                                            "default: every data variable)"),
    no_audio: bool = typer.Option(False, "--no-audio", help="video: drop the audio track instead of carrying it"),
    tile: Optional[int] = typer.Option(None, "--tile", help="images: code as tiles of about SIDE pixels "
                                       "(default: automatic by size: 2.5 MP, gaussian 16 MP)"),
    no_tile: bool = typer.Option(False, "--no-tile", help="images: never tile (one fit for the whole image)"),
) -> None:
    """Fit a representation to INPUT and write a compressed .inrc file."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .codec import compress
    from .signals import load
    from .signals._atomic import check_output_path, write_bytes_atomic

    if sum(v is not None for v in (bpp, psnr, max_error)) > 1:
        _fail("give at most one of --bpp, --psnr, --max-error")
    if relative and max_error is None:
        _fail("--relative needs --max-error")
    if time_budget is not None and time_budget <= 0:
        _fail("--time-budget must be positive")
    if tile is not None and no_tile:
        _fail("give --tile or --no-tile, not both")
    if tile is not None and tile < 16:
        _fail(f"--tile must be at least 16 pixels, got {tile}")
    from .presets import NAMES as PRESETS

    if preset not in PRESETS:
        _fail(f"--preset {preset!r}: choose one of {', '.join(PRESETS)}")

    from .signals.dataset import is_dataset_path
    from .signals.video import is_video_path

    if (tile is not None or no_tile) and (is_video_path(input) or is_dataset_path(input)):
        _fail("--tile and --no-tile apply to images")
    if is_video_path(input):  # a clip, a folder or glob of frames: coded GOP by GOP (video_cli.py)
        from .video_cli import fit_video

        if var:
            _fail("--var applies to datasets (.nc, .h5, .zarr)")
        return fit_video(input, output, model=model, bpp=bpp, psnr=psnr, max_error=max_error,
                         time_budget=time_budget, steps=steps, seed=seed, audio=not no_audio,
                         json_report=json_report, quiet=quiet)
    from .signals.dataset import is_dataset_path

    if is_dataset_path(input):  # NetCDF/HDF5/zarr: one part per variable tile (inrcodec/dataset_codec.py)
        from .dataset_cli import fit_dataset
        from .dataset_codec import FieldTarget

        target = FieldTarget(model, max_error, relative, psnr, bpp, time_budget, steps, seed)
        return fit_dataset(input, output, var, target, json_report, quiet)
    if var:
        _fail("--var applies to datasets (.nc, .h5, .zarr)")
    out_path = output or input.with_suffix(".inrc")
    check_output_path(out_path)
    if json_report is not None:
        check_output_path(json_report)
    signal = load(input)

    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("step {task.fields[step]}"),
                  TextColumn("PSNR {task.fields[psnr]}"), TimeElapsedColumn(), console=console,
                  disable=quiet or not console.is_terminal and not os.environ.get("INRCODEC_PROGRESS")) as bar:
        task = bar.add_task("fitting", total=1.0, step=0, psnr="-")

        def progress(stage: str, step: int, frac: float, value: float, elapsed: float) -> None:
            bar.update(task, completed=min(frac, 1.0), step=step, psnr=f"{value:.2f} dB (fit)")

        result = compress(signal, model, bpp=bpp, psnr=psnr, max_error=max_error, relative=relative,
                          time_budget=time_budget, seed=seed, steps=steps, progress=progress,
                          preset=preset, tile=False if no_tile else tile)
    report = write_result(out_path, result, json_report, input=str(input))
    met = report.get("target_met")
    note = "" if met is None or met else "  (target not reached: best found)"
    typer.echo(f"{out_path}: {report['bytes']} bytes, {report['bpp']:.4f} bpp, PSNR {report['psnr']:.2f} dB, "
               f"{report['seconds']:.1f} s, model {report['model']}{note}")
    if "target_max_error" in report:  # error-bounded: what was promised, what was kept, and auto's choice
        ratio = signal.data.nbytes / report["bytes"]
        typer.echo(f"  ratio {ratio:.2f}, max error {report['max_abs_error']:.6g} <= bound "
                   f"{report['target_max_error']:.6g} ({report.get('values_over_bound', 0)} values over)"
                   + (f"; {report['auto']['why']}" if "auto" in report else ""))


def write_result(out_path: Path, result, json_report: Optional[Path], **extra) -> dict:
    """The shared tail of every fit command: write the .inrc, then the report as JSON (both atomic). Returns the
    report with ``extra`` and the output path added."""
    from .signals._atomic import write_bytes_atomic

    write_bytes_atomic(out_path, result.data)
    report = dict(result.report, **extra, output=str(out_path))
    if json_report is not None:
        write_bytes_atomic(json_report, json.dumps(report, indent=2, default=_json_scalar).encode())
    return report


def _json_scalar(value):
    """numpy scalars in a report become plain numbers."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _parse_size(text: str, ndim: int) -> tuple[int, ...]:
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) != ndim or any(p <= 0 or p > (1 << 16) for p in parts):
        _fail(f"--size {text!r}: expected {'x'.join(['N'] * ndim)} (width first) with positive sizes")
    return tuple(reversed(parts))  # WxH -> (H, W)


@app.command()
def decode(
    input: Path = typer.Argument(..., help=".inrc file"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="output file; format by extension"),
    size: Optional[str] = typer.Option(None, "--size", help="render on another grid: WxH (images)"),
    scale: Optional[float] = typer.Option(None, "--scale", help="render at F times the original resolution"),
    fraction: Optional[float] = typer.Option(None, "--fraction",
                                             help="progressive models: decode only this most important part (0-1]"),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", min=0,
                                              help="refuse outputs with more samples than this (default 2**27; "
                                                   "0 = no cap): the decompression-bomb guard"),
    var: Optional[list[str]] = typer.Option(None, "--var", help="datasets: decode only this variable (repeatable)"),
    frames: Optional[str] = typer.Option(None, "--frames", help="video: decode only frames A:B (B exclusive)"),
    fps: Optional[float] = typer.Option(None, "--fps", help="video: render at F frames per second"),
) -> None:
    """Decode an .inrc file (.png/.tif 8 or 16 bit as the input was, .npy, .wav ...)."""
    from .codec import decompress
    from .limits import pixel_cap
    from .signals import save
    from .signals._atomic import check_output_path

    if size is not None and scale is not None:
        _fail("give --size or --scale, not both")
    if fraction is not None and not 0 < fraction <= 1:
        _fail("--fraction must be in (0, 1]")
    data = _read_input_file(input)
    header = _read_container_named(input, data)
    if header.model == "dataset":  # .nc/.h5/.zarr (or .npy for one variable)
        from .dataset_cli import decode_dataset

        if size is not None or scale is not None or fraction is not None:
            _fail("--size, --scale and --fraction do not apply to datasets")
        with pixel_cap(max_pixels):  # each tile under the cap
            return decode_dataset(header, input, output, var)
    if header.model == "video":  # a file of GOPs (video_codec.py)
        from .video_cli import decode_video

        with pixel_cap(max_pixels):  # each GOP under the cap
            return decode_video(input, data, header, output, size=size, scale=scale, frames=frames, fps=fps,
                                fraction=fraction, parse_size=_parse_size)
    if var:
        _fail("--var applies to dataset files")
    if frames is not None or fps is not None:
        _fail("--frames and --fps apply to video files only")
    native = tuple(header.signal["shape"][:-1])
    shape = None
    if size is not None:
        shape = _parse_size(size, len(native))
    elif scale is not None:
        if not 0 < scale <= 16:
            _fail("--scale must be in (0, 16]")
        shape = tuple(max(1, round(n * scale)) for n in native)
    if output is None:
        ext = {"image": ".png", "audio": ".wav"}.get(header.signal["kind"], ".npy")
        if header.signal["kind"] == "image" and header.signal["dtype"] not in ("uint8", "uint16"):
            ext = ".npy"
        output = input.with_name(input.stem + ".decoded" + ext)
    check_output_path(output)
    try:
        signal = decompress(data, shape=shape, fraction=fraction, max_pixels=max_pixels)
    except FormatError as exc:
        raise FormatError(f"{input}: {exc}") from None
    save(signal, output)
    typer.echo(f"{output}: {'x'.join(str(s) for s in signal.data.shape)} {signal.dtype}")


@app.command()
def info(input: Path = typer.Argument(..., help=".inrc file")) -> None:
    """Show what an .inrc file holds."""

    data = _read_input_file(input)
    c = _read_container_named(input, data)
    if c.model == "dataset":
        from .dataset_cli import info_dataset

        return info_dataset(c, input, len(data))
    shape = c.signal["shape"]
    pixels = 1
    for n in shape[:-1]:
        pixels *= n
    typer.echo(f"file:     {input} ({len(data)} bytes, {8 * len(data) / pixels:.4f} bpp)")
    typer.echo(f"signal:   {c.signal['kind']} {'x'.join(map(str, shape))} {c.signal['dtype']} range {c.signal['range']}")
    typer.echo(f"model:    {c.model} {json.dumps(c.config)}")
    typer.echo("sections: " + ", ".join(f"{k} {len(v)} B" for k, v in c.sections.items()))
    if c.signal.get("meta"):
        typer.echo(f"metadata: {json.dumps(c.signal['meta'])}")
    if c.model == "video":
        from .video_codec import describe

        for line in describe(data):
            typer.echo(line)
    if c.model == "image-tiles":
        from .image_tiles import describe as describe_tiles

        for line in describe_tiles(c):
            typer.echo(line)


@app.command()
def ui(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(7860, "--port")) -> None:
    """Start the web UI (Gradio)."""
    try:
        from app.main import launch
    except ModuleNotFoundError as exc:
        _fail(f"the UI needs gradio (pip install 'inrcodec[ui]'): {exc.name} is missing")
    launch(host=host, port=port)


def _register_optional_commands() -> None:
    from .batch import register_cli as register_batch

    register_batch(app)
    try:
        from .compare import register_cli
    except ModuleNotFoundError:
        return
    register_cli(app)


def main(argv: list[str] | None = None) -> int:
    _register_optional_commands()
    try:
        app(args=argv, prog_name="inrcodec", standalone_mode=False)
    except InputError as exc:
        print(f"inrcodec: error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever the source
        return 2
    except click_exceptions.NoArgsIsHelpError:
        return 2  # help was printed
    except click_exceptions.UsageError as exc:
        where = f" ({exc.ctx.command_path})" if exc.ctx else ""
        print(f"inrcodec: usage error{where}: {exc.format_message()}", file=sys.stderr)
        return 2
    except typer.Abort:
        print("inrcodec: aborted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:  # e.g. rich on a broken pipe
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        print("inrcodec: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # internal error: one line unless debugging
        if os.environ.get("INRCODEC_DEBUG"):
            raise
        print(f"inrcodec: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
