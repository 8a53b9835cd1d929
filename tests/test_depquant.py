"""Dependent quantisation (``benchmarks/_depquant.py``, a lab experiment): the decoder's state machine against a
plain per-block loop, the encoder's Viterbi search against brute force, and ``rdoq_ctx``'s context look-ahead
against recomputed bits."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from inrcodec.models import coefcoder as cc
from inrcodec.models import rdoq_ctx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _depquant as depquant  # noqa: E402  (the lab's experiment: its numbers rest on this search)

TOP = 4 * cc.ESC


def _reconstruct_loop(q: np.ndarray) -> np.ndarray:
    """VVC's dequantisation written out: per block, in zig-zag order, state 0 at the start."""
    out = np.zeros(q.shape, np.int64)
    for idx in np.ndindex(q.shape[:-1]):
        state = 0
        for p, k in enumerate(q[idx]):
            k = int(k)
            out[idx + (p,)] = 2 * k - (int(np.sign(k)) if state >= 2 else 0)
            state = [[0, 2], [2, 0], [1, 3], [3, 1]][state][k & 1]
    return out


def test_reconstruct_is_the_state_machine():
    rng = np.random.default_rng(1)
    q = (rng.integers(-3, 4, (3, 4, 5, 64)) * (rng.random((3, 4, 5, 64)) < 0.4)).astype(np.int32)
    q[0, 0, 0, 5] = 4095  # large and odd: parity of a big level
    q[0, 0, 0, 6] = -4095
    r = depquant.reconstruct(q)
    assert np.array_equal(r, _reconstruct_loop(q))
    st = depquant.states(q)
    assert np.all(r[(st < 2)] % 2 == 0)  # Q0: even multiples of Delta
    assert np.all((r[(st >= 2) & (q != 0)] % 2) == 1)  # Q1: odd ones (and 0)
    assert np.array_equal(np.sign(r), np.sign(q))


def _path_cost(levels, x, rows, lam):
    r = _reconstruct_loop(np.array(levels)[None])[0]
    bits = sum(rows[p, 0, k] + (k > 0) for p, k in enumerate(levels))
    return float(((x - r) ** 2).sum() + lam * bits)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_search_is_the_cheapest_path(seed):
    """On 5 live positions (the rest zero, free) the Viterbi path costs what the cheapest of all level sequences
    costs (levels 0..5, every state path they imply)."""
    rng = np.random.default_rng(seed)
    live = 5
    x = np.zeros(64)
    x[:live] = rng.uniform(0, 9, live)
    rows = np.zeros((64, 1, TOP + 1))
    rows[:live, 0] = np.cumsum(rng.uniform(0.3, 2.5, (live, TOP + 1)), axis=-1)  # bits rise with the magnitude
    lam = 1.3
    got = depquant._search(x[None], np.ones(1), rows[None], lam, TOP)[0]
    assert np.all(got[live:] == 0)
    best = min(_path_cost(list(ks) + [0] * (64 - live), x, rows, lam)
               for ks in itertools.product(range(6), repeat=live))
    assert _path_cost(list(got), x, rows, lam) == pytest.approx(best, rel=1e-12)


def test_trellis_packs_reconstructions_closer_than_scalar():
    """With no rate, the search's error on uniform magnitudes is the 4-state trellis's (~0.9 dB below a scalar
    quantiser of step 2 Delta, whose error is 1/3 Delta^2), never below the scalar step Delta's 1/12."""
    rng = np.random.default_rng(0)
    x = rng.uniform(5, 50, (400, 64))
    k = depquant._search(x, np.ones(400), np.zeros((400, 64, 1, TOP + 1)), 0.0, TOP)
    mse = float(((x - depquant.reconstruct(k[None, None])[0, 0]) ** 2).mean())
    assert 1 / 12 < mse < 0.29


def test_trellis_codes_and_decodes_its_levels():
    """The levels round-trip through the unchanged coder; their reconstructions beat the step-2-Delta rounding's
    error at fewer or equal non-zeros' worth of cost (lambda small), and a lone tiny high coefficient is dropped."""
    rng = np.random.default_rng(4)
    coef = rng.laplace(0, 3.0, (3, 6, 8, 64)) * np.exp(-np.arange(64) / 12)
    q = depquant.trellis(coef, lam=0.05, chroma=1.25)
    blob = cc.encode(q)
    assert np.array_equal(cc.decode(blob, *q.shape[:3]), q)
    r = depquant.reconstruct(q)
    scalar = 2 * np.rint(coef / 2)
    assert ((coef - r) ** 2).sum() < ((coef - scalar) ** 2).sum()
    one = np.zeros((1, 2, 2, 64))
    one[..., 0] = 8.0
    one[0, 0, 0, 60] = 1.2
    assert depquant.trellis(one, lam=1.2, chroma=1.25)[0, 0, 0, 60] == 0


def test_context_costs_are_the_recomputed_bits():
    """``rdoq_ctx._context_costs``: what changing one magnitude does to the bits of every other coded magnitude
    (own block, neighbouring blocks, chroma from luma), against recomputing all classes."""
    rng = np.random.default_rng(2)
    q = (rng.integers(-4, 5, (3, 4, 4, 64)) * (rng.random((3, 4, 4, 64)) < 0.5)).astype(np.int32)
    a = np.minimum(np.abs(q), cc.ESC).astype(np.int16)
    cls = rdoq_ctx._classes(a).astype(np.int64)
    coded, _ = rdoq_ctx._coded_mask(q, rdoq_ctx._diag_of_position())
    table = rdoq_ctx._bits_tables(a, cls, coded, TOP)
    grp = np.zeros((3, 1, 1, 1), np.int64)
    grp[1:] = 1

    def bits(a_):
        c_ = rdoq_ctx._classes(a_).astype(np.int64)
        return np.where(coded, table[grp, c_, a_.astype(np.int64)], 0.0)

    cand = a.astype(np.float64) + 2.0
    more = rdoq_ctx._context_costs(a, rdoq_ctx._context4(a), table, coded, [cand])[0]
    b0 = bits(a)
    for pos in [(0, 1, 2, 0), (0, 2, 1, 4), (1, 0, 0, 2), (2, 3, 3, 9), (0, 3, 0, 20)]:
        a2 = a.copy()
        a2[pos] = min(int(a[pos]) + 2, cc.ESC)
        b1 = bits(a2)
        others = np.ones(a.shape, bool)
        others[pos] = False
        assert more[pos] == pytest.approx(float((b1 - b0)[others].sum()), abs=1e-9)
