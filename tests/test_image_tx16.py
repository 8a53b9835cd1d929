"""16x16 transforms of 2x2 block groups in ``image_dct``'s residual (section format 4, ``image_tx16``)."""

from __future__ import annotations

import numpy as np
import pytest

from inrcodec.entropy._bytes import varint
from inrcodec.errors import FormatError
from inrcodec.models import image_dct, image_tx16, mcdct


def _reference_inverse(deq: np.ndarray) -> np.ndarray:
    """The integer inverse in int64 with arithmetic shifts: what ``inverse_groups`` must equal exactly."""
    t = image_tx16.t16()
    a = deq.astype(np.int64) @ t
    a = (a + (1 << (image_tx16.SHIFT1 - 1))) >> image_tx16.SHIFT1
    b = np.einsum("uy,nux->nyx", t, a)
    return (b + (1 << (image_tx16.SHIFT2 - 1))) >> image_tx16.SHIFT2


def test_matrix_is_hevcs_rounded_dct():
    t = image_tx16.t16()
    assert np.abs(t - 256 * image_tx16.forward_matrix()).max() < 1.5  # the rounding (25 for 26.3: HEVC's)
    assert np.array_equal(t[2::2, :8], mcdct.T8[1:])  # even rows: the 8-point matrix, as in HEVC
    assert list(t[1, :8]) == [90, 87, 80, 70, 57, 43, 25, 9]
    gram = t @ t.T
    assert np.abs(gram - np.diag(np.diag(gram))).max() < 0.003 * gram[0, 0]  # nearly orthogonal (HEVC: 0.29 %)


def test_inverse_is_exact_integer_arithmetic():
    rng = np.random.default_rng(3)
    deq = rng.integers(-image_tx16.COEF_CLAMP, image_tx16.COEF_CLAMP + 1, (40, 16, 16))
    deq[0] = image_tx16.COEF_CLAMP  # the extremes the clamp allows
    deq[1] = -image_tx16.COEF_CLAMP
    deq[2] = image_tx16.COEF_CLAMP * np.sign(image_tx16.t16())  # every product of one sign
    np.testing.assert_array_equal(image_tx16.inverse_groups(deq.astype(np.float64)), _reference_inverse(deq))
    # and it is the DCT's inverse, to the integer matrix's accuracy: 1/16-level coefficients -> 1/4 levels
    d = image_tx16.forward_matrix()
    small = rng.integers(-400, 400, (8, 16, 16)) * 16
    ref = np.einsum("ui,nuv,vj->nij", d, small.astype(np.float64), d) / 4
    got = image_tx16.inverse_groups(small.astype(np.float64))
    assert np.sqrt(np.mean((got - ref) ** 2)) < 0.02 * np.sqrt(np.mean(ref**2))


def test_quadrant_layout_round_trip():
    rng = np.random.default_rng(0)
    c16 = rng.normal(size=(3, 2, 3, 16, 16))
    b = image_tx16.to_blocks(c16)
    assert b.shape == (3, 4, 6, 64)
    np.testing.assert_array_equal(image_tx16.from_blocks(b), c16)
    assert b[0, 0, 1, 0] == c16[0, 0, 0, 0, 8]  # block (0, 1) of a group opens with C[0, 8]


def _image_and_base(h=48, w=64, smooth=True, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = (120 + 40 * np.sin(x / 9.0))[..., None] * np.array([1.0, 0.9, 0.8])
    if smooth:  # a residual smooth over 16+ pixels: what a 16x16 basis codes in fewer coefficients
        res = 9 * np.sin(x / 7.0 + 1)[..., None] * np.cos(y / 8.0)[..., None] * np.array([1.0, 0.6, 0.3])
    else:  # isolated sharp detail
        res = np.where(rng.random((h, w, 1)) < 0.05, 40.0, 0.0) * np.array([1.0, 1.0, 1.0])
    image = np.clip(np.rint(base + res), 0, 255).astype(np.uint8)
    return image, np.clip(np.rint(base), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("rich", [False, True])  # format 4; format 7 (the same tools, coefcoder7's symbols)
@pytest.mark.parametrize("shape", [(48, 64), (44, 60), (20, 32)])  # whole groups; partial blocks; an odd block row
def test_format4_closed_loop_and_section_round_trip(shape, rich, monkeypatch):
    monkeypatch.setattr(image_dct, "RICH_MODEL", rich)
    image, base = _image_and_base(*shape)
    raw, raw16 = image_dct.raw_coefficients(image, base), image_dct.raw_coefficients16(image, base)
    q, units, flags = image_dct.quantise_tx16(raw, raw16, 6.0, rdoq=image_dct.RDOQ_LAMBDA, prices="ctx")
    assert flags.shape == (-(-shape[0] // 8) // 2, -(-shape[1] // 8) // 2) and flags.any()
    strength = image_dct.best_strength(image, base, q, units, tx16=flags)
    rec = image_dct.add(base, q, units, strength, flags)
    blob = image_dct.encode_section(q, units, strength, tx16=flags)
    assert blob[0] == (image_dct.FORMAT_TOOLS if rich else image_dct.FORMAT_TX16)
    dq, du, ds, df = image_dct.decode_section(blob, *image.shape)
    assert np.array_equal(dq, q) and np.array_equal(du, units) and ds == strength and np.array_equal(df, flags)
    assert np.array_equal(image_dct.add(base, dq, du, ds, df), rec)  # the decoder adds what the encoder did
    # the groups decode through the integer path: float error of the residual well below a step
    sse = lambda a: float(((a.astype(np.float64) - image) ** 2).mean())  # noqa: E731
    assert sse(rec) < 0.25 * sse(base)


@pytest.mark.parametrize("rich", [False, True])
def test_no_flag_writes_format2_unchanged(rich, monkeypatch):
    monkeypatch.setattr(image_dct, "RICH_MODEL", rich)
    image, base = _image_and_base(smooth=False)
    q, units = image_dct.analyse(image, base, 8.0)
    none = np.zeros((3, 4), bool)
    assert image_dct.encode_section(q, units, 12, tx16=none) == image_dct.encode_section(q, units, 12)
    assert image_dct.encode_section(q, units, 12)[0] == (image_dct.FORMAT_TOOLS if rich else image_dct.FORMAT)


def test_smooth_residual_prefers_16x16_and_codes_it_cheaper():
    image, base = _image_and_base()
    raw, raw16 = image_dct.raw_coefficients(image, base), image_dct.raw_coefficients16(image, base)
    kw = {"rdoq": image_dct.RDOQ_LAMBDA, "prices": "ctx"}
    q, units, flags = image_dct.quantise_tx16(raw, raw16, 4.0, **kw)
    q8, _ = image_dct.quantise_raw(raw, 4.0, **kw)
    assert flags.mean() > 0.5
    err = lambda r: float(((r.astype(np.float64) - image) ** 2).sum())  # noqa: E731
    n16, e16 = len(image_dct.encode_section(q, units, 0, tx16=flags)), err(image_dct.add(base, q, units, 0, flags))
    n8, e8 = len(image_dct.encode_section(q8, units, 0)), err(image_dct.add(base, q8, units, 0))
    lam = image_dct.RDOQ_LAMBDA * 4.0**2 * 8  # per byte, in the choice's units (error summed over RGB)
    assert e16 + lam * n16 < e8 + lam * n8


def test_hostile_format3_sections():
    image, base = _image_and_base()
    raw, raw16 = image_dct.raw_coefficients(image, base), image_dct.raw_coefficients16(image, base)
    q, units, flags = image_dct.quantise_tx16(raw, raw16, 6.0, rdoq=image_dct.RDOQ_LAMBDA, prices="ctx")
    blob = image_dct.encode_section(q, units, 12, tx16=flags)
    for cut in range(1, len(blob), 7):
        with pytest.raises(FormatError):
            image_dct.decode_section(blob[:cut], *image.shape)
    head = 1 + sum(len(varint(int(u))) for u in units.ravel()) + 1
    with pytest.raises(FormatError):  # a flag stream that claims more bytes than the section holds
        image_dct.decode_section(blob[:head] + varint(10**6) + blob[head + 1:], *image.shape)
    rng = np.random.default_rng(5)
    for _ in range(200):  # any damage: a FormatError or a decoded section, never another exception
        bad = bytearray(blob)
        for i in rng.integers(0, len(bad), 3):
            bad[i] = int(rng.integers(0, 256))
        try:
            dq, du, ds, df = image_dct.decode_section(bytes(bad), *image.shape)
        except FormatError:
            continue
        image_dct.add(base, dq, du, ds, df)


@pytest.mark.parametrize("h,w,c,dtype", [(48, 64, 3, np.uint8), (44, 60, 3, np.uint8), (40, 56, 1, np.uint16),
                                         (20, 36, 3, np.uint8)])
def test_compiled_groups_match_the_numpy_reference(h, w, c, dtype):
    from inrcodec.kernels import _loader, dct_residual

    if _loader.cpu_library() is None:
        pytest.skip("no compiled CPU library")
    rng = np.random.default_rng(h * w + c)
    by, bx = -(-h // 8), -(-w // 8)
    base = rng.integers(0, np.iinfo(dtype).max + 1, (h, w, c)).astype(dtype)
    q = (rng.integers(-40, 41, (c, by, bx, 64)) * (rng.random((c, by, bx, 64)) < 0.2)).astype(np.int16)
    q[:, 0, 0, :] = np.iinfo(np.int16).max  # beyond the clamp: hostile extremes
    q[:, -1, -1, :] = np.iinfo(np.int16).min
    flags = rng.random((by // 2, bx // 2)) < 0.6
    flags[0, 0] = flags[-1, -1] = True
    for units in (np.array([[37, 37], [45, 45], [45, 45]])[:c], np.full((c, 2), image_dct.MAX_UNITS)):
        fast, ref = base.copy(), base.copy()
        assert dct_residual.tx16_add(fast, base, q, image_dct._per_position(units), mcdct._zigzag(),
                                     image_tx16.t16(), image_tx16.COEF_CLAMP, image_tx16.SHIFT1, image_tx16.SHIFT2,
                                     flags, image_dct._level(base.dtype))
        image_dct._add_groups_reference(ref, base, q, units, flags)
        np.testing.assert_array_equal(fast, ref)
        assert np.any(fast != base)


@pytest.mark.parametrize("rich", [False, True])
@pytest.mark.parametrize("cross", [0, 2])
def test_format5_groups_and_restoration_filters_together(monkeypatch, cross, rich):
    """The encoder's section with 16x16 groups and restoration filters (format 5; with cross-channel taps, format 6):
    the decoder reads both back and adds exactly what the encoder measured; without the filters the same symbols
    are format 4."""
    from inrcodec.models import restore

    monkeypatch.setattr(restore, "LAMBDA", 0.0)  # on a tiny image the filters would not pay for their bytes
    monkeypatch.setattr(restore, "CROSS", cross)
    monkeypatch.setattr(image_dct, "RICH_MODEL", rich)  # format 7 holds both tools in its own layout
    monkeypatch.setattr(image_dct, "CFL", "off")  # formats 5 and 6 (chroma from luma is format 7's: test_cfl.py)
    image, base = _image_and_base()
    image = np.clip(image.astype(np.int16) + np.random.default_rng(1).integers(-6, 7, image.shape), 0, 255)
    image = image.astype(np.uint8)  # texture the groups leave for the filters
    raw, raw16 = image_dct.raw_coefficients(image, base), image_dct.raw_coefficients16(image, base)
    blob, rec = image_dct.encode_residual(image, base, raw, raw16, 6.0, guard=False, restoration=True,
                                          rdoq=image_dct.RDOQ_LAMBDA, prices="ctx")
    assert blob[0] == (image_dct.FORMAT_TOOLS if rich else image_dct.FORMAT_CROSS if cross
                       else image_dct.FORMAT_TX16_RESTORE)
    q, units, strength, flags, filters = image_dct.decode_residual(blob, *image.shape)
    assert bool(filters.get("cross")) == bool(cross)
    assert flags.any() and filters is not None
    unfiltered = image_dct.add(base, q, units, strength, flags)
    out = image_dct.add(base, q, units, strength, flags, filters)
    assert np.array_equal(out, restore.apply_reference(unfiltered, filters))
    assert _sse_sum(out, image) < _sse_sum(unfiltered, image)  # fitted at lambda 0 on this image: they help
    assert image_dct.decode_section(blob, *image.shape)[3] is not None
    plain = image_dct.encode_section(q, units, strength, tx16=flags)
    assert plain[0] == (image_dct.FORMAT_TOOLS if rich else image_dct.FORMAT_TX16) and len(plain) < len(blob)


def _sse_sum(a, b):
    return int(((a.astype(np.int64) - b) ** 2).sum())
