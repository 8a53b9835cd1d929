"""RD-optimised quantisation of ``mcvideo``'s P-frame residual (``mcdct2.analyse`` with ``image_dct.rdo_quantise``):
on a sparse residual (most blocks code nothing, as in a predicted frame) it must lower the error + lambda x bytes
at the encoder's own lambda; it is an encoder choice, so the unchanged decoder reads it
(the closed loop equal to the decoder: ``test_video.py``, ``test_video_bframes.py``, which run with it on)."""

from __future__ import annotations

import numpy as np

from inrcodec.models import mcdct2


def sparse_residual(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A prediction (noise texture) and a residual that is zero except in a few patches of edges and noise."""
    rng = np.random.default_rng(seed)
    pred = rng.integers(40, 216, (h, w, 3)).astype(np.uint8)
    res = np.zeros((h, w, 3))
    for _ in range(12):
        y, x = rng.integers(0, h - 16), rng.integers(0, w - 16)
        patch = rng.normal(0, 10, (16, 16, 3)) + 25 * (np.arange(16)[None, :, None] > rng.integers(2, 14))
        res[y:y + 16, x:x + 16] += patch
    return pred, res


def _coded(pred, res, step, rdoq, monkeypatch):
    monkeypatch.setattr(mcdct2, "RDOQ_LAMBDA", rdoq)
    z, _ = mcdct2.analyse(res, step)
    blob = mcdct2.encode_symbols([z])
    return z, blob, mcdct2.add(pred, z, step, 12)


def test_video_rdoq_trades_bytes_for_error_at_its_lambda(monkeypatch):
    lam = mcdct2.RDOQ_LAMBDA
    assert lam > 0  # on by default
    pred, res = sparse_residual(96, 128, seed=2)
    source = np.clip(pred + res, 0, 255)
    for step in (6.0, 16.0, 40.0):
        z0, blob0, rec0 = _coded(pred, res, step, 0.0, monkeypatch)
        z1, blob1, rec1 = _coded(pred, res, step, lam, monkeypatch)
        assert not np.array_equal(z0, z1)
        # (it may spend more bytes than the dead zone where they buy more: measured +9 % bytes, -13 % error at step
        # 6 here, -5 % bytes at step 16) rdo_quantise's weighted error is the RGB squared error / step^2, so its cost is SSE + lambda x step^2 x
        # bits: on the real bytes and the decoded frame (in-loop deblocking included) it must fall
        sse0 = float(np.sum((source - rec0.astype(np.float64)) ** 2))
        sse1 = float(np.sum((source - rec1.astype(np.float64)) ** 2))
        j0 = sse0 + lam * step**2 * 8 * len(blob0)
        j1 = sse1 + lam * step**2 * 8 * len(blob1)
        assert j1 < j0


def test_video_rdoq_symbols_decode_to_what_the_encoder_added(monkeypatch):
    pred, res = sparse_residual(40, 56, seed=1)
    z, blob, rec = _coded(pred, res, 8.0, mcdct2.RDOQ_LAMBDA, monkeypatch)
    back = mcdct2.decode_symbols(blob, 1, 40, 56)
    assert np.array_equal(mcdct2.add(pred, back[0], 8.0, 12), rec)
