"""Bad inputs every command must refuse cleanly: one line on stderr, exit 2, nothing written.

Shared by ``tests/test_bad_input.py`` (the checks) and ``docs/make_bad_input_table.py`` (the table in
``docs/bad-input.md``). Each case makes its files in a temporary folder and returns the command line; ``setup``
may also patch the process (a writer that raises ENOSPC). New loaders (video, datasets) add their rows here.
"""

from __future__ import annotations

import errno
import io
import struct
import zlib
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).parent / "golden"


def _png_bytes(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_claiming(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        _chunk(b"IEND", b"")


def _wav_bytes(samples: np.ndarray, rate: int = 8000, fmt: int = 1) -> bytes:
    data = samples.tobytes()
    ch = 1 if samples.ndim == 1 else samples.shape[1]
    bits = samples.dtype.itemsize * 8
    fmt_chunk = struct.pack("<HHIIHH", fmt, ch, rate, rate * ch * bits // 8, ch * bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt_chunk + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _npy_header_claiming(shape: tuple) -> bytes:
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    header += b" " * ((-len(header) - 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64


def _write(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


def _fit(path: Path, *extra: str) -> list[str]:
    return ["fit", str(path), "-o", str(path.with_suffix(".inrc")), "--steps", "2", "-q", *extra]


def _decode(tmp: Path, out: str, src: str = "gaussian-image") -> list[str]:
    inrc = _write(tmp, "in.inrc", (GOLDEN / f"{src}.inrc").read_bytes())
    return ["decode", str(inrc), "-o", str(tmp / out)]


class _FullDisk:
    """Every write to a file opened for writing raises ENOSPC (a full disk), for both Python file objects and
    libraries that write through them; applied by patching ``open`` in the writing modules."""

    def __init__(self, real_open):
        self.real_open = real_open

    def __call__(self, file, mode="r", *args, **kw):
        fh = self.real_open(file, mode, *args, **kw)
        if "w" not in mode and "a" not in mode:
            return fh

        class Full(io.RawIOBase):
            def write(self, b):
                raise OSError(errno.ENOSPC, "No space left on device")

            def writable(self):
                return True

            def close(self):
                fh.close()
                super().close()

            def fileno(self):
                return fh.fileno()

        return io.BufferedWriter(Full()) if "b" in mode else io.TextIOWrapper(io.BufferedWriter(Full()))


def _full_disk(monkeypatch) -> None:
    import builtins

    from inrcodec.signals import _atomic, npy

    for mod in (_atomic, npy):
        monkeypatch.setattr(mod, "open", _FullDisk(builtins.open), raising=False)


# (id, what, make(tmp) -> argv, setup(monkeypatch) or None, output path relative to tmp that must not exist)
CASES = [
    ("png-empty", "empty .png", lambda t: _fit(_write(t, "a.png", b"")), None),
    ("png-truncated", "PNG cut after 60 bytes", lambda t: _fit(_write(t, "a.png", _png_bytes(
        np.zeros((40, 40, 3), np.uint8) + 7)[:60])), None),
    ("png-is-text", "text file named .png", lambda t: _fit(_write(t, "a.png", b"hello world\n" * 10)), None),
    ("png-is-jpeg", "JPEG bytes named .png", lambda t: _fit(_write(t, "a.png", b"\xff\xd8\xff\xe0" + b"\0" * 200)),
     None),
    ("png-huge", "PNG header claiming 100000 x 100000", lambda t: _fit(_write(t, "a.png", _png_claiming(100000,
                                                                                                   100000))), None),
    ("png-zero-size", "PNG header claiming 0 x 10", lambda t: _fit(_write(t, "a.png", _png_claiming(0, 10))), None),
    ("jpg-truncated", "JPEG cut in its header", lambda t: _fit(_write(t, "a.jpg", b"\xff\xd8\xff\xdb\x00\x43\x00")),
     None),
    ("wav-empty", "empty .wav", lambda t: _fit(_write(t, "a.wav", b"")), None),
    ("wav-truncated", "WAV cut inside its header", lambda t: _fit(_write(t, "a.wav", _wav_bytes(
        np.zeros(100, np.int16))[:30])), None),
    ("wav-no-samples", "WAV with 0 samples", lambda t: _fit(_write(t, "a.wav", _wav_bytes(np.zeros(0, np.int16)))),
     None),
    ("wav-nan", "float WAV holding NaN", lambda t: _fit(_write(t, "a.wav", _wav_bytes(
        np.where(np.arange(64) % 7 == 0, np.nan, np.sin(np.arange(64))).astype(np.float32), fmt=3))), None),
    ("wav-is-text", "text file named .wav", lambda t: _fit(_write(t, "a.wav", b"RIFX not a wave file" * 4)), None),
    ("npy-truncated", ".npy cut inside its data", lambda t: _fit(_npy(t, np.ones((50, 50), np.float32), cut=100)),
     None),
    ("npy-huge-claim", ".npy header claiming 10^12 values", lambda t: _fit(_write(
        t, "a.npy", _npy_header_claiming((1000000, 1000000)))), None),
    ("npy-zero-axis", ".npy of shape (0, 5)", lambda t: _fit(_npy(t, np.zeros((0, 5), np.float32))), None),
    ("npy-object", ".npy of Python objects (pickle)", lambda t: _fit(_npy(t, np.array([{"a": 1}], dtype=object))),
     None),
    ("npy-complex", ".npy of complex numbers", lambda t: _fit(_npy(t, np.ones((4, 4), np.complex64))), None),
    ("npy-5d", ".npy with 5 axes", lambda t: _fit(_npy(t, np.ones((2, 2, 2, 2, 2), np.float32))), None),
    ("raw-size", "raw .f32 whose size does not match the name", lambda t: _fit(_write(
        t, "field_10x10.f32", b"\0" * 396)), None),
    ("raw-huge", "raw name claiming 100000^3 values", lambda t: _fit(_write(
        t, "field_100000x100000x100000.f32", b"\0" * 400)), None),
    ("missing", "input does not exist", lambda t: _fit(t / "nope.png"), None),
    ("input-is-dir", "input is a directory", lambda t: _fit(_mkdir(t, "d.png")), None),
    ("dangling-link", "input is a dangling symlink", lambda t: _fit(_link(t)), None),
    ("unknown-ext", "unknown extension", lambda t: _fit(_write(t, "a.xyz", b"abc")), None),
    ("inrc-garbage", ".inrc of random bytes", lambda t: ["decode", str(_write(t, "a.inrc", bytes(range(256)))),
                                                         "-o", str(t / "o.png")], None),
    ("inrc-empty", "empty .inrc", lambda t: ["decode", str(_write(t, "a.inrc", b"")), "-o", str(t / "o.png")],
     None),
    ("inrc-bomb", ".inrc claiming 16384 x 16384 pixels", lambda t: ["decode", str(_write(
        t, "a.inrc", _bomb())), "-o", str(t / "o.png")], None),
    ("out-is-dir", "output path is a directory", lambda t: _decode(t, _mkdir(t, "o.png").name), None),
    ("out-missing-dir", "output folder does not exist", lambda t: _decode(t, "no/such/o.png"), None),
    ("out-bad-ext", "output extension unknown", lambda t: _decode(t, "o.xyz"), None),
    ("out-wrong-kind", "image decoded to .wav", lambda t: _decode(t, "o.wav"), None),
    ("full-disk-decode", "disk full while writing the decoded .npy", lambda t: _decode(t, "o.npy"), _full_disk),
    ("full-disk-fit", "disk full while writing the .inrc", lambda t: _fit(_npy(t, _smooth())), _full_disk),
]


def _smooth() -> np.ndarray:
    y, x = np.mgrid[0:16, 0:16] / 16.0
    return (np.sin(3 * x) + y).astype(np.float32)


def _tiff(tmp: Path, arr: np.ndarray) -> Path:
    import imagecodecs

    return _write(tmp, "a.tif", imagecodecs.tiff_encode(arr))


def _npy(tmp: Path, arr: np.ndarray, cut: int | None = None) -> Path:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    data = buf.getvalue()
    return _write(tmp, "a.npy", data[:cut] if cut else data)


def _mkdir(tmp: Path, name: str) -> Path:
    p = tmp / name
    p.mkdir()
    return p


def _link(tmp: Path) -> Path:
    p = tmp / "link.png"
    p.symlink_to(tmp / "gone.png")
    return p


def _bomb() -> bytes:
    from inrcodec.fuzzing import reseal, unseal

    v, h, s = unseal((GOLDEN / "siren-image.inrc").read_bytes())
    h["signal"]["shape"] = [16384, 16384, 3]
    return reseal(h, s, v)
