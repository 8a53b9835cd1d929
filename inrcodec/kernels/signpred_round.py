"""Compiled copy of one round of the residual's sign prediction (``sp_predict_round`` / ``sp_apply_round`` in
``cuda/signpred_cpu.cpp``): per unit the contributions of its predicted coefficients, its border lines and its
neighbours', the 2^K hypotheses and the per-coefficient signs and margin classes; then the lines' update (the
contributions recomputed there: storing them cost more memory traffic than computing them twice).

The reference is ``models.signpred``'s numpy path (``_Kind`` and ``predict``), which stays the fallback where no
compiler is available; both compute exact integers, so they give the same predictions (tests/test_signpred.py).
"""

from __future__ import annotations

import ctypes

import numpy as np

from ..entropy._bytes import ans_words
from . import _loader


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _c(a: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


def predict_round(full: np.ndarray, blocks: np.ndarray, nb: np.ndarray, ok: np.ndarray, spec, sel: np.ndarray,
                  absdeq: np.ndarray, basis: np.ndarray, shift: int, op, edges) -> tuple | None:
    """(pred (n, K) +1 / -1, margin classes (n, K)) or None (no library)."""
    lib = _loader.cpu_library()
    if lib is None or not hasattr(lib, "sp_predict_round"):
        return None
    n, m = blocks.shape
    k = sel.shape[1]
    s = nb.shape[1]
    assert full.flags.c_contiguous and full.dtype == np.float64
    args = [_c(blocks, np.int64), _c(nb, np.int64), _c(ok, np.uint8), _c(np.asarray(spec), np.int32),
            _c(sel, np.int64), _c(absdeq, np.float64), _c(basis, np.float64), _c(np.asarray(op), np.int32),
            _c(np.asarray(edges), np.float64)]
    pred = np.empty((n, k))
    cls = np.empty((n, k), np.int64)
    rc = lib.sp_predict_round(_ptr(full), len(full), _ptr(args[0]), m, _ptr(args[1]), _ptr(args[2]), s,
                              _ptr(args[3]), _ptr(args[4]), k, _ptr(args[5]), _ptr(args[6]), 2.0 ** -shift,
                              _ptr(args[7]), _ptr(args[8]), len(edges), n, _ptr(pred), _ptr(cls))
    return (pred, cls) if rc == 0 else None


def apply_round(full: np.ndarray, blocks: np.ndarray, spec, sel: np.ndarray, absdeq: np.ndarray, basis: np.ndarray,
                shift: int, sign: np.ndarray) -> bool:
    """full's lines of the units += sum_k sign_k x (the coefficients' contributions), in place; False where there is
    no library."""
    lib = _loader.cpu_library()
    if lib is None or not hasattr(lib, "sp_apply_round"):
        return False
    assert full.flags.c_contiguous and full.dtype == np.float64
    n, m = blocks.shape
    k = sign.shape[1]
    s = len(spec)
    args = [_c(blocks, np.int64), _c(np.asarray(spec), np.int32), _c(sel, np.int64), _c(absdeq, np.float64),
            _c(basis, np.float64), _c(sign, np.float64)]
    return lib.sp_apply_round(_ptr(full), len(full), _ptr(args[0]), m, s, _ptr(args[1]), _ptr(args[2]), k,
                              _ptr(args[3]), _ptr(args[4]), 2.0 ** -shift, _ptr(args[5]), n) == 0


def lines(deq: np.ndarray, basis: np.ndarray, shift: int) -> np.ndarray | None:
    """(n, W) floor(deq @ basis / 2^shift) over the non-zero coefficients, or None (no library)."""
    lib = _loader.cpu_library()
    if lib is None or not hasattr(lib, "sp_lines"):
        return None
    d, b = _c(deq, np.float64), _c(basis, np.float64)
    out = np.empty((len(d), b.shape[1]))
    rc = lib.sp_lines(_ptr(d), len(d), d.shape[1], _ptr(b), b.shape[1], 2.0 ** -shift, _ptr(out))
    return out if rc == 0 else None


def walk(payload: bytes | None, q: np.ndarray, per: np.ndarray, tx16: np.ndarray | None, basis8: np.ndarray,
         basis16: np.ndarray, weight8: np.ndarray, weight16: np.ndarray, k: int, rounds8: int, rounds16: int,
         ranks: np.ndarray, nranks: int, shift8: int, shift16: int, clamp8: float, clamp16: float, op,
         edges, form: int = 1) -> tuple | None:
    """The whole sign pass (``form`` 1 or 2) in one call (``sp_walk``). Decoding (``payload``): the signed symbols
    (c, by, bx, 64) int16 from their magnitudes ``q``, or None (no library, or a stream the kernel does not vouch
    for: the caller decodes with the Python walk). Encoding (``payload`` None, ``q`` signed): (the raw signs' bits,
    the "wrong" bits, their contexts, how many each step (phase, round) codes, in order), or None (no library)."""
    lib = _loader.cpu_library()
    if lib is None or not hasattr(lib, "sp_walk"):
        return None
    c, by, bx, _ = q.shape
    sym = np.array(q, dtype=np.int16, order="C")  # a copy: decoding writes the signs into it
    tab = [_c(per, np.float64), _c(basis8, np.float64), _c(basis16, np.float64), _c(weight8, np.int64),
           _c(weight16, np.int64), _c(ranks, np.int32), _c(np.asarray(op), np.int32), _c(np.asarray(edges), np.float64)]
    mask = None if tx16 is None else _c(tx16, np.uint8)
    maxr = max(rounds8, rounds16)
    if payload is not None:
        words = ans_words(payload)
        raw = wrong = ctx = seg = np.zeros(1, np.int64)
    else:
        words = None
        n = max(int(sym.size), 1)
        raw, wrong, ctx = np.empty(n, np.uint8), np.empty(n, np.int32), np.empty(n, np.int32)
        seg = np.zeros(6 * maxr, np.int64)
    n_raw, n_bits = ctypes.c_int64(0), ctypes.c_int64(0)
    rc = lib.sp_walk(None if words is None else _ptr(words), 0 if words is None else len(words), c, by, bx, _ptr(sym),
                     _ptr(tab[0]), None if mask is None else _ptr(mask), _ptr(tab[1]), _ptr(tab[2]), _ptr(tab[3]),
                     _ptr(tab[4]), k, rounds8, rounds16, _ptr(tab[5]), nranks, shift8, shift16, float(clamp8),
                     float(clamp16), _ptr(tab[6]), _ptr(tab[7]), len(edges), int(form), _ptr(raw),
                     ctypes.byref(n_raw), _ptr(wrong), _ptr(ctx), ctypes.byref(n_bits), _ptr(seg))
    if rc != 0:
        return None
    if payload is not None:
        return sym
    nb = int(n_bits.value)
    return raw[:int(n_raw.value)].astype(np.int32), wrong[:nb], ctx[:nb], seg
