"""Shared machinery of coordinate networks (Fourier MLP, SIREN, hash grid ...): dimension-generic coordinate
sampling for training, chunked rendering at any resolution or region, and coding of the weights.

Weights are quantised per tensor (per layer; per level for hash tables) with a uniform step, their integer symbols
entropy-coded with constriction (``entropy.encode_ints``, model picked per tensor); the steps travel as float32.
Shapes are not stored: the config determines them.

Bit allocation between tensors: quantising tensor k with step D_k adds about h_k D_k^2 / 12 to the output's squared
error, h_k the sum of the Gauss-Newton diagonal (sum over outputs of (d out / d w)^2) over its weights, and costs
about n_k log2(1 / D_k) bits. Minimising error + lambda * bits gives D_k proportional to 1 / sqrt(h_k / n_k): every
weight gets the same error per bit saved. ``sensitivities`` estimates h_k / n_k with Hutchinson's trick (for random
signs r, E[(J^T r)^2] = diag(J^T J): one backward pass per probe), and the steps are 2**-b times that allocation,
b one global bit depth (without an estimate: rms(t) * 2**-b, equal relative precision).

Rate-aware training: at ``QAT_START`` of the schedule the global bit depth b is chosen so that the coded weights
fit the byte target (``set_targets``; measured with the real coder), and the rest of the fit runs with those steps
fake-quantised (straight-through estimator), so the weights settle on the grid they will be coded on. ``encode``'s
continuous ``quality`` knob keeps that grid at 1 (the default) and coarsens it by up to 2**QUALITY_OCTAVES towards
0, so the codec's bisection can trim a file that came out a little over budget.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..entropy import decode_ints, encode_ints
from ..entropy._bytes import read_varint, varint
from ..errors import FormatError
from .base import Representation, grid_coords

BITS_LO, BITS_HI = 2.0, 14.0  # range of relative bit depths b (step = rms * 2**-b)
DEFAULT_BITS = 9.0  # with no byte target: close to transparent for these networks
QAT_START = 0.8  # schedule position where fake quantisation starts
QUALITY_OCTAVES = 4.0
RATE_MARGIN = 0.96  # aim a little under the byte target: weights still move during QAT
# Coordinates per step when the signal is larger. Measured (fourier, kodim01 at 0.34 bpp, 60 s budget, 1 thread):
# 32768 -> 20.6 dB (217 steps), 8192 -> 21.7 dB (667), 2048 -> 21.9 dB (1200): more, noisier steps win in a fixed
# time; 8192 keeps enough samples per step for fits that run to a step count instead.
TRAIN_BATCH = 1 << 13
RENDER_CHUNK = 1 << 16
SENSITIVITY_BATCH = 1 << 13  # coordinates the Gauss-Newton diagonal is estimated on
SENSITIVITY_PROBES = 4  # Hutchinson probes (per-tensor means of thousands of weights: a few probes suffice)
STEP_CAP = 4.0  # a tensor's step is at most this times its rms (it is then all zeros: worth nothing)


class CoordinateNetwork(Representation):
    """Base for models that map a coordinate in [-1, 1]^d to C values."""

    default_quality = 1.0  # the grid chosen for the target (or DEFAULT_BITS) and trained on
    qat_start = QAT_START

    def __init__(self, config, desc):
        super().__init__(config, desc)
        self._base_steps: dict[str, float] | None = None  # per coded tensor, set when QAT starts
        self._qat = False
        self._qat_due = False

    def forward(self, coords: torch.Tensor) -> torch.Tensor:  # (..., d) -> (..., C)
        raise NotImplementedError

    # -- quantisation-aware training ---------------------------------------------------------------------
    def on_progress(self, frac: float) -> None:
        if not self._qat and frac >= self.qat_start:
            self._qat_due = True  # the steps are chosen in the next training_batch, which has coordinates

    def _start_qat(self, coords: torch.Tensor) -> None:
        self._base_steps = self.choose_steps(self.target_bits, self.sensitivities(coords[:SENSITIVITY_BATCH]))
        self._qat, self._qat_due = True, False

    def sensitivities(self, coords: torch.Tensor, probes: int = SENSITIVITY_PROBES,
                      seed: int = 0) -> dict[str, float]:
        """Per coded tensor: the mean over its weights of diag(J^T J) / (number of outputs), J the Jacobian of
        the outputs at ``coords`` (Hutchinson: E[(J^T r)^2] over random signs r)."""
        coded = {k: v.detach().clone().requires_grad_(True) for k, v in self.coded_tensors().items()}
        names = list(coded)
        gen = torch.Generator().manual_seed(seed)
        acc = dict.fromkeys(names, 0.0)
        outputs = 1
        with torch.enable_grad():
            for _ in range(probes):
                out = torch.func.functional_call(self, self.parameters_from_coded(coded), (coords,))
                signs = torch.randint(0, 2, out.shape, generator=gen).to(out.dtype) * 2 - 1
                grads = torch.autograd.grad((out * signs).sum(), [coded[k] for k in names], allow_unused=True)
                for k, g in zip(names, grads):
                    if g is not None and g.numel():
                        acc[k] += float(torch.mean(g.detach().double() ** 2))
                outputs = out.numel()
        return {k: v / (probes * outputs) for k, v in acc.items()}

    def choose_steps(self, target_bits: float | None, sensitivity: dict[str, float] | None = None,
                     ) -> dict[str, float]:
        """Per-tensor steps 2**-b * allocation (module docstring), b the finest global bit depth whose coded
        size fits. Without ``sensitivity``: steps rms * 2**-b."""
        tensors = {k: v.detach().cpu().numpy().astype(np.float64).ravel() for k, v in self.coded_tensors().items()}
        rms = {k: (math.sqrt(float(np.mean(v**2))) if v.size else 0.0) for k, v in tensors.items()}
        alloc = dict(rms)  # step per unit of 2**-b
        if sensitivity is not None:
            live = [k for k, r in rms.items() if r > 0 and sensitivity.get(k, 0.0) > 0]
            if live:
                raw = {k: 1.0 / math.sqrt(sensitivity[k]) for k in live}
                # normalise so that b keeps its meaning (weighted geometric mean of the steps = that of the rms)
                n = np.array([tensors[k].size for k in live], dtype=np.float64)
                shift = float(np.sum(n * np.log2([rms[k] / raw[k] for k in live])) / np.sum(n))
                alloc = {k: raw[k] * 2.0**shift if k in raw else r for k, r in rms.items()}

        def steps_for(b: float) -> dict[str, float]:
            return {k: float(np.float32(min(a * 2.0**-b, STEP_CAP * rms[k]))) if rms[k] > 0 else 1.0
                    for k, a in alloc.items()}

        if target_bits is None:
            return steps_for(DEFAULT_BITS)
        goal = RATE_MARGIN * target_bits - 32.0 * len(tensors)  # float32 steps travel too

        def size_bits(b: float) -> float:
            st = steps_for(b)
            return sum(8.0 * len(encode_ints(np.rint(v / st[k]).astype(np.int64))) for k, v in tensors.items())

        lo, hi = BITS_LO, BITS_HI
        if size_bits(hi) <= goal:
            return steps_for(hi)
        for _ in range(10):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if size_bits(mid) <= goal else (lo, mid)
        return steps_for(lo)

    def parameters_from_coded(self, coded: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Module parameters (for ``functional_call``) from coded tensors: the same names here; models whose coded
        tensors are pieces of a parameter put them together."""
        return coded

    def quantised_parameters(self) -> dict[str, torch.Tensor]:
        """Coded tensors fake-quantised on the QAT grid (straight-through gradient); others as they are."""
        out = {}
        for name, t in self.coded_tensors().items():
            step = self._base_steps[name]
            out[name] = t + (torch.round(t / step) * step - t).detach()
        return self.parameters_from_coded(out)

    def qat_forward(self, coords: torch.Tensor) -> torch.Tensor:
        if not self._qat:
            return self.forward(coords)
        return torch.func.functional_call(self, self.quantised_parameters(), (coords,))

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
        if coords.shape[0] > TRAIN_BATCH:
            idx = torch.randint(0, coords.shape[0], (TRAIN_BATCH,), generator=generator)
            coords, flat = coords[idx], flat[idx]
        if self._qat_due:
            self._start_qat(coords)
        return self.qat_forward(coords), flat

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
        if self._base_steps is None:  # no QAT ran (very short fit): post-training quantisation, same rule
            coords = self._train_coords()
            pick = torch.randperm(coords.shape[0], generator=torch.Generator().manual_seed(0))[:SENSITIVITY_BATCH]
            self._base_steps = self.choose_steps(self.target_bits, self.sensitivities(coords[pick]))
        coarsen = 2.0 ** (QUALITY_OCTAVES * (1.0 - float(np.clip(quality, 0.0, 1.0))))
        steps, blobs = [], []
        for name, tensor in self.coded_tensors().items():
            values = tensor.detach().cpu().numpy().astype(np.float64).ravel()
            step = np.float32(self._base_steps[name] * coarsen)
            steps.append(step)
            blobs.append(encode_ints(np.rint(values / step).astype(np.int64)))
        lengths = b"".join(varint(len(b)) for b in blobs)
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
            n, pos = read_varint(data, pos, "malformed length field", 6)
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


def relu_mlp(d_in: int, width: int, hidden_layers: int, d_out: int) -> torch.nn.Sequential:
    """hidden_layers x (Linear to ``width``, ReLU), then Linear(width, d_out), made in this order (a seed's
    initialisation depends on it); the coordinate networks' and the latent grid's MLPs."""
    layers: list[torch.nn.Module] = []
    for _ in range(hidden_layers):
        layers += [torch.nn.Linear(d_in, width), torch.nn.ReLU()]
        d_in = width
    layers.append(torch.nn.Linear(d_in, d_out))
    return torch.nn.Sequential(*layers)


def width_for_budget(params: float, d_in: int, hidden_layers: int, d_out: int, lo: int = 8, hi: int = 512) -> int:
    """Largest MLP width whose parameter count fits ``params``."""
    width = lo
    for w in range(lo, hi + 1):
        if mlp_param_count(d_in, w, hidden_layers, d_out) <= params:
            width = w
    return width


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
