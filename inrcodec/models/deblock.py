"""In-loop deblocking of ``mcvideo``'s predicted frames: smooths 8x8 block edges the DCT residual left.

The same integer filter runs in the encoder's closed loop and in the decoder, on the decoded frame before it is
shown and before the next frame is predicted from it, so both stay bit-identical (integer arithmetic only).

An edge between two 8x8 blocks is filtered where either block codes a residual (elsewhere the frame is the smooth
warp of the previous one, with no block edge), per RGB channel, H.264's normal filter on the pixels p1 p0 | q0 q1:
where |p0 - q0| < alpha, |p1 - p0| < beta and |q1 - q0| < beta (a step the quantiser could have made, not an
edge of the picture), p0 and q0 move towards each other by delta = clip(((q0 - p0) * 4 + (p1 - q1) + 4) >> 3,
-tc, tc). The thresholds grow with the residual's luma step (coarser steps leave larger steps at block edges):
alpha, beta, tc = ALPHA, BETA, TC x strength / 16 x step, rounded; ``strength`` (1..MAX_STRENGTH, DEFAULT_STRENGTH
the measured default) is stored in the GOP's config. Edges are 8 pixels apart and only p0/q0 change, so every
vertical edge is filtered at once, then every horizontal one.
"""

from __future__ import annotations

import numpy as np

N = 8
ALPHA, BETA, TC = 2.0, 0.5, 0.25  # x step; measured on the shared clip (docs/video.md)
DEFAULT_STRENGTH = 12  # measured 12 / 16 / 24: -7.8 / -7.2 / -5.3 % BD-rate on the predicted frames
MAX_STRENGTH = 64


def thresholds(step_units, strength: int) -> tuple:
    """(alpha, beta, tc) in levels from the luma step in 1/16 levels: integers, so the filter is exact.
    ``step_units`` an int, or an int64 array (one per edge position) giving arrays."""
    if np.ndim(step_units):
        s = np.asarray(step_units, np.int64) * strength
        return tuple(np.maximum(0, (int(round(f * 256)) * s + (1 << 15)) >> 16) for f in (ALPHA, BETA, TC))
    s = step_units * strength  # in 1/256 levels
    return tuple(max(0, (int(round(f * 256)) * s + (1 << 15)) >> 16) for f in (ALPHA, BETA, TC))


def _filter(p1: np.ndarray, p0: np.ndarray, q0: np.ndarray, q1: np.ndarray, on: np.ndarray, alpha: int, beta: int,
            tc: int) -> None:
    """One set of edges, written into the views ``p0`` and ``q0`` (int16: |(q0 - p0) * 4 + p1 - q1| < 2^11).
    The arithmetic runs on contiguous copies: the views' innermost runs are only 3 values long."""
    a1, a0, b0, b1 = (np.ascontiguousarray(v) for v in (p1, p0, q0, q1))
    d = b0 - a0
    on = on[..., None] & (np.abs(d) < alpha) & (np.abs(a1 - a0) < beta) & (np.abs(b1 - b0) < beta)
    delta = (d * 4 + (a1 - b1) + 4) >> 3
    if np.ndim(tc):  # per pixel (_edge_thresholds): np.clip with array bounds is slower than min / max
        delta = np.minimum(np.maximum(delta, -tc), tc) * on
    else:
        delta = np.clip(delta, -tc, tc) * on
    p0[...] = np.clip(a0 + delta, 0, 255)
    q0[...] = np.clip(b0 - delta, 0, 255)


def _edge_thresholds(edge_units: np.ndarray, strength: int, axis: int) -> tuple:
    """Per-block-edge (alpha, beta, tc) as int16 arrays of the pixel arrays' shape (``axis`` the one along which
    an edge spans N pixels, then the 3 colour channels), built in one stack: a stride-0 channel axis is slow."""
    t = np.stack(thresholds(edge_units, strength)).astype(np.int16)
    t = np.repeat(np.repeat(t, N, axis=axis + 1)[..., None], 3, axis=-1)
    return t[0], t[1], t[2]


def deblock(frame: np.ndarray, coded: np.ndarray, step_units, strength: int) -> np.ndarray:
    """``frame`` (h, w, 3) uint8 with its 8x8 block edges filtered; ``coded`` (by, bx) bool: blocks with a residual.
    ``step_units``: the luma step in 1/16 levels, one int or a (by, bx) array of per-block steps (an edge then
    uses the rounded mean of its two blocks' steps, as H.264 averages the QPs of the two sides)."""
    per_block = np.ndim(step_units) != 0
    if per_block:
        alpha = beta = tc = None
    else:
        alpha, beta, tc = thresholds(step_units, strength)
    if (not per_block and tc == 0) or not coded.any():
        return frame
    h, w = frame.shape[:2]
    by, bx = coded.shape
    # Work on the frame padded to whole blocks, as (rows, blocks, 8, 3) / (blocks, 8, cols, 3) views (no gathers);
    # only edges whose four pixels are all inside the frame are filtered (columns 8k-2 .. 8k+1 < w), so the padding
    # never reaches a pixel of the frame.
    x = frame.astype(np.int16)
    if (h, w) != (by * N, bx * N):
        x = np.pad(x, ((0, by * N - h), (0, bx * N - w), (0, 0)), mode="edge")
    n = len(range(N, w - 1, N))  # vertical edges
    if n:
        v = x.reshape(by * N, bx, N, 3)
        on = np.repeat(coded[:, :n] | coded[:, 1:n + 1], N, axis=0)  # (rows, edges)
        if per_block:
            alpha, beta, tc = _edge_thresholds((step_units[:, :n] + step_units[:, 1:n + 1] + 1) >> 1, strength, 0)
        _filter(v[:, :n, N - 2], v[:, :n, N - 1], v[:, 1:n + 1, 0], v[:, 1:n + 1, 1], on, alpha, beta, tc)
    n = len(range(N, h - 1, N))  # horizontal edges, on the vertically filtered frame
    if n:
        r = x.reshape(by, N, bx * N, 3)
        on = np.repeat(coded[:n] | coded[1:n + 1], N, axis=1)  # (edges, cols)
        if per_block:
            alpha, beta, tc = _edge_thresholds((step_units[:n] + step_units[1:n + 1] + 1) >> 1, strength, 1)
        _filter(r[:n, N - 2], r[:n, N - 1], r[1:n + 1, 0], r[1:n + 1, 1], on, alpha, beta, tc)
    return x[:h, :w].astype(np.uint8)
