"""Datasets in and out: NetCDF 3/4, HDF5, zarr v2/v3 round trips (dims, coords, attrs, CF encodings, NaN/fill
positions, values within the bound), tiling, special fields, the CLI and its bad inputs, hostile headers."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
h5py = pytest.importorskip("h5py")

from inrcodec.cli import main  # noqa: E402
from inrcodec.container import read_container, write_container  # noqa: E402
from inrcodec.dataset_codec import FieldTarget, compress_dataset, decompress_dataset, plan_dataset  # noqa: E402
from inrcodec.errors import FormatError, InputError  # noqa: E402
from inrcodec.signals.dataset import open_dataset, save_dataset  # noqa: E402

# Tiny fits: the bound is kept by the residual whatever the model reaches, so a few steps suffice for these tests.
FAST = dict(model="siren", steps=4)


def make_dataset(seed: int = 0):
    """Small CF dataset: a float field with a NaN (fill) patch and an Inf, an int16 packed field, an int field, a
    constant, a scalar grid-mapping variable, numeric time with units, lat/lon coords, typed attrs."""
    rng = np.random.default_rng(seed)
    t = np.array([0.0, 6.0, 12.0])
    lat = np.linspace(-30, 30, 12, dtype=np.float32)
    lon = np.linspace(0, 45, 16, dtype=np.float32)
    yy, xx = np.meshgrid(lat / 30, lon / 45, indexing="ij")
    temp = (280 + 10 * np.sin(3 * xx) * np.cos(2 * yy))[None] + 0.5 * t[:, None, None] + rng.normal(0, 0.3, (3, 12, 16))
    temp = temp.astype(np.float32)
    temp[:, :3, :4] = np.nan
    temp[1, 5, 5] = np.inf
    pres = (1000 + 20 * np.cos(2 * xx + yy))[None].repeat(3, 0) + rng.normal(0, 1, (3, 12, 16))
    count = rng.integers(0, 50, (12, 16)).astype(np.int16)
    ds = xr.Dataset(
        {
            "temp": (("time", "lat", "lon"), temp, {"units": "K", "long_name": "air temperature",
                                                   "valid_range": np.array([150, 350], np.float32)}),
            "pres": (("time", "lat", "lon"), pres, {"units": "hPa"}),
            "count": (("lat", "lon"), count, {"flag": np.int16(7)}),
            "flat": (("lat", "lon"), np.full((12, 16), 2.5, np.float32)),
            "crs": ((), np.int32(0), {"grid_mapping_name": "latitude_longitude"}),
        },
        coords={"time": ("time", t, {"units": "hours since 2020-01-01"}), "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon)},
        attrs={"title": "inrcodec test", "version": np.int32(2), "history": "made by the test"},
    )
    ds["pres"].encoding = {"dtype": "int16", "scale_factor": 0.05, "add_offset": 1000.0, "_FillValue": np.int16(-32767)}
    ds["temp"].encoding = {"_FillValue": np.float32(-9999.0)}
    return ds


def write_source(ds, path: Path, how: str) -> Path:
    if how == "netcdf4":
        ds.to_netcdf(path, engine="netcdf4", format="NETCDF4")
    elif how == "h5netcdf":
        ds.to_netcdf(path, engine="h5netcdf")
    elif how == "netcdf3":
        ds.to_netcdf(path, engine="netcdf4", format="NETCDF3_64BIT")
    elif how in ("zarr2", "zarr3"):
        ds.to_zarr(path, zarr_format=int(how[-1]), mode="w-", consolidated=False)
    else:
        raise ValueError(how)
    return path


def check_round_trip(src, back, bound_rel: float, names=None) -> None:
    """Same variables, dims, coords, attrs and on-disk dtypes; NaN/Inf positions exact; values within bound."""
    names = names or [str(v) for v in src.data_vars]
    assert sorted(names) == sorted(str(v) for v in back.data_vars)
    for name in names:
        a, b = src[name], back[name]
        assert a.dims == b.dims and a.shape == b.shape, name
        assert a.dtype == b.dtype, name
        assert a.encoding.get("dtype", a.dtype) == b.encoding.get("dtype", b.dtype), name
        assert sorted(a.attrs) == sorted(b.attrs), name
        for k in a.attrs:
            np.testing.assert_array_equal(np.asarray(a.attrs[k]), np.asarray(b.attrs[k]))
        x, y = np.asarray(a.values, np.float64), np.asarray(b.values, np.float64)
        finite = np.isfinite(x)
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
        np.testing.assert_array_equal(x[np.isinf(x)], y[np.isinf(x)])
        if finite.any() and x.ndim:
            bound = bound_rel * (x[finite].max() - x[finite].min())
            err = np.abs(x[finite] - y[finite]).max()
            assert err <= bound * (1 + 1e-6) + 1e-12, (name, err, bound)
    for c in src.coords:
        np.testing.assert_array_equal(src[c].values, back[c].values)
        assert src[c].attrs == back[c].attrs
    assert {k: str(v) for k, v in src.attrs.items()} == {k: str(v) for k, v in back.attrs.items()}


@pytest.mark.parametrize("how", ["netcdf4", "h5netcdf", "netcdf3", "zarr2", "zarr3"])
def test_dataset_round_trip_through_every_format(how, tmp_path):
    ds = make_dataset()
    ext = ".zarr" if how.startswith("zarr") else ".nc"
    src = write_source(ds, tmp_path / f"src{ext}", how)
    result = compress_dataset(src, None, FieldTarget(max_error=1e-2, relative=True, **FAST))
    assert result.report["target_met"]
    rows = {r["name"]: r for r in result.report["variables"]}
    assert rows["crs"]["role"] == "lossless" and rows["temp"]["role"] == "field"
    assert all(r["max_abs_error"] <= r["bound"] for r in rows.values() if r.get("bound"))
    original = open_dataset(src)
    decoded = decompress_dataset(result.data)
    for out_ext in (".nc", ".zarr", ".h5"):
        out = tmp_path / f"back{out_ext}"
        save_dataset(decoded, out)
        back = open_dataset(out)
        check_round_trip(original, back, 1e-2)
        back.close()
    original.close()


def test_plain_hdf5_datasets_by_path(tmp_path):
    path = tmp_path / "plain.h5"
    rng = np.random.default_rng(1)
    field = np.cumsum(rng.normal(size=(20, 24)), axis=1).astype(np.float64)
    with h5py.File(path, "w") as f:
        f.create_dataset("group/field", data=field).attrs["units"] = "m"
        f.create_dataset("other", data=np.arange(100, dtype=np.int16).reshape(10, 10))
    result = compress_dataset(path, ["/group/field"], FieldTarget(max_error=1e-3, **FAST))
    decoded = decompress_dataset(result.data)
    assert list(decoded.data_vars) == ["group/field"]
    assert np.abs(decoded["group/field"].values - field).max() <= 1e-3
    out = tmp_path / "back.h5"
    save_dataset(decoded, out)
    with h5py.File(out, "r") as f:
        assert f["group/field"].attrs["units"] == "m"
        assert np.abs(f["group/field"][()] - field).max() <= 1e-3
    with pytest.raises(InputError, match="no variable 'nope'"):
        plan_dataset(path, ["nope"], FieldTarget())


def test_tiles_of_a_4d_variable_and_of_a_large_field_keep_the_bound(tmp_path):
    rng = np.random.default_rng(2)
    vol = np.cumsum(rng.normal(size=(2, 3, 10, 12)), axis=-1).astype(np.float32)
    big = np.cumsum(rng.normal(size=(30, 40)), axis=0)
    ds = xr.Dataset({"v4": (("t", "z", "y", "x"), vol), "big": (("a", "b"), big)})
    path = tmp_path / "tiles.nc"
    ds.to_netcdf(path)
    plan = plan_dataset(path, None, FieldTarget(max_error=0.05), tile_cap=300)
    v4, bigspec = plan["variables"]
    # field axes (z, y, x) per t; 360 values are over the cap, so z is cut in blocks of 300 // 120 = 2: 2 x 2 tiles
    assert len(v4["tiles"]) == 4
    assert len(bigspec["tiles"]) == 5  # (30, 40): blocks of 300 // 40 = 7 rows along the first axis
    sizes = [math.prod(b - a for a, b in zip(t["start"], t["stop"])) for t in plan["tiles"]]
    assert max(sizes) <= 300 and sum(sizes) == vol.size + big.size
    result = compress_dataset(path, None, FieldTarget(max_error=0.05, **FAST), tile_cap=300)
    back = decompress_dataset(result.data)
    assert np.abs(back["v4"].values - vol).max() <= 0.05
    assert np.abs(back["big"].values - big).max() <= 0.05
    lazy = decompress_dataset(result.data, lazy=True)  # one dask block per tile, decoded when written
    assert lazy["v4"].chunks == ((1, 1), (2, 1), (10,), (12,)) and len(lazy["big"].data.chunks[0]) == 5
    np.testing.assert_array_equal(lazy["v4"].values, back["v4"].values)
    save_dataset(lazy, tmp_path / "lazy.nc")
    np.testing.assert_array_equal(open_dataset(tmp_path / "lazy.nc")["big"].values, back["big"].values)


def test_integers_exact_below_half_and_special_fields(tmp_path):
    rng = np.random.default_rng(3)
    ds = xr.Dataset({
        "ints": (("y", "x"), rng.integers(-300, 300, (16, 16)).astype(np.int16)),
        "allnan": (("y", "x"), np.full((16, 16), np.nan, np.float32)),
        "inf": (("y", "x"), np.where(rng.random((16, 16)) < 0.1, -np.inf, rng.normal(size=(16, 16)))),
        "const": (("y", "x"), np.full((16, 16), -7.25)),
        "oneaxis": (("t", "y", "x"), rng.normal(size=(1, 16, 16)).astype(np.float32)),
    })
    path = tmp_path / "special.nc"
    ds.to_netcdf(path)
    result = compress_dataset(path, None, FieldTarget(max_error=0.4, **FAST))
    back = decompress_dataset(result.data)
    np.testing.assert_array_equal(back["ints"].values, ds["ints"].values)
    assert np.isnan(back["allnan"].values).all()
    np.testing.assert_array_equal(np.isinf(back["inf"].values), np.isinf(ds["inf"].values))
    ok = np.isfinite(ds["inf"].values)
    assert np.abs(back["inf"].values[ok] - ds["inf"].values[ok]).max() <= 0.4
    np.testing.assert_array_equal(back["const"].values, ds["const"].values)
    assert back["oneaxis"].shape == (1, 16, 16)
    assert np.abs(back["oneaxis"].values - ds["oneaxis"].values).max() <= 0.4


def test_hostile_dataset_headers_are_format_errors(tmp_path):
    path = write_source(make_dataset(), tmp_path / "h.nc", "netcdf4")
    data = compress_dataset(path, ["count"], FieldTarget(max_error=0.4, **FAST)).data
    c = read_container(data)
    tile_var = next(v for v in c.config["variables"] if v["name"] == "count")
    cases = []
    bad = read_container(data)
    bad.config["tiles"][0]["stop"] = [10**6, 10**6]
    cases.append(bad)
    bad = read_container(data)
    next(v for v in bad.config["variables"] if v["name"] == "count")["shape"] = [2**20, 2**20]
    cases.append(bad)
    bad = read_container(data)
    next(v for v in bad.config["variables"] if v["name"] == "count")["dtype"] = "|O"
    cases.append(bad)
    bad = read_container(data)
    next(v for v in bad.config["variables"] if v["role"] == "coord")["shape"] = [999]
    cases.append(bad)
    assert tile_var["role"] == "field"
    for c2 in cases:
        with pytest.raises(FormatError):
            decompress_dataset(write_container(c2))


# -- CLI ----------------------------------------------------------------------------------------------------------

def run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_fit_info_decode(tmp_path, capsys):
    src = write_source(make_dataset(), tmp_path / "data.nc", "netcdf4")
    inrc = tmp_path / "data.inrc"
    code, out, err = run(["fit", src, "--var", "temp", "--var", "pres", "--max-error", "1e-2", "--relative",
                          "--model", "siren", "--steps", "4", "-q", "-o", inrc, "--json", tmp_path / "r.json"],
                         capsys)
    assert code == 0, err
    assert "temp" in out and "bound" in out
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["bytes"] == inrc.stat().st_size
    assert math.isclose(report["bits_per_value"], 8 * inrc.stat().st_size / (2 * 3 * 12 * 16))
    assert {v["name"] for v in report["variables"]} == {"temp", "pres"}
    code, out, _ = run(["info", inrc], capsys)
    assert code == 0 and "temp (time=3, lat=12, lon=16)" in out and "bound" in out
    code, out, err = run(["decode", inrc, "-o", tmp_path / "back.nc"], capsys)
    assert code == 0, err
    src_ds = xr.open_dataset(src, decode_times=False)[["temp", "pres"]]
    check_round_trip(src_ds, open_dataset(tmp_path / "back.nc"), 1e-2)
    code, _, err = run(["decode", inrc, "-o", tmp_path / "one.npy", "--var", "pres"], capsys)
    assert code == 0, err
    pres = np.load(tmp_path / "one.npy")
    assert pres.shape == (3, 12, 16)


def _assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("inrcodec: error:"), err
    for n in needles:
        assert n in lines[0]


def test_cli_bad_inputs_fail_cleanly(tmp_path, capsys):
    src = write_source(make_dataset(), tmp_path / "data.nc", "netcdf4")
    empty = tmp_path / "empty.nc"
    xr.Dataset({"e": (("x",), np.zeros(0, np.float32))}).to_netcdf(empty)
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"this is not netcdf at all")
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(src.read_bytes()[:300])
    out = tmp_path / "out.inrc"
    fit = ["--max-error", "0.1", "--model", "siren", "--steps", "2", "-q"]
    cases = [
        (["fit", src, "--var", "nope", "-o", out, *fit], ["no variable 'nope'"]),
        (["fit", empty, "-o", out, *fit], ["empty"]),
        (["fit", garbage, "-o", out, *fit], ["garbage.nc", "not a NetCDF"]),
        (["fit", truncated, "-o", out, *fit], ["truncated.nc"]),
        (["fit", tmp_path / "missing.nc", "-o", out, *fit], ["no such file"]),
        (["fit", src, "-o", tmp_path, *fit], ["is a directory"]),
    ]
    for argv, needles in cases:
        code, _, err = run(argv, capsys)
        _assert_one_line_error(code, err, *needles)
        assert not out.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    # decode: a multi-variable file to .npy needs --var; an existing zarr store is not overwritten
    good = tmp_path / "good.inrc"
    assert run(["fit", src, "--var", "count", "--var", "flat", "-o", good, *fit], capsys)[0] == 0
    code, _, err = run(["decode", good, "-o", tmp_path / "x.npy"], capsys)
    _assert_one_line_error(code, err, "--var")
    assert not (tmp_path / "x.npy").exists()
    (tmp_path / "exists.zarr").mkdir()
    code, _, err = run(["decode", good, "-o", tmp_path / "exists.zarr"], capsys)
    _assert_one_line_error(code, err, "already exists")


@pytest.mark.slow
def test_real_netcdf_one_variable(shared_data, tmp_path, capsys):
    src = shared_data / "science" / "metpy_gfs_output.nc"
    inrc = tmp_path / "gfs.inrc"
    code, out, err = run(["fit", src, "--var", "vort_500", "--max-error", "1e-3", "--relative", "--model", "siren",
                          "--steps", "20", "-q", "-o", inrc], capsys)
    assert code == 0, err
    code, _, err = run(["decode", inrc, "-o", tmp_path / "back.nc"], capsys)
    assert code == 0, err
    a = xr.open_dataset(src, decode_times=False)[["vort_500"]]
    check_round_trip(a, open_dataset(tmp_path / "back.nc"), 1e-3)


def test_one_variable_as_a_signal(tmp_path):
    from inrcodec import load

    src = write_source(make_dataset(), tmp_path / "data.nc", "netcdf4")
    sig = load(src, var="temp")
    assert sig.kind == "volume" and sig.data.shape == (3, 12, 16, 1) and sig.dtype == np.float32
    assert np.isnan(sig.data).sum() == 3 * 12 and sig.metadata["variable"] == "temp"
    assert sig.value_range[1] < np.inf
    with pytest.raises(InputError, match="choose one with --var"):
        load(src)
    with pytest.raises(InputError, match="no variable 'nope'"):
        load(src, var="nope")
    (tmp_path / "text.nc").write_text("not a dataset\n" * 3)
    with pytest.raises(InputError, match="not a NetCDF or HDF5 file"):
        load(tmp_path / "text.nc")
