"""Multilevel interpolation in closed loop: the traversal shared, line for line, by encoder and decoder.

The array is refined coarse to fine (SZ3's interpolation predictor). At level ``h`` (a power of two, from the
largest below the longest axis down to 1) and for each axis ``d`` in turn, the points whose index along ``d`` is an
odd multiple of ``h`` (and, along the other axes, a multiple of ``h`` for the axes already refined at this level, of
``2h`` for the others) are predicted from already-decoded points at distance ``h`` and ``3h`` along ``d``: cubic
``(-a + 9b + 9c - d) / 16`` inside, quadratic next to an edge, linear or a copy of the left neighbour where fewer
points exist. Every point of one pass depends only on earlier passes, so a pass is a handful of vectorised numpy
operations on strided views, and the whole traversal costs ``ndim * log2(n)`` passes.

Determinism: predictions use float64 ``+ - * /`` only (IEEE-754 exactly rounded, no libm, no fused multiply-add
in numpy's separate ufuncs), so encoder and decoder compute bit-identical predictions on every platform.

Context of a target for the entropy coder: its level group (finest, second finest, coarser) and the sum of ``|q|``
of its already-coded neighbours at distance ``h`` along every axis (quantisation indices cluster where the field is
rough; flat regions are runs of zeros). Both come from already-decoded state only.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

LINEAR, CUBIC = 0, 1
PREDICTORS = {"linear": LINEAR, "cubic": CUBIC}

LEVEL_GROUPS = 3  # finest level, second finest, all coarser levels
NEIGHBOUR_BUCKETS = 5  # sum of |q| of coded neighbours: 0, 1, 2, 3, >= 4
NUM_CONTEXTS = LEVEL_GROUPS * NEIGHBOUR_BUCKETS


def levels(shape: tuple[int, ...]) -> list[int]:
    longest = max(shape)
    if longest < 2:
        return []
    top = 1 << (int(longest - 1).bit_length() - 1)  # largest power of two < longest
    out, h = [], top
    while h >= 1:
        out.append(h)
        h //= 2
    return out


def passes(shape: tuple[int, ...]) -> Iterator[tuple[int, int]]:
    """(h, axis) in coding order; passes without targets are skipped."""
    for h in levels(shape):
        for d in range(len(shape)):
            if shape[d] > h:
                yield h, d


def pass_views(work: np.ndarray, h: int, d: int) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices (into the full array) of the pass's known points along ``d`` and of its targets."""
    nd = work.ndim
    base = [slice(None, None, h) if k < d else slice(None, None, 2 * h) for k in range(nd)]
    known = list(base)
    known[d] = slice(0, None, 2 * h)
    target = list(base)
    target[d] = slice(h, None, 2 * h)
    return tuple(known), tuple(target)


def predict(work: np.ndarray, h: int, d: int, predictor: int) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return _predict(work, h, d, predictor)


def _predict(work: np.ndarray, h: int, d: int, predictor: int) -> np.ndarray:
    """Predictions of the pass's targets (C order of the target view) from the decoded points in ``work``."""
    known, target = pass_views(work, h, d)
    E = np.moveaxis(work[known], d, 0)  # known points along d: E[j] is at index 2jh
    nt = np.moveaxis(work[target], d, 0).shape[0]  # target j is at (2j+1)h, between E[j] and E[j+1]
    ne = E.shape[0]
    pred = E[:nt].copy()  # no right neighbour: copy the left one
    nr = min(nt, ne - 1)  # targets with a right neighbour
    if nr > 0:
        pred[:nr] = (E[:nr] + E[1 : nr + 1]) * 0.5
    if predictor == CUBIC and ne >= 3:
        if ne >= 4:  # interior: two known points on each side
            j1, j2 = 1, min(nt, ne - 2)
            if j2 > j1:
                pred[j1:j2] = (-E[j1 - 1 : j2 - 1] + 9.0 * E[j1:j2] + 9.0 * E[j1 + 1 : j2 + 1] - E[j1 + 2 : j2 + 2]) / 16.0
        # first target: one known point on the left, two on the right (quadratic through E0, E1, E2)
        pred[0] = (3.0 * E[0] + 6.0 * E[1] - E[2]) / 8.0
        j = ne - 2  # last target with a right neighbour: two known on the left, one on the right
        if 1 <= j < nt:
            pred[j] = (-E[j - 1] + 6.0 * E[j] + 3.0 * E[j + 1]) / 8.0
    # Huge values (near the float64 limit) can overflow the stencil: fall back to the left neighbour.
    bad = ~np.isfinite(pred)
    if bad.any():
        pred[bad] = E[:nt][bad]
    return np.moveaxis(pred, 0, d)


def contexts(absq: np.ndarray, h: int, d: int) -> np.ndarray:
    """Context index of every target of pass (h, d), from the |q| of already-coded points (0 elsewhere)."""
    grid = absq[tuple(slice(None, None, h) for _ in range(absq.ndim))]
    near = np.zeros(grid.shape, dtype=np.int64)
    for ax in range(grid.ndim):
        if grid.shape[ax] < 2:
            continue
        a, g = np.moveaxis(near, ax, 0), np.moveaxis(grid, ax, 0)
        a[1:] += g[:-1]
        a[:-1] += g[1:]
    sel = [slice(None) if k <= d else slice(None, None, 2) for k in range(grid.ndim)]
    sel[d] = slice(1, None, 2)
    bucket = np.minimum(near[tuple(sel)], NEIGHBOUR_BUCKETS - 1)
    group = 0 if h == 1 else (1 if h == 2 else 2)
    return group * NEIGHBOUR_BUCKETS + bucket
