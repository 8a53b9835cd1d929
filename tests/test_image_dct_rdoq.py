"""RD-optimised quantisation of the gaussian+dct residual (``image_dct.rdo_quantise``) on a generated residual:
it must lower the coded bytes more than it raises the error (that is its point), and stay an encoder choice that
the unchanged decoder reads (closed loop equal to the decoder's image)."""

from __future__ import annotations

import numpy as np

from inrcodec.models import image_dct


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth waves plus noise and stripes (8-bit RGB): dense residual texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / 20.0
    img = np.stack([np.sin(2 * xx + yy), np.cos(3 * yy - xx), np.sin(xx * yy)], -1) * 0.3 + 0.5
    img = img + 0.06 * np.sin(9 * xx)[..., None] + 0.04 * rng.standard_normal((h, w, 3))
    return np.clip(img * 255, 0, 255).round().astype(np.uint8)


def _coded(image, base, step, rdoq):
    raw = image_dct.raw_coefficients(image, base)
    q, units = image_dct.quantise_raw(raw, step, rdoq=rdoq)
    blob = image_dct.encode_section(q, units, image_dct.DEBLOCK_STRENGTH)
    rec = image_dct.add(base, q, units, image_dct.DEBLOCK_STRENGTH)
    return q, blob, rec


def _sse(a, b):
    return float(np.sum((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_rdoq_trades_bytes_for_error_at_its_lambda():
    image = textured(96, 128, seed=3)
    base = ((image.astype(np.float64) + textured(96, 128, seed=9)) / 2).astype(np.uint8)
    step = 6.0
    q0, blob0, rec0 = _coded(image, base, step, 0.0)
    q1, blob1, rec1 = _coded(image, base, step, image_dct.RDOQ_LAMBDA)
    assert np.all(np.abs(q1) <= np.abs(q0) + 1)  # plain rounding or below, where the dead zone rounds at 0.65
    assert not np.array_equal(q0, q1)
    # what it changes is worth it: rdo_quantise's weighted error (luma step^2 units) is the RGB squared error
    # / step^2 (orthonormal DCT), so its cost is SSE + lambda x step^2 x bits, measured here on the real bytes and
    # the decoded image (deblocking included): it must fall (measured: -2.3 % here)
    lam = image_dct.RDOQ_LAMBDA * step**2
    j0 = _sse(image, rec0) + lam * 8 * len(blob0)
    j1 = _sse(image, rec1) + lam * 8 * len(blob1)
    assert j1 < j0


def test_rdoq_symbols_decode_to_the_encoders_image():
    image = textured(40, 56, seed=1)
    base = np.full_like(image, 120)
    q, blob, rec = _coded(image, base, 4.0, image_dct.RDOQ_LAMBDA)
    dq, units, strength, _ = image_dct.decode_section(blob, 40, 56, 3)
    assert np.array_equal(dq, q) and np.array_equal(image_dct.add(base, dq, units, strength), rec)


def test_band_truncation_removes_a_lone_high_band_symbol():
    """A block whose only high-band symbol is barely above the dead zone: the zeros of every band below it cost
    more than the error it removes, so the truncation drops it; a large one stays."""
    coef = np.zeros((1, 4, 4, 64))
    coef[..., 0] = 5.0  # every block codes its DC
    coef[0, 0, 0, 60] = 1.2  # lone, small, in the last band
    coef[0, 1, 1, 60] = 9.0  # lone, large
    q0 = image_dct.mcdct.dead_zone_quantise(coef, image_dct.DEAD_ZONE)
    q = image_dct.rdo_quantise(coef, q0, image_dct.RDOQ_LAMBDA)
    assert q0[0, 0, 0, 60] == 1 and q[0, 0, 0, 60] == 0
    assert q[0, 1, 1, 60] == 9 and np.all(q[..., 0] == 5)
