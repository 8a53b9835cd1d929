"""The entropy coder's context MLP evaluated exactly in float64 (kernel ``lg_exact_arm`` in
``cuda/latentgrid_cpu.cpp``); the reference is the numpy evaluation in ``ExactArm`` of
``inrcodec/models/latentgrid/context.py``, which runs where the kernel cannot be built.

All products and sums are exact (dyadic weights, activations floored to 2**-frac_bits and clamped), so the kernel
returns the same bits as numpy whatever its summation order: files decode identically with or without it.
"""

from __future__ import annotations

import ctypes

import numpy as np

from . import latentgrid_mlp


def exact_mlp(feats: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], frac_bits: int, cap: float
              ) -> np.ndarray | None:
    """(n, d_out) float64 outputs of the floored MLP, or None when the kernel is unavailable.
    ``layers``: [(W (in, out), b (out,))] as ExactArm holds them."""
    lib = latentgrid_mlp.render_library()  # the strict build: decoder bits
    if lib is None:
        return None
    feats = np.ascontiguousarray(feats, dtype=np.float64)
    n = feats.shape[0]
    dims = [feats.shape[1]] + [w.shape[1] for w, _ in layers]
    flat = np.ascontiguousarray(np.concatenate([np.concatenate([w.T.ravel(), b.ravel()]) for w, b in layers]),
                                dtype=np.float64)
    out = np.empty((n, dims[-1]), dtype=np.float64)
    if n == 0:
        return out
    p = ctypes.c_void_p
    latentgrid_mlp.check(lib.lg_exact_arm(p(feats.ctypes.data), n, len(layers), latentgrid_mlp.c_ints(dims),
                                          p(flat.ctypes.data), frac_bits, float(cap), p(out.ctypes.data), 1),
                         "exact context")
    return out


def context_2d_f64(y: np.ndarray, coarse: np.ndarray | None, level_pos: float, parity: int) -> np.ndarray | None:
    """(count, 11) float64 context features of a 2-D level for the coder (parity -1: all samples, 0: even, 1: odd,
    in row-major order), or None when the kernel is unavailable. Reference: ``context_features``."""
    lib = latentgrid_mlp.render_library()  # the strict build: decoder bits
    if lib is None or y.ndim != 2 or (coarse is not None and coarse.ndim != 2):
        return None
    y = np.ascontiguousarray(y, dtype=np.float64)
    H, W = y.shape
    count = H * W if parity < 0 else (H * W + (1 if parity == 0 else 0)) // 2
    out = np.empty((count, 11), dtype=np.float64)
    p = ctypes.c_void_p
    if coarse is not None:
        coarse = np.ascontiguousarray(coarse, dtype=np.float64)
    Hc, Wc = (1, 1) if coarse is None else coarse.shape
    k = lib.lg_context2d_f64(p(y.ctypes.data), None if coarse is None else p(coarse.ctypes.data), H, W, Hc, Wc,
                             float(level_pos), int(parity), p(out.ctypes.data))
    if k != count:
        raise RuntimeError("latentgrid coder context kernel: unexpected sample count")
    return out
