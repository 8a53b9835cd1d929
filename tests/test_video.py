"""Video: I/O through PyAV (streaming windows, savers, audio stream copy), the GOP layout (rate landing, random
access, resampling), the CLI (fit/decode/info, bad inputs) and the x264/x265/SVT-AV1 baselines.

Signals are a generated moving-shapes clip of 12 frames of 64x48 (a few kB); fits use ``--steps`` of a few dozen
so that the whole module stays within tens of seconds on one core."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from inrcodec.cli import main
from inrcodec.errors import InputError
from inrcodec.samples import moving_shapes_video
from inrcodec.signals import load
from inrcodec.signals.video import VideoSource, write_video
from inrcodec.video_codec import compress_video, decode_video, decode_windows, frame_psnrs, open_video

T, H, W, FPS = 12, 48, 64, 10
STEPS = 40


def clip_frames() -> np.ndarray:
    return moving_shapes_video(T, H, W).data


def make_clip(path: Path, frames: np.ndarray | None = None, audio: bool = True, fps: int = FPS) -> Path:
    """An H.264 clip (crf 18) with, optionally, a 440 Hz sine track in AAC at 8 kHz."""
    frames = clip_frames() if frames is None else frames
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps, options={"crf": "18"})
        v.width, v.height, v.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        a = None
        if audio:
            a = out.add_stream("aac", rate=8000, layout="mono")
            a.bit_rate = 8000
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            out.mux(v.encode(vf))
        out.mux(v.encode(None))
        if a is not None:
            n = int(8000 * len(frames) / fps)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 8000)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            af.sample_rate, af.pts = 8000, 0
            out.mux(a.encode(af))
            out.mux(a.encode(None))
    return path


def audio_packets(path: Path) -> tuple[str, int]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return "", 0
        s = c.streams.audio[0]
        return s.codec_context.name, sum(1 for p in c.demux(s) if p.size)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "shapes.mp4")


@pytest.fixture(scope="module")
def coded(clip) -> tuple[bytes, dict]:
    """The clip coded in 3 GOPs of 4 frames at 2 bpp (with its audio track)."""
    r = compress_video(clip, "fourier", bpp=2.0, steps=STEPS, gop=4, workers=1)
    return r.data, r.report


# -- reading ---------------------------------------------------------------------------------------------------
def test_source_streams_windows_and_reads_metadata(clip):
    src = VideoSource(clip)
    info = src.info
    assert (info.width, info.height, info.frames, info.fps) == (W, H, T, Fraction(FPS))
    assert info.has_audio and info.pix_fmt == "yuv420p"
    sizes = [w.shape for w in src.windows(5)]
    assert sizes == [(5, H, W, 3), (5, H, W, 3), (2, H, W, 3)]
    frames = np.concatenate(list(src.windows(5)))
    assert frames.dtype == np.uint8
    p, _ = frame_psnrs(clip_frames(), frames)
    assert p.min() > 30  # crf 18 of the generated frames
    sig = load(clip)  # the register_format entry
    assert sig.kind == "video" and sig.data.shape == (T, H, W, 3) and sig.metadata["fps"] == FPS


@pytest.mark.parametrize("ext,tol", [("mkv", 0), ("mp4", 0), ("npy", 0), ("y4m", 3), ("", 0)])
def test_savers_round_trip(tmp_path, ext, tol):
    x = clip_frames()
    out = tmp_path / (f"out.{ext}" if ext else "frames")
    n = write_video(out, [x[:5], x[5:]], Fraction(FPS))
    assert n == T
    back = np.load(out) if ext == "npy" else np.concatenate(list(VideoSource(out).windows(4)))
    assert back.shape == x.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - x).max() <= tol
    if ext in ("mkv", "mp4"):
        assert VideoSource(out).info.fps == FPS
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind


def test_audio_is_stream_copied_and_remuxed(clip, tmp_path):
    track = VideoSource(clip).audio_track()
    assert track and len(track) < 4000
    out = tmp_path / "a.mkv"
    write_video(out, [clip_frames()], Fraction(FPS), track)
    assert audio_packets(out) == audio_packets(clip)  # same codec, every packet carried


# -- the GOP layout ----------------------------------------------------------------------------------------------
def test_rate_lands_on_the_whole_file(coded, clip):
    data, rep = coded
    assert rep["gops"] == 3 and rep["gop_frames"] == [4, 4, 4]
    assert rep["bytes"] == len(data)
    assert abs(8 * len(data) / (T * H * W) - 2.0) <= 0.2  # +-10 % of --bpp, headers and audio included
    assert rep["target_met"] is True
    assert rep["audio_bytes"] == len(VideoSource(clip).audio_track())
    decoded = decode_video(data).data
    p, y = frame_psnrs(np.concatenate(list(VideoSource(clip).windows(T))), decoded)
    assert abs(p.mean() - rep["psnr"]) < 1e-3 and abs(y.mean() - rep["psnr_y"]) < 1e-3
    assert rep["psnr"] > 18  # a fit, not noise: a flat grey frame of this clip scores ~10 dB


def test_rate_control_carries_leftover_over_gops(tmp_path):
    x = clip_frames()
    from inrcodec.signal import Signal

    sig = Signal(x, kind="video", metadata={"fps": 10.0})
    r = compress_video(sig, "fourier", bpp=0.6, steps=STEPS, gop=3, workers=2)  # two GOPs at a time
    assert r.report["gops"] == 4 and abs(r.report["bpp"] - 0.6) <= 0.06, r.report


def test_random_access_decodes_only_the_gops_needed(coded, monkeypatch):
    data, _ = coded
    full = decode_video(data).data
    import inrcodec.video_codec as vc

    calls = []
    real = vc.decompress
    monkeypatch.setattr(vc, "decompress", lambda b, **k: calls.append(1) or real(b, **k))
    part = np.concatenate(list(decode_windows(data, frames=(5, 8))))
    assert len(calls) == 1  # frames 5..7 all sit in GOP 1
    assert np.array_equal(part, full[5:8])
    part = np.concatenate(list(decode_windows(data, frames=(3, 9))))
    assert np.array_equal(part, full[3:9])


def test_temporal_and_spatial_resampling(coded):
    data, _ = coded
    twice = decode_video(data, fps=2 * FPS)
    assert twice.data.shape == (2 * T, H, W, 3) and twice.metadata["fps"] == 2 * FPS
    # the fitted clip at double rate: frame 2k+1 is close to the native frame k (the same instant, up to 1/4 frame)
    full = decode_video(data).data
    assert frame_psnrs(full, twice.data[1::2])[0].mean() > 22
    small = np.concatenate(list(decode_windows(data, size=(24, 32))))
    assert small.shape == (T, 24, 32, 3)


def test_corrupt_video_file_is_a_format_error(coded):
    from inrcodec.errors import FormatError

    data = bytearray(coded[0])
    data[-10] ^= 0xFF
    with pytest.raises(FormatError):
        decode_video(bytes(data))
    with pytest.raises(FormatError):
        open_video(bytes(data[: len(data) // 2]))


# -- command line --------------------------------------------------------------------------------------------------
def test_cli_fit_info_decode(clip, tmp_path, capsys):
    inrc, report = tmp_path / "c.inrc", tmp_path / "r.json"
    assert main(["fit", str(clip), "-o", str(inrc), "--model", "fourier", "--bpp", "3", "--steps", str(STEPS),
                 "--json", str(report), "-q"]) == 0
    rep = json.loads(report.read_text())
    assert rep["bytes"] == inrc.stat().st_size and rep["audio_bytes"] > 0 and rep["frames"] == T
    assert main(["info", str(inrc)]) == 0
    out = capsys.readouterr().out
    assert "GOPs:" in out and f"{rep['audio_bytes']} bytes (aac" in out and "10 fps" in out
    mp4 = tmp_path / "d.mp4"
    assert main(["decode", str(inrc), "-o", str(mp4)]) == 0
    assert VideoSource(mp4).info.frames == T and audio_packets(mp4) == audio_packets(clip)
    npy = tmp_path / "d.npy"
    assert main(["decode", str(inrc), "-o", str(npy), "--frames", "2:5"]) == 0
    assert np.array_equal(np.load(npy), np.concatenate(list(VideoSource(mp4).windows(T)))[2:5])
    assert main(["decode", str(inrc), "-o", str(tmp_path / "x.npy"), "--frames", "2:5", "--fps", "20"]) == 2
    assert main(["fit", str(clip), "-o", str(tmp_path / "n.inrc"), "--model", "fourier", "--steps", "5",
                 "--no-audio", "-q"]) == 0
    assert "audio:    none" in (capsys.readouterr(), main(["info", str(tmp_path / "n.inrc")]),
                                capsys.readouterr().out)[2]


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    truncated = tmp_path / "cut.mp4"
    whole = make_clip(tmp_path / "whole.mp4", audio=False).read_bytes()
    truncated.write_bytes(whole[: len(whole) // 3])
    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), "w") as out:  # a valid container with a video stream and no frame
        s = out.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = W, H, "bgr0"
    folder = tmp_path / "frames"
    folder.mkdir()
    import imagecodecs

    (folder / "f1.png").write_bytes(imagecodecs.png_encode(clip_frames()[0]))
    (folder / "f2.png").write_bytes(imagecodecs.png_encode(clip_frames()[1][:, :32]))
    return {"text": text, "truncated": truncated, "empty": empty, "sizes": folder}


def test_bad_inputs_exit_2_with_one_line_and_no_output(tmp_path, capsys):
    for what, path in _bad_inputs(tmp_path).items():
        out = tmp_path / f"{what}.inrc"
        code = main(["fit", str(path), "-o", str(out), "--model", "fourier", "--steps", "3", "-q"])
        err = capsys.readouterr().err.strip()
        assert code == 2, (what, err)
        assert len(err.splitlines()) == 1 and str(path) in err, (what, err)
        assert not out.exists(), what
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_decode_requests(coded, tmp_path, capsys):
    inrc = tmp_path / "c.inrc"
    inrc.write_bytes(coded[0])
    for args in (["--frames", "20:30"], ["--frames", "x"], ["--fps", "0"], ["--fraction", "0.5"]):
        out = tmp_path / "o.npy"
        assert main(["decode", str(inrc), "-o", str(out), *args]) == 2, args
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert not out.exists()
    corrupt = tmp_path / "bad.inrc"
    corrupt.write_bytes(coded[0][:-7])
    assert main(["decode", str(corrupt), "-o", str(tmp_path / "o.mp4")]) == 2
    assert not (tmp_path / "o.mp4").exists()


def test_frames_folder_and_glob_inputs(tmp_path):
    import imagecodecs

    x = clip_frames()[:6]
    d = tmp_path / "seq"
    d.mkdir()
    for i, f in enumerate(x):  # natural order: f2 before f10
        (d / f"f{i * 4}.png").write_bytes(imagecodecs.png_encode(f))
    for src in (d, d / "f*.png"):
        frames = np.concatenate(list(VideoSource(src).windows(4)))
        assert np.array_equal(frames, x)


# -- baselines ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["x264", "x265", "svtav1"])
def test_video_baselines_rate_falls_with_crf(name):
    from inrcodec.baselines import get_codec
    from inrcodec.video_baselines import measure_video

    codec = get_codec(name)
    x = clip_frames()
    lo_q, hi_q = codec.qualities[0], codec.qualities[-1]
    fine, coarse = measure_video(codec, x, lo_q, FPS), measure_video(codec, x, hi_q, FPS)
    assert fine["bytes"] > coarse["bytes"] and fine["psnr"] > coarse["psnr"] > 20
    assert fine["kbps"] == pytest.approx(8 * fine["bytes"] / 1000 / (T / FPS))
    with pytest.raises(InputError):
        codec.encode(x[:, :47], 30)  # yuv420p needs even sizes


# -- the motion-compensated GOP model --------------------------------------------------------------------------------
def test_mcvideo_predicts_from_coded_motion_and_lands_the_rate():
    from inrcodec.models import mcvideo
    from inrcodec.signal import Signal

    x = clip_frames()
    # the motion field alone: warping the true first frame along the coded vectors beats repeating it
    flows = mcvideo.dense_flows(x[:5])  # frames 1..3 of a GOP of 4, and the next GOP's first frame
    vectors = mcvideo.block_motion(flows, 16, H, W)
    for form in mcvideo.MOTION_FORMS:  # both predictions of the vectors are lossless
        back = mcvideo.decode_motion(mcvideo.encode_motion(vectors, form), vectors.shape, form)
        assert np.array_equal(back, vectors)
    rng = np.random.default_rng(1)
    smooth = np.cumsum(np.cumsum(rng.integers(-1, 2, (3, 9, 11, 2)), axis=1), axis=2)  # a field smooth in space
    assert np.array_equal(mcvideo.decode_motion(mcvideo.encode_motion(smooth, "med"), smooth.shape, "med"), smooth)
    assert len(mcvideo.encode_motion(smooth, "med")) < len(mcvideo.encode_motion(smooth, "temporal"))
    warped = mcvideo.predict(x[0], vectors[:3], 16)
    held = np.repeat(x[:1], 4, axis=0)
    assert frame_psnrs(x[:4], warped)[0][1:].mean() > frame_psnrs(x[:4], held)[0][1:].mean() + 1.0
    # with the next GOP's first frame, the blend of forward and backward predictions beats forward alone
    both = mcvideo.predict(x[0], vectors, 16, next_intra=x[4])
    assert frame_psnrs(x[:4], both)[0][1:].mean() > frame_psnrs(x[:4], warped)[0][1:].mean() + 0.5
    sig = Signal(x, kind="video", metadata={"fps": 10.0})
    r = compress_video(sig, "mcvideo", bpp=1.0, steps=30, workers=1)
    gop = mcvideo.DEFAULT_GOP
    assert r.report["gop_frames"] == [gop] * (T // gop) and abs(r.report["bpp"] - 1.0) <= 0.1
    decoded = decode_video(r.data).data
    assert abs(frame_psnrs(x, decoded)[0].mean() - r.report["psnr"]) < 1e-3
    part = np.concatenate(list(decode_windows(r.data, frames=(5, 7))))
    assert np.array_equal(part, decoded[5:7])
    with pytest.raises(InputError, match="not supported by this model"):
        list(decode_windows(r.data, fps=20))


# -- the coded residual of mcvideo's predicted frames ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["dct", "pyramid"])
def test_residual_coder_synthesizes_what_the_encoder_reconstructed(name):
    from inrcodec.models.mcvideo import RESIDUALS

    coder = RESIDUALS[name]
    rng = np.random.default_rng(3)
    res = (rng.normal(0, 12, (H, W, 3)) + np.linspace(-30, 30, W)[None, :, None]).astype(np.float32)
    errors, sizes = [], []
    for step in (2.0, 8.0, 32.0):
        z, decoded = coder.analyse(res, step)
        blob = coder.encode_symbols([z, z])
        back = coder.decode_symbols(blob, 2, H, W)
        # the decoder's synthesis is bit-identical to the encoder's own reconstruction, after the symbols' coding
        assert np.array_equal(coder.synthesize(back[1], step, H, W), decoded)
        errors.append(float(np.mean((decoded - res) ** 2)))
        sizes.append(len(blob))
        assert coder.estimate_bytes([z, z]) == pytest.approx(len(blob), rel=0.3, abs=40)
    # coarser steps cost fewer bytes and code less of the residual; the finest removes most of its energy
    assert errors[0] < errors[1] < errors[2] < float(np.mean(res**2))
    assert sizes[0] > sizes[1] > sizes[2]
    assert errors[0] < 0.5 * float(np.mean(res**2))


def _gop_parts(blob: bytes):
    from inrcodec.container import read_container

    return read_container(blob)


def test_residual_gop_decodes_to_the_closed_loop_and_beats_prediction_alone():
    from inrcodec.codec import decompress
    from inrcodec.models import mcvideo

    x = clip_frames()[:8]
    target = 3000
    blob = mcvideo.encode_gop(x, target, steps=30, structure="")  # the forward P chain (B GOPs: test_video_bframes)
    assert len(blob) <= target * 1.02
    c, cfg = mcvideo._parse(blob)
    assert cfg.residual == mcvideo.DEFAULT_RESIDUAL and cfg.residual_step > 0 and not cfg.bidirectional
    decoded = mcvideo.decode_gop(blob)
    # the encoder's closed loop, re-run from the coded intra frame, motion and step, is what the decoder gives
    intra = decompress(c.sections["intra"]).data
    by, bx = -(-H // cfg.block), -(-W // cfg.block)
    vectors = mcvideo.decode_motion(c.sections["motion"], (7, by, bx, 2), cfg.motion)
    coder = mcvideo.coder_for(cfg)
    assert cfg.residual == "dct2" and cfg.deblock > 0  # the in-loop deblocking is part of the loop
    # each predicted frame has its own step, finer early in the chain (its error is inherited by more frames)
    assert len(cfg.frame_steps) == 7 and cfg.frame_steps == sorted(cfg.frame_steps)
    assert cfg.frame_steps[0] < cfg.frame_steps[-1]
    # (with the per-block steps the decoder derives from the motion, when the GOP has them)
    steps = cfg.frame_steps_with_blocks(vectors, H, W)
    loop, syms = mcvideo.closed_loop(intra, x, vectors, cfg.block, coder, steps, cfg.deblock)
    assert np.array_equal(loop, decoded)
    assert coder.encode_symbols(syms) == c.sections["residual"]
    # the residual is worth its bytes: better than the same frames predicted with no residual at all
    zero = [np.zeros_like(f) for f in syms]
    plain = mcvideo.reconstruct(intra, vectors, cfg.block, coder, steps, zero, cfg.deblock)
    assert frame_psnrs(x, decoded)[0][1:].mean() > frame_psnrs(x, plain)[0][1:].mean() + 2.0


def test_residual_rate_lands_and_corrupt_residual_is_a_format_error():
    from inrcodec.container import Container, write_container
    from inrcodec.errors import FormatError
    from inrcodec.models import mcvideo
    from inrcodec.signal import Signal

    x = clip_frames()
    sig = Signal(x, kind="video", metadata={"fps": 10.0})
    for bpp in (0.4, 1.0):  # (above ~1.5 bpp this tiny clip saturates the residual's finest level)
        r = compress_video(sig, "mcvideo", bpp=bpp, steps=30, workers=1, gop=6, config={"structure": ""})
        assert abs(r.report["bpp"] - bpp) <= 0.1 * bpp, r.report["bpp"]
        decoded = decode_video(r.data).data
        assert abs(frame_psnrs(x, decoded)[0].mean() - r.report["psnr"]) < 1e-3
    from inrcodec.parts import part_section

    # GOPs decoded two at a time are the serial decode, bit for bit, also for a frame range
    serial = np.concatenate(list(decode_windows(r.data, workers=1)))
    assert np.array_equal(np.concatenate(list(decode_windows(r.data, workers=2))), serial)
    assert np.array_equal(np.concatenate(list(decode_windows(r.data, frames=(4, 9), workers=2))), serial[4:9])
    vf = open_video(r.data)
    inner = vf.container.sections[part_section(0)]
    c = _gop_parts(inner)
    res = c.sections["residual"]
    bad = {"truncated": res[:-3], "trailing": res + b"\0", "empty": b"", "length lies": b"\xff\xff\x7f" + res[1:],
           "endless varint": b"\xff" * 8, "last band 9": _with_first_blob(res, 9, (H // 8) * (W // 8) * 5)}
    for what, payload in bad.items():
        blob = write_container(Container(c.signal, c.model, c.config, {**c.sections, "residual": payload}))
        with pytest.raises(FormatError):
            mcvideo.decode_gop(blob)
    no_res = {k: v for k, v in c.sections.items() if k != "residual"}
    with pytest.raises(FormatError):
        mcvideo.decode_gop(write_container(Container(c.signal, c.model, c.config, no_res)))
    for key, value in (("residual", "wavelet"), ("residual", 7), ("residual_step", -1), ("residual_step", 0),
                       ("residual_step", 10**9), ("bidirectional", True), ("deblock", -1), ("deblock", 10**6),
                       ("deblock", 12.0), ("residual", "dct"), ("motion", "zigzag"), ("motion", 3),
                       ("frame_steps", [16] * 4), ("frame_steps", [0] * 5), ("frame_steps", [16.0] * 5),
                       ("frame_steps", [10**9] * 5), ("frame_steps", "16"), ("frame_steps", {"a": 1})):  # (deblocking belongs to the "dct2" form only)
        blob = write_container(Container(c.signal, c.model, {**c.config, key: value}, c.sections))
        with pytest.raises(FormatError):
            mcvideo.decode_gop(blob)


def test_frame_steps_follow_each_frames_weight_in_later_predictions():
    from inrcodec.models import mcvideo

    m = mcvideo.frame_step_multipliers(11, 0.33, 0.7)
    # geometric mean 1 (a base step codes about what one step for all would), finer for frames early in the chain
    assert abs(np.exp(np.mean(np.log(m))) - 1) < 1e-12 and np.all(np.diff(m) > 0)
    # the last frame's weight is 1, the first's 1 + p + ... + p^10: their steps differ by that ratio^-allocation
    w0 = sum(0.7**j for j in range(11))
    assert m[-1] / m[0] == pytest.approx(w0**0.33)
    assert np.all(mcvideo.frame_step_multipliers(11, 0.0) == 1.0)
    assert mcvideo.frame_steps_for(64, m) == sorted(mcvideo.frame_steps_for(64, m))
    # allocation 0 writes the form before per-frame steps (one step for the GOP), which decodes as before
    x = clip_frames()[:4]
    blob = mcvideo.encode_gop(x, 2000, steps=20, allocation=0)
    c, cfg = mcvideo._parse(blob)
    assert cfg.frame_steps == [] and np.ndim(cfg.step) == 0
    assert mcvideo.decode_gop(blob).shape == x.shape


def _with_first_blob(residual: bytes, value: int, count: int) -> bytes:
    """A "dct2" residual section whose first stream (the luma blocks' last bands) is all ``value``."""
    from inrcodec.entropy import encode_ints
    from inrcodec.entropy._bytes import read_varint, varint

    n, pos = read_varint(residual, 0, "", 5)
    blob = encode_ints(np.full(count, value, np.int64))
    return varint(len(blob)) + blob + residual[pos + n:]


def test_dct2_residual_adds_what_the_encoder_added_and_codes_fewer_bytes(monkeypatch):
    from inrcodec.models import mcdct, mcdct2

    monkeypatch.setattr(mcdct2, "RDOQ_LAMBDA", 0.0)  # the dead zone's levels (RDOQ: test_video_rdoq.py)
    rng = np.random.default_rng(5)
    pred = rng.integers(0, 256, (H - 3, W - 5, 3)).astype(np.uint8)  # edge blocks padded
    h, w = pred.shape[:2]
    res = rng.normal(0, 12, (h, w, 3)) + np.linspace(-30, 30, w)[None, :, None]
    res[:16] = 0  # blocks that code nothing
    for step in (2.0, 8.0, 32.0):
        z, _ = mcdct2.analyse(res, step)
        # the first form's dead-zone quantiser (a narrower dead zone), with whole blocks dropped where their bits
        # buy too little error
        full = mcdct.dead_zone_quantise(mcdct.scaled_coefficients(res, step), mcdct2.DEAD_ZONE)
        kept = np.any(z != 0, axis=-1)
        assert np.array_equal(z[kept], full[kept]) and kept.sum() <= np.any(full != 0, axis=-1).sum()
        frames = [z, np.zeros_like(z), z]
        blob = mcdct2.encode_symbols(frames)
        back = mcdct2.decode_symbols(blob, 3, h, w)
        assert len(back[1].index) == 0 and len(back[0].index) < z.shape[1] * z.shape[2]
        for strength in (0, 12):
            # the decoder's frame is the encoder's, bit for bit, with and without the in-loop deblocking
            assert np.array_equal(mcdct2.add(pred, back[2], step, strength), mcdct2.add(pred, z, step, strength))
        assert np.array_equal(mcdct2.add(pred, back[1], step), pred)
        # the residual it adds is the first form's within its two roundings (stage 1: <= 0.5 x 479 / 2^10 levels;
        # 1/4 levels per channel, three channels per RGB value)
        syn = mcdct2.synthesize(back[0], step, h, w)
        assert np.abs(syn - mcdct.inverse(z, mcdct.step_units(step), h, w)).max() <= 0.61
        assert np.array_equal(mcdct2.add(pred, z, step), np.clip(np.rint(pred + syn), 0, 255).astype(np.uint8))
        # coding only up to each block's last band costs no more than every coefficient of every block, give or
        # take the headers of its more numerous streams (on real frames it is 8 % smaller: docs/video.md)
        assert len(blob) <= len(mcdct.encode_symbols(frames)) + 32
        assert mcdct2.estimate_bytes(frames) == pytest.approx(len(blob), rel=0.3, abs=60)


def test_deblocking_smooths_quantiser_steps_at_coded_block_edges_only():
    from inrcodec.models.deblock import deblock, thresholds

    y, x = np.mgrid[0:32, 0:48].astype(np.float64)
    ramp = np.repeat((60 + 2.0 * x + 1.5 * y)[..., None], 3, axis=2)
    blocky = ramp.reshape(4, 8, 6, 8, 3).mean(axis=(1, 3), keepdims=True)  # what a coarse DC-only residual leaves
    blocky = np.broadcast_to(blocky, (4, 8, 6, 8, 3)).reshape(32, 48, 3).round().astype(np.uint8)
    step = 16 * 16  # a 16-level luma step, in 1/16 levels
    assert thresholds(step, 0) == (0, 0, 0) and thresholds(step, 12)[2] > 0
    coded = np.ones((4, 6), bool)
    out = deblock(blocky, coded, step, 12)
    assert np.mean((out - ramp) ** 2) < 0.8 * np.mean((blocky - ramp) ** 2)
    assert np.array_equal(deblock(blocky, coded, step, 0), blocky)  # strength 0: off
    assert np.array_equal(deblock(blocky, np.zeros_like(coded), step, 12), blocky)  # no coded block: no filter
    # an edge of the picture (a jump far above the step) is left alone
    edge = blocky.copy()
    edge[:, 24:] = 250
    out = deblock(edge, coded, step, 12).astype(int)
    assert np.all(out[:, 24:] == 250) and np.all(out[:, 24] - out[:, 23] >= 100)
    # only edges next to a coded block move
    half = np.zeros_like(coded)
    half[:, :2] = True  # block columns 0-1: edges at x = 8 and 16 are filtered, x >= 24 are not
    out = deblock(blocky, half, step, 12)
    assert not np.array_equal(out[:, 7:9], blocky[:, 7:9]) and np.array_equal(out[:, 20:], blocky[:, 20:])


def test_rate_distortion_drop_keeps_blocks_worth_their_bits():
    from inrcodec.models import mcdct2

    coef = np.zeros((3, 1, 3, 64))
    coef[0, 0, 0, 40] = 0.9  # one small high-frequency coefficient: ~10 bits for 0.8 step^2 of error
    coef[0, 0, 1, 0] = 6.2  # a large DC: worth its bits
    coef[1, 0, 2, 1] = 0.9  # a small chroma coefficient (chroma errors weigh more)
    q = np.round(coef).astype(np.int32)
    before = q.copy()
    mcdct2.drop_costly_blocks(coef, q, lam=0.06)
    assert q[0, 0, 0].sum() == 0 and np.array_equal(q[0, 0, 1], before[0, 0, 1])
    assert np.array_equal(q[1, 0, 2], before[1, 0, 2])
    q = before.copy()
    mcdct2.drop_costly_blocks(coef, q, lam=0.0)  # lambda 0: nothing dropped
    assert np.array_equal(q, before)


def test_mcvideo_gop_length_follows_the_rate(monkeypatch):
    from inrcodec.models import mcvideo
    from inrcodec.signal import Signal
    from inrcodec.video_codec import default_gop

    # an intra frame is dear at low rates: longer GOPs there (measured, docs/video.md), never past the clip
    assert default_gop(360, 640, 100, "mcvideo", 0.02) == mcvideo.LONG_GOP > mcvideo.DEFAULT_GOP
    assert default_gop(360, 640, 100, "mcvideo", 0.2) == default_gop(360, 640, 100, "mcvideo") == mcvideo.DEFAULT_GOP
    assert default_gop(360, 640, 10, "mcvideo", 0.02) == 10
    # compress_video asks the model (this tiny clip cannot hold an intra frame at 0.05 bpp: move the threshold)
    monkeypatch.setattr(mcvideo, "LONG_GOP", 6)
    monkeypatch.setattr(mcvideo, "LONG_GOP_BPP", 2.0)
    r = compress_video(Signal(clip_frames(), kind="video", metadata={"fps": 10.0}), "mcvideo", bpp=1.0, steps=10,
                       workers=1)
    assert open_video(r.data).lengths == [6, 6]
