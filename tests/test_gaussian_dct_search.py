"""Encoder-side search of ``gaussian+dct``'s base size (``GaussianDCT.search_plan``, run by ``codec.compress``):
short probe fits at several base shares, each coded to the byte target, then the main fit at the best probe's
share. On a tiny generated image with the step thresholds lowered: files within the target, the better share
picked, the same bytes for the same seed, the decoder equal to the encoder's reconstruction, and the search only
where it is meant to run."""

from __future__ import annotations

import numpy as np
import pytest

from inrcodec import presets
from inrcodec.codec import compress, decompress
from inrcodec.metrics import psnr
from inrcodec.models import gaussian_dct
from inrcodec.signal import Signal
from test_gaussian_dct import MODEL, textured

STEPS = 80  # probes 2 x 10 steps, each counted twice; the main fit gets the other 40


@pytest.fixture
def small_search(monkeypatch):
    monkeypatch.setattr(gaussian_dct, "SEARCH_MIN_STEPS", 60)
    monkeypatch.setattr(gaussian_dct, "PROBE_STEPS", 10)
    monkeypatch.setattr(gaussian_dct, "PROBE_COST", 20)


@pytest.fixture(scope="module")
def sig():
    return Signal(textured(), "image")


def _coded(sig, bpp=3.0, **kw):
    return compress(sig, MODEL, bpp=bpp, steps=STEPS, seed=0, **kw)


@pytest.mark.parametrize("bpp", [1.0, 3.0])
def test_never_above_the_target_and_decoder_matches(sig, small_search, bpp):
    res = _coded(sig, bpp)
    target = bpp * sig.num_pixels / 8.0
    search = res.report["search"]
    assert len(search) == len(gaussian_dct.SEARCH_SHARES) + 1  # the probes and the main fit
    assert all(s["bytes"] <= target for s in search)
    assert len(res.data) <= target and res.report["target_met"]
    assert [s["fit_steps"] for s in search] == [10, 10, STEPS - 2 * 2 * 10]
    assert res.report["fit_steps"] == STEPS - 2 * 10  # what ran: the coding of the probes is not fitting
    out = decompress(res.data)
    assert psnr(sig.data, out.data) == pytest.approx(res.report["psnr"], abs=1e-9)
    # the kept file is the best of those coded, and it is the one the report describes
    best = max(search, key=lambda s: s["psnr"])
    assert res.report["psnr"] == best["psnr"] and len(res.data) == best["bytes"]
    assert res.report["config"] == best["config"]


def test_main_fit_takes_the_better_share(sig, small_search, monkeypatch):
    """A base of 30 % of the bytes against one of 90 % on texture, where the residual codes far better than the
    Gaussians (test_gaussian_dct: > 1 dB at equal bytes): the small base's probe wins by more than the margin, so
    the main fit runs at 30 %, and its file is kept."""
    monkeypatch.setattr(gaussian_dct, "SEARCH_SHARES", (0.3, 0.9))
    monkeypatch.setattr(gaussian_dct, "SEARCH_MIDDLE", 0.5)
    res = _coded(sig)
    probes, main = res.report["search"][:2], res.report["search"][2]
    assert [p["config"]["base_share"] for p in probes] == [0.3, 0.9]
    assert probes[0]["psnr"] > probes[1]["psnr"] + gaussian_dct.SMALL_MARGIN_DB
    assert main["config"]["base_share"] == 0.3
    assert res.report["config"]["base_share"] == 0.3


def test_main_share_rule():
    small, large = gaussian_dct.SEARCH_SHARES
    margin = gaussian_dct.SMALL_MARGIN_DB
    assert gaussian_dct.main_share(30.0 + 1.5 * margin, 30.0) == small  # a clear win of the small base
    assert gaussian_dct.main_share(30.0 + 0.5 * margin, 30.0) == gaussian_dct.SEARCH_MIDDLE  # a narrow one
    assert gaussian_dct.main_share(30.0, 30.0) == large  # a tie: short probes favour small bases
    assert gaussian_dct.main_share(29.0, 30.0) == large
    assert gaussian_dct.main_share(-np.inf, 30.0) == large  # a probe over the target never wins
    assert gaussian_dct.main_share(30.0, -np.inf) == small
    assert small < gaussian_dct.SEARCH_MIDDLE < large


def test_search_under_a_time_cap(sig, small_search):
    """The preset's wall-clock cap with its steps (a generous one here): the probes and the main fit run their steps."""
    res = compress(sig, MODEL, bpp=3.0, steps=STEPS, time_budget=600.0, seed=0)
    assert [s["fit_steps"] for s in res.report["search"]] == [10, 10, STEPS - 2 * 20]


def test_same_seed_same_file(sig, small_search):
    assert _coded(sig).data == _coded(sig).data


def test_search_runs_only_for_long_byte_targeted_fits(sig, small_search):
    assert "search" not in compress(sig, MODEL, bpp=3.0, steps=50, seed=0).report  # below SEARCH_MIN_STEPS
    assert "search" not in _coded(sig, config={"base_share": 0.3}).report  # a share given: no search
    res = compress(sig, MODEL, psnr=34.0, steps=STEPS, seed=0)  # no byte target: nothing to compare at
    assert "search" not in res.report and res.report["fit_steps"] == STEPS
    # a schedule of time alone (--time-budget without --steps): one fit until the clock stops it
    assert "search" not in compress(sig, MODEL, bpp=3.0, time_budget=3.0, seed=0).report


def test_video_intra_frames_keep_one_fit():
    from inrcodec.models import mcvideo

    assert mcvideo.DEFAULT_STEPS < gaussian_dct.SEARCH_MIN_STEPS


def test_slow_preset_searches_and_medium_does_not():
    def steps(preset):
        desc = {"shape": [512, 768, 3], "dtype": "uint8"}
        plan = presets.resolve("image", 512 * 768, preset, None, None, None, lambda m: 800, desc)
        assert plan.model == MODEL
        return plan.steps
    assert steps("slow") >= gaussian_dct.SEARCH_MIN_STEPS > steps("medium")
    probes, probe_steps, main, choose = gaussian_dct.GaussianDCT.search_plan(steps("slow"), 1e5, {})
    assert len(probes) >= 2 and main >= 0.75 * steps("slow") and probe_steps * len(probes) < main
    assert [p["base_share"] for p in probes] == list(gaussian_dct.SEARCH_SHARES)
    assert choose([31.0, 30.0]) == {"base_share": gaussian_dct.SEARCH_SHARES[0]}


def test_short_schedules_take_the_short_share_without_probes(sig, monkeypatch):
    """Fits of RD_MIN_STEPS to SHORT_MAX_STEPS (fast's 200) get SHORT_SHARE from ``search_plan`` without probes:
    one fit, its config says the share, no ``search`` in the report; outside that range, or with a share given,
    the share stays what it was; the file decodes to what the encoder measured."""
    monkeypatch.setattr(gaussian_dct, "SHORT_SHARE", 0.3)
    monkeypatch.setattr(gaussian_dct, "RD_MIN_STEPS", 20)
    monkeypatch.setattr(gaussian_dct, "SHORT_MAX_STEPS", 40)
    res = compress(sig, MODEL, bpp=3.0, steps=30, seed=0)
    assert res.report["config"]["base_share"] == 0.3 and res.report["fit_steps"] == 30
    assert "search" not in res.report and len(res.data) <= 3.0 * sig.num_pixels / 8.0
    assert psnr(sig.data, decompress(res.data).data) == pytest.approx(res.report["psnr"], abs=1e-9)
    assert compress(sig, MODEL, bpp=3.0, steps=50, seed=0).report["config"]["base_share"] == gaussian_dct.BASE_SHARE
    assert compress(sig, MODEL, bpp=3.0, steps=10, seed=0).report["config"]["base_share"] == gaussian_dct.BASE_SHARE
    given = compress(sig, MODEL, bpp=3.0, steps=30, seed=0, config={"base_share": 0.5})
    assert given.report["config"]["base_share"] == 0.5
