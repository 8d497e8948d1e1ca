"""A classifier over a large output space whose class weights live in Ray shard actors.

    python -m pip install 'rustnce[ray]' && python examples/sharded_classifier.py

Synthetic task: 200,000 classes, each with a hidden 32-dimensional prototype; an example is its
class's prototype plus noise, and classes follow a Zipfian frequency (class 0 most frequent, as
``log_uniform_candidate_sampler`` assumes). The model is a linear layer: logits ``x W^T + b``,
with ``W [200000, 32]`` and ``b [200000]`` split over 4 shards ("mod" strategy, so the frequent
classes do not all sit on one shard). Each step pulls only the rows of the batch's labels and 64
sampled classes, runs :func:`rustnce.sampled_softmax_sgd_step` on them and pushes the changes
back (:func:`rustnce.distributed.sharded_sgd_step`). At the end the tables are gathered and
top-1 accuracy is measured with the full softmax on held-out examples.
"""

from __future__ import annotations

import time

import numpy as np
import ray

import rustnce
from rustnce.distributed import ShardedTable, ShardLayout, TableSpec, sharded_sgd_step

CLASSES, DIM, SHARDS = 200_000, 32, 4
BATCH, STEPS, SAMPLED = 256, 400, 64


def zipf_classes(rng: np.random.Generator, size: int, active: int) -> np.ndarray:
    """Classes with probability proportional to 1 / (rank + 1), among the first ``active``."""
    weights = 1.0 / np.arange(1, active + 1)
    return rng.choice(active, size=size, p=weights / weights.sum())


def main() -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rng = np.random.default_rng(0)
    prototypes = rng.normal(size=(CLASSES, DIM)).astype(np.float32)
    table = ShardedTable(
        ShardLayout(CLASSES, SHARDS, "mod"),
        {"weights": TableSpec(DIM, "zeros"), "biases": TableSpec(None, "zeros")},
    )
    sampler = rustnce.LogUniformSampler(CLASSES, seed=1)
    active = 5_000  # the classes that occur in this short run's data
    started = time.perf_counter()
    for step in range(STEPS):
        labels = zipf_classes(rng, BATCH, active)
        inputs = prototypes[labels] + 0.3 * rng.normal(size=(BATCH, DIM)).astype(np.float32)
        loss, _ = sharded_sgd_step(
            table,
            labels[:, None],
            inputs,
            num_sampled=SAMPLED,
            learning_rate=0.5,
            loss="sampled_softmax",
            sampled_values=sampler.sample(labels[:, None], 1, SAMPLED, True),
        )
        if step % 100 == 0 or step == STEPS - 1:
            print(f"step {step:4d}: sampled softmax loss {loss.mean():.3f}")
    seconds = time.perf_counter() - started
    tables = table.gather()
    labels = zipf_classes(rng, 2_000, active)
    inputs = prototypes[labels] + 0.3 * rng.normal(size=(labels.size, DIM)).astype(np.float32)
    predicted = np.argmax(inputs @ tables["weights"].T + tables["biases"], axis=1)
    print(
        f"{STEPS} steps of {BATCH} examples in {seconds:.1f} s; held-out top-1 accuracy over "
        f"all {CLASSES:,} classes: {np.mean(predicted == labels):.3f}"
    )
    table.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
