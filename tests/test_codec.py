"""End to end through the Python API: fit, rate control, decode with the input's shape and dtype."""

import numpy as np
import pytest

from inrcodec import Signal, compress, decompress
from inrcodec.codec import InrCodec
from inrcodec.errors import FormatError, InputError
from inrcodec.metrics import psnr

from helpers import smooth_rgb


@pytest.fixture(scope="module")
def rgb_signal():
    return Signal(smooth_rgb(48, 64))


def test_bpp_target_lands_within_ten_percent(rgb_signal):
    res = compress(rgb_signal, "fourier", bpp=2.0, steps=150, seed=0)
    size_bpp = 8 * len(res.data) / (48 * 64)
    assert res.report["bpp"] == pytest.approx(size_bpp)
    assert 0.9 * 2.0 <= size_bpp <= 2.0 * 1.0001
    out = decompress(res.data)
    assert out.data.shape == (48, 64, 3) and out.dtype == np.uint8
    # The report's PSNR is measured on the decoded 8-bit output, like any user would.
    assert res.report["psnr"] == pytest.approx(psnr(rgb_signal.data, out.data), abs=1e-9)
    # It learned the image: clearly better than the best constant image (the per-channel mean).
    mean_image = np.broadcast_to(rgb_signal.data.mean(axis=(0, 1)).round(), rgb_signal.data.shape)
    assert res.report["psnr"] > psnr(rgb_signal.data, mean_image.astype(np.uint8)) + 3


def test_seed_makes_fit_reproducible(rgb_signal):
    a = compress(rgb_signal, "fourier", bpp=1.5, steps=40, seed=3).data
    b = compress(rgb_signal, "fourier", bpp=1.5, steps=40, seed=3).data
    assert a == b


def test_psnr_target_reached_or_best_reported(rgb_signal):
    res = compress(rgb_signal, "fourier", psnr=24.0, steps=200, seed=0)
    decoded = decompress(res.data)
    reached = psnr(rgb_signal.data, decoded.data)
    assert res.report["target_met"] == (reached >= 24.0)
    assert reached >= 24.0


def test_max_error_is_guaranteed_for_floats():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:24, 0:32] / 16.0
    field = (np.sin(3 * x) * np.cos(2 * y) * 50 + rng.normal(0, 0.5, x.shape)).astype(np.float32)
    sig = Signal(field[..., None], kind="array")
    res = compress(sig, "fourier", max_error=0.25, steps=60)
    out = decompress(res.data)
    assert out.dtype == np.float32 and out.data.shape == (24, 32, 1)
    assert np.max(np.abs(out.data.astype(np.float64) - field[..., None])) <= 0.25 * (1 + 1e-6)


def test_max_error_relative_and_integers():
    img = smooth_rgb(20, 24, seed=2)
    res = compress(Signal(img), "fourier", max_error=0.01, relative=True, steps=30)
    out = decompress(res.data)
    assert np.max(np.abs(out.data.astype(int) - img.astype(int))) <= 2.55
    lossless = decompress(compress(Signal(img), "fourier", max_error=0.4, steps=10).data)
    assert np.array_equal(lossless.data, img)


def test_sixteen_bit_gray_stays_sixteen_bit():
    y, x = np.mgrid[0:32, 0:40]
    img = ((np.sin(x / 6) * np.cos(y / 9) * 0.45 + 0.5) * 65535).astype(np.uint16)[..., None]
    out = decompress(compress(Signal(img), "fourier", bpp=4.0, steps=150).data)
    assert out.dtype == np.uint16 and out.data.shape == (32, 40, 1)
    # 16-bit peak; far better than the constant image (which scores ~9 dB here).
    mean_image = np.full_like(img, int(img.mean()))
    assert psnr(img, out.data) > psnr(img, mean_image) + 10


def test_decode_at_other_size_and_region(rgb_signal):
    data = compress(rgb_signal, "fourier", bpp=2.0, steps=60).data
    big = decompress(data, shape=(96, 128))
    assert big.data.shape == (96, 128, 3) and big.dtype == np.uint8
    full = decompress(data)
    crop = decompress(data, region=((10, 30), (5, 25)))
    # A region render evaluates exactly the same coordinates as the full render.
    assert np.array_equal(crop.data, full.data[10:30, 5:25])


def test_unknown_model_and_conflicting_targets(rgb_signal):
    with pytest.raises(InputError, match="unknown model"):
        compress(rgb_signal, "nonsense")
    with pytest.raises(InputError):
        compress(rgb_signal, "fourier", bpp=1.0, psnr=30.0)


def test_corrupt_payload_is_a_format_error(rgb_signal):
    data = bytearray(compress(rgb_signal, "fourier", bpp=1.0, steps=5).data)
    data[-3] ^= 0xFF
    with pytest.raises(FormatError):
        decompress(bytes(data))


def test_numcodecs_shaped_codec_round_trips_arrays():
    codec = InrCodec(model="fourier", max_error=0.05, steps=50)
    arr = np.linspace(0, 1, 300, dtype=np.float32).reshape(15, 20) ** 2
    enc = codec.encode(arr)
    dec = codec.decode(enc)
    assert dec.shape == arr.shape and dec.dtype == arr.dtype
    assert np.max(np.abs(dec - arr)) <= 0.05 * (1 + 1e-6)
    assert InrCodec.from_config(codec.get_config()).get_config() == codec.get_config()


def test_time_budget_without_steps_is_the_schedule(monkeypatch):
    """--time-budget alone runs the fit until the budget is spent (past the model's default step count);
    --steps caps it."""
    from inrcodec.models.fourier import FourierMLP

    monkeypatch.setattr(FourierMLP, "default_steps", 3)
    sig = Signal(smooth_rgb(12, 16, seed=2))
    assert compress(sig, "fourier", bpp=8).report["fit_steps"] == 3
    assert compress(sig, "fourier", bpp=8, time_budget=1.0).report["fit_steps"] > 3
    assert compress(sig, "fourier", bpp=8, time_budget=30.0, steps=4).report["fit_steps"] == 4
