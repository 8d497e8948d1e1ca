"""Candidate samplers with TensorFlow's arguments (docs/semantics.md §7): sampler objects that
keep their random stream, and module-level functions that, like TensorFlow's eager kernel cache,
continue the stream of an earlier call with the same attributes. The kept samplers live in the
extension (``src/py/samplers.rs``), shared with the losses' default draw."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from . import _rustnce

Seed = Union[None, int, "tuple[int, int]"]


class CandidateSampler:
    """A sampler kernel: its base distribution plus a persistent random stream. Calls on one
    object are serialised, so it may be shared between threads."""

    def __init__(self, kernel: _rustnce.CandidateSampler) -> None:
        self._kernel = kernel

    def sample(
        self, true_classes: Any, num_true: int, num_sampled: int, unique: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw one shared set of candidates.

        Returns ``(sampled_candidates int64 [num_sampled], true_expected_count float32
        [batch, num_true], sampled_expected_count float32 [num_sampled])``.
        """
        return self._kernel.sample(true_classes, num_true, num_sampled, unique)

    def probability(self, ids: Any) -> np.ndarray:
        """``p(id)`` as float32, the same shape as ``ids``; 0 outside the range."""
        return self._kernel.probability(ids)

    @property
    def range_max(self) -> int | None:
        return self._kernel.range_max


class UniformSampler(CandidateSampler):
    """Every id in ``[0, range_max)`` with probability ``1 / range_max``."""

    def __init__(self, range_max: int, seed: Seed = None) -> None:
        super().__init__(_rustnce.CandidateSampler.uniform(range_max, seed))


class LogUniformSampler(CandidateSampler):
    """Zipfian ``p(v) = ln((v+2)/(v+1)) / ln(range_max+1)``: TensorFlow's default negative
    sampler; assumes ids are sorted by decreasing frequency."""

    def __init__(self, range_max: int, seed: Seed = None) -> None:
        super().__init__(_rustnce.CandidateSampler.log_uniform(range_max, seed))


class LearnedUnigramSampler(CandidateSampler):
    """Counts start at 1 and grow by one for every true class seen after each call."""

    def __init__(self, range_max: int, seed: Seed = None) -> None:
        super().__init__(_rustnce.CandidateSampler.learned_unigram(range_max, seed))


class FixedUnigramSampler(CandidateSampler):
    """``p(v)`` proportional to ``count[v] ** distortion`` (word2vec: 0.75), from ``unigrams``
    or a ``vocab_file`` whose lines end in a comma-separated count; ``num_reserved_ids``
    leading ids of weight 0; optionally one shard (``num_shards``, ``shard``) of the ids."""

    def __init__(
        self,
        range_max: int,
        vocab_file: str = "",
        distortion: float = 1.0,
        num_reserved_ids: int = 0,
        num_shards: int = 1,
        shard: int = 0,
        unigrams: Sequence[float] = (),
        seed: Seed = None,
    ) -> None:
        super().__init__(
            _rustnce.CandidateSampler.fixed_unigram(
                range_max,
                vocab_file,
                distortion,
                num_reserved_ids,
                num_shards,
                shard,
                unigrams,
                seed,
            )
        )


class AllCandidateSampler(CandidateSampler):
    """Returns ``[0, num_sampled)`` with expected counts of 1: a full, unsampled loss."""

    def __init__(self, seed: Seed = None) -> None:
        super().__init__(_rustnce.CandidateSampler.all_candidates(seed))


MAX_CACHED_SAMPLERS: int = _rustnce.MAX_CACHED_SAMPLERS
"""How many samplers the module-level functions keep (the least recently used go first)."""

MAX_CACHED_BYTES: int = _rustnce.MAX_CACHED_BYTES
"""How much memory the kept samplers' tables may take together (estimated from ``range_max``);
the least recently used go first, but the sampler of the latest call is always kept."""


def reset_sampler_cache() -> None:
    """Forget the samplers module-level calls have created (their streams and learned counts),
    the default sampler of the losses included."""
    _rustnce.reset_sampler_cache()


def uniform_candidate_sampler(
    true_classes: Any,
    num_true: int,
    num_sampled: int,
    unique: bool,
    range_max: int,
    seed: Seed = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tf.random.uniform_candidate_sampler``. Returns ``(sampled_candidates int64 [S],
    true_expected_count float32 [B, T], sampled_expected_count float32 [S])``."""
    return _rustnce.kept_sampler_sample(
        "uniform", true_classes, num_true, num_sampled, unique, range_max=range_max, seed=seed
    )


def log_uniform_candidate_sampler(
    true_classes: Any,
    num_true: int,
    num_sampled: int,
    unique: bool,
    range_max: int,
    seed: Seed = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tf.random.log_uniform_candidate_sampler`` (Zipfian over frequency-ranked ids)."""
    return _rustnce.kept_sampler_sample(
        "log_uniform", true_classes, num_true, num_sampled, unique, range_max=range_max, seed=seed
    )


def learned_unigram_candidate_sampler(
    true_classes: Any,
    num_true: int,
    num_sampled: int,
    unique: bool,
    range_max: int,
    seed: Seed = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tf.random.learned_unigram_candidate_sampler``; its counts persist across calls with
    the same attributes."""
    return _rustnce.kept_sampler_sample(
        "learned_unigram",
        true_classes,
        num_true,
        num_sampled,
        unique,
        range_max=range_max,
        seed=seed,
    )


def fixed_unigram_candidate_sampler(
    true_classes: Any,
    num_true: int,
    num_sampled: int,
    unique: bool,
    range_max: int,
    vocab_file: str = "",
    distortion: float = 1.0,
    num_reserved_ids: int = 0,
    num_shards: int = 1,
    shard: int = 0,
    unigrams: Sequence[float] = (),
    seed: Seed = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tf.random.fixed_unigram_candidate_sampler`` (word2vec's noise: ``distortion=0.75``)."""
    return _rustnce.kept_sampler_sample(
        "fixed_unigram",
        true_classes,
        num_true,
        num_sampled,
        unique,
        range_max=range_max,
        seed=seed,
        vocab_file=vocab_file,
        distortion=distortion,
        num_reserved_ids=num_reserved_ids,
        num_shards=num_shards,
        shard=shard,
        unigrams=unigrams,
    )


def all_candidate_sampler(
    true_classes: Any, num_true: int, num_sampled: int, unique: bool, seed: Seed = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tf.random.all_candidate_sampler``: ``[0, num_sampled)`` with expected counts 1."""
    return _rustnce.kept_sampler_sample(
        "all", true_classes, num_true, num_sampled, unique, seed=seed
    )
