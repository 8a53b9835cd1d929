"""inrcodec.signals: round trips per format, error messages, atomic saving, raw-name parsing, real data."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from inrcodec.errors import InputError
from inrcodec.signal import SUPPORTED_DTYPES, Signal
from inrcodec.signals import (
    FORMATS, atomic_output, atomic_write, format_for, load, parse_raw_name, save, write_bytes_atomic,
)
from inrcodec.signals.raw import parse_dtype, parse_shape

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real test data not found at {DATA}")


def rand(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, int(info.max) + 1, shape, dtype=dt)


def expect_input_error(path, fn, *args, match: str | None = None, **kw) -> str:
    """fn(*args) must raise InputError with a one-line message that names the file."""
    with pytest.raises(InputError) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert str(path) in msg, msg
    assert "\n" not in msg
    if match is not None:
        assert match in msg, msg
    return msg


def only_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------------------ images
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_round_trip_is_exact(tmp_path, dtype, channels):
    data = rand((7, 11, channels), dtype)
    path = tmp_path / "x.png"
    save(Signal(data), path)
    sig = load(path)
    assert sig.kind == "image" and sig.dtype == np.dtype(dtype) and sig.data.shape == (7, 11, channels)
    assert np.array_equal(sig.data, data)
    assert sig.metadata == {"format": "png", "bit_depth": 8 * np.dtype(dtype).itemsize}


def test_png_16bit_gray_stays_16bit_gray(tmp_path):
    from PIL import Image

    data = rand((5, 6, 1), "uint16")
    save(Signal(data), tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as im:  # an independent reader sees 16-bit gray
        assert im.mode.startswith("I;16")
    assert load(tmp_path / "g.png").data.dtype == np.uint16


def test_png_palette_and_low_bit_depth(tmp_path):
    from PIL import Image

    rgb = rand((6, 7, 3), "uint8")
    pal = Image.fromarray(rgb).quantize(8)
    pal.save(tmp_path / "p.png")
    sig = load(tmp_path / "p.png")
    assert sig.data.shape == (6, 7, 3)
    assert np.array_equal(sig.data, np.asarray(pal.convert("RGB")))

    rgba = rand((6, 7, 4), "uint8")
    rgba[..., 3] = np.where(rgba[..., 3] > 127, 255, 0)
    pal_t = Image.fromarray(rgba, "RGBA").quantize(8)
    pal_t.save(tmp_path / "pt.png")
    assert "transparency" in Image.open(tmp_path / "pt.png").info
    sig = load(tmp_path / "pt.png")
    assert sig.data.shape == (6, 7, 4)
    assert np.array_equal(sig.data, np.asarray(pal_t.convert("RGBA")))

    bits = rand((6, 7), "uint8") > 127
    Image.fromarray(bits).save(tmp_path / "b.png")  # 1-bit PNG
    sig = load(tmp_path / "b.png")
    assert sig.dtype == np.uint8 and sig.data.shape == (6, 7, 1)
    assert np.array_equal(sig.data[..., 0], bits.astype(np.uint8) * 255)


@pytest.mark.parametrize("ext", [".tif", ".tiff"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64"])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_tiff_round_trip_is_exact(tmp_path, ext, dtype, channels):
    data = rand((5, 9, channels), dtype)
    save(Signal(data), tmp_path / f"x{ext}")
    sig = load(tmp_path / f"x{ext}")
    assert sig.kind == "image" and sig.metadata["format"] == "tiff"
    assert sig.dtype == np.dtype(dtype) and np.array_equal(sig.data, data)


def test_tiff_volume_round_trip(tmp_path):
    data = rand((4, 5, 6, 1), "float32")
    save(Signal(data, kind="volume"), tmp_path / "v.tif")
    sig = load(tmp_path / "v.tif")
    assert sig.kind == "volume" and np.array_equal(sig.data, data)


@pytest.mark.parametrize("channels", [3, 4])
def test_webp_lossless_round_trip(tmp_path, channels):
    data = rand((9, 10, channels), "uint8")
    if channels == 4:
        data[0, :, 3] = 0  # fully transparent pixels keep their colour too
    save(Signal(data), tmp_path / "x.webp")
    sig = load(tmp_path / "x.webp")
    assert sig.metadata["format"] == "webp" and np.array_equal(sig.data, data)


@pytest.mark.parametrize("channels", [1, 3])
def test_bmp_round_trip(tmp_path, channels):
    data = rand((9, 10, channels), "uint8")
    save(Signal(data), tmp_path / "x.bmp")
    assert np.array_equal(load(tmp_path / "x.bmp").data, data)


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trip_is_close(tmp_path, channels):
    from inrcodec.samples import shapes_image

    data = shapes_image(64, 80, seed=3).data[..., :channels]
    save(Signal(data), tmp_path / "x.jpg", quality=95)
    sig = load(tmp_path / "x.jpg")
    assert sig.data.shape == data.shape and sig.dtype == np.uint8 and sig.metadata["format"] == "jpeg"
    mse = np.mean((sig.data.astype(float) - data) ** 2)
    # Quality 95 gives ~33 dB here (4:2:0 chroma on sharp colour edges of a tiny image); a swapped channel order
    # or a level offset would land below 20 dB.
    assert 10 * np.log10(255**2 / mse) > 30


def test_uppercase_extension(tmp_path):
    data = rand((3, 4, 3), "uint8")
    save(Signal(data), tmp_path / "X.PNG")
    assert np.array_equal(load(tmp_path / "X.PNG").data, data)


@pytest.mark.parametrize(
    "name, data, kind, problem",
    [
        ("f.png", rand((4, 4, 1), "float32"), "array", "not float32"),
        ("a.png", rand((16, 1), "int16"), "audio", "2-D image"),
        ("c.png", rand((4, 4, 5), "uint8"), "image", "5 channels"),
        ("j.jpg", rand((4, 4, 3), "uint16"), "image", "not uint16"),
        ("j.jpeg", rand((4, 4, 4), "uint8"), "image", "4 channels"),
        ("w.webp", rand((4, 4, 1), "uint8"), "image", "1 channels"),
        ("b.bmp", rand((4, 4, 4), "uint8"), "image", "4 channels"),
        ("t.tif", rand((2, 4, 4, 3), "uint8"), "volume", "one channel"),
    ],
)
def test_image_save_refuses_what_the_format_cannot_hold(tmp_path, name, data, kind, problem):
    expect_input_error(tmp_path / name, save, Signal(data, kind=kind), tmp_path / name, match=problem)
    assert only_files(tmp_path) == []  # atomic: nothing left behind


# ------------------------------------------------------------------------------------------------ npy
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
@pytest.mark.parametrize("shape, kind", [((50,), "audio"), ((6, 7), "array"), ((3, 4, 5), "volume")])
def test_npy_convention_and_round_trip(tmp_path, dtype, shape, kind):
    arr = rand(shape, dtype)
    np.save(tmp_path / "a.npy", arr)
    sig = load(tmp_path / "a.npy")
    assert sig.kind == kind and sig.data.shape == shape + (1,) and sig.dtype == np.dtype(dtype)
    assert sig.metadata["npy_shape"] == list(shape)
    save(sig, tmp_path / "b.npy")
    back = np.load(tmp_path / "b.npy", allow_pickle=False)
    assert back.shape == shape and back.dtype == arr.dtype and np.array_equal(back, arr)


@pytest.mark.parametrize("shape, kind", [((40, 2), "audio"), ((6, 7, 3), "array"), ((3, 4, 5, 2), "volume")])
def test_npy_channels_last(tmp_path, shape, kind):
    arr = rand(shape, "float32")
    np.save(tmp_path / "a.npy", arr)
    sig = load(tmp_path / "a.npy", channels_last=True)
    assert sig.kind == kind and sig.data.shape == shape and np.array_equal(sig.data, arr)
    save(sig, tmp_path / "b.npy")
    assert np.array_equal(np.load(tmp_path / "b.npy"), arr)


def test_npy_four_axes_need_channels_last(tmp_path):
    np.save(tmp_path / "a.npy", rand((2, 3, 4, 5), "float32"))
    expect_input_error(tmp_path / "a.npy", load, tmp_path / "a.npy", match="channels_last")


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(-5, 20, dtype=np.int64).reshape(5, 5),
        np.arange(12, dtype=np.uint32).reshape(3, 4),
        (rand((4, 6), "uint8") > 100),
        rand((4, 6), "float32").astype(">f4"),
        rand((4, 6), "int16").astype(">i2"),
    ],
    ids=["int64", "uint32", "bool", "float32-big-endian", "int16-big-endian"],
)
def test_npy_converted_dtypes_come_back(tmp_path, arr):
    np.save(tmp_path / "a.npy", arr)
    sig = load(tmp_path / "a.npy")
    assert str(sig.dtype) in SUPPORTED_DTYPES and sig.metadata["npy_dtype"] == arr.dtype.str
    assert np.array_equal(sig.data[..., 0], arr)  # values unchanged by the conversion
    save(sig, tmp_path / "b.npy")
    back = np.load(tmp_path / "b.npy")
    assert back.dtype == arr.dtype and np.array_equal(back, arr)


def test_npy_save_of_non_npy_signal_drops_single_channel(tmp_path):
    gray, rgb = rand((4, 5, 1), "uint8"), rand((4, 5, 3), "uint8")
    save(Signal(gray), tmp_path / "g.npy")
    save(Signal(rgb), tmp_path / "c.npy")
    assert np.load(tmp_path / "g.npy").shape == (4, 5)
    assert np.array_equal(np.load(tmp_path / "c.npy"), rgb)


def test_npy_shape_metadata_ignored_when_shape_changed(tmp_path):
    # e.g. a field decoded at twice the resolution: the stored original shape no longer applies
    sig = Signal(rand((8, 10, 1), "float32"), kind="array", metadata={"npy_shape": [4, 20]})
    save(sig, tmp_path / "a.npy")
    assert np.load(tmp_path / "a.npy").shape == (8, 10)


class _Touch:
    """Unpickling this creates a file: proves the loader never unpickles."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize(
    "arr, problem",
    [
        (np.zeros((3, 3), np.complex64), "complex64"),
        (np.zeros(4, dtype=[("a", "f4"), ("b", "i2")]), "structured"),
        (np.array(3.0), "scalar"),
        (np.array([2**40, 1], dtype=np.int64), "int32 range"),
        (np.zeros((3, 3), np.float128) if hasattr(np, "float128") else np.zeros(3, np.complex128), "unsupported"),
        (np.zeros((0, 4), np.float32), "empty axis"),
    ],
)
def test_npy_unsupported_arrays(tmp_path, arr, problem):
    path = tmp_path / "a.npy"
    np.save(path, arr)
    expect_input_error(path, load, path, match=problem)


def test_npy_object_array_is_refused_without_unpickling(tmp_path):
    sentinel = tmp_path / "pwned"
    arr = np.empty(1, dtype=object)
    arr[0] = _Touch(str(sentinel))
    path = tmp_path / "obj.npy"
    np.save(path, arr, allow_pickle=True)
    expect_input_error(path, load, path, match="objects")
    assert not sentinel.exists()


def test_npy_truncated(tmp_path):
    path = tmp_path / "t.npy"
    np.save(path, rand((10, 10), "float32"))
    path.write_bytes(path.read_bytes()[:-40])
    expect_input_error(path, load, path, match="truncated")


# ------------------------------------------------------------------------------------------------ wav
@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("channels", [1, 2])
def test_wav_round_trip_is_exact(tmp_path, dtype, channels):
    data = rand((301, channels), dtype)
    save(Signal(data, kind="audio", metadata={"sample_rate": 11025}), tmp_path / "a.wav")
    sig = load(tmp_path / "a.wav")
    assert sig.kind == "audio" and sig.data.shape == (301, channels) and sig.dtype == np.dtype(dtype)
    assert sig.metadata == {"format": "wav", "sample_rate": 11025, "bit_depth": 8 * np.dtype(dtype).itemsize}
    assert np.array_equal(sig.data, data)
    save(sig, tmp_path / "b.wav")  # the loaded signal carries its sample rate
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def _wav_bytes(tag: int, channels: int, rate: int, bits: int, payload: bytes) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_wav_24bit_loads_as_int32(tmp_path):
    samples = np.array([0, 1, -1, 2**23 - 1, -(2**23), 12345], dtype=np.int64)
    payload = b"".join(int(s).to_bytes(3, "little", signed=True) for s in samples)
    path = tmp_path / "p24.wav"
    path.write_bytes(_wav_bytes(1, 1, 8000, 24, payload))
    sig = load(path)
    assert sig.dtype == np.int32 and sig.metadata["bit_depth"] == 24
    assert np.array_equal(sig.data[:, 0], samples * 256)  # scipy's convention: the top 24 bits of int32


def test_wav_errors(tmp_path):
    mulaw = tmp_path / "mulaw.wav"
    mulaw.write_bytes(_wav_bytes(7, 1, 8000, 8, bytes(100)))
    expect_input_error(mulaw, load, mulaw, match="unsupported WAV encoding")

    good = _wav_bytes(1, 2, 8000, 16, rand((50, 2), "int16").tobytes())
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good[:-30])
    expect_input_error(cut, load, cut, match="truncated")
    header_only = tmp_path / "hdr.wav"
    header_only.write_bytes(good[:20])
    expect_input_error(header_only, load, header_only)

    sig = Signal(rand((10, 1), "int16"), kind="audio")
    expect_input_error(tmp_path / "n.wav", save, sig, tmp_path / "n.wav", match="sample rate")
    save(sig, tmp_path / "ok.wav", sample_rate=16000)
    assert load(tmp_path / "ok.wav").metadata["sample_rate"] == 16000
    int8 = Signal(rand((10, 1), "int8"), kind="audio", metadata={"sample_rate": 8000})
    expect_input_error(tmp_path / "i8.wav", save, int8, tmp_path / "i8.wav", match="int8")
    image = Signal(rand((4, 4, 1), "int16"))
    expect_input_error(tmp_path / "im.wav", save, image, tmp_path / "im.wav", match="(T, C)")
    assert sorted(only_files(tmp_path)) == ["cut.wav", "hdr.wav", "mulaw.wav", "ok.wav"]


def test_wav_half_float_saved_as_float32(tmp_path):
    data = rand((20, 1), "float16")
    save(Signal(data, kind="audio", metadata={"sample_rate": 8000}), tmp_path / "h.wav")
    sig = load(tmp_path / "h.wav")
    assert sig.dtype == np.float32 and np.array_equal(sig.data, data.astype(np.float32))


# ------------------------------------------------------------------------------------------------ raw
@pytest.mark.parametrize(
    "name, shape, dtype, order",
    [
        ("sperr_pressure_384x384_f64le.d64", (384, 384), "float64", "little"),
        ("x_91x91x91_f32le.float", (91, 91, 91), "float32", "little"),
        ("field-16x32x32-f32be.raw", (16, 32, 32), "float32", "big"),
        ("t.100x200.int16.bin", (100, 200), "int16", None),
        ("cloud.f32", None, "float32", None),
        ("v_10x20x30x2_u16.raw", (10, 20, 30, 2), "uint16", None),  # 4 axes load only with channels_last
        ("OSR_us_000_0034.raw", None, None, None),  # a lone number is not a shape
    ],
)
def test_parse_raw_name(name, shape, dtype, order):
    spec = parse_raw_name(name)
    assert (spec.shape, spec.dtype, spec.byteorder) == (shape, dtype, order)


def test_parse_raw_helpers_reject_nonsense():
    assert parse_dtype("F64LE") == ("float64", "little")
    assert parse_shape("3x4x5") == (3, 4, 5) and parse_shape([7]) == (7,)
    for bad in ("complex64", "f32xx", ""):
        with pytest.raises(InputError):
            parse_dtype(bad)
    for bad in ("3x0", "axb", (1, 2, 3, 4, 5), ()):
        with pytest.raises(InputError):
            parse_shape(bad)
    with pytest.raises(InputError, match="extension"):
        parse_raw_name("a_4x4_f64le.f32")


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
def test_raw_round_trip(tmp_path, dtype):
    data = rand((3, 4, 5), dtype)
    code = {"f": "f", "i": "i", "u": "u"}[np.dtype(dtype).kind] + str(8 * np.dtype(dtype).itemsize)
    path = tmp_path / f"v_3x4x5_{code}le.raw"
    save(Signal(data[..., None], kind="volume"), path)
    assert path.read_bytes() == data.astype(np.dtype(dtype).newbyteorder("<")).tobytes()  # C order, little-endian
    sig = load(path)
    assert sig.kind == "volume" and sig.dtype == np.dtype(dtype) and np.array_equal(sig.data[..., 0], data)


def test_raw_big_endian_and_options(tmp_path):
    data = rand((6, 7), "float32")
    big = tmp_path / "a_6x7_f32be.raw"
    big.write_bytes(data.astype(">f4").tobytes())
    sig = load(big)
    assert np.array_equal(sig.data[..., 0], data) and sig.metadata.get("byteorder") == "big"
    save(sig, tmp_path / "b_6x7_f32be.raw")
    assert (tmp_path / "b_6x7_f32be.raw").read_bytes() == big.read_bytes()

    plain = tmp_path / "plain.raw"
    plain.write_bytes(data.tobytes())
    expect_input_error(plain, load, plain, match="unknown")
    assert np.array_equal(load(plain, shape="6x7", dtype="f32").data[..., 0], data)
    assert np.array_equal(load(plain, shape=(42,), dtype="float32").data[:, 0], data.ravel())
    assert load(plain, shape=(42,), dtype="float32").kind == "audio"
    expect_input_error(plain, load, plain, shape=(6, 7), dtype="complex64", match="complex64")
    expect_input_error(plain, load, plain, shape=(1, 6, 7, 1), dtype="f32", match="channels_last")
    sig = load(plain, shape=(1, 6, 7, 1), dtype="f32", channels_last=True)
    assert sig.kind == "volume" and sig.data.shape == (1, 6, 7, 1)


def test_raw_size_mismatch_and_name_conflicts(tmp_path):
    wrong = tmp_path / "f_10x10_f32le.raw"
    wrong.write_bytes(bytes(396))
    expect_input_error(wrong, load, wrong, match="396 bytes")
    sig = Signal(rand((4, 4, 1), "float32"), kind="array")
    for name, problem in [("s_4x5_f32le.raw", "shape 4x5"), ("d_4x4_f64le.raw", "float64"), ("e.d64", "float64")]:
        expect_input_error(tmp_path / name, save, sig, tmp_path / name, match=problem)
    assert only_files(tmp_path) == [wrong.name]


# ------------------------------------------------------------------------------------------------ errors
def test_missing_empty_directory_unknown(tmp_path):
    expect_input_error(tmp_path / "nope.png", load, tmp_path / "nope.png", match="no such file")
    (tmp_path / "empty.png").write_bytes(b"")
    expect_input_error(tmp_path / "empty.png", load, tmp_path / "empty.png", match="empty")
    (tmp_path / "dir.png").mkdir()
    expect_input_error(tmp_path / "dir.png", load, tmp_path / "dir.png", match="directory")
    (tmp_path / "a.xyz").write_bytes(b"1234")
    expect_input_error(tmp_path / "a.xyz", load, tmp_path / "a.xyz", match="'.xyz'")
    (tmp_path / "noext").write_bytes(b"1234")
    expect_input_error(tmp_path / "noext", load, tmp_path / "noext", match="no file extension")
    sig = Signal(rand((4, 4, 3), "uint8"))
    expect_input_error(tmp_path / "o.xyz", save, sig, tmp_path / "o.xyz", match="cannot write")
    expect_input_error(tmp_path / "dir.png", save, sig, tmp_path / "dir.png", match="directory")
    expect_input_error(tmp_path / "no" / "o.png", save, sig, tmp_path / "no" / "o.png", match="does not exist")


@pytest.mark.parametrize("ext", sorted({f.extensions[0] for f in FORMATS if f.sniff is not None}))
def test_text_file_with_format_extension(tmp_path, ext):
    path = tmp_path / f"notes{ext}"
    path.write_text("hello, I am text and not a signal\n" * 4)
    fmt = format_for(path)
    msg = expect_input_error(path, load, path)
    assert msg == f"{path}: not {fmt.label}"


def test_text_png_message_and_cross_format_hint(tmp_path):
    path = tmp_path / "fake.png"
    path.write_text("not an image")
    expect_input_error(path, load, path, match="not a PNG image")
    np.save(tmp_path / "arr.npy", np.zeros(3))
    os.replace(tmp_path / "arr.npy", tmp_path / "arr.png")
    expect_input_error(tmp_path / "arr.png", load, tmp_path / "arr.png", match="looks like a NumPy .npy file")


def test_truncated_and_corrupt_images(tmp_path):
    from inrcodec.samples import shapes_image

    img = Signal(shapes_image(48, 64, seed=1).data)
    for ext in (".png", ".jpg", ".webp", ".bmp", ".tif"):
        good = tmp_path / f"good{ext}"
        save(img, good)
        blob = good.read_bytes()
        cut = tmp_path / f"cut{ext}"
        cut.write_bytes(blob[: len(blob) // 2])
        expect_input_error(cut, load, cut)
    blob = (tmp_path / "good.png").read_bytes()
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF  # zlib/CRC damage inside IDAT
    (tmp_path / "bad.png").write_bytes(bytes(flipped))
    expect_input_error(tmp_path / "bad.png", load, tmp_path / "bad.png", match="corrupt")


def test_huge_png_header_refused_before_decoding(tmp_path):
    import zlib

    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)  # 1.6e9 pixels, RGB
    chunk = b"IHDR" + ihdr
    blob = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    path = tmp_path / "bomb.png"
    path.write_bytes(blob + b"\x00" * 64)
    expect_input_error(path, load, path, match="larger than the limit")


def test_unknown_options_are_input_errors(tmp_path):
    path = tmp_path / "a.png"
    save(Signal(rand((3, 3, 3), "uint8")), path)
    expect_input_error(path, load, path, channels_last=True, match="channels_last")
    expect_input_error(path, save, Signal(rand((3, 3, 3), "uint8")), path, quality=3, match="quality")


# ------------------------------------------------------------------------------------------------ atomic
def test_atomic_save_leaves_nothing_when_the_writer_raises(tmp_path, monkeypatch):
    import imagecodecs

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(imagecodecs, "png_encode", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save(Signal(rand((3, 3, 3), "uint8")), tmp_path / "out.png")
    assert only_files(tmp_path) == []


def test_atomic_output_keeps_old_file_on_failure_and_replaces_on_success(tmp_path):
    target = tmp_path / "out.npy"
    target.write_bytes(b"old")
    seen = []
    with pytest.raises(ValueError):
        with atomic_output(target) as tmp:
            seen.append(tmp)
            tmp.write_bytes(b"partial")
            raise ValueError("boom")
    assert target.read_bytes() == b"old" and only_files(tmp_path) == ["out.npy"]
    assert seen[0].suffix == ".npy" and seen[0].parent == tmp_path and seen[0] != target

    with atomic_output(target) as tmp:
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # readers see the old file until the end
    assert target.read_bytes() == b"new" and only_files(tmp_path) == ["out.npy"]
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_atomic_write_helpers(tmp_path):
    write_bytes_atomic(tmp_path / "a.bin", b"abc")
    assert (tmp_path / "a.bin").read_bytes() == b"abc"
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "b.txt", "w") as fh:
            fh.write("half")
            raise KeyboardInterrupt
    assert only_files(tmp_path) == ["a.bin"]


# ------------------------------------------------------------------------------------------------ real data
@needs_data
def test_real_kodak_png():
    sig = load(DATA / "kodak" / "kodim01.png")
    assert sig.kind == "image" and sig.data.shape == (512, 768, 3) and sig.dtype == np.uint8
    assert sig.metadata == {"format": "png", "bit_depth": 8}
    assert sig.data.std() > 10  # a real photo, not a blank decode


@needs_data
def test_real_speech_wav(tmp_path):
    sig = load(DATA / "audio" / "OSR_us_000_0034_8k.wav")
    assert sig.data.shape == (284383, 1) and sig.dtype == np.int16 and sig.metadata["sample_rate"] == 8000
    save(sig, tmp_path / "copy.wav")
    assert np.array_equal(load(tmp_path / "copy.wav").data, sig.data)


@needs_data
def test_real_raw_fields():
    p = load(DATA / "science" / "sperr_pressure_384x384_f64le.d64")
    assert p.kind == "array" and p.data.shape == (384, 384, 1) and p.dtype == np.float64
    # README: range [-0.866277, 0.86492]
    assert p.value_range == pytest.approx((-0.866277, 0.86492), abs=1e-5)
    v = load(DATA / "science" / "sperr_wmag91_91x91x91_f32le.float")
    assert v.kind == "volume" and v.data.shape == (91, 91, 91, 1) and v.dtype == np.float32
