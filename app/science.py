"""The "Fields" tab: scientific arrays (.nc/.h5/.zarr datasets, .npy, raw) compressed under an error bound.

Pick a file, a variable and the slice to look at (an index for each axis before the last two, e.g.
``time=2, level=0``); Fit compresses the whole variable (every tile) and shows that slice of the original, of the
decoded field and of the error, with colour bars, beside ratio, bits per value and max error / bound. The handlers
(``inspect_field``, ``fit_field``) are plain functions of the public API, tested without a browser.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from inrcodec import InputError

FIELD_TYPES = [".nc", ".nc4", ".h5", ".hdf5", ".npy", ".raw", ".bin", ".float", ".f32", ".f64", ".d64"]
MODES = {"max error (relative to range)": "relative", "max error (absolute)": "absolute", "PSNR (dB)": "psnr"}
DEFAULT_MODE = "max error (relative to range)"


def _path(file: Any) -> Path:
    if file is None:
        raise InputError("upload a field first (.nc, .h5, .npy or raw)")
    return Path(getattr(file, "name", file))


def _is_dataset(path: Path) -> bool:
    from inrcodec.signals.dataset import is_dataset_path

    return is_dataset_path(path)


def inspect_field(file) -> tuple[list[str], str, str]:
    """Variables of the file (data variables with at least one axis), the first one, and a description."""
    path = _path(file)
    if not _is_dataset(path):
        from inrcodec.signals import load

        sig = load(path)
        shape = sig.data.shape[:-1]
        return ["(array)"], "(array)", f"array {'x'.join(map(str, shape))} {sig.dtype}"
    from inrcodec.signals.dataset import data_variables, open_dataset

    ds = open_dataset(path)
    try:
        names = [n for n in data_variables(ds, None, path) if ds[n].ndim >= 1]
        if not names:
            raise InputError(f"{path.name}: no variable with at least one axis")
        lines = [f"{n}: ({', '.join(f'{d}={s}' for d, s in zip(ds[n].dims, ds[n].shape))}) {ds[n].dtype}"
                 for n in names]
    finally:
        ds.close()
    return names, names[0], "\n".join(lines)


def parse_slice(text: str, dims: tuple[str, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Indices for the axes before the last two: "time=2, level=0" or "2,0" (missing ones: 0)."""
    lead = len(dims) - min(2, len(dims))
    index = [0] * lead
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    for pos, part in enumerate(parts):
        name, _, value = part.rpartition("=")
        if name:
            if name.strip() not in dims[:lead]:
                raise InputError(f"slice: no leading axis {name.strip()!r} (leading axes: {', '.join(dims[:lead]) or 'none'})")
            axis = dims.index(name.strip())
        else:
            axis = pos
        if axis >= lead:
            raise InputError(f"slice: the field has {lead} leading axes")
        try:
            i = int(value)
        except ValueError:
            raise InputError(f"slice: {part!r} is not an index") from None
        if not -shape[axis] <= i < shape[axis]:
            raise InputError(f"slice: index {i} out of range for {dims[axis]} (size {shape[axis]})")
        index[axis] = i % shape[axis]
    return tuple(index)


def _figure(original: np.ndarray, decoded: np.ndarray, bound: float | None, title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    err = decoded.astype(np.float64) - original.astype(np.float64)
    finite = np.isfinite(original)
    lo, hi = (float(np.min(original[finite])), float(np.max(original[finite]))) if finite.any() else (0.0, 1.0)
    emax = bound if bound else (float(np.nanmax(np.abs(err[finite]))) if finite.any() else 1.0) or 1.0
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.9))
    if original.ndim == 1:
        axes[0].plot(original), axes[1].plot(decoded), axes[2].plot(err)
        for ax, name in zip(axes, ("original", "decoded", "error")):
            ax.set_title(name)
    else:
        panels = [(original, "original", "viridis", lo, hi), (decoded, "decoded", "viridis", lo, hi),
                  (err, "error (decoded − original)" + (" , ±bound" if bound else ""), "RdBu_r", -emax, emax)]
        for ax, (img, name, cmap, vmin, vmax) in zip(axes, panels):
            im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", aspect="auto")
            ax.set_title(name, fontsize=10)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def fit_field(file, variable: str, slice_text: str = "", mode: str = DEFAULT_MODE, value: float = 1e-3,
              time_budget: float = 30, steps: int = 0, model: str = "auto") -> tuple[str, str, str, dict]:
    """Compress ``variable`` of ``file``; returns (figure PNG path, metrics markdown, .inrc path, report)."""
    path = _path(file)
    kind = MODES.get(mode)
    if kind is None:
        raise InputError(f"unknown target {mode!r}")
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InputError("the target value must be positive")
    kw: dict[str, Any] = {"psnr": float(value)} if kind == "psnr" else {"max_error": float(value),
                                                                          "relative": kind == "relative"}
    model_name = None if model in (None, "", "auto") else model
    steps_n = int(steps) if steps else None
    budget = float(time_budget) if time_budget else None
    work = Path(tempfile.mkdtemp(prefix="inrcodec-field-"))
    t0 = time.perf_counter()
    if _is_dataset(path):
        from inrcodec.dataset_codec import FieldTarget, compress_dataset, decompress_dataset
        from inrcodec.signals.dataset import open_dataset

        result = compress_dataset(path, [variable], FieldTarget(model_name, time_budget=budget, steps=steps_n,
                                                                **kw))
        row = next(r for r in result.report["variables"] if r["name"] == variable)
        ds = open_dataset(path)
        try:
            var = ds[variable]
            index = parse_slice(slice_text, tuple(map(str, var.dims)), tuple(var.shape))
            original = np.asarray(var.values[index], dtype=np.float64)
        finally:
            ds.close()
        decoded = np.asarray(decompress_dataset(result.data)[variable].values[index], dtype=np.float64)
        report = result.report
        stats = {"ratio": row["ratio"], "bits_per_value": row["bits_per_value"], "bound": row.get("bound"),
                 "max_abs_error": row["max_abs_error"], "psnr": row["psnr"], "model": report["model"]}
        name = f"{path.name}: {variable}" + (f" [{slice_text}]" if slice_text else "")
    else:
        from inrcodec import compress, decompress
        from inrcodec.signals import load

        sig = load(path)
        finite = sig.data[np.isfinite(sig.data)] if sig.data.dtype.kind == "f" else sig.data
        rng = (float(finite.min()), float(finite.max()))
        value_range = rng if rng[1] > rng[0] else None
        from inrcodec.signal import Signal

        sig = Signal(sig.data, sig.kind, value_range or sig.value_range, sig.metadata)
        if kind == "relative":  # relative to the data's finite range (as SZ3), not the dtype's
            kw = {"max_error": float(value) * max(rng[1] - rng[0], 0.0) or float(value)}
        result = compress(sig, model_name, time_budget=budget, steps=steps_n, **kw)
        out = decompress(result.data)
        arr, dec = sig.data[..., 0], out.data[..., 0]
        dims = tuple(f"axis{i}" for i in range(arr.ndim))
        index = parse_slice(slice_text, dims, arr.shape)
        original, decoded = arr[index].astype(np.float64), dec[index].astype(np.float64)
        report = dict(result.report)
        bound = report.get("target_max_error")
        stats = {"ratio": sig.data.nbytes / len(result.data), "bits_per_value": 8 * len(result.data) / sig.data.size,
                 "bound": bound, "max_abs_error": report["max_abs_error"], "psnr": report["psnr"],
                 "model": report["model"]}
        name = path.name + (f" [{slice_text}]" if slice_text else "")
    png = work / "field.png"
    _figure(original, decoded, stats["bound"], name, png)
    inrc = work / (path.stem + ".inrc")
    inrc.write_bytes(result.data)
    bound_txt = ("no bound" if not stats["bound"] else
                 f"max error **{stats['max_abs_error']:.4g}** / bound {stats['bound']:.4g} "
                 f"(**{stats['max_abs_error'] / stats['bound']:.3f}**)")
    psnr = stats["psnr"]
    md = (f"ratio **{stats['ratio']:.2f}** · **{stats['bits_per_value']:.3f}** bits/value · {bound_txt} · "
          f"PSNR {'∞' if not math.isfinite(psnr) else f'{psnr:.2f}'} dB · model {stats['model']} · "
          f"{len(result.data)} bytes · {time.perf_counter() - t0:.1f} s")
    return str(png), md, str(inrc), dict(stats, bytes=len(result.data))


def build_tab(shown_errors) -> None:
    """The "Fields" tab; call inside ``gr.Tabs()``. ``shown_errors``: main's context manager for messages."""
    import gradio as gr

    def do_inspect(file):
        with shown_errors():
            if file is None:
                return gr.Dropdown(choices=[], value=None), ""
            names, first, text = inspect_field(file)
            return gr.Dropdown(choices=names, value=first), f"```\n{text}\n```"

    def do_fit(file, variable, slice_text, mode, value, budget, steps):
        with shown_errors():
            return fit_field(file, variable, slice_text, mode, value, budget, steps)

    with gr.Tab("Fields", id="fields"):
        with gr.Row():
            with gr.Column(scale=1):
                f_file = gr.File(label="Field (.nc, .h5, .npy, raw)", file_types=FIELD_TYPES, elem_id="field-file")
                f_var = gr.Dropdown([], label="Variable", elem_id="field-var")
                f_slice = gr.Textbox(value="", label="Slice to show", placeholder="time=0, level=0 (default: 0s)")
                f_mode = gr.Radio(list(MODES), value=DEFAULT_MODE, label="Target")
                f_value = gr.Number(value=1e-3, label="Bound or PSNR", info="e.g. 1e-3 of the value range")
                f_budget = gr.Slider(2, 300, value=30, step=1, label="Time budget (s)")
                f_steps = gr.Number(value=0, precision=0, label="Max steps (0: model default)")
                f_btn = gr.Button("Fit & compress field", variant="primary", elem_id="field-button")
            with gr.Column(scale=2):
                f_info = gr.Markdown()
                f_plot = gr.Image(label="Original | decoded | error", interactive=False, type="filepath")
                f_metrics = gr.Markdown(elem_classes=["metrics"])
                f_inrc = gr.File(label="Compressed .inrc", interactive=False)
                with gr.Accordion("Report (JSON)", open=False):
                    f_json = gr.JSON(label="Report")
    f_file.change(do_inspect, [f_file], [f_var, f_info], api_name="inspect_field")
    f_btn.click(do_fit, [f_file, f_var, f_slice, f_mode, f_value, f_budget, f_steps],
                [f_plot, f_metrics, f_inrc, f_json], api_name="fit_field", concurrency_id="cpu",
                concurrency_limit=1)
