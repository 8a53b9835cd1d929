"""Uniform scalar quantisation: symmetric mid-tread (zero is always a level), per tensor or per channel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

MIN_BITS, MAX_BITS = 2, 24  # 1 bit leaves a mid-tread quantiser a single level; > 24 exceeds float32 precision
_Q_LIMIT = 2**31 - 1


@dataclass
class QuantizedTensor:
    q: np.ndarray  # int32 symbols, same shape as the input
    step: np.ndarray  # float32, shape () for per-tensor or (channels,) for per-channel along ``axis``
    axis: int | None = None  # non-negative channel axis, or None

    def step_like_q(self) -> np.ndarray:
        """``step`` reshaped to broadcast against ``q``."""
        if self.axis is None:
            return self.step
        shape = [1] * self.q.ndim
        shape[self.axis] = -1
        return self.step.reshape(shape)


def _as_float(x) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise InputError(f"cannot quantise an array of dtype {a.dtype}")
    a = a.astype(np.float64 if a.dtype == np.float64 else np.float32, copy=False)
    if a.size and not np.all(np.isfinite(a)):
        raise InputError("cannot quantise an array with NaN or infinite values")
    return a


def _norm_axis(a: np.ndarray, axis: int | None) -> int | None:
    if axis is None:
        return None
    if not -a.ndim <= axis < a.ndim:
        raise InputError(f"axis {axis} out of range for an array of shape {a.shape}")
    return axis % a.ndim


def channel_absmax(a: np.ndarray, axis: int | None) -> np.ndarray:
    """max |x| over the whole tensor (axis None, shape ()) or per channel along ``axis`` (shape (C,))."""
    if axis is None:
        return np.asarray(np.abs(a).max() if a.size else 0.0, dtype=np.float64)
    if a.size == 0:
        return np.zeros(a.shape[axis], dtype=np.float64)
    other = tuple(i for i in range(a.ndim) if i != axis)
    return np.abs(a).max(axis=other).astype(np.float64)


def steps_for_bits(absmax: np.ndarray, bits: int) -> np.ndarray:
    """step = max|x| / (2**(bits-1) - 1); an all-zero channel gets step 1 (its symbols are all 0 anyway)."""
    if not MIN_BITS <= int(bits) <= MAX_BITS:
        raise InputError(f"bits must be in [{MIN_BITS}, {MAX_BITS}], got {bits}")
    qmax = 2 ** (int(bits) - 1) - 1
    step = np.asarray(absmax, dtype=np.float64) / qmax
    # a step that underflows float32 (absmax ~ 1e-38) would divide by zero: treat such channels as zero
    step = np.where(step >= np.finfo(np.float32).tiny, step, 1.0)
    return step.astype(np.float32)


def _quantize(a: np.ndarray, step: np.ndarray, axis: int | None, qmax: int | None) -> QuantizedTensor:
    qt = QuantizedTensor(np.zeros(a.shape, np.int32), np.asarray(step, dtype=np.float32), axis)
    # divide in float64 so the rounding decision is exact for float32 inputs
    y = np.rint(a.astype(np.float64) / qt.step_like_q().astype(np.float64))
    if qmax is not None:
        y = np.clip(y, -qmax, qmax)
    elif y.size and np.abs(y).max() > _Q_LIMIT:
        raise InputError("quantisation step is too small for int32 symbols")
    qt.q = y.astype(np.int32)
    return qt


def quantize_uniform(x: np.ndarray, bits: int, axis: int | None = None) -> QuantizedTensor:
    """Symmetric mid-tread quantiser with ``2**bits - 1`` levels, step from max|x| per tensor or per channel."""
    a = _as_float(x)
    axis = _norm_axis(a, axis)
    step = steps_for_bits(channel_absmax(a, axis), bits)
    return _quantize(a, step, axis, 2 ** (int(bits) - 1) - 1)


def quantize_step(x: np.ndarray, step, axis: int | None = None) -> QuantizedTensor:
    """Quantise with a given step (scalar, or one per channel along ``axis``); no clipping, any symbol range."""
    a = _as_float(x)
    axis = _norm_axis(a, axis)
    s = np.asarray(step, dtype=np.float32)
    if axis is None and s.ndim != 0:
        raise InputError("a per-tensor step must be a scalar")
    if axis is not None:
        s = np.broadcast_to(s, (a.shape[axis],)).copy() if s.ndim == 0 else s
        if s.shape != (a.shape[axis],):
            raise InputError(f"need {a.shape[axis]} steps along axis {axis}, got shape {s.shape}")
    if s.size and not (np.all(np.isfinite(s)) and np.all(s > 0)):
        raise InputError("quantisation steps must be positive and finite")
    return _quantize(a, s, axis, None)


def dequantize(qt: QuantizedTensor) -> np.ndarray:
    """float32 reconstruction q * step."""
    return qt.q.astype(np.float32) * qt.step_like_q()


def fake_quant(x, step, mode: str = "ste", qmax: int | None = None):
    """Quantisation for training (torch). ``"ste"``: round in the forward pass, identity gradient to x and an
    LSQ-style gradient (round(x/s) - x/s) to a learnable step; ``"noise"``: add U(-step/2, step/2) noise, the usual
    differentiable stand-in for rounding. ``qmax`` clips the levels to [-qmax, qmax] (ste only)."""
    import torch

    step = torch.as_tensor(step, dtype=x.dtype, device=x.device)
    if mode == "ste":
        y = x / step
        if qmax is not None:
            y = torch.clamp(y, -qmax, qmax)
        return (y + (torch.round(y) - y).detach()) * step
    if mode == "noise":
        return x + (torch.rand_like(x) - 0.5) * step
    raise InputError(f"unknown fake_quant mode {mode!r}; choose 'ste' or 'noise'")
