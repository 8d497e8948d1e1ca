"""One fused skip-gram SGD step: ``nce_loss`` / ``sampled_softmax_loss`` with ``num_true = 1``
where each example's input is a row of an input-embedding table, and every parameter it touches
(center rows, context and negative rows, their biases) updated in place. The function passes
its arguments straight to the extension (``src/py/skipgram.rs``), which checks them."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from . import _rustnce


def skipgram_sgd_step(
    input_vectors: npt.NDArray[np.float32],
    output_vectors: npt.NDArray[np.float32],
    biases: npt.NDArray[np.float32],
    centers: npt.ArrayLike,
    contexts: npt.ArrayLike,
    sampled_values: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike],
    learning_rate: float,
    loss: Literal["nce", "sampled_softmax", "neg"] = "nce",
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
    return _rustnce.skipgram_sgd_step(
        input_vectors,
        output_vectors,
        biases,
        centers,
        contexts,
        sampled_values,
        learning_rate,
        loss,
    )
