"""Skip-gram training with rustnce's fused SGD steps.

Per epoch: word2vec's frequent-word subsampling, then (center, context) pairs within a window
randomly shrunk per center (as word2vec does), in text order, cut into batches of about 512
pairs. Per batch: ``inputs = input_vectors[centers]``; one fused ``rustnce.nce_sgd_step`` /
``sampled_softmax_sgd_step`` with ``upstream="sum"`` computes the loss, updates the touched
output vectors and biases in place and returns the inputs gradient, which is added back into
the center rows. The learning rate (per pair, word2vec's 0.025) decays linearly to ``1e-4`` of
its start over all epochs, as in word2vec.

Losses:

- ``nce``: TensorFlow's ``nce_loss`` (logits minus ``ln Q``, expected counts from the sampler).
- ``sampled_softmax``: TensorFlow's ``sampled_softmax_loss`` (accidental hits removed).
- ``neg``: word2vec's negative sampling through the same kernel: expected counts of one, so
  ``ln Q = 0`` (spec section 3), and negatives equal to the positive word are masked (word2vec
  skips them). Unlike word2vec, the negatives are shared by the batch and the outputs have
  biases (they start at 0).

Samplers: ``log_uniform`` (TensorFlow's default; ids are frequency ranks, as the vocabulary is
sorted by decreasing count) or ``unigram`` (``count ** distortion``, word2vec's 0.75), both
drawing ``negatives`` distinct ids per batch (``unique=True``), shared by its pairs.

Why these settings. A shared negative row receives the summed gradient of every pair in the
batch at once, and a frequent word's rows that of all its pairs; word2vec applies the same
updates one pair at a time, each seeing the previous one. With word2vec's per-pair rate of
0.025 that sum stays stable up to batches of about 512 pairs (1024 diverged on the enwiki test
corpus), so batches are small and the kernel's per-call cost matters. Because negatives are
shared they are cheap, and 10 per batch train as well as 25 and clearly better than 5. For
``nce`` and ``sampled_softmax`` the output biases start at ``ln p(w)`` (the unigram model):
starting at 0, every rare sampled word's ``-ln Q`` makes its logit large and the first steps
push hard; TensorFlow's own word2vec tutorial starts at 0 with a much smaller rate per pair.
A loss that blows up anyway stops the run with :class:`TrainingDiverged`.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import rustnce

from .corpus import EncodedCorpus, Vocabulary

LOSSES = ("nce", "sampled_softmax", "neg")
SAMPLERS = ("log_uniform", "unigram")

#: Starting learning rate per loss (per pair: the step uses ``upstream="sum"``).
DEFAULT_LEARNING_RATES = {"nce": 0.025, "sampled_softmax": 0.025, "neg": 0.025}


@dataclass
class TrainingConfig:
    dim: int = 100
    window: int = 5
    negatives: int = 10
    epochs: int = 5
    subsample: float = 1e-3
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATES[loss]
    loss: str = "nce"
    sampler: str = "log_uniform"
    distortion: float = 0.75
    batch_pairs: int = 512
    bias_init: str | None = None  # "log_unigram" or "zeros"; None: zeros for neg
    seed: int = 1
    threads: int = 0  # 0: rustnce's default (all cores)

    def check(self, vocabulary_size: int | None = None) -> None:
        """Raises ``ValueError`` naming the option for impossible settings."""
        for name in ("dim", "window", "negatives", "epochs", "batch_pairs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if not (math.isfinite(self.subsample) and self.subsample >= 0):
            raise ValueError(f"subsample must be >= 0, got {self.subsample}")
        if not (math.isfinite(self.distortion) and self.distortion >= 0):
            raise ValueError(f"distortion must be >= 0, got {self.distortion}")
        if self.bias_init not in (None, "zeros", "log_unigram"):
            raise ValueError(f"bias_init must be 'zeros' or 'log_unigram', got {self.bias_init!r}")
        rate = self.rate
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"learning rate must be positive, got {rate}")
        if vocabulary_size is not None and self.negatives >= vocabulary_size:
            raise ValueError(
                f"negatives ({self.negatives}) must be smaller than the vocabulary "
                f"({vocabulary_size} words): negatives are distinct words"
            )

    @property
    def bias_start(self) -> str:
        if self.bias_init is None:
            return "zeros" if self.loss == "neg" else "log_unigram"
        return self.bias_init

    @property
    def rate(self) -> float:
        if self.learning_rate is None:
            return DEFAULT_LEARNING_RATES[self.loss]
        return float(self.learning_rate)


@dataclass
class Progress:
    """What the progress callback receives."""

    epoch: int  # 1-based
    epochs: int
    fraction: float  # of the whole run
    words: int  # raw words processed so far
    seconds: float
    loss: float  # running mean loss per pair
    learning_rate: float
    epoch_end: bool = False

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds > 0 else 0.0


@dataclass
class TrainingResult:
    input_vectors: np.ndarray  # [V, dim]: the word vectors
    output_vectors: np.ndarray  # [V, dim]
    biases: np.ndarray  # [V]
    epoch_losses: list[float] = field(default_factory=list)  # mean loss per pair
    seconds: float = 0.0
    words: int = 0  # raw words processed (corpus words times epochs)
    pairs: int = 0

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds > 0 else 0.0


class TrainingDiverged(ArithmeticError):
    """The loss became infinite or NaN: the learning rate is too high for the batch size."""


def keep_probabilities(counts: np.ndarray, subsample: float) -> np.ndarray:
    """word2vec's subsampling: a word of count ``c`` out of ``T`` training words is kept with
    probability ``(sqrt(c / (s T)) + 1) (s T) / c``, capped at 1 (``s = 0``: keep all)."""
    counts = np.asarray(counts, dtype=np.float64)
    if subsample <= 0:
        return np.ones_like(counts)
    threshold = subsample * counts.sum()
    with np.errstate(divide="ignore"):
        keep = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    return np.minimum(keep, 1.0)


def initial_biases(counts: np.ndarray, how: str) -> np.ndarray:
    """The output biases' starting values: ``"log_unigram"``, ``ln p(w)`` (the model starts as
    the unigram model, near the self-normalised optimum NCE assumes, instead of far from it with
    every rare word's ``-ln Q`` pushing its logit up), or ``"zeros"``."""
    counts = np.asarray(counts, dtype=np.float64)
    if how == "zeros":
        return np.zeros(counts.size, dtype=np.float32)
    return np.log(counts / counts.sum()).astype(np.float32)


@dataclass
class _Batch:
    """Skip-gram pairs laid out so that the gather and the scatter are slice copies: center
    positions longest first, then the pairs "slot-major" (every center's first context, then
    every center's second context, ...). ``slots[k]`` centers have more than ``k`` contexts,
    so slot ``k``'s inputs are ``rows[:slots[k]]``."""

    words: np.ndarray  # int64 [n]: the center word of each center position, longest first
    slots: list[int]  # non-increasing, slots[0] == n
    contexts: np.ndarray  # int64 [pairs, 1], slot-major
    firsts: np.ndarray  # int64: positions (into words) of each distinct word's first center
    repeats: np.ndarray  # int64: the other positions
    raw_words: float  # raw corpus words this batch accounts for

    @property
    def pairs(self) -> int:
        return self.contexts.shape[0]


def _epoch_batches(
    corpus: EncodedCorpus,
    keep: np.ndarray,
    window: int,
    batch_pairs: int,
    rng: np.random.Generator,
    chunk_words: int = 65536,
) -> Iterator[_Batch]:
    """One epoch of skip-gram batches in text order: subsampling, then pairs within a window
    shrunk at random per center (to ``1..window``, as word2vec does), never across sentences."""
    ids = corpus.ids
    total = len(ids)
    positions = np.flatnonzero(rng.random(total) < keep[ids])
    kept_ids = ids[positions].astype(np.int64)
    kept_sentences = corpus.sentences[positions]
    count = positions.size
    offsets = np.r_[np.arange(-window, 0), np.arange(1, window + 1)]
    distance = np.abs(offsets)
    edges = np.r_[np.arange(0, total, chunk_words), total]
    bounds = np.searchsorted(positions, edges)
    for index in range(len(edges) - 1):
        start, stop = int(bounds[index]), int(bounds[index + 1])
        raw_words = float(edges[index + 1] - edges[index])
        if stop <= start:
            yield _empty_batch(raw_words)
            continue
        centre = np.arange(start, stop)
        reach = window - rng.integers(0, window, size=stop - start)
        context = centre[:, None] + offsets[None, :]
        clipped = np.clip(context, 0, count - 1)
        valid = (distance[None, :] <= reach[:, None]) & (context == clipped)
        valid &= kept_sentences[clipped] == kept_sentences[centre][:, None]
        rows, columns = np.nonzero(valid)
        if rows.size == 0:
            yield _empty_batch(raw_words)
            continue
        lengths = np.bincount(rows, minlength=stop - start)
        has_pairs = lengths > 0
        segment_words = kept_ids[centre[has_pairs]]
        segment_lengths = lengths[has_pairs]
        yield from _layout(
            segment_words,
            segment_lengths,
            kept_ids[clipped[rows, columns]],
            batch_pairs,
            raw_words,
        )


def _empty_batch(raw_words: float) -> _Batch:
    empty = np.empty(0, np.int64)
    return _Batch(empty, [], np.empty((0, 1), np.int64), empty, empty, raw_words)


def _layout(
    segment_words: np.ndarray,
    segment_lengths: np.ndarray,
    contexts: np.ndarray,
    batch_pairs: int,
    raw_words: float,
) -> Iterator[_Batch]:
    """Cuts a chunk's pairs (grouped by center position, in text order) into batches of about
    ``batch_pairs`` pairs at center boundaries, each laid out as :class:`_Batch` describes."""
    segments = segment_words.size
    pairs = contexts.size
    segment_starts = np.cumsum(segment_lengths) - segment_lengths
    segment_batch = segment_starts // batch_pairs
    batches = int(segment_batch[-1]) + 1
    width = int(segment_lengths.max())
    # Segments by batch, longest first (stable: text order among equals).
    order = np.lexsort((-segment_lengths, segment_batch))
    batch_of_ordered = segment_batch[order]
    segment_bounds = np.searchsorted(batch_of_ordered, np.arange(batches + 1))
    rank = np.empty(segments, np.int64)
    rank[order] = np.arange(segments) - segment_bounds[batch_of_ordered]
    # Pairs by batch, then slot, then rank.
    pair_segment = np.repeat(np.arange(segments), segment_lengths)
    slot = np.arange(pairs) - segment_starts[pair_segment]
    pair_batch = segment_batch[pair_segment]
    pair_order = np.lexsort((rank[pair_segment], slot, pair_batch))
    ordered_contexts = contexts[pair_order][:, None]
    slot_counts = np.bincount(pair_batch * width + slot, minlength=batches * width)
    slot_counts = slot_counts.reshape(batches, width)
    pair_bounds = np.r_[0, np.cumsum(slot_counts.sum(axis=1))]
    # First center of each distinct word within its batch.
    ordered_words = segment_words[order]
    key = batch_of_ordered * (int(ordered_words.max()) + 1) + ordered_words
    by_key = np.argsort(key, kind="stable")
    first = np.empty(segments, bool)
    first[by_key] = np.r_[True, key[by_key][1:] != key[by_key][:-1]]
    for b in range(batches):
        s0, s1 = int(segment_bounds[b]), int(segment_bounds[b + 1])
        p0, p1 = int(pair_bounds[b]), int(pair_bounds[b + 1])
        counts = slot_counts[b]
        is_first = first[s0:s1]
        yield _Batch(
            ordered_words[s0:s1],
            counts[counts > 0].tolist(),
            ordered_contexts[p0:p1],
            np.flatnonzero(is_first),
            np.flatnonzero(~is_first),
            raw_words * (p1 - p0) / pairs,
        )


def _make_sampler(
    config: TrainingConfig, vocabulary: Vocabulary, seed: int
) -> rustnce.CandidateSampler:
    size = len(vocabulary)
    if config.sampler == "log_uniform":
        return rustnce.LogUniformSampler(size, seed=seed)
    return rustnce.FixedUnigramSampler(
        size,
        distortion=config.distortion,
        unigrams=vocabulary.counts.astype(np.float64),
        seed=seed,
    )


def train(
    corpus: EncodedCorpus,
    vocabulary: Vocabulary,
    config: TrainingConfig,
    progress: Callable[[Progress], None] | None = None,
    progress_interval: float = 0.25,
) -> TrainingResult:
    """Trains skip-gram vectors on ``corpus``; returns the vectors and the loss per epoch.
    ``progress`` is called about every ``progress_interval`` seconds and at every epoch's end.
    Raises ``ValueError`` for impossible settings and :class:`TrainingDiverged` if the loss
    blows up."""
    config.check(len(vocabulary))
    if not config.threads:
        return _train(corpus, vocabulary, config, progress, progress_interval)
    previous = rustnce.get_num_threads()
    rustnce.set_num_threads(config.threads)
    try:
        return _train(corpus, vocabulary, config, progress, progress_interval)
    finally:
        rustnce.set_num_threads(previous)


def _train(
    corpus: EncodedCorpus,
    vocabulary: Vocabulary,
    config: TrainingConfig,
    progress: Callable[[Progress], None] | None,
    progress_interval: float,
) -> TrainingResult:
    size, dim = len(vocabulary), config.dim
    rng = np.random.default_rng(config.seed)
    emb_in = ((rng.random((size, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    emb_out = np.zeros((size, dim), dtype=np.float32)
    biases = initial_biases(vocabulary.counts, config.bias_start)
    sampler = _make_sampler(config, vocabulary, config.seed)
    keep = keep_probabilities(vocabulary.counts, config.subsample)
    step = (
        rustnce.sampled_softmax_sgd_step
        if config.loss == "sampled_softmax"
        else rustnce.nce_sgd_step
    )
    remove_hits = config.loss != "nce"
    num_sampled = config.negatives
    diverged = 100.0 * (num_sampled + 1)
    start_rate = config.rate
    total_words = max(len(corpus) * config.epochs, 1)
    result = TrainingResult(emb_in, emb_out, biases)
    done_words = 0
    raw_done = 0.0
    epoch_loss = 0.0
    epoch_pairs = 0
    running = math.nan
    rate = start_rate
    started = time.perf_counter()
    last_report = started
    stream = _batch_stream(corpus, vocabulary, config, keep, rng, sampler)
    # Pairs, layouts and negatives are prepared by a second thread while the kernel runs (both
    # release the interpreter); they depend only on the seed, so results stay deterministic.
    with _Prefetch(stream, depth=8) as batches:
        for epoch, batch, sampled in batches:
            if batch is None:  # end of an epoch
                result.epoch_losses.append(epoch_loss / epoch_pairs if epoch_pairs else math.nan)
                result.pairs += epoch_pairs
                epoch_loss, epoch_pairs = 0.0, 0
                done_words = (epoch + 1) * len(corpus)  # exact at epoch ends despite rounding
                raw_done = float(done_words)
                if progress is not None:
                    last_report = time.perf_counter()
                    progress(
                        Progress(
                            epoch + 1,
                            config.epochs,
                            done_words / total_words,
                            done_words,
                            last_report - started,
                            running,
                            start_rate * max(1.0 - done_words / total_words, 1e-4),
                            epoch_end=True,
                        )
                    )
                continue
            count = batch.pairs
            if count:
                rate = start_rate * max(1.0 - done_words / total_words, 1e-4)
                inputs = _gather_inputs(emb_in, batch, dim)
                loss, gradient = step(
                    emb_out,
                    biases,
                    batch.contexts,
                    inputs,
                    num_sampled,
                    size,
                    rate,
                    sampled_values=sampled,
                    remove_accidental_hits=remove_hits,
                    upstream="sum",
                )
                _scatter_gradient(emb_in, batch, gradient, rate)
                with np.errstate(over="ignore", invalid="ignore"):
                    batch_loss = float(loss.sum())
                # Logits beyond +-100 on average: the steps have blown up.
                if not batch_loss < diverged * count:
                    raise TrainingDiverged(
                        f"training diverged at {done_words / total_words:.0%} (loss per pair "
                        f"{batch_loss / count:.3g}); lower the learning rate or the batch size"
                    )
                epoch_loss += batch_loss
                epoch_pairs += count
                mean = batch_loss / count
                running = mean if math.isnan(running) else 0.95 * running + 0.05 * mean
            raw_done += batch.raw_words
            done_words = int(raw_done)
            if progress is not None and count:
                now = time.perf_counter()
                if now - last_report >= progress_interval:
                    last_report = now
                    progress(
                        Progress(
                            epoch + 1,
                            config.epochs,
                            min(done_words / total_words, 1.0),
                            done_words,
                            now - started,
                            running,
                            rate,
                        )
                    )
    result.seconds = time.perf_counter() - started
    result.words = done_words
    return result


_Sampled = tuple[np.ndarray, np.ndarray, np.ndarray]


def _batch_stream(
    corpus: EncodedCorpus,
    vocabulary: Vocabulary,
    config: TrainingConfig,
    keep: np.ndarray,
    rng: np.random.Generator,
    sampler: rustnce.CandidateSampler,
) -> Iterator[tuple[int, _Batch | None, _Sampled | None]]:
    """Every epoch's batches with their negatives, then ``(epoch, None, None)``."""
    num_sampled = config.negatives
    unit_counts = config.loss == "neg"
    ones_sampled = np.ones(num_sampled, dtype=np.float32)
    ones_true: dict[int, np.ndarray] = {}
    for epoch in range(config.epochs):
        for batch in _epoch_batches(corpus, keep, config.window, config.batch_pairs, rng):
            sampled = None
            if batch.pairs:
                sampled = sampler.sample(batch.contexts, 1, num_sampled, True)
                if unit_counts:  # NEG: ln Q = ln 1 = 0 (spec section 3)
                    ones = ones_true.get(batch.pairs)
                    if ones is None:
                        ones = ones_true[batch.pairs] = np.ones((batch.pairs, 1), np.float32)
                    sampled = (sampled[0], ones, ones_sampled)
            yield epoch, batch, sampled
        yield epoch, None, None


class _Prefetch:
    """Runs an iterator in a daemon thread, ``depth`` items ahead; re-raises its errors in the
    consumer. Leaving the ``with`` block stops the thread."""

    _DONE = object()

    def __init__(self, iterator: Iterator, depth: int) -> None:
        self._iterator = iterator
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rustnce-batches", daemon=True)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._iterator:
                if not self._put(item):
                    return
        except BaseException as error:  # handed to the consumer
            self._put(_Failure(error))
            return
        self._put(self._DONE)

    def __enter__(self) -> Iterator:
        self._thread.start()
        return self._items()

    def _items(self) -> Iterator:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class _Failure:
    error: BaseException


def _gather_inputs(emb_in: np.ndarray, batch: _Batch, dim: int) -> np.ndarray:
    """``emb_in[center of each pair]`` in the batch's slot-major order, by slice copies."""
    rows = emb_in[batch.words]
    inputs = np.empty((batch.pairs, dim), dtype=emb_in.dtype)
    offset = 0
    for count in batch.slots:
        inputs[offset : offset + count] = rows[:count]
        offset += count
    return inputs


def _scatter_gradient(emb_in: np.ndarray, batch: _Batch, gradient: np.ndarray, rate: float) -> None:
    """``emb_in[center of each pair] -= rate * gradient``, repeated centers summed: slot sums by
    slice additions, then one fancy update for distinct words and ``np.add.at`` for repeats."""
    first = batch.slots[0]
    sums = np.array(gradient[:first])
    offset = first
    for count in batch.slots[1:]:
        sums[:count] += gradient[offset : offset + count]
        offset += count
    sums *= np.float32(-rate)
    if batch.repeats.size == 0:
        emb_in[batch.words] += sums
        return
    emb_in[batch.words[batch.firsts]] += sums[batch.firsts]
    np.add.at(emb_in, batch.words[batch.repeats], sums[batch.repeats])
