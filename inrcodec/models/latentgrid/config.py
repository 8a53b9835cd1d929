"""Configuration of a latent-grid model: its fields and checks, the latent grids' shapes, the parameter count."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...errors import FormatError
from .context import n_context


@dataclass
class LatentGridConfig:
    ndim: int
    channels: int
    levels: int = 7
    hidden: int = 16  # synthesis MLP width
    hidden_layers: int = 2
    conv_layers: int = 2  # residual k^d convolutions after the MLP
    kernel: int = 3
    arm_hidden: int = 16
    arm_layers: int = 2
    upsampling: str = "cubic"  # "linear" or "cubic" (Catmull-Rom)

    def validate(self) -> None:
        ints = ("ndim", "channels", "levels", "hidden", "hidden_layers", "conv_layers", "kernel", "arm_hidden",
                "arm_layers")
        for name in ints:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise FormatError(f"config field {name}={v!r} is not an integer")
        if not (1 <= self.ndim <= 3 and 1 <= self.channels <= 64 and 1 <= self.levels <= 16
                and 1 <= self.hidden <= 256 and 0 <= self.hidden_layers <= 8 and 0 <= self.conv_layers <= 8
                and self.kernel in (1, 3, 5) and 1 <= self.arm_hidden <= 128 and 0 <= self.arm_layers <= 6):
            raise FormatError("latentgrid config out of range")
        if self.upsampling not in ("linear", "cubic"):
            raise FormatError(f"unknown upsampling {self.upsampling!r}")


def latent_shapes(shape: tuple[int, ...], levels: int) -> list[tuple[int, ...]]:
    return [tuple(-(-n // 2**lvl) for n in shape) for lvl in range(levels)]


def default_levels(shape: tuple[int, ...]) -> int:
    return int(max(1, min(7, math.floor(math.log2(max(min(shape), 1))) + 1)))



def network_param_count(c: "LatentGridConfig") -> int:
    """Weights + biases of synthesis MLP, convolutions and context MLP for a config."""
    def mlp(d_in, width, layers, d_out):
        total, d = 0, d_in
        for _ in range(layers):
            total += (d + 1) * width
            d = width
        return total + (d + 1) * d_out

    convs = c.conv_layers * (c.channels * c.channels * c.kernel**c.ndim + c.channels)
    return mlp(c.levels, c.hidden, c.hidden_layers, c.channels) + convs + mlp(n_context(c.ndim), c.arm_hidden,
                                                                              c.arm_layers, 2)

