"""The compiled format-2 symbol decoder (``kernels.coefcoder_decode``) against the Python walk it replaces
(``coefcoder.decode`` with the kernel hidden): the same symbols on residuals of every shape and magnitude the coder
meets (escapes up to MAX_SYMBOL, gray and RGB, one block to many, dense and sparse), and on damaged streams the
same outcome (symbols or the same FormatError). The kernel must also vouch for every valid stream (else decoding
would silently fall back to the slow path): checked by calling it directly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inrcodec.entropy._bytes import read_varint
from inrcodec.errors import FormatError
from inrcodec.kernels import _loader, coefcoder_decode
from inrcodec.models import coefcoder
from inrcodec.models.mcdct import MAX_SYMBOL

from helpers import assert_same_outcome, cut_streams, damaged, outcome as _outcome
from test_coefcoder import dct_like

needs_kernel = pytest.mark.skipif(_loader.cpu_library() is None, reason="compiled CPU library unavailable")


def _reference(data, c, by, bx, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(coefcoder_decode, "decode", lambda *a: None)
        return coefcoder.decode(data, c, by, bx)


def _kernel_vouches(blob, c, by, bx) -> bool:
    n, pos = read_varint(blob, 0, "length", 5)
    up, left = coefcoder._template()
    return coefcoder_decode.decode(blob[pos:pos + n], c, by, bx, up, left, coefcoder._diagonal_starts(),
                                   coefcoder._class_table()) is not None


@needs_kernel
@pytest.mark.parametrize("c,by,bx,scale", [(3, 5, 7, 3.0), (1, 4, 6, 3.0), (3, 1, 1, 3.0), (1, 1, 9, 1.0),
                                           (3, 12, 16, 10.0), (3, 40, 56, 3.0), (1, 33, 47, 30.0), (3, 64, 96, 0.7)])
def test_kernel_decodes_what_the_walk_decodes(c, by, bx, scale, monkeypatch):
    q = dct_like(c, by, bx, seed=by * bx + c, scale=scale)  # 64x96 blocks: long chunks, class-by-class decoding
    blob = coefcoder.encode(q)
    assert _kernel_vouches(blob, c, by, bx)
    got = coefcoder.decode(blob, c, by, bx)
    np.testing.assert_array_equal(got, q)
    np.testing.assert_array_equal(got, _reference(blob, c, by, bx, monkeypatch))


@needs_kernel
def test_kernel_extremes():
    rng = np.random.default_rng(3)
    for q in (np.zeros((3, 4, 5, 64), np.int32), rng.integers(-MAX_SYMBOL, MAX_SYMBOL + 1, (3, 2, 3, 64)),
              np.where(rng.random((1, 6, 7, 64)) < 0.05, rng.integers(-40, 41, (1, 6, 7, 64)), 0)):
        q = q.astype(np.int32)
        q[0, 0, 0, :] = MAX_SYMBOL if q.any() else 0
        blob = coefcoder.encode(q)
        assert _kernel_vouches(blob, *q.shape[:3])
        np.testing.assert_array_equal(coefcoder.decode(blob, *q.shape[:3]), q)


@needs_kernel
def test_damaged_streams_give_the_walks_outcome(monkeypatch):
    q = dct_like(3, 6, 8, seed=11)
    blob = coefcoder.encode(q)
    for data in cut_streams(blob) + damaged(blob, np.random.default_rng(0), 150):
        fast = _outcome(lambda: coefcoder.decode(data, 3, 6, 8))
        ref = _outcome(lambda: _reference(data, 3, 6, 8, monkeypatch))
        assert_same_outcome(fast, ref)


@needs_kernel
@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=300), hw=st.tuples(st.integers(1, 12), st.integers(1, 12)),
       channels=st.sampled_from([1, 3]))
def test_garbage_gives_the_walks_outcome(blob, hw, channels):
    data = bytes([len(blob)]) + blob if len(blob) < 128 else blob
    fast = _outcome(lambda: coefcoder.decode(data, channels, *hw))
    old = coefcoder_decode.decode
    coefcoder_decode.decode = lambda *a: None
    try:
        ref = _outcome(lambda: coefcoder.decode(data, channels, *hw))
    finally:
        coefcoder_decode.decode = old
    assert_same_outcome(fast, ref)
