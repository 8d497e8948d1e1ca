"""Skip-gram training on rustnce's fused skip-gram step, the whole loop in Rust
(``rustnce._rustnce.SkipGramTrainer``, ``src/skipgram/``) with the interpreter released.

Per epoch: word2vec's frequent-word subsampling, then (center, context) pairs within a window
randomly shrunk per center (as word2vec does), in text order, cut into batches of about 512
pairs at center boundaries. Negatives are drawn per center's window (``sharing="window"``, the
default: ``negatives`` draws with replacement shared by the window's pairs, each context's input
row scored against the center's and the negatives' output rows, word2vec's orientation) or per
batch (``sharing="batch"``: ``negatives`` distinct ids shared by the batch's pairs, the center
as the input row). Then one fused step per batch (the loss with ``upstream="sum"``, every
touched input row, output row and bias updated in place). The learning rate (per pair, 0.05:
twice word2vec's 0.025, see docs/word2vec.md) decays linearly with the raw words processed to
``1e-4`` of its start over all epochs, as in word2vec. Python only calls the trainer for slices
of words and reports progress between them. Results do not depend on the number of threads,
except pair by pair on racing threads (the default on two or more; ``deterministic=True``
keeps them exact).

Losses:

- ``nce``: TensorFlow's ``nce_loss`` (logits minus ``ln Q``, expected counts from the sampler).
- ``sampled_softmax``: TensorFlow's ``sampled_softmax_loss`` (accidental hits removed).
- ``neg``: word2vec's negative sampling through the same kernel: expected counts of one, so
  ``ln Q = 0`` (docs/semantics.md §3), and negatives equal to the positive word are masked (word2vec
  skips them). Unlike word2vec, the outputs have biases (they start at 0) unless
  ``fixed_biases=True`` leaves them there: then it is word2vec's model exactly.

Samplers: ``unigram`` (the default: ``count ** distortion``, word2vec's 0.75) or
``log_uniform`` (TensorFlow's default; ids are frequency ranks, as the vocabulary is sorted by
decreasing count).

Why it is stable. A frequent word's rows are touched by many pairs of a batch (and with
``sharing="batch"`` a negative's output row and bias by every pair). Plain SGD on the summed
loss moves such a row by the sum of all those gradients at the per-pair rate, all taken at the
same stale parameters, where word2vec's one-pair-at-a-time updates would have saturated: on real
text that overshoot blows up within the first epoch whatever the corpus. By default the pairs
therefore run one after another, as word2vec runs them (``update="sequential"``, below). The
batched step instead bounds each row's move (``update="bounded"``, the default with
``sharing="batch"``; see ``docs/word2vec.md``): a row moves by its summed
gradient at the per-pair rate while that is small against the curvature of the batch's loss along
the row, and by at most ``NEWTON_STEPS`` (16) Newton steps of that curvature's bound otherwise, so
the step a row takes per batch is bounded however many pairs touch it. ``update="sum"`` is the
plain SGD step (``rustnce.skipgram_sgd_step``'s), kept for comparison. ``update="sequential"``
is word2vec's own order: the pairs one after another, each pair's step applied before the next
pair's logits, so a row many pairs touch sees its logits saturate. On two or more threads the
threads race over the tables pair by pair, each on its own part of the corpus (Hogwild, as
word2vec, gensim and fastText train; ``deterministic=True``: one thread steps while a second
forms the next batch, and the results are the same bits for any thread count). For
``nce`` and ``sampled_softmax`` the output biases start at ``ln p(w)`` (the unigram model):
starting at 0, every rare sampled word's ``-ln Q`` makes its logit large and the first steps
push hard. A loss that blows up anyway stops the run with :class:`TrainingDiverged`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import rustnce
from rustnce._rustnce import SkipGramTrainer

from .corpus import CorpusError, EncodedCorpus, TextCorpus, Vocabulary

LOSSES = ("nce", "sampled_softmax", "neg")
SAMPLERS = ("log_uniform", "unigram")
UPDATES = ("bounded", "sequential", "sum")
SHARINGS = ("window", "batch")

#: Starting learning rate per loss (per pair: the step uses ``upstream="sum"``).
DEFAULT_LEARNING_RATES = {"nce": 0.05, "sampled_softmax": 0.05, "neg": 0.05}


@dataclass
class TrainingConfig:
    dim: int = 100
    window: int = 5
    negatives: int = 5
    epochs: int = 5
    subsample: float = 1e-3
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATES[loss]
    loss: str = "nce"
    sampler: str = "unigram"  # word2vec's count ** distortion (the trainer has the counts)
    distortion: float = 0.75
    batch_pairs: int = 512
    bias_init: str | None = None  # "log_unigram" or "zeros"; None: zeros for neg
    seed: int = 1
    threads: int = 0  # 0: rustnce's default (all cores)
    # "sequential": pair by pair, as word2vec; "bounded": each row's step bounded per batch;
    # "sum": plain SGD on the batch's summed loss; None: sequential with negatives per
    # window, bounded with negatives per batch
    update: str | None = None
    sharing: str = "window"  # negatives drawn per center's window, or per batch
    fixed_biases: bool = False  # leave the output biases at their start (word2vec has none)
    # Pair by pair on 2+ threads: False lets the threads race over the tables (Hogwild, as
    # word2vec, gensim and fastText do; runs differ in their last bits); True keeps one
    # thread stepping and the next batch formed on another: the same bits for any threads
    deterministic: bool = False

    @classmethod
    def from_options(cls, options: Any, sampler: str) -> TrainingConfig:
        """The settings the command line's options name (an ``argparse.Namespace``), with
        ``sampler``; the distortion defaults to word2vec's 0.75."""
        return cls(
            dim=options.dim,
            window=options.window,
            negatives=options.negatives,
            epochs=options.epochs,
            subsample=options.subsample,
            learning_rate=options.lr,
            loss=options.loss,
            sampler=sampler,
            distortion=0.75 if options.distortion is None else options.distortion,
            batch_pairs=options.batch,
            seed=options.seed,
            threads=options.threads,
            update=options.update,
            sharing=options.share,
            fixed_biases=options.fixed_biases,
            deterministic=options.deterministic,
        )

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
        if self.update is not None and self.update not in UPDATES:
            raise ValueError(f"update must be one of {', '.join(UPDATES)}, got {self.update!r}")
        if self.sharing not in SHARINGS:
            raise ValueError(f"sharing must be one of {', '.join(SHARINGS)}, got {self.sharing!r}")
        if self.update == "sequential" and self.sharing != "window":
            # Pair by pair, one draw of negatives shared by a whole batch takes hundreds of
            # pushes in a row (measured: the loss rose 15% over three epochs).
            raise ValueError(
                "update='sequential' needs sharing='window' (word2vec's negatives per window), "
                f"got sharing={self.sharing!r}"
            )
        if not (math.isfinite(self.subsample) and self.subsample >= 0):
            raise ValueError(f"subsample must be >= 0, got {self.subsample}")
        if not (math.isfinite(self.distortion) and self.distortion >= 0):
            raise ValueError(f"distortion must be >= 0, got {self.distortion}")
        for name in ("fixed_biases", "deterministic"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
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
    def rule(self) -> str:
        """The update rule: ``update``, or by default ``"sequential"`` with negatives per
        window and ``"bounded"`` with negatives per batch."""
        if self.update is not None:
            return self.update
        return "sequential" if self.sharing == "window" else "bounded"

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
    epochs_done: int = 0  # epochs completed, those before a resumption included

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


def initial_input_vectors(rows: int, dim: int, seed: int) -> np.ndarray:
    """The input vectors' starting values: uniform in ``[-0.5 / dim, 0.5 / dim)`` (word2vec's
    range), drawn from NumPy's generator seeded with ``seed``. The output vectors start at
    zero."""
    rng = np.random.default_rng(seed)
    return ((rng.random((rows, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)


def initial_biases(counts: np.ndarray, how: str) -> np.ndarray:
    """The output biases' starting values: ``"log_unigram"``, ``ln p(w)`` (the model starts as
    the unigram model, near the self-normalised optimum NCE assumes, instead of far from it with
    every rare word's ``-ln Q`` pushing its logit up), or ``"zeros"``."""
    counts = np.asarray(counts, dtype=np.float64)
    if how == "zeros":
        return np.zeros(counts.size, dtype=np.float32)
    return np.log(counts / counts.sum()).astype(np.float32)


def train(
    corpus: EncodedCorpus | TextCorpus,
    vocabulary: Vocabulary,
    config: TrainingConfig,
    progress: Callable[[Progress], None] | None = None,
    progress_interval: float = 0.25,
    resume: TrainingResult | None = None,
    on_epoch_end: Callable[[TrainingResult], None] | None = None,
) -> TrainingResult:
    """Trains skip-gram vectors on ``corpus`` (ids in memory, or text files read every epoch
    with the same results for the same text); returns the vectors and the loss per epoch.
    ``progress`` is called about every ``progress_interval`` seconds and at every epoch's end.
    Raises ``ValueError`` for impossible settings and :class:`TrainingDiverged` if the loss
    blows up. ``resume``: the tables and ``epochs_done`` of a run of the same configuration
    stopped at an epoch's end; training continues from there exactly as the uninterrupted run
    would (every epoch draws from its own random streams). ``on_epoch_end`` is called with the
    result so far (its tables are the live ones) after every epoch."""
    config.check(len(vocabulary))
    arguments = (corpus, vocabulary, config, progress, progress_interval, resume, on_epoch_end)
    if not config.threads:
        return _train(*arguments)
    previous = rustnce.get_num_threads()
    rustnce.set_num_threads(config.threads)
    try:
        return _train(*arguments)
    finally:
        rustnce.set_num_threads(previous)


def _train(
    corpus: EncodedCorpus | TextCorpus,
    vocabulary: Vocabulary,
    config: TrainingConfig,
    progress: Callable[[Progress], None] | None,
    progress_interval: float,
    resume: TrainingResult | None,
    on_epoch_end: Callable[[TrainingResult], None] | None,
) -> TrainingResult:
    size, dim = len(vocabulary), config.dim
    if resume is None:
        emb_in = initial_input_vectors(size, dim, config.seed)
        emb_out = np.zeros((size, dim), dtype=np.float32)
        biases = initial_biases(vocabulary.counts, config.bias_start)
        start_epoch = 0
    else:
        emb_in, emb_out, biases = (
            np.array(table, dtype=np.float32, order="C", copy=True)
            for table in (resume.input_vectors, resume.output_vectors, resume.biases)
        )
        if emb_in.shape != (size, dim) or emb_out.shape != (size, dim) or biases.shape != (size,):
            raise ValueError(
                f"resume tables must be [{size}, {dim}] and [{size}], got {emb_in.shape}, "
                f"{emb_out.shape} and {biases.shape}"
            )
        start_epoch = resume.epochs_done
    if isinstance(corpus, TextCorpus):
        if len(corpus.counts) != size or not np.array_equal(corpus.counts, vocabulary.counts):
            raise ValueError("the TextCorpus was counted with another vocabulary")
        sources: tuple[Any, ...] = (corpus,)
    else:
        sources = (
            np.ascontiguousarray(corpus.ids, dtype=np.int32),
            np.ascontiguousarray(corpus.sentences, dtype=np.int32),
            np.ascontiguousarray(vocabulary.counts, dtype=np.int64),
        )
    trainer = SkipGramTrainer(
        *sources,
        dim=dim,
        window=config.window,
        negatives=config.negatives,
        epochs=config.epochs,
        batch_pairs=config.batch_pairs,
        loss=config.loss,
        sampler=config.sampler,
        distortion=config.distortion,
        learning_rate=config.rate,
        subsample=config.subsample,
        seed=config.seed,
        update=config.rule,
        sharing=config.sharing,
        fixed_biases=config.fixed_biases,
        deterministic=config.deterministic,
        start_epoch=start_epoch,
    )
    total_words = max(trainer.total_words, 1)
    result = TrainingResult(emb_in, emb_out, biases, epochs_done=start_epoch)
    if start_epoch >= config.epochs:
        return result
    epoch_loss = 0.0
    epoch_pairs = 0
    running = math.nan
    started = last_report = time.perf_counter()
    # Slices of about half the progress interval at the last measured speed.
    slice_words = 50_000
    while True:
        slice_start = time.perf_counter()
        try:
            report = trainer.run(emb_in, emb_out, biases, slice_words)
        except OSError as error:  # a corpus file changed or broke while being read again
            raise CorpusError(str(error)) from None
        elapsed = time.perf_counter() - slice_start
        words, pairs = report.words, report.pairs
        if report.diverged is not None:
            raise TrainingDiverged(
                f"training diverged at {words / total_words:.0%} (loss per pair "
                f"{report.diverged:.3g}); lower the learning rate"
                + (" or the batch size" if config.rule != "sequential" else "")
            )
        if pairs:
            epoch_loss += report.loss
            epoch_pairs += pairs
            mean = report.loss / pairs
            running = mean if math.isnan(running) else 0.8 * running + 0.2 * mean
        if elapsed > 0 and pairs:
            speed = slice_words / elapsed
            slice_words = int(min(max(speed * progress_interval / 2, 10_000), 5_000_000))
        if report.epoch_end:
            result.epoch_losses.append(epoch_loss / epoch_pairs if epoch_pairs else math.nan)
            result.pairs += epoch_pairs
            result.epochs_done = report.epoch + 1
            epoch_loss, epoch_pairs = 0.0, 0
            if on_epoch_end is not None:
                on_epoch_end(result)
        now = time.perf_counter()
        if progress is not None and (report.epoch_end or now - last_report >= progress_interval):
            last_report = now
            progress(
                Progress(
                    report.epoch + 1,
                    config.epochs,
                    min(words / total_words, 1.0),
                    words,
                    now - started,
                    running,
                    report.learning_rate,
                    epoch_end=report.epoch_end,
                )
            )
        if report.finished:
            break
    result.seconds = time.perf_counter() - started
    result.words = words
    return result
