"""Times forward + all gradients of the NCE loss: rustnce against the NumPy reference,
TensorFlow and PyTorch (whichever are importable), and against the machine's matmul ceiling.

Every implementation gets the same inputs and the same ``sampled_values`` triple (from
``rustnce.log_uniform_candidate_sampler``), so all compute the same thing; the losses are
checked to agree once per configuration.

    python benches/compare.py                         # all configurations
    python benches/compare.py --configs w2v-small --repeats 10 --markdown

Run it in an environment where rustnce, TensorFlow and PyTorch are all installed to get every
column in one process (e.g. ``maturin build --release`` and pip-install the wheel into the
TensorFlow environment); missing frameworks are skipped with a note.

Timings are medians after warm-up. Every implementation is timed in ``--rounds`` blocks
(default 3), interleaved with the others' blocks (the order rotating): a timing is the median
of its rounds' medians, and a ratio ("vs tensorflow", "vs faster peer" — the faster of
TensorFlow and PyTorch in that round —, "of ceiling") the median of the rounds' ratios, so
that drift and other processes' load fall on all implementations alike. Other processes on the
machine spoil timings badly (parallel code waits for its slowest thread), so before each
measurement the script waits for the CPUs to be idle (``--wait-idle``), measures again if
other processes used CPU time meanwhile (from /proc/stat), and marks a measurement DISTURBED
if they still did.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import itertools
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import rustnce
import rustnce.reference

LOSS_RTOL = 1e-4  # relative agreement required of the per-example losses
GRAD_RTOL = 1e-3  # relative (to the largest entry) agreement of the inputs gradient
REFERENCE_SKIP_SECONDS = 2.0  # the reference is timed only if a single call is faster
SLOW_BUDGET_SECONDS = 20.0  # fewer repeats for implementations slower than this budget allows
MIN_BLOCK_SECONDS = 0.5  # more repeats for fast ones: steadier medians, measurable CPU load
MAX_RUNS = 2000
IDLE_WINDOW_SECONDS = 0.25  # the window in which the machine must be idle before measuring
IDLE_CORES = 0.1  # "idle": other processes use less than this many cores
DISTURBED_CORES = 0.25  # a measurement during which other processes used more is repeated
GAVE_UP_WAIT_SECONDS = 5.0  # the wait for idle once a wait has timed out (busy machine)
INTERLEAVED_ROUNDS = 120  # at least this many rounds of alternating calls


@dataclass(frozen=True)
class Config:
    name: str
    classes: int
    dim: int
    batch: int
    num_sampled: int
    num_true: int


CONFIGS = {
    c.name: c
    for c in (
        Config("w2v-small", 100_000, 128, 1_024, 64, 1),
        Config("w2v-large", 1_000_000, 300, 4_096, 128, 1),
        Config("multi-true", 200_000, 128, 2_048, 64, 5),
    )
}


@dataclass
class Timing:
    ms: float | None = None  # median milliseconds; None: not run
    runs: int = 0
    note: str = ""
    min_ms: float | None = None
    rounds: list[float] = field(default_factory=list)  # each round's median, milliseconds


@dataclass
class Result:
    config: Config
    timings: dict[str, Timing] = field(default_factory=dict)
    # What each timing times, for the later rounds: (function, repeats, warm-up calls).
    callables: dict[str, tuple[Callable[[], Any], int, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Optional frameworks
# ---------------------------------------------------------------------------------------


def _import_tensorflow() -> tuple[Any, str]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as error:
        return None, f"TensorFlow not importable ({error}); its column is skipped"
    return tf, ""


def _import_torch() -> tuple[Any, str]:
    try:
        import torch
    except ImportError as error:
        return None, f"PyTorch not importable ({error}); its column is skipped"
    torch.set_num_threads(os.cpu_count() or 1)
    return torch, ""


# ---------------------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _numpy_blas() -> str:
    try:
        from threadpoolctl import threadpool_info

        pools = [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('threading_layer', '?')}, "
            f"{p.get('num_threads')} threads, {p.get('architecture', '?')})"
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ]
        if pools:
            return "; ".join(pools) + " [threadpoolctl, all BLAS loaded in the process]"
    except ImportError:
        pass
    try:
        config = np.show_config(mode="dicts")  # NumPy >= 1.26
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} [numpy.show_config]"
    except Exception:  # older NumPy: no dict mode
        return "see numpy.show_config()"


def describe_machine(tf: Any, torch: Any, notes: list[str]) -> None:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print("== machine")
    print(f"cpu: {_cpu_model()}; os.cpu_count()={os.cpu_count()}, usable cores={affinity}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    print(f"numpy {np.__version__}, BLAS: {_numpy_blas()}")
    env_threads = os.environ.get("RUSTNCE_NUM_THREADS")
    print(
        f"rustnce {_version('rustnce')}: RUSTNCE_NUM_THREADS="
        f"{env_threads if env_threads is not None else '(unset)'}, "
        f"rustnce.get_num_threads()={rustnce.get_num_threads()}"
    )
    if tf is not None:
        intra = tf.config.threading.get_intra_op_parallelism_threads()
        inter = tf.config.threading.get_inter_op_parallelism_threads()
        print(
            f"tensorflow {tf.__version__}: intra_op threads={intra or 'default'}, "
            f"inter_op threads={inter or 'default'}"
        )
    if torch is not None:
        print(
            f"torch {torch.__version__}: torch.get_num_threads()={torch.get_num_threads()}, "
            f"mkl={torch.backends.mkl.is_available()}"
        )
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if variable in os.environ:
            print(
                f"note: {variable}={os.environ[variable]} is set (OpenBLAS kernel/blocking "
                "override; affects NumPy's matmul ceiling and the reference; left as is)"
            )
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if variable in os.environ:
            print(f"note: {variable}={os.environ[variable]} is set")
    for note in notes:
        print(f"note: {note}")
    print()


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------


class ForeignLoad:
    """CPU time other processes used (cores busy on average) between ``start`` and ``stop``,
    from /proc/stat minus this process's own CPU time (Linux; None elsewhere)."""

    def __init__(self) -> None:
        self._start = self._read()
        self._time = time.perf_counter()

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:]]
            with open("/proc/self/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return None
        busy = sum(values[:8]) - values[3] - values[4]  # all but idle and iowait
        own = int(fields[11]) + int(fields[12])  # utime + stime, all threads
        return busy, own

    def stop(self) -> float | None:
        end = self._read()
        elapsed = time.perf_counter() - self._time
        if self._start is None or end is None or elapsed <= 0:
            return None
        foreign = (end[0] - self._start[0]) - (end[1] - self._start[1])
        return max(foreign, 0) / os.sysconf("SC_CLK_TCK") / elapsed


@dataclass
class Gate:
    """Waits for the machine to be idle (other processes < IDLE_CORES) before measuring.
    After giving up once, waits at most GAVE_UP_WAIT_SECONDS until an idle window is seen."""

    max_wait: float
    waited: float = 0.0
    timed_out: int = 0
    busy_machine: bool = False

    def wait(self) -> None:
        limit = min(self.max_wait, GAVE_UP_WAIT_SECONDS) if self.busy_machine else self.max_wait
        deadline = time.perf_counter() + limit
        while True:
            load = ForeignLoad()
            time.sleep(IDLE_WINDOW_SECONDS)  # also lets this process's spinning threads settle
            busy = load.stop()
            if busy is None or busy < IDLE_CORES:
                self.busy_machine = False
                return
            self.waited += IDLE_WINDOW_SECONDS
            if time.perf_counter() > deadline:
                self.timed_out += 1
                self.busy_machine = True
                return


GATE = Gate(max_wait=60.0)


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> Timing:
    """Median wall time of ``fn`` after ``warmup`` calls: ``repeats`` runs, fewer for slow
    functions, more for fast ones (at least MIN_BLOCK_SECONDS in all).
    Waits for an idle machine first and measures again (up to 3 times in all) if other
    processes took CPU time during the measurement."""
    GATE.wait()
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
    per_call = (time.perf_counter() - start) / max(warmup, 1)
    runs = repeats
    if per_call * repeats > SLOW_BUDGET_SECONDS:
        runs = max(3, int(SLOW_BUDGET_SECONDS / max(per_call, 1e-9)))
    elif per_call * repeats < MIN_BLOCK_SECONDS:
        runs = min(MAX_RUNS, int(MIN_BLOCK_SECONDS / max(per_call, 1e-9)) + 1)
    for attempt in range(3):
        if attempt:
            GATE.wait()
        load = ForeignLoad()
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        busy = load.stop()
        if busy is None or busy < DISTURBED_CORES:
            break
    timing = Timing(ms=1e3 * statistics.median(samples), runs=runs, min_ms=1e3 * min(samples))
    if busy is not None and busy >= DISTURBED_CORES:
        timing.note = f"DISTURBED: other processes used {busy:.2f} cores meanwhile"
    return timing


def record(
    result: Result, name: str, fn: Callable[[], Any], repeats: int, warmup: int = 2
) -> Timing:
    """Times ``fn`` (the first round) and keeps it for the later rounds."""
    timing = time_call(fn, repeats, warmup)
    timing.rounds = [timing.ms] if timing.ms is not None else []
    result.timings[name] = timing
    result.callables[name] = (fn, repeats, warmup)
    return timing


def more_rounds(result: Result, rounds: int) -> None:
    """Times every recorded implementation again, ``rounds - 1`` more times, interleaved (the
    order rotating from round to round); each timing becomes the median of its rounds'
    medians, so load from other processes falls on all implementations alike."""
    names = list(result.callables)
    for round_number in range(1, rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            fn, repeats, warmup = result.callables[name]
            again = time_call(fn, repeats, warmup)
            timing = result.timings[name]
            if again.ms is not None:
                timing.rounds.append(again.ms)
                timing.runs += again.runs
                timing.min_ms = min(timing.min_ms or again.ms, again.min_ms or again.ms)
                if again.note.startswith("DISTURBED") and not timing.note.startswith("DISTURBED"):
                    timing.note = ", ".join(filter(None, [again.note, timing.note]))
    for timing in result.timings.values():
        if len(timing.rounds) > 1:
            timing.ms = statistics.median(timing.rounds)


def round_ratio(theirs: Timing, mine: Timing) -> float:
    """The median over rounds of ``theirs / mine`` (each round measured both)."""
    pairs = list(zip(theirs.rounds, mine.rounds))
    if not pairs:
        return theirs.ms / mine.ms
    return statistics.median(t / m for t, m in pairs)


def log_uniform_labels(rng: np.random.Generator, shape: tuple[int, ...], classes: int):
    """Zipf-like labels drawn from the log-uniform distribution (word frequencies)."""
    u = rng.random(shape)
    ids = np.floor(np.exp(u * np.log(classes + 1.0))).astype(np.int64) - 1
    return np.clip(ids, 0, classes - 1)


def make_inputs(config: Config, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    c, d, b, s, t = config.classes, config.dim, config.batch, config.num_sampled, config.num_true
    weights = np.empty((c, d), dtype=np.float32)
    chunk = 1 << 16  # fill in chunks: no float64 temporary of the whole matrix
    for start in range(0, c, chunk):
        rows = weights[start : start + chunk]
        rng.standard_normal(rows.shape, dtype=np.float32, out=rows)
        rows *= np.float32(1.0 / np.sqrt(d))
    biases = (0.1 * rng.standard_normal(c, dtype=np.float32)).astype(np.float32)
    inputs = rng.standard_normal((b, d), dtype=np.float32)
    labels = log_uniform_labels(rng, (b, t), c)
    sampled, true_expected, sampled_expected = rustnce.log_uniform_candidate_sampler(
        labels, t, s, True, c, seed=(1234, 5678)
    )
    return {
        "weights": weights,
        "biases": biases,
        "inputs": inputs,
        "labels": labels,
        "sampled_values": (sampled, true_expected, sampled_expected),
    }


def compare(
    name: str,
    loss: np.ndarray,
    grad: np.ndarray | None,
    base: dict,
    result: Result,
    loss_rtol: float = LOSS_RTOL,
    grad_rtol: float = GRAD_RTOL,
):
    loss = np.asarray(loss, dtype=np.float64)
    ref_loss = np.asarray(base["loss"], dtype=np.float64)
    rel = np.max(np.abs(loss - ref_loss) / np.maximum(np.abs(ref_loss), 1e-30))
    line = f"{name}: max relative loss difference to rustnce {rel:.2e}"
    if grad is not None:
        ref_grad = np.asarray(base["inputs_grad"], dtype=np.float64)
        scale = max(np.max(np.abs(ref_grad)), 1e-30)
        grad_rel = np.max(np.abs(np.asarray(grad, dtype=np.float64) - ref_grad)) / scale
        line += f", inputs gradient {grad_rel:.2e} (of max |entry|)"
        if not grad_rel <= grad_rtol:
            result.warnings.append(
                f"WARNING: {name} inputs gradient differs from rustnce by {grad_rel:.2e} "
                f"(> {grad_rtol:g} of the largest entry)"
            )
    result.notes.append(line)
    if not rel <= loss_rtol:
        result.warnings.append(
            f"WARNING: {name} losses differ from rustnce's by {rel:.2e} relative (> {loss_rtol:g})"
        )


# ---------------------------------------------------------------------------------------
# Implementations
# ---------------------------------------------------------------------------------------


def run_rustnce(config: Config, data: dict, repeats: int, result: Result) -> dict:
    w, b, x, labels = (data[k] for k in ("weights", "biases", "inputs", "labels"))
    sv = data["sampled_values"]
    s, c, t = config.num_sampled, config.classes, config.num_true

    def forward_backward():
        g = rustnce.nce_loss_and_gradients(w, b, labels, x, s, c, num_true=t, sampled_values=sv)
        return g.loss, g.inputs, g.weights, g.biases

    loss, inputs_grad, weight_grad, bias_grad = forward_backward()
    expected_rows = config.batch * t + s
    assert weight_grad.values.shape == (expected_rows, config.dim), weight_grad.values.shape
    assert bias_grad.values.shape == (expected_rows,), bias_grad.values.shape
    record(result, "rustnce", forward_backward, repeats)

    w_before = w[sv[0][:4]].copy()

    def sgd_step():
        return rustnce.nce_sgd_step(
            w, b, labels, x, s, c, 0.0, num_true=t, sampled_values=sv, upstream="sum"
        )

    step_loss, step_grad = sgd_step()
    record(result, "rustnce sgd step", sgd_step, repeats)
    if not np.array_equal(w[sv[0][:4]], w_before):
        result.warnings.append("WARNING: nce_sgd_step with learning_rate=0 changed the weights")
    base = {"loss": loss.copy(), "inputs_grad": inputs_grad.copy()}
    compare("rustnce sgd step", step_loss, step_grad, base, result)
    if rustnce.bfloat16_available():

        def bfloat16():
            g = rustnce.nce_loss_and_gradients(
                w, b, labels, x, s, c, num_true=t, sampled_values=sv, precision="bfloat16"
            )
            return g.loss, g.inputs, g.weights, g.biases

        bf_loss, bf_inputs, _, _ = bfloat16()
        record(result, "rustnce bfloat16", bfloat16, repeats)
        # bfloat16 operands: relative errors of about 2^-8 per product, not float32's.
        compare("rustnce bfloat16", bf_loss, bf_inputs, base, result, 2e-2, 2e-2)
    else:
        result.notes.append(
            "rustnce bfloat16: not timed (this processor lacks AVX-512 BF16; "
            'precision="bfloat16" computes in float32 here)'
        )
    return base


def run_reference(config: Config, data: dict, repeats: int, result: Result, base: dict) -> None:
    w, b, x, labels = (data[k] for k in ("weights", "biases", "inputs", "labels"))
    sv = data["sampled_values"]
    s, c, t = config.num_sampled, config.classes, config.num_true

    def forward_backward():
        return rustnce.reference.nce_loss_and_gradients(
            w, b, labels, x, s, c, num_true=t, sampled_values=sv
        )

    GATE.wait()
    start = time.perf_counter()
    out = forward_backward()
    single = time.perf_counter() - start
    compare("reference", out["loss"], out["inputs_grad"], base, result)
    del out
    if single > REFERENCE_SKIP_SECONDS:
        result.timings["reference"] = Timing(
            note=f"skipped: one call took {single:.2f} s > {REFERENCE_SKIP_SECONDS:g} s"
        )
        return
    record(result, "reference", forward_backward, repeats, warmup=1)


def run_tensorflow(tf: Any, config: Config, data: dict, repeats: int, result: Result, base):
    s, c, t = config.num_sampled, config.classes, config.num_true
    sampled, true_expected, sampled_expected = data["sampled_values"]
    # A copy (1.2 GB for w2v-large); creating it briefly takes a second one, and after the
    # variable is gone TF's allocator keeps (and reuses) the memory: numpy + TF stay within
    # three copies of the weights. PyTorch below shares the NumPy arrays.
    weights = tf.Variable(data["weights"], name="weights")
    biases = tf.Variable(data["biases"], name="biases")
    inputs = tf.constant(data["inputs"])
    labels = tf.constant(data["labels"], dtype=tf.int64)
    sampled_values = (
        tf.constant(sampled, dtype=tf.int64),
        tf.constant(true_expected, dtype=tf.float32),
        tf.constant(sampled_expected, dtype=tf.float32),
    )

    @tf.function
    def forward_backward(labels, inputs, sampled_values):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.nn.nce_loss(
                weights=weights,
                biases=biases,
                labels=labels,
                inputs=inputs,
                num_sampled=s,
                num_classes=c,
                num_true=t,
                sampled_values=sampled_values,
            )
            total = tf.reduce_sum(loss)
        grad_w, grad_b, grad_x = tape.gradient(total, [weights, biases, inputs])
        return loss, grad_w, grad_b, grad_x

    def call():
        return forward_backward(labels, inputs, sampled_values)

    loss, grad_w, grad_b, grad_x = call()  # traces
    if not isinstance(grad_w, tf.IndexedSlices):
        result.notes.append(f"tensorflow: weight gradient is {type(grad_w).__name__}")
    compare("tensorflow", loss.numpy(), grad_x.numpy(), base, result)
    del loss, grad_w, grad_b, grad_x
    record(result, "tensorflow", call, repeats, warmup=3)


def torch_hand_written(torch: Any, config: Config, data: dict) -> Callable[[], tuple]:
    """The NCE loss written by hand in PyTorch (sparse embedding gather, BCE with logits):
    a function doing forward + ``loss.sum().backward()``."""
    functional = torch.nn.functional
    s, c, t, bsz = config.num_sampled, config.classes, config.num_true, config.batch
    sampled, true_expected, sampled_expected = data["sampled_values"]
    # Leaves sharing memory with the NumPy arrays (nothing writes them): no extra copy.
    weights = torch.from_numpy(data["weights"]).requires_grad_()
    biases = torch.from_numpy(data["biases"].reshape(c, 1)).requires_grad_()
    inputs = torch.from_numpy(data["inputs"].copy()).requires_grad_()
    all_ids = torch.from_numpy(np.concatenate([data["labels"].reshape(-1), sampled]))
    log_true = torch.from_numpy(np.log(true_expected).astype(np.float32))
    log_sampled = torch.from_numpy(np.log(sampled_expected).astype(np.float32))
    targets = torch.cat(
        [torch.full((bsz, t), 1.0 / t, dtype=torch.float32), torch.zeros(bsz, s)], dim=1
    )

    def forward_backward():
        weights.grad = biases.grad = inputs.grad = None
        rows = functional.embedding(all_ids, weights, sparse=True)  # [B*T+S, D]
        row_biases = functional.embedding(all_ids, biases, sparse=True).squeeze(1)
        true_w = rows[: bsz * t].view(bsz, t, -1)
        sampled_w = rows[bsz * t :]
        true_logits = (true_w * inputs.unsqueeze(1)).sum(2) + row_biases[: bsz * t].view(bsz, t)
        sampled_logits = inputs @ sampled_w.T + row_biases[bsz * t :]
        logits = torch.cat([true_logits - log_true, sampled_logits - log_sampled], dim=1)
        loss = functional.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(1)
        loss.sum().backward()
        return loss, weights.grad, biases.grad, inputs.grad

    return forward_backward


def run_torch(torch: Any, config: Config, data: dict, repeats: int, result: Result, base):
    forward_backward = torch_hand_written(torch, config, data)
    loss, grad_w, grad_b, grad_x = forward_backward()
    if not grad_w.is_sparse:
        result.notes.append("torch: weight gradient is dense")
    compare("torch", loss.detach().numpy(), grad_x.numpy(), base, result)
    del loss, grad_w, grad_b, grad_x
    record(result, "torch", forward_backward, repeats, warmup=3)


def run_torch_autograd(torch: Any, config: Config, data: dict, repeats: int, result: Result, base):
    """rustnce.torch.nce_loss under autograd: forward, then ``loss.sum().backward()`` into
    sparse gradients (as the hand-written PyTorch above, with ``F.embedding(sparse=True)``)."""
    import rustnce.torch

    s, c, t = config.num_sampled, config.classes, config.num_true
    sv = data["sampled_values"]
    # Leaves sharing memory with the NumPy arrays (nothing writes them): no extra copy.
    weights = torch.from_numpy(data["weights"]).requires_grad_()
    biases = torch.from_numpy(data["biases"]).requires_grad_()
    inputs = torch.from_numpy(data["inputs"].copy()).requires_grad_()
    labels = torch.from_numpy(data["labels"])

    def forward_backward():
        weights.grad = biases.grad = inputs.grad = None
        loss = rustnce.torch.nce_loss(
            weights, biases, labels, inputs, s, c, num_true=t, sampled_values=sv, sparse_grad=True
        )
        loss.sum().backward()
        return loss, weights.grad, biases.grad, inputs.grad

    loss, grad_w, grad_b, grad_x = forward_backward()
    if not (grad_w.is_sparse and grad_b.is_sparse):
        result.warnings.append("WARNING: rustnce.torch gave dense weight/bias gradients")
    compare("rustnce.torch autograd", loss.detach().numpy(), grad_x.numpy(), base, result)
    del loss, grad_w, grad_b, grad_x
    record(result, "rustnce.torch autograd", forward_backward, repeats, warmup=3)

    # The targets as ratios measured side by side: the three alternate call by call, so load
    # from other processes falls on all of them alike.
    w, b, x, y = (data[k] for k in ("weights", "biases", "inputs", "labels"))

    def plain():
        g = rustnce.nce_loss_and_gradients(w, b, y, x, s, c, num_true=t, sampled_values=sv)
        return g.loss, g.inputs, g.weights, g.biases

    hand_written = torch_hand_written(torch, config, data)
    # PyTorch's OpenMP threads keep spinning after its ops and slow the rustnce call that
    # follows (benches/torch_threads.py): measured with PyTorch's default pool and with one
    # intra-op thread.
    threads = torch.get_num_threads()
    for torch_threads in sorted({threads, 1}, reverse=True):
        torch.set_num_threads(torch_threads)
        ratios = interleaved_ratios(
            forward_backward, {"plain": plain, "hand": hand_written}, repeats
        )
        result.notes.append(
            f"rustnce.torch autograd, interleaved medians, torch threads {torch_threads}: "
            f"{ratios['plain']:.2f}x the plain rustnce.nce_loss_and_gradients call (target "
            f">= 0.95), {ratios['hand']:.2f}x the hand-written PyTorch loss (target >= 1.3)"
        )
    torch.set_num_threads(threads)
    weights.grad = biases.grad = inputs.grad = None


def interleaved_ratios(
    mine: Callable[[], Any], others: dict[str, Callable[[], Any]], repeats: int
) -> dict[str, float]:
    """``median(other) / median(mine)`` with the calls alternating (at least 30 rounds).

    A call right after PyTorch's finds its OpenMP threads still spinning, so every function
    must follow every other one equally often. The rounds go through every order of the
    functions, and each round starts with an untimed call of its last function: within a
    round the timed calls then follow each other as around a circle, and over all orders
    every ordered pair of neighbours occurs equally often. (Merely rotating one order would
    put the function after PyTorch's there in most rounds.)"""
    samples: dict[str, list[float]] = {name: [] for name in ["mine", *others]}
    functions = list({"mine": mine, **others}.items())
    orders = list(itertools.permutations(functions))
    GATE.wait()
    for _ in range(2):
        for _, fn in functions:
            fn()
    # Enough rounds for a steady median: one slow call in ten (another process, a page of
    # the weights fetched again) moved a 30-round ratio by several percent.
    rounds = max(repeats, INTERLEAVED_ROUNDS)
    rounds += -rounds % len(orders)
    for round_number in range(rounds):
        order = orders[round_number % len(orders)]
        order[-1][1]()
        for name, fn in order:
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    mine_ms = statistics.median(samples["mine"])
    return {name: statistics.median(samples[name]) / mine_ms for name in others}


#: The per-call budgets of a tiny call (1 example, 16 dims, 8 samples), in microseconds.
TINY_TARGETS_US = {
    "nce_loss": 15.0,
    "sampled_softmax_loss": 15.0,
    "nce_loss_and_gradients": 20.0,
    "nce_sgd_step": 20.0,
}


def run_tiny_calls(torch: Any, repeats: int) -> None:
    """Per-call cost of the public functions on a problem so small that the arithmetic is
    negligible (1 example, 16 dims, 8 samples of 1,000 classes): what online and small-batch
    users pay on every step. Beside them: drawing the sample alone (a floor for any call that
    samples) and, where PyTorch is importable, the same NCE loss and gradients written by hand
    in PyTorch."""
    rng = np.random.default_rng(0)
    classes, dim = 1_000, 16
    w = (rng.standard_normal((classes, dim)) * 0.1).astype(np.float32)
    b = np.zeros(classes, np.float32)
    labels = rng.integers(0, classes, (1, 1))
    x = rng.standard_normal((1, dim)).astype(np.float32)
    sampler = rustnce.LogUniformSampler(classes, seed=1)
    calls: dict[str, Callable[[], Any]] = {
        "sampler.sample (floor)": lambda: sampler.sample(labels, 1, 8, True),
        "nce_loss": lambda: rustnce.nce_loss(w, b, labels, x, 8, classes, seed=1),
        "sampled_softmax_loss": lambda: rustnce.sampled_softmax_loss(
            w, b, labels, x, 8, classes, seed=1
        ),
        "nce_loss_and_gradients": lambda: rustnce.nce_loss_and_gradients(
            w, b, labels, x, 8, classes, seed=1
        ),
        "nce_sgd_step": lambda: rustnce.nce_sgd_step(w, b, labels, x, 8, classes, 0.0, seed=1),
    }
    if torch is not None:
        config = Config("tiny", classes, dim, 1, 8, 1)
        data = {
            "weights": w,
            "biases": b,
            "inputs": x,
            "labels": labels,
            "sampled_values": sampler.sample(labels, 1, 8, True),
        }
        calls["PyTorch by hand (loss + gradients)"] = torch_hand_written(torch, config, data)
    print("## tiny calls (1 example, 16 dims, 8 samples): microseconds per call\n")
    print("| call | median us | min us | target us | within |")
    print("|---|---|---|---|---|")
    for name, call in calls.items():
        timing = time_call(call, max(repeats, 2000))
        target = TINY_TARGETS_US.get(name)
        within = "" if target is None else ("yes" if timing.ms * 1e3 <= target else "no")
        print(
            f"| {name} | {timing.ms * 1e3:.1f} | {timing.min_ms * 1e3:.1f} | "
            f"{'' if target is None else f'{target:g}'} | {within} | {timing.note}"
        )
    print()
    sys.stdout.flush()


def run_ceiling(config: Config, repeats: int, result: Result) -> None:
    """NumPy float32 matmuls with the FLOPs of the three [B,S,D] products."""
    rng = np.random.default_rng(1)
    b, s, d = config.batch, config.num_sampled, config.dim
    a = rng.standard_normal((b, d), dtype=np.float32)
    wt = np.ascontiguousarray(rng.standard_normal((s, d), dtype=np.float32).T)  # [D, S]
    w = rng.standard_normal((s, d), dtype=np.float32)
    g = rng.standard_normal((b, s), dtype=np.float32)
    x = rng.standard_normal((b, d), dtype=np.float32)

    def products():
        a @ wt  # logits [B, S]
        g @ w  # inputs gradient [B, D]
        g.T @ x  # sampled weight gradient [S, D]

    record(result, "matmul ceiling", products, repeats, warmup=3)


def note_gflops(result: Result) -> None:
    """The ceiling's rate, from its final (median) time."""
    timing = result.timings.get("matmul ceiling")
    if timing is None or timing.ms is None:
        return
    config = result.config
    flops = 3 * 2 * config.batch * config.num_sampled * config.dim
    gflops = flops / (timing.ms * 1e-3) / 1e9
    timing.note = ", ".join(filter(None, [f"{gflops:.0f} GFLOP/s", timing.note]))


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

COLUMNS = [
    "rustnce",
    "rustnce sgd step",
    "rustnce bfloat16",
    "rustnce.torch autograd",
    "reference",
    "tensorflow",
    "torch",
    "matmul ceiling",
]
BASELINES = ["tensorflow", "torch", "reference"]
PEERS = ["tensorflow", "torch"]  # the frameworks the speed targets are set against


def _fmt_ms(timing: Timing | None) -> str:
    if timing is None or timing.ms is None:
        return "—"
    return f"{timing.ms:.2f}" if timing.ms < 100 else f"{timing.ms:.0f}"


def print_result(result: Result, markdown: bool) -> None:
    config = result.config
    timings = result.timings
    title = (
        f"{config.name}: classes={config.classes:,} dim={config.dim} batch={config.batch:,} "
        f"num_sampled={config.num_sampled} num_true={config.num_true} (float32)"
    )
    rows: list[list[str]] = []
    for name in COLUMNS:
        timing = timings.get(name)
        if timing is None:
            continue
        detail = timing.note
        if timing.ms is not None:
            spread = (
                f"rounds {min(timing.rounds):.2f}–{max(timing.rounds):.2f}"
                if len(timing.rounds) > 1
                else ""
            )
            detail = ", ".join(
                filter(
                    None,
                    [f"median of {timing.runs}", f"min {timing.min_ms:.2f}", spread, detail],
                )
            )
        rows.append([name, _fmt_ms(timing), detail])
    speedups: list[list[str]] = []
    ceiling = timings.get("matmul ceiling")
    for variant in ("rustnce", "rustnce sgd step", "rustnce bfloat16", "rustnce.torch autograd"):
        mine = timings.get(variant)
        if mine is None or mine.ms is None:
            continue
        cells = [variant]
        for other in BASELINES:
            theirs = timings.get(other)
            cells.append(
                f"{round_ratio(theirs, mine):.2f}x" if theirs is not None and theirs.ms else "—"
            )
        peers = [timings[p] for p in PEERS if p in timings and timings[p].ms]
        if peers:
            # Per round, the faster peer of that round; the median over rounds.
            per_round = [
                min(p.rounds[k] for p in peers) / mine.rounds[k]
                for k in range(min(len(mine.rounds), *(len(p.rounds) for p in peers)))
            ]
            fastest = min(peers, key=lambda p: p.ms)
            ratio = statistics.median(per_round) if per_round else fastest.ms / mine.ms
            cells.append(f"{ratio:.2f}x")
        else:
            cells.append("—")
        cells.append(
            f"{round_ratio(ceiling, mine):.0%}" if ceiling is not None and ceiling.ms else "—"
        )
        speedups.append(cells)
    speedup_header = [
        "speed-up of",
        "vs tensorflow",
        "vs torch",
        "vs reference",
        "vs faster peer",
        "of ceiling",
    ]

    if markdown:
        print(f"#### {title}\n")
        print("| implementation | ms | details |\n|---|---:|---|")
        for name, ms, detail in rows:
            print(f"| {name} | {ms} | {detail} |")
        print()
        print("| " + " | ".join(speedup_header) + " |")
        print("|---|" + "---:|" * (len(speedup_header) - 1))
        for cells in speedups:
            print("| " + " | ".join(cells) + " |")
        print()
    else:
        print(f"== {title}")
        width = max(len(r[0]) for r in rows) if rows else 10
        for name, ms, detail in rows:
            print(f"  {name:<{width}}  {ms:>9} ms  {detail}")
        print()
        for cells in [speedup_header, *speedups]:
            print("  " + f"{cells[0]:<{width}}" + "".join(f"{c:>16}" for c in cells[1:]))
        print()
    for note in result.notes:
        print(f"  check: {note}" if not markdown else f"- check: {note}")
    for warning in result.warnings:
        print(warning)
    print()


def _rss_mb() -> str:
    """Current and peak resident memory of this process (Linux), for the memory budget."""
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        current = int(fields["VmRSS"].split()[0]) / 1024
        peak = int(fields["VmHWM"].split()[0]) / 1024
        return f"RSS {current:,.0f} MB, peak {peak:,.0f} MB"
    except (OSError, KeyError, ValueError):
        return "RSS unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configs",
        default=",".join(["tiny", *CONFIGS]),
        help=f"comma-separated configurations (default: all of tiny, {', '.join(CONFIGS)})",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=20,
        help="timed runs per measurement (default 20; fewer for slow ones, more for fast ones "
        f"to fill {MIN_BLOCK_SECONDS:g} s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="time every implementation this many times, interleaved; report the median of "
        "the rounds' medians, and ratios as the median of the rounds' ratios (default 3)",
    )
    parser.add_argument("--markdown", action="store_true", help="print tables as Markdown")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="before each measurement, wait up to this long for other processes to leave "
        "the CPUs idle (default 60; 0: don't wait)",
    )
    parser.add_argument("--no-tf", action="store_true", help="skip TensorFlow")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS and n != "tiny"]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    GATE.max_wait = max(args.wait_idle, 0.0)
    notes = []
    tf, note = (None, "TensorFlow skipped (--no-tf)") if args.no_tf else _import_tensorflow()
    notes += [note] if note else []
    torch, note = (None, "PyTorch skipped (--no-torch)") if args.no_torch else _import_torch()
    notes += [note] if note else []
    if tf is not None and torch is not None:
        # rustnce.torch registers custom ops, which imports triton; triton's LLVM and
        # TensorFlow's abort the process when both load ("Option ... registered more than once").
        notes.append(
            "rustnce.torch autograd skipped: with TensorFlow loaded, importing it (through "
            "triton's LLVM) aborts the process; run with --no-tf for that column"
        )
    describe_machine(tf, torch, notes)
    print(
        "Each implementation computes the loss and the gradients with respect to inputs, "
        "weights and biases (weights/biases in TF's row-sparse form) for sum(loss), from the "
        "same inputs and the same sampled_values. Times are medians in milliseconds.\n"
    )
    sys.stdout.flush()

    if "tiny" in names:
        run_tiny_calls(torch, args.repeats)
    for name in (n for n in names if n != "tiny"):
        config = CONFIGS[name]
        result = Result(config)
        GATE.waited, GATE.timed_out = 0.0, 0
        data = make_inputs(config)
        base = run_rustnce(config, data, args.repeats, result)
        run_reference(config, data, args.repeats, result, base)
        # Each framework's copies live until this configuration's rounds are timed.
        if tf is not None:
            run_tensorflow(tf, config, data, args.repeats, result, base)
            gc.collect()
        if torch is not None:
            run_torch(torch, config, data, args.repeats, result, base)
            gc.collect()
            if tf is None:
                run_torch_autograd(torch, config, data, args.repeats, result, base)
                gc.collect()
        run_ceiling(config, args.repeats, result)
        more_rounds(result, args.rounds)
        note_gflops(result)
        result.callables.clear()  # frees each framework's copies
        del data, base
        gc.collect()
        result.notes.append(f"process memory after this configuration: {_rss_mb()}")
        if GATE.waited or GATE.timed_out:
            result.notes.append(
                f"waited {GATE.waited:.0f} s in all for other processes to leave the CPUs idle"
                + (f"; gave up waiting {GATE.timed_out} time(s)" if GATE.timed_out else "")
            )
        if any(t.note.startswith("DISTURBED") for t in result.timings.values()):
            result.warnings.append(
                "WARNING: some timings were disturbed by other processes (see DISTURBED)"
            )
        print_result(result, args.markdown)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
