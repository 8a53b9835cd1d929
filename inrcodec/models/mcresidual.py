"""Coded residual of ``mcvideo``'s predicted frames: a multi-resolution latent grid per frame with a fixed linear
synthesis (bilinear upsampling of each level, summed), quantised coarse to fine in the closed loop.

Why this form (measured against an overfitted Cool-chic latent grid per frame, see docs/video.md): at 0.02-0.2
bpp a 640x360 predicted frame has 0.5-5 kB, and the encoder has a few seconds per frame on these 2 cores. A
learned synthesis with a context model costs seconds per step and hundreds of bytes of weights per frame; a fixed
synthesis needs no weights, its analysis is closed form (block means of what the coarser levels left), and its
decoder is a few elementwise passes (far above 30 fps).

Residual r = source - prediction, in YCoCg (luma carries most of the error; chroma is quantised ``CHROMA_FACTOR``
times coarser). Level b (a block size, coarse to fine) holds a (ceil(H/b), ceil(W/b), 3) grid z_b; the decoded
residual is sum_b up_b(step_b * z_b), where up_b is bilinear interpolation between block centres (edges clamped).
The encoder picks z_b, coarse to fine, as the dead-zone quantised block mean of what the coarser levels left, so
each level corrects the quantisation error of the ones before it.

Exactness: the synthesis uses only numpy elementwise float32 operations in a fixed order (no BLAS, no OpenCV), so
any machine computes the same residual, and the decoder reproduces the encoder's reconstruction bit for bit.

Entropy coding: each (level, luma|chroma) array of the whole GOP (all predicted frames together) is one
``encode_ints`` blob (the smallest of a coded histogram, Laplace or Gaussian model): at these rates most symbols
are 0, and one blob per GOP keeps the header bytes per frame small.
"""

from __future__ import annotations

import functools

import numpy as np

from ..entropy import decode_ints, encode_ints
from ..errors import FormatError

NAME = "pyramid"
BLOCKS = (16, 8, 4)  # coarse to fine; measured on a shared-clip P-frame: level 4 is where the dB are (+3.6 dB at
# 3 kB with it, +1.5 dB at most without), and a level 32 added bytes for nothing
CHROMA_FACTOR = 2.0
LEVEL_GAMMA = 0.0  # step_b = step * (8 / b) ** LEVEL_GAMMA; measured 0 / 0.5 / 1: one step for all levels is best
DEAD_ZONE = 0.25  # round towards zero by this much of a step (fewer non-zero symbols at nearly the same error)
STEP_UNIT = 16  # the config stores the base step as an integer number of 1/16 levels
MAX_SYMBOL = 1 << 12
BLOCK_CHOICES = (4, 8, 16, 32, 64)


def level_steps(step: float, blocks: tuple[int, ...]) -> list[np.ndarray]:
    """(3,) float32 quantisation steps (Y, Co, Cg) of each level."""
    out = []
    for b in blocks:
        s = np.float32(step * (8.0 / b) ** LEVEL_GAMMA)
        out.append(np.array([s, s * CHROMA_FACTOR, s * CHROMA_FACTOR], np.float32))
    return out


def to_ycocg(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.stack([0.25 * r + 0.5 * g + 0.25 * b, 0.5 * (r - b), -0.25 * r + 0.5 * g - 0.25 * b], axis=-1)


def from_ycocg(ycc: np.ndarray) -> np.ndarray:
    y, co, cg = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    return np.stack([y + co - cg, y + cg, y - co - cg], axis=-1)


@functools.lru_cache(maxsize=32)
def _taps(n: int, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear taps from a grid of ceil(n / block) block centres to n pixel centres (clamped at the ends)."""
    m = -(-n // block)
    pos = (np.arange(n, dtype=np.float64) + 0.5) / block - 0.5  # pixel centre in block-centre units
    i0 = np.clip(np.floor(pos), 0, m - 1).astype(np.int64)
    i1 = np.minimum(i0 + 1, m - 1)
    w1 = np.clip(pos - i0, 0.0, 1.0).astype(np.float32)
    w1[i1 == i0] = 0.0
    return i0, i1, w1


def upsample(grid: np.ndarray, block: int, h: int, w: int) -> np.ndarray:
    """(by, bx, C) float32 -> (h, w, C) float32, separable bilinear, elementwise ops only (bit-exact anywhere)."""
    y0, y1, wy = _taps(h, block)
    x0, x1, wx = _taps(w, block)
    rows = grid[y0] * (np.float32(1) - wy)[:, None, None] + grid[y1] * wy[:, None, None]
    return rows[:, x0] * (np.float32(1) - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def block_means(img: np.ndarray, block: int) -> np.ndarray:
    h, w, c = img.shape
    by, bx = -(-h // block), -(-w // block)
    pad = np.pad(img, ((0, by * block - h), (0, bx * block - w), (0, 0)), mode="edge")
    return pad.reshape(by, block, bx, block, c).mean(axis=(1, 3), dtype=np.float32)


def synthesize(symbols: list[np.ndarray], step: float, h: int, w: int) -> np.ndarray:
    return synthesize_levels(symbols, level_steps(step, BLOCKS), BLOCKS, h, w)


def analyse(residual_rgb: np.ndarray, step: float) -> tuple[list[np.ndarray], np.ndarray]:
    return analyse_levels(residual_rgb, level_steps(step, BLOCKS), BLOCKS)


def synthesize_levels(symbols: list[np.ndarray], steps: list[np.ndarray], blocks: tuple[int, ...], h: int,
                      w: int) -> np.ndarray:
    """Decoded residual in RGB (h, w, 3) float32 from the integer latents of each level."""
    acc = np.zeros((h, w, 3), np.float32)
    for z, s, b in zip(symbols, steps, blocks):
        if np.any(z):
            acc += upsample(z.astype(np.float32) * s, b, h, w)
    return from_ycocg(acc)


def analyse_levels(residual_rgb: np.ndarray, steps: list[np.ndarray],
                   blocks: tuple[int, ...]) -> tuple[list[np.ndarray], np.ndarray]:
    """Integer latents of each level, coarse to fine, each quantising what the coarser (decoded) levels left, and
    the decoded residual (the same additions in the same order as ``synthesize``, so bit-identical to it)."""
    h, w = residual_rgb.shape[:2]
    target = to_ycocg(residual_rgb.astype(np.float32))
    acc = np.zeros((h, w, 3), np.float32)
    out = []
    for s, b in zip(steps, blocks):
        mean = block_means(target - acc, b) / s
        z = np.sign(mean) * np.floor(np.abs(mean) + (0.5 - DEAD_ZONE))
        z = np.clip(z, -MAX_SYMBOL, MAX_SYMBOL).astype(np.int32)
        out.append(z)
        if np.any(z):
            acc += upsample(z.astype(np.float32) * s, b, h, w)
    return out, from_ycocg(acc)


def apply(pred: np.ndarray, residual_rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(pred.astype(np.float32) + residual_rgb), 0, 255).astype(np.uint8)


def grid_shapes(blocks: tuple[int, ...], h: int, w: int) -> list[tuple[int, int]]:
    return [(-(-h // b), -(-w // b)) for b in blocks]


def encode_symbols(per_frame: list[list[np.ndarray]], blocks: tuple[int, ...] = BLOCKS) -> bytes:
    """All predicted frames' latents: per level, one luma and one chroma blob, each prefixed by its length."""
    out = bytearray()
    for lvl in range(len(blocks)):
        stack = [np.stack([f[lvl] for f in per_frame])] if per_frame else [np.zeros((0, 1, 1, 3), np.int32)]
        arr = stack[0]
        for part in (arr[..., 0], arr[..., 1:]):
            blob = encode_ints(part.ravel().astype(np.int64))
            out += len(blob).to_bytes(4, "little") + blob
    return bytes(out)


def estimate_bytes(per_frame: list[list[np.ndarray]]) -> float:
    return float(len(encode_symbols(per_frame)))


def decode_symbols(data: bytes, frames: int, h: int, w: int,
                   blocks: tuple[int, ...] = BLOCKS) -> list[list[np.ndarray]]:
    """Inverse of ``encode_symbols``: per predicted frame, the latents of each level (FormatError on bad data)."""
    shapes = grid_shapes(blocks, h, w)
    levels = []
    pos = 0
    for by, bx in shapes:
        parts = []
        for ch in (1, 2):
            if pos + 4 > len(data):
                raise FormatError("residual section is truncated")
            n = int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
            if pos + n > len(data):
                raise FormatError("residual section is truncated")
            vals = decode_ints(data[pos:pos + n], frames * by * bx * ch)
            pos += n
            parts.append(np.asarray(vals).reshape(frames, by, bx, ch))
        z = np.concatenate(parts, axis=-1)
        if np.abs(z).max(initial=0) > MAX_SYMBOL:
            raise FormatError("residual symbol out of range")
        levels.append(z.astype(np.int32))
    if pos != len(data):
        raise FormatError("residual section has trailing bytes")
    return [[levels[lvl][k] for lvl in range(len(blocks))] for k in range(frames)]
