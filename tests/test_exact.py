"""The Gaussian codec's step rules are IEEE-exact: constants derived again here by exact integer arithmetic, and
the exact helpers checked against exact (rational) answers."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from inrcodec.models import gaussian_codec as gc


def _iroot(a: int, n: int) -> int:
    """floor(a ** (1/n)) for integers."""
    x = 1 << (a.bit_length() // n + 1)
    while True:
        y = ((n - 1) * x + a // x ** (n - 1)) // n
        if y >= x:
            break
        x = y
    while x**n > a:
        x -= 1
    while (x + 1) ** n <= a:
        x += 1
    return x


def test_pow2_table_is_correctly_rounded():
    P = 240
    for j, v in enumerate(gc._POW2_EIGHTHS):
        lo = Fraction(_iroot(2**j << (8 * P), 8), 2**P)  # 2**(j/8) within 2**-240 below
        exact_ish = lo + Fraction(1, 2**(P + 1))
        assert v == float(exact_ish)  # Fraction -> float rounds correctly


def test_code_to_step_is_exact_powers():
    codes = np.arange(-200, 200)
    steps = gc.code_to_step(codes)
    for c, s in zip(codes, steps):
        assert s == math.ldexp(float(gc._POW2_EIGHTHS[c % 8]), int(c // 8))
    assert np.array_equal(gc.code_to_step(codes.astype(np.float64)), steps)
    assert gc.code_to_step(16) == 4.0 and gc.code_to_step(-8) == 0.5


def test_sqrt_half_threshold_is_the_double_just_above():
    t = Fraction(gc._SQRT_HALF_UP)
    below = Fraction(float(np.nextafter(gc._SQRT_HALF_UP, 0)))
    assert t * t > Fraction(1, 2) > below * below


def test_round_log2_is_exact():
    rng = np.random.default_rng(0)
    x = np.exp(rng.uniform(-20, 20, 20000))
    got = gc.round_log2(x)
    for xi, g in zip(x[:2000], got[:2000]):
        # floor(log2 x + 1/2) = g  <=>  2**(2g-1) <= x**2 < 2**(2g+1), decided in rationals
        f = Fraction(float(xi)) ** 2
        assert Fraction(2) ** (2 * int(g) - 1) <= f < Fraction(2) ** (2 * int(g) + 1)


def test_exact_log2_is_accurate_and_fixed():
    rng = np.random.default_rng(1)
    x = np.exp(rng.uniform(-15, 15, 100000))
    got = gc.exact_log2(x)
    assert np.max(np.abs(got - np.log2(x))) <= 4 * np.spacing(np.maximum(np.abs(np.log2(x)), 1.0)).max()
    assert np.array_equal(gc.exact_log2(2.0 ** np.arange(-30, 30)), np.arange(-30, 30).astype(np.float64))


def test_basis_product_sums_left_to_right():
    rng = np.random.default_rng(2)
    v = rng.normal(size=(1000, 3))
    b = gc.color_basis(3)
    got = gc.basis_product(v, b)
    ref = np.stack([(v[:, 0] * b[0, i] + v[:, 1] * b[1, i]) + v[:, 2] * b[2, i] for i in range(3)], 1)
    assert np.array_equal(got, ref)
    assert np.allclose(got, v @ b, rtol=0, atol=1e-15)
