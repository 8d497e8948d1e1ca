"""The compiled extension. The sampled losses (``nce_loss`` ... ``sampled_softmax_sgd_step``) take
the user's arguments with TensorFlow's defaults and check them themselves (``src/py/losses.rs``);
``rustnce``'s functions of the same names pass straight through. The other functions take
arguments the Python layer has already normalised."""

import os
import pathlib
from collections.abc import Sequence
from typing import Any, Literal, Union, final

import numpy as np
import numpy.typing as npt

__version__: str

__all__ = [
    "__version__",
    "CandidateSampler",
    "PooledBuffer",
    "SampledLossGradients",
    "SkipGramTrainer",
    "TextCorpus",
    "TrainingReport",
    "MAX_CACHED_BYTES",
    "MAX_CACHED_SAMPLERS",
    "bfloat16_available",
    "checked_sampled_values",
    "compute_accidental_hits",
    "compute_sampled_logits",
    "embedding_lookup",
    "full_sigmoid_loss",
    "full_softmax_loss",
    "get_num_threads",
    "kept_sampler_sample",
    "nce_loss",
    "nce_loss_and_gradients",
    "nce_sgd_step",
    "reset_sampler_cache",
    "sampled_softmax_loss",
    "sampled_softmax_loss_and_gradients",
    "sampled_softmax_sgd_step",
    "sampler_cache_usage",
    "seed_attributes",
    "set_num_threads",
    "skipgram_pairs",
    "skipgram_sgd_step",
]

_Seed = Union[None, int, "tuple[int, int]"]
_Triple = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32]]
_Float = np.float32 | np.float64
_FloatArray = npt.NDArray[_Float]
# What the sampled losses accept: a float32/float64 array (or anything ``numpy.asarray`` turns
# into one), or a list of shards split by ``partition_strategy``.
_Shards = npt.ArrayLike | Sequence[npt.ArrayLike]
_PartitionStrategy = Literal["div", "mod"]
_Precision = Literal["float32", "bfloat16"]
_Upstream = Literal["sum", "mean"] | npt.ArrayLike
_SampledValues = tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike] | Sequence[Any]

MAX_CACHED_SAMPLERS: int
MAX_CACHED_BYTES: int

@final
class CandidateSampler:
    """A sampler kernel: a base distribution and its persistent Philox stream."""

    @staticmethod
    def uniform(range_max: int, seed: _Seed = None) -> CandidateSampler: ...
    @staticmethod
    def log_uniform(range_max: int, seed: _Seed = None) -> CandidateSampler: ...
    @staticmethod
    def learned_unigram(range_max: int, seed: _Seed = None) -> CandidateSampler: ...
    @staticmethod
    def fixed_unigram(
        range_max: int,
        vocab_file: str | bytes | os.PathLike[str] | os.PathLike[bytes],
        distortion: float,
        num_reserved_ids: int,
        num_shards: int,
        shard: int,
        unigrams: npt.ArrayLike,
        seed: _Seed = None,
    ) -> CandidateSampler: ...
    @staticmethod
    def all_candidates(seed: _Seed = None) -> CandidateSampler: ...
    def sample(
        self, true_classes: npt.ArrayLike, num_true: int, num_sampled: int, unique: bool
    ) -> _Triple: ...
    def probability(self, ids: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
    @property
    def range_max(self) -> int | None: ...

@final
class SampledLossGradients:
    """Loss and gradients of one fused pass."""

    @property
    def loss(self) -> _FloatArray: ...
    @property
    def inputs_gradient(self) -> _FloatArray: ...
    @property
    def weight_shapes(self) -> list[tuple[int, int]]: ...
    @property
    def bias_shapes(self) -> list[tuple[int]]: ...
    def ids(self) -> npt.NDArray[np.int64]: ...
    def weight_values(self) -> npt.NDArray[Any]: ...
    def bias_values(self) -> npt.NDArray[Any]: ...
    def weight_shard_entries(
        self,
    ) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]: ...
    def bias_shard_entries(
        self,
    ) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]: ...
    def merged(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any], npt.NDArray[Any]]: ...
    def rescaled(
        self, upstream: _Upstream, inputs: npt.ArrayLike | None = None
    ) -> SampledLossGradients: ...
    def accumulate(
        self,
        weights_gradient: _Shards | None,
        biases_gradient: _Shards | None,
        scale: float,
    ) -> None: ...

@final
class PooledBuffer:
    """Owns the memory behind a returned array; recycled when the array is freed."""

def seed_attributes(seed: _Seed = None) -> tuple[int, int]: ...
def compute_accidental_hits(
    true_classes: npt.ArrayLike, sampled_candidates: npt.ArrayLike, num_true: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def embedding_lookup(
    params: _Shards, ids: npt.ArrayLike, partition_strategy: _PartitionStrategy = "div"
) -> _FloatArray: ...
def nce_loss(
    weights: _Shards,
    biases: _Shards,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: _SampledValues | None = None,
    remove_accidental_hits: bool = False,
    partition_strategy: _PartitionStrategy = "div",
    seed: _Seed = None,
    subtract_log_q: bool = True,
    *,
    precision: _Precision = "float32",
) -> _FloatArray: ...
def sampled_softmax_loss(
    weights: _Shards,
    biases: _Shards,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: _SampledValues | None = None,
    remove_accidental_hits: bool = True,
    partition_strategy: _PartitionStrategy = "div",
    seed: _Seed = None,
    subtract_log_q: bool = True,
    *,
    precision: _Precision = "float32",
) -> _FloatArray: ...
def compute_sampled_logits(
    weights: _Shards,
    biases: _Shards,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: _SampledValues | None = None,
    subtract_log_q: bool = True,
    remove_accidental_hits: bool = False,
    partition_strategy: _PartitionStrategy = "div",
    seed: _Seed = None,
    *,
    precision: _Precision = "float32",
) -> tuple[_FloatArray, _FloatArray]: ...
def checked_sampled_values(
    weights: _Shards,
    biases: _Shards,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: _SampledValues | None = None,
    remove_accidental_hits: bool = False,
    partition_strategy: _PartitionStrategy = "div",
    seed: _Seed = None,
    subtract_log_q: bool = True,
) -> tuple[npt.NDArray[np.int64], _FloatArray, _FloatArray]: ...
def nce_loss_and_gradients(
    weights: _Shards,
    biases: _Shards,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: _SampledValues | None = None,
    remove_accidental_hits: bool = False,
    partition_strategy: _PartitionStrategy = "div",
    seed: _Seed = None,
    subtract_log_q: bool = True,
    upstream: _Upstream = "sum",
    *,
    rescalable: bool = False,
    merged: bool = False,
    precision: _Precision = "float32",
) -> SampledLossGradients: ...
def sampled_softmax_loss_and_gradients(
    weights: _Shards,
    biases: _Shards,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: _SampledValues | None = None,
    remove_accidental_hits: bool = True,
    partition_strategy: _PartitionStrategy = "div",
    seed: _Seed = None,
    subtract_log_q: bool = True,
    upstream: _Upstream = "sum",
    *,
    rescalable: bool = False,
    merged: bool = False,
    precision: _Precision = "float32",
) -> SampledLossGradients: ...
def nce_sgd_step(
    weights: _Shards,
    biases: _Shards,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    num_sampled: int,
    num_classes: int,
    learning_rate: float,
    num_true: int = 1,
    sampled_values: _SampledValues | None = None,
    remove_accidental_hits: bool = False,
    partition_strategy: _PartitionStrategy = "div",
    seed: _Seed = None,
    subtract_log_q: bool = True,
    upstream: _Upstream = "mean",
    *,
    precision: _Precision = "float32",
) -> tuple[_FloatArray, _FloatArray]: ...
def sampled_softmax_sgd_step(
    weights: _Shards,
    biases: _Shards,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    num_sampled: int,
    num_classes: int,
    learning_rate: float,
    num_true: int = 1,
    sampled_values: _SampledValues | None = None,
    remove_accidental_hits: bool = True,
    partition_strategy: _PartitionStrategy = "div",
    seed: _Seed = None,
    subtract_log_q: bool = True,
    upstream: _Upstream = "mean",
    *,
    precision: _Precision = "float32",
) -> tuple[_FloatArray, _FloatArray]: ...
def kept_sampler_sample(
    sampler: Literal["uniform", "log_uniform", "learned_unigram", "fixed_unigram", "all"],
    true_classes: npt.ArrayLike,
    num_true: int,
    num_sampled: int,
    unique: bool,
    range_max: int | None = None,
    seed: _Seed = None,
    vocab_file: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None = None,
    distortion: float | None = None,
    num_reserved_ids: int | None = None,
    num_shards: int | None = None,
    shard: int | None = None,
    unigrams: npt.ArrayLike | None = None,
) -> _Triple: ...
def reset_sampler_cache() -> None: ...
def sampler_cache_usage() -> tuple[int, int]: ...
def full_sigmoid_loss(
    weights: _Shards,
    biases: _Shards,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    num_classes: int,
    num_true: int = 1,
    partition_strategy: _PartitionStrategy = "div",
) -> _FloatArray: ...
def full_softmax_loss(
    weights: _Shards,
    biases: _Shards,
    labels: npt.ArrayLike,
    inputs: npt.ArrayLike,
    num_classes: int,
    num_true: int = 1,
    partition_strategy: _PartitionStrategy = "div",
) -> _FloatArray: ...
def skipgram_sgd_step(
    input_vectors: npt.NDArray[np.float32],
    output_vectors: npt.NDArray[np.float32],
    biases: npt.NDArray[np.float32],
    centers: npt.ArrayLike,
    contexts: npt.ArrayLike,
    sampled_values: _SampledValues,
    learning_rate: float,
    loss: Literal["nce", "sampled_softmax", "neg"] = "nce",
) -> float: ...
def skipgram_pairs(
    ids: npt.NDArray[np.int32],
    sentences: npt.NDArray[np.int32],
    counts: npt.NDArray[np.int64],
    window: int,
    subsample: float,
    seed: int,
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]: ...

@final
class TrainingReport:
    """What one ``SkipGramTrainer.run`` call did."""

    @property
    def epoch(self) -> int: ...
    @property
    def words(self) -> int: ...
    @property
    def pairs(self) -> int: ...
    @property
    def loss(self) -> float: ...
    @property
    def epoch_end(self) -> bool: ...
    @property
    def finished(self) -> bool: ...
    @property
    def diverged(self) -> float | None: ...
    @property
    def learning_rate(self) -> float: ...

@final
class SkipGramTrainer:
    def __new__(
        cls,
        ids: npt.NDArray[np.int32] | TextCorpus,
        sentences: npt.NDArray[np.int32] | None = None,
        counts: npt.NDArray[np.int64] | None = None,
        *,
        dim: int,
        window: int,
        negatives: int,
        epochs: int,
        batch_pairs: int,
        loss: str,
        sampler: str,
        distortion: float,
        learning_rate: float,
        subsample: float,
        seed: int,
        update: Literal["bounded", "sequential", "sum"] = "sequential",
        sharing: Literal["window", "batch"] = "window",
        fixed_biases: bool = False,
        deterministic: bool = False,
        start_epoch: int = 0,
    ) -> SkipGramTrainer: ...
    def run(
        self,
        input_vectors: npt.NDArray[Any],
        output_vectors: npt.NDArray[Any],
        biases: npt.NDArray[Any],
        max_words: int,
    ) -> TrainingReport: ...
    @property
    def total_words(self) -> int: ...

def set_num_threads(threads: int) -> None: ...
def bfloat16_available() -> bool: ...
def get_num_threads() -> int: ...

# Text corpora read from files as training goes (src/py/corpus.rs).

@final
class TextCorpus:
    def __new__(
        cls,
        paths: Sequence[str | os.PathLike[str]],
        min_count: int = 1,
        *,
        words: Sequence[str] | None = None,
        counts: npt.NDArray[np.int64] | None = None,
    ) -> TextCorpus: ...
    @property
    def files(self) -> list[pathlib.Path]: ...
    @property
    def compressions(self) -> list[str]: ...
    @property
    def words(self) -> list[str]: ...
    @property
    def counts(self) -> npt.NDArray[np.int64]: ...
    @property
    def tokens(self) -> int: ...
    @property
    def raw_tokens(self) -> int: ...
    @property
    def most_frequent_dropped(self) -> int: ...
    def has_pairs(self) -> bool: ...
    def __len__(self) -> int: ...
