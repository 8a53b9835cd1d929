"""The Video tab: fit a clip, show the original and the decoded clip side by side, and the per-frame PSNR.

Browsers play only 4:2:0 H.264 in ``<video>``, so both players show *previews* (x264 crf 12, yuv420p, near
transparent); the decoded file offered for download is the lossless ``.mkv`` (FFV1 RGB, audio re-muxed).

API name (gradio_client): ``/fit_video``.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from inrcodec import InputError

from . import handlers as h

VIDEO_TYPES = [".mp4", ".mkv", ".webm", ".mov", ".avi", ".y4m"]
DEFAULT_BPP = 0.05
DEFAULT_BUDGET = 120.0


def _preview(path: Path, windows, fps: Fraction) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = None
        i = 0
        for window in windows:
            for frame in window:
                if stream is None:
                    stream = out.add_stream("libx264", rate=fps, options={"crf": "12", "preset": "veryfast"})
                    stream.height, stream.width = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
                    stream.pix_fmt = "yuv420p"
                f = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:stream.height, :stream.width]),
                                               format="rgb24")
                f.pts = i
                i += 1
                out.mux(stream.encode(f))
        if stream is not None:
            out.mux(stream.encode(None))
    return path


def fit_video_file(file: Any, model: str | None, bpp: float | None, time_budget: float | None,
                   progress=None, steps: int | None = None) -> dict[str, Any]:
    """Fit, write the .inrc and the decoded .mkv, and make browser previews; returns paths and metrics."""
    from inrcodec.signals.video import VideoSource, write_video
    from inrcodec.video_codec import compress_video, decode_windows, open_video

    src_path = h._upload_path(file, "a video")
    if bpp is None or not bpp > 0:
        raise InputError("the target bpp must be positive")
    if time_budget is not None and not time_budget > 0:
        raise InputError("the time budget must be positive")
    out = h.workdir()

    def report(done: int, total: int, value: float, elapsed: float) -> None:
        if progress is not None:
            progress(done / max(total, 1), desc=f"fitting GOPs: frame {done}/{total}, PSNR {value:.2f} dB")

    result = compress_video(src_path, None if model in (None, "", h.AUTO) else model, bpp=float(bpp),
                            time_budget=time_budget, steps=steps, progress=report)
    inrc = out / (src_path.stem + ".inrc")
    inrc.write_bytes(result.data)
    vf = open_video(result.data)
    decoded = out / (src_path.stem + ".decoded.mkv")
    write_video(decoded, decode_windows(result.data), vf.fps, vf.audio)
    source = VideoSource(src_path)
    original_preview = _preview(out / "original.mp4", source.windows(16), vf.fps)
    decoded_preview = _preview(out / "decoded.mp4", decode_windows(result.data), vf.fps)
    rep = result.report
    frame_psnr = pd.DataFrame({"frame": np.arange(len(rep["frame_psnr"]), dtype=float),
                               "psnr": np.asarray(rep["frame_psnr"], dtype=float)})
    text = (f"**{rep['bytes']:,} bytes** ({rep['audio_bytes']:,} audio) · {rep['bpp']:.4f} bpp · "
            f"{rep['kbps']:.1f} kbit/s · PSNR {rep['psnr']:.2f} dB (Y {rep['psnr_y']:.2f}) · {rep['frames']} frames "
            f"in {rep['gops']} GOPs · model `{rep['model']}` · {rep['seconds']:.1f} s")
    return {"original": str(original_preview), "decoded": str(decoded_preview), "psnr": frame_psnr,
            "summary": text, "inrc": str(inrc), "decoded_file": str(decoded), "report": rep}


def build_tab(shown_errors, models: list[str]) -> None:
    """Adds the Video tab inside the caller's ``gr.Tabs``."""
    video_models = [h.AUTO, "mcvideo", *[m for m in models if m in ("fourier", "siren", "hashgrid", "latentgrid")]]

    def run(file, model, bpp, budget, progress=gr.Progress()):
        with shown_errors():
            r = fit_video_file(file, model, bpp, budget or None, progress)
            return r["original"], r["decoded"], r["psnr"], r["summary"], r["inrc"], r["decoded_file"]

    with gr.Tab("Video", id="video"):
        with gr.Row():
            with gr.Column(scale=1):
                clip = gr.File(label="Clip (.mp4, .mkv, .webm, .mov, .avi, .y4m)", file_types=VIDEO_TYPES,
                               elem_id="video-file")
                model = gr.Dropdown(video_models, value=h.AUTO, label="Model")
                bpp = gr.Number(value=DEFAULT_BPP, label="Target bpp (whole file, audio included)")
                budget = gr.Number(value=DEFAULT_BUDGET, label="Time budget (s, whole clip)")
                go = gr.Button("Fit & compress video", variant="primary")
            with gr.Column(scale=3):
                with gr.Row():
                    original = gr.Video(label="Original (preview)", interactive=False)
                    decoded = gr.Video(label="Decoded (preview)", interactive=False)
                summary = gr.Markdown()
                plot = gr.LinePlot(pd.DataFrame({"frame": [], "psnr": []}, dtype=float), x="frame", y="psnr",
                                   title="PSNR per frame (dB, RGB)", height=220)
                with gr.Row():
                    inrc = gr.File(label="Compressed .inrc", interactive=False)
                    out = gr.File(label="Decoded (lossless .mkv)", interactive=False)
        go.click(run, [clip, model, bpp, budget], [original, decoded, plot, summary, inrc, out], api_name="fit_video",
                 concurrency_id="cpu", concurrency_limit=1)
