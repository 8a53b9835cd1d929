"""Sign prediction by boundary matching (``models/signpred.py``, ``image_dct`` format 7 with TOOL_SIGNS, and
TOOL_SIGNS2 for the stream's form 2): the hypothesis search against a brute-force int64 reference (exact at the
bounds its docstring claims), the sign stream's exact round trip in both forms on 8x8 blocks and 16x16 groups (gray
and RGB), that it predicts the signs of a real residual (a shorter stream than the raw signs; form 2 shorter than
form 1), format 7 sections with sign prediction, of every tool combination and with either symbol model, decode to
what was encoded, and damaged sections give FormatError only; ``coefcoder``'s stream without signs through the
compiled walk and the Python one; the whole compiled sign pass (``sp_walk``, both copies) against the numpy walk,
on damaged streams and on a malformed 16x16 mask."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from inrcodec.entropy.coding import _finish
from inrcodec.errors import FormatError
from inrcodec.kernels import _loader, coefcoder_decode
from inrcodec.models import coefcoder, image_dct, image_tx16, restore, signpred
from inrcodec.models.mcdct import MAX_SYMBOL

from helpers import damaged
from test_coefcoder import dct_like
from test_gaussian_dct import textured


def _predict_reference(known, cl, target, mask, op):
    """Every hypothesis's sum of squared operator values in int64; per coefficient the sign of the least cost
    (ties +) and the margin class of (cost with the other sign - least) against 4 |c_k|^2."""
    a0, a1 = signpred.OPS[op][:2]
    n, k = cl.shape[:2]
    m = mask[:, :, None].astype(np.int64)
    e0 = ((a0 * known[:, :, 0] + a1 * known[:, :, 1] + target).astype(np.int64) * m).reshape(n, -1)
    c = ((a0 * cl[:, :, :, 0] + a1 * cl[:, :, :, 1]).astype(np.int64) * m[:, None]).reshape(n, k, -1)
    pred = np.empty((n, k))
    cls = np.zeros((n, k), np.int64)
    for i in range(n):
        costs = {}
        for s in itertools.product((1, -1), repeat=k):
            e = e0[i] + (np.array(s)[:, None] * c[i]).sum(0)
            costs[s] = int((e * e).sum())
        for j in range(k):
            best = {b: min(v for s, v in costs.items() if s[j] == b) for b in (1, -1)}
            pred[i, j] = 1 if best[1] <= best[-1] else -1
            margin, norm = abs(best[1] - best[-1]), 4 * int((c[i, j] ** 2).sum())
            if norm:
                cls[i, j] = sum(margin >= t * norm for t in signpred.MARGIN_EDGES)
    return pred, cls


@pytest.mark.parametrize("sides,k,scale", [(4, 3, 1e3), (8, 4, 1e3), (4, 5, 2.0**21), (8, 3, 2.0**21)])
def test_hypothesis_search_matches_the_int64_reference(sides, k, scale):
    """Up to the bounds ``predict`` relies on (lines below 2^21, contributions below 2^14): the float64 costs are
    exact, so the predictions and classes are the reference's, ties included (small integers make ties)."""
    rng = np.random.default_rng(k * sides)
    n = 60
    known = np.floor(rng.uniform(-scale, scale, (n, sides, 2, 8)))
    cl = np.floor(rng.uniform(-min(scale, 2.0**14), min(scale, 2.0**14), (n, k, sides, 2, 8)))
    cl[:5] = 0.0  # empty slots: a tie everywhere, predicted +
    target = np.floor(rng.uniform(-4 * scale, 4 * scale, (n, sides, 8)))
    mask = rng.random((n, sides)) < 0.7
    for op in ("d2", "d3"):
        got = signpred.predict(known, cl, target, mask, op)
        ref = _predict_reference(known, cl, target, mask, op)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])


def _groups_mask(by, bx, seed):
    rng = np.random.default_rng(seed)
    flags = rng.random(image_tx16.groups(by, bx)) < 0.4
    return image_tx16.block_mask(flags, by, bx)


@pytest.mark.parametrize("form", [1, 2])
@pytest.mark.parametrize("c,by,bx,groups", [(3, 6, 8, False), (1, 5, 7, False), (3, 9, 10, True), (1, 8, 8, True),
                                            (3, 1, 1, False), (3, 2, 2, True), (1, 1, 12, False)])
def test_sign_stream_round_trip(c, by, bx, groups, form):
    q = dct_like(c, by, bx, seed=by * bx + c, scale=6.0)
    q[0, 0, 0, :3] = [MAX_SYMBOL, -MAX_SYMBOL, 1]  # extreme magnitudes: the clamp of the dequantised values
    units = image_dct.step_units(7.0, c)
    mask = _groups_mask(by, bx, by) if groups else None
    blob = signpred.encode(q, units, mask, form)
    np.testing.assert_array_equal(signpred.decode(blob, np.abs(q), units, mask, form), q)
    # the estimate counts the same models' bits (the stream adds at most a 4-byte word and the sentinel)
    assert signpred.estimate_bits(q, units, mask, form) / 8 == pytest.approx(len(blob), abs=8)


def _blur(x: np.ndarray, passes: int = 12) -> np.ndarray:
    """Binomial (1 4 6 4 1) / 16 blur along both axes, ``passes`` times, edges replicated: a smooth base."""
    for _ in range(passes):
        for axis in (0, 1):
            p = np.pad(x, [(2, 2) if a == axis else (0, 0) for a in range(x.ndim)], mode="edge")
            n = x.shape[axis]
            x = sum(wt * np.take(p, np.arange(i, i + n), axis=axis) for i, wt in enumerate((1, 4, 6, 4, 1))) / 16
    return x


def _photo_residual():
    """Waves, a finer wave and hard-edged stripes over a blurred copy of the image: a residual whose detail runs
    across block edges (what a Gaussian base leaves)."""
    yy, xx = np.mgrid[0:64, 0:96] / 20.0
    img = np.stack([np.sin(2 * xx + yy), np.cos(3 * yy - xx), np.sin(xx * yy)], -1) * 0.3 + 0.5
    img += (0.08 * np.sin(9 * xx + 4 * yy) + 0.05 * np.sign(np.sin(5 * yy - 2 * xx)))[..., None]
    image = np.clip(img * 255, 0, 255).round().astype(np.uint8)
    base = np.clip(np.rint(_blur(image.astype(np.float64))), 0, 255).astype(np.uint8)
    return image, base, image_dct.raw_coefficients(image, base)


@pytest.mark.parametrize("form", [1, 2])
def test_predicts_the_signs_of_a_residual(form):
    """The predicted signs cost clearly less than 1 bit each: the stream is 16 % (form 1) / 18 % (form 2) shorter
    than the raw signs here (asserted: 8 %), while on the same magnitudes with random signs it is 3.7 % / 2.6 % longer
    (asserted: no shorter than 99 % of them: the adaptive "wrong" bits of a coin cost about a bit each)."""
    _, _, raw = _photo_residual()
    q, units = image_dct.quantise_raw(raw, 8.0)
    blob = signpred.encode(q, units, form=form)
    nnz = np.count_nonzero(q)
    assert nnz > 1500
    assert len(blob) < 0.92 * nnz / 8
    flipped = q.copy()  # the same magnitudes with random signs: nothing to predict, the stream is no shorter
    rng = np.random.default_rng(0)
    flipped *= np.where(rng.random(q.shape) < 0.5, -1, 1)
    assert len(signpred.encode(flipped, units, form=form)) > 0.99 * nnz / 8


@pytest.fixture
def always(monkeypatch):
    monkeypatch.setattr(image_dct, "SIGN_PREDICTION", "always")


@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (1, np.uint16)])
@pytest.mark.parametrize("with_tx16,with_filters", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("rich,form", [(False, 1), (True, 1), (False, 2), (True, 2)])
def test_format_7_sections_with_sign_prediction_decode_what_was_encoded(channels, dtype, with_tx16, with_filters,
                                                                         rich, form, always, monkeypatch):
    monkeypatch.setattr(image_dct, "RICH_MODEL", rich)
    monkeypatch.setattr(image_dct, "SIGN_FORM", form)
    if with_filters and dtype != np.uint8:
        pytest.skip("filters are for 8-bit images")
    image, base, _ = _photo_residual()
    image, base = image[..., :channels], base[..., :channels]
    if dtype == np.uint16:
        image, base = image.astype(np.uint16) * 257, base.astype(np.uint16) * 257
    raw = image_dct.raw_coefficients(image, base)
    q, units = image_dct.quantise_raw(raw, 5.0)
    flags = None
    if with_tx16:
        flags = np.zeros(image_tx16.groups(*q.shape[1:3]), bool)
        flags[::2, 1::2] = True
        flags &= image_tx16.flag_contexts(q)[0]
    filters = cross = None
    if with_filters:
        strength = image_dct.DEBLOCK_STRENGTH
        rec = image_dct.add(base, q, units, strength, flags)
        filters, cross = restore.choose(image, rec, 5.0, lam=0.0) or (None, False)
        assert filters is not None
    blob = image_dct.encode_section(q, units, 12 if dtype == np.uint8 else 0, filters=filters, tx16=flags,
                                    cross=bool(cross))
    groups = image_dct.TOOL_GROUPS if rich and with_tx16 else 0  # the flags in the rich stream (session 26)
    signs = image_dct.TOOL_SIGNS | (image_dct.TOOL_SIGNS2 if form == 2 else 0)
    assert blob[:2] == bytes([image_dct.FORMAT_TOOLS, signs | (image_dct.TOOL_RICH if rich else 0) | groups])
    got_q, got_units, strength, got_flags, got_filters = image_dct.decode_residual(blob, *image.shape)
    np.testing.assert_array_equal(got_q, q)
    np.testing.assert_array_equal(got_units, units)
    assert (got_flags is None) == (not with_tx16)
    if with_tx16:
        np.testing.assert_array_equal(got_flags, flags)
    assert (got_filters is None) == (not with_filters)
    if with_filters:
        ref = restore.decode(filters, channels, bool(cross))
        assert got_filters["shape"] == ref["shape"] and all(
            np.array_equal(a, b) for a, b in zip(got_filters["coefs"], ref["coefs"]))


@pytest.mark.parametrize("rich", [False, True])
def test_auto_predicts_the_signs_only_where_it_pays(monkeypatch, rich):
    """Format 7's tools byte: sign prediction (TOOL_SIGNS) on a photo's residual, with or without the rich model;
    off where it would not pay (then, without the rich model, the file keeps format 2)."""
    monkeypatch.setattr(image_dct, "RICH_MODEL", rich)
    _, _, raw = _photo_residual()
    q, units = image_dct.quantise_raw(raw, 4.0)
    auto = image_dct.encode_section(q, units, 12)
    monkeypatch.setattr(image_dct, "SIGN_PREDICTION", "never")
    never = image_dct.encode_section(q, units, 12)
    rich_bit = image_dct.TOOL_RICH if rich else 0
    assert auto[:2] == bytes([image_dct.FORMAT_TOOLS, image_dct.TOOL_SIGNS | image_dct.TOOL_SIGNS2 | rich_bit])
    assert never[:2] == bytes([image_dct.FORMAT_TOOLS, rich_bit]) if rich else never[0] == image_dct.FORMAT
    assert len(auto) < len(never)
    tiny = np.zeros_like(q)
    tiny[0, 0, 0, 0] = 3  # one sign: a stream of its own costs more than the bit
    monkeypatch.setattr(image_dct, "SIGN_PREDICTION", "auto")
    blob = image_dct.encode_section(tiny, units, 12)
    assert blob[:2] == bytes([image_dct.FORMAT_TOOLS, rich_bit]) if rich else blob[0] == image_dct.FORMAT


def test_damaged_sections_with_sign_prediction_fail_cleanly(always):
    image, base, raw = _photo_residual()
    q, units = image_dct.quantise_raw(raw[:, :4, :6], 6.0)
    flags = np.ones(image_tx16.groups(4, 6), bool) & image_tx16.flag_contexts(q)[0]
    blob = image_dct.encode_section(q, units, 12, tx16=flags)
    assert blob[0] == image_dct.FORMAT_TOOLS
    image_dct.decode_residual(blob, 32, 48, 3)
    rng = np.random.default_rng(1)
    cases = [blob[:n] for n in (1, 5, 8, len(blob) // 2, len(blob) - 1)] + [blob + b"\x00"]
    cases += damaged(blob, rng, 60, first=1)
    for data in cases:
        try:
            got, *_ = image_dct.decode_residual(data, 32, 48, 3)
        except FormatError:
            continue
        assert got.shape == q.shape and np.abs(got).max() <= MAX_SYMBOL


@pytest.mark.parametrize("c,by,bx", [(3, 12, 16), (1, 7, 9)])
def test_coefcoder_without_signs_compiled_and_python(c, by, bx, monkeypatch):
    q = dct_like(c, by, bx, seed=c, scale=20.0)  # escapes too
    blob = coefcoder.encode(q, signs=False)
    assert len(blob) < len(coefcoder.encode(q))
    np.testing.assert_array_equal(coefcoder.decode(blob, c, by, bx, signs=False), np.abs(q))
    with monkeypatch.context() as m:
        m.setattr(coefcoder_decode, "decode", lambda *a: None)  # the Python walk
        np.testing.assert_array_equal(coefcoder.decode(blob, c, by, bx, signs=False), np.abs(q))
        with pytest.raises(FormatError):  # a stream with signs is not one without
            coefcoder.decode(coefcoder.encode(q), c, by, bx, signs=False)


needs_kernel = pytest.mark.skipif(_loader.cpu_library() is None, reason="compiled CPU library unavailable")


@needs_kernel
@pytest.mark.parametrize("kind", ["block", "group"])
def test_compiled_round_matches_numpy(kind):
    """``kernels.signpred_round`` against the numpy path on random units: signs and classes equal, and the lines'
    update equal, at magnitudes up to the clamps (the bounds the exactness rests on)."""
    from inrcodec.kernels import signpred_round

    rng = np.random.default_rng(7)
    by, bx = 10, 12
    phase = signpred.block_phases(by, bx, _groups_mask(by, bx, 3) if kind == "group" else None)
    p = 5 if kind == "group" else 3
    blocks, nb, ok = signpred._units(kind, phase, p)
    c, nblk = 3, by * bx
    absq = np.where(rng.random((c * nblk, 64)) < 0.3, rng.integers(1, 3000, (c * nblk, 64)), 0)
    per = np.array([[37.0] + [40.0] * 63, [60.0] * 64, [55.0] * 64])
    clamp = signpred.COEF_CLAMP if kind == "block" else 1 << 16
    u = signpred._Kind(kind, blocks, nb, ok, c, nblk, absq, per, clamp)
    full = np.floor(rng.uniform(-2.0**20, 2.0**20, (c * nblk, 4, 2, 8)))
    rows = np.flatnonzero(u.sel[:, 0] >= 0)
    assert len(rows) > 10
    for r in range(u.rounds):
        sel = u.sel[rows, r * signpred.K:(r + 1) * signpred.K]
        got = signpred_round.predict_round(full, u.blocks[rows], u.nb[rows], u.ok[rows], u.spec, sel,
                                           u.absdeq[rows], u.basis, u.shift, signpred.OPS[signpred.OP],
                                           signpred.MARGIN_EDGES)
        cl = u.contributions(rows, r)
        mine = u.mine(full, rows)
        pred, cls = signpred.predict(mine, cl, u.targets(full, rows), u.ok[rows], signpred.OP)
        np.testing.assert_array_equal(got[0], pred)
        np.testing.assert_array_equal(got[1], cls)
        sign = pred * np.where(rng.random(pred.shape) < 0.2, -1.0, 1.0) * (sel >= 0)
        ref = full.copy()
        u.store(ref, rows, mine + np.einsum("nk,nk...->n...", sign, cl))
        assert signpred_round.apply_round(full, u.blocks[rows], u.spec, sel, u.absdeq[rows], u.basis, u.shift, sign)
        np.testing.assert_array_equal(full, ref)


@needs_kernel
def test_compiled_and_numpy_walks_give_the_same_stream(monkeypatch):
    image, base, raw = _photo_residual()
    q, units = image_dct.quantise_raw(raw, 3.0)
    mask = _groups_mask(*q.shape[1:3], 5)
    fast = signpred.encode(q, units, mask)
    monkeypatch.setattr(signpred, "USE_KERNEL", False)
    assert signpred.encode(q, units, mask) == fast
    np.testing.assert_array_equal(signpred.decode(fast, np.abs(q), units, mask), q)


@needs_kernel
@pytest.mark.parametrize("kind", ["block", "group"])
def test_compiled_lines_match_the_product(kind):
    """``kernels.signpred_round.lines`` (the non-zero coefficients only) against floor(deq @ basis / 2^shift), up to
    the clamps with every coefficient set in some rows."""
    from inrcodec.kernels import signpred_round

    rng = np.random.default_rng(11)
    basis = (signpred.border_basis() if kind == "block" else signpred.group_basis()).reshape(
        64 if kind == "block" else 256, -1)
    shift = signpred.SHIFT if kind == "block" else signpred.SHIFT16
    clamp = signpred.COEF_CLAMP if kind == "block" else 1 << 16
    deq = np.where(rng.random((300, len(basis))) < 0.2, rng.integers(-clamp, clamp + 1, (300, len(basis))), 0)
    deq[:3] = clamp * np.where(rng.random((3, len(basis))) < 0.5, -1, 1)  # every coefficient at the clamp
    deq = deq.astype(np.float64)
    np.testing.assert_array_equal(signpred_round.lines(deq, basis, shift),
                                  np.floor((deq @ basis) * (1.0 / (1 << shift))))


def test_tools_byte_is_validated(always, monkeypatch):
    """Format 7's tools byte: each defined tool set decodes the same symbols; unknown bits, and TOOL_SIGNS2 without
    TOOL_SIGNS, are refused."""
    _, _, raw = _photo_residual()
    q, units = image_dct.quantise_raw(raw[:, :4, :6], 6.0)
    for rich, form in itertools.product((False, True), (1, 2)):
        monkeypatch.setattr(image_dct, "RICH_MODEL", rich)
        monkeypatch.setattr(image_dct, "SIGN_FORM", form)
        blob = image_dct.encode_section(q, units, 12)
        assert bool(blob[1] & image_dct.TOOL_SIGNS2) == (form == 2)
        np.testing.assert_array_equal(image_dct.decode_residual(blob, 32, 48, 3)[0], q)
        for bad in (4, 5, 20, 32, 128, 255):  # 8 and 16 are TOOL_CFL and TOOL_GROUPS since session 26
            with pytest.raises(FormatError, match="tools byte"):
                image_dct.decode_residual(blob[:1] + bytes([bad]) + blob[2:], 32, 48, 3)
    with pytest.raises(FormatError, match="tools byte"):
        image_dct.decode_residual(bytes([image_dct.FORMAT_TOOLS]), 32, 48, 3)


def _walk_cases():
    """Random residuals (8x8 blocks and 16x16 groups, gray and RGB, extreme magnitudes) and a photo's residual at
    two steps, with and without groups."""
    cases = []
    for c, by, bx, groups in [(3, 6, 8, False), (1, 5, 7, True), (3, 9, 10, True), (3, 1, 1, False),
                              (3, 2, 2, True), (1, 1, 12, False), (3, 13, 11, True)]:
        q = dct_like(c, by, bx, seed=by * bx + c, scale=6.0)
        q[0, 0, 0, :3] = [MAX_SYMBOL, -MAX_SYMBOL, 1]
        cases.append((q, image_dct.step_units(7.0, c), _groups_mask(by, bx, by) if groups else None))
    _, _, raw = _photo_residual()
    for step in (3.0, 8.0):
        q, units = image_dct.quantise_raw(raw, step)
        cases += [(q, units, _groups_mask(*q.shape[1:3], 5)), (q, units, None)]
    return cases


@needs_kernel
@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("form", [1, 2])
def test_compiled_walk_matches_the_python_walk(portable, form, monkeypatch):
    """``kernels.signpred_round.walk`` (the whole pass in one call; its AVX2 and portable copies) against the numpy
    walk, in either form: the encoder's stream and bit estimate are the same bytes and bits, and decoding gives the
    same symbols."""
    if portable:
        monkeypatch.setenv("INRCODEC_DCT_PORTABLE", "1")
    for q, units, mask in _walk_cases():
        blob, bits = signpred.encode(q, units, mask, form), signpred.estimate_bits(q, units, mask, form)
        got = signpred._compiled(blob, np.abs(q), units, mask, form)
        assert got is not None
        np.testing.assert_array_equal(got, q)
        with monkeypatch.context() as m:
            m.setattr(signpred, "USE_KERNEL", False)
            assert signpred.encode(q, units, mask, form) == blob
            assert signpred.estimate_bits(q, units, mask, form) == bits
            np.testing.assert_array_equal(signpred.decode(blob, np.abs(q), units, mask, form), q)


@needs_kernel
@pytest.mark.parametrize("form", [1, 2])
def test_compiled_walk_on_damaged_streams_agrees_or_defers(form):
    """Truncated, extended and corrupted sign streams: the compiled walk returns symbols only where the stream ends
    exactly as the reference requires, and then the Python walk decodes the same symbols; otherwise it defers (None)
    and ``decode`` gives the reference's answer (symbols or FormatError)."""
    _, _, raw = _photo_residual()
    q, units = image_dct.quantise_raw(raw, 5.0)
    mask = _groups_mask(*q.shape[1:3], 2)
    blob = signpred.encode(q, units, mask, form)
    try:  # the other form reads other signs, or fails
        assert signpred.decode(blob, np.abs(q), units, mask, 3 - form).tolist() != q.tolist()
    except FormatError:
        pass
    rng = np.random.default_rng(3)
    cases = [blob[:n] for n in (0, 1, 4, len(blob) // 2, len(blob) - 1)] + [blob + b"\x00", blob + b"\x01\x02\x03\x04"]
    cases += damaged(blob, rng, 80)
    vouched = 0
    for data in cases:
        fast = signpred._compiled(data, np.abs(q), units, mask, form)
        rd = coefcoder._Reader(data) if data else None
        try:
            if rd is None:
                raise FormatError("empty")
            ref = signpred._walk(rd, np.abs(q), units, mask, False, form)
            _finish(rd.coder)
        except FormatError:
            assert fast is None
            with pytest.raises(FormatError):
                signpred.decode(data, np.abs(q), units, mask, form)
            continue
        if fast is not None:
            vouched += 1
            np.testing.assert_array_equal(fast, ref)
        np.testing.assert_array_equal(signpred.decode(data, np.abs(q), units, mask, form), ref)
    assert vouched >= 1  # the intact stream at least


@needs_kernel
def test_compiled_walk_refuses_a_malformed_group_mask():
    """A 16x16 mask that is not whole 2x2 groups of the grid (the decoder never makes one): the kernel refuses it."""
    q = dct_like(1, 4, 4, seed=1, scale=6.0)
    units = image_dct.step_units(7.0, 1)
    bad = np.zeros((4, 4), bool)
    bad[1:3, 1:3] = True  # a 2x2 off the group grid
    assert signpred._compiled(signpred.encode(q, units, None), np.abs(q), units, bad) is None
    blob = signpred.encode(q, units, None)
    assert signpred._compiled(blob, np.abs(q), units, None) is not None


def test_form_2_is_shorter_on_a_photo_residual():
    """Form 2 (round-major, every block and side) against form 1 on the photo residual: 5 % and 13 % shorter sign
    streams without 16x16 groups, 2 % shorter and 0.6 % longer with a random (not RD-chosen) group mask; 3.8 % in
    total (asserted: 3 %, and no case more than 2 % longer)."""
    _, _, raw = _photo_residual()
    total = {1: 0, 2: 0}
    for step in (3.0, 8.0):
        q, units = image_dct.quantise_raw(raw, step)
        for mask in (None, _groups_mask(*q.shape[1:3], 5)):
            n = {form: len(signpred.encode(q, units, mask, form)) for form in (1, 2)}
            assert n[2] < 1.02 * n[1]
            for form in n:
                total[form] += n[form]
    assert total[2] < 0.97 * total[1]
