"""``nce_loss``, ``sampled_softmax_loss``, their sampled logits and the full evaluation losses,
with TensorFlow's arguments (docs/semantics.md §2-§4)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import _rustnce
from ._arguments import (
    MAX_INT64,
    as_array,
    as_bool,
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
    unpack_sampled_values,
)
from ._samplers import Seed, log_uniform_candidate_sampler

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


def _explicit_sampled_values(
    sampled_values: Any,
    num_sampled: int,
    num_classes: int,
    remove_accidental_hits: bool,
    subtract_log_q: bool,
    dtype: np.dtype,
    batch: int,
    num_true: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The caller's triple as the extension takes it. As in TensorFlow, the candidates' own
    length is the number sampled, and the expected counts are read only when ``ln Q`` is
    subtracted."""
    candidates, true_expected, sampled_expected = unpack_sampled_values(sampled_values)
    candidates = as_id_vector(candidates, "sampled_values[0] (sampled_candidates)")
    check_id_range(candidates, "sampled_values[0] (sampled_candidates)", num_classes, "num_classes")
    if remove_accidental_hits and candidates.shape[0] != num_sampled:
        raise ValueError(
            f"num_sampled ({num_sampled}) must equal len(sampled_values[0]) "
            f"({candidates.shape[0]}) when accidental hits are removed: TensorFlow builds the "
            "hit mask with num_sampled columns"
        )
    if not subtract_log_q:
        unread = np.zeros(0, dtype)
        return candidates, unread, unread
    true_expected = _expected_counts(
        true_expected, "sampled_values[1] (true_expected_count)", dtype
    )
    sampled_expected = _expected_counts(
        sampled_expected, "sampled_values[2] (sampled_expected_count)", dtype
    )
    # The core checks this too; checked here as well so that the message comes before the
    # extension borrows any in-place target.
    _check_broadcast(true_expected, (batch, num_true), "sampled_values[1] (true_expected_count)")
    _check_broadcast(
        sampled_expected,
        (batch, candidates.shape[0]),
        "sampled_values[2] (sampled_expected_count)",
    )
    return candidates, true_expected, sampled_expected


def _check_broadcast(counts: np.ndarray, shape: tuple[int, int], name: str) -> None:
    """Expected counts must broadcast to the logits they are subtracted from, without widening
    them (docs/semantics.md §2.1)."""
    if counts.shape == shape or counts.shape == shape[1:]:
        return  # what a sampler returns
    try:
        fits = counts.ndim <= 2 and np.broadcast_shapes(counts.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name} has shape {list(counts.shape)}, which does not broadcast to the logits "
            f"it is subtracted from, {list(shape)}"
        )


def _expected_counts(value: Any, name: str, dtype: np.dtype) -> np.ndarray:
    """Expected counts in the dtype of ``inputs`` (a small copy when the dtypes differ)."""
    array = as_array(value, name)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array.astype(dtype, copy=False)


#: The arguments every sampled-loss function takes, with TensorFlow's names.
SHARED_ARGUMENTS = (
    "weights",
    "biases",
    "labels",
    "inputs",
    "num_sampled",
    "num_classes",
    "num_true",
    "sampled_values",
    "remove_accidental_hits",
    "partition_strategy",
    "seed",
    "subtract_log_q",
)


def _shared_arguments(scope: dict[str, Any]) -> dict[str, Any]:
    """The shared arguments out of a public function's ``locals()``, to pass on by name."""
    return {name: scope[name] for name in SHARED_ARGUMENTS}


def _sampled_arguments(
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_sampled: int,
    num_classes: int,
    num_true: int,
    sampled_values: Any,
    remove_accidental_hits: bool,
    partition_strategy: str,
    seed: Seed,
    subtract_log_q: bool,
    before_sampling: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Checks and normalises the arguments every sampled-loss function shares, drawing the
    candidates when ``sampled_values`` is None; returns them as the extension expects them.

    ``before_sampling`` gets the checked arrays (weights, biases, labels, inputs) for the
    caller's own checks, before the default sampler draws: a refused call leaves the
    sampler's stream where it was."""
    weight_shards, bias_shards, labels, inputs, num_true = _prepare(
        weights, biases, labels, inputs, num_true, partition_strategy
    )
    num_classes = _num_classes(num_classes, weight_shards)
    remove_accidental_hits = as_bool(remove_accidental_hits, "remove_accidental_hits")
    subtract_log_q = as_bool(subtract_log_q, "subtract_log_q")
    if sampled_values is None or remove_accidental_hits:
        num_sampled = as_count(num_sampled, "num_sampled")
    else:
        # TensorFlow never reads num_sampled once the candidates are given.
        num_sampled = as_int(num_sampled, "num_sampled")
    _rustnce.seed_attributes(seed)  # a bad seed is refused even when no sampler needs it
    # Checked here rather than by the default sampler, so that the message names labels
    # (and so that explicit sampled_values get the check TensorFlow omits).
    check_id_range(labels, "labels", num_classes, "num_classes")
    explicit = None
    if sampled_values is not None:
        explicit = _explicit_sampled_values(
            sampled_values,
            num_sampled,
            num_classes,
            remove_accidental_hits,
            subtract_log_q,
            inputs.dtype,
            inputs.shape[0],
            num_true,
        )
        num_sampled = explicit[0].shape[0]
    batch, dim = inputs.shape
    elements = batch * (num_true + num_sampled) + 2 * num_sampled * dim + batch * dim
    check_memory(
        inputs.dtype.itemsize * elements,
        f"the logits of batch {batch} x (num_true {num_true} + num_sampled {num_sampled}) "
        f"and {num_sampled} gathered rows of dim {dim}",
    )
    if before_sampling is not None:
        before_sampling(
            {"weights": weight_shards, "biases": bias_shards, "labels": labels, "inputs": inputs}
        )
    if explicit is None:
        # TensorFlow's default: the log-uniform sampler, unique, over num_classes.
        explicit = log_uniform_candidate_sampler(
            labels, num_true, num_sampled, True, num_classes, seed
        )
    candidates, true_expected, sampled_expected = explicit
    if true_expected.dtype != inputs.dtype:
        true_expected = true_expected.astype(inputs.dtype)
        sampled_expected = sampled_expected.astype(inputs.dtype)
    return {
        "weights": weight_shards,
        "biases": bias_shards,
        "labels": labels,
        "inputs": inputs,
        "num_classes": num_classes,
        "sampled_candidates": candidates,
        "true_expected_count": true_expected,
        "sampled_expected_count": sampled_expected,
        "remove_accidental_hits": remove_accidental_hits,
        "subtract_log_q": subtract_log_q,
        "partition_strategy": partition_strategy,
    }


def _upstream(upstream: Any, batch: int, dtype: np.dtype) -> Any:
    """``"sum"``, ``"mean"``, or one weight per example in the dtype of ``inputs``."""
    if isinstance(upstream, str):
        if upstream not in ("sum", "mean"):
            raise ValueError(f'upstream must be "sum", "mean" or an array, got {upstream!r}')
        return upstream
    if not isinstance(upstream, (np.ndarray, list, tuple)):
        raise TypeError(
            f'upstream must be "sum", "mean" or an array, got {type(upstream).__name__}'
        )
    array = as_array(upstream, "upstream")
    if array.dtype.kind not in "fiu":
        raise TypeError(f"upstream must hold real numbers, got dtype {array.dtype}")
    if array.shape != (batch,):
        raise ValueError(f"upstream must have shape [batch]=({batch},), got {array.shape}")
    return array.astype(dtype, copy=False)


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
    arguments = _sampled_arguments(**_shared_arguments(locals()))
    return _rustnce.sampled_loss("nce", arguments)


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
    arguments = _sampled_arguments(**_shared_arguments(locals()))
    return _rustnce.sampled_loss("sampled_softmax", arguments)


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
    logits = _rustnce.sampled_logits(_sampled_arguments(**_shared_arguments(locals())))
    num_true = as_count(num_true, "num_true")
    targets = np.zeros_like(logits)
    targets[:, :num_true] = 1.0 / num_true
    return logits, targets


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
    true_classes = as_class_matrix(true_classes, "true_classes")
    num_true = as_count(num_true, "num_true")
    if true_classes.shape[1] != num_true:
        raise ValueError(
            f"true_classes must be [batch_size, num_true={num_true}], got shape "
            f"{true_classes.shape}"
        )
    return _rustnce.compute_accidental_hits(
        true_classes, as_id_vector(sampled_candidates, "sampled_candidates"), num_true
    )


__all__ = [
    "compute_accidental_hits",
    "compute_sampled_logits",
    "embedding_lookup",
    "full_sigmoid_loss",
    "full_softmax_loss",
    "nce_loss",
    "sampled_softmax_loss",
]
