"""The exact decoding rules (inrcodec.quant.exact) against what format version 1 computed with libm, on samples
(the exhaustive checks are benchmarks/exact_hashgrid_check.py and exact_laplace_check.py)."""

from __future__ import annotations

from fractions import Fraction

import constriction
import numpy as np

from inrcodec.quant import exact


def test_latent_scale_table_is_the_libm_table():
    old = np.array([2.0 ** (-5.0 + (i + 0.5) / 8) for i in range(96)])
    assert np.array_equal(exact.latent_scale_table(-5.0, 8, 96).view(np.uint64), old.view(np.uint64))


def test_round_to_f32_ties_to_even_and_rounds_like_numpy_off_ties():
    one = Fraction(1)
    ulp = Fraction(1, 2**23)
    assert exact.round_to_f32(one + ulp / 2) == np.float32(1.0)  # tie: to even
    assert exact.round_to_f32(one + 3 * ulp / 2) == np.float32(1.0) + np.float32(2.0**-22)
    rng = np.random.default_rng(0)
    for v in rng.uniform(1e-3, 1e6, 200):
        assert exact.round_to_f32(Fraction(float(v))) == np.float32(v)  # numpy's double -> float32 is exact


def test_hash_grid_rules_match_format_v1_on_the_encoder_grid():
    """A sample of the encoder's per_level_scale values (and every one with a table entry): numpy's float32 log2 and
    exp2, exactly."""
    rng = np.random.default_rng(1)
    ks = np.concatenate([rng.integers(10000, 40001, 150), [10000, 15000, 20000, 40000]])
    pls = np.array([round(int(k) / 10**4, 4) for k in ks], np.float32)
    table_inputs = np.array(list(exact._LOG2_V1), np.uint32).view(np.float32)
    for x in np.concatenate([pls, table_inputs]):
        lp = exact.f32_log2(x)
        assert lp == np.log2(np.float32(x)), x
        for level in (1, 7, 15, 31):
            y = np.float32(np.float32(level) * lp)
            assert exact.f32_exp2(y) == np.exp2(y), (x, level)
    ys = np.array(list(exact._EXP2_V1), np.uint32).view(np.float32)
    assert all(exact.f32_exp2(y) == np.exp2(y) for y in ys)


def test_quantised_laplace_tables_match_constriction():
    """constriction's left cumulatives (an empty ANS coder holds exactly the one encoded symbol's) equal the exact
    tables, and whole streams are identical."""
    m, ans = constriction.stream.model, constriction.stream.stack.AnsCoder
    rng = np.random.default_rng(2)
    for _ in range(40):
        lo = int(rng.integers(-30, 5))
        hi = lo + int(rng.integers(1, 25))
        mean, scale = float(rng.uniform(lo - 2, hi + 2)), float(np.exp2(rng.uniform(-5, 6)))
        u = exact.laplace_weights(lo, hi, np.array([mean]), np.array([scale]))[0]
        mine = np.concatenate([[0], np.cumsum(u)[:-1]]).astype(np.int64) + np.arange(hi - lo + 1)
        theirs = []
        for s in range(lo, hi + 1):
            c = ans()
            c.encode_reverse(np.array([s], np.int32), m.QuantizedLaplace(lo, hi), np.array([mean]), np.array([scale]))
            w = c.get_compressed()
            theirs.append(int(w[0]) if len(w) else 0)
        assert np.array_equal(mine, theirs)
    n, lo, hi = 3000, -12, 9
    mean, scale = rng.uniform(lo, hi, n), np.exp2(rng.uniform(-4, 4, n))
    sym = rng.integers(lo, hi + 1, n)
    c1, c2 = ans(), ans()
    c1.encode_reverse(sym.astype(np.int32), m.QuantizedLaplace(lo, hi), mean, scale)
    exact.laplace_encode_reverse(c2, sym, lo, hi, mean, scale)
    assert np.array_equal(c1.get_compressed(), c2.get_compressed())
    d = ans(c1.get_compressed())
    assert np.array_equal(exact.laplace_decode(d, lo, hi, mean, scale), sym) and d.is_empty()
