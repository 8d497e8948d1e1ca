"""TensorFlow's own unit tests of the candidate sampler ops, ported:
``RangeSamplerOpsTest`` of ``tensorflow/python/kernel_tests/random/candidate_sampler_ops_test.py``
(TF 2.x), run against rustnce and against the NumPy reference.

TensorFlow's expectations and inputs are kept; where TensorFlow raises
``InvalidArgumentError`` for an id out of range, rustnce raises ``IndexError`` (its documented
class for ids out of range), and ``ValueError`` for the other refusals TensorFlow's tests
expect. ``raw_ops.ThreadUnsafeUnigramCandidateSampler`` is TensorFlow's lock-free copy of the
learned unigram sampler; rustnce has only the latter, so those cases run on it.

Not ported: ``testTrueCandidates`` (it checks TensorFlow's ``reshape`` of a constant, no sampler
op).
"""

from __future__ import annotations

import numpy as np
import pytest

BATCH_SIZE = 3
NUM_TRUE = 2
RANGE = 5
NUM_SAMPLED = RANGE
TRUE_LABELS = [[1, 2], [0, 4], [3, 3]]


def true_classes():
    return np.array(TRUE_LABELS, dtype=np.int64)


def test_sampled_candidates(implementation):
    sampled, _, _ = implementation.all_candidate_sampler(
        true_classes(), NUM_TRUE, NUM_SAMPLED, True
    )
    np.testing.assert_array_equal(sampled, [0, 1, 2, 3, 4])
    assert sampled.shape == (NUM_SAMPLED,)


def test_true_log_expected_count(implementation):
    _, true_count, _ = implementation.all_candidate_sampler(
        true_classes(), NUM_TRUE, NUM_SAMPLED, True
    )
    log_count = np.log(true_count)
    np.testing.assert_array_equal(log_count, [[0.0] * NUM_TRUE] * BATCH_SIZE)
    assert true_count.shape == (BATCH_SIZE, NUM_TRUE)
    assert log_count.shape == (BATCH_SIZE, NUM_TRUE)


def test_sampled_log_expected_count(implementation):
    _, _, sampled_count = implementation.all_candidate_sampler(
        true_classes(), NUM_TRUE, NUM_SAMPLED, True
    )
    log_count = np.log(sampled_count)
    np.testing.assert_array_equal(log_count, [0.0] * NUM_SAMPLED)
    assert sampled_count.shape == (NUM_SAMPLED,)
    assert log_count.shape == (NUM_SAMPLED,)


def test_accidental_hits(implementation):
    sampled, _, _ = implementation.all_candidate_sampler(
        true_classes(), NUM_TRUE, NUM_SAMPLED, True
    )
    indices, ids, weights = implementation.compute_accidental_hits(
        true_classes(), sampled, NUM_TRUE
    )
    assert indices.ndim == ids.ndim == weights.ndim == 1
    assert len(indices) > 0
    for index, id_, weight in zip(indices, ids, weights):
        assert id_ in TRUE_LABELS[index]
        assert weight < -1.0e37


def test_seed(implementation):
    """Equal seeds draw equal candidates; unseeded draws differ (at most 2 of 10 pairs
    coincide; two unique log-uniform draws of all 5 ids coincide with probability 1.4%).
    Each draw is a new op in TensorFlow's graph-mode test, so a new sampler here."""

    def draw(seed):
        sampler = implementation.LogUniformSampler(5, seed=seed)
        sampled, _, _ = sampler.sample(true_classes(), NUM_TRUE, NUM_SAMPLED, True)
        return sampled

    for seed in [1, 12, 123, 1234]:
        np.testing.assert_array_equal(draw(seed), draw(seed))
    num_same = sum(np.array_equal(draw(None), draw(None)) for _ in range(10))
    assert num_same <= 2


@pytest.mark.parametrize("range_max", [2**32 + 1, np.iinfo(np.int32).max, np.iinfo(np.int64).max])
def test_unigram_range_too_large(implementation, range_max):
    """``testUnigramRangeTooLarge`` and ``testLearnedUnigramRangeTooLarge``."""
    with pytest.raises(ValueError, match="range_max"):
        implementation.learned_unigram_candidate_sampler(
            true_classes=np.array([[0]], np.int64),
            num_true=1,
            num_sampled=1,
            unique=False,
            range_max=int(range_max),
        )


@pytest.mark.parametrize("range_max", [0, -1])
def test_unigram_nonpositive_range(implementation, range_max):
    with pytest.raises(ValueError, match="range_max"):
        implementation.learned_unigram_candidate_sampler(
            true_classes=np.array([[0]], np.int64),
            num_true=1,
            num_sampled=1,
            unique=False,
            range_max=range_max,
        )


@pytest.mark.parametrize("unique", [False, True])
def test_unigram_single_class(implementation, unique):
    sampled, true_count, sampled_count = implementation.learned_unigram_candidate_sampler(
        true_classes=np.array([[0]], np.int64),
        num_true=1,
        num_sampled=1,
        unique=unique,
        range_max=1,
    )
    np.testing.assert_array_equal(sampled, [0])
    np.testing.assert_array_equal(true_count, [[1.0]])
    np.testing.assert_array_equal(sampled_count, [1.0])


@pytest.mark.parametrize("kind", ["uniform", "log_uniform"])
@pytest.mark.parametrize("unique", [False, True])
def test_large_uniform_range(implementation, kind, unique):
    range_max = 2**32 + 1
    sampler = getattr(implementation, f"{kind}_candidate_sampler")
    sampled, true_count, sampled_count = sampler(
        np.array([[0]], np.int64), 1, 2, unique, range_max, seed=123
    )
    assert np.all(sampled >= 0)
    assert np.all(sampled < range_max)
    for count in (true_count, sampled_count):
        assert np.all(np.isfinite(count))
        assert np.all(count > 0)


@pytest.mark.parametrize("bad", [10, -10])
def test_candidate_out_of_range(implementation, bad):
    with pytest.raises(IndexError, match="out of range"):
        implementation.log_uniform_candidate_sampler(
            true_classes=np.array([[0, bad]]),
            num_true=2,
            num_sampled=1000,
            unique=False,
            range_max=2,
        )
