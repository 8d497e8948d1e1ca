"""One fused skip-gram SGD step: ``nce_loss`` / ``sampled_softmax_loss`` with ``num_true = 1``
where each example's input is a row of an input-embedding table, and every parameter it touches
(center rows, context and negative rows, their biases) updated in place."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _rustnce
from ._arguments import as_array, as_choice, as_float, as_id_vector, unpack_sampled_values

LOSSES = ("nce", "sampled_softmax", "neg")


def _ids(value: Any, name: str) -> npt.NDArray[np.int64]:
    """int64 ids ``[n]``; a ``[n, 1]`` matrix (a sampler's ``true_classes`` layout) is accepted."""
    array = as_array(value, name)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    return as_id_vector(array, name)


def _counts(value: Any, name: str, size: int) -> npt.NDArray[np.float32]:
    """Expected counts as float32 ``[size]`` (``[size, 1]`` accepted)."""
    array = as_array(value, name)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float32, copy=False).reshape(-1)
    if array.size != size:
        raise ValueError(f"{name} must have {size} entries, got {array.size}")
    return np.ascontiguousarray(array)


def skipgram_sgd_step(
    input_vectors: npt.NDArray[np.float32],
    output_vectors: npt.NDArray[np.float32],
    biases: npt.NDArray[np.float32],
    centers: npt.ArrayLike,
    contexts: npt.ArrayLike,
    sampled_values: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike],
    learning_rate: float,
    loss: str = "nce",
) -> float:
    """One SGD step of skip-gram on a batch of ``(center, context)`` pairs sharing the
    negatives ``sampled_values`` (a sampler's ``(sampled_candidates, true_expected_count,
    sampled_expected_count)`` for ``true_classes = contexts``, ``num_true = 1``).

    With ``x_i = input_vectors[centers[i]]`` the step is ``nce_loss`` (``loss="nce"``) or
    ``sampled_softmax_loss`` (``"sampled_softmax"``, accidental hits removed) on
    ``weights=output_vectors``, summed over the pairs; ``"neg"`` is word2vec's negative sampling
    (expected counts taken as 1, accidental hits removed). Every parameter moves by
    ``-learning_rate`` times its gradient, all gradients taken before the step; repeated ids
    add up. ``input_vectors`` and ``output_vectors`` are C-contiguous float32 ``[V, dim]``,
    ``biases`` float32 ``[V]``, all updated in place. Returns the batch's summed loss."""
    loss = as_choice(loss, "loss", LOSSES)
    rate = as_float(learning_rate, "learning_rate", finite=True)
    centers_array = _ids(centers, "centers")
    contexts_array = _ids(contexts, "contexts")
    if contexts_array.size != centers_array.size:
        raise ValueError(
            f"contexts must have one id per center ({centers_array.size}), "
            f"got {contexts_array.size}"
        )
    candidates, true_expected, sampled_expected = unpack_sampled_values(sampled_values)
    negatives = _ids(candidates, "sampled_values[0]")
    return _rustnce.skipgram_sgd_step(
        input_vectors,
        output_vectors,
        biases,
        centers_array,
        contexts_array,
        negatives,
        _counts(true_expected, "sampled_values[1]", centers_array.size),
        _counts(sampled_expected, "sampled_values[2]", negatives.size),
        rate,
        loss,
    )
