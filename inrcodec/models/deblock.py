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


def thresholds(step_units: int, strength: int) -> tuple[int, int, int]:
    """(alpha, beta, tc) in levels from the luma step in 1/16 levels: integers, so the filter is exact."""
    s = step_units * strength  # in 1/256 levels
    return tuple(max(0, (int(round(f * 256)) * s + (1 << 15)) >> 16) for f in (ALPHA, BETA, TC))


def _filter_edges(x: np.ndarray, edge_on: np.ndarray, alpha: int, beta: int, tc: int) -> None:
    """Filter the vertical edges at columns 8, 16, ... of ``x`` (h, w, 3) int32 in place; ``edge_on`` (h, edges)."""
    cols = np.arange(N, x.shape[1] - 1, N)
    if len(cols) == 0:
        return
    p1, p0, q0, q1 = (x[:, cols + d] for d in (-2, -1, 0, 1))
    on = (edge_on[:, :len(cols), None] & (np.abs(p0 - q0) < alpha) & (np.abs(p1 - p0) < beta)
          & (np.abs(q1 - q0) < beta))
    delta = np.clip(((q0 - p0) * 4 + (p1 - q1) + 4) >> 3, -tc, tc) * on
    x[:, cols - 1] = np.clip(p0 + delta, 0, 255)
    x[:, cols] = np.clip(q0 - delta, 0, 255)


def deblock(frame: np.ndarray, coded: np.ndarray, step_units: int, strength: int) -> np.ndarray:
    """``frame`` (h, w, 3) uint8 with its 8x8 block edges filtered; ``coded`` (by, bx) bool: blocks with a residual."""
    alpha, beta, tc = thresholds(step_units, strength)
    if tc == 0 or not coded.any():
        return frame
    h, w = frame.shape[:2]
    x = frame.astype(np.int32)
    rows = np.repeat(coded, N, axis=0)[:h]  # (h, bx): the block of each pixel row
    _filter_edges(x, rows[:, :-1] | rows[:, 1:], alpha, beta, tc)
    cols = np.repeat(coded, N, axis=1)[:, :w]  # (by, w)
    xt = x.transpose(1, 0, 2)  # horizontal edges are the vertical edges of the transpose (a view: filtered in place)
    _filter_edges(xt, (cols[:-1] | cols[1:]).T, alpha, beta, tc)
    return x.astype(np.uint8)
