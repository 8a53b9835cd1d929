"""Rules a decoder uses to rebuild sizes, steps and probabilities, computed so that they are the same on every
machine (issue 14): Python integers, IEEE basic operations and ``ldexp``, never the platform's libm, whose
``exp``/``exp2``/``log2``/``pow`` may differ in the last bit between CPUs, C libraries and numpy builds.

Format-version-1 files were written with libm. Each rule here reproduces what they were written with on the
machine that wrote the golden corpus: exhaustively on every input the encoder produces where those are finite
(the hash grid), on random parameters and real files where they are not (the Laplace tables)
(``benchmarks/exact_hashgrid_check.py``, ``benchmarks/exact_laplace_check.py`` and their results):

* ``pow2_sixteenths(m)`` = 2**(m/16): a table of the 16 correctly rounded values 2**(j/16), scaled by ``ldexp``
  (exact). The latent grid's scale table (2**(-5 + (2i+1)/16), 96 values) is all of these; glibc's ``pow`` gave
  the correctly rounded value for each of them.
* ``f32_log2`` / ``f32_exp2``: float32 log2 and exp2 as the hash grid's level layout uses them (tiny-cuda-nn's
  formula ``scale = exp2(level * log2(per_level_scale)) * base - 1`` in float32). numpy's float32 ``log2``/``exp2``
  are not correctly rounded: on the 30 001 ``per_level_scale`` values the encoder writes (4 decimals in [1, 4])
  ``log2`` differs from the correctly rounded result on 125 inputs, and ``exp2`` on 631 of the 919 150 distinct
  ``level * log2`` products of 0..31 levels. The rule is: correctly rounded (series in 128-bit fixed-point
  integer arithmetic, then rounded to float32; agrees with 40-digit ``decimal`` on 6 000 random inputs), except on
  those 756 inputs, where a committed table (``_exact_tables.py``) holds what format version 1 computed. Inputs
  off the encoder's grid (only reachable with an explicit ``per_level_scale`` override or a hand-made file) get
  the correctly rounded value.
* ``laplace_encode_reverse`` / ``laplace_decode``: the latent grid's quantised Laplace (below).
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np

# 2**(j/16), j = 0..15, correctly rounded doubles (checked against 60-digit decimal powers).
_EXP2_SIXTEENTHS = tuple(float.fromhex(h) for h in (
    "0x1.0000000000000p+0", "0x1.0b5586cf9890fp+0", "0x1.172b83c7d517bp+0", "0x1.2387a6e756238p+0",
    "0x1.306fe0a31b715p+0", "0x1.3dea64c123422p+0", "0x1.4bfdad5362a27p+0", "0x1.5ab07dd485429p+0",
    "0x1.6a09e667f3bcdp+0", "0x1.7a11473eb0187p+0", "0x1.8ace5422aa0dbp+0", "0x1.9c49182a3f090p+0",
    "0x1.ae89f995ad3adp+0", "0x1.c199bdd85529cp+0", "0x1.d5818dcfba487p+0", "0x1.ea4afa2a490dap+0"))


def pow2_sixteenths(m: int) -> float:
    """2**(m/16) as the correctly rounded double, for any integer m (table + exact ldexp)."""
    return math.ldexp(_EXP2_SIXTEENTHS[m % 16], m // 16)


def latent_scale_table(log2_min: float, steps: int, n: int) -> np.ndarray:
    """The latent grid coder's scale table 2**(log2_min + (i + 0.5) / steps), i < n, for 16 % (2 * steps) == 0
    and integer 16 * log2_min: each entry is 2**(m/16) for an integer m."""
    if 16 % (2 * steps) or (16 * log2_min) != int(16 * log2_min):
        raise ValueError("scale table not on the 1/16-octave lattice")
    per = 16 // (2 * steps)
    return np.array([pow2_sixteenths(int(16 * log2_min) + per * (2 * i + 1)) for i in range(n)])


# -- float32 log2 / exp2 ------------------------------------------------------------------------------------------
def round_to_f32(v: Fraction) -> np.float32:
    """The float32 nearest to ``v`` (ties to even), by integer arithmetic. Normal range only (the callers' values
    are in [2**-20, 2**70])."""
    if v == 0:
        return np.float32(0.0)
    sign, v = (-1, -v) if v < 0 else (1, v)
    e = v.numerator.bit_length() - v.denominator.bit_length()
    if Fraction(2) ** e > v:
        e -= 1  # now 2**e <= v < 2**(e + 1)
    if not -126 <= e <= 127:
        raise ValueError("outside the normal float32 range")
    scaled = v / Fraction(2) ** (e - 23)  # in [2**23, 2**24)
    m, rest = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * rest
    if twice > scaled.denominator or (twice == scaled.denominator and m % 2):
        m += 1
    return np.float32(sign * math.ldexp(m, e - 23))  # m <= 2**24: exact in a double, then exact in float32


def _exceptions() -> tuple[dict[int, int], dict[int, int]]:
    from ._exact_tables import EXP2_F32_V1, LOG2_F32_V1

    def parse(text: str) -> dict[int, int]:
        words = [int(w, 16) for w in text.split()]
        return dict(zip(words[0::2], words[1::2]))

    return parse(LOG2_F32_V1), parse(EXP2_F32_V1)


_LOG2_V1, _EXP2_V1 = _exceptions()


def _bits(x: np.float32) -> int:
    return int(np.array(x, dtype=np.float32).view(np.uint32))


def _from_bits(b: int) -> np.float32:
    return np.array(b, dtype=np.uint32).view(np.float32)[()]


# Fixed-point arithmetic on Python integers (exact, the same everywhere): values carry _P fraction bits; the series
# below are accurate to a few units of 2**-_P, far below the float32 rounding they feed (checked: _MARGIN).
_P = 128
_MARGIN = 1 << 16  # refuse to round when the value is within 2**-112 (relative) of a float32 tie: never seen


def _ln2_fixed() -> int:
    # ln 2 = 2 atanh(1/3) = 2 * sum 1 / ((2k+1) 3**(2k+1))
    total, k = 0, 0
    while True:
        term = (1 << (_P + 8)) // ((2 * k + 1) * 3 ** (2 * k + 1))
        if term == 0:
            break
        total += term
        k += 1
    return (2 * total) >> 8


_LN2 = _ln2_fixed()


def _round_fixed_to_f32(value: int, exp2_shift: int) -> int:
    """float32 bits of value * 2**(exp2_shift - _P) (value > 0), correctly rounded; the value is known to within
    a few units, so a tie closer than _MARGIN units is refused rather than guessed."""
    e = value.bit_length() - 1  # value in [2**e, 2**(e+1))
    drop = e - 23
    m, rest = value >> drop, value & ((1 << drop) - 1)
    half = 1 << (drop - 1)
    if abs(rest - half) < _MARGIN:
        raise ArithmeticError("too close to a float32 tie for the working precision")
    if rest > half:
        m += 1
    return _bits(np.float32(math.ldexp(m, drop + exp2_shift - _P)))


@lru_cache(maxsize=4096)
def _cr_log2_bits(b: int) -> int:
    x = _from_bits(b)
    if not (np.isfinite(x) and x > 0):
        raise ValueError("log2 of a non-positive or non-finite value")
    mant, e = math.frexp(float(x))  # x = mant * 2**e, mant in [0.5, 1): exact
    mant, e = Fraction(mant) * 2, e - 1  # mant in [1, 2)
    if mant == 1:
        return _bits(np.float32(e))
    # ln(mant) = 2 atanh(z), z = (mant - 1) / (mant + 1) <= 1/3
    z = mant.__sub__(1) / (mant + 1)
    zf = (z.numerator << _P) // z.denominator
    z2 = (zf * zf) >> _P
    total, power, k = 0, zf, 0
    while power:
        total += power // (2 * k + 1)
        power = (power * z2) >> _P
        k += 1
    log2_mant = ((2 * total) << _P) // _LN2  # fixed point, in (0, 1)
    value = (e << _P) + log2_mant
    if value <= 0:
        raise ValueError("log2 below 1 is not used by the format")
    return _round_fixed_to_f32(value, 0)


@lru_cache(maxsize=65536)
def _cr_exp2_bits(b: int) -> int:
    y = _from_bits(b)
    if not (np.isfinite(y) and -100 <= y <= 100):
        raise ValueError("exp2 argument out of range")
    f = Fraction(float(y))
    k = math.floor(f)
    frac = f - k  # in [0, 1), dyadic: exact
    if frac == 0:
        return _bits(np.float32(math.ldexp(1.0, k)))
    t = ((frac.numerator << _P) // frac.denominator * _LN2) >> _P  # frac * ln 2, fixed point
    total, term, n = 1 << _P, 1 << _P, 1
    while term:
        term = (term * t >> _P) // n
        total += term
        n += 1
    return _round_fixed_to_f32(total, k)


def f32_log2(x) -> np.float32:
    """float32 log2 of a positive float32 as format version 1 computes it (see the module docstring)."""
    b = _bits(np.float32(x))
    return _from_bits(_LOG2_V1.get(b) if b in _LOG2_V1 else _cr_log2_bits(b))


def f32_exp2(y) -> np.float32:
    """float32 exp2 of a float32 in [-100, 100] as format version 1 computes it (see the module docstring)."""
    b = _bits(np.float32(y))
    return _from_bits(_EXP2_V1.get(b) if b in _EXP2_V1 else _cr_exp2_bits(b))


# -- the latent grid's quantised Laplace, without libm ---------------------------------------------------------
# constriction's QuantizedLaplace(lo, hi) quantises the Laplace CDF F (evaluated with the platform's exp) to 24-bit
# integers: left(s) = trunc(F(s - 0.5) * free) + (s - lo), free = 2**24 - (hi - lo + 1), left(lo) = 0, the mass
# outside [lo, hi] going to the end symbols (read off its encoder's state on random parameters; 0 differences in
# benchmarks/exact_laplace_check.py). The same integers are built here with the repository's exp from IEEE basic
# operations (``_exp_basic``) and handed to a per-symbol Categorical whose rows are those integer
# weights minus one: constriction's Categorical quantises exact integer rows summing to ``free`` into exactly
# weight + 1 (checked end to end: identical ANS words). Where the two exps differ by an ulp, the table differs only
# if F * free lies within about 2**-29 of an integer: there the old file was itself machine-dependent.
_LAPLACE_ROW_CAP = 1 << 16  # table entries per constriction call (512 KiB of float64): bounded memory, in cache


def _exp_basic(x: np.ndarray) -> np.ndarray:
    """exp(x) for finite x <= 0 (below -745: 0) from IEEE basic operations only, the algorithm of
    ``entropy.coding._det_exp`` (Cody-Waite reduction, degree-13 Taylor, exact ldexp), evaluated in place."""
    from ..entropy.coding import _INV_FACT, _LN2_HI, _LN2_LO

    x = np.maximum(x, -745.0)
    n = np.rint(x / 0.6931471805599453)
    r = x - n * _LN2_HI
    r -= n * _LN2_LO
    p = np.full_like(r, _INV_FACT[13])
    for c in _INV_FACT[12::-1]:
        p *= r
        p += c
    return np.ldexp(p, n.astype(np.int64))


def laplace_weights(lo: int, hi: int, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(len(mean), hi - lo + 1) float64 integer weights: constriction's quantised Laplace probabilities minus one."""
    k = hi - lo + 1
    free = float((1 << 24) - k)
    mean = np.asarray(mean, np.float64)[:, None]
    scale = np.asarray(scale, np.float64)[:, None]
    x = np.arange(lo + 1, hi + 1, dtype=np.float64)[None, :] - 0.5  # left edges of symbols lo+1 .. hi
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        z = (x - mean) / scale
        below = x < mean
        e = _exp_basic(np.where(below, z, -z))
        cdf = np.where(below, 0.5 * e, 1.0 - 0.5 * e)
    cum = np.trunc(cdf * free)
    if not np.isfinite(cum).all():
        raise ValueError("laplace parameters are not finite")
    edges = np.concatenate([np.zeros((len(cum), 1)), cum, np.full((len(cum), 1), free)], axis=1)
    return np.diff(edges, axis=1)


def _laplace_chunks(n: int, k: int) -> list[tuple[int, int]]:
    step = max(1, _LAPLACE_ROW_CAP // max(k, 1))
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def laplace_encode_reverse(coder, symbols: np.ndarray, lo: int, hi: int, mean: np.ndarray, scale: np.ndarray):
    """``coder.encode_reverse(symbols, QuantizedLaplace(lo, hi), mean, scale)`` with exact probabilities."""
    import constriction

    model = constriction.stream.model.Categorical(perfect=False)
    sym = np.asarray(symbols, np.int64) - lo
    for a, b in reversed(_laplace_chunks(len(sym), hi - lo + 1)):  # a stack: the last chunk goes in first
        coder.encode_reverse(sym[a:b].astype(np.int32), model, laplace_weights(lo, hi, mean[a:b], scale[a:b]))


def laplace_decode(coder, lo: int, hi: int, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``coder.decode(QuantizedLaplace(lo, hi), mean, scale)`` with exact probabilities."""
    import constriction

    model = constriction.stream.model.Categorical(perfect=False)
    out = [np.asarray(coder.decode(model, laplace_weights(lo, hi, mean[a:b], scale[a:b])), np.int64) + lo
           for a, b in _laplace_chunks(len(mean), hi - lo + 1)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)
