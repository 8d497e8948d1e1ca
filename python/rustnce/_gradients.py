"""Loss and gradients in one fused pass (docs/semantics.md §6), and the in-place SGD step.

TensorFlow returns the weight and bias gradients of a sampled loss as ``IndexedSlices``:
one row per label and per sampled candidate. :class:`SampledLossGradients` gives that form
(whole or per shard), a merged form with one row per distinct id, and scatter-adds into
gradient arrays the caller owns.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import _rustnce
from ._samplers import Seed


class RowSparseGradient(NamedTuple):
    """A gradient that is zero except in the rows ``indices`` (TensorFlow's
    ``IndexedSlices``): the dense gradient is ``values`` scatter-added at ``indices``."""

    indices: np.ndarray
    """int64 ``[n]`` row numbers; repeated rows add up."""
    values: np.ndarray
    """``[n, dim]`` (weights) or ``[n]`` (biases)."""
    dense_shape: tuple[int, ...]
    """The shape of the dense gradient (of the whole matrix, or of one shard)."""


class SampledLossGradients:
    """The per-example loss of a sampled loss and its gradients.

    Attributes:
        loss: ``[batch]`` per-example losses (as :func:`rustnce.nce_loss` returns them).
        inputs: ``[batch, dim]`` dense gradient of the total with respect to ``inputs``.

    The total is ``sum(loss)`` (``upstream="sum"``), ``mean(loss)`` (``"mean"``) or
    ``sum(upstream * loss)``. The label-row weight gradients are formed when asked for, from
    the call's own copy of ``inputs``: changing ``inputs`` afterwards changes nothing here.
    A call made with ``merged=True`` formed :meth:`merged` during its pass and keeps no copy
    of ``inputs``: it has only :attr:`loss`, :attr:`inputs`, :meth:`merged` and
    :meth:`rescaled` (given ``inputs``); the other forms raise ``ValueError``.
    """

    def __init__(self, computed: _rustnce.SampledLossGradients) -> None:
        self._computed = computed
        self.loss: np.ndarray = computed.loss
        self.inputs: np.ndarray = computed.inputs_gradient

    @property
    def _weight_shapes(self) -> list[tuple[int, int]]:
        return self._computed.weight_shapes

    @property
    def _bias_shapes(self) -> list[tuple[int]]:
        return self._computed.bias_shapes

    @property
    def weights(self) -> RowSparseGradient:
        """TensorFlow's weight gradient: ``indices`` = labels (row-major) then sampled ids,
        duplicates kept; ``values[n, dim]``; for sharded weights, the global ids (see
        :attr:`weight_shards` for TensorFlow's per-shard form)."""
        rows = sum(shape[0] for shape in self._weight_shapes)
        dense_shape = (rows, self._weight_shapes[0][1])
        return RowSparseGradient(self._computed.ids(), self._computed.weight_values(), dense_shape)

    @property
    def biases(self) -> RowSparseGradient:
        """TensorFlow's bias gradient: the indices of :attr:`weights`, one value each."""
        rows = sum(shape[0] for shape in self._bias_shapes)
        return RowSparseGradient(self._computed.ids(), self._computed.bias_values(), (rows,))

    @property
    def weight_shards(self) -> list[RowSparseGradient]:
        """One gradient per weight shard with shard-local indices, in the order the ids occur
        (TensorFlow's gradient of a list of shards)."""
        values = self._computed.weight_values()
        return [
            RowSparseGradient(local, values[positions], shape)
            for (local, positions), shape in zip(
                self._computed.weight_shard_entries(), self._weight_shapes
            )
        ]

    @property
    def bias_shards(self) -> list[RowSparseGradient]:
        """One gradient per bias shard with shard-local indices."""
        values = self._computed.bias_values()
        return [
            RowSparseGradient(local, values[positions], shape)
            for (local, positions), shape in zip(
                self._computed.bias_shard_entries(), self._bias_shapes
            )
        ]

    def merged(self) -> tuple[RowSparseGradient, RowSparseGradient]:
        """``(weights, biases)`` with one row per distinct id, ids ascending, rows summed."""
        ids, rows, biases = self._computed.merged()
        weight_rows = sum(shape[0] for shape in self._weight_shapes)
        bias_rows = sum(shape[0] for shape in self._bias_shapes)
        return (
            RowSparseGradient(ids, rows, (weight_rows, self._weight_shapes[0][1])),
            RowSparseGradient(ids, biases, (bias_rows,)),
        )

    def accumulate(
        self, weights_gradient: Any = None, biases_gradient: Any = None, scale: float = 1.0
    ) -> None:
        """Adds ``scale *`` the gradients into dense arrays in place: ``weights_gradient`` like
        ``weights`` (an array, or shards split the same way) and/or ``biases_gradient`` like
        ``biases``. Checked completely before anything is written; a target that shares memory
        with another or with an array the call read is refused. The extension checks every
        argument (``SampledLossGradients.accumulate`` in ``src/py/gradients.rs``)."""
        self._computed.accumulate(weights_gradient, biases_gradient, scale)

    def rescaled(self, upstream: Any, inputs: Any = None) -> SampledLossGradients:
        """The gradients with example ``i``'s share multiplied by ``upstream[i]`` (a
        ``[batch]`` array, or ``"sum"`` / ``"mean"``): from a call for ``sum(loss)``, those of
        ``sum(upstream * loss)``, as if the call had been made with that ``upstream``. Needs a
        call made with ``rescalable=True``. The weights are not read again (they may have
        changed since); only the sampled rows' gradients, which sum over the batch, are formed
        anew from the kept logit gradient and the call's copy of ``inputs``. A call made with
        ``merged=True`` keeps no such copy: pass the ``inputs`` it read (copied here)."""
        return SampledLossGradients(self._computed.rescaled(upstream, inputs))


def nce_loss_and_gradients(
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
    upstream: Any = "sum",
    *,
    rescalable: bool = False,
    merged: bool = False,
    precision: str = "float32",
) -> SampledLossGradients:
    """:func:`rustnce.nce_loss` and its gradients with respect to ``inputs``, ``weights``
    and ``biases``, in one fused pass.

    Arguments as :func:`rustnce.nce_loss`, plus ``upstream``: ``"sum"`` (default),
    ``"mean"``, or a ``[batch]`` array ``g`` (the gradient of the total is taken for
    ``sum(g * loss)``, TensorFlow's upstream gradient); ``rescalable``: keep the logits'
    gradient (``[batch, num_true + num_sampled]``) so that
    :meth:`SampledLossGradients.rescaled` can weight the examples afterwards without
    another pass over the weights; and ``merged``: form the merged gradients
    (:meth:`SampledLossGradients.merged`, the same values) during the pass, each label's row
    written while its block's inputs are in cache, and keep no copy of ``inputs`` (so the
    row-sparse forms and ``accumulate`` are not available afterwards); ``precision`` as in
    :func:`rustnce.nce_loss`.
    """
    return SampledLossGradients(
        _rustnce.nce_loss_and_gradients(
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
            upstream,
            rescalable=rescalable,
            merged=merged,
            precision=precision,
        )
    )


def sampled_softmax_loss_and_gradients(
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
    upstream: Any = "sum",
    *,
    rescalable: bool = False,
    merged: bool = False,
    precision: str = "float32",
) -> SampledLossGradients:
    """:func:`rustnce.sampled_softmax_loss` and its gradients, in one fused pass (arguments
    as :func:`nce_loss_and_gradients`)."""
    return SampledLossGradients(
        _rustnce.sampled_softmax_loss_and_gradients(
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
            upstream,
            rescalable=rescalable,
            merged=merged,
            precision=precision,
        )
    )


def nce_sgd_step(
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_sampled: int,
    num_classes: int,
    learning_rate: float,
    num_true: int = 1,
    sampled_values: Any = None,
    remove_accidental_hits: bool = False,
    partition_strategy: str = "div",
    seed: Seed = None,
    subtract_log_q: bool = True,
    upstream: Any = "mean",
    *,
    precision: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """One SGD step of :func:`rustnce.nce_loss` on ``weights`` and ``biases``, in place:
    ``weights -= learning_rate * gradient`` (only the touched rows are written).

    ``weights`` and ``biases`` must be writeable and must not overlap ``inputs`` or each
    other. Returns ``(loss [batch], inputs_gradient [batch, dim])`` so the caller can update
    whatever produced ``inputs`` (an input embedding, say). ``upstream`` defaults to ``"mean"``;
    ``precision`` as in :func:`rustnce.nce_loss`.
    """
    return _rustnce.nce_sgd_step(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        learning_rate,
        num_true,
        sampled_values,
        remove_accidental_hits,
        partition_strategy,
        seed,
        subtract_log_q,
        upstream,
        precision=precision,
    )


def sampled_softmax_sgd_step(
    weights: Any,
    biases: Any,
    labels: Any,
    inputs: Any,
    num_sampled: int,
    num_classes: int,
    learning_rate: float,
    num_true: int = 1,
    sampled_values: Any = None,
    remove_accidental_hits: bool = True,
    partition_strategy: str = "div",
    seed: Seed = None,
    subtract_log_q: bool = True,
    upstream: Any = "mean",
    *,
    precision: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """One SGD step of :func:`rustnce.sampled_softmax_loss` (see :func:`nce_sgd_step`)."""
    return _rustnce.sampled_softmax_sgd_step(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        learning_rate,
        num_true,
        sampled_values,
        remove_accidental_hits,
        partition_strategy,
        seed,
        subtract_log_q,
        upstream,
        precision=precision,
    )
