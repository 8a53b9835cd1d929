"""Multiresolution hash encoding (Müller et al. 2022, Instant-NGP) + a small ReLU MLP, dimension-generic.

The encoding follows tiny-cuda-nn's ``HashGrid`` formulas exactly, so the same parameters work with either backend:

* level l: scale = 2**(l * log2(per_level_scale)) * base_resolution - 1, resolution = ceil(scale) + 1;
* entries of level l: min(next multiple of 8 of resolution**d, 2**log2_table), levels stored one after another
  (the flat parameter layout of tiny-cuda-nn), F features per entry;
* input x in [0, 1]^d: pos = x * scale + 0.5, cell = floor(pos), weights from pos - cell (d-linear);
* index of a corner: dense (sum of coord * resolution**k) while the level fits its table, else the spatial hash
  XOR_k(coord_k * prime_k) with primes 1, 2654435761, 805459861 (uint32 arithmetic); then modulo the table size.

``tinycudann`` is used automatically when it imports and the inputs are on a CUDA device (2-D and 3-D, as
tiny-cuda-nn builds them); the pure-torch path runs everywhere else. Both read the same flat ``table`` parameter.
Tables are coded per level (each level its own quantisation step) through ``CoordinateNetwork``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import FormatError
from . import register
from .coordnet import CoordinateNetwork, mlp_param_count, relu_mlp, validate_positive_ints
from ..quant.exact import f32_exp2, f32_log2

PRIMES = (1, 2654435761, 805459861)
MASK32 = 0xFFFFFFFF
BITS_PER_PARAM = 6.0  # sizing prior: table entries code cheaply after quantisation

try:  # optional GPU backend
    import tinycudann as _tcnn  # type: ignore
except Exception:  # noqa: BLE001 - any import failure (no CUDA, no build) means: use torch
    _tcnn = None


@dataclass
class HashGridConfig:
    ndim: int
    channels: int
    n_levels: int = 16
    n_features: int = 2
    log2_table: int = 14
    base_resolution: int = 16
    per_level_scale: float = 1.5
    width: int = 64
    hidden_layers: int = 2

    def validate(self) -> None:
        validate_positive_ints(self, "ndim", "channels", "n_levels", "n_features", "log2_table", "base_resolution",
                               "width", "hidden_layers", cap=4096)
        if (self.ndim > 3 or self.n_levels > 32 or self.n_features not in (1, 2, 4, 8) or self.log2_table > 24
                or not (1.0 <= self.per_level_scale <= 4.0) or self.hidden_layers > 8):
            raise FormatError("hashgrid config out of range")


def level_layout(cfg: HashGridConfig) -> list[tuple[float, int, int, int]]:
    """Per level: (scale, resolution, offset in entries, table size in entries), as tiny-cuda-nn computes them
    (float32 arithmetic for the scale). log2/exp2 are the exact format rules (``quant.exact``), not libm's: the
    table sizes decide how many symbols the decoder reads, so they must be the same on every machine."""
    out, offset = [], 0
    log2_pls = f32_log2(np.float32(cfg.per_level_scale))
    for level in range(cfg.n_levels):
        scale = np.float32(f32_exp2(np.float32(level) * log2_pls) * np.float32(cfg.base_resolution) - np.float32(1.0))
        resolution = int(math.ceil(float(scale))) + 1
        dense = resolution**cfg.ndim
        size = min(-(-dense // 8) * 8, 1 << cfg.log2_table)
        out.append((float(scale), resolution, offset, size))
        offset += size
    return out


def grid_index(cell: torch.Tensor, resolution: int, size: int) -> torch.Tensor:
    """Table index of integer grid coordinates ``cell`` (..., d): dense while the level fits, else the XOR-of-primes
    spatial hash, in uint32 arithmetic, modulo ``size``."""
    d = cell.shape[-1]
    stride, index = 1, torch.zeros(cell.shape[:-1], dtype=torch.int64, device=cell.device)
    for dim in range(d):
        if stride > size:
            break
        index = (index + cell[..., dim] * stride) & MASK32
        stride *= resolution
    if size < stride:
        index = torch.zeros_like(index)
        for dim in range(d):
            index = index ^ ((cell[..., dim] * PRIMES[dim]) & MASK32)
    return index % size


def hash_encode(x01: torch.Tensor, table: torch.Tensor, cfg: HashGridConfig, layout=None) -> torch.Tensor:
    """Pure-torch encoding of points x01 (N, d) in [0, 1]: (N, n_levels * F), level-major like tiny-cuda-nn."""
    layout = layout or level_layout(cfg)
    d, nf = cfg.ndim, cfg.n_features
    entries = table.view(-1, nf)
    corners = torch.tensor([[(c >> k) & 1 for k in range(d)] for c in range(1 << d)], device=x01.device)
    outs = []
    for scale, resolution, offset, size in layout:
        pos = x01 * np.float32(scale) + 0.5
        cell = torch.floor(pos)
        frac = pos - cell
        cell = cell.long()
        idx = grid_index(cell[:, None, :] + corners[None], resolution, size) + offset  # (N, 2^d)
        w = torch.where(corners[None].bool(), frac[:, None, :], 1 - frac[:, None, :]).prod(-1)  # (N, 2^d)
        vals = torch.nn.functional.embedding(idx, entries)  # (N, 2^d, F)
        outs.append((vals * w[..., None]).sum(1))
    return torch.cat(outs, dim=-1)


@register
class HashGrid(CoordinateNetwork):
    name = "hashgrid"
    Config = HashGridConfig
    default_lr = 3e-2
    default_steps = 2000

    def __init__(self, config: HashGridConfig, desc):
        super().__init__(config, desc)
        c = config
        self.layout = level_layout(c)
        total = self.layout[-1][2] + self.layout[-1][3]
        self.table = torch.nn.Parameter(torch.empty(total * c.n_features).uniform_(-1e-4, 1e-4))
        self.net = relu_mlp(c.n_levels * c.n_features, c.width, c.hidden_layers, c.channels)
        with torch.no_grad():
            self.net[-1].bias.fill_(0.5)
        self._tcnn_enc = None

    # -- encoding backends -----------------------------------------------------------------------------------
    def _tcnn_encoding(self):
        if self._tcnn_enc is None:
            c = self.config
            enc = _tcnn.Encoding(c.ndim, {"otype": "HashGrid", "n_levels": c.n_levels,
                                          "n_features_per_level": c.n_features, "log2_hashmap_size": c.log2_table,
                                          "base_resolution": c.base_resolution,
                                          "per_level_scale": c.per_level_scale}, dtype=torch.float32)
            if enc.params.numel() != self.table.numel():
                raise RuntimeError("tinycudann parameter layout differs from the torch one")
            self._tcnn_enc = enc
        return self._tcnn_enc

    def encode_points(self, x01: torch.Tensor, table: torch.Tensor | None = None, backend: str = "auto"):
        table = self.table if table is None else table
        use_tcnn = backend == "tcnn" or (backend == "auto" and _tcnn is not None and x01.is_cuda
                                         and self.config.ndim in (2, 3))
        if use_tcnn:
            enc = self._tcnn_encoding().to(x01.device)
            # Run tiny-cuda-nn's autograd function on our own parameter tensor (same flat layout).
            from tinycudann.modules import _C, _module_function  # type: ignore

            n = x01.shape[0]
            g = int(_C.batch_size_granularity())
            padded = torch.nn.functional.pad(x01.float(), [0, 0, 0, (-n) % g]).contiguous()
            out = _module_function.apply(enc.native_tcnn_module, padded, table.float().contiguous(), enc.loss_scale)
            return out[:n, : self.config.n_levels * self.config.n_features].float()
        return hash_encode(x01, table, self.config, self.layout)

    def forward(self, coords):
        x01 = (coords.reshape(-1, coords.shape[-1]) + 1.0) * 0.5
        out = self.net(self.encode_points(x01))
        return out.reshape(*coords.shape[:-1], self.config.channels)

    def param_groups(self, lr):
        return [{"params": [self.table], "lr": lr, "eps": 1e-15},
                {"params": list(self.net.parameters()), "lr": lr * 0.5}]

    # -- coding: one tensor per level ------------------------------------------------------------------------
    def coded_tensors(self):
        nf = self.config.n_features
        out = {f"level{i}": self.table[off * nf : (off + size) * nf] for i, (_, _, off, size) in
               enumerate(self.layout)}
        out.update({f"net.{k}": v for k, v in self.net.named_parameters()})
        return out

    def parameters_from_coded(self, coded):
        table = torch.cat([coded[f"level{i}"] for i in range(len(self.layout))])
        return {"table": table, **{k: v for k, v in coded.items() if k.startswith("net.")}}

    @classmethod
    def config_for(cls, desc, target_bits, **overrides):
        shape, channels = desc["shape"][:-1], int(desc["shape"][-1])
        ndim = len(shape)
        # tiny-cuda-nn's defaults (16 levels from 16 cells) for signals of a few hundred samples per axis and up;
        # smaller ones start coarser and use fewer levels (measured: base 16 on a 32x48 image loses ~10 dB).
        base = int(overrides.pop("base_resolution", min(16, max(2, min(shape) // 16))))
        finest = max(max(shape), base + 1)
        n_levels = int(overrides.pop("n_levels", int(np.clip(round(np.log2(finest / base) / np.log2(1.35)) + 1,
                                                              4, 16))))
        pls = round(float(np.exp(np.log(finest / base) / max(n_levels - 1, 1))), 4)
        hidden = int(overrides.pop("hidden_layers", 2))
        nf = int(overrides.pop("n_features", 2))
        budget = (target_bits / BITS_PER_PARAM) if target_bits else 200000
        width = 8  # the MLP takes at most a quarter of the budget, the tables the rest
        for w in range(8, 65):
            if mlp_param_count(n_levels * nf, w, hidden, channels) <= 0.25 * budget:
                width = w
        width = int(overrides.pop("width", width))
        mlp = mlp_param_count(n_levels * nf, width, hidden, channels)
        log2_table = 6
        for k in range(6, 22):
            cfg = HashGridConfig(ndim, channels, n_levels, nf, k, base, max(pls, 1.0), width, hidden)
            lay = level_layout(cfg)
            if (lay[-1][2] + lay[-1][3]) * nf + mlp <= budget:
                log2_table = k
        cfg = dict(ndim=ndim, channels=channels, n_levels=n_levels, n_features=nf, log2_table=log2_table,
                   base_resolution=base, per_level_scale=max(pls, 1.0), width=width, hidden_layers=hidden)
        cfg.update(overrides)
        return HashGridConfig(**cfg)
