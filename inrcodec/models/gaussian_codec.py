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

    varint L (layers, 1..MAX_LAYERS), L x varint count
    1 + 3 + C bytes: int8 step codes k (step = 2**(k/8)): position, v0, v1, v2, colour axes
    L x varint chunk length, then the chunks; a chunk holds (varint length + blob) for: gap bit lengths,
    raw gap bits, v0, v1, v2, colour axis 0..C-1 (blobs of ``entropy.encode_ints``)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..entropy import decode_ints, encode_ints
from ..entropy._bytes import Reader, varint
from ..errors import FormatError

STEP_DENOM = 8  # step = 2 ** (code / STEP_DENOM)
MAX_LAYERS = 16
MAX_GAUSSIANS = 1 << 22
POS_CODE_MIN = -8 * STEP_DENOM  # positions never finer than 1/256 px (keeps lattice indices far inside int64)
SHAPE_CLAMP = 12.0  # |v| bound (sizes e^-12..e^12 px, aspect ratios up to e^24): keeps exp() finite
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
def code_to_step(code: int | np.ndarray) -> np.ndarray:
    return np.power(2.0, np.asarray(code, dtype=np.float64) / STEP_DENOM)


def step_to_code(step: float | np.ndarray) -> np.ndarray:
    return np.clip(np.rint(STEP_DENOM * np.log2(np.asarray(step, dtype=np.float64))), -128, 127).astype(np.int64)


@dataclass
class Steps:
    """Step codes: position (1), shape (3: v0, v1, v2), colour axes (C)."""

    pos: int
    shape: tuple[int, int, int]
    color: tuple[int, ...]

    def codes(self) -> np.ndarray:
        return np.array([self.pos, *self.shape, *self.color], dtype=np.int64)

    @classmethod
    def from_codes(cls, codes) -> "Steps":
        c = [int(x) for x in codes]
        return cls(max(c[0], POS_CODE_MIN), (c[1], c[2], c[3]), tuple(c[4:]))

    def shifted(self, delta: float) -> "Steps":
        """All steps multiplied by 2**(delta/STEP_DENOM) (coarser for delta > 0)."""
        d = int(round(delta))
        clip = lambda c: int(np.clip(c + d, -128, 127))  # noqa: E731
        return Steps(max(clip(self.pos), POS_CODE_MIN), tuple(clip(c) for c in self.shape),
                     tuple(clip(c) for c in self.color))


def lattice(height: int, width: int, pos_step: float) -> tuple[int, int]:
    return int(math.floor(width / pos_step)) + 1, int(math.floor(height / pos_step)) + 1


@dataclass
class QuantizedGaussians:
    index: np.ndarray  # (N,) int64 lattice index qy * nx + qx
    shape: np.ndarray  # (N, 3) int64
    color: np.ndarray  # (N, C) int64 (coded axes)


def quantize(means: np.ndarray, logcov: np.ndarray, colors: np.ndarray, steps: Steps, height: int,
             width: int) -> QuantizedGaussians:
    sp = float(code_to_step(steps.pos))
    nx, ny = lattice(height, width, sp)
    m = np.asarray(means, dtype=np.float64)
    qx = np.clip(np.rint(m[:, 0] / sp), 0, nx - 1).astype(np.int64)
    qy = np.clip(np.rint(m[:, 1] / sp), 0, ny - 1).astype(np.int64)
    v = np.clip(np.asarray(logcov, dtype=np.float64), -SHAPE_CLAMP, SHAPE_CLAMP)
    qs = np.rint(v / code_to_step(steps.shape)[None]).astype(np.int64)
    coded = np.asarray(colors, dtype=np.float64) @ color_basis(colors.shape[1]).T
    qc = np.rint(coded / code_to_step(steps.color)[None]).astype(np.int64)
    return QuantizedGaussians(qy * nx + qx, qs, qc)


def dequantize(q: QuantizedGaussians, steps: Steps, height: int, width: int) -> tuple[np.ndarray, ...]:
    """-> means (N, 2), logcov (N, 3), colours (N, C), all float64."""
    sp = float(code_to_step(steps.pos))
    nx, _ = lattice(height, width, sp)
    means = np.stack([(q.index % nx) * sp, (q.index // nx) * sp], 1).astype(np.float64)
    logcov = q.shape * code_to_step(steps.shape)[None]
    coded = q.color * code_to_step(steps.color)[None]
    return means, logcov, coded @ color_basis(q.color.shape[1])


# ---------------------------------------------------------------------------------------------------------------
# gap coding
# ---------------------------------------------------------------------------------------------------------------
def _bit_length(g: np.ndarray) -> np.ndarray:
    return np.where(g > 0, np.frexp(g.astype(np.float64))[1], 0).astype(np.int64)


def _encode_gaps(gaps: np.ndarray) -> tuple[bytes, bytes]:
    b = _bit_length(gaps)
    w = np.maximum(b - 1, 0)
    mant = gaps - np.where(b > 0, np.left_shift(1, np.maximum(b - 1, 0)), 0)
    total = int(w.sum())
    if total:
        owner = np.repeat(np.arange(gaps.size), w)
        offset = np.arange(total) - np.repeat(np.cumsum(w) - w, w)
        bits = ((mant[owner] >> offset) & 1).astype(np.uint8)
        raw = np.packbits(bits, bitorder="little").tobytes()
    else:
        raw = b""
    return encode_ints(b), raw


def _decode_gaps(blens: bytes, raw: bytes, n: int) -> np.ndarray:
    b = decode_ints(blens, n).astype(np.int64)
    if n and (b.min() < 0 or b.max() > 62):
        raise FormatError("gaussian positions: invalid gap length")
    w = np.maximum(b - 1, 0)
    total = int(w.sum())
    if len(raw) != (total + 7) // 8:
        raise FormatError("gaussian positions: raw gap bits have the wrong length")
    mant = np.zeros(n, dtype=np.int64)
    if total:
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little")[:total].astype(np.int64)
        owner = np.repeat(np.arange(n), w)
        offset = np.arange(total) - np.repeat(np.cumsum(w) - w, w)
        np.add.at(mant, owner, bits << offset)
    return mant + np.where(b > 0, np.left_shift(1, np.maximum(b - 1, 0)), 0)


# ---------------------------------------------------------------------------------------------------------------
# section
# ---------------------------------------------------------------------------------------------------------------
def _blob(b: bytes) -> bytes:
    return varint(len(b)) + b


def _encode_chunk(q: QuantizedGaussians) -> bytes:
    order = np.argsort(q.index, kind="stable")
    idx = q.index[order]
    gaps = np.diff(idx, prepend=0)
    blens, raw = _encode_gaps(gaps)
    parts = [blens, raw] + [encode_ints(q.shape[order, j]) for j in range(3)]
    parts += [encode_ints(q.color[order, j]) for j in range(q.color.shape[1])]
    return b"".join(_blob(p) for p in parts)


def _decode_chunk(chunk: bytes, n: int, channels: int, lattice_size: int) -> QuantizedGaussians:
    rd = Reader(chunk, "gaussian layer")
    parts = [rd.take(rd.varint(cap=len(chunk), name="blob length")) for _ in range(5 + channels)]
    rd.expect_end()
    index = np.cumsum(_decode_gaps(parts[0], parts[1], n))
    if n and index[-1] >= lattice_size:
        raise FormatError("gaussian positions outside the image")
    shape = np.stack([decode_ints(parts[2 + j], n).astype(np.int64) for j in range(3)], 1).reshape(n, 3)
    color = np.stack([decode_ints(parts[5 + j], n).astype(np.int64) for j in range(channels)], 1)
    return QuantizedGaussians(index, shape, color.reshape(n, channels))


def encode_section(q: QuantizedGaussians, layer_of: np.ndarray, layers: int, steps: Steps) -> bytes:
    """Code quantised Gaussians; ``layer_of[i]`` in [0, layers) is the importance layer of Gaussian i."""
    out = bytearray(varint(layers))
    chunks = []
    for layer in range(layers):
        sel = np.flatnonzero(layer_of == layer)
        out += varint(sel.size)
        chunks.append(_encode_chunk(QuantizedGaussians(q.index[sel], q.shape[sel], q.color[sel])))
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
    layers = rd.varint(cap=MAX_LAYERS, name="layer count")
    if layers < 1:
        raise FormatError("gaussians section: no layers")
    counts = [rd.varint(cap=MAX_GAUSSIANS, name="gaussian count") for _ in range(layers)]
    if sum(counts) > MAX_GAUSSIANS:
        raise FormatError("gaussians section: too many gaussians")
    codes = np.frombuffer(rd.take(4 + channels), dtype=np.int8).astype(np.int64)
    steps = Steps.from_codes(codes)
    if codes[0] < POS_CODE_MIN:
        raise FormatError("gaussians section: position step too fine")
    lengths = [rd.varint(cap=1 << 31, name="layer length") for _ in range(layers)]  # checked when taken
    nx, ny = lattice(height, width, float(code_to_step(steps.pos)))
    use = layers if max_layers is None else max(0, min(int(max_layers), layers))
    parts, ids = [], []
    for layer in range(use):  # later layers are not even read: a prefix of the section is enough
        parts.append(_decode_chunk(rd.take(lengths[layer]), counts[layer], channels, nx * ny))
        ids.append(np.full(counts[layer], layer, dtype=np.int64))
    if use == layers:
        rd.expect_end()
    if not parts:
        empty = QuantizedGaussians(np.zeros(0, np.int64), np.zeros((0, 3), np.int64), np.zeros((0, channels), np.int64))
        return empty, np.zeros(0, np.int64), steps, counts
    q = QuantizedGaussians(np.concatenate([p.index for p in parts]), np.concatenate([p.shape for p in parts]),
                           np.concatenate([p.color for p in parts]))
    return q, np.concatenate(ids), steps, counts
