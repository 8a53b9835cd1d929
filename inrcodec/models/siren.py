"""SIREN (Sitzmann et al. 2020), the network of COIN (Dupont et al. 2021): x -> sin(w0 (W x + b)) layers -> linear.

Initialisation follows the paper: first layer U(-1/d, 1/d), hidden layers U(-sqrt(6/n)/w0, sqrt(6/n)/w0), so the
pre-activations stay in the regime where the sines neither saturate nor collapse. Dimension-generic (d = 1-3).
Unlike COIN (float16 weights, no entropy coding), the weights go through the shared rate-aware path of
``CoordinateNetwork``: per-layer steps sized for the byte target, quantisation-aware training, entropy coding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import FormatError
from . import register
from .coordnet import CoordinateNetwork, mlp_param_count, validate_positive_ints

BITS_PER_PARAM = 8.0  # prior for sizing: SIREN weights need a finer grid than ReLU MLPs


@dataclass
class SirenConfig:
    ndim: int
    channels: int
    width: int = 64
    hidden_layers: int = 4  # sine layers
    w0: float = 30.0  # frequency factor of the first layer
    w0_hidden: float = 30.0

    def validate(self) -> None:
        validate_positive_ints(self, "ndim", "channels", "width", "hidden_layers", cap=4096)
        if self.ndim > 3 or self.hidden_layers > 32 or not (0 < self.w0 < 1e4) or not (0 < self.w0_hidden < 1e4):
            raise FormatError("siren config out of range")


class SineLayer(torch.nn.Module):
    def __init__(self, d_in: int, d_out: int, w0: float, first: bool):
        super().__init__()
        self.w0 = w0
        self.linear = torch.nn.Linear(d_in, d_out)
        bound = 1.0 / d_in if first else math.sqrt(6.0 / d_in) / w0
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)
            self.linear.bias.uniform_(-bound, bound)

    def forward(self, x):
        return torch.sin(self.w0 * self.linear(x))


@register
class Siren(CoordinateNetwork):
    name = "siren"
    Config = SirenConfig
    default_lr = 2e-3  # for networks up to LR_WIDTH wide; see lr_for
    LR_WIDTH = 48
    default_steps = 3000

    def __init__(self, config: SirenConfig, desc):
        super().__init__(config, desc)
        c = config
        layers: list[torch.nn.Module] = [SineLayer(c.ndim, c.width, c.w0, first=True)]
        for _ in range(c.hidden_layers - 1):
            layers.append(SineLayer(c.width, c.width, c.w0_hidden, first=False))
        last = torch.nn.Linear(c.width, c.channels)
        bound = math.sqrt(6.0 / c.width) / c.w0_hidden
        with torch.no_grad():
            last.weight.uniform_(-bound, bound)
            last.bias.fill_(0.5)  # start at mid-grey
        layers.append(last)
        self.net = torch.nn.Sequential(*layers)

    def forward(self, coords):
        return self.net(coords)

    @classmethod
    def lr_for(cls, config):
        """Adam's stable step shrinks with the width (each sine layer sums more terms). Measured on kodim01, 1200
        steps on a 256^2 crop at width ~30: 5e-4 22.91 dB, 2e-3 23.65, 4e-3 23.96, 8e-3 diverges; 90 s on the
        full image at 2e-3: width ~46 +0.6 dB over 5e-4, width ~80 and ~105 -1.5 and -2.4 dB. Hence 2e-3 up to
        LR_WIDTH, then falling as 1/width^2 (5e-4 at width ~100, where 5e-4 was measured stable)."""
        return cls.default_lr * min(1.0, cls.LR_WIDTH / config.width) ** 2

    @classmethod
    def config_for(cls, desc, target_bits, **overrides):
        shape, channels = desc["shape"][:-1], desc["shape"][-1]
        ndim = len(shape)
        hidden = overrides.pop("hidden_layers", 5 if len(shape) > 1 else 4)
        budget = (target_bits / BITS_PER_PARAM) if target_bits else 20000
        width = 8
        for w in range(8, 513):
            if mlp_param_count(ndim, w, hidden, channels) <= budget:
                width = w
        # The first layer's w0 sets the frequencies the network starts from: 30 suits images of a few hundred
        # pixels per side; long 1-D signals (audio) hold far more cycles over their extent.
        w0 = 30.0 if ndim > 1 else float(min(3000.0, 30.0 * max(1.0, max(shape) / 2000.0)))
        cfg = dict(ndim=ndim, channels=channels, width=width, hidden_layers=hidden, w0=w0)
        cfg.update(overrides)
        return SirenConfig(**cfg)
