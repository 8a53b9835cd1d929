"""Encoder-side search of ``gaussian+dct``'s base size (``GaussianDCT.search_plan``, run by ``codec.compress``):
slow's grid (session 26: a first wave of fits at GRID_SHARES, then a second at NEXT_WAVE's neighbours of the
winner; session 25: one wave at every share; two fits at a time in threads, each coded to the byte target, the
best real file kept) and session 22's probes (short fits at two shares, then the main fit at the better one;
GRID_SHARES empty). On a tiny generated image with the step thresholds lowered: files within the target, the better
share picked, the same bytes for the same seed whether the fits run side by side or one after the other, the
decoder equal to the encoder's reconstruction, and the search only where it is meant to run."""

from __future__ import annotations

import numpy as np
import pytest

from inrcodec import presets
from inrcodec.codec import compress, decompress
from inrcodec.metrics import psnr
from inrcodec.models import gaussian_dct
from inrcodec.signal import Signal
from test_gaussian_dct import MODEL, textured

STEPS = 80  # grid: 4 shares, 2 at a time, 40 steps each; probes: 2 x 10 steps, each counted twice, the main fit 40
GRID = STEPS // 2
FITS = len(gaussian_dct.GRID_SHARES) + len(gaussian_dct.NEXT_WAVE[0])  # 2 + 2


def _second_wave(search):
    """The shares the second wave must have taken: the neighbours of the first wave's best fit within the target."""
    first = [s["psnr"] if s["within"] else -np.inf for s in search[:len(gaussian_dct.GRID_SHARES)]]
    return list(gaussian_dct.NEXT_WAVE[int(np.argmax(first))])


@pytest.fixture
def small_search(monkeypatch):
    monkeypatch.setattr(gaussian_dct, "SEARCH_MIN_STEPS", 60)
    monkeypatch.setattr(gaussian_dct, "PROBE_STEPS", 10)
    monkeypatch.setattr(gaussian_dct, "PROBE_COST", 20)


@pytest.fixture
def probes(monkeypatch):
    monkeypatch.setattr(gaussian_dct, "GRID_SHARES", ())


@pytest.fixture(scope="module")
def sig():
    return Signal(textured(), "image")


def _coded(sig, bpp=3.0, **kw):
    return compress(sig, MODEL, bpp=bpp, steps=STEPS, seed=0, **kw)


@pytest.mark.parametrize("bpp", [1.0, 3.0])
def test_grid_never_above_the_target_and_decoder_matches(sig, small_search, bpp):
    res = _coded(sig, bpp)
    target = bpp * sig.num_pixels / 8.0
    search = res.report["search"]
    assert all(s["bytes"] <= target for s in search)
    for s in search:
        s["within"] = True
    shares = [s["config"]["base_share"] for s in search]  # in the plan's order: the first wave, then the second
    assert shares == list(gaussian_dct.GRID_SHARES) + _second_wave(search)
    assert len(res.data) <= target and res.report["target_met"]
    assert [s["fit_steps"] for s in search] == [GRID] * FITS
    assert res.report["fit_steps"] == GRID * FITS  # what ran, on both threads
    out = decompress(res.data)
    assert psnr(sig.data, out.data) == pytest.approx(res.report["psnr"], abs=1e-9)
    best = max(search, key=lambda s: s["psnr"])  # the kept file is the best coded, the one the report describes
    assert res.report["psnr"] == best["psnr"] and len(res.data) == best["bytes"]
    assert res.report["config"] == best["config"]


@pytest.mark.parametrize("bpp", [1.0, 3.0])
def test_never_above_the_target_and_decoder_matches(sig, small_search, probes, bpp):
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


def test_main_fit_takes_the_better_share(sig, small_search, probes, monkeypatch):
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
    """The preset's wall-clock cap with its steps (a generous one here): the grid's fits run their steps."""
    res = compress(sig, MODEL, bpp=3.0, steps=STEPS, time_budget=600.0, seed=0)
    assert [s["fit_steps"] for s in res.report["search"]] == [GRID] * FITS


def test_probes_under_a_time_cap(sig, small_search, probes):
    res = compress(sig, MODEL, bpp=3.0, steps=STEPS, time_budget=600.0, seed=0)
    assert [s["fit_steps"] for s in res.report["search"]] == [10, 10, STEPS - 2 * 20]


def test_same_seed_same_file(sig, small_search):
    assert _coded(sig).data == _coded(sig).data


def test_side_by_side_or_one_after_the_other_the_same_file(sig, small_search, monkeypatch):
    """The concurrent fits draw nothing from shared state (their own generators, one torch thread each): run one
    at a time (one core, or inside a tile's thread) they give the same report and the same file."""
    from inrcodec import codec

    together = _coded(sig)
    monkeypatch.setattr(codec, "search_workers", lambda wanted: 1)
    alone = _coded(sig)
    assert alone.data == together.data
    strip = lambda r: [{k: v for k, v in s.items() if k not in ("code_cpu_s", "cpu_s")} for s in r.report["search"]]
    assert strip(alone) == strip(together)


def test_search_workers_one_inside_a_worker_thread():
    """A search inside a thread (a tile beside another, a GOP) runs its fits one at a time: no more threads than cores."""
    import threading

    from inrcodec.codec import search_workers

    assert 1 <= search_workers(2) <= 2
    seen = []
    t = threading.Thread(target=lambda: seen.append(search_workers(2)))
    t.start()
    t.join()
    assert seen == [1]


@pytest.mark.parametrize("steps,on", [(200, False), (1250, False), (3000, False), (3200, True), (10**6, False)])
def test_lookahead_only_on_slows_long_fits(steps, on):
    """fast / medium / video intra fits / a --time-budget schedule (BUDGET_STEP_CAP steps) quantise as before; slow's
    grid fits with rdoq_ctx's look-ahead."""
    from inrcodec.models import image_dct

    desc = {"shape": [16, 16, 3], "dtype": "uint8", "range": [0.0, 255.0]}
    net = gaussian_dct.GaussianDCT(gaussian_dct.GaussianDCTConfig(8, 3), desc)
    net.set_schedule(steps, None)
    assert net._lookahead() == (gaussian_dct.SLOW_LOOKAHEAD if on else image_dct.RDOQ_LOOKAHEAD)


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
    assert steps("fast") == 200 and steps("medium") == 1000 and steps("slow") == 6400  # fast and medium unchanged
    first, each, each2, choose, workers = gaussian_dct.GaussianDCT.search_plan(steps("slow"), 1e5, {})
    grid, nxt = gaussian_dct.GRID_SHARES, gaussian_dct.NEXT_WAVE
    assert first == [{"base_share": x} for x in grid] and workers == gaussian_dct.SEARCH_WORKERS == 2
    assert each == each2 == steps("slow") * workers // FITS == 3200  # two waves of two fits
    assert gaussian_dct.LOOKAHEAD_MIN_STEPS <= each  # the grid's fits quantise with the look-ahead
    # one second wave per first-wave winner, of the same size; the small base's neighbours reach below it, the
    # large one's above it; every share a share of the bytes, none fitted twice
    assert len(nxt) == len(grid) == 2 and len({len(w) for w in nxt}) == 1
    assert min(nxt[0]) < grid[0] < max(nxt[0]) <= grid[1] and grid[0] <= min(nxt[1]) < grid[1] < max(nxt[1])
    for i, wave in enumerate(nxt):
        assert not set(wave) & set(grid) and all(0.0 < x <= 1.0 for x in wave)
        psnrs = [30.0, 30.0]
        psnrs[i] += 0.5
        assert choose(psnrs) == [{"base_share": x} for x in wave]
    assert choose([30.0, 30.0]) == [{"base_share": x} for x in nxt[0]]  # a tie: the small base's neighbours
    assert choose([-np.inf, 30.0]) == [{"base_share": x} for x in nxt[1]]  # a fit over the target never wins
    assert choose([30.0, -np.inf]) == [{"base_share": x} for x in nxt[0]]


def test_one_wave_without_next(monkeypatch):
    """NEXT_WAVE empty: session 25's grid, a fit at every share of GRID_SHARES at once, no probes."""
    monkeypatch.setattr(gaussian_dct, "GRID_SHARES", (0.2, 0.3, 0.45, 0.6))
    monkeypatch.setattr(gaussian_dct, "NEXT_WAVE", ())
    probes, _, each, choose, workers = gaussian_dct.GaussianDCT.search_plan(6400, 1e5, {})
    assert probes == [] and each == 3200 and workers == 2
    assert choose([]) == [{"base_share": x} for x in (0.2, 0.3, 0.45, 0.6)]


def test_second_wave_follows_the_winner(sig, small_search, monkeypatch):
    """On texture a base of 30 % of the bytes beats one of 90 % (test_gaussian_dct: the residual codes far better
    than the Gaussians there): the second wave is the small base's neighbours, and the best file is kept."""
    monkeypatch.setattr(gaussian_dct, "GRID_SHARES", (0.3, 0.9))
    monkeypatch.setattr(gaussian_dct, "NEXT_WAVE", ((0.15, 0.5), (0.5, 0.95)))
    res = _coded(sig)
    search = res.report["search"]
    assert [s["config"]["base_share"] for s in search] == [0.3, 0.9, 0.15, 0.5]
    assert search[0]["psnr"] > search[1]["psnr"]
    assert res.report["psnr"] == max(s["psnr"] for s in search)


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


def test_one_fit_share_falls_with_the_rate_on_gray_8bit(sig):
    """Outside fast's and slow's schedules an 8-bit gray image's share is SHARE_BY_RATE's: the knots exactly,
    constant beyond them, never rising with the rate, interpolated between the knots in log bpp; the codec takes it
    from the payload's rate, a share given wins over it, and RGB or 16-bit gray images keep BASE_SHARE."""
    knots = gaussian_dct.SHARE_BY_RATE
    (lo, s_lo), (hi, s_hi) = knots[0], knots[-1]
    for bpp, share in knots:
        assert gaussian_dct.share_for_rate(bpp) == pytest.approx(share, abs=1e-12)
    assert gaussian_dct.share_for_rate(lo / 4) == s_lo and gaussian_dct.share_for_rate(hi * 8) == s_hi
    rates = np.geomspace(lo / 2, hi * 2, 50)
    shares = [gaussian_dct.share_for_rate(r) for r in rates]
    assert all(b <= a + 1e-12 for a, b in zip(shares, shares[1:])) and shares[0] > shares[-1]
    (r0, a), (r1, b) = knots[0], knots[1]
    mid = float(np.sqrt(r0 * r1))  # the log-midpoint of the first two knots: the mean of their shares
    assert gaussian_dct.share_for_rate(mid) == pytest.approx((a + b) / 2, abs=1e-12)
    assert gaussian_dct.share_for_rate(None) == gaussian_dct.BASE_SHARE
    gray = Signal(textured(channels=1), "image")
    share = lambda s, bpp, **kw: compress(s, MODEL, bpp=bpp, steps=10, seed=0, **kw).report["config"]["base_share"]  # noqa: E731
    assert share(gray, lo / 2) == s_lo and share(gray, hi * 3) == s_hi != gaussian_dct.BASE_SHARE
    assert share(gray, hi * 3, config={"base_share": 0.7}) == 0.7
    assert share(sig, hi * 3) == gaussian_dct.BASE_SHARE  # RGB
    assert share(Signal(textured(channels=1, dtype=np.uint16), "image"), hi * 3) == gaussian_dct.BASE_SHARE
