"""word2vec's text format: a ``"<count> <dim>"`` header line, then one ``"word v1 v2 ..."`` line
per word. gensim reads it with ``KeyedVectors.load_word2vec_format(path, binary=False)``."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np

from .atomic import replaced_atomically


class VectorFileError(ValueError):
    """A file that is not in word2vec text format."""


def save_word2vec_format(
    path: str | os.PathLike[str], words: Sequence[str], vectors: np.ndarray, precision: int = 6
) -> None:
    """Writes ``vectors`` (``[len(words), dim]``) in word2vec text format, UTF-8, with
    ``precision`` significant digits. Words must be non-empty and free of whitespace. The file
    is written under a temporary name and renamed into place."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"vectors must have shape [{len(words)}, dim], got {vectors.shape}")
    for word in words:
        if not word or len(word.split()) != 1 or word.split()[0] != word:
            raise ValueError(f"word {word!r} is empty or contains whitespace")
    count, dim = vectors.shape
    buffer = io.StringIO()
    np.savetxt(buffer, vectors, fmt=f"%.{precision}g", delimiter=" ")
    rows = buffer.getvalue().splitlines() if count else []
    with replaced_atomically(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(f"{count} {dim}\n")
        for word, row in zip(words, rows):
            handle.write(word)
            handle.write(" ")
            handle.write(row)
            handle.write("\n")


def load_word2vec_format(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """Reads a word2vec text file: ``(words, float32 vectors [count, dim])``. Checks the
    header against the rows."""
    name = os.fspath(path)
    with open(name, encoding="utf-8") as handle:
        header = handle.readline().split()
        if len(header) != 2 or not all(field.isdigit() for field in header):
            raise VectorFileError(f"{name!r}: the first line must be '<count> <dim>'")
        count, dim = int(header[0]), int(header[1])
        words: list[str] = []
        vectors = np.empty((count, dim), dtype=np.float32)
        for number, line in enumerate(handle, start=2):
            fields = line.rstrip("\n").split(" ")
            if fields and fields[-1] == "":
                fields.pop()  # some writers end rows with a space
            if not fields or (len(fields) == 1 and not fields[0]):
                continue
            if len(words) == count:
                raise VectorFileError(f"{name!r}: more than {count} rows (line {number})")
            if len(fields) != dim + 1:
                raise VectorFileError(
                    f"{name!r}: line {number} has {len(fields) - 1} values, expected {dim}"
                )
            try:
                vectors[len(words)] = np.array(fields[1:], dtype=np.float32)
            except ValueError:
                raise VectorFileError(f"{name!r}: line {number} holds a non-number") from None
            words.append(fields[0])
    if len(words) != count:
        raise VectorFileError(f"{name!r}: header says {count} rows, found {len(words)}")
    return words, vectors
