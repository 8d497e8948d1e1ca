"""Evaluation of word vectors: nearest-neighbour group purity against planted groups, and
Spearman correlation with human similarity judgements (WordSim-353 layout). NumPy only."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .corpus import Vocabulary, is_device


class SimilarityFileError(ValueError):
    """A similarity file that cannot be read or holds no word pairs."""


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


def nearest_neighbours(vectors: np.ndarray, k: int = 1, block: int = 1024) -> np.ndarray:
    """The ``k`` nearest other rows of every row by cosine similarity, nearest first:
    int64 ``[V, k]``."""
    unit = unit_rows(vectors)
    count = unit.shape[0]
    k = min(k, count - 1)
    result = np.empty((count, max(k, 0)), dtype=np.int64)
    if k <= 0:
        return result
    for start in range(0, count, block):
        stop = min(start + block, count)
        similarity = unit[start:stop] @ unit.T
        similarity[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
        result[start:stop] = np.take_along_axis(top, order, axis=1)
    return result


@dataclass(frozen=True)
class Purity:
    """Share of the labelled words whose nearest neighbours (among labelled words) share
    their group, at 1 and at ``k`` neighbours, with the chance level of random neighbours."""

    at_1: float
    at_k: float
    k: int
    chance: float
    words: int
    #: purity at 1 of the most frequent, middle and least frequent thirds of the words (rows
    #: are taken to be sorted by decreasing frequency, as the vocabulary is)
    by_frequency: tuple[float, float, float] = (math.nan, math.nan, math.nan)


def group_purity(vectors: np.ndarray, groups: np.ndarray, k: int = 10) -> Purity:
    """Nearest-neighbour (cosine) group purity of the rows whose ``groups`` label is >= 0,
    neighbours searched among those rows. ``chance`` is the expected purity of neighbours drawn
    at random (without the word itself): ``sum_g n_g (n_g - 1) / (n (n - 1))``."""
    groups = np.asarray(groups)
    labelled = np.flatnonzero(groups >= 0)
    n = labelled.size
    if n < 2:
        raise ValueError("group purity needs at least two labelled words")
    labels = groups[labelled]
    neighbours = nearest_neighbours(np.asarray(vectors)[labelled], k)
    same = labels[neighbours] == labels[:, None]
    sizes = np.bincount(labels).astype(np.float64)
    chance = float((sizes * (sizes - 1)).sum() / (n * (n - 1)))
    thirds = tuple(float(part.mean()) for part in np.array_split(same[:, 0], 3))
    return Purity(
        at_1=float(same[:, 0].mean()),
        at_k=float(same.mean()),
        k=same.shape[1],
        chance=chance,
        words=n,
        by_frequency=thirds if n >= 3 else (math.nan, math.nan, math.nan),  # type: ignore[arg-type]
    )


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (like ``scipy.stats.rankdata``)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1], True])
    # Tie block b spans sorted positions [boundaries[b], boundaries[b+1]); its average rank is
    # the mean of positions + 1.
    averages = (boundaries[:-1] + boundaries[1:] + 1) / 2.0
    block = np.repeat(np.arange(boundaries.size - 1), np.diff(boundaries))
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = averages[block]
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson correlation of average ranks); NaN when either
    side is constant or there are fewer than two values."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("spearman needs two 1-D arrays of the same length")
    if x.size < 2:
        return math.nan
    rx = rankdata(x) - (x.size + 1) / 2.0
    ry = rankdata(y) - (y.size + 1) / 2.0
    denominator = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if denominator == 0.0:
        return math.nan
    return float(rx @ ry) / denominator


def _text_lines(name: str, kind: str, error_class: type[ValueError]) -> list[str]:
    """The lines of a small UTF-8 evaluation file; each way it can fail is an ``error_class``
    whose message names the ``kind`` of file and its path."""
    if is_device(name):
        raise error_class(f"{kind} file {name!r} is a device, not a text file")
    try:
        with open(name, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except FileNotFoundError:
        raise error_class(f"{kind} file {name!r} does not exist") from None
    except IsADirectoryError:
        raise error_class(f"{kind} file {name!r} is a directory") from None
    except UnicodeDecodeError as error:
        raise error_class(f"{kind} file {name!r} is not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise error_class(f"cannot read {kind} file {name!r}: {error.strerror or error}") from None


def read_similarity_pairs(path: str | os.PathLike[str]) -> list[tuple[str, str, float]]:
    """Word pairs with a human score, one per line, tab-separated (WordSim-353 / SimLex-999
    layout: ``word1<TAB>word2<TAB>score[<TAB>...]``). Lines starting with ``#``, blank lines
    and lines whose third field is not a number (a header) are skipped. Lines without tabs are
    split on whitespace."""
    name = os.fspath(path)
    lines = _text_lines(name, "similarity", SimilarityFileError)
    pairs = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) < 3:
            continue
        try:
            score = float(fields[2])
        except ValueError:
            continue
        if math.isfinite(score):
            pairs.append((fields[0].strip(), fields[1].strip(), score))
    if not pairs:
        raise SimilarityFileError(
            f"similarity file {name!r} holds no word pairs (expected word1<TAB>word2<TAB>score)"
        )
    return pairs


@dataclass(frozen=True)
class SimilarityResult:
    spearman: float
    pairs: int
    used: int

    @property
    def oov_share(self) -> float:
        """Share of the pairs with a word outside the vocabulary (not used)."""
        return 1.0 - self.used / self.pairs if self.pairs else 0.0


def _case_insensitive_index(vocabulary: Vocabulary) -> dict[str, int]:
    """Lower-cased word -> id of its most frequent spelling."""
    index: dict[str, int] = {}
    for i, word in enumerate(vocabulary.words):
        index.setdefault(word.lower(), i)
    return index


def word_similarity(
    vectors: np.ndarray,
    vocabulary: Vocabulary,
    pairs: list[tuple[str, str, float]],
    case_insensitive: bool = True,
) -> SimilarityResult:
    """Spearman correlation between cosine similarities and human scores over the pairs whose
    words are both in the vocabulary (matched case-insensitively by default, as gensim's
    ``evaluate_word_pairs`` does)."""
    if case_insensitive:
        index = _case_insensitive_index(vocabulary)

        def lookup(word: str) -> int:
            return index.get(word.lower(), -1)

    else:
        lookup = vocabulary.get
    found = [(lookup(a), lookup(b), score) for a, b, score in pairs]
    found = [(a, b, s) for a, b, s in found if a >= 0 and b >= 0]
    if not found:
        return SimilarityResult(math.nan, len(pairs), 0)
    unit = unit_rows(vectors)
    first = np.array([a for a, _, _ in found])
    second = np.array([b for _, b, _ in found])
    human = np.array([s for _, _, s in found])
    cosine = np.einsum("ij,ij->i", unit[first], unit[second])
    return SimilarityResult(spearman(cosine, human), len(pairs), len(found))


class AnalogyFileError(ValueError):
    """An analogy file that cannot be read or holds no questions."""


#: Analogy questions are asked among this many most frequent words, as word2vec's
#: compute-accuracy does (gensim's ``evaluate_word_analogies(restrict_vocab=30000)``).
ANALOGY_VOCABULARY = 30_000


def read_analogies(path: str | os.PathLike[str]) -> list[tuple[str, list[tuple[str, ...]]]]:
    """Google's analogy file layout (``questions-words.txt``): ``: section`` lines, then one
    question ``a b c d`` per line (``a`` is to ``b`` as ``c`` is to ``d``). Returns the sections
    with their questions; lines of other lengths are refused with their number."""
    name = os.fspath(path)
    lines = _text_lines(name, "analogy", AnalogyFileError)
    sections: list[tuple[str, list[tuple[str, ...]]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.startswith(":"):
            sections.append((line[1:].strip(), []))
            continue
        words = tuple(line.split())
        if len(words) != 4:
            raise AnalogyFileError(
                f"analogy file {name!r}: line {number} has {len(words)} words, expected 4"
            )
        if not sections:
            sections.append(("questions", []))
        sections[-1][1].append(words)
    if not any(questions for _, questions in sections):
        raise AnalogyFileError(f"analogy file {name!r} holds no questions (expected 'a b c d')")
    return sections


@dataclass(frozen=True)
class AnalogySection:
    name: str
    correct: int
    asked: int  # questions whose four words are among the most frequent words
    questions: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.asked if self.asked else math.nan


@dataclass(frozen=True)
class AnalogyResult:
    sections: tuple[AnalogySection, ...]

    @property
    def correct(self) -> int:
        return sum(section.correct for section in self.sections)

    @property
    def asked(self) -> int:
        return sum(section.asked for section in self.sections)

    @property
    def questions(self) -> int:
        return sum(section.questions for section in self.sections)

    @property
    def accuracy(self) -> float:
        """Correct answers over the questions asked, all sections together."""
        return self.correct / self.asked if self.asked else math.nan


def word_analogies(
    vectors: np.ndarray,
    vocabulary: Vocabulary,
    sections: list[tuple[str, list[tuple[str, ...]]]],
    restrict: int = ANALOGY_VOCABULARY,
    block: int = 256,
) -> AnalogyResult:
    """Accuracy on analogy questions by 3CosAdd, as gensim's ``evaluate_word_analogies``: a
    question ``a b c d`` is asked when all four words are among the ``restrict`` most frequent
    (matched case-insensitively); the answer is the word, other than ``a``, ``b`` and ``c``,
    whose unit vector is nearest (cosine) to ``unit(b) − unit(a) + unit(c)``."""
    index: dict[str, int] = {}
    for i, word in enumerate(vocabulary.words[:restrict]):
        index.setdefault(word.lower(), i)
    unit = unit_rows(np.asarray(vectors)[: min(restrict, len(vocabulary))])
    results = []
    for name, questions in sections:
        ids = [tuple(index.get(word.lower(), -1) for word in q) for q in questions]
        asked = np.array([q for q in ids if min(q) >= 0], dtype=np.int64).reshape(-1, 4)
        correct = 0
        for start in range(0, len(asked), block):
            part = asked[start : start + block]
            target = unit[part[:, 1]] - unit[part[:, 0]] + unit[part[:, 2]]
            similarity = target @ unit.T
            rows = np.arange(len(part))
            for column in range(3):
                similarity[rows, part[:, column]] = -np.inf
            correct += int((similarity.argmax(axis=1) == part[:, 3]).sum())
        results.append(AnalogySection(name, correct, len(asked), len(questions)))
    return AnalogyResult(tuple(results))
