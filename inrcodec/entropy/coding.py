"""Entropy coding of 1-D integer arrays with constriction's ANS coder.

Blob layout (all integers little-endian, varints are LEB128, signed ones zigzagged)::

    byte 0      low nibble: model id; high nibble: a model-specific parameter
    ...         model header (see each ``_enc_*``), then the model's payload

The count is not stored: the caller knows it (it comes from the tensor shapes in the container header), and
``decode_ints`` needs only the blob and that count.

Models:

* ``empty``        count 0, nothing after byte 0.
* ``const``        one repeated value: zigzag varint, no payload.
* ``raw``          zigzag varint min, one byte bit width w, then ``count*w`` bits of (symbol - min), packed LSB first.
* ``categorical``  zigzag varint min, varint (alphabet size - 1), one byte table-scale code, then one ANS stream
                   holding the frequency table on top of the data. The table stores, per symbol of the alphabet,
                   a log-domain frequency level ``1 + round(r*log2(count))`` (0 = absent), r = 2**nibble levels per
                   octave; the levels are delta-coded with a quantised Laplace. Weights are rebuilt from the levels
                   with integer arithmetic only, so encoder and decoder hand constriction identical inputs.
* ``laplace`` / ``gaussian``  zigzag varint min, varint (max - min), mean and scale as float16 (float32 when the
                   nibble says so), then the ANS stream coded with a Categorical table of the quantised
                   Laplace/Gaussian over [min, max], computed bit-identically on every platform (``_det_pmf``).

Each ANS stream ends (bottom of the stack) with a one-bit sentinel that catches truncation and most corruption.
ANS words are 32-bit; up to three zero bytes at the end of the stream (high bytes of the final word) are dropped
and restored on decode.
"""

from __future__ import annotations

import math
import struct

import constriction
import numpy as np

from ..errors import FormatError, InputError
from ._bytes import Reader, ans_words, varint, zigzag

ALPHABET_CAP = 1 << 20  # largest (max - min + 1) the ANS models accept; constriction's 24-bit precision needs < 2**24
COUNT_CAP = 1 << 28  # most symbols one blob may claim (1 GiB of int32 when decoded)

EMPTY, CONST, RAW, CATEGORICAL, LAPLACE, GAUSSIAN = range(6)
MODEL_NAMES = {"empty": EMPTY, "const": CONST, "raw": RAW, "categorical": CATEGORICAL, "laplace": LAPLACE,
               "gaussian": GAUSSIAN}
_NAME_OF = {v: k for k, v in MODEL_NAMES.items()}

_AnsCoder = constriction.stream.stack.AnsCoder
_M = constriction.stream.model

# -- categorical table ----------------------------------------------------------------------------------------
_TABLE_RES_EXPONENTS = (0, 1, 2, 3, 4)  # r = 1, 2, 4, 8, 16 frequency levels per octave
_MAX_LOG2_COUNT = 28  # = log2(COUNT_CAP)


def _pow2_fraction_table() -> np.ndarray:
    """floor(2**(20 + j/16)) for j < 16, by exact integer arithmetic (no libm, so identical on every platform)."""
    out = []
    for j in range(16):
        target = 1 << (320 + j)  # m**16 <= 2**(320+j)  <=>  m <= 2**(20 + j/16)
        m = int(2 ** (20 + j / 16))
        while m**16 > target:
            m -= 1
        while (m + 1) ** 16 <= target:
            m += 1
        out.append(m)
    return np.array(out, dtype=np.int64)


_POW2_FRAC = _pow2_fraction_table()


def _max_level(r: int) -> int:
    return 1 + _MAX_LOG2_COUNT * r


def _levels(hist: np.ndarray, r: int) -> np.ndarray:
    lv = np.zeros(hist.shape, dtype=np.int64)
    nz = hist > 0
    lv[nz] = 1 + np.rint(r * np.log2(hist[nz])).astype(np.int64)
    return lv


def _level_weights(levels: np.ndarray, r: int) -> np.ndarray:
    """Level -> weight 2**((level-1)/r) scaled by 2**20, exactly (integers below 2**50 are exact in float64)."""
    e = np.maximum(levels - 1, 0)
    w = _POW2_FRAC[(e % r) * (16 // r)] << (e // r)
    return np.where(levels > 0, w, 0).astype(np.float64)


def _table_scale(code: int) -> float:
    return (code + 1) / 8.0  # exact in binary floating point


# -- small helpers ---------------------------------------------------------------------------------------------
def _ans_bytes(coder) -> bytes:
    b = coder.get_compressed().astype("<u4", copy=False).tobytes()
    k = 0
    while k < 3 and k < len(b) and b[len(b) - 1 - k] == 0:
        k += 1
    return b[: len(b) - k]


def _ans_decoder(payload: bytes):
    return _checked(_AnsCoder, ans_words(payload))


def _checked(fn, *args):
    """Run a constriction call on untrusted data: any failure (including a Rust panic) becomes a FormatError."""
    try:
        return fn(*args)
    except (ValueError, KeyError, RuntimeError, OverflowError, TypeError, IndexError) as e:
        raise FormatError(f"corrupt entropy-coded data: {e}") from None
    except BaseException as e:  # pyo3 panics derive from BaseException
        if type(e).__name__ == "PanicException":
            raise FormatError(f"corrupt entropy-coded data: {e}") from None
        raise


# Every ANS stream starts (at the bottom of the stack, so it is decoded last) with one sentinel symbol 1 of a
# uniform binary model: about one bit. A truncated or corrupt stream decodes garbage and drains the coder to
# state 0 early; from state 0 the sentinel decodes as 0, so the damage shows up as a FormatError.
_SENTINEL_MODEL = _M.Uniform(2)
_SENTINEL = np.ones(1, dtype=np.int32)


def _new_coder():
    coder = _AnsCoder()
    coder.encode_reverse(_SENTINEL, _SENTINEL_MODEL)
    return coder


def _finish(coder) -> None:
    if _checked(coder.decode, _SENTINEL_MODEL, 1)[0] != 1 or not coder.is_empty():
        raise FormatError("corrupt entropy-coded data: stream does not end where it should")


def _as_symbols(symbols) -> np.ndarray:
    a = np.asarray(symbols)
    if a.dtype == bool:
        a = a.astype(np.int32)
    if a.dtype.kind not in "iu":
        raise InputError(f"entropy coder takes integer symbols, got dtype {a.dtype}")
    a = a.reshape(-1)
    if a.size > COUNT_CAP:
        raise InputError(f"too many symbols ({a.size} > {COUNT_CAP})")
    if a.size and a.dtype.itemsize >= 4 and (a.min() < -(2**31) or a.max() > 2**31 - 1):
        raise InputError("symbols must fit in int32")
    return a.astype(np.int32, copy=False)


def _header(model: int, nibble: int = 0) -> bytes:
    return bytes([(nibble << 4) | model])


# -- encoders (each returns the complete blob) -----------------------------------------------------------------
def _enc_const(sym: np.ndarray) -> bytes:
    return _header(CONST) + varint(zigzag(int(sym[0])))


def _enc_raw(sym: np.ndarray, lo: int, hi: int) -> bytes:
    width = int(hi - lo).bit_length()
    head = _header(RAW) + varint(zigzag(lo)) + bytes([width])
    u = (sym.astype(np.int64) - lo).astype(np.uint64)
    shifts = np.arange(width, dtype=np.uint64)
    chunk = 1 << 16  # a multiple of 8 symbols so every chunk ends on a byte boundary; bounds the bit matrix
    parts = [
        np.packbits(((u[i : i + chunk, None] >> shifts) & 1).astype(np.uint8).reshape(-1), bitorder="little")
        for i in range(0, u.size, chunk)
    ]
    return head + b"".join(p.tobytes() for p in parts)


def _raw_size(n: int, lo: int, hi: int) -> int:
    return 1 + len(varint(zigzag(lo))) + 1 + (n * int(hi - lo).bit_length() + 7) // 8


def _categorical_table_code(diffs: np.ndarray, r: int) -> tuple[int, object]:
    """Pick the table-scale code that makes the level deltas cheapest (tries the ML estimate and neighbours)."""
    vmax = _max_level(r)
    mad = float(np.mean(np.abs(diffs))) if diffs.size else 0.0
    base = int(np.clip(round(mad * 8) - 1, 0, 255))
    best = None
    for code in sorted({base, max(base // 2, 0), min(base * 2 + 1, 255)}):
        model = _param_model(LAPLACE, -vmax, vmax, 0.0, _table_scale(code))
        c = _AnsCoder()
        c.encode_reverse((diffs + vmax).astype(np.int32), model)
        bits = c.num_bits()
        if best is None or bits < best[0]:
            best = (bits, code, model)
    return best[1], best[2]


def categorical_candidates(sym: np.ndarray, lo: int, hist: np.ndarray, exponents=_TABLE_RES_EXPONENTS):
    """One candidate per table resolution 2**e: (header bytes, [(table symbols, table model), (sym - lo, data
    model)]) in decoding order. The caller keeps whichever codes shortest (alone here, or in a shared stream)."""
    K = hist.size
    idx = (sym.astype(np.int64) - lo).astype(np.int32)
    for e in exponents:
        r = 1 << e
        lv = _levels(hist, r)
        diffs = np.diff(lv, prepend=0)
        code, table_model = _categorical_table_code(diffs, r)
        data_model = _M.Categorical(_level_weights(lv, r), perfect=False)
        head = _header(CATEGORICAL, e) + varint(zigzag(lo)) + varint(K - 1) + bytes([code])
        yield head, [((diffs + _max_level(r)).astype(np.int32), table_model), (idx, data_model)]


def _enc_categorical(sym: np.ndarray, lo: int, hist: np.ndarray, exponents=_TABLE_RES_EXPONENTS) -> bytes:
    best = None
    for head, ops in categorical_candidates(sym, lo, hist, exponents):
        coder = _new_coder()
        for symbols, model in reversed(ops):  # the table on top: decoded first
            coder.encode_reverse(symbols, model)
        blob = head + _ans_bytes(coder)
        if best is None or len(blob) < len(best):
            best = blob
    return best


_erfc = np.frompyfunc(math.erfc, 1, 1)  # numpy has no erf; only used to pick parameters, never to code


def _param_nll_bits(kind: int, ks: np.ndarray, h: np.ndarray, lo: int, hi: int, mean: float,
                    scales: np.ndarray) -> np.ndarray:
    """Bits to code the histogram (counts h at symbols ks) with the clipped, renormalised quantised distribution,
    for each of several scales at once."""
    s = np.asarray(scales, dtype=np.float64)[:, None]

    def cdf(x):
        z = (np.asarray(x, dtype=np.float64)[None, :] - mean) / s
        if kind == LAPLACE:
            return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))
        return 0.5 * _erfc(-z / math.sqrt(2)).astype(np.float64)

    p = cdf(ks + 0.5) - cdf(ks - 0.5)
    total = cdf(np.array([hi + 0.5])) - cdf(np.array([lo - 0.5]))
    p = np.maximum(p / np.maximum(total, 1e-300), 2.0**-24)
    return -(h[None, :] * np.log2(p)).sum(axis=1)


def _fit_parametric(kind: int, sym: np.ndarray, lo: int, hi: int, hist: np.ndarray) -> tuple[float, float]:
    """Mean and scale (std for Gaussian) minimising the coded size of this data: scale by a log-spaced grid search,
    refined twice around the best point (final resolution ~0.3 %, far below what changes the rate)."""
    nz = np.nonzero(hist)[0]
    ks = (nz + lo).astype(np.float64)
    h = hist[nz].astype(np.float64)
    if kind == GAUSSIAN and nz.size > 2048:
        # wide distribution: the moment estimates are the ML fit up to Sheppard's correction (erfc grid too slow)
        mean = float(np.average(ks, weights=h))
        return mean, float(np.sqrt(max(np.average((ks - mean) ** 2, weights=h) - 1 / 12, 0.25)))
    best = None
    for mean in sorted({float(np.median(sym)), float(np.average(ks, weights=h))}):
        grid = np.linspace(np.log(0.02), np.log(max(2.0 * (hi - lo + 1), 1.0)), 40)
        for _ in range(3):
            nll = _param_nll_bits(kind, ks, h, lo, hi, mean, np.exp(grid))
            i = int(np.argmin(nll))
            if best is None or nll[i] < best[0]:
                best = (float(nll[i]), mean, float(np.exp(grid[i])))
            step = grid[1] - grid[0]
            grid = np.linspace(grid[i] - step, grid[i] + step, 21)
    return best[1], best[2]


# -- platform-independent parametric models ----------------------------------------------------------------------
# constriction's QuantizedLaplace/QuantizedGaussian evaluate exp/erf with the platform's libm, which may differ in
# the last bit between machines; one differing quantised probability would make a file written on one machine
# decode to garbage on another. So the parametric models are built here as Categorical tables from probabilities
# computed with IEEE +, -, *, / and ldexp only (exactly rounded, hence bit-identical everywhere), and constriction
# quantises those tables with integer-exact arithmetic.
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # Cody-Waite split of ln 2
_INV_FACT = [1.0 / math.factorial(k) for k in range(14)]


def _det_exp(x: np.ndarray) -> np.ndarray:
    """exp(x) for x <= 0 from basic IEEE operations: x = n ln2 + r, |r| <= ln2/2, Taylor to degree 13
    (truncation < 1e-17 relative), then an exact scaling by 2**n."""
    x = np.maximum(np.asarray(x, dtype=np.float64), -745.0)
    n = np.rint(x / 0.6931471805599453)
    r = x - n * _LN2_HI
    r -= n * _LN2_LO
    p = np.full_like(r, _INV_FACT[13])
    for c in _INV_FACT[12::-1]:  # in place: the same operations in the same order, without temporaries
        p *= r
        p += c
    return np.ldexp(p, n.astype(np.int64))


def _det_erfc_pos(z: np.ndarray) -> np.ndarray:
    """erfc(z) for z >= 0, Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7: plenty for a coding model)."""
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return poly * _det_exp(-(z * z))


def _det_pmf(kind: int, lo: int, hi: int, mean: float, scale: float) -> np.ndarray:
    """``_det_pmf_reference``'s values (bit for bit) with one tail evaluation per interval end instead of six per
    interval: interval k's upper end (k + 0.5 - mean) / scale is interval k + 1's lower end, the same float, and
    every operation is elementwise, so evaluating the tails of all ends in one array gives the same numbers
    (a Gaussian file's decode spends ~40 % of its Gaussian-entropy time here otherwise)."""
    e = (np.arange(lo, hi + 2, dtype=np.float64) - 0.5 - mean) / scale  # interval ends, in units of scale
    a, c = e[:-1], e[1:]
    far = 22.0 if kind == LAPLACE else 8.0  # see the reference
    live = np.flatnonzero(~((a >= far) | (c <= -far)))
    out = np.full(a.shape, 2.0**-30)
    if not len(live):
        return out
    i0, i1 = int(live[0]), int(live[-1]) + 1
    if i1 - i0 != len(live):  # not one run (a degenerate scale): the reference decides
        return _det_pmf_reference(kind, lo, hi, mean, scale)
    ends = e[i0:i1 + 1]
    z = np.concatenate([np.maximum(ends, 0), np.maximum(-ends, 0)])
    t = 0.5 * (_det_exp(-z) if kind == LAPLACE else _det_erfc_pos(z * 0.7071067811865476))
    up, down = t[:len(ends)], t[len(ends):]  # tail beyond +end, tail beyond -end
    a, c = ends[:-1], ends[1:]
    right = up[:-1] - up[1:]
    left = down[1:] - down[:-1]
    middle = 1.0 - down[:-1] - up[1:]
    pmf = np.where(a >= 0, right, np.where(c <= 0, left, middle))
    out[i0:i1] = np.maximum(pmf, 2.0**-30)
    return out


def _det_pmf_reference(kind: int, lo: int, hi: int, mean: float, scale: float) -> np.ndarray:
    """Probability of each integer in [lo, hi] under the Laplace (scale b) or Gaussian (std) centred at mean,
    as mass of [k - 0.5, k + 0.5], computed from whichever tail is accurate; floored so every symbol is codable."""
    k = np.arange(lo, hi + 1, dtype=np.float64)
    a, c = (k - 0.5 - mean) / scale, (k + 0.5 - mean) / scale  # interval ends in units of scale
    # An interval wholly beyond FAR scales from the mean has less mass than the floor (Laplace: 0.5 e^-22 =
    # 1.4e-10; Gaussian: erfc(8 / sqrt 2) / 2 = 6e-16; floor 2**-30 = 9.3e-10), so it gets exactly the floor
    # without evaluating it: a few-byte header claiming a 2**20-symbol alphabet costs no 6 x 2**20 exps.
    far = 22.0 if kind == LAPLACE else 8.0
    live = ~((a >= far) | (c <= -far))  # NaN stays live (and fails below, as before)
    out = np.full(k.shape, 2.0**-30)
    if not live.all():
        a, c = a[live], c[live]
    if kind == LAPLACE:
        def tail(z):  # P(X > z) for z >= 0
            return 0.5 * _det_exp(-z)
    else:
        def tail(z):
            return 0.5 * _det_erfc_pos(z * 0.7071067811865476)
    right = tail(np.maximum(a, 0)) - tail(np.maximum(c, 0))
    left = tail(np.maximum(-c, 0)) - tail(np.maximum(-a, 0))
    middle = 1.0 - tail(np.maximum(-a, 0)) - tail(np.maximum(c, 0))
    pmf = np.where(a >= 0, right, np.where(c <= 0, left, middle))
    out[live] = np.maximum(pmf, 2.0**-30)
    return out


def _param_model(kind: int, lo: int, hi: int, mean: float, scale: float):
    """Categorical model over symbol - lo (callers shift the symbols)."""
    return _M.Categorical(_det_pmf(kind, lo, hi, mean, scale), perfect=False)


def parametric_model(kind: int, sym: np.ndarray, lo: int, hi: int, hist: np.ndarray):
    """The fitted Laplace/Gaussian model of ``sym`` in [lo, hi]: (header bytes, model over sym - lo). The header is
    the blob's first byte, lo, the range and the parameters; the decoder rebuilds the model from it alone."""
    mean, scale = _fit_parametric(kind, sym, lo, hi, hist)
    with np.errstate(over="ignore"):
        m16, s16 = np.float16(mean), np.float16(scale)
    # float16 keeps the header short; fall back to float32 where it would lose too much or leave the range
    use32 = not (np.isfinite(m16) and np.isfinite(s16) and s16 > 0 and abs(mean) <= 1024)
    if use32:
        m, s, params = float(np.float32(mean)), float(np.float32(scale)), struct.pack("<ff", mean, scale)
    else:
        m, s, params = float(m16), float(s16), struct.pack("<ee", m16, s16)
    head = _header(kind, int(use32)) + varint(zigzag(lo)) + varint(hi - lo) + params
    return head, _param_model(kind, lo, hi, m, s)


def _enc_parametric(kind: int, sym: np.ndarray, lo: int, hi: int, hist: np.ndarray) -> bytes:
    head, model = parametric_model(kind, sym, lo, hi, hist)
    coder = _new_coder()
    coder.encode_reverse((sym.astype(np.int64) - lo).astype(np.int32), model)
    return head + _ans_bytes(coder)


# -- public API ------------------------------------------------------------------------------------------------
def encode_ints(symbols: np.ndarray, model: str = "auto") -> bytes:
    """Entropy-code integer symbols (any shape, flattened; must fit int32) into a self-describing blob.

    ``model``: "auto" (smallest of all that apply), "categorical", "laplace", "gaussian", "raw" or "const".
    An empty input always gives the 1-byte "empty" blob, and a constant one the "const" blob unless "raw" was
    asked for (the ANS models need an alphabet of two or more symbols).
    """
    sym = _as_symbols(symbols)
    if model != "auto" and model not in MODEL_NAMES:
        raise InputError(f"unknown entropy model {model!r}; choose auto, {', '.join(MODEL_NAMES)}")
    if sym.size == 0:
        return _header(EMPTY)
    lo, hi = int(sym.min()), int(sym.max())
    if model == "empty":
        raise InputError("model 'empty' needs an empty array")
    if model != "raw" and (model == "const" or lo == hi):  # ANS models need >= 2 symbols in the alphabet
        if lo != hi:
            raise InputError("model 'const' needs all symbols equal")
        return _enc_const(sym)
    if model == "raw":
        return _enc_raw(sym, lo, hi)
    K = hi - lo + 1
    if K > ALPHABET_CAP:
        if model == "auto":
            return _enc_raw(sym, lo, hi)
        raise InputError(f"alphabet of {K} symbols exceeds the cap {ALPHABET_CAP} of model {model!r}; use 'raw'")
    hist = np.bincount((sym.astype(np.int64) - lo), minlength=K)
    if model == "categorical":
        return _enc_categorical(sym, lo, hist)
    if model in ("laplace", "gaussian"):
        return _enc_parametric(MODEL_NAMES[model], sym, lo, hi, hist)
    # auto: really encode each candidate (cheap next to training) and keep the smallest
    best = None
    raw_size = _raw_size(sym.size, lo, hi)
    for enc in (
        lambda: _enc_parametric(LAPLACE, sym, lo, hi, hist),
        lambda: _enc_parametric(GAUSSIAN, sym, lo, hi, hist),
        lambda: _enc_categorical(sym, lo, hist),
    ):
        blob = enc()
        if best is None or len(blob) < len(best):
            best = blob
    if raw_size <= len(best):
        best = _enc_raw(sym, lo, hi)
    return best


def decode_ints(blob: bytes, count: int) -> np.ndarray:
    """Inverse of ``encode_ints``: returns ``count`` int32 symbols. Corrupt or inconsistent blobs raise FormatError."""
    if not isinstance(count, (int, np.integer)) or count < 0 or count > COUNT_CAP:
        raise FormatError(f"symbol count {count!r} outside [0, {COUNT_CAP}]")
    count = int(count)
    rd = Reader(blob, "entropy-coded blob")
    head = rd.byte()
    model, nib = head & 0x0F, head >> 4
    i32 = dict(lo=-(2**31), hi=2**31 - 1)
    if model == EMPTY:
        if count != 0 or nib:
            raise FormatError(f"entropy-coded blob is empty but {count} symbols were expected")
        rd.expect_end()
        return np.zeros(0, dtype=np.int32)
    if model == CONST:
        v = rd.svarint(**i32, name="constant")
        rd.expect_end()
        return np.full(count, v, dtype=np.int32)
    if model == RAW:
        lo = rd.svarint(**i32, name="minimum")
        width = rd.byte()
        if width > 32 or nib:
            raise FormatError(f"entropy-coded blob: raw bit width {width} is invalid")
        data = np.frombuffer(rd.take((count * width + 7) // 8), dtype=np.uint8)
        rd.expect_end()
        out = np.full(count, lo, dtype=np.int64)
        chunk = 1 << 16
        for i in range(0, count, chunk):
            n = min(chunk, count - i)
            bits = np.unpackbits(data[i * width // 8 : (i * width + n * width + 7) // 8], bitorder="little")
            bits = bits[: n * width].reshape(n, width).astype(np.uint64)
            out[i : i + n] += (bits << np.arange(width, dtype=np.uint64)).sum(axis=1, dtype=np.uint64).astype(np.int64)
        if count and out.max() > 2**31 - 1:
            raise FormatError("entropy-coded blob: raw symbols overflow int32")
        return out.astype(np.int32)
    if model == CATEGORICAL:
        if nib not in _TABLE_RES_EXPONENTS:
            raise FormatError(f"entropy-coded blob: unknown table resolution {nib}")
        r = 1 << nib
        lo = rd.svarint(**i32, name="minimum")
        K = rd.varint(cap=ALPHABET_CAP - 1, name="alphabet size") + 1
        if K < 2:
            raise FormatError("entropy-coded blob: categorical alphabet needs at least 2 symbols")
        if lo + K - 1 > 2**31 - 1:
            raise FormatError("entropy-coded blob: alphabet overflows int32")
        code = rd.byte()
        coder = _ans_decoder(rd.rest())
        vmax = _max_level(r)
        diffs = _checked(coder.decode, _param_model(LAPLACE, -vmax, vmax, 0.0, _table_scale(code)), K)
        lv = np.cumsum(diffs.astype(np.int64) - vmax)
        if lv.min() < 0 or lv.max() > vmax or lv[0] == 0 or lv[-1] == 0:
            raise FormatError("entropy-coded blob: corrupt frequency table")
        data_model = _checked(lambda w: _M.Categorical(w, perfect=False), _level_weights(lv, r))
        out = _checked(coder.decode, data_model, count)
        _finish(coder)
        return (out.astype(np.int64) + lo).astype(np.int32)
    if model in (LAPLACE, GAUSSIAN):
        if nib > 1:
            raise FormatError(f"entropy-coded blob: unknown parameter format {nib}")
        lo = rd.svarint(**i32, name="minimum")
        span = rd.varint(cap=ALPHABET_CAP - 1, name="alphabet size")
        if span < 1:
            raise FormatError("entropy-coded blob: parametric alphabet needs at least 2 symbols")
        hi = lo + span
        if hi > 2**31 - 1:
            raise FormatError("entropy-coded blob: alphabet overflows int32")
        mean, scale = (rd.f32(), rd.f32()) if nib else (rd.f16(), rd.f16())
        if not (np.isfinite(mean) and np.isfinite(scale) and scale > 0):
            raise FormatError(f"entropy-coded blob: invalid model parameters mean={mean} scale={scale}")
        coder = _ans_decoder(rd.rest())
        out = _checked(coder.decode, _checked(_param_model, model, lo, hi, mean, scale), count)
        _finish(coder)
        return (out.astype(np.int64) + lo).astype(np.int32)
    raise FormatError(f"entropy-coded blob: unknown model id {model}")


def blob_model(blob: bytes) -> str:
    """Name of the model a blob was coded with (for reports and tests)."""
    if not blob:
        raise FormatError("entropy-coded blob is empty")
    name = _NAME_OF.get(blob[0] & 0x0F)
    if name is None:
        raise FormatError(f"entropy-coded blob: unknown model id {blob[0] & 0x0F}")
    return name


def empirical_entropy_bits(symbols) -> float:
    """Sum over the data of -log2 p(symbol) under the data's own histogram (the i.i.d. lower bound)."""
    a = np.asarray(symbols).reshape(-1)
    if a.size == 0:
        return 0.0
    _, counts = np.unique(a, return_counts=True)
    p = counts / a.size
    return float(-(counts * np.log2(p)).sum())
