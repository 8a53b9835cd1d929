"""Classical codecs behind one small interface, for rate-distortion comparisons.

The shape follows CompressAI's bench codecs (a codec has a name and is run at a quality) and numcodecs (bytes in,
bytes out, a JSON-able config), but works on numpy arrays rather than files so that image, video and scientific
codecs share it:

* ``Codec.kind`` says what the codec takes: ``"image"`` (``(H, W)`` or ``(H, W, C)``), ``"video"``
  (``(T, H, W, C)``; none yet, x264/x265 via PyAV slot in here) or ``"array"`` (float fields in the ``Signal``
  layout, any shape; ``quality`` is an absolute error bound).
* ``encode(data, quality) -> bytes`` returns a self-contained stream (``decode`` needs nothing else), and every byte
  of it counts in bpp.
* ``decode(bytes)`` returns the ``Signal`` layout: images always ``(H, W, C)``, arrays their original shape.
* ``qualities_for(data)`` is the default sweep; ``quality_bounds``, ``integer_quality``, ``log_quality`` and
  ``rate_increases`` tell the rate search in ``sweep_to_range`` how to move.

Settings (CONTRACT 2 in DESIGN.md), all through imagecodecs:

=============  =================================================================================================
jpeg           libjpeg-turbo ``jpeg8_encode``, quality 1-100, 4:2:0 chroma subsampling, optimised Huffman tables
webp           libwebp, quality 0-100, ``lossless=False`` (imagecodecs' default would be lossless), method 4
avif           libaom through libavif, quality 0-100 (100 is lossless), ``speed=6``, libavif's default 4:4:4
avif-slow      the same at libavif/libaom's default speed (much slower, slightly smaller)
jpegxl         libjxl, quality 0-100 (imagecodecs maps it to a butteraugli distance), default effort
jpeg2000       OpenJPEG, irreversible 9/7 wavelet; quality is OpenJPEG's *target PSNR in dB* (fixed-quality mode,
               ``-q`` of opj_compress), written as a raw J2K codestream (no JP2 boxes)
sz3            SZ3, absolute error bound mode (``quality`` = bound)
zfp            ZFP fixed-accuracy mode (``quality`` = tolerance; ZFP usually stays well inside it)
sperr          SPERR point-wise-error mode (``quality`` = bound); 2-D and 3-D fields only
=============  =================================================================================================

Audio: ``opus_roundtrip(samples, sample_rate, kbps)`` runs libopus through PyAV (Ogg container, the default
``audio`` application, constant target bitrate) and returns the stream and the decoded samples at the input rate,
aligned with the input (PyAV drops Opus's pre-skip).

The array codecs prepend a small header (magic, dtype, shape: 8 + 4 * ndim bytes) so that the stream decodes on
its own; it is counted in the size like everything else.
"""

from __future__ import annotations

import math
import struct
import time
from typing import Any

import numpy as np

from . import metrics
from .errors import InputError

__all__ = [
    "Codec",
    "ImageCodec",
    "ArrayCodec",
    "JPEG",
    "WebP",
    "AVIF",
    "JPEGXL",
    "JPEG2000",
    "SZ3",
    "ZFP",
    "SPERR",
    "opus_roundtrip",
    "CODECS",
    "get_codec",
    "measure",
    "sweep",
    "sweep_to_range",
]


def _ic():
    import imagecodecs  # imported lazily: loading every codec library costs ~0.3 s

    return imagecodecs


# ---------------------------------------------------------------------------------------------------------------
# base classes
# ---------------------------------------------------------------------------------------------------------------
class Codec:
    """A lossy codec run at a scalar ``quality``. Subclasses set the class attributes and the two ``_`` hooks."""

    name: str = ""
    kind: str = "image"  # "image" | "video" | "array"
    qualities: tuple[float, ...] = ()  # default sweep (images); array codecs derive theirs from the data
    quality_bounds: tuple[float, float] = (0.0, 100.0)  # valid qualities, inclusive
    integer_quality: bool = True
    log_quality: bool = False  # search quality on a log scale (error bounds spanning decades)
    rate_increases: bool = True  # False where a larger quality means fewer bits (error bounds)
    _imagecodecs_id: str = ""  # imagecodecs attribute that says whether the library is built in, e.g. "JPEG8"

    # -- what it can take ------------------------------------------------------------------------------------
    @property
    def available(self) -> bool:
        return bool(getattr(getattr(_ic(), self._imagecodecs_id, None), "available", False))

    def why_unsupported(self, data: np.ndarray) -> str | None:
        """None if ``encode`` can take ``data``, else a short reason."""
        if not self.available:
            return f"{self.name} is not available in this imagecodecs build"
        return None

    def supports(self, data: np.ndarray) -> bool:
        return self.why_unsupported(np.asarray(data)) is None

    def check(self, data: np.ndarray, quality: float) -> None:
        reason = self.why_unsupported(data)
        if reason is not None:
            raise InputError(f"{self.name}: cannot encode array of shape {data.shape} ({data.dtype}): {reason}")
        lo, hi = self.quality_bounds
        if not (isinstance(quality, (int, float, np.number)) and lo <= quality <= hi):
            raise InputError(f"{self.name}: quality must be a number in [{lo:g}, {hi:g}], got {quality!r}")

    # -- coding ----------------------------------------------------------------------------------------------
    def encode(self, data: np.ndarray, quality: float) -> bytes:
        data = np.asarray(data)
        self.check(data, quality)
        q = int(round(quality)) if self.integer_quality else float(quality)
        return bytes(self._encode(data, q))

    def decode(self, data: bytes) -> np.ndarray:
        try:
            return self._decode(bytes(data))
        except InputError:
            raise
        except Exception as e:  # the libraries raise their own error types for corrupt streams
            raise InputError(f"{self.name}: cannot decode stream ({type(e).__name__}: {e})") from e

    def _encode(self, data: np.ndarray, quality: float) -> bytes:
        raise NotImplementedError

    def _decode(self, data: bytes) -> np.ndarray:
        raise NotImplementedError

    # -- sweeps ----------------------------------------------------------------------------------------------
    def qualities_for(self, data: np.ndarray) -> list[float]:
        return list(self.qualities)

    def search_bounds(self, data: np.ndarray) -> tuple[float, float]:
        return self.quality_bounds

    # -- description -----------------------------------------------------------------------------------------
    def library_version(self) -> str:
        return ""

    def get_config(self) -> dict[str, Any]:
        return {"codec_id": self.name, "kind": self.kind, "library": self.library_version()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class ImageCodec(Codec):
    """2-D images, ``(H, W)`` or ``(H, W, C)``; a single channel is passed to the library as a 2-D array."""

    kind = "image"
    channels: tuple[int, ...] = (1, 3, 4)
    dtypes: tuple[str, ...] = ("uint8",)

    def why_unsupported(self, data: np.ndarray) -> str | None:
        reason = super().why_unsupported(data)
        if reason:
            return reason
        if data.ndim not in (2, 3):
            return "an image must be (H, W) or (H, W, C)"
        c = 1 if data.ndim == 2 else data.shape[2]
        if c not in self.channels:
            return f"{c} channel(s); supported: {', '.join(map(str, self.channels))}"
        if str(data.dtype) not in self.dtypes:
            return f"dtype {data.dtype}; supported: {', '.join(self.dtypes)}"
        if min(data.shape[:2]) < 1:
            return "empty image"
        return None

    def encode(self, data: np.ndarray, quality: float) -> bytes:
        data = np.asarray(data)
        self.check(data, quality)
        if data.ndim == 3 and data.shape[2] == 1:
            data = data[:, :, 0]
        q = int(round(quality)) if self.integer_quality else float(quality)
        return bytes(self._encode(np.ascontiguousarray(data), q))

    def decode(self, data: bytes) -> np.ndarray:
        out = super().decode(data)
        return out[:, :, None] if out.ndim == 2 else out

    def qualities_for(self, data: np.ndarray) -> list[float]:
        return list(self.qualities)


class JPEG(ImageCodec):
    name = "jpeg"
    qualities = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
    quality_bounds = (1, 100)
    channels = (1, 3)
    _imagecodecs_id = "JPEG8"

    def _encode(self, data, quality):
        # subsampling="420": chroma halved both ways (ignored by libjpeg for gray input)
        return _ic().jpeg8_encode(data, level=quality, subsampling="420", optimize=True)

    def _decode(self, data):
        return _ic().jpeg8_decode(data)

    def library_version(self):
        return _ic().jpeg8_version()


class WebP(ImageCodec):
    name = "webp"
    qualities = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
    quality_bounds = (0, 100)
    channels = (3, 4)  # libwebp takes RGB(A) only; gray would have to be expanded, which is not this codec's call
    _imagecodecs_id = "WEBP"

    def _encode(self, data, quality):
        return _ic().webp_encode(data, level=quality, lossless=False)

    def _decode(self, data):
        return _ic().webp_decode(data)

    def library_version(self):
        return _ic().webp_version()


class AVIF(ImageCodec):
    qualities = (10, 20, 30, 40, 50, 60, 70, 80, 90)
    quality_bounds = (0, 100)
    _imagecodecs_id = "AVIF"

    def __init__(self, name: str = "avif", speed: int | None = 6):
        self.name = name
        self.speed = speed  # None: the library's default speed

    def _encode(self, data, quality):
        return _ic().avif_encode(data, level=quality, speed=self.speed)

    def _decode(self, data):
        return _ic().avif_decode(data)

    def library_version(self):
        return _ic().avif_version()

    def get_config(self):
        return {**super().get_config(), "speed": self.speed}


class JPEGXL(ImageCodec):
    name = "jpegxl"
    qualities = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
    quality_bounds = (0, 100)
    dtypes = ("uint8", "uint16")
    _imagecodecs_id = "JPEGXL"

    def _encode(self, data, quality):
        return _ic().jpegxl_encode(data, level=quality)

    def _decode(self, data):
        return _ic().jpegxl_decode(data)

    def library_version(self):
        return _ic().jpegxl_version()


class JPEG2000(ImageCodec):
    name = "jpeg2000"
    # quality = OpenJPEG's target PSNR (dB): it maps onto rate far more evenly than a compression ratio does, and
    # a sweep in dB reads directly against the PSNR axis. 0 would mean lossless, so the search stays above 10 dB.
    qualities = (22, 25, 28, 31, 34, 37, 40, 44, 48)
    quality_bounds = (10.0, 80.0)
    integer_quality = False
    dtypes = ("uint8", "uint16")
    _imagecodecs_id = "JPEG2K"

    def _encode(self, data, quality):
        return _ic().jpeg2k_encode(data, level=quality, codecformat="J2K")

    def _decode(self, data):
        return _ic().jpeg2k_decode(data)

    def library_version(self):
        return _ic().jpeg2k_version()


# ---------------------------------------------------------------------------------------------------------------
# scientific array codecs (absolute error bounds)
# ---------------------------------------------------------------------------------------------------------------
_HEADER = struct.Struct("<4s3sB")  # magic, dtype ("<f4"/"<f8"), ndim; then ndim little-endian uint32 dims


class ArrayCodec(Codec):
    """Float arrays of any shape; ``quality`` is an absolute error bound (same units as the data)."""

    kind = "array"
    quality_bounds = (0.0, math.inf)
    integer_quality = False
    log_quality = True
    rate_increases = False
    dtypes: tuple[str, ...] = ("float32", "float64")
    core_ndims: tuple[int, ...] = (1, 2, 3, 4)  # dims the library takes after size-1 axes are dropped
    _magic = b"????"

    def why_unsupported(self, data: np.ndarray) -> str | None:
        reason = super().why_unsupported(data)
        if reason:
            return reason
        if str(data.dtype) not in self.dtypes:
            return f"dtype {data.dtype}; supported: {', '.join(self.dtypes)}"
        core = [s for s in data.shape if s != 1]
        if len(core) not in self.core_ndims:
            return f"{len(core)} non-trivial axes; supported: {', '.join(map(str, self.core_ndims))}"
        if not np.isfinite(data).all():
            return "NaN or inf values (mask or fill them first)"
        return None

    def check(self, data: np.ndarray, quality: float) -> None:
        super().check(data, quality)
        if not quality > 0:
            raise InputError(f"{self.name}: the error bound must be > 0, got {quality!r}")

    def encode(self, data: np.ndarray, quality: float) -> bytes:
        data = np.asarray(data)
        self.check(data, quality)
        # size-1 axes (e.g. the channel axis of a scalar field) only cost the codecs padding and prediction
        core = np.ascontiguousarray(data.reshape([s for s in data.shape if s != 1] or [1]))
        dt = data.dtype.newbyteorder("<").str.encode()
        head = _HEADER.pack(self._magic, dt, data.ndim) + struct.pack(f"<{data.ndim}I", *data.shape)
        return head + bytes(self._encode(core, float(quality)))

    def _decode(self, data: bytes) -> np.ndarray:
        if len(data) < _HEADER.size or data[:4] != self._magic:
            raise InputError(f"{self.name}: not a {self.name} stream (bad magic)")
        magic, dt, ndim = _HEADER.unpack_from(data)
        end = _HEADER.size + 4 * ndim
        if len(data) < end or dt not in (b"<f4", b"<f8"):
            raise InputError(f"{self.name}: truncated or corrupt header")
        shape = struct.unpack_from(f"<{ndim}I", data, _HEADER.size)
        dtype = np.dtype(dt.decode())
        core_shape = tuple(s for s in shape if s != 1) or (1,)
        out = np.asarray(self._decode_core(data[end:], core_shape, dtype))
        if out.size != int(np.prod(shape)):
            raise InputError(f"{self.name}: stream decodes to {out.shape}, header says {shape}")
        return out.astype(dtype, copy=False).reshape(shape)

    def _decode_core(self, data: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        raise NotImplementedError

    def _range(self, data: np.ndarray) -> float:
        r = float(np.max(data)) - float(np.min(data))
        return r if r > 0 else 1.0

    def qualities_for(self, data: np.ndarray) -> list[float]:
        # bounds from 10 % down to 0.001 % of the value range: from visibly coarse to near lossless
        r = self._range(np.asarray(data))
        return [r * f for f in (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)]

    def search_bounds(self, data: np.ndarray) -> tuple[float, float]:
        r = self._range(np.asarray(data))
        return (r * 1e-7, r * 0.5)


class SZ3(ArrayCodec):
    name = "sz3"
    _magic = b"iSZ3"
    _imagecodecs_id = "SZ3"

    def _encode(self, data, quality):
        ic = _ic()
        return ic.sz3_encode(data, mode=ic.SZ3.MODE.ABS, abs=quality)

    def _decode_core(self, data, shape, dtype):
        return _ic().sz3_decode(data, shape=shape, dtype=dtype)

    def library_version(self):
        return _ic().sz3_version()


class ZFP(ArrayCodec):
    name = "zfp"
    _magic = b"iZFP"
    _imagecodecs_id = "ZFP"

    def _encode(self, data, quality):
        ic = _ic()
        # mode must be given: with only level= imagecodecs' zfp is lossless
        return ic.zfp_encode(data, level=quality, mode=ic.ZFP.MODE.FIXED_ACCURACY, header=False)

    def _decode_core(self, data, shape, dtype):
        return _ic().zfp_decode(data, shape=shape, dtype=dtype)

    def library_version(self):
        return _ic().zfp_version()


class SPERR(ArrayCodec):
    name = "sperr"
    core_ndims = (2, 3)
    _magic = b"iSPR"
    _imagecodecs_id = "SPERR"

    def _encode(self, data, quality):
        ic = _ic()
        return ic.sperr_encode(data, level=quality, mode=ic.SPERR.MODE.PWE)

    def _decode_core(self, data, shape, dtype):
        return _ic().sperr_decode(data)

    def library_version(self):
        return _ic().sperr_version()


# ---------------------------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------------------------
CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        JPEG(),
        WebP(),
        AVIF("avif", speed=6),
        AVIF("avif-slow", speed=None),
        JPEGXL(),
        JPEG2000(),
        SZ3(),
        ZFP(),
        SPERR(),
    )
}
_ALIASES = {"jpg": "jpeg", "jxl": "jpegxl", "j2k": "jpeg2000", "jp2": "jpeg2000", "jpeg-xl": "jpegxl"}


def get_codec(name: str) -> Codec:
    """The registered codec called ``name`` (case-insensitive; jpg/jxl/j2k/jp2 accepted as aliases)."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in CODECS:
        raise InputError(f"unknown codec {name!r}; valid: {', '.join(CODECS)}")
    return CODECS[key]


# ---------------------------------------------------------------------------------------------------------------
# measurement
# ---------------------------------------------------------------------------------------------------------------
def _unwrap(codec: Codec, data: Any, num_pixels: int | None) -> tuple[np.ndarray, int]:
    """Array and bpp denominator, from a ``Signal`` or a bare array in the Signal layout."""
    if hasattr(data, "data") and hasattr(data, "num_pixels"):  # a Signal
        arr = np.asarray(data.data)
        n = data.num_pixels
    else:
        arr = np.asarray(data)
        if codec.kind == "image":
            n = int(np.prod(arr.shape[:2]))  # (H, W) or (H, W, C)
        else:
            n = int(np.prod(arr.shape[:-1])) if arr.ndim >= 2 else int(arr.size)  # channel-last
    return arr, int(num_pixels if num_pixels is not None else n)


def measure(codec: Codec, data: Any, quality: float, *, repeats: int = 1, num_pixels: int | None = None) -> dict:
    """Encode and decode ``data`` once per repeat; rate, distortion and median timings as a JSON-able dict.

    ``data`` is an array in the Signal layout (channel-last; a 2-D image is gray) or a ``Signal``. bpp counts every
    byte of the stream over H*W (images) or all coordinate positions (arrays; the last axis is taken as channels,
    pass ``num_pixels`` to override). PSNR uses the dtype's peak (255 / 65535) or the float value range; MS-SSIM is
    given for images only (None otherwise).
    """
    if isinstance(codec, str):
        codec = get_codec(codec)
    arr, n = _unwrap(codec, data, num_pixels)
    repeats = max(1, int(repeats))
    enc_t, dec_t = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        stream = codec.encode(arr, quality)
        enc_t.append(time.perf_counter() - t0)
    for _ in range(repeats):
        t0 = time.perf_counter()
        rec = codec.decode(stream)
        dec_t.append(time.perf_counter() - t0)
    ref = arr[:, :, None] if (codec.kind == "image" and arr.ndim == 2) else arr
    if rec.shape != ref.shape:
        raise RuntimeError(f"{codec.name} decoded shape {rec.shape}, expected {ref.shape}")
    out = {
        "codec": codec.name,
        "quality": quality,
        "bytes": len(stream),
        "bpp": metrics.bpp(len(stream), n),
        "psnr": metrics.psnr(ref, rec),
        "ms_ssim": None,
        "max_abs_error": metrics.max_abs_error(ref, rec),
        "encode_s": float(np.median(enc_t)),
        "decode_s": float(np.median(dec_t)),
    }
    if codec.kind == "image" and min(ref.shape[:2]) >= 3:
        out["ms_ssim"] = metrics.ms_ssim(ref, rec)
    return out


def sweep(codec: Codec, data: Any, qualities: list[float] | None = None, *, repeats: int = 1) -> list[dict]:
    """``measure`` at each quality (default: ``codec.qualities_for(data)``), sorted by bpp."""
    if isinstance(codec, str):
        codec = get_codec(codec)
    arr = np.asarray(data.data) if hasattr(data, "num_pixels") else np.asarray(data)
    if qualities is None:
        qualities = codec.qualities_for(arr)
    points = [measure(codec, data, q, repeats=repeats) for q in qualities]
    return sorted(points, key=lambda p: p["bpp"])


def sweep_to_range(codec: Codec, data: Any, bpp_lo: float, bpp_hi: float, n: int = 6) -> list[dict]:
    """Up to ``n`` measurements whose bpp lies in ``[bpp_lo, bpp_hi]``, spread evenly in log-rate; sorted by bpp.

    The range is cut into ``n`` equal bins in log(bpp); for each bin the quality is bisected (encode only, results
    cached) until the rate falls inside that bin. Integer qualities can step over a narrow bin: then the nearest
    in-range rate is taken, and duplicates are merged, so fewer than ``n`` points can come back. Raises
    ``InputError`` if the codec cannot reach the range at all on this input.
    """
    if isinstance(codec, str):
        codec = get_codec(codec)
    if not (0 < bpp_lo < bpp_hi) or not (math.isfinite(bpp_lo) and math.isfinite(bpp_hi)):
        raise InputError(f"bpp range must satisfy 0 < lo < hi, got [{bpp_lo}, {bpp_hi}]")
    if n < 1:
        raise InputError(f"n must be >= 1, got {n}")
    arr, npix = _unwrap(codec, data, None)
    codec.check(arr, codec.qualities_for(arr)[0])

    cache: dict[float, float] = {}
    q_min, q_max = codec.search_bounds(arr)

    def quality_at(t: float) -> float:
        # t in [0, 1], rate increasing with t
        if not codec.rate_increases:
            t = 1.0 - t
        if codec.log_quality:
            q = math.exp(math.log(q_min) + t * (math.log(q_max) - math.log(q_min)))
        else:
            q = q_min + t * (q_max - q_min)
        return float(round(q)) if codec.integer_quality else q

    def rate(q: float) -> float:
        if q not in cache:
            cache[q] = metrics.bpp(len(codec.encode(arr, q)), npix)
        return cache[q]

    lo_rate, hi_rate = rate(quality_at(0.0)), rate(quality_at(1.0))
    if hi_rate < bpp_lo or lo_rate > bpp_hi:
        raise InputError(
            f"{codec.name} spans {lo_rate:.4g}-{hi_rate:.4g} bpp on this input; cannot reach [{bpp_lo}, {bpp_hi}]"
        )

    edges = np.geomspace(bpp_lo, bpp_hi, n + 1)
    chosen: list[float] = []
    for b_lo, b_hi in zip(edges[:-1], edges[1:]):
        target = math.sqrt(b_lo * b_hi)
        t_lo, t_hi = 0.0, 1.0
        best = None
        for _ in range(40):  # 40 halvings exhaust float resolution for practical quality ranges
            t = 0.5 * (t_lo + t_hi)
            q = quality_at(t)
            r = rate(q)
            if bpp_lo <= r <= bpp_hi and (best is None or abs(math.log(r / target)) < abs(math.log(best[1] / target))):
                best = (q, r)
            if b_lo <= r <= b_hi:
                break
            if r < target:
                t_lo = t
            else:
                t_hi = t
            if codec.integer_quality and quality_at(t_lo) == quality_at(t_hi):
                break
        if best is None:  # an integer step jumped over the whole bin: try the two neighbours of the last step
            for q in (quality_at(t_lo), quality_at(t_hi)):
                if bpp_lo <= rate(q) <= bpp_hi:
                    best = (q, rate(q))
        if best is not None and best[0] not in chosen:
            chosen.append(best[0])
    if not chosen:
        raise InputError(f"{codec.name}: no quality gives a rate inside [{bpp_lo}, {bpp_hi}] bpp on this input")
    return sweep(codec, data, [int(q) if codec.integer_quality else q for q in chosen])


# ---------------------------------------------------------------------------------------------------------------
# audio
# ---------------------------------------------------------------------------------------------------------------
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # sample rates libopus takes natively
OPUS_MAX_LAG = 64  # samples; measured: the decoded stream is off by 0 or 1 sample depending on the bitrate


def opus_roundtrip(samples: np.ndarray, sample_rate: int, kbps: float) -> tuple[bytes, np.ndarray]:
    """Encode mono int16 ``samples`` with libopus at ``kbps`` (Ogg stream) and decode them back: (stream, decoded
    int16 samples, same length and rate as the input)."""
    try:
        import av
    except ImportError as exc:  # PyAV is in the "video" extra
        raise InputError("opus needs PyAV (pip install av)") from exc
    x = np.asarray(samples)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or x.dtype != np.int16:
        raise InputError(f"opus: expected mono int16 samples, got {x.shape} {x.dtype}")
    if int(sample_rate) not in OPUS_RATES:
        raise InputError(f"opus: sample rate {sample_rate} is not one of {OPUS_RATES}")
    if "libopus" not in av.codecs_available:
        raise InputError("opus: this PyAV build has no libopus")
    import io

    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=int(sample_rate))
        stream.bit_rate = int(round(kbps * 1000))
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x)[None, :], format="s16", layout="mono")
        frame.sample_rate = int(sample_rate)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = buf.getvalue()
    pieces = []
    with av.open(io.BytesIO(data)) as inp:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=int(sample_rate))
        for frame in inp.decode(audio=0):
            pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    y = np.concatenate(pieces).astype(np.int16) if pieces else np.zeros(0, np.int16)
    lag = _best_lag(x, y, OPUS_MAX_LAG)
    y = y[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag, np.int16), y])
    y = np.concatenate([y, np.zeros(max(0, len(x) - len(y)), np.int16)])[: len(x)]
    return data, y


def _best_lag(x: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    """The shift of y (y[lag:] lines up with x) in [-max_lag, max_lag] with the largest cross-correlation: the
    decoder's delay handling differs by a sample between Opus modes, and a one-sample slip costs a waveform
    metric (SNR) 10 dB or more."""
    n = min(len(x), len(y))
    if n <= 2 * max_lag:
        return 0
    a, b = x[:n].astype(np.float64), y[:n].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    lags = np.r_[0 : max_lag + 1, -max_lag:0]
    return int(lags[np.argmax(corr[lags])])


# video codecs (x264, x265, SVT-AV1 through PyAV) live in video_baselines.py
from .video_baselines import VIDEO_CODECS  # noqa: E402

CODECS.update(VIDEO_CODECS)
