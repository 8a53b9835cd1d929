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
