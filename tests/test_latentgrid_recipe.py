"""The latent grid's training recipe (models/latentgrid/recipe.py): soft rounding and its noise, the phase switches
on schedule progress, the fit's lr multiplier and gradient clip hooks, and that a fit under the recipe still lands
on its byte target and decodes to what the encoder rendered."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from inrcodec import compress, decompress
from inrcodec.fit import FitSettings, fit
from inrcodec.models.latentgrid import LatentGrid, LatentGridConfig
from inrcodec.models.latentgrid import recipe as R
from inrcodec.signal import Signal

from helpers import smooth_rgb


def test_softround_goes_from_identity_to_rounding():
    x = torch.linspace(-3, 3, 601)
    assert torch.allclose(R.softround(x, 1e-3), torch.round(x), atol=1e-4) or \
        torch.allclose(R.softround(x, 1e-3)[(x - x.round()).abs() < 0.49], torch.round(x)[(x - x.round()).abs() < 0.49])
    assert torch.allclose(R.softround(x, 50.0), x, atol=2e-3)  # large temperature: nearly the identity
    # monotone and fixed at integers and half-integers for every temperature
    for t in (0.1, 0.3, 1.0):
        s = R.softround(x, t)
        assert torch.all(s[1:] >= s[:-1] - 1e-6)
        k = torch.tensor([-2.0, -1.5, 0.0, 0.5, 1.0])
        assert torch.allclose(R.softround(k, t), k, atol=1e-5)


def test_kumaraswamy_noise_range_and_shape():
    gen = torch.Generator().manual_seed(0)
    uniform = R.kumaraswamy_noise((200_000,), 1.0, gen)
    peaked = R.kumaraswamy_noise((200_000,), 2.0, gen)
    for n in (uniform, peaked):
        assert float(n.min()) >= -0.5 and float(n.max()) <= 0.5
    # a = 1 is uniform (variance 1/12); a > 1 concentrates mass around 0 (mode 1/2 before the shift)
    assert float(uniform.var()) == pytest.approx(1 / 12, rel=0.02)
    assert float(peaked.var()) < 0.8 / 12
    assert float((peaked.abs() < 0.1).float().mean()) > 0.25  # uniform would give 0.2


@pytest.mark.parametrize("rounding", ["noise", "softround"])
def test_phases_switch_at_ste_start(rounding):
    recipe = R.Recipe(rounding=rounding, ste_start=0.7, ste_lr_factor=0.25)
    y = torch.nn.Parameter(torch.linspace(-4, 4, 97))
    gen = torch.Generator().manual_seed(0)
    before = R.training_latents([y], 0.69, gen, recipe)[0]
    after = R.training_latents([y], 0.70, gen, recipe)[0]
    assert not torch.equal(before, torch.round(before))  # a differentiable stand-in: not yet integers
    assert torch.equal(after, torch.round(y.detach()))  # the decoder's rounding exactly
    after.sum().backward()
    assert torch.all(y.grad > 0)  # and a gradient still flows (straight-through)
    assert R.lr_multiplier(recipe, 0.69) == 1.0 and R.lr_multiplier(recipe, 0.7) == 0.25


def test_softround_temperature_is_annealed_over_the_noise_phase():
    recipe = R.Recipe(rounding="softround", ste_start=0.8, softround_t=(0.3, 0.1))
    assert R.temperature(recipe, 0.0) == pytest.approx(0.3)
    assert R.temperature(recipe, 0.4) == pytest.approx(0.2)
    assert R.temperature(recipe, 0.8) == pytest.approx(0.1)
    assert R.temperature(recipe, 0.95) == pytest.approx(0.1)


def test_fit_clips_the_gradient_norm(monkeypatch):
    """The fit applies the model's clip before the optimiser step: after every step the gradients the optimiser
    used have a global norm within the clip."""
    monkeypatch.setattr(R, "RECIPE", replace(R.RECIPE, grad_clip=1e-3))
    img = Signal(smooth_rgb(24, 32, seed=1))
    desc = img.describe()
    net = LatentGrid(LatentGridConfig(ndim=2, channels=3, levels=3, hidden=4, arm_hidden=4), desc)
    norms = []
    orig = net.after_step

    def after_step(step, target):
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        orig(step, target)

    net.after_step = after_step
    target = torch.from_numpy(img.normalized())
    fit(net, target, FitSettings(max_steps=6, lr=1e-2))
    assert len(norms) == 6 and max(norms) <= 1e-3 * 1.0001


@pytest.mark.parametrize("rounding", ["noise", "softround"])
def test_fit_under_recipe_meets_target_and_decodes_to_encoder_render(monkeypatch, rounding):
    monkeypatch.setattr(R, "RECIPE", replace(R.RECIPE, rounding=rounding))
    img = Signal(smooth_rgb(64, 96, seed=3))
    res = compress(img, "latentgrid", bpp=1.5, steps=300, seed=0)
    assert res.report["target_met"], res.report
    assert 0.9 * 1.5 <= res.report["bpp"] <= 1.5
    dec = decompress(res.data)
    assert dec.data.shape == img.data.shape
    # the PSNR the encoder reported is the decoded file's
    err = dec.data.astype(np.float64) - img.data.astype(np.float64)
    assert -10 * np.log10(np.mean(err**2) / 255.0**2) == pytest.approx(res.report["psnr"], abs=1e-6)


def test_decoder_renders_what_the_encoder_quantised(monkeypatch):
    """After a short soft-to-hard fit, the decoded model's render equals the encoder's own render with the
    rounded latents and the coded weights (the ones ``encode`` wrote), to float rounding."""
    monkeypatch.setattr(R, "RECIPE", replace(R.RECIPE, rounding="softround"))
    img = Signal(smooth_rgb(32, 40, seed=5))
    desc = img.describe()
    torch.manual_seed(0)
    net = LatentGrid(LatentGridConfig(ndim=2, channels=3, levels=3, hidden=8, arm_hidden=8), desc)
    net.set_targets(bits=2.0 * 32 * 40)
    fit(net, torch.from_numpy(img.normalized()), FitSettings(max_steps=80, lr=1e-2))
    sections = net.encode(1.0)  # also sets the encoder's weights to their coded values
    with torch.no_grad():
        mine = net.render()
        theirs = LatentGrid.decode(net.config, desc, sections).render()
    assert torch.allclose(mine, theirs, atol=1e-5)
    # and the fit did something: clearly better than the best flat colour (the per-channel mean)
    ref = torch.from_numpy(img.normalized())
    flat = float(torch.mean((ref - ref.mean(dim=(0, 1))) ** 2))
    assert float(torch.mean((mine - ref) ** 2)) < 0.8 * flat  # seed 0: 0.48


def test_jpeg_slope_prior_follows_rate_and_content():
    """The content-aware lambda prior: the RD slope falls as the rate grows (a convex RD curve), and a detailed
    image has a steeper slope than a smooth one at the same rate (it needs a larger lambda to land there)."""
    rng = np.random.default_rng(0)
    smooth = smooth_rgb(96, 128, seed=2).astype(np.float64) / 255.0
    detailed = np.clip(smooth + rng.normal(0, 0.08, smooth.shape), 0, 1)
    s = [R.jpeg_rd_slope(detailed, b) for b in (0.5, 1.0, 2.0)]
    assert all(v is not None and v > 0 for v in s)
    assert s[0] > s[1] > s[2]
    assert R.jpeg_rd_slope(detailed, 1.0) > 3 * R.jpeg_rd_slope(smooth, 1.0)
    assert R.jpeg_rd_slope(np.zeros((5, 200, 3)), 1.0) is None  # too small to measure
    assert R.jpeg_rd_slope(np.zeros((64, 64, 2)), 1.0) is None  # not an image JPEG codes


def test_control_gain_shapes():
    late = R.Recipe(control_shape="late", control_gain=15.0)
    early = R.Recipe(control_shape="lr", control_gain=15.0)
    assert R.control_gain(late, 0.2) < R.control_gain(late, 0.9)  # acts when the rate is what will be coded
    assert R.control_gain(early, 0.2) > R.control_gain(early, 0.9)  # acts while the latents can still move
    assert R.control_gain(early, 1.0) == pytest.approx(0.0, abs=1e-12)
    flat = R.Recipe(control_shape="flat", control_gain=15.0)
    both = R.Recipe(control_shape="both", control_gain=15.0)
    assert R.control_gain(flat, 0.1) == R.control_gain(flat, 0.9) == 15.0
    assert R.control_gain(both, 0.05) > 0.9 * 15.0 and R.control_gain(both, 1.0) == pytest.approx(15.0)
    assert R.control_gain(both, 0.5) < R.control_gain(both, 0.05)  # the lr's share fades before frac**2 grows
