"""Coordinate networks (fourier, siren, hashgrid) and the latent grid: fit + code + decode through the codec on tiny
generated signals (1-D, 2-D, 3-D), decoding at other sizes and regions, the latent grid's rate term against its
real coder, and the hash encoding's formulas against hand-computed values (and tiny-cuda-nn where present)."""

import numpy as np
import pytest
import torch

from helpers import smooth_rgb
from inrcodec import Signal, compress, decompress
from inrcodec.codec import load_representation
from inrcodec.errors import FormatError
from inrcodec.metrics import psnr
from inrcodec.models import latentgrid as LG
from inrcodec.models.hashgrid import HashGrid, HashGridConfig, grid_index, hash_encode, level_layout

MODELS = ["fourier", "siren", "hashgrid", "latentgrid"]
STEPS = {"fourier": 200, "siren": 200, "hashgrid": 200, "latentgrid": 200}


def mean_colour_psnr(data: np.ndarray) -> float:
    """PSNR of the best constant-per-channel guess: the floor any fitted model must clear by a wide margin."""
    axes = tuple(range(data.ndim - 1))
    flat = np.broadcast_to(data.mean(axis=axes), data.shape)
    return psnr(data, np.rint(flat).astype(data.dtype) if data.dtype.kind in "iu" else flat)


@pytest.fixture(scope="module")
def image():
    return Signal(smooth_rgb(32, 48))


@pytest.fixture(scope="module")
def coded(image):
    """One fit per model on the small image, shared by the tests below (keeps the file fast)."""
    return {m: compress(image, m, bpp=6.0, steps=STEPS[m], seed=0) for m in MODELS}


@pytest.mark.parametrize("model", MODELS)
def test_image_round_trip(model, image, coded):
    res = coded[model]
    out = decompress(res.data)
    assert out.data.shape == image.data.shape and out.dtype == np.uint8
    assert res.report["psnr"] == pytest.approx(psnr(image.data, out.data), abs=1e-9)
    assert res.report["bytes"] <= 6.0 * 32 * 48 / 8  # never over the budget
    # A smooth image: every model must beat the flat mean colour by far (measured margins are 9-20 dB).
    assert res.report["psnr"] > mean_colour_psnr(image.data) + 6.0


@pytest.mark.parametrize("model", MODELS)
def test_region_render_equals_crop_of_full_render(model, coded):
    _, net = load_representation(coded[model].data)
    with torch.no_grad():
        full = net.render()
        crop = net.render(region=((5, 21), (30, 48)))
        assert torch.allclose(crop, full[5:21, 30:48], atol=1e-5)
        big = net.render(shape=(64, 96))
        big_crop = net.render(shape=(64, 96), region=((0, 10), (40, 77)))
    assert big.shape == (64, 96, 3)
    assert torch.allclose(big_crop, big[0:10, 40:77], atol=1e-5)
    # Rendering at twice the resolution samples the same continuous signal: it averages back to the native one.
    down = big.reshape(32, 2, 48, 2, 3).mean(dim=(1, 3))
    assert float(torch.mean((down - full) ** 2)) < 2e-3


def _audio(n=2000):
    t = np.arange(n) / 8000.0
    wave = 0.5 * np.sin(2 * np.pi * 220 * t) + 0.25 * np.sin(2 * np.pi * 330 * t + 1.0)
    return Signal((wave * 20000).astype(np.int16)[:, None], kind="audio", metadata={"sample_rate": 8000})


def _volume(n=16):
    z, y, x = np.mgrid[0:n, 0:n, 0:n] / n
    field = np.sin(2 * np.pi * x) * np.cos(2 * np.pi * y) + z
    return Signal(field.astype(np.float32)[..., None], kind="volume")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("make", [_audio, _volume], ids=["audio1d", "volume3d"])
def test_one_and_three_dimensional_signals(model, make):
    sig = make()
    res = compress(sig, model, bpp=8.0, steps=120, seed=0)
    out = decompress(res.data)
    assert out.data.shape == sig.data.shape and out.dtype == sig.dtype
    assert psnr(sig.data, out.data) > mean_colour_psnr(sig.data) + 3.0
    _, net = load_representation(res.data)
    n = sig.data.shape[0]
    with torch.no_grad():
        region = ((3, n // 2),) + tuple((0, k) for k in sig.data.shape[1:-1])
        assert torch.allclose(net.render(region=region), net.render()[3 : n // 2], atol=1e-5)


# -- latent grid: entropy model and coder ------------------------------------------------------------------------
def _latentgrid(shape=(40, 56, 3), levels=4):
    desc = Signal(np.zeros(shape, np.uint8)).describe()
    cfg = LG.LatentGridConfig(ndim=len(shape) - 1, channels=shape[-1], levels=levels, hidden=8, arm_hidden=8)
    torch.manual_seed(0)
    return LG.LatentGrid(cfg, desc), desc


@pytest.mark.parametrize("scale", [0.3, 2.0, 12.0])
def test_latent_rate_term_matches_coded_size(scale):
    net, _ = _latentgrid()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for y in net.latents:  # Laplace-distributed latents with a smooth trend the context model can partly see
            u = torch.rand(y.shape, generator=gen) - 0.5
            y.copy_(-scale * torch.sign(u) * torch.log1p(-2 * u.abs()))
    arm = net._choose_weights()["arm_exact"]
    with torch.no_grad():
        estimate = float(net.rate_bits([torch.round(y) for y in net.latents]))
    coded = 8 * len(net._code_latents(arm, 1.0))
    # Same probability model on both sides: the coder pays the estimate plus at most a few bytes of ranges/ANS
    # flush, and the context MLP's fixed-point rounding (2**-8) moves the estimate by well under 3 %.
    assert coded == pytest.approx(estimate, rel=0.03, abs=160)


@pytest.mark.parametrize("quality", [1.0, 0.4])
def test_latents_decode_exactly(quality):
    net, desc = _latentgrid()
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for y in net.latents:
            y.copy_(torch.randn(y.shape, generator=gen) * 3)
    sections = net.encode(quality)
    step = LG.quality_setting(quality)
    dec = LG.LatentGrid.decode(net.config, desc, sections)
    for y, z in zip(net.latents, dec.latents):
        v = y.detach().double() / step
        expected = torch.round(v) * step
        assert torch.equal(z.detach().double(), expected)


def test_quality_knob_shrinks_the_file_monotonically():
    net, _ = _latentgrid()
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for y in net.latents:
            y.copy_(torch.randn(y.shape, generator=gen) * 2)
    sizes = [len(net.encode(q)["latents"]) for q in (1.0, 0.8, 0.6, 0.4, 0.0)]
    assert all(a > b for a, b in zip(sizes, sizes[1:])), sizes


def test_latentgrid_rate_control_lands_near_target():
    img = Signal(smooth_rgb(64, 96, seed=3))
    res = compress(img, "latentgrid", bpp=1.5, steps=300, seed=0)
    assert res.report["target_met"], res.report
    assert 0.9 * 1.5 <= res.report["bpp"] <= 1.5


def test_corrupt_latents_section_is_a_format_error(coded):
    from inrcodec.container import Container, read_container, write_container

    c = read_container(coded["latentgrid"].data)
    sections = dict(c.sections)
    sections["latents"] = sections["latents"][: len(sections["latents"]) // 2]
    bad = write_container(Container(c.signal, c.model, c.config, sections))
    with pytest.raises(FormatError):
        decompress(bad)


def test_checkerboard_contexts_only_use_decoded_samples():
    """Odd samples see only even neighbours; even samples no same-level neighbour: changing the odd samples
    leaves every even sample's context unchanged (what makes the 2-pass decode possible)."""
    y = torch.randn(7, 9)
    coarse = torch.randn(4, 5)
    odd = LG.checkerboard((7, 9))
    y2 = torch.where(odd, torch.randn(7, 9), y)
    f1 = LG.context_features(0, 3, y, coarse)
    f2 = LG.context_features(0, 3, y2, coarse)
    assert torch.equal(f1[~odd], f2[~odd])
    y3 = torch.where(odd, y, torch.randn(7, 9))
    assert not torch.equal(LG.context_features(0, 3, y3, coarse)[odd], f1[odd])


# -- hash grid ---------------------------------------------------------------------------------------------------
def test_level_layout_matches_tiny_cuda_nn_defaults():
    cfg = HashGridConfig(ndim=2, channels=3, n_levels=16, n_features=2, log2_table=19, base_resolution=16,
                         per_level_scale=2.0)
    lay = level_layout(cfg)
    # scale = 16 * 2**l - 1, resolution = scale + 1 (integral scales), entries = min(res**2 rounded to 8, 2**19)
    assert [(round(s), r, size) for s, r, _, size in lay[:7]] == [
        (15, 16, 256), (31, 32, 1024), (63, 64, 4096), (127, 128, 16384), (255, 256, 65536),
        (511, 512, 262144), (1023, 1024, 524288)]
    assert lay[1][2] == 256 and lay[2][2] == 256 + 1024  # levels stored back to back
    cfg15 = HashGridConfig(ndim=3, channels=1, n_levels=2, log2_table=12, base_resolution=3, per_level_scale=1.5)
    # 3-D: scale 2 -> res 3 -> 27 entries rounded up to 32; scale 3.5 -> res 5 -> 125 -> 128
    assert [(r, size) for _, r, _, size in level_layout(cfg15)] == [(3, 32), (5, 128)]


def test_grid_index_dense_and_hashed_by_hand():
    cell = torch.tensor([[3, 5]])
    # dense level: 3 + 5 * 16
    assert int(grid_index(cell, 16, 256)[0]) == 83
    # hashed level: (3 * 1) xor (5 * 2654435761 mod 2**32 = 387276917) = 387276918; mod 64 = 54
    assert int(grid_index(cell, 1000, 64)[0]) == 54
    # 3-D: 1 xor (2 * 2654435761 mod 2**32 = 1013904226) xor (3 * 805459861 = 2416379583) = 2892625372; mod 4096
    assert int(grid_index(torch.tensor([[1, 2, 3]]), 2000, 4096)[0]) == 2892625372 % 4096


def test_hash_encode_is_bilinear_in_the_table():
    cfg = HashGridConfig(ndim=2, channels=1, n_levels=1, n_features=2, log2_table=4, base_resolution=4,
                         per_level_scale=1.0)
    (scale, res, _, size), = level_layout(cfg)
    table = torch.randn(size * 2)
    x = torch.tensor([[0.3, 0.8]])
    pos = x[0] * scale + 0.5
    c = torch.floor(pos).long()
    f = pos - torch.floor(pos)
    entries = table.view(-1, 2)

    def val(i, j):
        return entries[int(grid_index(torch.tensor([[i, j]]), res, size)[0])]

    expected = (val(c[0], c[1]) * (1 - f[0]) * (1 - f[1]) + val(c[0] + 1, c[1]) * f[0] * (1 - f[1])
                + val(c[0], c[1] + 1) * (1 - f[0]) * f[1] + val(c[0] + 1, c[1] + 1) * f[0] * f[1])
    assert torch.allclose(hash_encode(x, table, cfg)[0], expected, atol=1e-6)


def _tcnn_available() -> bool:
    try:
        import tinycudann  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _tcnn_available(), reason="tinycudann (and a CUDA device) not available")
@pytest.mark.parametrize("ndim", [2, 3])
def test_torch_hash_encoding_agrees_with_tinycudann(ndim):
    shape = (20,) * ndim + (3,)
    desc = Signal(np.zeros(shape, np.float32), kind="volume" if ndim == 3 else "array").describe()
    cfg = HashGridConfig(ndim=ndim, channels=3, n_levels=8, log2_table=10, base_resolution=4, per_level_scale=1.6)
    net = HashGrid(cfg, desc).cuda()
    with torch.no_grad():
        net.table.normal_()
    x = torch.rand(4096, ndim, device="cuda")
    ref = net.encode_points(x, backend="torch")
    got = net.encode_points(x, backend="tcnn")
    assert torch.allclose(ref, got, atol=1e-4)


@pytest.mark.parametrize("name", ["fourier", "siren", "hashgrid"])
def test_sensitivity_estimate_matches_the_exact_gauss_newton_diagonal(name):
    """Hutchinson's estimate of mean diag(J^T J) per coded tensor agrees with the exact value (Jacobian row by
    row) on a tiny network; 400 probes leave a few % of noise on per-tensor means."""
    from inrcodec.models import get_model

    torch.manual_seed(0)
    desc = Signal(smooth_rgb(6, 5, seed=1)).describe()
    cls = get_model(name)
    net = cls(cls.config_for(desc, 4000), desc)
    coords = torch.rand(7, 2) * 2 - 1
    est = net.sensitivities(coords, probes=400)
    coded = net.coded_tensors()
    exact = dict.fromkeys(coded, 0.0)
    out = net(coords)
    for j in range(out.numel()):
        grads = torch.autograd.grad(out.reshape(-1)[j], list(net.parameters()), retain_graph=True,
                                    allow_unused=True)
        g = {n: gr for (n, _), gr in zip(net.named_parameters(), grads)}
        for k, t in net.coded_tensors().items():
            if name == "hashgrid" and k.startswith("level"):
                i = int(k[5:])
                _, _, off, size = net.layout[i]
                nf = net.config.n_features
                gk = g["table"][off * nf : (off + size) * nf] if g["table"] is not None else torch.zeros(0)
            else:
                gk = g[k]  # coded names are the parameters' names
            if gk is not None and gk.numel():
                exact[k] += float(torch.mean(gk.double() ** 2))
    for k in coded:
        exact[k] /= out.numel()
        if exact[k] == 0:
            assert est[k] == 0, k
        else:
            assert est[k] == pytest.approx(exact[k], rel=0.25), (k, est[k], exact[k])


def test_bit_allocation_gives_coarser_steps_to_less_sensitive_tensors():
    from inrcodec.models.fourier import FourierMLP

    desc = Signal(smooth_rgb(16, 16, seed=2)).describe()
    net = FourierMLP(FourierMLP.config_for(desc, 20000), desc)
    names = list(net.coded_tensors())
    sens = dict.fromkeys(names, 1.0)
    sens[names[0]] = 100.0  # 100x as sensitive: a 10x finer step relative to the others' allocation
    plain = net.choose_steps(None)
    rms = {k: float(v.detach().pow(2).mean().sqrt()) for k, v in net.coded_tensors().items()}
    alloc = net.choose_steps(None, sens)
    ratio = {k: alloc[k] / (plain[k] / rms[k]) for k in names}  # step per unit of 2**-b, without the rms
    assert ratio[names[1]] / ratio[names[0]] == pytest.approx(10.0, rel=1e-3)
    assert ratio[names[2]] == pytest.approx(ratio[names[1]], rel=1e-3)


def test_siren_learning_rate_shrinks_for_wide_networks():
    from inrcodec.models.siren import Siren

    desc = Signal(smooth_rgb(64, 64, seed=1)).describe()
    narrow, wide = Siren.config_for(desc, 8_000), Siren.config_for(desc, 400_000)
    assert narrow.width <= Siren.LR_WIDTH < wide.width
    assert Siren.lr_for(narrow) == Siren.default_lr
    assert Siren.lr_for(wide) == pytest.approx(Siren.default_lr * (Siren.LR_WIDTH / wide.width) ** 2)
