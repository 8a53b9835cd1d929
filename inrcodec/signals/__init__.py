"""Load and save Signals, one module per format family.

    sig = load("kodim01.png")            # Signal(kind="image", data (512, 768, 3) uint8)
    save(sig, "copy.png")                # atomic: a temporary file next to the target, then os.replace

The extension picks the format and the file's first bytes must agree with it (a text file named ``.png`` is refused
with "x.png: not a PNG image"). Every problem with the input is an ``InputError`` with a one-line message that starts
with the file name. ``FORMATS`` lists what is supported; ``register_format`` adds one (e.g. video, NetCDF).

==========================  ===========  ===================================================
extensions                  module       notes
==========================  ===========  ===================================================
.png                        images       8/16-bit gray, gray+alpha, RGB, RGBA; palette -> RGB(A)
.jpg .jpeg / .webp / .bmp   images       8-bit (WebP saves lossless by default)
.tif .tiff                  images       any Signal dtype; multi-page -> volume
.npy                        npy          axes convention in npy.py; shape and dtype restored on save
.wav                        wav          PCM 8/16/24/32-bit and float; sample rate kept
.raw .bin .float .f32 ...   raw          dtype and shape from the name (SDRBench) or options
.nc .h5 .hdf5 ...           dataset      one variable (option ``var``); whole datasets: dataset_codec
==========================  ===========  ===================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InputError
from ..signal import Signal
from . import dataset, images, npy, raw, wav
from ._atomic import atomic_output, atomic_write, check_output_path, write_bytes_atomic
from ._common import MAX_PIXELS, MAX_VALUES, check_not_empty, check_readable, fail
from .raw import parse_raw_name

__all__ = [
    "load", "save", "Format", "FORMATS", "register_format", "format_for", "supported_extensions",
    "atomic_output", "atomic_write", "write_bytes_atomic", "parse_raw_name", "MAX_PIXELS", "MAX_VALUES",
]


@dataclass(frozen=True)
class Format:
    name: str  # short name, also metadata["format"]
    label: str  # for messages: "x.png: not a PNG image"
    extensions: tuple[str, ...]  # lower case, with the dot
    load: Callable[..., Signal] | None  # load(path: Path, **options) -> Signal
    save: Callable[..., None] | None  # save(signal, tmp: Path, dest: Path, **options); must write tmp
    sniff: Callable[[bytes], bool] | None = None  # True when the first bytes fit; None: no magic (raw)
    load_options: tuple[str, ...] = ()
    save_options: tuple[str, ...] = ()


FORMATS: list[Format] = [
    Format("png", "a PNG image", (".png",), images.load_png, images.save_png, images.is_png,
           save_options=("level",)),
    Format("jpeg", "a JPEG image", (".jpg", ".jpeg"), images.load_jpeg, images.save_jpeg, images.is_jpeg,
           save_options=("quality",)),
    Format("tiff", "a TIFF image", (".tif", ".tiff"), images.load_tiff, images.save_tiff, images.is_tiff,
           save_options=("compression",)),
    Format("webp", "a WebP image", (".webp",), images.load_webp, images.save_webp, images.is_webp,
           save_options=("lossless", "quality")),
    Format("bmp", "a BMP image", (".bmp",), images.load_bmp, images.save_bmp, images.is_bmp),
    Format("npy", "a NumPy .npy file", (".npy",), npy.load_npy, npy.save_npy, npy.is_npy,
           load_options=("channels_last",)),
    Format("wav", "a WAV file", (".wav",), wav.load_wav, wav.save_wav, wav.is_wav,
           save_options=("sample_rate",)),
    Format("raw", "a raw binary file", raw.EXTENSIONS, raw.load_raw, raw.save_raw, None,
           load_options=("shape", "dtype", "byteorder", "channels_last"), save_options=("byteorder",)),
    # one variable of a NetCDF/HDF5 file (whole datasets: inrcodec.dataset_codec; `fit` dispatches there)
    Format("dataset", "a NetCDF or HDF5 file", dataset.NETCDF_SUFFIXES + dataset.HDF5_SUFFIXES,
           dataset.load_variable, None, dataset.is_dataset_file, load_options=("var",)),
]


def register_format(fmt: Format) -> None:
    """Add a format (or replace the one that has the same name)."""
    FORMATS[:] = [f for f in FORMATS if f.name != fmt.name] + [fmt]


def supported_extensions(mode: str = "load") -> list[str]:
    attr = {"load": "load", "save": "save"}[mode]
    return sorted(e for f in FORMATS if getattr(f, attr) is not None for e in f.extensions)


def format_for(path: str | os.PathLike, mode: str = "load") -> Format:
    """The format chosen by the file name, or InputError naming the file."""
    ext = Path(path).suffix.lower()
    for f in FORMATS:
        if ext in f.extensions and getattr(f, mode) is not None:
            return f
    known = ", ".join(supported_extensions(mode))
    if not ext:
        raise fail(path, f"no file extension to tell the format (supported: {known})")
    verb = "read" if mode == "load" else "write"
    raise fail(path, f"cannot {verb} {ext!r} files (supported: {known})")


def _check_options(path, fmt: Format, given: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        ok = ", ".join(allowed) or "none"
        raise fail(path, f"option {', '.join(unknown)} does not apply to {fmt.name} files (options: {ok})")


def _guess(head: bytes) -> Format | None:
    return next((f for f in FORMATS if f.sniff is not None and f.sniff(head)), None)


def load(path: str | os.PathLike, **options) -> Signal:
    """Read a signal file. Options are format-specific (npy: channels_last; raw: shape, dtype, byteorder)."""
    p = check_readable(path)
    fmt = format_for(path, "load")
    check_not_empty(p)
    _check_options(path, fmt, options, fmt.load_options)
    if fmt.sniff is not None:
        with open(p, "rb") as fh:
            head = fh.read(64)
        if not fmt.sniff(head):
            other = _guess(head)
            hint = f" (it looks like {other.label})" if other is not None else ""
            raise fail(path, f"not {fmt.label}{hint}")
    try:
        return fmt.load(p, **options)
    except MemoryError:
        raise fail(path, "not enough memory to decode this file") from None
    except InputError as exc:  # e.g. the Signal's own checks (no finite value, infinities): name the file
        if str(exc).startswith(f"{path}: "):
            raise
        raise fail(path, str(exc)) from None


def save(signal: Signal, path: str | os.PathLike, **options) -> None:
    """Write a signal; the format follows the extension. Atomic: on any error no file is left behind."""
    if not isinstance(signal, Signal):
        raise TypeError(f"save() needs a Signal, got {type(signal).__name__}")
    fmt = format_for(path, "save")
    _check_options(path, fmt, options, fmt.save_options)
    target = check_output_path(path)
    with atomic_output(target) as tmp:
        fmt.save(signal, tmp, target, **options)

from . import video as _video  # noqa: E402,F401  (registers the video formats: .mp4 .mkv .webm .mov .avi .y4m)
