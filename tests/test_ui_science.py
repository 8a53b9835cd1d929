"""The "Fields" tab's handlers (no browser): a NetCDF variable and a .npy array compressed under a bound, the
slice parser, and the tab building inside the app."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gradio")
xr = pytest.importorskip("xarray")

from app.science import fit_field, inspect_field, parse_slice  # noqa: E402
from inrcodec import InputError  # noqa: E402


def test_fit_a_netcdf_variable_and_show_a_slice(tmp_path):
    rng = np.random.default_rng(0)
    data = np.cumsum(rng.normal(size=(3, 16, 20)), axis=-1).astype(np.float32)
    data[1, :2, :2] = np.nan
    path = tmp_path / "f.nc"
    xr.Dataset({"f": (("time", "y", "x"), data), "g": (("x",), np.arange(20.0))}).to_netcdf(path)
    names, first, text = inspect_field(str(path))
    assert names == ["f", "g"] and first == "f" and "time=3" in text
    png, md, inrc, stats = fit_field(str(path), "f", "time=1", "max error (relative to range)", 1e-2, 0, 4,
                                     model="siren")
    assert (tmp_path / "f.nc").exists() and png.endswith(".png") and "bound" in md and "ratio" in md
    bound = 1e-2 * (np.nanmax(data) - np.nanmin(data))
    assert stats["bound"] == pytest.approx(bound) and stats["max_abs_error"] <= bound
    from inrcodec.dataset_codec import decompress_dataset

    back = decompress_dataset(open(inrc, "rb").read())["f"].values
    np.testing.assert_array_equal(np.isnan(back), np.isnan(data))
    assert np.nanmax(np.abs(back - data)) <= bound


def test_fit_an_npy_array_with_an_absolute_bound(tmp_path):
    arr = np.cumsum(np.random.default_rng(1).normal(size=(24, 24)), axis=0)
    np.save(tmp_path / "a.npy", arr)
    names, first, _ = inspect_field(str(tmp_path / "a.npy"))
    assert first == "(array)"
    png, md, inrc, stats = fit_field(str(tmp_path / "a.npy"), first, "", "max error (absolute)", 0.05, 0, 4,
                                     model="siren")
    assert stats["max_abs_error"] <= 0.05 and stats["bound"] == 0.05


def test_parse_slice():
    assert parse_slice("level=2, time=1", ("time", "level", "y", "x"), (3, 4, 5, 6)) == (1, 2)
    assert parse_slice("", ("time", "y", "x"), (3, 5, 6)) == (0,)
    assert parse_slice("-1", ("time", "y", "x"), (3, 5, 6)) == (2,)
    for bad in ("time=9", "y=0", "a", "0,0"):
        with pytest.raises(InputError):
            parse_slice(bad, ("time", "y", "x"), (3, 5, 6))


def test_fields_tab_is_in_the_app():
    from app.main import build_app

    demo = build_app()
    api_names = {d.get("api_name") for d in demo.config["dependencies"]}
    assert {"fit_field", "inspect_field", "fit", "decode", "compare"} <= api_names
