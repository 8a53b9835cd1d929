"""The command line contract: outputs, reports, and failure behaviour (exit 2, one line, nothing left behind)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inrcodec.cli import main
from helpers import smooth_rgb


@pytest.fixture
def small_png(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(smooth_rgb(24, 32)).save(path)
    return path


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_info_decode_round_trip(small_png, tmp_path, capsys):
    out = tmp_path / "img.inrc"
    report = tmp_path / "r.json"
    code, stdout, err = run(["fit", small_png, "-o", out, "--bpp", "3", "--steps", "60", "--json", report, "-q"],
                            capsys)
    assert code == 0, err
    assert "bpp" in stdout and "PSNR" in stdout
    rep = json.loads(report.read_text())
    for key in ("bytes", "bpp", "psnr", "seconds", "model"):
        assert key in rep
    assert rep["bytes"] == out.stat().st_size
    assert rep["bpp"] == pytest.approx(out.stat().st_size * 8 / (24 * 32))

    code, stdout, _ = run(["info", out], capsys)
    assert code == 0 and "24x32x3" in stdout and "uint8" in stdout

    decoded = tmp_path / "dec.png"
    code, _, err = run(["decode", out, "-o", decoded], capsys)
    assert code == 0, err
    img = np.asarray(Image.open(decoded))
    assert img.shape == (24, 32, 3) and img.dtype == np.uint8

    code, _, _ = run(["decode", out, "-o", tmp_path / "big.png", "--size", "64x48"], capsys)
    assert code == 0 and np.asarray(Image.open(tmp_path / "big.png")).shape == (48, 64, 3)
    code, _, _ = run(["decode", out, "-o", tmp_path / "half.npy", "--scale", "0.5"], capsys)
    assert code == 0 and np.load(tmp_path / "half.npy").shape == (12, 16, 3)


def test_default_output_name(small_png, capsys):
    code, _, err = run(["fit", small_png, "--steps", "5", "-q"], capsys)
    assert code == 0, err
    assert small_png.with_suffix(".inrc").is_file()


def _bad_inputs(tmp_path: Path, small_png: Path) -> dict[str, Path]:
    cases = {"missing": tmp_path / "nope.png", "empty": tmp_path / "empty.png",
             "text_as_png": tmp_path / "text.png", "truncated_png": tmp_path / "trunc.png",
             "directory": tmp_path / "adir"}
    cases["empty"].write_bytes(b"")
    cases["text_as_png"].write_text("hello, I am not an image\n")
    cases["truncated_png"].write_bytes(small_png.read_bytes()[:200])
    cases["directory"].mkdir()
    return cases


@pytest.mark.parametrize("case", ["missing", "empty", "text_as_png", "truncated_png", "directory"])
def test_bad_input_files_fail_cleanly(case, small_png, tmp_path, capsys):
    bad = _bad_inputs(tmp_path, small_png)[case]
    out = tmp_path / "out.inrc"
    code, stdout, err = run(["fit", bad, "-o", out, "--steps", "5"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert bad.name in lines[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


@pytest.fixture
def good_inrc(small_png, tmp_path, capsys):
    path = tmp_path / "good.inrc"
    assert run(["fit", small_png, "-o", path, "--steps", "5", "-q"], capsys)[0] == 0
    return path


@pytest.mark.parametrize("damage", ["truncate", "flip", "random", "empty", "png"])
def test_bad_inrc_fails_cleanly(damage, good_inrc, small_png, tmp_path, capsys):
    data = good_inrc.read_bytes()
    bad = tmp_path / "bad.inrc"
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        b = bytearray(data)
        b[len(b) - 5] ^= 0x10
        bad.write_bytes(bytes(b))
    elif damage == "random":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    elif damage == "empty":
        bad.write_bytes(b"")
    else:
        bad.write_bytes(small_png.read_bytes())
    out = tmp_path / "out.png"
    for argv in (["decode", bad, "-o", out], ["info", bad]):
        code, _, err = run(argv, capsys)
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_unknown_model_and_usage_errors(small_png, tmp_path, capsys):
    out = tmp_path / "o.inrc"
    code, _, err = run(["fit", small_png, "-o", out, "--model", "nonsense"], capsys)
    assert code == 2 and "nonsense" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    code, _, err = run(["fit", small_png, "--bpp", "1", "--psnr", "30"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, _, err = run(["fit", small_png, "--bpp", "abc"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, _, err = run(["fit", small_png, "-o", tmp_path / "no" / "dir" / "x.inrc"], capsys)
    assert code == 2 and "does not exist" in err


def test_console_script_exit_code(tmp_path):
    """The installed entry point (not just main()) maps bad input to exit code 2."""
    proc = subprocess.run([sys.executable, "-m", "inrcodec", "fit", str(tmp_path / "missing.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("inrcodec: error:") and "missing.png" in proc.stderr
