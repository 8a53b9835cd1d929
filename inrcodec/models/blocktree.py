"""Per-block residual steps from the decoded motion (the idea of x264's macroblock tree, written for mcvideo).

A block that later frames predict from keeps its coding error in all of them, so it deserves a finer step than a
block that is soon covered or leaves the picture. The motion of a whole GOP is decoded before its residuals, so
the weight of every block can be computed identically by the encoder and the decoder, and costs no bits.

Propagation (``propagate``): frames are walked in reverse coding order; each block of a coded frame sends its
weight (1 + what it received from later frames) x ``rho`` to the blocks of its reference frame that its vector
points into, split by pixel overlap (parts outside the reference frame are lost). ``rho`` plays the role of x264's
"fraction of the cost inherited" (1 - inter cost / intra cost); here a constant, because the decoder does not know
the prediction errors.

The input is a small, structure-agnostic description (``CodedFrame``): for each coded frame its references and one
vector field per reference on the weight grid, and for bi-prediction a per-block mode (which reference, or both).
The P chain of mcvideo is frame k referencing frame k-1 with the coded vectors; a B-frame graph feeds its own.

Exactness: every quantity is an integer (weights in 1/ONE, rho in 1/256, overlaps in half-pixel areas, floor
divisions), summed with ``np.bincount`` on int64 (exact, order-free), and the step levels come from integer
comparisons against an integer threshold table: encoder and decoder agree bit for bit on any machine.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

ONE = 1 << 12  # a block's own weight, fixed point
RHO_UNIT = 256  # rho is held as an integer in 1/256
MV_SCALE = 2  # vectors in half pixels (as mcvideo's)
LEVELS = 6  # step offsets -LEVELS .. +LEVELS quarter octaves (x 2^-1.5 .. 2^1.5)
# the step multiplier of each offset in 1/256 (offset d -> 2^(d/4)), an integer table so that block steps are exact
MULTIPLIERS = np.array([round(256 * 2 ** (d / 4)) for d in range(-LEVELS, LEVELS + 1)], np.int64)
THRESHOLD_UNIT = 1 << 12


@dataclass
class CodedFrame:
    """One coded frame of a GOP, for ``propagate``: ``refs`` are indices of earlier frames in the GOP's list (empty:
    intra), ``vectors[i]`` the (gy, gx, 2) integer (dx, dy) vectors towards ``refs[i]`` in 1/MV_SCALE pixels on the
    weight grid (a block at pixel x is predicted from x + v in the reference); ``mode`` (gy, gx) int for
    bi-prediction: the index of the reference a block uses, or -1 for the average of all of them (None: all blocks
    use reference 0, or the average when there are several). ``inherit`` (gy, gx) int in 1/RHO_UNIT: the fraction
    each block passes on, where the encoder knows it (x264's 1 - inter cost / intra cost); None: ``rho``."""

    refs: tuple
    vectors: tuple = ()
    mode: np.ndarray | None = None
    inherit: np.ndarray | None = None


def grid_vectors(vectors: np.ndarray, block: int, cell: int, gy: int, gx: int) -> np.ndarray:
    """A (by, bx, 2) field of ``block``-pixel motion blocks on a grid of ``cell``-pixel cells (``block`` a multiple
    of ``cell``): each cell takes its motion block's vector (piecewise constant: integer, exact)."""
    r = block // cell
    return np.repeat(np.repeat(vectors, r, axis=0), r, axis=1)[:gy, :gx]


def _send(amount: np.ndarray, vec: np.ndarray, cell: int, gy: int, gx: int) -> np.ndarray:
    """``amount`` (gy, gx) int64 of each cell split over the reference cells its displaced square overlaps, by area
    (in 1/MV_SCALE pixels); what falls outside the grid is lost. Returns what each reference cell receives."""
    span = cell * MV_SCALE  # a cell's side in half pixels
    ys, xs = np.mgrid[0:gy, 0:gx]
    y0 = ys * span + vec[..., 1].astype(np.int64)
    x0 = xs * span + vec[..., 0].astype(np.int64)
    cy, fy = np.divmod(y0, span)  # the square covers cells cy (span - fy rows) and cy + 1 (fy rows)
    cx, fx = np.divmod(x0, span)
    area = span * span
    out = np.zeros(gy * gx, np.int64)
    for dy, hy in ((0, span - fy), (1, fy)):
        for dx, hx in ((0, span - fx), (1, fx)):
            ty, tx = cy + dy, cx + dx
            ok = (ty >= 0) & (ty < gy) & (tx >= 0) & (tx < gx) & (hy > 0) & (hx > 0)
            part = amount * (hy * hx) // area  # floor: exact integers
            # scatter-add in float64 (np.bincount, ~10x np.add.at): exact, since every weight and partial sum is an
            # integer below 2^53 (a frame's total weight <= blocks x ONE / (1 - rho) < 2^12 x 2^8 x blocks)
            out += np.bincount((ty * gx + tx)[ok], part[ok].astype(np.float64), gy * gx).astype(np.int64)
    return out.reshape(gy, gx)


def propagate(frames: list[CodedFrame], gy: int, gx: int, cell: int, rho: int) -> np.ndarray:
    """(frames, gy, gx) int64 weights in 1/ONE: ONE (the block itself) plus what later frames inherit from it.
    ``rho`` in 1/RHO_UNIT; frames are in coding order (references before the frames that use them)."""
    if not 0 <= rho < RHO_UNIT:
        raise ValueError("rho must be in [0, 1)")
    if gy * gx * ONE * RHO_UNIT >= 1 << 53:
        raise ValueError("too many blocks for exact weights")
    received = np.zeros((len(frames), gy, gx), np.int64)
    for k in range(len(frames) - 1, -1, -1):
        f = frames[k]
        if not f.refs:
            continue
        amount = (ONE + received[k]) * (rho if f.inherit is None else f.inherit.astype(np.int64)) // RHO_UNIT
        n = len(f.refs)
        for i, (ref, vec) in enumerate(zip(f.refs, f.vectors)):
            if not 0 <= ref < k:
                raise ValueError("a frame's reference must come before it in coding order")
            if f.mode is None:
                share = amount // n
            else:  # blocks using this reference alone send all, averaged ones an equal part
                share = np.where(f.mode == i, amount, np.where(f.mode < 0, amount // n, 0))
            received[ref] += _send(share, np.asarray(vec), cell, gy, gx)
    return received + ONE


@functools.lru_cache(maxsize=16)
def _thresholds(strength_percent: int) -> np.ndarray:
    """Integer ratio thresholds (in 1/THRESHOLD_UNIT) between consecutive offsets: offset d is chosen where
    -4 strength log2(w / mean) rounds to d, i.e. the boundary between d and d + 1 is at
    w / mean = 2^(-(d + 0.5) / (4 strength)). Rounded once to integers, so the comparisons below are exact."""
    a = strength_percent / 100.0
    return np.array([int(round(THRESHOLD_UNIT * 2.0 ** (-(d + 0.5) / (4 * a)))) for d in range(-LEVELS, LEVELS)],
                    np.int64)


def step_offsets(weights: np.ndarray, strength_percent: int, reference: int | None = None) -> np.ndarray:
    """(gy, gx) offsets in -LEVELS..LEVELS quarter octaves of one frame's blocks: -round(4 strength log2(w / ref)),
    clamped (strength in 1/100: x264's mb-tree corresponds to 33); ``reference`` the frame's mean weight unless
    given (ONE: relative to a block nothing inherits from, as x264). Integer arithmetic only."""
    if strength_percent <= 0:
        return np.zeros(weights.shape, np.int64)
    mean = max(int(weights.sum()) // weights.size, 1) if reference is None else int(reference)
    t = _thresholds(strength_percent)  # decreasing in d
    scaled = weights.astype(np.int64) * THRESHOLD_UNIT
    # offset = -LEVELS + number of boundaries the weight is at or below (boundary d lies between d and d + 1)
    below = (scaled[..., None] <= mean * t).sum(axis=-1)
    return below - LEVELS


def block_units(frame_units: int, offsets: np.ndarray) -> np.ndarray:
    """Luma step of each block in 1/16 levels: the frame's step times 2^(offset/4) (integer table), at least 1."""
    m = MULTIPLIERS[offsets + LEVELS]
    return np.maximum((int(frame_units) * m + 128) >> 8, 1)


def p_chain(vectors: np.ndarray, block: int, cell: int, gy: int, gx: int) -> list[CodedFrame]:
    """mcvideo's forward chain: frame 0 intra, frame k predicted from frame k-1 along ``vectors[k-1]``."""
    frames = [CodedFrame(())]
    for k, v in enumerate(vectors):
        frames.append(CodedFrame((k,), (grid_vectors(v, block, cell, gy, gx),)))
    return frames
