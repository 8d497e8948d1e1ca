"""Data-parallel skip-gram on Ray: the driver.

1. The corpus file is cut into one byte range per worker (whole lines).
2. The vocabulary is counted as a map/reduce: one Ray task per range, merged in file order.
3. The input vectors, output vectors and biases are split over ``shards`` shard actors by the
   partition strategy (:class:`ShardedTable`).
4. Each worker actor encodes its range and trains it block by block, epoch by epoch
   (:class:`SkipGramWorker`); the driver hands out one unit (epoch, block) at a time per
   worker. A worker that dies is restarted by Ray (``max_restarts``) and the unit it was
   training is redone; the run reports which units were redone and which shards were restored.
5. The vectors are gathered from the shards.

Workers run the single-process trainer's own Rust loop (``SkipGramTrainer``: the same pair
generator, batch size, samplers, losses, update rule and learning-rate schedule, per worker
by the share of its range done) on a local copy of the tables, a chunk of ``chunk_words`` words
at a time. What differs: each worker draws from its own random streams, and rows are read with
the staleness described in :mod:`rustnce.distributed.worker`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..word2vec.corpus import CorpusError, Vocabulary
from ..word2vec.training import (
    Progress,
    TrainingConfig,
    TrainingDiverged,
    TrainingResult,
    initial_biases,
    initial_input_vectors,
)
from .corpus_ranges import count_range, merge_counts, split_file
from .layout import ShardLayout
from .shards import ShardedTable, TableSpec, _ray
from .worker import SkipGramWorker, UnitStats

MERGES = ("sum", "touches")


@dataclass
class DistributedConfig:
    """How the work is spread (the model's settings are a :class:`TrainingConfig`)."""

    workers: int = 2
    shards: int = 8
    # "mod": the vocabulary is sorted by frequency, and "div" would put every frequent word
    # (the rows almost every batch touches) on shard 0.
    partition_strategy: str = "mod"
    min_count: int = 5
    block_tokens: int = 200_000  # tokens per unit of work (what a dead worker redoes)
    chunk_words: int = 2_000  # corpus words per pull/push round (the staleness unit)
    head_rows: int = 0  # most frequent rows pulled with every chunk besides its words
    overlap: bool = False  # pull the next chunk's rows while training this one (staler)
    merge: str = "sum"  # how shards merge concurrent deltas: "sum" or "touches" (see worker.py)
    threads_per_worker: int = 0  # 0: the cluster's CPUs / workers
    checkpoint_dir: str | None = None  # None: a temporary directory, removed at the end
    checkpoint_seconds: float = 5.0

    def check(self) -> None:
        for name in ("workers", "shards", "min_count", "block_tokens", "chunk_words"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.head_rows, int) or self.head_rows < 0:
            raise ValueError(f"head_rows must be a non-negative integer, got {self.head_rows!r}")
        if self.merge not in MERGES:
            raise ValueError(f"merge must be one of {', '.join(MERGES)}, got {self.merge!r}")
        if self.partition_strategy not in ("div", "mod"):
            raise ValueError(
                f"partition_strategy must be 'div' or 'mod', got {self.partition_strategy!r}"
            )
        if not (math.isfinite(self.checkpoint_seconds) and self.checkpoint_seconds > 0):
            raise ValueError(f"checkpoint_seconds must be positive, got {self.checkpoint_seconds}")


@dataclass
class Redone:
    """A unit of work that failed (its worker died) and was given again."""

    worker: int
    epoch: int
    block: int
    error: str


@dataclass
class DistributedResult(TrainingResult):
    """The vectors, plus what the distribution did."""

    vocabulary: Vocabulary | None = None
    units: list[UnitStats] = field(default_factory=list)
    redone: list[Redone] = field(default_factory=list)
    shard_status: list[dict[str, Any]] = field(default_factory=list)
    setup_seconds: float = 0.0  # counting, encoding and starting actors
    gather_seconds: float = 0.0

    @property
    def restored_shards(self) -> list[dict[str, Any]]:
        return [s for s in self.shard_status if s["restored_from"] is not None]

    def report(self) -> list[str]:
        """Lines saying what was redone and restored."""
        lines = []
        for unit in self.redone:
            lines.append(
                f"worker {unit.worker} died during epoch {unit.epoch + 1}, block {unit.block}: "
                f"restarted, block redone ({unit.error})"
            )
        for shard in self.restored_shards:
            lines.append(
                f"shard {shard['shard']} was restarted and restored from its checkpoint at "
                f"push {shard['restored_from']} (now {shard['pushes']} pushes)"
            )
        return lines


def _worker_class(ray: Any) -> Any:
    return ray.remote(SkipGramWorker).options(max_restarts=-1, max_task_retries=0, num_cpus=1)


def train_distributed(
    corpus_path: str,
    config: TrainingConfig,
    distributed: DistributedConfig,
    progress: Callable[[Progress], None] | None = None,
    on_unit: Callable[[UnitStats, Any], None] | None = None,
) -> DistributedResult:
    """Trains skip-gram vectors on ``corpus_path`` with Ray workers and shards. Ray must be
    initialised (see :func:`rustnce.distributed.connect`). ``on_unit`` is called after every
    finished unit with its stats and the run's handles (``{"workers": [...], "table": ...}``),
    which tests use to inject faults."""
    ray = _ray()
    distributed.check()
    config.check()
    started = time.perf_counter()
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < distributed.workers:
        raise ValueError(
            f"workers ({distributed.workers}) must not exceed the Ray cluster's CPUs ({cpus}): "
            "each worker actor takes one CPU"
        )
    parts = split_file(corpus_path, distributed.workers)
    count_task = ray.remote(count_range).options(num_cpus=1)
    try:
        counts = ray.get([count_task.remote(part) for part in parts])
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, CorpusError):  # an unreadable range: the plain message
            raise CorpusError(str(cause)) from None
        raise
    vocabulary = merge_counts(counts, distributed.min_count)
    config.check(len(vocabulary))
    if distributed.shards > len(vocabulary):
        raise ValueError(
            f"shards ({distributed.shards}) must not exceed the vocabulary ({len(vocabulary)} "
            "words): every shard needs a row"
        )
    layout = ShardLayout(len(vocabulary), distributed.shards, distributed.partition_strategy)
    own_checkpoints = distributed.checkpoint_dir is None
    checkpoint_dir = distributed.checkpoint_dir or tempfile.mkdtemp(prefix="rustnce-shards-")
    table = ShardedTable(
        layout,
        {
            "input": TableSpec(
                config.dim,
                "values",
                values=initial_input_vectors(len(vocabulary), config.dim, config.seed),
            ),
            "output": TableSpec(config.dim, "zeros"),
            "bias": TableSpec(
                None, "values", values=initial_biases(vocabulary.counts, config.bias_start)
            ),
        },
        seed=config.seed,
        checkpoint_dir=checkpoint_dir,
        checkpoint_seconds=distributed.checkpoint_seconds,
        name="skipgram",
    )
    try:
        threads = distributed.threads_per_worker or max(1, cpus // distributed.workers)
        vocabulary_ref = ray.put(vocabulary)
        worker_class = _worker_class(ray)
        workers = [
            worker_class.remote(
                index,
                part,
                vocabulary_ref,
                config,
                table,
                distributed.block_tokens,
                distributed.chunk_words,
                threads,
                distributed.head_rows,
                distributed.overlap,
                distributed.merge,
            )
            for index, part in enumerate(parts)
        ]
        described = ray.get([worker.describe.remote() for worker in workers])
        result = DistributedResult(
            np.empty((0, config.dim), np.float32),
            np.empty((0, config.dim), np.float32),
            np.empty(0, np.float32),
            vocabulary=vocabulary,
        )
        result.setup_seconds = time.perf_counter() - started
        _run_units(ray, workers, described, config, table, result, progress, on_unit, started)
        clock = time.perf_counter()
        tables = table.gather()
        result.shard_status = table.status()
        result.gather_seconds = time.perf_counter() - clock
        result.input_vectors = tables["input"]
        result.output_vectors = tables["output"]
        result.biases = tables["bias"]
        result.seconds = time.perf_counter() - started
        for worker in workers:
            ray.kill(worker, no_restart=True)
        return result
    finally:
        table.shutdown()
        if own_checkpoints:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)


def _run_units(
    ray: Any,
    workers: list[Any],
    described: list[dict[str, int]],
    config: TrainingConfig,
    table: ShardedTable,
    result: DistributedResult,
    progress: Callable[[Progress], None] | None,
    on_unit: Callable[[UnitStats, Any], None] | None,
    started: float,
) -> None:
    """Hands out (epoch, block) units, one at a time per worker, until all are done."""
    queues = [
        [(epoch, block) for epoch in range(config.epochs) for block in range(info["blocks"])]
        for info in described
    ]
    total_words = max(sum(info["tokens"] for info in described) * config.epochs, 1)
    pending: dict[Any, tuple[int, int, int]] = {}

    def submit(index: int) -> None:
        if queues[index]:
            epoch, block = queues[index][0]
            pending[workers[index].train_block.remote(epoch, block)] = (index, epoch, block)

    for index in range(len(workers)):
        submit(index)
    epoch_loss = [0.0] * config.epochs
    epoch_pairs = [0] * config.epochs
    epoch_left = [
        sum(1 for q in queues for e, _ in q if e == epoch) for epoch in range(config.epochs)
    ]
    words = 0
    running = math.nan
    handles = {"workers": workers, "table": table}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        ref = ready[0]
        index, epoch, block = pending.pop(ref)
        try:
            stats: UnitStats = ray.get(ref)
        except ray.exceptions.RayActorError as error:
            # The worker died: Ray restarts it; give it the same unit again.
            result.redone.append(Redone(index, epoch, block, type(error).__name__))
            _wait_until_alive(ray, workers[index])
            submit(index)
            continue
        except ray.exceptions.RayTaskError as error:
            cause = error.cause if hasattr(error, "cause") else None
            if isinstance(cause, TrainingDiverged):
                raise TrainingDiverged(str(cause)) from None
            raise
        queues[index].pop(0)
        result.units.append(stats)
        words += stats.words
        result.words = words
        result.pairs += stats.pairs
        epoch_loss[epoch] += stats.loss
        epoch_pairs[epoch] += stats.pairs
        epoch_left[epoch] -= 1
        if stats.pairs:
            mean = stats.loss / stats.pairs
            running = mean if math.isnan(running) else 0.8 * running + 0.2 * mean
        epoch_end = epoch_left[epoch] == 0
        if progress is not None:
            progress(
                Progress(
                    epoch + 1,
                    config.epochs,
                    min(words / total_words, 1.0),
                    words,
                    time.perf_counter() - started,
                    running,
                    stats.rate,
                    epoch_end=epoch_end,
                )
            )
        if on_unit is not None:
            on_unit(stats, handles)
        submit(index)
    result.epoch_losses = [
        loss / pairs if pairs else math.nan for loss, pairs in zip(epoch_loss, epoch_pairs)
    ]


def _wait_until_alive(ray: Any, worker: Any, seconds: float = 60.0) -> None:
    """Waits for a restarted worker to answer (calls sent while it restarts may fail)."""
    deadline = time.perf_counter() + seconds
    while True:
        try:
            ray.get(worker.describe.remote(), timeout=seconds)
            return
        except ray.exceptions.RayActorError:
            if time.perf_counter() > deadline:
                raise
            time.sleep(0.2)


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Joins the Ray cluster at ``address``, or starts a local one with ``num_cpus`` CPUs
    (default: the machine's). Returns whether it started Ray (and so should shut it down);
    does nothing if Ray is already initialised."""
    ray = _ray()
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        return False
    ray.init(
        num_cpus=num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    return True
