"""One signal type for every modality.

A ``Signal`` is an array with 1–3 coordinate axes followed by one channel axis (channel-last):

=========  ==================  =================
kind       coordinate axes     example shape
=========  ==================  =================
audio      t                   (284383, 1)
image      y, x                (512, 768, 3)
volume     z, y, x             (91, 91, 91, 1)
video      t, y, x             (280, 720, 1280, 3)
=========  ==================  =================

It keeps the original dtype and value range so that decoding gives back the same kind of array (8-bit PNG in,
8-bit PNG out; float32 field in, float32 field out). Models never see the original values: they fit
``normalized()``, which maps the value range onto [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError

KINDS = ("audio", "image", "volume", "video", "array")

# dtypes a Signal may carry (and a container may declare): anything else is rejected on load and on decode.
SUPPORTED_DTYPES = ("uint8", "uint16", "int8", "int16", "int32", "float16", "float32", "float64")


@dataclass
class Signal:
    data: np.ndarray  # (*coords, channels), original dtype
    kind: str = "image"
    value_range: tuple[float, float] | None = None  # (lo, hi) that normalized() maps to (0, 1)
    metadata: dict[str, Any] = field(default_factory=dict)  # JSON-able: sample_rate, fps, bit_depth, source ...

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown signal kind {self.kind!r}")
        if self.data.ndim < 2 or self.data.ndim > 4:
            raise InputError(f"signal must have 1-3 coordinate axes plus a channel axis, got shape {self.data.shape}")
        if str(self.data.dtype) not in SUPPORTED_DTYPES:
            raise InputError(f"unsupported dtype {self.data.dtype}")
        if self.data.size == 0:
            raise InputError("signal is empty")
        if self.value_range is None:
            self.value_range = default_value_range(self.data)
        self.value_range = (float(self.value_range[0]), float(self.value_range[1]))

    # -- shape helpers -------------------------------------------------------------------------------------
    @property
    def coord_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[:-1])

    @property
    def channels(self) -> int:
        return int(self.data.shape[-1])

    @property
    def ndim_coords(self) -> int:
        return self.data.ndim - 1

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def num_pixels(self) -> int:
        """Pixels (or samples, or voxels) per channel: the denominator of bpp."""
        return int(np.prod(self.coord_shape))

    # -- value mapping -------------------------------------------------------------------------------------
    def normalized(self) -> np.ndarray:
        """float32 copy with the value range mapped to [0, 1] (NaN stays NaN)."""
        lo, hi = self.value_range
        scale = (hi - lo) if hi > lo else 1.0
        return ((self.data.astype(np.float64) - lo) / scale).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """JSON-able description stored in the container header; enough to rebuild an empty Signal."""
        return {
            "kind": self.kind,
            "shape": list(self.data.shape),
            "dtype": str(self.data.dtype),
            "range": list(self.value_range),
            "meta": self.metadata,
        }

    @classmethod
    def from_normalized(cls, values: np.ndarray, desc: dict[str, Any]) -> "Signal":
        """Inverse of ``normalized()`` for a decoded array, using a header description (``describe()``)."""
        dtype = np.dtype(desc["dtype"])
        lo, hi = desc["range"]
        scale = (hi - lo) if hi > lo else 1.0
        out = values.astype(np.float64)  # in place from here (every decode passes here): same values, less time
        out *= scale
        out += lo
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            np.rint(out, out=out)
            np.clip(out, max(info.min, np.floor(lo)), min(info.max, np.ceil(hi)), out=out)
        return cls(out.astype(dtype), kind=desc["kind"], value_range=(lo, hi), metadata=dict(desc.get("meta", {})))


def default_value_range(data: np.ndarray) -> tuple[float, float]:
    """Integer data: the full range of its bit depth (what PSNR's peak uses). Float data: its finite min/max
    ((0, 0) when it has none: an all-NaN variable of a dataset is a valid signal; NaN and +-Inf are kept exactly
    by the codec, never fitted). Error bounds relative to the range use the data's finite range, not this
    (``bounded.field.finite_range``)."""
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        return float(info.min), float(info.max)
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return 0.0, 0.0
    return float(finite.min()), float(finite.max())
