"""Headerless binary arrays (.raw, .bin, .float, .f32, .f64, .d64), the convention of scientific lossy
compression (SDRBench, SZ3, ZFP, SPERR): C order, slowest axis first, little-endian unless told otherwise.

The dtype and shape come from the file name, from options, or from both (options win)::

    sperr_pressure_384x384_f64le.d64   -> float64, shape (384, 384)
    wmag_91x91x91_f32le.float          -> float32, shape (91, 91, 91)
    load("field.raw", shape=(64, 64), dtype="f32")

Name tokens are separated by ``_``, ``-`` or ``.``: a dims token ``AxB[xC]`` and a dtype token such as ``f32le``,
``f64be``, ``i16``, ``u8``, ``float32``. The extensions .float/.f32 imply float32 and .d64/.f64 imply float64.
Axes map to a Signal as for .npy (see npy.py): 1 axis -> audio, 2 -> array, 3 -> volume, one channel each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..signal import SUPPORTED_DTYPES, Signal
from ._common import array_to_signal, check_values, fail

EXTENSIONS = (".raw", ".bin", ".float", ".f32", ".f64", ".d64")
_EXT_DTYPES = {".float": "float32", ".f32": "float32", ".f64": "float64", ".d64": "float64"}
_SHORT = {"f16": "float16", "f32": "float32", "f64": "float64", "float": "float32", "double": "float64",
          "i8": "int8", "i16": "int16", "i32": "int32", "u8": "uint8", "u16": "uint16"}
_DIMS = re.compile(r"^\d+(?:x\d+){0,3}$", re.IGNORECASE)
_DTYPE = re.compile(r"^(f16|f32|f64|i8|i16|i32|u8|u16|float|double|float16|float32|float64|int8|int16|int32|"
                    r"uint8|uint16)(le|be)?$", re.IGNORECASE)


@dataclass(frozen=True)
class RawSpec:
    shape: tuple[int, ...] | None = None
    dtype: str | None = None  # a Signal dtype name, e.g. "float32"
    byteorder: str | None = None  # "little" / "big" / None (not said)


def parse_dtype(text: str) -> tuple[str, str | None]:
    """'f32le' -> ('float32', 'little'); 'int16' -> ('int16', None). InputError when not understood."""
    m = _DTYPE.match(text.strip())
    if not m:
        raise InputError(f"unknown raw dtype {text!r} (e.g. f32le, f64le, i16, u8, float32)")
    base = m.group(1).lower()
    order = {"le": "little", "be": "big", None: None}[m.group(2) and m.group(2).lower()]
    return _SHORT.get(base, base), order


def parse_shape(value) -> tuple[int, ...]:
    """(384, 384) or '384x384' -> (384, 384)."""
    if isinstance(value, str):
        if not _DIMS.match(value.strip()):
            raise InputError(f"bad raw shape {value!r} (e.g. 384x384 or 91x91x91)")
        parts = value.strip().lower().split("x")
    else:
        parts = list(value)
    try:
        shape = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise InputError(f"bad raw shape {value!r}") from None
    if not 1 <= len(shape) <= 4 or any(n <= 0 for n in shape):  # 4 axes only with channels_last
        raise InputError(f"bad raw shape {value!r}: need 1-4 positive sizes")
    return shape


def parse_raw_name(name: str) -> RawSpec:
    """Dims and dtype tokens of a file name (SDRBench style); missing parts are None."""
    base = Path(name).name
    suffix = Path(base).suffix.lower()
    stem = base[: -len(suffix)] if suffix in EXTENSIONS else base
    shape = dtype = order = None
    for token in re.split(r"[_\-.]", stem):
        if "x" in token.lower() and _DIMS.match(token):
            shape = parse_shape(token)  # the last dims token wins
        elif _DTYPE.match(token):
            dtype, order = parse_dtype(token)
    ext_dtype = _EXT_DTYPES.get(suffix)
    if dtype is None:
        dtype = ext_dtype
    elif ext_dtype is not None and dtype != ext_dtype:
        raise InputError(f"name says {dtype} but extension {suffix} means {ext_dtype}")
    return RawSpec(shape, dtype, order)


def _byteorder(value) -> str | None:
    if value is None:
        return None
    v = str(value).lower()
    if v in ("little", "le", "<"):
        return "little"
    if v in ("big", "be", ">"):
        return "big"
    raise InputError(f"bad byte order {value!r} (little or big)")


def load_raw(path: Path, shape=None, dtype=None, byteorder=None, channels_last: bool = False) -> Signal:
    try:
        spec = parse_raw_name(path.name)
        opt_dtype, opt_order = parse_dtype(dtype) if dtype is not None else (None, None)
        shape = parse_shape(shape) if shape is not None else spec.shape
        order = _byteorder(byteorder) or opt_order or spec.byteorder or "little"
    except InputError as exc:
        raise fail(path, str(exc)) from None
    dtype = opt_dtype or spec.dtype
    if dtype is None or shape is None:
        missing = " and ".join(w for w, v in (("dtype", dtype), ("shape", shape)) if v is None)
        raise fail(path, f"raw file {missing} unknown: name it like field_384x384_f32le.raw or pass "
                         f"shape= and dtype=")
    if dtype not in SUPPORTED_DTYPES:
        raise fail(path, f"unsupported dtype {dtype}")
    check_values(path, shape)
    dt = np.dtype(dtype).newbyteorder("<" if order == "little" else ">")
    expected = int(np.prod(shape)) * dt.itemsize
    size = path.stat().st_size
    if size != expected:
        raise fail(path, f"file has {size} bytes but shape {'x'.join(map(str, shape))} of {dtype} needs {expected}")
    arr = np.fromfile(path, dtype=dt, count=int(np.prod(shape))).reshape(shape)
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    meta: dict = {"format": "raw"}
    if order == "big":
        meta["byteorder"] = "big"
    return array_to_signal(arr, path, channels_last=channels_last, metadata=meta)


def save_raw(signal: Signal, tmp: Path, dest: Path, byteorder=None) -> None:
    try:
        spec = parse_raw_name(dest.name)
        order = _byteorder(byteorder) or spec.byteorder or _byteorder((signal.metadata or {}).get("byteorder"))
    except InputError as exc:
        raise fail(dest, str(exc)) from None
    data = signal.data
    if spec.dtype is not None and spec.dtype != str(data.dtype):
        raise fail(dest, f"file name says {spec.dtype} but the signal is {data.dtype}")
    expected = signal.coord_shape if signal.channels == 1 else tuple(data.shape)
    if spec.shape is not None and spec.shape != expected:
        raise fail(dest, f"file name says shape {'x'.join(map(str, spec.shape))} but the signal is "
                         f"{'x'.join(map(str, expected))}")
    dt = data.dtype.newbyteorder(">" if order == "big" else "<")
    np.ascontiguousarray(data, dtype=dt).tofile(tmp)
