"""Video files and folders of frames, read and written through PyAV, in bounded memory.

A clip is never held whole as float32: ``VideoSource.windows(n)`` yields windows of ``n`` frames as uint8 RGB
``(n, H, W, 3)`` arrays (a GOP at a time), and ``write_video`` takes an iterator of such windows. ``load`` (the
``register_format`` entry, for small clips and tools such as ``compare``) gathers every frame as uint8.

==============================  ==============================================================================
input                            how it is read
==============================  ==============================================================================
.mp4 .m4v .mov .mkv .webm .avi   PyAV: first video stream, every frame converted to RGB24 by libswscale
.y4m                             the same (PyAV's yuv4mpegpipe demuxer)
a folder, or a glob ``f_*.png``  every image file in it in natural order (``f2`` before ``f10``), one size for all
==============================  ==============================================================================

Metadata kept (``VideoInfo.metadata()``): fps as a rational, time base, pixel format, colour range / space /
primaries / transfer, frame count. The first audio track is *stream-copied* (its packets, not re-encoded) into a
small Matroska file in memory (``audio_track``) that the video layout stores as a shared section and ``write_video``
re-muxes into ``.mp4``/``.mkv`` outputs.

Outputs: ``.mkv`` FFV1 RGB (bit-exact), ``.mp4`` libx264rgb at qp 0 (bit-exact RGB; some players only show 4:2:0),
``.y4m`` YUV 4:4:4 (the format has no RGB: the colour conversion rounds, ~50 dB), ``.npy`` (frames, H, W, 3) uint8
written into a memory map, or a folder of PNG frames ``frame_000000.png ...``.
"""

from __future__ import annotations

import glob
import io
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import InputError
from ..signal import Signal
from ._common import MAX_VALUES, describe_exc, fail

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".y4m")
FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MAX_FRAMES = 1 << 20
DEFAULT_FPS = Fraction(25)  # a folder of frames carries no rate


def is_video(head: bytes) -> bool:
    """First bytes of a container PyAV reads: ISO-BMFF (mp4/mov), Matroska/WebM, AVI, Y4M."""
    return (head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
            or head.startswith(b"\x1a\x45\xdf\xa3") or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
            or head.startswith(b"YUV4MPEG2"))


def is_glob(path: str | os.PathLike) -> bool:
    return any(ch in str(path) for ch in "*?[")


def is_video_path(path: str | os.PathLike) -> bool:
    """True when ``path`` names something this module reads: a video file, a folder of frames or a glob."""
    p = Path(path)
    return p.suffix.lower() in VIDEO_EXTENSIONS or p.is_dir() or is_glob(path)


def is_video_output(path: str | os.PathLike) -> bool:
    """Outputs that take a clip: a video extension, or a path without extension / an existing folder (PNGs)."""
    p = Path(path)
    return p.suffix.lower() in VIDEO_EXTENSIONS or p.suffix == "" or p.is_dir()


@dataclass
class VideoInfo:
    width: int
    height: int
    frames: int  # the container's count (a folder: the number of files); the reader trusts decoded frames
    fps: Fraction
    time_base: Fraction
    pix_fmt: str = "rgb24"
    color: dict[str, int] = field(default_factory=dict)  # AVCOL_* codes: range, space, primaries, trc
    has_audio: bool = False
    source: str = "file"  # "file" or "frames"

    def metadata(self) -> dict[str, Any]:
        return {"fps": float(self.fps), "fps_rational": [self.fps.numerator, self.fps.denominator],
                "time_base": [self.time_base.numerator, self.time_base.denominator], "pix_fmt": self.pix_fmt,
                "color": dict(self.color), "frames": self.frames, "source": self.source}


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _av():
    import av  # imported lazily: only video needs it

    return av


class VideoSource:
    """A video file, folder or glob of frames, opened for streaming reads. Raises InputError naming the path."""

    def __init__(self, path: str | os.PathLike):
        self.path = path
        if is_glob(path) or Path(path).is_dir():
            self._files = self._frame_files(path)
            first = self._read_frame_file(self._files[0])
            h, w = first.shape[:2]
            self.info = VideoInfo(w, h, len(self._files), DEFAULT_FPS, 1 / DEFAULT_FPS, source="frames")
        else:
            self._files = None
            self.info = self._probe_file()
        if self.info.frames > MAX_FRAMES or self.info.frames * self.info.width * self.info.height * 3 > 64 * MAX_VALUES:
            raise fail(path, f"clip of {self.info.frames} frames of {self.info.width}x{self.info.height} is too large")

    # -- files ----------------------------------------------------------------------------------------------
    def _probe_file(self) -> VideoInfo:
        from ._common import check_not_empty, check_readable

        p = check_readable(self.path)
        check_not_empty(p)
        with open(p, "rb") as fh:
            head = fh.read(64)
        if not is_video(head):
            raise fail(self.path, "not a video file (no MP4/MOV, Matroska/WebM, AVI or Y4M signature)")
        av = _av()
        try:
            with av.open(str(p)) as c:
                if not c.streams.video:
                    raise fail(self.path, "has no video stream")
                s = c.streams.video[0]
                cc = s.codec_context
                if not cc.width or not cc.height:
                    raise fail(self.path, "video stream has no frame size")
                fps = s.average_rate or s.guessed_rate or s.base_rate or DEFAULT_FPS
                frames = int(s.frames or 0)
                if frames <= 0:  # some containers (y4m, mkv, webm) carry no count: count packets (no decoding)
                    frames = sum(1 for pkt in c.demux(s) if pkt.size)
                color = {"range": int(getattr(cc, "color_range", 0) or 0),
                         "space": int(getattr(cc, "colorspace", 0) or 0),
                         "primaries": int(getattr(cc, "color_primaries", 0) or 0),
                         "trc": int(getattr(cc, "color_trc", 0) or 0)}
                return VideoInfo(int(cc.width), int(cc.height), frames, Fraction(fps),
                                 Fraction(s.time_base or 1 / Fraction(fps)), str(cc.pix_fmt or "unknown"),
                                 color, bool(c.streams.audio))
        except InputError:
            raise
        except (av.FFmpegError, ValueError, ZeroDivisionError, OSError) as exc:
            raise fail(self.path, f"cannot read the video ({describe_exc(exc)})") from None

    def _file_frames(self) -> Iterator[np.ndarray]:
        av = _av()
        w, h = self.info.width, self.info.height
        try:
            with av.open(str(self.path)) as c:
                stream = c.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in c.decode(stream):
                    if frame.width != w or frame.height != h:
                        raise fail(self.path, f"frame size changes from {w}x{h} to {frame.width}x{frame.height}")
                    yield frame.to_ndarray(format="rgb24")
        except InputError:
            raise
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise fail(self.path, f"corrupt video data ({describe_exc(exc)})") from None

    # -- folders of frames ----------------------------------------------------------------------------------
    @staticmethod
    def _frame_files(path) -> list[Path]:
        if is_glob(path):
            names = [Path(n) for n in glob.glob(str(path))]
        else:
            names = [q for q in Path(path).iterdir()]
        files = sorted((q for q in names if q.is_file() and q.suffix.lower() in FRAME_EXTENSIONS),
                       key=lambda q: _natural_key(q.name))
        if not files:
            raise fail(path, f"no frames ({', '.join(FRAME_EXTENSIONS)} files) found")
        return files

    def _read_frame_file(self, f: Path) -> np.ndarray:
        from . import load

        sig = load(f)
        arr = sig.data
        if arr.dtype != np.uint8 or arr.ndim != 3:
            raise fail(f, f"video frames must be 8-bit images, got {arr.dtype} of shape {arr.shape}")
        if arr.shape[-1] in (1, 2):  # gray (+alpha): grey RGB
            arr = np.repeat(arr[..., :1], 3, axis=-1)
        return np.ascontiguousarray(arr[..., :3])  # alpha is dropped: video has none

    def _folder_frames(self) -> Iterator[np.ndarray]:
        w, h = self.info.width, self.info.height
        for f in self._files:
            arr = self._read_frame_file(f)
            if arr.shape[:2] != (h, w):
                raise fail(f, f"frame is {arr.shape[1]}x{arr.shape[0]}, the first frame is {w}x{h}")
            yield arr

    # -- public ---------------------------------------------------------------------------------------------
    def frames(self) -> Iterator[np.ndarray]:
        """Every frame as (H, W, 3) uint8, in order."""
        return self._folder_frames() if self._files is not None else self._file_frames()

    def windows(self, size: int) -> Iterator[np.ndarray]:
        """Consecutive windows of ``size`` frames (the last may be shorter) as (n, H, W, 3) uint8."""
        if size < 1:
            raise ValueError("window size must be at least 1")
        buf: list[np.ndarray] = []
        count = 0
        for frame in self.frames():
            buf.append(frame)
            count += 1
            if len(buf) == size:
                yield np.stack(buf)
                buf = []
        if buf:
            yield np.stack(buf)
        if count == 0:
            raise fail(self.path, "the video has no frames")

    def audio_track(self) -> bytes | None:
        """The first audio track, stream-copied into an in-memory Matroska file (None: no audio)."""
        if self._files is not None or not self.info.has_audio:
            return None
        return extract_audio(self.path)


def extract_audio(path: str | os.PathLike) -> bytes | None:
    av = _av()
    out = io.BytesIO()
    try:
        with av.open(str(path)) as src:
            if not src.streams.audio:
                return None
            a = src.streams.audio[0]
            with av.open(out, "w", format="matroska") as dst:
                o = dst.add_stream_from_template(a)
                for pkt in src.demux(a):
                    if pkt.dts is None or not pkt.size:
                        continue  # the demuxer's flush packet
                    pkt.stream = o
                    dst.mux(pkt)
    except (av.FFmpegError, ValueError) as exc:
        raise fail(path, f"cannot copy the audio track ({describe_exc(exc)})") from None
    return out.getvalue()


def audio_codec_name(audio: bytes) -> str:
    av = _av()
    with av.open(io.BytesIO(audio)) as c:
        return c.streams.audio[0].codec_context.name


def load_video(path: Path) -> Signal:
    """The whole clip as one uint8 Signal (T, H, W, 3) (tools and small clips; the codec streams instead)."""
    src = VideoSource(path)
    frames = np.concatenate(list(src.windows(64)))
    info = src.info
    info.frames = len(frames)
    return Signal(frames, kind="video", metadata=dict(info.metadata(), format="video"))


# -- writing ------------------------------------------------------------------------------------------------
def _rate(meta: dict[str, Any]) -> Fraction:
    r = meta.get("fps_rational")
    if isinstance(r, list) and len(r) == 2 and all(isinstance(v, int) and v > 0 for v in r):
        return Fraction(r[0], r[1])
    fps = meta.get("fps")
    if isinstance(fps, (int, float)) and 0 < fps < 10000:
        return Fraction(fps).limit_denominator(1001)
    return DEFAULT_FPS


def write_video(path: str | os.PathLike, windows: Iterable[np.ndarray], fps: Fraction,
                audio: bytes | None = None) -> int:
    """Write (n, H, W, 3) uint8 windows to ``path`` (format by extension; no extension or a folder: PNG frames).
    Atomic: a temporary file (or folder) is renamed into place once everything is written. Returns frames."""
    from ._atomic import atomic_output, check_output_path

    p = Path(path)
    ext = p.suffix.lower()
    if ext == "" or p.is_dir():
        return _write_png_folder(p, windows)
    if ext not in (".mp4", ".mkv", ".y4m", ".npy", ".mov", ".m4v"):
        raise fail(path, f"cannot write video as {ext!r} (use .mp4, .mkv, .y4m, .npy or a folder for PNGs)")
    check_output_path(p)
    with atomic_output(p) as tmp:
        if ext == ".npy":
            return _write_npy(tmp, windows)
        return _write_av(tmp, ext, windows, fps, audio)


def _write_av(tmp: Path, ext: str, windows: Iterable[np.ndarray], fps: Fraction, audio: bytes | None) -> int:
    av = _av()
    fmt = {".mkv": "matroska", ".y4m": "yuv4mpegpipe"}.get(ext, "mp4")
    count = 0
    with av.open(str(tmp), "w", format=fmt) as out:
        stream = None
        audio_in = audio_out = None
        if audio and fmt != "yuv4mpegpipe":
            audio_in = av.open(io.BytesIO(audio))
            audio_out = out.add_stream_from_template(audio_in.streams.audio[0])
        for window in windows:
            for frame in window:
                if stream is None:
                    h, w = frame.shape[:2]
                    stream = _video_stream(out, fmt, fps, w, h)
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                if stream.pix_fmt != "rgb24":
                    vf = vf.reformat(format=stream.pix_fmt)
                vf.pts = count
                out.mux(stream.encode(vf))
                count += 1
        if stream is None:
            raise InputError(f"{tmp}: no frames to write")
        out.mux(stream.encode(None))
        if audio_in is not None:
            for pkt in audio_in.demux(audio_in.streams.audio[0]):
                if pkt.dts is None or not pkt.size:
                    continue
                pkt.stream = audio_out
                out.mux(pkt)
            audio_in.close()
    return count


def _video_stream(out, fmt: str, fps: Fraction, w: int, h: int):
    if fmt == "matroska":  # FFV1 in planar GBR: lossless RGB, every player of .mkv decodes it
        s = out.add_stream("ffv1", rate=fps)
        s.pix_fmt = "bgr0"
    elif fmt == "mp4":  # x264 on RGB at qp 0: bit-exact (High 4:4:4 Predictive profile)
        s = out.add_stream("libx264rgb", rate=fps, options={"qp": "0", "preset": "veryfast"})
        s.pix_fmt = "rgb24"
    else:  # y4m holds YUV only: 4:4:4 loses nothing to subsampling, only to rounding
        s = out.add_stream("rawvideo", rate=fps)
        s.pix_fmt = "yuv444p"
    s.width, s.height = w, h
    s.time_base = 1 / fps
    return s


def _write_npy(tmp: Path, windows: Iterable[np.ndarray]) -> int:
    """Frames go to a temporary raw file one window at a time, then get a .npy header (no whole clip in RAM)."""
    raw = tmp.with_name(tmp.name + ".raw")
    count, shape = 0, None
    try:
        with open(raw, "wb") as fh:
            for window in windows:
                if shape is None:
                    shape = window.shape[1:]
                fh.write(np.ascontiguousarray(window, dtype=np.uint8).tobytes())
                count += len(window)
        if shape is None:
            raise InputError(f"{tmp}: no frames to write")
        with open(tmp, "wb") as out, open(raw, "rb") as fh:
            np.lib.format.write_array_header_1_0(
                out, {"descr": "|u1", "fortran_order": False, "shape": (count, *shape)})
            shutil.copyfileobj(fh, out, 1 << 22)
    finally:
        raw.unlink(missing_ok=True)
    return count


def _write_png_folder(folder: Path, windows: Iterable[np.ndarray]) -> int:
    """PNG frames into a temporary sibling folder, renamed into place (an existing folder must be empty)."""
    import imagecodecs

    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder}: output folder exists and is not empty")
    if not folder.parent.is_dir():
        raise InputError(f"{folder}: directory {str(folder.parent)!r} does not exist")
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        count = 0
        for window in windows:
            for frame in window:
                (tmp / f"frame_{count:06d}.png").write_bytes(imagecodecs.png_encode(frame))
                count += 1
        if count == 0:
            raise InputError(f"{folder}: no frames to write")
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


def save_video(signal: Signal, tmp: Path, dest: Path) -> None:
    """``register_format`` saver for a whole (T, H, W, 3) uint8 Signal."""
    data = signal.data
    if signal.kind != "video" or data.ndim != 4 or data.shape[-1] != 3 or data.dtype != np.uint8:
        raise fail(dest, f"only (frames, H, W, 3) uint8 video can be saved as a video file, got {data.shape} "
                         f"{data.dtype}")
    ext = dest.suffix.lower()
    fps = _rate(signal.metadata)
    if ext == ".npy":
        _write_npy(tmp, [data])
    else:
        _write_av(tmp, ext, [data], fps, None)


def _register() -> None:
    from . import Format, register_format

    register_format(Format("video", "a video file", VIDEO_EXTENSIONS, load_video, save_video, is_video))


_register()
