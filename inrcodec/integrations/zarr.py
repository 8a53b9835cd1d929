"""zarr v3 array->bytes codec ``"inrcodec"`` (entry point group ``zarr.codecs``): the numcodecs codec's coding,
as the codec that turns a chunk into bytes in a zarr v3 pipeline.

    import zarr
    from inrcodec.integrations.zarr import InrZarrCodec
    z = zarr.create_array("f.zarr", shape=(512, 512), chunks=(256, 256), dtype="float32",
                          serializer=InrZarrCodec(max_error=1e-3, relative=False))

Through xarray: ``ds.to_zarr(path, zarr_format=3, encoding={"t2m": {"serializer": InrZarrCodec(...)}})``.
The configuration (JSON in zarr.json) is the numcodecs codec's parameters. Encoding a chunk fits a model, so it
runs in a worker thread (``asyncio.to_thread``) rather than on zarr's event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from zarr.abc.codec import ArrayBytesCodec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import parse_named_configuration
from zarr.registry import register_codec

from .numcodecs import InrCodec

_PARAMS = ("max_error", "relative", "psnr", "bpp", "model", "steps", "time_budget", "seed")


@dataclass(frozen=True)
class InrZarrCodec(ArrayBytesCodec):
    is_fixed_size = False
    configuration: dict

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(_PARAMS)
        if unknown:
            raise TypeError(f"unknown inrcodec parameters: {', '.join(sorted(unknown))}")
        codec = InrCodec(**params)  # validates
        object.__setattr__(self, "configuration", {k: v for k, v in codec.get_config().items() if k != "id"})

    @property
    def _codec(self) -> InrCodec:
        return InrCodec(**self.configuration)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InrZarrCodec":
        _, configuration = parse_named_configuration(data, "inrcodec", require_configuration=False)
        return cls(**(configuration or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": "inrcodec", "configuration": dict(self.configuration)}

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec) -> NDBuffer:
        arr = await asyncio.to_thread(self._codec.decode, chunk_bytes.to_bytes())
        arr = arr.reshape(chunk_spec.shape).astype(chunk_spec.dtype.to_native_dtype(), copy=False)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(arr)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec) -> Buffer | None:
        data = await asyncio.to_thread(self._codec.encode, chunk_array.as_numpy_array())
        return chunk_spec.prototype.buffer.from_bytes(data)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec) -> int:
        raise NotImplementedError("inrcodec output size depends on the data")


register_codec("inrcodec", InrZarrCodec)
