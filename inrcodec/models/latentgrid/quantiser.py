"""Quantiser: how latents and network weights become integers.

* Latents, training: the stand-ins for rounding over the schedule are the training recipe's (``recipe.py``).
* Latents, coding: integers times a step ``k / STEP_FRAC``; ``quality_setting`` maps encode's quality to the step
  (quality 1: step 1, as trained; lower: up to 2**QUALITY_STEP_RANGE), |symbol| <= LATENT_CAP.
* Network weights: power-of-two steps per tensor, entropy-coded together per module (``_code_weights``).
"""

from __future__ import annotations

import math
import struct

import numpy as np

from ...entropy import decode_ints, encode_ints
from ...errors import FormatError

LATENT_CAP = 1 << 12  # |latent symbol| bound (a symbol beyond it is clipped at encode)
QUALITY_STEP_RANGE = 1.0  # log2 of the coarsest latent step (quality 0)
STEP_FRAC = 64  # latent step is k / STEP_FRAC


def quality_setting(quality: float) -> float:
    """encode's knob -> latent step. Quality 1 codes the latents as trained; lower quality coarsens the step up to
    2**QUALITY_STEP_RANGE. (A rounding dead zone growing at step 1 was tried instead: the file size is not monotone
    in it, because the context model's means sit where training put the latents, so the bisection cannot use it.)"""
    q = float(np.clip(quality, 0.0, 1.0))
    return round(STEP_FRAC * 2.0 ** (QUALITY_STEP_RANGE * (1.0 - q))) / STEP_FRAC



def _pow2_exponent(values: np.ndarray, rel_bits: int) -> int:
    rms = math.sqrt(float(np.mean(values**2))) if values.size else 0.0
    if rms <= 0:
        return 0
    return int(np.clip(rel_bits - math.floor(math.log2(rms)), -20, 40))


def _code_weights(tensors: list[np.ndarray], rel_bits: int) -> tuple[bytes, list[np.ndarray]]:
    """Per tensor an int8 exponent e (step 2**-e, about rms * 2**-rel_bits); the symbols round(w * 2**e) of all
    tensors of a module share one entropy-coded blob (they are all on the same relative scale). Returns the blob
    and the dequantised tensors."""
    exps, syms, deq = [], [], []
    for v in tensors:
        e = _pow2_exponent(v, rel_bits)
        q = np.clip(np.rint(v * 2.0**e), -(2**30), 2**30).astype(np.int64)
        exps.append(e)
        syms.append(q.ravel())
        deq.append(q.astype(np.float64) * 2.0**-e)
    head = struct.pack(f"<{len(exps)}b", *exps)
    return head + encode_ints(np.concatenate(syms) if syms else np.zeros(0, np.int64)), deq


def _decode_weights(blob: bytes, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    n = len(shapes)
    if len(blob) < n + 1:
        raise FormatError("weights section truncated")
    exps = struct.unpack(f"<{n}b", blob[:n])
    sizes = [int(np.prod(s)) for s in shapes]
    q = decode_ints(blob[n:], sum(sizes))
    out, pos = [], 0
    for e, shape, size in zip(exps, shapes, sizes):
        out.append((q[pos : pos + size].astype(np.float64) * 2.0**-e).reshape(shape))
        pos += size
    return out

