"""inrcodec.samples generators and the committed files in scenes/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from inrcodec.errors import InputError
from inrcodec.samples import (
    SAMPLES, checkerboard, chirp_audio, gradient, make_sample, moving_shapes_video, shapes_image, smooth_field,
)
from inrcodec.signals import load

SCENES = Path(__file__).resolve().parents[1] / "scenes"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_is_deterministic_and_seed_dependent(name):
    a, b = make_sample(name), make_sample(name)
    assert np.array_equal(a.data, b.data) and a.kind == b.kind and a.metadata == b.metadata
    if "seed" in SAMPLES[name].__code__.co_varnames:
        assert not np.array_equal(a.data, make_sample(name, seed=1).data)


@pytest.mark.parametrize("channels, dtype", [(1, "uint8"), (3, "uint8"), (1, "uint16"), (3, "uint16")])
def test_gradient(channels, dtype):
    sig = gradient(9, 17, channels=channels, dtype=dtype)
    top = np.iinfo(dtype).max
    assert sig.kind == "image" and sig.data.shape == (9, 17, channels) and sig.dtype == np.dtype(dtype)
    plane = sig.data[..., 0].astype(int)
    assert plane[0, 0] == 0 and plane[-1, -1] == top
    assert np.all(np.diff(plane, axis=1) >= 0) and np.all(np.diff(plane, axis=0) >= 0)  # monotone ramps
    if channels == 3:
        assert np.all(sig.data[:, :, 0] == sig.data[0:1, :, 0])  # red follows x only
        assert np.all(sig.data[:, :, 1] == sig.data[:, 0:1, 1])  # green follows y only


def test_checkerboard():
    sig = checkerboard(10, 12, cell=3)
    d = sig.data[..., 0]
    assert sig.data.shape == (10, 12, 1) and set(np.unique(d)) == {0, 255}
    assert d[0, 0] == 0 and d[0, 3] == 255 and d[3, 0] == 255 and d[3, 3] == 0 and d[2, 2] == 0
    assert checkerboard(4, 4, 1, channels=3).data.shape == (4, 4, 3)


@pytest.mark.parametrize("shape, kind", [(200, "audio"), ((40, 48), "array"), ((12, 16, 20), "volume")])
def test_smooth_field(shape, kind):
    sig = smooth_field(shape, seed=4)
    dims = (shape,) if np.isscalar(shape) else shape
    f = sig.data[..., 0].astype(np.float64)
    assert sig.kind == kind and sig.data.shape == tuple(dims) + (1,) and sig.dtype == np.float32
    assert np.abs(f).max() == pytest.approx(1.0) and abs(f.mean()) < 1e-5  # scaled to peak 1, zero mean
    # White noise through a Gaussian of std s (default s = shortest axis / 8) has neighbour correlation
    # exp(-1 / (4 s^2)) along every axis; white noise itself would give ~0.
    s = max(1.0, min(dims) / 8)
    for axis in range(f.ndim):
        a = np.moveaxis(f, axis, 0)
        corr = np.corrcoef(a[:-1].ravel(), a[1:].ravel())[0, 1]
        assert corr == pytest.approx(np.exp(-1 / (4 * s**2)), abs=0.06), (axis, corr)


def test_smooth_field_length_controls_smoothness():
    def roughness(length):
        f = smooth_field((64, 64), seed=0, length=length).data[..., 0]
        return np.abs(np.diff(f, axis=1)).mean()

    assert roughness(2.0) > 2 * roughness(8.0)


def test_shapes_image_is_natural_ish():
    sig = shapes_image(64, 96, seed=2)
    d = sig.data
    assert sig.kind == "image" and d.shape == (64, 96, 3) and d.dtype == np.uint8
    assert d.std() > 10  # not flat
    assert len(np.unique(d.reshape(-1, 3), axis=0)) > 1000  # ramps, texture, grain: many colours
    # Antialiased edges: large jumps between neighbours are rare (shape borders), most steps are small.
    steps = np.abs(np.diff(d.astype(int), axis=1)).max(axis=-1)
    assert np.mean(steps <= 8) > 0.8 and steps.max() > 40


def test_chirp_audio_is_speech_like():
    sig = chirp_audio(2.0, 8000, seed=0)
    x = sig.data[:, 0].astype(np.float64)
    assert sig.kind == "audio" and sig.data.shape == (16000, 1) and sig.dtype == np.int16
    assert sig.metadata == {"sample_rate": 8000}
    assert np.abs(x).max() == pytest.approx(0.7 * 32767, abs=1)
    # Energy sits in the voice band, not below 80 Hz.
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / 8000)
    assert power[(freqs >= 80) & (freqs <= 3600)].sum() > 0.95 * power.sum()
    # Syllables and pauses: some 20 ms windows are near silent, many are loud.
    rms = np.sqrt((x[: 16000 // 160 * 160].reshape(-1, 160) ** 2).mean(axis=1))
    assert np.mean(rms < 0.05 * rms.max()) > 0.05 and np.mean(rms > 0.3 * rms.max()) > 0.4


def test_moving_shapes_video():
    sig = moving_shapes_video(6, 24, 32, seed=1, fps=12)
    v = sig.data
    assert sig.kind == "video" and v.shape == (6, 24, 32, 3) and v.dtype == np.uint8
    assert sig.metadata == {"fps": 12.0}
    diffs = [np.abs(v[i + 1].astype(int) - v[i]).sum() for i in range(5)]
    assert min(diffs) > 0  # every frame moves
    # ...but the background stays: most pixels change little from frame to frame
    assert np.mean(np.abs(v[1].astype(int) - v[0]) <= 2) > 0.5


@pytest.mark.parametrize(
    "name, kw",
    [
        ("nope", {}),
        ("gradient", {"h": 0}),
        ("gradient", {"h": 2.5}),
        ("gradient", {"colour": "red"}),
        ("gradient", {"dtype": "float32"}),
        ("checkerboard", {"channels": 2}),
        ("smooth_field", {"shape": (2, 2, 2, 2)}),
        ("smooth_field", {"shape": (8, 8), "length": -1}),
        ("chirp_audio", {"seconds": 0}),
        ("moving_shapes_video", {"fps": 0}),
    ],
)
def test_bad_sample_requests_are_input_errors(name, kw):
    with pytest.raises(InputError):
        make_sample(name, **kw)


def _make_scenes_module():
    spec = importlib.util.spec_from_file_location("make_scenes", SCENES / "make_scenes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_scenes_match_the_generators(tmp_path):
    mod = _make_scenes_module()
    assert mod.main(tmp_path) == 0
    total = 0
    for name in mod.SCENES:
        committed, fresh = load(SCENES / name), load(tmp_path / name)
        assert committed.kind == fresh.kind and committed.metadata == fresh.metadata
        assert committed.dtype == fresh.dtype and np.array_equal(committed.data, fresh.data), name
    total = sum(p.stat().st_size for p in SCENES.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert total < 300_000


def test_scene_contents():
    assert load(SCENES / "shapes_128x160.png").data.shape == (128, 160, 3)
    g = load(SCENES / "gradient_gray16_64x64.png")
    assert g.data.shape == (64, 64, 1) and g.dtype == np.uint16 and g.metadata["bit_depth"] == 16
    assert load(SCENES / "field_64x64_f32.npy").data.shape == (64, 64, 1)
    assert load(SCENES / "field_16x32x32_f32le.raw").kind == "volume"
    a = load(SCENES / "chirp_8k.wav")
    assert a.metadata["sample_rate"] == 8000 and a.data.shape == (8000, 1)
