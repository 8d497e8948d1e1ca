"""Files written whole or not at all: the content goes to a temporary file in the destination's
directory, which is renamed over the destination only once it is complete. An interrupted write
(an exception, SIGINT) leaves the previous file untouched and no temporary behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any


@contextlib.contextmanager
def replaced_atomically(
    path: str | os.PathLike[str], mode: str = "w", **options: Any
) -> Iterator[IO[Any]]:
    """Opens a temporary file beside ``path`` (``mode`` ``"w"`` or ``"wb"``, ``options`` as for
    :func:`open`); on a normal exit it is flushed, synced and renamed to ``path``."""
    name = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(name))
    descriptor, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(name)}.", suffix=".partial"
    )
    try:
        with open(descriptor, mode, **options) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raises ``OSError`` unless a file can be created beside ``path`` and ``path`` is not a
    directory (what :func:`replaced_atomically` needs), without touching ``path`` itself."""
    name = os.fspath(path)
    if os.path.isdir(name):
        raise IsADirectoryError(21, "is a directory", name)
    directory = os.path.dirname(os.path.abspath(name))
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".rustnce-check.")
    os.close(descriptor)
    os.unlink(temporary)
