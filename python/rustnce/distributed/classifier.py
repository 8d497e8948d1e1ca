"""A sampled-loss SGD step against a sharded output layer: a classifier whose class weights
and biases live in a :class:`ShardedTable` (too large for one machine, say) trains with
:func:`rustnce.nce_sgd_step` or :func:`rustnce.sampled_softmax_sgd_step` on only the rows a
batch touches.

The step pulls the rows of the batch's labels and sampled candidates, renumbers them
``0..k-1`` (in increasing id order), runs the ordinary step on that small table, and pushes the
change of each row back. Renumbering is a bijection on the touched ids and the expected counts
are the sampler's for the global ids, so the losses, the accidental hits and every update are
those of the same step on the whole table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arguments import as_choice
from .._gradients import nce_sgd_step, sampled_softmax_sgd_step
from .._samplers import log_uniform_candidate_sampler
from .shards import ShardedTable

STEPS = {"nce": nce_sgd_step, "sampled_softmax": sampled_softmax_sgd_step}


def sharded_sgd_step(
    table: ShardedTable,
    labels: Any,
    inputs: Any,
    num_sampled: int,
    learning_rate: float,
    loss: str = "nce",
    num_true: int = 1,
    sampled_values: Any = None,
    remove_accidental_hits: bool | None = None,
    seed: Any = None,
    upstream: Any = "mean",
    weights: str = "weights",
    biases: str = "biases",
    wait: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """One SGD step of ``nce_loss`` (``loss="nce"``) or ``sampled_softmax_loss`` on the
    tables ``weights`` (``[num_classes, dim]``) and ``biases`` (``[num_classes]``) of
    ``table``, where ``num_classes`` is the table's row count. Arguments as
    :func:`rustnce.nce_sgd_step`; without ``sampled_values`` the candidates are drawn by
    TensorFlow's default, ``log_uniform_candidate_sampler(unique=True)``. The deltas are pushed
    to the shards (waited for unless ``wait=False``). Returns ``(loss [batch],
    inputs_gradient [batch, dim])``."""
    loss = as_choice(loss, "loss", tuple(STEPS))
    num_classes = table.layout.rows
    label_array = np.asarray(labels)
    if label_array.ndim == 1:
        label_array = label_array[:, None]
    if label_array.dtype.kind not in "iu":
        raise TypeError(f"labels must hold integer class ids, got dtype {label_array.dtype}")
    label_array = label_array.astype(np.int64)
    if sampled_values is None:
        sampled_values = log_uniform_candidate_sampler(
            label_array, num_true, num_sampled, True, num_classes, seed=seed
        )
    try:
        candidates, true_expected, sampled_expected = sampled_values
    except (TypeError, ValueError):
        raise ValueError(
            "sampled_values must be a (sampled_candidates, true_expected_count, "
            "sampled_expected_count) tuple"
        ) from None
    candidates = np.asarray(candidates, dtype=np.int64)
    touched = np.unique(np.concatenate([label_array.reshape(-1), candidates.reshape(-1)]))
    rows = table.pull({weights: touched, biases: touched})
    local_weights, local_biases = rows[weights], rows[biases]
    before_weights, before_biases = local_weights.copy(), local_biases.copy()
    extra = {}
    if remove_accidental_hits is not None:
        extra["remove_accidental_hits"] = remove_accidental_hits
    result = STEPS[loss](
        local_weights,
        local_biases,
        np.searchsorted(touched, label_array),
        inputs,
        num_sampled,
        touched.size,
        learning_rate,
        num_true=num_true,
        sampled_values=(np.searchsorted(touched, candidates), true_expected, sampled_expected),
        upstream=upstream,
        **extra,
    )
    table.push(
        {
            weights: (touched, local_weights - before_weights),
            biases: (touched, local_biases - before_biases),
        },
        wait=wait,
    )
    return result
