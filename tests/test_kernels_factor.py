"""The CPU rasteriser's factorised weights (cuda/gaussian_raster_cpu_tiles.inc, ``fact_init``) against the torch
reference and against the kernel's own direct-exp path (``GR_NO_FACTOR=1``), forward and backward.

Where a (tile, Gaussian) pair is well conditioned the kernel forms exp(-q/2) as a product of per-column, per-row
and row-advanced factors instead of one polynomial exp per pixel. The cutoff is still decided on q exactly as the
reference does, so the same pairs are summed and only float rounding differs: each factor's exponent is at most
40 in size (FACT_LIM), whose float rounding (~40 * 6e-8) plus 15 row advances of a few ulps keep the product within
~1e-5 relative of exp(-q/2). So the tolerances of tests/test_kernels.py apply unchanged: forward
|kernel - ref| <= 1e-5 * S + 1e-7 (S: the same sum with |colour|), gradients rtol 1e-4 + atol 1e-4 * max|ref|.
"""

from __future__ import annotations

import math

import pytest
import torch

from inrcodec.kernels import _loader, rasterize_gaussians, rasterize_torch

needs_cpu_kernel = pytest.mark.skipif(_loader.cpu_library() is None, reason="compiled CPU rasteriser unavailable")


def scene(n, h, w, c, smin, smax, max_corr, seed):
    """Gaussians of std log-uniform in [smin, smax] px and correlation up to max_corr (sheared ellipses)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 2, generator=g) * torch.tensor([w * 1.2, h * 1.2]) - torch.tensor([w * 0.1, h * 0.1])
    s = torch.exp(torch.empty(n, 2).uniform_(math.log(smin), math.log(smax), generator=g))
    rho = (torch.rand(n, generator=g) * 2 - 1) * max_corr
    # Sigma = [[sx^2, rho sx sy], [rho sx sy, sy^2]] -> Cholesky factor
    l11 = s[:, 0]
    l21 = rho * s[:, 1]
    l22 = s[:, 1] * torch.sqrt(1 - rho * rho)
    colors = torch.randn(n, c, generator=g) * 0.3
    return means.contiguous(), torch.stack([l11, l21, l22], 1).contiguous(), colors


def run(monkeypatch, direct, means, chol, colors, h, w, up):
    monkeypatch.setenv("GR_NO_FACTOR", "1" if direct else "0")  # read by the library on every call
    m, c, col = (t.detach().clone().requires_grad_(True) for t in (means, chol, colors))
    img = rasterize_gaussians(m, c, col, h, w, backend="cpu")
    (img * up).sum().backward()
    return img.detach(), m.grad, c.grad, col.grad


SCENES = [  # n, h, w, c, smin, smax, max_corr
    (400, 80, 96, 3, 1.0, 8.0, 0.8),  # fitted-image-like: a few px, moderate shear
    (60, 70, 90, 1, 10.0, 40.0, 0.97),  # large, strongly sheared: far tiles and needles take the direct path
    (200, 40, 56, 5, 0.3, 3.0, 0.5),  # sub-pixel to small, generic channel count
]


@needs_cpu_kernel
@pytest.mark.parametrize("simd", ["native", "sse"])
@pytest.mark.parametrize("n,h,w,c,smin,smax,max_corr", SCENES)
def test_factorised_weights_match_reference(monkeypatch, simd, n, h, w, c, smin, smax, max_corr):
    if simd == "sse":
        monkeypatch.setenv("GR_SIMD", "sse")
    means, chol, colors = scene(n, h, w, c, smin, smax, max_corr, seed=n + h)
    up = torch.randn(h, w, c, generator=torch.Generator().manual_seed(1))
    fact = run(monkeypatch, False, means, chol, colors, h, w, up)
    direct = run(monkeypatch, True, means, chol, colors, h, w, up)
    # the factorised path is taken (its rounding differs from the direct exp somewhere)
    assert not torch.equal(fact[0], direct[0])
    m, c_, col = (t.detach().clone().requires_grad_(True) for t in (means, chol, colors))
    img = rasterize_torch(m, c_, col, h, w)
    (img * up).sum().backward()
    ref = (img.detach(), m.grad, c_.grad, col.grad)
    with torch.no_grad():
        tol = 1e-5 * rasterize_torch(means, chol, colors.abs(), h, w) + 1e-7
    for got in (fact, direct):
        assert ((got[0] - ref[0]).abs() <= tol).all(), float(((got[0] - ref[0]).abs() - tol).max())
        for name, a, b in zip(("means", "chol", "colors"), got[1:], ref[1:]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()),
                                       msg=lambda msg, name=name: f"{name}: {msg}")
