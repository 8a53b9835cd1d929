"""Compiled decoder of the format-2 residual symbols (``cc_decode_format2`` in ``cuda/coefcoder_cpu.cpp``; format
7's, ``models.coefcoder7``, ``cc_decode_format7``, below): the walk of ``models.coefcoder`` with its own ANS decoder
reproducing constriction's, so the ~30 numpy passes and ~500 constriction calls of a Kodak residual become one call.

The reference is ``coefcoder.decode``'s Python walk. A result is used only when the kernel reports that the stream
ended exactly where the reference's must (sentinel and empty coder); otherwise ``decode`` returns None and the caller
runs the reference, which decodes or raises its own FormatError: a stream this port would read differently cannot
come out as a different image. tests/test_coefcoder_kernel.py holds the two against each other.
"""

from __future__ import annotations

import ctypes

import numpy as np

from ..entropy._bytes import ans_words
from . import _loader


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _inputs(payload: bytes, c: int, by: int, bx: int, up, left, starts, class_table) -> tuple:
    """Both walks' leading arguments (the words, their count, the shape, the three templates' and the class table's
    pointers and its length) and the arrays they point to, which must outlive the call; then the output and the
    escape count the walks fill."""
    words = ans_words(payload)
    arrays = [words, *(np.ascontiguousarray(t, dtype=np.int64) for t in (up, left, starts)),
              np.ascontiguousarray(class_table, dtype=np.int16)]
    args = (_ptr(words), len(words), c, by, bx, *(_ptr(t) for t in arrays[1:]), len(arrays[-1]))
    return args, arrays, np.empty((c * by * bx, 64), np.int16), ctypes.c_int64(0)


def decode(payload: bytes, c: int, by: int, bx: int, up: np.ndarray, left: np.ndarray, starts: np.ndarray,
           class_table: np.ndarray, signs: bool = True) -> tuple[np.ndarray, int] | None:
    """(signed magnitudes (c * by * bx, 64) int16, block-major, |v| = 17 where an escape follows; the number of
    escapes) of the ANS ``payload``, or None (no library, or a stream the kernel does not vouch for). ``signs``
    False: a stream without the signs (``coefcoder.encode(signs=False)``), the magnitudes unsigned."""
    lib = _loader.cpu_library()
    name = "cc_decode_format2" if signs else "cc_decode_format2_unsigned"
    if lib is None or not hasattr(lib, name):
        return None
    args, _arrays, out, n_escape = _inputs(payload, c, by, bx, up, left, starts, class_table)
    rc = getattr(lib, name)(*args, _ptr(out), ctypes.byref(n_escape))
    return (out, int(n_escape.value)) if rc == 0 else None


def decode7(payload: bytes, c: int, by: int, bx: int, up: np.ndarray, left: np.ndarray, starts: np.ndarray,
            class_table: np.ndarray, where: np.ndarray, signs: bool = True,
            groups: tuple[int, int] | None = None) -> tuple | None:
    """``decode`` of a format-7 stream (``models.coefcoder7``: its wider class table, and ``where``, the place of
    each zigzag position on its diagonal; ``signs`` as ``decode``'s); with ``groups`` (gy, gx) the stream holds the
    16x16 group flags (``coefcoder7``'s ``groups``): (symbols, escapes, (gy, gx) bool flags)."""
    lib = _loader.cpu_library()
    if lib is None or not hasattr(lib, "cc_decode_format7"):
        return None
    args, _arrays, out, n_escape = _inputs(payload, c, by, bx, up, left, starts, class_table)
    wh = np.ascontiguousarray(where, dtype=np.int64)
    tail = (_ptr(wh), _ptr(out), ctypes.byref(n_escape), int(signs))
    if groups is not None:
        if not hasattr(lib, "cc_decode_format7_groups"):
            return None
        flags = np.zeros(groups, np.uint8)
        rc = lib.cc_decode_format7_groups(*args, *tail, _ptr(flags), groups[0], groups[1])
        return (out, int(n_escape.value), flags.astype(bool)) if rc == 0 else None
    rc = lib.cc_decode_format7(*args, *tail)
    return (out, int(n_escape.value)) if rc == 0 else None
