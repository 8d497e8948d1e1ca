"""``python -m rustnce``: a short tour of the main API on a small synthetic problem."""

from __future__ import annotations

import time

import numpy as np

import rustnce


def main() -> None:
    rng = np.random.default_rng(0)
    num_classes, dim, batch, num_sampled = 50_000, 64, 512, 64
    weights = rng.normal(0, 0.1, (num_classes, dim)).astype(np.float32)
    biases = np.zeros(num_classes, np.float32)
    inputs = rng.normal(0, 1, (batch, dim)).astype(np.float32)
    # Frequency-ranked ids: Zipfian labels, as log-uniform sampling assumes.
    labels = (rng.zipf(1.3, (batch, 1)) - 1) % num_classes

    print(f"rustnce {rustnce.__version__}: {batch} examples, {num_classes} classes, dim {dim}")
    sampled = rustnce.log_uniform_candidate_sampler(
        labels, 1, num_sampled, True, num_classes, seed=3
    )
    print(f"log-uniform sampler, seed 3: first ids {sampled[0][:8].tolist()}")

    for name, loss in (
        ("nce_loss", rustnce.nce_loss),
        ("sampled_softmax_loss", rustnce.sampled_softmax_loss),
    ):
        start = time.perf_counter()
        values = loss(weights, biases, labels, inputs, num_sampled, num_classes, seed=1)
        elapsed = (time.perf_counter() - start) * 1e3
        print(f"{name:>22}: mean {values.mean():.4f} over [{values.shape[0]}] in {elapsed:.2f} ms")
    full = rustnce.full_softmax_loss(weights, biases, labels, inputs, num_classes)
    print(f"{'full softmax (eval)':>22}: mean {full.mean():.4f}")

    counts = np.bincount(labels.ravel(), minlength=num_classes).astype(np.float64) + 1.0
    ranks = np.arange(10)
    log_uniform = rustnce.LogUniformSampler(num_classes).probability(ranks)
    unigram = rustnce.FixedUnigramSampler(
        num_classes, distortion=0.75, unigrams=counts
    ).probability(ranks)
    print("noise probability of the 10 most frequent ids (TF default vs word2vec 0.75):")
    print("  log-uniform :", np.array2string(log_uniform, precision=4))
    print("  unigram^0.75:", np.array2string(unigram, precision=4))


if __name__ == "__main__":
    main()
