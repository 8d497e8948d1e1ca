"""Gradient parity with TensorFlow 2.21, replayed from ``tests/tf_reference/tf_2_21_cases.json``.

For every recorded ``losses`` case, ``record_tf.py`` recorded, for ``nce_loss`` and
``sampled_softmax_loss``, the gradients of ``sum(loss)`` ("sum") and of ``sum(g * loss)``
("weighted_sum", ``g`` = the case's ``upstream_g``) with respect to the weights and biases
(``IndexedSlices``: one per shard for a list of shards, with shard-local indices) and to the
inputs (dense). Both ``rustnce`` and ``rustnce.reference`` must reproduce them: indices and
dense shapes exactly, values with the tolerances of ``test_tf_parity.py`` (float32: rtol 1e-5 /
atol 1e-6; float64: rtol 1e-9 / atol 1e-12).
"""

import json
from pathlib import Path

import numpy as np
import pytest

import rustnce
import rustnce.reference as reference

DATA_PATH = Path(__file__).parent / "tf_reference" / "tf_2_21_cases.json"
DATA = json.loads(DATA_PATH.read_text())
LOSS_CASES = DATA["losses"]

LOSSES = ["nce_loss", "sampled_softmax_loss"]
REDUCTIONS = ["sum", "weighted_sum"]


def arr(x, dtype=None):
    """JSON nested lists -> array; "nan"/"inf"/"-inf" strings become floats."""

    def decode(v):
        if isinstance(v, list):
            return [decode(e) for e in v]
        return float(v) if isinstance(v, str) else v

    return np.array(decode(x), dtype=dtype)


def tolerances(dtype):
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-5, atol=1e-6)
    return dict(rtol=1e-9, atol=1e-12)


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


def recorded_upstream(case, reduction):
    return None if reduction == "sum" else arr(case["upstream_g"], case["dtype"])


def grid():
    return [
        pytest.param(case, loss, red, id=f"{case['id']}-{loss}-{red}")
        for case in LOSS_CASES
        for loss in LOSSES
        for red in REDUCTIONS
    ]


def assert_values(actual, recorded_values, dtype, shape):
    actual = np.asarray(actual)
    assert actual.dtype == np.dtype(dtype)
    assert actual.shape == tuple(shape)
    expected = arr(recorded_values, np.float64).reshape(shape)
    np.testing.assert_allclose(actual, expected, **tolerances(dtype))


def assert_indexed_slices(indices, values, dense_shape, record, dtype, row_shape):
    """One TF IndexedSlices record against (indices, values, dense_shape)."""
    assert record["type"] == "IndexedSlices"
    assert record["indices_dtype"] == "int64"
    expected_indices = arr(record["indices"], np.int64).reshape(-1)
    indices = np.asarray(indices)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, expected_indices)
    assert_values(values, record["values"], dtype, (len(expected_indices),) + row_shape)
    if dense_shape is not None:
        assert tuple(int(n) for n in dense_shape) == tuple(record["dense_shape"])


def check_param(gradients_whole, gradients_shards, record, dtype, row_shape):
    """``record`` is one IndexedSlices (a single array) or a list of them (one per shard)."""
    if isinstance(record, list):
        assert len(gradients_shards) == len(record)
        for shard, shard_record in zip(gradients_shards, record):
            assert_indexed_slices(*shard, shard_record, dtype, row_shape)
    else:
        assert_indexed_slices(*gradients_whole, record, dtype, row_shape)


def test_every_losses_case_has_both_gradient_recordings():
    assert len(LOSS_CASES) >= 30
    for case in LOSS_CASES:
        for loss in LOSSES:
            assert set(case["expected"]["gradients"][loss]) == set(REDUCTIONS)


# ----------------------------------------------------------------------------- rustnce


def rustnce_gradients(case, loss, reduction):
    fn = {
        "nce_loss": rustnce.nce_loss_and_gradients,
        "sampled_softmax_loss": rustnce.sampled_softmax_loss_and_gradients,
    }[loss]
    upstream = recorded_upstream(case, reduction)
    return fn(**loss_args(case), upstream="sum" if upstream is None else upstream)


@pytest.mark.parametrize("case,loss,reduction", grid())
def test_rustnce_weight_gradient_matches_tf(case, loss, reduction):
    g = rustnce_gradients(case, loss, reduction)
    record = case["expected"]["gradients"][loss][reduction]["weights"]
    check_param(g.weights, g.weight_shards, record, case["dtype"], (case["dim"],))


@pytest.mark.parametrize("case,loss,reduction", grid())
def test_rustnce_bias_gradient_matches_tf(case, loss, reduction):
    g = rustnce_gradients(case, loss, reduction)
    record = case["expected"]["gradients"][loss][reduction]["biases"]
    check_param(g.biases, g.bias_shards, record, case["dtype"], ())


@pytest.mark.parametrize("case,loss,reduction", grid())
def test_rustnce_inputs_gradient_and_loss_match_tf(case, loss, reduction):
    g = rustnce_gradients(case, loss, reduction)
    record = case["expected"]["gradients"][loss][reduction]["inputs"]
    assert record["type"] == "dense"
    assert_values(g.inputs, record["values"], case["dtype"], (case["batch"], case["dim"]))
    # The loss returned with the gradients is the recorded forward loss.
    assert_values(g.loss, case["expected"][loss], case["dtype"], (case["batch"],))


@pytest.mark.parametrize(
    "case,loss,reduction",
    [p for p in grid() if p.values[0]["weights_sharded"] or p.values[0]["biases_sharded"]],
)
def test_rustnce_global_form_is_the_shard_form_with_global_ids(case, loss, reduction):
    """For sharded parameters TF only has per-shard slices; rustnce's global form must be the
    same entries, mapped back through the partition, in the same order."""
    g = rustnce_gradients(case, loss, reduction)
    for whole, shards, key in (
        (g.weights, g.weight_shards, "weights"),
        (g.biases, g.bias_shards, "biases"),
    ):
        sizes = [s.dense_shape[0] for s in shards]
        assert whole.dense_shape[0] == sum(sizes)
        shard_of, row_of = reference.partition_ids(whole.indices, sizes, case["partition_strategy"])
        for p, shard in enumerate(shards):
            chosen = shard_of == p
            np.testing.assert_array_equal(shard.indices, row_of[chosen], err_msg=key)
            np.testing.assert_array_equal(shard.values, whole.values[chosen], err_msg=key)


# --------------------------------------------------------------------------- reference


def reference_gradients(case, loss, reduction):
    fn = {
        "nce_loss": reference.nce_loss_and_gradients,
        "sampled_softmax_loss": reference.sampled_softmax_loss_and_gradients,
    }[loss]
    return fn(**loss_args(case), upstream=recorded_upstream(case, reduction))


def reference_shards(result, shard_key, case, key):
    """The reference's per-shard list; it only gives one for more than one shard, and a
    single shard is the whole gradient."""
    if shard_key in result:
        return result[shard_key]
    assert len(case[key]) == 1
    values = "weight_values" if key == "weights" else "bias_values"
    return [(result["weight_indices"], result[values])]


@pytest.mark.parametrize("case,loss,reduction", grid())
def test_reference_gradients_match_tf(case, loss, reduction):
    r = reference_gradients(case, loss, reduction)
    recorded = case["expected"]["gradients"][loss][reduction]
    dt, D = case["dtype"], case["dim"]
    for key, values_key, shard_key, row_shape in (
        ("weights", "weight_values", "shard_weight_gradients", (D,)),
        ("biases", "bias_values", "shard_bias_gradients", ()),
    ):
        record = recorded[key]
        if isinstance(record, list):
            shards = reference_shards(r, shard_key, case, key)
            assert len(shards) == len(record)
            for (indices, values), shard_record in zip(shards, record):
                assert_indexed_slices(indices, values, None, shard_record, dt, row_shape)
        else:
            assert_indexed_slices(r["weight_indices"], r[values_key], None, record, dt, row_shape)
    assert_values(r["inputs_grad"], recorded["inputs"]["values"], dt, (case["batch"], D))
    assert_values(r["loss"], case["expected"][loss], dt, (case["batch"],))
