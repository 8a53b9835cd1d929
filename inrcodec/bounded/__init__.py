"""Error-bounded coding of arrays: closed-loop multilevel interpolation + context-modelled entropy coding.

``encode_verified`` is what the codec calls: it codes, decodes its own payload with the decoder that users run,
and checks every value against the bound (and non-finite values bit for bit) before returning.
"""

from __future__ import annotations

import numpy as np

from .coder import BoundedStats, decode_bounded, encode_bounded, quantiser

__all__ = ["BoundedStats", "decode_bounded", "encode_bounded", "encode_verified", "quantiser", "max_violation"]


def max_violation(x: np.ndarray, y: np.ndarray, bound: float) -> tuple[float, int]:
    """(max |x - y| over finite x, number of values that break the bound or the exact non-finite contract)."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.dtype.kind == "f":
        fin = np.isfinite(x)
        bits_x = x[~fin].view(f"u{x.dtype.itemsize}")
        bits_y = y[~fin].view(f"u{y.dtype.itemsize}") if y.dtype == x.dtype else None
        bad_nonfinite = int((bits_x != bits_y).sum()) if bits_y is not None else int((~fin).sum())
    else:
        fin = np.ones(x.shape, dtype=bool)
        bad_nonfinite = 0
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(x[fin].astype(np.float64) - y[fin].astype(np.float64))
    bad = int((~(err <= bound)).sum()) + bad_nonfinite
    return (float(err.max()) if err.size else 0.0), bad


def encode_verified(x: np.ndarray, bound: float,
                    base: np.ndarray | None = None) -> tuple[bytes, BoundedStats, np.ndarray]:
    blob, stats = encode_bounded(x, bound, base)
    decoded = decode_bounded(blob, x.shape, x.dtype, base)
    err, bad = max_violation(x, decoded, bound)
    if bad:
        raise RuntimeError(f"bounded coder broke its bound on {bad} values (max error {err:g} > {bound:g})")
    return blob, stats, decoded
