"""word2vec's text format (a ``"<count> <dim>"`` header line, then one ``"word v1 v2 ..."`` line
per word) and binary format; gensim reads them with ``KeyedVectors.load_word2vec_format(path,
binary=False / True)``. Also the saved model (both tables, biases, vocabulary, counts, settings and
epochs done) from which training resumes."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Sequence
from typing import Any

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


def save_word2vec_binary(
    path: str | os.PathLike[str], words: Sequence[str], vectors: np.ndarray
) -> None:
    """Writes word2vec's binary format: the ``"<count> <dim>"`` header line, then per word its
    UTF-8 bytes, a space, ``dim`` little-endian float32 values and a newline (as word2vec.c
    writes it; gensim reads it with ``binary=True``). Written under a temporary name and
    renamed into place."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"vectors must have shape [{len(words)}, dim], got {vectors.shape}")
    for word in words:
        if not word or len(word.split()) != 1 or word.split()[0] != word:
            raise ValueError(f"word {word!r} is empty or contains whitespace")
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    with replaced_atomically(path, "wb") as handle:
        handle.write(f"{rows.shape[0]} {rows.shape[1]}\n".encode())
        for word, row in zip(words, rows):
            handle.write(word.encode("utf-8") + b" ")
            handle.write(row.tobytes())
            handle.write(b"\n")


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


MODEL_FORMAT = "rustnce-skipgram-model-1"


def save_model(
    path: str | os.PathLike[str],
    words: Sequence[str],
    counts: np.ndarray,
    tables: tuple[np.ndarray, np.ndarray, np.ndarray],
    settings: dict[str, Any],
    epochs_done: int,
) -> None:
    """A NumPy ``.npz`` archive (no pickles) of the input and output vectors, biases,
    vocabulary, counts, the training settings (JSON) and the epochs done; written under a
    temporary name and renamed into place."""
    input_vectors, output_vectors, biases = tables
    header = {"format": MODEL_FORMAT, "settings": settings, "epochs_done": epochs_done}
    with replaced_atomically(path, "wb") as handle:
        np.savez(
            handle,
            header=np.array(json.dumps(header)),
            words=np.array(list(words), dtype=str),
            counts=np.asarray(counts, dtype=np.int64),
            input_vectors=input_vectors,
            output_vectors=output_vectors,
            biases=biases,
        )


def load_model(
    path: str | os.PathLike[str],
) -> tuple[list[str], np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray], dict[str, Any], int]:
    """Reads :func:`save_model`'s archive: ``(words, counts, (input, output, biases), settings,
    epochs_done)``; ``VectorFileError`` for anything else."""
    name = os.fspath(path)
    try:
        with np.load(name, allow_pickle=False) as archive:
            header = json.loads(str(archive["header"]))
            words = [str(word) for word in archive["words"]]
            counts = archive["counts"].astype(np.int64)
            tables = tuple(
                archive[key].astype(np.float32)
                for key in ("input_vectors", "output_vectors", "biases")
            )
    except FileNotFoundError:
        raise VectorFileError(f"model {name!r} does not exist") from None
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise VectorFileError(f"{name!r} is not a rustnce model ({error})") from None
    if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
        raise VectorFileError(f"{name!r} is not a rustnce model (format {MODEL_FORMAT})")
    size = len(words)
    input_vectors, output_vectors, biases = tables
    if (
        counts.shape != (size,)
        or input_vectors.ndim != 2
        or input_vectors.shape[0] != size
        or output_vectors.shape != input_vectors.shape
        or biases.shape != (size,)
    ):
        raise VectorFileError(f"model {name!r}: its tables do not match its {size} words")
    return (
        words,
        counts,
        (input_vectors, output_vectors, biases),
        header["settings"],
        int(header["epochs_done"]),
    )
