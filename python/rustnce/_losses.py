"""``nce_loss``, ``sampled_softmax_loss``, their sampled logits and the full evaluation losses,
with TensorFlow's arguments (docs/semantics.md §2-§4).

Every function passes its arguments straight to one typed function of the extension
(``src/py/losses.rs``, ``src/py/sharding.rs``), which checks them, draws the default sample
where there is one and computes, in one call."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _rustnce
from ._samplers import Seed


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
    *,
    precision: str = "float32",
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
        precision: ``"float32"`` (default: TensorFlow's arithmetic) or ``"bfloat16"``: the
            three matrix products (sampled logits, inputs gradient, sampled rows' gradient)
            round their operands to bfloat16 and sum in float32, about twice as fast, where
            the processor has AVX-512 BF16 (:func:`rustnce.bfloat16_available`; elsewhere
            float32 is used). Needs float32 arrays. Error bounds: docs/performance.md.

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
        precision=precision,
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
    *,
    precision: str = "float32",
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
        precision=precision,
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
    *,
    precision: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """The logits and targets both losses start from (TensorFlow's ``_compute_sampled_logits``).

    Returns:
        ``(logits, targets)``, each ``[batch, num_true + num_sampled]`` in the dtype of
        ``inputs``: true columns first (in label order), then the sampled candidates; targets
        are ``1/num_true`` on the true columns and 0 elsewhere. A removed accidental hit's
        logit is ``raw - FLT_MAX - ln Q``. ``precision`` as in :func:`nce_loss`.
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
        precision=precision,
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
    return _rustnce.full_sigmoid_loss(
        weights, biases, labels, inputs, num_classes, num_true, partition_strategy
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
    return _rustnce.full_softmax_loss(
        weights, biases, labels, inputs, num_classes, num_true, partition_strategy
    )


def embedding_lookup(params: Any, ids: Any, partition_strategy: str = "div") -> np.ndarray:
    """Rows ``ids`` of ``params`` (an array or a list of shards split by
    ``partition_strategy``), as ``tf.nn.embedding_lookup``. ``ids`` may have any shape; the
    result has shape ``ids.shape + params' trailing shape``."""
    return _rustnce.embedding_lookup(params, ids, partition_strategy)


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
