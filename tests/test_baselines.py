import io

import numpy as np
import pytest

from inrcodec import baselines as B
from inrcodec import metrics as M
from inrcodec.errors import InputError

IMAGE_CODECS = [n for n, c in B.CODECS.items() if c.kind == "image"]
ARRAY_CODECS = [n for n, c in B.CODECS.items() if c.kind == "array"]


@pytest.fixture(scope="module")
def rgb():
    """64x96 smooth colour field with a hard diagonal edge."""
    y, x = np.mgrid[0:64, 0:96]
    img = np.stack(
        [128 + 100 * np.sin(x / 9) * np.cos(y / 13), 128 + 90 * np.cos((x + y) / 17), ((x + 2 * y) > 90) * 160 + 40],
        axis=-1,
    )
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def field():
    """Smooth float32 3-D field in the Signal layout (z, y, x, 1), values in about [-1.5, 1.5]."""
    z, y, x = np.mgrid[0:16, 0:24, 0:32] / 6.0
    return (np.sin(x) * np.cos(y) + 0.5 * np.sin(z + x)).astype(np.float32)[..., None]


def _low_high(codec):
    qs = codec.qualities
    return qs[1], qs[-2]


# -- image codecs --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", IMAGE_CODECS)
def test_image_codec_roundtrip_and_monotone(name, rgb):
    codec = B.get_codec(name)
    lo, hi = _low_high(codec)
    rec = codec.decode(codec.encode(rgb, hi))
    assert rec.shape == rgb.shape and rec.dtype == np.uint8
    m_lo, m_hi = B.measure(codec, rgb, lo), B.measure(codec, rgb, hi)
    # a real codec at its low sweep end is far from random (~10 dB) yet far from lossless on this image
    assert 20 < m_lo["psnr"] < m_hi["psnr"] < 60
    assert m_lo["bpp"] < m_hi["bpp"]
    assert m_lo["ms_ssim"] < m_hi["ms_ssim"] <= 1
    assert m_hi["bpp"] == pytest.approx(m_hi["bytes"] * 8 / (64 * 96))
    assert m_hi["psnr"] == pytest.approx(M.psnr(rgb, rec))  # encoders here are deterministic


@pytest.mark.parametrize("name", IMAGE_CODECS)
def test_gray_images_work_or_are_declared_unsupported(name, rgb):
    codec = B.get_codec(name)
    gray = np.ascontiguousarray(rgb[..., 1])
    if codec.supports(gray):
        q = _low_high(codec)[1]
        rec = codec.decode(codec.encode(gray, q))
        assert rec.shape == (64, 96, 1)
        assert M.psnr(gray[..., None], rec) > 25
        # (H, W, 1) is the same image as (H, W)
        assert codec.encode(gray[..., None], q) == codec.encode(gray, q)
    else:
        assert codec.why_unsupported(gray)
        with pytest.raises(InputError, match=name):
            codec.encode(gray, 50)


def test_sweep_sorted_with_all_fields(rgb):
    pts = B.sweep(B.get_codec("webp"), rgb)
    assert len(pts) == len(B.get_codec("webp").qualities)
    assert [p["bpp"] for p in pts] == sorted(p["bpp"] for p in pts)
    for key in ("bpp", "psnr", "ms_ssim", "bytes", "encode_s", "decode_s", "quality"):
        assert all(p[key] is not None for p in pts), key


@pytest.mark.parametrize("name", ["jpeg", "avif", "jpeg2000"])
def test_sweep_to_range_lands_inside(name, rgb):
    lo, hi = 0.6, 1.6  # every image codec here spans this range on the test image (see the sweeps above)
    pts = B.sweep_to_range(B.get_codec(name), rgb, lo, hi, 4)
    assert len(pts) >= 3  # integer qualities may merge a narrow bin, but not most of them
    assert all(lo <= p["bpp"] <= hi for p in pts)
    assert pts[-1]["bpp"] / pts[0]["bpp"] > 1.5  # spread over the range, not piled up at one end


def test_sweep_to_range_unreachable_raises(rgb):
    with pytest.raises(InputError, match="cannot reach"):
        B.sweep_to_range(B.get_codec("jpeg"), rgb, 200.0, 300.0, 3)
    with pytest.raises(InputError):
        B.sweep_to_range(B.get_codec("jpeg"), rgb, 2.0, 1.0, 3)


@pytest.mark.parametrize("quality", [30, 75, 90])
def test_jpeg_agrees_with_pillow(rgb, quality):
    from PIL import Image

    m = B.measure(B.get_codec("jpeg"), rgb, quality)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling="4:2:0", optimize=True)
    rec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    # same quantisation tables and subsampling: libjpeg builds differ at most in rounding (DCT variant, upsampling)
    assert m["psnr"] == pytest.approx(M.psnr(rgb, rec), abs=0.5)
    # same optimised Huffman coding: sizes differ by header segments at most
    assert m["bytes"] == pytest.approx(len(buf.getvalue()), rel=0.1)


def test_webp_is_lossy_and_jpeg_is_420(rgb):
    # the traps from ENVIRONMENT.md: imagecodecs' webp defaults to lossless; 4:2:0 must be smaller than 4:4:4
    import imagecodecs

    assert B.measure(B.get_codec("webp"), rgb, 95)["psnr"] < 50
    full = imagecodecs.jpeg8_encode(rgb, level=75, subsampling="444", optimize=True)
    assert len(B.get_codec("jpeg").encode(rgb, 75)) < 0.9 * len(full)


def test_jpeg2000_quality_is_target_psnr(rgb):
    codec = B.get_codec("jpeg2000")
    for target in (28.0, 36.0):
        # OpenJPEG estimates distortion in the wavelet domain, so the measured RGB PSNR lands within ~1 dB of it
        assert B.measure(codec, rgb, target)["psnr"] == pytest.approx(target, abs=1.5)


def test_uint16_image_where_supported(rgb):
    img16 = rgb.astype(np.uint16) * 257
    assert not B.get_codec("jpeg").supports(img16)
    codec = B.get_codec("jpeg2000")
    m = B.measure(codec, img16, 40.0)
    assert codec.decode(codec.encode(img16, 40.0)).dtype == np.uint16
    assert 35 < m["psnr"] < 45  # peak 65535 for uint16, so the target PSNR still applies


def test_bad_quality_and_shapes(rgb):
    codec = B.get_codec("jpeg")
    with pytest.raises(InputError, match="quality"):
        codec.encode(rgb, 150)
    with pytest.raises(InputError):
        codec.encode(rgb[None], 50)  # 4-D is not an image
    with pytest.raises(InputError):
        codec.encode(rgb.astype(np.float32), 50)
    with pytest.raises(InputError, match="decode"):
        codec.decode(b"not a jpeg at all")


def test_registry():
    assert {"jpeg", "webp", "avif", "avif-slow", "jpegxl", "jpeg2000", "sz3", "zfp"} <= set(B.CODECS)
    assert B.get_codec("JXL") is B.CODECS["jpegxl"]
    assert B.CODECS["avif"].speed == 6 and B.CODECS["avif-slow"].speed is None
    with pytest.raises(InputError, match="valid: jpeg, webp"):
        B.get_codec("bpg")
    for c in B.CODECS.values():
        assert c.kind in ("image", "video", "array")
        assert c.get_config()["codec_id"] == c.name


def test_measure_accepts_signal(rgb):
    from inrcodec.signal import Signal

    sig = Signal(rgb, kind="image")
    m = B.measure("jpeg", sig, 50)
    assert m["bpp"] == pytest.approx(m["bytes"] * 8 / (64 * 96))


# -- array codecs --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ARRAY_CODECS)
def test_array_codec_error_bound_and_rate(name, field):
    codec = B.get_codec(name)
    prev_bytes = None
    for eb in (1e-1, 1e-2, 1e-3):
        data = codec.encode(field, eb)
        rec = codec.decode(data)
        assert rec.shape == field.shape and rec.dtype == field.dtype
        # the codecs' promise: every value within the absolute bound (float32 rounding aside)
        assert M.max_abs_error(field, rec) <= eb * (1 + 1e-5)
        if prev_bytes is not None:
            assert len(data) > prev_bytes  # tighter bound, more bits
        prev_bytes = len(data)
    m = B.measure(codec, field, 1e-2)
    assert m["bpp"] == pytest.approx(m["bytes"] * 8 / field[..., 0].size)
    assert m["ms_ssim"] is None
    assert m["bpp"] < 32  # actually compresses float32


@pytest.mark.parametrize("name", ARRAY_CODECS)
def test_array_codec_float64_and_rejections(name, field):
    codec = B.get_codec(name)
    f64 = field[..., 0].astype(np.float64)  # no channel axis this time
    rec = codec.decode(codec.encode(f64, 1e-4))
    assert rec.dtype == np.float64 and rec.shape == f64.shape
    assert M.max_abs_error(f64, rec) <= 1e-4 * (1 + 1e-9)
    bad = field.copy()
    bad[0, 0, 0, 0] = np.nan
    assert not codec.supports(bad)
    assert not codec.supports(field.astype(np.int32))
    with pytest.raises(InputError):
        codec.encode(field, 0.0)
    with pytest.raises(InputError, match="bad magic|corrupt|truncated|decode"):
        codec.decode(b"garbage bytes")


def test_array_sweep_to_range(field):
    pts = B.sweep_to_range(B.get_codec("sz3"), field, 1.0, 4.0, 3)
    assert len(pts) == 3 and all(1.0 <= p["bpp"] <= 4.0 for p in pts)
    assert pts[0]["quality"] > pts[-1]["quality"]  # larger error bound, fewer bits
