"""Statistical and structural properties of rustnce's candidate samplers (docs/semantics.md §7).

Each random test uses a fixed seed, so it is deterministic; the chi-square tests would fail
for a correct sampler with probability 1e-4 per seed. The chi-square quantile uses the
Wilson–Hilferty approximation (no SciPy).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

import rustnce

CHI_SQUARE_P = 1e-4
DRAWS_PER_CALL = 4000
NUM_CALLS = 50  # 200,000 draws per sampler


# ----------------------------------------------------------------------------- helpers


def chi_square_quantile(dof: int, p: float = CHI_SQUARE_P) -> float:
    """The upper-``p`` quantile of chi-square with ``dof`` degrees of freedom
    (Wilson–Hilferty: (X/k)^(1/3) is nearly normal with mean 1 - 2/(9k), variance 2/(9k))."""
    z = NormalDist().inv_cdf(1.0 - p)
    h = 2.0 / (9.0 * dof)
    return dof * (1.0 - h + z * math.sqrt(h)) ** 3


def chi_square_statistic(counts: np.ndarray, probabilities: np.ndarray) -> tuple[float, int]:
    """Pearson's statistic and its degrees of freedom; bins expected below 5 are pooled."""
    probabilities = probabilities.astype(np.float64)
    probabilities = probabilities / probabilities.sum()
    expected = probabilities * counts.sum()
    small = expected < 5
    observed_bins = list(counts[~small])
    expected_bins = list(expected[~small])
    if small.any():
        observed_bins.append(counts[small].sum())
        expected_bins.append(expected[small].sum())
    observed_bins = np.array(observed_bins, dtype=np.float64)
    expected_bins = np.array(expected_bins)
    statistic = float(((observed_bins - expected_bins) ** 2 / expected_bins).sum())
    return statistic, len(expected_bins) - 1


def draw_counts(sampler, range_max: int, true_classes: np.ndarray | None = None) -> np.ndarray:
    """How often each id came out of NUM_CALLS non-unique calls of DRAWS_PER_CALL draws."""
    if true_classes is None:
        true_classes = np.zeros((0, 1), dtype=np.int64)  # no true classes: nothing is learned
    counts = np.zeros(range_max, dtype=np.int64)
    for _ in range(NUM_CALLS):
        sampled, _, _ = sampler.sample(true_classes, true_classes.shape[1], DRAWS_PER_CALL, False)
        assert sampled.min() >= 0 and sampled.max() < range_max
        counts += np.bincount(sampled, minlength=range_max)
    return counts


def assert_frequencies_match(sampler, range_max: int):
    counts = draw_counts(sampler, range_max)
    p = sampler.probability(np.arange(range_max))
    assert (counts[p == 0] == 0).all(), "an id of probability 0 was drawn"
    statistic, dof = chi_square_statistic(counts[p > 0], p[p > 0])
    assert statistic < chi_square_quantile(dof), (statistic, dof)


UNIGRAMS = [5, 1, 3, 0, 8, 2, 4, 1, 12, 7, 0, 9, 30, 6, 2, 2, 11, 3, 1, 4]


def skewed_learned_sampler(
    range_max: int, seed
) -> tuple[rustnce.LearnedUnigramSampler, np.ndarray]:
    """A learned unigram sampler fed a skewed set of true classes once, and its counts."""
    sampler = rustnce.LearnedUnigramSampler(range_max, seed=seed)
    rng = np.random.default_rng(0)
    true_classes = np.minimum(rng.geometric(0.15, size=(400, 3)) - 1, range_max - 1)
    sampler.sample(true_classes, 3, 1, False)
    counts = np.ones(range_max, dtype=np.int64)
    np.add.at(counts, true_classes.reshape(-1), 1)
    return sampler, counts


# ----------------------------------------------------------------------------- frequencies


@pytest.mark.parametrize("range_max", [37, 64])
def test_uniform_empirical_frequencies_match_probability(range_max):
    assert_frequencies_match(rustnce.UniformSampler(range_max, seed=11), range_max)


@pytest.mark.parametrize("range_max", [30, 200])
def test_log_uniform_empirical_frequencies_match_probability(range_max):
    assert_frequencies_match(rustnce.LogUniformSampler(range_max, seed=12), range_max)


def test_learned_unigram_empirical_frequencies_match_probability():
    sampler, _ = skewed_learned_sampler(50, seed=13)
    assert_frequencies_match(sampler, 50)


@pytest.mark.parametrize(
    "distortion, num_reserved_ids, num_shards, shard",
    [(1.0, 0, 1, 0), (0.75, 2, 1, 0), (0.0, 1, 1, 0), (0.5, 0, 3, 1)],
)
def test_fixed_unigram_empirical_frequencies_match_probability(
    distortion, num_reserved_ids, num_shards, shard
):
    range_max = len(fixed_weights(UNIGRAMS, distortion, num_reserved_ids, num_shards, shard))
    sampler = rustnce.FixedUnigramSampler(
        range_max,
        distortion=distortion,
        num_reserved_ids=num_reserved_ids,
        num_shards=num_shards,
        shard=shard,
        unigrams=UNIGRAMS,
        seed=14,
    )
    assert_frequencies_match(sampler, range_max)


def test_chi_square_check_rejects_a_wrong_distribution():
    """The check has power: uniform draws do not pass for log-uniform probabilities."""
    counts = draw_counts(rustnce.UniformSampler(30, seed=15), 30)
    p = rustnce.LogUniformSampler(30).probability(np.arange(30))
    statistic, dof = chi_square_statistic(counts, p)
    assert statistic > chi_square_quantile(dof)


def test_wilson_hilferty_quantile_is_accurate():
    # Tabulated upper-1e-4 chi-square quantiles.
    for dof, quantile in [(10, 35.5640), (29, 66.1517), (100, 161.3187)]:
        assert abs(chi_square_quantile(dof) - quantile) / quantile < 0.02


# ----------------------------------------------------------------------------- probabilities


def test_learned_unigram_probability_is_count_over_total_with_counts_starting_at_1():
    range_max = 12
    sampler = rustnce.LearnedUnigramSampler(range_max, seed=16)
    counts = np.ones(range_max, dtype=np.int64)
    ids = np.arange(range_max)
    np.testing.assert_array_equal(sampler.probability(ids), np.full(range_max, 1 / 12, np.float32))
    rng = np.random.default_rng(1)
    for _ in range(5):
        true_classes = rng.integers(0, 4, size=(7, 2))  # ids 0..3 only
        sampler.sample(true_classes, 2, 3, False)
        np.add.at(counts, true_classes.reshape(-1), 1)
        expected = np.float32(counts) / np.float32(counts.sum())
        np.testing.assert_array_equal(sampler.probability(ids), expected)


def test_learned_unigram_counts_are_updated_after_the_call_that_sees_them():
    sampler = rustnce.LearnedUnigramSampler(5, seed=17)
    true_classes = np.array([[2], [2], [4]])
    _, first_true_count, _ = sampler.sample(true_classes, 1, 4, False)
    _, second_true_count, _ = sampler.sample(true_classes, 1, 4, False)
    np.testing.assert_array_equal(first_true_count, np.full((3, 1), np.float32(0.2) * 4))
    expected = np.float32([[3 / 8], [3 / 8], [2 / 8]]) * np.float32(4)
    np.testing.assert_array_equal(second_true_count, expected)


@pytest.mark.parametrize("range_max", [1, 2, 20, 1000, 100000])
def test_log_uniform_probabilities_sum_to_one(range_max):
    p = rustnce.LogUniformSampler(range_max).probability(np.arange(range_max))
    assert abs(p.astype(np.float64).sum() - 1.0) < 1e-6


@pytest.mark.parametrize("range_max", [1, 20, 1000, 2**40])
def test_log_uniform_probability_follows_the_formula(range_max):
    ids = np.unique(np.array([0, 1, 2, 7, 19, 999, range_max - 1]).clip(0, range_max - 1))
    p = rustnce.LogUniformSampler(range_max).probability(ids)
    expected = [np.float32(math.log((v + 2.0) / (v + 1.0)) / math.log1p(range_max)) for v in ids]
    np.testing.assert_array_equal(p, np.array(expected, dtype=np.float32))


def fixed_weights(unigrams, distortion, num_reserved_ids, num_shards, shard):
    """docs/semantics.md §7.6: reserved ids weigh 0; the id counter restarts at the reserved ids
    kept."""
    weights = [0.0 for r in range(num_reserved_ids) if r % num_shards == shard]
    word_id = len(weights)
    for count in unigrams:
        if word_id % num_shards == shard:
            weights.append(float(count) ** distortion)  # 0 ** 0 == 1
        word_id += 1
    return np.array(weights)


@pytest.mark.parametrize(
    "distortion, num_reserved_ids, num_shards, shard",
    [(1.0, 0, 1, 0), (0.75, 3, 1, 0), (0.0, 2, 1, 0), (0.5, 2, 2, 1)],
)
def test_fixed_unigram_probability_is_proportional_to_count_to_the_distortion(
    distortion, num_reserved_ids, num_shards, shard
):
    weights = fixed_weights(UNIGRAMS, distortion, num_reserved_ids, num_shards, shard)
    sampler = rustnce.FixedUnigramSampler(
        len(weights),
        distortion=distortion,
        num_reserved_ids=num_reserved_ids,
        num_shards=num_shards,
        shard=shard,
        unigrams=UNIGRAMS,
    )
    p = sampler.probability(np.arange(len(weights)))
    np.testing.assert_allclose(p, weights / weights.sum(), rtol=1e-6)
    kept_reserved = sum(1 for r in range(num_reserved_ids) if r % num_shards == shard)
    assert (p[:kept_reserved] == 0).all()


# ----------------------------------------------------------------------------- unique mode


def new_sampler(kind: str, range_max: int, seed):
    if kind == "uniform":
        return rustnce.UniformSampler(range_max, seed=seed)
    if kind == "log_uniform":
        return rustnce.LogUniformSampler(range_max, seed=seed)
    if kind == "learned_unigram":
        return rustnce.LearnedUnigramSampler(range_max, seed=seed)
    assert range_max == len(UNIGRAMS) - 2  # the nonzero counts
    return rustnce.FixedUnigramSampler(
        range_max, unigrams=[u for u in UNIGRAMS if u > 0], distortion=0.75, seed=seed
    )


RANDOM_KINDS = ["uniform", "log_uniform", "learned_unigram", "fixed_unigram"]


@pytest.mark.parametrize("kind", RANDOM_KINDS)
def test_unique_draws_contain_no_duplicates(kind):
    range_max = 18
    sampler = new_sampler(kind, range_max, seed=18)
    true_classes = np.array([[0, 5], [17, 3]])
    for num_sampled in (2, 9, 15, 17, 18, 9):
        sampled, _, _ = sampler.sample(true_classes, 2, num_sampled, True)
        assert len(set(sampled.tolist())) == num_sampled
        assert sampled.min() >= 0 and sampled.max() < range_max


@pytest.mark.parametrize("kind", RANDOM_KINDS)
def test_unique_with_num_sampled_equal_to_range_max_returns_a_permutation(kind):
    range_max = 18
    sampler = new_sampler(kind, range_max, seed=19)
    for _ in range(3):
        sampled, _, _ = sampler.sample(np.array([[1]]), 1, range_max, True)
        np.testing.assert_array_equal(np.sort(sampled), np.arange(range_max))


def num_tries_of(kind: str, range_max: int, seed: int, num_sampled: int) -> int:
    """The tries a unique call needs: in the non-unique stream of the same seed
    (docs/semantics.md §7.2: both consume the same words), the position at which the S-th
    distinct id appears."""
    draws, _, _ = new_sampler(kind, range_max, seed).sample(
        np.zeros((0, 1), dtype=np.int64), 1, 60 * num_sampled, False
    )
    seen = set()
    for position, value in enumerate(draws.tolist()):
        seen.add(value)
        if len(seen) == num_sampled:
            return position + 1
    raise AssertionError("the non-unique stream never reached num_sampled distinct ids")


def inferred_num_tries(p: np.ndarray, count: np.ndarray) -> np.ndarray:
    """n solving count = 1 - (1 - p)^n for each id."""
    p = p.astype(np.float64)
    count = count.astype(np.float64)
    return np.rint(np.log1p(-count) / np.log1p(-p)).astype(np.int64)


UNIQUE_SETUPS = [
    ("uniform", 100, 6),
    ("uniform", 30, 4),
    ("log_uniform", 1000, 3),
    ("log_uniform", 50, 8),
    ("learned_unigram", 100, 6),
    ("fixed_unigram", len(UNIGRAMS) - 2, 4),
]


@pytest.mark.parametrize("kind, range_max, num_sampled", UNIQUE_SETUPS)
def test_unique_expected_count_is_p_times_s_without_rejection_else_inclusion_probability(
    kind, range_max, num_sampled
):
    true_classes = np.array([[0, 1], [range_max - 1, 2]])
    branches = set()
    for seed in range(25):
        sampled, true_count, sampled_count = new_sampler(kind, range_max, seed).sample(
            true_classes, 2, num_sampled, True
        )
        sampler = new_sampler(kind, range_max, seed)
        ids = np.concatenate([sampled, true_classes.reshape(-1)])
        counts = np.concatenate([sampled_count, true_count.reshape(-1)])
        p = sampler.probability(ids)
        num_tries = num_tries_of(kind, range_max, seed, num_sampled)
        if num_tries == num_sampled:
            branches.add("p*S")
            np.testing.assert_array_equal(counts, p * np.float32(num_sampled))
        else:
            branches.add("1-(1-p)^n")
            inferred = inferred_num_tries(p, counts)
            assert (inferred == inferred[0]).all(), "num_tries differs between ids"
            assert inferred[0] == num_tries > num_sampled
            expected = -np.expm1(num_tries * np.log1p(-p.astype(np.float64)))
            np.testing.assert_allclose(counts, expected, rtol=2e-6)
    assert branches == {"p*S", "1-(1-p)^n"}, "the seeds should exercise both branches"


@pytest.mark.parametrize("kind", RANDOM_KINDS)
def test_unique_expected_counts_share_one_num_tries_over_successive_calls(kind):
    """Later calls (no non-unique oracle): all ids of a call agree on one n >= S."""
    range_max = 18
    sampler = new_sampler(kind, range_max, seed=20)
    true_classes = np.array([[0, 3], [17, 4], [5, 5]])
    rejections = 0
    for num_sampled in (5, 10, 14, 10, 5):
        p_before = sampler.probability(np.arange(range_max))  # learned counts change after
        sampled, true_count, sampled_count = sampler.sample(true_classes, 2, num_sampled, True)
        ids = np.concatenate([sampled, true_classes.reshape(-1)])
        counts = np.concatenate([sampled_count, true_count.reshape(-1)])
        p = p_before[ids]
        if np.array_equal(counts, p * np.float32(num_sampled)):
            continue
        rejections += 1
        inferred = inferred_num_tries(p, counts)
        assert (inferred == inferred[0]).all()
        assert inferred[0] > num_sampled
        expected = -np.expm1(inferred[0] * np.log1p(-p.astype(np.float64)))
        np.testing.assert_allclose(counts, expected, rtol=2e-6)
    assert rejections >= 2, "calls with S close to range_max must reject some draws"
