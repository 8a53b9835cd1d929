"""Bitstream of the latents: per level, symbols coded with constriction's ANS and a quantised Laplace whose mean
and scale the exact context model predicts (checkerboard: even samples, then odd, per level from the coarsest).

The quantised Laplace is constriction's ``QuantizedLaplace`` table rebuilt in IEEE-exact arithmetic
(``quant.exact``), so the probabilities never depend on the machine's libm.

Layout of the ``latents`` section: u16 step numerator (step = k / STEP_FRAC), u32 CRC-32 of the symbols, per level
the varint pair (zigzag(lo), hi - lo), then the ANS words (little-endian u32, trailing zero bytes trimmed).
"""

from __future__ import annotations

import struct
import zlib

import constriction
import numpy as np
import torch

from ...entropy._bytes import ans_words, read_varint, unzigzag, varint, zigzag
from ...entropy.coding import _ans_bytes
from ...entropy.rate import laplace_rate_bits
from ...errors import FormatError
from ...quant.exact import laplace_decode, laplace_encode_reverse
from .context import ExactArm, checkerboard, coder_features
from .quantiser import LATENT_CAP, STEP_FRAC


VARINT_ERROR = "malformed varint in latents section"


def level_params(arm: ExactArm, syms: list[np.ndarray], step: float):
    """Per level: coder means and scales of every symbol (in symbol units), from dequantised values."""
    out = []
    levels = len(syms)
    vals = [torch.from_numpy(s.astype(np.float64) * step) for s in syms]
    for level in range(levels):
        coarse = vals[level + 1] if level + 1 < levels else None
        mean, scale = arm(coder_features(level, levels, vals[level], coarse))
        out.append((mean / step, scale / step))
    return out


def encode_latents(arm: ExactArm, syms: list[np.ndarray], step: float) -> bytes:
    params = level_params(arm, syms, step)
    head = bytearray()
    coder = constriction.stream.stack.AnsCoder()
    chunks = []
    for level, s in enumerate(syms):
        flat = s.reshape(-1)
        lo, hi = int(flat.min()), int(flat.max())
        head += varint(zigzag(lo)) + varint(hi - lo)
        if hi > lo:
            odd = checkerboard(s.shape).reshape(-1).numpy()
            mean, scale = params[level]
            chunks.append((flat, odd, mean, scale, lo, hi))
    for flat, odd, mean, scale, lo, hi in chunks:  # a stack: fine levels first, odd before even in each
        for sel in (odd, ~odd):
            if sel.any():
                laplace_encode_reverse(coder, flat[sel], lo, hi, mean[sel], scale[sel])
    check = _symbols_crc(syms)
    return struct.pack("<HI", int(round(step * STEP_FRAC)), check) + bytes(head) + _ans_bytes(coder)


def decode_latents(arm: ExactArm, blob: bytes, shapes: list[tuple[int, ...]]) -> tuple[float, list[torch.Tensor]]:
    """(step, dequantised latents in float64) of a ``latents`` section; FormatError on any inconsistency."""
    if len(blob) < 6:
        raise FormatError("latents section truncated")
    k, check = struct.unpack("<HI", blob[:6])
    if not 0 < k <= 16 * STEP_FRAC:
        raise FormatError(f"invalid latent step {k}/{STEP_FRAC}")
    step = k / STEP_FRAC
    pos = 6
    ranges = []
    for _ in shapes:
        zlo, pos = read_varint(blob, pos, VARINT_ERROR, 6)
        span, pos = read_varint(blob, pos, VARINT_ERROR, 6)
        lo = unzigzag(zlo)
        if abs(lo) > LATENT_CAP or lo + span > LATENT_CAP:
            raise FormatError("latent range out of bounds")
        ranges.append((lo, lo + span))
    try:
        coder = constriction.stream.stack.AnsCoder(ans_words(blob[pos:]))
    except BaseException as exc:  # noqa: BLE001 - constriction panics are BaseException
        raise FormatError(f"corrupt latents: {exc}") from None
    levels = len(shapes)
    vals: list[torch.Tensor | None] = [None] * levels
    for level in reversed(range(levels)):
        shape = shapes[level]
        lo, hi = ranges[level]
        sym = np.full(int(np.prod(shape)), lo, dtype=np.int64)
        if hi > lo:
            odd = checkerboard(shape).reshape(-1).numpy()
            coarse = vals[level + 1] if level + 1 < levels else None
            for parity, sel in ((0, ~odd), (1, odd)):
                if not sel.any():
                    continue
                y = torch.from_numpy(sym.reshape(shape).astype(np.float64) * step)
                mean, scale = arm(coder_features(level, levels, y, coarse, parity))
                try:
                    sym[sel] = laplace_decode(coder, lo, hi, mean / step, scale / step)
                except BaseException as exc:  # noqa: BLE001
                    raise FormatError(f"corrupt latents: {exc}") from None
        vals[level] = torch.from_numpy(sym.reshape(shape).astype(np.float64) * step)
    if not coder.is_empty():  # a consistent stream is used up exactly
        raise FormatError("corrupt latents: entropy-coded stream not fully consumed")
    # ANS decodes garbage from a damaged stream without noticing; a checksum of the symbols does notice.
    if _symbols_crc([np.rint(v.numpy() / step).astype(np.int64) for v in vals]) != check:
        raise FormatError("corrupt latents: checksum mismatch")
    return step, vals


def _estimate_bits(params, syms) -> float:
    total = 0.0
    for (mean, scale), s in zip(params, syms):
        x = torch.from_numpy(s.reshape(-1).astype(np.float64))
        total += float(laplace_rate_bits(x, torch.from_numpy(scale), torch.from_numpy(mean)))
    return total


def _symbols_crc(syms: list[np.ndarray]) -> int:
    crc = 0
    for s in syms:
        crc = zlib.crc32(np.ascontiguousarray(s, dtype="<i4").tobytes(), crc)
    return crc
