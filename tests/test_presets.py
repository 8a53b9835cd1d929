"""Presets (--preset fast|medium|slow): the table's meaning, its plumbing through compress, the CLI and the UI."""

import json

import pytest
from PIL import Image

from helpers import smooth_rgb
from inrcodec import InputError, Signal, compress
from inrcodec.cli import main
from inrcodec.presets import NAMES, PRESETS, Preset, get_preset, resolve


def _steps_of(name):
    return {"gaussian": 800, "gaussian+dct": 800, "fourier": 3000, "latentgrid": 1500}.get(name, 2000)


def test_medium_is_the_models_default_schedule_and_presets_are_ordered():
    kodak = 512 * 768
    plans = {p: resolve("image", kodak, p, None, None, None, _steps_of) for p in NAMES}
    # medium: the gaussian image model runs 1.25x its default steps (its cheaper step buys them in ~the same time),
    # any other model its own default
    assert plans["medium"].steps == 1000
    assert resolve("image", kodak, "medium", "fourier", None, None, _steps_of).steps == 3000
    assert plans["fast"].steps < plans["medium"].steps < plans["slow"].steps
    assert plans["fast"].time_budget < plans["medium"].time_budget < plans["slow"].time_budget
    assert plans["slow"].time_budget <= 300  # the issue: "~5 min per Kodak image"
    assert resolve("image", kodak, None, None, None, None, _steps_of) == plans["medium"]


def test_time_cap_is_linear_in_pixels_above_its_floor():
    p = get_preset("image", "medium")
    big = resolve("image", 12_000_000, "medium", None, None, None, _steps_of).time_budget
    bigger = resolve("image", 24_000_000, "medium", None, None, None, _steps_of).time_budget
    assert bigger == pytest.approx(2 * big)
    tiny = resolve("image", 100, "medium", None, None, None, _steps_of).time_budget
    assert tiny == p.min_seconds


def test_medium_bounds_photos_of_a_megapixel_or_more_by_the_allowance_and_keeps_kodak_on_its_floor():
    """Issue 13: 60 s/MP for the whole encode of a photo; the floor (Kodak's 1000 steps) fades above 0.5 MP."""
    cap = {mp: resolve("image", int(mp * 1e6), "medium", None, None, None, _steps_of).time_budget
           for mp in (0.39, 0.5, 0.75, 1.0, 1.3, 6.3)}
    assert cap[0.39] == cap[0.5] == 120.0
    assert cap[0.75] == pytest.approx(80.0)
    for mp in (1.0, 1.3, 6.3):
        assert cap[mp] == pytest.approx(60.0 * mp)


def test_large_photo_caps_are_the_issues_allowance_and_ordered():
    """Issue 13: medium within 60 s per megapixel on large photos; fast below it, slow above it."""
    caps = {p: resolve("image", 12_000_000, p, None, None, None, _steps_of).time_budget for p in NAMES}
    assert caps["medium"] == pytest.approx(60 * 12)
    assert caps["fast"] < caps["medium"] < caps["slow"]


def test_explicit_schedule_and_model_override_the_preset():
    plan = resolve("image", 1000, "slow", "fourier", 7, None, _steps_of)
    assert (plan.model, plan.steps, plan.time_budget) == ("fourier", 7, None)
    plan = resolve("image", 1000, "fast", None, None, 12.5, _steps_of)
    assert (plan.steps, plan.time_budget) == (None, 12.5)
    # a named model keeps the preset's schedule, scaled to that model's own default steps
    assert resolve("image", 1000, "fast", "fourier", None, None, _steps_of).steps == 750


def test_kinds_without_a_row_use_the_generic_one_and_a_new_kind_is_a_row(monkeypatch):
    assert get_preset("some-new-kind", "slow") is PRESETS["*"]["slow"]
    monkeypatch.setitem(PRESETS, "video", {n: Preset(model="fourier", steps_scale=0.5) for n in NAMES})
    plan = resolve("video", 1000, "fast", None, None, None, _steps_of)
    assert (plan.model, plan.steps) == ("fourier", 1500)


def test_unknown_preset_is_an_input_error():
    with pytest.raises(InputError, match="preset"):
        get_preset("image", "ultra")
    with pytest.raises(InputError, match="preset"):
        compress(Signal(smooth_rgb(8, 8)), "fourier", preset="ultra")


def test_compress_runs_the_presets_schedule(monkeypatch):
    from inrcodec.models.fourier import FourierMLP

    monkeypatch.setattr(FourierMLP, "default_steps", 8)
    sig = Signal(smooth_rgb(12, 16, seed=1))
    steps = {p: compress(sig, "fourier", preset=p).report for p in NAMES}
    assert [steps[p]["fit_steps"] for p in NAMES] == [2, 8, 48]
    assert [steps[p]["preset"] for p in NAMES] == list(NAMES)
    # --steps replaces the preset's schedule
    assert compress(sig, "fourier", preset="slow", steps=3).report["fit_steps"] == 3


def test_cli_preset(tmp_path, capsys, monkeypatch):
    from inrcodec.models.fourier import FourierMLP

    monkeypatch.setattr(FourierMLP, "default_steps", 8)
    png = tmp_path / "img.png"
    Image.fromarray(smooth_rgb(16, 20)).save(png)
    out, report = tmp_path / "img.inrc", tmp_path / "r.json"
    code = main([str(a) for a in ["fit", png, "-o", out, "--model", "fourier", "--preset", "fast",
                                  "--json", report, "-q"]])
    assert code == 0, capsys.readouterr().err
    rep = json.loads(report.read_text())
    assert rep["preset"] == "fast" and rep["fit_steps"] == 2 and rep["bytes"] == out.stat().st_size
    bad = tmp_path / "bad.inrc"
    code = main([str(a) for a in ["fit", png, "-o", bad, "--preset", "ultra", "-q"]])
    err = capsys.readouterr().err
    assert code == 2 and "--preset" in err and len(err.strip().splitlines()) == 1 and not bad.exists()


def test_ui_form_passes_the_preset():
    from app import handlers as h

    opts = h.fit_options("auto", "bpp", 1.0, 0, 0, 0, "slow")
    assert opts["preset"] == "slow" and "time_budget" not in opts and "steps" not in opts
    opts = h.fit_options("auto", "bpp", 1.0, 30, 0, 0, None)
    assert opts["preset"] == h.DEFAULT_PRESET and opts["time_budget"] == 30
    with pytest.raises(InputError, match="preset"):
        h.fit_options("auto", "bpp", 1.0, 0, 0, 0, "ultra")


def test_image_presets_fall_back_to_the_default_model_where_theirs_declines_the_signal():
    from inrcodec.models import default_model
    from inrcodec.presets import preset_model

    rgb8, gray16 = {"shape": [8, 8, 3], "dtype": "uint8"}, {"shape": [8, 8, 1], "dtype": "uint16"}
    rgba, floats = {"shape": [8, 8, 4], "dtype": "uint8"}, {"shape": [8, 8, 3], "dtype": "float32"}
    for p in NAMES:
        chosen = get_preset("image", p).model
        assert chosen and chosen != default_model("image")  # the presets pick their own image model
        assert preset_model("image", p, None, rgb8) == chosen == preset_model("image", p, None, gray16)
        assert preset_model("image", p, None, rgba) == default_model("image") == preset_model("image", p, None, floats)
        assert preset_model("image", p, "fourier", rgba) == "fourier"  # a named model is never replaced
        assert resolve("image", 64, p, None, None, None, _steps_of, rgba).model == default_model("image")
