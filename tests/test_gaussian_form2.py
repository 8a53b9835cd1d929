"""The context-coded Gaussian section (form 2) and its grouped entropy stream: bit-exact round trips, old files,
hostile sections.

Signals are tiny (a 24 x 32 image, a few hundred random Gaussians): each test runs in well under a second except
the fitted round trip (~2 s)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import random_gaussians  # noqa: E402
from inrcodec.codec import compress, decompress  # noqa: E402
from inrcodec.container import read_container  # noqa: E402
from inrcodec.entropy import encode_ints  # noqa: E402
from inrcodec.entropy._bytes import varint  # noqa: E402
from inrcodec.entropy.groups import GroupReader, GroupWriter  # noqa: E402
from inrcodec.errors import FormatError  # noqa: E402
from inrcodec.models import gaussian as G  # noqa: E402
from inrcodec.models import gaussian_codec as gc  # noqa: E402
from inrcodec.signal import Signal  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"


def _same(a: gc.QuantizedGaussians, b: gc.QuantizedGaussians) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("index", "refine", "shape", "color"))


# -- the grouped stream ------------------------------------------------------------------------------------------
def test_groups_round_trip_every_model_and_dependent_counts():
    rng = np.random.default_rng(1)
    groups = [rng.laplace(0, 3, 500).round().astype(int),  # Laplace-shaped
              np.full(7, -5),  # constant
              np.zeros(0, int),  # empty: writes nothing
              rng.integers(-40, 40, 300),  # flat: categorical
              (rng.standard_normal(900) * 20).round().astype(int),
              np.array([3, 70000])]  # two symbols far apart
    w = GroupWriter()
    for g in groups:
        w.add(g)
    blob = w.finish()
    rd = GroupReader(blob, 1 << 20)
    got = [rd.take(len(groups[0]))]
    # the reader learns each count from what it decoded: here the count of group 1 is read off group 0
    assert np.array_equal(got[0], groups[0])
    got += [rd.take(len(g)) for g in groups[1:]]
    rd.finish()
    assert all(np.array_equal(a, b) for a, b in zip(groups, got))
    # one stream costs less than the same groups as separate length-prefixed blobs (form 1's chunk layout)
    assert len(blob) < sum(len(varint(len(b))) + len(b) for b in map(encode_ints, groups))


def test_groups_reader_refuses_truncation_and_alphabet_beyond_budget():
    w = GroupWriter()
    w.add(np.array([0, 5000, 3, 3]))
    blob = w.finish()
    assert w.alphabet == 5001
    with pytest.raises(FormatError, match="alphabets"):
        GroupReader(blob, 5000).take(4)
    rd = GroupReader(blob, 5001)
    assert rd.take(4).tolist() == [0, 5000, 3, 3]
    rd.finish()
    with pytest.raises(FormatError):
        rd = GroupReader(blob[: len(blob) // 2], 1 << 20)
        rd.take(4)
        rd.finish()


# -- the section ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_form2_round_trip_is_bit_exact_and_smaller_than_form1(channels):
    h, w = 40, 60
    steps = G.base_steps_for(channels)
    q = gc.quantize(*random_gaussians(1500, h, w, channels, seed=channels), steps, h, w)
    layer_of = np.repeat([0, 1, 2], [300, 400, 800])  # layers above CONTEXT_MIN: the size contexts are in use
    new = gc.encode_section(q, layer_of, 3, steps)
    old = gc.encode_section(q, layer_of, 3, steps, form=gc.FORM_LEGACY)
    assert new[:2] == bytes([0, gc.FORM_CONTEXT]) and old[0] == 3
    q_new, ids_new, st_new, counts = gc.decode_section(new, h, w, channels)
    q_old, ids_old, st_old, _ = gc.decode_section(old, h, w, channels)
    assert _same(q_new, q_old) and np.array_equal(ids_new, ids_old) and st_new == st_old == steps
    assert counts == [300, 400, 800]
    # the same Gaussians come back: per layer, the input set in spatial order
    for layer in range(3):
        sel = np.flatnonzero(layer_of == layer)
        order = sel[np.argsort(q.index[sel], kind="stable")]
        assert _same(q_new.select(ids_new == layer), q.select(order))
    assert len(new) < len(old)


def test_fitted_image_writes_form2_and_decodes_to_what_the_encoder_rendered():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:24, 0:32]
    img = np.stack([128 + 90 * np.sin(xx / 5.0), 128 + 80 * np.cos(yy / 4.0), 60 + 3 * xx], -1)
    sig = Signal(np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8), kind="image")
    res = compress(sig, "gaussian", bpp=3.0, steps=30, seed=0)
    section = read_container(res.data).sections["gaussians"]
    assert section[:2] == bytes([0, gc.FORM_CONTEXT])
    q, ids, steps, counts = gc.decode_section(section, 24, 32, 3)
    # re-encoding the parsed Gaussians in their layers gives the same bytes (a deterministic, lossless coder)
    assert gc.encode_section(q, ids, len(counts), steps) == section
    out = decompress(res.data)
    assert out.data.shape == sig.data.shape
    assert abs(res.report["psnr"] - float(10 * np.log10(255.0**2 / np.mean(
        (out.data.astype(float) - sig.data.astype(float)) ** 2)))) < 0.01


def test_old_golden_files_are_form1_and_the_new_one_form2():
    for name, first in (("gaussian-image", 1), ("gaussian-gray16", 1), ("gaussian-image-form2", 0)):
        c = read_container((GOLDEN / f"{name}.inrc").read_bytes())
        assert c.sections["gaussians"][0] == first, name


def test_unknown_form_and_corrupt_streams_are_format_errors():
    h, w, c = 20, 30, 3
    steps = G.base_steps_for(c)
    q = gc.quantize(*random_gaussians(300, h, w, c, seed=5), steps, h, w)
    blob = gc.encode_section(q, np.zeros(300, np.int64), 1, steps)
    with pytest.raises(FormatError, match="unknown form"):
        gc.decode_section(bytes([0, 3]) + blob[2:], h, w, c)
    for cut in (3, len(blob) // 2, len(blob) - 1):
        with pytest.raises(FormatError):
            gc.decode_section(blob[:cut], h, w, c)
    # every single-byte corruption: a FormatError or a well-formed decode, never another exception
    rng = np.random.default_rng(0)
    ref = gc.decode_section(blob, h, w, c)[0]
    errors = 0
    for pos in range(len(blob)):
        bad = bytearray(blob)
        bad[pos] ^= 1 << int(rng.integers(8))
        try:
            got = gc.decode_section(bytes(bad), h, w, c)[0]
            assert len(got.index) <= gc.MAX_GAUSSIANS
        except FormatError:
            errors += 1
    assert errors > len(blob) // 2  # most damage is caught (the stream's sentinel, counts, lengths)
    assert _same(ref, gc.decode_section(blob, h, w, c)[0])


def test_hostile_alphabets_are_refused_and_the_encoder_never_writes_them(monkeypatch):
    h, w, c = 20, 30, 3
    steps = G.base_steps_for(c)
    q = gc.quantize(*random_gaussians(40, h, w, c, seed=2), steps, h, w)
    q.color[0, 1] = 200_000  # one colour symbol far out: a 200k-entry table for 40 Gaussians
    layer_of = np.zeros(40, np.int64)
    # the encoder keeps within the reader's budget: this set falls back to form 1, which decodes it
    blob = gc.encode_section(q, layer_of, 1, steps)
    assert blob[0] == 1 and _same(gc.decode_section(blob, h, w, c)[0], q.select(np.argsort(q.index, kind="stable")))
    # a form-2 section that claims such a table anyway is refused before the table is built
    monkeypatch.setattr(gc, "ALPHABET_BUDGET", (1 << 20, 64))
    hostile = bytes([0, gc.FORM_CONTEXT]) + gc._encode_layers(q, layer_of, 1, steps, gc._encode_chunk_ctx)
    monkeypatch.undo()
    with pytest.raises(FormatError, match="alphabets"):
        gc.decode_section(hostile, h, w, c)


def test_degenerate_colours_are_clamped_and_still_code():
    """A fit stopped after a few steps can leave a near-singular colour solve with huge (or NaN) colours; they must
    quantise to int32 symbols and round-trip, clamped to COLOR_CLAMP (seen in a 5-step intra fit of mcvideo)."""
    h, w, channels = 40, 60, 3
    steps = G.base_steps_for(channels)
    means, logcov, colors = random_gaussians(300, h, w, channels, seed=7)
    colors = np.array(colors, dtype=np.float64)
    colors[:5] = 1e12
    colors[5:10] = -1e15
    colors[10, 1] = np.nan
    q = gc.quantize(means, logcov, colors, steps, h, w)
    blob = gc.encode_section(q, np.zeros(300, np.int64), 1, steps)
    q2, _, _, _ = gc.decode_section(blob, h, w, channels)
    _, _, decoded = gc.dequantize(q2, steps, h, w)
    assert np.isfinite(decoded).all()
    # clamped per channel before the colour basis: the decoded norm cannot exceed the clamp's by more than a step
    assert np.abs(decoded).max() <= gc.COLOR_CLAMP * np.sqrt(channels) * 1.5
    assert np.abs(decoded).max() > 4.0  # the huge ones did not collapse to ordinary colours
