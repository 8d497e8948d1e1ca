"""The Rust implementation (``rustnce``) against the NumPy reference (``rustnce.reference``).

Random problems from fixed seeds: batch 0..50, num_true 1..4, num_sampled 1..30, dim 1..40,
weights with extra rows beyond num_classes, weights and biases as 1..5 shards under "div" and
"mod" (built from a full matrix with the layouts of docs/semantics.md §9), float32 and float64,
int32 and int64 labels, hit removal and log-Q subtraction on and off, explicit sampled values
(from any sampler, sometimes with forced accidental hits) or the default sampler with a seed.

Tolerances: losses and logits rtol 1e-5 (float32) or 1e-10 (float64), with an absolute
tolerance of 32 ulps times the logits' scale. Sampled ids, expected counts, probabilities,
accidental hits and embedding lookups are compared bit-exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

import rustnce
from rustnce import reference as ref

NUM_PROBLEMS = 40
PROBLEM_SEEDS = range(NUM_PROBLEMS)
SAMPLER_KINDS = ["uniform", "log_uniform", "learned_unigram", "fixed_unigram", "all_candidate"]


# ----------------------------------------------------------------------------- layouts


def div_sizes(num_rows: int, num_shards: int) -> list[int]:
    """docs/semantics.md §9 "div": the first ``num_rows mod P`` shards get one extra row."""
    q, extra = divmod(num_rows, num_shards)
    return [q + 1] * extra + [q] * (num_shards - extra)


def split_into_shards(full: np.ndarray, num_shards: int, strategy: str):
    """``full`` as the list of shards ``embedding_lookup`` expects under ``strategy``."""
    if strategy == "mod":
        return [np.ascontiguousarray(full[p::num_shards]) for p in range(num_shards)]
    bounds = np.cumsum([0] + div_sizes(full.shape[0], num_shards))
    return [full[start:stop].copy() for start, stop in zip(bounds[:-1], bounds[1:])]


def as_params(full: np.ndarray, num_shards: int, strategy: str, rng: np.random.Generator):
    """A single array (or a one-element list) for one shard, else a list of shards."""
    if num_shards == 1:
        return full if rng.random() < 0.5 else [full]
    return split_into_shards(full, num_shards, strategy)


# ----------------------------------------------------------------------------- problems


def tolerances(dtype, scale: float = 1.0) -> dict:
    """rtol 1e-5 / 1e-10; atol 32 ulps of 1 times the logits' scale (the rounding error of a
    dot product whose terms are that large; the observed worst case is about 7 ulps)."""
    rtol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-10
    return dict(rtol=rtol, atol=32 * np.finfo(dtype).eps * max(1.0, scale))


def new_sampler(module, kind: str, range_max: int, seed, fixed_kwargs: dict | None = None):
    if kind == "uniform":
        return module.UniformSampler(range_max, seed=seed)
    if kind == "log_uniform":
        return module.LogUniformSampler(range_max, seed=seed)
    if kind == "learned_unigram":
        return module.LearnedUnigramSampler(range_max, seed=seed)
    if kind == "fixed_unigram":
        return module.FixedUnigramSampler(range_max, seed=seed, **(fixed_kwargs or {}))
    return module.AllCandidateSampler(seed=seed)


def random_problem(seed: int) -> dict:
    """Keyword arguments of ``compute_sampled_logits`` (and the losses) plus metadata."""
    rng = np.random.default_rng(1000 + seed)
    dtype = np.float32 if rng.random() < 0.5 else np.float64
    label_dtype = np.int32 if rng.random() < 0.5 else np.int64
    batch = 0 if seed % 10 == 3 else int(rng.integers(1, 51))
    num_true = int(rng.integers(1, 5))
    num_sampled = int(rng.integers(1, 31))
    dim = int(rng.integers(1, 41))
    # Small class counts make accidental hits frequent.
    num_classes = num_sampled + int(rng.integers(0, 6 if rng.random() < 0.4 else 80))
    num_rows = num_classes + int(rng.integers(0, 5))
    strategy = "div" if rng.random() < 0.5 else "mod"
    weight_shards = int(min(rng.integers(1, 6), num_rows))
    bias_shards = int(min(rng.integers(1, 6), num_rows))
    explicit = rng.random() < 0.6
    kind = SAMPLER_KINDS[int(rng.integers(0, len(SAMPLER_KINDS)))] if explicit else None

    scale = 1.0 / np.sqrt(dim)
    full_weights = (rng.standard_normal((num_rows, dim)) * 2 * scale).astype(dtype)
    full_biases = rng.standard_normal(num_rows).astype(dtype)
    inputs = rng.standard_normal((batch, dim)).astype(dtype)

    label_range = num_sampled if kind == "all_candidate" else num_classes
    if rng.random() < 0.5:  # frequent ids: the log-uniform sampler draws them often
        label_range = min(label_range, 4)
    labels = rng.integers(0, label_range, size=(batch, num_true)).astype(label_dtype)

    sampled_values = None
    if explicit:
        unique = bool(rng.random() < 0.5)
        fixed_kwargs = None
        if kind == "fixed_unigram":
            fixed_kwargs = dict(
                unigrams=list(rng.integers(1, 50, size=num_classes).astype(float)),
                distortion=float(rng.uniform(0.0, 1.5)),
            )
        sampler = new_sampler(ref, kind, num_classes, int(seed), fixed_kwargs)
        candidates, true_count, sampled_count = sampler.sample(
            labels, num_true, num_sampled, unique
        )
        if batch and rng.random() < 0.5:  # force accidental hits
            positions = rng.choice(num_sampled, size=min(3, num_sampled), replace=False)
            candidates = candidates.copy()
            candidates[positions] = rng.choice(labels.reshape(-1), size=len(positions))
        sampled_values = (candidates, true_count, sampled_count)

    return dict(
        kwargs=dict(
            weights=as_params(full_weights, weight_shards, strategy, rng),
            biases=as_params(full_biases, bias_shards, strategy, rng),
            labels=labels,
            inputs=inputs,
            num_sampled=num_sampled,
            num_classes=num_classes,
            num_true=num_true,
            sampled_values=sampled_values,
            remove_accidental_hits=bool(rng.random() < 0.5),
            partition_strategy=strategy,
            seed=int(rng.integers(0, 2**31 - 1)),
            subtract_log_q=bool(rng.random() < 0.75),
        ),
        full_weights=full_weights,
        full_biases=full_biases,
        dtype=np.dtype(dtype),
    )


def run_both(name: str, kwargs: dict):
    """``name`` from both implementations, each starting from a fresh sampler cache."""
    results = []
    for module in (rustnce, ref):
        module.reset_sampler_cache()
        results.append(getattr(module, name)(**kwargs))
    return results


def logit_scale(problem: dict) -> float:
    """A bound on |x . w + b|: the size of the rounding errors of every logit and loss."""
    inputs = problem["kwargs"]["inputs"]
    if inputs.size == 0:
        return 1.0
    weights, biases = problem["full_weights"], problem["full_biases"]
    return float(np.abs(inputs).sum(axis=1).max() * np.abs(weights).max() + np.abs(biases).max())


def assert_close(actual, expected, problem: dict, scale: float = 1.0):
    actual = np.asarray(actual)
    assert actual.dtype == problem["dtype"]
    assert actual.shape == np.shape(expected)
    np.testing.assert_allclose(actual, expected, **tolerances(problem["dtype"], scale))


PROBLEM = pytest.mark.parametrize("seed", PROBLEM_SEEDS)


# ----------------------------------------------------------------------------- losses


@PROBLEM
def test_compute_sampled_logits_matches_reference(seed):
    problem = random_problem(seed)
    kwargs = problem["kwargs"]
    kwargs.pop("subtract_log_q")
    for subtract_log_q in (True, False):
        (logits, targets), (ref_logits, ref_targets) = run_both(
            "compute_sampled_logits", dict(kwargs, subtract_log_q=subtract_log_q)
        )
        assert_close(logits, ref_logits, problem, logit_scale(problem))
        assert_close(targets, ref_targets, problem)


@PROBLEM
def test_nce_loss_matches_reference(seed):
    problem = random_problem(seed)
    loss, ref_loss = run_both("nce_loss", problem["kwargs"])
    assert_close(loss, ref_loss, problem, logit_scale(problem))


@PROBLEM
def test_sampled_softmax_loss_matches_reference(seed):
    problem = random_problem(seed)
    loss, ref_loss = run_both("sampled_softmax_loss", problem["kwargs"])
    assert_close(loss, ref_loss, problem, logit_scale(problem))


@PROBLEM
def test_default_sampler_draws_the_same_ids_as_reference(seed):
    """With ``sampled_values=None`` and a seed both draw the same log-uniform unique set, so
    the logits agree column by column."""
    problem = random_problem(seed)
    kwargs = dict(problem["kwargs"], sampled_values=None)
    (logits, _), (ref_logits, _) = run_both("compute_sampled_logits", kwargs)
    assert_close(logits, ref_logits, problem, logit_scale(problem))
    for name in ("nce_loss", "sampled_softmax_loss"):
        loss, ref_loss = run_both(name, kwargs)
        assert_close(loss, ref_loss, problem, logit_scale(problem))


def full_kwargs(problem: dict) -> dict:
    kwargs = problem["kwargs"]
    names = ("weights", "biases", "labels", "inputs", "num_classes", "num_true")
    return dict(
        {name: kwargs[name] for name in names}, partition_strategy=kwargs["partition_strategy"]
    )


@PROBLEM
def test_full_sigmoid_loss_matches_reference(seed):
    problem = random_problem(seed)
    loss, ref_loss = run_both("full_sigmoid_loss", full_kwargs(problem))
    assert_close(loss, ref_loss, problem, logit_scale(problem))


@PROBLEM
def test_full_softmax_loss_matches_reference(seed):
    problem = random_problem(seed)
    loss, ref_loss = run_both("full_softmax_loss", full_kwargs(problem))
    assert_close(loss, ref_loss, problem, logit_scale(problem))


@PROBLEM
def test_compute_accidental_hits_matches_reference_exactly(seed):
    rng = np.random.default_rng(2000 + seed)
    batch, num_true, num_sampled = (int(v) for v in rng.integers([0, 1, 1], [30, 5, 30]))
    id_range = int(rng.integers(1, 40))
    labels = rng.integers(0, id_range, size=(batch, num_true)).astype(
        np.int32 if seed % 2 else np.int64
    )
    sampled = rng.integers(0, id_range, size=num_sampled)  # duplicates included
    hits = rustnce.compute_accidental_hits(labels, sampled, num_true)
    expected = ref.compute_accidental_hits(labels, sampled, num_true)
    for actual, wanted in zip(hits, expected):
        assert actual.dtype == wanted.dtype
        np.testing.assert_array_equal(actual, wanted)


@PROBLEM
def test_embedding_lookup_matches_reference_exactly(seed):
    rng = np.random.default_rng(3000 + seed)
    num_rows = int(rng.integers(1, 60))
    num_shards = int(min(rng.integers(1, 6), num_rows))
    strategy = "div" if seed % 2 else "mod"
    dtype = np.float32 if seed % 3 else np.float64
    full = rng.standard_normal((num_rows, int(rng.integers(1, 9)))).astype(dtype)
    ids = rng.integers(0, num_rows, size=tuple(rng.integers(0, 6, size=int(rng.integers(1, 3)))))
    for params in (full, full[:, 0]):  # a matrix and a vector (biases)
        shards = split_into_shards(params, num_shards, strategy)
        rows = rustnce.embedding_lookup(shards, ids, partition_strategy=strategy)
        expected = ref.embedding_lookup(shards, ids, partition_strategy=strategy)
        assert rows.dtype == expected.dtype
        assert rows.shape == expected.shape
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_array_equal(rows, params[ids])


@pytest.mark.parametrize("name", ["nce_loss", "sampled_softmax_loss"])
@pytest.mark.parametrize("where", ["labels", "sampled_values"])
def test_explicit_sampled_values_with_ids_at_or_above_num_classes_are_refused(name, where):
    """TensorFlow skips every range check when ``sampled_values`` is given (docs/semantics.md
    §2.1) and reads whatever row the id names, as the reference does; rustnce deliberately checks
    ids against ``num_classes`` there too and raises ``IndexError`` naming the argument."""
    rng = np.random.default_rng(8)
    weights = rng.standard_normal((10, 3)).astype(np.float32)
    biases = rng.standard_normal(10).astype(np.float32)
    inputs = rng.standard_normal((2, 3)).astype(np.float32)
    labels = np.array([[8], [1]]) if where == "labels" else np.array([[2], [1]])
    candidates = np.array([3, 0, 5]) if where == "labels" else np.array([9, 0, 5])
    kwargs = dict(
        labels=labels,
        num_sampled=3,
        num_classes=6,
        sampled_values=(candidates, np.ones((2, 1), np.float32), np.ones(3, np.float32)),
    )
    getattr(ref, name)(weights, biases, inputs=inputs, **kwargs)  # TF semantics: accepted
    with pytest.raises(IndexError, match=where):
        getattr(rustnce, name)(weights, biases, inputs=inputs, **kwargs)


# ----------------------------------------------------------------------------- samplers

SAMPLER_SEEDS = range(6)


def random_sampler_setup(kind: str, unique: bool, seed: int) -> dict:
    rng = np.random.default_rng(4000 + 97 * seed + 7 * SAMPLER_KINDS.index(kind) + unique)
    num_true = int(rng.integers(1, 4))
    batch = int(rng.integers(0, 8))
    seed_arg = (
        int(rng.integers(-(2**40), 2**40))
        if seed % 2
        else (int(rng.integers(-(2**63), 2**63 - 1)), int(rng.integers(-(2**63), 2**63 - 1)))
    )
    fixed_kwargs = None
    if kind in ("uniform", "log_uniform"):
        choices = [
            int(rng.integers(1, 50)),
            int(rng.integers(50, 10**6)),
            2 ** int(rng.integers(0, 20)),  # uniform: the masking path
            2**62 + int(rng.integers(1, 2**40)),  # uniform: rejection of 64-bit words
        ]
        range_max = choices[seed % 4]
    elif kind == "learned_unigram":
        range_max = int(rng.integers(1, 300))
    elif kind == "fixed_unigram":
        unigrams = rng.integers(0, 30, size=int(rng.integers(1, 60))).astype(float)
        unigrams[rng.random(unigrams.size) < 0.3] += rng.random()  # non-integer counts
        num_shards = int(rng.integers(1, 4))
        fixed_kwargs = dict(
            unigrams=list(unigrams),
            distortion=float(rng.choice([0.0, 0.5, 0.75, 1.0, rng.uniform(0, 2)])),
            num_reserved_ids=int(rng.integers(0, 4)),
            num_shards=num_shards,
            shard=int(rng.integers(0, num_shards)),
        )
        while fixed_positive_ids(**fixed_kwargs) == 0:  # at least one id must be drawable
            fixed_kwargs["unigrams"].append(1.0)
        range_max = fixed_table_size(**fixed_kwargs)
    else:
        range_max = None
    if kind == "all_candidate":
        num_sampled = int(rng.integers(1, 30))
        class_range = num_sampled
    else:
        positive = range_max
        if kind == "fixed_unigram":
            positive = fixed_positive_ids(**fixed_kwargs)
        limit = min(positive, 30) if unique else 30
        num_sampled = int(rng.integers(1, max(limit, 1) + 1))
        class_range = min(range_max, 2**62)
    true_classes = [
        rng.integers(0, class_range, size=(batch, num_true), dtype=np.int64) for _ in range(4)
    ]
    return dict(
        kind=kind,
        range_max=range_max,
        seed=seed_arg,
        fixed_kwargs=fixed_kwargs,
        num_true=num_true,
        num_sampled=num_sampled,
        unique=unique,
        true_classes=true_classes,
    )


def fixed_table(unigrams, distortion, num_reserved_ids, num_shards, shard):
    """The shard-local weights of docs/semantics.md §7.6 (with the reserved-id counter quirk)."""
    weights = [0.0 for r in range(num_reserved_ids) if r % num_shards == shard]
    word_id = len(weights)
    for count in unigrams:
        if word_id % num_shards == shard:
            weights.append(count**distortion)  # 0 ** 0 == 1, as in TensorFlow
        word_id += 1
    return weights


def fixed_table_size(**kwargs) -> int:
    return len(fixed_table(**kwargs))


def fixed_positive_ids(**kwargs) -> int:
    return sum(1 for w in fixed_table(**kwargs) if w > 0)


def assert_same_triple(actual, expected):
    names = ("sampled_candidates", "true_expected_count", "sampled_expected_count")
    for name, a, e in zip(names, actual, expected):
        assert a.dtype == e.dtype, name
        assert a.shape == e.shape, name
        np.testing.assert_array_equal(a, e, err_msg=name)


def probe_ids(setup: dict) -> np.ndarray:
    range_max = setup["range_max"] or setup["num_sampled"]
    ids = np.arange(min(range_max, 400), dtype=np.int64)
    return np.concatenate([ids, [range_max - 1, range_max, range_max + 3, -1]]).astype(np.int64)


SAMPLER_CASES = pytest.mark.parametrize(
    "kind, unique, seed",
    [(k, u, s) for k in SAMPLER_KINDS for u in (False, True) for s in SAMPLER_SEEDS],
)


@SAMPLER_CASES
def test_sampler_objects_match_reference_over_successive_calls(kind, unique, seed):
    setup = random_sampler_setup(kind, unique, seed)
    ours = new_sampler(rustnce, kind, setup["range_max"], setup["seed"], setup["fixed_kwargs"])
    theirs = new_sampler(ref, kind, setup["range_max"], setup["seed"], setup["fixed_kwargs"])
    assert ours.range_max == theirs.range_max
    ids = probe_ids(setup)
    for true_classes in setup["true_classes"]:
        args = (true_classes, setup["num_true"], setup["num_sampled"], setup["unique"])
        assert_same_triple(ours.sample(*args), theirs.sample(*args))
        np.testing.assert_array_equal(ours.probability(ids), theirs.probability(ids))


def call_sampler_function(module, setup: dict, true_classes):
    name = "all" if setup["kind"] == "all_candidate" else setup["kind"]
    function = getattr(module, f"{name}_candidate_sampler")
    args = [true_classes, setup["num_true"], setup["num_sampled"], setup["unique"]]
    if setup["kind"] != "all_candidate":
        args.append(setup["range_max"])
    return function(*args, seed=setup["seed"], **(setup["fixed_kwargs"] or {}))


@SAMPLER_CASES
def test_sampler_functions_match_reference_with_kernel_cache(kind, unique, seed):
    """Module-level calls with the same attributes continue one stream; a call with another
    ``num_sampled`` in between uses a kernel of its own."""
    setup = random_sampler_setup(kind, unique, seed)
    num_sampled = setup["num_sampled"]
    other_num_sampled = num_sampled + 1 if kind == "all_candidate" else max(1, num_sampled - 1)
    other = dict(setup, num_sampled=other_num_sampled)
    for step, true_classes in enumerate(setup["true_classes"]):
        current = other if step == 2 else setup
        expected = call_sampler_function(ref, current, true_classes)
        assert_same_triple(call_sampler_function(rustnce, current, true_classes), expected)


def test_fixed_unigram_from_vocab_file_matches_reference(tmp_path):
    rng = np.random.default_rng(5)
    counts = rng.integers(1, 100, size=40)
    lines = []
    for i, count in enumerate(counts):
        lines.append(f"word{i},{i % 3},{count}")
        if i % 7 == 0:
            lines.append("")  # empty lines consume no id
    path = tmp_path / "vocab.csv"
    path.write_text("\n".join(lines) + "\n")
    true_classes = rng.integers(0, 40, size=(5, 2))
    kwargs = dict(vocab_file=str(path), distortion=0.75, seed=11)
    ours = rustnce.FixedUnigramSampler(40, **kwargs)
    theirs = ref.FixedUnigramSampler(40, **kwargs)
    for unique in (False, True, False):
        assert_same_triple(
            ours.sample(true_classes, 2, 12, unique), theirs.sample(true_classes, 2, 12, unique)
        )
    ids = np.arange(-1, 42)
    np.testing.assert_array_equal(ours.probability(ids), theirs.probability(ids))


def test_learned_unigram_learns_like_reference_over_many_calls():
    rng = np.random.default_rng(6)
    ours = rustnce.LearnedUnigramSampler(50, seed=(3, 4))
    theirs = ref.LearnedUnigramSampler(50, seed=(3, 4))
    ids = np.arange(50)
    for step in range(20):
        # A skewed stream of true classes so the learned distribution moves away from uniform.
        true_classes = np.minimum(rng.geometric(0.2, size=(16, 2)) - 1, 49)
        unique = step % 2 == 1
        assert_same_triple(
            ours.sample(true_classes, 2, 10, unique), theirs.sample(true_classes, 2, 10, unique)
        )
        np.testing.assert_array_equal(ours.probability(ids), theirs.probability(ids))


# ----------------------------------------------------------------------------- views


def view_problem(dtype=np.float32, label_dtype=np.int64):
    rng = np.random.default_rng(7)
    num_rows, dim, batch, num_true, num_sampled = 70, 12, 9, 2, 8
    big_weights = rng.standard_normal((2 * num_rows, 3 * dim)).astype(dtype)
    big_inputs = rng.standard_normal((3 * batch, 2 * dim)).astype(dtype)
    big_labels = rng.integers(0, 60, size=(batch, 3 * num_true)).astype(label_dtype)
    biases = rng.standard_normal(num_rows).astype(dtype)
    sampled_values = ref.LogUniformSampler(60, seed=1).sample(
        big_labels[:, ::3], num_true, num_sampled, True
    )
    return dict(
        weights_view=big_weights[::2, 5 : 5 + dim],  # row-stepped and column-sliced
        inputs_view=big_inputs[::3, 1 : 1 + dim],
        labels_view=big_labels[:, ::3],
        biases=biases,
        common=dict(
            num_sampled=num_sampled,
            num_classes=60,
            num_true=num_true,
            sampled_values=sampled_values,
            remove_accidental_hits=True,
        ),
    )


# Another memory layout may change the summation order of a dot product (last-bit differences).
VIEW_TOLERANCES = dict(rtol=1e-6, atol=1e-5)

SAMPLED_FUNCTIONS = ["nce_loss", "sampled_softmax_loss", "compute_sampled_logits"]
FULL_FUNCTIONS = ["full_sigmoid_loss", "full_softmax_loss"]


def evaluate(name, weights, biases, labels, inputs, common):
    if name in FULL_FUNCTIONS:
        result = getattr(rustnce, name)(
            weights, biases, labels, inputs, common["num_classes"], common["num_true"]
        )
    else:
        result = getattr(rustnce, name)(weights, biases, labels, inputs, **common)
    return result[0] if name == "compute_sampled_logits" else result


def assert_same_as_copies(name, **overrides):
    problem = view_problem()
    contiguous = dict(
        weights=np.ascontiguousarray(problem["weights_view"]),
        biases=problem["biases"],
        labels=np.ascontiguousarray(problem["labels_view"]),
        inputs=np.ascontiguousarray(problem["inputs_view"]),
    )
    viewed = dict(contiguous)
    for key, value in overrides.items():
        viewed[key] = value(problem)
    expected = evaluate(name, common=problem["common"], **contiguous)
    actual = evaluate(name, common=problem["common"], **viewed)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, **VIEW_TOLERANCES)


ALL_FUNCTIONS = pytest.mark.parametrize("name", SAMPLED_FUNCTIONS + FULL_FUNCTIONS)


@ALL_FUNCTIONS
def test_fortran_order_weights_give_the_same_result_as_c_order(name):
    assert_same_as_copies(name, weights=lambda p: np.asfortranarray(p["weights_view"]))


@ALL_FUNCTIONS
def test_strided_weights_view_gives_the_same_result_as_a_copy(name):
    assert_same_as_copies(name, weights=lambda p: p["weights_view"])


@ALL_FUNCTIONS
def test_strided_inputs_view_gives_the_same_result_as_a_copy(name):
    assert_same_as_copies(name, inputs=lambda p: p["inputs_view"])


@ALL_FUNCTIONS
def test_non_contiguous_labels_give_the_same_result_as_a_copy(name):
    assert_same_as_copies(name, labels=lambda p: p["labels_view"])


@ALL_FUNCTIONS
def test_strided_biases_view_gives_the_same_result_as_a_copy(name):
    assert_same_as_copies(
        name,
        biases=lambda p: np.repeat(p["biases"], 2)[::2],  # a stepped view
    )


@ALL_FUNCTIONS
def test_sharded_views_give_the_same_result_as_contiguous_shards(name):
    def fortran_strided_shards(problem):
        shards = split_into_shards(problem["weights_view"], 3, "div")
        dim = shards[1].shape[1]
        column_sliced = np.concatenate([shards[1], shards[1]], axis=1)[:, :dim]
        row_stepped = np.repeat(shards[2], 2, axis=0)[::2]
        return [np.asfortranarray(shards[0]), column_sliced, row_stepped]

    problem = view_problem()
    expected_shards = split_into_shards(np.ascontiguousarray(problem["weights_view"]), 3, "div")
    common = problem["common"]
    labels = np.ascontiguousarray(problem["labels_view"])
    inputs = np.ascontiguousarray(problem["inputs_view"])
    expected = evaluate(name, expected_shards, problem["biases"], labels, inputs, common)
    actual = evaluate(
        name, fortran_strided_shards(problem), problem["biases"], labels, inputs, common
    )
    np.testing.assert_allclose(actual, expected, **VIEW_TOLERANCES)


def test_views_match_reference():
    problem = view_problem(np.float64, np.int32)
    args = (
        problem["weights_view"],
        problem["biases"],
        problem["labels_view"],
        problem["inputs_view"],
    )
    for name in ("nce_loss", "sampled_softmax_loss"):
        actual = getattr(rustnce, name)(*args, **problem["common"])
        expected = getattr(ref, name)(*args, **problem["common"])
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)
