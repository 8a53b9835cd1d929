"""Latent-grid kernels against their pure-torch references, forward and backward, on random inputs."""

import numpy as np
import pytest
import torch

from inrcodec.kernels import latentgrid_mlp as K

from helpers import value_and_grads


@pytest.fixture(scope="module")
def lib(latentgrid_lib):
    """Every test here runs at each SIMD level the machine supports (conftest.latentgrid_lib)."""
    return latentgrid_lib


def _layers(dims, seed):
    g = torch.Generator().manual_seed(seed)
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        m = torch.nn.Linear(a, b)
        with torch.no_grad():
            m.weight.copy_(torch.randn(b, a, generator=g) / a**0.5)
            m.bias.copy_(torch.randn(b, generator=g) * 0.3)
        layers.append(m)
    return layers


def _grads(x, layers, use_kernel, feature_major, grad_out):
    x = x.detach().clone().requires_grad_(True)
    for m in layers:
        m.zero_grad(set_to_none=True)
    y = K.mlp(x, layers, feature_major=feature_major, use_kernel=use_kernel)
    y.backward(grad_out)
    return y.detach(), x.grad, [p.grad.clone() for m in layers for p in (m.weight, m.bias)]


# widths of the synthesis MLP (levels -> hidden -> C) and of the context model (4d+3 -> hidden -> 2); sample
# counts that are and are not multiples of the kernel's 64-sample block
@pytest.mark.parametrize("dims,n", [((7, 24, 24, 3), 1000), ((11, 16, 16, 2), 64), ((5, 8, 1), 77),
                                    ((3, 2), 130), ((9, 40, 33, 17, 4), 300)])
@pytest.mark.parametrize("feature_major", [False, True])
def test_mlp_kernel_matches_torch_reference(lib, dims, n, feature_major):
    torch.manual_seed(n)
    layers = _layers(dims, seed=n)
    # input in both layouts the model uses: (n, d) rows, and a (d, n) buffer seen through .t()
    x = torch.randn(dims[0], n).t() if feature_major else torch.randn(n, dims[0])
    grad_out = torch.randn(n, dims[-1])
    ref = _grads(x, layers, False, False, grad_out)
    got = _grads(x, layers, True, feature_major, grad_out)
    if feature_major:
        assert got[0].t().is_contiguous()
    torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1], ref[1], rtol=1e-4, atol=1e-5)
    for a, b in zip(got[2], ref[2]):
        # weight gradients are sums over n samples: compare relative to their scale
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max() + 1))
    # some hidden units are inactive for some samples (the ReLU mask is exercised)
    h = torch.nn.functional.linear(x, layers[0].weight, layers[0].bias)
    assert 0 < float((h > 0).float().mean()) < 1 or len(dims) == 2


def test_mlp_kernel_gradient_without_input_gradient_and_threads(lib):
    layers = _layers((7, 16, 3), seed=1)
    x = torch.randn(513, 7)  # no requires_grad: only the parameters get gradients
    outs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for m in layers:
            m.zero_grad(set_to_none=True)
        y = K.mlp(x, layers, use_kernel=True)
        (y**2).sum().backward()
        outs.append((y.detach(), [m.weight.grad.clone() for m in layers]))
    torch.set_num_threads(1)
    # samples are independent: the forward is identical whatever the thread count
    assert torch.equal(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    ref = K.mlp_torch(x, [m.weight for m in layers], [m.bias for m in layers])
    torch.testing.assert_close(outs[0][0], ref.detach(), rtol=1e-5, atol=1e-5)


def test_latentgrid_step_same_with_kernel_and_reference(lib, monkeypatch):
    """The model's loss and gradients are the same whichever MLP path runs (a 20x28 RGB signal)."""
    from helpers import smooth_rgb
    from inrcodec.models.latentgrid import LatentGrid
    from inrcodec.signal import Signal

    sig = Signal(smooth_rgb(20, 28, seed=4))
    desc = sig.describe()
    target = torch.from_numpy(sig.normalized())
    results = []
    for use in (True, False):
        torch.manual_seed(0)
        net = LatentGrid(LatentGrid.config_for(desc, 4000.0), desc)
        with torch.no_grad():
            for y in net.latents:
                y.copy_(torch.randn(y.shape) * 2)
            for m in net.convs:
                m.weight.normal_(0, 0.1)
        net.set_targets(4000.0, None)
        net.on_progress(0.95)  # straight-through phase: deterministic latents
        monkeypatch.setattr(K, "kernel_usable", lambda x, use=use: use)
        pred, ref = net.training_batch(target, torch.Generator().manual_seed(0))
        loss = torch.mean((pred - ref) ** 2) + net.regularizer()
        loss.backward()
        results.append((float(loss.detach()), [p.grad.clone() for p in net.parameters()]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6 * float(b.abs().max() + 1))
    assert any(float(g.abs().max()) > 0 for g in results[0][1])


def test_no_compiler_falls_back_to_reference(monkeypatch):
    layers = _layers((4, 8, 2), seed=3)
    x = torch.randn(10, 4)
    monkeypatch.setattr(K, "library", lambda: None)
    assert not K.kernel_usable(x)
    y = K.mlp(x, layers)
    np.testing.assert_allclose(y.detach().numpy(),
                               K.mlp_torch(x, [m.weight for m in layers], [m.bias for m in layers]).detach().numpy())


@pytest.mark.parametrize("n", [1, 100, 70000])
def test_rate_kernel_matches_torch_reference(lib, n):
    from inrcodec.kernels.latentgrid_rate import laplace_rate

    g = torch.Generator().manual_seed(n)
    # latents near and far from the means (centre and tail bins), scales from tiny to large, some raw log2
    # scales outside the clamp range (no gradient there) and some symbols beyond the 24-bit cap
    x = torch.randn(n, generator=g) * 6
    arm = torch.stack([x + torch.randn(n, generator=g) * torch.rand(n, generator=g) * 3,
                       torch.rand(n, generator=g) * 16 - 7], dim=1)
    if n > 1:
        x[: n // 50] += 400.0
    got, ref = [], []
    for use, out in ((True, got), (False, ref)):
        xx, aa = x.clone().requires_grad_(True), arm.clone().requires_grad_(True)
        bits = laplace_rate(xx, aa, (-5.0, 7.0), use_kernel=use)
        bits.backward(torch.tensor(0.7))
        out += [bits.detach(), xx.grad, aa.grad]
    torch.testing.assert_close(got[0], ref[0], rtol=2e-5, atol=1e-3)
    torch.testing.assert_close(got[1], ref[1], rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(got[2], ref[2], rtol=1e-3, atol=1e-4)
    if n > 100:
        assert float((ref[2][:, 1] == 0).float().mean()) > 0.05  # clamped scales: the zero-gradient case is hit


@pytest.mark.parametrize("shape,coarse_shape", [((9, 13), (5, 7)), ((8, 8), (4, 4)), ((1, 5), (1, 3)),
                                                ((6, 3), None), ((2, 2), (1, 1))])
def test_context_kernel_matches_torch_reference(lib, shape, coarse_shape):
    from inrcodec.kernels.latentgrid_context import context_2d
    from inrcodec.models.latentgrid import context_features

    g = torch.Generator().manual_seed(sum(shape))
    y = torch.randn(shape, generator=g)
    z = None if coarse_shape is None else torch.randn(coarse_shape, generator=g)
    grad = torch.randn(shape[0] * shape[1], 11, generator=g)
    outs = []
    for fn in (lambda a, b: context_2d(2, 5, a, b),
               lambda a, b: context_features(2, 5, a, b).reshape(-1, 11)):
        yy = y.clone().requires_grad_(True)
        zz = None if z is None else z.clone().requires_grad_(True)
        f = fn(yy, zz)
        f.backward(grad)
        outs.append((f.detach(), yy.grad, None if zz is None else zz.grad))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=0, atol=0)  # a gather: exactly the same values
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-6, atol=1e-6)
    if z is not None:
        torch.testing.assert_close(outs[0][2], outs[1][2], rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("kind", ["cubic", "linear"])
@pytest.mark.parametrize("src,dst,box", [((5, 7), (9, 13), None), ((3, 4), (12, 16), ((2, 9), (5, 16))),
                                         ((8, 8), (8, 8), None), ((1, 3), (2, 5), None), ((6, 5), (3, 2), None)])
def test_upsample_kernel_matches_torch_reference(lib, kind, src, dst, box):
    from inrcodec.kernels.latentgrid_upsample import upsample_2d
    from inrcodec.models.latentgrid import _resample_axis, _taps

    box = box or ((0, dst[0]), (0, dst[1]))
    taps = [_taps(m, n, lo, hi, kind) for m, n, (lo, hi) in zip(src, dst, box)]
    g = torch.Generator().manual_seed(src[0] * 31 + dst[1])
    y = torch.randn(src, generator=g)
    grad = torch.randn(box[0][1] - box[0][0], box[1][1] - box[1][0], generator=g)

    def ref(v):
        for axis, (idx, w) in enumerate(taps):
            v = _resample_axis(v, axis, idx, w)
        return v

    outs = [value_and_grads(fn, (y,), grad) for fn in (lambda v: upsample_2d(v, *taps), ref)]
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("C,H,W,k", [(3, 11, 17, 3), (3, 2, 5, 3), (2, 9, 8, 5), (4, 6, 6, 1), (3, 21, 77, 3),
                                     (5, 7, 50, 5)])
def test_conv_kernel_matches_torch_reference(lib, C, H, W, k):
    from inrcodec.kernels.latentgrid_conv import conv_replicate, conv_replicate_torch
    from inrcodec.models.latentgrid import _replicate_pad

    g = torch.Generator().manual_seed(C * H + W * k)
    x = torch.randn(C, H, W, generator=g)
    weight = torch.randn(C, C, k, k, generator=g) * 0.3
    bias = torch.randn(C, generator=g)
    grad = torch.randn(C, H, W, generator=g)
    # the reference is the model's own padding + conv2d
    model_ref = torch.nn.functional.conv2d(_replicate_pad(x.unsqueeze(0), k // 2), weight, bias).squeeze(0)
    torch.testing.assert_close(conv_replicate_torch(x, weight, bias), model_ref, rtol=1e-5, atol=1e-5)
    outs = [value_and_grads(fn, (x, weight, bias), grad) for fn in (conv_replicate, conv_replicate_torch)]
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_native_level_skips_resampling_exactly():
    """Level 0 sits on the output grid: its taps are the identity, so _features uses it as is (also for a crop)."""
    from inrcodec.models.latentgrid import LatentGrid, _resample_axis
    from inrcodec.signal import Signal
    from helpers import smooth_rgb

    desc = Signal(smooth_rgb(12, 10, seed=5)).describe()
    net = LatentGrid(LatentGrid.config_for(desc, 2000.0), desc)
    y = torch.randn(12, 10)
    box = [(3, 11), (0, 7)]
    got = net._features([y] + [torch.randn(s) for s in net.shapes[1:]], (12, 10), box)[0]
    ref = y
    for axis, n in enumerate((12, 10)):
        ref = _resample_axis(ref, axis, *net._level_taps(0, axis, n, *box[axis]))
    assert torch.equal(got, ref)


def test_kernels_are_deterministic_across_runs(lib):
    """Same inputs, same thread count -> bit-identical gradients (partial sums are combined in a fixed order),
    which the --seed contract (same seed, same machine, same file) relies on."""
    from inrcodec.kernels.latentgrid_rate import laplace_rate

    layers = _layers((11, 16, 16, 2), seed=7)
    x = torch.randn(100_000, 11)
    torch.set_num_threads(3)
    try:
        runs = []
        for _ in range(2):
            for m in layers:
                m.zero_grad(set_to_none=True)
            xx = x.clone().requires_grad_(True)
            out = K.mlp(xx, layers, use_kernel=True)
            bits = laplace_rate(torch.randn(100_000, generator=torch.Generator().manual_seed(1)), out, (-5.0, 7.0),
                                use_kernel=True)
            bits.backward()
            runs.append([bits.detach(), xx.grad] + [p.grad for m in layers for p in (m.weight, m.bias)])
    finally:
        torch.set_num_threads(1)
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_upsample_and_conv_threaded_paths_match_reference(lib):
    """Sizes above the kernels' threading thresholds, on 2 threads (the parallel loops split rows/columns)."""
    from inrcodec.kernels.latentgrid_conv import conv_replicate, conv_replicate_torch
    from inrcodec.kernels.latentgrid_upsample import upsample_2d
    from inrcodec.models.latentgrid import _resample_axis, _taps

    g = torch.Generator().manual_seed(3)
    torch.set_num_threads(2)
    try:
        taps = [_taps(76, 300, 0, 300, "cubic"), _taps(101, 401, 0, 401, "cubic")]
        y = torch.randn(76, 101, generator=g)
        grad = torch.randn(300, 401, generator=g)
        outs = [value_and_grads(fn, (y,), grad) for fn in (
            lambda v: upsample_2d(v, *taps), lambda v: _resample_axis(_resample_axis(v, 0, *taps[0]), 1, *taps[1]))]
        torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
        # each latent gathers ~16 output gradients per tap: tolerance relative to that sum's scale
        torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-5, atol=1e-4)

        x = torch.randn(3, 64, 203, generator=g)
        weight = torch.randn(3, 3, 3, 3, generator=g) * 0.3
        bias = torch.randn(3, generator=g)
        grad = torch.randn(3, 64, 203, generator=g)
        outs = [value_and_grads(fn, (x, weight, bias), grad) for fn in (conv_replicate, conv_replicate_torch)]
        for a, b in zip(*outs):
            # weight/bias gradients sum ~13 k products: compare relative to their magnitude
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max() + 1))
    finally:
        torch.set_num_threads(1)


@pytest.mark.parametrize("dims,n,threads,feature_major", [((11, 16, 16, 2), 1000, 1, False), ((11, 8, 2), 77, 1, True),
                                                          ((11, 2), 64, 1, False), ((9, 12, 12, 2), 70_000, 2, True)])
def test_fused_arm_rate_matches_mlp_then_rate(lib, dims, n, threads, feature_major):
    """Context MLP + Laplace rate fused (forward and backward in one pass) against the torch composition."""
    from inrcodec.kernels.latentgrid_arm import arm_rate, arm_rate_reference

    layers = _layers(dims, seed=n)
    g = torch.Generator().manual_seed(n + 1)
    feats = torch.randn(n, dims[0], generator=g)
    if feature_major:  # the layout the context kernel produces: (d, n) memory seen as (n, d)
        feats = feats.t().contiguous().t()
    # latents near and far from the means, scales across the clamp range (tail and centre bins, clamped scales)
    y = torch.round(torch.randn(n, generator=g) * 3) + 0.3 * torch.randn(n, generator=g)
    with torch.no_grad():
        layers[-1].bias.copy_(torch.tensor([0.0, -1.0]))
        layers[-1].weight.mul_(3.0)
    torch.set_num_threads(threads)
    try:
        outs = []
        for fn in (lambda f, v: arm_rate(f, v, layers, (-5.0, 7.0), use_kernel=True),
                   lambda f, v: arm_rate_reference(f, v, layers, (-5.0, 7.0), use_kernel=False)):
            for m in layers:
                m.zero_grad(set_to_none=True)
            ff, yy = feats.detach().requires_grad_(True), y.clone().requires_grad_(True)
            bits = fn(ff, yy)
            (0.37 * bits).backward()  # a non-unit upstream gradient: the kernel's unit gradients get scaled
            outs.append([bits.detach(), ff.grad, yy.grad] + [p.grad.clone() for m in layers for p in (m.weight, m.bias)])
        with torch.no_grad():  # forward only: the same total
            nograd = arm_rate(feats, y, layers, (-5.0, 7.0), use_kernel=True)
    finally:
        torch.set_num_threads(1)
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(nograd, outs[0][0])
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(outs[0][2], outs[1][2], rtol=1e-4, atol=1e-5)
    for a, b in zip(outs[0][3:], outs[1][3:]):
        # parameter gradients are sums over n latents: relative to their scale
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max() + 1))


@pytest.mark.parametrize("dims,n", [((11, 16, 16, 2), 5000), ((9, 8, 2), 77), ((7, 2), 64)])
def test_exact_arm_kernel_equals_numpy_bit_for_bit(lib, dims, n):
    """The coder's context MLP: compiled float64 kernel and numpy give identical bits (files must decode the
    same on machines with and without the kernel), including activations that hit the clamp."""
    from inrcodec.models.latentgrid import _code_weights, ExactArm

    rng = np.random.default_rng(n)
    arrays = []
    for a, b in zip(dims[:-1], dims[1:]):
        arrays += [rng.normal(size=(b, a)) * 2.0, rng.normal(size=b)]
    _, deq = _code_weights(arrays, 8)  # dyadic weights, as the coder dequantises them
    arm = ExactArm([(deq[i].T.copy(), deq[i + 1]) for i in range(0, len(deq), 2)])
    # dequantised latents (symbols * step) of all sizes, a few near the activation clamp, and the level position
    feats = rng.integers(-300, 300, size=(n, dims[0])) * (37 / 64)
    feats[::97] *= 400.0
    feats[0, 0] = -1.5e5
    feats[:, -1] = 2 / 6
    got = arm(feats)
    ref = arm(feats, use_kernel=False)
    assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1])
    from inrcodec.kernels.latentgrid_exact import exact_mlp
    from inrcodec.models.latentgrid import ACT_CAP, FRAC_BITS

    assert np.any(np.abs(feats) > ACT_CAP)  # the input clamp is exercised
    # the raw outputs too (before the mean clip and the scale-table lookup), all bits
    assert np.array_equal(exact_mlp(feats, arm.layers, FRAC_BITS, ACT_CAP), arm.reference(feats))
    assert np.unique(got[1]).size > 1  # the scales vary: the comparison is not between constants


@pytest.mark.parametrize("shape,coarse_shape", [((9, 13), (5, 7)), ((1, 5), (1, 3)), ((4, 1), None), ((6, 6), (3, 3))])
@pytest.mark.parametrize("parity", [-1, 0, 1])
def test_coder_context_kernel_equals_reference_bit_for_bit(lib, shape, coarse_shape, parity):
    """The coder's float64 context features from the kernel equal context_features (all samples or one
    checkerboard half, in the order boolean indexing gives), so files decode the same with and without it."""
    from inrcodec.kernels.latentgrid_exact import context_2d_f64
    from inrcodec.models.latentgrid import checkerboard, context_features

    g = torch.Generator().manual_seed(shape[0] * 7 + shape[1])
    y = torch.randint(-40, 40, shape, generator=g).double() * (45 / 64)
    coarse = None if coarse_shape is None else torch.randint(-40, 40, coarse_shape, generator=g).double() * (45 / 64)
    level, levels = 2, 6
    ref = context_features(level, levels, y, coarse).reshape(-1, 11).numpy()
    if parity >= 0:
        odd = checkerboard(shape).reshape(-1).numpy()
        ref = ref[odd if parity else ~odd]
    got = context_2d_f64(y.numpy(), None if coarse is None else coarse.numpy(), level / (levels - 1), parity)
    assert got.shape == ref.shape and np.array_equal(got, ref)
