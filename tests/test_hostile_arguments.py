"""Arguments built to break the binding: zero sizes, aliasing views, huge broadcast arrays,
learning rates that overflow float32, foreign byte orders, inputs changed after a call,
and the sampler cache. Each is refused with a Python exception naming the argument, or
computed correctly; none may panic, abort or corrupt memory."""

from __future__ import annotations

import numpy as np
import pytest

import rustnce
from rustnce import _rustnce, _samplers


def _skipgram_problem(vocabulary=30, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    tables = [
        (rng.standard_normal((vocabulary, dim)) * 0.1).astype(np.float32),
        (rng.standard_normal((vocabulary, dim)) * 0.1).astype(np.float32),
        np.zeros(vocabulary, np.float32),
    ]
    centers = rng.integers(0, vocabulary, 16)
    contexts = rng.integers(0, vocabulary, 16)
    sampled = rustnce.LogUniformSampler(vocabulary, seed=1).sample(contexts[:, None], 1, 5, True)
    return tables, centers, contexts, sampled


def test_skipgram_step_with_zero_columns_is_a_value_error():
    tables, centers, contexts, sampled = _skipgram_problem()
    empty = [np.zeros((30, 0), np.float32), np.zeros((30, 0), np.float32), tables[2]]
    with pytest.raises(ValueError, match="input_vectors"):
        rustnce.skipgram_sgd_step(*empty, centers, contexts, sampled, 0.1)


def test_probability_of_a_huge_broadcast_array_is_a_memory_error():
    ids = np.broadcast_to(np.int64(3), (2**36,))
    with pytest.raises(MemoryError):
        rustnce.LogUniformSampler(10).probability(ids)


def _overlapping_tables(vocabulary, dim, layout):
    """Two float32 tables laid over one buffer through separate memoryviews."""
    buffer = bytearray(4 * vocabulary * dim * 2)
    first = np.frombuffer(memoryview(buffer), np.float32, vocabulary * dim).reshape(vocabulary, dim)
    offset = 4 * dim if layout == "shifted" else 0
    second = np.frombuffer(memoryview(buffer), np.float32, vocabulary * dim, offset=offset).reshape(
        vocabulary, dim
    )
    return first, second


@pytest.mark.parametrize("layout", ["same", "shifted"])
def test_skipgram_step_refuses_tables_that_share_memory(layout):
    tables, centers, contexts, sampled = _skipgram_problem()
    first, second = _overlapping_tables(30, 8, layout)
    first[:] = tables[0]
    assert np.shares_memory(first, second)
    with pytest.raises(ValueError, match="overlaps"):
        rustnce.skipgram_sgd_step(first, second, tables[2], centers, contexts, sampled, 0.1)
    assert np.array_equal(first, tables[0])


def test_skipgram_step_refuses_biases_laid_over_output_vectors():
    tables, centers, contexts, sampled = _skipgram_problem()
    biases = tables[1].reshape(-1)[: tables[2].size]
    with pytest.raises(ValueError, match="biases overlaps|overlaps biases"):
        rustnce.skipgram_sgd_step(tables[0], tables[1], biases, centers, contexts, sampled, 0.1)


def test_interleaved_views_that_share_no_element_are_accepted_and_exact():
    rng = np.random.default_rng(3)
    classes, dim = 50, 6
    big = rng.standard_normal((classes, dim + 1)).astype(np.float32)
    weights, biases = big[:, :dim], big[:, dim]
    assert not np.shares_memory(weights, biases)
    labels = rng.integers(0, classes, (20, 1))
    inputs = rng.standard_normal((20, dim)).astype(np.float32)
    sampled = rustnce.LogUniformSampler(classes, seed=4).sample(labels, 1, 10, True)
    w_copy, b_copy = weights.copy(), biases.copy()
    arguments = dict(num_sampled=10, num_classes=classes, sampled_values=sampled, learning_rate=0.5)
    rustnce.nce_sgd_step(w_copy, b_copy, labels, inputs, **arguments)
    rustnce.nce_sgd_step(weights, biases, labels, inputs, **arguments)
    assert np.array_equal(weights, w_copy) and np.array_equal(biases, b_copy)


def test_learning_rate_that_overflows_float32_is_refused_for_float32_only():
    rng = np.random.default_rng(5)
    weights = rng.standard_normal((40, 4)).astype(np.float32)
    biases = np.zeros(40, np.float32)
    labels = rng.integers(0, 40, (8, 1))
    inputs = rng.standard_normal((8, 4)).astype(np.float32)
    before = weights.copy()
    with pytest.raises(ValueError, match="learning_rate"):
        rustnce.nce_sgd_step(weights, biases, labels, inputs, 5, 40, learning_rate=1e39, seed=1)
    assert np.array_equal(weights, before)
    w64, b64 = weights.astype(np.float64), biases.astype(np.float64)
    rustnce.nce_sgd_step(
        w64, b64, labels, inputs.astype(np.float64), 5, 40, learning_rate=1e-300, seed=1
    )
    tables, centers, contexts, sampled = _skipgram_problem()
    for rate in (1e39, 1e-320):
        with pytest.raises(ValueError, match="learning_rate"):
            rustnce.skipgram_sgd_step(*tables, centers, contexts, sampled, rate)


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a.astype(np.float64),
        lambda a: a.astype(a.dtype.newbyteorder(">")),
        lambda a: a.astype(np.float16),
        lambda a: a.tolist(),
    ],
)
def test_skipgram_tables_of_the_wrong_type_are_type_errors(make):
    tables, centers, contexts, sampled = _skipgram_problem()
    with pytest.raises(TypeError, match="input_vectors"):
        rustnce.skipgram_sgd_step(
            make(tables[0]), tables[1], tables[2], centers, contexts, sampled, 0.1
        )


def test_gradients_do_not_depend_on_inputs_changed_after_the_call():
    rng = np.random.default_rng(6)
    weights = rng.standard_normal((60, 5))
    biases = rng.standard_normal(60)
    labels = rng.integers(0, 60, (12, 2))
    inputs = rng.standard_normal((12, 5))
    sampled = rustnce.LogUniformSampler(60, seed=8).sample(labels, 2, 7, True)
    arguments = (weights, biases, labels, inputs, 7, 60)
    expected = rustnce.nce_loss_and_gradients(*arguments, num_true=2, sampled_values=sampled)
    want_weights = expected.weights.values.copy()
    want_merged = [g.values.copy() for g in expected.merged()]
    g = rustnce.nce_loss_and_gradients(*arguments, num_true=2, sampled_values=sampled)
    inputs[:] = 1e6
    inputs.shape = (6, 10)  # a new shape in place
    np.testing.assert_array_equal(g.weights.values, want_weights)
    np.testing.assert_array_equal(g.merged()[0].values, want_merged[0])
    target = np.zeros_like(weights)
    g.accumulate(target)
    dense = np.zeros_like(weights)
    np.add.at(dense, expected.weights.indices, want_weights)
    np.testing.assert_allclose(target, dense, rtol=1e-12, atol=1e-12)


def test_sampler_cache_is_bounded_by_memory():
    _samplers.reset_sampler_cache()
    unigrams = np.ones(1_000_000, np.float32)
    true_classes = np.zeros((1, 1), np.int64)
    for seed in range(30):
        rustnce.fixed_unigram_candidate_sampler(
            true_classes, 1, 4, True, 1_000_000, unigrams=unigrams, seed=seed
        )
    kept, held = _rustnce.sampler_cache_usage()
    assert held <= _samplers.MAX_CACHED_BYTES
    assert 1 <= kept < 30
    # The latest call's stream goes on; an evicted one starts afresh, as after a reset.
    again = rustnce.fixed_unigram_candidate_sampler(
        true_classes, 1, 4, True, 1_000_000, unigrams=unigrams, seed=0
    )
    _samplers.reset_sampler_cache()
    fresh = rustnce.fixed_unigram_candidate_sampler(
        true_classes, 1, 4, True, 1_000_000, unigrams=unigrams, seed=0
    )
    np.testing.assert_array_equal(again[0], fresh[0])
    _samplers.reset_sampler_cache()


def test_thread_counts_beyond_the_cap_are_refused():
    for threads in (-1, 10**6):
        with pytest.raises(ValueError, match="threads"):
            rustnce.set_num_threads(threads)
    assert rustnce.get_num_threads() >= 1


def test_thread_counts_beyond_int64_and_non_ints_are_refused_naming_the_argument():
    before = rustnce.get_num_threads()
    for threads in (2**64, -(2**64)):
        with pytest.raises(ValueError, match=r"^threads must be at (most|least) .*, got -?1844"):
            rustnce.set_num_threads(threads)
    for threads in (2.0, "2", True, None):
        with pytest.raises(TypeError, match="^threads must be an int"):
            rustnce.set_num_threads(threads)
    assert rustnce.get_num_threads() == before
