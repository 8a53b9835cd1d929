"""Atomic file output: write to a hidden temporary file next to the target, then ``os.replace`` it into place.

A reader never sees a half-written file, and when the writer raises (bad input, full disk, Ctrl-C) nothing is left
behind: the CLI contract promises "no partial output file" on exit code 2.

    with atomic_output("out/kodim01.png") as tmp:   # tmp: Path("out/.kodim01.png.<random>.png")
        imageio.imwrite(tmp, array)                # libraries that pick a format by suffix still see ".png"
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from ..errors import InputError

__all__ = ["atomic_output", "atomic_write", "write_bytes_atomic", "check_output_path"]


def check_output_path(path: str | os.PathLike) -> Path:
    """The target as a Path, after the checks a user can get wrong (missing folder, target is a folder)."""
    p = Path(path)
    if p.name in ("", ".", ".."):
        raise InputError(f"{path}: not a file name")
    if p.is_dir():
        raise InputError(f"{path}: is a directory")
    parent = p.parent
    if not parent.is_dir():
        raise InputError(f"{path}: directory {str(parent)!r} does not exist")
    return p


def _default_mode() -> int:
    # mkstemp creates 0600 files; give the final file the mode a plain open() would (0666 minus umask).
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's directory (same suffix); on success move it onto ``path``.

    If the body raises, the temporary file is removed and the exception propagates; ``path`` is untouched
    (an existing file there keeps its old content).
    """
    target = check_output_path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"writer did not create {tmp}")  # e.g. a library that renamed its output
        os.chmod(tmp, _default_mode())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):  # full disk, quota, file too large, read-only file system: the user's to fix
            raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Like ``open(path, mode)`` for writing, but atomic: the file appears only when the block succeeds."""
    if not mode.startswith("w"):
        raise ValueError("atomic_write only supports write modes ('w', 'wb', ...)")
    with atomic_output(path) as tmp:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
