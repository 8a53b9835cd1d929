"""Audio through the command line: `inrcodec fit x.wav` then `inrcodec decode x.inrc -o y.wav` keeps the sample
rate, the length and the sample type, and the decoded waveform follows the original."""

import numpy as np
import pytest

from inrcodec import Signal, load, save
from inrcodec.cli import main
from inrcodec.metrics import psnr


def _speechlike(n: int = 2000, rate: int = 8000) -> np.ndarray:
    """Two harmonics under a slow amplitude envelope: smooth enough for a tiny network, not a pure tone."""
    t = np.arange(n) / rate
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    wave = env * (0.6 * np.sin(2 * np.pi * 180 * t) + 0.3 * np.sin(2 * np.pi * 360 * t + 0.7))
    return (wave * 16000).astype(np.int16)


@pytest.mark.parametrize("model", [None, "latentgrid"])
def test_wav_fit_decode_keeps_rate_length_dtype(tmp_path, capsys, model):
    wav = tmp_path / "x.wav"
    samples = _speechlike()
    save(Signal(samples[:, None], kind="audio", metadata={"sample_rate": 11025}), wav)
    packed = tmp_path / "x.inrc"
    argv = ["fit", str(wav), "-o", str(packed), "--steps", "150", "--bpp", "6", "-q"]
    if model:
        argv += ["--model", model]
    assert main(argv) == 0, capsys.readouterr().err
    out = tmp_path / "y.wav"
    assert main(["decode", str(packed), "-o", str(out)]) == 0, capsys.readouterr().err
    back = load(out)
    assert back.kind == "audio"
    assert back.metadata["sample_rate"] == 11025
    assert back.data.shape == (2000, 1) and back.dtype == np.int16
    # 6 bits per sample must follow the waveform far better than silence does (PSNR uses the int16 peak).
    silent = psnr(samples[:, None], np.zeros_like(samples)[:, None])
    assert psnr(samples[:, None], back.data) > silent + 10.0
    assert packed.stat().st_size * 8 <= 6 * 2000
