"""Corpora, and the vocabulary that maps words to frequency-ranked ids: held in memory as flat id
arrays (:func:`load_corpus`, for corpora built in Python), or read from text files as training
goes (:func:`open_corpus`, Rust's ``TextCorpus``: memory does not grow with the corpus)."""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rustnce._rustnce import TextCorpus


class CorpusError(ValueError):
    """A corpus that cannot be trained on (missing, unreadable, empty, too small)."""


@dataclass(frozen=True)
class Vocabulary:
    """Words sorted by decreasing count (ties in order of first appearance), as word2vec sorts
    them, so that id ``k`` is the ``k``-th most frequent word: what the log-uniform sampler
    assumes."""

    words: tuple[str, ...]
    counts: np.ndarray  # int64 [V], non-increasing

    def __post_init__(self) -> None:
        if len(self.words) != len(self.counts):
            raise ValueError("words and counts differ in length")
        index = {word: i for i, word in enumerate(self.words)}
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index  # type: ignore[attr-defined]

    def id(self, word: str) -> int:
        """The id of ``word``; ``KeyError`` if it is not in the vocabulary."""
        return self._index[word]  # type: ignore[attr-defined]

    def get(self, word: str, default: int = -1) -> int:
        return self._index.get(word, default)  # type: ignore[attr-defined]

    @classmethod
    def from_counts(cls, counts: Counter[str] | dict[str, int], min_count: int = 1) -> Vocabulary:
        """Keeps words seen at least ``min_count`` times, most frequent first. ``counts`` must
        iterate in order of first appearance (a ``Counter`` filled while reading does)."""
        kept = [(word, count) for word, count in counts.items() if count >= min_count]
        kept.sort(key=lambda item: -item[1])  # stable: ties stay in order of first appearance
        return cls(tuple(word for word, _ in kept), np.array([c for _, c in kept], dtype=np.int64))


@dataclass(frozen=True)
class EncodedCorpus:
    """Token ids with the words below ``min_count`` already dropped (as word2vec and gensim
    drop them before windowing), and each token's sentence number, so that context windows
    never cross a sentence (a line of the input file)."""

    ids: np.ndarray  # int32 [N]
    sentences: np.ndarray  # int32 [N], non-decreasing
    raw_tokens: int  # tokens before dropping rare words

    def __len__(self) -> int:
        return len(self.ids)


def encode(sentences: Iterable[Sequence[str]], vocabulary: Vocabulary) -> EncodedCorpus:
    """Maps every token to its id, dropping words outside ``vocabulary``."""
    lookup = vocabulary.get
    ids: list[int] = []
    sentence_lengths: list[int] = []
    raw = 0
    for sentence in sentences:
        raw += len(sentence)
        encoded = [i for i in map(lookup, sentence) if i >= 0]
        ids.extend(encoded)
        sentence_lengths.append(len(encoded))
    id_array = np.array(ids, dtype=np.int32)
    numbers = np.repeat(
        np.arange(len(sentence_lengths), dtype=np.int32),
        np.array(sentence_lengths, dtype=np.int64),
    )
    return EncodedCorpus(id_array, numbers, raw)


def is_device(path: str) -> bool:
    """Whether ``path`` is a character or block device (``/dev/zero`` would never end)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def read_sentences(path: str | os.PathLike[str]) -> list[list[str]]:
    """Whitespace-tokenised text, one sentence per line (blank lines skipped). Raises
    :class:`CorpusError` for a missing, unreadable, non-text or empty file."""
    name = os.fspath(path)
    if os.path.isdir(name):
        raise CorpusError(f"corpus {name!r} is a directory, not a text file")
    if is_device(name):
        raise CorpusError(f"corpus {name!r} is a device, not a text file")
    try:
        with open(name, encoding="utf-8", errors="strict") as handle:
            sentences = [tokens for tokens in (line.split() for line in handle) if tokens]
    except FileNotFoundError:
        raise CorpusError(f"corpus file {name!r} does not exist") from None
    except UnicodeDecodeError as error:
        raise CorpusError(f"corpus {name!r} is not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise CorpusError(f"cannot read corpus {name!r}: {error.strerror or error}") from None
    if not sentences:
        raise CorpusError(f"corpus {name!r} is empty (no whitespace-separated tokens)")
    return sentences


def load_corpus(
    sentences: Sequence[Sequence[str]], min_count: int
) -> tuple[Vocabulary, EncodedCorpus]:
    """Counts the words, keeps those seen ``min_count`` times and encodes the corpus."""
    counts: Counter[str] = Counter()
    for sentence in sentences:
        counts.update(sentence)
    vocabulary = Vocabulary.from_counts(counts, min_count)
    if len(vocabulary) == 0:
        most = max(counts.values()) if counts else 0
        raise CorpusError(
            f"no word occurs at least --min-count={min_count} times "
            f"(the most frequent occurs {most} times)"
        )
    return vocabulary, encode(sentences, vocabulary)


def open_corpus(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    min_count: int,
    vocabulary: Vocabulary | None = None,
) -> tuple[Vocabulary, TextCorpus]:
    """Counts the words of text files (plain, gzip or bzip2, recognised by their first bytes;
    a directory stands for the files under it, hidden ones skipped, in order of their paths),
    read as :func:`read_sentences` reads them, and keeps those seen ``min_count`` times, or
    exactly the words of ``vocabulary`` with its counts (resuming a saved model). Training
    reads the files again every epoch (a changed file stops it with :class:`CorpusError`).
    Raises :class:`CorpusError` for missing, unreadable, corrupt, non-text or empty files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    names = [os.fspath(path) for path in paths]
    for name in names:
        if is_device(name):
            raise CorpusError(f"corpus {name!r} is a device, not a text file")
    try:
        if vocabulary is None:
            corpus = TextCorpus(names, min_count)
        else:
            corpus = TextCorpus(
                names, min_count, words=list(vocabulary.words), counts=vocabulary.counts
            )
    except OSError as error:
        raise CorpusError(str(error)) from None
    if corpus.raw_tokens == 0:
        raise CorpusError(
            f"corpus {', '.join(map(repr, names))} is empty (no whitespace-separated tokens)"
        )
    if vocabulary is None:
        if len(corpus.words) == 0:
            raise CorpusError(
                f"no word occurs at least --min-count={min_count} times "
                f"(the most frequent occurs {corpus.most_frequent_dropped} times)"
            )
        vocabulary = Vocabulary(tuple(corpus.words), corpus.counts)
    return vocabulary, corpus
