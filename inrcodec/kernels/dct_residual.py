"""Compiled decoder of the image DCT residual (``cuda/dct_residual_cpu.cpp``): ``inverse_add``, the exact integer
8x8 inverse of the quantised symbols, YCoCg -> RGB and the rounded, clipped sum with the integer base in one pass
over the image; ``deblock``, the block-edge filter with one set of thresholds, in place, on 1 or 3 channels.

References: ``image_dct._inverse_add_reference`` (float32 GEMMs of integers, exact) and ``deblock.deblock``
(numpy, on 3 channels); the kernels compute the same integers (tests/test_dct_residual_kernel.py holds each against
its reference, hostile extremes included). Without the compiled library both return None and the caller runs the
reference.
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from . import _loader


# Below this many pixels the kernels run on one thread: a Kodak image's inverse takes 2-3 CPU-ms, which two OpenMP
# threads shorten by ~1 ms on an idle machine but lengthen to 13-24 CPU-ms / 30-60 ms wall on a loaded one (load 9,
# threads spinning at barriers while the other is descheduled; benchmarks/README.md, session 21).
PARALLEL_MIN_PIXELS = 1 << 22


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _threads(pixels: int) -> int:
    return torch.get_num_threads() if pixels >= PARALLEL_MIN_PIXELS else 1


def inverse_add(base: np.ndarray, q: np.ndarray, per_position: np.ndarray, zigzag: np.ndarray, t8: np.ndarray,
                clamp: int, shift1: int, shift2: int, level: int) -> np.ndarray | None:
    """``base`` (h, w, c) uint8/uint16 + the inverse of ``q`` (c, by, bx, 64) symbols in zigzag order with steps
    ``per_position`` (c, 64): the decoded (h, w, c) image, or None where the kernel cannot run (no library,
    symbols beyond int16, another dtype)."""
    lib = _loader.cpu_library()
    args = None if lib is None else _kernel_inputs(base, q, per_position, zigzag, t8)
    if args is None:
        return None
    q, base, per, zz, t = args
    h, w, c = base.shape
    out = np.empty_like(base)
    rc = lib.gr_dct_inverse_add_cpu(_ptr(q), c, q.shape[1], q.shape[2], _ptr(per), _ptr(zz), _ptr(t), int(clamp),
                                    int(shift1), int(shift2), _ptr(base), _ptr(out), h, w, base.dtype.itemsize,
                                    int(level), _threads(h * w))
    return out if rc == 0 else None


def _kernel_inputs(base: np.ndarray, q: np.ndarray, per_position: np.ndarray, zigzag: np.ndarray,
                   matrix: np.ndarray) -> tuple | None:
    """(symbols as contiguous int16, base, per-position steps, zigzag, transform matrix as contiguous int32) for the
    inverse-add kernels, or None where they cannot take them (dtype, shape, or a symbol beyond int16)."""
    if base.dtype not in (np.uint8, np.uint16) or base.ndim != 3:
        return None
    if q.ndim != 4 or q.shape[0] != base.shape[2] or q.shape[3] != 64:
        return None
    if q.dtype != np.int16:
        if q.size and int(np.abs(q).max()) > np.iinfo(np.int16).max:
            return None
        q = q.astype(np.int16)
    return (np.ascontiguousarray(q), np.ascontiguousarray(base),
            *(np.ascontiguousarray(a, dtype=np.int32) for a in (per_position, zigzag, matrix)))


def tx16_add(out: np.ndarray, base: np.ndarray, q: np.ndarray, per_position: np.ndarray, zigzag: np.ndarray,
             t16: np.ndarray, clamp: int, shift1: int, shift2: int, flags: np.ndarray, level: int) -> bool:
    """Write the flagged 16x16 groups (``image_dct`` format 4) into ``out`` (h, w, c), as
    ``image_dct._add_groups_reference`` does; False (``out`` untouched) where the kernel cannot run."""
    lib = _loader.cpu_library()
    if lib is None or out.dtype != base.dtype or out.shape != base.shape or not out.flags.c_contiguous:
        return False
    args = _kernel_inputs(base, q, per_position, zigzag, t16)
    if args is None:
        return False
    q, base, per, zz, t = args
    h, w, c = base.shape
    f = np.ascontiguousarray(flags, dtype=np.uint8)
    rc = lib.gr_tx16_add_cpu(_ptr(q), c, q.shape[1], q.shape[2], _ptr(per), _ptr(zz), _ptr(t), int(clamp),
                             int(shift1), int(shift2), _ptr(f), f.shape[0], f.shape[1], _ptr(base), _ptr(out), h, w,
                             base.dtype.itemsize, int(level))
    return rc == 0


def deblock(image: np.ndarray, coded: np.ndarray, alpha: int, beta: int, tc: int) -> np.ndarray | None:
    """``image`` (h, w, c) uint8 with its 8x8 block edges filtered where a block of ``coded`` (by, bx) holds a
    residual (a new array), as ``models.deblock.deblock`` with thresholds ``deblock.thresholds(step, strength)``
    filters each channel; None where the kernel cannot run."""
    lib = _loader.cpu_library()
    if lib is None or image.dtype != np.uint8 or image.ndim != 3:
        return None
    h, w, c = image.shape
    if coded.shape != (-(-h // 8), -(-w // 8)):
        return None
    out = np.array(image, order="C", copy=True)
    flags = np.ascontiguousarray(coded, dtype=np.uint8)
    rc = lib.gr_deblock_cpu(_ptr(out), h, w, c, _ptr(flags), flags.shape[0], flags.shape[1], int(alpha), int(beta),
                            int(tc), _threads(h * w))
    return out if rc == 0 else None
