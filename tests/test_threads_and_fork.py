"""Results do not depend on threads, processes or concurrent callers.

(a) The losses, every gradient form and the SGD step are bit-identical for any size of
    rustnce's thread pool (``set_num_threads`` 1, 2, 8, and ``RUSTNCE_NUM_THREADS=3`` in a
    subprocess).
(b) A process forked after rustnce's pool started (``multiprocessing`` with "fork") computes
    the same results as the parent, without deadlocking.
(c) Many Python threads calling rustnce at once get what the same calls made one after the
    other get; a sampler object shared by several threads serves its stream one call at a
    time, never corrupting it.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import rustnce

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _default_threads():
    rustnce.set_num_threads(0)
    yield
    rustnce.set_num_threads(0)


# ------------------------------------------------------------------ (a) thread counts

BATCH, DIM, CLASSES, SAMPLED, NUM_TRUE = 1500, 70, 5000, 200, 2


def big_problem(dtype):
    rng = np.random.default_rng(20240601)
    rows = CLASSES + 7
    weights = (rng.standard_normal((rows, DIM)) * 0.1).astype(dtype)
    biases = (rng.standard_normal(rows) * 0.1).astype(dtype)
    labels = rng.integers(0, CLASSES, size=(BATCH, NUM_TRUE)).astype(np.int64)
    inputs = rng.standard_normal((BATCH, DIM)).astype(dtype)
    sampler = rustnce.LogUniformSampler(CLASSES, seed=(11, 12))
    sampled, true_expected, sampled_expected = sampler.sample(labels, NUM_TRUE, SAMPLED, True)
    # Frequent ids are labels too: accidental hits.
    return dict(
        weights=weights,
        biases=biases,
        labels=labels,
        inputs=inputs,
        num_sampled=SAMPLED,
        num_classes=CLASSES,
        num_true=NUM_TRUE,
        sampled_values=(sampled, true_expected, sampled_expected),
    )


def mod_shards(array, count=3):
    return [np.ascontiguousarray(array[p::count]) for p in range(count)]


def compute_everything() -> dict[str, np.ndarray]:
    """Every result whose bits must not depend on the number of threads."""
    out: dict[str, np.ndarray] = {}
    for dtype in (np.float32, np.float64):
        base = big_problem(dtype)
        d = np.dtype(dtype).name
        out[f"{d}/sampled"] = base["sampled_values"][0]
        rng = np.random.default_rng(5)
        upstream = rng.uniform(-1, 1, size=BATCH).astype(dtype)
        for layout in ("whole", "mod3"):
            kwargs = dict(base)
            if layout == "mod3":
                kwargs.update(
                    weights=mod_shards(base["weights"]),
                    biases=mod_shards(base["biases"]),
                    partition_strategy="mod",
                )
            for loss, hits in (("nce", True), ("sampled_softmax", True), ("nce", False)):
                key = f"{d}/{layout}/{loss}/hits={hits}"
                kw = dict(kwargs, remove_accidental_hits=hits)
                loss_fn = rustnce.nce_loss if loss == "nce" else rustnce.sampled_softmax_loss
                out[f"{key}/loss"] = loss_fn(**kw)
                out[f"{key}/logits"] = rustnce.compute_sampled_logits(**kw)[0]
                grad_fn = (
                    rustnce.nce_loss_and_gradients
                    if loss == "nce"
                    else rustnce.sampled_softmax_loss_and_gradients
                )
                g = grad_fn(**kw, upstream=upstream)
                out[f"{key}/g.loss"] = g.loss
                out[f"{key}/g.inputs"] = g.inputs
                out[f"{key}/g.weights.indices"] = g.weights.indices
                out[f"{key}/g.weights.values"] = g.weights.values
                out[f"{key}/g.biases.values"] = g.biases.values
                for p, shard in enumerate(g.weight_shards):
                    out[f"{key}/g.weight_shards[{p}].indices"] = shard.indices
                    out[f"{key}/g.weight_shards[{p}].values"] = shard.values
                for p, shard in enumerate(g.bias_shards):
                    out[f"{key}/g.bias_shards[{p}].values"] = shard.values
                merged_w, merged_b = g.merged()
                out[f"{key}/merged.indices"] = merged_w.indices
                out[f"{key}/merged.weights"] = merged_w.values
                out[f"{key}/merged.biases"] = merged_b.values
                if layout == "whole":
                    target_w = np.zeros_like(base["weights"])
                    target_b = np.zeros_like(base["biases"])
                else:
                    target_w = [np.zeros_like(s) for s in kw["weights"]]
                    target_b = [np.zeros_like(s) for s in kw["biases"]]
                g.accumulate(target_w, target_b, scale=0.5)
                out[f"{key}/accumulate.weights"] = np.concatenate(
                    [np.ravel(t) for t in (target_w if layout == "mod3" else [target_w])]
                )
                out[f"{key}/accumulate.biases"] = np.concatenate(
                    [np.ravel(t) for t in (target_b if layout == "mod3" else [target_b])]
                )
                step_fn = (
                    rustnce.nce_sgd_step if loss == "nce" else rustnce.sampled_softmax_sgd_step
                )
                if layout == "whole":
                    weights, biases = base["weights"].copy(), base["biases"].copy()
                else:
                    weights = [s.copy() for s in kw["weights"]]
                    biases = [s.copy() for s in kw["biases"]]
                step_loss, step_inputs = step_fn(
                    **dict(kw, weights=weights, biases=biases), learning_rate=0.25
                )
                out[f"{key}/sgd.loss"] = step_loss
                out[f"{key}/sgd.inputs"] = step_inputs
                out[f"{key}/sgd.weights"] = np.concatenate(
                    [np.ravel(w) for w in (weights if layout == "mod3" else [weights])]
                )
                out[f"{key}/sgd.biases"] = np.concatenate(
                    [np.ravel(b) for b in (biases if layout == "mod3" else [biases])]
                )
        full = dict(base)
        for name in ("sampled_values", "num_sampled"):
            full.pop(name)
        out[f"{d}/full_softmax"] = rustnce.full_softmax_loss(**full)
        out[f"{d}/full_sigmoid"] = rustnce.full_sigmoid_loss(**full)
    return {k: np.array(v, copy=True) for k, v in out.items()}


def assert_bit_identical(actual: dict, expected: dict, label: str):
    assert sorted(actual) == sorted(expected)
    different = [
        key
        for key in expected
        if actual[key].dtype != expected[key].dtype
        or actual[key].shape != expected[key].shape
        or actual[key].tobytes() != expected[key].tobytes()
    ]
    assert not different, f"{label}: results differ in {different}"


@pytest.fixture(scope="module")
def one_thread_results():
    rustnce.set_num_threads(1)
    try:
        assert rustnce.get_num_threads() == 1
        return compute_everything()
    finally:
        rustnce.set_num_threads(0)


def test_results_are_nontrivial(one_thread_results):
    r = one_thread_results
    assert len(r) > 100
    for key in (
        "float32/whole/nce/hits=True/g.inputs",
        "float64/mod3/sampled_softmax/hits=True/loss",
    ):
        assert np.isfinite(r[key]).all() and np.abs(r[key]).sum() > 0
    # The SGD step moved the touched rows.
    assert not np.array_equal(
        r["float32/whole/nce/hits=True/sgd.weights"],
        big_problem(np.float32)["weights"].ravel(),
    )


@pytest.mark.parametrize("threads", [2, 8])
def test_every_result_is_bit_identical_for_any_thread_count(one_thread_results, threads):
    rustnce.set_num_threads(threads)
    assert rustnce.get_num_threads() == threads
    results = compute_everything()
    rustnce.set_num_threads(0)
    assert_bit_identical(results, one_thread_results, f"{threads} threads vs 1")


def test_set_num_threads_zero_restores_the_default():
    default = rustnce.get_num_threads()
    rustnce.set_num_threads(5)
    assert rustnce.get_num_threads() == 5
    rustnce.set_num_threads(0)
    assert rustnce.get_num_threads() == default


SUBPROCESS_SCRIPT = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
import rustnce
import test_threads_and_fork as t
results = t.compute_everything()
results["__threads__"] = np.array([rustnce.get_num_threads()])
np.savez({path!r}, **results)
"""


def test_environment_variable_thread_count_gives_identical_bits(one_thread_results, tmp_path):
    path = tmp_path / "results.npz"
    env = dict(os.environ, RUSTNCE_NUM_THREADS="3")
    script = SUBPROCESS_SCRIPT.format(tests=str(TESTS_DIR), path=str(path))
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    with np.load(path) as saved:
        results = {key: saved[key] for key in saved.files}
    assert results.pop("__threads__").tolist() == [3]
    assert_bit_identical(results, one_thread_results, "RUSTNCE_NUM_THREADS=3 vs 1 thread")


# ------------------------------------------------------------------------- (b) fork


def small_problem(seed):
    rng = np.random.default_rng(seed)
    rows, dim, batch = 3000, 24, 400
    return dict(
        weights=(rng.standard_normal((rows, dim)) * 0.1).astype(np.float32),
        biases=(rng.standard_normal(rows) * 0.1).astype(np.float32),
        labels=rng.integers(0, rows, size=(batch, 2)).astype(np.int64),
        inputs=rng.standard_normal((batch, dim)).astype(np.float32),
        num_sampled=64,
        num_classes=rows,
        num_true=2,
    )


def fork_work(task: int) -> list[np.ndarray]:
    """What the parent and each forked child compute (fresh sampler streams)."""
    rustnce.reset_sampler_cache()
    kwargs = small_problem(task)
    nce = rustnce.nce_loss(**kwargs, seed=7)
    g = rustnce.sampled_softmax_loss_and_gradients(**kwargs, seed=8)
    sampler = rustnce.LogUniformSampler(kwargs["num_classes"], seed=(3, task))
    triple = sampler.sample(kwargs["labels"], 2, 50, True)
    function_triple = rustnce.uniform_candidate_sampler(
        kwargs["labels"], 2, 30, False, 3000, seed=9
    )
    return [
        nce,
        g.loss,
        g.inputs,
        g.weights.indices,
        g.weights.values,
        *triple,
        *function_triple,
        np.array([os.getpid()]),
    ]


def test_forked_children_compute_what_the_parent_computes():
    rustnce.set_num_threads(2)
    # The parent's pool has started and run work before the fork.
    parent = [fork_work(task) for task in (0, 1)]
    context = multiprocessing.get_context("fork")
    pool = context.Pool(2)
    try:
        children = pool.map_async(fork_work, [0, 1]).get(timeout=60)
    finally:
        pool.terminate()
        pool.join()
    for task, (mine, theirs) in enumerate(zip(parent, children)):
        assert theirs[-1][0] != os.getpid(), "the work did not run in a child"
        assert len(mine) == len(theirs)
        for k, (a, b) in enumerate(zip(mine[:-1], theirs[:-1])):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (task, k)
    # The parent still computes after its children exist.
    again = fork_work(0)
    for a, b in zip(parent[0][:-1], again[:-1]):
        assert a.tobytes() == b.tobytes()


def fork_thread_counts(_: int) -> list[int]:
    counts = [rustnce.get_num_threads()]
    rustnce.set_num_threads(3)
    counts.append(rustnce.get_num_threads())
    rustnce.nce_loss(**small_problem(0), seed=1)
    return counts


def test_forked_child_can_resize_its_own_pool():
    rustnce.set_num_threads(2)
    rustnce.nce_loss(**small_problem(0), seed=1)
    context = multiprocessing.get_context("fork")
    pool = context.Pool(1)
    try:
        counts = pool.map_async(fork_thread_counts, [0]).get(timeout=60)
    finally:
        pool.terminate()
        pool.join()
    assert counts == [[2, 3]]
    assert rustnce.get_num_threads() == 2  # the child's setting stays in the child


# --------------------------------------------------------------- (c) Python threads


def threaded_task(k: int) -> list[np.ndarray]:
    """Call ``k``: a loss or a module-level sampler, with a seed no other call uses."""
    kwargs = small_problem(100 + k % 4)
    seed = 1000 + k
    kind = k % 5
    if kind == 0:
        return [rustnce.nce_loss(**kwargs, seed=seed)]
    if kind == 1:
        g = rustnce.sampled_softmax_loss_and_gradients(**kwargs, seed=seed)
        merged_w, merged_b = g.merged()
        return [g.loss, g.inputs, g.weights.values, merged_w.values, merged_b.values]
    if kind == 2:
        return list(rustnce.uniform_candidate_sampler(kwargs["labels"], 2, 40, True, 3000, seed))
    if kind == 3:
        return list(
            rustnce.log_uniform_candidate_sampler(kwargs["labels"], 2, 40, False, 3000, seed)
        )
    return list(
        rustnce.learned_unigram_candidate_sampler(kwargs["labels"], 2, 40, True, 3000, seed)
    )


def test_concurrent_python_threads_get_the_sequential_results():
    tasks = list(range(8 * 20))
    sequential = [threaded_task(k) for k in tasks]
    rustnce.reset_sampler_cache()
    barrier = threading.Barrier(8)

    def worker(first: int) -> list[tuple[int, list[np.ndarray]]]:
        barrier.wait(timeout=30)
        return [(k, threaded_task(k)) for k in tasks[first::8]]

    with ThreadPoolExecutor(max_workers=8) as executor:
        futures = [executor.submit(worker, first) for first in range(8)]
        concurrent = dict(item for future in futures for item in future.result(timeout=120))
    assert sorted(concurrent) == tasks
    for k in tasks:
        for a, b in zip(sequential[k], concurrent[k]):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), k


@pytest.mark.parametrize(
    "make_sampler",
    [
        pytest.param(lambda: rustnce.UniformSampler(1000, seed=(5, 6)), id="uniform"),
        pytest.param(lambda: rustnce.LearnedUnigramSampler(1000, seed=(5, 7)), id="learned"),
        pytest.param(lambda: rustnce.LogUniformSampler(1000, seed=(5, 8)), id="log_uniform"),
    ],
)
def test_shared_sampler_object_serialises_its_stream(make_sampler):
    true_classes = np.arange(32, dtype=np.int64).reshape(16, 2) * 7
    calls, threads = 50, 4

    def draw(sampler):
        sampled, true_expected, sampled_expected = sampler.sample(true_classes, 2, 24, True)
        return (sampled.tobytes(), true_expected.tobytes(), sampled_expected.tobytes())

    fresh = make_sampler()
    sequential = [draw(fresh) for _ in range(calls * threads)]
    assert len(set(sequential)) == len(sequential)  # the stream moves on every call

    shared = make_sampler()
    barrier = threading.Barrier(threads)

    def worker(_: int):
        barrier.wait(timeout=30)
        return [draw(shared) for _ in range(calls)]

    with ThreadPoolExecutor(max_workers=threads) as executor:
        futures = [executor.submit(worker, t) for t in range(threads)]
        concurrent = [call for future in futures for call in future.result(timeout=60)]

    # Every call is one of the sequential calls, each exactly once...
    assert sorted(concurrent) == sorted(sequential)
    # ...so, in particular, the same multiset of ids.
    ids = np.sort(np.concatenate([np.frombuffer(c[0], np.int64) for c in concurrent]))
    expected_ids = np.sort(np.concatenate([np.frombuffer(c[0], np.int64) for c in sequential]))
    np.testing.assert_array_equal(ids, expected_ids)
    # And the sampler continues where the 200th sequential call left off.
    assert draw(shared) == draw(fresh)
