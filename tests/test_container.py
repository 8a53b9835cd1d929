"""The .inrc container: round trip, and rejection of every kind of damage before anything large is allocated."""

import struct
import zlib

import numpy as np
import pytest

from inrcodec.container import (FORMAT_VERSION, HEADER_ZDICT, MAGIC, MAX_VALUES, Container, read_container,
                                write_container)
from inrcodec.errors import FormatError

DESC = {"kind": "image", "shape": [16, 20, 3], "dtype": "uint8", "range": [0.0, 255.0], "meta": {"bit_depth": 8}}


def make(sections=None, signal=DESC, config=None):
    return write_container(Container(signal, "fourier", config or {"width": 8},
                                     sections if sections is not None else {"a": b"hello", "b": bytes(range(200))}))


def test_round_trip_keeps_everything():
    data = make()
    c = read_container(data)
    assert c.signal == DESC and c.model == "fourier" and c.config == {"width": 8}
    assert c.sections == {"a": b"hello", "b": bytes(range(200))}
    assert data[:4] == MAGIC and data[4] == FORMAT_VERSION


def test_header_is_small():
    # At 0.1 bpp on a 128x128 image the whole file is 200 bytes: the header must stay a small part of that.
    assert len(make(sections={})) < 100


@pytest.mark.parametrize("cut", [0, 3, 8, 12, 20, -1, -150])
def test_truncation_is_rejected(cut):
    data = make()
    with pytest.raises(FormatError):
        read_container(data[:cut])


def test_trailing_bytes_rejected():
    with pytest.raises(FormatError, match="trailing"):
        read_container(make() + b"x")


def test_unknown_version_rejected():
    data = bytearray(make())
    data[4] = FORMAT_VERSION + 1
    with pytest.raises(FormatError, match="version"):
        read_container(bytes(data))


def test_bad_magic_rejected():
    with pytest.raises(FormatError, match="magic"):
        read_container(b"PNG\x00" + make()[4:])


def test_every_single_bit_flip_is_detected():
    data = make()
    rng = np.random.default_rng(0)
    for pos in rng.choice(len(data), size=60, replace=False):
        damaged = bytearray(data)
        damaged[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(FormatError):
            read_container(bytes(damaged))


def test_random_bytes_rejected():
    rng = np.random.default_rng(1)
    for n in (0, 1, 13, 100, 5000):
        with pytest.raises(FormatError):
            read_container(rng.integers(0, 256, n, dtype=np.uint8).tobytes())


def _forge(header: dict) -> bytes:
    """A well-formed file (valid CRCs) whose header says whatever we like: what a hostile writer could make."""
    import json
    deflater = zlib.compressobj(9, zdict=HEADER_ZDICT)
    packed = deflater.compress(json.dumps(header).encode()) + deflater.flush()
    return struct.pack("<4sBII", MAGIC, FORMAT_VERSION, len(packed), zlib.crc32(packed)) + packed


@pytest.mark.parametrize("shape", [[1_000_000, 1_000_000, 3], [40000, 40000, 3], [10, 10, 100000], [0, 5, 3],
                                   [5], "big", [2.5, 3, 1], [1 << 21, 1]])
def test_header_claims_beyond_caps_rejected(shape):
    header = {"signal": dict(DESC, shape=shape), "model": "fourier", "config": {}, "sections": []}
    with pytest.raises(FormatError):
        read_container(_forge(header))


def test_cap_is_on_total_values():
    assert 40000 * 40000 * 3 > MAX_VALUES


@pytest.mark.parametrize("bad", [{"kind": "hologram"}, {"dtype": "complex64"}, {"dtype": "object"},
                                 {"range": [0, float("inf")]}, {"range": [0]}, {"meta": []}])
def test_bad_signal_fields_rejected(bad):
    header = {"signal": dict(DESC, **bad), "model": "fourier", "config": {}, "sections": []}
    with pytest.raises(FormatError):
        read_container(_forge(header))


def test_section_table_lies_are_rejected():
    header = {"signal": DESC, "model": "fourier", "config": {}, "sections": [["w", 1 << 40, 0]]}
    with pytest.raises(FormatError, match="truncated"):
        read_container(_forge(header))
    header["sections"] = [["w", -1, 0]]
    with pytest.raises(FormatError):
        read_container(_forge(header))


def test_zip_bomb_header_rejected():
    deflater = zlib.compressobj(9, zdict=HEADER_ZDICT)
    bomb = deflater.compress(b" " * (64 << 20)) + deflater.flush()
    data = struct.pack("<4sBII", MAGIC, FORMAT_VERSION, len(bomb), zlib.crc32(bomb)) + bomb
    with pytest.raises(FormatError):
        read_container(data)
