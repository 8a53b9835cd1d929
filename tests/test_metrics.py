import math

import numpy as np
import pytest

from inrcodec import metrics as M
from inrcodec.errors import InputError


def _smooth_rgb(h=64, w=96, seed=0):
    """Smooth colour field with one hard edge: enough structure for SSIM to react to noise."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack(
        [128 + 100 * np.sin(x / 9) * np.cos(y / 13), 128 + 90 * np.cos((x + y) / 17), ((x + 2 * y) > 90) * 160 + 40],
        axis=-1,
    )
    return np.clip(img, 0, 255).astype(np.uint8)


# -- PSNR / MSE / errors -------------------------------------------------------------------------------------------
def test_psnr_uint8_offset_one():
    ref = np.full((8, 8, 3), 100, np.uint8)
    # MSE = 1, peak 255: 10*log10(255^2) = 48.1308 dB
    assert M.mse(ref, ref + 1) == 1.0
    assert M.psnr(ref, ref + 1) == pytest.approx(48.1308036, abs=1e-6)


def test_psnr_uint16_uses_16bit_peak():
    ref = np.full((4, 5), 30000, np.uint16)
    # offset 1 -> 20*log10(65535) = 96.3295 dB; offset 257 is the 8-bit "1" scaled up -> the 8-bit figure again
    assert M.psnr(ref, ref + 1) == pytest.approx(96.329466, abs=1e-5)
    assert M.psnr(ref, ref + 257) == pytest.approx(48.1308036, abs=1e-6)


def test_psnr_no_uint8_wraparound():
    ref = np.array([[0, 255]], np.uint8)
    test = np.array([[255, 0]], np.uint8)
    # an unsigned difference would wrap; float64 gives MSE 255^2 -> 0 dB
    assert M.psnr(ref, test) == pytest.approx(0.0, abs=1e-12)


def test_psnr_float_peak_is_reference_range_unless_given():
    ref = np.linspace(-1.0, 1.0, 100, dtype=np.float32).reshape(10, 10, 1)
    test = ref + np.float32(0.02)
    # range 2, error 0.02 -> 20*log10(100) = 40 dB; with peak 1 -> 20*log10(50)
    assert M.psnr(ref, test) == pytest.approx(40.0, abs=1e-4)
    assert M.psnr(ref, test, peak=1.0) == pytest.approx(20 * math.log10(50), abs=1e-4)


def test_psnr_identical_is_inf_and_bad_input_raises():
    a = _smooth_rgb(8, 8)
    assert M.psnr(a, a.copy()) == math.inf
    with pytest.raises(InputError):
        M.psnr(a, a[:, :4])
    with pytest.raises(InputError):
        M.psnr(np.zeros((4, 4), np.float32), np.ones((4, 4), np.float32))  # constant float ref: no peak


def test_nan_in_reference_is_masked():
    ref = np.array([1.0, np.nan, 3.0, 5.0])
    test = np.array([1.5, 1e9, 3.0, 5.0])
    assert M.mse(ref, test) == pytest.approx(0.25 / 3)
    assert M.max_abs_error(ref, test) == 0.5
    # peak = range of finite values = 4
    assert M.psnr(ref, test) == pytest.approx(10 * math.log10(16 / (0.25 / 3)))


def test_max_abs_and_relative_error():
    ref = np.array([[0.0, 10.0], [2.0, 4.0]])
    test = ref + np.array([[0.1, -0.3], [0.0, 0.2]])
    assert M.max_abs_error(ref, test) == pytest.approx(0.3)
    assert M.relative_max_error(ref, test) == pytest.approx(0.03)
    u = np.array([0, 200], np.uint8)
    assert M.max_abs_error(u, np.array([5, 190], np.uint8)) == 10.0
    assert M.relative_max_error(u, np.array([5, 190], np.uint8)) == pytest.approx(10 / 255)
    assert M.max_abs_error(ref, np.where(ref > 5, np.nan, ref)) == math.inf  # NaN in the decoded data is an error


# -- MS-SSIM -------------------------------------------------------------------------------------------------------
def test_ms_ssim_identical_is_one_and_falls_with_noise():
    rng = np.random.default_rng(1)
    img = _smooth_rgb()
    assert M.ms_ssim(img, img) == pytest.approx(1.0, abs=1e-6)
    vals = []
    for sigma in (2, 6, 15, 40):
        noisy = np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)
        vals.append(M.ms_ssim(img, noisy))
    assert all(0 < v < 1 for v in vals)
    assert vals == sorted(vals, reverse=True) and vals[0] - vals[-1] > 0.1


def test_ms_ssim_standard_size_matches_pytorch_msssim_and_own_loop():
    torch = pytest.importorskip("torch")
    from pytorch_msssim import ms_ssim as pm

    rng = np.random.default_rng(2)
    img = _smooth_rgb(170, 180)
    noisy = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    # reference: the library itself in float64 on the raw 0..255 values
    x = torch.from_numpy(img.astype(np.float64).transpose(2, 0, 1))[None]
    y = torch.from_numpy(noisy.astype(np.float64).transpose(2, 0, 1))[None]
    expected = float(pm(x, y, data_range=255))
    # ours runs in float32 on values divided by 255. The variance terms (E[x^2] - mu^2) lose ~1e-7 absolute; on the
    # flat patches of this synthetic image that moves MS-SSIM by ~1.5e-5 (on Kodak photos by ~3e-8). 5e-5 allows
    # that and is still 200x smaller than the step between two noise levels in the test above.
    assert M.ms_ssim(img, noisy) == pytest.approx(expected, abs=5e-5)
    # the reduced-scale path is the same computation: with all 5 scales it must agree with the library
    assert M._ms_ssim_levels(x, y, 255.0, 5, 11) == pytest.approx(expected, abs=1e-9)


def test_ms_ssim_small_image_plan_and_dtype_range():
    assert M._ms_ssim_plan(161) == (5, 11)
    assert M._ms_ssim_plan(160) == (4, 11)  # coarsest scale would be 10 px < window
    assert M._ms_ssim_plan(64) == (3, 11)
    assert M._ms_ssim_plan(10) == (1, 9)
    with pytest.raises(InputError):
        M._ms_ssim_plan(2)
    rng = np.random.default_rng(3)
    img = _smooth_rgb(40, 50)
    noisy = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
    v8 = M.ms_ssim(img, noisy)
    # the same picture as uint16 (x257) must score the same: data_range follows the dtype
    v16 = M.ms_ssim(img.astype(np.uint16) * 257, noisy.astype(np.uint16) * 257)
    assert v16 == pytest.approx(v8, abs=1e-6)  # float32 rounding only
    assert M.ms_ssim(img[..., 0], noisy[..., 0]) < 1  # gray (H, W) accepted
    with pytest.raises(InputError):
        M.ms_ssim(img[:2], noisy[:2])


# -- bpp -----------------------------------------------------------------------------------------------------------
def test_bpp():
    assert M.bpp(49152, 512 * 768) == 1.0
    assert M.bpp(1000, 512 * 768) == pytest.approx(8000 / 393216)
    with pytest.raises(InputError):
        M.bpp(10, 0)


# -- Bjøntegaard ---------------------------------------------------------------------------------------------------
RATES = np.array([0.25, 0.5, 1.0, 2.0])
PSNRS = np.array([28.0, 31.0, 34.5, 38.0])


def _curve(scale=1.0, shift=0.0):
    return [(float(r * scale), float(p + shift)) for r, p in zip(RATES, PSNRS)]


def test_bd_rate_identity_and_constant_scalings():
    a = _curve()
    assert M.bd_rate(a, a) == pytest.approx(0.0, abs=1e-9)
    assert M.bd_rate(a, _curve(0.9)) == pytest.approx(-10.0, abs=1e-6)
    assert M.bd_rate(a, _curve(2.0)) == pytest.approx(100.0, abs=1e-6)
    assert M.bd_rate(_curve(2.0), a) == pytest.approx(-50.0, abs=1e-6)


def test_bd_rate_uses_overlap_interval():
    # log-rate of a is an exact cubic in PSNR; b adds 0.1*(psnr-33) and covers a shifted PSNR range. The fits are
    # exact, so BD-rate = exp(mean of 0.1*(p-33) over the overlap [32, 38]) - 1 = exp(0.2) - 1.
    def logr(p):
        return -3 + 0.2 * (p - 30) + 0.01 * (p - 30) ** 2 - 0.0005 * (p - 30) ** 3

    pa = np.array([30.0, 32, 34, 36, 38])
    pb = np.array([32.0, 34, 36, 38, 40])
    a = [(math.exp(logr(p)), p) for p in pa]
    b = [(math.exp(logr(p) + 0.1 * (p - 33)), p) for p in pb]
    assert M.bd_rate(a, b) == pytest.approx((math.exp(0.2) - 1) * 100, abs=1e-6)


def test_bd_rate_three_points_and_curve_forms():
    a, b = _curve()[:3], _curve(0.9)[:3]
    assert M.bd_rate(a, b) == pytest.approx(-10.0, abs=1e-6)
    as_dicts = [{"bpp": r, "psnr": p} for r, p in _curve(0.9)]
    as_columns = {"bpp": [r for r, _ in _curve(0.9)], "psnr": [p for _, p in _curve(0.9)]}
    assert M.bd_rate(_curve(), as_dicts) == pytest.approx(-10.0, abs=1e-6)
    assert M.bd_rate(_curve(), as_columns) == pytest.approx(-10.0, abs=1e-6)
    assert M.bd_rate(np.array(_curve()), list(reversed(_curve(0.9)))) == pytest.approx(-10.0, abs=1e-6)


def test_bd_rate_rejects_unusable_curves():
    a = _curve()
    with pytest.raises(InputError, match="at least 3"):
        M.bd_rate(a, a[:2])
    with pytest.raises(InputError, match="overlap"):
        M.bd_rate(a, _curve(shift=20))
    with pytest.raises(InputError, match="finite"):
        M.bd_rate(a, a[:3] + [(4.0, math.inf)])
    with pytest.raises(InputError, match="positive"):
        M.bd_rate(a, [(0.0, 27.0)] + a[1:])


def test_bd_psnr():
    a = _curve()
    assert M.bd_psnr(a, a) == pytest.approx(0.0, abs=1e-9)
    assert M.bd_psnr(a, _curve(shift=1.0)) == pytest.approx(1.0, abs=1e-6)
    assert M.bd_psnr(a, _curve(shift=-0.5)) == pytest.approx(-0.5, abs=1e-6)
    # fewer bits at the same PSNR means higher PSNR at the same rate
    assert M.bd_psnr(a, _curve(0.8)) > 0
    with pytest.raises(InputError, match="overlap"):
        M.bd_psnr(a, _curve(10.0))
