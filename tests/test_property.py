"""Property-based tests (hypothesis): random shapes, dtypes, id ranges, layouts and flags for
every public function. Each call either agrees with the NumPy reference (``rustnce.reference``)
or raises one of the documented exceptions naming the argument — never a crash, a hang, a
Rust panic (``PanicException``, a ``BaseException``) or a wrong result.

(1) Valid problems, with at most one deliberate mistake: without a mistake, the result equals
    the reference's; with one, the exception class and the argument in the message are the
    documented ones, and no array the call was given changed.
(2) Junk: any argument replaced by a value of the wrong kind; the call returns or raises
    TypeError / ValueError / IndexError / MemoryError / OSError, nothing else.
(3) The vocabulary-file parser and the sampler constructors, fuzzed: arbitrary bytes as a
    vocabulary file give the counts a plain Python parser of the documented format gives, or
    a ValueError naming the file and the line.
"""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rustnce
from rustnce import reference as ref

# RUSTNCE_HYPOTHESIS_EXAMPLES=5000 for a longer search.
EXAMPLES = int(os.environ.get("RUSTNCE_HYPOTHESIS_EXAMPLES", "120"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DOCUMENTED = (TypeError, ValueError, IndexError, MemoryError, OSError)


def fresh_caches():
    rustnce.reset_sampler_cache()
    ref.reset_sampler_cache()


# ------------------------------------------------------------------ valid problems


def div_sizes(rows: int, count: int) -> list[int]:
    q, extra = divmod(rows, count)
    return [q + 1] * extra + [q] * (count - extra)


def split(full: np.ndarray, count: int, strategy: str) -> list[np.ndarray]:
    if strategy == "mod":
        return [full[p::count] for p in range(count)]
    bounds = np.cumsum([0] + div_sizes(full.shape[0], count))
    return [full[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def lay_out(array: np.ndarray, layout: str) -> np.ndarray:
    """The same values in another memory layout (never a different dtype)."""
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "strided":
        big = np.zeros(
            (array.shape[0], 2 * array.shape[1] + 1) if array.ndim == 2 else (2 * len(array) + 1,),
            array.dtype,
        )
        view = big[:, 1::2] if array.ndim == 2 else big[1::2]
        view[...] = array
        return view
    if layout == "reversed":
        return np.ascontiguousarray(array[::-1])[::-1]
    return array


@st.composite
def problems(draw):
    """A valid sampled-loss problem: its kwargs, plus what the reference needs."""
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    batch = draw(st.integers(0, 5))
    dim = draw(st.integers(0, 4))
    num_classes = draw(st.integers(1, 12))
    rows = num_classes + draw(st.integers(0, 3))
    num_true = draw(st.integers(1, 3))
    strategy = draw(st.sampled_from(["div", "mod"]))
    shards = draw(st.integers(1, min(3, rows)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = (rng.standard_normal((rows, dim)) * 0.7).astype(dtype)
    biases = (rng.standard_normal(rows) * 0.3).astype(dtype)
    inputs = rng.standard_normal((batch, dim)).astype(dtype)
    label_dtype = draw(st.sampled_from([np.int32, np.int64, np.int16, np.uint8]))
    labels = rng.integers(0, num_classes, (batch, num_true)).astype(label_dtype)
    explicit = draw(st.booleans())
    if explicit:
        num_sampled = draw(st.integers(1, 8))
        candidates = rng.integers(0, num_classes, num_sampled)
        count_dtype = draw(st.sampled_from([np.float32, np.float64]))
        sampled_values = (
            candidates,
            rng.uniform(0.05, 2.0, (batch, num_true)).astype(count_dtype),
            rng.uniform(0.05, 2.0, num_sampled).astype(count_dtype),
        )
    else:
        num_sampled = draw(st.integers(1, num_classes))  # unique sampling
        sampled_values = None
    weight_layout = draw(st.sampled_from(["c", "fortran", "strided", "reversed"]))
    kwargs = dict(
        weights=[lay_out(s, weight_layout) for s in split(weights, shards, strategy)]
        if shards > 1 or draw(st.booleans())
        else lay_out(weights, weight_layout),
        biases=split(biases, shards, strategy) if shards > 1 and draw(st.booleans()) else biases,
        labels=lay_out(labels, draw(st.sampled_from(["c", "fortran"]))),
        inputs=lay_out(inputs, draw(st.sampled_from(["c", "fortran", "strided"]))),
        num_sampled=num_sampled,
        num_classes=num_classes,
        num_true=num_true,
        sampled_values=sampled_values,
        remove_accidental_hits=draw(st.booleans()),
        partition_strategy=strategy,
        seed=(draw(st.integers(1, 2**31)), draw(st.integers(0, 2**31))),
        subtract_log_q=draw(st.booleans()),
    )
    upstream = rng.uniform(-1, 1, batch).astype(dtype)
    return kwargs, dict(rows=rows, dim=dim, batch=batch, dtype=dtype, upstream=upstream)


def tolerance(dtype) -> dict:
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


def assert_close(actual, expected, dtype):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, **tolerance(dtype))


def dense(shards) -> np.ndarray:
    return np.concatenate(shards) if isinstance(shards, list) else shards


def full_matrix(shards, strategy: str) -> np.ndarray:
    """The unsharded matrix the shards stand for."""
    if not isinstance(shards, list) or len(shards) == 1:
        return np.array(dense(shards))
    if strategy == "div":
        return np.concatenate(shards)
    count = len(shards)
    total = sum(len(s) for s in shards)
    out = np.empty((total,) + shards[0].shape[1:], shards[0].dtype)
    for p, shard in enumerate(shards):
        out[p::count] = shard
    return out


FUNCTIONS = [
    "nce_loss",
    "sampled_softmax_loss",
    "compute_sampled_logits",
    "nce_loss_and_gradients",
    "sampled_softmax_loss_and_gradients",
    "nce_sgd_step",
    "sampled_softmax_sgd_step",
    "full_sigmoid_loss",
    "full_softmax_loss",
]


def call_rustnce(name: str, kwargs: dict, info: dict):
    if name.startswith("full_"):
        full = {
            k: kwargs[k]
            for k in (
                "weights",
                "biases",
                "labels",
                "inputs",
                "num_classes",
                "num_true",
                "partition_strategy",
            )
        }
        return getattr(rustnce, name)(**full)
    if name.endswith("_gradients"):
        return getattr(rustnce, name)(**kwargs, upstream=info["upstream"])
    if name.endswith("_sgd_step"):
        return getattr(rustnce, name)(**kwargs, learning_rate=0.25, upstream=info["upstream"])
    return getattr(rustnce, name)(**kwargs)


def check_against_reference(name: str, kwargs: dict, info: dict) -> None:
    dtype = info["dtype"]
    strategy = kwargs["partition_strategy"]
    if name.endswith("_sgd_step"):
        kwargs = dict(
            kwargs,
            weights=[np.array(s) for s in kwargs["weights"]]
            if isinstance(kwargs["weights"], list)
            else np.array(kwargs["weights"]),
            biases=[np.array(s) for s in kwargs["biases"]]
            if isinstance(kwargs["biases"], list)
            else np.array(kwargs["biases"]),
        )
    w_before = full_matrix(kwargs["weights"], strategy)
    b_before = full_matrix(kwargs["biases"], strategy)
    # The reference reads the weights as they were (an SGD step updates them in place);
    # rustnce widens int8/int16/uint8 labels, the reference takes int32 and int64 only.
    ref_kwargs = dict(
        kwargs,
        weights=split(w_before, len(kwargs["weights"]), strategy)
        if isinstance(kwargs["weights"], list)
        else w_before,
        biases=split(b_before, len(kwargs["biases"]), strategy)
        if isinstance(kwargs["biases"], list)
        else b_before,
        labels=np.asarray(kwargs["labels"]).astype(np.int64),
    )
    fresh_caches()
    actual = call_rustnce(name, kwargs, info)
    fresh_caches()
    updated_w = full_matrix(kwargs["weights"], strategy)
    updated_b = full_matrix(kwargs["biases"], strategy)
    kwargs = ref_kwargs
    if name.startswith("full_"):
        expected = getattr(ref, name)(
            kwargs["weights"],
            kwargs["biases"],
            kwargs["labels"],
            kwargs["inputs"],
            kwargs["num_classes"],
            kwargs["num_true"],
            strategy,
        )
        assert_close(actual, expected, dtype)
        return
    if name in ("nce_loss", "sampled_softmax_loss", "compute_sampled_logits"):
        expected = getattr(ref, name)(**kwargs)
        if name == "compute_sampled_logits":
            assert_close(actual[0], expected[0], dtype)
            np.testing.assert_array_equal(actual[1], expected[1])
        else:
            assert_close(actual, expected, dtype)
        return
    loss = "nce" if name.startswith("nce") else "sampled_softmax"
    g = getattr(ref, f"{loss}_loss_and_gradients")(**kwargs, upstream=info["upstream"])
    if name.endswith("_gradients"):
        assert_close(actual.loss, g["loss"], dtype)
        assert_close(actual.inputs, g["inputs_grad"], dtype)
        np.testing.assert_array_equal(actual.weights.indices, g["weight_indices"])
        assert_close(actual.weights.values, g["weight_values"], dtype)
        assert_close(actual.biases.values, g["bias_values"], dtype)
        return
    step_loss, inputs_gradient = actual
    assert_close(step_loss, g["loss"], dtype)
    assert_close(inputs_gradient, g["inputs_grad"], dtype)
    expected_w, expected_b = w_before.astype(np.float64), b_before.astype(np.float64)
    np.add.at(expected_w, g["weight_indices"], -0.25 * g["weight_values"])
    np.add.at(expected_b, g["weight_indices"], -0.25 * g["bias_values"])
    assert_close(updated_w, expected_w.astype(dtype), dtype)
    assert_close(updated_b, expected_b.astype(dtype), dtype)


@SETTINGS
@given(problems(), st.sampled_from(FUNCTIONS))
def test_valid_problems_agree_with_the_reference(problem, name):
    kwargs, info = problem
    check_against_reference(name, kwargs, info)


# -------------------------------------------------------------- one mistake each


def other_float(dtype):
    return np.float64 if dtype == np.float32 else np.float32


def mistake_weights_dtype(kwargs, info, draw):
    bad = draw(st.sampled_from([np.int32, np.int64, np.complex64, np.float16, np.bool_]))
    kwargs["weights"] = dense(kwargs["weights"]).astype(bad)
    return TypeError, "weights"


def mistake_inputs_dtype(kwargs, info, draw):
    bad = draw(st.sampled_from([np.int64, np.complex128, np.float16]))
    kwargs["inputs"] = kwargs["inputs"].astype(bad)
    return TypeError, "inputs"


def mistake_labels_dtype(kwargs, info, draw):
    bad = draw(st.sampled_from([np.float32, np.float64, np.bool_, object]))
    # An empty float array (np.zeros((0, T)) is float64) is accepted as an empty batch.
    assume(info["batch"] > 0 or bad in (np.bool_, object))
    kwargs["labels"] = kwargs["labels"].astype(bad)
    return TypeError, "labels"


def mistake_mixed_dtype(kwargs, info, draw):
    name = draw(st.sampled_from(["weights", "biases"]))
    kwargs[name] = dense(kwargs[name]).astype(other_float(info["dtype"]))
    return TypeError, name


def mistake_dim(kwargs, info, draw):
    kwargs["inputs"] = np.zeros((info["batch"], info["dim"] + 1), info["dtype"])
    return ValueError, "inputs"


def mistake_bias_length(kwargs, info, draw):
    kwargs["biases"] = np.zeros(info["rows"] + draw(st.sampled_from([-1, 1])), info["dtype"])
    return ValueError, "biases"


def mistake_labels_shape(kwargs, info, draw):
    labels = np.asarray(kwargs["labels"])
    kwargs["labels"] = draw(
        st.sampled_from(
            [
                labels.reshape(-1),
                np.zeros((info["batch"] + 1, labels.shape[1]), np.int64),
                np.zeros((info["batch"], labels.shape[1] + 1), np.int64),
                labels[..., None],
            ]
        )
    )
    return ValueError, "labels"


def mistake_label_out_of_range(kwargs, info, draw):
    assume(info["batch"] > 0)
    labels = np.array(kwargs["labels"], dtype=np.int64)
    labels.flat[draw(st.integers(0, labels.size - 1))] = draw(
        st.sampled_from([-1, kwargs["num_classes"], info["rows"] + 5, 2**63 - 1, -(2**63)])
    )
    kwargs["labels"] = labels
    return IndexError, "labels"


def mistake_candidate_out_of_range(kwargs, info, draw):
    assume(kwargs["sampled_values"] is not None)
    ids, true_expected, sampled_expected = kwargs["sampled_values"]
    ids = ids.copy()
    ids[draw(st.integers(0, len(ids) - 1))] = draw(
        st.sampled_from([-1, kwargs["num_classes"], 2**63 - 1])
    )
    kwargs["sampled_values"] = (ids, true_expected, sampled_expected)
    return IndexError, "sampled_values"


def mistake_sampled_values_shape(kwargs, info, draw):
    """One of the sampled values flattened and one entry longer, where TensorFlow fails too:
    counts that no longer broadcast against the logits they are subtracted from (they are not
    read without ln Q), or candidates that no longer fit the counts or num_sampled's hit mask."""
    assume(kwargs["sampled_values"] is not None and kwargs["subtract_log_q"])
    assume(info["batch"] > 0)
    values = list(kwargs["sampled_values"])
    position = draw(st.integers(0, 2))
    num_candidates = len(values[0])
    if position == 0:
        # One more candidate: a single shared count would still broadcast over it.
        assume(num_candidates != 1 or kwargs["remove_accidental_hits"])
    if position == 2:
        assume(num_candidates > 0)
    values[position] = np.concatenate(
        [
            np.ravel(values[position]),
            np.ravel(values[position])[:1] if values[position].size else [1],
        ]
    )
    kwargs["sampled_values"] = tuple(values)
    return ValueError, "sampled_values"


def mistake_zero_expected_count(kwargs, info, draw):
    # In an empty batch no logit has a count subtracted (TensorFlow returns an empty loss).
    assume(kwargs["sampled_values"] is not None and kwargs["subtract_log_q"])
    assume(info["batch"] > 0)
    ids, true_expected, sampled_expected = kwargs["sampled_values"]
    sampled_expected = sampled_expected.copy()
    sampled_expected[0] = draw(st.sampled_from([0.0, -1.0, np.nan, np.inf]))
    kwargs["sampled_values"] = (ids, true_expected, sampled_expected)
    return ValueError, "sampled_values"


def mistake_count(kwargs, info, draw):
    name = draw(st.sampled_from(["num_sampled", "num_true"]))
    if name == "num_sampled":
        # With explicit candidates num_sampled only sizes the hit mask (TensorFlow reads it
        # nowhere else), so it is a mistake only for the default sampler or hit removal.
        assume(kwargs["sampled_values"] is None or kwargs["remove_accidental_hits"])
    kwargs[name] = draw(st.sampled_from([0, -1, -(2**40)]))
    return ValueError, name


def mistake_count_type(kwargs, info, draw):
    name = draw(st.sampled_from(["num_sampled", "num_true", "num_classes"]))
    kwargs[name] = draw(st.sampled_from([1.0, "3", None, True, [2]]))
    return TypeError, name


def mistake_num_classes(kwargs, info, draw):
    kwargs["num_classes"] = draw(st.sampled_from([info["rows"] + 1, 0, 2**64]))
    return ValueError, "num_classes"


def mistake_unique_range(kwargs, info, draw):
    assume(kwargs["sampled_values"] is None)
    kwargs["num_sampled"] = kwargs["num_classes"] + draw(st.integers(1, 3))
    return ValueError, "num_sampled"


def mistake_flag(kwargs, info, draw):
    name = draw(st.sampled_from(["remove_accidental_hits", "subtract_log_q"]))
    kwargs[name] = draw(st.sampled_from([0, 1, "yes", None]))
    return TypeError, name


def mistake_strategy(kwargs, info, draw):
    kwargs["partition_strategy"] = draw(st.sampled_from(["DIV", "", "modulo"]))
    return ValueError, "partition_strategy"


def mistake_shard_layout(kwargs, info, draw):
    shards = kwargs["weights"]
    assume(isinstance(shards, list) and len(shards) > 1 and len(shards[0]) > 1)
    full = dense(shards)
    first = len(shards[0]) - 1
    kwargs["weights"] = (
        [full[:first]]
        + [full[first : first + len(shards[1]) + 1]]
        + [full[first + len(shards[1]) + 1 :]][: len(shards) - 2]
    )
    return ValueError, "weights"


def mistake_seed(kwargs, info, draw):
    kwargs["seed"] = draw(st.sampled_from(["1", 1.5, True, (1, 2, 3), (2**64, 1)]))
    return (TypeError, ValueError), "seed"


MISTAKES = {
    f.__name__[len("mistake_") :]: f
    for f in [
        mistake_weights_dtype,
        mistake_inputs_dtype,
        mistake_labels_dtype,
        mistake_mixed_dtype,
        mistake_dim,
        mistake_bias_length,
        mistake_labels_shape,
        mistake_label_out_of_range,
        mistake_candidate_out_of_range,
        mistake_sampled_values_shape,
        mistake_zero_expected_count,
        mistake_count,
        mistake_count_type,
        mistake_num_classes,
        mistake_unique_range,
        mistake_flag,
        mistake_strategy,
        mistake_shard_layout,
        mistake_seed,
    ]
}
# The full losses take only weights, biases, labels, inputs, num_classes, num_true and
# partition_strategy.
FULL_MISTAKES = {
    "weights_dtype",
    "inputs_dtype",
    "labels_dtype",
    "mixed_dtype",
    "dim",
    "bias_length",
    "labels_shape",
    "label_out_of_range",
    "num_classes",
    "strategy",
    "shard_layout",
}


def arrays_in(value) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (list, tuple)):
        return [a for item in value for a in arrays_in(item)]
    return []


@SETTINGS
@given(problems(), st.sampled_from(FUNCTIONS), st.sampled_from(sorted(MISTAKES)), st.data())
def test_one_mistake_gets_the_documented_exception_and_changes_nothing(
    problem, name, mistake, data
):
    kwargs, info = problem
    if name.startswith("full_"):
        assume(mistake in FULL_MISTAKES)
    if mistake == "labels_shape" and name.startswith("full_"):
        assume(info["batch"] > 0)
    exception, argument = MISTAKES[mistake](kwargs, info, data.draw)
    before = [a.tobytes() for a in arrays_in(list(kwargs.values()))]
    fresh_caches()
    with pytest.raises(exception) as raised:
        call_rustnce(name, kwargs, info)
    assert argument in str(raised.value), (mistake, str(raised.value))
    assert [a.tobytes() for a in arrays_in(list(kwargs.values()))] == before


# ------------------------------------------------------------------------- junk


JUNK = [
    None,
    "x",
    b"bytes",
    1.5,
    float("nan"),
    True,
    -1,
    0,
    2**70,
    -(2**70),
    [],
    [[]],
    [1, 2],
    [[1.5, 2]],
    [[1], [2, 3]],
    (1, 2, 3),
    {"a": 1},
    object(),
    np.array([]),
    np.zeros((0, 0)),
    np.zeros((2, 3), complex),
    np.array([[np.nan]]),
    np.zeros((2, 3, 4), np.float32),
    np.int64(3),
    np.float32(2),
    np.array(5),
    np.zeros(3, dtype=[("a", int)]),
    np.array(["a", "b"]),
    np.array([[1, 2]], dtype="datetime64[s]"),
    np.ones((2, 1), np.uint64) * np.uint64(2**64 - 1),
    np.ma.masked_array([1.0, 2.0], mask=[0, 1]),
    np.broadcast_to(np.float32(1), (4, 2)),
]

BASE_ARGUMENTS = dict(
    weights=np.ones((6, 2), np.float32),
    biases=np.zeros(6, np.float32),
    labels=np.array([[1], [2]]),
    inputs=np.ones((2, 2), np.float32),
    num_sampled=3,
    num_classes=6,
)

PUBLIC_CALLS = {
    "nce_loss": (rustnce.nce_loss, BASE_ARGUMENTS),
    "sampled_softmax_loss": (rustnce.sampled_softmax_loss, BASE_ARGUMENTS),
    "compute_sampled_logits": (rustnce.compute_sampled_logits, BASE_ARGUMENTS),
    "nce_loss_and_gradients": (rustnce.nce_loss_and_gradients, BASE_ARGUMENTS),
    "sampled_softmax_sgd_step": (
        rustnce.sampled_softmax_sgd_step,
        dict(BASE_ARGUMENTS, learning_rate=0.1),
    ),
    "full_softmax_loss": (
        rustnce.full_softmax_loss,
        {k: v for k, v in BASE_ARGUMENTS.items() if k != "num_sampled"},
    ),
    "embedding_lookup": (
        rustnce.embedding_lookup,
        dict(params=np.ones((6, 2), np.float32), ids=np.array([1, 5])),
    ),
    "compute_accidental_hits": (
        rustnce.compute_accidental_hits,
        dict(true_classes=np.array([[1], [2]]), sampled_candidates=[2, 3], num_true=1),
    ),
    "uniform_candidate_sampler": (
        rustnce.uniform_candidate_sampler,
        dict(
            true_classes=np.array([[1], [2]]),
            num_true=1,
            num_sampled=3,
            unique=True,
            range_max=6,
            seed=1,
        ),
    ),
    "learned_unigram_candidate_sampler": (
        rustnce.learned_unigram_candidate_sampler,
        dict(
            true_classes=np.array([[1], [2]]), num_true=1, num_sampled=3, unique=False, range_max=6
        ),
    ),
    "fixed_unigram_candidate_sampler": (
        rustnce.fixed_unigram_candidate_sampler,
        dict(
            true_classes=np.array([[1], [2]]),
            num_true=1,
            num_sampled=3,
            unique=True,
            range_max=4,
            unigrams=[1.0, 2.0, 3.0, 4.0],
            distortion=0.75,
        ),
    ),
    "all_candidate_sampler": (
        rustnce.all_candidate_sampler,
        dict(true_classes=np.array([[1], [2]]), num_true=1, num_sampled=3, unique=True),
    ),
    "FixedUnigramSampler": (
        rustnce.FixedUnigramSampler,
        dict(range_max=4, unigrams=[1.0, 2.0, 3.0, 4.0], num_reserved_ids=0, num_shards=1, shard=0),
    ),
    "LogUniformSampler.sample": (
        lambda seed, **kw: rustnce.LogUniformSampler(10, seed=seed).sample(**kw),
        dict(seed=3, true_classes=np.array([[1], [2]]), num_true=1, num_sampled=3, unique=True),
    ),
    "UniformSampler.probability": (
        lambda range_max, ids: rustnce.UniformSampler(range_max).probability(ids),
        dict(range_max=5, ids=[0, 4, 7]),
    ),
}


@settings(max_examples=3 * EXAMPLES, deadline=None)
@given(
    st.sampled_from(sorted(PUBLIC_CALLS)),
    st.data(),
)
def test_junk_arguments_get_a_documented_exception_or_a_result(name, data):
    function, base = PUBLIC_CALLS[name]
    kwargs = dict(base)
    names = data.draw(st.sets(st.sampled_from(sorted(kwargs)), min_size=1, max_size=3))
    for argument in names:
        kwargs[argument] = data.draw(st.sampled_from(JUNK))
    fresh_caches()
    try:
        function(**kwargs)
    except DOCUMENTED as error:
        assert str(error), "an exception without a message"
    # Anything else (AttributeError, OverflowError, KeyError, SystemError, a PanicException)
    # propagates and fails the test.


# ------------------------------------------- vocabulary parser and sampler constructors


def parse_like_tensorflow(data: bytes) -> list[float] | int:
    """The documented vocabulary format: the count is the last comma-separated field of every
    non-empty line (after removing "\\n" and a trailing "\\r"); it must parse as a finite
    non-negative number. Returns the counts, or the 1-based line of the first bad line."""
    counts = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line:
            continue
        if len(raw) > (1 << 20):
            return number
        field = line.rsplit(b",", 1)[-1]
        try:
            text = field.decode("utf-8").strip()
            if not text or "_" in text or text != text.strip(" \t\n\r\x0b\x0c"):
                return number
            value = float(text)
        except (UnicodeDecodeError, ValueError):
            return number
        value32 = np.float32(value) if abs(value) < 3.5e38 or not math.isfinite(value) else np.inf
        if not (np.isfinite(value32) and value32 >= 0):
            return number
        counts.append(float(value32))
    return counts


vocab_lines = st.lists(
    st.one_of(
        st.tuples(
            st.text(alphabet=st.characters(blacklist_characters="\n\r"), max_size=8),
            st.sampled_from(
                [
                    "1",
                    "0",
                    "2.5",
                    "1e3",
                    "-1",
                    "nan",
                    "inf",
                    "x",
                    "",
                    " 7 ",
                    "1e39",
                    "+4",
                    ".5",
                    "0x10",
                    "1_0",
                    "3.0e-2",
                ]
            ),
        ).map(lambda t: f"{t[0]},{t[1]}".encode("utf-8", "surrogatepass")),
        st.binary(max_size=12).filter(lambda b: b"\n" not in b),
        st.just(b""),
    ),
    max_size=12,
)


@SETTINGS
@given(vocab_lines, st.sampled_from([b"\n", b"\r\n"]), st.booleans())
def test_fuzzed_vocabulary_files_parse_as_documented(lines, newline, final_newline):
    data = newline.join(lines) + (newline if final_newline else b"")
    expected = parse_like_tensorflow(data)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "vocab.csv")
        with open(path, "wb") as handle:
            handle.write(data)
        size = len(expected) if isinstance(expected, list) else 1
        try:
            sampler = rustnce.FixedUnigramSampler(max(size, 1), vocab_file=path, seed=(1, 1))
        except ValueError as error:
            message = str(error)
            if isinstance(expected, int):
                assert f"line {expected}:" in message and path in message, message
            else:
                # A valid file whose counts are all zero, or that has no lines at all.
                assert sum(expected) == 0 or not expected, message
            return
        assert isinstance(expected, list), f"line {expected} should have been refused"
        weights = np.array(expected, np.float32)
        np.testing.assert_array_equal(
            sampler.probability(np.arange(len(expected))), weights / weights.sum(dtype=np.float32)
        )


@SETTINGS
@given(
    range_max=st.one_of(st.integers(-3, 12), st.sampled_from([2**31 - 1, 2**31, 2**63 - 1])),
    counts=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=8),
    distortion=st.one_of(st.floats(-2, 2), st.sampled_from([0.0, float("nan"), float("inf")])),
    num_reserved_ids=st.one_of(st.integers(-2, 6), st.just(2**62)),
    num_shards=st.one_of(st.integers(-1, 4), st.just(2**62)),
    shard=st.integers(-1, 4),
    seed=st.one_of(st.none(), st.integers(-(2**70), 2**70)),
)
def test_fuzzed_fixed_unigram_constructors_build_or_refuse(
    range_max, counts, distortion, num_reserved_ids, num_shards, shard, seed
):
    kwargs = dict(
        distortion=distortion,
        num_reserved_ids=num_reserved_ids,
        num_shards=num_shards,
        shard=shard,
        unigrams=counts,
        seed=seed,
    )
    try:
        rust = rustnce.FixedUnigramSampler(range_max, **kwargs)
    except (ValueError, TypeError, MemoryError) as error:
        assert any(
            name in str(error)
            for name in (
                "range_max",
                "unigrams",
                "distortion",
                "num_reserved_ids",
                "num_shards",
                "shard",
                "vocab_file",
                "seed",
            )
        ), str(error)
        return
    ids = np.arange(-1, range_max + 1)
    probability = rust.probability(ids)
    true_classes = np.zeros((1, 1), np.int64)
    out = rust.sample(true_classes, 1, 3, False)[0]
    assert ((out >= 0) & (out < range_max)).all()
    # Built: the reference builds the same table (it checks less, so it must build too; it
    # enumerates the reserved ids, so only where they are few).
    if num_reserved_ids < 10**6:
        reference = ref.FixedUnigramSampler(range_max, **kwargs)
        np.testing.assert_array_equal(
            probability, np.array([reference.probability(i) for i in ids], np.float32)
        )
        assert (reference.weights[out] > 0).all()
    # Unique sampling needs as many draws as it takes to meet the rarest id: only where
    # none is rare.
    positive = probability[probability > 0]
    if len(positive) and positive.min() > 1e-3:
        drawable = min(len(positive), 3)
        assert len(set(rust.sample(true_classes, 1, drawable, True)[0].tolist())) == drawable


@SETTINGS
@given(
    kind=st.sampled_from(["uniform", "log_uniform", "learned_unigram", "all"]),
    range_max=st.one_of(st.integers(-2, 50), st.sampled_from([2**31 - 2, 2**31 - 1, 2**63 - 1])),
    num_sampled=st.one_of(st.integers(-1, 60), st.sampled_from([2**31, 10**12])),
    num_true=st.integers(-1, 3),
    batch=st.integers(0, 3),
    unique=st.booleans(),
    largest=st.integers(-3, 60),
)
def test_fuzzed_samplers_sample_or_refuse(
    kind, range_max, num_sampled, num_true, batch, unique, largest
):
    if kind == "learned_unigram" and range_max > 10**6:
        range_max = 2**31 - 1  # refused; smaller huge tables would take gigabytes
    true_classes = np.full((batch, max(num_true, 1)), largest)
    try:
        if kind == "all":
            out = rustnce.all_candidate_sampler(true_classes, num_true, num_sampled, unique)
            range_max = num_sampled
        else:
            function = getattr(rustnce, f"{kind}_candidate_sampler")
            out = function(true_classes, num_true, num_sampled, unique, range_max, seed=5)
    except (ValueError, IndexError, MemoryError) as error:
        assert any(
            name in str(error)
            for name in ("range_max", "num_sampled", "num_true", "true_classes", "allocate")
        ), str(error)
        return
    ids, true_expected, sampled_expected = out
    assert ids.shape == (num_sampled,) and ((ids >= 0) & (ids < range_max)).all()
    if unique:
        assert len(set(ids.tolist())) == num_sampled
    assert true_expected.shape == true_classes.shape and sampled_expected.shape == ids.shape
    assert np.isfinite(true_expected).all() and np.isfinite(sampled_expected).all()
