"""One data-parallel skip-gram worker (the class behind each worker Ray actor).

It reads its byte range of the corpus, encodes it with the shared vocabulary and cuts it into
blocks of whole sentences. Training a block (one unit of work, redone whole if the worker dies)
for one epoch: the Rust pair generator (``rustnce._rustnce.skipgram_pairs``) makes its
(center, context) pairs, cut into batches of ``batch_pairs``; each batch draws its negatives.
Batches are grouped in chunks of ``chunk_batches``. For each chunk the worker

1. pulls from the shards only the rows the chunk touches (input rows of its centers, output
   rows and biases of its contexts and negatives) into small local tables, renumbered;
2. runs rustnce's fused skip-gram step (``skipgram_sgd_step``) on every batch of the chunk,
   locally;
3. pushes the row-sparse deltas (local rows after minus before) back, without waiting.

The pull for chunk ``k + 1`` is sent before chunk ``k`` is trained, so it overlaps the
compute; the rows it returns then miss chunk ``k``'s own updates, which the worker adds to them
locally before training chunk ``k + 1``.

Staleness bound: every row a step reads holds all of this worker's earlier updates, and every
other worker's updates that reached its shard before the row was fetched, which is at most two
chunks (``2 * chunk_batches`` batches) of this worker's time before the step. Updates other
workers push later are missed until the next fetch; with workers of equal speed that is at most
``2 * chunk_batches`` of each other worker's batches.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

import rustnce
from rustnce import _rustnce

from ..word2vec.corpus import Vocabulary, encode
from ..word2vec.training import TrainingConfig, TrainingDiverged
from .corpus_ranges import ByteRange, read_range
from .shards import ShardedTable

#: The learning rate never falls below this fraction of its start (as the single-process
#: trainer and word2vec).
MIN_RATE_FRACTION = 1e-4


@dataclass
class UnitStats:
    """What training one block for one epoch did, and where its time went."""

    worker: int
    epoch: int
    block: int
    words: int = 0
    pairs: int = 0
    batches: int = 0
    loss: float = 0.0
    chunks: int = 0
    messages: int = 0  # calls to shard actors
    rows_pulled: int = 0  # rows of the input and output tables (biases ride with outputs)
    bytes_pulled: int = 0
    bytes_pushed: int = 0
    seconds: float = 0.0
    pair_seconds: float = 0.0  # generating pairs
    sample_seconds: float = 0.0  # drawing negatives
    step_seconds: float = 0.0  # the fused steps
    wait_seconds: float = 0.0  # waiting for pulled rows
    pack_seconds: float = 0.0  # renumbering, deltas, sending pushes
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
    """A worker: its corpus range, encoded, and the training of one block at a time."""

    def __init__(
        self,
        index: int,
        part: ByteRange,
        vocabulary: Vocabulary,
        config: TrainingConfig,
        table: ShardedTable,
        block_tokens: int,
        chunk_batches: int,
        threads: int,
    ) -> None:
        self.index = index
        self.config = config
        self.table = table
        self.chunk_batches = chunk_batches
        self.vocabulary_size = len(vocabulary)
        self.counts = np.ascontiguousarray(vocabulary.counts, dtype=np.int64)
        corpus = encode(read_range(part), vocabulary)
        self.ids = np.ascontiguousarray(corpus.ids, dtype=np.int32)
        self.sentences = np.ascontiguousarray(corpus.sentences, dtype=np.int32)
        self.block_bounds = _blocks(self.sentences, block_tokens)
        if threads:
            rustnce.set_num_threads(threads)

    def describe(self) -> dict[str, int]:
        """Tokens (after dropping rare words) and blocks of this worker's range."""
        return {"tokens": int(self.ids.size), "blocks": len(self.block_bounds)}

    def _sampler(self, epoch: int, block: int) -> rustnce.CandidateSampler:
        seed = (self.config.seed, (epoch * 1_000_003 + block) * 4099 + self.index)
        if self.config.sampler == "log_uniform":
            return rustnce.LogUniformSampler(self.vocabulary_size, seed=seed)
        return rustnce.FixedUnigramSampler(
            self.vocabulary_size,
            distortion=self.config.distortion,
            unigrams=self.counts.astype(np.float64).tolist(),
            seed=seed,
        )

    def train_block(self, epoch: int, block: int) -> UnitStats:
        """Trains block ``block`` of this worker's range for epoch ``epoch`` (0-based)."""
        started = time.perf_counter()
        config = self.config
        stats = UnitStats(self.index, epoch, block)
        start, end = self.block_bounds[block]
        tokens_before = start
        total_tokens = max(self.ids.size, 1)
        clock = time.perf_counter()
        sentences = self.sentences[start:end] - self.sentences[start]
        centers, contexts = _rustnce.skipgram_pairs(
            self.ids[start:end],
            np.ascontiguousarray(sentences, dtype=np.int32),
            self.counts,
            config.window,
            config.subsample,
            (config.seed * 7919 + epoch * 104_729 + self.index * 1_299_709 + block) % (2**62),
        )
        stats.pair_seconds += time.perf_counter() - clock
        stats.words = end - start
        npairs = centers.size
        if npairs == 0:
            stats.seconds = time.perf_counter() - started
            return stats
        sampler = self._sampler(epoch, block)
        uses_counts = config.loss != "neg"
        batch = config.batch_pairs
        starts = list(range(0, npairs, batch))
        chunks = [
            starts[i : i + self.chunk_batches] for i in range(0, len(starts), self.chunk_batches)
        ]
        block_tokens = end - start

        def prepare(chunk: list[int], updates: dict[str, Any]) -> dict[str, Any]:
            """Negatives of the chunk's batches, the rows it touches and its pull (sent
            with the previous chunk's ``updates``)."""
            clock = time.perf_counter()
            negatives, true_counts, sampled_counts = [], [], []
            for first in chunk:
                contexts_b = contexts[first : first + batch]
                if uses_counts:
                    drawn, true_c, sampled_c = sampler.sample(
                        contexts_b.astype(np.int64)[:, None], 1, config.negatives, True
                    )
                    true_counts.append(true_c.reshape(-1))
                    sampled_counts.append(sampled_c)
                else:
                    drawn, _, _ = sampler.sample(
                        np.zeros((1, 1), np.int64), 1, config.negatives, True
                    )
                negatives.append(drawn)
            sample_time = time.perf_counter() - clock
            clock = time.perf_counter()
            low, high = chunk[0], min(chunk[-1] + batch, npairs)
            all_negatives = np.concatenate(negatives)
            input_ids = np.unique(centers[low:high]).astype(np.int64)
            output_ids = np.unique(np.concatenate([contexts[low:high], all_negatives]))
            # The fused step wants input and output tables of one shape: both are numbered
            # over every touched id; an input row no center uses is never read (left zero).
            local_ids = np.union1d(input_ids, output_ids)
            pending = self.table.exchange_async(
                updates, {"input": input_ids, "output": output_ids, "bias": output_ids}
            )
            return {
                "chunk": chunk,
                "low": low,
                "high": high,
                "negatives": [np.searchsorted(local_ids, n).astype(np.int64) for n in negatives],
                "true_counts": true_counts,
                "sampled_counts": sampled_counts,
                "local_ids": local_ids,
                "input_ids": input_ids,
                "output_ids": output_ids,
                "input_at": np.searchsorted(local_ids, input_ids),
                "output_at": np.searchsorted(local_ids, output_ids),
                "center_local": np.searchsorted(local_ids, centers[low:high]).astype(np.int64),
                "context_local": np.searchsorted(local_ids, contexts[low:high]).astype(np.int64),
                "pending": pending,
                "sample_time": sample_time,
                "pack_time": time.perf_counter() - clock,
            }

        previous: dict[str, Any] | None = None
        current = prepare(chunks[0], {})
        unsent: dict[str, Any] = {}
        for number in range(len(chunks)):
            following = None
            if number + 1 < len(chunks):
                following = prepare(chunks[number + 1], unsent)
            elif unsent:
                stats.messages += len(self.table.push(unsent))
            unsent = {}
            stats.messages += current["pending"].messages
            stats.sample_seconds += current["sample_time"]
            stats.pack_seconds += current["pack_time"]
            clock = time.perf_counter()
            rows = current["pending"].result()
            stats.wait_seconds += time.perf_counter() - clock
            clock = time.perf_counter()
            if previous is not None:
                _add_own_updates(rows, current, previous)
            size = current["local_ids"].size
            local_in = np.zeros((size, config.dim), dtype=np.float32)
            local_out = np.zeros((size, config.dim), dtype=np.float32)
            local_bias = np.zeros(size, dtype=np.float32)
            input_at, output_at = current["input_at"], current["output_at"]
            local_in[input_at] = rows["input"]
            local_out[output_at] = rows["output"]
            local_bias[output_at] = rows["bias"]
            stats.rows_pulled += input_at.size + output_at.size
            row_bytes = rows["input"].nbytes + rows["output"].nbytes + rows["bias"].nbytes
            stats.bytes_pulled += row_bytes
            stats.pack_seconds += time.perf_counter() - clock
            clock = time.perf_counter()
            low = current["low"]
            for position, first in enumerate(current["chunk"]):
                last = min(first + batch, npairs)
                done = tokens_before + block_tokens * (first / npairs)
                progress = (epoch + done / total_tokens) / config.epochs
                rate = config.rate * max(1.0 - progress, MIN_RATE_FRACTION)
                negatives_local = current["negatives"][position]
                count = last - first
                if uses_counts:
                    true_c = current["true_counts"][position]
                    sampled_c = current["sampled_counts"][position]
                else:
                    true_c = np.ones(count, dtype=np.float32)
                    sampled_c = np.ones(negatives_local.size, dtype=np.float32)
                loss = _rustnce.skipgram_sgd_step(
                    local_in,
                    local_out,
                    local_bias,
                    current["center_local"][first - low : last - low],
                    current["context_local"][first - low : last - low],
                    negatives_local,
                    true_c,
                    sampled_c,
                    rate,
                    config.loss,
                )
                limit = 100.0 * (config.negatives + 1) * count
                if math.isnan(loss) or loss >= limit:
                    raise TrainingDiverged(
                        f"training diverged in worker {self.index}, epoch {epoch + 1} (loss per "
                        f"pair {loss / count:.3g}); lower the learning rate or the batch size"
                    )
                stats.loss += loss
                stats.pairs += count
                stats.batches += 1
                stats.rate = rate
            stats.step_seconds += time.perf_counter() - clock
            clock = time.perf_counter()
            current["delta"] = (
                local_in[input_at] - rows["input"],
                local_out[output_at] - rows["output"],
                local_bias[output_at] - rows["bias"],
            )
            # Sent with the next pull (or alone after the last chunk).
            unsent = {
                "input": (current["input_ids"], current["delta"][0]),
                "output": (current["output_ids"], current["delta"][1]),
                "bias": (current["output_ids"], current["delta"][2]),
            }
            stats.bytes_pushed += row_bytes
            stats.chunks += 1
            stats.pack_seconds += time.perf_counter() - clock
            previous, current = current, following  # type: ignore[assignment]
        clock = time.perf_counter()
        if unsent:
            stats.messages += len(self.table.push(unsent, wait=True))
        stats.wait_seconds += time.perf_counter() - clock
        stats.seconds = time.perf_counter() - started
        return stats


def _add_own_updates(
    rows: dict[str, np.ndarray], current: dict[str, Any], previous: dict[str, Any]
) -> None:
    """Rows of ``current`` fetched before ``previous``'s push reached the shards: add
    ``previous``'s deltas to the rows both chunks touch."""
    delta_in, delta_out, delta_bias = previous["delta"]
    _, here, there = np.intersect1d(
        current["input_ids"], previous["input_ids"], assume_unique=True, return_indices=True
    )
    rows["input"][here] += delta_in[there]
    _, here, there = np.intersect1d(
        current["output_ids"], previous["output_ids"], assume_unique=True, return_indices=True
    )
    rows["output"][here] += delta_out[there]
    rows["bias"][here] += delta_bias[there]
