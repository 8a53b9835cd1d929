"""Error-bounded predictive coding of one array: ``encode_bounded`` / ``decode_bounded``.

Every finite value is predicted from already-decoded neighbours (``interp``), the prediction error is quantised
with step ``2E`` (integers: ``2k+1``, k = floor(E)) *in closed loop* (the predictor sees decoded values, so the
errors do not accumulate), and the quantisation indices are entropy-coded per context with the project's
constriction coder (``entropy.encode_ints``: per stream the smallest of a stored categorical table, a quantised
Laplace or Gaussian). A value whose reconstruction would break the bound (huge jump, float32 rounding, bound below
the data's precision) is an *outlier*: an escape symbol in the stream and its exact bits in a side list. NaN, +Inf,
-Inf (and NaNs with other payloads, bit for bit) are a run-length coded class map; they are never predicted from and
never coded as values.

An optional ``base`` (an INR's decoded output) turns this into a residual coder: the predictor runs on ``x - base``
and the bound is checked on the final ``base + residual`` cast to the output dtype.

Payload (little-endian; ``v`` = LEB128 varint, ``sv`` = zigzag varint)::

    u8   version (1)
    u8   flags: bits 0-1 zero, bit 2 integer quantiser, bit 3 constant field,
         bits 4-5 context scheme (0: one stream, 1: per level group, 2: level group x 4 neighbour buckets,
         3: level group x 8 neighbour buckets; see ``stream_of``),
         bit 6 traversal (0 dimension by dimension, 1 multidimensional mean), bit 7 zero
    f64  bound E (absolute, informative), f64 quantisation step (exactly what the decoder multiplies by)
    v    number of class runs; if > 0: v length + encode_ints(run classes), v length + encode_ints(run lengths - 1),
         v count + raw dtype bits of each NaN of unusual payload (class 4)
    constant field: the value's raw dtype bits; end.
    v    escape magnitude M (the escape symbol is M + 1; every other |q| <= M)
    v    number of outliers, v length + zlib(raw dtype bits of the outliers, in coding order)
    v    length + encode_ints(per pass: index into ``interp.pass_options``: kernel and axes)
    u8   number of streams S; S x (v symbol count, v length, encode_ints blob)

Decoding checks every count against what the shape and the class map allow before allocating, and turns any
inconsistency into ``FormatError``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..entropy import decode_ints, encode_ints
from ..entropy._bytes import Reader, varint
from ..errors import FormatError, InputError
from . import interp

VERSION = 1
QMAX = 1 << 16  # larger quantisation indices are coded as outliers
ESCAPE_WEIGHT = 16  # |q| an outlier counts for in its neighbours' contexts
FINITE, NAN, POS_INF, NEG_INF, NAN_OTHER = range(5)
MAX_VALUES = 1 << 28  # values one bounded section may hold (~10 GB of working arrays): larger fields are tiled
SCHEMES = (0, 1, 2, 3)  # context schemes, see stream_of
CODED_CANDIDATES = 2  # (traversal, scheme) pairs really coded, out of those ranked by estimated size
MAX_OUTLIER_ZLIB = 1 << 31

_F64 = struct.Struct("<dd")


def stream_of(ctx: np.ndarray, scheme: int) -> np.ndarray:
    """Stream of each context under a scheme: coarser schemes share tables (fewer bytes of tables on small
    fields), finer ones model more (fewer bits per symbol on large ones); the encoder picks per field."""
    if scheme == 0:
        return np.zeros_like(ctx)
    group, bucket = ctx // interp.NEIGHBOUR_BUCKETS, ctx % interp.NEIGHBOUR_BUCKETS
    if scheme == 1:
        return group
    if scheme == 2:
        return group * 4 + np.minimum(bucket, 3)
    return ctx


def num_streams(scheme: int) -> int:
    return {0: 1, 1: interp.LEVEL_GROUPS, 2: interp.LEVEL_GROUPS * 4, 3: interp.NUM_CONTEXTS}[scheme]


@dataclass
class BoundedStats:
    predictor: str
    scheme: int
    outliers: int
    nonfinite: int
    bytes: int


# -----------------------------------------------------------------------------------------------------------------
# classes of non-finite values
# -----------------------------------------------------------------------------------------------------------------
def _classes(x: np.ndarray) -> np.ndarray:
    cls = np.zeros(x.shape, dtype=np.int8)
    if x.dtype.kind != "f":
        return cls
    nan = np.isnan(x)
    cls[np.isposinf(x)] = POS_INF
    cls[np.isneginf(x)] = NEG_INF
    if nan.any():
        canon = np.array(np.nan, dtype=x.dtype).view(_uint_of(x.dtype))
        bits = x.view(_uint_of(x.dtype))
        cls[nan & (bits == canon)] = NAN
        cls[nan & (bits != canon)] = NAN_OTHER
    return cls


def _zeros_view(shape: tuple[int, ...]) -> np.ndarray:
    """A read-only array of zeros that costs no memory (the base when there is no INR)."""
    return np.broadcast_to(np.zeros((), dtype=np.float64), shape)


def _uint_of(dtype: np.dtype) -> np.dtype:
    return np.dtype(f"<u{np.dtype(dtype).itemsize}")


def _runs(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    change = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    return flat[starts].astype(np.int64), lengths.astype(np.int64)


def _blob(b: bytes) -> bytes:
    return varint(len(b)) + b


def has_nonfinite(x: np.ndarray) -> bool:
    return x.dtype.kind == "f" and not np.isfinite(x).all()


def encode_class_map(x: np.ndarray, cls: np.ndarray | None = None) -> bytes:
    """Positions of NaN / +Inf / -Inf (and the bits of NaNs with unusual payloads) as runs; b"\\0" if none."""
    cls = _classes(x) if cls is None else cls
    if (cls == FINITE).all():
        return varint(0)
    runs_v, runs_n = _runs(cls.ravel())
    other = np.ascontiguousarray(x[cls == NAN_OTHER]).view(_uint_of(x.dtype))
    return (varint(runs_v.size) + _blob(encode_ints(runs_v)) + _blob(encode_ints(runs_n - 1))
            + varint(other.size) + other.astype(_uint_of(x.dtype).newbyteorder("<")).tobytes())


def read_class_map(rd: Reader, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray | None]:
    size = int(np.prod(shape))
    nruns = rd.varint(cap=size, name="run count")
    if not nruns:
        return np.zeros(shape, dtype=np.int8), None
    kinds = decode_ints(rd.take(rd.varint(name="length")), nruns).astype(np.int64)
    lens = decode_ints(rd.take(rd.varint(name="length")), nruns).astype(np.int64) + 1
    if kinds.min() < FINITE or kinds.max() > NAN_OTHER or lens.min() < 1 or int(lens.sum()) != size:
        raise FormatError("class map of non-finite values is corrupt")
    if dtype.kind != "f" and kinds.max() > FINITE:
        raise FormatError("class map: non-finite values in an integer array")
    cls = np.repeat(kinds.astype(np.int8), lens).reshape(shape)
    n_expected = int((cls == NAN_OTHER).sum())
    n_other = rd.varint(cap=n_expected, name="NaN count")
    if n_other != n_expected:
        raise FormatError("class map: NaN payload count does not match")
    other = np.frombuffer(rd.take(n_other * dtype.itemsize), dtype=_uint_of(dtype).newbyteorder("<"))
    return cls, other


def decode_class_map(blob: bytes, shape: tuple[int, ...], dtype) -> tuple[np.ndarray, np.ndarray | None]:
    rd = Reader(blob, "non-finite class map")
    out = read_class_map(rd, tuple(shape), np.dtype(dtype))
    rd.expect_end()
    return out


# -----------------------------------------------------------------------------------------------------------------
# encoder
# -----------------------------------------------------------------------------------------------------------------
def quantiser(bound: float, integer: bool) -> float:
    """The step for bound E: 2E for floats, 2*floor(E)+1 for integers (exact when E < 1)."""
    if integer:
        return float(2 * min(np.floor(bound), 2.0**40) + 1)
    return 2.0 * bound


def _closed_loop(x64: np.ndarray, base: np.ndarray, valid: np.ndarray, dtype: np.dtype, bound: float, step: float,
                 integer: bool, traversal: int):
    """Run the traversal as the decoder will, choosing each pass's option (``interp.pass_options``) by the
    estimated cost of its symbols. Returns per pass (symbols, contexts, escapes), the choices and the outliers."""
    work = np.zeros(x64.shape, dtype=np.float64)
    absq = np.zeros(x64.shape, dtype=np.int32)
    target64 = x64 - base  # residual space (base = 0 without an INR)
    origin = (0,) * x64.ndim
    outliers = []
    if valid[origin]:
        work[origin] = target64[origin]
        outliers.append(x64[origin])
    per_pass, choices = [], []
    info = np.iinfo(dtype) if integer else None
    escape_bits = 8.0 * dtype.itemsize + 4.0
    for h, modes in interp.passes(x64.shape, traversal):
        tv = interp.target_slices(h, modes)
        ctx = interp.contexts(absq, h, modes)
        v = valid[tv]
        x_t, base_t, target_t = x64[tv], base[tv], target64[tv]
        best = None
        for i, (kernel, axes) in enumerate(interp.pass_options(modes)):
            pred = interp.predict(work, h, modes, kernel, axes)
            if integer:
                pred = np.floor(pred + 0.5)
            xt = np.where(v, target_t, pred)
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                q = np.rint((xt - pred) / step) if step > 0 else np.zeros_like(pred)
                inrange = np.abs(q) <= QMAX
                q = np.where(inrange, q, 0.0)
                rec = pred + q * step
                final = base_t + rec
                if integer:
                    inrange &= (final >= info.min) & (final <= info.max)
                    final = np.where(inrange, final, 0.0)
                cast = final.astype(dtype).astype(np.float64)
                ok = inrange & (np.abs(cast - x_t) <= bound) & np.isfinite(cast)
            esc = v & ~ok
            cost = _entropy_bits(q[v & ok]) + escape_bits * int(esc.sum())
            if best is None or cost < best[0]:
                best = (cost, i, pred, q, rec, esc, xt)
        _, choice, pred, q, rec, esc, xt = best
        choices.append(choice)
        work[tv] = np.where(esc, xt, np.where(v, rec, pred))
        absq[tv] = np.where(esc, ESCAPE_WEIGHT, np.where(v, np.abs(q), 0)).astype(np.int32)
        qi = q.astype(np.int64)
        per_pass.append((qi[v], ctx[v], esc[v]))
        if esc.any():
            outliers.append(x_t[esc])
    out_vals = np.concatenate([np.atleast_1d(o) for o in outliers]) if outliers else np.zeros(0)
    return per_pass, np.array(choices, dtype=np.int64), out_vals


def _entropy_bits(q: np.ndarray, clip: int = 64) -> float:
    """0-order entropy of the symbols (|q| > clip counted as a shared symbol plus its magnitude bits)."""
    if q.size == 0:
        return 0.0
    qi = q.astype(np.int64)
    c = np.clip(qi, -clip - 1, clip + 1) + clip + 1
    counts = np.bincount(c.ravel(), minlength=2 * clip + 3)
    counts = counts[counts > 0]
    bits = float(-(counts * np.log2(counts / q.size)).sum())
    big = np.abs(qi) > clip
    if big.any():
        bits += float(np.log2(np.abs(qi[big]).astype(np.float64)).sum()) * 2.0
    return bits


def _streams(per_pass, scheme: int, escape: int) -> list[np.ndarray]:
    n = num_streams(scheme)
    parts: list[list[np.ndarray]] = [[] for _ in range(n)]
    for q, ctx, esc in per_pass:
        sym = np.where(esc, escape, q)
        sid = stream_of(ctx, scheme)
        for s in range(n):
            m = sid == s
            if m.any():
                parts[s].append(sym[m])
    return [np.concatenate(p) if p else np.zeros(0, dtype=np.int64) for p in parts]


def encode_bounded(x: np.ndarray, bound: float, base: np.ndarray | None = None) -> tuple[bytes, BoundedStats]:
    """Code ``x`` so that every finite value decodes within ``bound`` (absolute) and non-finite ones exactly.

    Tries each traversal and context scheme and keeps the smallest (estimated) payload; the kernel and axes are
    chosen per pass. ``base`` (same shape, values of the output dtype) makes it a residual coder."""
    x = np.ascontiguousarray(x)
    dtype = x.dtype
    if x.size > MAX_VALUES:
        raise InputError(f"{x.size} values exceed the error-bounded coder's cap of {MAX_VALUES}: tile the field")
    if not bound >= 0 or not np.isfinite(bound):
        raise InputError(f"error bound must be finite and >= 0, got {bound!r}")
    integer = dtype.kind in "iu"
    cls = _classes(x)
    valid = cls == FINITE
    head_cls = encode_class_map(x, cls)
    x64 = np.where(valid, x, 0).astype(np.float64)
    base64 = _zeros_view(x.shape) if base is None else np.asarray(base, dtype=np.float64).reshape(x.shape)
    if not np.isfinite(base64).all():
        raise InputError("base prediction has non-finite values")
    step = quantiser(bound, integer)
    if not integer and bound > 0:
        # The final cast to float32/float16 moves a value by up to half an ulp; a step 2(E - ulp) keeps those
        # casts inside the bound (else ~ulp/E of all values would become outliers). Costs a relative 1e-7.
        finite_abs = np.abs(x64[valid]).max() if valid.any() else 0.0
        margin = float(np.spacing(np.array(finite_abs + np.abs(base64).max(), dtype=dtype)))
        if dtype.itemsize < 8 and bound > 4 * margin:
            step = 2.0 * (bound - margin)
    le = dtype.newbyteorder("<")
    finite_vals = x[valid]
    nonfinite = int((~valid).sum())
    if finite_vals.size == 0 or (base is None and np.all(finite_vals == finite_vals.flat[0])):
        flags = 8
        value = finite_vals.flat[0] if finite_vals.size else np.zeros((), dtype)
        blob = (bytes([VERSION, flags]) + _F64.pack(float(bound), step) + head_cls
                + np.array(value, dtype=le).tobytes())
        return blob, BoundedStats("constant", 0, 0, nonfinite, len(blob))

    # Pick the predictor and context scheme by estimated size (empirical entropy + table cost), then code only
    # that one: really coding every candidate triples the encode time (the table fits dominate it).
    # Rank every (traversal, context scheme) by estimated size, then really code the best few and keep the
    # smallest: the estimate ranks traversals well but misjudges table costs by a few % between schemes.
    ranked = []
    for name, t in _candidates(x.shape):
        per_pass, choices, outliers = _closed_loop(x64, base64, valid, dtype, float(bound), step, integer, t)
        nonesc = [q[~e] for q, _, e in per_pass]
        mags = [int(np.abs(a).max()) for a in nonesc if a.size]
        m = max(mags) if mags else 0
        for scheme in SCHEMES:
            streams = _streams(per_pass, scheme, m + 1)
            bits = sum(_estimate_bits(st) for st in streams) + 8 * dtype.itemsize * outliers.size
            ranked.append((bits, len(ranked), name, choices, t, scheme, streams, outliers, m))
    ranked.sort(key=lambda r: (r[0], r[1]))
    best = None
    for _, _, name, choices, t, scheme, streams, outliers, m in ranked[:CODED_CANDIDATES]:
        packed = zlib.compress(outliers.astype(le).tobytes(), 6)
        tail = varint(m) + varint(outliers.size) + _blob(packed) + _blob(encode_ints(choices))
        body = bytes([len(streams)]) + b"".join(varint(st.size) + _blob(encode_ints(st)) for st in streams)
        flags = (4 if integer else 0) | (scheme << 4) | (t << 6)
        blob = bytes([VERSION, flags]) + _F64.pack(float(bound), step) + head_cls + tail + body
        if best is None or len(blob) < len(best[0]):
            best = (blob, name, choices, t, scheme, outliers)
    blob, name, choices, t, scheme, outliers = best
    kernels = np.array([interp.pass_options(modes)[c][0] for (_, modes), c in
                        zip(interp.passes(x.shape, t), choices)])
    mix = ", ".join(f"{k} {int((kernels == v).sum())}" for k, v in interp.PREDICTORS.items() if (kernels == v).any())
    label = f"{name} ({mix} passes)"
    return blob, BoundedStats(label, scheme, int(outliers.size), nonfinite, len(blob))


def _candidates(shape: tuple[int, ...]):
    """(name, traversal) to try: axis by axis, and on 2+ axes also the multidimensional one (``interp.passes``)."""
    yield "dimwise", interp.DIMWISE
    if sum(n > 1 for n in shape) > 1:
        yield "multidim", interp.MULTIDIM


def _estimate_bits(sym: np.ndarray) -> float:
    """Coded size of one stream, estimated: its empirical entropy plus ~12 bits per distinct symbol (stored
    table) and ~6 bytes of blob header and ANS flush."""
    if sym.size == 0:
        return 8.0
    _, counts = np.unique(sym, return_counts=True)
    if counts.size == 1:
        return 24.0
    p = counts / sym.size
    return float(-(counts * np.log2(p)).sum()) + 12.0 * counts.size + 48.0


# -----------------------------------------------------------------------------------------------------------------
# decoder
# -----------------------------------------------------------------------------------------------------------------
def decode_bounded(blob: bytes, shape: tuple[int, ...], dtype, base: np.ndarray | None = None) -> np.ndarray:
    """Inverse of ``encode_bounded``. ``shape``/``dtype`` come from the (already validated) container header."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    if int(np.prod(shape)) > MAX_VALUES:
        raise FormatError(f"bounded section: shape {shape} exceeds the cap of {MAX_VALUES} values")
    rd = Reader(blob, "bounded section")
    if rd.byte() != VERSION:
        raise FormatError("bounded section: unknown version")
    flags = rd.byte()
    reserved, integer, constant, scheme = flags & 3, bool(flags & 4), bool(flags & 8), (flags >> 4) & 3
    traversal = flags >> 6
    if traversal > 1 or reserved not in (0, 1) or scheme not in SCHEMES:
        raise FormatError(f"bounded section: invalid flags {flags:#x}")
    if integer != (dtype.kind in "iu") and not constant:
        raise FormatError("bounded section: quantiser does not match the dtype")
    bound, step = _F64.unpack(rd.take(_F64.size))
    if not (np.isfinite(step) and step >= 0):
        raise FormatError("bounded section: invalid quantisation step")
    le = dtype.newbyteorder("<")
    cls, other = read_class_map(rd, shape, dtype)
    valid = cls == FINITE
    out = np.empty(shape, dtype=dtype)
    if constant:
        value = np.frombuffer(rd.take(dtype.itemsize), dtype=le)[0]
        rd.expect_end()
        out[...] = value
        return apply_class_map(out, cls, other)
    base64 = _zeros_view(shape) if base is None else np.asarray(base, dtype=np.float64).reshape(shape)
    n_valid = int(valid.sum())
    m = rd.varint(cap=QMAX, name="escape magnitude")
    n_out = rd.varint(cap=n_valid, name="outlier count")
    try:
        raw = zlib.decompressobj().decompress(rd.take(rd.varint(name="length")), n_out * dtype.itemsize + 1)
    except zlib.error as exc:
        raise FormatError(f"bounded section: corrupt outlier list ({exc})") from None
    if len(raw) != n_out * dtype.itemsize:
        raise FormatError("bounded section: outlier list has the wrong length")
    plan = list(interp.passes(shape, traversal))
    choices = decode_ints(rd.take(rd.varint(name="length")), len(plan)).astype(np.int64)
    outliers = np.frombuffer(raw, dtype=le)
    if dtype.kind == "f" and not np.isfinite(outliers).all():
        raise FormatError("bounded section: non-finite outlier")
    n_streams = rd.byte()
    if n_streams != num_streams(scheme):
        raise FormatError("bounded section: stream count does not match the context scheme")
    origin = (0,) * len(shape)
    n_coded = n_valid - int(valid[origin])
    streams, total = [], 0
    for _ in range(n_streams):
        count = rd.varint(cap=n_coded, name="symbol count")
        total += count
        if total > n_coded:
            raise FormatError("bounded section: more symbols than values")
        streams.append(decode_ints(rd.take(rd.varint(name="length")), count).astype(np.int64))
    rd.expect_end()
    if total != n_coded:
        raise FormatError("bounded section: symbol count does not match the shape")
    for s in streams:
        if s.size and (s.min() < -(m + 1) or s.max() > m + 1):
            raise FormatError("bounded section: quantisation index out of range")
    pos = [0] * n_streams
    o_pos = 0
    work = np.zeros(shape, dtype=np.float64)
    absq = np.zeros(shape, dtype=np.int32)
    if valid[origin]:
        if n_out < 1:
            raise FormatError("bounded section: missing anchor value")
        out[origin] = outliers[0]
        work[origin] = float(outliers[0]) - base64[origin]
        o_pos = 1
    info = np.iinfo(dtype) if integer else None
    for (h, modes), choice in zip(plan, choices):
        tv = interp.target_slices(h, modes)
        ctx = interp.contexts(absq, h, modes)
        options = interp.pass_options(modes)
        if not 0 <= choice < len(options):
            raise FormatError("bounded section: invalid predictor choice")
        pred = interp.predict(work, h, modes, *options[choice])
        if integer:
            pred = np.floor(pred + 0.5)
        v = valid[tv]
        sid = stream_of(ctx, scheme)
        sym = np.zeros(pred.shape, dtype=np.int64)
        for s in range(n_streams):
            mask = v & (sid == s)
            k = int(mask.sum())
            if k:
                sym[mask] = streams[s][pos[s] : pos[s] + k]
                pos[s] += k
        esc = v & (sym == m + 1)
        q = np.where(esc, 0, sym)
        rec = pred + q.astype(np.float64) * step
        final = base64[tv] + rec
        n_esc = int(esc.sum())
        if o_pos + n_esc > n_out:
            raise FormatError("bounded section: too few outliers")
        vals = outliers[o_pos : o_pos + n_esc]
        o_pos += n_esc
        if integer:
            final = np.clip(final, info.min, info.max)
        with np.errstate(over="ignore", invalid="ignore"):
            res = final.astype(dtype)
        res[esc] = vals
        res[~v] = 0
        out[tv] = res
        escv = np.zeros(pred.shape)
        escv[esc] = vals.astype(np.float64)
        work[tv] = np.where(esc, escv - base64[tv], np.where(v, rec, pred))
        absq[tv] = np.where(esc, ESCAPE_WEIGHT, np.where(v, np.abs(q), 0))
    if o_pos != n_out:
        raise FormatError("bounded section: unused outliers")
    return apply_class_map(out, cls, other)


def apply_class_map(out: np.ndarray, cls: np.ndarray, other: np.ndarray | None) -> np.ndarray:
    if out.dtype.kind != "f" or not (cls != FINITE).any():
        return out
    out[cls == NAN] = np.nan
    out[cls == POS_INF] = np.inf
    out[cls == NEG_INF] = -np.inf
    if other is not None and other.size:
        view = out.view(_uint_of(out.dtype))
        view[cls == NAN_OTHER] = other
    return out
