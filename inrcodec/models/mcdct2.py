"""Second form of ``mcvideo``'s 8x8 DCT residual (``residual: "dct2"``): what ``mcdct`` codes, made cheap to decode.

Same transform, quantiser and bands as ``mcdct`` (8x8 DCT in YCoCg, chroma steps ``CHROMA_FACTOR`` x the luma step,
dead-zone quantiser, 7 zig-zag bands); what changes:

- **last band per block and channel**: each block codes ``last`` in 0..7 (how many bands up to its last non-zero
  one; 0 = nothing coded), then only the bands below ``last``. At video rates most blocks code nothing, and the
  first form decoded a symbol for every coefficient of every block (measured at 640x480, 0.1 bpp: 45 % of the
  decoder's time was the residual's symbols). Contexts: luma ``last``; chroma ``last`` split by whether the
  block's luma is coded; each band split by whether it is the block's last band (known to hold a non-zero) or not.
- **float32 integer inverse, only where coded**: HEVC's integer 8-point matrix in two stages with a rounding shift
  between them (like HEVC's own), dequantised coefficients clamped to +-2^15 (1/16 levels; the largest a residual of
  +-255 can need is 8 x 255 x 16 = 32 640). Every product and partial sum is then an integer below 2^24, exact in
  float32 on any BLAS and in any order, so encoder and decoder agree bit for bit; the result is in 1/4 levels, its
  YCoCg -> RGB sums are exact too, and it is added to the prediction only in the blocks that code something.

The decoder returns ``Sparse`` frames (the coded blocks' indices and coefficients), never dense coefficient arrays.

Session 21: the chroma step ratio is a GOP config field (``chroma`` in 1/16 of the luma step, ``Coder``; absent:
2.0), and the encoder chooses the levels by rate-distortion optimisation (``RDOQ_LAMBDA``; any decoder reads them).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..entropy import decode_ints, encode_ints
from ..entropy._bytes import read_varint, varint
from ..errors import FormatError
from . import deblock, mcdct
from .mcdct import BANDS, MAX_SYMBOL, N, T8, grid, step_units

NAME = "dct2"
COEF_CLAMP = 1 << 15  # |dequantised coefficient| in 1/16 levels: keeps every sum of the inverse below 2^24
STAGE1_SHIFT = 9  # after the horizontal pass: |value| < 2^15 again
STAGE2_SHIFT = 8  # after the vertical pass: 1/4 levels (total 2^17 = 2^15 matrix scale x 2^4 units / 2^2)
N_BANDS = len(BANDS) - 1
DEAD_ZONE = 0.15  # measured with the deblocking on (P frames, shared clip): 0.3 / 0.2 / 0.15 / 0.1 -> 0 / -3.4 / -4.1 / -3.0 % BD-rate
# RD-optimised quantisation (session 21; encoder only, any decoder reads the levels): ``image_dct.rdo_quantise``
# with its bits from each frame's own band statistics (prior RDOQ_PRIOR per value). Measured on the predicted frames
# (bench_video_residual.py --variants, 12 frames, BD-rate of the residual bytes; shared clip / crop): lambda 0.15 /
# 0.22 / 0.3 / 0.4 / 0.5 with prior 1: -2.5 / - / -3.6 / - / -0.1 % and - / -2.4 / -2.3 / -1.8 / - %; prior 0.1:
# lambda 0.22 / 0.3 / 0.4 -3.7 / -4.0 / -2.8 % and -2.2 / -2.4 / - % (docs/video.md, session 21). 0: off.
RDOQ_LAMBDA = 0.3
RDOQ_PRIOR = 0.1
# re-estimations of its bits: 1 instead of 2 costs +0.4 % (shared clip, chroma 1.5) for ~40 % less CPU of the closed
# loop (4.1 against 6.7 CPU-s for 5 x 11 frames at 640x360; without RDOQ ~3)
RDOQ_PASSES = 2
CHROMA_UNITS = 32  # chroma step / luma step in 1/16 (2.0: CHROMA_FACTOR); another is the GOP config's ``chroma``
RDO_LAMBDA = 0.06  # lambda of drop_costly_blocks (luma step^2 per bit); measured 0.03 / 0.06 / 0.1 / 0.2: -0.7 / -2.0 / -0.8 / +12.8 % BD-rate


@functools.lru_cache(maxsize=1)
def _band_of_position() -> np.ndarray:
    """Band index of each zig-zag position."""
    out = np.zeros(N * N, np.int64)
    for k in range(N_BANDS):
        out[BANDS[k]:BANDS[k + 1]] = k
    return out


@dataclass
class Sparse:
    """One predicted frame's coded blocks: ``index`` (flat by*bx block numbers, increasing) and ``coef`` (n, 3, 64)
    int32 zig-zag symbols of Y, Co, Cg."""

    index: np.ndarray
    coef: np.ndarray


def to_sparse(z: np.ndarray) -> Sparse:
    """(3, by, bx, 64) dense symbols -> the blocks with a non-zero symbol in any channel."""
    c = z.shape[0]
    flat = z.reshape(c, -1, N * N).transpose(1, 0, 2)
    index = np.flatnonzero(np.any(flat != 0, axis=(1, 2)))
    return Sparse(index, np.ascontiguousarray(flat[index]))


def block_units(step, by: int, bx: int, chroma: int = CHROMA_UNITS) -> np.ndarray:
    """Integer steps in 1/16 levels: (3,) (Y, Co, Cg) for one step in levels (a float), or (by * bx, 3) for a
    (by, bx) integer array of per-block luma steps in 1/16 levels (``blocktree``); chroma steps ``chroma`` / 16 x
    the luma step (32: CHROMA_FACTOR = 2, the forms before session 21), rounded to an integer (integer arithmetic
    for the per-block steps, so encoder and decoder agree on any machine)."""
    if np.ndim(step) == 0:
        if chroma == CHROMA_UNITS:
            return step_units(step)
        s = max(1, int(round(step * mcdct.STEP_UNIT)))
        c = max(1, (s * chroma + 8) // 16)
        return np.array([s, c, c], np.int64)
    luma = np.asarray(step, np.int64).reshape(by * bx)
    if chroma == CHROMA_UNITS:
        return np.stack([luma, 2 * luma, 2 * luma], axis=1)
    c = np.maximum((luma * chroma + 8) // 16, 1)
    return np.stack([luma, c, c], axis=1)


def _luma_units(step, by: int, bx: int):
    """The deblocking's luma step: an int for one step, else the (by, bx) array."""
    return int(step_units(step)[0]) if np.ndim(step) == 0 else np.asarray(step, np.int64).reshape(by, bx)


def _inverse_quarter_levels(coef: np.ndarray, units: np.ndarray) -> np.ndarray:
    """(n, 3, 64) zig-zag symbols -> (n, 3, 8, 8) float32 YCoCg residual in integer 1/4 levels (exact); ``units``
    (3,) for all blocks or (n, 3) per block."""
    u = units.astype(np.float32)
    u = u[None, :, None] if u.ndim == 1 else u[:, :, None]
    deq = np.clip(coef.astype(np.float32) * u, -COEF_CLAMP, COEF_CLAMP)
    blocks = deq[..., mcdct._unzigzag()].reshape(-1, N, N)  # rows: vertical frequency
    t = T8.astype(np.float32)
    a = (blocks.reshape(-1, N) @ t).reshape(blocks.shape)  # horizontal pass: C @ T
    a = np.floor(a * np.float32(2.0 ** -STAGE1_SHIFT) + np.float32(0.5))
    b = _left(t.T, a)  # vertical pass: T^t @ A
    b = np.floor(b * np.float32(2.0 ** -STAGE2_SHIFT) + np.float32(0.5))
    return b.reshape(coef.shape[0], 3, N, N)


def _left(m: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """m @ block for every 8x8 block, as one GEMM (batched 8x8 matmuls are slow)."""
    return (blocks.swapaxes(-1, -2).reshape(-1, N) @ m.T).reshape(blocks.shape).swapaxes(-1, -2)


def _rgb_quarter(ycc: np.ndarray) -> np.ndarray:
    """(n, 3, 8, 8) YCoCg in 1/4 levels -> (n, 8, 8, 3) RGB in 1/4 levels (integer sums: exact)."""
    y, co, cg = ycc[:, 0], ycc[:, 1], ycc[:, 2]
    return np.stack([y + co - cg, y + cg, y - co - cg], axis=-1)


def add(pred: np.ndarray, frame, step, deblock_strength: int = 0, chroma: int = CHROMA_UNITS) -> np.ndarray:
    """The decoded frame: ``pred`` (h, w, 3) uint8 plus the residual of ``frame`` (``Sparse`` or dense symbols),
    rounded and clipped; blocks that code nothing are the prediction itself. With ``deblock_strength`` the edges
    of coded blocks are then filtered (``deblock``). ``step``: one in levels, or a (by, bx) integer array of
    per-block luma steps in 1/16 levels; ``chroma`` as in ``block_units``."""
    sp = frame if isinstance(frame, Sparse) else to_sparse(frame)
    out = pred.copy()
    if len(sp.index) == 0:
        return out
    h, w = pred.shape[:2]
    by, bx = grid(h, w)
    out = _add_blocks(out, sp, step, h, w, by, bx, chroma)
    if deblock_strength:
        coded = np.zeros(by * bx, bool)
        coded[sp.index] = True
        out = deblock.deblock(out, coded.reshape(by, bx), _luma_units(step, by, bx), deblock_strength)
    return out


def _add_blocks(out: np.ndarray, sp: Sparse, step: float, h: int, w: int, by: int, bx: int,
                chroma: int = CHROMA_UNITS) -> np.ndarray:
    units = block_units(step, by, bx, chroma)
    rgb = _rgb_quarter(_inverse_quarter_levels(sp.coef, units if units.ndim == 1 else units[sp.index]))
    rows, cols = np.divmod(sp.index, bx)
    if h % N or w % N:  # edge blocks: work on a padded copy
        pad = np.pad(out, ((0, by * N - h), (0, bx * N - w), (0, 0)), mode="edge")
    else:
        pad = out
    view = pad.reshape(by, N, bx, N, 3).transpose(0, 2, 1, 3, 4)  # (by, bx, 8, 8, 3) view of pad
    blk = view[rows, cols].astype(np.float32)
    view[rows, cols] = np.clip(np.rint(blk + rgb * np.float32(0.25)), 0, 255).astype(np.uint8)
    if pad is not out:
        out[...] = pad[:h, :w]
    return out


def synthesize(frame, step: float, h: int, w: int, chroma: int = CHROMA_UNITS) -> np.ndarray:
    """The RGB residual (h, w, 3) float32 (exact quarter levels), for tools and tests; decoding uses ``add``."""
    sp = frame if isinstance(frame, Sparse) else to_sparse(frame)
    by, bx = grid(h, w)
    full = np.zeros((by * bx, N, N, 3), np.float32)
    if len(sp.index):
        units = block_units(step, by, bx, chroma)
        full[sp.index] = _rgb_quarter(_inverse_quarter_levels(sp.coef, units if units.ndim == 1 else units[sp.index])
                                      ) * np.float32(0.25)
    return full.reshape(by, bx, N, N, 3).transpose(0, 2, 1, 3, 4).reshape(by * N, bx * N, 3)[:h, :w]


def analyse(residual_rgb: np.ndarray, step, chroma: int = CHROMA_UNITS) -> tuple[np.ndarray, None]:
    """Dead-zone quantised DCT symbols (3, by, bx, 64) in zig-zag order (the decoded frame comes from ``add``),
    with the blocks whose bits buy too little distortion dropped (``drop_costly_blocks``). ``step`` as in ``add``:
    with per-block steps each block's coefficients are in its own step's units, so the dead zone and the
    rate-distortion drop (lambda in step^2 per bit) scale with each block's step, as lambda follows QP in H.264."""
    if np.ndim(step) == 0 and chroma == CHROMA_UNITS:
        coef = mcdct.scaled_coefficients(residual_rgb, step)
    else:
        base = mcdct.scaled_coefficients(residual_rgb, 1.0)  # in units of (1, 2, 2) levels
        by, bx = base.shape[1:3]
        units = block_units(step, by, bx, chroma).astype(np.float64)
        units = units[:, None, None] if units.ndim == 1 else units.T.reshape(3, by, bx)
        coef = base * (step_units(1.0).astype(np.float64)[:, None, None] / units)[..., None]
    q = mcdct.dead_zone_quantise(coef, DEAD_ZONE)
    if RDOQ_LAMBDA:
        from .image_dct import rdo_quantise  # here: image_dct imports this module

        q = rdo_quantise(coef, q, RDOQ_LAMBDA, chroma / 16, passes=RDOQ_PASSES, prior=RDOQ_PRIOR)
    if RDO_LAMBDA:
        drop_costly_blocks(coef, q, chroma=chroma / 16)
    # |symbol| <= MAX_SYMBOL = 2^12: int16 halves what the encoder holds for a long GOP (47 frames at 1280x720)
    return q.astype(np.int16), None


def drop_costly_blocks(coef: np.ndarray, q: np.ndarray, lam: float | None = None, chroma: float = 2.0,
                       rec: np.ndarray | None = None) -> None:
    """Rate-distortion decision per block and channel (in place): code nothing where the squared error the symbols
    remove is below lambda x their estimated bits. Errors are weighted by what a YCoCg error costs in RGB (Y 3,
    Co 2, Cg 3, chroma steps ``chroma`` x the luma step: 3 / 8 / 12 in luma step^2 at 2x); bits ~ 3 for the last
    band, 0.5 per zero before the last non-zero, 4 + 2 log2|q| per non-zero (the coded sizes of the shared clip's
    streams, roughly). ``rec``: the symbols' reconstructions in units of ``coef`` where they are not ``q`` itself
    (dependent quantisation, ``benchmarks/_depquant.py``)."""
    lam = RDO_LAMBDA if lam is None else lam
    nz = q != 0
    coded = nz.any(axis=-1)
    if not coded.any():
        return
    last_pos = N * N - np.argmax(nz[..., ::-1], axis=-1)
    nnz = nz.sum(axis=-1)
    absq = np.abs(q[nz]).astype(np.float64)
    mag = np.zeros(q.shape, np.float64)
    mag[nz] = 4.0 + 2.0 * np.log2(absq)
    bits = 3.0 + 0.5 * (last_pos - nnz) + mag.sum(axis=-1)
    gain = (coef**2 - (coef - (q if rec is None else rec)) ** 2).sum(axis=-1)
    weight = np.array([3.0, 2.0 * chroma**2, 3.0 * chroma**2])[:q.shape[0], None, None]  # Y, Co, Cg (or gray)
    drop = coded & (weight * gain < 3.0 * lam * bits)
    q[drop] = 0


def _last_bands(arr: np.ndarray) -> np.ndarray:
    """(..., 64) symbols -> (...) number of bands up to the last non-zero one (0: none)."""
    nz = arr != 0
    anyz = nz.any(axis=-1)
    last_pos = N * N - 1 - np.argmax(nz[..., ::-1], axis=-1)
    return np.where(anyz, _band_of_position()[last_pos] + 1, 0)


def _streams(last: np.ndarray):
    """Blob order and masks: (name, channels, mask over (blocks, channels) rows or None, band) for the ``last``
    arrays then each band; ``last`` is (blocks, 3)."""
    luma_coded = last[:, 0] > 0
    yield "last", slice(0, 1), None, None
    yield "last", slice(1, 3), ~luma_coded, None
    yield "last", slice(1, 3), luma_coded, None
    for chans in (slice(0, 1), slice(1, 3)):
        lc = last[:, chans]
        for k in range(N_BANDS):
            yield "band", chans, lc == k + 1, k  # the block's last band: holds a non-zero
            yield "band", chans, lc > k + 1, k


def encode_symbols(per_frame: list) -> bytes:
    if not per_frame:
        return b""
    arr = np.stack(per_frame)  # the encoder's dense (3, by, bx, 64) symbols
    f, c, by, bx, _ = arr.shape
    blocks = arr.transpose(0, 2, 3, 1, 4).reshape(f * by * bx, c, N * N)
    last = _last_bands(blocks)
    out = bytearray()
    for kind, chans, mask, k in _streams(last):
        if kind == "last":
            vals = last[:, chans] if mask is None else last[mask][:, chans]
        else:
            vals = blocks[:, chans, BANDS[k]:BANDS[k + 1]][mask]
        blob = encode_ints(np.ascontiguousarray(vals).ravel().astype(np.int64))
        out += varint(len(blob)) + blob
    return bytes(out)


def estimate_bytes(per_frame: list) -> float:
    """Coded size of ``encode_symbols`` from each stream's own histogram (i.i.d. entropy + ~2 bytes of table per
    distinct symbol), for the encoder's search of the step."""
    if not per_frame:
        return 0.0
    arr = np.stack(per_frame)
    f, c, by, bx, _ = arr.shape
    blocks = arr.transpose(0, 2, 3, 1, 4).reshape(f * by * bx, c, N * N)
    last = _last_bands(blocks)
    bits = 0.0
    for kind, chans, mask, k in _streams(last):
        if kind == "last":
            sel = (last[:, chans] if mask is None else last[mask][:, chans]).ravel()
        else:
            sel = blocks[:, chans, BANDS[k]:BANDS[k + 1]][mask].ravel()
        bits += mcdct.group_bits(sel)
    return bits / 8.0


def decode_symbols(data: bytes, frames: int, h: int, w: int) -> list[Sparse]:
    by, bx = grid(h, w)
    nblk = by * bx
    if frames == 0:
        if data:
            raise FormatError("residual section has trailing bytes")
        return []
    pos = 0

    def blob(count: int) -> np.ndarray:
        nonlocal pos
        n, pos = read_varint(data, pos, "residual section is truncated or has a bad length", 5)
        if pos + n > len(data):
            raise FormatError("residual section is truncated")
        vals = decode_ints(data[pos:pos + n], count)
        pos += n
        return vals

    total = frames * nblk
    last = np.zeros((total, 3), np.int32)
    last[:, 0] = blob(total)
    if last[:, 0].min() < 0 or last[:, 0].max() > N_BANDS:
        raise FormatError("residual block's last band out of range")
    luma_coded = last[:, 0] > 0
    for mask in (~luma_coded, luma_coded):
        n = int(mask.sum())
        vals = blob(2 * n).reshape(n, 2)
        if n and (vals.min() < 0 or vals.max() > N_BANDS):
            raise FormatError("residual block's last band out of range")
        last[mask, 1:] = vals
    rows = np.flatnonzero(last.max(axis=1) > 0)  # blocks coding anything, frame-major
    lr = last[rows]
    coef = np.zeros((len(rows), 3, N * N), np.int32)
    for chans in (slice(0, 1), slice(1, 3)):
        lc = lr[:, chans]
        view = coef[:, chans]
        for k in range(N_BANDS):
            lo, hi = BANDS[k], BANDS[k + 1]
            for mask in (lc == k + 1, lc > k + 1):
                n = int(mask.sum())
                vals = blob(n * (hi - lo))
                if n:
                    if np.abs(vals).max() > MAX_SYMBOL:
                        raise FormatError("residual symbol out of range")
                    band = view[..., lo:hi]
                    band[mask] = vals.reshape(n, hi - lo)
    if pos != len(data):
        raise FormatError("residual section has trailing bytes")
    bounds = np.searchsorted(rows, np.arange(frames + 1) * nblk)
    return [Sparse(rows[bounds[i]:bounds[i + 1]] - i * nblk, coef[bounds[i]:bounds[i + 1]]) for i in range(frames)]


class Coder:
    """This module's coder interface (``analyse``, ``add``, ``synthesize``, the symbol functions) with another chroma
    step ratio (the GOP config's ``chroma``, in 1/16; session 21): ``mcvideo.coder_for`` gives the module itself for
    the default form."""

    NAME = NAME

    def __init__(self, chroma: int):
        self.chroma = chroma

    def analyse(self, residual_rgb: np.ndarray, step) -> tuple[np.ndarray, None]:
        return analyse(residual_rgb, step, self.chroma)

    def add(self, pred: np.ndarray, frame, step, deblock_strength: int = 0) -> np.ndarray:
        return add(pred, frame, step, deblock_strength, self.chroma)

    def synthesize(self, frame, step, h: int, w: int) -> np.ndarray:
        return synthesize(frame, step, h, w, self.chroma)

    encode_symbols = staticmethod(encode_symbols)
    estimate_bytes = staticmethod(estimate_bytes)
    decode_symbols = staticmethod(decode_symbols)
