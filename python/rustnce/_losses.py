"""``nce_loss``, ``sampled_softmax_loss``, their sampled logits and the full evaluation losses,
with TensorFlow's arguments (docs/semantics.md §2-§4).

The sampled losses pass their arguments straight to one typed function of the extension
(``src/py/losses.rs``), which checks them, draws the default sample and computes, in one call."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _rustnce
from ._arguments import (
    MAX_INT64,
    as_array,
    as_choice,
    as_class_matrix,
    as_count,
    as_float_array,
    as_id_vector,
    as_int,
    as_shards,
    check_id_range,
    check_memory,
    check_shard_layout,
    shard_label,
)
from ._samplers import Seed

_PARTITION_STRATEGIES = ("div", "mod")


def _prepare(
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_true: int,
    partition_strategy: str,
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray, int]:
    """Checks what every loss shares: dtypes, ranks, shapes and the shard layouts. Nothing
    here reads more than the arrays' headers (and the labels' dtype)."""
    inputs = as_float_array(inputs, "inputs", 2)
    weight_shards = as_shards(weights, "weights", 2, inputs.dtype)
    bias_shards = as_shards(biases, "biases", 1, inputs.dtype)
    labels = as_class_matrix(labels, "labels")
    num_true = as_count(num_true, "num_true")
    partition_strategy = as_choice(partition_strategy, "partition_strategy", _PARTITION_STRATEGIES)
    if labels.shape[1] != num_true:
        raise ValueError(
            f"labels must have shape [batch_size, num_true={num_true}], got {labels.shape}"
        )
    if labels.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"labels has {labels.shape[0]} rows but inputs has {inputs.shape[0]}: labels must "
            "be [batch_size, num_true] with the batch of inputs"
        )
    dim = inputs.shape[1]
    for position, shard in enumerate(weight_shards):
        if shard.shape[1] != dim:
            label = shard_label("weights", position, len(weight_shards))
            raise ValueError(
                f"{label} has {shard.shape[1]} columns but inputs have {dim}: weights must be "
                "[num_classes, dim] with the dim of inputs"
            )
    weight_rows = check_shard_layout(weight_shards, "weights", partition_strategy)
    bias_rows = check_shard_layout(bias_shards, "biases", partition_strategy)
    if bias_rows != weight_rows:
        raise ValueError(
            f"biases has {bias_rows} entries but weights have {weight_rows} rows: one bias per "
            "row of weights"
        )
    bias_shards = [shard[:, None] for shard in bias_shards]
    return weight_shards, bias_shards, labels, inputs, num_true


def _num_classes(num_classes: Any, weight_shards: list[np.ndarray]) -> int:
    """``num_classes`` in ``[1, rows of weights]``."""
    rows = sum(shard.shape[0] for shard in weight_shards)
    num_classes = as_int(num_classes, "num_classes", 1, MAX_INT64)
    if num_classes > rows:
        raise ValueError(
            f"num_classes must be at most the rows of weights ({rows}), got {num_classes}"
        )
    return num_classes


def nce_loss(
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: Any = None,
    remove_accidental_hits: bool = False,
    partition_strategy: str = "div",
    seed: Seed = None,
    subtract_log_q: bool = True,
) -> np.ndarray:
    """Noise-contrastive estimation loss, per example, as ``tf.nn.nce_loss``.

    Args:
        weights: ``[num_classes', dim]`` float32/float64 array, or a list of shards split by
            ``partition_strategy``; read in place, never copied.
        biases: ``[num_classes']`` array of the same dtype, or a list of shards.
        labels: ``[batch, num_true]`` int32/int64 target classes.
        inputs: ``[batch, dim]`` float32/float64 activations.
        num_sampled: candidates sampled once for the whole batch.
        num_classes: number of classes (the sampler's ``range_max``); every id must be below it.
        num_true: targets per example.
        sampled_values: a sampler's triple ``(sampled_candidates [S], true_expected_count
            [batch, num_true], sampled_expected_count [S])``; default: the log-uniform sampler
            with ``unique=True``.
        remove_accidental_hits: mask sampled candidates equal to a row's label (turns NCE
            into "sampled logistic").
        partition_strategy: ``"div"`` (contiguous shards, TensorFlow 2) or ``"mod"``.
        seed: the default sampler's seed (an int as TensorFlow's op seed, or ``(seed, seed2)``).
        subtract_log_q: subtract ``ln(expected count)`` from each logit (TensorFlow: always).

    Returns:
        ``[batch]`` losses in the dtype of ``inputs``: for each row, the sigmoid
        cross-entropy of the ``num_true + num_sampled`` logits against targets ``1/num_true``
        (true columns) and 0 (sampled columns), summed.
    """
    return _rustnce.nce_loss(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true,
        sampled_values,
        remove_accidental_hits,
        partition_strategy,
        seed,
        subtract_log_q,
    )


def sampled_softmax_loss(
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: Any = None,
    remove_accidental_hits: bool = True,
    partition_strategy: str = "div",
    seed: Seed = None,
    subtract_log_q: bool = True,
) -> np.ndarray:
    """Sampled softmax loss, per example, as ``tf.nn.sampled_softmax_loss``.

    Arguments as :func:`nce_loss` (here ``remove_accidental_hits`` defaults to True).

    Returns:
        ``[batch]`` losses in the dtype of ``inputs``: the softmax cross-entropy of each row
        of ``num_true + num_sampled`` logits against targets ``1/num_true`` on the true columns.
    """
    return _rustnce.sampled_softmax_loss(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true,
        sampled_values,
        remove_accidental_hits,
        partition_strategy,
        seed,
        subtract_log_q,
    )


def compute_sampled_logits(
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: Any = None,
    subtract_log_q: bool = True,
    remove_accidental_hits: bool = False,
    partition_strategy: str = "div",
    seed: Seed = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The logits and targets both losses start from (TensorFlow's ``_compute_sampled_logits``).

    Returns:
        ``(logits, targets)``, each ``[batch, num_true + num_sampled]`` in the dtype of
        ``inputs``: true columns first (in label order), then the sampled candidates; targets
        are ``1/num_true`` on the true columns and 0 elsewhere. A removed accidental hit's
        logit is ``raw - FLT_MAX - ln Q``.
    """
    return _rustnce.compute_sampled_logits(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true,
        sampled_values,
        subtract_log_q,
        remove_accidental_hits,
        partition_strategy,
        seed,
    )


def _full_loss(
    kind: str,
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_classes: int,
    num_true: int,
    partition_strategy: str,
) -> np.ndarray:
    weight_shards, bias_shards, labels, inputs, _ = _prepare(
        weights, biases, labels, inputs, num_true, partition_strategy
    )
    num_classes = _num_classes(num_classes, weight_shards)
    check_id_range(labels, "labels", num_classes, "num_classes")
    return _rustnce.full_loss(
        kind,
        weight_shards,
        bias_shards,
        labels,
        inputs,
        num_classes,
        partition_strategy,
    )


def full_sigmoid_loss(
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_classes: int,
    num_true: int = 1,
    partition_strategy: str = "div",
) -> np.ndarray:
    """Evaluation counterpart of :func:`nce_loss`: the sigmoid cross-entropy of the full
    logits ``inputs @ W[:num_classes].T + b[:num_classes]`` against targets
    ``y[c] = (times c is a label of the row) / num_true``, summed over all classes. ``[batch]``.
    The ``[batch, num_classes]`` logits are never held in memory at once."""
    return _full_loss(
        "sigmoid", weights, biases, labels, inputs, num_classes, num_true, partition_strategy
    )


def full_softmax_loss(
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_classes: int,
    num_true: int = 1,
    partition_strategy: str = "div",
) -> np.ndarray:
    """Evaluation counterpart of :func:`sampled_softmax_loss`: the softmax cross-entropy of
    the full logits against targets ``y[c] = (times c is a label of the row) / num_true``.
    ``[batch]``."""
    return _full_loss(
        "softmax", weights, biases, labels, inputs, num_classes, num_true, partition_strategy
    )


def embedding_lookup(params: Any, ids: Any, partition_strategy: str = "div") -> np.ndarray:
    """Rows ``ids`` of ``params`` (an array or a list of shards split by
    ``partition_strategy``), as ``tf.nn.embedding_lookup``. ``ids`` may have any shape; the
    result has shape ``ids.shape + params' trailing shape``."""
    shards = list(params) if isinstance(params, (list, tuple)) else [params]
    if not shards:
        raise ValueError("params must be an array or a non-empty list of shards")
    first_label = shard_label("params", 0, len(shards))
    first = as_array(shards[0], first_label)
    if first.ndim not in (1, 2):
        raise ValueError(
            f"{first_label} must be 1-D or 2-D ([rows] or [rows, dim]), got shape {first.shape}"
        )
    vector = first.ndim == 1
    dtype = as_float_array(first, first_label, first.ndim).dtype
    arrays = as_shards(shards, "params", first.ndim, dtype)
    partition_strategy = as_choice(partition_strategy, "partition_strategy", _PARTITION_STRATEGIES)
    rows = check_shard_layout(arrays, "params", partition_strategy)
    if vector:
        arrays = [a[:, None] for a in arrays]
    id_array = as_array(ids, "ids")
    flat = as_id_vector(id_array.reshape(-1), "ids")
    check_id_range(flat, "ids", rows, "rows of params")
    width = arrays[0].shape[1]
    check_memory(
        dtype.itemsize * flat.shape[0] * width,
        f"{flat.shape[0]} rows of width {width} gathered from params",
    )
    out = _rustnce.embedding_lookup(arrays, flat, partition_strategy)
    trailing = () if vector else out.shape[1:]
    return out.reshape(id_array.shape + trailing)


def compute_accidental_hits(
    true_classes: Any, sampled_candidates: Any, num_true: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where a sampled candidate equals a row's true class, as
    ``tf.nn.compute_accidental_hits``.

    Returns:
        ``(indices int32 [H], ids int64 [H], weights float32 [H])``: the row of each hit, the
        position of the candidate (the last position for a repeated candidate), and
        ``-FLT_MAX``; row-major over the true classes.
    """
    return _rustnce.compute_accidental_hits(true_classes, sampled_candidates, num_true)


__all__ = [
    "compute_accidental_hits",
    "compute_sampled_logits",
    "embedding_lookup",
    "full_sigmoid_loss",
    "full_softmax_loss",
    "nce_loss",
    "sampled_softmax_loss",
]
