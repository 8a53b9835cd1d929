"""Dependent (trellis-coded) quantisation of ``image_dct``'s residual: VVC's two quantisers and four states. An
experiment of ``gaussian_dct_lab.py`` (variants ``dq*``), not adopted: on the lab's Kodak bases it changed total
bytes at equal PSNR by -0.8 to +0.5 % per image against the context-priced RDOQ (benchmarks/README.md, session 24).

What the decoder does: the symbols are *levels* k; per block the coefficients are visited in zig-zag order (the
coder's order within a block) with a state 0..3 that starts at 0. States 0 and 1 use Q0, whose reconstructions are
the even multiples of the step Delta (2k Delta); states 2 and 3 use Q1, the odd multiples and zero
((2k - sgn k) Delta). The next state is ``TRANSITION[state][k & 1]``, so the decoder always knows which quantiser a
level used. ``reconstruct`` maps the levels to those integer multiples of Delta, and the residual's usual inverse
(steps = Delta) does the rest: nothing else in the decoder changes.

Why it can pay: the union of both quantisers is every multiple of Delta, twice as dense as either, while a level
costs about what a scalar level of step 2 Delta costs; the encoder's Viterbi search over the states (``trellis``)
picks the path whose reconstructions lie closest for the bits, which packs the reconstruction points like a
lattice (VVC: 4-5 % BD-rate over RDOQ in all-intra).

The encoder's rates: ``rdoq_ctx``'s per-class magnitude tables of the coder's context models (classes from the
levels of the previous pass), a sign bit per non-zero; after the search the block's last diagonal is chosen as
``rdoq_ctx`` chooses it (zeroing a tail does not change the states before it: the state runs forward).
"""

from __future__ import annotations

import numpy as np

from inrcodec.models import coefcoder as cc
from inrcodec.models import mcdct, rdoq_ctx
from inrcodec.models.mcdct import MAX_SYMBOL, N

TRANSITION = np.array([[0, 2], [2, 0], [1, 3], [3, 1]], np.int64)  # [state][parity of k] -> next state


def states(q: np.ndarray) -> np.ndarray:
    """State (..., 64) in which each level of ``q`` (..., 64, zig-zag order per block) is (de)quantised."""
    flat = q.reshape(-1, N * N)
    out = np.empty(flat.shape, np.int8)
    s = np.zeros(len(flat), np.int64)
    for p in range(N * N):
        out[:, p] = s
        s = TRANSITION[s, flat[:, p] & 1]
    return out.reshape(q.shape)


def reconstruct(q: np.ndarray) -> np.ndarray:
    """Levels -> reconstructions in units of Delta (int32): 2k under Q0 (states 0, 1), 2k - sgn(k) under Q1."""
    q = np.asarray(q)
    return (2 * q.astype(np.int32) - (states(q) >> 1) * np.sign(q)).astype(np.int32)


def _rate(table: np.ndarray, k: np.ndarray, top: int) -> np.ndarray:
    """Bits of magnitudes ``k`` (B, n) with per-block rows ``table`` (B, top + 1): class bits, a sign bit, and the
    escape tail roughly (as ``rdoq_ctx``)."""
    b = np.take_along_axis(table, np.minimum(k, top), axis=1) + (k > 0)
    return b + np.where(k > top, 2.0 * np.log2(np.maximum(k, 1) / top) + 1.0, 0.0)


def _candidates(x: np.ndarray, qz: int) -> np.ndarray:
    """Levels (..., 3) a search weighs under quantiser ``qz`` for magnitudes ``x`` in units of Delta: zero and
    the two whose reconstructions (2k under Q0, 2k - 1 under Q1) bracket x."""
    a = np.floor((x + qz) / 2.0).astype(np.int64)
    return np.minimum(np.stack([np.zeros_like(a), a, a + 1], -1), MAX_SYMBOL)


def _search(x: np.ndarray, w: np.ndarray, rows: np.ndarray, lam: float, top: int,
            extra: np.ndarray | None = None) -> np.ndarray:
    """Viterbi search over the four states: levels (B, 64) minimising sum w (x - rec)^2 + lam bits for magnitudes
    ``x`` (B, 64) in units of Delta, weights ``w`` (B,), bit tables ``rows`` (B, 64, 1 or 2 quantisers, top + 1);
    ``extra``: (B, 64, 2, 3) more bits of each quantiser's ``_candidates``."""
    nb = len(x)
    cost = np.full((nb, 4), np.inf)
    cost[:, 0] = 0.0
    back_state = np.empty((N * N, nb, 4), np.int8)
    back_level = np.empty((N * N, nb, 4), np.int32)
    ar = np.arange(nb)
    for p in range(N * N):
        xp = x[:, p]
        totals, targets, levels, prevs = [], [], [], []
        for qz in (0, 1):  # Q0: 2k; Q1: 2k - 1 (k > 0)
            k = _candidates(xp, qz)
            rec = np.maximum(2 * k - qz, 0)
            d = w[:, None] * (xp[:, None] - rec) ** 2 + lam * _rate(rows[:, p, min(qz, rows.shape[2] - 1)], k, top)
            if extra is not None:
                d += lam * extra[:, p, qz]
            for s in (2 * qz, 2 * qz + 1):
                totals.append(cost[:, s:s + 1] + d)
                targets.append(TRANSITION[s][k & 1])
                levels.append(k)
                prevs.append(np.full_like(k, s))
        totals, targets = np.concatenate(totals, 1), np.concatenate(targets, 1)  # (B, 12)
        levels, prevs = np.concatenate(levels, 1), np.concatenate(prevs, 1)
        new = np.empty_like(cost)
        for t in range(4):
            c = np.where(targets == t, totals, np.inf)
            j = np.argmin(c, axis=1)
            new[:, t] = c[ar, j]
            back_state[p, :, t] = prevs[ar, j]
            back_level[p, :, t] = levels[ar, j]
        cost = new
    out = np.empty((nb, N * N), np.int32)
    s = np.argmin(cost, axis=1)
    for p in range(N * N - 1, -1, -1):
        out[:, p] = back_level[p, ar, s]
        s = back_state[p, ar, s].astype(np.int64)
    return out


def trellis(coef: np.ndarray, lam: float, chroma: float, passes: int = 2, drop: float = 0.0,
            lookahead: int = 0) -> np.ndarray:
    """Signed levels (c, by, bx, 64) for ``coef`` (in units of each channel's Delta, zig-zag order) by the
    Viterbi search, priced with ``rdoq_ctx``'s tables; ``lam`` per bit in luma Delta^2. Then per block and channel
    the last diagonal (``rdoq_ctx.truncate``), and with ``drop`` > 0 blocks whose error removed is below drop x
    their rough bits are emptied (``mcdct2.drop_costly_blocks``' rule on the reconstructions). ``lookahead``: each
    candidate also priced by what it does to the bits of the magnitudes whose contexts hold it
    (``rdoq_ctx._context_costs``; 2: the neighbouring blocks' too)."""
    c = coef.shape[0]
    weight = np.array([3.0, 2.0 * chroma**2, 3.0 * chroma**2])[:c]
    top = 4 * cc.ESC
    mag = np.abs(coef)
    sign = np.where(coef < 0, -1, 1)
    q = mcdct.dead_zone_quantise(coef / 2.0, 0.15)  # a first guess at the levels' statistics (Q0 alone)
    group = np.zeros((c, 1, 1, 1), np.int64)
    group[1:] = 1
    nb = coef[0].size // (N * N)
    w = np.repeat(weight, nb)
    for _ in range(passes):
        a = np.minimum(np.abs(q), cc.ESC).astype(np.int16)
        cls = rdoq_ctx._classes(a).astype(np.int64)
        coded, _ = rdoq_ctx._coded_mask(q, rdoq_ctx._diag_of_position())
        table = rdoq_ctx._bits_tables(a, cls, coded, top)
        rows = table[np.broadcast_to(group, cls.shape), cls].reshape(-1, N * N, 1, top + 1)
        extra = None
        if lookahead:
            cands = [_candidates(mag, qz)[..., i] for qz in (0, 1) for i in range(3)]
            more = rdoq_ctx._context_costs(a, rdoq_ctx._context4(a), table, coded, cands, neighbours=lookahead > 1,
                                           live=mag >= 0.5)
            extra = np.stack(more, -1).reshape(-1, N * N, 2, 3)
        k = _search(mag.reshape(-1, N * N), w, rows, lam, top, extra).reshape(coef.shape)
        q = (sign * k).astype(np.int32)
        rec = reconstruct(q)
        flat_rows = rows.reshape(-1, top + 1)
        q = rdoq_ctx.truncate(coef, q, rec, weight[:, None, None, None], lam,
                              lambda v: _rate(flat_rows, v.reshape(-1, 1).astype(np.int64), top).reshape(v.shape))
    if drop:
        rec = reconstruct(q)
        _drop_blocks(coef, q, rec, drop, chroma)
    return q


def _drop_blocks(coef: np.ndarray, q: np.ndarray, rec: np.ndarray, lam: float, chroma: float) -> None:
    from inrcodec.models.mcdct2 import drop_costly_blocks

    drop_costly_blocks(coef, q, lam, chroma, rec=rec)
