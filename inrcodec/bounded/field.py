"""The error-bounded path of ``codec.compress`` for one array: bound semantics, the predictor-only file, and the
``auto`` choice between the predictor alone and an INR base with the predictor on its residual.

Bound semantics (SZ3's ABS and REL modes):

- ``max_error=E``: every finite decoded value within E of the original (computed in float64);
- ``max_error=R, relative=True``: E = R * (max - min of the *finite* values of the data), for floats and
  integers alike (not the dtype's range: an int16 CT volume in [0, 2000] at R = 0.01 gets E = 20, not 655);
- integers: the quantiser step is 2*floor(E)+1, so E < 1 (in particular E < 0.5) is lossless;
- NaN, +Inf, -Inf: kept exactly, position and bits; a constant or all-NaN field costs a few bytes.

The encoder decodes its own payload with the user's decoder and checks all of this before returning.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import __version__
from ..container import Container, write_container
from ..errors import InputError
from ..signal import Signal
from . import encode_verified, max_violation
from .coder import decode_bounded

BOUNDED_MODEL = "bounded"  # container model name of a predictor-only file (no network)
AUTO = "auto"
SECTION = "bounded"  # the predictor's payload: the whole field, or the residual of an INR base


def finite_range(data: np.ndarray) -> float:
    """max - min of the finite values (0 when there are none)."""
    a = np.asarray(data)
    fin = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    if fin.size == 0:
        return 0.0
    span = float(fin.max()) - float(fin.min())
    if not np.isfinite(span):
        raise InputError("the data's value range overflows float64; give an absolute --max-error")
    return span


def absolute_bound(data: np.ndarray, max_error: float, relative: bool) -> float:
    if not (max_error is not None and np.isfinite(max_error) and max_error > 0):
        raise InputError(f"max error must be a positive number, got {max_error}")
    return float(max_error) * finite_range(data) if relative else float(max_error)


def compress_predictor_only(signal: Signal, bound: float) -> tuple[bytes, dict[str, Any], Signal]:
    """A file holding only the predictive coder's payload: model ``bounded``, one section."""
    t0 = time.perf_counter()
    blob, stats, decoded = encode_verified(signal.data, bound)
    data = write_container(Container(signal.describe(), BOUNDED_MODEL, {}, {SECTION: blob},
                                     {"encoder": f"inrcodec {__version__}"}))
    report = {"predictor": stats.predictor, "context_scheme": stats.scheme, "outliers": stats.outliers,
              "nonfinite": stats.nonfinite, "predictor_bytes": stats.bytes,
              "predictor_seconds": time.perf_counter() - t0}
    return data, report, Signal(decoded, signal.kind, signal.value_range, dict(signal.metadata))


def decode_predictor_only(c: Container) -> Signal:
    desc = c.signal
    out = decode_bounded(c.sections.get(SECTION, b""), tuple(desc["shape"]), desc["dtype"])
    return Signal(out, desc["kind"], tuple(desc["range"]), dict(desc.get("meta", {})))


def bound_report(signal: Signal, decoded: Signal, bound: float) -> dict[str, Any]:
    err, bad = max_violation(signal.data, decoded.data, bound)
    return {"target_max_error": bound, "max_abs_error": err, "max_error_over_bound": err / bound if bound > 0 else
            (0.0 if err == 0 else float("inf")), "values_over_bound": bad, "target_met": bad == 0}
