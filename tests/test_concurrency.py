"""Concurrency cases tests/test_threads_and_fork.py does not cover (it covers thread counts,
forked children computing what the parent computes, many threads calling at once, and a
sampler object shared between threads):

(a) ``fork()`` while another thread is inside a call of a sampler the child then uses: the
    fork waits for the call, so the child does not inherit a sampler locked forever;
(b) ``fork()`` while another thread holds the module-level sampler cache's lock: the child
    gets a fresh lock;
(c) threads making refused and accepted calls at once: each refused call raises its own
    error, the accepted ones get the sequential results, and a shared sampler's stream is
    not moved by the refused calls.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import rustnce

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def run_in_fork(child, timeout: float = 60.0) -> int:
    """Forks; the child runs ``child()`` and exits 0 if it returns True, 1 otherwise. Returns
    the child's exit status; a child still running after ``timeout`` seconds is killed (-1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            code = 0 if child() else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


# ---------------------------------------------- (a) fork during another thread's call


def test_fork_during_a_sampler_call_in_another_thread_leaves_the_sampler_usable():
    # Unique sampling of the whole range of 2**19 ids: about 7 million draws (half a second
    # or so), long enough for the fork below to happen while the call runs.
    range_max = 2**19
    sampler = rustnce.UniformSampler(range_max, seed=(1, 2))
    true_classes = np.zeros((1, 1), np.int64)
    started, results = threading.Event(), []

    def long_call():
        started.set()
        results.append(sampler.sample(true_classes, 1, range_max, True))

    worker = threading.Thread(target=long_call)
    worker.start()
    started.wait()
    time.sleep(0.02)
    was_running = worker.is_alive()

    def child():
        ids = sampler.sample(true_classes, 1, 8, True)[0]
        again = rustnce.UniformSampler(16, seed=(3, 4)).sample(true_classes, 1, 4, False)[0]
        return ids.shape == (8,) and again.shape == (4,)

    status = run_in_fork(child)
    worker.join(timeout=120)
    assert status == 0, "the forked child could not use the sampler (deadlock or error)"
    assert not worker.is_alive() and sorted(results[0][0].tolist()) == list(range(range_max))
    # The parent's sampler still works, and its stream continues after the long call.
    assert sampler.sample(true_classes, 1, 8, True)[0].shape == (8,)
    if not was_running:  # pragma: no cover - a very fast machine
        pytest.skip("the long call ended before the fork; nothing was tested")


def test_fork_during_module_level_sampler_calls_in_other_threads():
    true_classes = np.zeros((1, 1), np.int64)
    stop = threading.Event()

    def keep_sampling(k):
        while not stop.is_set():
            rustnce.log_uniform_candidate_sampler(true_classes, 1, 2000, True, 4000, seed=k)

    threads = [threading.Thread(target=keep_sampling, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.05)

        def child():
            for k in range(3):
                ids = rustnce.log_uniform_candidate_sampler(true_classes, 1, 5, True, 10, seed=k)
                if ids[0].shape != (5,):
                    return False
            return True

        statuses = [run_in_fork(child) for _ in range(5)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert statuses == [0] * 5


# ------------------------------------- (b) fork while other threads use the kept samplers


def test_fork_while_another_thread_uses_the_sampler_cache():
    """The kept samplers live in the extension; its lock is held only with the interpreter
    attached, so a fork never finds it held, even while another thread keeps making samplers
    (whose tables are built with the interpreter released) and drawing from them."""
    true_classes = np.zeros((1, 1), np.int64)
    rustnce.uniform_candidate_sampler(true_classes, 1, 3, False, 10, seed=1)  # cache in use
    held, release = threading.Event(), threading.Event()
    unigrams = np.ones(50_000, np.float32)

    def hold_lock():
        seed = 0
        while not release.is_set():
            seed += 1
            rustnce.fixed_unigram_candidate_sampler(
                true_classes, 1, 3, False, 50_000, unigrams=unigrams, seed=seed
            )
            rustnce.uniform_candidate_sampler(true_classes, 1, 3, False, 10, seed=seed)
            held.set()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    held.wait()
    try:

        def child():
            out = rustnce.uniform_candidate_sampler(true_classes, 1, 3, False, 10, seed=2)
            rustnce.reset_sampler_cache()
            return out[0].shape == (3,)

        status = run_in_fork(child, timeout=30)
    finally:
        release.set()
        holder.join(timeout=60)
    assert status == 0, "the child inherited the held cache lock"
    assert rustnce.uniform_candidate_sampler(true_classes, 1, 3, False, 10, seed=2)[0].shape == (3,)


# ---------------------------------------- (c) refused and accepted calls from threads


def problem(k: int) -> dict:
    rng = np.random.default_rng(k)
    rows, dim, batch = 300, 8, 40
    return dict(
        weights=rng.standard_normal((rows, dim)).astype(np.float32),
        biases=rng.standard_normal(rows).astype(np.float32),
        labels=rng.integers(0, rows, (batch, 1)),
        inputs=rng.standard_normal((batch, dim)).astype(np.float32),
        num_sampled=16,
        num_classes=rows,
        seed=(7, k),
    )


MISTAKES = [
    (dict(labels=np.full((40, 1), 300)), IndexError, "labels"),
    (dict(num_sampled=301), ValueError, "num_sampled"),
    (dict(inputs=np.zeros((40, 9), np.float32)), ValueError, "inputs"),
    (dict(weights=np.zeros((300, 8), np.float64)), TypeError, "weights"),
    (dict(remove_accidental_hits=1), TypeError, "remove_accidental_hits"),
]


def task(k: int):
    """Even ``k``: an accepted call (returns its losses); odd: a refused one (returns the
    exception's class and message)."""
    kwargs = problem(k // 2)
    if k % 2 == 0:
        return rustnce.sampled_softmax_loss(**kwargs)
    mistake, _, _ = MISTAKES[(k // 2) % len(MISTAKES)]
    try:
        rustnce.sampled_softmax_loss(**dict(kwargs, **mistake))
    except (TypeError, ValueError, IndexError) as error:
        return type(error), str(error)
    raise AssertionError(f"call {k} was not refused")


def test_refused_and_accepted_calls_from_many_threads():
    tasks = list(range(120))
    sequential = [task(k) for k in tasks]
    rustnce.reset_sampler_cache()
    with ThreadPoolExecutor(max_workers=8) as executor:
        concurrent = list(executor.map(task, tasks))
    for k, (a, b) in enumerate(zip(sequential, concurrent)):
        if k % 2 == 0:
            assert a.tobytes() == b.tobytes(), k
        else:
            _, exception, name = MISTAKES[(k // 2) % len(MISTAKES)]
            assert a == b and a[0] is exception and name in a[1], (k, a, b)


def test_refused_calls_on_a_shared_sampler_do_not_move_its_stream():
    shared = rustnce.LogUniformSampler(100, seed=(9, 9))
    fresh = rustnce.LogUniformSampler(100, seed=(9, 9))
    good = np.arange(10).reshape(5, 2)
    bad = [
        (np.full((5, 2), 100), 2, 5, True),  # class out of range
        (good, 2, 101, True),  # unique sampling of more than the range
        (good, 3, 5, True),  # columns do not match num_true
        (good.astype(float), 2, 5, True),  # float classes
    ]

    def refused(k):
        with pytest.raises((ValueError, IndexError, TypeError)):
            shared.sample(*bad[k % len(bad)])

    with ThreadPoolExecutor(max_workers=8) as executor:
        list(executor.map(refused, range(200)))
    a = shared.sample(good, 2, 5, True)
    b = fresh.sample(good, 2, 5, True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
