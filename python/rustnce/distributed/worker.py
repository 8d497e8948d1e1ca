"""One data-parallel skip-gram worker (the class behind each worker Ray actor).

It reads its byte range of the corpus, encodes it with the shared vocabulary and cuts it into
blocks of whole sentences. A unit of work is one block for one epoch (redone whole if the worker
dies). The worker keeps a local copy of the three tables (input vectors, output vectors,
biases) and trains a unit with the single-process trainer's Rust loop
(``rustnce._rustnce.SkipGramTrainer``: subsampling, pairs, negatives, the skip-gram updates,
the learning-rate schedule), called for one chunk of about ``chunk_words``
corpus words at a time. After each chunk it pushes the chunk's row-sparse delta (the rows whose
values the chunk changed, and by how much) and pulls the rows the next chunk will touch, in one
message per shard (the shard applies the push, then reads), and writes them into the local copy.

With ``overlap`` the pull for chunk ``k + 1`` leaves before chunk ``k`` is trained, in the same
message as chunk ``k - 1``'s push, so the wait is hidden behind the training; the rows then miss
chunk ``k``'s own changes, which the worker adds to the rows both chunks touch. It is off by
default: the rows are a chunk staler, and on the planted corpus that costs more quality than
the hidden wait gains speed (``docs/scaling.md``).

The rows a chunk touches are its words (centers and contexts: the corpus slice it covers, with
a margin for the window and the last batch) and the ``head_rows`` most frequent words (ids are
frequency ranks; by default none, as a chunk's own words hold the frequent ones). A negative
outside them is read from the local copy, refreshed whole at the start of every unit. Deltas
are found by comparing the local copy with the values last synchronised, so every change the
trainer makes is pushed exactly once, whichever rows it touched.

Staleness bound. A step reads the rows of its chunk's words as pulled at the chunk's start
(with ``overlap``, one chunk earlier), holding all of this worker's own earlier changes; other
rows as of the unit's start plus this worker's changes. Another worker's changes reach the
shards at the end of its chunk, so with workers of equal speed a step misses at most the last
``2 * chunk_words`` words of each other worker's training (``3 * chunk_words`` with
``overlap``).

Merging. By default (``merge="sum"``) the shards add every delta. With ``merge="touches"`` two
workers' concurrent moves of the same output vector are not simply added: with each
output-vector and bias delta the worker sends, per row, its touches in the chunk (the word's
occurrences in the corpus words the chunk trained; at least 1 for a row moved only as a
negative) and the row's touch total on the shards when it last synchronised the row, and the
shard scales the delta by ``touches / (touches + others)``, ``others`` being the touches other
workers pushed to the row since (see :class:`rustnce.distributed.shards.TableShard`). Input
vectors are always summed. Rows one worker moves alone keep their whole delta, so one worker
reproduces the single-process trainer under either rule. ``"touches"`` keeps more quality at
chunks of 3,000-20,000 words after 3 epochs but learns more slowly early on (after 1 and 2
epochs it is far behind), so it is not the default (``docs/scaling.md``).

The learning rate decays as in the single-process trainer with the share of the worker's own
range done: the trainer of unit (epoch ``e``, block ``b`` of ``B``) runs its block as epoch
``e * B + b`` of ``epochs * B``, which is the same linear schedule when blocks are equal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

import rustnce
from rustnce import _rustnce

from ..word2vec.corpus import Vocabulary, encode
from ..word2vec.training import TrainingConfig, TrainingDiverged
from .corpus_ranges import ByteRange, read_range
from .shards import PendingPull, ShardedTable

TABLES = ("input", "output", "bias")
# The tables whose concurrent deltas the shards merge touch-weighted (merge="touches"); the
# input vectors' deltas are summed (docs/scaling.md says why).
TOUCH_WEIGHTED = ("output", "bias")


@dataclass
class Changes:
    """A chunk's row-sparse changes per table (``updates[name] = (ids, delta)``) and, for the
    touch-weighted merge, ``touches[name] = (counts, seen)`` for the same rows."""

    updates: dict[str, tuple[np.ndarray, np.ndarray]]
    touches: dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass
class UnitStats:
    """What training one block for one epoch did, and where its time went."""

    worker: int
    epoch: int
    block: int
    words: int = 0
    pairs: int = 0
    loss: float = 0.0
    chunks: int = 0
    messages: int = 0  # calls to shard actors
    rows_pulled: int = 0  # rows of each table pulled for chunks (biases ride with outputs)
    rows_pushed: int = 0  # rows of the three tables pushed
    refresh_bytes: int = 0  # the whole tables pulled at the unit's start
    bytes_pulled: int = 0  # for chunks
    bytes_pushed: int = 0
    seconds: float = 0.0
    refresh_seconds: float = 0.0  # pulling the whole tables at the start
    train_seconds: float = 0.0  # the Rust trainer: pairs, negatives, fused steps
    diff_seconds: float = 0.0  # finding the changed rows and their deltas
    send_seconds: float = 0.0  # splitting rows by shard and submitting the messages
    wait_seconds: float = 0.0  # waiting for pulled rows (and the last push)
    merge_seconds: float = 0.0  # writing pulled rows into the local copy
    rate: float = 0.0  # the learning rate of the last step


def _blocks(sentences: np.ndarray, block_tokens: int) -> list[tuple[int, int]]:
    """Token ranges of whole sentences, about ``block_tokens`` each."""
    n = sentences.size
    if n == 0:
        return []
    bounds = [0]
    while bounds[-1] < n:
        target = bounds[-1] + block_tokens
        if target >= n:
            bounds.append(n)
            break
        # Move the cut to the next sentence start.
        sentence = sentences[target]
        bounds.append(int(np.searchsorted(sentences, sentence, side="right")))
    return list(zip(bounds[:-1], bounds[1:]))


class SkipGramWorker:
    """A worker: its corpus range, encoded, a local copy of the tables, and the training of one
    unit at a time."""

    def __init__(
        self,
        index: int,
        part: ByteRange,
        vocabulary: Vocabulary,
        config: TrainingConfig,
        table: ShardedTable,
        block_tokens: int,
        chunk_words: int,
        threads: int,
        head_rows: int = 0,
        overlap: bool = False,
        merge: str = "sum",
    ) -> None:
        self.index = index
        self.config = config
        self.table = table
        self.chunk_words = chunk_words
        self.overlap = overlap
        self.merge = merge
        self.vocabulary_size = len(vocabulary)
        self.head = np.arange(min(head_rows, self.vocabulary_size), dtype=np.int64)
        self.counts = np.ascontiguousarray(vocabulary.counts, dtype=np.int64)
        corpus = encode(read_range(part), vocabulary)
        self.ids = np.ascontiguousarray(corpus.ids, dtype=np.int32)
        self.sentences = np.ascontiguousarray(corpus.sentences, dtype=np.int32)
        self.block_bounds = _blocks(self.sentences, block_tokens)
        size, dim = self.vocabulary_size, config.dim
        # The local copy, and its values as last synchronised with the shards.
        self.local = {
            "input": np.zeros((size, dim), np.float32),
            "output": np.zeros((size, dim), np.float32),
            "bias": np.zeros(size, np.float32),
        }
        self.synced = {name: values.copy() for name, values in self.local.items()}
        # For the touch-weighted tables: each row's touch total on the shards when this worker
        # last synchronised the row, plus this worker's own touches pushed since.
        self.seen = {name: np.zeros(size, np.float64) for name in TOUCH_WEIGHTED}
        if threads:
            rustnce.set_num_threads(threads)

    def describe(self) -> dict[str, int]:
        """Tokens (after dropping rare words) and blocks of this worker's range."""
        return {"tokens": int(self.ids.size), "blocks": len(self.block_bounds)}

    def _trainer(self, epoch: int, block: int) -> _rustnce.SkipGramTrainer:
        config = self.config
        start, end = self.block_bounds[block]
        blocks = len(self.block_bounds)
        return _rustnce.SkipGramTrainer(
            self.ids[start:end],
            np.ascontiguousarray(self.sentences[start:end] - self.sentences[start]),
            self.counts,
            dim=config.dim,
            window=config.window,
            negatives=config.negatives,
            epochs=config.epochs * blocks,
            batch_pairs=config.batch_pairs,
            loss=config.loss,
            sampler=config.sampler,
            distortion=config.distortion,
            learning_rate=config.rate,
            subsample=config.subsample,
            # Worker 0 draws the single-process trainer's streams (one worker reproduces it).
            seed=(config.seed + self.index * 1_000_003) % (2**62),
            update=config.rule,
            sharing=config.sharing,
            fixed_biases=config.fixed_biases,
            deterministic=config.deterministic,
            start_epoch=epoch * blocks + block,
        )

    def _chunk_rows(self, start: int, end: int, low: int, high: int) -> np.ndarray:
        """Ids a chunk covering block tokens ``[low, high)`` touches as centers or contexts
        (with the window's reach on both sides), and the frequent head."""
        reach = self.config.window
        words = self.ids[max(start + low - reach, start) : min(start + high + reach, end)]
        return np.union1d(np.unique(words).astype(np.int64), self.head)

    def _take_changes(self, covered: np.ndarray) -> Changes:
        """The rows the local copy changed since it was last synchronised, and by how much;
        marks them synchronised. With ``merge="touches"``, also, for the output vectors and
        biases, each changed row's touches (how often its word occurs in ``covered``, the corpus
        words the chunk trained; at least 1, for a row moved only as a negative) and its touch
        total as last seen."""
        changes, weights = {}, {}
        occurrences = None
        if self.merge == "touches":
            occurrences = np.bincount(covered, minlength=self.vocabulary_size)
        for name in TABLES:
            local, synced = self.local[name], self.synced[name]
            differs = local != synced
            rows = np.flatnonzero(differs.any(axis=1) if differs.ndim == 2 else differs)
            changes[name] = (rows, local[rows] - synced[rows])
            synced[rows] = local[rows]
            if occurrences is not None and name in TOUCH_WEIGHTED:
                count = np.maximum(occurrences[rows], 1).astype(np.float64)
                weights[name] = (count, self.seen[name][rows].copy())
                self.seen[name][rows] += count
        return Changes(changes, weights)

    def _merge(
        self,
        ids: np.ndarray,
        pulled: dict[str, np.ndarray],
        touches: dict[str, np.ndarray],
        unsent: Changes,
    ) -> None:
        """Writes rows pulled before the changes ``unsent`` were pushed: the shard's values plus
        those changes (and their touch totals plus those changes' touches)."""
        for name in TABLES:
            rows = pulled[name]
            changed, delta = unsent.updates[name]
            totals = touches.get(name)
            if changed.size:
                _, here, there = np.intersect1d(
                    ids, changed, assume_unique=True, return_indices=True
                )
                rows[here] += delta[there]
                if totals is not None and name in unsent.touches:
                    totals[here] += unsent.touches[name][0][there]
            self.local[name][ids] = rows
            self.synced[name][ids] = rows
            if totals is not None and name in TOUCH_WEIGHTED:
                self.seen[name][ids] = totals

    def _refresh(self) -> int:
        """Pulls the whole tables into the local copy; returns the bytes pulled."""
        everything = np.arange(self.vocabulary_size, dtype=np.int64)
        pending = self.table.pull_async(
            {name: everything for name in TABLES}, with_touches=self.merge == "touches"
        )
        pulled, touches = (
            pending.result_with_touches() if self.merge == "touches" else (pending.result(), {})
        )
        for name in TABLES:
            self.local[name][...] = pulled[name]
            self.synced[name][...] = pulled[name]
            if name in touches and name in TOUCH_WEIGHTED:
                self.seen[name][...] = touches[name]
        return sum(values.nbytes for values in pulled.values())

    def train_block(self, epoch: int, block: int) -> UnitStats:
        """Trains block ``block`` of this worker's range for epoch ``epoch`` (0-based)."""
        started = time.perf_counter()
        stats = UnitStats(self.index, epoch, block)
        start, end = self.block_bounds[block]
        length = end - start
        blocks = len(self.block_bounds)
        clock = time.perf_counter()
        stats.refresh_bytes = self._refresh()
        stats.refresh_seconds = time.perf_counter() - clock
        trainer = self._trainer(epoch, block)
        words_before = (epoch * blocks + block) * length
        chunk = self.chunk_words

        def send(updates: Changes, low: int) -> tuple[np.ndarray, PendingPull | None]:
            """Pushes ``updates`` and starts pulling the rows of the chunk from ``low`` on."""
            clock = time.perf_counter()
            ids = np.empty(0, np.int64)
            if low < length:
                # The trainer stops after the batch that reaches the chunk's end: a margin.
                margin = chunk // 8 + self.config.batch_pairs
                ids = self._chunk_rows(start, end, low, low + chunk + margin)
            pending = None
            changed = {name: c for name, c in updates.updates.items() if c[0].size}
            if ids.size or changed:
                pending = self.table.exchange_async(
                    changed,
                    {name: ids for name in TABLES} if ids.size else {},
                    {name: w for name, w in updates.touches.items() if name in changed},
                    with_touches=self.merge == "touches",
                )
                stats.messages += pending.messages
                stats.rows_pulled += ids.size
                stats.rows_pushed += sum(rows.size for rows, _ in changed.values())
                stats.bytes_pushed += sum(delta.nbytes for _, delta in changed.values())
            stats.send_seconds += time.perf_counter() - clock
            return ids, pending

        empty = Changes(
            {name: (np.empty(0, np.int64), np.empty(0, np.float32)) for name in TABLES}, {}
        )
        unsent = empty
        done = 0  # block tokens trained so far
        # The first chunk trains on the refreshed copy; with overlap the second's pull leaves now.
        ids, pending = send(empty, chunk) if self.overlap else (np.empty(0, np.int64), None)
        while True:
            clock = time.perf_counter()
            report = trainer.run(*(self.local[name] for name in TABLES), chunk)
            stats.train_seconds += time.perf_counter() - clock
            if report.diverged is not None:
                raise TrainingDiverged(
                    f"training diverged in worker {self.index}, epoch {epoch + 1} (loss per "
                    f"pair {report.diverged:.3g}); lower the learning rate or the batch size"
                )
            stats.chunks += 1
            stats.pairs += report.pairs
            stats.loss += report.loss
            stats.rate = report.learning_rate
            position = min(report.words - words_before, length)
            clock = time.perf_counter()
            unsent = self._take_changes(self.ids[start + done : start + position])
            done = position
            stats.diff_seconds += time.perf_counter() - clock
            last = report.epoch_end or position >= length
            if not self.overlap:
                if last:
                    break
                # Push this chunk's changes and pull the next chunk's rows, then wait.
                ids, pending = send(unsent, position)
                unsent = empty
            if pending is not None:
                clock = time.perf_counter()
                if self.merge == "touches":
                    pulled, touches = pending.result_with_touches()
                else:
                    pulled, touches = pending.result(), {}
                stats.wait_seconds += time.perf_counter() - clock
                if ids.size:
                    clock = time.perf_counter()
                    self._merge(ids, pulled, touches, unsent)
                    stats.bytes_pulled += sum(values.nbytes for values in pulled.values())
                    stats.merge_seconds += time.perf_counter() - clock
            if self.overlap:
                if last:
                    break
                # Push this chunk's changes with the pull for the chunk after the next one.
                ids, pending = send(unsent, position + chunk)
        _, pending = send(unsent, length)
        if pending is not None:
            clock = time.perf_counter()
            pending.result()
            stats.wait_seconds += time.perf_counter() - clock
        stats.words = length
        stats.seconds = time.perf_counter() - started
        return stats
