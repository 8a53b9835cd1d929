"""``gaussian+dct``'s restoration filters (``models.restore``, the ``dct`` section's formats 3, 5 and 6 (cross-channel
taps)): the compiled filter
(``kernels.restore``) against its numpy reference bit for bit, the stream's round trip and strict validation, that
the encoder's filters lower the error they are fitted to, and the codec's closed loop (decoder == encoder)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_gaussian_dct import textured

from inrcodec import compress, decompress
from inrcodec.container import read_container
from inrcodec.errors import FormatError
from inrcodec.kernels import _loader, dct_residual
from inrcodec.kernels import restore as kernel
from inrcodec.models import gaussian_dct, image_dct, restore
from inrcodec.signal import Signal

needs_kernel = pytest.mark.skipif(_loader.cpu_library() is None, reason="compiled CPU library unavailable")


def _random_params(rng, c, shape, n_act, n_dir, shift, extreme=False, cross=False):
    """Random filters; with ``cross`` (3 channels) the cross-channel form, 0-6 offsets per channel with filters."""
    n_cls = n_act * n_dir
    params = {"shape": shape, "shift": shift, "n_act": n_act, "n_dir": n_dir,
              "thresholds": sorted(int(t) for t in rng.integers(0, 3000, n_act - 1)), "coefs": [], "maps": []}
    if cross:
        params["cross"] = []
    for ch in range(c):
        n = int(rng.integers(0, min(n_cls, 6) + 1)) if ch else int(rng.integers(1, min(n_cls, 6) + 1))
        taps = len(restore.SHAPES[shape])
        if cross:
            n_x = int(rng.integers(1 if ch == 0 else 0, restore.MAX_CROSS + 1)) if n else 0
            params["cross"].append(n_x)
            taps += (c - 1) * n_x
        top = restore.COEF_MAX if extreme else 300
        coefs = rng.integers(-top, top + 1, (n, taps))
        if extreme:
            coefs[:, ::2] = np.where(rng.random((n, (taps + 1) // 2)) < 0.5, -top, top)
        params["coefs"].append(coefs.astype(np.int64))
        params["maps"].append(rng.integers(0, max(n, 1), n_cls).astype(np.int64))
    return params


@needs_kernel
@pytest.mark.parametrize("c,cross", [(1, False), (3, False), (3, True)])
@pytest.mark.parametrize("shape", [0, 1])
@pytest.mark.parametrize("n_act,n_dir", [(5, 5), (1, 1), (8, 1), (16, 5)])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("isa", ["dispatch", "portable"])
def test_kernel_matches_reference_on_random_images(c, cross, shape, n_act, n_dir, threads, isa, monkeypatch):
    _kernel_mode(monkeypatch, threads, isa)
    rng = np.random.default_rng(100 * c + 10 * shape + n_act)
    for h, w in ((1, 1), (3, 7), (17, 30), (64, 45)):
        for extreme in (False, True):
            img = rng.integers(0, 256, (h, w, c)).astype(np.uint8)
            img[rng.random((h, w)) < 0.2] = 255  # clipping at both ends
            img[rng.random((h, w)) < 0.2] = 0
            for shift in (1, 8, restore.MAX_SHIFT):
                params = _random_params(rng, c, shape, n_act, n_dir, shift, extreme, cross)
                ref = restore.apply_reference(img, params)
                got = kernel.apply(img, params)
                assert got is not None and np.array_equal(got, ref), (h, w, extreme, shift)


def _kernel_mode(monkeypatch, threads: int, isa: str) -> None:
    """The kernel on ``threads`` OpenMP threads even on small images, on the copy the CPU dispatch picks (AVX2 where
    there is one) or the portable one."""
    import torch

    monkeypatch.setattr(dct_residual, "PARALLEL_MIN_PIXELS", 0 if threads > 1 else 1 << 40)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    if isa == "portable":
        monkeypatch.setenv("INRCODEC_DCT_PORTABLE", "1")
    else:
        monkeypatch.delenv("INRCODEC_DCT_PORTABLE", raising=False)


def _blurred_noisy(image: np.ndarray, seed: int = 0) -> np.ndarray:
    """A stand-in for a decoded image: blurred (3x3 box) and noisy, so that a restoration filter has work."""
    rng = np.random.default_rng(seed)
    x = image.astype(np.float64)
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
    blur = sum(p[dy:dy + x.shape[0], dx:dx + x.shape[1]] for dy in range(3) for dx in range(3)) / 9.0
    return np.clip(np.rint(blur + rng.normal(0, 2.0, x.shape)), 0, 255).astype(np.uint8)


def _sse(a, b):
    return int(((a.astype(np.int64) - b) ** 2).sum())


@pytest.mark.parametrize("c,cross", [(1, 0), (3, 0), (3, 2)])
def test_fitted_filters_lower_the_error_and_round_trip(c, cross):
    original = textured()[..., :c] if c == 3 else textured()[..., :1]
    decoded = _blurred_noisy(original)
    got = restore.choose(original, decoded, 4.0, cross=cross)
    assert got is not None
    blob, cross_form = got
    assert cross_form == bool(cross)  # gray images never take cross taps; this colour one does (its noise is shared)
    params = restore.decode(blob, c, cross_form)
    assert restore.encode(params) == blob  # the stream is canonical
    out = restore.apply(decoded, params)
    assert np.array_equal(out, restore.apply_reference(decoded, params))
    # a blur + noise of this size: the filters take more than a fifth of the error away (measured ~0.4-0.5)
    assert _sse(original, out) < 0.8 * _sse(original, decoded)


def test_filters_that_do_not_pay_are_not_written():
    original = textured()
    assert restore.choose(original, original.copy(), 4.0) is None  # nothing to restore
    # a tiny gain at a coarse step: lambda x step^2 per bit is more than the filters' gain
    decoded = _blurred_noisy(original)
    assert restore.choose(original, decoded, 4.0) is not None
    assert restore.choose(original, decoded, 400.0) is None


@needs_kernel
def test_kernel_on_a_real_image(shared_data, monkeypatch):
    from inrcodec.signals import load

    image = load(shared_data / "kodak" / "kodim07.png").data
    decoded = _blurred_noisy(image, 1)
    for cross in (0, 2, 4):
        blob, cross_form = restore.choose(image, decoded, 8.0, cross=cross)
        params = restore.decode(blob, 3, cross_form)
        assert cross_form == bool(cross)  # blur + noise independent per channel: the other channels' detail helps
        ref = restore.apply_reference(decoded, params)
        for threads, isa in ((1, "dispatch"), (2, "dispatch"), (2, "portable")):
            _kernel_mode(monkeypatch, threads, isa)
            assert np.array_equal(kernel.apply(decoded, params), ref), (cross, threads, isa)


def test_decode_rejects_malformed_streams():
    rng = np.random.default_rng(3)
    good = restore.encode(_random_params(rng, 3, 1, 5, 5, 8))
    restore.decode(good, 3)
    bad = [b"", good[:3], bytes([2]) + good[1:], good[:1] + bytes([0]) + good[2:], good[:1] + bytes([13]) + good[2:],
           good[:2] + bytes([0]) + good[3:], good[:2] + bytes([17]) + good[3:], good[:3] + bytes([4]) + good[4:],
           good[:-1], good + b"\0"]
    for data in bad:
        with pytest.raises(FormatError):
            restore.decode(data, 3)
    with pytest.raises(FormatError):
        restore.decode(good, 1)  # another channel count reads the counts and blobs out of step
    # thresholds must not decrease; every channel may not be off; a coefficient beyond the cap; a map past the filters
    p = _random_params(rng, 3, 1, 3, 1, 8)
    for edit in ("thresholds", "counts", "coef", "map"):
        q = {k: (list(v) if isinstance(v, list) else v) for k, v in p.items()}
        if edit == "thresholds":
            q["thresholds"] = [5, 4]
        elif edit == "counts":
            q["coefs"] = [np.zeros((0, 12), np.int64)] * 3
        elif edit == "coef":
            q["coefs"] = [np.full((1, 12), restore.COEF_MAX + 1, np.int64)] * 3
        else:
            q["coefs"] = [np.ones((2, 12), np.int64)] * 3
            q["maps"] = [np.array([0, 1, 2])] * 3
        with pytest.raises(FormatError):
            restore.decode(restore.encode(q), 3)


def test_decode_rejects_malformed_cross_streams():
    rng = np.random.default_rng(4)
    p = _random_params(rng, 3, 1, 5, 5, 8, cross=True)
    good = restore.encode(p)
    assert restore.decode(good, 3, True)["cross"] == p["cross"]
    with pytest.raises(FormatError):
        restore.decode(good, 3)  # the format-3/5 reader reads the offsets as coefficients: out of step
    for cross in ([0, 0, 0], [7, 0, 0], [9, 9, 9]):  # none (that is format 3/5), beyond the 5x5 diamond's 6
        q = dict(p, cross=cross)
        with pytest.raises(FormatError):
            restore.decode(restore.encode(q), 3, True)
    gray = {"shape": 1, "shift": 8, "n_act": 1, "n_dir": 1, "thresholds": [], "maps": [np.zeros(1, np.int64)],
            "coefs": [np.ones((1, 12), np.int64)], "cross": [1]}
    with pytest.raises(FormatError):  # a gray image has no other channel
        restore.decode(restore.encode(gray), 1, True)
    # offsets on a channel without filters
    q = _random_params(rng, 3, 1, 1, 1, 8, cross=True)
    q["coefs"][2], q["cross"][2] = np.zeros((0, 12), np.int64), 3
    with pytest.raises(FormatError):
        restore.decode(restore.encode(q), 3, True)


def test_cross_taps_are_dc_free():
    """Cross taps read second differences of the other channels: on flat planes they add nothing, so a filter set
    with only cross taps leaves a flat image as it is."""
    img = np.zeros((9, 11, 3), np.uint8) + np.array([10, 200, 90], np.uint8)
    p = {"shape": 0, "shift": 4, "n_act": 1, "n_dir": 1, "thresholds": [], "cross": [6, 6, 6],
         "coefs": [np.full((1, 6 + 12), restore.COEF_MAX, np.int64)] * 3, "maps": [np.zeros(1, np.int64)] * 3}
    assert np.array_equal(restore.apply(img, p), img) and np.array_equal(restore.apply_reference(img, p), img)
    # and on a textured one they change the channel they filter from the others' detail only
    img2 = img.copy()
    img2[4, 5, 1] = 0  # a dot in G alone
    p["coefs"] = [np.zeros((1, 18), np.int64), np.zeros((0, 18), np.int64), np.zeros((0, 18), np.int64)]
    p["coefs"][0][0, 6] = 64  # R's filter: G's horizontal second difference, x 64 / 16
    p["cross"] = [1, 0, 0]
    out = restore.apply_reference(img2, p)
    want = img2[..., 0].astype(np.int32)
    want[4, 4:7] += np.array([-800, 1600, -800])  # 64 / 16 x (x[p+1] + x[p-1] - 2 x[p]) of G's dot
    assert np.array_equal(out[..., 0], np.clip(want, 0, 255)) and np.array_equal(out[..., 1:], img2[..., 1:])


def test_codec_writes_format_3_and_decodes_what_it_encoded(monkeypatch):
    """The encoder's closed loop: the file's decoded image is what ``add`` with the file's filters gives, and the
    report's PSNR is the decoded one. One filter per channel at lambda 0, so that the tiny image's are written; no
    cross-channel taps (with them: format 6, below)."""
    for name, value in (("LAMBDA", 0.0), ("N_ACT", 1), ("N_DIR", 1), ("CROSS", 0)):
        monkeypatch.setattr(restore, name, value)
    monkeypatch.setattr(image_dct, "RICH_MODEL", False)  # formats 2-6 (format 7: below)
    monkeypatch.setattr(image_dct, "CFL", "off")  # chroma from luma would make it format 7
    sig = Signal(textured(), "image")
    res = compress(sig, "gaussian+dct", bpp=3.0, steps=40, seed=0)
    c = read_container(res.data)
    assert c.sections["dct"][0] in (image_dct.FORMAT_RESTORE, image_dct.FORMAT_TX16_RESTORE)
    q, units, strength, _, filters = image_dct.decode_residual(c.sections["dct"], *c.signal["shape"])
    assert filters is not None
    out = decompress(res.data).data
    mse = np.mean((out.astype(np.float64) - sig.data) ** 2)
    assert 10 * np.log10(255.0**2 / mse) == pytest.approx(res.report["psnr"], abs=1e-9)
    monkeypatch.setattr(gaussian_dct, "RESTORE", False)  # the same fit without filters: format 2, worse at 0 lambda
    plain = compress(sig, "gaussian+dct", bpp=3.0, steps=40, seed=0)
    assert read_container(plain.data).sections["dct"][0] in (image_dct.FORMAT, image_dct.FORMAT_TX16)


def _cross_filtered(monkeypatch, section_format: int):
    """A fit with cross-channel taps (lambda 0: they lower the SSE, so the fit keeps them) whose ``dct`` section is
    ``section_format`` with cross filters; the decoder's image is the encoder's (the report's PSNR).
    Returns (the fit's result, the decoded image, the filters, the signal's shape)."""
    for name, value in (("LAMBDA", 0.0), ("N_ACT", 1), ("N_DIR", 1), ("CROSS", 2)):
        monkeypatch.setattr(restore, name, value)
    sig = Signal(textured(), "image")
    res = compress(sig, "gaussian+dct", bpp=3.0, steps=40, seed=0)
    c = read_container(res.data)
    assert c.sections["dct"][0] == section_format
    q, units, strength, tx16, filters = image_dct.decode_residual(c.sections["dct"], *c.signal["shape"])
    assert filters is not None and any(filters["cross"])
    out = decompress(res.data).data
    mse = np.mean((out.astype(np.float64) - sig.data) ** 2)
    assert 10 * np.log10(255.0**2 / mse) == pytest.approx(res.report["psnr"], abs=1e-9)
    return res, out, filters, c.signal["shape"]


def test_codec_writes_format_6_and_decodes_what_it_encoded(monkeypatch):
    """Format 6 (the symbols of format 2, no chroma from luma), its filters those of the unfiltered decode."""
    monkeypatch.setattr(image_dct, "RICH_MODEL", False)
    monkeypatch.setattr(image_dct, "CFL", "off")
    res, out, filters, _ = _cross_filtered(monkeypatch, image_dct.FORMAT_CROSS)
    base_free = gaussian_dct.without_restoration(res.data)  # the same symbols without filters: format 2 or 4
    assert read_container(base_free).sections["dct"][0] in (image_dct.FORMAT, image_dct.FORMAT_TX16)
    unfiltered = decompress(base_free).data
    assert np.array_equal(out, restore.apply_reference(unfiltered, filters))


def test_codec_writes_format_7_and_decodes_what_it_encoded(monkeypatch):
    """The encoder's default since session 25: format 7 (coefcoder7's symbols) with the cross-channel filters;
    without the filters the same symbols stay format 7."""
    res, out, filters, shape = _cross_filtered(monkeypatch, image_dct.FORMAT_TOOLS)
    base_free = gaussian_dct.without_restoration(res.data)
    dct = read_container(base_free).sections["dct"]
    assert dct[0] == image_dct.FORMAT_TOOLS and image_dct.decode_residual(dct, *shape)[4] is None
    assert np.array_equal(out, restore.apply_reference(decompress(base_free).data, filters))


def test_16bit_files_refuse_filters():
    from inrcodec.models.gaussian_dct import GaussianDCT, GaussianDCTConfig

    sig = Signal((textured()[..., :1].astype(np.uint16) * 257), "image", metadata={"bit_depth": 16})
    res = compress(sig, "gaussian+dct", bpp=3.0, steps=10, seed=0)
    c = read_container(res.data)
    dct = c.sections["dct"]
    assert dct[0] == image_dct.FORMAT_TOOLS and image_dct.decode_residual(dct, *c.signal["shape"])[4] is None
    h, w, ch = c.signal["shape"]  # 16-bit images: no filters
    q, units, strength, _ = image_dct.decode_section(dct, h, w, ch)
    filters = restore.encode({"shape": 1, "shift": 8, "n_act": 1, "n_dir": 1, "thresholds": [],
                              "coefs": [np.ones((1, 12), np.int64)], "maps": [np.zeros(1, np.int64)]})
    forged = image_dct.encode_section(q, units, strength, filters=filters)
    cfg = GaussianDCTConfig(**{k: c.config[k] for k in ("n_gaussians", "layers", "base_share")})
    with pytest.raises(FormatError):
        GaussianDCT.decode(cfg, c.signal, {"gaussians": c.sections["gaussians"], "dct": forged})


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(blob=st.binary(max_size=200), channels=st.sampled_from([1, 3]), cross_form=st.booleans())
def test_decode_on_garbage_is_a_format_error_or_a_valid_filter_set(blob, channels, cross_form):
    try:
        params = restore.decode(blob, channels, cross_form)
    except FormatError:
        return
    img = np.arange(5 * 6 * channels, dtype=np.uint8).reshape(5, 6, channels)
    assert np.array_equal(restore.apply(img, params), restore.apply_reference(img, params))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(cut=st.integers(0, 10_000), byte=st.integers(0, 255), drop=st.booleans(), cross=st.booleans(),
       rich=st.booleans())
def test_damaged_format_3_and_6_sections_fail_cleanly(cut, byte, drop, cross, rich):
    """A format-3, 6 or 7 ``dct`` section with one byte changed or cut short: a FormatError, or some valid
    residual."""
    rng = np.random.default_rng(0)
    q = np.zeros((3, 3, 4, 64), np.int32)
    q[:, :, :, :3] = rng.integers(-3, 4, (3, 3, 4, 3))
    units = image_dct.step_units(8.0, 3)
    blob = restore.encode(_random_params(rng, 3, 1, 5, 5, 8, cross=cross))
    form = image_dct.FORMAT_TOOLS if rich else image_dct.FORMAT
    section = bytearray(image_dct.encode_section(q, units, 12, form=form, filters=blob, cross=cross))
    assert section[0] == (form if rich else image_dct.FORMAT_CROSS if cross else image_dct.FORMAT_RESTORE)
    i = cut % len(section)
    if drop:
        del section[i:]
    else:
        section[i] = byte
    try:
        image_dct.decode_residual(bytes(section), 24, 32, 3)
    except FormatError:
        pass


def _merge_by_resolving_every_pair(A, b, e, lam):
    """Session 23's greedy merging, every pair re-solved at every step: the reference of ``restore._merge``."""
    n_cls, taps = b.shape
    groups, GA, Gb, Ge = [[k] for k in range(n_cls)], list(A), list(b), list(e)
    sse = list(restore._solve(A, b, e)[0])
    best_cost = best = None
    while True:
        n = len(groups)
        cost = sum(sse) + lam * (n * taps * restore.COEF_BITS + (n_cls * np.log2(n) if n > 1 else 0.0))
        if best_cost is None or cost < best_cost:
            best_cost, best = cost, [list(g) for g in groups]
        if n == 1:
            break
        ii, jj = np.triu_indices(n, 1)
        ga, gb, ge = np.array(GA), np.array(Gb), np.array(Ge)
        s2 = restore._solve(ga[ii] + ga[jj], gb[ii] + gb[jj], ge[ii] + ge[jj])[0]
        m = int(np.argmin(s2 - np.asarray(sse)[ii] - np.asarray(sse)[jj]))
        i, j = int(ii[m]), int(jj[m])
        groups[i] += groups[j]
        GA[i], Gb[i], Ge[i], sse[i] = ga[i] + ga[j], gb[i] + gb[j], ge[i] + ge[j], s2[m]
        for lst in (groups, GA, Gb, Ge, sse):
            del lst[j]
    mapping = np.zeros(n_cls, np.int64)
    for g, members in enumerate(best):
        mapping[members] = g
    return mapping, best_cost


@pytest.mark.parametrize("taps,lam,groups", [(12, 1.0, 10), (12, 5.0, 4), (20, 1.0, 8), (20, 5.0, 5), (20, 2000.0, 1)])
def test_merging_keeps_the_choices_of_resolving_every_pair(taps, lam, groups):
    """The fit's merging re-solves only the new group's pairs: the same groups and cost as re-solving all."""
    rng = np.random.default_rng(taps)
    img = textured(64, 96, seed=taps)
    cls = restore._pixel_classes(restore.classify(img, [50, 150, 300, 600], 5, 5), 64, 96).ravel()
    order, starts = restore._class_order(cls, 25)
    f = np.concatenate([restore._features(img[..., k].astype(np.int32), 1) for k in range(2)])[:taps]
    t = rng.integers(-9, 10, (1, f[0].size)) + f[0].reshape(1, -1) // 8
    A, b, e = restore._class_stats(f.reshape(taps, -1), t, order, starts)
    got = restore._merge(A, b[:, 0], e[:, 0], lam)
    want = _merge_by_resolving_every_pair(A, b[:, 0], e[:, 0], lam)
    assert np.array_equal(got[0], want[0]) and got[1] == pytest.approx(want[1], rel=1e-12)
    assert got[0].max() + 1 == groups  # merged part of the way (as measured): the greedy order matters
