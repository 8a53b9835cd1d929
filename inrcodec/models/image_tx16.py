"""16x16 transforms for groups of 2x2 blocks of ``image_dct``'s residual (its section format 4).

Why: under a Gaussian base much of the residual is smooth over more than 8 pixels (the base's colour errors, soft
texture); one 16x16 DCT codes such a group in fewer coefficients than four 8x8 ones and leaves no block edges
inside it (AVIF/HEVC choose the transform size by RD for the same reason). Session 21's opposite, four 4x4s per
block, lost (``benchmarks/_tx4.py``).

How it stays one symbol stream: the 256 coefficients C[u, v] of a group's 16x16 DCT are held as its four 8x8
blocks, quadrant by quadrant: block (i, j) of the group holds C[8i + u', 8j + v'] at its zig-zag position of
(u', v'). A smooth group codes its low quadrant in the top-left block and leaves three blocks empty, which
``coefcoder`` (unchanged) codes for a few bits; every block is dequantised with its usual per-position steps.
One flag per group that codes anything says which transform it uses (a separate small stream, decoded after the
symbols: the decoder then knows which groups code something), coded with adaptive binary models in contexts of
the flags of the four neighbouring groups (two checkerboard halves, as ``coefcoder``'s coded-block flags) and of
how many non-zero symbols the group holds. Groups are the whole 2x2 blocks of the block grid (an odd last row or
column of blocks is always 8x8).

Exact inverse: HEVC's 16-point integer matrix (orthonormal DCT-II x 256, ``T16``), two passes, rounding shifts
10 + 8 (gain 2^16 over the 1/16-level coefficients -> integer 1/4 levels, as the 8x8 path). Dequantised
coefficients are clamped to +-2^16 (``COEF_CLAMP``; a 16x16 DC reaches 16 x 255 levels = 65 280 sixteenths, twice
the 8x8 path's 2^15). float64: every product an integer, every sum below 16 x 90 x 2^16 < 2^27 in the first pass
and 16 x 90 x 92 160 < 2^28 in the second: exact in any order; separable 16x16 products over the flagged groups.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import FormatError
from .coefcoder import _chunked_bern, _neighbour_sum
from .mcdct import N, _unzigzag, _zigzag

M = 2 * N
SHIFT1, SHIFT2 = 10, 8
COEF_CLAMP = 1 << 16
FLAG_CTX = 6 * 3  # neighbours' flags (0..4; 5 = first half, none known) x non-zeros in the group (1-2, 3-8, 9+)
NNZ_EDGES = (3, 9)
# The encoder's choice (not in the bitstream): a group takes the 16x16 where its weighted squared error + this x
# RDOQ's lambda x its estimated bits is less than the 8x8 blocks'; measured in benchmarks/gaussian_dct_lab.py
CHOICE_MU = 1.0
CHOICE_BIAS = 0.0  # bits added to a group's 16x16 cost
CHOICE_REQUANTISE = True  # the chosen mix of coefficients quantised again as one image (RDOQ's statistics of it)
CHOICE_CALIBRATE = True  # scale each form's per-block bit estimates to the coder's estimate of its whole image


def _cos_table() -> dict[int, int]:
    """HEVC's rounded 64 sqrt(2) cos(pi j / 32), j = 1..15 (hand-tuned where plain rounding differs: 25 for j = 13)."""
    return dict(zip(range(1, 16), (90, 89, 87, 83, 80, 75, 70, 64, 57, 50, 43, 36, 25, 18, 9)))


@functools.lru_cache(maxsize=1)
def t16() -> np.ndarray:
    """(16, 16) int64 HEVC 16-point matrix, rows frequencies: row 0 all 64, row k column n the table's value of
    cos(pi (2n + 1) k / 32) folded into 0..16 with its sign."""
    tab = _cos_table()
    t = np.empty((M, M), np.int64)
    t[0] = 64
    for k in range(1, M):
        for n in range(M):
            j = ((2 * n + 1) * k) % 64
            j = 64 - j if j > 32 else j  # cos(pi j / 32) is even about 32
            t[k, n] = 0 if j == 16 else (tab[j] if j < 16 else -tab[32 - j])
    return t


@functools.lru_cache(maxsize=1)
def forward_matrix() -> np.ndarray:
    """(16, 16) orthonormal DCT-II, the encoder's analysis (the integer matrix is its rounding)."""
    k = np.arange(M)[:, None]
    x = np.arange(M)[None, :]
    d = np.sqrt(2.0 / M) * np.cos(np.pi * (2 * x + 1) * k / (2 * M))
    d[0] /= np.sqrt(2.0)
    return d


# -- layout ----------------------------------------------------------------------------------------------------
def groups(by: int, bx: int) -> tuple[int, int]:
    """The grid of whole 2x2 block groups."""
    return by // 2, bx // 2


def to_blocks(c16: np.ndarray) -> np.ndarray:
    """(c, gy, gx, 16, 16) coefficients -> (c, 2 gy, 2 gx, 64) zig-zag blocks, quadrant (i, j) in block (i, j)."""
    c, gy, gx = c16.shape[:3]
    b = c16.reshape(c, gy, gx, 2, N, 2, N).transpose(0, 1, 3, 2, 5, 4, 6).reshape(c, 2 * gy, 2 * gx, N * N)
    return b[..., _zigzag()]


def from_blocks(b: np.ndarray) -> np.ndarray:
    """Inverse of ``to_blocks``: (c, 2 gy, 2 gx, 64) -> (c, gy, gx, 16, 16)."""
    c, by, bx, _ = b.shape
    r = b[..., _unzigzag()].reshape(c, by // 2, 2, bx // 2, 2, N, N).transpose(0, 1, 3, 2, 5, 4, 6)
    return r.reshape(c, by // 2, bx // 2, M, M)


def block_mask(flags: np.ndarray, by: int, bx: int) -> np.ndarray:
    """(gy, gx) group flags -> (by, bx) bool: the blocks of flagged groups."""
    out = np.zeros((by, bx), bool)
    gy, gx = flags.shape
    out[:2 * gy, :2 * gx] = np.repeat(np.repeat(flags, 2, 0), 2, 1)
    return out


# -- encoder ---------------------------------------------------------------------------------------------------
def raw_coefficients(ycc: np.ndarray, by: int, bx: int) -> np.ndarray:
    """(c, by, bx, 64) coefficients (blocks outside whole groups zero) of the 16x16 DCTs of a (h, w, c) YCoCg
    residual in 8-bit levels, padded as ``image_dct`` pads (edge-replicated to the block grid)."""
    h, w, c = ycc.shape
    gy, gx = groups(by, bx)
    pad = np.pad(ycc, ((0, by * N - h), (0, bx * N - w), (0, 0)), mode="edge")[:gy * M, :gx * M]
    g = pad.reshape(gy, M, gx, M, c).transpose(4, 0, 2, 1, 3)
    d = forward_matrix()
    out = np.zeros((c, by, bx, N * N))
    out[:, :2 * gy, :2 * gx] = to_blocks(d @ g @ d.T)
    return out


def choose(cost8: np.ndarray, cost16: np.ndarray) -> np.ndarray:
    """(gy, gx) bool from per-block costs (by, bx) of the two forms: the groups whose 16x16 costs less."""
    gy, gx = groups(*cost8.shape)

    def per_group(cst):
        return cst[:2 * gy, :2 * gx].reshape(gy, 2, gx, 2).sum(axis=(1, 3))

    return per_group(cost16) < per_group(cost8)


# -- flags -----------------------------------------------------------------------------------------------------
def flag_contexts(q: np.ndarray, per_block: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(coded (gy, gx) bool: the groups that carry a flag, non-zero class (gy, gx) 0..2) of symbols q, or of
    ``per_block`` (by, bx) counts given instead (``coefcoder7``'s flags before the symbols: coded-block flags)."""
    if per_block is None:
        per_block = np.count_nonzero(q, axis=(0, 3))
    by, bx = per_block.shape
    gy, gx = groups(by, bx)
    nnz = per_block[:2 * gy, :2 * gx].reshape(gy, 2, gx, 2).sum(axis=(1, 3))
    return nnz > 0, np.digitize(nnz, NNZ_EDGES)


def code_flags(io, q: np.ndarray | None, flags: np.ndarray | None, per_block: np.ndarray | None = None) -> np.ndarray:
    """Encode (``flags`` given) or decode (None) the group flags with ``coefcoder``'s binary machinery; returns the
    (gy, gx) flags (False where the group codes nothing). Contexts from ``q``'s non-zeros or ``per_block``'s
    counts (``flag_contexts``)."""
    coded, cls = flag_contexts(q, per_block)
    gy, gx = coded.shape
    out = np.zeros((gy, gx), np.int32)
    parity = (np.add.outer(np.arange(gy), np.arange(gx)) % 2).astype(bool)
    stats = np.full((FLAG_CTX, 2), 0.5)
    for half in (False, True):
        sel = (parity == half) & coded
        nb = np.full(int(sel.sum()), 5, np.int64) if not half else _neighbour_sum(out)[sel]
        truth = None if flags is None else flags[sel].astype(np.int32)
        out[sel] = _chunked_bern(io, stats, nb * 3 + cls[sel], truth)
    return out.astype(bool)


def encode_flags(q: np.ndarray, flags: np.ndarray) -> bytes:
    from .coefcoder import _Recorder

    rec = _Recorder()
    code_flags(rec, q, flags & flag_contexts(q)[0])
    return rec.payload()


def decode_flags(payload: bytes, q: np.ndarray) -> np.ndarray:
    """The (gy, gx) flags of a payload; FormatError unless the stream ends exactly after them."""
    from ..entropy.coding import _finish
    from .coefcoder import _Reader

    rd = _Reader(payload)
    flags = code_flags(rd, q, None)
    _finish(rd.coder)
    return flags


# -- inverse (decoder) -----------------------------------------------------------------------------------------
def _round_shift(x: np.ndarray, shift: int) -> np.ndarray:
    x *= 2.0 ** -shift
    x += 0.5
    return np.floor(x, out=x)


def inverse_groups(deq: np.ndarray) -> np.ndarray:
    """(n, 16, 16) dequantised coefficients in 1/16 levels (integers, |x| <= 2^16) -> (n, 16, 16) pixels in integer
    1/4 levels: b = T^t (C T >> 10) >> 8, rounding, in float64 (exact: see the module doc)."""
    t = t16().astype(np.float64)
    a = _round_shift(deq.astype(np.float64) @ t, SHIFT1)  # a[u, x] = sum_v C[u, v] T[v, x]
    return _round_shift(np.einsum("uy,nux->nyx", t, a), SHIFT2)  # b[y, x] = sum_u T[u, y] a[u, x]


def check(flags: np.ndarray, q: np.ndarray) -> None:
    if np.any(flags & ~flag_contexts(q)[0]):
        raise FormatError("dct residual: a 16x16 flag on a group that codes nothing")
