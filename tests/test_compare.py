"""compare: our codec behind the baselines interface, BD-rates through compare's path, the `compare` command, and
an independent check of the JPEG curve (Pillow + a hand-written PSNR) on a real Kodak crop."""

import io
import json
import math

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from helpers import smooth_rgb
from inrcodec import baselines as B
from inrcodec import metrics as M
from inrcodec.cli import main
from inrcodec.codec import decompress
from inrcodec.container import read_container
from inrcodec.compare import (DEFAULT_CODECS, InrcodecCodec, bd_rates, compare, crop_signal, format_table,
                              parse_crop, to_json)
from inrcodec.errors import InputError
from inrcodec.signal import Signal

POINT_KEYS = ("bpp", "psnr", "ms_ssim", "encode_s", "decode_s", "bytes", "quality")


@pytest.fixture(scope="module")
def img():
    return smooth_rgb(48, 64)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- our codec as a baselines.Codec ---------------------------------------------------------------------------------
def test_inrcodec_codec_round_trip_through_measure(img):
    codec = InrcodecCodec("fourier", steps=5)
    assert isinstance(codec, B.Codec) and codec.name == "inrcodec-fourier" and codec.available
    data = codec.encode(img, 4.0)
    assert read_container(data).model == "fourier"  # the bytes are a whole .inrc file
    rec = codec.decode(data)
    assert rec.shape == img.shape and rec.dtype == np.uint8
    np.testing.assert_array_equal(rec, decompress(data).data)  # decode is exactly decompress
    assert codec.last_report["bytes"] == len(data)
    assert len(data) * 8 / (48 * 64) <= 4.0 * 1.10  # the codec's rate contract: at most the target (+10 %)

    p = B.measure(codec, Signal(img, kind="image"), 4.0)
    assert p["codec"] == "inrcodec-fourier" and p["quality"] == 4.0
    assert p["bpp"] == pytest.approx(p["bytes"] * 8 / (48 * 64))
    assert p["encode_s"] > 0 and p["decode_s"] > 0 and 0 < p["ms_ssim"] <= 1
    assert math.isfinite(p["psnr"]) and p["psnr"] > 5  # a fitted model, not noise


def test_inrcodec_codec_rejects_what_it_cannot_take(img):
    with pytest.raises(InputError, match="quality"):
        InrcodecCodec("fourier").encode(img, 0.0)  # bpp must be positive
    assert not InrcodecCodec("no-such-model").available
    assert InrcodecCodec("fourier").why_unsupported(img.astype(np.float32)) is not None


# -- baselines through compare ---------------------------------------------------------------------------------------
def test_compare_baselines_only_round_trip(img):
    seen = []
    res = compare(img, DEFAULT_CODECS, [], rates=[1.0, 2.0, 4.0], name="gen", baseline_points=4,
                  progress=lambda f, m: seen.append((f, m)))
    lo, hi = res["settings"]["baseline_bpp_range"]
    assert (lo, hi) == pytest.approx((0.5, 8.0))  # [lowest / 2, highest * 2]
    assert set(res["curves"]) | set(res["skipped"]) == set(DEFAULT_CODECS)
    assert "jpeg" in res["curves"] and "webp" in res["curves"]  # these always reach 0.5-8 bpp on 48x64 RGB
    for name, pts in res["curves"].items():
        assert len(pts) >= 3, name
        for p in pts:
            assert all(k in p for k in POINT_KEYS)
            assert lo <= p["bpp"] <= hi and 15 < p["psnr"] < 70
        bpps = [p["bpp"] for p in pts]
        assert bpps == sorted(bpps)
        # more bits -> better: PSNR at the top of the curve above the bottom (a broken decode would be flat/noise)
        assert pts[-1]["psnr"] > pts[0]["psnr"] + 2, name
    assert res["bd_rate"] == {}  # no inrcodec model, no BD column
    assert seen[-1][0] == 1.0 and all(0 <= f <= 1 for f, _ in seen)
    json.loads(to_json(res))  # strict JSON


def test_compare_rejects_bad_names_before_work(img):
    with pytest.raises(InputError, match="unknown codec"):
        compare(img, ["jpeg", "nope"], [])
    with pytest.raises(InputError, match="unknown model"):
        compare(img, ["jpeg"], ["nope"])
    with pytest.raises(InputError, match="image codecs only"):
        compare(img, ["sz3"], [])
    with pytest.raises(InputError, match="at least 3"):
        compare(img, ["jpeg"], ["fourier"], rates=[1, 2])


# -- BD-rate through compare's path ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jpeg_curve(img):
    return B.sweep("jpeg", img, [20, 35, 50, 65, 80, 90])


def test_bd_rate_self_zero_and_cheaper_copy(jpeg_curve):
    cheaper = [dict(p, bpp=0.9 * p["bpp"]) for p in jpeg_curve]
    table, notes = bd_rates({"jpeg": jpeg_curve, "inrcodec-same": jpeg_curve, "inrcodec-cheap": cheaper})
    assert set(table) == {"inrcodec-same", "inrcodec-cheap"}  # only our curves get rows
    assert table["inrcodec-same"]["jpeg"] == pytest.approx(0.0, abs=1e-9)
    # a constant log-rate shift of log(0.9) is -10 % exactly, whatever the fit
    assert table["inrcodec-cheap"]["jpeg"] == pytest.approx(-10.0, abs=1e-6)
    assert set(table["inrcodec-cheap"]) == {"jpeg"}  # ours are measured against baselines, not each other
    assert "dB" in notes["inrcodec-same"]["jpeg"]


def test_bd_rate_no_overlap_gives_none_with_reason(jpeg_curve):
    low = [dict(p, psnr=p["psnr"] - 100) for p in jpeg_curve]
    table, notes = bd_rates({"jpeg": jpeg_curve, "inrcodec-low": low})
    assert table["inrcodec-low"]["jpeg"] is None
    assert "overlap" in notes["inrcodec-low"]["jpeg"]
    res = {"input": {"name": "x", "shape": [48, 64, 3]}, "curves": {"jpeg": jpeg_curve, "inrcodec-low": low},
           "bd_rate": table, "bd_rate_notes": notes, "skipped": {"webp": "because"}}
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(format_table(res))
    text = console.export_text()
    assert "n/a" in text and "do not overlap" in text and "webp skipped: because" in text


# -- the command line ------------------------------------------------------------------------------------------------
def test_cli_compare_writes_json_and_png(img, tmp_path, capsys):
    src = tmp_path / "gen.png"
    Image.fromarray(img).save(src)
    out = tmp_path / "out"
    code, stdout, err = run(["compare", src, "--codecs", "jpeg,webp", "--models", "fourier", "--rates", "2,4,8",
                             "--steps", "5", "-o", out, "-q"], capsys)
    assert code == 0, err
    res = json.loads((out / "gen.json").read_text())
    assert res["input"]["name"] == "gen.png" and res["input"]["shape"] == [48, 64, 3]
    assert res["input"]["dtype"] == "uint8"
    assert set(res["curves"]) == {"jpeg", "webp", "inrcodec-fourier"}
    ours = res["curves"]["inrcodec-fourier"]
    assert [p["target_bpp"] for p in sorted(ours, key=lambda p: p["target_bpp"])] == [2, 4, 8]
    for pts in res["curves"].values():
        assert all(k in p for p in pts for k in POINT_KEYS)
    for b in ("jpeg", "webp"):
        v = res["bd_rate"]["inrcodec-fourier"][b]
        assert (v is None and res["bd_rate_notes"]["inrcodec-fourier"][b]) or math.isfinite(v)
    for key in ("inrcodec", "torch", "imagecodecs", "numpy", "python", "cpu"):
        assert res["versions"][key]
    assert res["command"].startswith("inrcodec compare ")
    png = Image.open(out / "gen.png")
    assert png.format == "PNG" and png.size[0] > 300
    assert "BD-rate" in stdout and "inrcodec-fourier" in stdout


def test_cli_compare_bad_input_exits_2_and_writes_nothing(img, tmp_path, capsys):
    src = tmp_path / "gen.png"
    Image.fromarray(img).save(src)
    out = tmp_path / "out"
    for argv, msg in (
        (["--codecs", "jpeg,nope"], "unknown codec"),
        (["--models", "nope"], "unknown model"),
        (["--rates", "1,x,2"], "--rates"),
        (["--crop", "100x100"], "does not fit"),
    ):
        code, _, err = run(["compare", src, "-o", out, "-q", *argv], capsys)
        assert code == 2, argv
        assert msg in err and len(err.strip().splitlines()) == 1
        assert not out.exists()


def test_crop_parsing_and_window():
    assert parse_crop("256x128") == (256, 128, None, None)
    assert parse_crop("8x4+2+3") == (8, 4, 2, 3)
    with pytest.raises(InputError):
        parse_crop("256")
    sig = Signal(np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3), kind="image")
    c = crop_signal(sig, 8, 4)  # centred
    np.testing.assert_array_equal(c.data, sig.data[3:7, 6:14])
    c = crop_signal(sig, 8, 4, 2, 3)
    np.testing.assert_array_equal(c.data, sig.data[3:7, 2:10])
    with pytest.raises(InputError):
        crop_signal(sig, 8, 4, 15, 0)


# -- independent check of the JPEG curve on a real image -------------------------------------------------------------
def _pillow_jpeg(rgb: np.ndarray, quality: int) -> tuple[float, float]:
    """bpp and PSNR of Pillow's JPEG (4:2:0, optimised Huffman) with PSNR written out by hand."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=2, optimize=True)
    dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).astype(np.float64)
    mse = np.mean((dec - rgb.astype(np.float64)) ** 2)
    return len(buf.getvalue()) * 8 / (rgb.shape[0] * rgb.shape[1]), 10 * np.log10(255.0 ** 2 / mse)


def test_jpeg_curve_agrees_with_pillow_on_kodak_crop(shared_data):
    from inrcodec.signals import load

    sig = crop_signal(load(shared_data / "kodak" / "kodim01.png"), 256, 256)
    res = compare(sig, ["jpeg"], [], rates=[0.25, 0.5, 1.0])
    pts = res["curves"]["jpeg"]
    assert len(pts) >= 4
    for p in pts:
        bpp_pil, psnr_pil = _pillow_jpeg(sig.data, int(p["quality"]))
        # same quality setting: PSNR within the 0.5 dB, sizes within 10 % (header/Huffman differences)
        assert abs(p["psnr"] - psnr_pil) < 0.5, (p["quality"], p["psnr"], psnr_pil)
        assert abs(p["bpp"] - bpp_pil) / bpp_pil < 0.10
        # matched rate: our curve (linear in log-bpp) at Pillow's bpp, where Pillow's point lies inside our range
        xs, ys = np.log([q["bpp"] for q in pts]), [q["psnr"] for q in pts]
        if xs[0] <= math.log(bpp_pil) <= xs[-1]:
            assert abs(np.interp(math.log(bpp_pil), xs, ys) - psnr_pil) < 0.5
