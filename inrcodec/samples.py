"""Deterministic generated signals for tests, demos and docs (seeded numpy, no files needed).

    make_sample("shapes_image", h=128, w=160, seed=0)   # RGB uint8 test image
    SAMPLES                                              # name -> generator

Every generator returns a ``Signal`` and gives the same array for the same arguments on every machine (numpy's
PCG64 stream is stable across versions and platforms, and only float64 arithmetic is used before the final cast).
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from .errors import InputError
from .signal import Signal

MAX_SIDE = 1 << 14  # generous; keeps a typo from allocating terabytes


def _side(name: str, value) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or (isinstance(value, float) and value != n) or not 1 <= n <= MAX_SIDE:
        raise InputError(f"{name} must be an integer in [1, {MAX_SIDE}], got {value!r}")
    return n


def _int_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.uint8, np.uint16):
        raise InputError(f"dtype must be uint8 or uint16, got {dt}")
    return dt


def _quantize(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """[0, 1] floats -> full-range integers of ``dtype``."""
    top = np.iinfo(dtype).max
    return np.rint(np.clip(x, 0.0, 1.0) * top).astype(dtype)


def _channels(channels) -> int:
    c = _side("channels", channels)
    if c not in (1, 3):
        raise InputError(f"channels must be 1 or 3, got {channels!r}")
    return c


# ---------------------------------------------------------------------------------------------- simple images
def gradient(h: int = 64, w: int = 64, channels: int = 3, dtype: str = "uint8") -> Signal:
    """Linear ramps: gray = (x + y) / 2; RGB = (x, y, 1 - (x + y) / 2), each coordinate in [0, 1]."""
    h, w, c, dt = _side("h", h), _side("w", w), _channels(channels), _int_dtype(dtype)
    y = np.linspace(0.0, 1.0, h)[:, None] * np.ones((1, w))
    x = np.linspace(0.0, 1.0, w)[None, :] * np.ones((h, 1))
    planes = [(x + y) / 2] if c == 1 else [x, y, 1.0 - (x + y) / 2]
    return Signal(_quantize(np.stack(planes, axis=-1), dt), kind="image")


def checkerboard(h: int = 64, w: int = 64, cell: int = 8, channels: int = 1, dtype: str = "uint8") -> Signal:
    """Black and white squares of ``cell`` pixels, black at the top-left corner."""
    h, w, cell, c, dt = _side("h", h), _side("w", w), _side("cell", cell), _channels(channels), _int_dtype(dtype)
    board = ((np.arange(h)[:, None] // cell + np.arange(w)[None, :] // cell) % 2).astype(np.float64)
    return Signal(_quantize(np.repeat(board[..., None], c, axis=-1), dt), kind="image")


# ---------------------------------------------------------------------------------------------- fields
def _smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, length: float) -> np.ndarray:
    """Gaussian-filtered white noise (periodic, via FFT), scaled to max |value| = 1."""
    noise = rng.standard_normal(shape)
    axes = tuple(range(len(shape)))
    spectrum = np.fft.rfftn(noise, axes=axes)
    k2 = np.zeros(spectrum.shape)
    for axis, n in enumerate(shape):
        freqs = np.fft.rfftfreq(n) if axis == len(shape) - 1 else np.fft.fftfreq(n)
        k2 = k2 + (freqs.reshape([-1 if i == axis else 1 for i in range(len(shape))]) ** 2)
    # A Gaussian kernel of std `length` samples has the transfer function exp(-2 pi^2 sigma^2 k^2).
    field = np.fft.irfftn(spectrum * np.exp(-2.0 * np.pi**2 * length**2 * k2), s=shape, axes=axes)
    field -= field.mean()
    peak = np.abs(field).max()
    return field / peak if peak > 0 else field


def smooth_field(shape=(64, 64), seed: int = 0, length: float | None = None) -> Signal:
    """Smooth random float32 field in [-1, 1] with 1-3 axes; ``length`` is the correlation length in samples
    (default: an eighth of the shortest axis). Kinds follow the .npy convention: audio, array, volume."""
    dims = (shape,) if np.isscalar(shape) else tuple(shape)
    if not 1 <= len(dims) <= 3:
        raise InputError(f"shape must have 1-3 axes, got {shape!r}")
    dims = tuple(_side("shape", n) for n in dims)
    if int(np.prod(dims)) > 1 << 27:
        raise InputError(f"shape {dims} is too large for a generated field")
    ell = max(1.0, min(dims) / 8) if length is None else float(length)
    if not ell > 0:
        raise InputError(f"length must be positive, got {length!r}")
    field = _smooth_noise(dims, np.random.default_rng(seed), ell).astype(np.float32)
    kind = {1: "audio", 2: "array", 3: "volume"}[len(dims)]
    return Signal(field[..., None], kind=kind)


# ---------------------------------------------------------------------------------------------- shapes
def _coverage(kind: str, yy, xx, cy, cx, a, b, angle) -> np.ndarray:
    """Antialiased coverage in [0, 1]: 0.5 minus the signed distance (in pixels) to the shape's edge."""
    dy, dx = yy - cy, xx - cx
    if kind == "circle":
        sd = np.hypot(dy, dx) - a
    else:  # rotated rectangle of half sizes a, b
        u = np.cos(angle) * dx + np.sin(angle) * dy
        v = -np.sin(angle) * dx + np.cos(angle) * dy
        qx, qy = np.abs(u) - a, np.abs(v) - b
        sd = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
    return np.clip(0.5 - sd, 0.0, 1.0)


def _random_shape(rng: np.random.Generator, h: int, w: int) -> dict:
    size = min(h, w)
    return {
        "kind": "circle" if rng.random() < 0.5 else "rect",
        "cy": rng.uniform(0, h), "cx": rng.uniform(0, w),
        "a": rng.uniform(0.06, 0.22) * size, "b": rng.uniform(0.04, 0.16) * size,
        "angle": rng.uniform(0, np.pi),
        "c0": rng.uniform(0.05, 0.95, 3), "c1": rng.uniform(0.05, 0.95, 3),  # soft gradient across the shape
        "alpha": rng.uniform(0.6, 1.0),
    }


def _paint(canvas: np.ndarray, yy, xx, s: dict) -> None:
    cov = _coverage(s["kind"], yy, xx, s["cy"], s["cx"], s["a"], s["b"], s["angle"]) * s["alpha"]
    # Colour ramp along the shape's own axis, so shapes are not flat (flat areas compress unrealistically well).
    t = np.clip(((xx - s["cx"]) * np.cos(s["angle"]) + (yy - s["cy"]) * np.sin(s["angle"])) / (2 * s["a"]) + 0.5,
                0, 1)[..., None]
    colour = s["c0"] * (1 - t) + s["c1"] * t
    canvas *= 1 - cov[..., None]
    canvas += colour * cov[..., None]


def _background(rng: np.random.Generator, h: int, w: int, yy, xx) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (xx / w) + np.sin(angle) * (yy / h))
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
    c0, c1 = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    return c0 * (1 - ramp[..., None]) + c1 * ramp[..., None]


def shapes_image(h: int = 128, w: int = 160, seed: int = 0, n_shapes: int = 10) -> Signal:
    """A natural-ish RGB uint8 test image: soft gradient background with a smooth texture, antialiased
    circles and rotated rectangles with colour ramps, light sensor-like grain."""
    h, w, n = _side("h", h), _side("w", w), _side("n_shapes", n_shapes) if n_shapes else 0
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5  # pixel centres
    canvas = _background(rng, h, w, yy, xx)
    canvas += 0.08 * _smooth_noise((h, w), rng, max(1.0, min(h, w) / 10))[..., None]
    for _ in range(n):
        _paint(canvas, yy, xx, _random_shape(rng, h, w))
    canvas += rng.normal(0.0, 1.0 / 255, canvas.shape)  # about one level of grain
    return Signal(_quantize(canvas, np.dtype(np.uint8)), kind="image")


def moving_shapes_video(t: int = 8, h: int = 48, w: int = 64, seed: int = 0, fps: float = 10.0) -> Signal:
    """uint8 (T, H, W, 3) clip: shapes gliding (and bouncing off the borders) over a still gradient background."""
    t, h, w = _side("t", t), _side("h", h), _side("w", w)
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps!r}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    background = _background(rng, h, w, yy, xx)
    shapes = [_random_shape(rng, h, w) for _ in range(3)]
    speeds = [rng.uniform(-0.08, 0.08, 2) * min(h, w) for _ in shapes]  # pixels per frame
    frames = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        canvas = background.copy()
        for s, (vy, vx) in zip(shapes, speeds, strict=True):
            moved = dict(s, cy=_bounce(s["cy"] + vy * i, h), cx=_bounce(s["cx"] + vx * i, w),
                         angle=s["angle"] + 0.05 * i)
            _paint(canvas, yy, xx, moved)
        frames[i] = _quantize(canvas, np.dtype(np.uint8))
    return Signal(frames, kind="video", metadata={"fps": float(fps)})


def _bounce(pos: float, size: int) -> float:
    """Reflect a position into [0, size] (a triangle wave)."""
    period = 2 * size
    p = pos % period
    return p if p <= size else period - p


# ---------------------------------------------------------------------------------------------- audio
def chirp_audio(seconds: float = 1.0, sr: int = 8000, seed: int = 0) -> Signal:
    """Speech-like int16 mono audio: voiced "syllables" (a gliding 100-260 Hz fundamental with harmonics shaped by
    moving formants) separated by short pauses, plus faint breath noise."""
    sr = _side("sr", sr)
    try:
        n = int(round(float(seconds) * sr))
    except (TypeError, ValueError):
        raise InputError(f"seconds must be a number, got {seconds!r}") from None
    if not 1 <= n <= 1 << 27:
        raise InputError(f"seconds*sr must give 1 to {1 << 27} samples, got {n}")
    rng = np.random.default_rng(seed)
    f0 = np.empty(n)
    envelope = np.zeros(n)
    formants = np.empty((n, 3))
    start = 0
    while start < n:  # lay out syllables: a voiced part with its own pitch glide and vowel, then a pause
        length = int(rng.uniform(0.12, 0.3) * sr)
        gap = int(rng.uniform(0.03, 0.09) * sr)
        stop = min(n, start + length)
        m = stop - start
        u = np.linspace(0, 1, max(m, 1), endpoint=False)[:m]
        f_start, f_end = rng.uniform(110, 240, 2)
        f0[start:stop] = f_start + (f_end - f_start) * u
        envelope[start:stop] = np.sin(np.pi * u) ** 0.6
        formants[start:stop] = rng.uniform([300, 900, 2200], [850, 2300, 3000])
        pause = slice(stop, min(n, stop + gap))
        f0[pause] = f0[stop - 1] if m else 150.0
        formants[pause] = formants[stop - 1] if m else (500, 1500, 2500)
        start = stop + gap
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = np.zeros(n)
    for k in range(1, int(0.45 * sr / 100) + 1):
        fk = k * f0
        peaks = sum(np.exp(-0.5 * ((fk - formants[:, j]) / (110 + 50 * j)) ** 2) / (j + 1) for j in range(3))
        gain = (0.2 + peaks) * (fk < 0.45 * sr) / k**0.7  # glottal roll-off plus formant peaks
        voice += gain * np.sin(k * phase)
    signal = voice * envelope + 0.01 * rng.standard_normal(n)
    signal *= 0.7 / max(np.abs(signal).max(), 1e-12)
    data = np.rint(signal * 32767).astype(np.int16)[:, None]
    return Signal(data, kind="audio", metadata={"sample_rate": int(sr)})


# ---------------------------------------------------------------------------------------------- registry
SAMPLES: dict[str, Callable[..., Signal]] = {
    "gradient": gradient,
    "checkerboard": checkerboard,
    "smooth_field": smooth_field,
    "shapes_image": shapes_image,
    "chirp_audio": chirp_audio,
    "moving_shapes_video": moving_shapes_video,
}


def make_sample(name: str, **kw) -> Signal:
    """Generate the sample ``name`` (a key of SAMPLES) with keyword arguments for its generator."""
    fn = SAMPLES.get(name)
    if fn is None:
        raise InputError(f"unknown sample {name!r} (available: {', '.join(sorted(SAMPLES))})")
    try:
        inspect.signature(fn).bind(**kw)
    except TypeError as exc:
        raise InputError(f"sample {name!r}: {exc}") from None
    return fn(**kw)
