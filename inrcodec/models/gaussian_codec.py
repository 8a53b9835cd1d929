"""Bitstream of a 2D Gaussian image (``--model gaussian``): quantisation and entropy coding of a set of Gaussians.

What is coded per Gaussian, and why that parametrisation:

* **Position** on a lattice of step ``2**(k/8)`` px over ``[0, W] x [0, H]``. Within a layer the Gaussians are
  sorted by lattice index (row-major) and only the gaps between consecutive indices are coded: for points spread
  with density lambda a gap costs about ``log2(1 / lambda) + 1.44`` bits, the entropy of the point set, instead of
  ``log2(H W)`` bits per coordinate pair. A gap is split into its bit length (entropy-coded, categorical) and the
  bits below the leading one (stored raw: nearly uniform).
* **Shape** as the matrix logarithm of the covariance, ``log Sigma = [[v0 + v1, v2], [v2, v0 - v1]]``:
  ``v0 = log sqrt(det Sigma)`` (log size) and ``(v1, v2) = r (cos 2 theta, sin 2 theta)`` with ``r`` half the log
  aspect ratio. Uniform steps on these are relative steps on the size, and the angle's precision grows with the
  elongation by itself (a round Gaussian spends nothing on an angle it does not have), unlike uniform steps on the
  Cholesky factor.
* **Colour** in an orthonormal decorrelating basis (luma + two chroma axes for 3 channels, identity otherwise):
  with an orthonormal basis, equal steps on the coded axes give equal squared error per axis, the MSE-optimal
  allocation at high rate, while the low-variance chroma axes cost fewer bits by themselves.

Progressive order: the Gaussians are split into importance layers (energy ``|c|^2 pi sqrt(det Sigma)``, the
squared error their removal adds at an optimum of the colours) and each layer is an independent chunk, so a
decoder that reads only the first chunks still has a complete, coarser image. A partial layer is completed by
the decoder's own ranking of the decoded Gaussians by the same energy.

Section layout (integers are LEB128 varints)::

    form 2 only: byte 0, varint form (2)       (form 1 starts directly with L >= 1)
    varint L (layers, 1..MAX_LAYERS), L x varint count
    1 + 1 + 3 + C bytes: int8 step codes k (step = 2**(k/8)): position, refinement, v0, v1, v2, colour axes
    L x varint chunk length, then the chunks.
    form 1 chunk: (varint length + blob) for: gap bit lengths, raw gap bits, v0, colour axis 0..C-1, v1, v2
      (blobs of ``entropy.encode_ints``), raw refinement bits
    form 2 chunk: (varint length + bytes) for raw gap bits, raw refinement bits, then one ``entropy.groups``
      stream to the end of the chunk: gap bit lengths, v0, then per colour axis its two groups (v0 at most /
      above the layer's median v0 symbol), v1, v2 (see "form 2" below)

Form 1 is what files written before 2026-12-05 hold; it still decodes, and ``encode_section(form=1)`` writes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..entropy import decode_ints, encode_ints
from ..entropy._bytes import Reader, varint
from ..entropy.groups import GroupReader, GroupWriter
from ..errors import FormatError, InputError

STEP_DENOM = 8  # step = 2 ** (code / STEP_DENOM)
MAX_LAYERS = 16
MAX_GAUSSIANS = 1 << 22
GAUSSIANS_PER_PIXEL = 4  # decode refuses more Gaussians than this per pixel (at least 2**16 in all)
# A coded Gaussian costs bits: measured 20-288 bits each on Kodak crops from 0.03 to 2 bpp. Constant entropy-coded
# streams let a 130-byte section claim millions of identical Gaussians (a rendering bomb), so a section must spend
# at least 2 bits per Gaussian (10x below the cheapest real file); the first FREE_GAUSSIANS are free.
GAUSSIANS_PER_BYTE = 4
FREE_GAUSSIANS = 64
POS_CODE_MIN = -8 * STEP_DENOM  # positions never finer than 1/256 px (keeps lattice indices far inside int64)
SHAPE_CLAMP = 12.0  # |v| bound (sizes e^-12..e^12 px, aspect ratios up to e^24): keeps exp() finite
COLOR_CLAMP = 16.0  # |colour| bound (64x C_REF; fitted colours stay within ~2): a degenerate fit's colours
# (a near-singular least-squares solve, e.g. after a handful of steps) must still quantise to int32 symbols
_F64 = torch.float64


# ---------------------------------------------------------------------------------------------------------------
# parametrisation
# ---------------------------------------------------------------------------------------------------------------
def chol_to_logcov(chol: torch.Tensor, min_det: float = 1e-12) -> torch.Tensor:
    """(N, 3) Cholesky factors (l11, l21, l22) -> (N, 3) log-covariance coordinates (v0, v1, v2). Differentiable;
    computed in float64 (needles make the eigenvalue ratio extreme)."""
    c = chol.to(_F64)
    l11, l21, l22 = c.unbind(1)
    p = l11 * l11
    q = l11 * l21
    s = l21 * l21 + l22 * l22
    det = (l11 * l22) ** 2 + min_det
    t = 0.5 * (p + s) + 1e-30
    h = 0.5 * (p - s)
    d = torch.sqrt(h * h + q * q + 1e-300)
    x = torch.clamp(d / t, max=1.0 - 1e-15)
    # atanh(x)/x, with its series near 0 (round Gaussians)
    f = torch.where(x < 1e-4, 1.0 + x * x / 3.0, torch.atanh(x) / x.clamp_min(1e-4))
    v0 = 0.5 * torch.log(det)
    return torch.stack([v0, h * f / t, q * f / t], 1).to(chol.dtype)


def logcov_to_chol(v: torch.Tensor) -> torch.Tensor:
    """Inverse of ``chol_to_logcov``: (v0, v1, v2) -> Cholesky factor with l11 > 0, l22 > 0. Differentiable."""
    w = torch.clamp(v.to(_F64), -SHAPE_CLAMP, SHAPE_CLAMP)
    v0, v1, v2 = w.unbind(1)
    r = torch.sqrt(v1 * v1 + v2 * v2 + 1e-300)
    shr = torch.where(r < 1e-4, 1.0 + r * r / 6.0, torch.sinh(r) / r.clamp_min(1e-4))  # sinh(r)/r
    e = torch.exp(v0)
    sxx = e * (torch.cosh(r) + v1 * shr)
    sxy = e * v2 * shr
    l11 = torch.sqrt(sxx.clamp_min(1e-300))
    l21 = sxy / l11
    l22 = e / l11  # det Sigma = e^(2 v0)
    return torch.stack([l11, l21, l22], 1).to(v.dtype)


def color_basis(channels: int) -> np.ndarray:
    """Orthonormal (C, C) matrix M: coded = colours @ M.T, colours = coded @ M."""
    if channels == 3:
        return np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=np.float64) / np.sqrt([[3.0], [2.0], [6.0]])
    return np.eye(channels)


def energy(chol: np.ndarray | torch.Tensor, colors: np.ndarray | torch.Tensor) -> np.ndarray:
    """|c|^2 * pi * sqrt(det Sigma) per Gaussian: the squared error its removal adds when colours are optimal."""
    chol = np.asarray(chol.detach() if isinstance(chol, torch.Tensor) else chol, dtype=np.float64)
    colors = np.asarray(colors.detach() if isinstance(colors, torch.Tensor) else colors, dtype=np.float64)
    return np.sum(colors**2, axis=1) * np.pi * np.abs(chol[:, 0] * chol[:, 2])


def layer_sizes(n: int, layers: int) -> list[int]:
    """Split n Gaussians into importance layers that double in size (1, 1, 2, 4 ... parts), e.g. 3 -> n/4, n/4, n/2."""
    layers = max(1, min(int(layers), MAX_LAYERS))
    parts = [1] + [2 ** max(i - 1, 0) for i in range(1, layers)]
    total = sum(parts)
    bounds = [round(n * sum(parts[: i + 1]) / total) for i in range(layers)]
    return [b - a for a, b in zip([0] + bounds[:-1], bounds)]


# ---------------------------------------------------------------------------------------------------------------
# quantisation
# ---------------------------------------------------------------------------------------------------------------
# -- IEEE-exact rules -------------------------------------------------------------------------------------------
# Every number the decoder derives a quantisation step from is computed with correctly rounded IEEE operations
# (+ - * / sqrt, exact scalings by powers of two, comparisons) in a fixed order, never with libm or BLAS, whose
# last bits differ between CPUs and library versions: a step that differed by one ulp on another machine could
# flip a rounding decision and desynchronise everything decoded after it. The constants below are the values
# format-version-1 files were written with (this machine's libm gives exactly these; tests/test_exact.py derives
# them again by exact integer arithmetic), so existing files decode as before.
_POW2_EIGHTHS = np.array([float.fromhex(h) for h in (
    "0x1.0000000000000p+0", "0x1.172b83c7d517bp+0", "0x1.306fe0a31b715p+0", "0x1.4bfdad5362a27p+0",
    "0x1.6a09e667f3bcdp+0", "0x1.8ace5422aa0dbp+0", "0x1.ae89f995ad3adp+0", "0x1.d5818dcfba487p+0")])  # 2**(j/8)
_TWO_LN2 = float.fromhex("0x1.62e42fefa39efp+0")  # 2 ln 2
_TWO_LN3 = float.fromhex("0x1.193ea7aad030bp+1")  # 2 ln 3
_SQRT_HALF_UP = float.fromhex("0x1.6a09e667f3bcdp-1")  # smallest double >= sqrt(1/2)
_INV_LN2_X2 = float.fromhex("0x1.71547652b82fep+1")  # 2 / ln 2
_ATANH_TERMS = tuple(1.0 / (2 * k + 1) for k in range(12))  # 1/(2k+1), correctly rounded divisions


def code_to_step(code: int | np.ndarray) -> np.ndarray:
    """2**(code/8) for integer codes: a table entry scaled by an exact power of two."""
    c = np.asarray(code)
    if c.dtype.kind == "f":
        c = c.astype(np.int64)  # multiplier codes arrive as integral floats (np.floor)
    c = c.astype(np.int64)
    return np.ldexp(_POW2_EIGHTHS[c % STEP_DENOM], (c // STEP_DENOM).astype(np.int32))


def exact_log2(x: np.ndarray) -> np.ndarray:
    """log2 of positive finite doubles from IEEE basic operations only (frexp, +, -, *, /) in a fixed order: the
    same bits on every machine (np.log2 uses libm or SIMD code that differs in the last bit). Error < 2 ulp:
    x = m 2**e with m in [sqrt(1/2), sqrt(2)), log2 m = (2 / ln 2) atanh(s), s = (m - 1) / (m + 1), |s| < 0.172,
    by its series (12 terms: the remainder is below 2**-60)."""
    m, e = np.frexp(np.asarray(x, dtype=np.float64))
    low = m < _SQRT_HALF_UP
    m = np.where(low, m * 2.0, m)
    e = np.where(low, e - 1, e).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    acc = np.full_like(s, _ATANH_TERMS[-1])
    for t in _ATANH_TERMS[-2::-1]:
        acc = acc * s2 + t
    return e + _INV_LN2_X2 * (s * acc)


def round_log2(x: np.ndarray) -> np.ndarray:
    """floor(log2(x) + 1/2) exactly, for positive finite doubles: x = m 2**e, m in [1/2, 1); the answer is e if
    m >= sqrt(1/2), else e - 1 (sqrt(1/2) is irrational, so comparing m with the double just above it is exact)."""
    m, e = np.frexp(np.asarray(x, dtype=np.float64))
    return np.where(m >= _SQRT_HALF_UP, e, e - 1).astype(np.int64)


def color_norm(colors: np.ndarray) -> np.ndarray:
    """sqrt(c0^2 + c1^2 + ...) summed left to right (the order np.sum used for these short rows)."""
    acc = colors[:, 0] * colors[:, 0]
    for j in range(1, colors.shape[1]):
        acc = acc + colors[:, j] * colors[:, j]
    return np.sqrt(acc)


def basis_product(values: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """values @ basis with products summed left to right (a BLAS matmul may fuse multiply-adds or reorder)."""
    out = np.empty((values.shape[0], basis.shape[1]), dtype=np.float64)
    for i in range(basis.shape[1]):
        acc = values[:, 0] * basis[0, i]
        for j in range(1, basis.shape[0]):
            acc = acc + values[:, j] * basis[j, i]
        out[:, i] = acc
    return out


def step_to_code(step: float | np.ndarray) -> np.ndarray:
    return np.clip(np.rint(STEP_DENOM * np.log2(np.asarray(step, dtype=np.float64))), -128, 127).astype(np.int64)


@dataclass
class Steps:
    """Step codes (step = 2**(code/8)): position lattice, position refinement bits at the reference colour,
    shape (v0, v1, v2) and colour axes (C), the last two at the reference size / colour (see ``multipliers``)."""

    pos: int
    refine: int
    shape: tuple[int, int, int]
    color: tuple[int, ...]

    def codes(self) -> np.ndarray:
        return np.array([self.pos, self.refine, *self.shape, *self.color], dtype=np.int64)

    @classmethod
    def from_codes(cls, codes) -> "Steps":
        c = [int(x) for x in codes]
        return cls(c[0], c[1], (c[2], c[3], c[4]), tuple(c[5:]))

    def shifted(self, delta: float) -> "Steps":
        """All steps multiplied by 2**(delta/STEP_DENOM) (coarser for delta > 0)."""
        d = int(round(delta))
        clip = lambda c: int(np.clip(c + d, -128, 127))  # noqa: E731
        return Steps(max(clip(self.pos), POS_CODE_MIN), self.refine, tuple(clip(c) for c in self.shape),
                     tuple(clip(c) for c in self.color))


N_STEP_CODES = 5  # + C colour codes


def lattice(height: int, width: int, pos_step: float) -> tuple[int, int]:
    return int(math.floor(width / pos_step)) + 1, int(math.floor(height / pos_step)) + 1


# Importance-adaptive precision. To first order, the squared error a small change adds to an image is, for a
# Gaussian of colour c and size s^2 = sqrt(det Sigma): ~pi s^2 |dc|^2 for its colour, ~pi |c|^2 s^2 |dv|^2 / 2
# for its log-covariance, ~pi |c|^2 |dmu|^2 / 2 for its position (independent of size). The MSE-optimal uniform
# step of each attribute is then proportional to 1 / sqrt(sensitivity): colours get steps ~ 1 / s, the
# anisotropy ~ 1 / (|c| s), positions ~ 1 / |c|. Decoding follows the dependency order: v0 (plain uniform
# step), then colours (step from v0), then v1, v2 and the positions' refinement bits (from v0 and colour).
# The multipliers are whole 1/8 octaves of the reference steps, clipped to a range.
V0_REF = _TWO_LN3  # reference size: s = 3 px (2 ln 3)
C_REF = 0.25  # reference |colour| (RGB norm on the normalised [0, 1] scale)
MULT_RANGE = (-24, 32)  # multiplier exponents in 1/8 octaves: 1/8x .. 16x the reference step
MAX_REFINE = 6  # position refinement bits per axis


def _eighths(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x * STEP_DENOM + 0.5), *MULT_RANGE)


A_COL, A_SHAPE_S, A_SHAPE_C, A_POS = 1.0, 1.0, 1.0, 1.0


def color_multiplier(v0: np.ndarray) -> np.ndarray:
    """Colour step multiplier exponent (1/8 octaves) from the decoded log size v0."""
    return _eighths(-A_COL * (v0 - V0_REF) / _TWO_LN2)


def shape_multiplier(v0: np.ndarray, colors: np.ndarray) -> np.ndarray:
    norm = color_norm(colors) + 1e-6
    return _eighths(-A_SHAPE_S * (v0 - V0_REF) / _TWO_LN2 + A_SHAPE_C * exact_log2(C_REF / norm))


def refine_bits(colors: np.ndarray, refine: int) -> np.ndarray:
    norm = color_norm(colors) + 1e-6  # A_POS = 1: floor(log2(norm / C_REF) + 1/2), decided exactly
    return np.clip(refine + round_log2(norm / C_REF), 0, MAX_REFINE).astype(np.int64)


@dataclass
class QuantizedGaussians:
    index: np.ndarray  # (N,) int64 lattice cell index cy * nx + cx
    refine: np.ndarray  # (N, 2) int64 refinement within the cell (x, y), refine_bits each
    shape: np.ndarray  # (N, 3) int64
    color: np.ndarray  # (N, C) int64 (coded axes)

    def select(self, idx) -> "QuantizedGaussians":
        return QuantizedGaussians(self.index[idx], self.refine[idx], self.shape[idx], self.color[idx])


def _dequantize_v0(qv0: np.ndarray, steps: Steps) -> np.ndarray:
    return qv0 * code_to_step(steps.shape[0])


def _color_steps(v0: np.ndarray, steps: Steps) -> np.ndarray:
    return code_to_step(np.asarray(steps.color)[None, :] + color_multiplier(v0)[:, None])


def _aniso_steps(v0: np.ndarray, colors: np.ndarray, steps: Steps) -> np.ndarray:
    return code_to_step(np.asarray(steps.shape[1:])[None, :] + shape_multiplier(v0, colors)[:, None])


def quantize(means: np.ndarray, logcov: np.ndarray, colors: np.ndarray, steps: Steps, height: int,
             width: int) -> QuantizedGaussians:
    """Round a set of Gaussians onto the coded grid, attribute by attribute in decoding order (each step may
    depend on what was already rounded)."""
    basis = color_basis(colors.shape[1])
    v = np.clip(np.asarray(logcov, dtype=np.float64), -SHAPE_CLAMP, SHAPE_CLAMP)
    qv0 = np.rint(v[:, 0] / code_to_step(steps.shape[0])).astype(np.int64)
    v0 = _dequantize_v0(qv0, steps)
    cstep = _color_steps(v0, steps)
    colors = np.clip(np.nan_to_num(np.asarray(colors, dtype=np.float64)), -COLOR_CLAMP, COLOR_CLAMP)
    qc = np.rint(basis_product(colors, basis.T) / cstep).astype(np.int64)
    chat = basis_product(qc * cstep, basis)
    qa = np.rint(v[:, 1:] / _aniso_steps(v0, chat, steps)).astype(np.int64)
    sp = float(code_to_step(steps.pos))
    nx, ny = lattice(height, width, sp)
    m = np.asarray(means, dtype=np.float64) / sp
    fx = np.clip(m[:, 0], 0, nx - 1e-9)
    fy = np.clip(m[:, 1], 0, ny - 1e-9)
    cx, cy = np.floor(fx), np.floor(fy)
    k = refine_bits(chat, steps.refine)
    scale = np.left_shift(1, k).astype(np.float64)
    rx = np.clip(np.floor((fx - cx) * scale), 0, scale - 1).astype(np.int64)
    ry = np.clip(np.floor((fy - cy) * scale), 0, scale - 1).astype(np.int64)
    return QuantizedGaussians(cy.astype(np.int64) * nx + cx.astype(np.int64), np.stack([rx, ry], 1),
                              np.concatenate([qv0[:, None], qa], 1), qc)


def dequantize(q: QuantizedGaussians, steps: Steps, height: int, width: int) -> tuple[np.ndarray, ...]:
    """-> means (N, 2), logcov (N, 3), colours (N, C), all float64."""
    basis = color_basis(q.color.shape[1])
    v0 = _dequantize_v0(q.shape[:, 0], steps)
    colors = basis_product(q.color * _color_steps(v0, steps), basis)
    aniso = q.shape[:, 1:] * _aniso_steps(v0, colors, steps)
    sp = float(code_to_step(steps.pos))
    nx, _ = lattice(height, width, sp)
    scale = np.left_shift(1, refine_bits(colors, steps.refine)).astype(np.float64)
    x = (q.index % nx) + (q.refine[:, 0] + 0.5) / scale
    y = (q.index // nx) + (q.refine[:, 1] + 0.5) / scale
    return np.stack([x * sp, y * sp], 1), np.concatenate([v0[:, None], aniso], 1), colors


# ---------------------------------------------------------------------------------------------------------------
# gap coding
# ---------------------------------------------------------------------------------------------------------------
def _pack_bits(values: np.ndarray, widths: np.ndarray) -> bytes:
    """Concatenate the low ``widths[i]`` bits of each value (LSB first) into bytes."""
    total = int(widths.sum())
    if not total:
        return b""
    owner = np.repeat(np.arange(values.size), widths)
    offset = np.arange(total) - np.repeat(np.cumsum(widths) - widths, widths)
    return np.packbits(((values[owner] >> offset) & 1).astype(np.uint8), bitorder="little").tobytes()


def _unpack_bits(raw: bytes, widths: np.ndarray, what: str) -> np.ndarray:
    total = int(widths.sum())
    if len(raw) != (total + 7) // 8:
        raise FormatError(f"gaussians: {what} have the wrong length")
    out = np.zeros(widths.size, dtype=np.int64)
    if total:
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")[:total].astype(np.int64)
        owner = np.repeat(np.arange(widths.size), widths)
        offset = np.arange(total) - np.repeat(np.cumsum(widths) - widths, widths)
        np.add.at(out, owner, bits << offset)
    return out


def _bit_length(g: np.ndarray) -> np.ndarray:
    return np.where(g > 0, np.frexp(g.astype(np.float64))[1], 0).astype(np.int64)


def _encode_gaps(gaps: np.ndarray) -> tuple[bytes, bytes]:
    b = _bit_length(gaps)
    w = np.maximum(b - 1, 0)
    mant = gaps - np.where(b > 0, np.left_shift(1, w), 0)
    return encode_ints(b), _pack_bits(mant, w)


def _decode_gaps(blens: bytes, raw: bytes, n: int) -> np.ndarray:
    b = decode_ints(blens, n).astype(np.int64)
    if n and (b.min() < 0 or b.max() > 62):
        raise FormatError("gaussian positions: invalid gap length")
    w = np.maximum(b - 1, 0)
    return _unpack_bits(raw, w, "raw gap bits") + np.where(b > 0, np.left_shift(1, w), 0)


# ---------------------------------------------------------------------------------------------------------------
# section
# ---------------------------------------------------------------------------------------------------------------
def _blob(b: bytes) -> bytes:
    return varint(len(b)) + b


def _encode_chunk(q: QuantizedGaussians, steps: Steps) -> bytes:
    q = q.select(np.argsort(q.index, kind="stable"))
    blens, raw = _encode_gaps(np.diff(q.index, prepend=0))
    parts = [blens, raw, encode_ints(q.shape[:, 0])]
    parts += [encode_ints(q.color[:, j]) for j in range(q.color.shape[1])]
    parts += [encode_ints(q.shape[:, 1]), encode_ints(q.shape[:, 2])]
    v0 = _dequantize_v0(q.shape[:, 0], steps)
    k = refine_bits(basis_product(q.color * _color_steps(v0, steps), color_basis(q.color.shape[1])), steps.refine)
    parts.append(_pack_bits(q.refine.reshape(-1), np.repeat(k, 2)))
    return b"".join(_blob(p) for p in parts)


def _decode_chunk(chunk: bytes, n: int, channels: int, lattice_size: int, steps: Steps) -> QuantizedGaussians:
    rd = Reader(chunk, "gaussian layer")
    parts = [rd.take(rd.varint(cap=len(chunk), name="blob length")) for _ in range(6 + channels)]
    rd.expect_end()
    index = np.cumsum(_decode_gaps(parts[0], parts[1], n))
    if n and index[-1] >= lattice_size:
        raise FormatError("gaussian positions outside the image")
    qv0 = decode_ints(parts[2], n).astype(np.int64)
    color = np.stack([decode_ints(parts[3 + j], n).astype(np.int64) for j in range(channels)], 1).reshape(n, channels)
    aniso = [decode_ints(parts[3 + channels + j], n).astype(np.int64) for j in range(2)]
    v0 = _dequantize_v0(qv0, steps)
    k = refine_bits(basis_product(color * _color_steps(v0, steps), color_basis(channels)), steps.refine)
    refine = _unpack_bits(parts[5 + channels], np.repeat(k, 2), "position refinement bits").reshape(n, 2)
    return QuantizedGaussians(index, refine, np.stack([qv0, *aniso], 1).reshape(n, 3), color)


# -- form 2: context-coded attributes in one stream per layer ----------------------------------------------------
# Measured on 16 Kodak fits (benchmarks/README.md, results/gaussian_bits): given its importance layer, a
# Gaussian's attributes are nearly independent (ideal conditional entropies with free tables save <= 5 % of a
# stream, and a context's own table eats most of that), so form 2 keeps the attribute streams and adds only what
# paid on average: each colour axis split in two by the log size v0 (below / above the layer's median: -0.44 % of
# the section, from -1.2 % to +0.4 % per file; finer splits, |luma| contexts for chroma, v1 | v0, v2 | |v1| and
# gap | previous gap saved less or cost more in tables than they saved), and all entropy-coded groups of a layer
# in one ANS stream (``entropy.groups``), so a group costs its model header only, not a blob of its own.
FORM_LEGACY, FORM_CONTEXT = 1, 2
FORM = FORM_CONTEXT  # what encode_section writes
_FORM_MARK = 0  # a form-2+ section starts with byte 0 (a form-1 section starts with its layer count, >= 1)
ALPHABET_BUDGET = (1 << 16, 64)  # a layer's tables may hold at most 2**16 + 64 * count entries (reader's bound)


COLOR_CONTEXTS = 2
CONTEXT_MIN = 256  # smaller layers code each colour axis as one group: a second table costs more than it saves


def _size_half(qv0: np.ndarray) -> np.ndarray:
    """Colour context: 1 where the log size symbol is above the layer's median symbol (an exact integer), else 0;
    all 0 in a layer of fewer than CONTEXT_MIN Gaussians."""
    if qv0.size < CONTEXT_MIN:
        return np.zeros(qv0.size, dtype=np.int64)
    return (qv0 > np.sort(qv0)[qv0.size // 2]).astype(np.int64)


def _encode_chunk_ctx(q: QuantizedGaussians, steps: Steps) -> bytes:
    q = q.select(np.argsort(q.index, kind="stable"))
    g = np.diff(q.index, prepend=0)
    b = _bit_length(g)
    w = np.maximum(b - 1, 0)
    raw = _pack_bits(g - np.where(b > 0, np.left_shift(1, w), 0), w)
    st = GroupWriter()
    st.add(b)
    st.add(q.shape[:, 0])
    ctx = _size_half(q.shape[:, 0])
    for j in range(q.color.shape[1]):
        for k in range(COLOR_CONTEXTS):
            st.add(q.color[ctx == k, j])
    st.add(q.shape[:, 1])
    st.add(q.shape[:, 2])
    if st.alphabet > ALPHABET_BUDGET[0] + ALPHABET_BUDGET[1] * len(g):
        raise InputError("gaussian layer: alphabets beyond the decoder's budget")
    v0 = _dequantize_v0(q.shape[:, 0], steps)
    k = refine_bits(basis_product(q.color * _color_steps(v0, steps), color_basis(q.color.shape[1])), steps.refine)
    return _blob(raw) + _blob(_pack_bits(q.refine.reshape(-1), np.repeat(k, 2))) + st.finish()


def _decode_chunk_ctx(chunk: bytes, n: int, channels: int, lattice_size: int, steps: Steps) -> QuantizedGaussians:
    rd = Reader(chunk, "gaussian layer")
    raw = rd.take(rd.varint(cap=len(chunk), name="blob length"))
    refine_raw = rd.take(rd.varint(cap=len(chunk), name="blob length"))
    st = GroupReader(rd.rest(), ALPHABET_BUDGET[0] + ALPHABET_BUDGET[1] * n, "gaussian layer")
    b = st.take(n).astype(np.int64)
    if n and (b.min() < 0 or b.max() > 62):
        raise FormatError("gaussian positions: invalid gap length")
    w = np.maximum(b - 1, 0)
    index = np.cumsum(_unpack_bits(raw, w, "raw gap bits") + np.where(b > 0, np.left_shift(1, w), 0))
    if n and index[-1] >= lattice_size:
        raise FormatError("gaussian positions outside the image")
    qv0 = st.take(n).astype(np.int64)
    color = np.zeros((n, channels), dtype=np.int64)
    ctx = _size_half(qv0)
    for j in range(channels):
        for k in range(COLOR_CONTEXTS):
            sel = ctx == k
            color[sel, j] = st.take(int(sel.sum()))
    aniso = [st.take(n).astype(np.int64) for _ in range(2)]
    st.finish()
    v0 = _dequantize_v0(qv0, steps)
    k = refine_bits(basis_product(color * _color_steps(v0, steps), color_basis(channels)), steps.refine)
    refine = _unpack_bits(refine_raw, np.repeat(k, 2), "position refinement bits").reshape(n, 2)
    return QuantizedGaussians(index, refine, np.stack([qv0, *aniso], 1).reshape(n, 3), color)


CHUNK_ENCODERS = {FORM_LEGACY: _encode_chunk, FORM_CONTEXT: _encode_chunk_ctx}


def encode_section(q: QuantizedGaussians, layer_of: np.ndarray, layers: int, steps: Steps,
                   form: int | None = None) -> bytes:
    """Code quantised Gaussians; ``layer_of[i]`` in [0, layers) is the importance layer of Gaussian i. ``form``:
    FORM_CONTEXT (default) or FORM_LEGACY (the form-1 layout, which every reader decodes)."""
    form = FORM if form is None else form
    if form not in (FORM_LEGACY, FORM_CONTEXT):
        raise InputError(f"unknown gaussian section form {form}")
    if form == FORM_CONTEXT:
        try:
            return bytes([_FORM_MARK]) + varint(FORM_CONTEXT) + _encode_layers(q, layer_of, layers, steps,
                                                                               _encode_chunk_ctx)
        except InputError:  # a layer's alphabets beyond the reader's budget: never on real fits
            pass
    return _encode_layers(q, layer_of, layers, steps, _encode_chunk)


def _encode_layers(q: QuantizedGaussians, layer_of: np.ndarray, layers: int, steps: Steps, encode_chunk) -> bytes:
    out = bytearray(varint(layers))
    chunks = []
    for layer in range(layers):
        sel = np.flatnonzero(layer_of == layer)
        out += varint(sel.size)
        chunks.append(encode_chunk(q.select(sel), steps))
    out += (steps.codes().astype(np.int8)).tobytes()
    for ch in chunks:
        out += varint(len(ch))
    for ch in chunks:
        out += ch
    return bytes(out)


def decode_section(blob: bytes, height: int, width: int, channels: int,
                   max_layers: int | None = None) -> tuple[QuantizedGaussians, np.ndarray, Steps, list[int]]:
    """-> (quantised Gaussians of the first ``max_layers`` layers, their layer ids, steps, all layer counts)."""
    rd = Reader(blob, "gaussians section")
    decode_chunk = _decode_chunk
    if len(blob) and blob[0] == _FORM_MARK:
        rd.byte()
        form = rd.varint(cap=255, name="section form")
        if form != FORM_CONTEXT:
            raise FormatError(f"gaussians section: unknown form {form} (this inrcodec reads forms 1 and 2)")
        decode_chunk = _decode_chunk_ctx
    layers = rd.varint(cap=MAX_LAYERS, name="layer count")
    if layers < 1:
        raise FormatError("gaussians section: no layers")
    counts = [rd.varint(cap=MAX_GAUSSIANS, name="gaussian count") for _ in range(layers)]
    if sum(counts) > min(MAX_GAUSSIANS, max(GAUSSIANS_PER_PIXEL * height * width, 1 << 16)):
        # encoders place at most one Gaussian per pixel by default; 4 per pixel is already no image model
        raise FormatError(f"gaussians section: {sum(counts)} gaussians for {height}x{width} pixels")
    if sum(counts) > max(FREE_GAUSSIANS, GAUSSIANS_PER_BYTE * len(blob)):
        raise FormatError(f"gaussians section: {sum(counts)} gaussians in {len(blob)} bytes (under 2 bits each): "
                          "it is corrupt or hostile")
    codes = np.frombuffer(rd.take(N_STEP_CODES + channels), dtype=np.int8).astype(np.int64)
    steps = Steps.from_codes(codes)
    if codes[0] < POS_CODE_MIN or not 0 <= codes[1] <= MAX_REFINE:
        raise FormatError("gaussians section: invalid position precision")
    lengths = [rd.varint(cap=1 << 31, name="layer length") for _ in range(layers)]  # checked when taken
    nx, ny = lattice(height, width, float(code_to_step(steps.pos)))
    use = layers if max_layers is None else max(0, min(int(max_layers), layers))
    parts, ids = [], []
    for layer in range(use):  # later layers are not even read: a prefix of the section is enough
        parts.append(decode_chunk(rd.take(lengths[layer]), counts[layer], channels, nx * ny, steps))
        ids.append(np.full(counts[layer], layer, dtype=np.int64))
    if use == layers:
        rd.expect_end()
    if not parts:
        empty = QuantizedGaussians(np.zeros(0, np.int64), np.zeros((0, 2), np.int64), np.zeros((0, 3), np.int64),
                                   np.zeros((0, channels), np.int64))
        return empty, np.zeros(0, np.int64), steps, counts
    q = QuantizedGaussians(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("index", "refine", "shape",
                                                                                    "color")))
    return q, np.concatenate(ids), steps, counts
