"""Experiment (session 21, not adopted): ``deblock.deblock`` extended to H.264's full normal filter, which also moves
p1 / q1 (where |p2 - p0| < beta, resp. |q2 - q0| < beta) and widens tc by one for each such side. A probe of how much
a stronger in-loop filter could give on Gaussian residuals before any format carries it (lab variant suffix
``+db2`` of ``gaussian_dct_lab.py``)."""

from __future__ import annotations

import numpy as np

from inrcodec.models import deblock

N = 8


def _filter(p2, p1, p0, q0, q1, q2, on, alpha, beta, tc0):
    a2, a1, a0, b0, b1, b2 = (np.ascontiguousarray(v) for v in (p2, p1, p0, q0, q1, q2))
    on = on[..., None] & (np.abs(b0 - a0) < alpha) & (np.abs(a1 - a0) < beta) & (np.abs(b1 - b0) < beta)
    ap, aq = np.abs(a2 - a0) < beta, np.abs(b2 - b0) < beta
    tc = tc0 + ap + aq
    delta = np.clip(((b0 - a0) * 4 + (a1 - b1) + 4) >> 3, -tc, tc) * on
    avg = (a0 + b0 + 1) >> 1
    dp1 = np.clip((a2 + avg - 2 * a1) >> 1, -tc0, tc0) * (on & ap)
    dq1 = np.clip((b2 + avg - 2 * b1) >> 1, -tc0, tc0) * (on & aq)
    p0[...] = np.clip(a0 + delta, 0, 255)
    q0[...] = np.clip(b0 - delta, 0, 255)
    p1[...] = np.clip(a1 + dp1, 0, 255)
    q1[...] = np.clip(b1 + dq1, 0, 255)


def deblock2(frame: np.ndarray, coded: np.ndarray, step_units: int, strength: int) -> np.ndarray:
    alpha, beta, tc = deblock.thresholds(step_units, strength)
    if tc == 0 or not coded.any():
        return frame
    h, w = frame.shape[:2]
    by, bx = coded.shape
    x = np.pad(frame.astype(np.int16), ((0, by * N - h), (0, bx * N - w), (0, 0)), mode="edge")
    n = len(range(N, w - 2, N))
    if n:
        v = x.reshape(by * N, bx, N, 3)
        on = np.repeat(coded[:, :n] | coded[:, 1:n + 1], N, axis=0)
        _filter(v[:, :n, N - 3], v[:, :n, N - 2], v[:, :n, N - 1], v[:, 1:n + 1, 0], v[:, 1:n + 1, 1],
                v[:, 1:n + 1, 2], on, alpha, beta, tc)
    n = len(range(N, h - 2, N))
    if n:
        r = x.reshape(by, N, bx * N, 3)
        on = np.repeat(coded[:n] | coded[1:n + 1], N, axis=1)
        _filter(r[:n, N - 3], r[:n, N - 2], r[:n, N - 1], r[1:n + 1, 0], r[1:n + 1, 1], r[1:n + 1, 2], on,
                alpha, beta, tc)
    return x[:h, :w].astype(np.uint8)
