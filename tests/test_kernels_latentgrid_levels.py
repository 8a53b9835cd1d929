"""The latent-grid kernels' SIMD levels (INRCODEC_LG_SIMD) and the strict render build: each level is built with
the vector width it names, and what a decoder outputs (the render of a latent-grid file: synthesis MLP, residual
convolutions, upsampling, all from the strict build) is the same bits at every level this machine runs.
(The kernels' values at each level against the torch references: tests/test_kernels_latentgrid*.py, which run
once per level through conftest.latentgrid_lib.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inrcodec.kernels import latentgrid_mlp as K

GOLDEN = Path(__file__).parent / "golden"


def _libs(strict: bool):
    libs = {}
    for level in K.supported_levels():
        try:
            libs[level] = K.library_for_level(level, strict=strict)
        except (RuntimeError, OSError) as exc:  # no compiler: nothing to compare
            pytest.skip(f"latentgrid kernel at level {level} not available: {str(exc)[:200]}")
    return libs


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def test_each_level_builds_the_vector_width_it_names():
    widths = {level: lib.lg_simd_width() for level, lib in _libs(strict=False).items()}
    expect = {"avx512": 16, "avx2": 8, "baseline": 8, "native": 16 if "avx512f" in _cpu_flags() else 8}
    for level, w in widths.items():
        assert w == expect[level], (level, w)


def _model(seed: int):
    from helpers import smooth_rgb
    from inrcodec.models.latentgrid import LatentGrid
    from inrcodec.signal import Signal

    sig = Signal(smooth_rgb(37, 53, seed=seed))  # sizes off the vector widths: tails in every kernel
    desc = sig.describe()
    torch.manual_seed(seed)
    net = LatentGrid(LatentGrid.config_for(desc, 9000.0, hidden=16, hidden_layers=2, conv_layers=2), desc)
    with torch.no_grad():
        for y in net.latents:
            y.copy_(torch.randn(y.shape) * 3)
        for p in list(net.synth.parameters()) + list(net.convs.parameters()):
            p.copy_(torch.randn(p.shape) * 0.3)
    assert net.config.conv_layers > 0 and len(net.convs) > 0
    return net


def test_render_is_bit_identical_at_every_simd_level():
    net = _model(5)
    strict, fast = _libs(strict=True), _libs(strict=False)
    renders = {}
    for level in strict:
        with K.using_library(fast[level], strict[level]):
            renders[level] = net.render()
    first = next(iter(renders.values()))
    for level, r in renders.items():
        assert torch.equal(r, first), f"{level} renders other bits than {next(iter(renders))}"
    # the strict build is the training build's arithmetic without FMA contraction: the same values to rounding
    with K.using_library(fast["native"], fast["native"]):
        fast_render = net.render()
    torch.testing.assert_close(fast_render, first, rtol=1e-5, atol=1e-5)
    with K.using_library(None):
        ref = net.render()  # the torch reference
    torch.testing.assert_close(ref, first, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["latentgrid-image", "latentgrid-audio"])
def test_golden_latentgrid_files_decode_the_same_bits_at_every_level(name):
    from inrcodec.codec import load_representation

    data = (GOLDEN / f"{name}.inrc").read_bytes()
    strict, fast = _libs(strict=True), _libs(strict=False)
    outs = {}
    for level in strict:
        with K.using_library(fast[level], strict[level]):
            _, net = load_representation(data)  # entropy decode: the exact context MLP and features
            outs[level] = net.render().numpy()
    first = next(iter(outs.values()))
    for level, out in outs.items():
        assert np.array_equal(out, first), level
