"""The compiled inverse of the image DCT residual (``kernels.dct_residual``) against its numpy reference
(``image_dct._inverse_add_reference``), and the compiled deblocking filter against ``deblock.deblock``:
bit-identical, since both compute exact integers (no tolerance).

Inputs: random symbols of every magnitude class (mostly zero like a real residual, plus the extremes
|q| = MAX_SYMBOL with the largest step, where the coefficient clamp binds), 8- and 16-bit bases at and near the clip
limits, gray and RGB, sizes that are not whole blocks, one and two threads; and a real decode path (``add``) with
the library hidden, which must give the same image.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inrcodec.kernels import _loader, dct_residual
from inrcodec.models import deblock, image_dct, mcdct

needs_kernel = pytest.mark.skipif(_loader.cpu_library() is None, reason="compiled CPU library unavailable")


@pytest.fixture(params=["dispatch", "portable"])
def isa(request, monkeypatch):
    """Each kernel test runs on the copy the CPU dispatch picks (AVX2 where there is one) and on the portable one,
    with OpenMP threads even on these small images (as large ones get them)."""
    if request.param == "portable":
        monkeypatch.setenv("INRCODEC_DCT_PORTABLE", "1")
    monkeypatch.setattr(dct_residual, "PARALLEL_MIN_PIXELS", 0)
    return request.param


def _case(rng, h, w, c, dtype, extreme=False):
    by, bx = -(-h // 8), -(-w // 8)
    q = np.zeros((c, by, bx, 64), np.int16)
    live = rng.random((c, by, bx, 64)) < np.linspace(0.6, 0.02, 64)  # low frequencies coded more often
    mags = rng.geometric(0.4, size=live.shape)
    if extreme:
        mags = np.where(rng.random(live.shape) < 0.3, mcdct.MAX_SYMBOL, mags)
    q[live] = (mags * rng.choice([-1, 1], size=live.shape))[live].astype(np.int16)
    q[:, rng.random((by, bx)) < 0.2] = 0  # whole blocks without residual
    top = np.iinfo(dtype).max
    units = rng.integers(1, image_dct.MAX_UNITS + 1, size=(c, 2)) if extreme else rng.integers(8, 300, size=(c, 2))
    base = rng.integers(0, top + 1, size=(h, w, c)).astype(dtype)
    base[rng.random((h, w)) < 0.2] = top  # clipping at both ends
    base[rng.random((h, w)) < 0.2] = 0
    return base, q, units.astype(np.int64)


def _kernel(base, q, units):
    return dct_residual.inverse_add(base, q, image_dct._per_position(units), mcdct._zigzag(), mcdct.T8,
                                    image_dct.COEF_CLAMP, image_dct.STAGE1_SHIFT, image_dct.STAGE2_SHIFT,
                                    image_dct._level(base.dtype))


@needs_kernel
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("extreme", [False, True])
def test_kernel_matches_reference(dtype, c, extreme, isa):
    rng = np.random.default_rng(c * 10 + extreme + (dtype == np.uint16) * 100)
    changed = 0
    for h, w in ((64, 96), (37, 53), (8, 8), (1, 17)):
        base, q, units = _case(rng, h, w, c, dtype, extreme)
        ref = image_dct._inverse_add_reference(base, q, units)
        for threads in (1, 2):
            old = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                got = _kernel(base, q, units)
            finally:
                torch.set_num_threads(old)
            assert got is not None and got.dtype == base.dtype
            np.testing.assert_array_equal(got, ref)
        changed += int(np.count_nonzero(ref != base))
    assert changed > 1000  # the residual did something (the test can fail)


@needs_kernel
def test_kernel_takes_int32_symbols_and_refuses_beyond_int16():
    rng = np.random.default_rng(5)
    base, q, units = _case(rng, 40, 24, 3, np.uint8)
    np.testing.assert_array_equal(_kernel(base, q.astype(np.int32), units),
                                  image_dct._inverse_add_reference(base, q, units))
    big = q.astype(np.int32)
    big[0, 0, 0, 0] = 1 << 16
    assert _kernel(base, big, units) is None  # the caller falls back to the reference


def test_add_without_library_is_the_same_image(monkeypatch):
    rng = np.random.default_rng(7)
    base, q, units = _case(rng, 48, 72, 3, np.uint8)
    with_lib = image_dct.add(base, q, units, image_dct.DEBLOCK_STRENGTH)
    monkeypatch.setattr(_loader, "cpu_library", lambda: None)
    assert _kernel(base, q, units) is None
    np.testing.assert_array_equal(image_dct.add(base, q, units, image_dct.DEBLOCK_STRENGTH), with_lib)


@needs_kernel
@pytest.mark.parametrize("c", [1, 3])
def test_deblock_kernel_matches_reference(c, isa):
    rng = np.random.default_rng(20 + c)
    filtered = 0
    for h, w in ((64, 96), (37, 53), (9, 9), (8, 17), (3, 40)):
        by, bx = -(-h // 8), -(-w // 8)
        # a blocky image: flat 8x8 blocks plus noise, so edges fall inside the filter's thresholds
        flat = rng.integers(0, 256, size=(by, bx, c))
        img = np.repeat(np.repeat(flat, 8, 0), 8, 1)[:h, :w] + rng.integers(-3, 4, size=(h, w, c))
        img = np.clip(img, 0, 255).astype(np.uint8)
        coded = rng.random((by, bx)) < 0.7
        for step, strength in ((16 * 8, 12), (16 * 40, 12), (16 * 200, 64), (3, 1)):
            alpha, beta, tc = deblock.thresholds(step, strength)
            rgb = img if c == 3 else np.repeat(img, 3, axis=-1)
            ref = deblock.deblock(rgb, coded, step, strength)
            ref = ref if c == 3 else ref[..., :1]
            for threads in (1, 2):
                old = torch.get_num_threads()
                torch.set_num_threads(threads)
                try:
                    got = dct_residual.deblock(img, coded, alpha, beta, tc)
                finally:
                    torch.set_num_threads(old)
                np.testing.assert_array_equal(got, ref)
            filtered += int(np.count_nonzero(ref != img))
    assert filtered > 500  # the filter changed pixels (the test can fail)
