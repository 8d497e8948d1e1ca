"""Distributed skip-gram (rustnce.distributed on Ray) against the single-process trainer on this
machine: words/s and quality against the chunk size, and the local terms of the throughput
model in docs/scaling.md.

    python -m pip install 'rustnce[ray]' && python benches/distributed_scaling.py

Runs, interleaved ``--repeats`` times on the same planted corpus (the quality test's: 200,000
tokens, 3 epochs; repeat ``r`` uses seed ``r + 1`` for every trainer): the single-process
trainer (``--threads`` threads), then the distributed trainer over ``--shards`` shards for each
chunk size of ``--chunks`` (corpus words per pull/push round) with 1 worker, and with 2 workers
under each merge rule of ``--merges`` (how shards merge concurrent deltas), on a local Ray of
``--cpus`` CPUs; once with 8 shards, and with ``overlap``, at the default chunk. Prints words/s
(training only: after the corpus is counted and the actors started) with ratios to the
single-process trainer of the same run, and nearest-neighbour group purity, its mean over the
repeats and the mean difference from the single-process trainer of the same seed; then where a
worker's time goes per chunk (training, finding changed rows, sending, waiting, merging), the
messages and bytes per chunk, and the model's projection for N nodes on 10 and 25 GbE.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import rustnce
from rustnce.distributed import DistributedConfig, UnitStats, train_distributed
from rustnce.word2vec import (
    TrainingConfig,
    group_purity,
    load_corpus,
    planted_corpus,
    read_sentences,
    train,
)

TERMS = ("train", "diff", "send", "wait", "merge", "refresh")


def training_seconds(result) -> float:
    return result.seconds - result.setup_seconds - result.gather_seconds


def sums(units: list[UnitStats]) -> dict[str, float]:
    names = ["words", "chunks", "messages", "bytes_pulled", "bytes_pushed", "refresh_bytes"]
    names += ["seconds"] + [f"{term}_seconds" for term in TERMS]
    return {name: float(sum(getattr(unit, name) for unit in units)) for name in names}


def projection(terms: dict[str, float], nodes: int, gbit: float) -> float:
    """Words/s of ``nodes`` nodes, one worker and one shard each (docs/scaling.md): each node is
    limited by its CPU (training per word, the fixed costs per chunk, and the per-message costs
    of talking to ``nodes`` shards and of serving ``nodes`` workers) and by its network link
    (the pulled and pushed rows that cross it)."""
    per_chunk = terms["chunk_fixed"] + nodes * (terms["client_message"] + terms["server_message"])
    cpu_per_word = terms["train_per_word"] + per_chunk / terms["words_per_chunk"]
    off_node = (nodes - 1) / nodes
    network_per_word = 2 * terms["bytes_per_word_each_way"] * off_node / (gbit * 1e9 / 8)
    return nodes / max(cpu_per_word, network_per_word)


def server_cost(ray, table_rows: int, dim: int, rows_per_message: int, rounds: int) -> float:
    """CPU seconds a shard actor spends per exchange of ``rows_per_message`` rows of the three
    tables each way, measured from its own process time."""

    @ray.remote(num_cpus=0)
    class Probe:
        def __init__(self) -> None:
            self.tables = {
                "input": np.zeros((table_rows, dim), np.float32),
                "output": np.zeros((table_rows, dim), np.float32),
                "bias": np.zeros(table_rows, np.float32),
            }

        def exchange(self, updates, rows):
            for name, (local, delta) in updates.items():
                self.tables[name][local] += delta
            return {name: self.tables[name][local] for name, local in rows.items()}

        def cpu(self) -> float:
            return time.process_time()

    probe = Probe.remote()
    rng = np.random.default_rng(0)
    local = np.unique(rng.integers(0, table_rows, rows_per_message))
    updates = {
        "input": (local, np.ones((local.size, dim), np.float32)),
        "output": (local, np.ones((local.size, dim), np.float32)),
        "bias": (local, np.ones(local.size, np.float32)),
    }
    rows = {"input": local, "output": local, "bias": local}
    ray.get(probe.exchange.remote(updates, rows))
    start = ray.get(probe.cpu.remote())
    ray.get([probe.exchange.remote(updates, rows) for _ in range(rounds)])
    used = ray.get(probe.cpu.remote()) - start
    ray.kill(probe)
    return used / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--chunks", default="2000,3000,5000,10000,20000,50000")
    parser.add_argument("--merges", default="sum,touches")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import ray

    chunks = [int(chunk) for chunk in args.chunks.split(",")]
    merges = args.merges.split(",")
    default_chunk = DistributedConfig().chunk_words
    default_merge = DistributedConfig().merge
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    scratch = tempfile.mkdtemp(prefix="rustnce-bench-")
    path = os.path.join(scratch, "planted.txt")
    planted = planted_corpus(tokens=args.tokens, seed=3)
    planted.write(path)
    groups_of = dict(zip(planted.words, planted.groups.tolist()))
    vocabulary, corpus = load_corpus(read_sentences(path), 5)
    groups = np.array([groups_of.get(word, -1) for word in vocabulary.words])
    runs = []
    for chunk in chunks:
        runs.append((1, args.shards, chunk, default_merge, False))
        runs += [(2, args.shards, chunk, merge, False) for merge in merges]
    runs.append((1, 8, default_chunk, default_merge, False))
    runs += [(workers, args.shards, default_chunk, default_merge, True) for workers in (1, 2)]
    speeds: dict[str, list[float]] = {}
    purity: dict[str, list[float]] = {}
    last: dict[tuple[int, int, int, str, bool], object] = {}
    for repeat in range(args.repeats):
        config = TrainingConfig(epochs=args.epochs, seed=repeat + 1)
        rustnce.set_num_threads(args.threads)
        single = train(corpus, vocabulary, config)
        speeds.setdefault("single process", []).append(single.words_per_second)
        purity.setdefault("single process", []).append(
            group_purity(single.input_vectors, groups).at_1
        )
        for workers, shards, chunk, merge, overlap in runs:
            name = f"{workers} worker{'s' if workers > 1 else ''}, {shards} shards, chunk {chunk}"
            name += f", {merge}" if workers > 1 else ""
            name += ", overlap" if overlap else ""
            result = train_distributed(
                path,
                config,
                DistributedConfig(
                    workers=workers, shards=shards, chunk_words=chunk, overlap=overlap, merge=merge
                ),
            )
            speeds.setdefault(name, []).append(result.words / training_seconds(result))
            purity.setdefault(name, []).append(group_purity(result.input_vectors, groups).at_1)
            last[workers, shards, chunk, merge, overlap] = result
    base = statistics.median(speeds["single process"])
    base_purity = purity["single process"]
    print(
        f"planted corpus, {len(corpus):,} tokens x {args.epochs} epochs; local Ray with "
        f"{args.cpus} CPUs; single process on {args.threads} threads; words/s: median of "
        f"{args.repeats} interleaved runs (machine shared with other work); purity@1: each "
        "run's, their mean, and the mean difference from the single process of the same seed"
    )
    print(
        f"  {'':46} {'words/s':>10} {'ratio':>7} {'purity@1 per run':>22} {'mean':>6} "
        f"{'vs single':>10}"
    )
    for name in speeds:
        speed = statistics.median(speeds[name])
        scores = purity[name]
        runs_text = " ".join(f"{score:.3f}" for score in scores)
        difference = statistics.mean(a - b for a, b in zip(scores, base_purity))
        print(
            f"  {name:46} {speed:10,.0f} {speed / base:7.3f} {runs_text:>22} "
            f"{statistics.mean(scores):6.3f} {difference:+10.3f}"
        )

    print("\nper chunk (sums over workers and units, last repeat):")
    print(
        f"  {'workers, shards, chunk':32} {'words':>6} {'msgs':>5} {'KiB in':>7} {'KiB out':>8} "
        + " ".join(f"{term + ' ms':>10}" for term in TERMS)
    )
    for (workers, shards, chunk, merge, overlap), result in last.items():
        total = sums(result.units)  # type: ignore[attr-defined]
        count = total["chunks"]
        label = f"{workers}, {shards}, {chunk}" + (f", {merge}" if workers > 1 else "")
        label += ", overlap" if overlap else ""
        print(
            f"  {label:32} {total['words'] / count:6.0f} "
            f"{total['messages'] / count:5.1f} {total['bytes_pulled'] / count / 1024:7.0f} "
            f"{total['bytes_pushed'] / count / 1024:8.0f} "
            + " ".join(f"{total[f'{term}_seconds'] / count * 1e3:10.2f}" for term in TERMS)
        )

    # The model's node: one worker on this machine's cores, with one shard, default chunk.
    node = last[1, args.shards, default_chunk, default_merge, False]
    total = sums(node.units)  # type: ignore[attr-defined]
    eight = sums(last[1, 8, default_chunk, default_merge, False].units)  # type: ignore[attr-defined]
    # The client's cost per message, from the extra messages of 8 shards over args.shards.
    extra_messages = eight["messages"] - total["messages"]
    extra_seconds = eight["send_seconds"] - total["send_seconds"]
    client_message = max(extra_seconds / extra_messages, 0.0) if extra_messages > 0 else 0.0
    rows_per_message = (total["bytes_pulled"] / total["messages"]) / (4 * (2 * config.dim + 1))
    chunk_seconds = sum(total[f"{term}_seconds"] for term in TERMS if term != "train")
    terms = {
        "train_per_word": total["train_seconds"] / total["words"],
        "chunk_fixed": chunk_seconds / total["chunks"]
        - client_message * total["messages"] / total["chunks"],
        "client_message": client_message,
        "server_message": server_cost(
            ray,
            len(vocabulary) // args.shards + 1,
            config.dim,
            max(int(rows_per_message), 1),
            200,
        ),
        "words_per_chunk": total["words"] / total["chunks"],
        "bytes_per_word_each_way": total["bytes_pulled"] / total["words"],
    }
    print(f"\nmodel terms (docs/scaling.md), 1 worker, chunk {default_chunk}:")
    for name, value in terms.items():
        print(f"  {name:24} {value:.4g}")
    measured = total["words"] / total["seconds"]
    accounted = sum(total[f"{term}_seconds"] for term in TERMS) / total["seconds"]
    print(
        f"  the terms cover {accounted:.1%} of the worker's time; its words/s {measured:,.0f}; "
        f"the model's N = 1 node predicts {projection(terms, 1, 10):,.0f}"
    )
    print("\nprojected words/s, N nodes like this one, one worker and one shard each:")
    print(f"  {'N':>4} {'10 GbE':>12} {'25 GbE':>12}")
    for nodes in (1, 2, 4, 8, 16, 32, 64):
        print(
            f"  {nodes:4} {projection(terms, nodes, 10):12,.0f} "
            f"{projection(terms, nodes, 25):12,.0f}"
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
