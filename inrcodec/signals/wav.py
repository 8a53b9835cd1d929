"""WAV audio via ``scipy.io.wavfile``: PCM 8 (uint8), 16 (int16), 24 and 32-bit (int32) and IEEE float 32/64.

Loaded as ``Signal(kind="audio")`` of shape (T, C) in the file's dtype, metadata
``{"format": "wav", "sample_rate", "bit_depth"}``. The header is parsed here first, so truncated files and
unsupported encodings (mu-law, ADPCM ...) give a one-line error. 24-bit PCM loads as int32 with the samples in the
high 24 bits (scipy's convention) and is saved back as 32-bit PCM: same values, wider container.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..signal import Signal
from ._common import check_values, describe_exc, fail

PCM, IEEE_FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
SAVE_DTYPES = ("uint8", "int16", "int32", "float32", "float64")


def is_wav(head: bytes) -> bool:
    return head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE"


def read_wav_header(path: Path) -> dict:
    """fmt and data chunk facts: channels, sample_rate, bits, format_tag, data_offset, data_size."""
    size = path.stat().st_size
    info: dict = {}
    with open(path, "rb") as fh:
        riff = fh.read(12)
        endian = ">" if riff[:4] == b"RIFX" else "<"
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            cid, csize = struct.unpack(endian + "4sI", fh.read(8))
            if cid == b"fmt ":
                body = fh.read(min(csize, 40))
                if len(body) < 16:
                    raise fail(path, "corrupt WAV file (fmt chunk too short)")
                tag, channels, rate, _, _, bits = struct.unpack(endian + "HHIIHH", body[:16])
                if tag == EXTENSIBLE and len(body) >= 26:
                    tag = struct.unpack(endian + "H", body[24:26])[0]  # first two bytes of the sub-format GUID
                info.update(format_tag=tag, channels=channels, sample_rate=rate, bits=bits)
            elif cid == b"data":
                info.update(data_offset=pos + 8, data_size=csize)
                break
            pos += 8 + csize + (csize & 1)  # chunks are padded to even sizes
    if "format_tag" not in info:
        raise fail(path, "truncated or corrupt WAV file (no fmt chunk)")
    if "data_offset" not in info:
        raise fail(path, "truncated or corrupt WAV file (no data chunk)")
    if info["data_offset"] + info["data_size"] > size:
        raise fail(path, f"truncated WAV file: data chunk announces {info['data_size']} bytes, "
                         f"{size - info['data_offset']} present")
    return info


def load_wav(path: Path) -> Signal:
    from scipy.io import wavfile

    info = read_wav_header(path)
    tag, bits, channels = info["format_tag"], info["bits"], info["channels"]
    if not ((tag == PCM and bits in (8, 16, 24, 32)) or (tag == IEEE_FLOAT and bits in (32, 64))):
        raise fail(path, f"unsupported WAV encoding (format tag {tag}, {bits} bits): need PCM or IEEE float")
    if channels < 1 or info["sample_rate"] < 1:
        raise fail(path, f"corrupt WAV header ({channels} channels, sample rate {info['sample_rate']})")
    frames = info["data_size"] // max(1, channels * bits // 8)
    check_values(path, (frames, channels), "audio")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)  # unknown chunks (LIST, cue ...) are skipped
            rate, data = wavfile.read(path, mmap=False)
    except Exception as exc:
        raise fail(path, f"corrupt WAV file ({describe_exc(exc)})") from None
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    data = data.astype(data.dtype.newbyteorder("="), copy=False)
    meta = {"format": "wav", "sample_rate": int(rate), "bit_depth": int(bits)}
    if data.dtype.kind == "f" and np.isnan(data).any():  # a sound has no "missing sample" meaning for NaN
        raise fail(path, f"float WAV holds {int(np.isnan(data).sum())} NaN samples")
    try:
        return Signal(np.ascontiguousarray(data), kind="audio", metadata=meta)
    except InputError as exc:
        raise fail(path, str(exc)) from None


def save_wav(signal: Signal, tmp: Path, dest: Path, sample_rate: int | None = None) -> None:
    from scipy.io import wavfile

    if signal.ndim_coords != 1:
        raise fail(dest, f"WAV holds audio of shape (T, C), got a {signal.kind} of shape {signal.data.shape}")
    rate = sample_rate if sample_rate is not None else (signal.metadata or {}).get("sample_rate")
    if rate is None:
        raise fail(dest, "the signal has no sample rate; pass sample_rate=")
    try:
        rate = int(rate)
    except (TypeError, ValueError):
        raise fail(dest, f"bad sample rate {rate!r}") from None
    if not 1 <= rate < 2**32:
        raise fail(dest, f"bad sample rate {rate}")
    data = signal.data
    if data.dtype == np.float16:
        data = data.astype(np.float32)  # exact: WAV has no half floats
    if str(data.dtype) not in SAVE_DTYPES:
        raise fail(dest, f"WAV cannot store {data.dtype} samples (supported: {', '.join(SAVE_DTYPES)})")
    if signal.channels > 65535:
        raise fail(dest, f"WAV cannot store {signal.channels} channels")
    wavfile.write(tmp, rate, np.ascontiguousarray(data[:, 0] if signal.channels == 1 else data))
