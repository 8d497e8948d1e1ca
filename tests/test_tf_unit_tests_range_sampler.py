"""TensorFlow's C++ unit tests of the range samplers, ported: ``RangeSamplerTest`` of
``tensorflow/core/kernels/range_sampler_test.cc``, run against rustnce's sampler objects and the
NumPy reference's.

The C++ tests call the samplers' internals; here the same expectations go through the public
sampler API:

* ``Probability(i)`` is ``sampler.probability(ids)``;
* ``SampleBatch`` with ``PhiloxRandom(123, 17)`` is ``sample(..., unique=False)`` of a sampler
  seeded with the raw attributes ``(123, 17)``, which starts from that very generator;
* ``Update(values)`` of the learned unigram sampler is a ``sample`` call whose true classes are
  ``values`` (the sampler learns them after drawing);
* ``SampleBatchGetExpectedCount`` with "extras" is ``sample`` with those extras as true classes.

Not ported: ``Avoid`` (``SampleBatchGetExpectedCountAvoid``, which neither TensorFlow's Python
API nor rustnce exposes).
"""

from __future__ import annotations

import numpy as np
import pytest

SEED = (123, 17)  # the C++ tests' PhiloxRandom(123, 17)
VOCAB = "w1,1\nw2,2\nw3,4\nw4,8\nw5,16\nw6,32\nw7,64\nw8,128\nw9,256"
WEIGHTS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
POWERS_TOTAL = 197.05  # 1^0.8 + 2^0.8 + ... + 256^0.8, as the C++ test writes it


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "vocab_file"
    path.write_text(VOCAB)
    return str(path)


def probabilities(sampler, range_max):
    return sampler.probability(np.arange(range_max)).astype(np.float64)


def check_probabilities_sum_to_one(sampler, range_max):
    assert abs(probabilities(sampler, range_max).sum() - 1.0) <= 1e-4


def check_histogram(sampler, range_max, num_samples=1000, tolerance=0.05):
    """1000 draws without uniqueness; each value's frequency within 0.05 of p(v)."""
    expected = probabilities(sampler, range_max)
    sampled, _, _ = sampler.sample(np.array([[0]]), 1, num_samples, False)
    assert sampled.min() >= 0 and sampled.max() < range_max
    frequencies = np.bincount(sampled, minlength=range_max) / num_samples
    np.testing.assert_allclose(frequencies, expected, atol=tolerance, rtol=0)


def update_1(sampler):
    """Adds the value 3 ten times."""
    sampler.sample(np.full((10, 1), 3), 1, 1, False)


def update_2(sampler):
    """Adds each value v in 1..9 v times (``Update(a[i:])`` for i in 1..9)."""
    for first in range(1, 10):
        sampler.sample(np.arange(first, 10)[:, None], 1, 1, False)


def test_uniform_probabilities(implementation):
    p = probabilities(implementation.UniformSampler(10), 10)
    assert np.all(p == p[0])


def test_uniform_checksum(implementation):
    check_probabilities_sum_to_one(implementation.UniformSampler(10), 10)


def test_uniform_histogram(implementation):
    check_histogram(implementation.UniformSampler(10, seed=SEED), 10)


def test_log_uniform_probabilities(implementation):
    range_max = 1_000_000
    sampler = implementation.LogUniformSampler(range_max)
    i = 100
    while i < range_max:
        ratio = sampler.probability([i])[0] / sampler.probability([i // 2])[0]
        assert abs(ratio - 0.5) <= 0.1
        i *= 2


def test_log_uniform_checksum(implementation):
    check_probabilities_sum_to_one(implementation.LogUniformSampler(10), 10)


def test_log_uniform_histogram(implementation):
    check_histogram(implementation.LogUniformSampler(10, seed=SEED), 10)


def test_unigram_probabilities_1(implementation):
    sampler = implementation.LearnedUnigramSampler(10)
    update_1(sampler)
    p = probabilities(sampler, 10)
    assert abs(p[3] - 0.55) <= 1e-4
    np.testing.assert_allclose(np.delete(p, 3), 0.05, atol=1e-4, rtol=0)


def test_unigram_probabilities_2(implementation):
    sampler = implementation.LearnedUnigramSampler(10)
    update_2(sampler)
    np.testing.assert_allclose(
        probabilities(sampler, 10), (np.arange(10) + 1) / 55.0, atol=1e-4, rtol=0
    )


def test_unigram_checksum(implementation):
    sampler = implementation.LearnedUnigramSampler(10)
    update_1(sampler)
    check_probabilities_sum_to_one(sampler, 10)


def test_unigram_histogram(implementation):
    sampler = implementation.LearnedUnigramSampler(10, seed=SEED)
    update_1(sampler)
    check_histogram(sampler, 10)


def expected_fixed_unigram(reserved):
    """p(i) = 2^((i - reserved) * 0.8) / 197.05 after `reserved` ids of probability 0."""
    powers = [2.0 ** ((i - reserved) * 0.8) / POWERS_TOTAL for i in range(reserved, reserved + 9)]
    return np.array([0.0] * reserved + powers)


@pytest.mark.parametrize("source", ["file", "vector"])
def test_fixed_unigram_probabilities(implementation, vocab_file, source):
    """``FixedUnigramProbabilities`` and ``FixedUnigramProbabilitiesFromVector``."""
    counts = {"vocab_file": vocab_file} if source == "file" else {"unigrams": WEIGHTS}
    sampler = implementation.FixedUnigramSampler(9, distortion=0.8, **counts)
    np.testing.assert_allclose(
        probabilities(sampler, 9), expected_fixed_unigram(0), atol=1e-4, rtol=0
    )


def test_fixed_unigram_no_existing_filename(implementation):
    with pytest.raises(FileNotFoundError):
        implementation.FixedUnigramSampler(9, vocab_file="NoExistingFile", distortion=0.8)


def test_fixed_unigram_no_matching_range_weights(implementation, vocab_file):
    with pytest.raises(ValueError, match="range"):
        implementation.FixedUnigramSampler(8, vocab_file=vocab_file, distortion=0.8)


@pytest.mark.parametrize("source", ["file", "vector"])
def test_fixed_unigram_checksum(implementation, vocab_file, source):
    counts = {"vocab_file": vocab_file} if source == "file" else {"unigrams": WEIGHTS}
    check_probabilities_sum_to_one(
        implementation.FixedUnigramSampler(9, distortion=0.8, **counts), 9
    )


@pytest.mark.parametrize("source", ["file", "vector"])
def test_fixed_unigram_histogram(implementation, vocab_file, source):
    counts = {"vocab_file": vocab_file} if source == "file" else {"unigrams": WEIGHTS}
    check_histogram(implementation.FixedUnigramSampler(9, distortion=0.8, seed=SEED, **counts), 9)


@pytest.mark.parametrize("reserved", [1, 2])
@pytest.mark.parametrize("source", ["file", "vector"])
def test_fixed_unigram_probabilities_reserved(implementation, vocab_file, source, reserved):
    """``FixedUnigramProbabilitiesReserve{1,2}`` and their ``FromVector`` twins."""
    counts = {"vocab_file": vocab_file} if source == "file" else {"unigrams": WEIGHTS}
    sampler = implementation.FixedUnigramSampler(
        9 + reserved, distortion=0.8, num_reserved_ids=reserved, **counts
    )
    np.testing.assert_allclose(
        probabilities(sampler, 9 + reserved), expected_fixed_unigram(reserved), atol=1e-4, rtol=0
    )


def test_all(implementation):
    batch_size = 10
    extras = np.array([[0], [batch_size - 1]])
    sampled, extras_expected, batch_expected = implementation.AllCandidateSampler().sample(
        extras, 1, batch_size, False
    )
    np.testing.assert_array_equal(sampled, np.arange(batch_size))
    np.testing.assert_array_equal(batch_expected, np.ones(batch_size))
    np.testing.assert_array_equal(extras_expected, [[1.0], [1.0]])


def test_unique(implementation):
    """100 batches of 50 distinct values from a log-uniform range of 100: the expected counts
    of every value agree between batches (within half) and with the observed average count
    (within 0.2)."""
    range_max, batch_size, num_batches = 100, 50, 100
    sampler = implementation.LogUniformSampler(range_max, seed=SEED)
    all_values = np.arange(range_max)[:, None]
    batch, expected, _ = sampler.sample(all_values, 1, batch_size, True)
    expected = expected[:, 0].astype(np.float64)
    assert len(set(batch.tolist())) == batch_size
    histogram = np.zeros(range_max)
    for _ in range(num_batches):
        batch, trial_expected, _ = sampler.sample(all_values, 1, batch_size, True)
        np.testing.assert_allclose(trial_expected[:, 0], expected, atol=0, rtol=0.5)
        histogram += np.bincount(batch, minlength=range_max)
    np.testing.assert_allclose(expected, histogram / num_batches, atol=0.2, rtol=0)
