"""Files of parts: packing, random access to one part, and hostile part tables."""

import pytest

from inrcodec.container import Container, read_container, write_container
from inrcodec.errors import FormatError
from inrcodec.parts import pack_parts, part_count, read_part

DESC = {"kind": "array", "shape": [4, 5, 1], "dtype": "float32", "range": [0.0, 1.0], "meta": {}}


def _inner(i: int) -> bytes:
    return write_container(Container(DESC, "fourier", {"seed": i}, {"weights": bytes([i]) * (i + 1)}))


def test_parts_round_trip_and_random_access():
    data = pack_parts(DESC, "tiled", {"tiles": 3}, [_inner(i) for i in range(3)], shared={"coords": b"xyz"})
    outer = read_container(data)
    assert outer.model == "tiled" and outer.config == {"tiles": 3} and outer.sections["coords"] == b"xyz"
    assert part_count(outer) == 3
    for i in range(3):
        inner = read_part(outer, i)
        assert inner.config == {"seed": i} and inner.sections["weights"] == bytes([i]) * (i + 1)
    with pytest.raises(FormatError, match="no part 3"):
        read_part(outer, 3)


def test_part_table_with_gaps_or_odd_names_is_refused():
    gap = read_container(write_container(Container(DESC, "tiled", {}, {"part:0": _inner(0), "part:2": _inner(2)})))
    with pytest.raises(FormatError, match="numbered"):
        part_count(gap)
    odd = read_container(write_container(Container(DESC, "tiled", {}, {"part:01": _inner(0)})))
    with pytest.raises(FormatError, match="malformed"):
        part_count(odd)


def test_corrupt_inner_part_is_a_format_error():
    outer = read_container(pack_parts(DESC, "tiled", {}, [b"INRC\x01garbage"]))
    with pytest.raises(FormatError):
        read_part(outer, 0)


def test_shared_section_may_not_look_like_a_part():
    with pytest.raises(ValueError):
        pack_parts(DESC, "tiled", {}, [], shared={"part:0": b""})
