"""2D Gaussian rasteriser: compiled kernels against the torch reference, the reference against a naive dense
formula and against finite differences (gradcheck), plus conventions, edge cases and the build/loader paths.

Tolerances. Kernel and reference enumerate exactly the same (Gaussian, pixel) pairs (shared cutoff, identical
float32 operation order for the cutoff decision), so they differ only by float32 rounding: exp() (kernel
polynomial vs torch, ~2e-7 relative) and the order of summation over at most a few hundred terms per value.
Forward: |kernel - ref| <= 1e-5 * S + 1e-7 per pixel, S = the same sum with |colour| (100 ulps of the largest
partial sum). Gradients: per tensor, rtol 1e-4 plus atol 1e-4 * max|ref|, since each gradient entry is a sum of
terms whose size is bounded by the largest entries (measured differences are ~1e-6 relative to the max).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from inrcodec.kernels import _loader
from inrcodec.kernels import gaussian_raster as gr
from inrcodec.kernels import (
    build_cpu_kernel,
    count_pairs,
    rasterize_alpha_torch,
    rasterize_gaussians,
    rasterize_torch,
    render_region,
)

REPO = Path(__file__).resolve().parents[1]
HAS_CPU_KERNEL = _loader.cpu_library() is not None
needs_cpu_kernel = pytest.mark.skipif(not HAS_CPU_KERNEL, reason="compiled CPU rasteriser unavailable")


@pytest.fixture(autouse=True)
def _no_gsplat_jit(monkeypatch, tmp_path):
    # Anything that could reach gsplat must never JIT-build into ~/.cache.
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "torch_ext"))


def random_gaussians(n, h, w, c, seed=0, smin=0.4, smax=8.0, dtype=torch.float32):
    """Means over the image and a margin around it (some off-image), log-uniform sizes, random shear."""
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 2, generator=g, dtype=torch.float64) * torch.tensor([w * 1.3, h * 1.3]) - torch.tensor(
        [w * 0.15, h * 0.15])
    s = torch.exp(torch.empty(n, 2, dtype=torch.float64).uniform_(math.log(smin), math.log(smax), generator=g))
    l21 = torch.randn(n, generator=g, dtype=torch.float64) * s.mean(1) * 0.7
    sign = torch.where(torch.rand(n, generator=g) < 0.2, -1.0, 1.0).to(torch.float64)  # negative factors too
    chol = torch.stack([s[:, 0] * sign, l21, s[:, 1]], 1)
    colors = torch.randn(n, c, generator=g, dtype=torch.float64)
    return means.to(dtype), chol.to(dtype), colors.to(dtype)


def degenerate_gaussians(h, w, c):
    """Singular and near-singular factors, needles, far-off and huge Gaussians, one NaN mean."""
    rows = [
        # mx, my, l11, l21, l22
        (w * 0.3, h * 0.4, 0.0, 0.0, 0.0),  # Sigma = eps I: a point
        (2.5, 3.5, 0.0, 0.0, 0.0),  # a point exactly on a pixel centre
        (w * 0.5, h * 0.5, 6.0, 0.0, 0.0),  # l22 = 0: a horizontal line
        (w * 0.4, h * 0.6, 0.0, 5.0, 0.0),  # l11 = l22 = 0: a vertical line
        (w * 0.6, h * 0.3, 9.0, 9.0, 1e-3),  # diagonal needle
        (w * 0.2, h * 0.8, -7.0, -6.9, 0.05),  # needle with negative factors
        (w * 0.7, h * 0.7, 300.0, 280.0, 2.0),  # enormous, badly conditioned
        (w * 0.5, h * 0.5, 200.0, 0.0, 150.0),  # covers the whole image
        (-500.0, 40.0, 3.0, 0.0, 3.0),  # far off the image
        (w + 2.0, h + 2.0, 1.5, 0.5, 1.0),  # just off the corner, its rim reaches in
        (1e30, -1e30, 1.0, 0.0, 1.0),  # absurdly far
        (float("nan"), 3.0, 1.0, 0.0, 1.0),  # non-finite: skipped
        (4.0, 4.0, float("inf"), 0.0, 1.0),  # non-finite: skipped
    ]
    t = torch.tensor(rows, dtype=torch.float32)
    colors = torch.linspace(-1.0, 2.0, len(rows) * c, dtype=torch.float32).reshape(len(rows), c)
    return t[:, :2].contiguous(), t[:, 2:].contiguous(), colors


def render(backend, means, chol, colors, h, w):
    return rasterize_gaussians(means, chol, colors, h, w, backend=backend)


def forward_tol(means, chol, colors, h, w):
    with torch.no_grad():
        s = rasterize_torch(means, chol, colors.abs(), h, w)
    return 1e-5 * s + 1e-7


def grads(backend, means, chol, colors, h, w, upstream):
    m, c, col = (t.detach().clone().requires_grad_(True) for t in (means, chol, colors))
    img = render(backend, m, c, col, h, w)
    (img * upstream).sum().backward()
    return img.detach(), m.grad, c.grad, col.grad


def assert_grads_close(got, ref, what):
    for name, a, b in zip(("means", "chol", "colors"), got, ref):
        atol = 1e-4 * float(b.abs().max()) if b.numel() else 0.0
        torch.testing.assert_close(a, b, rtol=1e-4, atol=atol, msg=lambda m: f"{what} grad {name}: {m}")


# ------------------------------------------------------------------------------------------------------------
# constants, loader, build


def test_python_constants_mirror_the_header():
    text = (REPO / "cuda" / "gaussian_raster_math.h").read_text()
    defs = dict(re.findall(r"#define (GR_[A-Z_]+) ([0-9.e+-]+)f?\b", text))
    assert int(defs["GR_TILE"]) == gr.TILE
    for name, value in (("GR_QMAX", gr.QMAX), ("GR_COV_EPS", gr.COV_EPS), ("GR_BBOX_REL", gr.BBOX_REL),
                        ("GR_BBOX_ABS", gr.BBOX_ABS)):
        assert float(defs[name].rstrip("f")) == value, name


def test_cpu_kernel_is_built_where_a_compiler_exists():
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler: the torch fallback is the expected behaviour")
    st = _loader.status()
    assert st["cpu_library"], st
    assert st["cpu_simd"] is not None


@needs_cpu_kernel
def test_on_demand_build_into_cache(monkeypatch, tmp_path):
    if _loader._find_cxx() is None:
        pytest.skip("no C++ compiler")
    monkeypatch.setenv("INRCODEC_CACHE_DIR", str(tmp_path))
    path = build_cpu_kernel()
    assert path.parent == tmp_path / "kernels" and path.is_file()
    lib = _loader._setup_cpu_signatures(__import__("ctypes").CDLL(str(path)))
    assert lib.gr_cpu_source_hash().decode() == _loader.source_hash(extra=" ".join(_loader.CPU_FLAGS))
    means, chol, colors = random_gaussians(30, 20, 24, 3, seed=5)
    out = torch.empty(20, 24, 3)
    rc = lib.gr_forward_cpu(means.data_ptr(), chol.data_ptr(), colors.data_ptr(), 30, 3, 20, 24, out.data_ptr(), 1,
                            None)
    assert rc == 0
    torch.testing.assert_close(out, rasterize_torch(means, chol, colors, 20, 24), rtol=0,
                               atol=float(forward_tol(means, chol, colors, 20, 24).max()))
    assert build_cpu_kernel() == path  # cached: no rebuild


def test_fallback_to_torch_warns_once(monkeypatch):
    monkeypatch.setattr(_loader, "_cpu_tried", True)
    monkeypatch.setattr(_loader, "_cpu_lib", None)
    monkeypatch.setattr(_loader, "_cpu_error", "simulated: no compiler")
    monkeypatch.setattr(_loader, "_warned", False)
    means, chol, colors = random_gaussians(10, 12, 9, 2)
    with pytest.warns(RuntimeWarning, match="torch reference"):
        a = rasterize_gaussians(means, chol, colors, 12, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = rasterize_gaussians(means, chol, colors, 12, 9)
    torch.testing.assert_close(a, rasterize_torch(means, chol, colors, 12, 9))
    torch.testing.assert_close(a, b)
    with pytest.raises(RuntimeError, match="unavailable"):
        rasterize_gaussians(means, chol, colors, 12, 9, backend="cpu")


def test_bad_arguments():
    means, chol, colors = random_gaussians(4, 8, 8, 3)
    with pytest.raises(ValueError, match="means"):
        rasterize_gaussians(means[:, :1], chol, colors, 8, 8)
    with pytest.raises(ValueError, match="chol"):
        rasterize_gaussians(means, chol[:3], colors, 8, 8)
    with pytest.raises(ValueError, match="backend"):
        rasterize_gaussians(means, chol, colors, 8, 8, backend="opengl")
    with pytest.raises(ValueError, match="scale"):
        render_region(means, chol, colors, 0, 0, 8, 8, scale=0.0)
    if HAS_CPU_KERNEL:
        with pytest.raises(TypeError, match="float32"):
            rasterize_gaussians(means.double(), chol.double(), colors.double(), 8, 8, backend="cpu")


def test_gsplat_backend_never_touches_gsplat_on_cpu():
    before = "gsplat" in sys.modules
    means, chol, colors = random_gaussians(4, 8, 8, 3)
    with pytest.raises(ValueError, match="CUDA"):
        rasterize_gaussians(means, chol, colors, 8, 8, backend="gsplat")
    assert ("gsplat" in sys.modules) == before


# ------------------------------------------------------------------------------------------------------------
# the torch reference itself


def naive_dense(means, chol, colors, h, w):
    """Straight from the formula in float64: every pixel x every Gaussian, linalg.inv, the 3-sigma cutoff."""
    m, L, c = means.double(), chol.double(), colors.double()
    n = m.shape[0]
    Lm = torch.zeros(n, 2, 2, dtype=torch.float64)
    Lm[:, 0, 0], Lm[:, 1, 0], Lm[:, 1, 1] = L[:, 0], L[:, 1], L[:, 2]
    sigma = Lm @ Lm.transpose(1, 2) + gr.COV_EPS * torch.eye(2, dtype=torch.float64)
    K = torch.linalg.inv(sigma)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    p = torch.stack([xs + 0.5, ys + 0.5], -1).reshape(-1, 1, 2)
    d = p - m[None]
    q = torch.einsum("pni,nij,pnj->pn", d, K, d)
    wgt = torch.where(q <= gr.QMAX, torch.exp(-0.5 * q), torch.zeros_like(q))
    return (wgt @ c).reshape(h, w, -1), q.reshape(h, w, n)


@pytest.mark.parametrize("n,h,w,c", [(1, 9, 7, 1), (25, 11, 13, 3), (60, 21, 18, 2)])
def test_reference_matches_naive_dense_formula(n, h, w, c):
    means, chol, colors = random_gaussians(n, h, w, c, seed=n, smax=5.0, dtype=torch.float64)
    want, q = naive_dense(means, chol, colors, h, w)
    # float64 reference: identical cutoff decisions except on a measure-zero rim
    torch.testing.assert_close(rasterize_torch(means, chol, colors, h, w), want, rtol=1e-10, atol=1e-10)
    # float32 reference: equal wherever no Gaussian sits within float32 noise of the rim
    got32 = rasterize_torch(means.float(), chol.float(), colors.float(), h, w).double()
    clear = ((q - gr.QMAX).abs() > 1e-3).all(-1, keepdim=True)
    assert clear.float().mean() > 0.9
    torch.testing.assert_close(torch.where(clear, got32, want), want, rtol=1e-5, atol=1e-5)


def test_reference_chunking_does_not_change_the_result():
    means, chol, colors = random_gaussians(80, 30, 40, 3, seed=3)
    full = rasterize_torch(means, chol, colors, 30, 40)
    for mp in (1, 37, 1000):
        torch.testing.assert_close(rasterize_torch(means, chol, colors, 30, 40, max_pairs=mp), full,
                                   rtol=1e-6, atol=1e-6)
    m, c, col = (t.clone().requires_grad_(True) for t in (means, chol, colors))
    rasterize_torch(m, c, col, 30, 40, max_pairs=50).square().sum().backward()  # checkpointed chunks
    m2, c2, col2 = (t.clone().requires_grad_(True) for t in (means, chol, colors))
    rasterize_torch(m2, c2, col2, 30, 40).square().sum().backward()
    for a, b in ((m.grad, m2.grad), (c.grad, c2.grad), (col.grad, col2.grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_reference_gradcheck_float64():
    # Gaussians wide compared with the 6x5 image: no pixel is near a 3-sigma rim, so finite differences are
    # smooth. One sheared, one with negative factors, one nearly singular.
    means = torch.tensor([[2.0, 2.5], [4.1, 1.2], [1.3, 4.0]], dtype=torch.float64)
    chol = torch.tensor([[3.0, 1.0, 2.5], [-2.5, -1.5, 3.0], [4.0, 3.9, 0.3]], dtype=torch.float64)
    colors = torch.tensor([[0.5, -1.0], [1.5, 0.2], [-0.7, 0.9]], dtype=torch.float64)
    q = naive_dense(means, chol, colors, 6, 5)[1]
    assert float((q - gr.QMAX).abs().min()) > 0.1
    inputs = tuple(t.clone().requires_grad_(True) for t in (means, chol, colors))
    assert torch.autograd.gradcheck(lambda m, c, col: rasterize_torch(m, c, col, 6, 5), inputs, eps=1e-6,
                                    atol=1e-6, rtol=1e-5)


def test_alpha_reference_matches_sequential_compositing():
    means, chol, colors = random_gaussians(12, 7, 6, 3, seed=8, smin=1.0, smax=4.0, dtype=torch.float64)
    opac = torch.rand(12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = rasterize_alpha_torch(means, chol, colors, 7, 6, opac)
    _, q = naive_dense(means, chol, colors, 7, 6)
    want = torch.zeros(7, 6, 3, dtype=torch.float64)
    for y in range(7):
        for x in range(6):
            T = 1.0
            for i in range(12):
                if q[y, x, i] > gr.QMAX:
                    continue
                a = min(gr.ALPHA_MAX, float(opac[i]) * math.exp(-0.5 * float(q[y, x, i])))
                if a < gr.ALPHA_MIN:
                    continue
                if T * (1 - a) <= gr.T_MIN:
                    break
                want[y, x] += colors[i] * a * T
                T *= 1 - a
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------------------------------------------------
# CPU kernel against the reference


CASES = [  # n, h, w, c
    (0, 37, 53, 3),
    (1, 37, 53, 1),
    (1, 16, 16, 3),
    (150, 37, 53, 3),
    (300, 37, 53, 1),
    (120, 33, 17, 5),  # generic channel count
    (50, 20, 24, 12),  # several groups of per-pair sums in the backward
    (40, 1, 1, 2),
    (60, 17, 1, 3),
    (500, 64, 48, 3),  # exact multiples of the tile
]


@needs_cpu_kernel
@pytest.mark.parametrize("simd", ["native", "sse"])
@pytest.mark.parametrize("n,h,w,c", CASES)
def test_cpu_kernel_matches_reference(monkeypatch, simd, n, h, w, c):
    if simd == "sse":
        monkeypatch.setenv("GR_SIMD", "sse")  # read by the library on every call
    means, chol, colors = random_gaussians(n, h, w, c, seed=n + h)
    up = torch.randn(h, w, c, generator=torch.Generator().manual_seed(2))
    ref = grads("torch", means, chol, colors, h, w, up)
    got = grads("cpu", means, chol, colors, h, w, up)
    tol = forward_tol(means, chol, colors, h, w)
    assert ((got[0] - ref[0]).abs() <= tol).all(), float(((got[0] - ref[0]).abs() - tol).max())
    assert_grads_close(got[1:], ref[1:], f"n={n} {h}x{w}x{c}")
    assert got[1].shape == (n, 2) and got[2].shape == (n, 3) and got[3].shape == (n, c)


@needs_cpu_kernel
@pytest.mark.parametrize("c", [1, 3])
def test_cpu_kernel_degenerate_inputs(c):
    h, w = 29, 35
    means, chol, colors = degenerate_gaussians(h, w, c)
    img = render("cpu", means, chol, colors, h, w)
    ref = rasterize_torch(means, chol, colors, h, w)
    assert torch.isfinite(img).all()
    assert ((img - ref).abs() <= forward_tol(means, chol, colors, h, w)).all()
    # The point Gaussian on the centre of pixel (row 3, column 2) puts its colour there with weight exp(0).
    alone = render("cpu", means[1:2], chol[1:2], colors[1:2], h, w)
    expect = torch.zeros(h, w, c)
    expect[3, 2] = colors[1]
    torch.testing.assert_close(alone, expect, rtol=1e-6, atol=0)
    # Skipped (non-finite) and invisible Gaussians get exactly zero gradients; the rest match the reference.
    up = torch.randn(h, w, c, generator=torch.Generator().manual_seed(4))
    got = grads("cpu", means, chol, colors, h, w, up)
    want = grads("torch", means, chol, colors, h, w, up)
    for k in (8, 10, 11, 12):
        assert got[1][k].eq(0).all() and got[2][k].eq(0).all() and got[3][k].eq(0).all()
    finite = [k for k in range(len(means)) if k not in (8, 10, 11, 12)]
    assert all(torch.isfinite(g).all() for g in got[1:])
    # Needles have gradients ~1/l^3; compare each Gaussian against its own scale.
    for k in finite:
        for a, b in zip(got[1:], want[1:]):
            scale = float(b[k].abs().max()) + 1e-6
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-4 * scale, msg=f"gaussian {k}")


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_only_invisible_or_invalid_gaussians(backend):
    if backend == "cpu" and not HAS_CPU_KERNEL:
        pytest.skip("compiled CPU rasteriser unavailable")
    means = torch.tensor([[float("nan"), 1.0], [-100.0, 5.0], [3.0, 3.0]])
    chol = torch.tensor([[1.0, 0.0, 1.0], [2.0, 0.0, 2.0], [float("nan"), 0.0, 1.0]])
    colors = torch.ones(3, 2)
    params = [t.clone().requires_grad_(True) for t in (means, chol, colors)]
    out = rasterize_gaussians(*params, 6, 7, backend=backend)
    assert out.shape == (6, 7, 2) and out.eq(0).all()
    out.sum().backward()
    assert all(p.grad is not None and p.grad.eq(0).all() for p in params)


@needs_cpu_kernel
def test_cpu_kernel_extreme_conditioning_fuzz():
    # Random needles and huge shears: the tile culling must never drop a pixel the reference keeps.
    g = torch.Generator().manual_seed(11)
    n, h, w = 200, 40, 70
    means = torch.rand(n, 2, generator=g) * torch.tensor([w, h])
    big = torch.exp(torch.empty(n).uniform_(0, 5, generator=g))
    small = torch.exp(torch.empty(n).uniform_(-9, 0, generator=g))
    ang = torch.rand(n, generator=g) * math.pi
    chol = torch.stack([big * torch.cos(ang), big * torch.sin(ang), small], 1)
    colors = torch.randn(n, 3, generator=g)
    img = render("cpu", means, chol, colors, h, w)
    ref = rasterize_torch(means, chol, colors, h, w)
    assert ((img - ref).abs() <= forward_tol(means, chol, colors, h, w)).all()


@needs_cpu_kernel
def test_cpu_kernel_is_deterministic_across_thread_counts():
    means, chol, colors = random_gaussians(800, 70, 90, 3, seed=9)
    up = torch.randn(70, 90, 3, generator=torch.Generator().manual_seed(3))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = grads("cpu", means, chol, colors, 70, 90, up)
        torch.set_num_threads(2)
        b = grads("cpu", means, chol, colors, 70, 90, up)
    finally:
        torch.set_num_threads(before)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


@needs_cpu_kernel
def test_cpu_kernel_binning_kept_for_backward():
    # rasterize_gaussians keeps the forward's tile lists for the backward: same bits as rebuilding them, also
    # when the graph is traversed twice; a handle for other sizes is refused.
    means, chol, colors = random_gaussians(300, 40, 50, 3, seed=12)
    up = torch.randn(40, 50, 3, generator=torch.Generator().manual_seed(1))
    params = [t.clone().requires_grad_(True) for t in (means, chol, colors)]
    out = rasterize_gaussians(*params, 40, 50, backend="cpu")
    g1 = torch.autograd.grad(out, params, up, retain_graph=True)
    g2 = torch.autograd.grad(out, params, up)
    fresh = [t.clone().requires_grad_(True) for t in (means, chol, colors)]
    g3 = torch.autograd.grad(gr._CpuRaster.apply(*fresh, 40, 50, False), fresh, up)
    for a, b, c in zip(g1, g2, g3):
        assert torch.equal(a, b) and torch.equal(a, c)
    lib = _loader.cpu_library()
    h = lib.gr_bins_create(means.data_ptr(), chol.data_ptr(), 300, 40, 50, 1)
    try:
        out = torch.empty(41, 50, 3)
        assert lib.gr_forward_cpu(means.data_ptr(), chol.data_ptr(), colors.data_ptr(), 300, 3, 41, 50,
                                  out.data_ptr(), 1, h) == 1
    finally:
        lib.gr_bins_free(h)


@needs_cpu_kernel
def test_tile_culling_of_needles():
    # A long diagonal needle: its bbox covers 6x6 tiles but the ellipse only a diagonal band of them.
    means = torch.tensor([[48.0, 48.0]])
    chol = torch.tensor([[10.0, 10.0, 0.05]])
    pairs = count_pairs(means, chol, 96, 96)
    assert 6 <= pairs < 20
    colors = torch.ones(1, 1)
    torch.testing.assert_close(render("cpu", means, chol, colors, 96, 96), rasterize_torch(means, chol, colors,
                                                                                          96, 96))


# ------------------------------------------------------------------------------------------------------------
# conventions: regions, scales, autograd plumbing


def test_render_region_crop_equals_slice_of_full_render():
    g = torch.Generator().manual_seed(6)
    means = torch.round(torch.rand(200, 2, generator=g) * torch.tensor([60.0, 40.0]) * 64) / 64  # exact shifts
    chol = torch.stack([torch.rand(200, generator=g) * 4 + 0.5, torch.randn(200, generator=g),
                        torch.rand(200, generator=g) * 4 + 0.5], 1)
    colors = torch.rand(200, 3, generator=g)
    for backend in ("torch",) + (("cpu",) if HAS_CPU_KERNEL else ()):
        full = rasterize_gaussians(means, chol, colors, 40, 60, backend=backend)
        crop = render_region(means, chol, colors, 5, 7, 20, 30, backend=backend)
        torch.testing.assert_close(crop, full[5:25, 7:37], rtol=0, atol=1e-6)
        outside = render_region(means, chol, colors, -10, -12, 12, 14, backend=backend)
        torch.testing.assert_close(outside[10:, 12:], full[:2, :2], rtol=0, atol=1e-6)


def test_render_region_scale_keeps_pixel_centre_convention():
    # One wide Gaussian: the intensity centroid of the render is the mean, at scale 1 and at scale 2.
    means = torch.tensor([[10.3, 8.7]])
    chol = torch.tensor([[2.5, 0.8, 2.0]])
    colors = torch.ones(1, 1)
    for scale in (1.0, 2.0, 0.5):
        h, w = int(20 * scale), int(22 * scale)
        img = render_region(means, chol, colors, 0, 0, h, w, scale=scale)[..., 0]
        ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        cx, cy = float((img * xs).sum() / img.sum()) / scale, float((img * ys).sum() / img.sum()) / scale
        assert abs(cx - 10.3) < 0.03 and abs(cy - 8.7) < 0.03, (scale, cx, cy)
    torch.testing.assert_close(render_region(means, chol, colors, 0, 0, 40, 44, scale=2.0),
                               rasterize_gaussians(means * 2, chol * 2, colors, 40, 44))


def test_auto_backend_handles_float64_and_empty():
    means, chol, colors = random_gaussians(20, 10, 12, 2, dtype=torch.float64)
    out = rasterize_gaussians(means, chol, colors, 10, 12)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, rasterize_torch(means, chol, colors, 10, 12))
    e = rasterize_gaussians(torch.zeros(0, 2), torch.zeros(0, 3), torch.zeros(0, 3), 5, 4)
    assert e.shape == (5, 4, 3) and e.eq(0).all()
    z = rasterize_gaussians(*random_gaussians(5, 0, 7, 3)[:3], 0, 7)
    assert z.shape == (0, 7, 3)


@needs_cpu_kernel
def test_cpu_kernel_partial_requires_grad_and_no_grad():
    means, chol, colors = random_gaussians(30, 20, 20, 3)
    col = colors.clone().requires_grad_(True)
    render("cpu", means, chol, col, 20, 20).sum().backward()
    want = colors.clone().requires_grad_(True)
    rasterize_torch(means, chol, want, 20, 20).sum().backward()
    torch.testing.assert_close(col.grad, want.grad, rtol=1e-4, atol=1e-4 * float(want.grad.abs().max()))
    with torch.no_grad():
        out = render("cpu", means, chol, colors, 20, 20)
    assert not out.requires_grad


# ------------------------------------------------------------------------------------------------------------
# CUDA


def test_check_nvcc_script():
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not on PATH")
    res = subprocess.run(["bash", str(REPO / "cuda" / "check_nvcc.sh")], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK" in res.stdout


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
class TestCuda:
    @pytest.mark.parametrize("n,h,w,c", [(0, 37, 53, 3), (1, 37, 53, 1), (400, 37, 53, 3), (300, 64, 80, 5),
                                         (2000, 130, 170, 4)])
    def test_cuda_kernel_matches_reference(self, n, h, w, c):
        means, chol, colors = random_gaussians(n, h, w, c, seed=n + 1)
        up = torch.randn(h, w, c, generator=torch.Generator().manual_seed(2))
        ref = grads("torch", means, chol, colors, h, w, up)
        dev = [t.cuda() for t in (means, chol, colors)]
        got = [t.cpu() for t in grads("cuda", *dev, h, w, up.cuda())]
        assert ((got[0] - ref[0]).abs() <= forward_tol(means, chol, colors, h, w)).all()
        assert_grads_close(got[1:], ref[1:], f"cuda n={n}")

    def test_cuda_kernel_degenerate_and_deterministic(self):
        h, w = 29, 35
        means, chol, colors = degenerate_gaussians(h, w, 3)
        dev = [t.cuda() for t in (means, chol, colors)]
        a = rasterize_gaussians(*dev, h, w, backend="cuda")
        b = rasterize_gaussians(*dev, h, w, backend="cuda")
        assert torch.equal(a, b)
        ref = rasterize_torch(means, chol, colors, h, w)
        assert ((a.cpu() - ref).abs() <= forward_tol(means, chol, colors, h, w)).all()
        up = torch.randn(h, w, 3, generator=torch.Generator().manual_seed(5)).cuda()
        g1 = grads("cuda", *dev, h, w, up)
        g2 = grads("cuda", *dev, h, w, up)
        for x, y in zip(g1, g2):
            assert torch.equal(x, y)

    def test_cuda_matches_cpu_kernel_on_a_large_image(self):
        """A 1100x1700 image with 40 000 Gaussians: ~7 000 tiles and ~10^5 (tile, Gaussian) pairs exercise the grid
        sizes, the radix sort's key bits and the per-pair slots at a scale the small cases above do not reach.
        The CPU kernel (held to the torch reference by the tests above) is the reference here: the torch one
        would take minutes. Same tolerances as against torch: both differ from it only by exp and sum rounding."""
        h, w, c = 1100, 1700, 3
        means, chol, colors = random_gaussians(40000, h, w, c, seed=11, smin=0.5, smax=12.0)
        up = torch.randn(h, w, c, generator=torch.Generator().manual_seed(7))
        ref = grads("cpu", means, chol, colors, h, w, up)
        dev = [t.cuda() for t in (means, chol, colors)]
        got = [t.cpu() for t in grads("cuda", *dev, h, w, up.cuda())]
        with torch.no_grad():
            tol = 2e-5 * rasterize_gaussians(means, chol, colors.abs(), h, w, backend="cpu") + 2e-7
        assert ((got[0] - ref[0]).abs() <= tol).all()
        assert_grads_close(got[1:], ref[1:], "cuda vs cpu, large image")

    def test_auto_uses_cuda_for_cuda_tensors(self):
        means, chol, colors = random_gaussians(50, 20, 20, 3)
        out = rasterize_gaussians(means.cuda(), chol.cuda(), colors.cuda(), 20, 20)
        assert out.is_cuda
        assert _loader.status()["cuda_library"]

    def test_gsplat_backend_matches_alpha_reference_away_from_rims(self):
        pytest.importorskip("gsplat")
        h, w = 64, 80
        means, chol, colors = random_gaussians(100, h, w, 3, seed=4, smin=0.5, smax=3.0)
        colors = colors.abs()
        got = rasterize_gaussians(means.cuda(), chol.cuda(), colors.cuda(), h, w, backend="gsplat").cpu()
        want = rasterize_alpha_torch(means, chol, colors, h, w)
        # gsplat keeps every pixel of the tiles its bounding boxes touch where alpha >= 1/255, i.e. out to
        # q = 2 ln 255 = 11.09, where the reference stops at the 3-sigma rim q = 9 (first run on an H100, session
        # 24: the mean over all pixels differed by 2.4e-3). Pixels that some Gaussian reaches only between the two
        # (q in (9, 11.2], a margin for gsplat's other operation order) are rim pixels; everywhere else both
        # composite the same Gaussians in the same order and differ by exp rounding (~1e-6 relative) plus at
        # most one transmittance-stop decision flipped near T = 1e-4 (<= 1e-4 x colour).
        s = gr.gaussian_setup(means, chol, h, w)
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        dx = xs.reshape(-1, 1).float() + 0.5 - s["mx"][None]
        dy = ys.reshape(-1, 1).float() + 0.5 - s["my"][None]
        q = gr._q(s["A"][None], s["B"][None], s["C"][None], dx, dy)
        valid = s["valid"][None]
        rim = ((q > gr.QMAX) & (q <= 11.2) & valid).any(1).reshape(h, w)
        covered = ((q <= gr.QMAX) & valid).any(1).reshape(h, w)
        clean = covered & ~rim
        assert float(clean.float().mean()) > 0.25  # the comparison below is not vacuous
        diff = (got - want).abs()
        assert float(diff[clean].max()) <= 2e-4 * float(colors.max())
        # Rim pixels: gsplat adds Gaussians of alpha < exp(-4.5) = 0.011 there.
        assert float(diff.max()) < 0.05 * float(colors.max())
