"""The reference values of docs/semantics.md §13 (recorded from TensorFlow 2.21), checked
against the ``rustnce`` package itself through its public API.

Item 1's gradients are not part of the rustnce API;
``test_numpy_reference_against_tensorflow_values.py`` checks them against ``rustnce.reference``.
docs/semantics.md prints float32 values rounded to 8 decimals; see ``assert_prints_as``.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np
import pytest

import rustnce

FLT_MAX = 3.4028234663852886e38
F32_MAX = np.float32(FLT_MAX)


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


def _libm():
    library = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for name in ("log1pf", "expm1f"):
        function = getattr(library, name)
        function.restype = ctypes.c_float
        function.argtypes = [ctypes.c_float]
    return library


LIBM = _libm()


def unique_expected_count(p, num_tries) -> np.float32:
    """docs/semantics.md §7.2 with rejections: ``-expm1f(num_tries * log1pf(-p))``, all in
    float32 with the C library's functions (as TensorFlow and Rust)."""
    product = np.float32(np.float32(num_tries) * np.float32(LIBM.log1pf(float(-np.float32(p)))))
    return np.float32(-np.float32(LIBM.expm1f(float(product))))


# ---------------------------------------------------------------------------------------
# §13 item 1: losses with fixed sampled_values
# ---------------------------------------------------------------------------------------


def item1(dtype=np.float32, label_dtype=np.int64):
    return dict(
        weights=np.array([[1, 0], [0, 1], [1, 1], [-1, 0.5]], dtype=dtype),
        biases=np.array([0.1, -0.2, 0.0, 0.3], dtype=dtype),
        labels=np.array([[2], [0]], dtype=label_dtype),
        inputs=np.array([[0.5, -1], [2, 0.25]], dtype=dtype),
        num_sampled=3,
        num_classes=4,
        sampled_values=(
            np.array([2, 1, 3], dtype=np.int64),
            f32([[0.5], [0.25]]),
            f32([0.5, 0.8, 0.1]),
        ),
    )


ITEM1_LOGITS = [
    [0.19314718, 0.19314718, -0.97685653, 1.60258508],
    [3.48629427, 2.94314718, 0.27314353, 0.72758508],
]
ITEM1_NCE = [3.5011971, 4.9853783]
ITEM1_NCE_HITS_REMOVED = [2.7068202, 4.9853783]
ITEM1_SOFTMAX = [1.8569258, 0.52148086]
ITEM1_SOFTMAX_HITS_REMOVED = [1.6871431, 0.52148086]


def test_item1_logits_without_hit_removal():
    logits, targets = rustnce.compute_sampled_logits(**item1(), remove_accidental_hits=False)
    assert logits.dtype == targets.dtype == np.float32
    np.testing.assert_allclose(logits, ITEM1_LOGITS, rtol=1e-6)
    np.testing.assert_array_equal(targets, [[1, 0, 0, 0], [1, 0, 0, 0]])


def test_item1_nce_loss_without_hit_removal():
    loss = rustnce.nce_loss(**item1(), remove_accidental_hits=False)
    assert loss.dtype == np.float32 and loss.shape == (2,)
    np.testing.assert_allclose(loss, ITEM1_NCE, rtol=1e-6)


def test_item1_nce_loss_default_keeps_accidental_hits():
    np.testing.assert_allclose(rustnce.nce_loss(**item1()), ITEM1_NCE, rtol=1e-6)


def test_item1_sampled_softmax_loss_without_hit_removal():
    loss = rustnce.sampled_softmax_loss(**item1(), remove_accidental_hits=False)
    assert loss.dtype == np.float32 and loss.shape == (2,)
    np.testing.assert_allclose(loss, ITEM1_SOFTMAX, rtol=1e-6)


def test_item1_hit_removal_sets_logit_to_minus_flt_max():
    logits, _ = rustnce.compute_sampled_logits(**item1(), remove_accidental_hits=True)
    assert logits[0, 1] == -F32_MAX
    expected = np.array(ITEM1_LOGITS, dtype=np.float32)
    expected[0, 1] = -F32_MAX
    np.testing.assert_allclose(logits, expected, rtol=1e-6)


def test_item1_nce_loss_with_hit_removal():
    loss = rustnce.nce_loss(**item1(), remove_accidental_hits=True)
    np.testing.assert_allclose(loss, ITEM1_NCE_HITS_REMOVED, rtol=1e-6)


def test_item1_sampled_softmax_loss_with_hit_removal():
    loss = rustnce.sampled_softmax_loss(**item1(), remove_accidental_hits=True)
    np.testing.assert_allclose(loss, ITEM1_SOFTMAX_HITS_REMOVED, rtol=1e-6)


def test_item1_sampled_softmax_loss_default_removes_accidental_hits():
    loss = rustnce.sampled_softmax_loss(**item1())
    np.testing.assert_allclose(loss, ITEM1_SOFTMAX_HITS_REMOVED, rtol=1e-6)


def test_item1_int32_labels_give_the_same_values():
    args = item1(label_dtype=np.int32)
    np.testing.assert_allclose(rustnce.nce_loss(**args), ITEM1_NCE, rtol=1e-6)
    np.testing.assert_allclose(
        rustnce.sampled_softmax_loss(**args), ITEM1_SOFTMAX_HITS_REMOVED, rtol=1e-6
    )


def test_item1_float64_gives_the_same_values():
    args = item1(np.float64)
    logits, _ = rustnce.compute_sampled_logits(**args)
    assert logits.dtype == np.float64
    np.testing.assert_allclose(logits, ITEM1_LOGITS, rtol=1e-7)
    np.testing.assert_allclose(rustnce.nce_loss(**args), ITEM1_NCE, rtol=1e-6)
    np.testing.assert_allclose(
        rustnce.sampled_softmax_loss(**args), ITEM1_SOFTMAX_HITS_REMOVED, rtol=1e-6
    )


def test_item1_float64_mask_is_minus_flt_max_not_dbl_max():
    logits, _ = rustnce.compute_sampled_logits(**item1(np.float64), remove_accidental_hits=True)
    raw = 0.5 * 0 + -1 * 1 + -0.2  # x_0 . W[1] + b[1]
    assert logits[0, 1] == raw - FLT_MAX - np.log(np.float64(np.float32(0.8)))


# ---------------------------------------------------------------------------------------
# §13 items 2 and 3: log-uniform and uniform samplers
# ---------------------------------------------------------------------------------------

TRUE_2 = np.array([[0, 3], [19, 7]], dtype=np.int64)


def test_item2_log_uniform_non_unique_sampled():
    sampled, _, _ = rustnce.log_uniform_candidate_sampler(TRUE_2, 2, 6, False, 20, seed=3)
    assert sampled.dtype == np.int64
    np.testing.assert_array_equal(sampled, [0, 10, 0, 6, 2, 9])


def test_item2_log_uniform_non_unique_sampled_expected_counts_bit_exact():
    sampled, _, sampled_count = rustnce.log_uniform_candidate_sampler(
        TRUE_2, 2, 6, False, 20, seed=3
    )
    assert_prints_as(
        sampled_count, [1.3660215, 0.17147788, 1.3660215, 0.2631573, 0.56695014, 0.18783277]
    )
    p = rustnce.LogUniformSampler(20).probability(sampled)
    np.testing.assert_array_equal(sampled_count, p * np.float32(6))


def test_item2_log_uniform_non_unique_true_expected_counts_bit_exact():
    _, true_count, _ = rustnce.log_uniform_candidate_sampler(TRUE_2, 2, 6, False, 20, seed=3)
    assert true_count.shape == (2, 2)
    assert_prints_as(true_count, [[1.3660215, 0.43976068], [0.09615333, 0.2321212]])
    p = rustnce.LogUniformSampler(20).probability(TRUE_2)
    np.testing.assert_array_equal(true_count, p * np.float32(6))


def test_item2_log_uniform_unique_sampled():
    sampled, _, _ = rustnce.log_uniform_candidate_sampler(TRUE_2, 2, 6, True, 20, seed=3)
    np.testing.assert_array_equal(sampled, [0, 10, 6, 2, 9, 11])


def test_item2_log_uniform_unique_expected_counts_use_8_tries():
    sampled, true_count, sampled_count = rustnce.log_uniform_candidate_sampler(
        TRUE_2, 2, 6, True, 20, seed=3
    )
    sampler = rustnce.LogUniformSampler(20)
    for ids, counts in ((sampled, sampled_count), (TRUE_2.ravel(), true_count.ravel())):
        expected = f32([unique_expected_count(p, 8) for p in sampler.probability(ids)])
        np.testing.assert_array_equal(counts, expected)


def test_item2_uniform_non_unique_sampled():
    sampled, true_count, sampled_count = rustnce.uniform_candidate_sampler(
        TRUE_2, 2, 6, False, 20, seed=3
    )
    np.testing.assert_array_equal(sampled, [15, 0, 3, 8, 17, 14])
    np.testing.assert_array_equal(sampled_count, np.full(6, np.float32(0.05) * np.float32(6)))
    np.testing.assert_array_equal(true_count, np.full((2, 2), np.float32(0.3)))


def test_item2_uniform_unique_without_rejection_is_the_same_with_p_times_s():
    sampled, true_count, sampled_count = rustnce.uniform_candidate_sampler(
        TRUE_2, 2, 6, True, 20, seed=3
    )
    np.testing.assert_array_equal(sampled, [15, 0, 3, 8, 17, 14])
    np.testing.assert_array_equal(sampled_count, np.full(6, np.float32(0.3)))
    np.testing.assert_array_equal(true_count, np.full((2, 2), np.float32(0.3)))


def test_item3_log_uniform_unique_seed5_sampled():
    sampled, _, _ = rustnce.log_uniform_candidate_sampler(TRUE_2, 2, 6, True, 20, seed=5)
    np.testing.assert_array_equal(sampled, [0, 4, 7, 6, 1, 15])


def test_item3_log_uniform_unique_seed5_true_expected_counts():
    _, true_count, _ = rustnce.log_uniform_candidate_sampler(TRUE_2, 2, 6, True, 20, seed=5)
    assert_prints_as(true_count, [[0.87340343, 0.45607644], [0.12123945, 0.27067852]])


def test_item3_expected_count_is_minus_expm1f_of_8_log1pf():
    _, true_count, sampled_count = rustnce.log_uniform_candidate_sampler(
        TRUE_2, 2, 6, True, 20, seed=5
    )
    sampler = rustnce.LogUniformSampler(20)
    expected_true = f32([unique_expected_count(p, 8) for p in sampler.probability(TRUE_2.ravel())])
    np.testing.assert_array_equal(true_count, expected_true.reshape(2, 2))
    sampled = np.array([0, 4, 7, 6, 1, 15])
    expected_sampled = f32([unique_expected_count(p, 8) for p in sampler.probability(sampled)])
    np.testing.assert_array_equal(sampled_count, expected_sampled)


# ---------------------------------------------------------------------------------------
# §13 item 4: successive calls and seed pairs
# ---------------------------------------------------------------------------------------

ITEM4_CALLS = [[411, 0, 23, 316, 1, 28], [7, 465, 287, 0, 8, 0], [1, 5, 598, 0, 22, 709]]
LABEL_0 = np.array([[0]], dtype=np.int64)


def test_item4_successive_function_calls_continue_the_stream():
    calls = [
        rustnce.log_uniform_candidate_sampler(LABEL_0, 1, 6, False, 1000, seed=7)[0]
        for _ in range(3)
    ]
    np.testing.assert_array_equal(calls, ITEM4_CALLS)


def test_item4_sampler_object_continues_the_stream():
    sampler = rustnce.LogUniformSampler(1000, seed=7)
    calls = [sampler.sample(LABEL_0, 1, 6, False)[0] for _ in range(3)]
    np.testing.assert_array_equal(calls, ITEM4_CALLS)


def test_item4_reset_sampler_cache_restarts_the_stream():
    rustnce.log_uniform_candidate_sampler(LABEL_0, 1, 6, False, 1000, seed=7)
    rustnce.reset_sampler_cache()
    again = rustnce.log_uniform_candidate_sampler(LABEL_0, 1, 6, False, 1000, seed=7)[0]
    np.testing.assert_array_equal(again, ITEM4_CALLS[0])


def test_item4_int_seed_equals_its_attribute_pair():
    sampled = rustnce.log_uniform_candidate_sampler(LABEL_0, 1, 6, False, 1000, seed=(87654321, 7))[
        0
    ]
    np.testing.assert_array_equal(sampled, ITEM4_CALLS[0])


def test_item4_global_and_op_seed_pair():
    sampled = rustnce.log_uniform_candidate_sampler(LABEL_0, 1, 6, False, 1000, seed=(11, 5))[0]
    np.testing.assert_array_equal(sampled, [0, 180, 117, 32, 44, 7])


# ---------------------------------------------------------------------------------------
# §13 item 5: fixed unigram
# ---------------------------------------------------------------------------------------

UNIGRAMS_5 = [5, 1, 3, 0, 8, 2, 4, 1]


def fixed_table_size(num_unigrams, num_reserved_ids, num_shards, shard):
    kept_reserved = sum(1 for r in range(num_reserved_ids) if r % num_shards == shard)
    word_ids = range(kept_reserved, kept_reserved + num_unigrams)  # the counter quirk
    return kept_reserved + sum(1 for w in word_ids if w % num_shards == shard)


ITEM5 = pytest.mark.parametrize(
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


@ITEM5
def test_item5_fixed_unigram_function_sampled(
    distortion, num_reserved_ids, num_shards, shard, expected
):
    range_max = fixed_table_size(len(UNIGRAMS_5), num_reserved_ids, num_shards, shard)
    sampled, _, _ = rustnce.fixed_unigram_candidate_sampler(
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


@ITEM5
def test_item5_fixed_unigram_object_sampled(
    distortion, num_reserved_ids, num_shards, shard, expected
):
    range_max = fixed_table_size(len(UNIGRAMS_5), num_reserved_ids, num_shards, shard)
    sampler = rustnce.FixedUnigramSampler(
        range_max,
        distortion=distortion,
        num_reserved_ids=num_reserved_ids,
        num_shards=num_shards,
        shard=shard,
        unigrams=UNIGRAMS_5,
        seed=9,
    )
    sampled, _, _ = sampler.sample(np.array([[0]], dtype=np.int64), 1, 5, False)
    np.testing.assert_array_equal(sampled, expected)


# ---------------------------------------------------------------------------------------
# §13 item 6: learned unigram
# ---------------------------------------------------------------------------------------

LABELS_6 = np.array([[2], [2], [4]], dtype=np.int64)
ITEM6 = [
    ([2, 4, 3, 2], [0.8, 0.8, 0.8, 0.8]),
    ([2, 0, 1, 4], [1.5, 0.5, 0.5, 1.0]),
    ([2, 2, 4, 2], [1.818182, 1.818182, 1.090909, 1.818182]),
]


def test_item6_learned_unigram_function_three_calls():
    for want_sampled, want_counts in ITEM6:
        sampled, _, sampled_count = rustnce.learned_unigram_candidate_sampler(
            LABELS_6, 1, 4, False, 5, seed=1
        )
        np.testing.assert_array_equal(sampled, want_sampled)
        np.testing.assert_allclose(sampled_count, want_counts, rtol=1e-6)


def test_item6_learned_unigram_object_three_calls():
    sampler = rustnce.LearnedUnigramSampler(5, seed=1)
    for want_sampled, want_counts in ITEM6:
        sampled, _, sampled_count = sampler.sample(LABELS_6, 1, 4, False)
        np.testing.assert_array_equal(sampled, want_sampled)
        np.testing.assert_allclose(sampled_count, want_counts, rtol=1e-6)


def test_item6_learned_unigram_true_class_count_goes_08_15_1818():
    counts = [
        rustnce.learned_unigram_candidate_sampler(LABELS_6, 1, 4, False, 5, seed=1)[1][:, 0]
        for _ in range(3)
    ]
    np.testing.assert_allclose([c[0] for c in counts], [0.8, 1.5, 1.818182], rtol=1e-6)
    np.testing.assert_allclose([c[2] for c in counts], [0.8, 1.0, 1.090909], rtol=1e-6)


# ---------------------------------------------------------------------------------------
# §13 item 7: compute_accidental_hits
# ---------------------------------------------------------------------------------------


def test_item7_compute_accidental_hits():
    indices, ids, weights = rustnce.compute_accidental_hits(
        np.array([[5, 1], [1, 1], [7, 9], [2, 5]], dtype=np.int64),
        np.array([1, 5, 3, 1, 2], dtype=np.int64),
        2,
    )
    np.testing.assert_array_equal(indices, [0, 0, 1, 1, 3, 3])
    np.testing.assert_array_equal(ids, [1, 3, 3, 3, 4, 1])
    np.testing.assert_array_equal(weights, np.full(6, -F32_MAX))


def test_item7_output_dtypes():
    indices, ids, weights = rustnce.compute_accidental_hits(
        np.array([[5, 1], [1, 1], [7, 9], [2, 5]], dtype=np.int32),
        np.array([1, 5, 3, 1, 2], dtype=np.int64),
        2,
    )
    assert (indices.dtype, ids.dtype, weights.dtype) == (np.int32, np.int64, np.float32)
