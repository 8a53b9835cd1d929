"""Multilevel interpolation in closed loop: the traversal shared, line for line, by encoder and decoder.

The array is refined coarse to fine (SZ3's interpolation predictor). At level ``h`` (a power of two, from the
largest below the longest axis down to 1) and for each axis ``d`` in turn, the points whose index along ``d`` is an
odd multiple of ``h`` (and, along the other axes, a multiple of ``h`` for the axes already refined at this level, of
``2h`` for the others) are predicted from already-decoded points at distance ``h``, ``3h``, ... along ``d`` (or, in
the ``MULTIDIM`` traversal, along every axis where the target is odd, averaged; see ``passes``): linear, cubic
``(-a + 9b + 9c - d) / 16``, quintic or septic midpoint interpolation (2, 4, 6, 8 taps), or the smoother
``(a + 3b + 3c + d) / 8`` (less noise from the decoded neighbours on rough fields), lower orders next to an edge,
a copy of the left neighbour where nothing else exists. The encoder picks the kernel and the axes per pass
(``pass_options``; smooth fields take the long kernels, rough ones the short) and writes its choices down.
Every point of one pass depends only on earlier passes, so a pass is a handful of vectorised numpy operations on
strided views, and the whole traversal costs ``ndim * log2(n)`` passes (``2**ndim - 1`` per level when averaged).

Determinism: predictions use float64 ``+ - * /`` only (IEEE-754 exactly rounded, no libm, no fused multiply-add
in numpy's separate ufuncs), so encoder and decoder compute bit-identical predictions on every platform.

Context of a target for the entropy coder: its level group (h = 1, 2, 4, >= 8) and a log-scale bucket of the sum
of ``|q|`` of its already-coded neighbours at distance ``h`` along every axis (quantisation indices cluster where
the field is rough; flat regions are runs of zeros). Both come from already-decoded state only.
"""

from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np

LINEAR, CUBIC, QUINTIC, SEPTIC, SMOOTH = 0, 1, 2, 3, 4
PREDICTORS = {"linear": LINEAR, "cubic": CUBIC, "quintic": QUINTIC, "septic": SEPTIC, "smooth": SMOOTH}

LEVEL_GROUPS = 4  # h = 1, 2, 4, >= 8
NEIGHBOUR_BUCKETS = 8  # sum s of |q| of coded neighbours: 0, 1, 2-3, 4-7, ..., 32-63, >= 64 (log scale: at fine
# bounds the sum is rarely below 4, and a linear scale would put nearly everything in its top bucket)
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


DIMWISE, MULTIDIM = 0, 1
TRAVERSALS = {"dimwise": DIMWISE, "multidim": MULTIDIM}
ALL, ODD, EVEN = 0, 1, 2  # per axis: every point of the level's grid, odd multiples of h, even multiples


def passes(shape: tuple[int, ...], traversal: int = DIMWISE) -> Iterator[tuple[int, tuple[int, ...]]]:
    """(h, modes) in coding order; ``modes[k]`` says which indices along axis k a pass's targets have.

    ``DIMWISE`` (SZ3): at each level one pass per axis d, targets odd along d, interpolated along d only.
    ``MULTIDIM``: at each level one pass per non-empty set S of axes (smaller sets first), targets odd along S and
    even elsewhere, predicted by the mean of the interpolations along every axis of S (each one's stencil lies in
    an earlier pass): two or three independent estimates average out part of the quantisation noise and of the
    interpolation error on isotropic fields, but mix in a poor one on strongly anisotropic fields (3 time steps
    of a global model), hence the per-field choice between the two."""
    nd = len(shape)
    for h in levels(shape):
        if traversal == DIMWISE:
            for d in range(nd):
                if shape[d] > h:
                    yield h, (ALL,) * d + (ODD,) + (EVEN,) * (nd - d - 1)
        else:
            for k in range(1, nd + 1):
                for S in itertools.combinations(range(nd), k):
                    if all(shape[d] > h for d in S):
                        yield h, tuple(ODD if a in S else EVEN for a in range(nd))


def target_slices(h: int, modes: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(0, None, h) if m == ALL else slice(h, None, 2 * h) if m == ODD else slice(0, None, 2 * h)
                 for m in modes)


def pass_options(modes: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
    """What the encoder may choose per pass (and writes down): interpolation kernel x the axes it runs along (all
    odd axes averaged, or one of them alone when there are several: on anisotropic fields one axis predicts far
    better than the mean). QoZ-style level-wise selection, greedy on the pass's estimated cost."""
    odd = tuple(d for d, m in enumerate(modes) if m == ODD)
    axes = [odd] + ([(a,) for a in odd] if len(odd) > 1 else [])
    return [(k, ax) for k in (LINEAR, CUBIC, QUINTIC, SEPTIC, SMOOTH) for ax in axes]


def predict(work: np.ndarray, h: int, modes: tuple[int, ...], predictor: int,
            axes: tuple[int, ...] | None = None) -> np.ndarray:
    """Predictions of the pass's targets (C order of the target view) from the decoded points in ``work``,
    interpolated along ``axes`` (default: every odd axis) and averaged."""
    if axes is None:
        axes = tuple(d for d, m in enumerate(modes) if m == ODD)
    with np.errstate(over="ignore", invalid="ignore"):
        preds = []
        for d in axes:
            sl = list(target_slices(h, modes))
            sl[d] = slice(0, None, h)  # the line through the targets along d: even entries known, odd ones targets
            line = np.moveaxis(work[tuple(sl)], d, 0)
            preds.append(np.moveaxis(_line_predict(line, predictor), 0, d))
        pred = preds[0]
        for extra in preds[1:]:
            pred = pred + extra
        if len(preds) > 1:
            pred = pred / float(len(preds))
        bad = ~np.isfinite(pred)  # huge values near the float64 limit overflow the stencil: copy a neighbour
        if bad.any():
            d = axes[0]
            sl = list(target_slices(h, modes))
            sl[d] = slice(0, None, 2 * h)
            left = np.moveaxis(work[tuple(sl)], d, 0)[: pred.shape[d]]
            pred = np.where(bad, np.moveaxis(left, 0, d), pred)
        return pred


def _line_predict(L: np.ndarray, predictor: int) -> np.ndarray:
    E = L[0::2]  # known points along the line: E[j] is at index 2jh
    nt = L.shape[0] // 2  # target j is at (2j+1)h, between E[j] and E[j+1]
    ne = E.shape[0]
    pred = E[:nt].copy()  # no right neighbour and one known point: copy it
    nr = min(nt, ne - 1)  # targets with a right neighbour
    if nr > 0:
        pred[:nr] = (E[:nr] + E[1 : nr + 1]) * 0.5
    if nt > nr and ne >= 3 and predictor != LINEAR:
        # the last target lies past the last known point (even lengths): the smooth kernels extrapolate the
        # parabola through the last three known points (on a smooth field a copy errs by the slope times h at
        # every level: 2x the bytes of a 512^2 analytic field at 1e-4); the linear kernel keeps the copy, which
        # amplifies no noise, for rough fields
        j = nt - 1
        pred[j] = (3.0 * E[j - 2] - 10.0 * E[j - 1] + 15.0 * E[j]) / 8.0
    if predictor in (CUBIC, QUINTIC, SEPTIC) and ne >= 3:
        if ne >= 4:  # interior: two known points on each side
            j1, j2 = 1, min(nt, ne - 2)
            if j2 > j1:
                pred[j1:j2] = (-E[j1 - 1 : j2 - 1] + 9.0 * E[j1:j2] + 9.0 * E[j1 + 1 : j2 + 1]
                               - E[j1 + 2 : j2 + 2]) / 16.0
        # first target: one known point on the left, two on the right (quadratic through E0, E1, E2)
        pred[0] = (3.0 * E[0] + 6.0 * E[1] - E[2]) / 8.0
        j = ne - 2  # last target with a right neighbour: two known on the left, one on the right
        if 1 <= j < nt:
            pred[j] = (-E[j - 1] + 6.0 * E[j] + 3.0 * E[j + 1]) / 8.0
    if predictor in (QUINTIC, SEPTIC) and ne >= 6:  # three known points on each side: (3, -25, 150, 150, -25, 3) / 256
        j1, j2 = 2, min(nt, ne - 3)
        if j2 > j1:
            pred[j1:j2] = (3.0 * E[j1 - 2 : j2 - 2] - 25.0 * E[j1 - 1 : j2 - 1] + 150.0 * E[j1:j2]
                           + 150.0 * E[j1 + 1 : j2 + 1] - 25.0 * E[j1 + 2 : j2 + 2] + 3.0 * E[j1 + 3 : j2 + 3]) / 256.0
    if predictor == SMOOTH and ne >= 4:  # (1, 3, 3, 1) / 8: averages noise (var 0.31 vs cubic's 0.64 of the
        j1, j2 = 1, min(nt, ne - 2)       # neighbours' error) at the price of bias on curved fields
        if j2 > j1:
            pred[j1:j2] = (E[j1 - 1 : j2 - 1] + 3.0 * E[j1:j2] + 3.0 * E[j1 + 1 : j2 + 1] + E[j1 + 2 : j2 + 2]) / 8.0
    if predictor == SEPTIC and ne >= 8:  # four known points on each side
        j1, j2 = 3, min(nt, ne - 4)
        if j2 > j1:
            pred[j1:j2] = (-5.0 * E[j1 - 3 : j2 - 3] + 49.0 * E[j1 - 2 : j2 - 2] - 245.0 * E[j1 - 1 : j2 - 1]
                           + 1225.0 * E[j1:j2] + 1225.0 * E[j1 + 1 : j2 + 1] - 245.0 * E[j1 + 2 : j2 + 2]
                           + 49.0 * E[j1 + 3 : j2 + 3] - 5.0 * E[j1 + 4 : j2 + 4]) / 2048.0
    return pred


def contexts(absq: np.ndarray, h: int, modes: tuple[int, ...]) -> np.ndarray:
    """Context index of every target of pass (h, modes), from the |q| of already-coded points (0 elsewhere)."""
    grid = absq[tuple(slice(None, None, h) for _ in range(absq.ndim))]
    near = np.zeros(grid.shape, dtype=np.int64)
    for ax in range(grid.ndim):
        if grid.shape[ax] < 2:
            continue
        a, g = np.moveaxis(near, ax, 0), np.moveaxis(grid, ax, 0)
        a[1:] += g[:-1]
        a[:-1] += g[1:]
    sel = tuple(slice(None) if m == ALL else slice(1, None, 2) if m == ODD else slice(0, None, 2) for m in modes)
    s = near[sel]
    bucket = np.zeros(s.shape, dtype=np.int64)
    for t in (1, 2, 4, 8, 16, 32, 64):  # integer comparisons only: no libm (log2) in the decode path
        bucket += s >= t
    group = min(h.bit_length() - 1, LEVEL_GROUPS - 1)
    return group * NEIGHBOUR_BUCKETS + bucket
