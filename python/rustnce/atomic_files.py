"""Files written whole or not at all: the content goes to a temporary file in the destination's
directory, is flushed to disk, and is renamed over the destination only when complete. An
interruption (an exception, Ctrl-C, a kill) leaves the previous file untouched; at worst a
temporary file named ``.<name>.<random>.tmp`` remains."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", **open_arguments: Any
) -> Iterator[IO[Any]]:
    """``with atomic_write(path) as handle: ...`` writes ``path`` atomically. A symbolic link at
    ``path`` is replaced by the new file, not written through."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    destination = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(destination))
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(destination)}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, mode, **open_arguments) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raises ``OSError`` unless a file can be created beside ``path`` and renamed onto it
    (what :func:`atomic_write` will do): the directory exists and is writable, and ``path``
    is not a directory."""
    destination = os.fspath(path)
    if os.path.isdir(destination):
        raise IsADirectoryError(f"{destination!r} is a directory")
    directory = os.path.dirname(os.path.abspath(destination))
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(destination)}.", suffix=".tmp"
    )
    os.close(descriptor)
    os.unlink(temporary)
