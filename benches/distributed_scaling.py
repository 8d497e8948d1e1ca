"""Distributed skip-gram (rustnce.distributed on Ray) against the single-process trainer on this
machine, and the local terms of the throughput model in docs/scaling.md.

    python -m pip install 'rustnce[ray]' && python benches/distributed_scaling.py

Runs, interleaved ``--repeats`` times on the same planted corpus: the single-process trainer
(``--threads`` threads), then the distributed trainer with 1 and 2 workers over ``--shards``
shards on a local Ray of ``--cpus`` CPUs. Prints words/s (training only: after the corpus is
counted and the actors started; and end to end) with ratios to the single-process trainer from
the same run, then the model's local terms measured in the 2-worker run (time per batch in the
fused step, sampling and pair generation; the worker's CPU time per shard message; bytes moved
per batch and per word), checks that those terms add up to the measured time per batch, and
projects words/s for N nodes on 10 and 25 GbE with the model of docs/scaling.md.
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
from rustnce.word2vec import TrainingConfig, load_corpus, planted_corpus, read_sentences, train


def training_seconds(result) -> float:
    return result.seconds - result.setup_seconds - result.gather_seconds


def sums(units: list[UnitStats]) -> dict[str, float]:
    names = [
        "words",
        "pairs",
        "batches",
        "chunks",
        "messages",
        "bytes_pulled",
        "bytes_pushed",
        "seconds",
        "step_seconds",
        "sample_seconds",
        "pair_seconds",
        "wait_seconds",
        "pack_seconds",
    ]
    return {name: float(sum(getattr(unit, name) for unit in units)) for name in names}


def projection(terms: dict[str, float], nodes: int, gbit: float, threads_speedup: float) -> float:
    """Words/s of ``nodes`` nodes, one worker and one shard each (docs/scaling.md): each node is
    limited by its CPU (compute per word, plus the per-message costs of talking to ``nodes``
    shards and of serving ``nodes`` workers) and by its network link (the pulled and pushed
    rows that cross it)."""
    compute = terms["compute_per_word"] / threads_speedup
    messages = nodes * (terms["client_per_message"] + terms["server_per_message"])
    cpu_per_word = compute + messages / terms["words_per_chunk"]
    off_node = (nodes - 1) / nodes
    link = gbit * 1e9 / 8
    network_per_word = 2 * terms["bytes_per_word_each_way"] * off_node / link
    return nodes / max(cpu_per_word, network_per_word)


def server_cost(ray, table_rows: int, dim: int, rows_per_message: int, rounds: int) -> float:
    """CPU seconds a shard actor spends per exchange of ``rows_per_message`` rows each way,
    measured from its own process time."""

    @ray.remote(num_cpus=0)
    class Probe:
        def __init__(self) -> None:
            self.tables = {
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
        "output": (local, np.ones((local.size, dim), np.float32)),
        "bias": (local, np.ones(local.size, np.float32)),
    }
    rows = {"output": local, "bias": local}
    ray.get(probe.exchange.remote(updates, rows))
    start = ray.get(probe.cpu.remote())
    ray.get([probe.exchange.remote(updates, rows) for _ in range(rounds)])
    used = ray.get(probe.cpu.remote()) - start
    ray.kill(probe)
    return used / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=500_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--partition-strategy", default="mod", choices=["div", "mod"])
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    scratch = tempfile.mkdtemp(prefix="rustnce-bench-")
    path = os.path.join(scratch, "planted.txt")
    planted_corpus(tokens=args.tokens, seed=0).write(path)
    vocabulary, corpus = load_corpus(read_sentences(path), 5)
    config = TrainingConfig(epochs=args.epochs, seed=1)
    speeds: dict[str, list[float]] = {}
    ends: dict[str, list[float]] = {}
    last = {}
    for _ in range(args.repeats):
        rustnce.set_num_threads(args.threads)
        single = train(corpus, vocabulary, config)
        speeds.setdefault("single process", []).append(single.words_per_second)
        ends.setdefault("single process", []).append(single.words_per_second)
        for workers, shards in ((1, args.shards), (2, args.shards), (1, 1)):
            name = f"{workers} worker{'s' if workers > 1 else ''}, {shards} shard(s)"
            result = train_distributed(
                path,
                config,
                DistributedConfig(
                    workers=workers,
                    shards=shards,
                    partition_strategy=args.partition_strategy,
                ),
            )
            speeds.setdefault(name, []).append(result.words / training_seconds(result))
            ends.setdefault(name, []).append(result.words_per_second)
            last[workers, shards] = result
    base = statistics.median(speeds["single process"])
    print(
        f"planted corpus, {len(corpus):,} tokens x {args.epochs} epochs; local Ray with "
        f"{args.cpus} CPUs, {args.partition_strategy!r} partitioning; single process on "
        f"{args.threads} threads; median of "
        f"{args.repeats} interleaved runs (machine shared with other work)"
    )
    print(f"  {'':28} {'training words/s':>17} {'ratio':>7} {'end-to-end words/s':>19}")
    for name in speeds:
        speed = statistics.median(speeds[name])
        end = statistics.median(ends[name])
        print(f"  {name:28} {speed:17,.0f} {speed / base:7.3f} {end:19,.0f}")

    for workers in (1, 2):
        result = last[workers, args.shards]
        total = sums(result.units)
        batches = total["batches"]
        print(f"\nlocal terms, {workers} worker(s), {args.shards} shards (sums over workers):")
        for term in ("step", "sample", "pair", "pack", "wait"):
            seconds = total[f"{term}_seconds"]
            print(
                f"  {term:6} {seconds:7.2f} s  {seconds / batches * 1e6:8.1f} us/batch  "
                f"{seconds / total['seconds']:5.1%} of worker time"
            )
        accounted = sum(total[f"{t}_seconds"] for t in ("step", "sample", "pair", "pack", "wait"))
        print(
            f"  terms add up to {accounted:.2f} s of {total['seconds']:.2f} s measured "
            f"({accounted / total['seconds']:.1%})"
        )
        print(
            f"  {total['words'] / batches:.0f} words, {total['pairs'] / batches:.0f} pairs, "
            f"{total['messages'] / batches:.2f} messages and "
            f"{(total['bytes_pulled'] + total['bytes_pushed']) / batches / 1024:.1f} KiB "
            "(pulled + pushed) per batch"
        )
        status = result.shard_status
        read = np.array([s["rows_read"] for s in status], dtype=float)
        print(f"  rows read per shard, max / mean: {read.max() / read.mean():.2f}")

    total = sums(
        last[1, args.shards].units
    )  # one worker on this machine's cores: the node of the model
    words_per_chunk = total["words"] / total["chunks"]
    rows_per_message = (total["bytes_pulled"] / total["messages"]) / (4 * (100 + 100 + 1))
    terms = {
        "compute_per_word": (
            total["step_seconds"] + total["sample_seconds"] + total["pair_seconds"]
        )
        / total["words"],
        "client_per_message": total["pack_seconds"] / total["messages"],
        "server_per_message": server_cost(
            ray, len(vocabulary) // args.shards + 1, 100, max(int(rows_per_message), 1), 300
        ),
        "words_per_chunk": words_per_chunk,
        "bytes_per_word_each_way": total["bytes_pulled"] / total["words"],
    }
    print("\nmodel terms (docs/scaling.md), from the 1-worker run:")
    for name, value in terms.items():
        unit = (
            " bytes" if "bytes" in name else " s" if "message" in name or "compute" in name else ""
        )
        print(f"  {name:26} {value:.4g}{unit}")
    predicted_local = 1.0 / (
        terms["compute_per_word"] + terms["client_per_message"] * total["messages"] / total["words"]
    )
    measured_local = total["words"] / total["seconds"]
    print(
        f"  one worker's words/s predicted from its CPU terms {predicted_local:,.0f}, measured "
        f"{measured_local:,.0f} (the rest is waiting for rows: {total['wait_seconds']:.1f} s)"
    )
    one_shard = last[1, 1]
    print(
        f"  N = 1 (one worker, one shard) predicted {projection(terms, 1, 10, 1.0):,.0f} words/s, "
        f"measured {one_shard.words / training_seconds(one_shard):,.0f} (median "
        f"{statistics.median(speeds['1 worker, 1 shard(s)']):,.0f})"
    )
    speedup = 1.0  # the compute term was measured on this run's threads per worker
    print("\nprojected words/s, N nodes like this one, with one worker and one shard each:")
    print(f"  {'N':>4} {'10 GbE':>12} {'25 GbE':>12}")
    for nodes in (1, 2, 4, 8, 16, 32, 64):
        ten = projection(terms, nodes, 10, speedup)
        twenty_five = projection(terms, nodes, 25, speedup)
        print(f"  {nodes:4} {ten:12,.0f} {twenty_five:12,.0f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
