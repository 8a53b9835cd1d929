"""Files made of parts: the GOPs of a video, the tiles of a large field, the variables of a dataset.

A part is an independent fit with its own model, config and sections, so it is stored as a complete inner
``.inrc`` (``write_container`` bytes) inside one section of an outer container. The outer container's ``model``
names the *layout* (``"video"``, ``"dataset"``, ``"tiled"`` ...), its ``config`` says what the whole needs (frame
rate, part boundaries, coords, attrs), and sections that are not parts carry shared bytes (an audio track, the
coordinates). This keeps:

- **bounded memory**: a part is encoded and decoded alone;
- **parallel encoding**: parts are independent tasks (threads now, Dask tasks in ``batch``);
- **random access**: ``read_part(c, i)`` parses only part ``i`` (``decode --frames A:B``, one variable);
- **one parser**: an inner part is read by the same ``read_container`` (caps, CRCs) as any single-part file, and
  files written before parts existed are single-part files that stay readable.

Layouts register a decoder with ``register_layout`` so that ``inrcodec.codec`` and the CLI can dispatch on the
outer model name without importing every modality.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .container import Container, read_container, write_container
from .errors import FormatError

PART_PREFIX = "part:"


def part_section(index: int) -> str:
    return f"{PART_PREFIX}{index}"


def pack_parts(signal: dict[str, Any], layout: str, config: dict[str, Any], parts: Sequence[bytes],
               shared: dict[str, bytes] | None = None, extra: dict[str, Any] | None = None) -> bytes:
    """Outer container holding ``parts`` (each a complete ``.inrc``) and ``shared`` sections."""
    sections: dict[str, bytes] = {}
    for name, payload in (shared or {}).items():
        if name.startswith(PART_PREFIX):
            raise ValueError(f"shared section name {name!r} collides with the part prefix")
        sections[name] = payload
    for i, payload in enumerate(parts):
        sections[part_section(i)] = bytes(payload)
    return write_container(Container(signal, layout, config, sections, extra or {}))


def part_count(c: Container) -> int:
    """Number of parts; they must be numbered 0..n-1 without gaps (checked: a hostile table may not)."""
    indices = []
    for name in c.sections:
        if name.startswith(PART_PREFIX):
            tail = name[len(PART_PREFIX):]
            if not tail.isdigit() or (len(tail) > 1 and tail[0] == "0"):
                raise FormatError(f"malformed part section name {name!r}")
            indices.append(int(tail))
    if sorted(indices) != list(range(len(indices))):
        raise FormatError("part sections are not numbered 0..n-1")
    return len(indices)


def read_part(c: Container, index: int) -> Container:
    """Parse part ``index`` of an outer container (same checks as a whole file)."""
    name = part_section(index)
    if name not in c.sections:
        raise FormatError(f"file has no part {index}")
    return read_container(c.sections[name])


# layout name -> decoder(container, **options). Registered by the modules that write that layout.
LAYOUTS: dict[str, Callable[..., Any]] = {}


def register_layout(name: str, decoder: Callable[..., Any]) -> None:
    LAYOUTS[name] = decoder


def is_layout(c: Container) -> bool:
    return c.model in LAYOUTS
