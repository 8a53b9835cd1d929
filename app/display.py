"""Turn any Signal into an 8-bit RGB picture for the browser (images as they are, fields through a colour map,
volumes and videos by their middle slice or first frame, audio as a waveform plot)."""

from __future__ import annotations

import numpy as np

from inrcodec import Signal

WAVEFORM_SIZE = (900, 260)  # pixels (width, height) of the audio plot


def to_display(signal: Signal, reference: Signal | None = None) -> np.ndarray:
    """``(H, W, 3)`` uint8 picture of ``signal``. ``reference`` (the original) fixes the value range and, for
    audio, the axes, so that a before/after pair is drawn on the same scale."""
    ref = reference or signal
    if signal.kind == "audio":
        return _waveform(signal, ref)
    values = _normalized(signal, ref)
    if values.ndim == 4:  # volume (z, y, x, c) or video (t, y, x, c)
        values = values[0] if signal.kind == "video" else values[values.shape[0] // 2]
    if values.ndim != 3:
        raise ValueError(f"cannot display a signal of shape {signal.data.shape}")
    if signal.kind == "image" and values.shape[-1] in (3, 4):
        rgb = values[..., :3]
    elif signal.kind == "image" or values.shape[-1] != 1:
        rgb = np.repeat(values[..., :1], 3, axis=-1)  # gray (or first channel of an odd channel count)
    else:
        rgb = _colormap(values[..., 0])  # scalar field: a perceptual map shows structure better than gray
    return (np.clip(np.nan_to_num(rgb, nan=0.0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _normalized(signal: Signal, ref: Signal) -> np.ndarray:
    lo, hi = ref.value_range
    scale = (hi - lo) if hi > lo else 1.0
    return ((signal.data.astype(np.float64) - lo) / scale).astype(np.float32)


def _colormap(field: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps

    return colormaps["viridis"](np.clip(np.nan_to_num(field, nan=0.0), 0.0, 1.0))[..., :3]


def _waveform(signal: Signal, ref: Signal) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = WAVEFORM_SIZE
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes((0.06, 0.18, 0.92, 0.74))
    rate = float(signal.metadata.get("sample_rate") or 0)
    n = signal.data.shape[0]
    t = np.arange(n) / rate if rate > 0 else np.arange(n)
    values = _normalized(signal, ref)[:, 0] * 2.0 - 1.0
    ax.plot(t, values, linewidth=0.5, color="#1f6feb")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlim(t[0], t[-1] if n > 1 else 1)
    ax.set_xlabel("seconds" if rate > 0 else "sample")
    ax.grid(alpha=0.3)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
