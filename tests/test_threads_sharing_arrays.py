"""Python threads sharing arrays: in-place updates of one array are serialised, each whole; a
read-only call never fails, and never sees half an update, because another thread writes.

The checks are exact: N identical SGD steps applied by several threads in any order give the
same tables as the N steps applied one after the other (each step is the same function of the
current tables), and every loss a reader computes is the loss of one of those N + 1 states.
"""

from __future__ import annotations

import threading

import numpy as np

import rustnce

CLASSES, DIM, BATCH, SAMPLED = 400, 24, 128, 40


def _problem():
    rng = np.random.default_rng(7)
    weights = (rng.standard_normal((CLASSES, DIM)) * 0.1).astype(np.float32)
    biases = np.zeros(CLASSES, np.float32)
    labels = rng.integers(0, CLASSES, (BATCH, 1))
    inputs = rng.standard_normal((BATCH, DIM)).astype(np.float32)
    sampled = rustnce.LogUniformSampler(CLASSES, seed=3).sample(labels, 1, SAMPLED, True)
    return weights, biases, labels, inputs, sampled


def _run_threads(targets):
    errors = []

    def guarded(target):
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - any failure, panics included
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]


def test_writers_are_serialised_and_readers_see_whole_states():
    weights, biases, labels, inputs, sampled = _problem()
    writers, steps_each, readers, reads_each = 4, 6, 4, 10
    step = dict(
        labels=labels,
        inputs=inputs,
        num_sampled=SAMPLED,
        num_classes=CLASSES,
        sampled_values=sampled,
        learning_rate=0.05,
    )

    # The states of the sequential run and the loss a reader computes on each.
    w_seq, b_seq = weights.copy(), biases.copy()
    losses_of_states = set()
    for k in range(writers * steps_each + 1):
        loss = rustnce.nce_loss_and_gradients(
            w_seq, b_seq, labels, inputs, SAMPLED, CLASSES, sampled_values=sampled
        ).loss
        losses_of_states.add(loss.tobytes())
        if k < writers * steps_each:
            rustnce.nce_sgd_step(w_seq, b_seq, **step)

    seen = []

    def write():
        for _ in range(steps_each):
            rustnce.nce_sgd_step(weights, biases, **step)

    def read():
        for _ in range(reads_each):
            gradients = rustnce.nce_loss_and_gradients(
                weights, biases, labels, inputs, SAMPLED, CLASSES, sampled_values=sampled
            )
            seen.append(gradients.loss.tobytes())

    _run_threads([write] * writers + [read] * readers)
    assert np.array_equal(weights, w_seq) and np.array_equal(biases, b_seq)
    assert len(seen) == readers * reads_each
    assert all(loss in losses_of_states for loss in seen)


def test_skipgram_threads_sharing_tables_all_succeed_and_lose_no_update():
    rng = np.random.default_rng(1)
    vocabulary, dim = 300, 16
    tables = [
        (rng.standard_normal((vocabulary, dim)) * 0.1).astype(np.float32),
        np.zeros((vocabulary, dim), np.float32),
        np.zeros(vocabulary, np.float32),
    ]
    reference = [t.copy() for t in tables]
    centers = rng.integers(0, vocabulary, 200)
    contexts = rng.integers(0, vocabulary, 200)
    sampled = rustnce.LogUniformSampler(vocabulary, seed=2).sample(contexts[:, None], 1, 10, True)
    threads, steps_each = 6, 5
    for _ in range(threads * steps_each):
        rustnce.skipgram_sgd_step(*reference, centers, contexts, sampled, 0.05)

    def train():
        for _ in range(steps_each):
            rustnce.skipgram_sgd_step(*tables, centers, contexts, sampled, 0.05)

    _run_threads([train] * threads)
    for table, expected in zip(tables, reference):
        assert np.array_equal(table, expected)


def test_readers_of_one_array_run_while_another_array_is_written():
    weights, biases, labels, inputs, sampled = _problem()
    other_w, other_b = weights.copy(), biases.copy()
    expected = rustnce.nce_loss(
        weights, biases, labels, inputs, SAMPLED, CLASSES, sampled_values=sampled
    )
    results = []

    def write_other():
        for _ in range(10):
            rustnce.nce_sgd_step(
                other_w,
                other_b,
                labels,
                inputs,
                SAMPLED,
                CLASSES,
                sampled_values=sampled,
                learning_rate=0.1,
            )

    def read():
        for _ in range(10):
            results.append(
                rustnce.nce_loss(
                    weights, biases, labels, inputs, SAMPLED, CLASSES, sampled_values=sampled
                )
            )

    _run_threads([write_other, write_other, read, read])
    assert all(np.array_equal(r, expected) for r in results)
    assert not np.array_equal(other_w, weights)
