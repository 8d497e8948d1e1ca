"""rustnce.reference against the TensorFlow reference values of docs/semantics.md.

Section numbers refer to ``docs/semantics.md``: the items of §13 (values recorded from
TensorFlow 2.21) and the facts of §14 (confirmed by running TensorFlow) that can be checked
without TensorFlow, plus finite-difference checks of the reference's gradients (§6) in float64.
"""

import itertools

import numpy as np
import pytest

from rustnce import reference as ref

F32_MAX = np.float32(ref.FLT_MAX)


def f32(values):
    return np.array(values, dtype=np.float32)


def assert_prints_as(actual, printed):
    """float32 ``actual`` prints as ``printed`` under NumPy's default array printing.

    NumPy prints the shortest digits that identify the float32, capped at 8 decimals. Above
    0.1 that identifies the float32 exactly; below, two neighbouring values may print alike,
    so tests pair this with an exact formula check.
    """
    actual = np.asarray(actual)
    assert actual.dtype == np.float32
    shown = [float(np.format_float_positional(v, precision=8, unique=True)) for v in actual.ravel()]
    np.testing.assert_array_equal(np.reshape(shown, actual.shape), printed)


# ---------------------------------------------------------------------------------------
# §13 item 1: loss and gradient with fixed sampled_values
# ---------------------------------------------------------------------------------------


def item1(dtype=np.float32):
    weights = np.array([[1, 0], [0, 1], [1, 1], [-1, 0.5]], dtype=dtype)
    biases = np.array([0.1, -0.2, 0.0, 0.3], dtype=dtype)
    inputs = np.array([[0.5, -1], [2, 0.25]], dtype=dtype)
    labels = np.array([[2], [0]], dtype=np.int64)
    sampled_values = (
        np.array([2, 1, 3], dtype=np.int64),
        f32([[0.5], [0.25]]),
        f32([0.5, 0.8, 0.1]),
    )
    return dict(
        weights=weights,
        biases=biases,
        labels=labels,
        inputs=inputs,
        num_sampled=3,
        num_classes=4,
        sampled_values=sampled_values,
    )


ITEM1_LOGITS = [
    [0.19314718, 0.19314718, -0.97685653, 1.60258508],
    [3.48629427, 2.94314718, 0.27314353, 0.72758508],
]


def test_item1_logits_without_hit_removal():
    logits, targets = ref.compute_sampled_logits(**item1(), remove_accidental_hits=False)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, ITEM1_LOGITS, rtol=1e-6)
    np.testing.assert_array_equal(targets, [[1, 0, 0, 0], [1, 0, 0, 0]])


def test_item1_nce_loss_without_hit_removal():
    loss = ref.nce_loss(**item1(), remove_accidental_hits=False)
    np.testing.assert_allclose(loss, [3.5011971, 4.9853783], rtol=1e-6)


def test_item1_sampled_softmax_loss_without_hit_removal():
    loss = ref.sampled_softmax_loss(**item1(), remove_accidental_hits=False)
    np.testing.assert_allclose(loss, [1.8569258, 0.52148086], rtol=1e-6)


def test_item1_hit_removal_sets_logit_to_minus_flt_max():
    logits, _ = ref.compute_sampled_logits(**item1(), remove_accidental_hits=True)
    assert logits[0, 1] == -F32_MAX
    expected = np.array(ITEM1_LOGITS, dtype=np.float32)
    expected[0, 1] = logits[0, 1]
    np.testing.assert_allclose(logits, expected, rtol=1e-6)


def test_item1_nce_loss_with_hit_removal():
    loss = ref.nce_loss(**item1(), remove_accidental_hits=True)
    np.testing.assert_allclose(loss, [2.7068202, 4.9853783], rtol=1e-6)


def test_item1_sampled_softmax_loss_with_hit_removal():
    loss = ref.sampled_softmax_loss(**item1(), remove_accidental_hits=True)
    np.testing.assert_allclose(loss, [1.6871431, 0.52148086], rtol=1e-6)


def test_item1_nce_gradient_weight_indices():
    grads = ref.nce_loss_and_gradients(**item1())
    np.testing.assert_array_equal(grads["weight_indices"], [2, 0, 2, 1, 3])


def test_item1_nce_gradient_weight_values():
    grads = ref.nce_loss_and_gradients(**item1())
    expected = [
        [-0.2259314, 0.4518628],
        [-0.0594094, -0.0074262],
        [2.1739459, -0.3106526],
        [1.272487, -0.1315498],
        [1.76474, -0.6638106],
    ]
    np.testing.assert_allclose(grads["weight_values"], expected, rtol=2e-6, atol=2e-7)


def test_item1_nce_gradient_bias_values():
    grads = ref.nce_loss_and_gradients(**item1())
    expected = [-0.4518628, -0.0297047, 1.4980758, 0.8413805, 1.5066545]
    np.testing.assert_allclose(grads["bias_values"], expected, rtol=2e-6, atol=2e-7)


def test_item1_nce_gradient_inputs():
    grads = ref.nce_loss_and_gradients(**item1())
    expected = [[-0.7361048, 0.7859802], [0.2459587, 1.8549408]]
    np.testing.assert_allclose(grads["inputs_grad"], expected, rtol=2e-6, atol=2e-7)


def test_item1_float64_gives_the_same_values():
    args = item1(np.float64)
    logits, _ = ref.compute_sampled_logits(**args)
    assert logits.dtype == np.float64
    np.testing.assert_allclose(logits, ITEM1_LOGITS, rtol=1e-7)
    np.testing.assert_allclose(ref.nce_loss(**args), [3.5011971, 4.9853783], rtol=1e-6)
    np.testing.assert_allclose(ref.sampled_softmax_loss(**args), [1.6871431, 0.52148086], rtol=1e-6)


def test_item1_float64_mask_is_minus_flt_max_not_dbl_max():
    logits, _ = ref.compute_sampled_logits(**item1(np.float64), remove_accidental_hits=True)
    raw = 0.5 * 0 + -1 * 1 + -0.2  # x_0 . W[1] + b[1]
    assert logits[0, 1] == raw - ref.FLT_MAX - np.log(np.float64(np.float32(0.8)))


# ---------------------------------------------------------------------------------------
# §13 items 2 and 3: log-uniform and uniform samplers
# ---------------------------------------------------------------------------------------

TRUE_2 = np.array([[0, 3], [19, 7]], dtype=np.int64)


def test_item2_log_uniform_non_unique_sampled():
    sampled, _, _ = ref.log_uniform_candidate_sampler(TRUE_2, 2, 6, False, 20, seed=3)
    np.testing.assert_array_equal(sampled, [0, 10, 0, 6, 2, 9])
    assert sampled.dtype == np.int64


def test_item2_log_uniform_non_unique_sampled_expected_counts_bit_exact():
    sampled, _, sampled_count = ref.log_uniform_candidate_sampler(TRUE_2, 2, 6, False, 20, seed=3)
    assert_prints_as(
        sampled_count, [1.3660215, 0.17147788, 1.3660215, 0.2631573, 0.56695014, 0.18783277]
    )
    p = ref.LogUniformSampler(20).probability(sampled)
    np.testing.assert_array_equal(sampled_count, p * np.float32(6))


def test_item2_log_uniform_non_unique_true_expected_counts_bit_exact():
    _, true_count, _ = ref.log_uniform_candidate_sampler(TRUE_2, 2, 6, False, 20, seed=3)
    assert_prints_as(true_count, [[1.3660215, 0.43976068], [0.09615333, 0.2321212]])
    p = ref.LogUniformSampler(20).probability(TRUE_2)
    np.testing.assert_array_equal(true_count, p * np.float32(6))


def test_item2_log_uniform_unique_sampled():
    sampled, _, _ = ref.log_uniform_candidate_sampler(TRUE_2, 2, 6, True, 20, seed=3)
    np.testing.assert_array_equal(sampled, [0, 10, 6, 2, 9, 11])


def test_item2_log_uniform_unique_expected_counts_use_8_tries():
    sampled, true_count, sampled_count = ref.log_uniform_candidate_sampler(
        TRUE_2, 2, 6, True, 20, seed=3
    )
    sampler = ref.LogUniformSampler(20)
    for ids, counts in ((sampled, sampled_count), (TRUE_2.ravel(), true_count.ravel())):
        expected = [ref.expected_count(p, 6, 8) for p in sampler.probability(ids)]
        np.testing.assert_array_equal(counts, f32(expected))


def test_item2_uniform_non_unique_sampled():
    sampled, true_count, sampled_count = ref.uniform_candidate_sampler(
        TRUE_2, 2, 6, False, 20, seed=3
    )
    np.testing.assert_array_equal(sampled, [15, 0, 3, 8, 17, 14])
    np.testing.assert_array_equal(sampled_count, np.full(6, np.float32(0.05) * np.float32(6)))
    np.testing.assert_array_equal(true_count, np.full((2, 2), np.float32(0.3)))


def test_item2_uniform_unique_without_rejection_is_same_with_p_times_s():
    sampled, true_count, sampled_count = ref.uniform_candidate_sampler(
        TRUE_2, 2, 6, True, 20, seed=3
    )
    np.testing.assert_array_equal(sampled, [15, 0, 3, 8, 17, 14])
    np.testing.assert_array_equal(sampled_count, np.full(6, np.float32(0.3)))
    np.testing.assert_array_equal(true_count, np.full((2, 2), np.float32(0.3)))


def test_item3_log_uniform_unique_seed5_sampled():
    sampled, _, _ = ref.log_uniform_candidate_sampler(TRUE_2, 2, 6, True, 20, seed=5)
    np.testing.assert_array_equal(sampled, [0, 4, 7, 6, 1, 15])


def test_item3_log_uniform_unique_seed5_true_expected_counts_bit_exact():
    _, true_count, _ = ref.log_uniform_candidate_sampler(TRUE_2, 2, 6, True, 20, seed=5)
    assert_prints_as(true_count, [[0.87340343, 0.45607644], [0.12123945, 0.27067852]])


def test_item3_expected_count_is_minus_expm1f_of_8_log1pf():
    p = ref.LogUniformSampler(20).probability(TRUE_2)
    counts = f32([ref.expected_count(v, 6, 8) for v in p.ravel()]).reshape(2, 2)
    assert_prints_as(counts, [[0.87340343, 0.45607644], [0.12123945, 0.27067852]])
    _, true_count, _ = ref.log_uniform_candidate_sampler(TRUE_2, 2, 6, True, 20, seed=5)
    np.testing.assert_array_equal(true_count, counts)


# ---------------------------------------------------------------------------------------
# §13 item 4: successive calls and seed pairs
# ---------------------------------------------------------------------------------------


def test_item4_successive_calls_continue_the_stream():
    labels = np.array([[0]], dtype=np.int64)
    calls = [
        ref.log_uniform_candidate_sampler(labels, 1, 6, False, 1000, seed=7)[0] for _ in range(3)
    ]
    np.testing.assert_array_equal(calls[0], [411, 0, 23, 316, 1, 28])
    np.testing.assert_array_equal(calls[1], [7, 465, 287, 0, 8, 0])
    np.testing.assert_array_equal(calls[2], [1, 5, 598, 0, 22, 709])


def test_item4_sampler_object_continues_the_stream():
    sampler = ref.LogUniformSampler(1000, seed=7)
    labels = np.array([[0]], dtype=np.int64)
    first = sampler.sample(labels, 1, 6, False)[0]
    second = sampler.sample(labels, 1, 6, False)[0]
    np.testing.assert_array_equal(first, [411, 0, 23, 316, 1, 28])
    np.testing.assert_array_equal(second, [7, 465, 287, 0, 8, 0])


def test_item4_reset_sampler_cache_restarts_the_stream():
    labels = np.array([[0]], dtype=np.int64)
    ref.log_uniform_candidate_sampler(labels, 1, 6, False, 1000, seed=7)
    ref.reset_sampler_cache()
    again = ref.log_uniform_candidate_sampler(labels, 1, 6, False, 1000, seed=7)[0]
    np.testing.assert_array_equal(again, [411, 0, 23, 316, 1, 28])


def test_item4_int_seed_equals_its_attribute_pair():
    labels = np.array([[0]], dtype=np.int64)
    by_pair = ref.log_uniform_candidate_sampler(labels, 1, 6, False, 1000, seed=(87654321, 7))
    np.testing.assert_array_equal(by_pair[0], [411, 0, 23, 316, 1, 28])


def test_item4_global_and_op_seed_pair():
    labels = np.array([[0]], dtype=np.int64)
    sampled = ref.log_uniform_candidate_sampler(labels, 1, 6, False, 1000, seed=(11, 5))[0]
    np.testing.assert_array_equal(sampled, [0, 180, 117, 32, 44, 7])


# ---------------------------------------------------------------------------------------
# §13 item 5: fixed unigram
# ---------------------------------------------------------------------------------------

UNIGRAMS_5 = [5, 1, 3, 0, 8, 2, 4, 1]


def fixed_table_size(num_unigrams, num_reserved_ids, num_shards, shard):
    kept_reserved = sum(1 for r in range(num_reserved_ids) if r % num_shards == shard)
    word_ids = range(kept_reserved, kept_reserved + num_unigrams)  # the counter quirk
    return kept_reserved + sum(1 for w in word_ids if w % num_shards == shard)


@pytest.mark.parametrize(
    "distortion, num_reserved_ids, num_shards, shard, expected",
    [
        (1.0, 0, 1, 0, [0, 2, 2, 4, 4]),
        (0.75, 0, 1, 0, [1, 2, 2, 4, 4]),
        (0.5, 2, 1, 0, [8, 8, 8, 8, 2]),
        (1.0, 0, 2, 0, [1, 2, 2, 3, 0]),
        (1.0, 0, 2, 1, [3, 2, 2, 2, 0]),
        (1.0, 3, 2, 1, [3, 3, 3, 3, 2]),
        (0.0, 0, 1, 0, [1, 2, 2, 3, 4]),
    ],
)
def test_item5_fixed_unigram_sampled(distortion, num_reserved_ids, num_shards, shard, expected):
    range_max = fixed_table_size(len(UNIGRAMS_5), num_reserved_ids, num_shards, shard)
    sampled, _, _ = ref.fixed_unigram_candidate_sampler(
        np.array([[range_max - 1]], dtype=np.int64),
        1,
        5,
        False,
        range_max,
        distortion=distortion,
        num_reserved_ids=num_reserved_ids,
        num_shards=num_shards,
        shard=shard,
        unigrams=UNIGRAMS_5,
        seed=9,
    )
    np.testing.assert_array_equal(sampled, expected)


# ---------------------------------------------------------------------------------------
# §13 item 6: learned unigram
# ---------------------------------------------------------------------------------------


def test_item6_learned_unigram_three_calls():
    labels = np.array([[2], [2], [4]], dtype=np.int64)
    expected = [
        ([2, 4, 3, 2], [0.8, 0.8, 0.8, 0.8]),
        ([2, 0, 1, 4], [1.5, 0.5, 0.5, 1.0]),
        ([2, 2, 4, 2], [1.818182, 1.818182, 1.090909, 1.818182]),
    ]
    for want_sampled, want_counts in expected:
        sampled, _, sampled_count = ref.learned_unigram_candidate_sampler(
            labels, 1, 4, False, 5, seed=1
        )
        np.testing.assert_array_equal(sampled, want_sampled)
        np.testing.assert_allclose(sampled_count, want_counts, rtol=1e-6)


def test_item6_learned_unigram_true_class_count_goes_08_15_1818():
    labels = np.array([[2], [2], [4]], dtype=np.int64)
    counts = [
        ref.learned_unigram_candidate_sampler(labels, 1, 4, False, 5, seed=1)[1][0, 0]
        for _ in range(3)
    ]
    np.testing.assert_allclose(counts, [0.8, 1.5, 1.818182], rtol=1e-6)


# ---------------------------------------------------------------------------------------
# §13 item 7 and §14: compute_accidental_hits
# ---------------------------------------------------------------------------------------


def test_item7_compute_accidental_hits():
    indices, ids, weights = ref.compute_accidental_hits(
        np.array([[5, 1], [1, 1], [7, 9], [2, 5]], dtype=np.int64),
        np.array([1, 5, 3, 1, 2], dtype=np.int64),
        2,
    )
    np.testing.assert_array_equal(indices, [0, 0, 1, 1, 3, 3])
    np.testing.assert_array_equal(ids, [1, 3, 3, 3, 4, 1])
    np.testing.assert_array_equal(weights, np.full(6, -F32_MAX))


def test_accidental_hits_output_dtypes():
    indices, ids, weights = ref.compute_accidental_hits(
        np.array([[1]], dtype=np.int64), np.array([1], dtype=np.int64), 1
    )
    assert (indices.dtype, ids.dtype, weights.dtype) == (np.int32, np.int64, np.float32)


def test_accidental_hits_duplicate_sampled_reports_last_position():
    _, ids, _ = ref.compute_accidental_hits(
        np.array([[4]], dtype=np.int64), np.array([4, 0, 4, 2], dtype=np.int64), 1
    )
    np.testing.assert_array_equal(ids, [2])


def test_accidental_hits_duplicate_true_label_keeps_mask_at_minus_flt_max():
    labels = np.array([[1, 1]], dtype=np.int64)
    indices, ids, _ = ref.compute_accidental_hits(labels, np.array([0, 1], dtype=np.int64), 2)
    np.testing.assert_array_equal(indices, [0, 0])
    np.testing.assert_array_equal(ids, [1, 1])
    logits, _ = ref.compute_sampled_logits(
        np.zeros((3, 2), np.float32),
        np.zeros(3, np.float32),
        labels,
        np.ones((1, 2), np.float32),
        2,
        3,
        num_true=2,
        sampled_values=(np.array([0, 1]), np.ones((1, 2), np.float32), np.ones(2, np.float32)),
        remove_accidental_hits=True,
    )
    assert logits[0, 3] == -F32_MAX
    assert np.isfinite(logits).all()


def test_accidental_hits_none_gives_empty_outputs():
    indices, ids, weights = ref.compute_accidental_hits(
        np.array([[1, 2]], dtype=np.int64), np.array([3, 4], dtype=np.int64), 2
    )
    assert indices.shape == ids.shape == weights.shape == (0,)
    assert (indices.dtype, ids.dtype, weights.dtype) == (np.int32, np.int64, np.float32)


# ---------------------------------------------------------------------------------------
# §14 and §7: sampler facts
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("range_max", [1, 2, 20, 1000, 100000])
def test_log_uniform_probabilities_sum_to_one(range_max):
    p = ref.LogUniformSampler(range_max).probability(np.arange(range_max))
    assert abs(p.astype(np.float64).sum() - 1.0) < 1e-6


def test_log_uniform_probability_is_double_formula_cast_to_float32():
    p = ref.LogUniformSampler(20).probability(np.array([0, 19]))
    expected = [
        np.float32(np.log(2.0) / np.log1p(20.0)),
        np.float32(np.log(21 / 20) / np.log1p(20)),
    ]
    np.testing.assert_allclose(p, expected, rtol=1e-7)


def test_uniform_probability_is_float32_of_one_over_range():
    p = ref.UniformSampler(20).probability(np.array([0, 7, 19]))
    np.testing.assert_array_equal(p, np.full(3, np.float32(1.0 / 20)))


def test_uniform_unique_s_equals_r_gives_permutation_with_count_0934():
    sampled, _, sampled_count = ref.uniform_candidate_sampler(
        np.array([[0]], dtype=np.int64), 1, 20, True, 20, seed=1
    )
    assert sorted(sampled.tolist()) == list(range(20))
    assert np.all(sampled_count == sampled_count[0])
    assert sampled_count[0] < 1
    assert round(float(sampled_count[0]), 3) == 0.934


def test_unique_output_is_non_unique_stream_without_duplicates():
    labels = np.array([[0]], dtype=np.int64)
    stream = ref.LogUniformSampler(20, seed=3).sample(labels, 1, 40, False)[0]
    unique = ref.LogUniformSampler(20, seed=3).sample(labels, 1, 6, True)[0]
    first_acceptance = list(dict.fromkeys(stream.tolist()))[:6]
    assert unique.tolist() == first_acceptance


def test_unique_output_has_no_duplicates():
    sampler = ref.LogUniformSampler(50, seed=11)
    for _ in range(5):
        sampled = sampler.sample(np.array([[0]], dtype=np.int64), 1, 30, True)[0]
        assert len(set(sampled.tolist())) == 30


def test_expected_count_branch_is_chosen_by_num_tries():
    p = np.float32(0.4)
    assert ref.expected_count(p, 6, 6) == p * np.float32(6)  # > 1 is possible
    assert ref.expected_count(p, 6, 6) > 1
    assert ref.expected_count(p, 6, 7) < 1  # one rejection: an inclusion probability
    np.testing.assert_allclose(ref.expected_count(p, 6, 7), 1 - (1 - 0.4) ** 7, rtol=1e-6)


def test_all_candidate_sampler_returns_range_with_unit_counts():
    for unique in (False, True):
        sampled, true_count, sampled_count = ref.all_candidate_sampler(
            np.array([[1, 4], [0, 0]], dtype=np.int64), 2, 5, unique
        )
        np.testing.assert_array_equal(sampled, [0, 1, 2, 3, 4])
        np.testing.assert_array_equal(sampled_count, np.ones(5, np.float32))
        np.testing.assert_array_equal(true_count, np.ones((2, 2), np.float32))


def test_all_candidate_sampler_true_class_must_be_below_num_sampled():
    with pytest.raises(IndexError, match="true_classes"):
        ref.all_candidate_sampler(np.array([[5]], dtype=np.int64), 1, 5, False)


def test_learned_unigram_first_call_is_uniform():
    sampler = ref.LearnedUnigramSampler(5, seed=1)
    np.testing.assert_array_equal(sampler.probability(np.arange(5)), np.full(5, np.float32(0.2)))


def test_learned_unigram_update_is_capped_at_int32_max():
    sampler = ref.LearnedUnigramSampler(5, seed=1)
    sampler.weights[0] += 2**31 - 1 - 5 - 2  # two increments of room left
    sampler.total_weight = int(sampler.weights.sum())
    sampler.sample(np.array([[1], [2], [3]], dtype=np.int64), 1, 1, False)
    assert sampler.total_weight == 2**31 - 1
    np.testing.assert_array_equal(sampler.weights[1:], [2, 2, 1, 1])


def test_unique_num_sampled_above_range_raises():
    with pytest.raises(ValueError, match="range"):
        ref.log_uniform_candidate_sampler(np.array([[0]], dtype=np.int64), 1, 21, True, 20)


def test_unique_num_sampled_equal_to_range_is_allowed():
    sampled, _, _ = ref.log_uniform_candidate_sampler(
        np.array([[0]], dtype=np.int64), 1, 20, True, 20, seed=2
    )
    assert sorted(sampled.tolist()) == list(range(20))


def test_non_unique_num_sampled_above_range_is_allowed():
    sampled, _, _ = ref.uniform_candidate_sampler(
        np.array([[0]], dtype=np.int64), 1, 30, False, 3, seed=2
    )
    assert sampled.shape == (30,) and set(sampled.tolist()) <= {0, 1, 2}


@pytest.mark.parametrize(
    "true_classes, num_true, num_sampled, range_max, error, name",
    [
        (np.array([0, 1]), 1, 2, 5, ValueError, "true_classes"),
        (np.array([[0, 1]]), 1, 2, 5, ValueError, "num_true"),
        (np.array([[5]]), 1, 2, 5, IndexError, "true_classes"),
        (np.array([[-1]]), 1, 2, 5, IndexError, "true_classes"),
        (np.array([[0]]), 1, 0, 5, ValueError, "num_sampled"),
        (np.array([[0]]), 0, 1, 5, ValueError, "num_true"),
        (np.array([[0]]), 1, 1, 0, ValueError, "range_max"),
        (np.array([[0.0]]), 1, 1, 5, TypeError, "true_classes"),
    ],
)
def test_sampler_errors_name_the_argument(
    true_classes, num_true, num_sampled, range_max, error, name
):
    with pytest.raises(error, match=name):
        ref.uniform_candidate_sampler(true_classes, num_true, num_sampled, False, range_max)


def test_sampler_accepts_int32_true_classes():
    a = ref.uniform_candidate_sampler(np.array([[1]], np.int32), 1, 3, False, 10, seed=4)
    ref.reset_sampler_cache()
    b = ref.uniform_candidate_sampler(np.array([[1]], np.int64), 1, 3, False, 10, seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_learned_unigram_range_max_must_be_below_int32_max():
    with pytest.raises(ValueError, match="range_max"):
        ref.LearnedUnigramSampler(2**31 - 1)


# ---------------------------------------------------------------------------------------
# §14: fixed-unigram details
# ---------------------------------------------------------------------------------------


def test_fixed_unigram_shard_reserved_counter_quirk_table():
    sampler = ref.FixedUnigramSampler(
        4, num_reserved_ids=2, num_shards=2, shard=1, unigrams=[1, 7, 2, 3, 5, 11]
    )
    np.testing.assert_array_equal(sampler.weights, f32([0, 1, 2, 5]))
    np.testing.assert_array_equal(
        sampler.probability(np.arange(4)) * sampler.total_weight, f32([0, 1, 2, 5])
    )


def test_fixed_unigram_distortion_zero_gives_zero_counts_weight_one_reserved_zero():
    sampler = ref.FixedUnigramSampler(5, distortion=0.0, num_reserved_ids=2, unigrams=[0, 3, 0])
    np.testing.assert_array_equal(sampler.weights, f32([0, 0, 1, 1, 1]))


def test_fixed_unigram_weights_are_float32_pow():
    sampler = ref.FixedUnigramSampler(3, distortion=0.75, unigrams=[5, 1, 3])
    expected = np.power(f32([5, 1, 3]), np.float32(0.75))
    np.testing.assert_allclose(sampler.weights, expected, rtol=2e-7)
    assert sampler.total_weight == np.float32(
        np.float32(sampler.weights[0] + sampler.weights[1]) + sampler.weights[2]
    )


def test_fixed_unigram_range_max_must_equal_table_size():
    with pytest.raises(ValueError, match="range_max"):
        ref.FixedUnigramSampler(7, unigrams=UNIGRAMS_5)


def test_fixed_unigram_needs_exactly_one_source(tmp_path):
    with pytest.raises(ValueError, match="Must provide either"):
        ref.FixedUnigramSampler(3)
    path = tmp_path / "vocab.txt"
    path.write_text("1\n2\n3\n")
    with pytest.raises(ValueError, match="Must only provide one"):
        ref.FixedUnigramSampler(3, vocab_file=str(path), unigrams=[1, 2, 3])


def test_fixed_unigram_vocab_file_skips_empty_lines_and_uses_last_field(tmp_path):
    path = tmp_path / "vocab.csv"
    lines = ["the,5", "", "of,x,1", "and,3", "", "", "to,0", "a,8", "in,2", "is,4\r", "it,1"]
    path.write_text("\n".join(lines) + "\n")
    from_file = ref.fixed_unigram_candidate_sampler(
        np.array([[0]], dtype=np.int64), 1, 5, False, 8, vocab_file=str(path), seed=9
    )
    np.testing.assert_array_equal(from_file[0], [0, 2, 2, 4, 4])  # as §13 item 5, row 1
    sampler = ref.FixedUnigramSampler(8, vocab_file=str(path))
    np.testing.assert_array_equal(sampler.weights, f32(UNIGRAMS_5))


def test_fixed_unigram_vocab_file_bad_line_raises(tmp_path):
    path = tmp_path / "vocab.csv"
    path.write_text("a,1\nb,two\n")
    with pytest.raises(ValueError, match="Wrong vocabulary format"):
        ref.FixedUnigramSampler(2, vocab_file=str(path))


def test_fixed_unigram_missing_vocab_file_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        ref.FixedUnigramSampler(2, vocab_file=str(tmp_path / "missing.txt"))


def test_fixed_unigram_probability_out_of_range_is_zero():
    sampler = ref.FixedUnigramSampler(8, unigrams=UNIGRAMS_5)
    np.testing.assert_array_equal(sampler.probability(np.array([-1, 8, 100])), f32([0, 0, 0]))


def test_fixed_unigram_unique_with_too_few_nonzero_ids_raises():
    with pytest.raises(ValueError, match="nonzero"):
        ref.fixed_unigram_candidate_sampler(
            np.array([[1]], dtype=np.int64),
            1,
            4,
            True,
            5,
            num_reserved_ids=2,
            unigrams=[1, 0, 2],
        )


@pytest.mark.parametrize("loss", [ref.nce_loss, ref.sampled_softmax_loss])
def test_fixed_unigram_zero_probability_true_class_gives_nan_loss(loss):
    sampled_values = ref.fixed_unigram_candidate_sampler(
        np.array([[0], [2]], dtype=np.int64),
        1,
        3,
        False,
        4,
        num_reserved_ids=1,
        unigrams=[1, 2, 3],
        seed=1,
    )
    rng = np.random.default_rng(0)
    values = loss(
        rng.normal(size=(4, 3)).astype(np.float32),
        np.zeros(4, np.float32),
        np.array([[0], [2]], dtype=np.int64),
        rng.normal(size=(2, 3)).astype(np.float32),
        3,
        4,
        sampled_values=sampled_values,
    )
    assert np.isnan(values[0]) and np.isfinite(values[1])


# ---------------------------------------------------------------------------------------
# §14 and §9: partitioning
# ---------------------------------------------------------------------------------------


def contiguous_layout(num_rows, num_shards):
    q, extras = divmod(num_rows, num_shards)
    sizes = [q + 1] * extras + [q] * (num_shards - extras)
    shard, row = [], []
    for p, size in enumerate(sizes):
        shard += [p] * size
        row += list(range(size))
    return sizes, np.array(shard), np.array(row)


def test_div_formula_equals_contiguous_layout():
    for num_rows, num_shards in itertools.product(range(1, 40), range(1, 10)):
        if num_rows < num_shards:
            continue
        sizes, want_shard, want_row = contiguous_layout(num_rows, num_shards)
        shard, row = ref.partition_ids(np.arange(num_rows), sizes, "div")
        np.testing.assert_array_equal(shard, want_shard)
        np.testing.assert_array_equal(row, want_row)


def test_div_13_ids_over_5_shards():
    sizes, _, _ = contiguous_layout(13, 5)
    shard, _ = ref.partition_ids(np.arange(13), sizes, "div")
    groups = [np.arange(13)[shard == p].tolist() for p in range(5)]
    assert groups == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10], [11, 12]]


@pytest.mark.parametrize("strategy", ["div", "mod"])
def test_embedding_lookup_shards_reconstruct_full_matrix(strategy):
    full = np.arange(13 * 3, dtype=np.float32).reshape(13, 3)
    if strategy == "div":
        sizes, _, _ = contiguous_layout(13, 5)
        shards = np.split(full, np.cumsum(sizes)[:-1])
    else:
        shards = [full[p::5] for p in range(5)]
    ids = np.array([[12, 0, 5], [7, 7, 3]])
    np.testing.assert_array_equal(ref.embedding_lookup(shards, ids, strategy), full[ids])
    np.testing.assert_array_equal(ref.embedding_lookup(full, ids, strategy), full[ids])


def test_div_non_conforming_shard_sizes_raise():
    shards = [np.zeros((2, 1), np.float32), np.zeros((4, 1), np.float32)]
    with pytest.raises(ValueError):
        ref.embedding_lookup(shards, np.array([0, 5]), "div")


def test_div_fewer_rows_than_shards_raises():
    shards = [np.zeros((1, 1), np.float32), np.zeros((0, 1), np.float32)] * 2
    with pytest.raises(ValueError):
        ref.embedding_lookup(shards, np.array([0]), "div")


def test_embedding_lookup_out_of_range_id_raises_index_error():
    with pytest.raises(IndexError, match="ids"):
        ref.embedding_lookup(np.zeros((4, 2), np.float32), np.array([4]))
    with pytest.raises(IndexError, match="ids"):
        ref.embedding_lookup([np.zeros((2, 2), np.float32)] * 2, np.array([-1]), "mod")


def random_problem(seed, batch=5, num_true=1, dim=3, num_classes=13, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return dict(
        weights=rng.normal(size=(num_classes, dim)).astype(dtype),
        biases=rng.normal(size=num_classes).astype(dtype),
        labels=rng.integers(0, num_classes, size=(batch, num_true)),
        inputs=rng.normal(size=(batch, dim)).astype(dtype),
        num_classes=num_classes,
        num_true=num_true,
    )


def div_shards(array, num_shards):
    sizes, _, _ = contiguous_layout(array.shape[0], num_shards)
    return np.split(array, np.cumsum(sizes)[:-1])


@pytest.mark.parametrize("loss", [ref.nce_loss, ref.sampled_softmax_loss])
def test_div_sharded_loss_equals_unsharded_loss(loss):
    problem = random_problem(1, num_true=2)
    unsharded = loss(num_sampled=4, seed=3, **problem)
    ref.reset_sampler_cache()
    problem["weights"] = div_shards(problem["weights"], 5)
    problem["biases"] = div_shards(problem["biases"], 5)
    sharded = loss(num_sampled=4, seed=3, partition_strategy="div", **problem)
    np.testing.assert_allclose(sharded, unsharded, rtol=1e-6)


def test_mod_on_contiguous_shards_reads_wrong_rows():
    # 15 rows in 5 equal shards follow both layouts, so "mod" accepts them.
    problem = random_problem(2, num_classes=15)
    unsharded = ref.nce_loss(num_sampled=4, seed=3, **problem)
    ref.reset_sampler_cache()
    problem["weights"] = div_shards(problem["weights"], 5)
    problem["biases"] = div_shards(problem["biases"], 5)
    wrong = ref.nce_loss(num_sampled=4, seed=3, partition_strategy="mod", **problem)
    assert not np.allclose(wrong, unsharded)


# ---------------------------------------------------------------------------------------
# §2-§4 and §14: loss facts
# ---------------------------------------------------------------------------------------


def test_targets_are_one_over_num_true():
    _, targets = ref.compute_sampled_logits(num_sampled=4, seed=1, **random_problem(3, num_true=3))
    np.testing.assert_array_equal(targets[:, :3], np.full((5, 3), np.float32(1) / np.float32(3)))
    np.testing.assert_array_equal(targets[:, 3:], np.zeros((5, 4), np.float32))


def test_masked_cell_contributes_zero_to_nce_loss():
    args = item1()
    masked = ref.nce_loss(**args, remove_accidental_hits=True)
    logits, targets = ref.compute_sampled_logits(**args, remove_accidental_hits=False)
    unmasked_terms = ref._sigmoid_cross_entropy(logits, targets)
    np.testing.assert_allclose(masked[0], unmasked_terms[0].sum() - unmasked_terms[0, 1], rtol=1e-6)


def test_non_unique_hit_removal_masks_only_last_duplicate():
    labels = np.array([[1]], dtype=np.int64)
    sampled_values = (np.array([1, 0, 1]), np.ones((1, 1), np.float32), np.ones(3, np.float32))
    logits, _ = ref.compute_sampled_logits(
        np.ones((3, 2), np.float32),
        np.zeros(3, np.float32),
        labels,
        np.ones((1, 2), np.float32),
        3,
        3,
        sampled_values=sampled_values,
        remove_accidental_hits=True,
    )
    np.testing.assert_array_equal(logits[0, 1:3], [2, 2])
    assert logits[0, 3] == -F32_MAX


def test_unit_expected_counts_give_raw_logits():
    problem = random_problem(4)
    labels = problem["labels"]
    sampled = np.array([3, 7, 1])
    logits, _ = ref.compute_sampled_logits(
        num_sampled=3,
        sampled_values=(sampled, np.ones(labels.shape, np.float32), np.ones(3, np.float32)),
        **problem,
    )
    w, b, x = problem["weights"], problem["biases"], problem["inputs"]
    raw = np.concatenate([(x * w[labels[:, 0]]).sum(1, keepdims=True), x @ w[sampled].T], 1)
    raw += np.concatenate([b[labels], np.broadcast_to(b[sampled], (5, 3))], 1)
    np.testing.assert_allclose(logits, raw, rtol=1e-6)


def test_default_sampler_is_log_uniform_unique_with_num_classes_range():
    problem = random_problem(5)
    logits, _ = ref.compute_sampled_logits(num_sampled=6, seed=8, **problem)
    ref.reset_sampler_cache()
    sampled, true_count, sampled_count = ref.log_uniform_candidate_sampler(
        problem["labels"], 1, 6, True, problem["num_classes"], seed=8
    )
    ref.reset_sampler_cache()
    explicit, _ = ref.compute_sampled_logits(
        num_sampled=6, sampled_values=(sampled, true_count, sampled_count), **problem
    )
    np.testing.assert_array_equal(logits, explicit)


def test_sampled_softmax_seed_is_reproducible():
    problem = random_problem(6)
    first = ref.sampled_softmax_loss(num_sampled=4, seed=42, **problem)
    ref.reset_sampler_cache()
    second = ref.sampled_softmax_loss(num_sampled=4, seed=42, **problem)
    np.testing.assert_array_equal(first, second)


def test_label_at_or_above_num_classes_raises():
    problem = random_problem(7)
    problem["labels"][0, 0] = problem["num_classes"]
    with pytest.raises(IndexError, match="true_classes"):
        ref.nce_loss(num_sampled=3, **problem)


def test_rank1_labels_are_rejected():
    problem = random_problem(8)
    problem["labels"] = problem["labels"][:, 0]
    with pytest.raises(ValueError, match="labels"):
        ref.nce_loss(num_sampled=3, **problem)


def test_int32_labels_are_accepted():
    problem = random_problem(9)
    as_int64 = ref.nce_loss(num_sampled=3, seed=1, **problem)
    ref.reset_sampler_cache()
    problem["labels"] = problem["labels"].astype(np.int32)
    np.testing.assert_array_equal(ref.nce_loss(num_sampled=3, seed=1, **problem), as_int64)


def test_batch_of_zero_gives_empty_loss():
    problem = random_problem(10, batch=0)
    for loss in (ref.nce_loss, ref.sampled_softmax_loss):
        assert loss(num_sampled=3, seed=1, **problem).shape == (0,)


def test_float64_works_with_float64_sampled_values():
    problem = random_problem(11, dtype=np.float64)
    sampled_values = (np.array([1, 2, 3]), np.full((5, 1), 0.5), np.full(3, 0.25))
    loss = ref.nce_loss(num_sampled=3, sampled_values=sampled_values, **problem)
    assert loss.dtype == np.float64 and np.isfinite(loss).all()


def test_weights_may_have_more_rows_than_num_classes():
    problem = random_problem(12, num_classes=13)
    problem["num_classes"] = 10
    problem["labels"] %= 10
    assert np.isfinite(ref.nce_loss(num_sampled=3, seed=2, **problem)).all()


def test_full_softmax_loss_matches_dense_formula():
    problem = random_problem(13, num_true=2)
    w, b, x, labels = problem["weights"], problem["biases"], problem["inputs"], problem["labels"]
    logits = x.astype(np.float64) @ w.T + b
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -(log_softmax[np.arange(5)[:, None], labels]).sum(1) / 2
    np.testing.assert_allclose(ref.full_softmax_loss(**problem), expected, rtol=1e-5)


def test_full_sigmoid_loss_matches_dense_formula():
    problem = random_problem(14, num_true=2)
    w, b, x, labels = problem["weights"], problem["biases"], problem["inputs"], problem["labels"]
    logits = x.astype(np.float64) @ w.T + b
    y = np.zeros_like(logits)
    for i in range(5):
        for label in labels[i]:
            y[i, label] += 0.5
    expected = (
        -y * np.log(1 / (1 + np.exp(-logits))) - (1 - y) * np.log(1 - 1 / (1 + np.exp(-logits)))
    ).sum(1)
    np.testing.assert_allclose(ref.full_sigmoid_loss(**problem), expected, rtol=1e-5)


def test_philox_known_answer_vectors():
    assert ref.philox4x32_10([0, 0, 0, 0], [0, 0]) == (
        0x6627E8D5,
        0xE169C58D,
        0xBC57AC4C,
        0x9B00DBD8,
    )
    m = 0xFFFFFFFF
    assert ref.philox4x32_10([m] * 4, [m, m]) == (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)
    assert ref.philox4x32_10(
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0]
    ) == (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)


# ---------------------------------------------------------------------------------------
# §6: gradients
# ---------------------------------------------------------------------------------------


def test_sharded_gradient_indices_are_shard_local_in_occurrence_order():
    weights = np.arange(14, dtype=np.float64).reshape(7, 2)
    shards = [weights[:3], weights[3:5], weights[5:]]
    grads = ref.nce_loss_and_gradients(
        shards,
        np.zeros(7),
        np.array([[4, 0], [6, 1]]),
        np.ones((2, 2)),
        1,
        7,
        num_true=2,
        sampled_values=(np.array([4]), np.ones((2, 2)), np.ones(1)),
    )
    np.testing.assert_array_equal(grads["weight_indices"], [4, 0, 6, 1, 4])
    local = [indices.tolist() for indices, _ in grads["shard_weight_gradients"]]
    assert local == [[0, 1], [1, 1], [1]]
    values = [v for _, v in grads["shard_weight_gradients"]]
    np.testing.assert_array_equal(values[1], grads["weight_values"][[0, 4]])


@pytest.mark.parametrize(
    "function", [ref.nce_loss_and_gradients, ref.sampled_softmax_loss_and_gradients]
)
def test_gradient_upstream_none_means_ones(function):
    args = item1(np.float64)
    a = function(**args)
    b = function(**args, upstream=np.ones(2))
    for key in ("loss", "weight_values", "bias_values", "inputs_grad"):
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize(
    "function", [ref.nce_loss_and_gradients, ref.sampled_softmax_loss_and_gradients]
)
def test_gradient_loss_equals_the_loss_function(function):
    loss = ref.nce_loss if function is ref.nce_loss_and_gradients else ref.sampled_softmax_loss
    args = item1()
    np.testing.assert_array_equal(function(**args)["loss"], loss(**args))


def dense(indices, values, shape):
    out = np.zeros(shape)
    np.add.at(out, indices, values)
    return out


FD_CASES = list(itertools.product(["nce", "softmax"], [False, True], [1, 2], [1, 3]))


@pytest.mark.parametrize("kind, remove_hits, num_true, num_shards", FD_CASES)
def test_gradients_match_central_finite_differences(kind, remove_hits, num_true, num_shards):
    rng = np.random.default_rng(100 + num_true * 10 + num_shards)
    batch, dim, num_classes = 4, 3, 7
    weights = rng.normal(size=(num_classes, dim))
    biases = rng.normal(size=num_classes)
    inputs = rng.normal(size=(batch, dim))
    labels = rng.integers(0, num_classes, size=(batch, num_true))
    labels[0, 0] = 2  # an accidental hit with the sampled id 2
    sampled = np.array([2, 5, 0, 6])
    sampled_values = (
        sampled,
        rng.uniform(0.2, 1.5, size=(batch, num_true)),
        rng.uniform(0.2, 1.5, size=4),
    )
    upstream = rng.uniform(0.5, 2.0, size=batch)
    function, loss_function = {
        "nce": (ref.nce_loss_and_gradients, ref.nce_loss),
        "softmax": (ref.sampled_softmax_loss_and_gradients, ref.sampled_softmax_loss),
    }[kind]

    def total(w, b, x):
        w_arg = div_shards(w, num_shards) if num_shards > 1 else w
        b_arg = div_shards(b, num_shards) if num_shards > 1 else b
        loss = loss_function(
            w_arg,
            b_arg,
            labels,
            x,
            4,
            num_classes,
            num_true=num_true,
            sampled_values=sampled_values,
            remove_accidental_hits=remove_hits,
        )
        return float(upstream @ loss)

    w_arg = div_shards(weights, num_shards) if num_shards > 1 else weights
    b_arg = div_shards(biases, num_shards) if num_shards > 1 else biases
    grads = function(
        w_arg,
        b_arg,
        labels,
        inputs,
        4,
        num_classes,
        num_true=num_true,
        sampled_values=sampled_values,
        remove_accidental_hits=remove_hits,
        upstream=upstream,
    )
    analytic_w = dense(grads["weight_indices"], grads["weight_values"], weights.shape)
    analytic_b = dense(grads["weight_indices"], grads["bias_values"], biases.shape)
    if num_shards > 1:
        per_shard = [
            dense(indices, values, shard.shape)
            for (indices, values), shard in zip(grads["shard_weight_gradients"], w_arg)
        ]
        np.testing.assert_allclose(np.concatenate(per_shard), analytic_w, atol=1e-12)

    eps = 1e-6

    def numeric(array, rebuild):
        out = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            plus, minus = array.copy(), array.copy()
            plus[index] += eps
            minus[index] -= eps
            out[index] = (total(*rebuild(plus)) - total(*rebuild(minus))) / (2 * eps)
        return out

    np.testing.assert_allclose(
        analytic_w, numeric(weights, lambda w: (w, biases, inputs)), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        analytic_b, numeric(biases, lambda b: (weights, b, inputs)), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        grads["inputs_grad"],
        numeric(inputs, lambda x: (weights, biases, x)),
        rtol=1e-6,
        atol=1e-7,
    )


@pytest.mark.parametrize("kind", ["nce", "softmax"])
def test_masked_cells_get_zero_gradient(kind):
    function = {
        "nce": ref.nce_loss_and_gradients,
        "softmax": ref.sampled_softmax_loss_and_gradients,
    }[kind]
    grads = function(**item1(np.float64), remove_accidental_hits=True)
    # Row 0's label 2 is the sampled id at position 0 (column 1): its sampled-row gradient
    # comes from row 1 only.
    row1 = function(**item1(np.float64), remove_accidental_hits=True, upstream=np.array([0.0, 1.0]))
    np.testing.assert_allclose(grads["bias_values"][2], row1["bias_values"][2], rtol=1e-12)
