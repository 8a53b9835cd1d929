"""Transform-coded residual of ``mcvideo``'s predicted frames: an 8x8 block transform with an *integer* inverse.

Why a block transform (measured against the latent-pyramid residual ``mcresidual`` on the shared clip, see
docs/video.md): the prediction error of a warped frame sits on edges and texture, which a smooth latent grid at
1/4 resolution cannot express at any rate (P frames stayed near 31 dB with a lossless intra frame and 2.5 kB per
frame of residual), while 8x8 DCT coefficients capture them at a fraction of the bytes.

Residual r = source - prediction in YCoCg; chroma steps are ``CHROMA_FACTOR`` times the luma step. Each 8x8 block
(edges replicated to a multiple of 8) is transformed with the orthonormal DCT-II, dead-zone quantised, and coded.

Exactness: the decoder's inverse uses the integer 8-point matrix of HEVC (a scaled, rounded DCT, T T^t ~ 2^15 I) on
integer dequantised coefficients (symbol x step in 1/16 levels), so the inverse is exact int64 arithmetic and one
power-of-two division: every machine computes the same residual, and the encoder's closed loop (which uses this
same inverse) is bit-identical to the decoder.

Entropy coding (one set of blobs per GOP, all predicted frames together): coefficients in zigzag order are split
into ``BANDS`` of frequencies; each band of luma / chroma is coded with ``encode_ints`` in two contexts: blocks
whose lower bands are all zero and blocks with a non-zero lower coefficient (the decoder knows which, band by
band). Measured on the shared clip, context splits of this kind save ~20 % over one blob per band.
"""

from __future__ import annotations

import functools

import numpy as np

from ..entropy import decode_ints, encode_ints
from ..entropy._bytes import read_varint, varint
from ..errors import FormatError
from .mcresidual import CHROMA_FACTOR, from_ycocg, to_ycocg

NAME = "dct"
N = 8
DEAD_ZONE = 0.3  # round towards zero by this much of a step (fewer non-zero symbols at nearly the same error)
MAX_SYMBOL = 1 << 12
# HEVC's 8-point integer DCT (rows: frequencies), orthonormal DCT-II x 64 sqrt(8), rounded
T8 = np.array([
    [64, 64, 64, 64, 64, 64, 64, 64],
    [89, 75, 50, 18, -18, -50, -75, -89],
    [83, 36, -36, -83, -83, -36, 36, 83],
    [75, -18, -89, -50, 50, 89, 18, -75],
    [64, -64, -64, 64, 64, -64, -64, 64],
    [50, -89, 18, 75, -75, -18, 89, -50],
    [36, -83, 83, -36, -36, 83, -83, 36],
    [18, -50, 75, -89, 89, -75, 50, -18],
], np.int64)
INV_SHIFT = 15 + 4  # T^t Y T / 2^15 undoes the matrix scale; 2^4: coefficients are held in 1/16 levels
BANDS = (0, 1, 3, 6, 10, 15, 28, 64)  # zigzag index ranges coded apart (low to high frequency)
STEP_UNIT = 16


@functools.lru_cache(maxsize=1)
def _zigzag() -> np.ndarray:
    order = sorted(((i, j) for i in range(N) for j in range(N)),
                   key=lambda p: (p[0] + p[1], p[1] if (p[0] + p[1]) % 2 == 0 else p[0]))
    return np.array([i * N + j for i, j in order], np.int64)


@functools.lru_cache(maxsize=1)
def _forward_matrix() -> np.ndarray:
    k = np.arange(N)[:, None]
    x = np.arange(N)[None, :]
    d = np.sqrt(2.0 / N) * np.cos(np.pi * (2 * x + 1) * k / (2 * N))
    d[0] /= np.sqrt(2.0)
    return d


def step_units(step: float) -> np.ndarray:
    """Integer steps (Y, Co, Cg) in 1/16 levels."""
    s = max(1, int(round(step * STEP_UNIT)))
    c = max(1, int(round(step * CHROMA_FACTOR * STEP_UNIT)))
    return np.array([s, c, c], np.int64)


def grid(h: int, w: int) -> tuple[int, int]:
    return -(-h // N), -(-w // N)


def _blocks(img: np.ndarray) -> np.ndarray:
    """(h, w, 3) -> (3, by, bx, 8, 8), edges replicated."""
    h, w = img.shape[:2]
    by, bx = grid(h, w)
    pad = np.pad(img, ((0, by * N - h), (0, bx * N - w), (0, 0)), mode="edge")
    return pad.reshape(by, N, bx, N, 3).transpose(4, 0, 2, 1, 3)


@functools.lru_cache(maxsize=1)
def _unzigzag() -> np.ndarray:
    return np.argsort(_zigzag())


def _separable(blocks: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """left @ block @ right for every 8x8 block of (..., 8, 8), as two plain GEMMs (batched 8x8 matmuls are slow)."""
    shape = blocks.shape
    a = (blocks.reshape(-1, N) @ right).reshape(shape)  # rows times right
    a = a.swapaxes(-1, -2).reshape(-1, N) @ left.T  # (left @ a)^T = a^T @ left^T, per block
    return a.reshape(shape).swapaxes(-1, -2)


def inverse(symbols: np.ndarray, units: np.ndarray, h: int, w: int) -> np.ndarray:
    """(3, by, bx, 64) zigzag-ordered integer symbols -> RGB residual (h, w, 3) float64, in exact arithmetic:
    the matrix products run in float64 on integers whose sums stay below 2^53 (|symbol| <= MAX_SYMBOL, step and
    matrix caps), so every product and partial sum is an exact integer, in any order, on any BLAS."""
    c, by, bx, _ = symbols.shape
    z = np.zeros((c, by, bx, N, N), np.float64)
    coded = np.nonzero(np.any(symbols != 0, axis=-1))  # at video rates most blocks code nothing: skip them
    if len(coded[0]):
        sym = symbols[coded][:, _unzigzag()].astype(np.float64) * units[coded[0]][:, None].astype(np.float64)
        t = T8.astype(np.float64)
        z[coded] = _separable(sym.reshape(-1, N, N), t.T, t)
    ycc = z / float(1 << INV_SHIFT)  # a power-of-two division: exact
    ycc = ycc.transpose(1, 3, 2, 4, 0).reshape(by * N, bx * N, c)[:h, :w]
    return from_ycocg(ycc)


def synthesize(symbols: np.ndarray, step: float, h: int, w: int) -> np.ndarray:
    return inverse(symbols, step_units(step), h, w)


def analyse(residual_rgb: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Dead-zone quantised DCT coefficients (3, by, bx, 64) in zigzag order, and the decoded RGB residual."""
    h, w = residual_rgb.shape[:2]
    q = quantise(residual_rgb, step)
    return q, inverse(q, step_units(step), h, w)


def scaled_coefficients(residual_rgb: np.ndarray, step: float) -> np.ndarray:
    """DCT coefficients (3, by, bx, 64) of an RGB residual in YCoCg, zigzag order, in units of each channel's step."""
    d = _forward_matrix()
    coef = _separable(_blocks(to_ycocg(residual_rgb.astype(np.float64))), d, d.T)
    units = step_units(step)
    c, by, bx = coef.shape[:3]
    return coef.reshape(c, by, bx, N * N)[..., _zigzag()] / (units[:, None, None, None] / STEP_UNIT)


def quantise(residual_rgb: np.ndarray, step: float, dead_zone: float = DEAD_ZONE) -> np.ndarray:
    """Dead-zone quantised DCT coefficients (3, by, bx, 64) of an RGB residual, in zigzag order."""
    return dead_zone_quantise(scaled_coefficients(residual_rgb, step), dead_zone)


def dead_zone_quantise(coef: np.ndarray, dead_zone: float) -> np.ndarray:
    q = np.sign(coef) * np.floor(np.abs(coef) + (0.5 - dead_zone))
    return np.clip(q, -MAX_SYMBOL, MAX_SYMBOL).astype(np.int32)


def _groups(arr: np.ndarray):
    """(frames, by, bx, ch, 64) -> per (band, context): a boolean mask over blocks, for luma and chroma in turn."""
    for chans in (slice(0, 1), slice(1, 3)):
        a = arr[:, :, :, chans]
        lower_nonzero = np.zeros(a.shape[:4], bool)
        for k in range(len(BANDS) - 1):
            lo, hi = BANDS[k], BANDS[k + 1]
            contexts = (lower_nonzero,) if k == 0 else (~lower_nonzero, lower_nonzero)
            yield chans, lo, hi, contexts
            lower_nonzero = lower_nonzero | np.any(a[..., lo:hi] != 0, axis=-1)


def encode_symbols(per_frame: list[np.ndarray]) -> bytes:
    if not per_frame:
        return b""
    arr = np.stack(per_frame).transpose(0, 2, 3, 1, 4)  # (frames, by, bx, 3, 64)
    out = bytearray()
    for chans, lo, hi, contexts in _groups(arr):
        band = arr[:, :, :, chans, lo:hi]
        for k, mask in enumerate(contexts):
            sel = band[mask] if len(contexts) > 1 else band
            blob = encode_ints(sel.ravel().astype(np.int64))
            out += varint(len(blob)) + blob
    return bytes(out)


def estimate_bytes(per_frame: list[np.ndarray]) -> float:
    """Coded size of ``encode_symbols`` estimated from each blob's own histogram (its i.i.d. entropy plus ~2 bytes
    of table per distinct symbol): ~20x cheaper than coding, for the encoder's search of the step."""
    if not per_frame:
        return 0.0
    arr = np.stack(per_frame).transpose(0, 2, 3, 1, 4)
    bits = 0.0
    for chans, lo, hi, contexts in _groups(arr):
        band = arr[:, :, :, chans, lo:hi]
        for mask in contexts:
            bits += group_bits((band[mask] if len(contexts) > 1 else band).ravel())
    return bits / 8.0


def group_bits(sel: np.ndarray) -> float:
    """Estimated coded bits of one group of symbols: its empirical entropy plus its frequency table (an empty
    group still costs a header byte)."""
    if sel.size == 0:
        return 8.0
    counts = np.bincount(sel.astype(np.int64) + MAX_SYMBOL)
    counts = counts[counts > 0]
    return float(-(counts * np.log2(counts / sel.size)).sum()) + 16 * (len(counts) + 1)


def decode_symbols(data: bytes, frames: int, h: int, w: int) -> list[np.ndarray]:
    by, bx = grid(h, w)
    if frames == 0:
        if data:
            raise FormatError("residual section has trailing bytes")
        return []
    arr = np.zeros((frames, by, bx, 3, N * N), np.int32)
    pos = 0
    for chans, lo, hi, contexts in _groups(arr):  # contexts are computed from the bands decoded so far
        view = arr[:, :, :, chans, lo:hi]
        for mask in contexts:
            n, pos = read_varint(data, pos, "residual section is truncated or has a bad length", 5)
            if pos + n > len(data):
                raise FormatError("residual section is truncated")
            shape = (int(mask.sum()),) + view.shape[4:] if len(contexts) > 1 else view.shape
            vals = decode_ints(data[pos:pos + n], int(np.prod(shape))).reshape(shape)
            pos += n
            if np.abs(vals).max(initial=0) > MAX_SYMBOL:
                raise FormatError("residual symbol out of range")
            if len(contexts) > 1:
                view[mask] = vals
            else:
                view[...] = vals
        arr[:, :, :, chans, lo:hi] = view
    if pos != len(data):
        raise FormatError("residual section has trailing bytes")
    return list(arr.transpose(0, 3, 1, 2, 4))
