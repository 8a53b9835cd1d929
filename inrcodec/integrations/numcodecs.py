"""numcodecs codec ``"inrcodec"``: a chunk (any shape, any int/float dtype, NaN/Inf allowed) as one part.

    import numcodecs, zarr
    codec = InrCodec(max_error=1e-3)                     # absolute bound on every value of every chunk
    ds.to_zarr("out.zarr", zarr_format=2, encoding={"t2m": {"compressor": codec}})

A chunk is coded as a block of the dataset layout (``inrcodec.dataset_codec.encode_values``): non-finite values
kept exactly, constant chunks stored as one number, integers exact when the bound is below 0.5, the bound verified
on the decoded chunk before the bytes are returned. Error-bounded by default: with no ``max_error``/``psnr``/``bpp``, a
thousandth of the *chunk's* finite value range (``relative=True``: a codec sees one chunk at a time); an absolute
``max_error`` gives one bound over the whole array. ``psnr`` or ``bpp`` instead give a rate/quality target without a
bound. Chunks with fewer than 64 values, or of dtypes the coder does not take (int64 beyond int32, complex ...),
are stored losslessly (zlib).

``decode`` of untrusted bytes raises ``FormatError`` on any defect (never pickle, sizes checked before allocation).
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray_like, ndarray_copy

from ..container import MAX_VALUES, Container, read_container, write_container
from ..errors import FormatError, InputError
from ..signals.dataset import checked_dtype

LOSSLESS_MODEL = "raw-zlib"
MIN_VALUES = 64
DEFAULT_RELATIVE_BOUND = 1e-3


class InrCodec(Codec):
    codec_id = "inrcodec"

    def __init__(self, max_error: float | None = None, relative: bool = False, psnr: float | None = None,
                 bpp: float | None = None, model: str | None = None, steps: int | None = None,
                 time_budget: float | None = None, seed: int = 0):
        if max_error is None and psnr is None and bpp is None:
            max_error, relative = DEFAULT_RELATIVE_BOUND, True  # error-bounded unless told otherwise
        self.max_error = None if max_error is None else float(max_error)
        self.relative = bool(relative)
        self.psnr, self.bpp = psnr, bpp
        self.model, self.steps, self.time_budget, self.seed = model, steps, time_budget, int(seed)
        self._target().validate()

    def _target(self):
        from ..dataset_codec import FieldTarget

        return FieldTarget(self.model, self.max_error, self.relative, self.psnr, self.bpp, self.time_budget,
                           self.steps, self.seed)

    def encode(self, buf) -> bytes:
        from ..dataset_codec import _coder_bound, _coder_dtype, _finite_range, _variable_bound, encode_values

        arr = np.asarray(buf)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("="))
        shape = list(arr.shape)
        rng = _finite_range(arr.reshape(-1)) if arr.dtype.kind in "biuf" and arr.size else None
        coder_dtype = None
        if arr.dtype.kind in "biuf" and arr.size >= MIN_VALUES:
            lo, hi = rng if rng is not None else (0.0, 0.0)
            coder_dtype = _coder_dtype(arr.dtype, lo, hi) if rng is not None else "float32"
        if coder_dtype is None:
            payload = zlib.compress(np.ascontiguousarray(arr).tobytes(), 6)
            desc = _desc(arr, shape)
            return write_container(Container(desc, LOSSLESS_MODEL, {"shape": shape, "dtype": arr.dtype.str},
                                             {"data": payload}))
        lo, hi = rng if rng is not None else (0.0, 0.0)
        target = self._target()
        bound = _variable_bound(target, lo, hi) if rng is not None else None
        spec = {"coder_dtype": coder_dtype, "range": [lo, hi], "bound": bound, "coder_bound": _coder_bound(bound, {}),
                "dtype": arr.dtype.str, "encoding": {}}
        try:
            part = encode_values(arr.reshape(shape or [1]), spec, target, self.time_budget)
        except InputError as exc:
            raise ValueError(f"inrcodec cannot code this chunk: {exc}") from None
        c = read_container(part)
        c.config.update(dtype=arr.dtype.str, array_shape=shape, bound=bound)
        return write_container(c)

    def decode(self, buf, out=None):
        from ..dataset_codec import TILE_MODEL, decode_tile

        data = bytes(ensure_contiguous_ndarray_like(buf).view("u1")) if not isinstance(buf, bytes) else buf
        c = read_container(data)
        shape = c.config.get("array_shape", c.config.get("shape"))
        if not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                                for n in shape) and math.prod(shape) <= MAX_VALUES):
            raise FormatError("inrcodec chunk has an invalid shape")
        dtype = checked_dtype(c.config.get("dtype"))
        if c.model == LOSSLESS_MODEL:
            from ..dataset_codec import _inflate

            if "data" not in c.sections:
                raise FormatError("inrcodec chunk has no data")
            raw = _inflate(c.sections["data"], math.prod(shape) * dtype.itemsize)
            arr = np.frombuffer(raw, dtype).reshape(shape)
        elif c.model == TILE_MODEL:
            arr = decode_tile(c, {"dtype": dtype.str, "encoding": {}})
            if arr.size != math.prod(shape):
                raise FormatError("inrcodec chunk does not match its shape")
            arr = arr.reshape(shape)
        else:
            raise FormatError(f"not an inrcodec chunk (model {c.model!r})")
        if out is not None:
            return ndarray_copy(arr, out)
        return arr

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "InrCodec":
        config = dict(config)
        config.pop("id", None)  # numcodecs.get_codec removes it; a direct call may not
        return cls(**config)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "id")
        return f"InrCodec({params})"


def _desc(arr: np.ndarray, shape) -> dict[str, Any]:
    return {"kind": "array", "shape": [max(1, math.prod(shape)), 1], "dtype": "float32", "range": [0.0, 0.0],
            "meta": {}}


def register() -> None:
    """Make ``numcodecs.get_codec({"id": "inrcodec"})`` work without the entry point (e.g. a source checkout)."""
    import numcodecs

    numcodecs.register_codec(InrCodec)


register()
