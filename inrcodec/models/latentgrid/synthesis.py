"""Synthesis: upsampled latent features (one per level) -> the C output values.

A small per-sample MLP (compiled fused kernel ``inrcodec/kernels/latentgrid_mlp.py``, torch reference as fallback)
followed by residual k^d convolutions with replicate padding (compiled for 2-D, ``latentgrid_conv.py``); the
convolutions' blocks start as the identity.
"""

from __future__ import annotations

import torch

from ...kernels import latentgrid_conv as conv_kernel
from ...kernels.latentgrid_mlp import mlp
from ..coordnet import relu_mlp


def make_synthesis(ndim: int, levels: int, channels: int, hidden: int, hidden_layers: int, conv_layers: int,
                   kernel: int) -> tuple[torch.nn.Sequential, torch.nn.ModuleList]:
    """(per-sample MLP, residual convolutions), initialised to output mid-grey plus the identity."""
    synth = relu_mlp(levels, hidden, hidden_layers, channels)
    with torch.no_grad():
        synth[-1].bias.fill_(0.5)
    conv = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[ndim]
    convs = torch.nn.ModuleList([conv(channels, channels, kernel) for _ in range(conv_layers)])
    with torch.no_grad():
        for m in convs:  # residual blocks start as the identity
            m.weight.zero_()
            m.bias.zero_()
    return synth, convs


def synthesize(feats: torch.Tensor, synth: torch.nn.Sequential, convs: torch.nn.ModuleList, kernel: int
               ) -> torch.Tensor:
    """feats (levels, *box) -> (1, C, *box)."""
    # fused per-pixel MLP (compiled kernel, torch reference as fallback), feature-major in and out
    x = mlp(feats.reshape(feats.shape[0], -1).t(), _linears(synth), feature_major=True)
    x = x.t().reshape(1, -1, *feats.shape[1:])  # (1, C, *box)
    pad = kernel // 2
    for i, conv in enumerate(convs):
        relu = i < len(convs) - 1  # all but the last block
        if conv_kernel.usable(x[0], conv.weight):  # 2-D: the block fused in one kernel (reference: next branch)
            # squeeze, not x[0]: a select's backward zero-fills and copies a full image
            x = conv_kernel.residual_block(x.squeeze(0), conv.weight, conv.bias, relu).unsqueeze(0)
            continue
        h = _replicate_pad(x, pad) if pad else x
        x = x + conv(h)
        if relu:
            x = torch.relu(x)
    return x


def _replicate_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Replicate-pad every axis after the first two by ``pad`` (concatenation: compiles and runs in any ndim)."""
    for axis in range(2, x.dim()):
        n = x.shape[axis]
        x = torch.cat([x.narrow(axis, 0, 1)] * pad + [x] + [x.narrow(axis, n - 1, 1)] * pad, dim=axis)
    return x



def _linears(seq: torch.nn.Sequential) -> list[torch.nn.Linear]:
    return [m for m in seq if isinstance(m, torch.nn.Linear)]

