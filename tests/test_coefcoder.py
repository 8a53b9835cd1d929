"""The context-modelled residual symbol coder (``models/coefcoder.py``, ``image_dct`` format 2): exact round trip
on generated symbol arrays of every shape it meets, the size estimate tracks the real size, format 1 sections
still decode, a photo's residual takes fewer bytes than in format 1, and hostile streams give FormatError only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inrcodec.errors import FormatError
from inrcodec.models import coefcoder, image_dct
from inrcodec.models.mcdct import MAX_SYMBOL

from helpers import cut_streams, damaged


def dct_like(c: int, by: int, bx: int, seed: int = 0, scale: float = 3.0) -> np.ndarray:
    """Symbols shaped like a quantised residual: Laplace magnitudes falling with frequency, varying per block
    (texture in patches), dead-zone rounded, many blocks with nothing; chroma weaker than luma."""
    rng = np.random.default_rng(seed)
    freq = np.arange(64)
    patches = rng.gamma(0.7, 1.0, (-(-by // 4), -(-bx // 4))) * (rng.random((-(-by // 4), -(-bx // 4))) < 0.8)
    activity = np.kron(patches, np.ones((4, 4)))[None, :by, :bx, None]  # texture in 4x4-block patches
    chan = np.array([1.0, 0.5, 0.4])[:c, None, None, None]
    b = scale * activity * chan * np.exp(-freq / 10.0)
    x = rng.laplace(0.0, 1.0, (c, by, bx, 64)) * b
    return (np.sign(x) * np.floor(np.abs(x) + 0.35)).astype(np.int32)


@pytest.mark.parametrize("c,by,bx", [(3, 5, 7), (1, 4, 6), (3, 1, 1), (1, 1, 9), (3, 12, 16)])
def test_round_trip_exact(c, by, bx):
    q = dct_like(c, by, bx, seed=by * bx)
    blob = coefcoder.encode(q)
    out = coefcoder.decode(blob, c, by, bx)
    assert out.dtype == np.int16 and out.shape == q.shape
    assert np.array_equal(out, q)


def test_extremes_round_trip():
    """All zero; one coefficient at the last position; the largest symbols (escapes) and every position full."""
    z = np.zeros((3, 4, 5, 64), np.int32)
    assert np.array_equal(coefcoder.decode(coefcoder.encode(z), 3, 4, 5), z)
    one = z.copy()
    one[2, 3, 4, 63] = -1
    assert np.array_equal(coefcoder.decode(coefcoder.encode(one), 3, 4, 5), one)
    rng = np.random.default_rng(3)
    big = rng.integers(-MAX_SYMBOL, MAX_SYMBOL + 1, (3, 2, 3, 64)).astype(np.int32)
    big[0, 0, 0, :] = MAX_SYMBOL
    big[1, 1, 2, :] = -MAX_SYMBOL
    assert np.array_equal(coefcoder.decode(coefcoder.encode(big), 3, 2, 3), big)


def test_estimate_tracks_the_coded_size():
    for seed, scale in ((0, 1.0), (1, 3.0), (2, 10.0)):
        q = dct_like(3, 16, 24, seed=seed, scale=scale)
        real = len(coefcoder.encode(q))
        # the estimate sums the same models' -log2 p; the coder adds at most a few bytes (ANS flush, headers)
        assert abs(coefcoder.estimate_bytes(q) - real) <= 8 + 0.002 * real


def photo_over_smooth_base(path, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """(crop of the photo at ``path``, a smooth base of it: 8x8 means, bilinear), the kind of error a Gaussian base
    leaves (texture and edges in places)."""
    import torch
    import torch.nn.functional as F

    from inrcodec.signals import load

    img = load(path).data[rows, cols]
    t = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None]
    smooth = F.interpolate(F.avg_pool2d(t, 8), scale_factor=8, mode="bilinear", align_corners=False)
    return img, np.clip(np.rint(smooth[0].permute(1, 2, 0).numpy()), 0, 255).astype(np.uint8)


def test_fewer_bytes_than_format_1_on_a_photo_residual(shared_data):
    """The point of format 2, on a real residual: a 256x256 crop of kodim03 over a smooth base (8x8 means,
    bilinear; the kind of error a Gaussian base leaves: texture and edges in places). Measured 8.3 / 9.2 % fewer
    bytes at steps 6 / 12 (kodim07, kodim01 crops: 4-5 %; Kodak residuals over Gaussian bases: 6-13 %); asserted:
    5 %. (On stationary synthetic noise the contexts have nothing to find: there it is ~5 % larger.)"""
    img, base = photo_over_smooth_base(shared_data / "kodak" / "kodim03.png", slice(128, 384), slice(256, 512))
    for step in (6.0, 12.0):
        q, _ = image_dct.analyse(img, base, step)
        new, old = len(coefcoder.encode(q)), len(image_dct.encode_symbols(q))
        assert new < 0.95 * old, (step, new, old)
        assert np.array_equal(coefcoder.decode(coefcoder.encode(q), *q.shape[:3]), q)


@pytest.mark.parametrize("channels", [1, 3])
def test_sections_of_both_formats_decode(channels):
    q = dct_like(channels, 3, 4, seed=5)
    units = image_dct.step_units(6.0, channels)
    for form in (1, 2, 7):
        blob = image_dct.encode_section(q, units, 12, form=form)
        assert blob[0] == form
        got, u, strength, _ = image_dct.decode_section(blob, 24, 32, channels)
        assert np.array_equal(got, q) and np.array_equal(u, units) and strength == 12
    # what the encoder writes (since session 25)
    assert image_dct.encode_section(q, units, 12)[0] == image_dct.FORMAT_TOOLS == 7


def test_hostile_streams_raise_format_error_only():
    q = dct_like(3, 6, 8, seed=11)
    blob = coefcoder.encode(q)
    for data in cut_streams(blob):
        with pytest.raises(FormatError):
            coefcoder.decode(data, 3, 6, 8)
    for data in damaged(blob, np.random.default_rng(0), 60):
        try:
            out = coefcoder.decode(data, 3, 6, 8)
        except FormatError:
            continue
        assert out.shape == (3, 6, 8, 64) and np.abs(out.astype(np.int64)).max() <= MAX_SYMBOL


@settings(max_examples=150, deadline=None)
@given(blob=st.binary(max_size=400), hw=st.tuples(st.integers(1, 40), st.integers(1, 40)),
       channels=st.sampled_from([1, 3]))
def test_section_decoder_on_garbage(blob, hw, channels):
    """Any bytes after a format-2 header: a FormatError or symbols of the right shape and range, nothing else."""
    data = bytes([2]) + bytes([16, 16] * channels) + bytes([12]) + blob
    try:
        q, _, _, _ = image_dct.decode_section(data, hw[0], hw[1], channels)
    except FormatError:
        return
    assert q.shape == (channels, -(-hw[0] // 8), -(-hw[1] // 8), 64)
    assert np.abs(q.astype(np.int64)).max(initial=0) <= MAX_SYMBOL
