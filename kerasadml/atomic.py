"""Atomic file writes: data go to a temporary file in the same folder, are flushed to
disk, and the file is renamed over the target with ``os.replace``. An interrupted writer
never leaves a truncated file behind, and whatever was at the target stays intact."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", fsync: bool = True, **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``.

    Args:
        path: the final file. Parent folders are created.
        mode: ``"w"`` (text) or ``"wb"`` (binary).
        fsync: flush to disk before the rename (off only for bulk, re-makeable files).
        **kwargs: passed to ``open`` (e.g. ``encoding``, ``newline``).

    Example:

    >>> with atomic_open("/tmp/kerasadml_example.txt") as handle:
    ...     _ = handle.write("hello")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; use the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w", newline="\n") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, payload, **dump_kwargs) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically."""
    dump_kwargs.setdefault("indent", 2)
    atomic_write_text(path, json.dumps(payload, **dump_kwargs))


def fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # e.g. directories cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file, read in 1 MB blocks (checkpoints, preset weights
    and SynthPhrase clips are verified with it).

    Args:
        path: the file.

    Raises:
        OSError: the file cannot be read.

    Example:
        >>> sha256_file(__file__) == sha256_file(__file__)
        True
    """
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
