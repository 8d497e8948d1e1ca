"""A corpus generated from a planted-structure model, so that trained embeddings can be checked
against known truth.

The model: ``groups`` topics of ``group_size`` words each, plus ``function_words`` that belong
to no topic. Every sentence picks one topic uniformly; each of its tokens is a function word
with probability ``function_share``, otherwise a word of the sentence's topic with probability
``topic_share``, otherwise (noise) any topic word. Word frequencies are Zipfian: topic words
have global ranks interleaved across topics (word ``j`` of topic ``g`` has rank ``j * groups +
g``), so each topic has words at every frequency, and weight ``1 / (rank + offset) ** exponent``;
function words are Zipfian among themselves and make the head of the distribution, as in real
text. Words that share a topic share their contexts, so good embeddings put them together:
:func:`rustnce.word2vec.evaluation.group_purity` measures how often a word's nearest neighbour
is in its own topic.

Generation is deterministic for a given seed (NumPy's PCG64 with ``random`` and ``integers``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .atomic import replaced_atomically
from .corpus import CorpusError, EncodedCorpus, Vocabulary


@dataclass(frozen=True)
class PlantedCorpus:
    """Token ids in the model's own word numbering (function words first, then topic words by
    rank), sentence numbers, word names and each word's topic (-1 for function words)."""

    ids: np.ndarray  # int32 [N]
    sentences: np.ndarray  # int32 [N]
    words: tuple[str, ...]
    groups: np.ndarray  # int32 [W], -1 for function words
    num_groups: int

    def __len__(self) -> int:
        return len(self.ids)

    def sentence_tokens(self) -> Iterator[list[str]]:
        """The sentences as lists of words."""
        starts = np.flatnonzero(np.r_[True, self.sentences[1:] != self.sentences[:-1]])
        ends = np.r_[starts[1:], len(self.ids)]
        words = self.words
        for start, end in zip(starts.tolist(), ends.tolist()):
            yield [words[i] for i in self.ids[start:end].tolist()]

    def write(self, path: str | os.PathLike[str]) -> None:
        """Writes the corpus as text, one sentence per line (what ``--corpus`` reads)."""
        with replaced_atomically(path, "w", encoding="utf-8") as handle:
            for tokens in self.sentence_tokens():
                handle.write(" ".join(tokens))
                handle.write("\n")

    def training_data(self, min_count: int) -> tuple[Vocabulary, EncodedCorpus, np.ndarray]:
        """The vocabulary (sorted by observed count), the encoded corpus and each vocabulary
        word's topic (-1 for function words), as :func:`rustnce.word2vec.corpus.load_corpus`
        would produce from :meth:`write`'s text."""
        observed = np.bincount(self.ids, minlength=len(self.words))
        # Ties in order of first appearance, as when reading the text.
        first = np.full(len(self.words), len(self.ids), dtype=np.int64)
        np.minimum.at(first, self.ids, np.arange(len(self.ids), dtype=np.int64))
        seen = np.flatnonzero(observed > 0)
        seen = seen[np.argsort(first[seen], kind="stable")]
        counts = {self.words[i]: int(observed[i]) for i in seen.tolist()}
        vocabulary = Vocabulary.from_counts(counts, min_count)
        if len(vocabulary) == 0:
            raise CorpusError(f"no word occurs at least --min-count={min_count} times")
        remap = np.full(len(self.words), -1, dtype=np.int32)
        model_index = {word: i for i, word in enumerate(self.words)}
        order = np.array([model_index[w] for w in vocabulary.words], dtype=np.int64)
        remap[order] = np.arange(len(vocabulary), dtype=np.int32)
        mapped = remap[self.ids]
        keep = mapped >= 0
        encoded = EncodedCorpus(mapped[keep], self.sentences[keep], len(self.ids))
        return vocabulary, encoded, self.groups[order]


def planted_corpus(
    tokens: int = 500_000,
    groups: int = 50,
    group_size: int = 40,
    function_words: int = 50,
    function_share: float = 0.25,
    topic_share: float = 0.35,
    exponent: float = 1.0,
    offset: float = 5.0,
    sentence_length: tuple[int, int] = (8, 20),
    seed: int = 0,
) -> PlantedCorpus:
    """Generates ``tokens`` tokens from the planted-structure model described in the module
    docstring."""
    if tokens < 1 or groups < 1 or group_size < 1 or function_words < 0:
        raise ValueError("tokens, groups and group_size must be positive")
    if not (0.0 <= function_share < 1.0 and 0.0 <= topic_share <= 1.0):
        raise ValueError("function_share must be in [0, 1) and topic_share in [0, 1]")
    if function_words == 0:
        function_share = 0.0
    low, high = sentence_length
    rng = np.random.default_rng(seed)

    # Sentence lengths and topics.
    lengths = rng.integers(low, high + 1, size=tokens // low + 1)
    ends = np.cumsum(lengths)
    count = int(np.searchsorted(ends, tokens)) + 1
    lengths = lengths[:count]
    lengths[-1] -= int(ends[count - 1]) - tokens
    sentence_numbers = np.repeat(np.arange(count, dtype=np.int32), lengths)
    topic = np.repeat(rng.integers(0, groups, size=count), lengths)

    # Word weights: topic word j of group g has rank j * groups + g.
    ranks = np.arange(group_size)[None, :] * groups + np.arange(groups)[:, None]  # [G, m]
    weight = 1.0 / (ranks + offset) ** exponent
    within = np.cumsum(weight / weight.sum(axis=1, keepdims=True), axis=1)
    within[:, -1] = 1.0
    flat_rank_weight = weight.T.reshape(-1)  # ids by rank: rank r is j = r // G, g = r % G
    overall = np.cumsum(flat_rank_weight / flat_rank_weight.sum())
    overall[-1] = 1.0
    function_weight = 1.0 / (np.arange(function_words) + 1.0)
    function_cum = np.cumsum(function_weight / max(function_weight.sum(), 1e-300))
    if function_words:
        function_cum[-1] = 1.0

    # Each token's kind, then its word. Model ids: function words 0..F-1, then topic words by
    # rank (F + j * groups + g).
    kind = rng.random(tokens)
    is_function = kind < function_share
    is_topic = ~is_function & (kind < function_share + (1.0 - function_share) * topic_share)
    is_noise = ~is_function & ~is_topic
    ids = np.empty(tokens, dtype=np.int32)
    ids[is_function] = np.searchsorted(
        function_cum, rng.random(int(is_function.sum())), side="right"
    )
    g = topic[is_topic]
    # One search over all groups' tables laid end to end: table g occupies (g, g + 1].
    tables = (within + np.arange(groups)[:, None]).ravel()
    j = np.searchsorted(tables, rng.random(g.size) + g, side="right")
    j = np.minimum(j - g * group_size, group_size - 1)
    ids[is_topic] = function_words + j * groups + g
    noise_rank = np.searchsorted(overall, rng.random(int(is_noise.sum())), side="right")
    ids[is_noise] = function_words + np.minimum(noise_rank, groups * group_size - 1)

    width = len(str(max(groups, group_size) - 1))
    names = [f"fn{i:0{len(str(max(function_words - 1, 0)))}d}" for i in range(function_words)]
    membership = [-1] * function_words
    for rank in range(groups * group_size):
        jj, gg = divmod(rank, groups)
        names.append(f"g{gg:0{width}d}w{jj:0{width}d}")
        membership.append(gg)
    return PlantedCorpus(
        ids,
        sentence_numbers,
        tuple(names),
        np.array(membership, dtype=np.int32),
        groups,
    )
