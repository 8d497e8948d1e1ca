"""Peak memory of word2vec training: the corpus read from files as training goes (rustnce's
``TextCorpus``, what ``python -m rustnce --corpus`` does) against the corpus held in memory
(``load_corpus(read_sentences(...))`` then ``train``), on generated corpora of growing length.

Each corpus is generated into ``--scratch`` (default ``/tmp/rustnce-word2vec-memory``; never
inside the repository): lines of 5 to 30 words drawn from a Zipfian vocabulary of
``--vocabulary`` words, so that every size has about the same vocabulary and only the corpus
length changes. Each measurement runs in a fresh Python process that counts the corpus, trains
``--epochs`` epochs of skip-gram (dim ``--dim``) and prints its peak RSS
(``ru_maxrss``), its RSS before reading the corpus, and the training speed. The in-memory path
is only run up to ``--in-memory-max-mb`` (it needs tens of bytes per token). With
``--gzip``, the largest corpus that both paths read is also read gzip-compressed. With
``--repeats``, the modes run interleaved that many times (speeds: medians; peak RSS: the
largest).

    python benches/word2vec_memory.py                       # 50 MB, 200 MB and 2.5 GB
    python benches/word2vec_memory.py --sizes-mb 20 100 --epochs 1
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def generate(path: str, megabytes: float, vocabulary: int, seed: int) -> None:
    """Writes about ``megabytes`` MB of Zipfian text to ``path`` (via a temporary name)."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{rank}".encode() for rank in range(vocabulary)], dtype=object)
    weights = 1.0 / (np.arange(vocabulary) + 10.0)
    cumulative = np.cumsum(weights / weights.sum())
    target = int(megabytes * 1e6)
    written = 0
    temporary = path + ".partial"
    with open(temporary, "wb") as out:
        while written < target:
            ids = np.searchsorted(cumulative, rng.random(2_000_000), side="right")
            ids = np.minimum(ids, vocabulary - 1)
            lengths = rng.integers(5, 31, size=len(ids) // 5)
            ends = np.cumsum(lengths)
            ends = ends[ends <= len(ids)]
            tokens = words[ids]
            lines = [b" ".join(tokens[start:end]) for start, end in zip(np.r_[0, ends[:-1]], ends)]
            block = b"\n".join(lines) + b"\n"
            out.write(block)
            written += len(block)
    os.replace(temporary, path)


def child(mode: str, path: str, dim: int, epochs: int, threads: int) -> None:
    from rustnce.word2vec import TrainingConfig, load_corpus, open_corpus, read_sentences, train

    before = _rss_mb()
    started = time.perf_counter()
    if mode == "in_memory":
        vocabulary, corpus = load_corpus(read_sentences(path), min_count=5)
    else:
        vocabulary, corpus = open_corpus(path, min_count=5)
    counted = time.perf_counter() - started
    config = TrainingConfig(dim=dim, epochs=epochs, threads=threads)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    result = train(corpus, vocabulary, config)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    print(
        json.dumps(
            {
                "before_mb": before,
                "peak_mb": _peak_mb(),
                "words": len(vocabulary),
                "tokens": int(len(corpus)),
                "read_seconds": counted,
                "train_seconds": result.seconds,
                "words_per_second": result.words_per_second,
                # CPU time of training per corpus word (all threads): less disturbed than
                # words/s by other processes on a shared machine.
                "cpu_us_per_word": cpu_seconds / max(result.words, 1) * 1e6,
                "loss": result.epoch_losses[-1],
            }
        )
    )


def measure(mode: str, path: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", mode, path]
    command += ["--dim", str(args.dim), "--epochs", str(args.epochs)]
    command += ["--threads", str(args.threads)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[50, 200, 2500])
    parser.add_argument("--in-memory-max-mb", type=float, default=250)
    parser.add_argument("--vocabulary", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved runs per mode")
    parser.add_argument("--scratch", default="/tmp/rustnce-word2vec-memory")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpora")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], args.dim, args.epochs, args.threads)
        return 0
    os.makedirs(args.scratch, exist_ok=True)
    rows = []
    try:
        for size in sorted(args.sizes_mb):
            path = os.path.join(args.scratch, f"zipf-{size:g}mb.txt")
            if not os.path.exists(path):
                started = time.perf_counter()
                generate(path, size, args.vocabulary, seed=int(size))
                print(f"generated {path} in {time.perf_counter() - started:.0f} s", flush=True)
            modes = ["streaming"] + (["in_memory"] if size <= args.in_memory_max_mb else [])
            paths = {mode: path for mode in modes}
            if (
                args.gzip
                and "in_memory" in modes
                and size == max(s for s in args.sizes_mb if s <= args.in_memory_max_mb)
            ):
                compressed = path + ".gz"
                if not os.path.exists(compressed):
                    partial = compressed + ".partial"
                    with open(path, "rb") as source, gzip.open(partial, "wb", 1) as target:
                        shutil.copyfileobj(source, target, 1 << 20)
                    os.replace(partial, compressed)
                modes.append("streaming_gzip")
                paths["streaming_gzip"] = compressed
            runs: dict[str, list[dict]] = {mode: [] for mode in modes}
            for _ in range(args.repeats):  # interleaved: the machine's load hits every mode
                for mode in modes:
                    runs[mode].append(measure(mode, paths[mode], args))
            for mode in modes:
                row = dict(runs[mode][0])
                row["peak_mb"] = max(run["peak_mb"] for run in runs[mode])
                for key in ("words_per_second", "read_seconds", "cpu_us_per_word"):
                    row[key] = statistics.median(run[key] for run in runs[mode])
                row.update(mode=mode, size_mb=os.path.getsize(path) / 1e6)
                rows.append(row)
                print(
                    f"{row['size_mb']:8.0f} MB  {mode:15s} tokens {row['tokens']:>12,}  "
                    f"vocabulary {row['words']:>8,}  peak RSS {row['peak_mb']:8.0f} MB "
                    f"(before reading {row['before_mb']:.0f} MB)  read {row['read_seconds']:6.1f} s"
                    f"  train {row['words_per_second']:>10,.0f} words/s "
                    f"({row.get('cpu_us_per_word', math.nan):.2f} CPU us/word)",
                    flush=True,
                )
    finally:
        if not args.keep:
            shutil.rmtree(args.scratch, ignore_errors=True)
    streaming = [row for row in rows if row["mode"] == "streaming"]
    if len(streaming) >= 2:
        small, large = streaming[0], streaming[-1]
        print(
            f"streaming: corpus x{large['size_mb'] / small['size_mb']:.0f} "
            f"-> peak RSS x{large['peak_mb'] / small['peak_mb']:.2f}"
        )
    memory = [row for row in rows if row["mode"] == "in_memory"]
    for row in memory:
        same = next(r for r in streaming if r["size_mb"] == row["size_mb"])
        print(
            f"{row['size_mb']:.0f} MB: in-memory peak RSS / streaming = "
            f"{row['peak_mb'] / same['peak_mb']:.2f}; words/s streaming / in-memory = "
            f"{same['words_per_second'] / row['words_per_second']:.2f}; CPU per word streaming / "
            f"in-memory = {same['cpu_us_per_word'] / row['cpu_us_per_word']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
