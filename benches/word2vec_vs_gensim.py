"""Skip-gram with rustnce's fused SGD steps against gensim's Word2Vec and fastText, on the same
corpora, in one run.

    python -m pip install -r benches/requirements-word2vec.txt   # gensim
    benches/build_fasttext.sh                                    # fastText's official binary
    python benches/word2vec_vs_gensim.py [--epochs 5]

Corpora:
- ``enwiki``: the plain text of the shortened English Wikipedia dump that gensim ships as test
  data (``enwiki-latest-pages-articles1.xml-...-shortened.bz2``), extracted with gensim's
  ``WikiCorpus`` (lower-cased, ~450k tokens); scored by Spearman correlation with WordSim-353
  and SimLex-999 (gensim's test data too), pairs matched case-insensitively, and by accuracy on
  Google's analogy questions among the 30,000 most frequent words (``questions-words.txt``).
- ``lee``: gensim's ``lee_background.cor`` (~60k tokens; too small for stable similarity
  scores, reported for completeness).
- ``file:PATH``: any text file, one sentence per line (e.g. text from Debian packages).
- ``planted``: rustnce's planted-structure corpus (``--planted-tokens``), scored by
  nearest-neighbour group purity, for throughput on a larger corpus.

All get the same corpus, ``vector_size``, ``window``, ``epochs``, ``min_count`` and
subsampling threshold; gensim runs ``sg=1, negative=5, workers=--threads`` (its negatives are
drawn per pair); fastText runs ``skipgram -neg 5 -minn 0 -maxn 0`` (no subword n-grams:
word2vec's model), ``-thread --threads``, ``-seed`` as the others and word2vec's learning rate
0.025, reading the same sentences from a file (it adds an end-of-line token ``</s>`` to each,
which is dropped before evaluation); its vectors are read back from the ``.vec`` file it writes.
fastText is the official command-line binary that ``benches/build_fasttext.sh`` builds at a
pinned commit (``--fasttext PATH`` for another); the Python package ``fasttext-numpy2`` is not
used: it stops with "Encountered NaN." on real text, see docs/word2vec.md. rustnce runs with
its defaults, ``--negatives`` (default 10) shared by each batch of 512 pairs, reading the corpus
from the same file as training goes (``open_corpus``, what ``python -m rustnce --corpus`` does).
Speed is raw corpus words (all tokens, those under ``min_count`` too) times epochs over the
wall-clock seconds of training: for gensim and rustnce the vocabulary is built beforehand and
the clock runs around their training call; fastText's clock runs from the moment it reports
its vocabulary (its "Number of labels" line on stderr) to its final progress line, so it covers
its matrix initialisation and training, not its vocabulary pass nor the writing of its output
files (its own words/sec/thread, counted over in-vocabulary tokens and ``</s>``, is printed
beside). Each figure is the median over ``--repeats`` interleaved runs; quality is the mean
over those runs (different seeds). Ratios are against gensim and fastText from the same run.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

import rustnce
from rustnce.word2vec import (
    TrainingConfig,
    Vocabulary,
    group_purity,
    load_word2vec_format,
    open_corpus,
    planted_corpus,
    read_sentences,
    read_similarity_pairs,
    train,
    word_similarity,
)
from rustnce.word2vec.evaluation import read_analogies, word_analogies
from rustnce.word2vec.training import UPDATES

BENCHES = os.path.dirname(os.path.abspath(__file__))

#: Google's analogy questions (gensim's test data), filled in by ``main``.
ANALOGIES: list[tuple[str, list[tuple[str, ...]]]] = []


@dataclass
class Corpus:
    name: str
    sentences: list[list[str]]
    groups: dict[str, int] | None = None  # planted group of each word
    path: str = ""  # the sentences as a text file, for rustnce and fastText (written by main)

    def write(self, directory: str) -> None:
        self.path = os.path.join(directory, f"{len(os.listdir(directory))}.txt")
        with open(self.path, "w", encoding="utf-8") as handle:
            for sentence in self.sentences:
                handle.write(" ".join(sentence) + "\n")


class ForeignLoad:
    """CPU time other processes (not this one nor its children) used while measuring, in cores
    (from /proc/stat and /proc/self/stat); None where /proc is missing."""

    def __init__(self) -> None:
        self._start = self._read()
        self._time = time.perf_counter()

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as handle:
                values = [int(v) for v in handle.readline().split()[1:]]
            with open("/proc/self/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        busy = sum(values[:8]) - values[3] - values[4]  # all but idle and iowait
        # this process and its waited-for children (fastText): utime, stime, cutime, cstime
        return busy, sum(int(v) for v in fields[11:15])

    def cores(self) -> float | None:
        end = self._read()
        elapsed = time.perf_counter() - self._time
        if self._start is None or end is None or elapsed <= 0:
            return None
        foreign = (end[0] - self._start[0]) - (end[1] - self._start[1])
        return max(foreign, 0) / os.sysconf("SC_CLK_TCK") / elapsed


def wait_for_idle(max_seconds: float) -> None:
    """Waits until other processes use less than 0.1 core over half a second."""
    deadline = time.perf_counter() + max_seconds
    while time.perf_counter() < deadline:
        load = ForeignLoad()
        time.sleep(0.5)
        cores = load.cores()
        if cores is None or cores < 0.1:
            return


@dataclass
class Outcome:
    seconds: list[float] = field(default_factory=list)
    foreign: list[float] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, seconds: float, foreign: float | None, scores: dict[str, float]) -> None:
        self.seconds.append(seconds)
        if foreign is not None:
            self.foreign.append(foreign)
        for name, value in scores.items():
            self.scores.setdefault(name, []).append(value)


def gensim_data_dir() -> str:
    import gensim

    return os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")


def chunked(sentences: list[list[str]], limit: int = 10_000) -> list[list[str]]:
    """Lines cut into pieces of at most ``limit`` tokens: gensim ignores the words past 10,000
    in a sentence, so both sides get the same pieces."""
    return [s[i : i + limit] for s in sentences for i in range(0, len(s), limit)]


def enwiki_sentences(cache_dir: str) -> list[list[str]]:
    path = os.path.join(cache_dir, "rustnce_enwiki_shortened.txt")
    if not os.path.exists(path):
        from gensim.corpora.wikicorpus import WikiCorpus

        dump = os.path.join(
            gensim_data_dir(),
            "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
        )
        wiki = WikiCorpus(dump, dictionary={}, processes=1)
        with open(path + ".part", "w", encoding="utf-8") as handle:
            for tokens in wiki.get_texts():
                handle.write(" ".join(tokens) + "\n")
        os.replace(path + ".part", path)
    return chunked(read_sentences(path))


def evaluate(
    vectors: np.ndarray,
    vocabulary: Vocabulary,
    corpus: Corpus,
    pair_sets: dict[str, list[tuple[str, str, float]]],
) -> dict[str, float]:
    if corpus.groups is not None:
        groups = np.array([corpus.groups.get(w, -1) for w in vocabulary.words])
        return {"purity@1": group_purity(vectors, groups).at_1}
    scores = {}
    for name, pairs in pair_sets.items():
        result = word_similarity(vectors, vocabulary, pairs)
        scores[name] = result.spearman
        scores[f"{name} pairs"] = result.used
    analogies = word_analogies(vectors, vocabulary, ANALOGIES)
    scores["analogy"] = analogies.accuracy
    scores["analogy pairs"] = analogies.asked
    return scores


def run_gensim(
    corpus: Corpus, args: argparse.Namespace, seed: int, alpha: float
) -> tuple[float, np.ndarray, Vocabulary]:
    from gensim.models import Word2Vec

    model = Word2Vec(
        sg=1,
        negative=5,
        hs=0,
        window=args.window,
        vector_size=args.dim,
        workers=args.threads,
        epochs=args.epochs,
        min_count=args.min_count,
        sample=args.subsample,
        seed=seed,
        alpha=alpha,
    )
    model.build_vocab(corpus.sentences)
    start = time.perf_counter()
    model.train(corpus.sentences, total_examples=model.corpus_count, epochs=args.epochs)
    seconds = time.perf_counter() - start
    words = model.wv.index_to_key
    counts = np.array([model.wv.get_vecattr(w, "count") for w in words])
    return seconds, model.wv.vectors, Vocabulary(tuple(words), counts)


def fasttext_binary(option: str) -> str:
    """The fastText binary: ``option`` if it is a path, else the one ``build_fasttext.sh``
    builds (at once when it is built already)."""
    if option != "build":
        found = shutil.which(option)
        if found is None:
            raise SystemExit(f"--fasttext {option!r} is not an executable file")
        return os.path.abspath(found)
    script = os.path.join(BENCHES, "build_fasttext.sh")
    built = subprocess.run([script], stdout=subprocess.PIPE, text=True)
    if built.returncode != 0:
        raise SystemExit(
            f"building fastText failed (exit {built.returncode}); run {script} (needs git, make "
            "and g++; FASTTEXT_REPOSITORY=/path/to/a/clone without network) or pass "
            "--fasttext PATH to a fastText binary"
        )
    return os.path.join(os.path.dirname(BENCHES), built.stdout.strip().splitlines()[-1])


@dataclass
class FastTextRun:
    seconds: float
    vectors: np.ndarray
    vocabulary: Vocabulary
    words_per_second_per_thread: float  # fastText's own figure, from its final progress line


def run_fasttext(corpus: Corpus, args: argparse.Namespace, seed: int, binary: str) -> FastTextRun:
    settings = {
        "lr": 0.025,
        "dim": args.dim,
        "ws": args.window,
        "epoch": args.epochs,
        "minCount": args.min_count,
        "neg": 5,
        "minn": 0,
        "maxn": 0,
        "t": args.subsample,
        "thread": args.threads,
        "seed": seed,
        "verbose": 2,
    }
    with tempfile.TemporaryDirectory(prefix="rustnce-fasttext-") as directory:
        output = os.path.join(directory, "model")
        command = [binary, "skipgram", "-input", corpus.path, "-output", output]
        for name, value in settings.items():
            command += [f"-{name}", str(value)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert process.stderr is not None
        log = b""
        started = finished = None
        # stderr is unbuffered: the vocabulary summary ends with "Number of labels: N\n", then
        # progress lines end in "\r" until the last one, which ends in "\n" once training is over.
        while chunk := os.read(process.stderr.fileno(), 1 << 16):
            now = time.perf_counter()
            log += chunk
            labels = log.find(b"Number of labels")
            if started is None and labels >= 0 and b"\n" in log[labels:]:
                started = now
                training_from = log.index(b"\n", labels) + 1
            elif started is not None and finished is None and b"\n" in log[training_from:]:
                finished = now
        process.wait()
        text = log.decode("utf-8", "replace")
        if process.returncode != 0 or started is None or finished is None:
            last = text.replace("\r", "\n").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"fastText exited with {process.returncode}: {last[0]}")
        words, vectors = load_word2vec_format(output + ".vec")
    own = re.findall(r"words/sec/thread:\s*(\d+)", text)
    counts = Counter(word for sentence in corpus.sentences for word in sentence)
    keep = [k for k, word in enumerate(words) if word != "</s>"]
    vocabulary = Vocabulary(
        tuple(words[k] for k in keep), np.array([counts[words[k]] for k in keep], dtype=np.int64)
    )
    return FastTextRun(finished - started, vectors[keep], vocabulary, float(own[-1]))


def run_rustnce(
    corpus: Corpus,
    args: argparse.Namespace,
    seed: int,
    loss: str,
    run: Run,
) -> tuple[float, np.ndarray, Vocabulary]:
    sharing, negatives, learning_rate, update, deterministic = run
    vocabulary, encoded = open_corpus(corpus.path, args.min_count)
    config = TrainingConfig(
        dim=args.dim,
        window=args.window,
        epochs=args.epochs,
        subsample=args.subsample,
        loss=loss,
        sampler=args.sampler,
        negatives=negatives,
        sharing=sharing,
        seed=seed,
        threads=args.threads,
        learning_rate=learning_rate,
        update=update,
        deterministic=deterministic,
    )
    result = train(encoded, vocabulary, config)
    return result.seconds, result.input_vectors, vocabulary


#: rustnce's settings of one contender: sharing, negatives, learning rate (None: its default),
#: update rule (None: its default) and whether pair by pair stays deterministic.
Run = tuple[str, int, float | None, str | None, bool]


def rustnce_runs(text: str) -> list[Run]:
    """``window:5,batch:10:0.05,window:5::sequential:deterministic`` as
    ``[("window", 5, None, None, False), ("batch", 10, 0.05, None, False), ("window", 5, None,
    "sequential", True)]`` (no learning rate or update rule: the trainer's default; no
    ``deterministic``: pair by pair, the threads race)."""
    runs: list[Run] = []
    for spec in text.split(","):
        sharing, _, rest = spec.partition(":")
        negatives, _, rest = rest.partition(":")
        rate, _, rest = rest.partition(":")
        update, _, mode = rest.partition(":")
        try:
            learning_rate = float(rate) if rate else None
        except ValueError:
            learning_rate = -1.0
        if (
            sharing not in ("window", "batch")
            or not negatives.isdigit()
            or int(negatives) < 1
            or (learning_rate is not None and not learning_rate > 0)
            or (update and update not in UPDATES)
            or mode not in ("", "deterministic")
        ):
            raise argparse.ArgumentTypeError(
                f"expected SHARING:NEGATIVES[:LR[:UPDATE[:deterministic]]], got {spec!r}"
            )
        runs.append((sharing, int(negatives), learning_rate, update or None, bool(mode)))
    return runs


def alphas(text: str) -> list[float]:
    """``0.025,0.05`` as ``[0.025, 0.05]``."""
    try:
        values = [float(value) for value in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(value > 0 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive rates, comma-separated, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--subsample", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--losses", default="nce,sampled_softmax,neg")
    parser.add_argument(
        "--rustnce",
        type=rustnce_runs,
        default=[(TrainingConfig().sharing, TrainingConfig().negatives, None, None, False)],
        help="rustnce's runs as SHARING:NEGATIVES[:LR[:UPDATE[:deterministic]]], "
        "comma-separated, e.g. window:5,batch:10,window:5:0.025,window:5::sequential:"
        "deterministic (default: its defaults; no LR or UPDATE: its default rate or update "
        "rule; deterministic: pair by pair with one thread stepping, not racing threads)",
    )
    parser.add_argument(
        "--gensim-alphas",
        type=alphas,
        default=[0.025],
        help="gensim's starting learning rates, comma-separated (default 0.025, its own "
        "default); the first is the reference of the speed ratios",
    )
    parser.add_argument("--sampler", default="unigram", choices=["unigram", "log_uniform"])
    parser.add_argument("--corpora", default="enwiki,planted,lee")
    parser.add_argument("--planted-tokens", type=int, default=2_000_000)
    parser.add_argument("--cache-dir", default=tempfile.gettempdir())
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to go quiet",
    )
    parser.add_argument(
        "--fasttext",
        default="build",
        metavar="PATH",
        help="fastText's binary (default: the one benches/build_fasttext.sh builds)",
    )
    args = parser.parse_args(argv)
    try:
        import gensim
    except ImportError as error:
        print(
            f"{error.name} is not installed: python -m pip install -r "
            "benches/requirements-word2vec.txt",
            file=sys.stderr,
        )
        return 1
    rustnce.set_num_threads(args.threads)
    fasttext = fasttext_binary(args.fasttext)
    data = gensim_data_dir()
    ANALOGIES[:] = read_analogies(os.path.join(data, "questions-words.txt"))
    pair_sets = {
        "WS353": read_similarity_pairs(os.path.join(data, "wordsim353.tsv")),
        "SimLex": read_similarity_pairs(os.path.join(data, "simlex999.txt")),
    }
    corpora = []
    for name in args.corpora.split(","):
        if name == "enwiki":
            corpora.append(Corpus("enwiki", enwiki_sentences(args.cache_dir)))
        elif name == "lee":
            lee = read_sentences(os.path.join(data, "lee_background.cor"))
            corpora.append(Corpus("lee", chunked(lee)))
        elif name == "planted":
            planted = planted_corpus(tokens=args.planted_tokens, seed=0)
            groups = dict(zip(planted.words, planted.groups.tolist()))
            corpora.append(Corpus("planted", list(planted.sentence_tokens()), groups))
        elif name.startswith("file:"):
            path = name[len("file:") :]
            corpora.append(Corpus(os.path.basename(path), chunked(read_sentences(path))))
        else:
            parser.error(f"unknown corpus {name!r}")
    print(
        f"gensim {gensim.__version__} and fastText vs rustnce {rustnce.__version__}: skip-gram, "
        f"dim {args.dim}, window {args.window}, epochs {args.epochs}, min_count {args.min_count}, "
        f"sample {args.subsample:g}, {args.threads} threads, sampler {args.sampler}; "
        f"median of {args.repeats} interleaved runs; fastText: {fasttext}"
    )
    scratch = tempfile.TemporaryDirectory(prefix="rustnce-word2vec-bench-")
    for corpus in corpora:
        corpus.write(scratch.name)
    # (name, the rustnce loss or the other trainer's name, rustnce's sharing, negatives and
    # learning rate, or gensim's alpha)
    contenders: list[tuple[str, str | None, Run]] = [
        (f"gensim sg neg=5/pair a={alpha:g}", None, ("", 0, alpha, None, False))
        for alpha in args.gensim_alphas
    ]
    contenders.insert(1, ("fastText sg neg=5/pair", "fasttext", ("", 0, None, None, False)))
    for loss in args.losses.split(","):
        for run in args.rustnce:
            sharing, negatives, rate, update, deterministic = run
            lr = "" if rate is None else f" lr={rate:g}"
            rule = "" if update is None else f" {update}"
            rule += " deterministic" if deterministic else ""
            contenders.append((f"rustnce {loss} {negatives}/{sharing}{lr}{rule}", loss, run))
    for corpus in corpora:
        words = sum(len(s) for s in corpus.sentences)
        outcomes = {name: Outcome() for name, _, _ in contenders}
        fasttext_own: list[float] = []  # fastText's own words/sec/thread
        for repeat in range(args.repeats):
            for name, loss, run in contenders:
                seed = repeat + 1
                wait_for_idle(args.wait_idle)
                load = ForeignLoad()
                if loss is None:
                    alpha = run[2]
                    assert alpha is not None
                    seconds, vectors, vocabulary = run_gensim(corpus, args, seed, alpha)
                elif loss == "fasttext":
                    try:
                        fasttext_run = run_fasttext(corpus, args, seed, fasttext)
                    except RuntimeError as error:
                        outcomes[name].failures.append(str(error))
                        continue
                    seconds, vectors = fasttext_run.seconds, fasttext_run.vectors
                    vocabulary = fasttext_run.vocabulary
                    fasttext_own.append(fasttext_run.words_per_second_per_thread)
                else:
                    seconds, vectors, vocabulary = run_rustnce(corpus, args, seed, loss, run)
                foreign = load.cores()
                scores = evaluate(vectors, vocabulary, corpus, pair_sets)
                outcomes[name].add(seconds, foreign, scores)
        print(f"\n{corpus.name}: {words:,} tokens, {len(corpus.sentences):,} sentences")
        reference = statistics.median(outcomes[contenders[0][0]].seconds)
        score_names = [s for s in next(iter(outcomes.values())).scores if not s.endswith("pairs")]
        fasttext_times = outcomes[contenders[1][0]].seconds
        fasttext_seconds = statistics.median(fasttext_times) if fasttext_times else math.nan
        header = f"  {'':34s} {'words/s':>10s} {'vs gensim':>9s} {'vs fastText':>11s}" + "".join(
            f" {s + ' (sd)':>12s}" for s in score_names
        )
        print(header + f" {'others':>7s}")
        for name, outcome in outcomes.items():
            if not outcome.seconds:
                print(f"  {name:34s} failed in every run: {outcome.failures[0]}")
                continue
            if outcome.failures:
                failed = f"{len(outcome.failures)} of {args.repeats} runs failed"
                print(f"  ({name}: {failed}: {outcome.failures[0]})")
            seconds = statistics.median(outcome.seconds)
            speed = words * args.epochs / seconds
            cells = "".join(
                f" {np.mean(outcome.scores[s]):6.3f}±{np.std(outcome.scores[s]):.3f}"
                for s in score_names
            )
            others = f"{max(outcome.foreign):.2f}" if outcome.foreign else "?"
            ratios = f"{reference / seconds:8.2f}x {fasttext_seconds / seconds:10.2f}x"
            print(f"  {name:34s} {speed:10,.0f} {ratios}{cells} {others:>7s}")
        if fasttext_own:
            own = statistics.median(fasttext_own)
            print(
                f"  fastText's own figure: {own:,.0f} words/sec/thread x {args.threads} threads "
                f"= {own * args.threads:,.0f} (its in-vocabulary tokens and </s> per second)"
            )
        used = {s: outcome.scores[s][0] for s in outcome.scores if s.endswith("pairs")}
        if used:
            print(
                "  pairs in vocabulary: " + ", ".join(f"{k[:-6]} {int(v)}" for k, v in used.items())
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
