"""Parity with TensorFlow 2.21, replayed from a recording.

``tests/tf_reference/tf_2_21_cases.json`` holds TensorFlow's inputs and outputs, written by
``tests/tf_reference/record_tf.py`` (see its docstring to rerun it; TensorFlow is not needed
here). Every test runs against both implementations of ``docs/api.md``: ``rustnce`` (the Rust
extension) and ``rustnce.reference`` (the NumPy reference). Both must import.

Tolerances: losses, logits and targets rtol 1e-5 / atol 1e-6 (float32) or rtol 1e-9 / atol
1e-12 (float64); the -FLT_MAX hit cells are covered by the relative tolerance. Sampled ids,
expected counts (float32), accidental hits and embedding lookups are compared bit-exactly.
"""

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

DATA_PATH = Path(__file__).parent / "tf_reference" / "tf_2_21_cases.json"
DATA = json.loads(DATA_PATH.read_text())

IMPLEMENTATIONS = ["rustnce", "rustnce.reference"]

SAMPLER_FUNCTIONS = {
    "uniform": "uniform_candidate_sampler",
    "log_uniform": "log_uniform_candidate_sampler",
    "learned_unigram": "learned_unigram_candidate_sampler",
    "fixed_unigram": "fixed_unigram_candidate_sampler",
    "all_candidate": "all_candidate_sampler",
}
SAMPLER_CLASSES = {
    "uniform": "UniformSampler",
    "log_uniform": "LogUniformSampler",
    "learned_unigram": "LearnedUnigramSampler",
    "fixed_unigram": "FixedUnigramSampler",
    "all_candidate": "AllCandidateSampler",
}


# ----------------------------------------------------------------------------- helpers


def cases(section, keep=lambda case: True):
    return [pytest.param(c, id=c["id"]) for c in DATA[section] if keep(c)]


def arr(x, dtype=None):
    """JSON nested lists -> array; "nan"/"inf"/"-inf" strings become floats."""

    def decode(v):
        if isinstance(v, list):
            return [decode(e) for e in v]
        return float(v) if isinstance(v, str) else v

    return np.array(decode(x), dtype=dtype)


def tolerances(dtype):
    return (
        dict(rtol=1e-5, atol=1e-6) if np.dtype(dtype) == np.float32 else dict(rtol=1e-9, atol=1e-12)
    )


def assert_close(actual, expected, dtype, shape):
    actual = np.asarray(actual)
    assert actual.dtype == np.dtype(dtype)
    assert actual.shape == tuple(shape)
    np.testing.assert_allclose(
        actual, arr(expected, np.float64).reshape(shape), **tolerances(dtype)
    )


@pytest.fixture(params=IMPLEMENTATIONS)
def nce(request):
    """The implementation under test, with a fresh module-level sampler cache."""
    module = importlib.import_module(request.param)
    module.reset_sampler_cache()
    return module


# ----------------------------------------------------------------------------- losses


def params(case, key):
    if case[key + "_sharded"]:
        return [arr(p, case["dtype"]) for p in case[key]]
    return arr(case[key], case["dtype"])


def loss_args(case):
    dt, B, T = case["dtype"], case["batch"], case["num_true"]
    sv = case["sampled_values"]
    return dict(
        weights=params(case, "weights"),
        biases=params(case, "biases"),
        labels=arr(case["labels"], case["labels_dtype"]).reshape(B, T),
        inputs=arr(case["inputs"], dt).reshape(B, case["dim"]),
        num_sampled=case["num_sampled"],
        num_classes=case["num_classes"],
        num_true=T,
        sampled_values=(
            arr(sv["sampled_candidates"], np.int64),
            arr(sv["true_expected_count"], dt).reshape(B, T),
            arr(sv["sampled_expected_count"], dt),
        ),
        remove_accidental_hits=case["remove_accidental_hits"],
        partition_strategy=case["partition_strategy"],
    )


def logits_cases():
    return [
        pytest.param(c, key, id=f"{c['id']}-{key}")
        for c in DATA["losses"]
        for key in c["expected"]["compute_sampled_logits"]
    ]


@pytest.mark.parametrize("case", cases("losses"))
def test_nce_loss_matches_tf_with_explicit_sampled_values(nce, case):
    loss = nce.nce_loss(**loss_args(case))
    assert_close(loss, case["expected"]["nce_loss"], case["dtype"], [case["batch"]])


@pytest.mark.parametrize("case", cases("losses"))
def test_sampled_softmax_loss_matches_tf_with_explicit_sampled_values(nce, case):
    loss = nce.sampled_softmax_loss(**loss_args(case))
    assert_close(loss, case["expected"]["sampled_softmax_loss"], case["dtype"], [case["batch"]])


@pytest.mark.parametrize("case,key", logits_cases())
def test_compute_sampled_logits_matches_tf(nce, case, key):
    expected = case["expected"]["compute_sampled_logits"][key]
    subtract_log_q = key == "subtract_log_q_true"
    logits, targets = nce.compute_sampled_logits(**loss_args(case), subtract_log_q=subtract_log_q)
    shape = [case["batch"], case["num_true"] + case["num_sampled"]]
    assert_close(logits, expected["logits"], case["dtype"], shape)
    assert_close(targets, expected["labels"], case["dtype"], shape)


@pytest.mark.parametrize(
    "case",
    cases("losses", lambda c: "subtract_log_q_false" in c["expected"]["compute_sampled_logits"]),
)
def test_losses_without_log_q_match_tf_cross_entropy_of_raw_logits(nce, case):
    expected = case["expected"]["compute_sampled_logits"]["subtract_log_q_false"]
    for name in ("nce_loss", "sampled_softmax_loss"):
        loss = getattr(nce, name)(**loss_args(case), subtract_log_q=False)
        assert_close(loss, expected[name], case["dtype"], [case["batch"]])


# --------------------------------------------------------------------------- samplers


def seed_of(case):
    seed = case["seed"]
    return seed if isinstance(seed, int) else tuple(seed)


def fixed_unigram_kwargs(case, tmp_path):
    kwargs = dict(case.get("fixed_unigram", {}))
    if "vocab_file_contents" in kwargs:
        path = tmp_path / f"{case['id']}.vocab"
        path.write_bytes(kwargs.pop("vocab_file_contents").encode())
        kwargs["vocab_file"] = str(path)
    return kwargs


def new_sampler(nce, case, tmp_path):
    cls = getattr(nce, SAMPLER_CLASSES[case["sampler"]])
    if case["sampler"] == "all_candidate":
        return cls(seed=seed_of(case))
    return cls(case["range_max"], seed=seed_of(case), **fixed_unigram_kwargs(case, tmp_path))


def call_function(nce, case, true_classes, tmp_path):
    fn = getattr(nce, SAMPLER_FUNCTIONS[case["sampler"]])
    args = [true_classes, case["num_true"], case["num_sampled"], case["unique"]]
    if case["sampler"] != "all_candidate":
        args.append(case["range_max"])
    return fn(*args, seed=seed_of(case), **fixed_unigram_kwargs(case, tmp_path))


def true_classes_of(case, call):
    return arr(call["true_classes"], np.int64).reshape(-1, case["num_true"])


def assert_same_triple(result, case, call):
    sampled, true_ec, sampled_ec = (np.asarray(r) for r in result)
    assert (
        sampled.dtype == np.int64 and true_ec.dtype == np.float32 and sampled_ec.dtype == np.float32
    )
    np.testing.assert_array_equal(sampled, arr(call["sampled_candidates"], np.int64))
    expected_true = arr(call["true_expected_count"], np.float32).reshape(
        true_classes_of(case, call).shape
    )
    assert true_ec.shape == expected_true.shape
    np.testing.assert_array_equal(true_ec, expected_true)
    np.testing.assert_array_equal(sampled_ec, arr(call["sampled_expected_count"], np.float32))


def check_successive_calls(nce, case, via, tmp_path):
    """TF's calls 1..3 with identical attributes continue one random stream."""
    sampler = new_sampler(nce, case, tmp_path) if via == "object" else None
    for call in case["calls"]:
        true_classes = true_classes_of(case, call)
        if via == "object":
            result = sampler.sample(
                true_classes, case["num_true"], case["num_sampled"], case["unique"]
            )
        else:
            result = call_function(nce, case, true_classes, tmp_path)
        assert_same_triple(result, case, call)


def op_seed_cases(kind):
    return cases("samplers", lambda c: c["sampler"] == kind and "global_seed" not in c)


VIA = pytest.mark.parametrize("via", ["object", "function"])


@VIA
@pytest.mark.parametrize("case", op_seed_cases("uniform"))
def test_uniform_successive_calls_continue_tf_stream(nce, case, via, tmp_path):
    check_successive_calls(nce, case, via, tmp_path)


@VIA
@pytest.mark.parametrize("case", op_seed_cases("log_uniform"))
def test_log_uniform_successive_calls_continue_tf_stream(nce, case, via, tmp_path):
    check_successive_calls(nce, case, via, tmp_path)


@VIA
@pytest.mark.parametrize("case", op_seed_cases("learned_unigram"))
def test_learned_unigram_state_and_stream_persist_across_calls(nce, case, via, tmp_path):
    check_successive_calls(nce, case, via, tmp_path)


@VIA
@pytest.mark.parametrize("case", op_seed_cases("fixed_unigram"))
def test_fixed_unigram_successive_calls_continue_tf_stream(nce, case, via, tmp_path):
    check_successive_calls(nce, case, via, tmp_path)


@VIA
@pytest.mark.parametrize("case", op_seed_cases("all_candidate"))
def test_all_candidate_returns_range_with_unit_expected_counts(nce, case, via, tmp_path):
    check_successive_calls(nce, case, via, tmp_path)


@VIA
@pytest.mark.parametrize("case", cases("samplers", lambda c: "global_seed" in c))
def test_global_and_op_seed_attribute_pairs_match_tf(nce, case, via, tmp_path):
    check_successive_calls(nce, case, via, tmp_path)


@VIA
@pytest.mark.parametrize("case", cases("fixed_unigram"))
def test_fixed_unigram_table_distortion_reserved_ids_and_shards_match_tf(nce, case, via, tmp_path):
    check_successive_calls(nce, case, via, tmp_path)


def test_sampler_functions_keep_one_stream_per_attribute_set(nce, tmp_path):
    """Interleaved calls: each attribute set continues its own stream, like TF's kernel cache."""
    recorded = [c for c in DATA["samplers"] if "global_seed" not in c]
    for k in range(3):
        for case in recorded:
            call = case["calls"][k]
            result = call_function(nce, case, true_classes_of(case, call), tmp_path)
            assert_same_triple(result, case, call)


def test_reset_sampler_cache_restarts_tf_stream(nce, tmp_path):
    case = next(c for c in DATA["samplers"] if c.get("note") == "spec 13.4")
    first = case["calls"][0]
    for _ in range(2):
        assert_same_triple(
            call_function(nce, case, true_classes_of(case, first), tmp_path), case, first
        )
        nce.reset_sampler_cache()


# ----------------------------------------------------------------------- other ops


@pytest.mark.parametrize("case", cases("accidental_hits"))
def test_compute_accidental_hits_matches_tf(nce, case):
    true_classes = arr(case["true_classes"], np.int64).reshape(-1, case["num_true"])
    sampled = arr(case["sampled_candidates"], np.int64)
    indices, ids, weights = (
        np.asarray(r) for r in nce.compute_accidental_hits(true_classes, sampled, case["num_true"])
    )
    assert indices.dtype == np.int32 and ids.dtype == np.int64 and weights.dtype == np.float32
    np.testing.assert_array_equal(indices, arr(case["expected"]["indices"], np.int32))
    np.testing.assert_array_equal(ids, arr(case["expected"]["ids"], np.int64))
    np.testing.assert_array_equal(weights, arr(case["expected"]["weights"], np.float32))


@pytest.mark.parametrize("case", cases("embedding_lookup"))
def test_embedding_lookup_div_and_mod_shards_match_tf(nce, case):
    dt = case["dtype"]
    if case["params_sharded"]:
        shards = [arr(p, dt) for p in case["params"]]
        row_shape = shards[0].shape[1:]
    else:
        shards = arr(case["params"], dt)
        row_shape = shards.shape[1:]
    ids = arr(case["ids"], np.int64).reshape(case["ids_shape"])
    out = np.asarray(
        nce.embedding_lookup(shards, ids, partition_strategy=case["partition_strategy"])
    )
    expected = arr(case["expected"], dt).reshape(tuple(case["ids_shape"]) + row_shape)
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------ default sampler, full losses


def default_loss_args(case):
    B, T = case["batch"], case["num_true"]
    return dict(
        weights=arr(case["weights"], np.float32),
        biases=arr(case["biases"], np.float32),
        labels=arr(case["labels"], np.int64).reshape(B, T),
        inputs=arr(case["inputs"], np.float32).reshape(B, case["dim"]),
        num_sampled=case["num_sampled"],
        num_classes=case["num_classes"],
        num_true=T,
    )


@pytest.mark.parametrize("case", cases("default_sampler_losses"))
def test_default_sampler_sampled_softmax_loss_continues_tf_stream(nce, case):
    args = default_loss_args(case)
    for expected in case["sampled_softmax_loss_calls"]:
        loss = nce.sampled_softmax_loss(**args, seed=case["seed"])
        assert_close(loss, expected, np.float32, [case["batch"]])


@pytest.mark.parametrize("case", cases("default_sampler_losses"))
def test_default_sampler_is_seeded_log_uniform_unique(nce, case):
    args = default_loss_args(case)
    for call in case["log_uniform_calls"]:
        result = nce.log_uniform_candidate_sampler(
            args["labels"],
            case["num_true"],
            case["num_sampled"],
            True,
            case["num_classes"],
            seed=case["seed"],
        )
        assert_same_triple(result, case, dict(call, true_classes=case["labels"]))


@pytest.mark.parametrize("case", cases("full_losses"))
def test_full_losses_match_tf_evaluation_recipe(nce, case):
    args = dict(
        weights=params(case, "weights"),
        biases=params(case, "biases"),
        labels=arr(case["labels"], np.int64).reshape(case["batch"], 1),
        inputs=arr(case["inputs"], case["dtype"]).reshape(case["batch"], case["dim"]),
        num_classes=case["num_classes"],
        num_true=1,
        partition_strategy=case["partition_strategy"],
    )
    for name in ("full_sigmoid_loss", "full_softmax_loss"):
        loss = getattr(nce, name)(**args)
        assert_close(loss, case["expected"][name], case["dtype"], [case["batch"]])


def test_recording_is_from_tensorflow_2_21():
    assert DATA["tf_version"] == "2.21.0"
