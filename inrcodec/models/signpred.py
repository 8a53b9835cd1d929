"""Sign prediction of ``image_dct``'s residual coefficients by boundary matching (ECM's idea, written here).

Per block and channel, the K non-zero coefficients of the largest border weight take all 2^K sign hypotheses; the
hypothesis whose border lines continue the neighbouring blocks' decoded lines best predicts their signs.
Everything is integer-valued float64 arithmetic bounded below 2^53 (so exact in any summation order, on any BLAS),
so the encoder and the decoder pick the same hypothesis.
"""

from __future__ import annotations

import functools

import numpy as np

from .mcdct import N, T8, _zigzag

SHIFT = 14  # border lines in 1/32 levels: coefficient (1/16 levels) x T x T (2^15 per 1/16 level... ) / 2^14
SIDES = 4  # top, bottom, left, right
OPPOSITE = (1, 0, 3, 2)
# finite-difference operators across an edge: own lines (P0 at the edge, P1 next) and the neighbour's (N1, N2):
# e = a0 P0 + a1 P1 + b1 N1 + b2 N2
OPS = {"d1": (1, 0, -1, 0), "d2": (1, 0, -2, 1), "d3": (3, -1, -3, 1)}
COEF_CLAMP = 1 << 15  # as image_dct's inverse
MARGIN_EDGES = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)  # classes of margin / (2 |c_k|^2)


@functools.lru_cache(maxsize=1)
def border_basis() -> np.ndarray:
    """(64, 4, 2, 8) float64: per zigzag position the pixel values T[u, y] T[v, x] of the block's border lines
    [side (top, bottom, left, right), depth (edge, next), along the edge]."""
    out = np.empty((N * N, SIDES, 2, N))
    for p, r in enumerate(_zigzag()):
        u, v = divmod(int(r), N)
        blk = np.outer(T8[u], T8[v]).astype(np.float64)
        out[p, 0] = blk[[0, 1]]
        out[p, 1] = blk[[7, 6]]
        out[p, 2] = blk[:, [0, 1]].T
        out[p, 3] = blk[:, [7, 6]].T
    return out


def lines(deq: np.ndarray) -> np.ndarray:
    """(..., 64) signed dequantised coefficients (1/16 levels, clamped) -> (..., 4, 2, 8) border lines in
    1/32 levels (floor): products below 2^28, sums below 2^34, exact."""
    b = border_basis().reshape(N * N, -1)
    out = np.floor((deq.reshape(-1, N * N) @ b) * (1.0 / (1 << SHIFT)))
    return out.reshape(deq.shape[:-1] + (SIDES, 2, N))


@functools.lru_cache(maxsize=8)
def position_weight(op: str) -> np.ndarray:
    """(64,) int64: a position's border weight under ``op`` (the norm of its own-line term over all sides)."""
    a0, a1 = OPS[op][:2]
    b = border_basis()
    own = a0 * b[:, :, 0] + a1 * b[:, :, 1]
    return np.round(np.sqrt((own**2).sum(axis=(1, 2))) / 64).astype(np.int64)


@functools.lru_cache(maxsize=8)
def hypotheses(k: int) -> tuple[np.ndarray, np.ndarray, list]:
    """(2^k, k) signs (+1 / -1; hypothesis 0 all +), (2^k, k(k-1)/2) pair products, the pairs."""
    h = np.arange(1 << k)
    s = 1.0 - 2.0 * ((h[:, None] >> np.arange(k)[None, :]) & 1)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    sp = np.stack([s[:, i] * s[:, j] for i, j in pairs], 1) if pairs else np.zeros((1 << k, 0))
    return s, sp, pairs


def neighbour_targets(full: np.ndarray, op: str) -> np.ndarray:
    """(by, bx, 4, 2, 8) lines of decoded blocks -> (by, bx, 4, 8) the neighbours' part b1 N1 + b2 N2 of each
    side's operator (zero outside the image)."""
    b1, b2 = OPS[op][2:]
    t = b1 * full[..., 0, :] + b2 * full[..., 1, :]  # per block and side: its lines as a neighbour sees them
    out = np.zeros_like(t)
    out[1:, :, 0] = t[:-1, :, 1]  # top side: the block above's bottom lines
    out[:-1, :, 1] = t[1:, :, 0]
    out[:, 1:, 2] = t[:, :-1, 3]
    out[:, :-1, 3] = t[:, 1:, 2]
    return out


def contributions(absdeq: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """(n, K, 4, 2, 8) border lines of the selected coefficients at a + sign (1/32 levels, floor; 0 in empty
    slots): the block's lines under a hypothesis are its known lines + sum_k s_k of these."""
    valid = sel >= 0
    pos = np.where(valid, sel, 0)
    mag = np.where(valid, np.take_along_axis(absdeq, pos, 1), 0.0)
    return np.floor(mag[:, :, None, None, None] * border_basis()[pos] * (1.0 / (1 << SHIFT)))


def predict(known_lines: np.ndarray, cl: np.ndarray, target: np.ndarray, mask: np.ndarray,
            op: str) -> tuple[np.ndarray, np.ndarray]:
    """Per block (rows): the predicted signs (+1 / -1, (n, K)) of the selected coefficients and their margin
    classes (n, K) 0..len(MARGIN_EDGES).

    known_lines (n, 4, 2, 8): the block's lines without the selected coefficients; cl (n, K, 4, 2, 8) their
    ``contributions``; target (n, 4, 8): the neighbours' part of the operator; mask (n, 4): the sides in use.
    Each coefficient's sign is the one of the least cost over all hypotheses of the others (the best hypothesis's,
    ties to +); its margin is how much more the best hypothesis with the other sign costs, over the cost of
    flipping it alone, 4 |c_k|^2 (classes at ``MARGIN_EDGES``)."""
    a0, a1 = OPS[op][:2]
    n, k = cl.shape[:2]
    m = mask[:, :, None].astype(np.float64)
    # bounds (no clamp needed): a contribution line |cl| < 2^15 x 7921 / 2^14 < 2^14, so |c| < 2^16; a line sums
    # 64 + K of them, < 2^21, so |e0| < 2^24; |g| < 32 x 2^40, |G| < 32 x 2^32: every cost below 2^53, exact
    e0 = ((a0 * known_lines[:, :, 0] + a1 * known_lines[:, :, 1] + target) * m).reshape(n, -1)
    c = ((a0 * cl[:, :, :, 0] + a1 * cl[:, :, :, 1]) * m[:, None]).reshape(n, k, -1)
    s, sp, pairs = hypotheses(k)
    g = np.matmul(c, e0[:, :, None])[:, :, 0]
    gram = np.matmul(c, c.transpose(0, 2, 1))
    iu = np.triu_indices(k, 1)
    # half the cost less constants: s.g + sum_{i<j} s_i s_j G_ij, one product for all hypotheses
    cost = np.concatenate([g, gram[:, iu[0], iu[1]]], 1) @ np.concatenate([s, sp], 1).T
    pred = np.empty((n, k))
    margin = np.empty((n, k))
    fold = cost
    for j in range(k - 1, -1, -1):  # hypothesis h has s_j = -1 where bit j of h is set; fold holds the least cost
        half = 1 << j  # over bits above j, as a function of bits 0..j: its halves are bit j = 0 / 1
        lo, hi = fold[:, :half], fold[:, half:]
        m0, m1 = lo.min(axis=1), hi.min(axis=1)
        pred[:, j] = np.where(m0 <= m1, 1.0, -1.0)
        margin[:, j] = np.abs(m0 - m1)
        fold = np.minimum(lo, hi)
    norm = 2.0 * np.diagonal(gram, axis1=1, axis2=2)  # margin is half the cost difference: half of 4 |c_k|^2
    cls = np.zeros((n, k), np.int64)
    for t in MARGIN_EDGES:
        cls += margin >= t * norm
    cls[norm == 0] = 0
    return pred, cls


def select(absq: np.ndarray, per_position: np.ndarray, k: int, op: str, how: str = "weight") -> np.ndarray:
    """(n, 64) |symbols| -> (n, K) positions of the K non-zero coefficients of the largest score, -1 padded."""
    if how == "weight":
        score = absq.astype(np.int64) * per_position.astype(np.int64) * position_weight(op)
    elif how == "zigzag":  # the first K non-zero in zigzag order
        score = (absq != 0) * (N * N - np.arange(N * N))
    else:
        raise ValueError(how)
    order = np.argsort(-score, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(score, order, 1)
    return np.where(top > 0, order, -1)


def base_lines(base: np.ndarray, by: int, bx: int) -> np.ndarray:
    """(c, by, bx, 4, 2, 8) border lines of the base in YCoCg, 1/32 levels (edge-padded to the block grid)."""
    h, w, c = base.shape
    x = np.pad(base.astype(np.float64), ((0, by * N - h), (0, bx * N - w), (0, 0)), mode="edge")
    if c == 3:
        r, g, b = x[..., 0], x[..., 1], x[..., 2]
        planes = [8 * (r + 2 * g + b), 16 * (r - b), 8 * (2 * g - r - b)]
    else:
        planes = [32 * x[..., 0]]
    out = np.empty((c, by, bx, SIDES, 2, N))
    for ch, p in enumerate(planes):
        blk = p.reshape(by, N, bx, N).transpose(0, 2, 1, 3)
        out[ch, :, :, 0] = blk[:, :, [0, 1]]
        out[ch, :, :, 1] = blk[:, :, [7, 6]]
        out[ch, :, :, 2] = blk[:, :, :, [0, 1]].transpose(0, 1, 3, 2)
        out[ch, :, :, 3] = blk[:, :, :, [7, 6]].transpose(0, 1, 3, 2)
    return out


def lab_stats(q: np.ndarray, units: np.ndarray, mask: np.ndarray, k: int, op: str, base=None,
              select_how: str = "weight", **kw) -> dict:
    """The lab's measurement (true neighbours, true signs of the unselected coefficients): per predicted sign
    whether the prediction was wrong, its rank, margin class, channel group; contexts rank(0..3) x class x group."""
    select_how = kw.get("select", select_how)
    zero = kw.get("zero_target", False)
    from .image_dct import _per_position

    c, by, bx, _ = q.shape
    per = _per_position(units).astype(np.float64)
    bl = base_lines(base, by, bx) if base is not None else None
    out = {"wrong": [], "rank": [], "cls": [], "group": []}
    use = mask.reshape(-1, SIDES)
    for ch in range(c):
        qc = q[ch].reshape(-1, N * N)
        deq = np.clip(qc * per[ch], -COEF_CLAMP, COEF_CLAMP)
        full = lines(deq).reshape(by, bx, SIDES, 2, N)
        if bl is not None:
            full = full + bl[ch]
        nb = (bl[ch] if bl is not None else np.zeros_like(full)) if zero else full
        target = neighbour_targets(nb, op).reshape(-1, SIDES, N)
        sel = select(np.abs(qc), per[ch], k, op, select_how)
        rows = np.flatnonzero(use.any(1) & (sel[:, 0] >= 0))
        if not len(rows):
            continue
        s = sel[rows]
        d = deq[rows].copy()
        ok = s >= 0
        r_idx = np.repeat(np.arange(len(rows))[:, None], k, 1)
        truth = np.sign(d[r_idx[ok], s[ok]])
        d[r_idx[ok], s[ok]] = 0.0
        known = lines(d)
        if bl is not None:
            known = known + bl[ch].reshape(-1, SIDES, 2, N)[rows]
        cl = contributions(np.abs(deq[rows]), s)
        pred, cls = predict(known, cl, target[rows], use[rows], op)
        out["wrong"].append((pred[ok] != truth).astype(np.int64))
        out["rank"].append(np.broadcast_to(np.arange(k), s.shape)[ok])
        out["cls"].append(cls[ok])
        out["group"].append(np.full(int(ok.sum()), min(ch, 1)))
    res = {key: np.concatenate(v) if v else np.zeros(0, np.int64) for key, v in out.items()}
    nc = len(MARGIN_EDGES) + 1
    res["ctx"] = (np.minimum(res["rank"], 3) * nc + res["cls"]) * 2 + res["group"]
    res["nctx"] = 4 * nc * 2
    return res


# -- the codec (``image_dct`` format 8) -------------------------------------------------------------------------------
K = 8  # signs predicted per block and channel; lab (kodim01/07, 0.2 bpp bases, step 10, phase order, residual
# domain, d3): K 4 / 6 / 8 saved 1.57 / 1.77 / 1.90 % of the residual's bytes
OP = "d3"
RANKS = (0, 1, 2, 2, 3, 3, 3, 3)  # context class of a coefficient's rank in its block
N_CTX = 4 * (len(MARGIN_EDGES) + 1) * 2  # rank class x margin class x channel group (luma, chroma)


def phase_sides(by: int, bx: int, tx16_blocks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(phase (by, bx) 0..3, sides (by, bx, 4) bool) of the decoding order: phase 0 the (even, even) blocks, signs
    raw; 1 the (even, odd) ones from their left and right neighbours; 2 (odd, even) from above and below; 3 (odd,
    odd) from all four (each side a block of an earlier phase). Sides outside the image, sides to a block of a
    16x16 group (whose lines are not 8x8 ones) and every side of such a block are not used."""
    yy, xx = np.meshgrid(np.arange(by) % 2, np.arange(bx) % 2, indexing="ij")
    phase = 2 * yy + xx
    m = np.zeros((by, bx, SIDES), bool)
    m[phase == 1, 2:] = True
    m[phase == 2, :2] = True
    m[phase == 3] = True
    m[0, :, 0] = m[-1, :, 1] = m[:, 0, 2] = m[:, -1, 3] = False
    if tx16_blocks is not None and tx16_blocks.any():
        t = tx16_blocks
        m[t] = False
        m[1:, :, 0] &= ~t[:-1]
        m[:-1, :, 1] &= ~t[1:]
        m[:, 1:, 2] &= ~t[:, :-1]
        m[:, :-1, 3] &= ~t[:, 1:]
    return phase, m


def _walk(io, q: np.ndarray, units: np.ndarray, tx16_blocks: np.ndarray | None, truth: bool) -> np.ndarray:
    """The sign stream shared by encoder (``truth``: q signed) and decoder (q unsigned magnitudes): the raw signs of
    the coefficients not predicted (block-major, as ``coefcoder`` codes them), then per phase 1..3 for all channels
    a "prediction wrong" bit per predicted sign (adaptive, contexts rank x margin class x channel group). Returns
    the signed symbols (c, by, bx, 64)."""
    from .coefcoder import _chunked_bern
    from .image_dct import _per_position

    c, by, bx, _ = q.shape
    nblk = by * bx
    out = q.reshape(c, nblk, N * N).astype(np.int32)  # a copy: signs are applied to it
    absq = np.abs(out)
    per = _per_position(units).astype(np.float64)
    phase, sides = phase_sides(by, bx, tx16_blocks)
    phase, sides = phase.ravel(), sides.reshape(nblk, SIDES)
    sel = np.full((c, nblk, K), -1, np.int64)
    use = sides.any(1)
    for ch in range(c):
        sel[ch, use] = select(absq[ch, use], per[ch], K, OP)
    predicted = np.zeros((c, nblk, N * N), bool)
    ci, bi, ki = np.nonzero(sel >= 0)
    predicted[ci, bi, sel[ci, bi, ki]] = True
    raw = (out != 0) & ~predicted
    neg = io.signs((out[raw] < 0).astype(np.int32) if truth else np.empty(int(raw.sum())))
    if not truth:
        v = out[raw]
        out[raw] = np.where(np.asarray(neg) > 0, -v, v)
    absdeq = np.clip(absq * per[:, None, :], -COEF_CLAMP, COEF_CLAMP)
    deq = np.where(out < 0, -absdeq, absdeq) * ~predicted  # known part: the predicted coefficients left out
    full = np.stack([lines(deq[ch]) for ch in range(c)])  # (c, nblk, 4, 2, 8); phases 1-3 add theirs below
    stats = np.full((N_CTX, 2), 0.5)
    for p in (1, 2, 3):
        parts = []
        for ch in range(c):
            rows = np.flatnonzero((phase == p) & (sel[ch, :, 0] >= 0))
            if not len(rows):
                continue
            s = sel[ch, rows]
            cl = contributions(absdeq[ch, rows], s)
            target = _targets(full[ch], rows, by, bx)
            pred, cls = predict(full[ch, rows], cl, target, sides[rows], OP)
            ok = s >= 0
            ctx = ((np.asarray(RANKS)[None, :] * (len(MARGIN_EDGES) + 1) + cls) * 2 + min(ch, 1))[ok]
            parts.append((ch, rows, s, ok, cl, pred, ctx))
        if not parts:
            continue
        ctx = np.concatenate([t[6] for t in parts])
        if truth:
            wrong = np.concatenate([(np.sign(out[ch][rows[:, None], np.where(ok, s, 0)])[ok] != pred[ok])
                                    for ch, rows, s, ok, _, pred, _ in parts]).astype(np.int32)
        else:
            wrong = None
        wrong = np.asarray(_chunked_bern(io, stats, ctx, wrong))
        at = 0
        for ch, rows, s, ok, cl, pred, _ in parts:
            nk = int(ok.sum())
            sign = pred.copy()
            sign[ok] *= 1.0 - 2.0 * wrong[at:at + nk]
            at += nk
            sign[~ok] = 0.0
            full[ch, rows] += np.einsum("nk,nk...->n...", sign, cl)
            if not truth:
                r_idx = np.repeat(rows[:, None], K, 1)[ok]
                pos = s[ok]
                out[ch, r_idx, pos] = np.where(sign[ok] < 0, -absq[ch, r_idx, pos], absq[ch, r_idx, pos])
    return out.reshape(q.shape)


def _targets(full: np.ndarray, rows: np.ndarray, by: int, bx: int) -> np.ndarray:
    """``neighbour_targets`` of blocks ``rows`` alone: (n, 4, 8) from the lines (by * bx, 4, 2, 8) of the blocks."""
    b1, b2 = OPS[OP][2:]
    nblk = by * bx
    out = np.empty((len(rows), SIDES, N))
    for side, step in enumerate((-bx, bx, -1, 1)):  # the neighbour above, below, left, right
        j = np.clip(rows + step, 0, nblk - 1)  # outside the image: any block (the side is masked out)
        opp = OPPOSITE[side]
        out[:, side] = b1 * full[j, opp, 0] + b2 * full[j, opp, 1]
    return out


def encode(q: np.ndarray, units: np.ndarray, tx16_blocks: np.ndarray | None = None) -> bytes:
    """The sign stream of symbols ``q`` (c, by, bx, 64): an ANS payload (``coefcoder``'s binary machinery)."""
    from .coefcoder import _Recorder

    rec = _Recorder()
    _walk(rec, q, units, tx16_blocks, True)
    return rec.payload()


def estimate_bits(q: np.ndarray, units: np.ndarray, tx16_blocks: np.ndarray | None = None) -> float:
    """Bits of ``encode``'s stream from its models (no coding)."""
    from .coefcoder import _Counter

    cnt = _Counter()
    _walk(cnt, q, units, tx16_blocks, True)
    return cnt.bits


def decode(payload: bytes, mags: np.ndarray, units: np.ndarray, tx16_blocks: np.ndarray | None = None) -> np.ndarray:
    """Signed symbols from the magnitudes (c, by, bx, 64) and the stream; FormatError unless it ends exactly."""
    from ..entropy.coding import _finish
    from .coefcoder import _Reader

    rd = _Reader(payload)
    out = _walk(rd, mags, units, tx16_blocks, False)
    _finish(rd.coder)
    return out.astype(np.int16)
