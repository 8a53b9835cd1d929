"""A richer model of ``coefcoder``'s symbols (``image_dct`` format 7): the same symbols, passes and layout, 1.54 %
fewer bytes over the lab's 48 Kodak residuals (benchmarks/README.md, "a richer coefficient model", session 25).

What differs from ``coefcoder`` (format 2), each measured by ideal code lengths on those residuals
(``benchmarks/coefcoder_model_lab.py``; % of the whole residual's bits, signs and flags included):

- **Checkerboard halves per pass**: each diagonal's open blocks are coded in two halves (block row + column even,
  then odd); the second half's context value adds 4 x its four neighbours' magnitudes *at the same positions*
  (they are in the first half, already decoded) and has its own 20 classes: -0.69 % (-0.37 % of it from the
  halves' extra model refreshes alone).
- **Magnitude model**: per class three parameters instead of two (zero probability, P(1 | non-zero), a geometric
  tail from 2), and per class x *place on the diagonal* (u = 0, v = 0, neither) a full adaptive histogram over
  0..17 whose prior is the class's three-parameter pmf x ``TAU`` pseudo-counts (the histogram takes over where its
  counts are many): -0.54 %.
- **Refreshes**: up to 16 per half (at least 256 symbols each) instead of 4 per pass (16 per pass: -0.55 %).
- **Last flags**: the context also holds the block's magnitude sum on the diagonal just coded (1, 2, 3+): -0.16 %.

Together -1.38 % on the magnitudes + -0.16 % = the -1.54 % measured on real streams. Tried and not kept (same
measure): a full histogram per class with format 2's pmf as prior (-0.03 %: too few counts after the per-pass
decay); two adaptation speeds averaged (+0.38 %: each diagonal's statistics differ from the last's); a second
context dimension from the own template being zero, the non-zeros so far, the template's outer positions, the 3x3
blocks' activity, Cg seeing Co (each -0.04 to -0.14 %); finer classes (-0.11 %).

Contexts that know the 16x16 groups (``image_dct`` format 7's TOOL_GROUPS, session 26; ``groups`` of ``encode`` /
``decode``): format 4's group flags coded in this stream right after the coded-block flags (their context counts
coded blocks, the non-zeros not being known yet), then the blocks of a flagged group take class sets of their own
(its top-left block, which holds the low 8x8 quadrant, and its other three), no same-position term, and the 8x8
blocks' same-position term skips grouped neighbours: -0.66 % of the residual's bytes by the models' code lengths on
the lab's 48 residuals (``benchmarks/group_context_lab.py``).

Decoder: a compiled copy of this walk (``kernels.coefcoder_decode.decode7``, ``cc_decode_format7``: 12 CPU-ms per
Kodak residual, median, against format 2's 6), trusted only when it vouches for the stream (as format 2's); this
Python walk (~70 ms) is its reference and the fallback. Every probability comes from counts with IEEE +, -, *, / on
single elements (no sums of floats in an order numpy may choose: totals are kept as counts of their own), so
encoder and decoder agree on any machine.
"""

from __future__ import annotations

import functools

import numpy as np

from ..kernels import coefcoder_decode
from . import coefcoder as cc
from .coefcoder import CLASSES, ESC, K  # format 2's alphabet and classes
from .mcdct import N, _zigzag

SAME_W4 = 4  # the neighbours' magnitudes at the same position, in the second half's context (quarters)
NCLS = 2 * CLASSES  # the two halves' classes
WHERE = 3  # u = 0 (first row: horizontal frequencies), v = 0, neither
TAU = 16.0  # pseudo-counts of the class's three-parameter pmf in each (class, where) histogram
PRIOR, PRIOR1 = 4.0, 2.0  # pseudo-counts of the zero / tail parameters, of P(1 | non-zero)
CHUNKS, CHUNK_MIN = 16, 256
MAG_DECAY = cc.MAG_DECAY  # 0.25: a power of two, counts stay exact longer
LAST_CTX = cc.LAST_CTX * 3  # format 2's x the diagonal's magnitude sum (1, 2, 3+)


@functools.lru_cache(maxsize=1)
def _where() -> np.ndarray:
    zz = _zigzag()
    u, v = zz // N, zz % N
    return np.where(u == 0, 0, np.where(v == 0, 1, 2)).astype(np.int64)


@functools.lru_cache(maxsize=1)
def _class_table() -> np.ndarray:
    """``coefcoder``'s class of every context value, up to the second half's largest (the same-position term)."""
    top = (cc.OWN_W4 + 4 * cc.NB_W4) * 2 * ESC + cc.LUMA_W4 * ESC + SAME_W4 * 4 * ESC
    return (np.searchsorted(cc._THRESH4, np.arange(top + 1), side="right") - 1).astype(np.int16)


_TAIL = np.arange(K - 2, dtype=np.int64)  # m - 2 for m = 2..K-1


def class_rows(coarse: np.ndarray) -> np.ndarray:
    """(n, 4) counts [zeros, ones, >= 2, sum of (m - 2)] -> (n, K) three-parameter pmf rows: P(0) = z,
    P(1) = (1 - z) p1, P(m >= 2) = (1 - z)(1 - p1)(1 - r) r^(m-2), escape = the tail."""
    n0, n1, n2, s2 = coarse.T
    z = (n0 + 0.5 * PRIOR) / (n0 + n1 + n2 + PRIOR)
    p1 = (n1 + 0.5 * PRIOR1) / (n1 + n2 + PRIOR1)
    mean = (s2 + 0.5 * PRIOR) / (n2 + 0.5 * PRIOR)
    r = mean / (1.0 + mean)
    rows = np.empty((len(z), K))
    rows[:, 0] = z
    rows[:, 1] = (1.0 - z) * p1
    rows[:, 2] = (1.0 - z) * (1.0 - p1) * (1.0 - r)
    rows[:, 3:] = r[:, None]
    np.multiply.accumulate(rows[:, 2:], axis=1, out=rows[:, 2:])  # sequential products: the same everywhere
    rows[:, ESC] *= 1.0 / (1.0 - r)  # the tail
    return rows


class _Model:
    """Counts of one colour group: per class [zeros, ones, >= 2, sum of (m - 2) over >= 2], per (class, where) a
    histogram and its total."""

    def __init__(self, ncls: int = NCLS):
        self.ncls = ncls
        self.coarse = np.zeros((ncls, 4))
        self.hist = np.zeros((ncls * WHERE, K))
        self.total = np.zeros(ncls * WHERE)

    def decay(self):
        self.coarse *= MAG_DECAY
        self.hist *= MAG_DECAY
        self.total *= MAG_DECAY

    def table(self) -> np.ndarray:
        prior = np.repeat(class_rows(self.coarse), WHERE, axis=0)
        return (self.hist + TAU * prior) / (self.total + TAU)[:, None]

    def update(self, k: np.ndarray, m: np.ndarray):
        n = self.ncls
        h = np.bincount(k * K + m, minlength=n * WHERE * K).reshape(n * WHERE, K)  # integers: exact sums
        self.hist += h
        self.total += h.sum(axis=1)
        hc = h.reshape(n, WHERE, K).sum(axis=1)
        self.coarse[:, 0] += hc[:, 0]
        self.coarse[:, 1] += hc[:, 1]
        self.coarse[:, 2] += hc[:, 2:].sum(axis=1)
        self.coarse[:, 3] += hc[:, 2:] @ _TAIL


def _chunk_ranges(n: int):
    parts = max(1, min(CHUNKS, n // CHUNK_MIN))
    bounds = [n * j // parts for j in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if a < b]


def _chunked_cat(io, model: _Model, k: np.ndarray, truth):
    out = np.empty(len(k), np.int64)
    for a, b in _chunk_ranges(len(k)):
        m = io.cat(model.table(), k[a:b], None if truth is None else truth[a:b])
        out[a:b] = m
        model.update(k[a:b], np.asarray(m, np.int64))
    return out


def _same_position(A, lo, hi, off, idx, nblk, by, bx, skip=None) -> np.ndarray:
    """Sum of the four neighbouring blocks' magnitudes at positions lo..hi, (hi - lo, len(idx)), for blocks ``idx``
    of the colour group starting at column ``off`` (zero outside the image)."""
    loc = idx % nblk
    row, col = loc // bx, loc % bx
    out = np.zeros((hi - lo, len(idx)), np.int16)
    for ok, step in ((col > 0, -1), (col < bx - 1, 1), (row > 0, -bx), (row < by - 1, bx)):
        j = np.where(ok, idx + step, idx)
        if skip is not None:
            ok = ok & ~skip[j % nblk]
        out += A[lo:hi, off + j] * ok.astype(np.int16)
    return out


# Contexts that know the 16x16 groups (``image_dct`` format 7's TOOL_GROUPS, session 26): the group flags coded in
# this stream right after the coded-block flags, and the grouped blocks' magnitudes in class sets of their own.
# Measured by the models' code lengths on 48 Kodak residuals (benchmarks/group_context_lab.py, % of the residual
# with the flags): 1 own classes and no same-position term -0.27 %; 2 also the top-left block of a group (its
# low quadrant) apart from the other three -0.60 %; 3 as 2, and 8x8 blocks' same-position term without grouped
# neighbours (whose positions hold other frequencies) -0.66 %. The format is 3; the others are the lab's.
GROUP_MODE = 3


class Groups:
    """The 16x16 group flags (gy, gx) a walk codes (``flags`` given: the encoder) or decodes (None: set by it)."""

    def __init__(self, flags: np.ndarray | None = None):
        self.flags = flags


def _group_flags(io, cbf: np.ndarray, groups: Groups) -> np.ndarray:
    """Code / decode the group flags after the coded-block flags (c, by, bx): ``image_tx16.code_flags``'s two
    halves and neighbour contexts, with the group's count of coded (block, channel) flags (1..12) in place of its
    non-zero count, which is not known yet. Returns the (by, bx) mask of grouped blocks."""
    from . import image_tx16

    by, bx = cbf.shape[1:]
    per_block = cbf.sum(axis=0)
    truth = None if groups.flags is None else groups.flags & image_tx16.flag_contexts(None, per_block)[0]
    flags = image_tx16.code_flags(io, None, truth, per_block)
    groups.flags = flags
    return image_tx16.block_mask(flags, by, bx)


def _walk(io, shape: tuple[int, int, int], q: np.ndarray | None, blocks: np.ndarray | None = None,
          groups: Groups | None = None):
    """``coefcoder._walk`` with this module's models (see the module doc); the same arguments and results.
    ``groups``: with it the 16x16 group flags are coded after the coded-block flags and the grouped blocks get
    their own classes (GROUP_MODE)."""
    c, by, bx = shape
    nblk = by * bx
    know = q is not None
    A = np.zeros((N * N + 1, c * nblk), np.int16)
    starts = cc._diagonal_starts()
    last_pos = None
    if know:
        absq = np.abs(q.reshape(c * nblk, N * N).astype(np.int16)).T
        truth_mag = np.minimum(absq, ESC)
        nz_any = absq != 0
        last_pos = np.where(nz_any.any(0), N * N - 1 - np.argmax(nz_any[::-1], axis=0), -1)
        last_diag = np.searchsorted(starts, last_pos, side="right") - 1
    up, left = cc._template()
    cbf = cc._coded_block_flags(io, shape, last_pos)
    gmode = 0
    if groups is not None:
        gmode = GROUP_MODE
        gflat = _group_flags(io, cbf.reshape(c, by, bx), groups).ravel()
        tl = np.zeros((by, bx), bool)
        tl[::2, ::2] = True
        tl = tl.ravel() & gflat
    parity = (np.add.outer(np.arange(by), np.arange(bx)) % 2).ravel()
    where, table = _where(), _class_table()
    n_escape = 0
    for ch0, ch1 in ((0, 1), (1, c)):
        if ch0 >= ch1:
            continue
        cg, off = ch1 - ch0, ch0 * nblk
        model = _Model(NCLS + (0 if not gmode else CLASSES if gmode == 1 else 2 * CLASSES))
        flag_stats = np.full((LAST_CTX, 2), 0.5)
        open_ = cbf[ch0:ch1].reshape(cg * nblk).astype(bool)
        count = np.zeros(cg * nblk, np.int64)
        for d in range(len(starts) - 1):
            idx_all = np.flatnonzero(open_)
            if not len(idx_all):
                break
            lo, hi = int(starts[d]), int(starts[d + 1])
            w = hi - lo
            model.decay()
            summ = np.zeros(cg * nblk, np.int64)
            for half in (0, 1):
                idx = idx_all[parity[idx_all % nblk] == half]
                if not len(idx):
                    continue
                x4 = cc._sparse_context(A, up[lo:hi], left[lo:hi], off, idx, nblk, by, bx)
                if ch0:
                    x4 += cc.LUMA_W4 * A[lo:hi, idx % nblk]
                if half:
                    sp = _same_position(A, lo, hi, off, idx, nblk, by, bx, gflat if gmode == 3 else None)
                    x4 += SAME_W4 * (sp if not gmode else sp * ~gflat[idx % nblk])
                cset = np.full(len(idx), half, np.int64)
                if gmode:
                    g = gflat[idx % nblk]
                    cset[g] = 2 if gmode == 1 else np.where(tl[idx % nblk][g], 2, 3)
                k = (table[x4.T].astype(np.int64) + CLASSES * cset[:, None]) * WHERE + where[lo:hi]  # block-major
                truth = truth_mag[lo:hi, off + idx].T.ravel() if know else None
                m = _chunked_cat(io, model, k.ravel(), truth).reshape(len(idx), w)
                A[lo:hi, off + idx] = m.T
                if blocks is not None:
                    blocks[off + idx, lo:hi] = m
                n_escape += int(np.count_nonzero(m == ESC))
                summ[idx] = m.sum(axis=1)
            nzi = np.count_nonzero(A[lo:hi, off + idx_all], axis=0)
            if hi < N * N:
                nb_open = cc._neighbour_sum(open_.view(np.int8).reshape(cg, by, bx)).reshape(cg * nblk)
                j = idx_all[nzi > 0]
                ctx = (np.minimum(count[j], 3) + 4 * nb_open[j]) * 3 + np.minimum(summ[j] - 1, 2)
                flag_stats *= cc.FLAG_DECAY
                truth = (last_diag[off + j] == d).astype(np.int32) if know else None
                last = cc._chunked_bern(io, flag_stats, ctx, truth)
                open_[j[last > 0]] = False
            else:
                open_[idx_all] = False
            count[idx_all] += nzi
    return A[:N * N], n_escape


def _with(groups: Groups | None):
    if groups is None:
        return _walk
    return lambda io, shape, q, blocks=None: _walk(io, shape, q, blocks, groups)


def encode(q: np.ndarray, signs: bool = True, groups: np.ndarray | None = None) -> bytes:
    """(c, by, bx, 64) integer symbols (|q| <= MAX_SYMBOL) -> bytes (``coefcoder``'s layout; ``signs`` False: the
    magnitudes alone, the signs go to ``signpred``'s stream); ``groups`` (gy, gx) bool: the 16x16 group flags, coded
    in the stream (``image_dct`` TOOL_GROUPS; a flag of a group that codes nothing is dropped)."""
    return cc.encode(q, signs, walk=_with(None if groups is None else Groups(np.asarray(groups, bool))))


def estimate_bytes(q: np.ndarray, signs: bool = True, groups: np.ndarray | None = None) -> float:
    return cc.estimate_bytes(q, signs, walk=_with(None if groups is None else Groups(np.asarray(groups, bool))))


def _kernel(payload: bytes, c: int, by: int, bx: int, signs: bool = True, groups: Groups | None = None):
    from . import image_tx16

    if groups is None:
        return coefcoder_decode.decode7(payload, c, by, bx, *cc._template(), cc._diagonal_starts(), _class_table(),
                                        _where(), signs)
    got = coefcoder_decode.decode7(payload, c, by, bx, *cc._template(), cc._diagonal_starts(), _class_table(),
                                   _where(), signs, groups=image_tx16.groups(by, bx))
    if got is None:
        return None
    out, n_escape, flags = got
    groups.flags = flags
    return out, n_escape


def decode(data: bytes, c: int, by: int, bx: int, signs: bool = True,
           groups: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Inverse of ``encode``: the compiled walk where it vouches for the stream, else this Python walk; with
    ``groups`` (the stream holds the group flags) (symbols, (gy, gx) flags)."""
    if not groups:
        return cc.decode(data, c, by, bx, signs, walk=_walk, kernel=_kernel)
    g = Groups()
    kernel = lambda payload, c_, by_, bx_, signs_: _kernel(payload, c_, by_, bx_, signs_, g)  # noqa: E731
    q = cc.decode(data, c, by, bx, signs, walk=_with(g), kernel=kernel)
    return q, g.flags
