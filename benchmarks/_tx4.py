"""Experiment (not adopted, session 21): transform size per 8x8 block for ``image_dct``: one 8x8 DCT, or four
4x4 DCTs. Measured in ``gaussian_dct_lab.py`` (variant ``tx4``; benchmarks/README.md "Transform size per block"):
the 4x4 form lost on Gaussian residuals (+0.3 / +0.8 % BD-rate on kodim03 / kodim07 over 0.2 bpp bases), so no
format carries it; kept for the record and for a retry with better choices.

Why: a residual under a Gaussian base is concentrated on edges (the base blurs them); an 8x8 basis spreads a sharp
edge over many coefficients and rings across the block, where four 4x4 transforms keep it local (AVIF/HEVC choose
the transform size per block by RD for the same reason).

How it stays one symbol stream: the 16 coefficients of the four 4x4 DCTs C_ij (sub-block row i, column j) are
interleaved into one 8x8 array, P[2u + i, 2v + j] = C_ij[u, v], then zig-zag ordered like an 8x8 block: low
frequencies of every sub-block stay in the low corner, so ``coefcoder`` codes a split block with the same
contexts and no change. One flag per block that codes anything says which transform it uses (after the symbols:
the decoder knows which blocks code something), coded with adaptive binary models in contexts of the flags of
its four neighbours (two checkerboard halves, as ``coefcoder``'s coded-block flags) and of how many non-zero
symbols the block holds.

Exact inverse: HEVC's 4-point integer matrix (orthonormal DCT-II x 128), like the 8x8 path two passes as (64, 64)
float32 matrices on a block's flat zig-zag coefficients, rounding shifts 8 + 8 (the 4x4 pair has 2^14 gain where
the 8x8 one has 2^15 over shifts 9 + 8), so the result is the same integer 1/4 levels. Every product is an
integer and every sum of four products stays below 2^24 (|dequantised| <= 2^15, |T4| <= 83: 4 x 83 x 2^15
< 1.1e7; second pass 4 x 83 x 42500 < 1.5e7): exact in float32 on any machine.
"""

from __future__ import annotations

import functools

import numpy as np

from inrcodec.errors import FormatError
from inrcodec.models.mcdct import N, _zigzag

T4 = np.array([[64, 64, 64, 64], [83, 36, -36, -83], [64, -64, -64, 64], [36, -83, 83, -36]], np.int64)
SPLIT_SHIFT1, SPLIT_SHIFT2 = 8, 8
FLAG_CTX = 6 * 3  # neighbours' flags (0..4; 5 = first half, none known) x non-zeros in the block (1, 2-4, 5+)


def _interleave_index() -> np.ndarray:
    """Raster index in the interleaved 8x8 array of (i, j, u, v): P[2u + i, 2v + j] = C_ij[u, v]."""
    i, j, u, v = np.meshgrid(*(np.arange(2),) * 2, *(np.arange(4),) * 2, indexing="ij")
    return (2 * u + i) * N + 2 * v + j


@functools.lru_cache(maxsize=1)
def forward_matrix() -> np.ndarray:
    """(64, 64) float64 F: zig-zag split coefficients = F @ raster pixels of an 8x8 block (orthonormal)."""
    k = np.arange(4)[:, None]
    x = np.arange(4)[None, :]
    d = np.sqrt(0.5) * np.cos(np.pi * (2 * x + 1) * k / 8)
    d[0] /= np.sqrt(2.0)
    f = np.zeros((N * N, N * N))
    idx = _interleave_index()
    for i in range(2):
        for j in range(2):
            for u in range(4):
                for v in range(4):
                    row = idx[i, j, u, v]
                    for y in range(4):
                        f[row, (4 * i + y) * N + 4 * j:(4 * i + y) * N + 4 * j + 4] = d[u, y] * d[v]
    return f[_zigzag()]


@functools.lru_cache(maxsize=1)
def inverse_matrices() -> tuple[np.ndarray, np.ndarray]:
    """The split block's two inverse passes as (64, 64) float32 matrices on flat zig-zag coefficients: the first
    a_ij[u, x] = sum_v C_ij[u, v] T4[v, x], the second pixel (4i + y, 4j + x) = sum_u T4[u, y] a_ij[u, x]."""
    zz_of_raster = np.argsort(_zigzag())
    idx = _interleave_index()
    m1 = np.zeros((N * N, N * N))
    m2 = np.zeros((N * N, N * N))
    for i in range(2):
        for j in range(2):
            for u in range(4):
                mid = ((2 * i + j) * 4 + u) * 4  # a_ij[u, :] lives at mid .. mid + 3
                for v in range(4):
                    m1[zz_of_raster[idx[i, j, u, v]], mid:mid + 4] = T4[v]
                for y in range(4):
                    m2[mid + np.arange(4), (4 * i + y) * N + 4 * j + np.arange(4)] = T4[u, y]
    return m1.astype(np.float32), m2.astype(np.float32)


def split_coefficients(blocks_flat: np.ndarray) -> np.ndarray:
    """(..., 64) raster pixels of 8x8 blocks -> (..., 64) zig-zag split coefficients."""
    return blocks_flat @ forward_matrix().T


# -- choice (encoder) -------------------------------------------------------------------------------------------
def block_bits(q: np.ndarray) -> np.ndarray:
    """Rough bits of each block's symbols (c, by, bx, 64) -> (by, bx), summed over channels: ``mcdct2``'s block
    drop estimate (3 for the last position, 0.5 per zero before it, 4 + 2 log2|q| per non-zero)."""
    nz = q != 0
    coded = nz.any(axis=-1)
    last_pos = N * N - np.argmax(nz[..., ::-1], axis=-1)
    nnz = nz.sum(axis=-1)
    mag = np.where(nz, 4.0 + 2.0 * np.log2(np.maximum(np.abs(q), 1)), 0.0).sum(axis=-1)
    return np.where(coded, 3.0 + 0.5 * (last_pos - nnz) + mag, 0.0).sum(axis=0)


def block_error(coef: np.ndarray, q: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted squared error (by, bx) of symbols ``q`` for coefficients ``coef`` (both in step units)."""
    return (weight[:, None, None] * ((coef - q) ** 2).sum(axis=-1)).sum(axis=0)


def choose(coef8, q8, coef4, q4, weight, lam: float, bias_bits: float = 1.0) -> np.ndarray:
    """(by, bx) bool: blocks whose four 4x4 transforms cost less (error + lam x estimated bits) than the 8x8."""
    j8 = block_error(coef8, q8, weight) + lam * block_bits(q8)
    j4 = block_error(coef4, q4, weight) + lam * (block_bits(q4) + bias_bits)
    return j4 < j8


def merge(q8: np.ndarray, q4: np.ndarray, split: np.ndarray) -> np.ndarray:
    return np.where(split[None, :, :, None], q4, q8)


# -- flags -----------------------------------------------------------------------------------------------------
def flag_contexts(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coded (by, bx) bool: the blocks that carry a flag, nnz class (by, bx) 0..2)."""
    nnz = np.count_nonzero(q, axis=(0, 3))
    return nnz > 0, np.digitize(nnz, [2, 5])


def code_flags(io, q: np.ndarray, split: np.ndarray | None) -> np.ndarray:
    """Encode (``split`` given) or decode (None) the split flags with ``coefcoder``'s binary machinery; returns
    the (by, bx) flags (False where the block codes nothing)."""
    from inrcodec.models.coefcoder import _chunked_bern, _neighbour_sum

    coded, cls = flag_contexts(q)
    by, bx = coded.shape
    out = np.zeros((by, bx), np.int32)
    parity = (np.add.outer(np.arange(by), np.arange(bx)) % 2).astype(bool)
    stats = np.full((FLAG_CTX, 2), 0.5)
    for half in (False, True):
        sel = (parity == half) & coded
        nb = np.full(int(sel.sum()), 5, np.int64) if not half else _neighbour_sum(out)[sel]
        ctx = nb * 3 + cls[sel]
        truth = None if split is None else split[sel].astype(np.int32)
        out[sel] = _chunked_bern(io, stats, ctx, truth)
    return out.astype(bool)


def check_flags(split: np.ndarray, q: np.ndarray) -> None:
    if np.any(split & ~flag_contexts(q)[0]):
        raise FormatError("dct residual: a transform flag on a block that codes nothing")


# -- inverse (decoder) -----------------------------------------------------------------------------------------
def inverse_channel(q: np.ndarray, per_position: np.ndarray, split: np.ndarray) -> np.ndarray:
    """``image_dct._inverse_channel`` with the blocks flagged in ``split`` (by, bx) inverted as four 4x4s:
    (by, bx, 64) symbols -> (by*8, bx*8) float32, integer 1/4 levels."""
    from inrcodec.models.image_dct import COEF_CLAMP, STAGE1_SHIFT, STAGE2_SHIFT, _inverse_matrices, _round_shift

    by, bx, _ = q.shape
    deq = q.reshape(-1, N * N).astype(np.float32)
    deq *= per_position.astype(np.float32)
    np.clip(deq, -COEF_CLAMP, COEF_CLAMP, out=deq)
    flat = split.ravel()
    out = np.empty_like(deq)
    for sel, (m1, m2), (s1, s2) in ((~flat, _inverse_matrices(), (STAGE1_SHIFT, STAGE2_SHIFT)),
                                    (flat, inverse_matrices(), (SPLIT_SHIFT1, SPLIT_SHIFT2))):
        if sel.all():
            out = _round_shift(_round_shift(deq @ m1, s1) @ m2, s2)
        elif sel.any():
            out[sel] = _round_shift(_round_shift(deq[sel] @ m1, s1) @ m2, s2)
    return out.reshape(by, bx, N, N).transpose(0, 2, 1, 3).reshape(by * N, bx * N)


# -- encoder ------------------------------------------------------------------------------------------------------
def raw_split_coefficients(image: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``image_dct.raw_coefficients`` in the split form: (c, by, bx, 64) of ``image - base`` in 8-bit levels."""
    from inrcodec.models.image_dct import _level, to_ycocg
    from inrcodec.models.mcdct import grid

    x = to_ycocg((image.astype(np.float64) - base.astype(np.float64)) / _level(image.dtype))
    h, w, c = x.shape
    by, bx = grid(h, w)
    pad = np.pad(x, ((0, by * N - h), (0, bx * N - w), (0, 0)), mode="edge")
    blocks = pad.reshape(by, N, bx, N, c).transpose(4, 0, 2, 1, 3).reshape(c, by, bx, N * N)
    return split_coefficients(blocks)


def quantise_split(raw8: np.ndarray, raw4: np.ndarray, step: float, lam: float, bias_bits: float = 1.0,
                   chroma: float | None = None, **kw):
    """(symbols, units, split) at luma ``step``: each transform quantised as ``image_dct.quantise_raw`` does
    (``kw``: rdoq, ...), then per block the cheaper one (``choose``)."""
    from inrcodec.models import image_dct

    chroma = image_dct.CHROMA_FACTOR if chroma is None else chroma
    q8, units = image_dct.quantise_raw(raw8, step, chroma=chroma, **kw)
    q4, _ = image_dct.quantise_raw(raw4, step, chroma=chroma, **kw)
    scale = (image_dct._per_position(units) / image_dct.STEP_UNIT)[:, None, None, :]
    weight = np.array([3.0, 2.0 * chroma**2, 3.0 * chroma**2])[:raw8.shape[0]]
    split = choose(raw8 / scale, q8, raw4 / scale, q4, weight, lam, bias_bits)
    q = merge(q8, q4, split)
    return q, units, split & flag_contexts(q)[0]


def add_split(base: np.ndarray, q: np.ndarray, units: np.ndarray, strength: int, split: np.ndarray) -> np.ndarray:
    """``image_dct.add`` for 8-bit RGB with split blocks (whole image at once: an experiment)."""
    from inrcodec.models import deblock
    from inrcodec.models.image_dct import _per_position, _rgb_from_ycocg

    h, w, c = base.shape
    per = _per_position(units)
    planes = _rgb_from_ycocg(*[inverse_channel(q[k], per[k], split) for k in range(c)])
    out = np.stack([np.clip(np.rint(p[:h, :w] * 0.25 + base[..., k]), 0, 255) for k, p in enumerate(planes)], -1)
    out = out.astype(np.uint8)
    return deblock.deblock(out, np.any(q != 0, axis=(0, 3)), int(units[0, 0]), strength) if strength else out
