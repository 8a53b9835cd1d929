"""The Video tab's handler: a fit of a tiny generated clip gives browser previews, a per-frame PSNR table, the
.inrc and a lossless decoded .mkv (the Gradio wiring itself is exercised by test_ui's server)."""

import numpy as np
import pytest

pytest.importorskip("gradio")

from app.video import fit_video_file  # noqa: E402
from inrcodec.errors import InputError  # noqa: E402
from inrcodec.signals.video import VideoSource  # noqa: E402
from test_video import T, make_clip  # noqa: E402


def test_fit_video_file(tmp_path):
    clip = make_clip(tmp_path / "c.mp4")
    r = fit_video_file(str(clip), "fourier", 4.0, None, steps=10)
    assert VideoSource(r["original"]).info.frames == T and VideoSource(r["decoded"]).info.frames == T
    assert list(r["psnr"]["frame"]) == list(range(T))
    assert np.allclose(r["psnr"]["psnr"].mean(), r["report"]["psnr"], atol=1e-2)
    dec = VideoSource(r["decoded_file"])
    assert dec.info.frames == T and dec.info.has_audio
    assert "bpp" in r["summary"] and r["inrc"].endswith(".inrc")
    with pytest.raises(InputError):
        fit_video_file(str(clip), "fourier", 0.0, None, steps=10)
