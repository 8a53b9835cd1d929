"""Shared checks and conventions for the format modules."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..signal import SUPPORTED_DTYPES, Signal

# Refuse inputs above these sizes before decoding them (a 16k x 16k RGBA image is 2**28 pixels, 4 GiB as uint8x4;
# 2**30 values is 4 GiB as float32). They bound memory, not quality.
MAX_PIXELS = 2**28
MAX_VALUES = 2**30

# Number of coordinate axes -> Signal kind for headerless arrays (.npy, raw). See npy.py's docstring.
ARRAY_KINDS = {1: "audio", 2: "array", 3: "volume"}


def fail(path: str | os.PathLike, problem: str) -> InputError:
    """An InputError whose one-line message starts with the file name."""
    text = " ".join(str(problem).split())  # library messages sometimes hold newlines
    return InputError(f"{path}: {text}")


def describe_exc(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_readable(path: str | os.PathLike) -> Path:
    """Path of an existing regular file, else InputError (missing, a directory, unreadable)."""
    p = Path(path)
    if not p.exists():
        raise fail(path, "no such file")
    if p.is_dir():
        raise fail(path, "is a directory, not a file")
    if not p.is_file():
        raise fail(path, "not a regular file")
    if not os.access(p, os.R_OK):
        raise fail(path, "permission denied")
    return p


def check_not_empty(path: str | os.PathLike) -> int:
    size = Path(path).stat().st_size
    if size == 0:
        raise fail(path, "file is empty")
    return size


def check_values(path: str | os.PathLike, shape: tuple[int, ...], what: str = "array") -> None:
    if any(int(n) <= 0 for n in shape):
        raise fail(path, f"{what} has an empty axis (shape {tuple(shape)})")
    n = int(np.prod([int(s) for s in shape], dtype=np.float64))
    if n > MAX_VALUES:
        raise fail(path, f"{what} of shape {tuple(shape)} has {n} values, more than the limit {MAX_VALUES}")


def check_dtype(path: str | os.PathLike, dtype: np.dtype) -> None:
    if str(np.dtype(dtype)) not in SUPPORTED_DTYPES:
        raise fail(path, f"unsupported dtype {np.dtype(dtype)} (supported: {', '.join(SUPPORTED_DTYPES)})")


def array_to_signal(
    arr: np.ndarray, path: str | os.PathLike, *, channels_last: bool = False, metadata: dict | None = None
) -> Signal:
    """Headerless array -> Signal: a channel axis is added (or taken from the last axis with channels_last)."""
    if channels_last:
        if arr.ndim < 2 or arr.ndim > 4:
            raise fail(path, f"with channels_last the array needs 2-4 axes, got shape {arr.shape}")
        data = arr
    else:
        if arr.ndim < 1 or arr.ndim > 3:
            hint = " (pass channels_last=True if the last axis holds channels)" if arr.ndim == 4 else ""
            raise fail(path, f"need an array with 1-3 axes, got shape {arr.shape}{hint}")
        data = arr[..., None]
    check_dtype(path, data.dtype)
    check_values(path, data.shape)
    kind = ARRAY_KINDS[data.ndim - 1]
    try:
        return Signal(np.ascontiguousarray(data), kind=kind, metadata=dict(metadata or {}))
    except InputError as exc:  # e.g. a float array holding no finite value
        raise fail(path, str(exc)) from None
