"""Compiled decoder of ``gaussian+dct``'s restoration filters (``rs_apply_cpu`` in ``cuda/restore_cpu.cpp``): the
4x4 block classes and the per-class diamond filters of every channel in one pass per channel.

The reference is ``models.restore.apply_reference`` (numpy); tests/test_restore.py holds the two against each other
bit for bit on random and real images. Without the compiled library ``apply`` returns None and the caller runs the
reference.
"""

from __future__ import annotations

import ctypes

import numpy as np

from . import _loader
from .dct_residual import _ptr, _threads


def apply(img: np.ndarray, params: dict) -> np.ndarray | None:
    """``img`` (h, w, c) uint8 filtered by ``params`` (``models.restore.decode``'s form): a new array, or None where
    the kernel cannot run."""
    lib = _loader.cpu_library()
    if lib is None or not hasattr(lib, "rs_apply_cpu") or img.dtype != np.uint8 or img.ndim != 3:
        return None
    from ..models import restore

    h, w, c = img.shape
    per = [restore.per_class_coefs(params, ch, c) for ch in range(c)]
    stride = max(p.shape[1] for p in per)  # channels without cross taps: zero-padded to the longest filter
    per = np.ascontiguousarray(np.stack([np.pad(p, ((0, 0), (0, stride - p.shape[1]))) for p in per]), dtype=np.int32)
    cross = np.array([restore.n_cross(params, ch) for ch in range(c)], np.int32)
    thr = np.ascontiguousarray(np.asarray(params["thresholds"], np.int64).reshape(-1), dtype=np.int32)
    src = np.ascontiguousarray(img)
    out = np.empty_like(src)
    rc = lib.rs_apply_cpu(_ptr(src), _ptr(out), h, w, c, int(params["shape"]), int(params["shift"]),
                          int(params["n_act"]), int(params["n_dir"]), _ptr(thr if thr.size else np.zeros(1, np.int32)),
                          _ptr(cross), _ptr(per), stride, _threads(h * w))
    return out if rc == 0 else None
