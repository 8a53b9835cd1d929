"""Strict header schema and decode caps: each hostile header value named in issue 14 is refused with a one-line
FormatError before any tensor is built; the decoded-size cap has a default and explicit overrides."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from inrcodec import limits
from inrcodec.codec import decompress
from inrcodec.errors import FormatError
from inrcodec.fuzzing import reseal, unseal
from inrcodec.schema import check_config_types, is_int, is_real

GOLDEN = Path(__file__).parent / "golden"


def _file(name: str) -> bytes:
    return (GOLDEN / f"{name}.inrc").read_bytes()


def _with(name: str, edit) -> bytes:
    v, h, s = unseal(_file(name))
    edit(h)
    return reseal(h, s, v)


def test_type_predicates():
    assert is_int(3) and not is_int(True) and not is_int(3.0) and not is_int("3")
    assert is_real(3) and is_real(2.5) and not is_real(math.nan) and not is_real(math.inf)
    assert not is_real(10**400) and not is_real(False) and not is_real([1.0])


@pytest.mark.parametrize("field,value", [
    ("sigma", [2.0]), ("sigma", {"a": 1}), ("sigma", math.nan), ("sigma", math.inf), ("sigma", "2"),
    ("width", True), ("width", 12.0), ("width", 2**63), ("width", -1), ("hidden_layers", None),
    ("n_features", 10**400), ("ndim", 3), ("channels", 1), ("seed", "0"),
])
def test_hostile_fourier_config_values(field, value):
    data = _with("fourier-image", lambda h: h["config"].__setitem__(field, value))
    with pytest.raises(FormatError) as e:
        decompress(data)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("edit", [
    lambda h: h["signal"].__setitem__("range", [0, 10**400]),
    lambda h: h["signal"].__setitem__("range", [255.0, 0.0]),
    lambda h: h["signal"].__setitem__("range", [-1e308, 1e308]),
    lambda h: h["signal"]["meta"].__setitem__("sample_rate", "fast"),
    lambda h: h["signal"]["meta"].__setitem__("npy_shape", 5),
    lambda h: h["signal"].__setitem__("shape", [24, 32, 3, 1]),  # ndim no longer matches the config
    lambda h: h.__setitem__("model", "gaussian"),  # gaussian over network weights
    lambda h: h["config"].update(width=4096, hidden_layers=16),  # 2.5e8 weights: over MAX_PARAMS
])
def test_hostile_signal_and_model_values(edit):
    with pytest.raises(FormatError):
        decompress(_with("fourier-image", edit))


def test_unknown_and_missing_sections_are_refused():
    v, h, s = unseal(_file("siren-image"))
    with pytest.raises(FormatError, match="unexpected section"):
        decompress(reseal(h, s + [("extra", b"x")], v))
    with pytest.raises(FormatError, match="lacks section"):
        decompress(reseal(h, s[:1], v))


def test_gaussian_on_a_one_axis_signal_is_a_format_error():
    v, h, s = unseal(_file("gaussian-image"))
    h["signal"]["shape"] = [768, 3]
    with pytest.raises(FormatError, match="cannot represent"):
        decompress(reseal(h, s, v))


def test_config_types_follow_the_annotations():
    from inrcodec.models.hashgrid import HashGridConfig

    check_config_types(HashGridConfig, {"ndim": 2, "per_level_scale": 2}, "hashgrid")  # int for float is fine
    with pytest.raises(FormatError, match="per_level_scale"):
        check_config_types(HashGridConfig, {"per_level_scale": "1.5"}, "hashgrid")


def test_decoded_size_cap_default_and_overrides(monkeypatch):
    """A 500-byte file claiming a 16384 x 16384 image (2.7e8 samples): refused by default, refused by a smaller
    explicit cap, and the cap can be lifted (checked here on a cap just above a modest claim, not by rendering)."""
    big = _with("siren-image", lambda h: h["signal"].__setitem__("shape", [16384, 16384, 3]))
    assert len(big) < 1000
    with pytest.raises(FormatError, match="max-pixels"):
        decompress(big)
    small = _file("siren-image")  # 24 x 32
    with pytest.raises(FormatError, match="cap of 100"):
        decompress(small, max_pixels=100)
    assert decompress(small, max_pixels=768).data.shape == (24, 32, 3)
    with pytest.raises(FormatError):
        decompress(small, shape=(240, 320), max_pixels=10_000)
    monkeypatch.setattr(limits, "MAX_PIXELS", 500)
    with pytest.raises(FormatError):
        decompress(small)
    assert decompress(small, max_pixels=0).data.shape == (24, 32, 3)  # 0: no cap


def test_cli_max_pixels(tmp_path, capsys):
    from inrcodec.cli import main

    src = tmp_path / "a.inrc"
    src.write_bytes(_file("gaussian-image"))
    out = tmp_path / "a.png"
    assert main(["decode", str(src), "-o", str(out), "--max-pixels", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cap of 100" in err and not out.exists()
    assert main(["decode", str(src), "-o", str(out), "--max-pixels", "768"]) == 0 and out.exists()


def test_nonfinite_weights_are_refused():
    """A float32 step of 3e38 times symbol 2 overflows: the decoder refuses instead of rendering inf/NaN."""
    v, h, s = unseal(_file("fourier-image"))
    s = dict(s)
    n = len(s["steps"]) // 4
    s["steps"] = np.full(n, 3e38, dtype="<f4").tobytes()
    with pytest.raises(FormatError, match="non-finite"):
        decompress(reseal(h, list(s.items()), v))


@pytest.mark.parametrize("n,hw,cap", [(4_000_000, (24, 32), "gaussians for"), (65_536, (24, 32), "under 2 bits"),
                                      (262_144, (256, 256), "under 2 bits")])
def test_gaussian_flood_is_refused_before_rendering(n, hw, cap):
    """130-byte files of n identical huge Gaussians (constant streams): before the caps, 4 million of them took
    39 s to render on 24 x 32 pixels. Files that pay 2 bits per Gaussian meet the pixel-visit cap instead
    (tests/test_fuzz.py::test_gaussian_work_cap_refuses_the_worst_file_unless_trusted)."""
    from inrcodec.entropy import encode_ints
    from inrcodec.entropy._bytes import varint

    v, h, s = unseal(_file("gaussian-image"))
    h["signal"]["shape"] = [hw[0], hw[1], 3]
    h["config"]["n_gaussians"] = min(n, 1 << 22)
    const = encode_ints(np.full(n, 0))
    parts = [const, b"", encode_ints(np.full(n, 20))] + [encode_ints(np.full(n, 1))] * 3 + [const, const, b""]
    chunk = b"".join(varint(len(p)) + p for p in parts)
    sec = varint(1) + varint(n) + bytes([0, 0, 8, 0, 0, 0xF0, 0xF0, 0xF0]) + varint(len(chunk)) + chunk
    data = reseal(h, [("gaussians", sec)], v)
    assert len(data) < 200
    with pytest.raises(FormatError, match=cap):
        decompress(data)
