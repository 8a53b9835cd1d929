"""Small byte-level helpers shared by the entropy coder and the state codec: LEB128 varints, zigzag, and a
bounds-checked reader that turns every overrun into a ``FormatError``."""

from __future__ import annotations

import struct

import numpy as np

from ..errors import FormatError

MAX_VARINT_BYTES = 10  # enough for 64 bits; anything longer is corrupt


def zigzag(v: int) -> int:
    """Signed -> unsigned so that small magnitudes of either sign get short varints."""
    return (v << 1) if v >= 0 else ((-v << 1) - 1)


def unzigzag(u: int) -> int:
    return (u >> 1) if not (u & 1) else -((u + 1) >> 1)


def varint(u: int) -> bytes:
    if u < 0:
        raise ValueError("varint takes non-negative integers")
    out = bytearray()
    while True:
        b = u & 0x7F
        u >>= 7
        if u:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ans_words(payload: bytes) -> np.ndarray:
    """The uint32 words of an ANS payload (little-endian; the zero bytes the encoder trimmed off the end restored)."""
    payload = payload + b"\0" * ((-len(payload)) % 4)
    return np.frombuffer(payload, dtype="<u4").astype(np.uint32)


def read_varint(data: bytes, pos: int, error: str, max_bytes: int = MAX_VARINT_BYTES) -> tuple[int, int]:
    """(value, next position) of the varint at ``pos``; FormatError(``error``) past the end or beyond
    ``max_bytes`` bytes (a caller's own bound on what a field may hold)."""
    u = 0
    for i in range(max_bytes):
        if pos >= len(data):
            break
        b = data[pos]
        pos += 1
        u |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return u, pos
    raise FormatError(error)


class Reader:
    """Sequential reader over untrusted bytes: every read checks the remaining length first."""

    def __init__(self, data: bytes, what: str = "blob"):
        self.data = memoryview(bytes(data))
        self.pos = 0
        self.what = what

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or n > self.remaining():
            raise FormatError(f"{self.what} is truncated: needs {n} more bytes, has {self.remaining()}")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def varint(self, cap: int | None = None, name: str = "value") -> int:
        u = 0
        for i in range(MAX_VARINT_BYTES):
            b = self.byte()
            u |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                if cap is not None and u > cap:
                    raise FormatError(f"{self.what}: {name} {u} exceeds the cap {cap}")
                return u
        raise FormatError(f"{self.what}: varint longer than {MAX_VARINT_BYTES} bytes")

    def svarint(self, lo: int | None = None, hi: int | None = None, name: str = "value") -> int:
        v = unzigzag(self.varint(name=name))
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise FormatError(f"{self.what}: {name} {v} outside [{lo}, {hi}]")
        return v

    def f16(self) -> float:
        return float(struct.unpack("<e", self.take(2))[0])

    def f32(self) -> float:
        return float(struct.unpack("<f", self.take(4))[0])

    def array(self, dtype: str, n: int) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.take(n * dt.itemsize), dtype=dt).copy()

    def rest(self) -> bytes:
        return self.take(self.remaining())

    def expect_end(self) -> None:
        if self.remaining():
            raise FormatError(f"{self.what} has {self.remaining()} unexpected trailing bytes")
