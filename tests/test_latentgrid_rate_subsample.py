"""The training rate term on a row subsample of the large latent levels (context.rate_bits, RATE_SUBSAMPLE):
the context kernel on a row list against the torch reference, forward and backward, and the estimate's
unbiasedness: averaged over the k phases of the 1-in-k sample it equals the full rate and its gradients exactly
(to float rounding), because the phases partition the rows."""

import pytest
import torch

from inrcodec.kernels import latentgrid_mlp as K
from inrcodec.models.latentgrid import context as C


@pytest.fixture(scope="module")
def lib():
    if K.library() is None:
        pytest.skip(f"latentgrid kernels not available: {K._error}")
    return K.library()


@pytest.mark.parametrize("shape,coarse_shape,rows", [((9, 13), (5, 7), [0, 3, 6]), ((9, 13), (5, 7), [2, 5, 8]),
                                                     ((8, 8), (4, 4), [7]), ((6, 3), None, [1, 4])])
def test_context_kernel_on_rows_matches_reference(lib, shape, coarse_shape, rows):
    from inrcodec.kernels.latentgrid_context import context_2d

    g = torch.Generator().manual_seed(sum(shape) + rows[0])
    y = torch.randn(shape, generator=g)
    z = None if coarse_shape is None else torch.randn(coarse_shape, generator=g)
    idx = torch.tensor(rows)
    grad = torch.randn(len(rows) * shape[1], 11, generator=g)
    outs = []
    for fn in (lambda a, b: context_2d(2, 5, a, b, idx),
               lambda a, b: C.context_features(2, 5, a, b).index_select(0, idx).reshape(-1, 11)):
        yy = y.clone().requires_grad_(True)
        zz = None if z is None else z.clone().requires_grad_(True)
        f = fn(yy, zz)
        f.backward(grad)
        outs.append((f.detach(), yy.grad, None if zz is None else zz.grad))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=0, atol=0)  # a gather: the same values
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-6, atol=1e-6)
    assert float(outs[0][1].abs().sum()) > 0  # neighbours of the chosen rows get gradient
    if z is not None:
        torch.testing.assert_close(outs[0][2], outs[1][2], rtol=1e-6, atol=1e-5)


def test_context_kernel_rejects_rows_outside_the_level(lib):
    from inrcodec.kernels.latentgrid_context import context_2d

    with pytest.raises(RuntimeError):
        context_2d(0, 3, torch.randn(4, 5), torch.randn(2, 3), torch.tensor([1, 4]))


def _rate_and_grads(arm, latents, subsample, rows_fn, monkeypatch):
    monkeypatch.setattr(C, "subsample_rows", rows_fn)
    lat = [y.clone().requires_grad_(True) for y in latents]
    arm.zero_grad(set_to_none=True)
    bits = C.rate_bits(arm, lat, subsample)
    bits.backward()
    return float(bits.detach()), [y.grad.clone() for y in lat], [p.grad.clone() for p in arm.parameters()]


@pytest.mark.parametrize("ndim,use_kernel", [(2, True), (2, False), (1, False)])
def test_subsampled_rate_is_unbiased_over_phases(ndim, use_kernel, monkeypatch):
    """mean over phases of the k-scaled subsample rate == full rate (value and gradients of latents and arm)."""
    if use_kernel and K.library() is None:
        pytest.skip("kernels not available")
    if not use_kernel:
        monkeypatch.setattr(K, "kernel_usable", lambda x: False)
    monkeypatch.setattr(C, "RATE_SUBSAMPLE_MIN", 100)  # tiny levels: the two finest get subsampled
    k = 3
    torch.manual_seed(ndim)
    shapes = [(23, 17), (12, 9), (6, 5)] if ndim == 2 else [(400,), (200,), (100,)]
    latents = [torch.round(torch.randn(s) * 2) + 0.3 * torch.randn(s) for s in shapes]
    arm = C.make_arm(ndim, 8, 2)
    with torch.no_grad():
        for p in arm.parameters():
            p.add_(0.2 * torch.randn(p.shape))
    original = C.subsample_rows
    full = _rate_and_grads(arm, latents, 1, original, monkeypatch)
    sampled = []
    for phase in range(k):
        def rows_fn(y, stride, generator, phase=phase):
            rows = original(y, stride, None)
            return None if rows is None else torch.arange(phase, y.shape[0], stride)
        sampled.append(_rate_and_grads(arm, latents, k, rows_fn, monkeypatch))
    # each phase alone differs from the full rate (it is an estimate), their mean does not
    assert all(abs(s[0] - full[0]) > 1e-3 * full[0] for s in sampled)
    assert sum(s[0] for s in sampled) / k == pytest.approx(full[0], rel=1e-5)
    for i in range(len(shapes)):
        mean_grad = sum(s[1][i] for s in sampled) / k
        torch.testing.assert_close(mean_grad, full[1][i], rtol=1e-4, atol=1e-5)
    for j in range(len(full[2])):
        mean_grad = sum(s[2][j] for s in sampled) / k
        torch.testing.assert_close(mean_grad, full[2][j], rtol=1e-4, atol=1e-4 * float(full[2][j].abs().max() + 1))


def test_subsample_rows_picks_every_kth_row_from_a_random_phase(monkeypatch):
    monkeypatch.setattr(C, "RATE_SUBSAMPLE_MIN", 50)
    g = torch.Generator().manual_seed(0)
    y = torch.zeros(10, 6)
    phases = set()
    for _ in range(40):
        rows = C.subsample_rows(y, 4, g)
        assert torch.equal(rows, torch.arange(int(rows[0]), 10, 4)) and 0 <= int(rows[0]) < 4
        phases.add(int(rows[0]))
    assert phases == {0, 1, 2, 3}
    assert C.subsample_rows(y, 1, g) is None  # stride 1: every row
    assert C.subsample_rows(torch.zeros(7, 6), 4, g) is None  # below RATE_SUBSAMPLE_MIN latents: every row


def test_model_uses_the_exact_rate_in_the_straight_through_phase(monkeypatch):
    """Subsampling (when a model enables it) is a noise-phase saving only: in the last (straight-through) phase,
    and in the coder, every latent counts; in the noise phase the estimate is near the full rate."""
    from helpers import smooth_rgb
    from inrcodec.models.latentgrid import LatentGrid
    from inrcodec.signal import Signal

    monkeypatch.setattr(C, "RATE_SUBSAMPLE_MIN", 64)
    sig = Signal(smooth_rgb(40, 48, seed=2))
    desc = sig.describe()
    target = torch.from_numpy(sig.normalized())
    torch.manual_seed(0)
    net = LatentGrid(LatentGrid.config_for(desc, 6000.0), desc)
    assert net.rate_subsample == C.RATE_SUBSAMPLE  # the default (measured: off)
    net.rate_subsample = 4
    with torch.no_grad():
        for y in net.latents:
            y.copy_(torch.round(torch.randn(y.shape) * 2))
    net.on_progress(0.95)
    net.training_batch(target, torch.Generator().manual_seed(1))
    exact = float(net.rate_bits(list(net.latents)).detach())
    assert float(net._rate.detach()) == pytest.approx(exact, rel=1e-6)
    net.on_progress(0.5)
    lat = [y.detach() for y in net.latents]
    with torch.no_grad():
        estimates = [float(net.rate_bits(lat, torch.Generator().manual_seed(s))) for s in range(8)]
    assert len(set(estimates)) > 1  # it does subsample in the noise phase
    assert sum(estimates) / len(estimates) == pytest.approx(exact, rel=0.1)
