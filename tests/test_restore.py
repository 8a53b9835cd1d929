"""``gaussian+dct``'s restoration filters (``models.restore``, the ``dct`` section's format 3): the compiled filter
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


def _random_params(rng, c, shape, n_act, n_dir, shift, extreme=False):
    n_cls, taps = n_act * n_dir, len(restore.SHAPES[shape])
    params = {"shape": shape, "shift": shift, "n_act": n_act, "n_dir": n_dir,
              "thresholds": sorted(int(t) for t in rng.integers(0, 3000, n_act - 1)), "coefs": [], "maps": []}
    for ch in range(c):
        n = int(rng.integers(0, min(n_cls, 6) + 1)) if ch else int(rng.integers(1, min(n_cls, 6) + 1))
        top = restore.COEF_MAX if extreme else 300
        coefs = rng.integers(-top, top + 1, (n, taps))
        if extreme:
            coefs[:, ::2] = np.where(rng.random((n, (taps + 1) // 2)) < 0.5, -top, top)
        params["coefs"].append(coefs.astype(np.int64))
        params["maps"].append(rng.integers(0, max(n, 1), n_cls).astype(np.int64))
    return params


@needs_kernel
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("shape", [0, 1])
@pytest.mark.parametrize("n_act,n_dir", [(5, 5), (1, 1), (8, 1), (16, 5)])
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_matches_reference_on_random_images(c, shape, n_act, n_dir, threads, monkeypatch):
    monkeypatch.setattr(dct_residual, "PARALLEL_MIN_PIXELS", 0 if threads > 1 else 1 << 40)
    import torch

    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    rng = np.random.default_rng(100 * c + 10 * shape + n_act)
    for h, w in ((1, 1), (3, 7), (17, 30), (64, 45)):
        for extreme in (False, True):
            img = rng.integers(0, 256, (h, w, c)).astype(np.uint8)
            img[rng.random((h, w)) < 0.2] = 255  # clipping at both ends
            img[rng.random((h, w)) < 0.2] = 0
            for shift in (1, 8, restore.MAX_SHIFT):
                params = _random_params(rng, c, shape, n_act, n_dir, shift, extreme)
                ref = restore.apply_reference(img, params)
                got = kernel.apply(img, params)
                assert got is not None and np.array_equal(got, ref), (h, w, extreme, shift)


def _blurred_noisy(image: np.ndarray, seed: int = 0) -> np.ndarray:
    """A stand-in for a decoded image: blurred (3x3 box) and noisy, so that a restoration filter has work."""
    rng = np.random.default_rng(seed)
    x = image.astype(np.float64)
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
    blur = sum(p[dy:dy + x.shape[0], dx:dx + x.shape[1]] for dy in range(3) for dx in range(3)) / 9.0
    return np.clip(np.rint(blur + rng.normal(0, 2.0, x.shape)), 0, 255).astype(np.uint8)


def _sse(a, b):
    return int(((a.astype(np.int64) - b) ** 2).sum())


@pytest.mark.parametrize("c", [1, 3])
def test_fitted_filters_lower_the_error_and_round_trip(c):
    original = textured()[..., :c] if c == 3 else textured()[..., :1]
    decoded = _blurred_noisy(original)
    blob = restore.choose(original, decoded, 4.0)
    assert blob is not None
    params = restore.decode(blob, c)
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
def test_kernel_on_a_real_image(shared_data):
    from inrcodec.signals import load

    image = load(shared_data / "kodak" / "kodim07.png").data
    decoded = _blurred_noisy(image, 1)
    params = restore.decode(restore.choose(image, decoded, 8.0), 3)
    assert np.array_equal(kernel.apply(decoded, params), restore.apply_reference(decoded, params))


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


def test_codec_writes_format_3_and_decodes_what_it_encoded(monkeypatch):
    """The encoder's closed loop: the file's decoded image is what ``add`` with the file's filters gives, and the
    report's PSNR is the decoded one. One filter per channel at lambda 0, so that the tiny image's are written."""
    for name, value in (("LAMBDA", 0.0), ("N_ACT", 1), ("N_DIR", 1)):
        monkeypatch.setattr(restore, name, value)
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


def test_16bit_files_refuse_filters():
    from inrcodec.models.gaussian_dct import GaussianDCT, GaussianDCTConfig

    sig = Signal((textured()[..., :1].astype(np.uint16) * 257), "image", metadata={"bit_depth": 16})
    res = compress(sig, "gaussian+dct", bpp=3.0, steps=10, seed=0)
    c = read_container(res.data)
    dct = c.sections["dct"]
    assert dct[0] in (image_dct.FORMAT, image_dct.FORMAT_TX16)  # 16-bit images: no filters
    h, w, ch = c.signal["shape"]
    q, units, strength, _ = image_dct.decode_section(dct, h, w, ch)
    filters = restore.encode({"shape": 1, "shift": 8, "n_act": 1, "n_dir": 1, "thresholds": [],
                              "coefs": [np.ones((1, 12), np.int64)], "maps": [np.zeros(1, np.int64)]})
    forged = image_dct.encode_section(q, units, strength, filters=filters)
    cfg = GaussianDCTConfig(**{k: c.config[k] for k in ("n_gaussians", "layers", "base_share")})
    with pytest.raises(FormatError):
        GaussianDCT.decode(cfg, c.signal, {"gaussians": c.sections["gaussians"], "dct": forged})


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(blob=st.binary(max_size=200), channels=st.sampled_from([1, 3]))
def test_decode_on_garbage_is_a_format_error_or_a_valid_filter_set(blob, channels):
    try:
        params = restore.decode(blob, channels)
    except FormatError:
        return
    img = np.arange(5 * 6 * channels, dtype=np.uint8).reshape(5, 6, channels)
    assert np.array_equal(restore.apply(img, params), restore.apply_reference(img, params))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(cut=st.integers(0, 10_000), byte=st.integers(0, 255), drop=st.booleans())
def test_damaged_format_3_sections_fail_cleanly(cut, byte, drop):
    """A format-3 ``dct`` section with one byte changed or cut short: a FormatError, or some valid residual."""
    rng = np.random.default_rng(0)
    q = np.zeros((3, 3, 4, 64), np.int32)
    q[:, :, :, :3] = rng.integers(-3, 4, (3, 3, 4, 3))
    units = image_dct.step_units(8.0, 3)
    blob = restore.encode(_random_params(rng, 3, 1, 5, 5, 8))
    section = bytearray(image_dct.encode_section(q, units, 12, filters=blob))
    i = cut % len(section)
    if drop:
        del section[i:]
    else:
        section[i] = byte
    try:
        image_dct.decode_residual(bytes(section), 24, 32, 3)
    except FormatError:
        pass
