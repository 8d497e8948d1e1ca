"""Skip-gram with rustnce's fused SGD steps against gensim's Word2Vec and fastText, on the same
corpora, in one run.

    python -m pip install -r benches/requirements-word2vec.txt   # gensim, fasttext-numpy2
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
drawn per pair); fastText (``fasttext-numpy2``, skipgram) runs ``neg=5``, ``minn=0 maxn=0`` (no
subword n-grams: word2vec's model), ``thread=--threads`` and word2vec's learning rate 0.025
(its default 0.05 can end in NaN), reading the same sentences from a file (it adds an
end-of-line token ``</s>`` to each, which is dropped before evaluation); rustnce runs with its
defaults, ``--negatives`` (default 10) shared by each batch of 512 pairs, reading the corpus
from the same file as training goes (``open_corpus``, what ``python -m rustnce --corpus`` does).
Speed is raw corpus words per second of training (for gensim and rustnce the vocabulary is
built beforehand; fastText's time includes its own vocabulary pass, as it has no other way),
the median over ``--repeats`` interleaved runs; quality is the mean over those runs
(different seeds). Ratios are against gensim from the same run.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

import rustnce
from rustnce.word2vec import (
    TrainingConfig,
    Vocabulary,
    group_purity,
    open_corpus,
    planted_corpus,
    read_sentences,
    read_similarity_pairs,
    train,
    word_similarity,
)
from rustnce.word2vec.evaluation import read_analogies, word_analogies

FASTTEXT_ATTEMPTS = 5

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
    """CPU time other processes used while measuring, in cores (from /proc/stat and
    /proc/self/stat); None where /proc is missing."""

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
        return busy, int(fields[11]) + int(fields[12])  # this process: utime + stime

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
    corpus: Corpus, args: argparse.Namespace, seed: int
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
    )
    model.build_vocab(corpus.sentences)
    start = time.perf_counter()
    model.train(corpus.sentences, total_examples=model.corpus_count, epochs=args.epochs)
    seconds = time.perf_counter() - start
    words = model.wv.index_to_key
    counts = np.array([model.wv.get_vecattr(w, "count") for w in words])
    return seconds, model.wv.vectors, Vocabulary(tuple(words), counts)


def run_fasttext(corpus: Corpus, args: argparse.Namespace) -> tuple[float, np.ndarray, Vocabulary]:
    import fasttext

    start = time.perf_counter()
    model = fasttext.train_unsupervised(
        corpus.path,
        model="skipgram",
        lr=0.025,
        dim=args.dim,
        ws=args.window,
        epoch=args.epochs,
        minCount=args.min_count,
        neg=5,
        minn=0,
        maxn=0,
        t=args.subsample,
        thread=args.threads,
        verbose=0,  # no seed option: every repeat runs fastText's fixed seed
    )
    seconds = time.perf_counter() - start
    words, counts = model.get_words(include_freq=True)
    vectors = np.asarray(model.get_input_matrix())[: len(words)]
    if not np.all(np.isfinite(vectors)):
        print(f"  fastText vectors not finite on {corpus.name}", file=sys.stderr)
    keep = [k for k, word in enumerate(words) if word != "</s>"]
    vocabulary = Vocabulary(tuple(words[k] for k in keep), np.asarray(counts)[keep])
    return seconds, vectors[keep], vocabulary


def run_rustnce(
    corpus: Corpus, args: argparse.Namespace, seed: int, loss: str, negatives: int
) -> tuple[float, np.ndarray, Vocabulary]:
    vocabulary, encoded = open_corpus(corpus.path, args.min_count)
    config = TrainingConfig(
        dim=args.dim,
        window=args.window,
        epochs=args.epochs,
        subsample=args.subsample,
        loss=loss,
        sampler=args.sampler,
        negatives=negatives,
        seed=seed,
        threads=args.threads,
    )
    result = train(encoded, vocabulary, config)
    return result.seconds, result.input_vectors, vocabulary


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
        "--negatives",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[TrainingConfig().negatives],
        help="rustnce's negatives per batch, comma-separated (default: its default)",
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
    args = parser.parse_args(argv)
    try:
        import fasttext  # noqa: F401
        import gensim
    except ImportError as error:
        print(
            f"{error.name} is not installed: python -m pip install -r "
            "benches/requirements-word2vec.txt",
            file=sys.stderr,
        )
        return 1
    rustnce.set_num_threads(args.threads)
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
        f"median of {args.repeats} interleaved runs"
    )
    scratch = tempfile.TemporaryDirectory(prefix="rustnce-word2vec-bench-")
    for corpus in corpora:
        corpus.write(scratch.name)
    contenders: list[tuple[str, str | None, int]] = [
        ("gensim sg neg=5/pair", None, 0),
        ("fastText sg neg=5/pair", "fasttext", 0),
    ]
    for loss in args.losses.split(","):
        for negatives in args.negatives:
            contenders.append((f"rustnce {loss} S={negatives}/batch", loss, negatives))
    for corpus in corpora:
        words = sum(len(s) for s in corpus.sentences)
        outcomes = {name: Outcome() for name, _, _ in contenders}
        for repeat in range(args.repeats):
            for name, loss, negatives in contenders:
                seed = repeat + 1
                wait_for_idle(args.wait_idle)
                load = ForeignLoad()
                if loss is None:
                    seconds, vectors, vocabulary = run_gensim(corpus, args, seed)
                elif loss == "fasttext":
                    # fastText at lr 0.025 with minn=maxn=0 sometimes stops within its first
                    # second with "Encountered NaN." (erratically: the same corpus and settings
                    # also train); up to FASTTEXT_ATTEMPTS tries, the failures reported.
                    for _ in range(FASTTEXT_ATTEMPTS):
                        try:
                            seconds, vectors, vocabulary = run_fasttext(corpus, args)
                            break
                        except RuntimeError as error:
                            outcomes[name].failures.append(str(error))
                    else:
                        continue
                else:
                    seconds, vectors, vocabulary = run_rustnce(corpus, args, seed, loss, negatives)
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
                print(f"  ({name}: {len(outcome.failures)} attempts failed: {outcome.failures[0]})")
            seconds = statistics.median(outcome.seconds)
            speed = words * args.epochs / seconds
            cells = "".join(
                f" {np.mean(outcome.scores[s]):6.3f}±{np.std(outcome.scores[s]):.3f}"
                for s in score_names
            )
            others = f"{max(outcome.foreign):.2f}" if outcome.foreign else "?"
            ratios = f"{reference / seconds:8.2f}x {fasttext_seconds / seconds:10.2f}x"
            print(f"  {name:34s} {speed:10,.0f} {ratios}{cells} {others:>7s}")
        used = {s: outcome.scores[s][0] for s in outcome.scores if s.endswith("pairs")}
        if used:
            print(
                "  pairs in vocabulary: " + ", ".join(f"{k[:-6]} {int(v)}" for k, v in used.items())
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
