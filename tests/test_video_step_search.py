"""The residual step search of ``mcvideo`` (session 21): a secant in log size / log step from the rate's expected
step replaced the geometric bisection. Checked on a GOP of generated moving shapes with the same intra frame for
both searches: the secant runs fewer closed-loop frames, and both land the GOP within the settling's window of its
byte share at about the same step and PSNR."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from inrcodec.models import mcorder, mcvideo
from inrcodec.samples import moving_shapes_video
from inrcodec.video_codec import frame_psnrs


@pytest.mark.parametrize("target", [2500, 6000])
def test_secant_search_runs_fewer_loops_and_lands_like_the_bisection(monkeypatch, target):
    x = moving_shapes_video(12, 64, 96).data
    frames = [0]
    loop = mcorder.closed_loop

    @functools.wraps(loop)
    def counted(intra, window, *a, **k):
        frames[0] += len(window) - 1
        return loop(intra, window, *a, **k)

    monkeypatch.setattr(mcorder, "closed_loop", counted)
    out = {}
    for secant in (False, True):
        monkeypatch.setattr(mcvideo, "SECANT_SEARCH", secant)
        frames[0] = 0
        blob = mcvideo.encode_gop(x, target, steps=20)
        _, cfg = mcvideo._parse(blob)
        out[secant] = (frames[0], len(blob), cfg.residual_step, frame_psnrs(x, mcvideo.decode_gop(blob))[0].mean())
    (f_bis, n_bis, s_bis, p_bis), (f_sec, n_sec, s_sec, p_sec) = out[False], out[True]
    assert f_sec < f_bis
    for n in (n_bis, n_sec):  # the whole GOP (intra, motion, headers): a little under the residual's window
        assert 0.9 * target <= n <= target
    assert abs(np.log2(s_sec / s_bis)) <= 0.25  # within a quarter octave of the same step
    assert abs(p_sec - p_bis) < 0.3


def test_default_schedule_runs_the_intra_steps_and_gives_the_same_file(monkeypatch):
    """Without --steps / --time-budget the intra fits run ``mcvideo.DEFAULT_STEPS`` (session 21; before, they filled
    40 s per megapixel of GOP, so the file depended on the machine's speed): the same seed gives the same bytes
    while the cap does not bind (as with the image presets)."""
    import inrcodec.codec as codec
    from inrcodec import video_codec
    from inrcodec.signal import Signal
    from inrcodec.video_codec import compress_video

    monkeypatch.setattr(mcvideo, "DEFAULT_STEPS", 7)
    # the cap far away (as for real clips on an idle machine: 3000 steps of a 640x480 intra frame take ~40 s of the
    # 295 s a GOP of 24 may take); a tiny clip's 5 s floor would otherwise bind and make the schedule timed
    monkeypatch.setattr(video_codec, "DEFAULT_SECONDS_PER_MPIXEL", 1e7)
    seen = []
    compress = codec.compress

    def spy(*a, steps=None, time_budget=None, **k):
        seen.append((steps, time_budget))
        return compress(*a, steps=steps, time_budget=time_budget, **k)

    monkeypatch.setattr(codec, "compress", spy)
    clip = Signal(moving_shapes_video(6, 48, 64).data, kind="video", metadata={"fps": 10.0})
    a = compress_video(clip, "mcvideo", bpp=1.0, workers=1)
    b = compress_video(clip, "mcvideo", bpp=1.0, workers=1)
    assert a.data == b.data
    assert seen and all(s == 7 and t is not None for s, t in seen)  # the steps, within the time cap
    assert a.report["fit_steps"] == [7] * a.report["gops"]  # the report says how many ran
    seen.clear()
    compress_video(clip, "mcvideo", bpp=1.0, workers=1, time_budget=20.0)  # a budget: the time-filled fit
    assert seen and all(s is None for s, _ in seen)
