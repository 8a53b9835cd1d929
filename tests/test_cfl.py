"""Chroma from luma (``image_dct`` format 7 with TOOL_CFL, session 26): the prediction against a per-element
integer reference, the decoded image through the compiled inverse against the numpy reference (the same
integers), sections with the tool decoding to what the encoder's closed loop made (8x8 blocks and 16x16 groups,
with and without the other tools), the encoder using it where chroma follows luma and not where it does not, and
damaged or hostile sections failing with FormatError only."""

from __future__ import annotations

import numpy as np
import pytest

from inrcodec.errors import FormatError
from inrcodec.models import image_dct, image_tx16
from inrcodec.models.mcdct import MAX_SYMBOL

from helpers import damaged
from test_signpred import _blur


def _prediction_reference(q, units, alpha, tx16):
    """``cfl_dequantised`` one coefficient at a time in Python integers."""
    c, by, bx, _ = q.shape
    per = image_dct._per_position(units)
    band = image_dct.cfl_bands()
    mask = image_tx16.block_mask(tx16, by, bx) if tx16 is not None else np.zeros((by, bx), bool)
    out = np.zeros(q.shape, np.int64)
    for y in range(by):
        for x in range(bx):
            lim = image_tx16.COEF_CLAMP if mask[y, x] else image_dct.COEF_CLAMP
            for p in range(64):
                lum = max(-lim, min(lim, int(q[0, y, x, p]) * int(per[0, p])))
                out[0, y, x, p] = lum
                for ch in (1, 2):
                    v = max(-lim, min(lim, int(q[ch, y, x, p]) * int(per[ch, p])))
                    v += (int(alpha[ch - 1, band[p]]) * lum + (1 << (image_dct.CFL_SHIFT - 1))) >> image_dct.CFL_SHIFT
                    out[ch, y, x, p] = max(-lim, min(lim, v))
    return out


@pytest.mark.parametrize("with_tx16", [False, True])
@pytest.mark.parametrize("extremes", [False, True])
def test_prediction_matches_the_integer_reference(with_tx16, extremes):
    """Small symbols take the decoder's fast path (int32, no clamp can act), extremes the general one (clamps)."""
    rng = np.random.default_rng(3)
    q = rng.integers(-40, 41, (3, 4, 6, 64)) * (rng.random((3, 4, 6, 64)) < 0.3)
    if extremes:
        q[:, 0, 0, :3] = [MAX_SYMBOL, -MAX_SYMBOL, 2000]  # beyond both clamps: the bounds hold
    units = np.array([[300, 350], [400, 420], [380, 500]]) // (1 if extremes else 6)
    alpha = np.array([[image_dct.CFL_MAX, -7, 3], [-image_dct.CFL_MAX, 0, 1]])
    tx16 = np.array([[True, False, True], [False, True, False]]) if with_tx16 else None
    got = image_dct.cfl_dequantised(q, units, alpha, tx16)
    assert got.dtype == (np.int64 if extremes else np.int32)
    np.testing.assert_array_equal(got, _prediction_reference(q, units, alpha, tx16))


def _correlated():
    """An image whose residual over its blurred copy has chroma detail that follows the luma detail (a coloured
    texture: each fine stripe brighter and redder together), as a photo's coloured edges."""
    yy, xx = np.mgrid[0:48, 0:64] / 20.0
    smooth = np.stack([np.sin(2 * xx + yy), np.cos(3 * yy - xx), np.sin(xx * yy)], -1) * 0.25 + 0.5
    detail = 0.1 * np.sin(11 * xx + 3 * yy) + 0.06 * np.sign(np.sin(7 * yy - 2 * xx))
    img = smooth + detail[..., None] * np.array([1.6, 0.9, 0.3])
    image = np.clip(img * 255, 0, 255).round().astype(np.uint8)
    base = np.clip(np.rint(_blur(image.astype(np.float64))), 0, 255).astype(np.uint8)
    return image, base


@pytest.mark.parametrize("rich,signs", [(True, "auto"), (False, "never"), (True, "always")])
@pytest.mark.parametrize("with_tx16,restoration", [(False, False), (True, True)])
def test_sections_decode_to_the_encoders_image(monkeypatch, rich, signs, with_tx16, restoration):
    monkeypatch.setattr(image_dct, "RICH_MODEL", rich)
    monkeypatch.setattr(image_dct, "SIGN_PREDICTION", signs)
    monkeypatch.setattr(image_dct, "CFL_GUARD", False)
    image, base = _correlated()
    raw = image_dct.raw_coefficients(image, base)
    raw16 = image_dct.raw_coefficients16(image, base) if with_tx16 else None
    blob, rec = image_dct.encode_residual(image, base, raw, raw16, 6.0, restoration=restoration,
                                          rdoq=image_dct.RDOQ_LAMBDA, prices="ctx", cfl="band")
    assert blob[0] == image_dct.FORMAT_TOOLS and blob[1] & image_dct.TOOL_CFL
    q, units, strength, flags, filters, cfl = image_dct.decode_parts(blob, *image.shape)
    assert cfl is not None and cfl.any()
    got = image_dct.add(base, q, units, strength, flags, filters, cfl)
    if filters is None:  # the encoder's closed loop (before the filters, which it returns without)
        np.testing.assert_array_equal(got, rec)
    # the prediction pays: fewer bytes and less error than the same encoder without it
    plain, rec0 = image_dct.encode_residual(image, base, raw, raw16, 6.0, restoration=restoration,
                                            rdoq=image_dct.RDOQ_LAMBDA, prices="ctx", cfl="off")
    err = [float(((a.astype(np.int64) - image) ** 2).sum()) for a in
           (got, image_dct.add(base, *image_dct.decode_parts(plain, *image.shape)))]
    lam = image_dct.GUARD_LAMBDA * 36.0 * 8
    assert err[0] + lam * len(blob) < err[1] + lam * len(plain)


def test_compiled_inverse_matches_the_numpy_reference(monkeypatch):
    """With chroma from luma the inverses take dequantised coefficients (steps of one sixteenth): the compiled
    kernels and the numpy references give the same image, 8x8 blocks and 16x16 groups."""
    from inrcodec.kernels import dct_residual

    image, base = _correlated()
    raw = image_dct.raw_coefficients(image, base)
    q, units, flags = image_dct.quantise_tx16(raw, image_dct.raw_coefficients16(image, base), 5.0)
    assert flags.any()
    alpha = np.array([[9, -4, 2], [-3, 5, 0]])
    fast = image_dct.add(base, q, units, 12, flags, cfl=alpha)
    monkeypatch.setattr(dct_residual, "inverse_add", lambda *a, **k: None)
    monkeypatch.setattr(dct_residual, "tx16_add", lambda *a, **k: False)
    monkeypatch.setattr(dct_residual, "deblock", lambda *a, **k: None)
    np.testing.assert_array_equal(image_dct.add(base, q, units, 12, flags, cfl=alpha), fast)
    assert not np.array_equal(image_dct.add(base, q, units, 12, flags), fast)  # the alphas change the image


def test_encoder_leaves_it_out_where_chroma_does_not_follow_luma():
    """A gray residual (chroma zero) gives no alphas; the default guard keeps the section without the tool where
    the tool does not pay."""
    image, base = _correlated()
    gray = np.repeat(image[..., 1:2], 3, axis=-1)
    gbase = np.repeat(base[..., 1:2], 3, axis=-1)
    raw = image_dct.raw_coefficients(gray, gbase)
    q, units = image_dct.quantise_raw(raw, 6.0)
    assert image_dct.cfl_fit(raw, q, units, mode="band") is None
    blob, _ = image_dct.encode_residual(gray, gbase, raw, None, 6.0, cfl="band")
    assert not (blob[0] == image_dct.FORMAT_TOOLS and blob[1] & image_dct.TOOL_CFL)


def test_damaged_and_hostile_sections_fail_cleanly(monkeypatch):
    monkeypatch.setattr(image_dct, "CFL_GUARD", False)
    image, base = _correlated()
    raw = image_dct.raw_coefficients(image, base)
    blob, _ = image_dct.encode_residual(image, base, raw, None, 6.0, cfl="band")
    assert blob[1] & image_dct.TOOL_CFL
    h, w, _ = image.shape
    for bad in (0x20, 0x80):  # unknown tool bits (0x04 is TOOL_SIGNS2 since session 26)
        with pytest.raises(FormatError, match="tools byte"):
            image_dct.decode_parts(blob[:1] + bytes([blob[1] | bad]) + blob[2:], h, w, 3)
    with pytest.raises(FormatError, match="tools byte"):  # the sign stream's form 2 without sign prediction
        image_dct.decode_parts(blob[:1] + bytes([blob[1] & ~image_dct.TOOL_SIGNS | image_dct.TOOL_SIGNS2]) + blob[2:],
                               h, w, 3)
    with pytest.raises(FormatError, match="gray image"):
        image_dct.decode_parts(blob, h, w, 1)
    # an alpha out of range: the alphas sit right before the sign stream / symbols, after the filter form byte
    q, units, strength, flags, filters, cfl = image_dct.decode_parts(blob, h, w, 3)
    head = image_dct.encode_section(q, units, strength, tx16=flags, cfl=cfl)
    assert head == blob
    at = blob.index(np.asarray(cfl, np.int8).tobytes())
    with pytest.raises(FormatError, match="alpha out of range"):
        image_dct.decode_parts(blob[:at] + bytes([image_dct.CFL_MAX + 1]) + blob[at + 1:], h, w, 3)
    with pytest.raises(FormatError):
        image_dct.decode_parts(blob[:at + 3], h, w, 3)
    rng = np.random.default_rng(2)
    cases = [blob[:n] for n in range(1, len(blob), max(1, len(blob) // 40))] + damaged(blob, rng, 150, first=1)
    for data in cases:
        try:
            parts = image_dct.decode_parts(data, h, w, 3)
        except FormatError:
            continue
        got = image_dct.add(base, *parts)
        assert got.shape == image.shape and got.dtype == np.uint8


def test_cfl_needs_three_channels_and_format_7():
    q = np.zeros((1, 2, 2, 64), np.int32)
    q[0, 0, 0, 0] = 3
    units = np.array([[96, 96]])
    with pytest.raises(ValueError):
        image_dct.encode_section(q, units, 12, cfl=np.zeros((2, 3), np.int64))
    q3 = np.zeros((3, 2, 2, 64), np.int32)
    q3[0, 0, 0, 0] = 3
    with pytest.raises(ValueError):
        image_dct.encode_section(q3, np.full((3, 2), 96), 12, form=image_dct.FORMAT, cfl=np.ones((2, 3), np.int64))
