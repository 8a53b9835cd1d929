"""Sign prediction of ``image_dct``'s residual by boundary matching (``image_dct`` format 7's TOOL_SIGNS;
ECM's idea, written here).

Why: the residual (~60 % of a ``gaussian+dct`` file) coded one raw bit per non-zero coefficient for its sign, 21-24 %
of its bits. Predicting signs from the base's high-pass or from neighbouring blocks' signs did not pay (46-50 %
agreement, <= 0.2 %); what does is the decoded neighbourhood: of the 2^K sign hypotheses of a block's K largest
coefficients, the one whose border lines continue the neighbouring blocks' decoded lines most smoothly is right
84 % (largest) to 70 % (8th) of the time in the order below (lab: 2.1 % of the residual's bytes on 8x8 blocks; the
encoder's whole chain -1.5 % BD-rate; benchmarks/README.md "sign prediction", session 25).

How (the exact layout is docs/format.md, the ``dct`` section's format 7):

- **Units and order** (``block_phases``): 8x8 blocks in four phases by (row, column) parity, (even, even) first with
  raw signs, then (even, odd) from their left and right neighbours, (odd, even) from above and below, (odd, odd)
  from all four; the flagged 16x16 groups (``image_tx16``) after them in two checkerboard phases of the group grid,
  from every decoded block around them. Each phase is one vectorised pass over all its units of every channel;
  measured in the lab (``benchmarks/signpred_lab.py``), this order keeps 93 % of a raster order's saving (left and
  top sides, strictly sequential) and beats one checkerboard (half the blocks raw).
- **Which signs** (``_Kind``): the K = 6 non-zero coefficients of the largest |q| x step x border weight, then in
  further rounds the next K with the earlier ones' signs known (3 rounds for blocks, 5 for groups).
- **Cost** (``predict``): per pixel of a usable side e = 3 P0 - P1 - 3 N1 + N2 (P own lines from the edge, N the
  neighbour's: a third difference across the edge; ECM's second difference saved 1.88 against 2.13 %), summed
  squared over the sides, in the residual alone (the base is smooth across block edges: with it 2.07 %). Everything
  is integer-valued float64 bounded below 2^53 (exact in any summation order, on any BLAS), so the encoder and the
  decoder pick the same hypothesis; each round runs in a compiled copy (``kernels.signpred_round``, held to the
  numpy path here by tests/test_signpred.py) where there is one.
- **Coding**: the signs not predicted raw; per predicted sign a "prediction wrong" bit with adaptive counts in
  contexts of its rank, the margin of its hypothesis (cost of the other sign over the cost of flipping it alone)
  and the channel group and unit kind (``coefcoder``'s binary machinery).
- **Form 2** (``image_dct``'s TOOL_SIGNS2, session 26, written by default): the same units, selection, cost and
  contexts, in another order. Round-major: every unit's first K2 = 2 signs, phase 0 to 5, then every unit's next
  two, ... (16 rounds); the phase-0 blocks are predicted too, and every unit uses all its sides, each neighbour's lines
  as far as they are decoded (its raw signs and its earlier rounds; what is still to come counts 0). A unit's later
  signs so see all four neighbours' large coefficients, and information spreads in small steps. Lab (the encoder's
  residuals of kodim01/03/05/07, 0.1-0.35 bpp bases, steps 10 and 16): 0.67 % fewer bytes of the residual than
  form 1 (form 1 saves ~2 %); the round-major order is most of it (K 6 / 3 rounds in that order +0.26 %, K 4 /
  8 rounds +0.54 %, against +0.20 % for K 4 / 8 rounds phase-major).

**Decoding** runs the whole pass in one compiled call (``kernels.signpred_round.walk``: ``sp_walk`` in
``cuda/signpred_cpu.cpp``, with an AVX2 copy; units, selection, raw signs, lines, rounds and its own ANS decoder),
trusted only where its stream ends exactly as this module's must; the encoder takes the bits and contexts from the
same call and codes them here. ``_walk`` is the reference (and the fallback without a compiler): on kodim07 at
0.6 bpp the sign pass is ~9 CPU-ms compiled against ~47 with the per-round kernels of session 25.
"""

from __future__ import annotations

import functools

import numpy as np

from ..kernels import signpred_round
from .mcdct import N, T8, _zigzag

SHIFT = 14  # border lines in 1/32 levels: a coefficient (1/16 levels) x T8 x T8 has gain 2^19 per level (the inverse
# shifts 9 + 8 down to 1/4 levels), / 2^14 leaves 2^5
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
    out = signpred_round.lines(deq.reshape(-1, N * N), b, SHIFT) if USE_KERNEL else None
    if out is None:
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


# -- the codec (``image_dct`` format 7, TOOL_SIGNS) --------------------------------------------------------------------
K = 6  # signs predicted per block (or 16x16 group) and channel; lab (kodim01/07, 0.2 bpp bases, step 10, residual
# domain, d3, the phase order): K 4 / 6 / 8 saved 1.57 / 1.77 / 1.90 % of the residual's bytes
OP = "d3"
ROUNDS = 3  # after the K largest, the next K with those known, ...
GROUP_ROUNDS = 5  # ... in 16x16 groups
RANKS = (0, 1, 2, 2) + (3,) * (K - 4) + (4,) * K + (5,) * K * (max(ROUNDS, GROUP_ROUNDS) - 2)  # rank's context
N_RANKS = 6
N_CTX = N_RANKS * (len(MARGIN_EDGES) + 1) * 2 * 2  # rank class x margin class x channel group x unit kind
# Form 2 (``image_dct`` format 7's TOOL_SIGNS2): round-major (every unit's first K2 signs, phase by phase, then
# the next K2, ...), the (even, even) blocks predicted too, every side of a unit used as far as its neighbour is decoded
# (a neighbour of a later phase with its raw signs and earlier rounds); lab (kodim01/03/05/07, bases 0.1/0.2/0.35 bpp,
# steps 10 and 16), bits saved against form 1 as % of the residual: the round-major order with K 6 / 4 / 2 and
# 3 / 8 / 16 rounds +0.26 / +0.54 / +0.67 %; the phase-major order with K 4 and 8 rounds +0.20 %
K2 = 2
ROUNDS2 = GROUP_ROUNDS2 = 16
RANKS2 = (0, 1, 2, 2) + (3,) * (K2 * (ROUNDS2 - 2))  # rank's context: first round's two places, second round, later
N_RANKS2 = 4
SHIFT16 = 15  # the 16x16 inverse has gain 2^18 to 1/4 levels (image_tx16): 2^15 to 1/32
USE_KERNEL = True  # each round in the compiled copy (kernels.signpred_round) where there is one
_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # the neighbour across side 0..3 (top, bottom, left, right)
# a unit's half-sides: (which of its blocks, side of that block): an 8x8 block has its four sides; a 16x16 group
# (blocks 00, 01, 10, 11) the outer half-sides of its four blocks
_BLOCK_SIDES = ((0, 0), (0, 1), (0, 2), (0, 3))
_GROUP_SIDES = ((0, 0), (1, 0), (2, 1), (3, 1), (0, 2), (2, 2), (1, 3), (3, 3))


@functools.lru_cache(maxsize=1)
def group_basis() -> np.ndarray:
    """(256, 8, 2, 8) float64: per coefficient slot of a group (its block 0..3 x zigzag position, as
    ``image_tx16.to_blocks`` holds C[8i + u, 8j + v]) the pixel values T16[u, y] T16[v, x] of the group's outer
    half-sides [half-side (``_GROUP_SIDES``), depth, along]."""
    from .image_tx16 import t16

    t = t16().astype(np.float64)
    out = np.empty((4, N * N, len(_GROUP_SIDES), 2, N))
    for blk in range(4):
        bi, bj = divmod(blk, 2)
        for p, r in enumerate(_zigzag()):
            u, v = divmod(int(r), N)
            g = np.outer(t[8 * bi + u], t[8 * bj + v])  # (16, 16) pixels
            for h, (j, side) in enumerate(_GROUP_SIDES):
                oy, ox = divmod(j, 2)
                sub = g[8 * oy:8 * oy + 8, 8 * ox:8 * ox + 8]
                out[blk, p, h] = {0: sub[[0, 1]], 1: sub[[7, 6]], 2: sub[:, [0, 1]].T, 3: sub[:, [7, 6]].T}[side]
    return out.reshape(4 * N * N, len(_GROUP_SIDES), 2, N)


@functools.lru_cache(maxsize=4)
def _weights(kind: str) -> np.ndarray:
    """Per coefficient slot of a unit its border weight under OP (norm of its own-line term), int64."""
    a0, a1 = OPS[OP][:2]
    b = border_basis() if kind == "block" else group_basis() / 2.0  # group basis: one more bit of gain
    own = a0 * b[:, :, 0] + a1 * b[:, :, 1]
    return np.round(np.sqrt((own**2).sum(axis=(1, 2))) / 64).astype(np.int64)


def block_phases(by: int, bx: int, tx16_blocks: np.ndarray | None = None) -> np.ndarray:
    """(by, bx) decoding phase of each block: 8x8 blocks 0 (even, even: signs raw), 1 (even, odd), 2 (odd, even),
    3 (odd, odd); blocks of 16x16 groups 4 or 5 (the group grid's checkerboard). A unit's prediction uses the sides
    whose neighbour has a lower phase: 1 its left and right, 2 above and below, 3 all four, 4 the 8x8 blocks
    around it, 5 everything around it."""
    yy, xx = np.meshgrid(np.arange(by), np.arange(bx), indexing="ij")
    phase = 2 * (yy % 2) + xx % 2
    if tx16_blocks is not None and tx16_blocks.any():
        phase = np.where(tx16_blocks, 4 + (yy // 2 + xx // 2) % 2, phase)
    return phase


def _units(kind: str, phase: np.ndarray, p: int, form: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The units of phase ``p``: (blocks (n, m) flat indices, neighbour of each half-side (n, S) flat index,
    available (n, S) bool: form 1 the sides of earlier phases, form 2 every side inside the image)."""
    by, bx = phase.shape
    if kind == "block":
        yy, xx = np.nonzero(phase == p)
        blocks = (yy * bx + xx)[:, None]
        spec = _BLOCK_SIDES
    else:
        yy, xx = np.nonzero((phase == p) & (np.arange(by)[:, None] % 2 == 0) & (np.arange(bx)[None, :] % 2 == 0))
        blocks = np.stack([yy * bx + xx, yy * bx + xx + 1, (yy + 1) * bx + xx, (yy + 1) * bx + xx + 1], 1)
        spec = _GROUP_SIDES
    n = len(yy)
    nb = np.zeros((n, len(spec)), np.int64)
    ok = np.zeros((n, len(spec)), bool)
    flat = phase.ravel()
    for h, (j, side) in enumerate(spec):
        y = blocks[:, j] // bx + _STEPS[side][0]
        x = blocks[:, j] % bx + _STEPS[side][1]
        inside = (y >= 0) & (y < by) & (x >= 0) & (x < bx)
        nb[:, h] = np.where(inside, y * bx + x, 0)
        ok[:, h] = inside & ((flat[nb[:, h]] < p) | (form == 2))
    return blocks, nb, ok


class _Kind:
    """The units of one kind (8x8 blocks or 16x16 groups) and phase, over all channels: a unit of channel ch is a row
    whose blocks are ch * nblk + its blocks (so every channel's lines live in one array)."""

    def __init__(self, kind, blocks, nb, ok, c, nblk, absq, per, clamp, k=K, rounds=(ROUNDS, GROUP_ROUNDS)):
        n, m = blocks.shape
        off = (np.arange(c) * nblk)[:, None, None]
        self.kind, self.blocks = kind, (blocks[None] + off).reshape(c * n, m)
        self.nb, self.ok = (nb[None] + off).reshape(c * n, -1), np.tile(ok, (c, 1))
        self.group = np.repeat(np.minimum(np.arange(c), 1), n)  # luma 0, chroma 1
        self.spec = _BLOCK_SIDES if kind == "block" else _GROUP_SIDES
        self.basis = border_basis() if kind == "block" else group_basis()
        self.shift = SHIFT if kind == "block" else SHIFT16
        self.absq = absq[self.blocks].reshape(c * n, m * N * N)
        step = np.repeat(np.tile(per, (1, m)), n, axis=0)  # (c * n, m * 64)
        prod = self.absq * step
        self.absdeq = np.minimum(prod, clamp)
        self.k, self.rounds = k, rounds[0] if kind == "block" else rounds[1]
        self.sel = np.full((c * n, k * self.rounds), -1, np.int64)
        use = self.ok.any(1) & (prod.max(1) > 0)  # rows with a side and a coefficient
        score = prod[use] * _weights(kind)  # integers below 2^33: exact in float64
        order = np.argsort(-score, axis=1, kind="stable")[:, :k * self.rounds]
        self.sel[use] = np.where(np.take_along_axis(score, order, 1) > 0, order, -1)

    def lines(self, deq: np.ndarray) -> np.ndarray:
        """(n, S, 2, 8) half-side lines of the units' (n, m * 64) signed dequantised coefficients."""
        b = self.basis.reshape(len(self.basis), -1)
        out = signpred_round.lines(deq, b, self.shift) if USE_KERNEL else None
        if out is None:
            out = np.floor((deq @ b) * (1.0 / (1 << self.shift)))
        return out.reshape(len(deq), len(self.spec), 2, N)

    def contributions(self, rows: np.ndarray, r: int) -> np.ndarray:
        s = self.sel[rows, r * self.k:(r + 1) * self.k]
        valid = s >= 0
        pos = np.where(valid, s, 0)
        mag = np.where(valid, np.take_along_axis(self.absdeq[rows], pos, 1), 0.0)
        return np.floor(mag[:, :, None, None, None] * self.basis[pos] * (1.0 / (1 << self.shift)))

    def mine(self, full: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.stack([full[self.blocks[rows, j], side] for j, side in self.spec], 1)

    def store(self, full: np.ndarray, rows: np.ndarray, unit_lines: np.ndarray) -> None:
        for h, (j, side) in enumerate(self.spec):
            full[self.blocks[rows, j], side] = unit_lines[:, h]

    def targets(self, full: np.ndarray, rows: np.ndarray) -> np.ndarray:
        b1, b2 = OPS[OP][2:]
        out = np.empty((len(rows), len(self.spec), N))
        for h, (_, side) in enumerate(self.spec):
            nbl = full[self.nb[rows, h], OPPOSITE[side]]
            out[:, h] = b1 * nbl[:, 0] + b2 * nbl[:, 1]
        return out


def _form(form: int) -> tuple[int, int, int, tuple, int]:
    """(K, rounds of blocks, of groups, rank classes, their number) of sign stream form 1 or 2."""
    return (K, ROUNDS, GROUP_ROUNDS, RANKS, N_RANKS) if form == 1 else (K2, ROUNDS2, GROUP_ROUNDS2, RANKS2, N_RANKS2)


def _walk(io, q: np.ndarray, units: np.ndarray, tx16_blocks: np.ndarray | None, truth: bool,
          form: int = 1) -> np.ndarray:
    """The sign stream shared by encoder (``truth``: q signed) and decoder (q: the magnitudes): the raw signs of the
    coefficients not predicted (block-major, as ``coefcoder`` codes them), then per step a "prediction wrong" bit
    per predicted sign of every channel (adaptive; contexts rank class x margin class x channel group x unit kind);
    the steps: form 1 per phase 1..5 its rounds, form 2 per round the phases 0..5. Returns the signed symbols
    (c, by, bx, 64) int32."""
    from .coefcoder import _chunked_bern
    from .image_dct import _per_position
    from .image_tx16 import COEF_CLAMP as CLAMP16

    c, by, bx, _ = q.shape
    nblk = by * bx
    out = q.reshape(c * nblk, N * N).astype(np.int32)  # a copy: the signs are applied to it; row ch * nblk + b
    absq = np.abs(out)
    per = _per_position(units).astype(np.float64)
    phase = block_phases(by, bx, tx16_blocks)
    k_, rounds, group_rounds, rank_of, n_ranks = _form(form)
    plan = {}  # (kind, phase) -> _Kind
    predicted = np.zeros((c * nblk, N * N), bool)
    for kind, phases in (("block", (1, 2, 3) if form == 1 else (0, 1, 2, 3)), ("group", (4, 5))):
        for p in phases:
            blocks, nb, ok = _units(kind, phase, p, form)
            if not len(blocks):
                continue
            u = _Kind(kind, blocks, nb, ok, c, nblk, absq, per, COEF_CLAMP if kind == "block" else CLAMP16, k_,
                      (rounds, group_rounds))
            plan[kind, p] = u
            r, k = np.nonzero(u.sel >= 0)
            slot = u.sel[r, k]
            predicted[u.blocks[r, slot // (N * N)], slot % (N * N)] = True
    raw = (out != 0) & ~predicted
    neg = io.signs((out[raw] < 0).astype(np.int32) if truth else np.empty(int(raw.sum())))
    if not truth:
        v = out[raw]
        out[raw] = np.where(np.asarray(neg) > 0, -v, v)
    # the lines of every block's sides from what is known: 8x8 blocks from their own coefficients (those of phase 0
    # complete), groups' outer half-sides from the group's; the predicted coefficients added after their round
    full = np.zeros((c * nblk, SIDES, 2, N))
    plain = np.flatnonzero(np.tile(phase.ravel() < 4, c) & np.any(out != 0, axis=1))
    if len(plain):
        chan = plain // nblk
        deq = np.minimum(absq[plain] * per[chan], COEF_CLAMP) * ~predicted[plain]
        full[plain] = lines(np.where(out[plain] < 0, -deq, deq))
    for (kind, _), u in plan.items():
        if kind == "group":
            d = np.where(out[u.blocks] < 0, -1.0, 1.0).reshape(len(u.blocks), -1) * u.absdeq
            d *= ~predicted[u.blocks].reshape(len(u.blocks), -1)
            u.store(full, np.arange(len(u.blocks)), u.lines(d))
    stats = np.full((n_ranks * (len(MARGIN_EDGES) + 1) * 4, 2), 0.5)
    ranks = np.asarray(rank_of)[None, :]
    maxr = max(rounds, group_rounds)
    steps = ([(p, r) for p in (1, 2, 3, 4, 5) for r in range(maxr)] if form == 1 else
             [(p, r) for r in range(maxr) for p in (0, 1, 2, 3, 4, 5)])
    for p, r in steps:
        parts = []
        rk = ranks[:, r * k_:(r + 1) * k_]
        for kind in ("block", "group"):
            u = plan.get((kind, p))
            if u is None or r >= u.rounds:
                continue
            rows = np.flatnonzero(u.sel[:, r * k_] >= 0)
            if not len(rows):
                continue
            fast = None
            if USE_KERNEL:  # the compiled round (the same integers), else numpy
                fast = signpred_round.predict_round(full, u.blocks[rows], u.nb[rows], u.ok[rows], u.spec,
                                                    u.sel[rows, r * k_:(r + 1) * k_], u.absdeq[rows], u.basis,
                                                    u.shift, OPS[OP], MARGIN_EDGES)
            if fast is not None:
                pred, cls = fast
                cl = mine = None
            else:
                cl = u.contributions(rows, r)
                mine = u.mine(full, rows)
                pred, cls = predict(mine, cl, u.targets(full, rows), u.ok[rows], OP)
            ok = u.sel[rows, r * k_:(r + 1) * k_] >= 0
            ctx = (((rk * (len(MARGIN_EDGES) + 1) + cls) * 2 + u.group[rows, None]) * 2 + (kind == "group"))[ok]
            parts.append((u, rows, ok, cl, pred, ctx, mine))
        if not parts:
            continue
        ctx = np.concatenate([t[5] for t in parts])
        wrong = None
        if truth:
            wrong = []
            for u, rows, ok, _, pred, _, _ in parts:
                slot = np.where(ok, u.sel[rows, r * k_:(r + 1) * k_], 0)
                sgn = np.sign(out[u.blocks[rows[:, None], slot // (N * N)], slot % (N * N)])
                wrong.append((sgn[ok] != pred[ok]).astype(np.int32))
            wrong = np.concatenate(wrong)
        wrong = np.asarray(_chunked_bern(io, stats, ctx, wrong))
        at = 0
        for u, rows, ok, cl, pred, _, mine in parts:
            nk = int(ok.sum())
            sign = pred.copy()
            sign[ok] *= 1.0 - 2.0 * wrong[at:at + nk]
            at += nk
            sign[~ok] = 0.0
            if mine is not None or not signpred_round.apply_round(
                    full, u.blocks[rows], u.spec, u.sel[rows, r * k_:(r + 1) * k_], u.absdeq[rows], u.basis,
                    u.shift, sign):
                if mine is None:
                    cl, mine = u.contributions(rows, r), u.mine(full, rows)
                mine += np.einsum("nk,nk...->n...", sign, cl)  # integers: exact in any order
                u.store(full, rows, mine)
            if not truth:
                slot = u.sel[rows, r * k_:(r + 1) * k_][ok]
                blk = u.blocks[np.repeat(rows[:, None], k_, 1)[ok], slot // (N * N)]
                pos = slot % (N * N)
                out[blk, pos] = np.where(sign[ok] < 0, -absq[blk, pos], absq[blk, pos])
    return out.reshape(q.shape)


def _compiled(payload: bytes | None, q: np.ndarray, units: np.ndarray, tx16_blocks: np.ndarray | None,
              form: int = 1):
    """``kernels.signpred_round.walk`` with this module's constants: the whole pass in one compiled call (decoding:
    the signed symbols, or None where there is no library or the stream is not one it vouches for; encoding: the
    bits and contexts ``_walk`` codes, or None)."""
    from .image_dct import _per_position
    from .image_tx16 import COEF_CLAMP as CLAMP16

    k, rounds, group_rounds, rank_of, n_ranks = _form(form)
    return signpred_round.walk(payload, q, _per_position(units).astype(np.float64), tx16_blocks,
                               border_basis().reshape(N * N, -1), group_basis().reshape(4 * N * N, -1),
                               _weights("block"), _weights("group"), k, rounds, group_rounds,
                               np.asarray(rank_of[:k * max(rounds, group_rounds)]), n_ranks, SHIFT, SHIFT16,
                               COEF_CLAMP, CLAMP16, OPS[OP], MARGIN_EDGES, form)


def _code(io, q: np.ndarray, units: np.ndarray, tx16_blocks: np.ndarray | None, form: int = 1) -> None:
    """The encoder's side of ``_walk`` (``io`` a recorder or counter, ``q`` signed): the compiled walk's bits coded
    in ``_walk``'s order and models, the same stream; ``_walk`` itself where there is no library."""
    from .coefcoder import _chunked_bern

    res = _compiled(None, q, units, tx16_blocks, form) if USE_KERNEL else None
    if res is None:
        _walk(io, q, units, tx16_blocks, True, form)
        return
    raw, wrong, ctx, seg = res
    io.signs(raw)
    stats = np.full((_form(form)[4] * (len(MARGIN_EDGES) + 1) * 4, 2), 0.5)
    at = 0
    for n in seg:  # per step, as _walk codes them
        if n:
            _chunked_bern(io, stats, ctx[at:at + n], wrong[at:at + n])
            at += n


def encode(q: np.ndarray, units: np.ndarray, tx16_blocks: np.ndarray | None = None, form: int = 1) -> bytes:
    """The sign stream (``form`` 1 or 2) of symbols ``q`` (c, by, bx, 64): an ANS payload (``coefcoder``'s binary
    machinery)."""
    from .coefcoder import _Recorder

    rec = _Recorder()
    _code(rec, q, units, tx16_blocks, form)
    return rec.payload()


def estimate_bits(q: np.ndarray, units: np.ndarray, tx16_blocks: np.ndarray | None = None, form: int = 1) -> float:
    """Bits of ``encode``'s stream from its models (no coding)."""
    from .coefcoder import _Counter

    cnt = _Counter()
    _code(cnt, q, units, tx16_blocks, form)
    return cnt.bits


def decode(payload: bytes, mags: np.ndarray, units: np.ndarray, tx16_blocks: np.ndarray | None = None,
           form: int = 1) -> np.ndarray:
    """Signed symbols (c, by, bx, 64) int16 from their magnitudes and the stream; FormatError unless it ends
    exactly."""
    from ..entropy.coding import _finish
    from .coefcoder import _Reader

    if USE_KERNEL:
        out = _compiled(payload, mags, units, tx16_blocks, form)
        if out is not None:
            return out
    rd = _Reader(payload)
    out = _walk(rd, mags, units, tx16_blocks, False, form)
    _finish(rd.coder)
    return out.astype(np.int16)
