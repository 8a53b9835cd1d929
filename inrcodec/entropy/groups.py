"""Several groups of integer symbols in one ANS stream, each group with its own model (context coding).

A coder that splits a stream by context (e.g. the colours of large and of small Gaussians) wants each context's
symbols coded with that context's statistics. As separate ``encode_ints`` blobs every context would also pay a
length prefix, a sentinel and the partly used last word of its own ANS stream (~3 bytes per group measured on
Kodak Gaussian layers): with a dozen groups per layer that is a good part of what the contexts save. Here the
groups share one stream and a group costs only its model header.

Stream (constriction ANS, decoded front to back)::

    sentinel (1 bit, bottom of the stack: decoded last)
    per group, in the order written: header bytes (uniform 8-bit symbols), [categorical: frequency table],
    then the group's symbols

A header is ``encode_ints``'s blob header (``coding.py``): one byte (model id | parameter nibble), then per model:
const: zigzag varint value; laplace/gaussian: zigzag varint min, varint (max - min), mean and scale (float16, or
float32 when the nibble says so); categorical: zigzag varint min, varint (alphabet size - 1), one table-scale byte,
with the frequency table (log-domain levels, Laplace-coded deltas) at the head of the group's symbols. An empty
group writes nothing. The reader is told each group's count by its caller (who derives it from what it decoded
before), so a group's context may depend on every group before it.

The same integer-exact tables as ``encode_ints`` (``_det_pmf``, ``_level_weights``): bit-identical on every
platform. A reader bounds the alphabet entries it builds tables for (``alphabet_budget``).
"""

from __future__ import annotations

import struct

import numpy as np

from ..errors import FormatError, InputError
from ._bytes import unzigzag, varint, zigzag
from .coding import (
    _M,
    _SENTINEL,
    _SENTINEL_MODEL,
    _TABLE_RES_EXPONENTS,
    ALPHABET_CAP,
    CATEGORICAL,
    CONST,
    GAUSSIAN,
    LAPLACE,
    _AnsCoder,
    _ans_bytes,
    _ans_decoder,
    _as_symbols,
    _checked,
    _finish,
    categorical_candidates,
    parametric_model,
    _level_weights,
    _max_level,
    _param_model,
    _table_scale,
)

_BYTE = _M.Uniform(256)


def _bits(symbols: np.ndarray, model) -> float:
    c = _AnsCoder()
    c.encode_reverse(symbols, model)
    return float(c.num_bits())


def _parametric(kind: int, sym: np.ndarray, lo: int, hi: int, hist: np.ndarray):
    head, model = parametric_model(kind, sym, lo, hi, hist)
    shifted = (sym.astype(np.int64) - lo).astype(np.int32)
    return 8 * len(head) + _bits(shifted, model), head, [(shifted, model)]


def _categorical(sym: np.ndarray, lo: int, hist: np.ndarray):
    best = None
    for head, ops in categorical_candidates(sym, lo, hist):
        bits = 8 * len(head) + sum(_bits(symbols, model) for symbols, model in ops)
        if best is None or bits < best[0]:
            best = (bits, head, ops)
    return best


class GroupWriter:
    """Collects groups (``add``), then ``finish`` codes them into one blob."""

    def __init__(self) -> None:
        self._ops: list[tuple[np.ndarray, object]] = []  # (symbols, model) in decoding order
        self.alphabet = 0  # table entries the reader will build (checked against its budget by the caller)

    def add(self, symbols) -> None:
        sym = _as_symbols(symbols)
        if sym.size == 0:
            return
        lo, hi = int(sym.min()), int(sym.max())
        if lo == hi:
            head, ops = bytes([CONST]) + varint(zigzag(lo)), []
        else:
            if hi - lo + 1 > ALPHABET_CAP:
                raise InputError(f"alphabet of {hi - lo + 1} symbols exceeds the cap {ALPHABET_CAP}")
            hist = np.bincount(sym.astype(np.int64) - lo, minlength=hi - lo + 1)
            cands = [_parametric(LAPLACE, sym, lo, hi, hist), _parametric(GAUSSIAN, sym, lo, hi, hist),
                     _categorical(sym, lo, hist)]
            _, head, ops = min(cands, key=lambda c: c[0])
            self.alphabet += hi - lo + 1
        self._ops.append((np.frombuffer(head, dtype=np.uint8).astype(np.int32), _BYTE))
        self._ops.extend(ops)

    def finish(self) -> bytes:
        coder = _AnsCoder()
        coder.encode_reverse(_SENTINEL, _SENTINEL_MODEL)
        for sym, model in reversed(self._ops):  # a stack: the last pushed is decoded first
            coder.encode_reverse(sym, model)
        return _ans_bytes(coder)


class GroupReader:
    """Reads the groups of a ``GroupWriter`` blob in order; ``take(count)`` returns one group's symbols."""

    def __init__(self, blob: bytes, alphabet_budget: int, what: str = "grouped stream"):
        self._coder = _ans_decoder(bytes(blob))
        self._budget = int(alphabet_budget)
        self._what = what

    def _byte(self) -> int:
        return int(_checked(self._coder.decode, _BYTE, 1)[0])

    def _varint(self, cap: int, name: str) -> int:
        u = 0
        for i in range(10):
            b = self._byte()
            u |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                break
        else:
            raise FormatError(f"{self._what}: {name} is not a valid varint")
        if u > cap:
            raise FormatError(f"{self._what}: {name} {u} exceeds {cap}")
        return u

    def _svarint(self, name: str) -> int:
        v = unzigzag(self._varint(2**32, name))
        if not -(2**31) <= v <= 2**31 - 1:
            raise FormatError(f"{self._what}: {name} {v} overflows int32")
        return v

    def _spend(self, k: int) -> None:
        self._budget -= k
        if self._budget < 0:
            raise FormatError(f"{self._what}: alphabets larger than the symbols they code (corrupt or hostile)")

    def take(self, count: int) -> np.ndarray:
        count = int(count)
        if count == 0:
            return np.zeros(0, dtype=np.int32)
        head = self._byte()
        model, nib = head & 0x0F, head >> 4
        if model == CONST and not nib:
            return np.full(count, self._svarint("constant"), dtype=np.int32)
        if model in (LAPLACE, GAUSSIAN) and nib <= 1:
            lo = self._svarint("minimum")
            span = self._varint(ALPHABET_CAP - 1, "alphabet size")
            if span < 1 or lo + span > 2**31 - 1:
                raise FormatError(f"{self._what}: invalid alphabet")
            self._spend(span + 1)
            raw = bytes(self._byte() for _ in range(8 if nib else 4))
            mean, scale = struct.unpack("<ff" if nib else "<ee", raw)
            if not (np.isfinite(mean) and np.isfinite(scale) and scale > 0):
                raise FormatError(f"{self._what}: invalid model parameters mean={mean} scale={scale}")
            model_obj = _checked(_param_model, model, lo, lo + span, float(mean), float(scale))
            out = _checked(self._coder.decode, model_obj, count)
            return (out.astype(np.int64) + lo).astype(np.int32)
        if model == CATEGORICAL and nib in _TABLE_RES_EXPONENTS:
            r = 1 << nib
            lo = self._svarint("minimum")
            K = self._varint(ALPHABET_CAP - 1, "alphabet size") + 1
            if K < 2 or lo + K - 1 > 2**31 - 1:
                raise FormatError(f"{self._what}: invalid alphabet")
            self._spend(K)
            code = self._byte()
            vmax = _max_level(r)
            diffs = _checked(self._coder.decode, _param_model(LAPLACE, -vmax, vmax, 0.0, _table_scale(code)), K)
            lv = np.cumsum(diffs.astype(np.int64) - vmax)
            if lv.min() < 0 or lv.max() > vmax or lv[0] == 0 or lv[-1] == 0:
                raise FormatError(f"{self._what}: corrupt frequency table")
            data_model = _checked(lambda w: _M.Categorical(w, perfect=False), _level_weights(lv, r))
            out = _checked(self._coder.decode, data_model, count)
            return (out.astype(np.int64) + lo).astype(np.int32)
        raise FormatError(f"{self._what}: unknown group model {head:#04x}")

    def finish(self) -> None:
        _finish(self._coder)
