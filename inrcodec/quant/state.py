"""Quantise and entropy-code a model's float tensors (``encode_state``) and back (``decode_state``).

Names and shapes are not stored: the caller rebuilds them from the model config, and tensors are written in the
order of the dict. Per tensor::

    kind byte   bits 0-1: 0 quantised per tensor, 1 quantised per channel, 2 raw float16, 3 raw float32
                bit 2: steps stored as float32 (else float16)
                bit 3: (first tensor only) all quantised symbols share one entropy-coded stream at the end
                bits 4-7: channel axis (per-channel only)
    steps       per tensor: one float16/float32; per channel, float16: varint length + ``encode_ints`` blob of the
                float16 bit patterns (steps of one tensor sit close together, so this beats 2 bytes each);
                per channel, float32: C raw float32
    payload     raw floats, or (separate streams) varint length + ``encode_ints`` blob; the length is left out
                when the blob is the last thing in the state

Steps are rounded *up* to their stored precision before quantising, so the stored step is the one used, the
decoder's ``q * step`` equals the encoder's reconstruction bit for bit, and no value is clipped beyond step/2.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from ..entropy import COUNT_CAP, decode_ints, encode_ints
from ..entropy._bytes import Reader, varint
from ..errors import FormatError, InputError
from .uniform import (
    QuantizedTensor,
    _as_float,
    _norm_axis,
    _quantize,
    channel_absmax,
    dequantize,
    steps_for_bits,
)

K_TENSOR, K_CHANNEL, K_F16, K_F32 = 0, 1, 2, 3
_STEPS_F32, _JOINT = 4, 8
_F16_MIN_NORMAL = 2.0**-14
_F16_MAX = 65504.0


def float16_fits(x: np.ndarray, rtol: float = 0.0) -> bool:
    """True if x survives a float16 round trip with every element's error at most ``rtol * max|x|`` and nothing
    overflows; ``rtol=0`` asks for exact representability."""
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return True
    if not np.all(np.isfinite(a)):
        return False
    with np.errstate(over="ignore"):
        h = a.astype(np.float16).astype(np.float64)
    if not np.all(np.isfinite(h)):
        return False
    return bool(np.all(np.abs(h - a) <= rtol * np.abs(a).max()))


def _storage_steps(step: np.ndarray) -> tuple[np.ndarray, bool]:
    """Round steps up to float16 where every one lands on a normal float16, else keep float32.
    Returns (float32 steps exactly as stored, stored-as-float32)."""
    s = np.asarray(step, dtype=np.float32)
    with np.errstate(over="ignore"):
        h = s.astype(np.float16)
    h = np.where(h.astype(np.float32) < s, np.nextafter(h, np.float16(np.inf)), h).astype(np.float16)
    if np.all(np.isfinite(h)) and np.all(h.astype(np.float32) >= _F16_MIN_NORMAL):
        return h.astype(np.float32), False
    return s, True


def quantize_for_storage(x: np.ndarray, bits: int, axis: int | None = None) -> QuantizedTensor:
    """``quantize_uniform`` with the steps rounded up to the precision ``encode_state`` stores them in."""
    a = _as_float(x)
    axis = _norm_axis(a, axis)
    step, _ = _storage_steps(steps_for_bits(channel_absmax(a, axis), bits))
    return _quantize(a, step, axis, 2 ** (int(bits) - 1) - 1)


def _spec(spec, name: str, what: str, required: bool):
    if isinstance(spec, dict):
        if name not in spec:
            if required:
                raise InputError(f"no {what} given for tensor {name!r}")
            return None
        return spec[name]
    return spec


def _tensor_axis(axis, name: str, x) -> int | None:
    """Per-tensor axis choice: a dict names it per tensor (missing = per tensor); a single axis applies to the
    tensors of 2 or more dimensions that have it (scalars and bias vectors stay per tensor)."""
    if isinstance(axis, dict):
        return axis.get(name)
    if axis is None or np.ndim(x) < 2 or not -np.ndim(x) <= axis < np.ndim(x):
        return None
    return axis


def _plan(name: str, x, bits, axis):
    """-> (kind byte, step bytes, raw payload or None, QuantizedTensor or None, float32 values as decoded)."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise InputError(f"tensor {name!r}: cannot store dtype {a.dtype}")
    if a.size and not np.all(np.isfinite(a)):
        raise InputError(f"tensor {name!r} has NaN or infinite values")
    bits = int(bits)
    if bits == 32 or (bits == 16 and not float16_fits(a, rtol=2.0**-11)):
        v = a.astype("<f4")
        return K_F32, b"", v.tobytes(), None, v.astype(np.float32)
    if bits == 16:
        v = a.astype("<f2")
        return K_F16, b"", v.tobytes(), None, v.astype(np.float32)
    if not 2 <= bits <= 15:
        raise InputError(f"tensor {name!r}: bits must be 2-15 (quantised), 16 (float16) or 32 (float32), got {bits}")
    qt = quantize_for_storage(a, bits, axis)
    _, f32 = _storage_steps(qt.step)
    if qt.axis is None:
        kind = K_TENSOR
        steps = struct.pack("<f" if f32 else "<e", float(qt.step))
    else:
        if qt.axis > 15:
            raise InputError(f"tensor {name!r}: per-channel axis must be < 16")
        kind = K_CHANNEL | (qt.axis << 4)
        if f32:
            steps = qt.step.astype("<f4").tobytes()
        else:
            blob = encode_ints(qt.step.astype(np.float16).view(np.uint16).astype(np.int32))
            steps = varint(len(blob)) + blob
    return kind | (_STEPS_F32 if f32 else 0), steps, None, qt, dequantize(qt)


def state_values(tensors: dict[str, np.ndarray], bits, axis=None) -> dict[str, np.ndarray]:
    """The float32 values ``decode_state`` will return for these arguments, computed without any coding."""
    return {n: _plan(n, x, _spec(bits, n, "bits", True), _tensor_axis(axis, n, x))[4] for n, x in tensors.items()}


def _write(plans, model: str, joint: bool) -> bytes:
    out = bytearray()
    last = len(plans) - 1
    for i, (kind, steps, raw, qt, _) in enumerate(plans):
        out.append(kind | (_JOINT if joint and i == 0 else 0))
        out += steps
        if raw is not None:
            out += raw
        elif not joint:
            blob = encode_ints(qt.q.reshape(-1), model)
            out += blob if i == last else varint(len(blob)) + blob
    if joint:
        out += encode_ints(np.concatenate([p[3].q.reshape(-1) for p in plans if p[3] is not None]), model)
    return bytes(out)


def encode_state(tensors: dict[str, np.ndarray], bits: int | dict[str, int], axis=None, model: str = "auto") -> bytes:
    """Quantise (2-15 bits, per tensor or per channel along ``axis``) or store as float16 (16) / float32 (32) each
    tensor, and entropy-code the symbols. ``bits`` may be a dict by tensor name; ``axis`` a dict too (missing =
    per tensor) or one axis for every tensor of 2+ dimensions that has it. All quantised tensors either get a
    stream each or share one, whichever is smaller."""
    plans = [_plan(n, x, _spec(bits, n, "bits", True), _tensor_axis(axis, n, x)) for n, x in tensors.items()]
    best = _write(plans, model, joint=False)
    if sum(p[3] is not None for p in plans) >= 2:
        joint = _write(plans, model, joint=True)
        if len(joint) < len(best):
            best = joint
    return best


def _checked_shape(name, shape) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise FormatError(f"tensor {name!r}: invalid shape {shape!r}") from None
    if any(s < 0 for s in shape) or len(shape) > 16:
        raise FormatError(f"tensor {name!r}: invalid shape {shape}")
    return shape


def _read_steps(rd: Reader, kind: int, f32: bool, axis: int, shape, name: str) -> tuple[np.ndarray, int | None]:
    if kind == K_TENSOR:
        if axis:
            raise FormatError(f"model state: tensor {name!r} has a stray axis field")
        step, ax = np.asarray(rd.f32() if f32 else rd.f16(), dtype=np.float32), None
    else:
        if axis >= len(shape):
            raise FormatError(f"model state: tensor {name!r} has channel axis {axis} but shape {shape}")
        c, ax = shape[axis], axis
        if f32:
            step = rd.array("<f4", c).astype(np.float32)
        else:
            pat = decode_ints(rd.take(rd.varint(cap=rd.remaining(), name="step blob length")), c)
            if pat.size and (pat.min() < 0 or pat.max() > 0xFFFF):
                raise FormatError(f"model state: tensor {name!r} has corrupt steps")
            step = pat.astype(np.uint16).view(np.float16).astype(np.float32)
    if step.size and not (np.all(np.isfinite(step)) and np.all(step > 0)):
        raise FormatError(f"model state: tensor {name!r} has invalid quantisation steps")
    return step, ax


def decode_state(blob: bytes, shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Inverse of ``encode_state`` given the tensors' names and shapes (in the order they were encoded).
    Returns float32 arrays; corrupt or inconsistent data raises FormatError."""
    shapes = {n: _checked_shape(n, s) for n, s in shapes.items()}
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    if sum(sizes.values()) > COUNT_CAP:
        raise FormatError(f"model state claims {sum(sizes.values())} values (cap {COUNT_CAP})")
    rd = Reader(blob, "model state")
    out: dict[str, np.ndarray] = {}
    pending: list[tuple[str, np.ndarray, int | None]] = []
    joint = False
    last = len(shapes) - 1
    for i, (name, shape) in enumerate(shapes.items()):
        n = sizes[name]
        kb = rd.byte()
        if kb & _JOINT:
            if i:
                raise FormatError(f"model state: tensor {name!r} has a stray joint flag")
            joint = True
        kind, f32, axis = kb & 3, bool(kb & _STEPS_F32), kb >> 4
        if kind in (K_F16, K_F32):
            if f32 or axis:
                raise FormatError(f"model state: tensor {name!r} has stray flags on raw floats")
            v = rd.array("<f2" if kind == K_F16 else "<f4", n).astype(np.float32)
            if not np.all(np.isfinite(v)):
                raise FormatError(f"model state: tensor {name!r} holds NaN or infinite values")
            out[name] = v.reshape(shape)
            continue
        step, ax = _read_steps(rd, kind, f32, axis, shape, name)
        if joint:
            pending.append((name, step, ax))
            out[name] = None  # keep dict order; filled below
            continue
        size = rd.remaining() if i == last else rd.varint(cap=rd.remaining(), name="tensor blob length")
        q = decode_ints(rd.take(size), n).reshape(shape)
        out[name] = dequantize(QuantizedTensor(q, step, ax))
    if joint:
        q_all = decode_ints(rd.rest(), sum(sizes[p[0]] for p in pending))
        pos = 0
        for name, step, ax in pending:
            n = sizes[name]
            out[name] = dequantize(QuantizedTensor(q_all[pos : pos + n].reshape(shapes[name]), step, ax))
            pos += n
    rd.expect_end()
    return out
