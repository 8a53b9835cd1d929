"""The Gradio app: three tabs (Fit & compress, Decode, Compare) wired to ``app.handlers``.

    from app.main import build_app, launch
    launch(host="127.0.0.1", port=7860)     # what `inrcodec ui` runs

API names (for gradio_client): ``/fit`` (only the file is required), ``/decode``, ``/compare``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from inrcodec import InputError, __version__
from inrcodec.models import available_models
from inrcodec.signals import supported_extensions

from . import handlers as h
from . import video as video_tab

log = logging.getLogger("inrcodec.ui")

SCENES = Path(__file__).resolve().parent.parent / "scenes"  # generated samples (present in a source checkout)
FIT_EXAMPLES = ["shapes_128x160.png", "gradient_gray16_64x64.png", "field_64x64_f32.npy", "chirp_8k.wav"]
COMPARE_EXAMPLES = ["shapes_128x160.png"]
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"]
QUEUE_SIZE = 16  # requests waiting at most; more get "queue full" instead of an ever longer wait
PICTURE = "png"  # lossless: Gradio's default WebP would add its own artefacts to the codec's
UI_UPDATE_EVERY = 0.4  # seconds between page updates while fitting

CSS = """
#status {min-height: 2.5em}
#status .bar {height: 6px; margin-top: 6px; border-radius: 3px; background: var(--neutral-200); overflow: hidden}
#status .bar > div {height: 100%; background: var(--color-accent); transition: width 0.3s}
.metrics table {width: 100%}
"""


@contextmanager
def shown_errors():
    """Whatever goes wrong becomes a one-line message in the page: the user's fault as is, ours as an
    'internal error' line (the traceback goes to the server log only)."""
    try:
        yield
    except gr.Error:
        raise
    except InputError as exc:
        raise gr.Error(" ".join(str(exc).split()), title="Input problem", print_exception=False) from None
    except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
        log.exception("internal error in the UI")
        text = " ".join(str(exc).split())[:300]
        raise gr.Error(f"internal error ({type(exc).__name__}): {text}", print_exception=False) from None


def _models() -> list[str]:
    return [h.AUTO, *available_models()]


def _examples(names: list[str]) -> list[list[str]]:
    return [[str(SCENES / n)] for n in names if (SCENES / n).is_file()]


def _psnr_frame(history: list[tuple[float, float]]) -> pd.DataFrame:
    # plain column names: Vega-Lite reads "PSNR (dB)" as a nested field and mis-scales the axis
    # float columns even when empty: the plot's axis types are read from the first value (empty -> categorical)
    return pd.DataFrame(history or [], columns=["seconds", "psnr"], dtype=float)


# -- handlers in Gradio's terms ---------------------------------------------------------------------------------


def run_fit(file, model=h.AUTO, target="bpp", target_value=h.DEFAULT_BPP, time_budget=h.DEFAULT_TIME_BUDGET,
            seed=0, steps=0, preset=h.DEFAULT_PRESET, progress=gr.Progress()):
    """Fit a representation to the uploaded signal and compress it (streams progress, then the results)."""
    import time

    with shown_errors():
        budget = (h.DEFAULT_TIME_BUDGET if time_budget is None else float(time_budget)) or None
        last, shown = 0.0, None
        progress(0.0, desc="loading")
        for item in h.fit_stream(file, model, target, target_value, time_budget, seed, steps, preset):
            if isinstance(item, h.FitProgress):
                progress(min(item.fraction, 0.99), desc=f"fitting: step {item.step}, PSNR {item.psnr:.2f} dB")
                now = time.perf_counter()
                if now - last < UI_UPDATE_EVERY and item.preview is shown:
                    continue  # nothing new worth a page update yet
                last, shown = now, item.preview
                yield (gr.skip() if item.preview is None else item.preview, h.progress_html(item, budget),
                       _psnr_frame(item.history), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
            else:
                m = item.metrics
                status = h.done_html(m)
                yield (item.decoded, status, _psnr_frame(item.history), (item.original, item.decoded),
                       h.metrics_markdown(m), m, str(item.inrc_path), str(item.decoded_path))


def run_decode(file, scale=1.0, size=""):
    """Decode an .inrc file: its header info, a picture of the signal, and the decoded file."""
    with shown_errors():
        out = h.decode_file(file, scale, size)
        shape = "x".join(str(n) for n in out.shape)
        return h.info_markdown(out.info), out.info, str(out.picture_path), str(out.path), f"Rendered {shape}"


def run_compare(file, models=None, codecs=None, rates=h.DEFAULT_RATES, time_budget=h.DEFAULT_COMPARE_BUDGET,
                steps=0, progress=gr.Progress()):
    """Rate-distortion comparison of inrcodec models with classical codecs on an uploaded image."""
    with shown_errors():
        def report(fraction: float, text: str) -> None:
            progress(min(max(fraction, 0.0), 1.0), desc=text)

        out = h.compare_file(file, models, codecs, rates, time_budget, report, steps=int(steps or 0) or None)
        side = out.side_by_side
        return (str(out.plot_path), out.table_markdown, out.result_json, side.original, side.ours, side.theirs,
                side.caption)


# -- layout -----------------------------------------------------------------------------------------------------


def build_app() -> gr.Blocks:
    models = _models()
    preview_live = h.codec_has_preview()
    with gr.Blocks(title="inrcodec", analytics_enabled=False) as demo:
        gr.Markdown(f"# inrcodec {__version__}\nCompress a signal as a small neural network (or a cloud of 2D "
                    "Gaussians) fitted to it. Everything runs on this machine.")
        with gr.Tabs() as tabs:
            # -- Fit & compress --------------------------------------------------------------------------------
            with gr.Tab("Fit & compress", id="fit"):
                with gr.Row():
                    with gr.Column(scale=1):
                        fit_file = gr.File(label="Signal (image, .npy, .wav or raw)",
                                           file_types=supported_extensions(),
                                           elem_id="fit-file")
                        model = gr.Dropdown(models, value=h.AUTO, label="Model",
                                            info="auto: the best model for the signal type")
                        target = gr.Radio(list(h.TARGETS), value="bpp", label="Target")
                        target_value = gr.Number(value=h.DEFAULT_BPP, label="Target value",
                                                 info="bits per pixel (whole file), or PSNR in dB")
                        preset = gr.Radio(list(h.PRESETS), value=h.DEFAULT_PRESET, label="Preset",
                                          info="fast: seconds; medium: the default; slow: best quality "
                                               "(~5 min for a 0.4-megapixel photo)")
                        time_budget = gr.Slider(0, 300, value=h.DEFAULT_TIME_BUDGET, step=1,
                                                label="Time budget (s)", info="0: the preset's schedule")
                        with gr.Accordion("Advanced", open=False):
                            seed = gr.Number(value=0, precision=0, label="Seed")
                            steps = gr.Number(value=0, precision=0, label="Max steps (0: model default)")
                        fit_btn = gr.Button("Fit & compress", variant="primary", elem_id="fit-button")
                        if _examples(FIT_EXAMPLES):
                            gr.Examples(_examples(FIT_EXAMPLES), inputs=[fit_file], label="Samples")
                    with gr.Column(scale=2):
                        ready = h.status_html("Ready", "upload a signal (or pick a sample), then Fit & compress")
                        status = gr.HTML(ready, elem_id="status")
                        with gr.Row():
                            preview = gr.Image(label="Preview of the fit", interactive=False, format=PICTURE,
                                               height=260, visible=preview_live, buttons=["fullscreen"])
                            psnr_plot = gr.LinePlot(_psnr_frame([]), x="seconds", y="psnr", y_title="PSNR (dB)",
                                                    x_title="fit time (s)",
                                                    label="PSNR while fitting (before quantisation)",
                                                    height=260)
                        slider = gr.ImageSlider(label="Original | decoded", interactive=False, format=PICTURE,
                                                elem_id="slider", buttons=["fullscreen"])
                        metrics_md = gr.Markdown(elem_classes=["metrics"])
                        with gr.Row():
                            inrc_file = gr.File(label="Compressed .inrc", interactive=False, elem_id="inrc-file")
                            decoded_file = gr.File(label="Decoded file", interactive=False, elem_id="decoded-file")
                        with gr.Accordion("Full report (JSON)", open=False):
                            metrics_json = gr.JSON(label="Metrics")
                        send_btn = gr.Button("Open the .inrc in Decode", size="sm")

            # -- Decode ----------------------------------------------------------------------------------------
            with gr.Tab("Decode", id="decode"):
                with gr.Row():
                    with gr.Column(scale=1):
                        dec_file = gr.File(label=".inrc file", file_types=[".inrc"], elem_id="decode-file")
                        scale = gr.Slider(0.25, 8, value=1.0, step=0.25, label="Scale",
                                          info="render at this multiple of the stored size")
                        size = gr.Textbox(value="", label="Size", placeholder="WxH, e.g. 640x480 (overrides scale)")
                        dec_btn = gr.Button("Decode", variant="primary", elem_id="decode-button")
                    with gr.Column(scale=2):
                        dec_status = gr.Markdown()
                        info_md = gr.Markdown()
                        picture = gr.Image(label="Decoded", interactive=False, format=PICTURE,
                                           buttons=["download", "fullscreen"])
                        dec_out = gr.File(label="Decoded file", interactive=False)
                        with gr.Accordion("Header (JSON)", open=False):
                            info_json = gr.JSON(label="Header")

            video_tab.build_tab(shown_errors, models)  # -- Video (app/video.py) ------------------------------
            # -- Compare ---------------------------------------------------------------------------------------
            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    with gr.Column(scale=1):
                        cmp_file = gr.File(label="Image", file_types=IMAGE_TYPES, elem_id="compare-file")
                        cmp_models = gr.CheckboxGroup(models[1:], value=[h.default_image_model()],
                                                      label="inrcodec models")
                        cmp_codecs = gr.CheckboxGroup(list(h.CLASSICAL_CODECS), value=list(h.DEFAULT_CODECS),
                                                      label="Classical codecs")
                        rates = gr.Textbox(value=h.DEFAULT_RATES, label="Rates (bpp) for inrcodec",
                                           info="comma separated")
                        cmp_budget = gr.Slider(2, 120, value=h.DEFAULT_COMPARE_BUDGET, step=1,
                                               label="Time budget per inrcodec point (s)")
                        with gr.Accordion("Advanced", open=False):
                            cmp_steps = gr.Number(value=0, precision=0, label="Max steps per fit (0: model default)")
                        cmp_btn = gr.Button("Compare", variant="primary", elem_id="compare-button")
                        if _examples(COMPARE_EXAMPLES):
                            gr.Examples(_examples(COMPARE_EXAMPLES), inputs=[cmp_file], label="Samples")
                    with gr.Column(scale=2):
                        rd_plot = gr.Image(label="Rate-distortion", interactive=False, type="filepath",
                                           buttons=["download", "fullscreen"])
                        bd_table = gr.Markdown()
                        gr.Markdown("**Side by side at a similar size**")
                        with gr.Row():
                            side_orig = gr.Image(label="Original", interactive=False, format=PICTURE, height=320,
                                                 buttons=["download", "fullscreen"])
                            side_ours = gr.Image(label="inrcodec", interactive=False, format=PICTURE, height=320,
                                                 buttons=["download", "fullscreen"])
                            side_theirs = gr.Image(label="Best classical codec", interactive=False, format=PICTURE,
                                                   height=320, buttons=["download", "fullscreen"])
                        side_caption = gr.Markdown(elem_id="side-caption")
                        with gr.Accordion("Result (JSON)", open=False):
                            cmp_json = gr.JSON(label="Result")

            from .science import build_tab as build_fields_tab  # scientific fields: .nc/.h5/.npy/raw
            build_fields_tab(shown_errors)

        fit_btn.click(run_fit, [fit_file, model, target, target_value, time_budget, seed, steps, preset],
                      [preview, status, psnr_plot, slider, metrics_md, metrics_json, inrc_file, decoded_file],
                      api_name="fit", concurrency_id="cpu", concurrency_limit=1, show_progress_on=[slider])
        send_btn.click(lambda p: (p, gr.Tabs(selected="decode")), [inrc_file], [dec_file, tabs],
                       api_visibility="private", queue=False)
        dec_btn.click(run_decode, [dec_file, scale, size], [info_md, info_json, picture, dec_out, dec_status],
                      api_name="decode", concurrency_limit=2)
        cmp_btn.click(run_compare, [cmp_file, cmp_models, cmp_codecs, rates, cmp_budget, cmp_steps],
                      [rd_plot, bd_table, cmp_json, side_orig, side_ours, side_theirs, side_caption],
                      api_name="compare", concurrency_id="cpu", concurrency_limit=1, show_progress_on=[rd_plot])
    # Fitting takes the whole CPU: one heavy job at a time, a bounded line of waiting ones.
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    return demo


def launch(host: str = "127.0.0.1", port: int = 7860, **kw: Any) -> gr.Blocks:
    """Build and serve the app (blocks unless ``prevent_thread_lock=True``); returns the Blocks."""
    demo = build_app()
    options: dict[str, Any] = dict(
        server_name=host, server_port=port, max_file_size=h.MAX_UPLOAD_BYTES, ssr_mode=False,
        theme=gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"]),  # system fonts: no request leaves the box
        css=CSS, allowed_paths=[str(SCENES)] if SCENES.is_dir() else None, footer_links=["api"],
    )
    options.update(kw)
    demo.launch(**options)
    return demo
