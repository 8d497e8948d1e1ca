"""The gradient API against the NumPy reference and finite differences, and its forms
against each other.

On small random problems (weights and biases whole or split into shards, "div" and "mod";
accidental-hit removal on and off; num_true 1..3; float32 and float64; upstream "sum", "mean"
or an array of weights):

(a) ``rustnce.*_loss_and_gradients`` equal ``rustnce.reference.*_loss_and_gradients``;
(b) central finite differences (float64) of ``sum(upstream * loss)`` match the gradients;
(c) ``merged()`` is TensorFlow's form summed per id, ``accumulate()`` is its dense scatter-add
    (into a whole array or into shards laid out like the parameter), and ``scale`` scales;
(d) the SGD steps are ``param - learning_rate * dense gradient`` on the touched rows, leave
    every other row byte-for-byte as it was, and return the loss and inputs gradient of
    ``*_loss_and_gradients``;
(e) bad in-place targets are refused, with the argument named, before anything is written.
"""

from __future__ import annotations

import numpy as np
import pytest

import rustnce
import rustnce.reference as reference

LOSSES = ["nce", "sampled_softmax"]
GRADIENTS = {
    "nce": rustnce.nce_loss_and_gradients,
    "sampled_softmax": rustnce.sampled_softmax_loss_and_gradients,
}
REFERENCE_GRADIENTS = {
    "nce": reference.nce_loss_and_gradients,
    "sampled_softmax": reference.sampled_softmax_loss_and_gradients,
}
LOSS_FUNCTIONS = {"nce": rustnce.nce_loss, "sampled_softmax": rustnce.sampled_softmax_loss}
SGD_STEPS = {"nce": rustnce.nce_sgd_step, "sampled_softmax": rustnce.sampled_softmax_sgd_step}

# (weight shards, bias shards, strategy); None = one whole array.
SHARDINGS = [
    (None, None, "div"),
    (3, 3, "div"),
    (2, 2, "mod"),
    (4, None, "div"),
    (None, 3, "mod"),
    (3, 2, "mod"),
    (1, 1, "div"),
    (2, 2, "div"),
]
UPSTREAMS = ["sum", "mean", "array"]
NUM_PROBLEMS = 48


# ----------------------------------------------------------------------------- problems


def split_shards(mat, num_shards, strategy):
    """Shards of ``mat`` laid out as TensorFlow's "div" (contiguous) or "mod" (strided)."""
    if num_shards is None:
        return mat
    n = mat.shape[0]
    if strategy == "mod":
        return [np.ascontiguousarray(mat[p::num_shards]) for p in range(num_shards)]
    q, e = divmod(n, num_shards)
    sizes = [q + 1] * e + [q] * (num_shards - e)
    bounds = np.cumsum([0] + sizes)
    return [mat[bounds[p] : bounds[p + 1]].copy() for p in range(num_shards)]


def join_shards(param, strategy):
    """The whole array back from ``split_shards``' output."""
    if not isinstance(param, list):
        return param
    total = sum(p.shape[0] for p in param)
    ids = split_shards(np.arange(total), len(param), strategy)
    out = np.empty((total,) + param[0].shape[1:], dtype=param[0].dtype)
    for shard, shard_ids in zip(param, ids):
        out[shard_ids] = shard
    return out


def config(i):
    return dict(
        dtype=np.float32 if i % 2 == 0 else np.float64,
        num_true=1 + i % 3,
        hits=bool((i // 2) % 2),
        sharding=SHARDINGS[(i // 4) % len(SHARDINGS)],
        upstream=UPSTREAMS[(i // 3) % 3],
    )


def test_problem_grid_covers_every_option():
    configs = [config(i) for i in range(NUM_PROBLEMS)]
    for key, options in (
        ("dtype", [np.float32, np.float64]),
        ("num_true", [1, 2, 3]),
        ("hits", [False, True]),
        ("sharding", SHARDINGS),
        ("upstream", UPSTREAMS),
    ):
        assert {repr(c[key]) for c in configs} == {repr(o) for o in options}, key


def make_problem(i, dtype=None, upstream=None):
    """A small random problem: kwargs for the loss functions plus what the checks need."""
    c = config(i)
    dtype = np.dtype(dtype or c["dtype"])
    upstream = upstream or c["upstream"]
    rng = np.random.default_rng(1000 + i)
    T = c["num_true"]
    B = int(rng.integers(1, 6))
    D = int(rng.integers(1, 5))
    C = int(rng.integers(4, 14))
    S = int(rng.integers(1, 7))
    pw, pb, strategy = c["sharding"]
    rows = max(C + int(rng.integers(0, 4)), pw or 1, pb or 1)
    W = rng.normal(0, 0.7, size=(rows, D)).astype(dtype)
    b = rng.normal(0, 0.3, size=rows).astype(dtype)
    x = rng.normal(0, 1.0, size=(B, D)).astype(dtype)
    labels = rng.integers(0, C, size=(B, T)).astype(np.int64)
    if T > 1 and i % 5 == 0:
        labels[0, 1] = labels[0, 0]  # a duplicate label within a row
    sampled = rng.integers(0, C, size=S).astype(np.int64)
    for k in range(S):
        u = rng.uniform()
        if u < 0.4:
            sampled[k] = labels[rng.integers(0, B), rng.integers(0, T)]  # an accidental hit
        elif k > 0 and u > 0.8:
            sampled[k] = sampled[rng.integers(0, k)]  # a duplicate candidate
    true_expected = rng.uniform(0.05, 2.0, size=(B, T)).astype(dtype)
    sampled_expected = rng.uniform(0.05, 2.0, size=S).astype(dtype)
    if upstream == "array":
        upstream_value = rng.uniform(-1.5, 1.5, size=B).astype(dtype)
        g = upstream_value.astype(np.float64)
    elif upstream == "mean":
        upstream_value, g = "mean", np.full(B, 1.0 / B)
    else:
        upstream_value, g = "sum", np.ones(B)
    kwargs = dict(
        weights=split_shards(W, pw, strategy),
        biases=split_shards(b, pb, strategy),
        labels=labels,
        inputs=x,
        num_sampled=S,
        num_classes=C,
        num_true=T,
        sampled_values=(sampled, true_expected, sampled_expected),
        remove_accidental_hits=c["hits"],
        partition_strategy=strategy,
        subtract_log_q=bool(i % 7 != 3),
    )
    return dict(
        kwargs=kwargs,
        upstream=upstream_value,
        g=g,
        W=W,
        b=b,
        rows=rows,
        strategy=strategy,
        ids=np.concatenate([labels.reshape(-1), sampled]),
        dtype=dtype,
    )


def reference_upstream(p):
    if isinstance(p["upstream"], str):
        return p["g"].astype(p["dtype"]) if p["upstream"] == "mean" else None
    return p["upstream"]


def tolerances(dtype):
    if np.dtype(dtype) == np.float32:
        return dict(rtol=2e-5, atol=2e-6)
    return dict(rtol=1e-10, atol=1e-12)


def dense_tf_form(gradients, rows, dim, dtype):
    """The dense weight and bias gradients: TF's row-sparse form scatter-added."""
    w = np.zeros((rows, dim), dtype=np.float64)
    b = np.zeros(rows, dtype=np.float64)
    np.add.at(w, gradients.weights.indices, gradients.weights.values.astype(np.float64))
    np.add.at(b, gradients.biases.indices, gradients.biases.values.astype(np.float64))
    return w, b


def copy_param(param):
    return [s.copy() for s in param] if isinstance(param, list) else param.copy()


def zeros_like_param(param):
    return [np.zeros_like(s) for s in param] if isinstance(param, list) else np.zeros_like(param)


def as_list(param):
    return param if isinstance(param, list) else [param]


def raw_bytes(*arrays):
    return [np.ascontiguousarray(a).tobytes() for a in arrays]


PROBLEMS = [pytest.param(i, id=f"p{i}") for i in range(NUM_PROBLEMS)]


# ------------------------------------------------------------------- (a) vs the reference


def assert_row_sparse_matches(got, ref, p):
    """Loss, inputs gradient and TensorFlow's row-sparse weight and bias gradients equal the
    reference's, in the problem's dtype."""
    tol = tolerances(p["dtype"])
    for value in (got.loss, got.inputs, got.weights.values, got.biases.values):
        assert value.dtype == p["dtype"]
    np.testing.assert_allclose(got.loss, ref["loss"], **tol)
    np.testing.assert_allclose(got.inputs, ref["inputs_grad"], **tol)
    np.testing.assert_array_equal(got.weights.indices, ref["weight_indices"])
    np.testing.assert_allclose(got.weights.values, ref["weight_values"], **tol)
    np.testing.assert_allclose(got.biases.values, ref["bias_values"], **tol)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("i", PROBLEMS)
def test_gradients_match_reference(i, loss):
    p = make_problem(i)
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    ref = REFERENCE_GRADIENTS[loss](**p["kwargs"], upstream=reference_upstream(p))
    tol = tolerances(p["dtype"])
    assert_row_sparse_matches(got, ref, p)
    np.testing.assert_array_equal(got.biases.indices, ref["weight_indices"])
    np.testing.assert_array_equal(got.weights.indices, p["ids"])
    assert got.weights.dense_shape == (p["rows"], p["W"].shape[1])
    assert got.biases.dense_shape == (p["rows"],)
    for shards, key, param in (
        (got.weight_shards, "shard_weight_gradients", p["kwargs"]["weights"]),
        (got.bias_shards, "shard_bias_gradients", p["kwargs"]["biases"]),
    ):
        assert len(shards) == len(as_list(param))
        for shard, array in zip(shards, as_list(param)):
            assert shard.dense_shape == array.shape
        if key in ref:
            for shard, (indices, values) in zip(shards, ref[key]):
                np.testing.assert_array_equal(shard.indices, indices)
                np.testing.assert_allclose(shard.values, values, **tol)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("i", PROBLEMS)
def test_rescaled_equals_the_call_with_that_upstream(i, loss):
    """A rescalable call for sum(loss), rescaled by the problem's upstream, equals the NumPy
    reference called with that upstream in every form; the weights it was computed from may
    change meanwhile, since rescaling does not read them."""
    p = make_problem(i)
    kept = GRADIENTS[loss](**p["kwargs"], rescalable=True)
    ref = REFERENCE_GRADIENTS[loss](**p["kwargs"], upstream=reference_upstream(p))
    for shard in as_list(p["kwargs"]["weights"]) + as_list(p["kwargs"]["biases"]):
        shard += 1.0
    got = kept.rescaled(p["upstream"])
    assert_row_sparse_matches(got, ref, p)
    merged_w, _ = got.merged()
    np.testing.assert_array_equal(merged_w.indices, np.unique(p["ids"]))
    # Rescaling twice starts from the kept gradients each time.
    again = kept.rescaled(p["upstream"])
    np.testing.assert_array_equal(again.inputs, got.inputs)
    np.testing.assert_array_equal(again.weights.values, got.weights.values)


@pytest.mark.parametrize("loss", LOSSES)
def test_rescaled_refuses_a_call_that_kept_nothing_and_a_wrong_upstream(loss):
    p = make_problem(2, upstream="sum")
    plain = GRADIENTS[loss](**p["kwargs"])
    with pytest.raises(ValueError, match="rescalable=True"):
        plain.rescaled("sum")
    kept = GRADIENTS[loss](**p["kwargs"], rescalable=True)
    batch = p["kwargs"]["inputs"].shape[0]
    with pytest.raises(ValueError, match=r"upstream must have shape \[batch\]"):
        kept.rescaled(np.ones(batch + 1))
    with pytest.raises(TypeError, match="upstream must"):
        kept.rescaled(3.0)
    with pytest.raises(TypeError, match="rescalable must be a bool"):
        GRADIENTS[loss](**p["kwargs"], rescalable="yes")


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("i", PROBLEMS)
def test_a_merging_call_forms_the_merged_gradients_of_a_plain_one(i, loss):
    """``merged=True`` forms ``merged()`` during the pass: the same bits as ``merged()`` of a
    plain call, with the same loss and inputs gradient, whatever happens to ``inputs`` after
    the call; with ``rescalable=True`` it rescales from the inputs passed to ``rescaled``."""
    p = make_problem(i)
    kwargs = p["kwargs"]
    plain = GRADIENTS[loss](**kwargs, rescalable=True)
    merging = GRADIENTS[loss](**kwargs, rescalable=True, merged=True)
    inputs = kwargs["inputs"].copy()
    kwargs["inputs"] += 1.0  # the merging call keeps no copy and needs none for merged()
    np.testing.assert_array_equal(merging.loss, plain.loss)
    np.testing.assert_array_equal(merging.inputs, plain.inputs)
    for got, want in zip(merging.merged(), plain.merged()):
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.values, want.values)
        assert got.dense_shape == want.dense_shape
    rescaled = merging.rescaled(p["upstream"], inputs=inputs)
    expected = plain.rescaled(p["upstream"])
    np.testing.assert_array_equal(rescaled.inputs, expected.inputs)
    np.testing.assert_array_equal(rescaled.weights.values, expected.weights.values)
    for got, want in zip(rescaled.merged(), expected.merged()):
        np.testing.assert_array_equal(got.values, want.values)


@pytest.mark.parametrize("loss", LOSSES)
def test_a_merging_call_refuses_the_forms_that_need_inputs(loss):
    p = make_problem(2, upstream="sum")
    kwargs = p["kwargs"]
    merging = GRADIENTS[loss](**kwargs, rescalable=True, merged=True)
    for form in ("weights", "weight_shards"):
        with pytest.raises(ValueError, match="merged=True"):
            getattr(merging, form)
    # The bias values need no inputs.
    np.testing.assert_array_equal(merging.biases.values, GRADIENTS[loss](**kwargs).biases.values)
    with pytest.raises(ValueError, match="accumulate.*merged=True"):
        merging.accumulate(np.zeros_like(join_shards(kwargs["weights"], p["strategy"])))
    with pytest.raises(ValueError, match="rescaled needs inputs="):
        merging.rescaled("sum")
    batch, dim = kwargs["inputs"].shape
    with pytest.raises(ValueError, match=rf"inputs must be the call's \[{batch}, {dim}\]"):
        merging.rescaled("sum", inputs=np.zeros((batch + 1, dim), kwargs["inputs"].dtype))
    kept = GRADIENTS[loss](**kwargs, rescalable=True)
    with pytest.raises(ValueError, match="pass inputs only"):
        kept.rescaled("sum", inputs=kwargs["inputs"])
    with pytest.raises(TypeError, match="merged must be a bool"):
        GRADIENTS[loss](**kwargs, merged=1)


# ---------------------------------------------------------------- (b) finite differences


def total(loss, kwargs, g):
    return float(np.dot(g, LOSS_FUNCTIONS[loss](**kwargs).astype(np.float64)))


def central_difference(loss, kwargs, g, array, index, eps=1e-6):
    old = array[index]
    array[index] = old + eps
    plus = total(loss, kwargs, g)
    array[index] = old - eps
    minus = total(loss, kwargs, g)
    array[index] = old
    return (plus - minus) / (2 * eps)


def global_ids_of_shards(param, strategy):
    """Per shard, the global row of each of its rows."""
    if not isinstance(param, list):
        return [np.arange(param.shape[0])]
    total_rows = sum(s.shape[0] for s in param)
    return split_shards(np.arange(total_rows), len(param), strategy)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("i", [pytest.param(i, id=f"p{i}") for i in range(0, NUM_PROBLEMS, 2)])
def test_gradients_match_central_finite_differences(i, loss):
    p = make_problem(i, dtype=np.float64)
    kwargs = p["kwargs"]
    got = GRADIENTS[loss](**kwargs, upstream=p["upstream"])
    dense_w, dense_b = dense_tf_form(got, p["rows"], p["W"].shape[1], np.float64)
    rng = np.random.default_rng(i)
    touched = np.unique(p["ids"])
    checks = []
    for param, dense in ((kwargs["weights"], dense_w), (kwargs["biases"], dense_b)):
        shards = as_list(param)
        global_ids = global_ids_of_shards(param, p["strategy"])
        # Entries of touched rows (and one of any row), located in their shard.
        wanted = list(rng.choice(touched, size=min(3, len(touched)), replace=False))
        wanted.append(int(rng.integers(0, p["rows"])))
        for row in wanted:
            shard = next(s for s, ids in enumerate(global_ids) if row in ids)
            local = int(np.nonzero(global_ids[shard] == row)[0][0])
            column = (int(rng.integers(0, dense.shape[1])),) if dense.ndim == 2 else ()
            checks.append((shards[shard], (local,) + column, dense[(row,) + column]))
    x = kwargs["inputs"]
    for _ in range(3):
        index = (int(rng.integers(0, x.shape[0])), int(rng.integers(0, x.shape[1])))
        checks.append((x, index, got.inputs[index]))
    for array, index, analytic in checks:
        numeric = central_difference(loss, kwargs, p["g"], array, index)
        assert numeric == pytest.approx(analytic, rel=1e-5, abs=1e-7), (index, array.shape)


# ------------------------------------------------------------------- (c) the forms agree


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("i", PROBLEMS)
def test_merged_is_tf_form_summed_per_id(i, loss):
    p = make_problem(i)
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    merged_w, merged_b = got.merged()
    ids = np.unique(got.weights.indices)
    np.testing.assert_array_equal(merged_w.indices, ids)
    np.testing.assert_array_equal(merged_b.indices, ids)
    assert merged_w.indices.dtype == np.int64
    assert merged_w.values.dtype == merged_b.values.dtype == p["dtype"]
    assert merged_w.dense_shape == got.weights.dense_shape
    assert merged_b.dense_shape == got.biases.dense_shape
    expected_w = np.stack([got.weights.values[got.weights.indices == k].sum(axis=0) for k in ids])
    expected_b = np.array([got.biases.values[got.biases.indices == k].sum() for k in ids])
    tol = tolerances(p["dtype"])
    np.testing.assert_allclose(merged_w.values, expected_w, **tol)
    np.testing.assert_allclose(merged_b.values, expected_b, **tol)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("i", PROBLEMS)
def test_accumulate_into_zeros_is_dense_scatter_add_of_tf_form(i, loss):
    p = make_problem(i)
    kwargs = p["kwargs"]
    got = GRADIENTS[loss](**kwargs, upstream=p["upstream"])
    dense_w, dense_b = dense_tf_form(got, p["rows"], p["W"].shape[1], p["dtype"])
    tol = tolerances(p["dtype"])

    # Whole arrays (allowed only when the parameter is one array or one shard).
    if len(as_list(kwargs["weights"])) == 1 and len(as_list(kwargs["biases"])) == 1:
        target_w = np.zeros((p["rows"], p["W"].shape[1]), dtype=p["dtype"])
        target_b = np.zeros(p["rows"], dtype=p["dtype"])
        got.accumulate(target_w, target_b)
        np.testing.assert_allclose(target_w, dense_w, **tol)
        np.testing.assert_allclose(target_b, dense_b, **tol)

    # Targets laid out like the parameters (shards when they are shards).
    target_w = zeros_like_param(kwargs["weights"])
    target_b = zeros_like_param(kwargs["biases"])
    got.accumulate(target_w, target_b)
    np.testing.assert_allclose(join_shards(target_w, p["strategy"]), dense_w, **tol)
    np.testing.assert_allclose(join_shards(target_b, p["strategy"]), dense_b, **tol)
    # Untouched rows stay exactly zero.
    untouched = np.setdiff1d(np.arange(p["rows"]), p["ids"])
    assert not join_shards(target_w, p["strategy"])[untouched].any()
    assert not join_shards(target_b, p["strategy"])[untouched].any()


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("i", PROBLEMS[:16])
def test_accumulate_weights_only_biases_only_and_scale_twice(i, loss):
    p = make_problem(i)
    kwargs = p["kwargs"]
    got = GRADIENTS[loss](**kwargs, upstream=p["upstream"])
    dense_w, dense_b = dense_tf_form(got, p["rows"], p["W"].shape[1], p["dtype"])
    tol = tolerances(p["dtype"])

    only_w = zeros_like_param(kwargs["weights"])
    got.accumulate(only_w)
    np.testing.assert_allclose(join_shards(only_w, p["strategy"]), dense_w, **tol)
    only_b = zeros_like_param(kwargs["biases"])
    got.accumulate(biases_gradient=only_b)
    np.testing.assert_allclose(join_shards(only_b, p["strategy"]), dense_b, **tol)

    # Into non-zero targets, twice with a scale: start + 2 * scale * dense.
    rng = np.random.default_rng(i)
    start_w = rng.normal(size=(p["rows"], p["W"].shape[1])).astype(p["dtype"])
    start_b = rng.normal(size=p["rows"]).astype(p["dtype"])
    target_w = split_shards(start_w, len(as_list(kwargs["weights"])), p["strategy"])
    target_b = split_shards(start_b, len(as_list(kwargs["biases"])), p["strategy"])
    if not isinstance(kwargs["weights"], list):
        target_w = target_w[0]
    if not isinstance(kwargs["biases"], list):
        target_b = target_b[0]
    scale = -0.375
    got.accumulate(target_w, target_b, scale=scale)
    got.accumulate(target_w, target_b, scale=scale)
    np.testing.assert_allclose(
        join_shards(target_w, p["strategy"]), start_w + 2 * scale * dense_w, **tol
    )
    np.testing.assert_allclose(
        join_shards(target_b, p["strategy"]), start_b + 2 * scale * dense_b, **tol
    )


# ---------------------------------------------------------------------- (d) the SGD step


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("i", PROBLEMS)
def test_sgd_step_is_param_minus_lr_dense_gradient(i, loss):
    p = make_problem(i)
    kwargs = p["kwargs"]
    lr = 0.3
    got = GRADIENTS[loss](**kwargs, upstream=p["upstream"])
    dense_w, dense_b = dense_tf_form(got, p["rows"], p["W"].shape[1], p["dtype"])
    weights, biases = copy_param(kwargs["weights"]), copy_param(kwargs["biases"])
    before_w = join_shards(weights, p["strategy"]).copy()
    before_b = join_shards(biases, p["strategy"]).copy()
    step_kwargs = dict(kwargs, weights=weights, biases=biases)
    step_loss, step_inputs = SGD_STEPS[loss](
        **step_kwargs, learning_rate=lr, upstream=p["upstream"]
    )

    # Same loss and inputs gradient as the gradient API (computed from the old weights).
    np.testing.assert_array_equal(step_loss, got.loss)
    np.testing.assert_array_equal(step_inputs, got.inputs)
    assert step_loss.dtype == step_inputs.dtype == p["dtype"]

    after_w, after_b = join_shards(weights, p["strategy"]), join_shards(biases, p["strategy"])
    tol = tolerances(p["dtype"])
    np.testing.assert_allclose(after_w, before_w - lr * dense_w, **tol)
    np.testing.assert_allclose(after_b, before_b - lr * dense_b, **tol)
    untouched = np.setdiff1d(np.arange(p["rows"]), p["ids"])
    assert raw_bytes(after_w[untouched], after_b[untouched]) == raw_bytes(
        before_w[untouched], before_b[untouched]
    )
    # The arrays passed in were updated in place (not replaced).
    touched = np.unique(p["ids"])
    if np.abs(dense_w[touched]).max() > 0:
        assert not np.array_equal(after_w, before_w)


@pytest.mark.parametrize("loss", LOSSES)
def test_sgd_step_default_upstream_is_mean(loss):
    p = make_problem(5, upstream="sum")
    kwargs = p["kwargs"]
    w1, b1 = copy_param(kwargs["weights"]), copy_param(kwargs["biases"])
    w2, b2 = copy_param(kwargs["weights"]), copy_param(kwargs["biases"])
    SGD_STEPS[loss](**dict(kwargs, weights=w1, biases=b1), learning_rate=0.5)
    SGD_STEPS[loss](**dict(kwargs, weights=w2, biases=b2), learning_rate=0.5, upstream="mean")
    for a, b in zip(as_list(w1) + as_list(b1), as_list(w2) + as_list(b2)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("loss", LOSSES)
def test_sgd_step_updates_non_contiguous_weights_in_place(loss):
    p = make_problem(1, upstream="array")
    kwargs = p["kwargs"]
    assert not isinstance(kwargs["weights"], list)
    big = np.zeros((p["rows"], 2 * p["W"].shape[1]), dtype=p["dtype"], order="F")
    view = big[:, ::2]
    view[:] = kwargs["weights"]
    expected_w, expected_b = kwargs["weights"].copy(), kwargs["biases"].copy()
    biases = kwargs["biases"].copy()
    SGD_STEPS[loss](**dict(kwargs, weights=expected_w, biases=expected_b), learning_rate=0.1)
    SGD_STEPS[loss](**dict(kwargs, weights=view, biases=biases), learning_rate=0.1)
    np.testing.assert_array_equal(view, expected_w)
    np.testing.assert_array_equal(biases, expected_b)
    assert not big[:, 1::2].any()


# ------------------------------------------------------------ (e) bad in-place targets


def read_only(array):
    array = array.copy()
    array.setflags(write=False)
    return array


def assert_refused(call, exception, names, watched):
    before = raw_bytes(*watched)
    with pytest.raises(exception) as info:
        call()
    message = str(info.value)
    assert any(name in message for name in names), message
    assert raw_bytes(*watched) == before, "an array was written before the error"


@pytest.fixture(params=LOSSES)
def loss(request):
    return request.param


def whole_problem(dtype=np.float32):
    # Problem 0: one whole weights array and one whole biases array.
    p = make_problem(0, dtype=dtype, upstream="array")
    assert not isinstance(p["kwargs"]["weights"], list)
    assert not isinstance(p["kwargs"]["biases"], list)
    return p


def sharded_problem():
    p = make_problem(4 * SHARDINGS.index((3, 3, "div")), upstream="sum")  # 3 + 3 "div" shards
    assert len(p["kwargs"]["weights"]) == 3 and len(p["kwargs"]["biases"]) == 3
    return p


def test_accumulate_refuses_read_only_weights_target(loss):
    p = whole_problem()
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    target_w = read_only(np.zeros_like(p["W"]))
    target_b = np.zeros_like(p["b"])
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        ValueError,
        ["weights_gradient"],
        [target_w, target_b],
    )


def test_accumulate_refuses_read_only_biases_target_before_writing_weights(loss):
    p = whole_problem()
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    target_w = np.zeros_like(p["W"])
    target_b = read_only(np.zeros_like(p["b"]))
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        ValueError,
        ["biases_gradient"],
        [target_w, target_b],
    )


def test_accumulate_refuses_wrong_dtype_weights_target(loss):
    p = whole_problem(np.float32)
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    target_w = np.zeros(p["W"].shape, dtype=np.float64)
    target_b = np.zeros_like(p["b"])
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        TypeError,
        ["weights_gradient"],
        [target_w, target_b],
    )


def test_accumulate_refuses_wrong_dtype_biases_target(loss):
    p = whole_problem(np.float64)
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    target_w = np.zeros_like(p["W"])
    target_b = np.zeros(p["b"].shape, dtype=np.float32)
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        TypeError,
        ["biases_gradient"],
        [target_w, target_b],
    )


@pytest.mark.parametrize("where", ["rows", "columns"])
def test_accumulate_refuses_wrong_shape_weights_target(loss, where):
    p = whole_problem()
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    rows, dim = p["W"].shape
    shape = (rows + 1, dim) if where == "rows" else (rows, dim + 1)
    target_w = np.zeros(shape, dtype=p["dtype"])
    target_b = np.zeros_like(p["b"])
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        ValueError,
        ["weights_gradient"],
        [target_w, target_b],
    )


@pytest.mark.parametrize("where", ["rows", "ndim"])
def test_accumulate_refuses_wrong_shape_biases_target(loss, where):
    p = whole_problem()
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    target_w = np.zeros_like(p["W"])
    shape = (p["rows"] - 1,) if where == "rows" else (p["rows"], 1)
    target_b = np.zeros(shape, dtype=p["dtype"])
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        ValueError,
        ["biases_gradient"],
        [target_w, target_b],
    )


def test_accumulate_refuses_whole_target_for_sharded_weights(loss):
    p = sharded_problem()
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    target_w = np.zeros_like(p["W"])
    target_b = zeros_like_param(p["kwargs"]["biases"])
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        ValueError,
        ["weights_gradient"],
        [target_w, *target_b],
    )


def test_accumulate_refuses_shards_split_another_way(loss):
    p = sharded_problem()
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    # Two "div" shards instead of three.
    target_w = split_shards(np.zeros_like(p["W"]), 2, "div")
    target_b = zeros_like_param(p["kwargs"]["biases"])
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        ValueError,
        ["weights_gradient"],
        [*target_w, *target_b],
    )
    # Three shards whose sizes do not follow the "div" layout.
    sizes = [p["rows"] - 2, 1, 1]
    assert sizes != [s.shape[0] for s in p["kwargs"]["weights"]]
    bounds = np.cumsum([0] + sizes)
    zeros = np.zeros_like(p["W"])
    target_w = [zeros[bounds[k] : bounds[k + 1]] for k in range(3)]
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        ValueError,
        ["weights_gradient"],
        [zeros, *target_b],
    )


def test_accumulate_refuses_one_read_only_shard_before_writing_any(loss):
    p = sharded_problem()
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    target_w = zeros_like_param(p["kwargs"]["weights"])
    target_w[2] = read_only(target_w[2])
    target_b = zeros_like_param(p["kwargs"]["biases"])
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        ValueError,
        ["weights_gradient"],
        [*target_w, *target_b],
    )


def test_accumulate_refuses_target_overlapping_inputs(loss):
    p = whole_problem()
    kwargs = p["kwargs"]
    B, D = kwargs["inputs"].shape
    rows = p["rows"]
    buffer = np.zeros((max(rows, B), D), dtype=p["dtype"])
    buffer[:B] = kwargs["inputs"]
    inputs = buffer[:B]
    got = GRADIENTS[loss](**dict(kwargs, inputs=inputs), upstream=p["upstream"])
    target_w = buffer[:rows]  # overlaps inputs
    target_b = np.zeros_like(p["b"])
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        ValueError,
        ["weights_gradient"],
        [buffer, target_b],
    )


def test_accumulate_refuses_targets_overlapping_each_other(loss):
    p = whole_problem()
    got = GRADIENTS[loss](**p["kwargs"], upstream=p["upstream"])
    target_w = np.zeros_like(p["W"])
    target_b = target_w[:, 0]  # overlaps the weights target
    assert_refused(
        lambda: got.accumulate(target_w, target_b),
        ValueError,
        ["weights_gradient", "biases_gradient"],
        [target_w],
    )


def sgd(loss, p, **overrides):
    kwargs = dict(p["kwargs"], **overrides)
    return lambda: SGD_STEPS[loss](**kwargs, learning_rate=0.5, upstream=p["upstream"])


def test_sgd_step_refuses_read_only_weights(loss):
    p = whole_problem()
    weights, biases = read_only(p["W"]), p["b"].copy()
    assert_refused(
        sgd(loss, p, weights=weights, biases=biases), ValueError, ["weights"], [weights, biases]
    )


def test_sgd_step_refuses_read_only_biases_before_writing_weights(loss):
    p = whole_problem()
    weights, biases = p["W"].copy(), read_only(p["b"])
    assert_refused(
        sgd(loss, p, weights=weights, biases=biases), ValueError, ["biases"], [weights, biases]
    )


def test_sgd_step_refuses_one_read_only_weight_shard(loss):
    p = sharded_problem()
    weights = copy_param(p["kwargs"]["weights"])
    weights[1] = read_only(weights[1])
    biases = copy_param(p["kwargs"]["biases"])
    assert_refused(
        sgd(loss, p, weights=weights, biases=biases),
        ValueError,
        ["weights"],
        [*weights, *biases],
    )


def test_sgd_step_refuses_wrong_dtype_weights(loss):
    p = whole_problem(np.float32)
    weights, biases = p["W"].astype(np.float64), p["b"].copy()
    assert_refused(
        sgd(loss, p, weights=weights, biases=biases), TypeError, ["weights"], [weights, biases]
    )


def test_sgd_step_refuses_wrong_dtype_biases(loss):
    p = whole_problem(np.float32)
    weights, biases = p["W"].copy(), p["b"].astype(np.float64)
    assert_refused(
        sgd(loss, p, weights=weights, biases=biases), TypeError, ["biases"], [weights, biases]
    )


def test_sgd_step_refuses_weight_shards_off_the_layout(loss):
    p = sharded_problem()
    sizes = [p["rows"] - 2, 1, 1]
    bounds = np.cumsum([0] + sizes)
    full = p["W"].copy()
    weights = [full[bounds[k] : bounds[k + 1]] for k in range(3)]
    biases = copy_param(p["kwargs"]["biases"])
    assert_refused(
        sgd(loss, p, weights=weights, biases=biases), ValueError, ["weights"], [full, *biases]
    )


def test_sgd_step_refuses_biases_of_the_wrong_length(loss):
    p = whole_problem()
    weights = p["W"].copy()
    biases = np.zeros(p["rows"] - 1, dtype=p["dtype"])
    # Only ids below rows - 1 are used, so the short biases are not an out-of-range error.
    assert p["ids"].max() < p["rows"] - 1
    assert_refused(
        sgd(loss, p, weights=weights, biases=biases), ValueError, ["biases"], [weights, biases]
    )


def test_sgd_step_refuses_inputs_that_are_a_view_of_weights(loss):
    p = whole_problem()
    B, D = p["kwargs"]["inputs"].shape
    rows = max(p["rows"], B)
    weights = np.zeros((rows, D), dtype=p["dtype"])
    weights[: p["rows"]] = p["W"]
    weights[:B] = p["kwargs"]["inputs"]
    biases = np.zeros(rows, dtype=p["dtype"])
    biases[: p["rows"]] = p["b"]
    inputs = weights[:B]
    assert_refused(
        sgd(loss, p, weights=weights, biases=biases, inputs=inputs),
        ValueError,
        ["inputs"],
        [weights, biases],
    )


def test_sgd_step_refuses_biases_that_are_a_view_of_weights(loss):
    p = whole_problem()
    weights = p["W"].copy()
    biases = weights[:, 0]
    assert_refused(sgd(loss, p, weights=weights, biases=biases), ValueError, ["biases"], [weights])


def test_sgd_step_refuses_a_weight_shard_given_twice(loss):
    p = sharded_problem()
    weights = copy_param(p["kwargs"]["weights"])
    if weights[0].shape == weights[1].shape:
        weights[1] = weights[0]
    else:
        weights[2] = weights[1]
    biases = copy_param(p["kwargs"]["biases"])
    assert_refused(
        sgd(loss, p, weights=weights, biases=biases),
        ValueError,
        ["weights"],
        [*weights, *biases],
    )


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch, num_true", [(600, 3), (513, 1), (256, 2), (1, 1)])
def test_the_weight_values_the_pass_forms_equal_those_formed_later(loss, dtype, batch, num_true):
    """The first ``weights`` of a call hands out the values the fused pass wrote block by
    block; later ones form them again from the call's copy of ``inputs``. Both must be the
    same bits (several blocks, a short last block, strided inputs)."""
    rng = np.random.default_rng(batch + num_true)
    classes, dim = 700, 19
    weights = rng.normal(size=(classes, dim)).astype(dtype)
    biases = rng.normal(size=classes).astype(dtype)
    inputs = rng.normal(size=(batch, 2 * dim)).astype(dtype)[:, ::2]
    labels = rng.integers(0, classes, size=(batch, num_true))
    sampled = rustnce.log_uniform_candidate_sampler(labels, num_true, 17, True, classes, seed=2)
    g = GRADIENTS[loss](
        weights, biases, labels, inputs, 17, classes, num_true=num_true, sampled_values=sampled
    )
    first, second = g.weights, g.weights
    assert first.values is not second.values
    np.testing.assert_array_equal(first.indices, second.indices)
    assert first.values.tobytes() == second.values.tobytes()
    want = REFERENCE_GRADIENTS[loss](
        weights, biases, labels, inputs, 17, classes, num_true=num_true, sampled_values=sampled
    )["weight_values"]
    np.testing.assert_allclose(first.values, want, rtol=1e-5, atol=1e-5)
