"""NumPy ``.npy`` arrays (never pickles: ``np.load(allow_pickle=False)``, and the header is checked first).

A ``.npy`` file has no notion of channels, so its axes are read by this convention:

==============  ==========================  ========  =====================================
array ndim      Signal shape                kind      typical content
==============  ==========================  ========  =====================================
1  (T,)         (T, 1)                      audio     a time series (no sample rate known)
2  (H, W)       (H, W, 1)                   array     a 2-D scalar field
3  (Z, Y, X)    (Z, Y, X, 1)                volume    a 3-D scalar field
==============  ==========================  ========  =====================================

With ``channels_last=True`` the last axis is the channel axis instead: (T, C) -> audio, (H, W, C) -> array,
(Z, Y, X, C) -> volume. Four axes without ``channels_last`` are refused (ambiguous).

dtypes: every Signal dtype is kept as is. Big-endian arrays are byte-swapped, bool becomes uint8 (0/1), and
int64/uint32/uint64 arrays whose values fit become int32; the original dtype is then kept in
``metadata["npy_dtype"]``. The original shape is kept in ``metadata["npy_shape"]``, so saving a signal that came
from a ``.npy`` file gives back the same shape and dtype. A signal of another origin is saved with its channel axis
dropped when it has one channel, as is otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..signal import SUPPORTED_DTYPES, Signal
from ._common import array_to_signal, check_values, describe_exc, fail

NPY_MAGIC = b"\x93NUMPY"


def is_npy(head: bytes) -> bool:
    return head.startswith(NPY_MAGIC)


def _read_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    fmt = np.lib.format
    with open(path, "rb") as fh:
        try:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(fh)
            else:  # 3.0 only adds utf-8 field names of structured dtypes, which are refused anyway
                raise fail(path, f"unsupported .npy format version {version[0]}.{version[1]}")
        except InputError:
            raise
        except Exception as exc:
            raise fail(path, f"corrupt .npy header ({describe_exc(exc)})") from None
        return tuple(int(n) for n in shape), np.dtype(dtype), fh.tell()


def _check_npy_dtype(path, dtype: np.dtype) -> None:
    if dtype.hasobject:
        raise fail(path, "array holds Python objects, which are not loaded (pickle is never used)")
    if dtype.fields is not None or dtype.subdtype is not None:
        raise fail(path, f"structured dtype {dtype} is not supported")
    if dtype.kind not in "biuf":
        raise fail(path, f"unsupported dtype {dtype} (supported: {', '.join(SUPPORTED_DTYPES)})")
    if dtype.kind == "f" and dtype.itemsize > 8:
        raise fail(path, f"unsupported dtype {dtype} (supported: {', '.join(SUPPORTED_DTYPES)})")


def _to_signal_dtype(path, arr: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Array in a Signal dtype, plus the original dtype string where it had to change."""
    orig = arr.dtype
    if not orig.isnative:
        arr = arr.astype(orig.newbyteorder("="))
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    elif str(arr.dtype) not in SUPPORTED_DTYPES and arr.dtype.kind in "iu":
        info = np.iinfo(np.int32)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise fail(path, f"{orig} values outside the int32 range are not supported")
        arr = arr.astype(np.int32)
    if str(arr.dtype) not in SUPPORTED_DTYPES:
        raise fail(path, f"unsupported dtype {orig} (supported: {', '.join(SUPPORTED_DTYPES)})")
    return arr, (orig.str if arr.dtype != orig else None)


def load_npy(path: Path, channels_last: bool = False) -> Signal:
    shape, dtype, offset = _read_header(path)
    _check_npy_dtype(path, dtype)
    if len(shape) == 0:
        raise fail(path, "array is a scalar (0 axes)")
    check_values(path, shape)
    expected = int(np.prod(shape)) * dtype.itemsize
    available = path.stat().st_size - offset
    if available < expected:
        raise fail(path, f"truncated .npy file: {available} data bytes, the header announces {expected}")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise fail(path, f"corrupt .npy file ({describe_exc(exc)})") from None
    arr, npy_dtype = _to_signal_dtype(path, arr)
    meta: dict = {"format": "npy", "npy_shape": list(shape)}
    if npy_dtype is not None:
        meta["npy_dtype"] = npy_dtype
    sig = array_to_signal(arr, path, channels_last=bool(channels_last), metadata=meta)
    if npy_dtype is not None and np.dtype(npy_dtype).kind == "b":
        sig.value_range = (0.0, 1.0)
    return sig


def _restore_dtype(dest, arr: np.ndarray, spec: str) -> np.ndarray:
    try:
        target = np.dtype(spec)
    except TypeError:
        raise fail(dest, f"metadata npy_dtype {spec!r} is not a dtype") from None
    if target.kind not in "biuf" or target.hasobject or target.fields is not None or target.itemsize > 8:
        raise fail(dest, f"metadata npy_dtype {spec!r} is not allowed")
    if target.kind == "b":
        return arr != 0
    if target.kind in "iu" and arr.dtype.kind in "iu":
        info = np.iinfo(target)
        arr = np.clip(arr, max(info.min, np.iinfo(arr.dtype).min), min(info.max, np.iinfo(arr.dtype).max))
    return arr.astype(target)


def save_npy(signal: Signal, tmp: Path, dest: Path) -> None:
    data = signal.data
    meta = signal.metadata or {}
    npy_shape = meta.get("npy_shape")
    if npy_shape is not None and (
        tuple(npy_shape) == data.shape or tuple(npy_shape) + (1,) == data.shape
    ):
        arr = data.reshape(tuple(int(n) for n in npy_shape))
    elif signal.channels == 1:
        arr = data[..., 0]
    else:
        arr = data
    if meta.get("npy_dtype"):
        arr = _restore_dtype(dest, arr, str(meta["npy_dtype"]))
    with open(tmp, "wb") as fh:  # a file object: np.save would append ".npy" to a path without it
        np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
