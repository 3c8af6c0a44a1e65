"""Atomic writes and file hashing: the one writer every results file goes through, and the one file hasher.

A write goes to a temporary file in the target's directory, is flushed and fsync'ed, renamed over the target
(`os.replace`: a reader sees the old file or the new one, never half of one), and the directory is fsync'ed so the
rename itself survives a crash (DESIGN.md invariant 6). It sits below every subpackage so that `evaluate` (policy
files) and `study` (the results directory) share it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator


def fsync_dir(path: str | Path) -> None:
    """fsync a directory (so a rename inside it is durable); a file system that refuses is ignored."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_target(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside `path` (ending in `suffix`, for writers that pick a format by extension) to write;
    on success it is fsync'ed and renamed to `path` and the directory fsync'ed, on any error it is removed and `path`
    is left as it was. The one rename-into-place rule of the package."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(fh)` on a temporary binary file beside `path`, fsync it, rename it to `path`, fsync the directory
    → `path`. On any error the temporary file is removed and `path` is left as it was."""
    with atomic_target(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """`text` as UTF-8 (newlines written as given) to `path` atomically → `path`."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda fh: fh.write(data))


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
