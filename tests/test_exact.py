"""The exact decoding rules (inrcodec.quant.exact) against what format version 1 computed with libm, on samples
(the exhaustive checks are benchmarks/exact_hashgrid_check.py and exact_laplace_check.py)."""

from __future__ import annotations

from fractions import Fraction

import constriction
import pytest
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


def _encoder_grid_samples() -> tuple[np.ndarray, np.ndarray]:
    """A sample of the encoder's per_level_scale values plus every log2 table input, and the exp2 inputs the hash
    grid computes from them (levels 1, 7, 15, 31) plus every exp2 table input."""
    rng = np.random.default_rng(1)
    ks = np.concatenate([rng.integers(10000, 40001, 150), [10000, 15000, 20000, 40000]])
    pls = np.array([round(int(k) / 10**4, 4) for k in ks], np.float32)
    xs = np.concatenate([pls, np.array(list(exact._LOG2_V1), np.uint32).view(np.float32)])
    ys = [np.float32(np.float32(level) * exact.f32_log2(x)) for x in xs for level in (1, 7, 15, 31)]
    return xs, np.concatenate([np.array(ys, np.float32), np.array(list(exact._EXP2_V1), np.uint32).view(np.float32)])


def _bits(v) -> int:
    return int(np.array(v, np.float32).view(np.uint32))


def test_hash_grid_rules_are_correctly_rounded_but_for_format_v1s_exceptions():
    """Off the exception tables (format v1's numpy values that are not correctly rounded) the rules are the
    correctly rounded float32 log2 / exp2: float64's rounded to float32 (double-rounding ties: none here)."""
    xs, ys = _encoder_grid_samples()
    for x in xs:
        want = exact._LOG2_V1.get(_bits(x))
        got = _bits(exact.f32_log2(x))
        assert got == (want if want is not None else _bits(np.float32(np.log2(np.float64(x))))), x
    for y in ys:
        want = exact._EXP2_V1.get(_bits(y))
        got = _bits(exact.f32_exp2(y))
        assert got == (want if want is not None else _bits(np.float32(np.exp2(np.float64(y))))), y


def test_hash_grid_rules_match_numpy_where_numpy_is_format_v1s():
    """On machines whose numpy computes float32 log2 / exp2 as the one that wrote format v1 (AVX2 dispatch), the
    rules equal numpy exactly on the encoder's grid. numpy's float32 functions differ by CPU (an AVX-512 machine's
    exp2 gives 2.5354998 for 2**1.3422703 where v1 got 2.5355), which is why the exact rules exist; there this
    comparison says nothing about v1 and is skipped."""
    xs, ys = _encoder_grid_samples()
    v1_like = all(_bits(np.log2(np.float32(x))) == _bits(exact.f32_log2(x)) for x in xs[-len(exact._LOG2_V1):]) and \
        _bits(np.exp2(np.float32(1.3422703))) == _bits(np.float32(2.5355))
    if not v1_like:
        pytest.skip("this machine's numpy float32 log2/exp2 is not format v1's implementation (other SIMD path)")
    assert all(exact.f32_log2(x) == np.log2(np.float32(x)) for x in xs)
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
