"""RDOQ priced with format 2's context models (``rdoq_ctx``) and the encoder's deblocking-strength choice
(``image_dct.best_strength``): both encoder choices that the unchanged decoder reads."""

from __future__ import annotations

import numpy as np
import pytest

from inrcodec.models import coefcoder, image_dct, rdoq_ctx
from test_image_dct_rdoq import _sse, textured


def _raw(seed=3, h=96, w=128):
    image = textured(h, w, seed=seed)
    base = ((image.astype(np.float64) + textured(h, w, seed=9)) / 2).astype(np.uint8)
    return image, base, image_dct.raw_coefficients(image, base)


class _Classes:
    """An io for ``coefcoder._walk`` that keeps the magnitude classes the coder uses, in coding order."""

    def __init__(self):
        self.k = []

    def cat(self, table, k, truth):
        self.k.append(np.asarray(k).copy())
        return truth

    def bern(self, p1, truth):
        return truth

    def signs(self, truth):
        return truth


@pytest.mark.parametrize("channels", [1, 3])
def test_classes_are_the_coders(channels):
    """The class ``rdoq_ctx`` prices a symbol in is the one ``coefcoder`` codes it in, for every coded symbol."""
    _, _, raw = _raw()
    q, _ = image_dct.quantise_raw(raw[:channels], 5.0)
    io = _Classes()
    coefcoder._walk(io, q.shape[:3], q)
    got = np.concatenate(io.k)
    cls = rdoq_ctx._classes(np.minimum(np.abs(q), coefcoder.ESC).astype(np.int16))
    coded, last_diag = rdoq_ctx._coded_mask(q, rdoq_ctx._diag_of_position())
    starts = coefcoder._diagonal_starts()
    want = []
    for chans in (slice(0, 1), slice(1, channels)):
        c_cls, c_last = cls[chans], last_diag[chans]
        for d in range(len(starts) - 1):
            open_ = (c_last >= d).reshape(-1)  # channel-major, then block: the walk's order
            want.append(c_cls.reshape(-1, 64)[open_, starts[d]:starts[d + 1]].ravel())
    want = np.concatenate(want)
    assert q.any() and len(got) == len(want) and np.array_equal(got, want)


def test_rdoq_ctx_trades_bytes_for_error_at_its_lambda():
    """Its cost on the real bytes and the decoded image (SSE + lambda x step^2 x bits, deblocking included) must
    fall against the plain quantiser and against the format-1-priced RDOQ."""
    image, base, raw = _raw()
    step = 6.0
    lam = image_dct.RDOQ_LAMBDA * step**2
    costs = {}
    for name, kw in (("plain", {}), ("band", {"rdoq": image_dct.RDOQ_LAMBDA, "prices": "band"}),
                     ("ctx", {"rdoq": image_dct.RDOQ_LAMBDA, "prices": "ctx"})):
        q, units = image_dct.quantise_raw(raw, step, **kw)
        blob = image_dct.encode_section(q, units, image_dct.DEBLOCK_STRENGTH)
        rec = image_dct.add(base, q, units, image_dct.DEBLOCK_STRENGTH)
        costs[name] = _sse(image, rec) + lam * 8 * len(blob)
        if name == "ctx":  # and the decoder reads what the encoder chose
            dq, du, ds, _ = image_dct.decode_section(blob, *image.shape)
            assert np.array_equal(dq, q) and np.array_equal(image_dct.add(base, dq, du, ds), rec)
    assert costs["ctx"] < costs["band"] < costs["plain"]


@pytest.mark.parametrize("channels,step,passes", [(3, 0.7, 2), (3, 5.0, 2), (3, 14.0, 1), (1, 2.0, 2), (1, 9.0, 3)])
def test_rdo_quantise_is_its_dense_reference_bit_for_bit(channels, step, passes):
    """The sparse form (prices only where rounding is non-zero, flat table index) gives the dense reference's
    symbols exactly: on a textured residual (escapes at the fine step: magnitudes above 4 x ESC), in the strided
    layout ``quantise_raw`` hands it, and on a heavy-tailed random one with both signs."""
    _, _, raw = _raw(seed=11)
    units = image_dct.step_units(step, channels)
    coef = raw[:channels] / (image_dct._per_position(units)[:, None, None, :] / image_dct.STEP_UNIT)
    rng = np.random.default_rng(int(step * 10) + channels)
    noisy = rng.standard_t(2, size=(channels, 7, 9, 64)) * rng.choice([0.3, 2.0, 30.0], size=(channels, 7, 9, 1))
    for c in (coef, noisy):
        q0 = image_dct.mcdct.dead_zone_quantise(c, image_dct.DEAD_ZONE)
        want = rdoq_ctx.rdo_quantise_reference(c, q0.copy(), image_dct.RDOQ_LAMBDA, image_dct.CHROMA_FACTOR, passes)
        got = rdoq_ctx.rdo_quantise(c, q0.copy(), image_dct.RDOQ_LAMBDA, image_dct.CHROMA_FACTOR, passes)
        assert want.any() and got.dtype == want.dtype and np.array_equal(got, want)
    assert np.abs(want).max() > 4 * coefcoder.ESC or step > 1.0  # the fine step reaches the escapes


def test_lone_high_symbol_is_dropped_large_one_kept():
    coef = np.zeros((1, 6, 6, 64))
    coef[..., 0] = 5.0
    coef[..., 1:3] = 2.0
    coef[0, 0, 0, 60] = 1.3  # lone, small, on the last diagonals: its zeros below cost more than it removes
    coef[0, 3, 3, 60] = 9.0
    q0 = image_dct.mcdct.dead_zone_quantise(coef, image_dct.DEAD_ZONE)
    q = rdoq_ctx.rdo_quantise(coef, q0, image_dct.RDOQ_LAMBDA, image_dct.CHROMA_FACTOR)
    assert q0[0, 0, 0, 60] == 1 and q[0, 0, 0, 60] == 0
    assert q[0, 3, 3, 60] == 9 and np.all(q[..., 0] == 5)


def test_best_strength_is_the_least_error_candidate():
    image, base, raw = _raw(seed=5, h=64, w=80)
    q, units = image_dct.quantise_raw(raw, 10.0)
    best = image_dct.best_strength(image, base, q, units)
    errors = {s: _sse(image, image_dct.add(base, q, units, s)) for s in image_dct.DEBLOCK_CANDIDATES}
    assert best in errors and errors[best] == min(errors.values())
    deep = (image.astype(np.uint16) * 257)
    assert image_dct.best_strength(deep, deep, q, units) == 0  # 16-bit images are not deblocked


def test_gray_image_gets_a_strength_and_ctx_symbols_round_trip():
    image, base, _ = _raw(seed=7, h=48, w=64)
    image, base = image[..., 1:2].copy(), base[..., 1:2].copy()
    raw = image_dct.raw_coefficients(image, base)
    q, units = image_dct.quantise_raw(raw, 6.0, rdoq=image_dct.RDOQ_LAMBDA, prices="ctx")
    best = image_dct.best_strength(image, base, q, units)
    errors = {s: _sse(image, image_dct.add(base, q, units, s)) for s in image_dct.DEBLOCK_CANDIDATES}
    assert errors[best] == min(errors.values())
    blob = image_dct.encode_section(q, units, best)
    dq, du, ds, _ = image_dct.decode_section(blob, 48, 64, 1)
    assert np.array_equal(dq, q) and ds == best
