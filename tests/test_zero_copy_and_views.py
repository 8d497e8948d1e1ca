"""rustnce reads the weights in place: no copy of a ~200 MB weights array, in C order, Fortran
order, as a strided view or as shards that are views. NumPy reports its allocations to
``tracemalloc``, so a copy made on the Python side (``np.ascontiguousarray``, ``astype``,
fancy indexing) shows up in the traced peak; the peak resident set size (Linux ``VmHWM``,
reset through ``/proc/self/clear_refs``) also catches a copy made inside the Rust extension.

Also: int32 labels give the same results as int64, and strided inputs as a contiguous copy.
"""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import rustnce

NUM_CLASSES = 100_000
DIM = 500  # 100,000 x 500 float32 = 200 MB
BATCH = 16
NUM_SAMPLED = 64
MAX_FRACTION = 0.10


def fill(weights: np.ndarray) -> np.ndarray:
    """Cheap non-trivial contents: one random 1000-row block repeated."""
    block = (np.random.default_rng(0).standard_normal((1000, DIM)) * 0.05).astype(np.float32)
    weights.reshape(NUM_CLASSES // 1000, 1000, DIM)[:] = block
    return weights


@pytest.fixture(scope="module")
def c_weights():
    return fill(np.empty((NUM_CLASSES, DIM), dtype=np.float32))


@pytest.fixture(scope="module")
def f_weights(c_weights):
    weights = np.asfortranarray(c_weights)
    assert weights.flags.f_contiguous and not weights.flags.c_contiguous
    return weights


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(1)
    return dict(
        biases=np.zeros(NUM_CLASSES, dtype=np.float32),
        labels=rng.integers(0, NUM_CLASSES, size=(BATCH, 1)),
        inputs=rng.standard_normal((BATCH, DIM)).astype(np.float32),
    )


def call(name: str, weights, problem: dict) -> np.ndarray:
    args = (weights, problem["biases"], problem["labels"], problem["inputs"])
    if name == "full_softmax_loss":
        return rustnce.full_softmax_loss(*args, NUM_CLASSES)
    return getattr(rustnce, name)(*args, NUM_SAMPLED, NUM_CLASSES, seed=5)


def traced_peak_increase(function) -> int:
    """How far the peak of tracemalloc's traced memory rises above its level before."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        function()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/self/status")


def resident_peak_increase(function) -> int:
    """How far the peak resident set size rises above the resident size before, in bytes."""
    if sys.platform != "linux":
        pytest.skip("the peak resident set size is read from Linux's /proc")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    before = _status_kib("VmRSS")
    function()
    return (_status_kib("VmHWM") - before) * 1024


LOSSES = pytest.mark.parametrize("name", ["nce_loss", "sampled_softmax_loss", "full_softmax_loss"])


def test_traced_peak_detects_a_copy_of_the_weights(f_weights):
    """The instrument works: a contiguous copy of the weights shows up in full."""
    increase = traced_peak_increase(lambda: np.ascontiguousarray(f_weights))
    assert increase >= 0.9 * f_weights.nbytes


def test_resident_peak_detects_a_copy_of_the_weights(f_weights):
    increase = resident_peak_increase(lambda: np.ascontiguousarray(f_weights))
    assert increase >= 0.9 * f_weights.nbytes


@LOSSES
def test_c_order_weights_are_not_copied(name, c_weights, problem):
    increase = traced_peak_increase(lambda: call(name, c_weights, problem))
    assert increase < MAX_FRACTION * c_weights.nbytes


@LOSSES
def test_fortran_order_weights_are_not_copied(name, f_weights, problem):
    increase = traced_peak_increase(lambda: call(name, f_weights, problem))
    assert increase < MAX_FRACTION * f_weights.nbytes


@LOSSES
def test_strided_weights_view_is_not_copied(name, c_weights, problem):
    view = c_weights[:, : DIM // 2]  # column-sliced: rows are not contiguous
    inputs = np.ascontiguousarray(problem["inputs"][:, : DIM // 2])
    increase = traced_peak_increase(lambda: call(name, view, dict(problem, inputs=inputs)))
    assert increase < MAX_FRACTION * view.nbytes


@LOSSES
def test_weight_shards_that_are_views_are_not_copied(name, c_weights, problem):
    shards = [c_weights[: NUM_CLASSES // 2], c_weights[NUM_CLASSES // 2 :]]  # "div" layout
    biases = [problem["biases"][: NUM_CLASSES // 2], problem["biases"][NUM_CLASSES // 2 :]]
    increase = traced_peak_increase(lambda: call(name, shards, dict(problem, biases=biases)))
    assert increase < MAX_FRACTION * c_weights.nbytes


@LOSSES
def test_resident_memory_does_not_grow_by_a_copy_of_the_weights(
    name, c_weights, f_weights, problem
):
    """Also catches a copy made inside the extension, which tracemalloc does not see."""
    for weights in (c_weights, f_weights):
        increase = resident_peak_increase(lambda w=weights: call(name, w, problem))
        assert increase < MAX_FRACTION * weights.nbytes


@LOSSES
def test_fortran_order_weights_give_the_same_losses_as_c_order(name, c_weights, f_weights, problem):
    expected = call(name, c_weights, problem)
    rustnce.reset_sampler_cache()
    np.testing.assert_allclose(call(name, f_weights, problem), expected, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- small problems


def small_problem(dtype=np.float32):
    rng = np.random.default_rng(2)
    num_classes, dim, batch, num_true = 300, 24, 40, 3
    return dict(
        weights=rng.standard_normal((num_classes + 2, dim)).astype(dtype),
        biases=rng.standard_normal(num_classes + 2).astype(dtype),
        labels=rng.integers(0, num_classes, size=(batch, num_true)),
        inputs=rng.standard_normal((batch, dim)).astype(dtype),
        num_classes=num_classes,
        num_true=num_true,
    )


SMALL_FUNCTIONS = pytest.mark.parametrize(
    "name, dtype",
    [
        (name, dtype)
        for name in (
            "nce_loss",
            "sampled_softmax_loss",
            "compute_sampled_logits",
            "full_sigmoid_loss",
            "full_softmax_loss",
        )
        for dtype in (np.float32, np.float64)
    ],
)


def evaluate(name: str, args: dict) -> np.ndarray:
    """One call from a fresh sampler cache (the default sampler draws the same ids)."""
    rustnce.reset_sampler_cache()
    if name.startswith("full_"):
        return getattr(rustnce, name)(**args)
    result = getattr(rustnce, name)(
        **args, num_sampled=10, remove_accidental_hits=True, seed=(7, 8)
    )
    return result[0] if name == "compute_sampled_logits" else result


@SMALL_FUNCTIONS
def test_int32_labels_give_the_same_result_as_int64(name, dtype):
    args = small_problem(dtype)
    expected = evaluate(name, dict(args, labels=args["labels"].astype(np.int64)))
    actual = evaluate(name, dict(args, labels=args["labels"].astype(np.int32)))
    assert actual.dtype == expected.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(actual, expected)


@SMALL_FUNCTIONS
def test_strided_inputs_view_gives_the_same_result_as_a_copy(name, dtype):
    args = small_problem(dtype)
    inputs = args["inputs"]
    batch, dim = inputs.shape
    bigger = np.zeros((2 * batch, dim + 5), dtype=dtype)
    bigger[::2, 3 : 3 + dim] = inputs
    view = bigger[::2, 3 : 3 + dim]  # row-stepped and column-sliced
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    expected = evaluate(name, dict(args, inputs=inputs.copy()))
    actual = evaluate(name, dict(args, inputs=view))
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=1e-6 if dtype == np.float32 else 1e-12)


@SMALL_FUNCTIONS
def test_transposed_labels_view_gives_the_same_result_as_a_copy(name, dtype):
    args = small_problem(dtype)
    labels_view = np.ascontiguousarray(args["labels"].T).T  # Fortran-order labels
    assert not labels_view.flags.c_contiguous
    expected = evaluate(name, args)
    actual = evaluate(name, dict(args, labels=labels_view))
    np.testing.assert_array_equal(actual, expected)
