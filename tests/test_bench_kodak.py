"""benchmarks/bench_kodak.py's bookkeeping: adding a codec measured later to a merged model run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_kodak", ROOT / "benchmarks" / "bench_kodak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GRID = np.geomspace(0.2, 1.0, 6).tolist()


def _curve(codec: str, offset_db: float) -> list[dict]:
    # PSNR = 6.02 dB per doubling of the rate: a shift of d dB is a rate factor of 2^(d / 6.02).
    return [{"codec": codec, "bpp": b, "psnr": 30.0 + 6.02 * np.log2(b) + offset_db, "ms_ssim": 0.9,
             "encode_s": 0.01, "decode_s": 0.01} for b in np.geomspace(0.15, 1.5, 6)]


def _run(curves_per_image: dict[str, dict[str, float]], codecs: list[str]) -> dict:
    per_image = {stem: {"curves": {c: _curve(c, d) for c, d in curves.items()},
                        "codecs": {c: {"codec_id": c} for c in curves}}
                 for stem, curves in curves_per_image.items()}
    return {"dataset": {"images": sorted(per_image), "crop": 64},
            "settings": {"codecs": codecs, "average_grid_bpp": GRID, "baseline_bpp_range": [0.12, 1.8]},
            "per_image": per_image, "command": "synthetic", "git_commit": "x"}


def test_added_codec_enters_the_averages_and_bd_rates(bench, tmp_path):
    model = bench.PREFIX + "m"
    result = _run({"a": {model: 1.0, "jpeg": 0.0}, "b": {model: 1.0, "jpeg": 0.0}}, ["jpeg"])
    extra = tmp_path / "jxl.json"
    extra.write_text(json.dumps(_run({"a": {"jpegxl": 2.0}, "b": {"jpegxl": 2.0}}, ["jpegxl"])))
    out = bench.derive(bench.add_baselines(result, extra))
    assert out["settings"]["codecs"] == ["jpeg", "jpegxl"]
    bd = out["bd_rate_of_averages"][model]
    # 1 dB better than jpeg: 2^(-1/6.02) - 1 = -10.9 % of the rate; 1 dB worse than jpegxl: +12.2 %.
    assert bd["jpeg"] == pytest.approx(100 * (2 ** (-1 / 6.02) - 1), abs=0.2)
    assert bd["jpegxl"] == pytest.approx(100 * (2 ** (1 / 6.02) - 1), abs=0.2)
    assert out["per_image"]["a"]["bd_rate"][model]["jpegxl"] == pytest.approx(bd["jpegxl"], abs=0.2)
    assert out["baselines_from"][0]["codecs"] == ["jpegxl"]


def test_refuses_other_images_a_measured_codec_or_another_grid(bench, tmp_path):
    model = bench.PREFIX + "m"
    base = lambda: _run({"a": {model: 1.0, "jpeg": 0.0}, "b": {model: 1.0, "jpeg": 0.0}}, ["jpeg"])  # noqa: E731
    cases = {
        "lacks b": _run({"a": {"jpegxl": 2.0}}, ["jpegxl"]),
        "both runs measured jpeg": _run({"a": {"jpeg": 0.0}, "b": {"jpeg": 0.0}}, ["jpeg"]),
    }
    other_grid = _run({"a": {"jpegxl": 2.0}, "b": {"jpegxl": 2.0}}, ["jpegxl"])
    other_grid["settings"]["average_grid_bpp"] = np.geomspace(0.15, 1.5, 6).tolist()
    cases["differs in average_grid_bpp"] = other_grid
    for i, (why, run) in enumerate(cases.items()):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(run))
        with pytest.raises(SystemExit, match=why):
            bench.add_baselines(base(), path)
