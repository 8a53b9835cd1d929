"""Shared machinery of coordinate networks (Fourier MLP, SIREN, hash grid ...): dimension-generic coordinate
sampling for training, chunked rendering at any resolution or region, and coding of the weights.

Weights are coded with a *continuous* quality knob, so the codec can bisect on it and land a byte target:
each tensor t gets a uniform step rms(t) * 2**-bits with bits = BITS_LO + quality * (BITS_HI - BITS_LO), its
integer symbols are entropy-coded with constriction (``entropy.encode_ints``, model picked per tensor), and the
steps travel as float32. Shapes are not stored: the config determines them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..entropy import decode_ints, encode_ints
from ..errors import FormatError
from .base import Representation, grid_coords

BITS_LO, BITS_HI = 2.0, 14.0
TRAIN_BATCH = 1 << 15  # coordinates per step when the signal is larger than this
RENDER_CHUNK = 1 << 16


class CoordinateNetwork(Representation):
    """Base for models that map a coordinate in [-1, 1]^d to C values."""

    def forward(self, coords: torch.Tensor) -> torch.Tensor:  # (..., d) -> (..., C)
        raise NotImplementedError

    # -- training ----------------------------------------------------------------------------------------
    def _train_coords(self) -> torch.Tensor:
        cached = getattr(self, "_coords_cache", None)
        if cached is None:
            cached = grid_coords(self.coord_shape).reshape(-1, len(self.coord_shape))
            self._coords_cache = cached
        return cached

    def training_batch(self, target, generator):
        coords = self._train_coords()
        flat = target.reshape(-1, self.channels)
        if coords.shape[0] <= TRAIN_BATCH:
            return self.forward(coords), flat
        idx = torch.randint(0, coords.shape[0], (TRAIN_BATCH,), generator=generator)
        return self.forward(coords[idx]), flat[idx]

    # -- rendering ---------------------------------------------------------------------------------------
    def render(self, shape=None, region=None):
        shape = tuple(shape or self.coord_shape)
        coords = grid_coords(shape, region=region)
        out_shape = coords.shape[:-1]
        flat = coords.reshape(-1, coords.shape[-1])
        if flat.shape[0] <= RENDER_CHUNK:
            values = self.forward(flat)
        else:
            values = torch.cat([self.forward(c) for c in flat.split(RENDER_CHUNK)])
        return values.reshape(*out_shape, self.channels)

    # -- coding ------------------------------------------------------------------------------------------
    def coded_tensors(self) -> dict[str, torch.Tensor]:
        """The tensors that go into the file, in a fixed order (default: all parameters)."""
        return dict(self.named_parameters())

    def encode(self, quality: float) -> dict[str, bytes]:
        bits = BITS_LO + float(np.clip(quality, 0.0, 1.0)) * (BITS_HI - BITS_LO)
        steps, blobs = [], []
        for tensor in self.coded_tensors().values():
            values = tensor.detach().cpu().numpy().astype(np.float64).ravel()
            rms = math.sqrt(float(np.mean(values**2))) if values.size else 0.0
            step = np.float32(rms * 2.0**-bits if rms > 0 else 1.0)
            steps.append(step)
            blobs.append(encode_ints(np.rint(values / step).astype(np.int64)))
        lengths = b"".join(_uvarint(len(b)) for b in blobs)
        return {"steps": np.asarray(steps, dtype="<f4").tobytes(), "weights": lengths + b"".join(blobs)}

    def load_coded(self, sections: dict[str, bytes]) -> None:
        tensors = self.coded_tensors()
        steps_raw = sections.get("steps", b"")
        if len(steps_raw) != 4 * len(tensors):
            raise FormatError("weight steps section has the wrong size")
        steps = np.frombuffer(steps_raw, dtype="<f4")
        if not np.all(np.isfinite(steps)):
            raise FormatError("non-finite quantisation step")
        data = sections.get("weights", b"")
        pos, lengths = 0, []
        for _ in tensors:
            n, pos = _read_uvarint(data, pos)
            lengths.append(n)
        with torch.no_grad():
            for (name, tensor), step, n in zip(tensors.items(), steps, lengths):
                if pos + n > len(data):
                    raise FormatError(f"weights section truncated at {name}")
                q = decode_ints(data[pos : pos + n], tensor.numel())
                pos += n
                tensor.copy_(torch.from_numpy((q.astype(np.float64) * float(step)).astype(np.float32)).view_as(tensor))
        if pos != len(data):
            raise FormatError("weights section has trailing bytes")

    @classmethod
    def decode(cls, config, desc, sections):
        model = cls(config, desc)
        model.load_coded(sections)
        return model.eval()


def mlp_param_count(d_in: int, width: int, hidden_layers: int, d_out: int) -> int:
    """Parameters of Linear(d_in, w) + (hidden_layers - 1) x Linear(w, w) + Linear(w, d_out)."""
    return (d_in + 1) * width + (hidden_layers - 1) * (width + 1) * width + (width + 1) * d_out


def width_for_budget(params: float, d_in: int, hidden_layers: int, d_out: int, lo: int = 8, hi: int = 512) -> int:
    """Largest MLP width whose parameter count fits ``params``."""
    width = lo
    for w in range(lo, hi + 1):
        if mlp_param_count(d_in, w, hidden_layers, d_out) <= params:
            width = w
    return width


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(data) or shift > 35:
            raise FormatError("malformed length field")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def deterministic_normal(seed: int, count: int) -> np.ndarray:
    """Standard normals from a fixed integer recipe (splitmix64 + Box-Muller), identical on every machine and
    NumPy version, so that random projections can be regenerated from a seed in the header instead of stored."""
    mask = (1 << 64) - 1
    state = (seed * 0x9E3779B97F4A7C15 + 1) & mask
    uniforms = np.empty(2 * ((count + 1) // 2), dtype=np.float64)
    for i in range(uniforms.size):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        uniforms[i] = ((z >> 11) + 0.5) / float(1 << 53)
    u1, u2 = uniforms[0::2], uniforms[1::2]
    r = np.sqrt(-2.0 * np.log(u1))
    normals = np.concatenate([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)])
    return normals[:count]


def validate_positive_ints(config: Any, *names: str, cap: int = 1 << 16) -> None:
    for name in names:
        v = getattr(config, name)
        if not (isinstance(v, int) and not isinstance(v, bool) and 0 < v <= cap):
            raise FormatError(f"config field {name}={v!r} out of range")
