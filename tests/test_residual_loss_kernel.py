"""The compiled residual-pricing loss (``cuda/residual_loss_cpu.cpp``, ``kernels.residual_loss``) against its torch
references: the fused torch form (``_fused_torch``) and autograd through ``residual_rd_loss_reference``, value and
gradient, on random and real images, sizes that are and are not multiples of 8, gray and RGB, both SIMD copies,
one and two threads; finite differences where J is smooth; the fallbacks where it cannot run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inrcodec.kernels import _loader, dct_residual
from inrcodec.kernels import residual_loss as kernel
from inrcodec.models import image_dct, residual_loss

pytestmark = pytest.mark.skipif(_loader.cpu_library() is None, reason="no compiled CPU library")

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak" / "kodim07.png"


def _pair(shape, seed=0, noise=0.03):
    rng = np.random.default_rng(seed)
    ref = torch.from_numpy(rng.random(shape).astype(np.float32))
    pred = ref + noise * torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    return pred, ref


def _both(pred, ref, delta, **kw):
    """(value, gradient) of the kernel and of the reference (autograd through residual_rd_loss_reference, plus
    the weighted MSE)."""
    weight, mse_weight = kw.get("weight", 1.0), kw.get("mse_weight", 0.0)
    p = pred.clone().requires_grad_(True)
    a = residual_loss.residual_rd_loss(p, ref, delta, 255.0, weight=weight, mse_weight=mse_weight)
    (ga,) = torch.autograd.grad(a, p)
    q = pred.clone().requires_grad_(True)
    b = weight * residual_loss.residual_rd_loss_reference(q, ref, delta, 255.0) + mse_weight * torch.mean(
        (q - ref) ** 2)
    (gb,) = torch.autograd.grad(b, q)
    return float(a.detach()), ga, float(b.detach()), gb


def _close(va, ga, vb, gb):
    assert va == pytest.approx(vb, rel=2e-5)  # float32 sums of ~1e5 terms in another order
    np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=0, atol=2e-5 * float(gb.abs().max()))


@pytest.mark.parametrize("shape", [(16, 16, 3), (13, 10, 1), (9, 17, 3), (1, 1, 3), (8, 1, 1), (37, 50, 3)])
@pytest.mark.parametrize("delta", [2.0, 8.0, 40.0])
def test_matches_autograd_reference(shape, delta):
    pred, ref = _pair(shape, seed=shape[0] * 100 + shape[1])
    _close(*_both(pred, ref, delta))


@pytest.mark.parametrize("portable", [False, True])
def test_both_simd_copies_with_the_mse(monkeypatch, portable):
    if portable:
        monkeypatch.setenv("INRCODEC_DCT_PORTABLE", "1")
    pred, ref = _pair((45, 67, 3), seed=7)
    _close(*_both(pred, ref, 6.0, weight=0.5 / 255**2, mse_weight=0.5))


def test_matches_the_fused_torch_form_on_a_real_image():
    """kodim07 (a 200x300 crop at an odd offset) against a smoothed copy of itself, as a fitted base leaves it."""
    if not KODAK.is_file():
        pytest.skip("Kodak data not present")
    from PIL import Image

    img = np.asarray(Image.open(KODAK))[101:301, 33:333].astype(np.float32) / 255
    ref = torch.from_numpy(img)
    pred = torch.nn.functional.avg_pool2d(ref.permute(2, 0, 1)[None], 5, stride=1, padding=2,
                                          count_include_pad=False)[0].permute(1, 2, 0).contiguous()
    lam = image_dct.RDOQ_LAMBDA
    for delta in (4.0, 12.0, 30.0):
        out = kernel.loss_and_grad(pred, ref, residual_loss.channel_steps(delta, 3), residual_loss.channel_weights(3),
                                   lam * residual_loss.BITS_CODED, lam * residual_loss.BITS_PER_OCTAVE / np.log(2),
                                   255.0, delta * delta / (3 * 200 * 304), 0.0)
        value, grad = residual_loss._fused_torch(pred, ref, delta, 255.0, lam, image_dct.CHROMA_FACTOR)
        assert out is not None
        assert out[0] * delta * delta / (3 * 200 * 304) == pytest.approx(value, rel=2e-5)
        np.testing.assert_allclose(out[2].numpy(), grad.numpy(), rtol=0, atol=2e-5 * float(grad.abs().max()))


def test_two_threads_give_the_same_gradient(monkeypatch):
    pred, ref = _pair((70, 45, 3), seed=2)
    p = pred.clone().requires_grad_(True)
    residual_loss.residual_rd_loss(p, ref, 5.0, 255.0).backward()
    one = p.grad.clone()
    monkeypatch.setattr(dct_residual, "PARALLEL_MIN_PIXELS", 0)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        p.grad = None
        residual_loss.residual_rd_loss(p, ref, 5.0, 255.0).backward()
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(p.grad, one)  # blocks are independent: no sum across threads in the gradient


@pytest.mark.parametrize("delta,c,eps,rel", [(1e4, 3, 1e-2, 1e-3), (1e4, 1, 1e-2, 1e-3), (0.5, 3, 1e-4, 5e-3)])
def test_finite_differences(delta, c, eps, rel):
    """Far above every coefficient all are zeroed (a quadratic: any difference step); at a fine step most are coded
    (the log branch) and a few near zero (kinks), so a small step, where float32 values (~1, differences ~3e-5
    of them) leave ~1e-3 relative error. Central difference along a random direction against the gradient."""
    pred, ref = _pair((12, 19, c), seed=4, noise=0.2)
    p = pred.clone().requires_grad_(True)
    residual_loss.residual_rd_loss(p, ref, delta, 255.0).backward()
    v = torch.from_numpy(np.random.default_rng(1).standard_normal(pred.shape).astype(np.float32))
    hi = float(residual_loss.residual_rd_loss(pred + eps * v, ref, delta, 255.0))
    lo = float(residual_loss.residual_rd_loss(pred - eps * v, ref, delta, 255.0))
    assert (hi - lo) / (2 * eps) == pytest.approx(float((p.grad * v).sum()), rel=rel)


def test_falls_back_to_torch(monkeypatch):
    """float64 and a missing library take the torch form (same value); the kernel reports None for them."""
    pred, ref = _pair((10, 12, 3), seed=9)
    expect = float(residual_loss.residual_rd_loss(pred, ref, 6.0, 255.0, compiled=False))
    assert kernel.loss_and_grad(pred.double(), ref.double(), [6.0] * 3, [1.0] * 3, 1.0, 1.0, 255.0, 1.0, 0.0) is None
    assert float(residual_loss.residual_rd_loss(pred.double(), ref.double(), 6.0, 255.0)) == pytest.approx(expect,
                                                                                                         rel=1e-5)
    monkeypatch.setattr(_loader, "cpu_library", lambda: None)
    assert kernel.loss_and_grad(pred, ref, [6.0] * 3, [1.0] * 3, 1.0, 1.0, 255.0, 1.0, 0.0) is None
    assert float(residual_loss.residual_rd_loss(pred, ref, 6.0, 255.0)) == pytest.approx(expect, rel=1e-6)


def test_the_dct_matrix_has_the_symmetry_the_kernel_uses():
    d = kernel._matrix()
    sign = np.where(np.arange(8) % 2, -1.0, 1.0)[:, None]
    np.testing.assert_array_equal(d[:, ::-1], (sign * d).astype(np.float32))
