"""Mistakes get a clear Python exception that names the argument, raised before anything is
written; the inputs TensorFlow mishandles but that must simply work, work.

One test per case of the error list in docs/api.md ("Errors"). Every refusal is checked for
(1) the exception class, (2) the argument's name in the message, as the user passed it, and
(3) every array the call was given (weights, biases, inputs, labels, sampled values, in-place
targets) being byte for byte what it was. A Rust panic would surface as
``pyo3_runtime.PanicException``, a ``BaseException`` that ``pytest.raises(ValueError)`` does
not catch, so it fails these tests too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import rustnce
from rustnce import reference as ref

C, D, B, S = 20, 4, 3, 5

LOSS_FUNCTIONS = {
    "nce_loss": rustnce.nce_loss,
    "sampled_softmax_loss": rustnce.sampled_softmax_loss,
    "compute_sampled_logits": rustnce.compute_sampled_logits,
    "nce_loss_and_gradients": rustnce.nce_loss_and_gradients,
    "sampled_softmax_loss_and_gradients": rustnce.sampled_softmax_loss_and_gradients,
    "nce_sgd_step": lambda **kw: rustnce.nce_sgd_step(**kw, learning_rate=0.5),
    "sampled_softmax_sgd_step": lambda **kw: rustnce.sampled_softmax_sgd_step(
        **kw, learning_rate=0.5
    ),
}
FULL_FUNCTIONS = {
    "full_sigmoid_loss": rustnce.full_sigmoid_loss,
    "full_softmax_loss": rustnce.full_softmax_loss,
}
SAMPLER_FUNCTIONS = {
    "uniform": lambda tc, nt, ns, u, r, **kw: rustnce.uniform_candidate_sampler(
        tc, nt, ns, u, r, **kw
    ),
    "log_uniform": lambda tc, nt, ns, u, r, **kw: rustnce.log_uniform_candidate_sampler(
        tc, nt, ns, u, r, **kw
    ),
    "learned_unigram": lambda tc, nt, ns, u, r, **kw: rustnce.learned_unigram_candidate_sampler(
        tc, nt, ns, u, r, **kw
    ),
    "fixed_unigram": lambda tc, nt, ns, u, r, **kw: rustnce.fixed_unigram_candidate_sampler(
        tc, nt, ns, u, r, unigrams=np.arange(1, r + 1) if r <= 10**6 else (1.0,), **kw
    ),
    "uniform_object": lambda tc, nt, ns, u, r, **kw: rustnce.UniformSampler(r, **kw).sample(
        tc, nt, ns, u
    ),
}


@pytest.fixture(params=sorted(LOSS_FUNCTIONS))
def loss_name(request):
    return request.param


def problem(dtype=np.float32, rng_seed=0, explicit=False, **overrides) -> dict:
    """A small valid problem for the sampled losses; ``explicit``: with ``sampled_values``."""
    rng = np.random.default_rng(rng_seed)
    kwargs = dict(
        weights=rng.standard_normal((C, D)).astype(dtype),
        biases=rng.standard_normal(C).astype(dtype),
        labels=rng.integers(0, C, (B, 1)),
        inputs=rng.standard_normal((B, D)).astype(dtype),
        num_sampled=S,
        num_classes=C,
        seed=(1, 2),
    )
    if explicit:
        kwargs["sampled_values"] = (
            np.array([3, 0, 7, 1, 12]),
            np.full((B, 1), 0.25, np.float32),
            np.full(S, 0.25, np.float32),
        )
    kwargs.update(overrides)
    return kwargs


def fresh(function, *args, **kwargs):
    """``function(...)`` with fresh sampler caches, so that equal seeds draw equal ids."""
    rustnce.reset_sampler_cache()
    ref.reset_sampler_cache()
    return function(*args, **kwargs)


def arrays_in(value) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (list, tuple)):
        return [a for item in value for a in arrays_in(item)]
    return []


def snapshot(*values) -> list[bytes]:
    return [a.tobytes() for value in values for a in arrays_in(value)]


def assert_refused(call, exception, name, *watched):
    """``call()`` raises ``exception`` whose message contains ``name``, and leaves every array
    in ``watched`` byte for byte as it was."""
    before = snapshot(*watched)
    with pytest.raises(exception) as info:
        call()
    assert name in str(info.value), f"{name!r} not in {str(info.value)!r}"
    assert snapshot(*watched) == before, "an array was modified by a refused call"
    return info.value


def refuse_loss(loss_name, exception, name, **kwargs):
    """Calls a loss function with ``kwargs`` and checks the refusal (including that no array
    it was given changed)."""
    function = LOSS_FUNCTIONS[loss_name]
    return assert_refused(lambda: function(**kwargs), exception, name, *kwargs.values())


# ------------------------------------------------------------------------ wrong dtypes


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.complex64, np.float16, np.bool_])
def test_weights_of_a_non_float_dtype_are_refused(loss_name, dtype):
    kwargs = problem()
    kwargs["weights"] = kwargs["weights"].astype(dtype)
    refuse_loss(loss_name, TypeError, "weights", **kwargs)


@pytest.mark.parametrize("dtype", [np.int64, np.complex128, np.float16, ">f4"])
def test_inputs_of_a_non_float_dtype_are_refused(loss_name, dtype):
    kwargs = problem()
    kwargs["inputs"] = kwargs["inputs"].astype(dtype)
    refuse_loss(loss_name, TypeError, "inputs", **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.bool_, object])
def test_float_labels_are_refused_instead_of_truncated(loss_name, dtype):
    kwargs = problem()
    labels = kwargs["labels"]
    kwargs["labels"] = labels.astype(bool) if dtype == np.bool_ else labels.astype(dtype) + 0.9
    refuse_loss(loss_name, TypeError, "labels", **kwargs)


@pytest.mark.parametrize("name", ["weights", "biases"])
def test_mixed_float32_and_float64_operands_are_refused(loss_name, name):
    kwargs = problem()
    kwargs[name] = kwargs[name].astype(np.float64)
    refuse_loss(loss_name, TypeError, name, **kwargs)


def test_one_shard_of_another_dtype_is_named_by_its_position(loss_name):
    kwargs = problem()
    kwargs["weights"] = [kwargs["weights"][:10], kwargs["weights"][10:].astype(np.float64)]
    refuse_loss(loss_name, TypeError, "weights[1]", **kwargs)


def test_float_sampled_candidates_are_refused(loss_name):
    kwargs = problem(explicit=True)
    ids, true_expected, sampled_expected = kwargs["sampled_values"]
    kwargs["sampled_values"] = (ids + 0.5, true_expected, sampled_expected)
    refuse_loss(loss_name, TypeError, "sampled_values", **kwargs)


@pytest.mark.parametrize("position", [1, 2])
def test_non_real_expected_counts_are_refused(loss_name, position):
    kwargs = problem(explicit=True)
    values = list(kwargs["sampled_values"])
    values[position] = values[position].astype(np.complex64)
    kwargs["sampled_values"] = tuple(values)
    refuse_loss(loss_name, TypeError, "sampled_values", **kwargs)


def test_float64_expected_counts_with_float32_inputs_are_converted_as_documented():
    kwargs = problem(explicit=True)
    ids, true_expected, sampled_expected = kwargs["sampled_values"]
    as64 = dict(kwargs, sampled_values=(ids, true_expected.astype(np.float64), sampled_expected))
    np.testing.assert_array_equal(rustnce.nce_loss(**as64), rustnce.nce_loss(**kwargs))


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_sampler_true_classes_of_float_dtype_are_refused(dtype):
    true_classes = np.array([[1.5], [2.0]]).astype(dtype)
    if dtype == np.int32:
        true_classes = true_classes.astype(bool)
    assert_refused(
        lambda: rustnce.uniform_candidate_sampler(true_classes, 1, 2, True, 10),
        TypeError,
        "true_classes",
        true_classes,
    )


# -------------------------------------------------------------- wrong ranks and shapes


def test_inputs_dim_must_match_weights_dim(loss_name):
    kwargs = problem()
    kwargs["inputs"] = np.ones((B, D + 1), np.float32)
    refuse_loss(loss_name, ValueError, "inputs", **kwargs)


def test_biases_must_have_one_entry_per_weight_row(loss_name):
    kwargs = problem()
    kwargs["biases"] = kwargs["biases"][:-1]
    refuse_loss(loss_name, ValueError, "biases", **kwargs)


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param(np.array([1, 2, 3]), id="rank-1"),
        pytest.param(np.array([[[1]], [[2]], [[3]]]), id="rank-3"),
        pytest.param(np.array([[1], [2]]), id="batch-2-of-3"),
        pytest.param(np.array([[1, 2], [2, 3], [3, 4]]), id="num_true-2-of-1"),
    ],
)
def test_labels_must_be_batch_by_num_true(loss_name, labels):
    refuse_loss(loss_name, ValueError, "labels", **problem(labels=labels))


@pytest.mark.parametrize(
    "position,value",
    [
        (0, np.array([3, 0, 7, 1])),
        (0, np.array([[3, 0, 7, 1, 12]])),
        (1, np.full((B - 1, 1), 0.25, np.float32)),
        (1, np.full((B,), 0.25, np.float32)),
        (2, np.full(S + 1, 0.25, np.float32)),
        (2, np.full((S, 1), 0.25, np.float32)),
    ],
    ids=["ids-short", "ids-2d", "true-batch", "true-rank", "sampled-long", "sampled-2d"],
)
def test_sampled_values_of_the_wrong_shape_are_refused(loss_name, position, value):
    kwargs = problem(explicit=True)
    values = list(kwargs["sampled_values"])
    values[position] = value
    kwargs["sampled_values"] = tuple(values)
    # Four candidates are used as four (TensorFlow does): then the five sampled counts no
    # longer broadcast (sampled_values[2]), or, with hit removal, num_sampled = 5 no longer
    # matches (the message names num_sampled and sampled_values[0]).
    short = position == 0 and value.ndim == 1
    refuse_loss(
        loss_name,
        ValueError,
        "sampled_values" if short else f"sampled_values[{position}]",
        **kwargs,
    )


@pytest.mark.parametrize("value", [3, "abc", object()])
def test_sampled_values_that_are_not_a_sequence_are_a_type_error(loss_name, value):
    refuse_loss(loss_name, TypeError, "sampled_values", **problem(sampled_values=value))


@pytest.mark.parametrize("length", [1, 2, 4])
def test_sampled_values_of_another_length_are_a_value_error(loss_name, length):
    """As TensorFlow's unpacking of the triple (and skipgram_sgd_step, and the reference)."""
    values = problem(explicit=True)["sampled_values"]
    value = (values * 2)[:length]
    refuse_loss(loss_name, ValueError, "sampled_values", **problem(sampled_values=value))


def test_shards_with_different_dims_are_refused(loss_name):
    kwargs = problem()
    w = kwargs["weights"]
    kwargs["weights"] = [w[:10], np.ones((10, D + 1), np.float32)]
    refuse_loss(loss_name, ValueError, "weights[1]", **kwargs)


# ------------------------------------------------------------------- ids out of range


@pytest.mark.parametrize("bad", [-1, C, C + 5, 2**63 - 1, -(2**63)])
@pytest.mark.parametrize("explicit", [False, True], ids=["default-sampler", "sampled_values"])
def test_labels_out_of_range_are_refused(loss_name, bad, explicit):
    kwargs = problem(explicit=explicit)
    kwargs["labels"] = np.array([[1], [bad], [2]])
    refuse_loss(loss_name, IndexError, "labels", **kwargs)


@pytest.mark.parametrize("bad", [-1, C, 2**63 - 1])
def test_sampled_candidates_out_of_range_are_refused_although_tensorflow_reads_them(loss_name, bad):
    kwargs = problem(explicit=True)
    ids, true_expected, sampled_expected = kwargs["sampled_values"]
    ids = ids.copy()
    ids[2] = bad
    kwargs["sampled_values"] = (ids, true_expected, sampled_expected)
    refuse_loss(loss_name, IndexError, "sampled_values", **kwargs)


def test_ids_below_num_classes_but_beyond_the_rows_cannot_exist(loss_name):
    # num_classes may not exceed the rows of weights, so no id can reach past them.
    refuse_loss(loss_name, ValueError, "num_classes", **problem(num_classes=C + 1))


def test_unsigned_labels_beyond_int64_are_refused(loss_name):
    kwargs = problem(labels=np.array([[1], [2**64 - 1], [2]], dtype=np.uint64))
    refuse_loss(loss_name, IndexError, "labels", **kwargs)


@pytest.mark.parametrize("function", sorted(SAMPLER_FUNCTIONS))
@pytest.mark.parametrize("bad", [-1, 10, 2**63 - 1])
def test_sampler_true_classes_out_of_range_are_refused(function, bad):
    true_classes = np.array([[1], [bad]])
    assert_refused(
        lambda: SAMPLER_FUNCTIONS[function](true_classes, 1, 2, True, 10),
        IndexError,
        "true_classes",
        true_classes,
    )


@pytest.mark.parametrize("bad", [-1, C, 2**63 - 1, -(2**63)])
def test_embedding_lookup_ids_out_of_range_are_refused(bad):
    params = np.ones((C, D), np.float32)
    ids = np.array([0, bad])
    assert_refused(lambda: rustnce.embedding_lookup(params, ids), IndexError, "ids", params, ids)


@pytest.mark.parametrize("name", sorted(FULL_FUNCTIONS))
@pytest.mark.parametrize("bad", [-1, C])
def test_full_losses_refuse_labels_out_of_range(name, bad):
    kwargs = problem()
    kwargs.pop("num_sampled"), kwargs.pop("seed")
    kwargs["labels"] = np.array([[1], [bad], [2]])
    assert_refused(lambda: FULL_FUNCTIONS[name](**kwargs), IndexError, "labels", *kwargs.values())


# ----------------------------------------------------------------- counts and flags


@pytest.mark.parametrize("value", [0, -3])
def test_num_sampled_below_one_is_refused(loss_name, value):
    refuse_loss(loss_name, ValueError, "num_sampled", **problem(num_sampled=value))


@pytest.mark.parametrize("value", [0, -1])
def test_num_true_below_one_is_refused(loss_name, value):
    refuse_loss(loss_name, ValueError, "num_true", **problem(num_true=value))


@pytest.mark.parametrize("function", sorted(SAMPLER_FUNCTIONS))
@pytest.mark.parametrize("value", [0, -1])
def test_range_max_below_one_is_refused(function, value):
    with pytest.raises(ValueError, match="range_max"):
        SAMPLER_FUNCTIONS[function](np.zeros((2, 1), np.int64), 1, 1, False, value)


@pytest.mark.parametrize("function", sorted(SAMPLER_FUNCTIONS))
@pytest.mark.parametrize("name,position", [("num_true", 1), ("num_sampled", 2)])
def test_sampler_counts_below_one_are_refused(function, name, position):
    arguments = [np.zeros((2, 1), np.int64), 1, 2, False, 10]
    arguments[position] = 0
    with pytest.raises(ValueError, match=name):
        SAMPLER_FUNCTIONS[function](*arguments)


@pytest.mark.parametrize("function", sorted(SAMPLER_FUNCTIONS))
def test_unique_sampling_of_more_than_range_max_is_refused(function):
    with pytest.raises(ValueError, match="num_sampled") as info:
        SAMPLER_FUNCTIONS[function](np.zeros((2, 1), np.int64), 1, 11, True, 10)
    assert "range is too small" in str(info.value)


def test_unique_sampling_of_more_than_num_classes_is_refused_by_the_losses(loss_name):
    refuse_loss(loss_name, ValueError, "num_sampled", **problem(num_sampled=C + 1))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(unigrams=[3, 0, 0, 5, 0, 0]),
        dict(unigrams=[3, 0, 4, 0], num_reserved_ids=2),
        dict(unigrams=[3, 0, 4, 0], distortion=2.0),
    ],
    ids=["zero-counts", "reserved-ids", "distorted-zeros"],
)
def test_unique_sampling_with_too_few_possible_ids_is_refused_instead_of_looping(kwargs):
    range_max = len(kwargs["unigrams"]) + kwargs.get("num_reserved_ids", 0)
    with pytest.raises(ValueError, match="num_sampled") as info:
        rustnce.fixed_unigram_candidate_sampler(
            np.zeros((1, 1), np.int64), 1, 3, True, range_max, **kwargs
        )
    assert "non-zero probability" in str(info.value)


@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0, np.int8(1)])
def test_unique_must_be_a_bool(value):
    with pytest.raises(TypeError, match="unique"):
        rustnce.uniform_candidate_sampler(np.zeros((1, 1), np.int64), 1, 2, value, 10)
    with pytest.raises(TypeError, match="unique"):
        rustnce.UniformSampler(10).sample(np.zeros((1, 1), np.int64), 1, 2, value)


@pytest.mark.parametrize("name", ["remove_accidental_hits", "subtract_log_q"])
@pytest.mark.parametrize("value", [1, 0, "True", None])
def test_flags_must_be_bools(loss_name, name, value):
    refuse_loss(loss_name, TypeError, name, **problem(**{name: value}))


def test_numpy_bools_and_integer_scalars_are_accepted(loss_name):
    expected = fresh(LOSS_FUNCTIONS[loss_name], **problem())
    actual = fresh(
        LOSS_FUNCTIONS[loss_name],
        **problem(
            num_sampled=np.int16(S),
            num_classes=np.uint32(C),
            num_true=np.int64(1),
            remove_accidental_hits=np.bool_(loss_name.startswith("sampled_softmax")),
            seed=(np.int64(1), np.uint8(2)),
        ),
    )
    for a, b in zip(flatten_result(actual), flatten_result(expected)):
        np.testing.assert_array_equal(a, b)


def test_numpy_scalars_are_accepted_by_the_samplers():
    true_classes = np.array([[1], [3]])
    kw = dict(seed=(1, 2))
    a = rustnce.uniform_candidate_sampler(
        true_classes, np.int8(1), np.int32(4), np.bool_(1), 10, **kw
    )
    rustnce.reset_sampler_cache()
    b = rustnce.uniform_candidate_sampler(true_classes, 1, 4, True, np.uint64(10), **kw)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("name", ["num_sampled", "num_true", "num_classes"])
@pytest.mark.parametrize("value", [5.0, "5", None, True, [5]])
def test_counts_must_be_ints(loss_name, name, value):
    refuse_loss(loss_name, TypeError, name, **problem(**{name: value}))


@pytest.mark.parametrize("value", ["DIV", "", 1, None])
def test_partition_strategy_must_be_div_or_mod(loss_name, value):
    exception = ValueError if isinstance(value, str) else TypeError
    refuse_loss(loss_name, exception, "partition_strategy", **problem(partition_strategy=value))


@pytest.mark.parametrize(
    "seed,exception",
    [
        ("1", TypeError),
        (1.5, TypeError),
        (True, TypeError),
        ((1, 2, 3), ValueError),
        ((1, "2"), TypeError),
        ((2**64, 0), ValueError),
    ],
)
def test_bad_seeds_are_refused(loss_name, seed, exception):
    refuse_loss(loss_name, exception, "seed", **problem(seed=seed))


def test_any_int_op_seed_is_reduced_like_tensorflow():
    """TensorFlow reduces an op seed modulo 2**31 - 1, whatever its size."""
    big = 2**70 + 12345
    a = rustnce.LogUniformSampler(100, seed=big).sample(np.zeros((1, 1), np.int64), 1, 5, True)
    b = rustnce.LogUniformSampler(100, seed=big % (2**31 - 1)).sample(
        np.zeros((1, 1), np.int64), 1, 5, True
    )
    np.testing.assert_array_equal(a[0], b[0])
    assert rustnce._rustnce.seed_attributes(big) == ref.seed_attributes(big)


# ------------------------------------------------------------------- fixed unigram


def fixed(range_max=4, **kwargs):
    return rustnce.fixed_unigram_candidate_sampler(
        np.zeros((1, 1), np.int64), 1, 2, False, range_max, **kwargs
    )


@pytest.mark.parametrize("range_max", [3, 5])
def test_fixed_unigram_table_size_must_equal_range_max(range_max):
    with pytest.raises(ValueError, match="range_max"):
        fixed(range_max, unigrams=[1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="range_max"):
        rustnce.FixedUnigramSampler(range_max, unigrams=[1.0, 2.0, 3.0, 4.0])


@pytest.mark.parametrize("count", [-1.0, np.nan, np.inf, -np.inf])
def test_fixed_unigram_counts_must_be_finite_and_non_negative(count):
    with pytest.raises(ValueError, match="unigrams") as info:
        fixed(unigrams=[1.0, count, 3.0, 4.0])
    assert "entry 1" in str(info.value)


@pytest.mark.parametrize("value", [["a", "b"], "1234", [[1.0, 2.0]], [1 + 2j, 3j]])
def test_fixed_unigram_counts_must_be_a_list_of_numbers(value):
    with pytest.raises((TypeError, ValueError), match="unigrams"):
        fixed(len(value), unigrams=value)


def test_a_missing_vocabulary_file_is_named(tmp_path):
    missing = tmp_path / "no" / "vocab.txt"
    with pytest.raises(FileNotFoundError) as info:
        fixed(vocab_file=missing)
    assert str(missing) in str(info.value) and "vocab_file" in str(info.value)


def test_a_directory_as_vocabulary_file_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="vocab_file"):
        fixed(vocab_file=tmp_path)


@pytest.mark.parametrize(
    "text,line",
    [
        ("a,1\nb,x\nc,3\n", 2),
        ("a,1\n\nb,2\nc\n", 4),
        ("a,1\nb,-2\n", 2),
        ("a,1\nb,nan\n", 2),
        ("a,1\r\nb,1e40\r\n", 2),
        ("a,1\nb,\n", 2),
        ("  \n", 1),
    ],
    ids=["not-a-number", "no-count", "negative", "nan", "overflow", "empty-field", "blank"],
)
def test_a_malformed_vocabulary_file_is_named_with_its_line(tmp_path, text, line):
    path = tmp_path / "vocab.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        fixed(3, vocab_file=str(path))
    message = str(info.value)
    assert "vocab_file" in message and str(path) in message and f"line {line}" in message


def test_vocabulary_files_need_not_be_utf8_outside_the_counts(tmp_path):
    path = tmp_path / "vocab.csv"
    path.write_bytes(b"caf\xe9,3\n\xff\xfe,1\r\n,,2\n")
    sampler = rustnce.FixedUnigramSampler(3, vocab_file=os.fsencode(path), seed=(1, 1))
    np.testing.assert_array_equal(
        sampler.probability([0, 1, 2]), np.array([3, 1, 2], np.float32) / 6
    )


def test_a_vocabulary_line_of_unbounded_length_is_refused(tmp_path):
    path = tmp_path / "vocab.csv"
    path.write_bytes(b"a,1\n" + b"x" * (1 << 20) + b",2\n")
    with pytest.raises(ValueError, match="line 2") as info:
        fixed(2, vocab_file=path)
    assert "longer than" in str(info.value)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(unigrams=[1, 2], vocab_file="x.txt"), "vocab_file"),
        (dict(), "unigrams"),
        (dict(unigrams=[1, 2, 3, 4], distortion="0.75"), "distortion"),
        (dict(unigrams=[1, 2, 3, 4], distortion=float("nan")), "distortion"),
        (dict(unigrams=[1, 2, 3, 4], num_shards=0), "num_shards"),
        (dict(unigrams=[1, 2, 3, 4], shard=1), "shard"),
        (dict(unigrams=[1, 2, 3, 4], shard=-1), "shard"),
        (dict(unigrams=[1, 2, 3, 4], num_reserved_ids=-1), "num_reserved_ids"),
        (dict(unigrams=[1, 2, 3, 4], num_reserved_ids=2**62), "range_max"),
        (dict(unigrams=[1, 2, 3, 4], vocab_file=3), "vocab_file"),
        (dict(unigrams=[0, 1, 2, 3], distortion=-1.0), "distortion"),
        (dict(unigrams=[3e38, 3e38, 1, 1]), "unigrams"),
    ],
)
def test_fixed_unigram_attributes_are_checked(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        fixed(**kwargs)


def test_fixed_unigram_range_max_beyond_int32_is_refused_without_allocating():
    with pytest.raises(ValueError, match="range_max"):
        fixed(2**40, unigrams=[1.0], num_reserved_ids=2**40 - 1)


def test_many_reserved_ids_in_other_shards_do_not_take_time_or_memory():
    # 10**15 reserved ids over 10**12 shards: shard 1001 keeps 1000 of them, and of the
    # counted ids, numbered from 1000 (TensorFlow's quirk), only 1001.
    out = rustnce.FixedUnigramSampler(
        1001, unigrams=[1.0] * 3, num_reserved_ids=10**15, num_shards=10**12, shard=1001
    )
    assert out.range_max == 1001
    assert out.probability([999, 1000]).tolist() == [0.0, 1.0]


# -------------------------------------------------------------------------- shards


@pytest.mark.parametrize("strategy", ["div", "mod"])
def test_shards_that_do_not_follow_the_partition_strategy_are_refused(loss_name, strategy):
    kwargs = problem(partition_strategy=strategy)
    w = kwargs["weights"]
    kwargs["weights"] = [w[:5], w[5:]]  # 5 + 15 instead of 10 + 10
    refuse_loss(loss_name, ValueError, "weights", **kwargs)


def test_bias_shards_that_do_not_follow_the_partition_strategy_are_refused(loss_name):
    kwargs = problem()
    b = kwargs["biases"]
    kwargs["biases"] = [b[:7], b[7:]]
    refuse_loss(loss_name, ValueError, "biases", **kwargs)


def test_fewer_rows_than_shards_are_refused():
    params = [np.ones((1, D), np.float32), np.ones((0, D), np.float32)]
    with pytest.raises(ValueError, match="params") as info:
        rustnce.embedding_lookup(params, np.array([0]))
    assert "at least one row" in str(info.value)


def test_fewer_weight_rows_than_shards_are_refused(loss_name):
    kwargs = problem(num_classes=1, num_sampled=1, labels=np.zeros((B, 1), np.int64))
    kwargs["weights"] = [kwargs["weights"][:1], kwargs["weights"][:0]]
    kwargs["biases"] = kwargs["biases"][:1]
    refuse_loss(loss_name, ValueError, "weights", **kwargs)


# --------------------------------------------------------- zero-probability true class


@pytest.mark.parametrize("loss", ["nce_loss", "sampled_softmax_loss"])
def test_a_true_class_the_sampler_never_draws_is_refused_instead_of_a_nan_loss(loss):
    kwargs = problem(labels=np.array([[0], [1], [2]]))
    counts = np.ones(C)
    counts[1] = 0  # class 1: probability 0, expected count 0, ln Q = -inf
    kwargs["sampled_values"] = rustnce.fixed_unigram_candidate_sampler(
        kwargs["labels"], 1, S, True, C, unigrams=counts, seed=(3, 4)
    )
    assert kwargs["sampled_values"][1][1, 0] == 0
    info = refuse_loss(loss, ValueError, "sampled_values", **kwargs)
    assert "NaN" in str(info)
    # TensorFlow's answer (and the reference's): NaN for that row.
    assert np.isnan(getattr(ref, loss)(**kwargs)[1])
    # Without ln Q there is nothing to take the logarithm of: the loss is finite.
    assert np.isfinite(getattr(rustnce, loss)(**dict(kwargs, subtract_log_q=False))).all()


# --------------------------------------------------------------- in-place targets


SGD = ["nce_sgd_step", "sampled_softmax_sgd_step"]


def read_only(array):
    array = array.copy()
    array.setflags(write=False)
    return array


@pytest.mark.parametrize("step", SGD)
@pytest.mark.parametrize("name", ["weights", "biases"])
def test_sgd_step_refuses_read_only_targets(step, name):
    kwargs = problem()
    kwargs[name] = read_only(kwargs[name])
    refuse_loss(step, ValueError, name, **kwargs)


@pytest.mark.parametrize("step", SGD)
def test_sgd_step_refuses_a_read_only_shard_by_position(step):
    kwargs = problem()
    w = kwargs["weights"]
    kwargs["weights"] = [w[:10].copy(), read_only(w[10:])]
    refuse_loss(step, ValueError, "weights[1]", **kwargs)


@pytest.mark.parametrize("step", SGD)
@pytest.mark.parametrize("name", ["weights", "biases"])
def test_sgd_step_refuses_targets_of_the_wrong_dtype(step, name):
    kwargs = problem()
    kwargs[name] = kwargs[name].astype(np.float64)
    refuse_loss(step, TypeError, name, **kwargs)


@pytest.mark.parametrize("step", SGD)
@pytest.mark.parametrize("alias", ["inputs", "labels", "upstream", "sampled_values"])
def test_sgd_step_refuses_targets_that_alias_an_input(step, alias):
    kwargs = problem(explicit=alias == "sampled_values")
    weights = kwargs["weights"]
    if alias == "inputs":
        kwargs["inputs"] = weights[2 : 2 + B]
    elif alias == "labels":
        labels = weights[:B, :2].view(np.int64)
        labels[:, 0] = [0, 1, 2]
        kwargs["labels"] = labels
    elif alias == "upstream":
        kwargs["upstream"] = weights[0, :B]
    else:
        ids, _, sampled_expected = kwargs["sampled_values"]
        kwargs["sampled_values"] = (ids, weights[:B, :1], sampled_expected)
        kwargs["labels"] = np.array([[0], [1], [2]])
        weights[:B, 0] = 0.5
    name = "sampled_values" if alias == "sampled_values" else alias
    info = refuse_loss(step, ValueError, "weights", **kwargs)
    assert name in str(info)


@pytest.mark.parametrize("step", SGD)
@pytest.mark.parametrize("name", ["weights", "biases"])
def test_sgd_step_refuses_targets_that_are_not_arrays(step, name):
    """A list would be converted to a temporary copy and the update silently lost."""
    kwargs = problem()
    kwargs[name] = kwargs[name].tolist() if name == "biases" else [kwargs[name].tolist()]
    refuse_loss(step, TypeError, name, **kwargs)


def test_accumulate_refuses_targets_that_are_not_arrays():
    accumulate_refused(TypeError, "weights_gradient", [np.zeros((C, D), np.float32).tolist()])
    accumulate_refused(TypeError, "biases_gradient", None, [0.0] * C)


@pytest.mark.parametrize("step", SGD)
def test_sgd_step_refuses_weights_and_biases_that_overlap(step):
    kwargs = problem()
    block = np.zeros((C, D + 1), np.float32)
    kwargs["weights"] = block[:, : D + 1][:, :D]
    kwargs["biases"] = block[:, 1]
    refuse_loss(step, ValueError, "biases", **kwargs)


@pytest.mark.parametrize("step", SGD)
def test_sgd_step_refuses_self_overlapping_targets(step):
    kwargs = problem()
    kwargs["weights"] = np.lib.stride_tricks.as_strided(
        np.zeros(C + D, np.float32), shape=(C, D), strides=(4, 4)
    )
    refuse_loss(step, ValueError, "weights", **kwargs)


GRADIENTS = ["nce_loss_and_gradients", "sampled_softmax_loss_and_gradients"]


def accumulate_refused(exception, name, weights_gradient=None, biases_gradient=None):
    """``accumulate`` into these targets is refused, and neither the targets nor the arrays
    the gradients came from change."""
    base = problem()
    g = rustnce.nce_loss_and_gradients(**base)
    assert_refused(
        lambda: g.accumulate(weights_gradient, biases_gradient),
        exception,
        name,
        *base.values(),
        weights_gradient,
        biases_gradient,
    )


def test_accumulate_refuses_read_only_targets():
    accumulate_refused(ValueError, "weights_gradient", read_only(np.zeros((C, D), np.float32)))
    accumulate_refused(
        ValueError,
        "biases_gradient",
        np.zeros((C, D), np.float32),
        read_only(np.zeros(C, np.float32)),
    )


def test_accumulate_refuses_targets_of_the_wrong_dtype():
    accumulate_refused(TypeError, "weights_gradient", np.zeros((C, D), np.float64))
    accumulate_refused(TypeError, "biases_gradient", None, np.zeros(C, np.int32))


@pytest.mark.parametrize("shape", [(C, D + 1), (C - 1, D), (C + 1, D), (D, C)])
def test_accumulate_refuses_targets_of_the_wrong_shape(shape):
    accumulate_refused(ValueError, "weights_gradient", np.zeros(shape, np.float32))


def test_accumulate_refuses_targets_split_unlike_the_weights():
    target = np.zeros((C, D), np.float32)
    accumulate_refused(ValueError, "weights_gradient", [target[:10], target[10:]])
    accumulate_refused(ValueError, "biases_gradient", None, np.zeros(C + 1, np.float32))


def test_accumulate_refuses_a_target_that_aliases_the_inputs():
    kwargs = problem()
    big = np.zeros((C + 2, D), np.float32)
    big[C - B : C] = kwargs["inputs"]
    g = rustnce.nce_loss_and_gradients(**dict(kwargs, inputs=big[C - B : C]))
    before = big.tobytes()
    with pytest.raises(ValueError, match="weights_gradient") as info:
        g.accumulate(big[:C])
    assert "inputs" in str(info.value)
    assert big.tobytes() == before


@pytest.mark.parametrize("value,exception", [("x", TypeError), (np.nan, ValueError)])
def test_accumulate_refuses_a_bad_scale(value, exception):
    g = rustnce.nce_loss_and_gradients(**problem())
    target = np.zeros((C, D), np.float32)
    with pytest.raises(exception, match="scale"):
        g.accumulate(target, scale=value)
    assert not target.any()


@pytest.mark.parametrize("step", SGD)
@pytest.mark.parametrize(
    "value,exception", [("0.1", TypeError), (np.inf, ValueError), (None, TypeError)]
)
def test_sgd_step_refuses_a_bad_learning_rate(step, value, exception):
    kwargs = problem()
    function = getattr(rustnce, step)
    assert_refused(
        lambda: function(**kwargs, learning_rate=value), exception, "learning_rate", kwargs
    )


@pytest.mark.parametrize("name", GRADIENTS + SGD)
@pytest.mark.parametrize(
    "upstream,exception",
    [
        ("total", ValueError),
        (np.ones(B + 1), ValueError),
        (np.ones(B, complex), TypeError),
        (3.0, TypeError),
    ],
)
def test_a_bad_upstream_is_refused(name, upstream, exception):
    refuse_loss(name, exception, "upstream", **problem(upstream=upstream))


# ------------------------------------------------- nothing lost when an update fails


FAILURES = {
    "label out of range": dict(labels=np.array([[1], [C], [2]])),
    "candidate out of range": dict(
        sampled_values=(np.array([3, 0, C, 1, 12]), np.ones((B, 1)), np.ones(S))
    ),
    "zero expected count": dict(
        sampled_values=(np.array([3, 0, 7, 1, 12]), np.zeros((B, 1)), np.ones(S))
    ),
    "bad upstream": dict(upstream=np.ones(B + 2)),
    "read-only biases": dict(biases=read_only(np.zeros(C, np.float32))),
    "biases of float64": dict(biases=np.zeros(C, np.float64)),
    "unique from too small a range": dict(num_sampled=C + 1),
    "mixed shard layout": dict(biases=[np.zeros(7, np.float32), np.zeros(13, np.float32)]),
    "inputs aliasing weights": "alias",
}


@pytest.mark.parametrize("step", SGD)
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failed_sgd_step_leaves_weights_and_biases_byte_for_byte(step, failure):
    kwargs = problem()
    weights, biases = kwargs["weights"], kwargs["biases"]
    if FAILURES[failure] == "alias":
        kwargs["inputs"] = weights[:B]
    else:
        kwargs.update(FAILURES[failure])
    before = snapshot(weights, biases, kwargs["biases"])
    with pytest.raises((ValueError, IndexError, TypeError)):
        LOSS_FUNCTIONS[step](**kwargs)
    assert snapshot(weights, biases, kwargs["biases"]) == before


@pytest.mark.parametrize("failure", ["wrong shape", "read-only biases", "wrong dtype"])
def test_a_failed_accumulate_leaves_the_gradient_buffers_byte_for_byte(failure):
    g = rustnce.sampled_softmax_loss_and_gradients(**problem())
    weights_gradient = np.full((C, D), 7, np.float32)
    biases_gradient = np.full(C, 3, np.float32)
    if failure == "wrong shape":
        biases_gradient = np.full(C + 1, 3, np.float32)
    elif failure == "read-only biases":
        biases_gradient = read_only(biases_gradient)
    else:
        biases_gradient = biases_gradient.astype(np.float64)
    before = snapshot(weights_gradient, biases_gradient)
    with pytest.raises((ValueError, TypeError)):
        g.accumulate(weights_gradient, biases_gradient)
    assert snapshot(weights_gradient, biases_gradient) == before


def test_a_refused_call_does_not_move_the_default_sampler_stream(loss_name):
    """Every check runs before the default sampler draws: after a refused call, the next call
    draws what it would have drawn."""
    good = problem(seed=(5, 6))
    expected = flatten_result(fresh(LOSS_FUNCTIONS[loss_name], **problem(seed=(5, 6))))
    rustnce.reset_sampler_cache()
    in_place = "sgd" in loss_name
    failures = [dict(labels=np.array([[1], [C], [2]])), dict(num_classes=C + 1)]
    if "gradients" in loss_name or in_place:
        failures.append(dict(upstream=np.ones(B + 2)))
    if in_place:
        failures += [dict(biases=read_only(good["biases"])), dict(inputs=good["weights"][:B])]
    for bad in failures:
        kwargs = dict(problem(seed=(5, 6)), **bad)
        if "inputs" in bad:
            kwargs["weights"] = good["weights"]
        with pytest.raises((ValueError, IndexError)):
            LOSS_FUNCTIONS[loss_name](**kwargs)
    actual = flatten_result(LOSS_FUNCTIONS[loss_name](**problem(seed=(5, 6))))
    for a, b in zip(actual, expected):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------- huge sizes: no abort


def test_num_sampled_beyond_int32_is_refused_not_allocated():
    true_classes = np.zeros((1, 1), np.int64)
    with pytest.raises(ValueError, match="num_sampled"):
        rustnce.log_uniform_candidate_sampler(true_classes, 1, 10**12, False, 10)
    with pytest.raises(ValueError, match="num_sampled"):
        rustnce.LogUniformSampler(10).sample(true_classes, 1, 2**31, False)
    with pytest.raises(ValueError, match="num_true"):
        rustnce.LogUniformSampler(10).sample(true_classes, 2**31, 1, False)


def test_counts_beyond_int64_are_value_errors_not_overflow_errors(loss_name):
    refuse_loss(loss_name, ValueError, "num_classes", **problem(num_classes=2**64))
    refuse_loss(loss_name, ValueError, "num_sampled", **problem(num_sampled=2**70))
    with pytest.raises(ValueError, match="range_max"):
        rustnce.UniformSampler(2**63)


def test_a_loss_whose_logits_need_terabytes_is_a_memory_error():
    """[2**16, 2**20] logits are 256 GiB (2 PiB of float32 for the second call): refused with
    MemoryError before anything is allocated. The arrays themselves take no memory."""
    rows = 2**20
    weights = np.broadcast_to(np.float32(0), (rows, 1))
    biases = np.broadcast_to(np.float32(0), (rows,))
    labels = np.broadcast_to(np.int64(0), (2**16, 1))
    inputs = np.broadcast_to(np.float32(1), (2**16, 1))
    with pytest.raises(MemoryError, match="num_sampled"):
        rustnce.sampled_softmax_loss(weights, biases, labels, inputs, rows, rows, seed=1)
    candidates = np.broadcast_to(np.int64(0), (rows,))
    counts = (np.broadcast_to(np.float32(1), (2**16, 1)), np.broadcast_to(np.float32(1), (rows,)))
    with pytest.raises(MemoryError):
        rustnce.nce_loss(
            weights, biases, labels, inputs, rows, rows, sampled_values=(candidates, *counts)
        )


def test_an_embedding_lookup_of_terabytes_is_a_memory_error():
    params = np.broadcast_to(np.float32(0), (10, 2**20))
    ids = np.broadcast_to(np.int64(3), (2**20,))
    with pytest.raises(MemoryError, match="params"):
        rustnce.embedding_lookup(params, ids)


# --------------------------------------------------------- inputs that simply work


def flatten_result(result) -> list[np.ndarray]:
    if isinstance(result, np.ndarray):
        return [result]
    if isinstance(result, tuple):
        return [a for item in result for a in flatten_result(item)]
    if isinstance(result, rustnce.SampledLossGradients):
        merged_w, merged_b = result.merged()
        return [result.loss, result.inputs, result.weights.values, merged_w.values, merged_b.values]
    raise AssertionError(type(result))


def test_a_batch_of_zero_works_everywhere(loss_name):
    kwargs = problem(labels=np.zeros((0, 2), np.int32), inputs=np.zeros((0, D), np.float32))
    kwargs["num_true"] = 2
    result = flatten_result(LOSS_FUNCTIONS[loss_name](**kwargs))
    assert all(np.isfinite(a).all() for a in result)
    assert result[0].shape[0] == 0


def test_a_batch_of_zero_works_for_the_other_functions():
    empty = np.zeros((0, 2), np.int64)
    weights, biases = np.ones((C, D), np.float32), np.ones(C, np.float32)
    inputs = np.zeros((0, D), np.float32)
    for function in FULL_FUNCTIONS.values():
        assert function(weights, biases, empty, inputs, C, num_true=2).shape == (0,)
    for function in SAMPLER_FUNCTIONS.values():
        ids, true_expected, sampled_expected = function(empty, 2, 3, True, 10)
        assert ids.shape == (3,) and true_expected.shape == (0, 2)
    assert rustnce.all_candidate_sampler(empty, 2, 3, False)[1].shape == (0, 2)
    assert all(a.shape == (0,) for a in rustnce.compute_accidental_hits(empty, [1, 2], 2))
    assert rustnce.embedding_lookup(weights, np.zeros((0, 3), np.int64)).shape == (0, 3, D)
    g = rustnce.nce_loss_and_gradients(weights, biases, empty, inputs, 3, C, num_true=2)
    target = np.zeros_like(weights)
    g.accumulate(target, np.zeros_like(biases))
    assert np.isfinite(target).all()


@pytest.mark.parametrize("function", sorted(SAMPLER_FUNCTIONS))
def test_unique_sampling_of_the_whole_range_works(function):
    ids = SAMPLER_FUNCTIONS[function](np.array([[0], [9]]), 1, 10, True, 10, seed=(1, 1))[0]
    assert sorted(ids.tolist()) == list(range(10))


def test_unique_sampling_of_all_classes_works_in_the_losses(loss_name):
    result = LOSS_FUNCTIONS[loss_name](**problem(num_sampled=C))
    assert all(np.isfinite(a).all() for a in flatten_result(result))


@pytest.mark.parametrize(
    "layout",
    ["fortran", "strided", "reversed", "transposed-copy"],
)
def test_fortran_order_and_strided_views_give_the_contiguous_result(loss_name, layout):
    """(That such weights are read in place, not copied, is tests/test_zero_copy_and_views.py.)"""
    kwargs = problem()
    expected = flatten_result(fresh(LOSS_FUNCTIONS[loss_name], **problem()))
    rustnce.reset_sampler_cache()
    w = kwargs["weights"]
    if layout == "fortran":
        view = np.asfortranarray(w)
    elif layout == "strided":
        big = np.zeros((C, 3 * D), np.float32)
        big[:, ::3] = w
        view = big[:, ::3]
    elif layout == "reversed":
        view = np.ascontiguousarray(w[::-1])[::-1]
    else:
        view = np.ascontiguousarray(w.T).T
    kwargs["weights"] = view
    kwargs["inputs"] = np.asfortranarray(kwargs["inputs"])
    actual = flatten_result(LOSS_FUNCTIONS[loss_name](**kwargs))
    for a, b in zip(actual, expected):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_int32_labels_give_the_int64_result(loss_name):
    expected = flatten_result(fresh(LOSS_FUNCTIONS[loss_name], **problem()))
    kwargs = problem()
    kwargs["labels"] = kwargs["labels"].astype(np.int32)
    for a, b in zip(flatten_result(fresh(LOSS_FUNCTIONS[loss_name], **kwargs)), expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["inputs", "weights", "biases"])
@pytest.mark.parametrize("loss", ["nce_loss", "sampled_softmax_loss", "compute_sampled_logits"])
def test_nan_and_inf_propagate_like_tensorflow(loss, where, value):
    # An infinite weight gives some row a -inf sampled logit; so does a -inf bias (TensorFlow's
    # softmax cross-entropy then gives 0 * inf = NaN).
    kwargs = problem(explicit=True)
    kwargs[where] = kwargs[where].copy()
    kwargs[where].flat[1] = value
    with np.errstate(all="ignore"):
        expected = getattr(ref, loss)(**kwargs)
    actual = getattr(rustnce, loss)(**kwargs)
    for a, b in zip(flatten_result(actual), flatten_result(expected)):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        finite = np.isfinite(b)
        np.testing.assert_allclose(a[finite], b[finite], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(a[~finite & ~np.isnan(b)], b[~finite & ~np.isnan(b)])


@pytest.mark.parametrize("step", SGD)
def test_nan_inputs_in_a_training_step_do_not_crash(step):
    kwargs = problem()
    kwargs["inputs"] = kwargs["inputs"].copy()
    kwargs["inputs"][0, 0] = np.nan
    loss, inputs_gradient = LOSS_FUNCTIONS[step](**kwargs)
    assert np.isnan(loss[0]) and np.isfinite(loss[1:]).all()


def test_ids_near_the_int64_limit_are_handled_without_overflow():
    big = 2**63 - 1
    # A huge range is fine for the samplers that need no table.
    ids = rustnce.uniform_candidate_sampler(np.array([[big - 1]]), 1, 3, True, big, seed=1)[0]
    assert ((ids >= 0) & (ids < big)).all()
    ids = rustnce.log_uniform_candidate_sampler(np.array([[big - 1]]), 1, 3, True, big, seed=1)[0]
    assert ((ids >= 0) & (ids < big)).all()
    # Probabilities of ids far outside the range are 0.
    np.testing.assert_array_equal(
        rustnce.UniformSampler(5).probability([big, -big - 1, 4]), np.float32([0, 0, 0.2])
    )
    # Hits between huge ids are found exactly.
    hits = rustnce.compute_accidental_hits(np.array([[big], [-big - 1]]), [0, big, -big - 1], 1)
    np.testing.assert_array_equal(hits[0], [0, 1])
    np.testing.assert_array_equal(hits[1], [1, 2])


def test_vocab_file_path_types(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("a,1\nb,2\n")
    for value in (path, str(path), os.fsencode(path), Path(str(path))):
        assert rustnce.FixedUnigramSampler(2, vocab_file=value).range_max == 2
