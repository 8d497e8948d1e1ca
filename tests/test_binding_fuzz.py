"""A property test of the whole Python surface, run for a bounded number of examples.

Each example builds a valid problem of random size (zero batch, dim or sample included), then
applies random mutations to it: another layout for some array (reversed, strided, Fortran
order, broadcast, a foreign byte order), another dtype, aliasing views of one buffer, ids out of
range, shards. Every public function is called on it; each call either returns or raises an
ordinary Python exception (TypeError, ValueError, IndexError, MemoryError, OverflowError). A
PanicException (a BaseException) or a crash fails the test. The final assertion checks that
the valid problems were computed, so the fuzzing reaches the Rust core rather than stopping at
the first argument check.
"""

from __future__ import annotations

import collections

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rustnce

ORDINARY = (TypeError, ValueError, IndexError, MemoryError, OverflowError)

LAYOUTS = [
    "reversed",
    "strided",
    "fortran",
    "broadcast",
    "big-endian",
    "float64",
    "float16",
    "int32",
    "list",
    "empty-rows",
    "zero-strides",
]

OUTCOMES: collections.Counter = collections.Counter()


def relayout(array, layout):
    if layout == "reversed" and array.ndim:
        return array[::-1]
    if layout == "strided" and array.ndim:
        return np.repeat(array, 2, axis=0)[::2]
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "broadcast" and array.ndim and array.shape[0]:
        return np.broadcast_to(array[:1], array.shape)
    if layout == "big-endian":
        return array.astype(array.dtype.newbyteorder(">"))
    if layout in ("float64", "float16", "int32"):
        return array.astype(layout)
    if layout == "list":
        return array.tolist()
    if layout == "empty-rows" and array.ndim:
        return array[:0]
    if layout == "zero-strides" and array.ndim:
        return np.lib.stride_tricks.as_strided(array, strides=(0,) * array.ndim)
    return array


def call(name, function, *args, **kwargs):
    try:
        function(*args, **kwargs)
        OUTCOMES[name, "ok"] += 1
    except ORDINARY as error:
        OUTCOMES[name, type(error).__name__] += 1


FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@st.composite
def problems(draw):
    classes = draw(st.integers(1, 40))
    dim = draw(st.integers(0, 20))
    batch = draw(st.integers(0, 12))
    num_true = draw(st.integers(1, 3))
    num_sampled = draw(st.integers(1, 12))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**20)))
    p = dict(
        weights=(rng.standard_normal((classes, dim)) * 0.3).astype(dtype),
        biases=(rng.standard_normal(classes) * 0.3).astype(dtype),
        labels=rng.integers(0, classes, (batch, num_true)),
        inputs=rng.standard_normal((batch, dim)).astype(dtype),
        num_sampled=num_sampled,
        num_classes=classes,
        num_true=num_true,
    )
    unique = num_sampled <= classes
    p["sampled_values"] = (
        rustnce.UniformSampler(classes, seed=1).sample(p["labels"], num_true, num_sampled, unique)
        if draw(st.booleans()) and batch
        else None
    )
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(["weights", "biases", "labels", "inputs"]))
        p[key] = relayout(np.asarray(p[key]), draw(st.sampled_from(LAYOUTS)))
    mutation = draw(st.sampled_from(["none", "none", "alias", "out-of-range", "shards", "count"]))
    if mutation == "alias" and batch <= classes and dim:
        p["inputs"] = p["weights"][:batch] if np.ndim(p["weights"]) == 2 else p["inputs"]
    elif mutation == "out-of-range" and np.size(p["labels"]):
        labels = np.array(p["labels"], dtype=np.int64)
        labels.flat[0] = draw(st.sampled_from([-1, classes, 2**40]))
        p["labels"] = labels
    elif mutation == "shards" and classes >= 3 and isinstance(p["weights"], np.ndarray):
        cut = (classes + 1) // 2
        p["weights"] = [p["weights"][:cut], p["weights"][cut:]]
        p["biases"] = [p["biases"][:cut], p["biases"][cut:]]
        p["partition_strategy"] = draw(st.sampled_from(["div", "mod"]))
    elif mutation == "count":
        key = draw(st.sampled_from(["num_sampled", "num_classes", "num_true"]))
        p[key] = draw(st.sampled_from([0, -1, 2**31, 2**63 - 1, 1.5]))
    return p


@FUZZ
@given(problem=problems(), hits=st.booleans(), rate=st.sampled_from([0.1, 0.0, 1e39, np.nan]))
def test_losses_gradients_and_steps_never_panic(problem, hits, rate):
    common = dict(problem, remove_accidental_hits=hits)
    for function in (
        rustnce.nce_loss,
        rustnce.sampled_softmax_loss,
        rustnce.compute_sampled_logits,
        rustnce.nce_loss_and_gradients,
        rustnce.sampled_softmax_loss_and_gradients,
    ):
        call(function.__name__, function, **common)
    full = {k: problem[k] for k in ("weights", "biases", "labels", "inputs", "num_classes")}
    call("full_softmax_loss", rustnce.full_softmax_loss, **full, num_true=problem["num_true"])
    for step in (rustnce.nce_sgd_step, rustnce.sampled_softmax_sgd_step):
        call(step.__name__, step, **common, learning_rate=rate)
    try:
        gradients = rustnce.nce_loss_and_gradients(**common)
    except ORDINARY:
        return
    target = np.zeros_like(
        np.asarray(problem["weights"])
        if not isinstance(problem["weights"], list)
        else np.concatenate(problem["weights"])
    )
    call("accumulate", gradients.accumulate, target, scale=rate)
    call("merged", gradients.merged)
    call("weight_shards", lambda: gradients.weight_shards)


@st.composite
def skipgram_problems(draw):
    vocabulary = draw(st.integers(1, 40))
    dim = draw(st.integers(0, 20))
    pairs = draw(st.integers(0, 30))
    negatives = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**20)))
    tables = [
        (rng.standard_normal((vocabulary, dim)) * 0.1).astype(np.float32),
        (rng.standard_normal((vocabulary, dim)) * 0.1).astype(np.float32),
        np.zeros(vocabulary, np.float32),
    ]
    centers = rng.integers(0, vocabulary, pairs)
    contexts = rng.integers(0, vocabulary, pairs)
    sampled = list(
        rustnce.LogUniformSampler(vocabulary, seed=2).sample(contexts[:, None], 1, negatives, False)
    )
    arrays = tables + [centers, contexts] + sampled
    for _ in range(draw(st.integers(0, 2))):
        k = draw(st.integers(0, len(arrays) - 1))
        arrays[k] = relayout(np.asarray(arrays[k]), draw(st.sampled_from(LAYOUTS)))
    alias = draw(st.sampled_from(["none", "none", "same", "shifted", "biases-in-output"]))
    if alias in ("same", "shifted") and vocabulary > 1:
        buffer = bytearray(8 * vocabulary * max(dim, 1))
        count = vocabulary * dim
        offset = 4 * dim if alias == "shifted" else 0
        arrays[0] = np.frombuffer(memoryview(buffer), np.float32, count).reshape(vocabulary, dim)
        arrays[1] = np.frombuffer(memoryview(buffer), np.float32, count, offset).reshape(
            vocabulary, dim
        )
    elif alias == "biases-in-output" and dim:
        arrays[2] = (
            np.asarray(arrays[1]).reshape(-1)[:vocabulary] if np.ndim(arrays[1]) == 2 else arrays[2]
        )
    return arrays


@FUZZ
@given(
    arrays=skipgram_problems(),
    rate=st.sampled_from([0.05, 1e39, 1e-320, -1.0]),
    loss=st.sampled_from(["nce", "sampled_softmax", "neg"]),
)
def test_skipgram_step_never_panics(arrays, rate, loss):
    tables, (centers, contexts), sampled = arrays[:3], arrays[3:5], tuple(arrays[5:])
    call(
        "skipgram_sgd_step",
        rustnce.skipgram_sgd_step,
        *tables,
        centers,
        contexts,
        sampled,
        rate,
        loss,
    )


@FUZZ
@given(
    batch=st.integers(0, 8),
    num_true=st.integers(1, 3),
    num_sampled=st.integers(1, 50),
    range_max=st.integers(1, 60),
    unique=st.booleans(),
    seed=st.one_of(st.none(), st.integers(0, 9), st.tuples(st.integers(0, 9), st.integers(0, 9))),
    layout=st.sampled_from(["none", *LAYOUTS]),
    distortion=st.sampled_from([0.0, 0.75, 1.0, 1e39, -1.0]),
)
def test_samplers_lookups_and_hits_never_panic(
    batch, num_true, num_sampled, range_max, unique, seed, layout, distortion
):
    rng = np.random.default_rng(batch * 100 + range_max)
    true_classes = relayout(rng.integers(0, range_max, (batch, num_true)), layout)
    args = (true_classes, num_true, num_sampled, unique, range_max)
    for function in (
        rustnce.uniform_candidate_sampler,
        rustnce.log_uniform_candidate_sampler,
        rustnce.learned_unigram_candidate_sampler,
    ):
        call(function.__name__, function, *args, seed=seed)
    call(
        "all_candidate_sampler",
        rustnce.all_candidate_sampler,
        true_classes,
        num_true,
        num_sampled,
        unique,
        seed=seed,
    )
    unigrams = relayout(rng.random(range_max) * 10, layout if layout != "list" else "none")
    call(
        "fixed_unigram_candidate_sampler",
        rustnce.fixed_unigram_candidate_sampler,
        *args,
        unigrams=unigrams,
        distortion=distortion,
        seed=seed,
    )
    candidates = relayout(rng.integers(0, range_max, num_sampled), layout)
    call(
        "compute_accidental_hits",
        rustnce.compute_accidental_hits,
        true_classes,
        candidates,
        num_true,
    )
    params = relayout(rng.standard_normal((range_max, 3)).astype(np.float32), layout)
    call("embedding_lookup", rustnce.embedding_lookup, params, true_classes)
    sampler = rustnce.LogUniformSampler(range_max, seed=seed)
    call("probability", sampler.probability, true_classes)
    call("sample", sampler.sample, true_classes, num_true, num_sampled, unique)


def test_the_fuzzing_reached_the_core():
    """Runs last in this file: most functions computed some of the problems they were given."""
    succeeded = {name for (name, outcome) in OUTCOMES if outcome == "ok"}
    expected = {
        "nce_loss",
        "sampled_softmax_loss",
        "nce_loss_and_gradients",
        "nce_sgd_step",
        "accumulate",
        "skipgram_sgd_step",
        "log_uniform_candidate_sampler",
        "fixed_unigram_candidate_sampler",
        "embedding_lookup",
        "compute_accidental_hits",
        "sample",
    }
    assert expected <= succeeded, sorted(expected - succeeded)
