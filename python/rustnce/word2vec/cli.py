"""``python -m rustnce`` / ``rustnce``: train skip-gram word vectors with rustnce's fused sampled
losses, evaluate them and save them in word2vec text format.

Without arguments it trains on a corpus generated from a planted-structure model (word groups
with Zipfian frequencies and known membership) and reports nearest-neighbour group purity
against its chance level. Exit codes: 0 success, 1 bad input (corpus, similarity file, output
path), 2 usage error (unknown or impossible options), 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, NoReturn, TextIO

import numpy as np

import rustnce

from ..distributed import cli as distributed_cli
from .atomic import check_writable
from .corpus import (
    CorpusError,
    EncodedCorpus,
    TextCorpus,
    Vocabulary,
    encode,
    open_corpus,
)
from .evaluation import (
    ANALOGY_VOCABULARY,
    AnalogyFileError,
    AnalogyResult,
    Purity,
    SimilarityFileError,
    SimilarityResult,
    group_purity,
    read_analogies,
    read_similarity_pairs,
    word_analogies,
    word_similarity,
)
from .planted import planted_corpus
from .training import (
    LOSSES,
    SAMPLERS,
    SHARINGS,
    UPDATES,
    Progress,
    TrainingConfig,
    TrainingDiverged,
    TrainingResult,
    train,
)
from .vectors import (
    VectorFileError,
    load_model,
    save_model,
    save_word2vec_binary,
    save_word2vec_format,
)

PROGRAM = "rustnce"
DEFAULT_OUTPUT = "rustnce_vectors.txt"
DEFAULT_PLANTED_TOKENS = 500_000


class UsageError(Exception):
    """Impossible options: exit code 2."""


class InputError(Exception):
    """Bad input data or an unwritable output: exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _integer(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in ``[low, high]`` (what the trainer can hold)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer in [{low:,}, {high:,}], got {text!r}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low:,}, {high:,}], got {text}")
        return value

    return parse


def _float32(positive: bool) -> Callable[[str], float]:
    """An argparse type: a finite number >= 0 (``positive``: > 0) that stays so as the float32
    the trainer computes with (1e39 overflows it, 1e-320 rounds to 0)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        as_float32 = float(np.float32(value)) if abs(value) < 3.5e38 else math.inf
        if not (math.isfinite(value) and math.isfinite(as_float32) and value >= 0):
            raise argparse.ArgumentTypeError(
                f"must be a finite number >= 0 within float32 (up to 3.4e38), got {text}"
            )
        if positive and as_float32 <= 0:
            raise argparse.ArgumentTypeError(
                f"must be positive as a float32 (at least 1.4e-45), got {text}"
            )
        return value

    return parse


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


#: Upper limits of the options: what the trainer's integer types and this machine's memory
#: can hold (a table of MAX_DIM floats per word, seeds as int64, ...).
MAX_DIM = 100_000
MAX_WINDOW = 100_000
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 22
MAX_NEGATIVES = 1 << 20
MAX_THREADS = 1024
MAX_SEED = 2**63 - 1
MAX_PLANTED_TOKENS = 100_000_000
MAX_MIN_COUNT = 2**62


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainingConfig()
    parser = _Parser(
        prog=PROGRAM,
        description=(
            "Train skip-gram word vectors with rustnce's fused sampled-loss SGD steps "
            "(TensorFlow's nce_loss / sampled_softmax_loss, or word2vec's negative sampling), "
            "evaluate them and save them in word2vec text format. Without --corpus, trains on "
            "a generated corpus with planted word groups and reports how well they are found."
        ),
        epilog=(
            "Negatives are drawn per center's window and shared by its pairs (--share window, "
            "word2vec's orientation), or once per batch as TensorFlow's tutorial does "
            "(--share batch). Exit codes: 0 ok, 1 bad input, 2 usage error."
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--corpus",
        metavar="FILE",
        nargs="+",
        help="whitespace-tokenised UTF-8 text, one sentence per line: files or directories "
        "(the files under them), plain, gzip or bzip2; read again every epoch, never held in "
        "memory (default: a generated planted-structure corpus)",
    )
    data.add_argument(
        "--similarity",
        metavar="FILE",
        help="word pairs with human scores, word1<TAB>word2<TAB>score (WordSim-353 layout); "
        "prints the Spearman correlation and the share of pairs out of vocabulary",
    )
    data.add_argument(
        "--analogies",
        metavar="FILE",
        help="analogy questions in the layout of Google's questions-words.txt (': section' "
        "lines, then 'a b c d'); prints the accuracy per section and overall, questions asked "
        f"among the {ANALOGY_VOCABULARY:,} most frequent words as word2vec and gensim do",
    )
    data.add_argument(
        "--planted-tokens",
        type=_integer(1, MAX_PLANTED_TOKENS),
        default=DEFAULT_PLANTED_TOKENS,
        metavar="N",
        help=f"size of the generated corpus (default {DEFAULT_PLANTED_TOKENS:,})",
    )
    data.add_argument(
        "--min-count",
        type=_integer(1, MAX_MIN_COUNT),
        default=5,
        metavar="N",
        help="ignore words seen fewer times (default 5)",
    )
    model = parser.add_argument_group("model and training")
    model.add_argument(
        "--loss",
        choices=LOSSES,
        default=defaults.loss,
        help="nce: TensorFlow's nce_loss; sampled_softmax: its sampled_softmax_loss; neg: "
        "word2vec's negative sampling (nce_loss with expected counts of 1, so ln Q = 0) "
        "(default nce)",
    )
    model.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default=None,
        help="negative sampler: TensorFlow's log_uniform (Zipfian over frequency ranks) or "
        "word2vec's unigram count^distortion (default unigram)",
    )
    model.add_argument(
        "--distortion",
        type=_float32(positive=False),
        default=None,
        metavar="P",
        help="unigram exponent (default 0.75; only with --sampler unigram)",
    )
    model.add_argument(
        "--dim",
        type=_integer(1, MAX_DIM),
        default=defaults.dim,
        metavar="N",
        help=f"vector size (default {defaults.dim})",
    )
    model.add_argument(
        "--window",
        type=_integer(1, MAX_WINDOW),
        default=defaults.window,
        metavar="N",
        help=f"maximum context distance, shrunk at random per word (default {defaults.window})",
    )
    model.add_argument(
        "--negatives",
        type=_integer(1, MAX_NEGATIVES),
        default=defaults.negatives,
        metavar="N",
        help=f"negatives per window, or per batch with --share batch (num_sampled; "
        f"default {defaults.negatives})",
    )
    model.add_argument(
        "--epochs",
        type=_integer(1, MAX_EPOCHS),
        default=defaults.epochs,
        metavar="N",
        help=f"passes over the corpus (default {defaults.epochs})",
    )
    model.add_argument(
        "--subsample",
        type=_non_negative_float,
        default=defaults.subsample,
        metavar="T",
        help=f"word2vec's frequent-word subsampling threshold, 0 for none "
        f"(default {defaults.subsample:g})",
    )
    model.add_argument(
        "--lr",
        type=_float32(positive=True),
        default=None,
        metavar="RATE",
        help=f"starting learning rate per pair, decayed linearly to 0 as in word2vec "
        f"(default {defaults.rate:g})",
    )
    model.add_argument(
        "--batch",
        type=_integer(1, MAX_BATCH),
        default=defaults.batch_pairs,
        metavar="PAIRS",
        help=f"pairs per SGD step (default {defaults.batch_pairs})",
    )
    model.add_argument(
        "--share",
        choices=SHARINGS,
        default=defaults.sharing,
        help="window: each center's window draws its own negatives, shared by the window's "
        "pairs (word2vec's orientation: the contexts' input rows against the center's output "
        "row); batch: one draw of distinct negatives shared by the whole batch, the center as "
        f"input (default {defaults.sharing})",
    )
    model.add_argument(
        "--update",
        choices=UPDATES,
        default=defaults.update,
        help="bounded: each row's step per batch is bounded however many pairs touch it "
        "(stable at any rate and batch size); sequential: word2vec's order, each pair's SGD "
        "step applied before the next pair's; sum: plain SGD on the batch's "
        "summed loss, which blows up on real text with large batches (default: sequential with "
        "--share window, bounded with --share batch)",
    )
    model.add_argument(
        "--fixed-biases",
        action="store_true",
        help="leave the output biases at their starting values instead of training them; "
        "with --loss neg (biases 0) this is word2vec's model exactly, which has none "
        "(see docs/word2vec.md for what it changes)",
    )
    model.add_argument(
        "--deterministic",
        action="store_true",
        help="pair by pair on 2+ threads, keep one thread stepping and form the next batch on "
        "another, so that a seed gives the same bits for any --threads (default: the threads "
        "race over the tables, Hogwild, as word2vec and gensim train: faster, not bit for bit "
        "repeatable)",
    )
    model.add_argument(
        "--threads",
        type=_integer(0, MAX_THREADS),
        default=0,
        metavar="N",
        help="rustnce threads (default 0: all cores)",
    )
    model.add_argument(
        "--seed",
        type=_integer(0, MAX_SEED),
        default=defaults.seed,
        metavar="N",
        help=f"seed of the generated corpus, initial vectors, windows, subsampling and "
        f"negatives (default {defaults.seed})",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--output",
        metavar="FILE",
        default=None,
        help="where to save the vectors, written whole or not at all (default "
        f"$XDG_CACHE_HOME/rustnce/{DEFAULT_OUTPUT}, out of the working tree; with "
        "--compare-samplers one file per sampler)",
    )
    output.add_argument(
        "--binary",
        action="store_true",
        help="save the vectors in word2vec's binary format instead of its text format",
    )
    output.add_argument(
        "--save-model",
        metavar="FILE",
        help="also save the whole model (input and output vectors, biases, vocabulary, counts, "
        "settings, epochs done) after every epoch, for --resume",
    )
    output.add_argument(
        "--resume",
        metavar="FILE",
        help="continue training a model saved with --save-model where it stopped, on the same "
        "corpus (its vocabulary and settings are the model's; training options are ignored)",
    )
    output.add_argument(
        "--compare-samplers",
        action="store_true",
        help="train with log_uniform and with unigram^0.75 on the same corpus and compare",
    )
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    distributed_cli.add_arguments(parser)
    return parser


@dataclass
class Dataset:
    name: str
    vocabulary: Vocabulary
    corpus: EncodedCorpus | TextCorpus
    groups: np.ndarray | None  # planted topic per word (-1: none), or None


@dataclass
class Evaluation:
    purity: Purity | None = None
    similarity: SimilarityResult | None = None
    analogies: AnalogyResult | None = None


def _check_options(args: argparse.Namespace) -> None:
    if args.compare_samplers and args.sampler is not None:
        raise UsageError("--compare-samplers trains with both samplers; drop --sampler")
    if args.distortion is not None and not args.compare_samplers and args.sampler != "unigram":
        raise UsageError("--distortion applies only to --sampler unigram")


def _model_saver(
    path: str, vocabulary: Vocabulary, config: TrainingConfig
) -> Callable[[TrainingResult], None]:
    """Saves the model (for ``--resume``) at the end of every epoch."""
    settings = dataclasses.asdict(config)
    settings["update"] = config.rule  # resumed with the same rule whatever the defaults
    settings.pop("threads")  # how to run, not the model: taken from the command line
    settings.pop("deterministic")

    def save(result: TrainingResult) -> None:
        tables = (result.input_vectors, result.output_vectors, result.biases)
        try:
            save_model(
                path, vocabulary.words, vocabulary.counts, tables, settings, result.epochs_done
            )
        except OSError as error:
            raise InputError(f"cannot write {path!r}: {error.strerror or error}") from None

    return save


def _load_resume(args: argparse.Namespace) -> tuple[Vocabulary, TrainingConfig, TrainingResult]:
    """The model to resume: its vocabulary, settings and tables."""
    if args.compare_samplers:
        raise UsageError("--resume continues one model; drop --compare-samplers")
    try:
        words, counts, tables, settings, epochs_done = load_model(args.resume)
        config = TrainingConfig(**settings)
        config.check(len(words))
    except (VectorFileError, TypeError, ValueError) as error:
        raise InputError(f"cannot resume from {args.resume!r}: {error}") from None
    if epochs_done >= config.epochs:
        raise InputError(
            f"the model in {args.resume!r} has finished its {config.epochs} epochs; nothing to do"
        )
    config.threads = args.threads
    config.deterministic = args.deterministic
    vocabulary = Vocabulary(tuple(words), counts)
    return vocabulary, config, TrainingResult(*tables, epochs_done=epochs_done)


def _load_dataset(args: argparse.Namespace, vocabulary: Vocabulary | None = None) -> Dataset:
    """The corpus, encoded with ``vocabulary`` when given (resuming) or its own."""
    if args.corpus is None:
        planted = planted_corpus(tokens=args.planted_tokens, seed=args.seed)
        try:
            own, corpus, groups = planted.training_data(args.min_count)
        except CorpusError as error:
            raise InputError(str(error)) from None
        if vocabulary is None or vocabulary.words == own.words:
            vocabulary = own
        else:
            corpus = encode(planted.sentence_tokens(), vocabulary)
            groups = None
        name = (
            f"planted corpus: {len(planted):,} tokens, {planted.num_groups} groups of "
            f"{int((planted.groups == 0).sum())} words + {int((planted.groups < 0).sum())} "
            "function words"
        )
        return Dataset(name, vocabulary, corpus, groups)
    try:
        vocabulary, text = open_corpus(args.corpus, args.min_count, vocabulary)
    except CorpusError as error:
        raise InputError(str(error)) from None
    files = len(text.files)
    where = " ".join(args.corpus) + (f" ({files} files)" if files > 1 else "")
    name = f"{where}: {text.raw_tokens:,} tokens"
    return Dataset(name, vocabulary, text, None)


class ProgressBar:
    """A self-overwriting line on a terminal; elsewhere (a pipe, a log) one line per epoch."""

    def __init__(self, stream: TextIO, label: str = "") -> None:
        self.stream = stream
        self.label = label
        self.tty = stream.isatty()
        self.width = 0

    def __call__(self, progress: Progress) -> None:
        if not (self.tty or progress.epoch_end):
            return
        filled = int(progress.fraction * 24)
        bar = "#" * filled + "." * (24 - filled)
        left = progress.seconds / progress.fraction - progress.seconds if progress.fraction else 0
        text = (
            f"{self.label}epoch {progress.epoch}/{progress.epochs} [{bar}] "
            f"{progress.fraction:4.0%} {progress.words_per_second:,.0f} words/s "
            f"loss {progress.loss:.4f} lr {progress.learning_rate:.3g} eta {left:.0f}s"
        )
        if self.tty:
            self.stream.write("\r" + text + " " * max(self.width - len(text), 0))
            self.width = len(text)
            if progress.fraction >= 1.0:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _evaluate(
    dataset: Dataset,
    result: TrainingResult,
    pairs: list[tuple[str, str, float]] | None,
    analogies: list[tuple[str, list[tuple[str, ...]]]] | None = None,
) -> Evaluation:
    vectors = result.input_vectors
    if not np.isfinite(vectors).all():
        raise InputError(
            "training diverged (non-finite vectors); lower the learning rate or the batch size "
            "(--lr, --batch)"
        )
    evaluation = Evaluation()
    if dataset.groups is not None:
        evaluation.purity = group_purity(vectors, dataset.groups)
    if pairs is not None:
        evaluation.similarity = word_similarity(vectors, dataset.vocabulary, pairs)
    if analogies is not None:
        evaluation.analogies = word_analogies(vectors, dataset.vocabulary, analogies)
    return evaluation


def _describe(evaluation: Evaluation) -> list[str]:
    lines = []
    purity = evaluation.purity
    if purity is not None:
        lines.append(
            f"nearest-neighbour group purity: {purity.at_1:.3f} "
            f"(chance {purity.chance:.3f}; top-{purity.k}: {purity.at_k:.3f}) "
            f"over {purity.words:,} grouped words"
        )
        head, middle, tail = purity.by_frequency
        lines.append(
            f"  by frequency: most frequent third {head:.3f}, middle {middle:.3f}, "
            f"least frequent {tail:.3f}"
        )
    similarity = evaluation.similarity
    if similarity is not None:
        rho = "n/a" if math.isnan(similarity.spearman) else f"{similarity.spearman:.3f}"
        lines.append(
            f"similarity: Spearman {rho} over {similarity.used:,} of {similarity.pairs:,} pairs "
            f"({similarity.oov_share:.1%} out of vocabulary)"
        )
    analogies = evaluation.analogies
    if analogies is not None:
        lines.append(
            f"analogies: accuracy {_share(analogies.accuracy)} ({analogies.correct:,} of "
            f"{analogies.asked:,} asked; {analogies.questions - analogies.asked:,} of "
            f"{analogies.questions:,} questions have a word outside the {ANALOGY_VOCABULARY:,} "
            "most frequent)"
        )
        for section in analogies.sections:
            lines.append(
                f"  {section.name}: {_share(section.accuracy)} ({section.correct:,} of "
                f"{section.asked:,} asked, {section.questions:,} questions)"
            )
    return lines


def _share(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _save(path: str, vocabulary: Vocabulary, result: TrainingResult, binary: bool) -> None:
    try:
        if binary:
            save_word2vec_binary(path, vocabulary.words, result.input_vectors)
        else:
            save_word2vec_format(path, vocabulary.words, result.input_vectors)
    except OSError as error:
        raise InputError(f"cannot write {path!r}: {error.strerror or error}") from None


def _summary(config: TrainingConfig, result: TrainingResult) -> str:
    sampler = config.sampler
    if sampler == "unigram":
        sampler = f"unigram^{config.distortion:g}"
    return (
        f"loss {config.loss}, sampler {sampler}: {result.seconds:.1f} s, "
        f"{result.words_per_second:,.0f} words/s, {result.pairs / max(result.seconds, 1e-9):,.0f} "
        f"pairs/s, loss per pair {result.epoch_losses[0]:.4f} -> {result.epoch_losses[-1]:.4f}"
    )


def default_output() -> str:
    """Where vectors go without ``--output``: the user's cache directory, out of any
    repository a run is started in (``$XDG_CACHE_HOME/rustnce/vectors.txt``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "rustnce", DEFAULT_OUTPUT)


def _output_for(base: str | None, sampler: str, several: bool) -> str:
    if base is None:
        base = default_output()
        try:
            os.makedirs(os.path.dirname(base), exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create {os.path.dirname(base)!r}: {error.strerror}") from None
    if not several:
        return base
    stem, extension = os.path.splitext(base)
    return f"{stem}.{sampler}{extension or '.txt'}"


def _inputs(args: argparse.Namespace) -> dict[str, list[str]]:
    """The files (or corpus directories) the run reads, by option."""
    corpus = args.corpus or []
    names = {
        "--corpus": [corpus] if isinstance(corpus, str) else corpus,
        "--similarity": [args.similarity],
        "--analogies": [args.analogies],
        "--resume": [args.resume],
    }
    return {
        option: [path for path in paths if path is not None]
        for option, paths in names.items()
        if any(path is not None for path in paths)
    }


def _check_outputs(output_option: str, outputs: list[str], inputs: dict[str, list[str]]) -> None:
    """Before any work: every output can be written and is none of the inputs (by name, through
    symbolic links or as a hard link), nor inside a corpus directory (it would be read as
    corpus the next run)."""
    for output in outputs:
        for option, paths in inputs.items():
            for path in paths:
                same = os.path.realpath(output) == os.path.realpath(path)
                if not same and os.path.exists(output) and os.path.exists(path):
                    same = os.path.samefile(output, path)
                if same:
                    raise UsageError(
                        f"{output_option} {output!r} is the {option} file; it would be overwritten"
                    )
                if os.path.isdir(path):
                    directory = os.path.realpath(path)
                    place = os.path.realpath(output)
                    if os.path.commonpath([directory, place]) == directory:
                        raise UsageError(
                            f"{output_option} {output!r} is inside the {option} directory "
                            f"{path!r}; it would be read as corpus"
                        )
        try:
            check_writable(output)
        except OSError as error:
            raise InputError(f"cannot write {output!r}: {error.strerror or error}") from None


def _check_memory(words: int, dim: int) -> None:
    """Refuses tables that cannot fit in this machine's memory before allocating them."""
    needed = 2 * words * dim * 4
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return
    if needed > physical:
        raise UsageError(
            f"--dim {dim} with {words:,} words needs {needed / 2**30:,.1f} GiB for the vectors, "
            f"more than this machine's {physical / 2**30:,.1f} GiB"
        )


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.workers is not None or distributed_cli.check_arguments(args):
        # Distributed training (Ray), after the same output checks as below.
        if args.corpus is not None:
            if len(args.corpus) > 1 or os.path.isdir(args.corpus[0]):
                raise UsageError("distributed training reads one --corpus file")
            args.corpus = args.corpus[0]
        args.output = _output_for(args.output, args.sampler or TrainingConfig.sampler, False)
        _check_outputs("--output", [args.output], _inputs(args))
        return distributed_cli.run(args, out, err, ProgressBar, UsageError, InputError)
    _check_options(args)
    if args.similarity is not None:
        try:
            pairs = read_similarity_pairs(args.similarity)
        except SimilarityFileError as error:
            raise InputError(str(error)) from None
    else:
        pairs = None
    analogies = None
    if args.analogies is not None:
        try:
            analogies = read_analogies(args.analogies)
        except AnalogyFileError as error:
            raise InputError(str(error)) from None
    samplers = list(SAMPLERS) if args.compare_samplers else [args.sampler or TrainingConfig.sampler]
    outputs = [_output_for(args.output, sampler, len(samplers) > 1) for sampler in samplers]
    if args.save_model is not None and args.save_model in outputs:
        raise UsageError(f"--save-model {args.save_model!r} is the --output file")
    inputs = _inputs(args)
    _check_outputs("--output", outputs, inputs)
    if args.save_model is not None:
        # Saving over the model being resumed is fine: it is read whole before training.
        inputs.pop("--resume", None)
        _check_outputs("--save-model", [args.save_model], inputs)
    resume = _load_resume(args) if args.resume is not None else None
    dataset = _load_dataset(args, None if resume is None else resume[0])
    if isinstance(dataset.corpus, TextCorpus):
        try:
            has_pairs = dataset.corpus.has_pairs()  # reads up to the first line with a pair
        except OSError as error:
            raise InputError(str(error)) from None
    else:
        has_pairs = bool(np.any(np.bincount(dataset.corpus.sentences) >= 2))
    if not has_pairs:
        raise InputError(
            f"the corpus has no training pairs: no line holds two words seen --min-count="
            f"{args.min_count} times or more"
        )
    configs = [TrainingConfig.from_options(args, sampler) for sampler in samplers]
    if resume is not None:
        configs = [resume[1]]
    _check_memory(len(dataset.vocabulary), configs[0].dim)
    try:
        for config in configs:
            config.check(len(dataset.vocabulary))
    except ValueError as error:
        raise UsageError(str(error)) from None
    first = configs[0]
    print(f"{PROGRAM} {rustnce.__version__}: skip-gram on {dataset.name}", file=out)
    print(
        f"vocabulary {len(dataset.vocabulary):,} words (min count {args.min_count}), "
        f"{len(dataset.corpus):,} training tokens; dim {first.dim}, window {first.window}, "
        f"{first.negatives} negatives per {first.sharing}, {first.batch_pairs} pairs per batch, "
        f"{first.epochs} "
        f"epochs, lr {first.rate:g}, subsample {first.subsample:g}, "
        + (
            "pair by pair"
            + (
                " on one thread"
                if (threads := args.threads or rustnce.get_num_threads()) == 1
                else ", the next batch formed on a second thread"
                if first.deterministic
                else f" on {threads} racing threads"
            )
            if first.rule == "sequential"
            else f"{first.rule} step, threads {args.threads or rustnce.get_num_threads()}"
        ),
        file=out,
    )
    out.flush()
    rows = []
    for config in configs:
        label = f"[{config.sampler}] " if len(configs) > 1 else ""
        bar = None if args.quiet else ProgressBar(err, label)
        save_model_now = None
        if args.save_model is not None:
            save_model_now = _model_saver(args.save_model, dataset.vocabulary, config)
        try:
            result = train(
                dataset.corpus,
                dataset.vocabulary,
                config,
                progress=bar,
                resume=None if resume is None else resume[2],
                on_epoch_end=save_model_now,
            )
        except TrainingDiverged as error:
            if bar is not None and bar.tty:
                err.write("\n")
            raise InputError(f"{error} (--lr, --batch)") from None
        except CorpusError as error:  # a corpus file changed or broke during training
            if bar is not None and bar.tty:
                err.write("\n")
            raise InputError(str(error)) from None
        if result.pairs == 0:
            raise InputError("no training pairs were left after subsampling; lower --subsample")
        evaluation = _evaluate(dataset, result, pairs, analogies)
        path = outputs[configs.index(config)]
        _save(path, dataset.vocabulary, result, args.binary)
        rows.append((config, result, evaluation, path))
        print(_summary(config, result), file=out)
        for line in _describe(evaluation):
            print("  " + line, file=out)
        kind = "binary" if args.binary else "text"
        print(f"  vectors saved to {path} (word2vec {kind} format)", file=out)
        if args.save_model is not None:
            print(f"  model saved to {args.save_model} (--resume it)", file=out)
        out.flush()
    if len(rows) > 1:
        _print_comparison(rows, out)
    return 0


def _print_comparison(
    rows: list[tuple[TrainingConfig, TrainingResult, Evaluation, str]], out: TextIO
) -> None:
    header = ["sampler", "words/s", "seconds", "loss/pair"]
    has_purity = rows[0][2].purity is not None
    has_similarity = rows[0][2].similarity is not None
    if has_purity:
        k = rows[0][2].purity.k  # type: ignore[union-attr]
        header += ["purity@1", f"purity@{k}", "head", "middle", "tail", "chance"]
    if has_similarity:
        header += ["Spearman", "OOV"]
    table = []
    for config, result, evaluation, _ in rows:
        name = "log_uniform (TF)" if config.sampler == "log_uniform" else "unigram^0.75 (w2v)"
        if config.sampler == "unigram" and config.distortion != 0.75:
            name = f"unigram^{config.distortion:g}"
        cells = [
            name,
            f"{result.words_per_second:,.0f}",
            f"{result.seconds:.1f}",
            f"{result.epoch_losses[-1]:.4f}",
        ]
        if evaluation.purity is not None:
            p = evaluation.purity
            cells += [f"{p.at_1:.3f}", f"{p.at_k:.3f}"]
            cells += [f"{value:.3f}" for value in p.by_frequency] + [f"{p.chance:.3f}"]
        if evaluation.similarity is not None:
            s = evaluation.similarity
            cells += [
                "n/a" if math.isnan(s.spearman) else f"{s.spearman:.3f}",
                f"{s.oov_share:.1%}",
            ]
        table.append(cells)
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    print("sampler comparison (same corpus, loss, seed):", file=out)
    for row in [header, *table]:
        print("  " + "  ".join(cell.rjust(w) for cell, w in zip(row, widths)), file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m rustnce`` and the ``rustnce`` script; returns the exit code."""
    out, err = sys.stdout, sys.stderr
    try:
        args = build_parser().parse_args(argv)
        return run(args, out, err)
    except UsageError as error:
        print(f"{PROGRAM}: error: {error} (see {PROGRAM} --help)", file=err)
        return 2
    except InputError as error:
        print(f"{PROGRAM}: error: {error}", file=err)
        return 1
    except MemoryError:
        print(
            f"{PROGRAM}: error: out of memory; use a smaller corpus, --dim or vocabulary "
            "(--min-count)",
            file=err,
        )
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROGRAM}: interrupted", file=err)
        return 130
