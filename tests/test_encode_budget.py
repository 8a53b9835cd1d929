"""A time budget bounds the whole encode (issue 13: medium's 60 s/MP on large photos): the fit leaves the model's
estimate of the coding that follows it; the byte search starts at a model's hint and steps on the log size; a tiled
image under a preset shares the whole image's cap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inrcodec import codec, image_tiles
from inrcodec.codec import SIZE_SEARCH_TOL, _search_log_size, compress
from inrcodec.models.gaussian_dct import GaussianDCT
from inrcodec.presets import resolve
from inrcodec.signal import Signal

from test_gaussian_dct import textured


def _exp_size(a: float, b: float, floor: int = 0):
    probes = []

    def size(q: float) -> int:
        probes.append(q)
        return floor + int(math.exp(a + b * q))

    return size, probes


@pytest.mark.parametrize("target", [3e3, 2e4, 1.5e5, 9e5])
def test_log_size_search_lands_below_the_target_in_few_probes(target):
    size, probes = _exp_size(7.0, 7.0, floor=500)  # ~1.6 kB at quality 0 to ~1.2 MB at 1, like a residual
    guess = (math.log(target / 1.3) - 7.0) / 7.0  # a guess off by 30 %, as the calibration's can be
    q = _search_log_size(size, target, guess, 7.0)
    s = size(q)
    assert (1.0 - SIZE_SEARCH_TOL) * target <= s <= target
    assert len(probes) - 1 <= 5  # the linear secant from quality 1 needed 7-10 on such curves


def test_log_size_search_steps_by_the_slope_just_under_the_window():
    """Just under the target's window on a steep curve (kodim12's residual at fast: d ln size / d quality ~4, a
    first probe 14 % under, the second 0.6 % under) the next probe is the slope's small step, not a fixed 0.01 of
    quality (+4 % of the size, over the target): three probes in all."""
    target = 49152.0
    size, probes = _exp_size(math.log(0.861 * target) - 4.1 * 0.6596, 4.1)  # the hint's slope 3 % too steep
    q = _search_log_size(size, target, 0.6596, 4.24)
    assert (1.0 - SIZE_SEARCH_TOL) * target <= size(q) <= target
    assert len(probes) - 1 == 3 and all(p <= target for p in map(size, probes[:3]))


def test_log_size_search_stops_at_a_jump_over_the_window():
    """A size that jumps over the window (kodim12 at fast, 1 bpp: 48 999 -> 49 243 bytes around a target of
    49 152, the restoration filters switching): once the bracket is narrower than a quarter of the window at the
    slope, the search keeps the fitting side instead of bisecting to its step limit (12 encodes)."""
    target = 49152.0
    smooth, probes = _exp_size(math.log(0.861 * target) - 4.1 * 0.6596, 4.1)

    def size(q: float) -> int:
        return smooth(q) + (400 if smooth(q) > 0.9968 * target else 0)  # nothing lands in the last 0.3 %
    q = _search_log_size(size, target, 0.6596, 4.24)
    assert size(q) <= target and len(probes) <= 2 * 8  # each probe sizes twice here
    assert 0.99 * target < size(q)


def test_log_size_search_ends():
    size, probes = _exp_size(7.0, 7.0)
    assert _search_log_size(size, 1e9, 0.5, 7.0) == 1.0  # the model cannot spend the target: its finest quality
    assert _search_log_size(size, 100.0, 0.5, 7.0) == 0.0  # even quality 0 is over
    assert len(probes) <= 2 * codec.QUALITY_SEARCH_STEPS


def test_fit_leaves_the_models_coding_estimate_out_of_the_budget(monkeypatch):
    seen = {}
    real_fit = codec.fit

    def spy(net, target, settings, progress=None):
        seen["budget"] = settings.time_budget
        return real_fit(net, target, settings, progress)

    monkeypatch.setattr(codec, "fit", spy)
    sig = Signal(textured(24, 32), "image")
    monkeypatch.setattr(GaussianDCT, "coding_seconds", classmethod(lambda cls, desc, bits: 40.0))
    res = compress(sig, "gaussian+dct", bpp=3.0, time_budget=50.0, steps=3, tile=False)
    assert res.report["coding_reserve_seconds"] == 40.0 and seen["budget"] <= 10.0
    monkeypatch.setattr(GaussianDCT, "coding_seconds", classmethod(lambda cls, desc, bits: 0.5))
    res = compress(sig, "gaussian+dct", bpp=3.0, time_budget=50.0, steps=3, tile=False)
    assert res.report["coding_reserve_seconds"] == 5.0 and 40.0 < seen["budget"] <= 45.0  # at least 10 %


def test_gaussian_dct_coding_estimate_is_linear_in_pixels_and_leaves_kodak_alone():
    def est(h, w, c):
        return GaussianDCT.coding_seconds({"shape": [h, w, c], "dtype": "uint8", "range": [0, 255]}, 1e6)

    assert est(2048, 3072, 3) == pytest.approx(2 * est(2048, 1536, 3), rel=0.05)
    assert est(2048, 3072, 1) < est(2048, 3072, 3)
    # a Kodak image at medium: the cap's floor (120 s) less the estimate still covers its 1000 steps' ~60 s
    assert est(512, 768, 3) < 0.1 * 120
    # a 6 MP photo at medium: the fit keeps most of the 60 s/MP cap
    cap = resolve("image", 2048 * 3072, "medium", None, None, None, lambda m: 800).time_budget
    assert est(2048, 3072, 3) < 0.3 * cap


def test_tiles_under_a_preset_share_the_whole_images_cap(monkeypatch):
    calls = []
    real = codec.compress

    def spy(sig, model=None, **kw):
        calls.append(kw)
        return real(sig, model, bpp=kw["bpp"], steps=1, seed=kw["seed"], tile=False)

    monkeypatch.setattr(codec, "compress", spy)
    sig = Signal(textured(96, 144), "image")
    res = image_tiles.compress_tiled(sig, "gaussian+dct", bpp=4.0, preset="medium", tile=48)
    plan = resolve("image", sig.num_pixels, "medium", "gaussian+dct", None, None,
                   lambda m: GaussianDCT.default_steps)
    assert res.report["tiles"] == len(calls) == 6
    assert all(c["steps"] == plan.steps for c in calls)
    # tiles run two at a time: the first wave gets its pixels' share of the cap, each later one what is left by
    # pixels (here the fake tiles finish at once and pass their time on); none more than the cap
    waves = [max(c["time_budget"] for c in calls[i:i + 2]) for i in range(0, 6, 2)]
    assert waves[0] <= 0.36 * plan.time_budget and max(waves) <= plan.time_budget


def test_byte_target_still_lands_with_the_hinted_search():
    sig = Signal(textured(64, 96), "image")
    for bpp in (0.8, 2.0, 5.0):
        res = compress(sig, "gaussian+dct", bpp=bpp, steps=10, seed=0, tile=False)
        assert 0.9 * bpp <= res.report["bpp"] <= bpp
    assert np.isfinite(res.report["psnr"])
