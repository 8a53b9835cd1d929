"""Fused latent-grid kernels added for step speed, each against its torch reference, forward and backward."""

import pytest
import torch

from inrcodec.kernels import latentgrid_mlp as K

from helpers import value_and_grads


@pytest.fixture(scope="module")
def lib(latentgrid_lib):
    """Every test here runs at each SIMD level the machine supports (conftest.latentgrid_lib)."""
    return latentgrid_lib


@pytest.mark.parametrize("C,H,W,k,relu,threads", [(3, 17, 29, 3, True, 1), (3, 17, 29, 3, False, 1),
                                                   (2, 9, 40, 5, True, 1), (1, 6, 7, 1, False, 1),
                                                   (3, 200, 500, 3, True, 2)])
def test_residual_block_kernel_matches_torch_reference(lib, C, H, W, k, relu, threads):
    """act(x + conv(x)) with replicate padding: kernel vs x + conv2d(pad(x)) then relu; the last case is large
    enough for the threaded element-wise passes."""
    from inrcodec.kernels.latentgrid_conv import residual_block, residual_block_torch

    g = torch.Generator().manual_seed(C * H + W + k)
    x = torch.randn(C, H, W, generator=g)
    weight = torch.randn(C, C, k, k, generator=g) * 0.4
    bias = torch.randn(C, generator=g) * 0.2
    grad = torch.randn(C, H, W, generator=g)
    torch.set_num_threads(threads)
    try:
        outs = [value_and_grads(lambda *a: fn(*a, relu), (x, weight, bias), grad)
                for fn in (residual_block, residual_block_torch)]
    finally:
        torch.set_num_threads(1)
    if relu:  # the ReLU mask is exercised both ways
        assert 0.1 < float((outs[1][0] > 0).float().mean()) < 0.9
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-5)
    for a, b in zip(outs[0][2:], outs[1][2:]):  # sums over C x H x W products: relative to their magnitude
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max() + 1))


@pytest.mark.parametrize("shape,box,kind", [((24, 36), ((0, 24), (0, 36)), "cubic"),
                                            ((24, 36), ((5, 17), (3, 30)), "cubic"),
                                            ((13, 9), ((0, 13), (0, 9)), "linear")])
def test_stacked_levels_kernel_matches_per_level_reference(lib, shape, box, kind, monkeypatch):
    """upsample_levels' one-buffer kernel vs per level (torch resampling, or the narrowed level at full size)
    then torch.stack, forward and backward, on the full grid and on a box (render's slabs)."""
    from inrcodec.models.latentgrid import upsampling as U

    g = torch.Generator().manual_seed(shape[0] + box[0][0])
    shapes = [tuple(-(-n // 2**lvl) for n in shape) for lvl in range(4)]
    ys = [torch.randn(s, generator=g) for s in shapes]
    taps = [None if s == shape else [U._taps(s[a], shape[a], *box[a], kind) for a in range(2)] for s in shapes]
    grad = torch.randn(len(shapes), box[0][1] - box[0][0], box[1][1] - box[1][0], generator=g)
    outs = []
    for use in (True, False):
        monkeypatch.setattr(K, "kernel_usable", lambda x, use=use: use)
        yy = [y.clone().requires_grad_(True) for y in ys]
        out = U.upsample_levels(yy, taps, list(box))
        out.backward(grad)
        outs.append((out.detach(), [y.grad for y in yy]))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert float(outs[0][1][0].abs().sum()) > 0  # the full-size level gets its gradient too


@pytest.mark.parametrize("rows", [None, "every-4th"])
def test_context_backward_threaded_is_deterministic_and_matches_reference(lib, rows):
    """The context-feature backward in parallel column chunks: the same bits on 1 and 2 threads, and the torch
    reference's gradients (a level large enough for the threaded path)."""
    from inrcodec.kernels.latentgrid_context import context_2d
    from inrcodec.models.latentgrid import context_features

    g = torch.Generator().manual_seed(7)
    H, W = 300, 333
    y, z = torch.randn(H, W, generator=g), torch.randn(150, 167, generator=g)
    idx = None if rows is None else torch.arange(1, H, 4)
    n_rows = H if idx is None else idx.shape[0]
    grad = torch.randn(n_rows * W, 11, generator=g)
    got = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            yy, zz = y.clone().requires_grad_(True), z.clone().requires_grad_(True)
            context_2d(1, 4, yy, zz, idx).backward(grad)
        finally:
            torch.set_num_threads(1)
        got.append((yy.grad, zz.grad))
    assert torch.equal(got[0][0], got[1][0]) and torch.equal(got[0][1], got[1][1])
    yy, zz = y.clone().requires_grad_(True), z.clone().requires_grad_(True)
    ref = context_features(1, 4, yy, zz)
    ref = (ref if idx is None else ref.index_select(0, idx)).reshape(-1, 11)
    ref.backward(grad)
    torch.testing.assert_close(got[1][0], yy.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1][1], zz.grad, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("H,W,coarse,rows,threads", [(37, 53, True, None, 1), (16, 8, False, None, 1),
                                                    (300, 333, True, "every-4th", 2), (130, 97, True, None, 2)])
def test_arm_rate_with_built_in_context_matches_features_then_arm_rate(lib, H, W, coarse, rows, threads):
    """lg_arm_rate_ctx2d (features built per block in the fused context MLP + rate kernel) against the torch
    composition it replaces: context_features, the row subset, then the MLP and the Laplace rate; bits and the
    gradients of the latents, the coarser level and the MLP's parameters."""
    from inrcodec.kernels.latentgrid_arm import arm_rate_ctx2d, arm_rate_reference
    from inrcodec.models.latentgrid import context_features

    g = torch.Generator().manual_seed(H * W)
    layers = []
    for a, b in zip((11, 16, 16), (16, 16, 2)):
        m = torch.nn.Linear(a, b)
        with torch.no_grad():
            m.weight.copy_(torch.randn(b, a, generator=g) / a**0.5)
            m.bias.copy_(torch.randn(b, generator=g) * 0.3)
        layers.append(m)
    with torch.no_grad():
        layers[-1].bias.copy_(torch.tensor([0.0, -1.0]))
    y = torch.round(torch.randn(H, W, generator=g) * 3) + 0.3 * torch.randn(H, W, generator=g)
    z = torch.randn(-(-H // 2), -(-W // 2), generator=g) * 3 if coarse else None
    idx = None if rows is None else torch.arange(2, H, 4)

    def run(kernel):
        for m in layers:
            m.zero_grad(set_to_none=True)
        yy = y.clone().requires_grad_(True)
        zz = None if z is None else z.clone().requires_grad_(True)
        if kernel:
            bits = arm_rate_ctx2d(2, 5, yy, zz, idx, layers, (-5.0, 7.0))
        else:
            f = context_features(2, 5, yy, zz)
            v = yy
            if idx is not None:
                f, v = f.index_select(0, idx), v.index_select(0, idx)
            bits = arm_rate_reference(f.reshape(-1, 11), v.reshape(-1), layers, (-5.0, 7.0))
        (0.37 * bits).backward()
        return [bits.detach(), yy.grad, None if zz is None else zz.grad] + [p.grad.clone() for m in layers
                                                                            for p in (m.weight, m.bias)]

    torch.set_num_threads(threads)
    try:
        got = run(True)
        again = run(True)  # a given thread count gives the same bits (private gradient copies summed in order)
        with torch.no_grad():
            nograd = arm_rate_ctx2d(2, 5, y, z, idx, layers, (-5.0, 7.0))
    finally:
        torch.set_num_threads(1)
    assert all(a is None and b is None or torch.equal(a, b) for a, b in zip(got, again))
    ref = run(False)
    torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(nograd, got[0])
    torch.testing.assert_close(got[1], ref[1], rtol=1e-4, atol=1e-5)
    if z is not None:
        torch.testing.assert_close(got[2], ref[2], rtol=1e-4, atol=1e-5)
    for a, b in zip(got[3:], ref[3:]):  # sums over the latents: relative to their scale
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max() + 1))
    assert float(got[1].abs().max()) > 0
