"""The numcodecs codec and the zarr v3 codec: bounds, dtypes, shapes, NaN, config round trips, real zarr stores
written through xarray + dask, hostile chunk bytes."""

from __future__ import annotations

import numpy as np
import pytest

numcodecs = pytest.importorskip("numcodecs")
xr = pytest.importorskip("xarray")
pytest.importorskip("zarr")
pytest.importorskip("dask")

from inrcodec.errors import FormatError  # noqa: E402
from inrcodec.integrations.numcodecs import InrCodec  # noqa: E402
from inrcodec.integrations.zarr import InrZarrCodec  # noqa: E402

FAST = dict(model="siren", steps=4)


def rough_field(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(size=shape), axis=-1).astype(dtype)


def test_numcodecs_bounds_dtypes_shapes_and_nan():
    codec = InrCodec(max_error=0.02, **FAST)
    for shape in [(300,), (12, 20), (3, 8, 10), (2, 2, 3, 4, 5)]:
        arr = rough_field(shape)
        arr.ravel()[::37] = np.nan
        dec = codec.decode(codec.encode(arr))
        assert dec.shape == arr.shape and dec.dtype == arr.dtype
        np.testing.assert_array_equal(np.isnan(dec), np.isnan(arr))
        assert np.nanmax(np.abs(dec - arr)) <= 0.02
    ints = np.random.default_rng(1).integers(-1000, 1000, (16, 16)).astype(np.int16)
    np.testing.assert_array_equal(InrCodec(max_error=0.4, **FAST).decode(InrCodec(max_error=0.4, **FAST).encode(ints)),
                                  ints)
    big = np.arange(100, dtype=np.int64) * 2**40  # beyond int32: stored losslessly
    np.testing.assert_array_equal(codec.decode(codec.encode(big)), big)
    out = np.empty((12, 20), np.float32)
    arr = rough_field((12, 20), 2)
    assert codec.decode(codec.encode(arr), out=out) is out and np.abs(out - arr).max() <= 0.02


def test_numcodecs_default_is_error_bounded_and_config_round_trips():
    codec = InrCodec(**FAST)
    arr = rough_field((20, 24), 3, np.float64) * 100
    dec = codec.decode(codec.encode(arr))
    assert np.abs(dec - arr).max() <= 1e-3 * (arr.max() - arr.min())
    config = codec.get_config()
    assert config["id"] == "inrcodec" and config["max_error"] == 1e-3 and config["relative"] is True
    again = numcodecs.get_codec(config)
    assert isinstance(again, InrCodec) and again.get_config() == config
    with pytest.raises(ValueError):
        InrCodec(max_error=-1)


def test_numcodecs_hostile_bytes_are_format_errors():
    codec = InrCodec(max_error=0.1, **FAST)
    good = bytearray(codec.encode(rough_field((10, 10))))
    for damaged in (bytes(good[:20]), b"INRC" + bytes(40), bytes(good[:-1]), b""):
        with pytest.raises(FormatError):
            codec.decode(damaged)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_store_written_through_xarray_and_dask(zarr_format, tmp_path):
    data = rough_field((4, 16, 20), 4)
    data[0, :2, :2] = np.nan
    ds = xr.Dataset({"f": (("t", "y", "x"), data, {"units": "m"})},
                    coords={"t": np.arange(4.0)}).chunk({"t": 2})  # dask-backed: 2 chunks written in parallel
    if zarr_format == 2:
        encoding = {"f": {"compressors": [InrCodec(max_error=0.05, **FAST)]}}
    else:
        encoding = {"f": {"serializer": InrZarrCodec(max_error=0.05, **FAST), "compressors": None}}
    path = tmp_path / "store.zarr"
    ds.to_zarr(path, zarr_format=zarr_format, encoding=encoding, consolidated=False)
    back = xr.open_zarr(path, consolidated=False)
    values = back["f"].values
    assert values.dtype == np.float32 and back["f"].attrs["units"] == "m"
    np.testing.assert_array_equal(np.isnan(values), np.isnan(data))
    assert np.nanmax(np.abs(values - data)) <= 0.05
    if zarr_format == 3:
        import json

        meta = json.loads((path / "f" / "zarr.json").read_text())
        assert meta["codecs"][0]["name"] == "inrcodec"
        assert meta["codecs"][0]["configuration"]["max_error"] == 0.05


def test_old_import_path_still_works():
    from inrcodec.codec import InrCodec as Old

    assert Old is InrCodec
