"""RD-optimised quantisation priced with ``coefcoder``'s own models (format 2), an encoder choice.

``image_dct.rdo_quantise`` prices a symbol with format 1's per-band statistics; the symbols are coded by
``coefcoder`` (format 2), whose cost of a magnitude depends on its context class (the block's own two lower
neighbours in frequency and the same in the four neighbouring blocks, plus luma for chroma) and whose block ends
after a "last diagonal" flag. Here the same classes are computed for every coefficient from the symbols as they
stand, each class's zero probability and geometric magnitude from their counts over the image (``coefcoder``
adapts them while coding; one static estimate per class is close), and then:

- per coefficient that rounding makes non-zero: rounding, one less toward zero, or zero, by weighted squared
  error + lambda x (magnitude bits in its class + 1 sign bit);
- per block and channel: the last diagonal (0..14, or nothing) that minimises -(error removed) + lambda x (bits of
  every magnitude up to it, the "not last" flags of the diagonals with a non-zero before it, its "last" flag, the
  coded-block flag): a lone symbol on a high diagonal pays for the zeros of every position below it.

Twice (the classes and counts re-estimated from the result). Errors in luma step^2 (Y 3, Co 2 chroma^2,
Cg 3 chroma^2, as ``rdo_quantise``). With ``lookahead`` (session 24, ``image_dct.RDOQ_LOOKAHEAD``) each candidate is
also priced by what it does to the bits of the coded magnitudes whose contexts hold it (``_context_costs``):
-0.2 / -0.3 % BD-rate on the lab's Kodak bases (benchmarks/README.md). ``truncate`` (the last diagonal) is shared
with the lab's dependent quantisation (``benchmarks/_depquant.py``).
"""

from __future__ import annotations

import numpy as np

from . import coefcoder as cc
from . import image_dct
from .mcdct import MAX_SYMBOL, N


def _classes(a: np.ndarray) -> np.ndarray:
    """Context class (c, by, bx, 64) of every position given magnitudes ``a`` (c, by, bx, 64) capped at ESC:
    what ``coefcoder._walk`` computes for the position while coding (the same sums, all blocks at once)."""
    return cc._class_table()[_context4(a)]


def _context4(a: np.ndarray) -> np.ndarray:
    """The context value x4 (c, by, bx, 64) of every position (``_classes`` before the class lookup)."""
    up, left = cc._template()
    pad = np.concatenate([a, np.zeros(a.shape[:-1] + (1,), a.dtype)], axis=-1)  # index 64: "none"
    t = pad[..., up] + pad[..., left]  # (c, by, bx, 64)
    x4 = cc.OWN_W4 * t + cc.NB_W4 * cc._neighbour_sum(np.moveaxis(t, -1, 1)).transpose(0, 2, 3, 1)
    if a.shape[0] > 1:
        x4[1:] += cc.LUMA_W4 * a[0]
    return x4


def _dependants() -> tuple[np.ndarray, np.ndarray]:
    """Per zig-zag position p, the positions whose template holds p: the one below (up[j] = p) and the one to the
    right (left[j] = p); 64 where none."""
    up, left = cc._template()
    down, right = np.full(N * N, N * N, np.int64), np.full(N * N, N * N, np.int64)
    for j in range(N * N):
        if up[j] < N * N:
            down[up[j]] = j
        if left[j] < N * N:
            right[left[j]] = j
    return down, right


_SHIFTS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def _context_costs(a: np.ndarray, x4: np.ndarray, table: np.ndarray, coded: np.ndarray, cands: list[np.ndarray],
                   neighbours: bool = True, live: np.ndarray | None = None) -> list[np.ndarray]:
    """Per candidate magnitude, the change in the bits of the *other* coded magnitudes whose contexts hold this
    position (the two above/left templates it is in: the block's own (x OWN_W4), the four neighbouring blocks' (x
    NB_W4), chroma's at the same position for luma (x LUMA_W4)), their magnitudes as they stand. Computed at the
    positions of ``live`` (default all; zero elsewhere)."""
    c, by, bx, _ = a.shape
    ct = cc._class_table()
    top = len(ct) - 1
    idx = np.flatnonzero(np.ones(a.shape, bool) if live is None else live)
    ch, y, x, p = np.unravel_index(idx, a.shape)
    a64 = a.astype(np.int64)
    cls = ct[x4].astype(np.int64)
    grp = np.zeros((c, 1, 1, 1), np.int64)
    grp[1:] = 1
    old = np.where(coded, table[grp, cls, a64], 0.0)
    deltas = [np.minimum(v.ravel()[idx], cc.ESC).astype(np.int64) - a64.ravel()[idx] for v in cands]
    out = [np.zeros(a.shape) for _ in cands]
    extras = [np.zeros(len(idx)) for _ in cands]

    def add(cs, yy, xx, jj, chans, weight):  # the bits' change at (chans, yy, xx, jj) where ``cs``
        at = (chans, yy, xx, jj)
        xs, as_, os_ = x4[at], a64[at], old[at]
        gg = np.minimum(chans, 1)
        for e, d in zip(extras, deltas):
            e += np.where(cs, table[gg, ct[np.clip(xs + weight * d, 0, top)], as_] - os_, 0.0)

    for dep in _dependants():
        j = dep[p]
        ok = j < N * N
        jj = np.where(ok, j, 0)
        add(ok & coded[ch, y, x, jj], y, x, jj, ch, cc.OWN_W4)
        if neighbours:
            for dy, dx in _SHIFTS:
                yy, xx = y + dy, x + dx
                inb = ok & (yy >= 0) & (yy < by) & (xx >= 0) & (xx < bx)
                yy, xx = np.clip(yy, 0, by - 1), np.clip(xx, 0, bx - 1)
                add(inb & coded[ch, yy, xx, jj], yy, xx, jj, ch, cc.NB_W4)
    if c > 1:
        for k in range(1, c):
            kk = np.full_like(ch, k)
            add((ch == 0) & coded[kk, y, x, p], y, x, p, kk, cc.LUMA_W4)
    for o, e in zip(out, extras):
        o.ravel()[idx] = e
    return out


def _diag_of_position() -> np.ndarray:
    starts = cc._diagonal_starts()
    return np.searchsorted(starts, np.arange(N * N), side="right") - 1


def _bits_tables(a: np.ndarray, cls: np.ndarray, coded: np.ndarray, top: int) -> np.ndarray:
    """(2 groups, CLASSES, top + 1) bits of magnitude 0..top per class, from the counts of the coded positions."""
    out = np.empty((2, cc.CLASSES, top + 1))
    m = np.arange(top + 1, dtype=np.float64)
    for g, chans in enumerate((slice(0, 1), slice(1, None))):
        sel = coded[chans]
        k, v = cls[chans][sel].astype(np.int64), a[chans][sel].astype(np.int64)
        if not len(k):
            out[g] = 0.0
            continue
        n0 = np.bincount(k, weights=(v == 0), minlength=cc.CLASSES)
        nn = np.bincount(k, weights=(v > 0), minlength=cc.CLASSES)
        sm = np.bincount(k, weights=np.maximum(v - 1, 0), minlength=cc.CLASSES)
        z = (n0 + 0.5 * cc.PRIOR) / (n0 + nn + cc.PRIOR)
        r = ((sm + 0.5 * cc.PRIOR) / (nn + 0.5 * cc.PRIOR))
        r = r / (1.0 + r)
        bits = -np.log2((1.0 - z)[:, None] * (1.0 - r)[:, None]) - np.log2(r)[:, None] * np.maximum(m - 1, 0)
        bits[:, 0] = -np.log2(z)
        out[g] = bits
    return out


def _coded_mask(q: np.ndarray, diag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions the coder codes (c, by, bx, 64), last diagonal (c, by, bx), -1 where nothing is coded)."""
    nz = q != 0
    anyz = nz.any(-1)
    last_pos = N * N - 1 - np.argmax(nz[..., ::-1], axis=-1)
    last_diag = np.where(anyz, diag[last_pos], -1)
    return diag[None, None, None, :] <= last_diag[..., None], last_diag


def rdo_quantise(coef: np.ndarray, q: np.ndarray, lam: float, chroma: float, passes: int = 2,
                 lookahead: int = 0) -> np.ndarray:
    """RD-optimised symbols for ``coef`` (c, by, bx, 64, in step units) from the dead-zone symbols ``q``.

    The same arithmetic as ``rdo_quantise_reference``, bit for bit, ~2.5x cheaper (session 24: ~0.3 CPU-s per call
    on a Kodak image, 3 calls per encode of the byte search): the per-coefficient choice is priced only where
    rounding gives a non-zero (elsewhere every candidate is 0), and the price tables are read with one flat index.
    With ``lookahead`` (off in the codec) the dense form runs: it prices every position's effect on others."""
    if lookahead:
        return rdo_quantise_reference(coef, q, lam, chroma, passes, lookahead)
    c = coef.shape[0]
    weight = np.array([3.0, 2.0 * chroma**2, 3.0 * chroma**2])[:c, None, None, None]
    diag = _diag_of_position()
    top = 4 * cc.ESC  # magnitudes above price as the geometric tail (escapes: roughly)
    coef = np.ascontiguousarray(coef)  # (the zig-zag gather leaves it strided: every ravel below would copy)
    up_all = np.minimum(np.floor(np.abs(coef) + 0.5), MAX_SYMBOL)
    where = np.flatnonzero(up_all)  # only these have a choice
    m = np.abs(coef.ravel()[where])
    up = up_all.ravel()[where]
    cands = [up, np.maximum(up - 1, 0), np.zeros_like(up)]
    w = np.broadcast_to(weight, coef.shape).ravel()[where]
    dist = [w * (m - v) ** 2 for v in cands]
    sign = np.where(coef.ravel()[where] < 0, -1, 1)
    group = np.zeros((c, 1, 1, 1), np.int64)
    group[1:] = 1

    def bits_of(table: np.ndarray, row: np.ndarray, v: np.ndarray) -> np.ndarray:
        b = table[row + np.minimum(v, top).astype(np.int64)] + (v > 0)
        esc = v > top
        if esc.any():  # the reference adds 0.0 elsewhere: the same floats
            b[esc] += 2.0 * np.log2(np.maximum(v[esc], 1.0) / top) + 1.0
        return b

    for _ in range(passes):
        a = np.minimum(np.abs(q), cc.ESC).astype(np.int16)
        cls = _classes(a).astype(np.int64)
        coded, last_diag = _coded_mask(q, diag)
        table = _bits_tables(a, cls, coded, top).ravel()
        prices = flag_prices(q, last_diag)
        row = ((group * cc.CLASSES + cls) * (top + 1)).ravel()  # per position: where its magnitudes' prices start
        row_w = row[where]
        best = image_dct.cheapest(cands, [d + lam * bits_of(table, row_w, v) for v, d in zip(cands, dist)])
        q = np.zeros(coef.shape, np.int32)
        q.ravel()[where] = (sign * best).astype(np.int32)
        q = truncate(np.abs(coef), q, np.abs(q), weight, lam,
                     lambda v, t=table, r=row: bits_of(t, r, v.ravel()).reshape(v.shape), prices)
    return q


def rdo_quantise_reference(coef: np.ndarray, q: np.ndarray, lam: float, chroma: float, passes: int = 2,
                           lookahead: int = 0) -> np.ndarray:
    """``rdo_quantise`` in its first, dense form (every price over the whole array): the reference the faster
    form is held to bit for bit (tests/test_rdoq_ctx.py), and the form that prices the ``lookahead``."""
    c = coef.shape[0]
    weight = np.array([3.0, 2.0 * chroma**2, 3.0 * chroma**2])[:c, None, None, None]
    diag = _diag_of_position()
    top = 4 * cc.ESC  # magnitudes above price as the geometric tail (escapes: roughly)
    mag = np.abs(coef)
    sign = np.where(coef < 0, -1, 1)
    up = np.minimum(np.floor(mag + 0.5), MAX_SYMBOL)
    cands = [up, np.maximum(up - 1, 0), np.zeros_like(up)]
    dist = [weight * (mag - v) ** 2 for v in cands]
    group = np.zeros((c, 1, 1, 1), np.int64)
    group[1:] = 1
    for _ in range(passes):
        a = np.minimum(np.abs(q), cc.ESC).astype(np.int16)
        cls = _classes(a).astype(np.int64)
        coded, last_diag = _coded_mask(q, diag)
        table = _bits_tables(a, cls, coded, top)
        prices = flag_prices(q, last_diag)

        def bits_of(v):
            b = table[group, cls, np.minimum(v, top).astype(np.int64)]
            return b + (v > 0) + np.where(v > top, 2.0 * np.log2(np.maximum(v, 1.0) / top) + 1.0, 0.0)

        # per coefficient: among the candidates (only where rounding gives a non-zero)
        costs = [d + lam * bits_of(v) for v, d in zip(cands, dist)]
        if lookahead:  # plus what the choice does to the bits of the magnitudes whose contexts hold it
            more = _context_costs(a, _context4(a), table, coded, cands, neighbours=lookahead > 1, live=up > 0)
            costs = [cst + lam * m for cst, m in zip(costs, more)]
        best = image_dct.cheapest(cands, costs)
        q = (sign * best).astype(np.int32)
        q = truncate(mag, q, np.abs(q), weight, lam, bits_of, prices)
    return q


def flag_prices(q: np.ndarray, last_diag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bits per group (luma, chroma) of [not last, last] for a diagonal with a non-zero, and of the coded-block flag
    [empty, coded], from their frequencies in ``q`` (``last_diag``: ``_coded_mask``'s)."""
    starts = cc._diagonal_starts()
    flag = np.empty((2, 2))
    cbf = np.empty((2, 2))
    for g, chans in enumerate((slice(0, 1), slice(1, None))):
        ld, qq = last_diag[chans], q[chans]
        nzd = np.zeros(ld.shape + (len(starts) - 1,), bool)
        for d in range(len(starts) - 1):
            nzd[..., d] = (qq[..., starts[d]:starts[d + 1]] != 0).any(-1)
        n_nz = nzd.sum() + 1.0
        n_last = (ld >= 0).sum() + 0.5
        pl = n_last / n_nz
        flag[g] = [-np.log2(1 - min(pl, 0.999)), -np.log2(pl)]  # [not last, last]
        pc = ((ld >= 0).sum() + 0.5) / (ld.size + 1.0)
        cbf[g] = [-np.log2(1 - min(pc, 0.999)), -np.log2(pc)]  # [empty, coded]
    return flag, cbf


def truncate(coef: np.ndarray, q: np.ndarray, rec: np.ndarray, weight: np.ndarray, lam: float, bits_of,
             prices: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per block and channel the last diagonal (0..14, or nothing) of ``q`` that minimises -(error removed) +
    lambda x (bits of every magnitude up to it, the "not last" flags of the diagonals with a non-zero before it, its
    "last" flag, the coded-block flag); the rest zeroed (a copy). ``rec``: the reconstructions of ``q`` in the units
    of ``coef``; ``bits_of``: magnitudes (c, by, bx, 64) -> bits; ``prices``: ``flag_prices`` (default: of ``q``)."""
    starts = cc._diagonal_starts()
    diag = _diag_of_position()
    if prices is None:
        prices = flag_prices(q, _coded_mask(q, diag)[1])
    flag, cbf = prices
    group = np.zeros((q.shape[0], 1, 1, 1), np.int64)
    group[1:] = 1
    mag = np.abs(coef)
    gain = weight * (mag**2 - (mag - np.abs(rec)) ** 2)
    bits = bits_of(np.abs(q).astype(np.float64))
    g_d = np.add.reduceat(gain, starts[:-1], axis=-1)  # (c, by, bx, 15)
    b_d = np.add.reduceat(bits, starts[:-1], axis=-1)
    nz_d = np.add.reduceat(q != 0, starts[:-1], axis=-1) > 0
    fl = flag[group[..., 0]]  # (c, 1, 1, 2)
    not_last = nz_d * fl[..., 0:1]
    cum = np.cumsum(-g_d + lam * (b_d + not_last), axis=-1)
    cost = cum + lam * (fl[..., 1:2] - fl[..., 0:1] + cbf[group[..., 0]][..., 1:2])
    cost = np.where(nz_d, cost, np.inf)
    empty = lam * cbf[group[..., 0]][..., 0]  # (c, 1, 1)
    keep = np.argmin(cost, axis=-1)
    kept_cost = np.take_along_axis(cost, keep[..., None], -1)[..., 0]
    keep = np.where(kept_cost < empty, keep, -1)
    q = q.copy()
    q[diag[None, None, None, :] > keep[..., None]] = 0
    return q


def block_bits(q: np.ndarray) -> np.ndarray:
    """Estimated bits (c, by, bx) of each block's symbols under ``coefcoder``'s models, for choices between whole
    blocks (``image_tx16``): the magnitude bits of every coded position in its class (``_bits_tables``), a sign
    bit per non-zero, the coded-block flag at its frequency and ~1/2 bit per diagonal of "last" flags."""
    diag = _diag_of_position()
    a = np.minimum(np.abs(q), cc.ESC).astype(np.int16)
    cls = _classes(a).astype(np.int64)
    coded, last_diag = _coded_mask(q, diag)
    top = 4 * cc.ESC
    table = _bits_tables(a, cls, coded, top)
    group = np.zeros((q.shape[0], 1, 1, 1), np.int64)
    group[1:] = 1
    v = np.abs(q).astype(np.int64)
    b = table[group, cls, np.minimum(v, top)] + (v > 0)
    b += np.where(v > top, 2.0 * np.log2(np.maximum(v, 1) / top) + 1.0, 0.0)
    bits = np.where(coded, b, 0.0).sum(-1)
    p = np.clip((last_diag >= 0).mean(axis=(1, 2), keepdims=True), 0.02, 0.98)
    return bits + np.where(last_diag >= 0, -np.log2(p) + 0.5 * (last_diag + 1), -np.log2(1 - p))
