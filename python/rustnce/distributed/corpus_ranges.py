"""The corpus as byte ranges of its files, each made of whole lines, so that workers read
their own part without a coordinator; and the vocabulary counted over those ranges as a
map (one Ray task per range) and a reduce (merged in range order, so that words tied in count
keep the order of their first appearance, exactly as :func:`rustnce.word2vec.load_corpus`)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

from ..word2vec.corpus import CorpusError, Vocabulary


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``[start, end)`` of ``path``: whole lines."""

    path: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


def split_file(path: str, parts: int) -> list[ByteRange]:
    """``parts`` ranges of about equal size, each cut moved forward to the next line start
    (a range may be empty when lines are long). Raises :class:`CorpusError` for a missing,
    unreadable or empty file."""
    name = os.fspath(path)
    if os.path.isdir(name):
        raise CorpusError(f"corpus {name!r} is a directory, not a text file")
    try:
        size = os.path.getsize(name)
        cuts = [0]
        with open(name, "rb") as handle:
            for part in range(1, parts):
                target = max(size * part // parts, cuts[-1])
                if target >= size:
                    cuts.append(size)
                    continue
                handle.seek(target)
                if target > 0:
                    handle.seek(target - 1)
                    if handle.read(1) != b"\n":
                        handle.readline()
                cuts.append(min(handle.tell(), size))
    except FileNotFoundError:
        raise CorpusError(f"corpus file {name!r} does not exist") from None
    except OSError as error:
        raise CorpusError(f"cannot read corpus {name!r}: {error.strerror or error}") from None
    if size == 0:
        raise CorpusError(f"corpus {name!r} is empty (no whitespace-separated tokens)")
    cuts.append(size)
    return [ByteRange(name, cuts[i], cuts[i + 1]) for i in range(parts)]


def read_range(part: ByteRange) -> list[list[str]]:
    """The range's sentences: whitespace-separated tokens, one sentence per line, blank lines
    skipped (as :func:`rustnce.word2vec.read_sentences`)."""
    try:
        with open(part.path, "rb") as handle:
            handle.seek(part.start)
            data = handle.read(part.size)
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusError(f"corpus {part.path!r} is not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise CorpusError(f"cannot read corpus {part.path!r}: {error.strerror or error}") from None
    return [tokens for tokens in (line.split() for line in text.splitlines()) if tokens]


def count_range(part: ByteRange) -> Counter[str]:
    """The map step: word counts of one range, in order of first appearance."""
    counts: Counter[str] = Counter()
    for sentence in read_range(part):
        counts.update(sentence)
    return counts


def merge_counts(parts: list[Counter[str]], min_count: int) -> Vocabulary:
    """The reduce step: the counts of ranges given in file order, then the vocabulary."""
    total: Counter[str] = Counter()
    for counts in parts:
        total.update(counts)
    if not total:
        raise CorpusError("the corpus is empty (no whitespace-separated tokens)")
    vocabulary = Vocabulary.from_counts(total, min_count)
    if len(vocabulary) == 0:
        raise CorpusError(
            f"no word occurs at least --min-count={min_count} times "
            f"(the most frequent occurs {max(total.values())} times)"
        )
    return vocabulary
