"""TensorFlow's own unit tests of the sampled losses, ported: ``ComputeSampledLogitsTest`` of
``tensorflow/python/ops/nn_test.py`` (TF 2.x).

Each test keeps TensorFlow's inputs (NumPy's legacy generator seeded with 0, as there),
TensorFlow's expected values (computed with NumPy, the way the TF test computes them) and
TensorFlow's tolerances; only the function under test is rustnce's, or the NumPy reference's
(both are run). TensorFlow's loops over ``num_true`` in 1..4 are unrolled into one pytest case
each, in the same order, so that the random draws are TensorFlow's too.

Not ported: ``testSampledSoftmaxLossBf16`` (bfloat16 arrays; rustnce computes in float32 and
float64 only, see README "Differences from TensorFlow").
"""

from __future__ import annotations

import numpy as np
import pytest

NUM_CLASSES = 5
BATCH = 3
DIM = 10
SAMPLED = [1, 0, 2, 3]


def generated_data(rng, num_true, labels, sampled, subtract_log_q):
    """TensorFlow's ``_GenerateTestData``: random weights, biases and activations, sampled
    values whose true expected count is ``[batch, 1]`` (broadcast over ``num_true``), and the
    expected logits and targets written out in NumPy."""
    weights = rng.randn(NUM_CLASSES, DIM).astype(np.float32)
    biases = rng.randn(NUM_CLASSES).astype(np.float32)
    inputs = rng.randn(BATCH, DIM).astype(np.float32)
    true_count = np.full([BATCH, 1], 0.5, np.float32)
    sampled_count = np.full([len(sampled)], 0.5, np.float32)
    labels = np.asarray(labels)
    true_rows = weights[labels].reshape(BATCH, num_true, DIM)
    true_logits = (inputs[:, None, :] * true_rows).sum(axis=2)
    true_logits += biases[labels].reshape(BATCH, num_true)
    sampled_logits = inputs @ weights[sampled].T + biases[sampled]
    if subtract_log_q:
        true_logits -= np.log(true_count)
        sampled_logits -= np.log(sampled_count)[None, :]
    logits = np.concatenate([true_logits, sampled_logits], axis=1)
    targets = np.hstack([np.ones_like(true_logits) / num_true, np.zeros_like(sampled_logits)])
    return {
        "weights": weights,
        "biases": biases,
        "inputs": inputs,
        "sampled_values": (sampled, true_count, sampled_count),
        "logits": logits,
        "targets": targets,
    }


def shard(array, num_shards=3):
    """TensorFlow's ``fixed_size_partitioner``: contiguous shards, the first ones one row
    longer (5 rows in 3 shards: 2, 2, 1)."""
    return np.array_split(array, num_shards)


def labels_for(rng, num_true):
    return rng.randint(low=0, high=NUM_CLASSES, size=BATCH * num_true)


def cases_over_num_true(subtract_log_q, sampled=SAMPLED):
    """TensorFlow's ``for num_true in range(1, 5)`` loop with ``np.random.seed(0)``."""
    rng = np.random.RandomState(0)
    cases = []
    for num_true in range(1, 5):
        labels = labels_for(rng, num_true)
        cases.append(
            (num_true, labels, generated_data(rng, num_true, labels, sampled, subtract_log_q))
        )
    return cases


def sampled_logits(implementation, data, labels, num_true, **overrides):
    kwargs = dict(
        weights=data["weights"],
        biases=data["biases"],
        labels=np.asarray(labels, np.int64).reshape(BATCH, num_true),
        inputs=data["inputs"],
        num_sampled=4,
        num_classes=NUM_CLASSES,
        num_true=num_true,
        sampled_values=data["sampled_values"],
        subtract_log_q=False,
        remove_accidental_hits=False,
        partition_strategy="div",
    )
    kwargs.update(overrides)
    return implementation.compute_sampled_logits(**kwargs)


EPS = 1e-3  # TensorFlow's self._eps


@pytest.mark.parametrize("case", range(4), ids=[f"num_true={t}" for t in range(1, 5)])
def test_shapes(implementation, case):
    num_true, labels, data = cases_over_num_true(subtract_log_q=False)[case]
    logits, targets = sampled_logits(implementation, data, labels, num_true)
    assert logits.shape == data["logits"].shape
    assert targets.shape == data["targets"].shape


@pytest.mark.parametrize("case", range(4), ids=[f"num_true={t}" for t in range(1, 5)])
def test_basic(implementation, case):
    """Without accidental hit removal or subtract_log_q."""
    num_true, labels, data = cases_over_num_true(subtract_log_q=False)[case]
    logits, targets = sampled_logits(implementation, data, labels, num_true)
    np.testing.assert_allclose(logits, data["logits"], rtol=EPS, atol=EPS)
    np.testing.assert_allclose(targets, data["targets"], rtol=EPS, atol=EPS)


@pytest.mark.parametrize("case", range(4), ids=[f"num_true={t}" for t in range(1, 5)])
def test_accidental_hit_removal(implementation, case):
    """With accidental hit removal, no subtract_log_q: every hit's exp(logit) is near 0."""
    num_true, labels, data = cases_over_num_true(subtract_log_q=False)[case]
    logits, _ = sampled_logits(
        implementation,
        data,
        labels,
        num_true,
        num_sampled=len(SAMPLED),
        remove_accidental_hits=True,
    )
    rows = np.asarray(labels).reshape(BATCH, num_true)
    hits = 0
    for row in range(BATCH):
        for column, candidate in enumerate(SAMPLED):
            if candidate in rows[row]:
                hits += 1
                assert abs(np.exp(logits[row, column + num_true])) <= EPS
    assert hits > 0  # TensorFlow's draws do contain hits


@pytest.mark.parametrize("case", range(4), ids=[f"num_true={t}" for t in range(1, 5)])
def test_subtract_log_q(implementation, case):
    """With subtract_log_q (the [batch, 1] true counts broadcast over num_true columns)."""
    num_true, labels, data = cases_over_num_true(subtract_log_q=True)[case]
    logits, targets = sampled_logits(implementation, data, labels, num_true, subtract_log_q=True)
    np.testing.assert_allclose(logits, data["logits"], rtol=EPS, atol=EPS)
    np.testing.assert_allclose(targets, data["targets"], rtol=EPS, atol=EPS)


@pytest.mark.parametrize("case", range(4), ids=[f"num_true={t}" for t in range(1, 5)])
def test_sharded(implementation, case):
    """With sharded weights and sharded biases."""
    num_true, labels, data = cases_over_num_true(subtract_log_q=False)[case]
    logits, targets = sampled_logits(
        implementation,
        data,
        labels,
        num_true,
        weights=shard(data["weights"]),
        biases=shard(data["biases"]),
    )
    np.testing.assert_allclose(logits, data["logits"], rtol=EPS, atol=EPS)
    np.testing.assert_allclose(targets, data["targets"], rtol=EPS, atol=EPS)


def single_label_case():
    """``testNCELoss`` / ``testSampledSoftmaxLoss`` data: labels [0, 1, 2], log Q subtracted."""
    rng = np.random.RandomState(0)
    labels = [0, 1, 2]
    return labels, generated_data(rng, 1, labels, SAMPLED, subtract_log_q=True)


def loss_kwargs(data, labels, sharded):
    return dict(
        weights=shard(data["weights"]) if sharded else data["weights"],
        biases=shard(data["biases"]) if sharded else data["biases"],
        labels=np.asarray(labels).reshape(BATCH, 1),
        inputs=data["inputs"],
        num_sampled=4,
        num_classes=NUM_CLASSES,
        num_true=1,
        sampled_values=data["sampled_values"],
    )


@pytest.mark.parametrize("sharded", [False, True], ids=["whole", "sharded"])
def test_nce_loss(implementation, sharded):
    """TensorFlow's expectation: sigmoid cross-entropy with the prediction clipped to
    [1e-4, 1 - 1e-4], summed over the columns; tolerance 1e-4."""
    labels, data = single_label_case()
    prediction = np.clip(1.0 / (1.0 + np.exp(-data["logits"])), 1e-4, 1 - 1e-4)
    targets = data["targets"]
    expected = np.sum(
        -targets * np.log(prediction) - (1.0 - targets) * np.log(1.0 - prediction), axis=1
    )
    got = implementation.nce_loss(**loss_kwargs(data, labels, sharded))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sharded", [False, True], ids=["whole", "sharded"])
def test_sampled_softmax_loss(implementation, sharded):
    """TensorFlow's expectation: softmax cross-entropy of the logits (max subtracted, 1e-20
    added inside the log); tolerance 1e-4."""
    labels, data = single_label_case()
    logits = data["logits"]
    stable = np.exp(logits - logits.max(axis=1, keepdims=True))
    prediction = stable / stable.sum(axis=1, keepdims=True)
    expected = -np.sum(data["targets"] * np.log(prediction + 1e-20), axis=1)
    got = implementation.sampled_softmax_loss(
        **loss_kwargs(data, labels, sharded), remove_accidental_hits=False
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
