"""Context-modelled coder of 8x8 DCT residual symbols whose contexts cost no tables (``image_dct`` format 2).

What it codes: integer symbols (c, by, bx, 64) in zigzag order (``image_dct``'s quantised residual; c = 1 or 3).
Measured against format 1 (``mcdct2``'s per-stream i.i.d. tables) on 48 Kodak residuals over Gaussian bases: 7.5 %
fewer bytes (4-13 % per set), -2.9 / -5 % BD-rate end to end at medium on kodim07 / kodim03; on a sparse video
P-frame residual +0.7 % (benchmarks/README.md, "context-modelled residual symbols"). How:

- **Passes**, so that every symbol's context is something the decoder already has and each pass is one vectorised
  step: per channel a coded-block flag (CBF) for every block, in two checkerboard halves (the second half sees its
  four neighbours' flags); then for luma, then both chroma channels together, per frequency diagonal u + v = d
  (0..14; zigzag runs diagonal by diagonal) over the blocks still open: the magnitudes of the diagonal's positions
  (0..16, 17 = escape), then for each block with a non-zero among them a "last diagonal" flag (H.264 CABAC's
  significance map, per diagonal: a block closes after its last non-zero, so nothing after it is coded). Escapes
  (|q| >= 17) are an ``encode_ints`` blob after the stream; signs are the stream's last symbols, one bit each.
- **Magnitude context**: x = the block's own magnitudes at the two lower frequencies next to the position
  ((u-1, v), (u, v-1)) plus 1/4 of the same two in the four neighbouring blocks (+ 1/2 |Y| there for chroma), in
  20 half-octave classes. The model of a class is a **zero probability and a geometric magnitude**, two numbers
  estimated from the counts of the symbols already coded in that class (counts kept at 1/4 per pass, so they
  follow the frequency; refreshed up to four times within a pass, in raster order, so they follow the texture
  too). Nothing is sent: no table, no parameter.
- **Last-flag context**: how many non-zeros the block has so far (0..3+) x how many of its four neighbours are
  still open (0..4); **CBF context**: the neighbours' flags (second half) x the flags of Y (and Co) in the block.
  Both are adaptive binary counts, updated like the magnitudes.

Every probability is computed from integer counts with IEEE +, -, *, / only (no exp/log: classes are integer
thresholds), so encoder and decoder build bit-identical models on any machine; constriction then codes one ANS
stream with Categorical (prebuilt per class, or a table per symbol in short chunks) and Bernoulli models.
Decoding is ~25 numpy passes (2 colour groups x up to 15 diagonals, and the flags), not a loop over blocks:
~1.9x format 1's CPU time (the passes' array operations, not the entropy decoding, are most of it). Since session
21 ``decode`` runs a compiled copy of the walk with its own ANS decoder (``kernels.coefcoder_decode``: a Kodak
residual in 3-5 instead of 13-19 CPU-ms), trusted only when its stream ends exactly where this one's must; this
Python walk is its reference and the fallback (no compiler, or any stream the copy does not vouch for).

Layout (after ``image_dct``'s header): varint length + the ANS stream (32-bit words, trailing zero bytes dropped,
sentinel as in ``entropy.coding``), then the escape blob (``encode_ints`` of |q| - 17, block order; its count is
known from the stream).
"""

from __future__ import annotations

import functools

import constriction
import numpy as np

from ..entropy import decode_ints, encode_ints
from ..entropy._bytes import read_varint, varint
from ..entropy.coding import _ans_bytes, _ans_decoder, _checked, _finish, _new_coder
from ..errors import FormatError
from ..kernels import coefcoder_decode
from .mcdct import MAX_SYMBOL, N, _zigzag

K = 18  # magnitude alphabet: 0..16, 17 = escape (|q| >= 17, the rest in the escape blob)
ESC = K - 1
CLASSES = 20
# class k of a context x (in quarter units, an integer) <=> x >= 2^(k/2) - 1, i.e. x4 >= ceil(4 (2^(k/2) - 1)):
# integer thresholds, so no libm log decides a class
_THRESH4 = np.array([int(np.ceil(4.0 * (2.0 ** (k / 2.0) - 1.0) - 1e-9)) for k in range(CLASSES)], np.int64)
# context weights in quarters: x = own template + 1/4 of the neighbours' + 1/2 of |Y| at the position (chroma)
OWN_W4, NB_W4, LUMA_W4 = 4, 1, 2
# Adaptation, measured by exact bytes against format 1 on 27 Kodak residuals (kodim01/03/07, bases 0.1-0.35 bpp,
# steps 7-20): chunks 2 / 4 / 8: -5.0 / -6.4 / -7.1 % (8 costs decoding time); magnitude counts kept per pass
# 0.7 / 0.5 / 0.3 / 0.2: -5.6 / -6.4 / -6.9 / -7.1 %; last flags 0.8 / 0.6 / 0.4: -0.05 / 0 / +0.03 %
CHUNKS = 4  # model refreshes within a pass (in raster order: they also follow the image's texture)
CHUNK_MIN = 512
MAG_DECAY = 0.25
FLAG_DECAY = 0.5
PRIOR = 4.0  # pseudo-counts of a class with no history
LAST_CTX = 4 * 5  # min(non-zeros so far, 3) x open neighbours (0..4)
CBF_CTX = 6 * 4  # neighbours' flags (0..4; 5 = first half, none known) x Y flag x Co flag


@functools.lru_cache(maxsize=1)
def _template() -> tuple[np.ndarray, np.ndarray]:
    """Zigzag index of the coefficient above (u-1, v) and left (u, v-1) of each zigzag position (64 = none)."""
    zz = _zigzag()
    inv = np.argsort(zz)
    up, left = np.full(N * N, N * N, np.int64), np.full(N * N, N * N, np.int64)
    for p, r in enumerate(zz):
        u, v = divmod(int(r), N)
        if u:
            up[p] = inv[(u - 1) * N + v]
        if v:
            left[p] = inv[u * N + v - 1]
    return up, left


@functools.lru_cache(maxsize=1)
def _class_table() -> np.ndarray:
    """Class of every context value x4 the walk can form (magnitudes are capped at ESC): a lookup, not a search."""
    top = (OWN_W4 + 4 * NB_W4) * 2 * ESC + LUMA_W4 * ESC
    return (np.searchsorted(_THRESH4, np.arange(top + 1), side="right") - 1).astype(np.int16)


def _neighbour_sum(a: np.ndarray) -> np.ndarray:
    """Sum over the 4-neighbourhood of (..., by, bx), zero outside."""
    out = np.zeros_like(a)
    out[..., :, 1:] += a[..., :, :-1]
    out[..., :, :-1] += a[..., :, 1:]
    out[..., 1:, :] += a[..., :-1, :]
    out[..., :-1, :] += a[..., 1:, :]
    return out


def _geometric_rows(stats: np.ndarray) -> np.ndarray:
    """(CLASSES, 3) counts [zeros, non-zeros, sum of (m - 1)] -> (CLASSES, K) pmf: P(0) = z,
    P(m) = (1 - z)(1 - r) r^(m-1), escape = the tail (1 - z) r^(K-2)."""
    n0, nn, sm = stats[:, 0], stats[:, 1], stats[:, 2]
    z = (n0 + 0.5 * PRIOR) / (n0 + nn + PRIOR)
    mean = (sm + 0.5 * PRIOR) / (nn + 0.5 * PRIOR)
    r = mean / (1.0 + mean)
    rows = np.empty((len(r), K))
    rows[:, 0] = z
    rows[:, 1] = (1.0 - z) * (1.0 - r)
    rows[:, 2:] = r[:, None]
    np.multiply.accumulate(rows[:, 1:], axis=1, out=rows[:, 1:])  # sequential products: the same everywhere
    rows[:, ESC] *= 1.0 / (1.0 - r)  # the tail: (1 - z) r^(K-2), not times (1 - r)
    return rows


# -- the three ends of one walk: encoding (record), decoding (read), estimating (count bits) -------------------------


def _categorical(row: np.ndarray):
    return constriction.stream.model.Categorical(row, perfect=False)


_CAT_FAMILY = constriction.stream.model.Categorical(perfect=False)  # a table per symbol, given when coding
_BERN = constriction.stream.model.Bernoulli(perfect=False)
_SIGN = constriction.stream.model.Uniform(2)
GROUP_MIN = 2048  # chunks at least this long are coded class by class with one prebuilt table each (fast per
# symbol, ~4 numpy calls per class); shorter ones with a table per symbol in one call (no per-class overhead)


def _by_class(k: np.ndarray):
    """(class, indices into k) for each class present, in class order: the order a long chunk is coded in."""
    order = np.argsort(k, kind="stable")
    counts = np.bincount(k, minlength=CLASSES)
    ends = np.cumsum(counts)
    for cls in np.flatnonzero(counts):
        yield int(cls), order[ends[cls] - counts[cls]:ends[cls]]


class _Recorder:
    """Encoder side: the symbols are known; keep (symbols, model, params) in decoding order."""

    def __init__(self):
        self.ops = []

    def cat(self, table, k, truth):
        if len(k) >= GROUP_MIN:
            for cls, sel in _by_class(k):
                self.ops.append((truth[sel].astype(np.int32), _categorical(table[cls]), None))
        elif len(k):
            self.ops.append((truth.astype(np.int32), _CAT_FAMILY, table[k]))
        return truth

    def bern(self, p1, truth):
        self.ops.append((truth.astype(np.int32), _BERN, p1))
        return truth

    def signs(self, truth):
        self.ops.append((truth.astype(np.int32), _SIGN, None))
        return truth

    def payload(self) -> bytes:
        coder = _new_coder()
        for sym, model, params in reversed(self.ops):
            if len(sym):
                if params is None:
                    coder.encode_reverse(sym, model)
                else:
                    coder.encode_reverse(sym, model, params)
        return _ans_bytes(coder)


class _Reader:
    def __init__(self, payload: bytes):
        self.coder = _ans_decoder(payload)

    def cat(self, table, k, truth):
        if len(k) < GROUP_MIN:
            if not len(k):
                return np.zeros(0, np.int32)
            return _checked(self.coder.decode, _CAT_FAMILY, table[k])
        out = np.empty(len(k), np.int32)
        for cls, sel in _by_class(k):
            out[sel] = _checked(self.coder.decode, _categorical(table[cls]), len(sel))
        return out

    def bern(self, p1, truth):
        if not len(p1):
            return np.zeros(0, np.int32)
        return _checked(self.coder.decode, _BERN, p1)

    def signs(self, truth):
        n = len(truth)
        return _checked(self.coder.decode, _SIGN, n) if n else np.zeros(0, np.int32)


class _Counter:
    """Estimated bits: -log2 of each symbol's probability under the same models (no coding)."""

    def __init__(self):
        self.bits = 0.0

    def cat(self, table, k, truth):
        if len(truth):
            logp = np.log2(np.maximum(table / table.sum(axis=1, keepdims=True), 2.0 ** -24))
            self.bits -= float(logp[k, truth].sum())
        return truth

    def bern(self, p1, truth):
        if len(truth):
            p = np.where(truth > 0, p1, 1.0 - p1)
            self.bits -= float(np.log2(np.maximum(p, 2.0 ** -24)).sum())
        return truth

    def signs(self, truth):
        self.bits += len(truth)
        return truth


def _walk(io, shape: tuple[int, int, int], q: np.ndarray | None, blocks: np.ndarray | None = None):
    """The coding walk shared by encoder (``q`` given) and decoder (``q`` None: symbols come from ``io``).
    Returns (magnitudes capped at ESC, (64, c * by * bx) int32, position-major; number of escapes)."""
    c, by, bx = shape
    nblk = by * bx
    know = q is not None
    # |q| capped at ESC (every context sum fits int16), [position, channel * nblk + block]; row 64 stays zero: the
    # template's "none"
    A = np.zeros((N * N + 1, c * nblk), np.int16)
    starts = _diagonal_starts()
    if know:
        absq = np.abs(q.reshape(c * nblk, N * N).astype(np.int16)).T  # |q| <= MAX_SYMBOL = 2^12
        truth_mag = np.minimum(absq, ESC)
        nz_any = absq != 0
        last_pos = np.where(nz_any.any(0), N * N - 1 - np.argmax(nz_any[::-1], axis=0), -1)  # (c * nblk,)
        last_diag = np.searchsorted(starts, last_pos, side="right") - 1  # -1 where nothing is coded
    up, left = _template()
    cbf = _coded_block_flags(io, shape, last_pos if know else None)
    # -- magnitudes and last flags, per frequency diagonal (u + v = d) over the open blocks: luma, then both chroma
    # channels in one pass (they share their models; fewer passes decode faster)
    n_escape = 0
    for ch0, ch1 in ((0, 1), (1, c)):
        if ch0 >= ch1:
            continue
        cg, off = ch1 - ch0, ch0 * nblk
        mag_stats = np.zeros((CLASSES, 3))
        flag_stats = np.full((LAST_CTX, 2), 0.5)
        open_ = cbf[ch0:ch1].reshape(cg * nblk).astype(bool)
        count = np.zeros(cg * nblk, np.int64)  # non-zeros so far per block
        for d in range(len(starts) - 1):
            idx = np.flatnonzero(open_)
            if not len(idx):
                break
            lo, hi = int(starts[d]), int(starts[d + 1])
            w = hi - lo
            if 4 * len(idx) < cg * nblk:  # few blocks open: the same sums, at their places only
                x4 = _sparse_context(A, up[lo:hi], left[lo:hi], off, idx, nblk, by, bx)
            else:
                t = A[up[lo:hi], off:off + cg * nblk] + A[left[lo:hi], off:off + cg * nblk]  # own template
                x4 = NB_W4 * _neighbour_sum(t.reshape(w, cg, by, bx)).reshape(w, cg * nblk)
                x4 += OWN_W4 * t
                x4 = x4[:, idx]
            if ch0:
                x4 += LUMA_W4 * A[lo:hi, idx % nblk]
            cls = _class_table()[x4.T.ravel()]  # block-major; int16: numpy's stable sort of it is a radix sort
            mag_stats *= MAG_DECAY
            truth = truth_mag[lo:hi, off + idx].T.ravel() if know else None
            m = _chunked_cat(io, mag_stats, cls, truth).reshape(len(idx), w)
            A[lo:hi, off + idx] = m.T
            if blocks is not None:
                blocks[off + idx, lo:hi] = m  # the caller's block-major copy (no transpose of it all at the end)
            n_escape += int(np.count_nonzero(m == ESC))
            nzi = np.count_nonzero(m, axis=1)
            if hi < N * N:
                nb_open = _neighbour_sum(open_.view(np.int8).reshape(cg, by, bx)).reshape(cg * nblk)  # still open
                j = idx[nzi > 0]
                ctx = np.minimum(count[j], 3) + 4 * nb_open[j]
                flag_stats *= FLAG_DECAY
                truth = (last_diag[off + j] == d).astype(np.int32) if know else None
                last = _chunked_bern(io, flag_stats, ctx, truth)
                open_[j[last > 0]] = False
            else:
                open_[idx] = False
            count[idx] += nzi
    return A[:N * N], n_escape


def _coded_block_flags(io, shape: tuple[int, int, int], last_pos: np.ndarray | None) -> np.ndarray:
    """Per channel a coded-block flag for every block (c, by, bx), in two checkerboard halves (the second half sees
    its four neighbours' flags) and with the flags of Y (and Co) in the block; ``last_pos`` (encoder) gives them."""
    c, by, bx = shape
    nblk = by * bx
    cbf = np.zeros((c, by, bx), np.int32)
    parity = (np.add.outer(np.arange(by), np.arange(bx)) % 2).astype(bool)
    stats = np.full((CBF_CTX, 2), 0.5)
    for ch in range(c):
        for half in (False, True):
            sel = parity == half
            ctx = np.full(int(sel.sum()), 5, np.int64) if not half else _neighbour_sum(cbf[ch])[sel]
            if ch >= 1:
                ctx = ctx + 6 * cbf[0][sel]
            if ch >= 2:
                ctx = ctx + 12 * cbf[1][sel]
            truth = None
            if last_pos is not None:
                truth = (last_pos[ch * nblk:(ch + 1) * nblk].reshape(by, bx)[sel] >= 0).astype(np.int32)
            cbf[ch][sel] = _chunked_bern(io, stats, ctx, truth)
    return cbf


def _sparse_context(A, up_rows, left_rows, off, idx, nblk, by, bx) -> np.ndarray:
    """OWN_W4 x own template + NB_W4 x the four neighbours' templates, (w, len(idx)), for open blocks ``idx``
    (indices within the colour group starting at column ``off``): what the full-grid path computes, gathered."""
    ur, lr = up_rows[:, None], left_rows[:, None]

    def template(cols):
        return A[ur, cols] + A[lr, cols]

    x4 = OWN_W4 * template(off + idx)
    loc = idx % nblk
    row, col = loc // bx, loc % bx
    for ok, step in ((col > 0, -1), (col < bx - 1, 1), (row > 0, -bx), (row < by - 1, bx)):
        j = np.where(ok, idx + step, idx)  # an invalid neighbour reads the block itself, then counts zero
        x4 += NB_W4 * template(off + j) * ok.astype(np.int16)
    return x4


def _chunks(n: int) -> list[int]:
    """Bounds of the pieces a pass of n symbols is coded in: up to CHUNKS, none shorter than CHUNK_MIN (a short
    pass gains nothing from refreshed models and would pay their cost)."""
    parts = max(1, min(CHUNKS, n // CHUNK_MIN))
    return [n * j // parts for j in range(parts + 1)]


def _chunk_ranges(n: int):
    """The non-empty (start, stop) pieces of ``_chunks(n)``."""
    bounds = _chunks(n)
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if a < b]


def _chunked_cat(io, stats: np.ndarray, cls: np.ndarray, truth):
    """Code magnitudes in pieces (``_chunks``), each with the geometric models of the counts so far."""
    n = len(cls)
    out = np.empty(n, np.int64)
    for a, b in _chunk_ranges(n):
        k = cls[a:b]
        m = io.cat(_geometric_rows(stats), k, None if truth is None else truth[a:b])
        out[a:b] = m
        hist = np.bincount(k * K + m, minlength=CLASSES * K).reshape(CLASSES, K)  # one pass for all counts
        nonzero = hist[:, 1:].sum(axis=1)
        stats[:, 0] += hist[:, 0]
        stats[:, 1] += nonzero
        stats[:, 2] += hist[:, 1:] @ _MINUS_ONE
    return out


_MINUS_ONE = np.arange(K - 1, dtype=np.float64)  # m - 1 for m = 1..K-1 (the escape counts as K - 2)


@functools.lru_cache(maxsize=1)
def _diagonal_starts() -> np.ndarray:
    """Zigzag index where each frequency diagonal u + v = d starts (zigzag runs diagonal by diagonal), and 64."""
    zz = _zigzag()
    diag = zz // N + zz % N
    return np.concatenate([np.flatnonzero(np.diff(diag, prepend=-1)), [N * N]]).astype(np.int64)


def _chunked_bern(io, stats: np.ndarray, ctx: np.ndarray, truth):
    n = len(ctx)
    out = np.empty(n, np.int64)
    for a, b in _chunk_ranges(n):
        k = ctx[a:b]
        p1 = stats[k, 1] / (stats[k, 0] + stats[k, 1])
        v = io.bern(p1, None if truth is None else truth[a:b])  # 0 or 1 (constriction's Bernoulli)
        out[a:b] = v
        total = np.bincount(k, minlength=len(stats))
        ones = np.bincount(k, weights=v, minlength=len(stats))
        stats[:, 1] += ones
        stats[:, 0] += total - ones
    return out


# -- public -----------------------------------------------------------------------------------------------------------
def encode(q: np.ndarray, signs: bool = True, walk=None) -> bytes:
    """(c, by, bx, 64) integer symbols (|q| <= MAX_SYMBOL) -> bytes. ``signs`` False: the magnitudes alone
    (``image_dct`` format 7 with sign prediction codes the signs in ``signpred``'s stream). ``walk``: another
    model's walk with this one's signature and layout (``coefcoder7``); default this format's."""
    rec = _Recorder()
    mags, _ = (walk or _walk)(rec, q.shape[:3], q)
    flat = q.reshape(-1, N * N)  # block-major: signs and escapes in the decoder's order
    if signs:
        rec.signs((flat[flat != 0] < 0).astype(np.int32))
    payload = rec.payload()
    esc = np.abs(flat[mags.T == ESC].astype(np.int64)) - ESC
    return varint(len(payload)) + payload + encode_ints(esc)


def estimate_bytes(q: np.ndarray, signs: bool = True, walk=None) -> float:
    """Size of ``encode`` from the same models' probabilities (no coding): within a few bytes of it."""
    cnt = _Counter()
    mags, n_escape = (walk or _walk)(cnt, q.shape[:3], q)
    esc_bytes = 1
    if n_escape:
        esc_bytes = len(encode_ints(np.abs(q.reshape(-1, N * N)[mags.T == ESC].astype(np.int64)) - ESC))
    return (cnt.bits + (np.count_nonzero(q) if signs else 0)) / 8.0 + 7.0 + esc_bytes


def decode(data: bytes, c: int, by: int, bx: int, signs: bool = True, walk=None, kernel=None) -> np.ndarray:
    """Inverse of ``encode``: (c, by, bx, 64) int16 symbols (``signs`` False: magnitudes); FormatError on anything
    malformed. ``walk``: as ``encode``'s, with ``kernel`` its compiled copy ((payload, c, by, bx, signs) ->
    (magnitudes, signed where ``signs``; escapes) or None)."""
    n, pos = read_varint(data, 0, "dct residual: stream length is truncated", 5)
    if pos + n > len(data):
        raise FormatError("dct residual: stream is truncated")
    if walk is None:
        fast = coefcoder_decode.decode(data[pos:pos + n], c, by, bx, *_template(), _diagonal_starts(), _class_table(),
                                       signs)
    else:
        fast = kernel(data[pos:pos + n], c, by, bx, signs) if kernel is not None else None
    if fast is not None:  # the compiled walk, trusted only where its stream ended as this one's must
        out, n_escape = fast
        esc = decode_ints(data[pos + n:], n_escape)
        if n_escape:
            if esc.min() < 0 or esc.max() > MAX_SYMBOL - ESC:
                raise FormatError("dct residual: escaped symbol out of range")
            sel = np.abs(out) == ESC  # already signed: the escape's rest goes the same way
            out[sel] += (np.sign(out[sel]) * esc).astype(np.int16)
        return out.reshape(c, by, bx, N * N)
    rd = _Reader(data[pos:pos + n])
    out = np.zeros((c * by * bx, N * N), np.int16)  # block-major, filled by the walk
    _, n_escape = (walk or _walk)(rd, (c, by, bx), None, out)
    nz = out != 0
    neg = rd.signs(np.empty(int(np.count_nonzero(nz)))) if signs else np.zeros(0, np.int32)
    _finish(rd.coder)
    esc = decode_ints(data[pos + n:], n_escape)
    if n_escape:
        if esc.min() < 0 or esc.max() > MAX_SYMBOL - ESC:
            raise FormatError("dct residual: escaped symbol out of range")
        out[out == ESC] += esc.astype(np.int16)
    if signs:
        vals = out[nz]
        out[nz] = np.where(neg > 0, -vals, vals)
    return out.reshape(c, by, bx, N * N)
