"""Still images: PNG (imagecodecs: 8/16-bit, gray, gray+alpha, RGB, RGBA, palette -> RGB(A)), JPEG, WebP and BMP
(Pillow), TIFF (tifffile, any supported dtype, also multi-page volumes).

Loaded images are ``Signal(kind="image")`` of shape (H, W, C) with C = 1 (gray), 2 (gray+alpha), 3 (RGB) or
4 (RGBA), in the file's own dtype (uint8 or uint16 for PNG), with metadata ``{"format", "bit_depth"}``. Saving
writes the signal's dtype: a uint16 signal becomes a 16-bit PNG. PNG is read with imagecodecs (libpng) rather than
Pillow because Pillow cannot hold 16-bit RGB(A).
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..signal import Signal
from ._common import MAX_PIXELS, check_dtype, describe_exc, fail

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(head: bytes) -> bool:
    return head.startswith(PNG_MAGIC)


def is_jpeg(head: bytes) -> bool:
    return head.startswith(b"\xff\xd8\xff")


def is_tiff(head: bytes) -> bool:
    return head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF


def is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def is_bmp(head: bytes) -> bool:
    return head[:2] == b"BM"


def _check_pixels(path, height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise fail(path, f"image has no pixels ({width}x{height})")
    if height * width > MAX_PIXELS:
        raise fail(path, f"image of {width}x{height} pixels is larger than the limit of {MAX_PIXELS} pixels")


def _image_signal(path, arr: np.ndarray, fmt: str) -> Signal:
    if arr.dtype == bool:  # bilevel TIFF: same 0/255 convention libpng uses for 1-bit PNG
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or not 1 <= arr.shape[-1] <= 4:
        raise fail(path, f"unsupported image layout {arr.shape} (need gray, gray+alpha, RGB or RGBA)")
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    check_dtype(path, arr.dtype)
    meta = {"format": fmt, "bit_depth": int(arr.dtype.itemsize * 8)}
    return Signal(np.ascontiguousarray(arr), kind="image", metadata=meta)


# ---------------------------------------------------------------------------------------------------- PNG
def load_png(path: Path) -> Signal:
    import imagecodecs

    data = path.read_bytes()
    # IHDR is always the first chunk: read the size from it before letting libpng allocate anything.
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise fail(path, "truncated or corrupt PNG image (no IHDR header)")
    width, height = struct.unpack(">II", data[16:24])
    _check_pixels(path, height, width)
    try:
        arr = imagecodecs.png_decode(data)
    except Exception as exc:  # libpng reports truncation, CRC and zlib errors as PngError/ValueError
        raise fail(path, f"truncated or corrupt PNG image ({describe_exc(exc)})") from None
    return _image_signal(path, np.asarray(arr), "png")


def save_png(signal: Signal, tmp: Path, dest: Path, level: int | None = None) -> None:
    import imagecodecs

    data = _check_2d(signal, dest, "PNG", dtypes=("uint8", "uint16"), channels=(1, 2, 3, 4))
    kwargs = {} if level is None else {"level": int(level)}
    tmp.write_bytes(imagecodecs.png_encode(data, **kwargs))


# ---------------------------------------------------------------------------------------------------- Pillow
_PIL_NAMES = {"jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP"}


def _pil_array(path, im) -> np.ndarray:
    mode = im.mode
    if mode == "1":
        im = im.convert("L")
    elif mode in ("P", "PA"):
        im = im.convert("RGBA" if (mode == "PA" or "transparency" in im.info) else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    elif mode in ("La", "RGBa"):  # premultiplied alpha
        im = im.convert(mode[:-1] + "A")
    elif not (mode in ("L", "LA", "RGB", "RGBA", "I", "F") or mode.startswith("I;16")):
        raise fail(path, f"unsupported image mode {mode}")
    arr = np.asarray(im)
    if im.mode == "I" and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # Pillow widens 16-bit gray to int32 for some formats
    return arr


def _load_pil(path: Path, fmt: str) -> Signal:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own cap below decides
            with Image.open(path, formats=[_PIL_NAMES[fmt]]) as im:
                width, height = im.size
                _check_pixels(path, height, width)
                im.load()
                arr = _pil_array(path, im)
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise fail(path, "image is larger than Pillow's decompression-bomb limit") from None
    except Exception as exc:  # OSError "image file is truncated", SyntaxError, struct.error ...
        raise fail(path, f"truncated or corrupt {fmt.upper()} image ({describe_exc(exc)})") from None
    return _image_signal(path, arr, fmt)


def load_jpeg(path: Path) -> Signal:
    return _load_pil(path, "jpeg")


def load_webp(path: Path) -> Signal:
    return _load_pil(path, "webp")


def load_bmp(path: Path) -> Signal:
    return _load_pil(path, "bmp")


def _pil_image(data: np.ndarray):
    from PIL import Image

    return Image.fromarray(data[..., 0] if data.shape[-1] == 1 else data)


def save_jpeg(signal: Signal, tmp: Path, dest: Path, quality: int = 95) -> None:
    data = _check_2d(signal, dest, "JPEG", dtypes=("uint8",), channels=(1, 3))
    _pil_image(data).save(tmp, format="JPEG", quality=int(quality))


def save_webp(signal: Signal, tmp: Path, dest: Path, lossless: bool = True, quality: int = 90) -> None:
    data = _check_2d(signal, dest, "WebP", dtypes=("uint8",), channels=(3, 4))
    # exact=True keeps the colour of fully transparent pixels, so lossless really is lossless.
    _pil_image(data).save(tmp, format="WEBP", lossless=bool(lossless), quality=int(quality), exact=True)


def save_bmp(signal: Signal, tmp: Path, dest: Path) -> None:
    data = _check_2d(signal, dest, "BMP", dtypes=("uint8",), channels=(1, 3))
    _pil_image(data).save(tmp, format="BMP")


# ---------------------------------------------------------------------------------------------------- TIFF
def load_tiff(path: Path) -> Signal:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            if not tf.series:
                raise fail(path, "TIFF file holds no image")
            series = tf.series[0]
            shape, axes = tuple(series.shape), series.axes
            if series.dtype != bool:
                check_dtype(path, series.dtype)
            if "S" in axes:  # samples (channels) may be planar: move them last
                order = [i for i, a in enumerate(axes) if a != "S"] + [axes.index("S")]
            else:
                order = list(range(len(axes)))
            coords = [shape[i] for i in order if axes[i] != "S" and not (shape[i] == 1 and axes[i] not in "YX")]
            if len(coords) not in (2, 3):
                raise fail(path, f"unsupported TIFF layout {shape} (axes {axes})")
            _check_pixels(path, int(np.prod(coords[:-1])), coords[-1])
            arr = series.asarray()
    except InputError:
        raise
    except Exception as exc:
        raise fail(path, f"truncated or corrupt TIFF image ({describe_exc(exc)})") from None
    arr = np.transpose(arr, order)
    channels = arr.shape[-1] if "S" in axes else 1
    arr = arr.reshape(*coords, channels)
    if len(coords) == 2:
        return _image_signal(path, arr, "tiff")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    meta = {"format": "tiff", "bit_depth": int(arr.dtype.itemsize * 8)}
    return Signal(np.ascontiguousarray(arr), kind="volume", metadata=meta)


def save_tiff(signal: Signal, tmp: Path, dest: Path, compression: str | None = None) -> None:
    import tifffile

    data = signal.data
    c = signal.channels
    if signal.ndim_coords == 3:
        if c != 1:
            raise fail(dest, f"TIFF volumes must have one channel, got {c}")
        tifffile.imwrite(tmp, data[..., 0], photometric="minisblack", compression=compression)
        return
    data = _check_2d(signal, dest, "TIFF", dtypes=None, channels=(1, 2, 3, 4))
    if c == 1:
        tifffile.imwrite(tmp, data[..., 0], photometric="minisblack", compression=compression)
    else:
        extra = {2: ("unassalpha",), 3: (), 4: ("unassalpha",)}[c]
        tifffile.imwrite(
            tmp, data, photometric="rgb" if c >= 3 else "minisblack", planarconfig="contig",
            extrasamples=extra or None, compression=compression,
        )


# ---------------------------------------------------------------------------------------------------- shared
def _check_2d(signal: Signal, dest, name: str, dtypes, channels) -> np.ndarray:
    if signal.ndim_coords != 2:
        raise fail(dest, f"{name} holds a 2-D image, got a {signal.kind} of shape {signal.data.shape}")
    if dtypes is not None and str(signal.dtype) not in dtypes:
        raise fail(dest, f"{name} stores {' or '.join(dtypes)} images, not {signal.dtype} (try .npy or .tiff)")
    if signal.channels not in channels:
        raise fail(dest, f"{name} cannot store {signal.channels} channels (supported: {channels})")
    return np.ascontiguousarray(signal.data)
