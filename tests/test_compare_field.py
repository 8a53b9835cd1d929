"""``inrcodec compare FIELD``: our coder vs SZ3/ZFP/SPERR at the same absolute bounds, JSON + PNG, bad inputs."""

import json

import numpy as np
import pytest

from inrcodec import baselines
from inrcodec.cli import main
from inrcodec.compare_field import OURS, compare_field, load_field
from inrcodec.errors import InputError


def field(shape=(40, 48), seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    return (np.sin(5 * x + 2 * y) * np.cos(3 * y) * 10 + rng.normal(0, 0.05, shape)).astype(np.float32)


def test_compare_field_measures_every_codec_at_the_same_bound():
    a = field()
    res = compare_field(a, ["sz3", "zfp"], [1e-2, 1e-3, 1e-4], name="gen")
    span = float(a.max()) - float(a.min())
    assert res["input"]["finite_range"] == pytest.approx(span)
    for cname in (OURS, "sz3", "zfp"):
        pts = res["curves"][cname]
        assert [p["relative_bound"] for p in pts] == [1e-2, 1e-3, 1e-4]
        for p in pts:
            assert p["bound"] == pytest.approx(p["relative_bound"] * span)
            assert p["ratio"] == pytest.approx(a.nbytes / p["bytes"])
            assert p["within_bound"] and p["max_error_over_bound"] <= 1.0
    # our stream is the whole .inrc file; the ratio against each baseline is reported per bound
    assert [r["relative_bound"] for r in res["ratio_vs"]["sz3"]] == [1e-2, 1e-3, 1e-4]
    ours = res["curves"][OURS][0]["ratio"]
    assert res["ratio_vs"]["zfp"][0]["ours_over_theirs"] == pytest.approx(ours / res["curves"]["zfp"][0]["ratio"])
    assert res["bd_rate"]["sz3"] is None or np.isfinite(res["bd_rate"]["sz3"])


def test_nonfinite_fields_are_scored_on_finite_positions():
    a = field(seed=1)
    a[:5, :5] = np.nan
    res = compare_field(a, ["sz3"], [1e-2, 1e-3, 1e-4])
    assert res["input"]["nonfinite"] == 25 and res["notes"]
    assert all(p["within_bound"] for p in res["curves"]["sz3"] + res["curves"][OURS])


def test_compare_field_rejects_constant_fields_and_bad_bounds():
    with pytest.raises(InputError, match="constant"):
        compare_field(np.ones((5, 5), np.float32), ["sz3"], [1e-2])
    with pytest.raises(InputError, match="relative bounds"):
        compare_field(field(), ["sz3"], [2.0])


def test_load_field_reads_a_netcdf_variable(tmp_path):
    xr = pytest.importorskip("xarray")
    a = field((6, 7))
    path = tmp_path / "f.nc"
    xr.Dataset({"t": (("y", "x"), a), "u": (("y", "x"), a * 2)}).to_netcdf(path)
    got, name = load_field(path, "u")
    assert np.array_equal(got, a * 2) and name == "f.nc:u"
    with pytest.raises(InputError, match="no variable"):
        load_field(path, "nope")


def test_cli_compare_field_writes_json_and_png(tmp_path, capsys):
    path = tmp_path / "f.npy"
    np.save(path, field((24, 30)))
    out = tmp_path / "out"
    assert main(["compare", str(path), "--codecs", "sz3", "--bounds", "1e-2,1e-3,1e-4", "-o", str(out), "-q"]) == 0
    res = json.loads((out / "f.json").read_text())
    assert set(res["curves"]) == {OURS, "sz3"} and (out / "f.png").stat().st_size > 1000
    assert "1e-2" in res["command"]
    # an image codec on a field is a usage error: one line, exit 2
    assert main(["compare", str(path), "--codecs", "sz3,jpeg", "-o", str(out), "-q"]) == 2
    assert "not an array codec" in capsys.readouterr().err
