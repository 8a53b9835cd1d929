"""The ``.inrc`` container: a small fixed preamble, a compressed JSON header, then named binary sections.

Layout (all integers little-endian; see docs/format.md for the full specification)::

    0   4  magic  b"INRC"
    4   1  format version (FORMAT_VERSION)
    5   4  header length in bytes (u32), compressed
    9   4  CRC32 of the compressed header
   13   n  header: zlib-compressed UTF-8 JSON
           {"signal": {...}, "model": name, "config": {...}, "sections": [[name, length, crc32], ...], "extra": {...}}
 13+n  ..  section payloads, concatenated in the order the header lists them

Everything the decoder needs to rebuild the representation is data (JSON + integer streams): nothing is
executed and nothing is unpickled. Every size a header claims is checked against caps *before* anything is
allocated, so a hostile file cannot make the reader allocate a 10^6 x 10^6 image.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from .errors import FormatError
from .schema import check_meta, is_real
from .signal import KINDS, SUPPORTED_DTYPES

MAGIC = b"INRC"
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct("<4sBII")

# Caps on what a header may claim. Generous for real signals, far below what would exhaust memory.
MAX_HEADER_BYTES = 1 << 20  # compressed
MAX_HEADER_JSON_BYTES = 4 << 20  # decompressed
MAX_AXIS = 1 << 20  # samples along one coordinate axis (audio can be long)
MAX_VALUES = 1 << 30  # elements of the decoded array (coords x channels): 4 GiB as float32
MAX_CHANNELS = 64
MAX_SECTIONS = 1 << 16  # a file of parts (GOPs, tiles, variables) has one section per part

# Preset zlib dictionary (part of format version 1: never change it within a version). Headers are ~100-200
# bytes of JSON that zlib alone barely shrinks; priming it with the strings every header repeats roughly halves
# them, which matters at 0.1 bpp where a whole 128x128 file is 200 bytes.
HEADER_ZDICT = (
    b'"weights""residual""steps""positions""colors""cholesky""latents""synthesis""hidden_layers":"n_features":'
    b'"width":"sigma":"levels":"seed":0,"ndim":2,"channels":3,"n_gaussians":"bits":"extra":{"encoder":"inrcodec 0.'
    b'"signal":{"kind":"audio"volume"array"video"image","shape":["dtype":"float32"int16"uint16"uint8",'
    b'"range":[0.0,255.0],"meta":{"format":"png","bit_depth":8},"model":"fourier","config":{"ndim":2,"channels":3,'
    b'"sections":[["'
)


@dataclass
class Container:
    signal: dict[str, Any]  # Signal.describe()
    model: str
    config: dict[str, Any]
    sections: dict[str, bytes] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # fit report, encoder version: informative only


def write_container(c: Container) -> bytes:
    validate_signal_description(c.signal, _has_parts(c.sections))
    table = [[name, len(payload), zlib.crc32(payload)] for name, payload in c.sections.items()]
    header = {"signal": c.signal, "model": c.model, "config": c.config, "sections": table}
    if c.extra:
        header["extra"] = c.extra
    raw = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    deflater = zlib.compressobj(9, zdict=HEADER_ZDICT)
    packed = deflater.compress(raw) + deflater.flush()
    if len(packed) > MAX_HEADER_BYTES:
        raise ValueError("container header too large")
    preamble = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(packed), zlib.crc32(packed))
    return b"".join([preamble, packed, *c.sections.values()])


def read_container(data: bytes) -> Container:
    """Parse and validate a whole ``.inrc`` file. Raises ``FormatError`` (one-line message) on any defect."""
    if len(data) < _PREAMBLE.size:
        raise FormatError(f"not an .inrc file: only {len(data)} bytes")
    magic, version, header_len, header_crc = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not an .inrc file: bad magic bytes")
    if version != FORMAT_VERSION:
        raise FormatError(f"unsupported .inrc format version {version} (this inrcodec reads version {FORMAT_VERSION})")
    if header_len > MAX_HEADER_BYTES:
        raise FormatError(f"header claims {header_len} bytes, more than the cap of {MAX_HEADER_BYTES}")
    start = _PREAMBLE.size
    packed = data[start : start + header_len]
    if len(packed) < header_len:
        raise FormatError("file is truncated inside the header")
    if zlib.crc32(packed) != header_crc:
        raise FormatError("header CRC mismatch: the file is corrupt")
    header = _parse_header(packed)
    validate_signal_description(header["signal"], _has_parts(entry[0] for entry in header["sections"]
                                                             if isinstance(entry, list) and entry))

    sections: dict[str, bytes] = {}
    offset = start + header_len
    for entry in header["sections"]:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 64 for v in entry[1:])):
            raise FormatError("malformed section table")
        name, length, crc = entry
        if name in sections or len(name) > 256:
            raise FormatError(f"section table: duplicate or overlong section name {name[:40]!r}")
        if offset + length > len(data):
            raise FormatError(f"file is truncated: section {name!r} needs {length} bytes, "
                              f"{max(0, len(data) - offset)} remain")
        payload = data[offset : offset + length]
        if zlib.crc32(payload) != crc:
            raise FormatError(f"CRC mismatch in section {name!r}: the file is corrupt")
        sections[name] = payload
        offset += length
    if offset != len(data):
        raise FormatError(f"{len(data) - offset} unexpected trailing bytes after the last section")
    return Container(header["signal"], header["model"], header["config"], sections, header.get("extra", {}))


def _parse_header(packed: bytes) -> dict[str, Any]:
    try:
        inflater = zlib.decompressobj(zdict=HEADER_ZDICT)
        raw = inflater.decompress(packed, MAX_HEADER_JSON_BYTES)
        if inflater.unconsumed_tail:
            raise FormatError("header expands beyond the cap")
        header = json.loads(raw.decode("utf-8"))
    except FormatError:
        raise
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"header is not valid: {type(exc).__name__}") from None
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    for key, typ in (("signal", dict), ("model", str), ("config", dict), ("sections", list)):
        if not isinstance(header.get(key), typ):
            raise FormatError(f"header field {key!r} is missing or has the wrong type")
    if len(header["sections"]) > MAX_SECTIONS:
        raise FormatError("too many sections")
    if "extra" in header and not isinstance(header["extra"], dict):
        raise FormatError("header field 'extra' has the wrong type")
    return header


def _has_parts(names) -> bool:
    return any(isinstance(n, str) and n.startswith("part:") for n in names)


def validate_signal_description(desc: Any, parts: bool = False) -> None:
    """Check a signal description against the caps before anything is allocated for it. A file of parts (a long
    video) is never allocated whole, only part by part (each checked on its own), so the cap on its total number
    of values does not apply to it."""
    if not isinstance(desc, dict):
        raise FormatError("signal description is not an object")
    if desc.get("kind") not in KINDS:
        raise FormatError(f"unknown signal kind {desc.get('kind')!r}")
    if desc.get("dtype") not in SUPPORTED_DTYPES:
        raise FormatError(f"unsupported dtype {desc.get('dtype')!r}")
    shape = desc.get("shape")
    if not (isinstance(shape, list) and 2 <= len(shape) <= 4
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
        raise FormatError(f"invalid signal shape {shape!r}")
    if any(s > MAX_AXIS for s in shape[:-1]) or shape[-1] > MAX_CHANNELS:
        raise FormatError(f"signal shape {shape} exceeds the caps (axis <= {MAX_AXIS}, channels <= {MAX_CHANNELS})")
    if math.prod(shape) > MAX_VALUES and not parts:
        raise FormatError(f"signal shape {shape} has more than {MAX_VALUES} values")
    rng = desc.get("range")
    # is_real: finite int/float, not bool (math.isfinite raises OverflowError on a 400-digit JSON integer)
    if not (isinstance(rng, list) and len(rng) == 2 and all(is_real(v) for v in rng)
            and rng[0] <= rng[1] and math.isfinite(float(rng[1]) - float(rng[0]))):
        raise FormatError("invalid value range")
    check_meta(desc.get("meta", {}))
