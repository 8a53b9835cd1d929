"""Classical video codecs (x264, x265, SVT-AV1 through PyAV) behind ``baselines.Codec``, and video measurement.

Settings (DESIGN.md contract 2): RGB frames are converted to yuv420p by libswscale (BT.601, limited range, PyAV's
defaults, the same conversion back), encoded at a constant rate factor (``quality`` = CRF, lower = more bits), and
written as the bare elementary stream (Annex B H.264/H.265, IVF for AV1): every byte of it counts in bpp, no
container overhead. x264/x265 use ``preset=medium``; SVT-AV1 uses preset 8 (its default is 10; ``medium`` is not
one of its presets, and presets below 8 take minutes per second of 640x360 video on these 2 cores).

``measure_video`` scores a decoded clip as the contract asks: the mean over frames of the per-frame RGB PSNR
(peak 255) against the source's own decoded frames, with Y-PSNR (BT.601 luma) beside it, and kbit/s at the
clip's frame rate.
"""

from __future__ import annotations

import io
import os
import time
from typing import Any

import numpy as np

from .baselines import Codec
from .errors import InputError


def _av():
    import av

    return av


class VideoCodec(Codec):
    kind = "video"
    quality_bounds = (0.0, 51.0)
    integer_quality = True
    rate_increases = False  # larger CRF, fewer bits
    qualities = (22.0, 27.0, 32.0, 37.0, 42.0)
    encoder = ""
    raw_format = ""  # demuxer/muxer of the bare stream
    options: dict[str, str] = {}
    fps = 25  # the rate written into the stream; it does not change the coded size at constant CRF

    @property
    def available(self) -> bool:
        try:
            _av().codec.Codec(self.encoder, "w")
            return True
        except Exception:
            return False

    def why_unsupported(self, data: np.ndarray) -> str | None:
        if not self.available:
            return f"{self.encoder} is not in this PyAV build"
        if data.ndim != 4 or data.shape[-1] != 3 or data.dtype != np.uint8:
            return "video must be (frames, H, W, 3) uint8"
        if data.shape[1] % 2 or data.shape[2] % 2:
            return "yuv420p needs an even width and height"
        return None

    def _encode(self, data: np.ndarray, quality: float) -> bytes:
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner on stderr at every encode otherwise
        av = _av()
        buf = io.BytesIO()
        with av.open(buf, "w", format=self.raw_format) as out:
            s = out.add_stream(self.encoder, rate=self.fps, options=dict(self.options, crf=str(int(quality))))
            s.width, s.height, s.pix_fmt = data.shape[2], data.shape[1], "yuv420p"
            for i, frame in enumerate(data):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(format="yuv420p")
                vf.pts = i
                out.mux(s.encode(vf))
            out.mux(s.encode(None))
        return buf.getvalue()

    def _decode(self, data: bytes) -> np.ndarray:
        av = _av()
        with av.open(io.BytesIO(data), format=self.raw_format) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        if not frames:
            raise InputError(f"{self.name}: stream holds no frames")
        return np.stack(frames)

    def library_version(self) -> str:
        return f"PyAV {_av().__version__} ({self.encoder})"

    def get_config(self) -> dict[str, Any]:
        return dict(super().get_config(), encoder=self.encoder, options=dict(self.options), pix_fmt="yuv420p")


class X264(VideoCodec):
    name, encoder, raw_format = "x264", "libx264", "h264"
    options = {"preset": "medium"}


class X265(VideoCodec):
    name, encoder, raw_format = "x265", "libx265", "hevc"
    options = {"preset": "medium", "x265-params": "log-level=none"}


class SVTAV1(VideoCodec):
    name, encoder, raw_format = "svtav1", "libsvtav1", "ivf"
    quality_bounds = (1.0, 63.0)
    qualities = (25.0, 32.0, 40.0, 48.0, 56.0)
    options = {"preset": "8"}


VIDEO_CODECS: dict[str, Codec] = {c.name: c for c in (X264(), X265(), SVTAV1())}


def measure_video(codec: Codec, frames: np.ndarray, quality: float, fps: float) -> dict[str, Any]:
    """Encode and decode a (T, H, W, 3) uint8 clip once: bytes, bpp, kbit/s, mean per-frame RGB and Y PSNR."""
    from .video_codec import frame_psnrs

    t0 = time.perf_counter()
    stream = codec.encode(frames, quality)
    t1 = time.perf_counter()
    rec = codec.decode(stream)
    t2 = time.perf_counter()
    if rec.shape != frames.shape:
        raise RuntimeError(f"{codec.name} decoded {rec.shape}, expected {frames.shape}")
    p, y = frame_psnrs(frames, rec)
    t, h, w = frames.shape[:3]
    return {"codec": codec.name, "quality": quality, "bytes": len(stream), "bpp": 8.0 * len(stream) / (t * h * w),
            "kbps": 8.0 * len(stream) / 1000.0 / (t / fps), "psnr": float(p.mean()), "psnr_y": float(y.mean()),
            "encode_s": t1 - t0, "decode_s": t2 - t1, "decode_fps": t / max(t2 - t1, 1e-9)}


def sweep_video(codec: Codec, frames: np.ndarray, fps: float, bpp_lo: float, bpp_hi: float,
                n: int = 6) -> list[dict[str, Any]]:
    """Up to ``n`` points whose bpp lies in [bpp_lo, bpp_hi]: CRFs bisected per log-rate bin (encode only), then
    measured. Sorted by bpp."""
    lo_q, hi_q = int(codec.quality_bounds[0]), int(codec.quality_bounds[1])
    cache: dict[int, float] = {}
    t, h, w = frames.shape[:3]

    def rate(q: int) -> float:
        if q not in cache:
            cache[q] = 8.0 * len(codec.encode(frames, q)) / (t * h * w)
        return cache[q]

    chosen: list[int] = []
    for target in np.geomspace(bpp_lo, bpp_hi, n):
        a, b = lo_q, hi_q  # rate falls as q rises
        while b - a > 1:
            m = (a + b) // 2
            if rate(m) > target:
                a = m
            else:
                b = m
        q = min((a, b), key=lambda k: abs(np.log(rate(k) / target)))
        if bpp_lo / 1.5 <= rate(q) <= bpp_hi * 1.5 and q not in chosen:
            chosen.append(q)
    return sorted((measure_video(codec, frames, q, fps) for q in chosen), key=lambda p: p["bpp"])
