"""PyTorch adapter: :func:`nce_loss` and :func:`sampled_softmax_loss` on CPU tensors, with
autograd, and the :class:`NCELoss` / :class:`SampledSoftmaxLoss` modules that own the output
embedding.

The forward pass runs rustnce's fused pass once (the loss and every gradient, for
``sum(loss)``), keeping the logits' gradient; backward only scales those saved gradients by
``grad_output``. A uniform ``grad_output`` (``loss.sum()``, ``loss.mean()``) is one factor. One
that differs between examples (``(w * loss).sum()``) scales each example's rows, and the
sampled rows' gradients, which sum over the batch, are formed anew from the kept logit
gradient (one ``[num_sampled, batch] x [batch, dim]`` product); the weights are not read
again. For sparse gradients the pass forms the merged rows (one per distinct id) itself.
Tensors are read in place through NumPy views: ``weights`` is never copied.

``import rustnce`` does not import this module (or torch); ``import rustnce.torch`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np
import torch

from . import _rustnce
from ._losses import nce_loss as _numpy_nce_loss
from ._losses import sampled_softmax_loss as _numpy_sampled_softmax_loss
from ._samplers import CandidateSampler, LogUniformSampler, Seed

__all__ = ["NCELoss", "SampledSoftmaxLoss", "nce_loss", "sampled_softmax_loss"]

TensorOrShards = Union[torch.Tensor, "list[torch.Tensor]", "tuple[torch.Tensor, ...]"]

_FLOAT_DTYPES = (torch.float32, torch.float64)
_REDUCTIONS = ("none", "mean", "sum")
_PRECISIONS = ("float32", "bfloat16")


# ---------------------------------------------------------------------------------------
# Tensors as NumPy views
# ---------------------------------------------------------------------------------------


def _check_cpu(tensor: torch.Tensor, name: str) -> None:
    if tensor.device.type != "cpu":
        raise ValueError(
            f"{name} is on device {tensor.device}, but rustnce computes on the CPU: pass "
            f"{name}.cpu() (rustnce.torch has no CUDA or other device kernels)"
        )
    if tensor.layout != torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {tensor.layout}")


def _view(tensor: torch.Tensor, name: str) -> np.ndarray:
    """The tensor's memory as a NumPy array (no copy; any strides)."""
    try:
        return tensor.detach().numpy()
    except (RuntimeError, TypeError) as error:
        raise TypeError(f"{name} cannot be read in place as a NumPy array: {error}") from None


def _float_tensor(value: Any, name: str) -> torch.Tensor:
    """A CPU float32/float64 tensor (the arguments gradients flow to)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    _check_cpu(value, name)
    if value.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {value.dtype}")
    return value


def _shards(value: Any, name: str) -> list[torch.Tensor]:
    shards = list(value) if isinstance(value, (list, tuple)) else [value]
    if not shards:
        raise ValueError(f"{name} must be a tensor or a non-empty list of shards")
    labelled = (name if len(shards) == 1 else f"{name}[{p}]" for p in range(len(shards)))
    return [_float_tensor(shard, label) for shard, label in zip(shards, labelled)]


def _as_numpy(value: Any, name: str) -> Any:
    """A tensor argument that gets no gradient (ids, expected counts) as a NumPy view; other
    values (arrays, lists) are left to rustnce's own checks."""
    if isinstance(value, torch.Tensor):
        _check_cpu(value, name)
        return _view(value, name)
    return value


def _sampled_values_numpy(sampled_values: Any) -> Any:
    if sampled_values is None:
        return None
    try:
        candidates, true_expected, sampled_expected = sampled_values
    except (TypeError, ValueError):
        raise TypeError(
            "sampled_values must be a triple (sampled_candidates, true_expected_count, "
            "sampled_expected_count)"
        ) from None
    return (
        _as_numpy(candidates, "sampled_values[0] (sampled_candidates)"),
        _as_numpy(true_expected, "sampled_values[1] (true_expected_count)"),
        _as_numpy(sampled_expected, "sampled_values[2] (sampled_expected_count)"),
    )


# ---------------------------------------------------------------------------------------
# The autograd function
# ---------------------------------------------------------------------------------------

# The extension's gradient calls and objects, without the NumPy API's wrappers (this runs on
# every training step): `loss`, `inputs_gradient`, `merged() -> (ids, rows, biases)`,
# `rescaled`, `accumulate`.
_Gradients = _rustnce.SampledLossGradients
_FusedPass = Callable[..., _Gradients]
_nce_pass: _FusedPass = _rustnce.nce_loss_and_gradients
_sampled_softmax_pass: _FusedPass = _rustnce.sampled_softmax_loss_and_gradients


@dataclass
class _Call:
    """One call's arguments as NumPy views, and what its backward needs."""

    fused_pass: _FusedPass
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    labels: Any
    inputs: np.ndarray
    arguments: dict[str, Any]  # num_sampled, num_classes, num_true, sampled_values, ...
    single_weights: bool
    single_biases: bool
    sparse_grad: bool
    gradients: _Gradients | None = None
    # The merged rows of `gradients` (sparse gradients), formed by the fused pass itself:
    # backward then only wraps them.
    merged: tuple[Any, Any, Any] | None = None
    parameter_versions: tuple[int, ...] = ()
    inputs_gradient_given: bool = False

    def run(self, upstream: Any, rescalable: bool = False, merged: bool = False) -> _Gradients:
        return self.fused_pass(
            self.weights if not self.single_weights else self.weights[0],
            self.biases if not self.single_biases else self.biases[0],
            self.labels,
            self.inputs,
            upstream=upstream,
            rescalable=rescalable,
            merged=merged,
            **self.arguments,
        )


class _SampledLoss(torch.autograd.Function):
    """``loss = f(inputs, weights..., biases...)`` with every gradient from one fused pass."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, call: _Call, inputs: torch.Tensor, *parameters: torch.Tensor
    ) -> torch.Tensor:
        # Sparse gradients are the merged form, which the pass then forms itself (keeping no
        # copy of inputs: a rescale reads the inputs saved below).
        call.gradients = call.run("sum", rescalable=True, merged=call.sparse_grad)
        if call.sparse_grad:
            call.merged = call.gradients.merged()
        call.parameter_versions = tuple(p._version for p in parameters)
        ctx.call = call
        ctx.parameters = parameters
        # The label rows' weight gradients are formed from inputs in backward: saving it lets
        # autograd refuse a backward after inputs was modified in place.
        ctx.save_for_backward(inputs)
        return torch.from_numpy(call.gradients.loss)

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        call: _Call = ctx.call
        (inputs,) = ctx.saved_tensors
        needs = ctx.needs_input_grad
        count = len(call.weights)
        needs_inputs, needs_weights, needs_biases = (
            needs[1],
            any(needs[2 : 2 + count]),
            any(needs[2 + count :]),
        )
        gradients = call.gradients
        assert gradients is not None
        scale = _uniform_value(grad_loss)
        if needs_inputs and call.inputs_gradient_given:
            # The saved inputs gradient was handed to autograd without a copy, which may have
            # kept it as inputs.grad and changed it: a second backward through a retained graph
            # computes everything afresh.
            gradients = _rerun_with_upstream(call, ctx, grad_loss)
            scale = 1.0
        elif scale is None:
            # A merging pass kept no copy of inputs; autograd has checked that the saved
            # inputs are unchanged since the forward pass.
            saved_inputs = _view(inputs, "inputs") if call.sparse_grad else None
            gradients = gradients.rescaled(_view(grad_loss, "grad_output"), saved_inputs)
            scale = 1.0
        grad_inputs = None
        if needs_inputs:
            grad_inputs = torch.from_numpy(gradients.inputs_gradient)
            if scale != 1.0:
                grad_inputs = grad_inputs * scale
            elif gradients is call.gradients:
                call.inputs_gradient_given = True
        grad_weights: list[torch.Tensor | None] = [None] * count
        grad_biases: list[torch.Tensor | None] = [None] * len(call.biases)
        if needs_weights or needs_biases:
            if call.sparse_grad:
                grad_weights, grad_biases = _sparse_gradients(call, gradients, scale)
            else:
                grad_weights, grad_biases = _dense_gradients(
                    call, gradients, scale, needs_weights, needs_biases
                )
            if not needs_weights:
                grad_weights = [None] * count
            if not needs_biases:
                grad_biases = [None] * len(call.biases)
        return (None, grad_inputs, *grad_weights, *grad_biases)


def _uniform_value(grad_loss: torch.Tensor) -> float | None:
    """The single value of a ``grad_output`` whose entries are all equal (``loss.sum()``,
    ``loss.mean()``); None if they differ. (Read through NumPy: a few NumPy operations cost
    less than one PyTorch operation, and this runs on every backward.)"""
    values = _view(grad_loss, "grad_output")
    if values.size == 0:
        return 1.0
    first = values.flat[0]
    if values.strides == (0,) or bool((values == first).all()):
        value = float(first)
        if math.isfinite(value):
            return value
    return None


def _rerun_with_upstream(call: _Call, ctx: Any, grad_loss: torch.Tensor) -> _Gradients:
    """The fused pass again, with ``grad_output`` as the upstream gradient and the same
    sampled values (a retained graph's second backward only); it reads the weights again, so
    they must be as the forward pass saw them."""
    if tuple(p._version for p in ctx.parameters) != call.parameter_versions:
        raise RuntimeError(
            "rustnce.torch: weights or biases were modified in place between the forward pass "
            "and a second backward through a retained graph, which reads them again"
        )
    return call.run(_view(grad_loss, "grad_output"))


def _sparse_gradients(
    call: _Call, gradients: _Gradients, scale: float
) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
    """Coalesced sparse COO gradients: one row per distinct id, ids ascending, per shard."""
    if gradients is call.gradients and call.merged is not None:
        ids, rows_array, biases_array = call.merged
    else:
        ids, rows_array, biases_array = gradients.merged()
    rows = torch.from_numpy(rows_array)
    bias_values = torch.from_numpy(biases_array)
    if scale != 1.0:
        rows = rows * scale
        bias_values = bias_values * scale
    if len(call.weights) == 1 and len(call.biases) == 1:
        # One index tensor each: autograd keeps a sparse gradient without copying it only if
        # nothing else holds its index and value tensors.
        return (
            [_coalesced(torch.from_numpy(ids[None]), rows, tuple(call.weights[0].shape))],
            [_coalesced(torch.from_numpy(ids[None]), bias_values, tuple(call.biases[0].shape))],
        )
    partition_strategy = call.arguments["partition_strategy"]
    weight_grads: list[torch.Tensor | None] = []
    bias_grads: list[torch.Tensor | None] = []
    for shard, (local, selected) in enumerate(
        _shard_rows(ids, [w.shape[0] for w in call.weights], partition_strategy)
    ):
        indices = torch.from_numpy(local)[None]
        weight_grads.append(_coalesced(indices, rows[selected], tuple(call.weights[shard].shape)))
    for shard, (local, selected) in enumerate(
        _shard_rows(ids, [b.shape[0] for b in call.biases], partition_strategy)
    ):
        indices = torch.from_numpy(local)[None]
        bias_grads.append(
            _coalesced(indices, bias_values[selected], tuple(call.biases[shard].shape))
        )
    return weight_grads, bias_grads


def _coalesced(indices: torch.Tensor, values: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.sparse_coo_tensor(
        indices, values, shape, is_coalesced=True, check_invariants=False
    )


def _shard_rows(
    ids: np.ndarray, sizes: list[int], partition_strategy: str
) -> list[tuple[np.ndarray, Any]]:
    """For ascending distinct global ids: each shard's local row numbers (ascending) and
    which of ``ids`` they are (a slice or an index array)."""
    if len(sizes) == 1:
        return [(ids, slice(None))]
    if partition_strategy == "div":
        ends = np.cumsum(sizes)
        cuts = np.searchsorted(ids, ends[:-1], side="left")
        starts = np.concatenate([[0], ends[:-1]])
        bounds = np.concatenate([[0], cuts, [len(ids)]])
        return [
            (ids[bounds[p] : bounds[p + 1]] - starts[p], slice(bounds[p], bounds[p + 1]))
            for p in range(len(sizes))
        ]
    count = len(sizes)
    owner = ids % count
    result = []
    for p in range(count):
        (selected,) = np.nonzero(owner == p)
        result.append((ids[selected] // count, torch.from_numpy(selected)))
    return result


def _dense_gradients(
    call: _Call,
    gradients: _Gradients,
    scale: float,
    needs_weights: bool,
    needs_biases: bool,
) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
    """Dense gradients, laid out like the parameters: zeros with the rows scatter-added."""
    weight_grads: list[torch.Tensor | None] = [None] * len(call.weights)
    bias_grads: list[torch.Tensor | None] = [None] * len(call.biases)
    weight_targets = bias_targets = None
    if needs_weights:
        weight_grads = [torch.zeros(w.shape, dtype=_dtype(w)) for w in call.weights]
        weight_targets = [g.numpy() for g in weight_grads if g is not None]
    if needs_biases:
        bias_grads = [torch.zeros(b.shape, dtype=_dtype(b)) for b in call.biases]
        bias_targets = [g.numpy() for g in bias_grads if g is not None]
    gradients.accumulate(
        _single_or_list(weight_targets, call.single_weights),
        _single_or_list(bias_targets, call.single_biases),
        scale=scale,
    )
    return weight_grads, bias_grads


def _dtype(array: np.ndarray) -> torch.dtype:
    return torch.float64 if array.dtype == np.float64 else torch.float32


def _single_or_list(arrays: list[np.ndarray] | None, single: bool) -> Any:
    if arrays is None:
        return None
    return arrays[0] if single else arrays


# ---------------------------------------------------------------------------------------
# The functions
# ---------------------------------------------------------------------------------------


def _float_view(value: Any, name: str) -> np.ndarray:
    """A CPU float32/float64 tensor's memory as a NumPy array (no copy; any strides)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_cpu or value.layout != torch.strided or value.dtype not in _FLOAT_DTYPES:
        _float_tensor(value, name)  # raises, naming what is wrong
    return _view(value, name)


def _shard_views(
    value: TensorOrShards, name: str
) -> tuple[list[torch.Tensor], list[np.ndarray], bool]:
    """A tensor or a list of shards as (tensors, their NumPy views, whether it was one)."""
    if not isinstance(value, (list, tuple)):
        return [value], [_float_view(value, name)], True
    tensors = _shards(value, name)
    return tensors, [_view(t, name) for t in tensors], False


def _sampled_loss(
    fused_pass: _FusedPass,
    forward_only: Callable[..., np.ndarray],
    weights: TensorOrShards,
    biases: TensorOrShards,
    labels: Any,
    inputs: torch.Tensor,
    sparse_grad: bool,
    **arguments: Any,
) -> torch.Tensor:
    # This runs on every training step, right after the previous step's pass has pushed the
    # interpreter's data out of the caches: it does as few Python operations as it can.
    if sparse_grad is not True and sparse_grad is not False:
        raise TypeError(f"sparse_grad must be a bool, got {type(sparse_grad).__name__}")
    inputs_view = _float_view(inputs, "inputs")
    weight_tensors, weight_views, single_weights = _shard_views(weights, "weights")
    bias_tensors, bias_views, single_biases = _shard_views(biases, "biases")
    labels_view = _as_numpy(labels, "labels")
    sampled_values = arguments["sampled_values"]
    if sampled_values is not None:
        arguments["sampled_values"] = _sampled_values_numpy(sampled_values)
    weights_argument = weight_views[0] if single_weights else weight_views
    biases_argument = bias_views[0] if single_biases else bias_views

    if not torch.is_grad_enabled() or not (
        inputs.requires_grad
        or any([t.requires_grad for t in weight_tensors])
        or any([t.requires_grad for t in bias_tensors])
    ):
        # Forward only: the plain loss, no gradient work.
        loss = forward_only(
            weights_argument, biases_argument, labels_view, inputs_view, **arguments
        )
        return torch.from_numpy(loss)

    if sampled_values is None:
        # Drawn here, after every argument is checked, so that a backward that needs a second
        # pass uses the same candidates (the draw is the one the plain call would make).
        sampling = {name: v for name, v in arguments.items() if name != "precision"}
        arguments["sampled_values"] = _rustnce.checked_sampled_values(
            weights_argument, biases_argument, labels_view, inputs_view, **sampling
        )
    call = _Call(
        fused_pass,
        weight_views,
        bias_views,
        labels_view,
        inputs_view,
        arguments,
        single_weights,
        single_biases,
        sparse_grad,
    )
    loss: torch.Tensor = _SampledLoss.apply(call, inputs, *weight_tensors, *bias_tensors)
    return loss


@torch.compiler.disable
def nce_loss(
    weights: TensorOrShards,
    biases: TensorOrShards,
    labels: Any,
    inputs: torch.Tensor,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: Any = None,
    remove_accidental_hits: bool = False,
    partition_strategy: str = "div",
    seed: Seed = None,
    subtract_log_q: bool = True,
    sparse_grad: bool = False,
    *,
    precision: str = "float32",
) -> torch.Tensor:
    """``tf.nn.nce_loss`` on CPU tensors, differentiable with respect to ``inputs``,
    ``weights`` and ``biases``.

    Arguments as :func:`rustnce.nce_loss`: ``weights`` a ``[num_classes', dim]`` float32 or
    float64 tensor or a list of shards, ``biases`` a ``[num_classes']`` tensor or a list of
    shards, ``labels`` an integer ``[batch, num_true]`` tensor or array, ``inputs`` a
    ``[batch, dim]`` tensor of the same dtype; ``sampled_values`` a triple of tensors or
    arrays. With ``sparse_grad=True`` the gradients of ``weights`` and ``biases`` are
    coalesced sparse COO tensors (as ``nn.Embedding(sparse=True)`` gives), else dense.
    ``precision="bfloat16"`` (float32 tensors only) runs the pass's three matrix products on
    bfloat16 operands with float32 sums, as :func:`rustnce.nce_loss` does.

    Returns the ``[batch]`` per-example losses. Under ``torch.no_grad()`` (or when nothing
    requires a gradient) only the loss is computed. ``torch.compile`` runs this function
    eagerly (a graph break).
    """
    return _sampled_loss(
        _nce_pass,
        _numpy_nce_loss,
        weights,
        biases,
        labels,
        inputs,
        sparse_grad,
        num_sampled=num_sampled,
        num_classes=num_classes,
        num_true=num_true,
        sampled_values=sampled_values,
        remove_accidental_hits=remove_accidental_hits,
        partition_strategy=partition_strategy,
        seed=seed,
        subtract_log_q=subtract_log_q,
        precision=precision,
    )


@torch.compiler.disable
def sampled_softmax_loss(
    weights: TensorOrShards,
    biases: TensorOrShards,
    labels: Any,
    inputs: torch.Tensor,
    num_sampled: int,
    num_classes: int,
    num_true: int = 1,
    sampled_values: Any = None,
    remove_accidental_hits: bool = True,
    partition_strategy: str = "div",
    seed: Seed = None,
    subtract_log_q: bool = True,
    sparse_grad: bool = False,
    *,
    precision: str = "float32",
) -> torch.Tensor:
    """``tf.nn.sampled_softmax_loss`` on CPU tensors, differentiable with respect to
    ``inputs``, ``weights`` and ``biases`` (arguments as :func:`nce_loss`; here
    ``remove_accidental_hits`` defaults to True, as in TensorFlow)."""
    return _sampled_loss(
        _sampled_softmax_pass,
        _numpy_sampled_softmax_loss,
        weights,
        biases,
        labels,
        inputs,
        sparse_grad,
        num_sampled=num_sampled,
        num_classes=num_classes,
        num_true=num_true,
        sampled_values=sampled_values,
        remove_accidental_hits=remove_accidental_hits,
        partition_strategy=partition_strategy,
        seed=seed,
        subtract_log_q=subtract_log_q,
        precision=precision,
    )


# ---------------------------------------------------------------------------------------
# The modules
# ---------------------------------------------------------------------------------------


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


class _SampledLossModule(torch.nn.Module):
    _loss: Callable[..., torch.Tensor]

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        num_sampled: int,
        *,
        num_true: int = 1,
        sampler: CandidateSampler | None = None,
        sparse: bool = False,
        reduction: str = "mean",
        remove_accidental_hits: bool,
        seed: Seed = None,
        dtype: torch.dtype | None = None,
        precision: str = "float32",
    ) -> None:
        super().__init__()
        self.num_classes = _positive_int(num_classes, "num_classes")
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim")
        self.num_sampled = _positive_int(num_sampled, "num_sampled")
        self.num_true = _positive_int(num_true, "num_true")
        if not isinstance(sparse, bool):
            raise TypeError(f"sparse must be a bool, got {type(sparse).__name__}")
        if not isinstance(remove_accidental_hits, bool):
            kind = type(remove_accidental_hits).__name__
            raise TypeError(f"remove_accidental_hits must be a bool, got {kind}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        if sampler is None:
            sampler = LogUniformSampler(self.num_classes, seed=seed)
        elif seed is not None:
            raise ValueError("seed seeds the default sampler; seed your own sampler instead")
        elif not isinstance(sampler, CandidateSampler):
            raise TypeError(
                f"sampler must be a rustnce sampler object (rustnce.LogUniformSampler, ...), "
                f"got {type(sampler).__name__}"
            )
        if dtype is None:
            dtype = torch.get_default_dtype()
        if dtype not in _FLOAT_DTYPES:
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
        if precision == "bfloat16" and dtype != torch.float32:
            raise ValueError(f"precision='bfloat16' needs float32 parameters, got dtype {dtype}")
        self.precision = precision
        self.sampler = sampler
        self.sparse = sparse
        self.reduction = reduction
        self.remove_accidental_hits = remove_accidental_hits
        self.weight = torch.nn.Parameter(torch.empty(num_classes, embedding_dim, dtype=dtype))
        self.bias = torch.nn.Parameter(torch.empty(num_classes, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As TensorFlow's word2vec and language-model examples initialise them: weights from a
        normal of standard deviation ``1/sqrt(embedding_dim)`` truncated at two standard
        deviations, biases zero."""
        std = 1.0 / math.sqrt(self.embedding_dim)
        with torch.no_grad():
            torch.nn.init.trunc_normal_(self.weight, std=std, a=-2 * std, b=2 * std)
            self.bias.zero_()

    def forward(self, inputs: torch.Tensor, labels: Any) -> torch.Tensor:
        """``inputs [batch, embedding_dim]``, ``labels [batch, num_true]`` (or ``[batch]``
        when ``num_true`` is 1); the loss reduced as ``reduction`` says."""
        if isinstance(labels, torch.Tensor):
            _check_cpu(labels, "labels")
            if labels.dtype.is_floating_point or labels.dtype.is_complex:
                raise TypeError(f"labels must hold integer class ids, got {labels.dtype}")
            labels = _view(labels, "labels")
        labels = np.asarray(labels)
        if labels.ndim == 1 and self.num_true == 1:
            labels = labels[:, None]
        if labels.size and labels.dtype.kind in "iu":
            low, high = labels.min(), labels.max()
            if low < 0 or high >= self.num_classes:
                bad = low if low < 0 else high
                raise IndexError(
                    f"labels: id {bad} is out of range [0, num_classes = {self.num_classes})"
                )
        sampled_values = self.sampler.sample(labels, self.num_true, self.num_sampled, True)
        loss = type(self)._loss(
            self.weight,
            self.bias,
            labels,
            inputs,
            self.num_sampled,
            self.num_classes,
            num_true=self.num_true,
            sampled_values=sampled_values,
            remove_accidental_hits=self.remove_accidental_hits,
            sparse_grad=self.sparse,
            precision=self.precision,
        )
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, "
            f"num_sampled={self.num_sampled}, num_true={self.num_true}, sparse={self.sparse}, "
            f"reduction={self.reduction!r}, remove_accidental_hits={self.remove_accidental_hits}"
            + (f", precision={self.precision!r}" if self.precision != "float32" else "")
        )


class NCELoss(_SampledLossModule):
    """``tf.nn.nce_loss`` as a module that owns the output embedding: ``weight
    [num_classes, embedding_dim]`` and ``bias [num_classes]``.

    ``sampler`` is any rustnce sampler object (default: ``LogUniformSampler(num_classes,
    seed)``), drawing ``num_sampled`` distinct candidates per batch; ``sparse=True`` gives
    sparse gradients (for ``torch.optim.SparseAdam`` or ``SGD``); ``reduction`` is
    ``"mean"``, ``"sum"`` or ``"none"``; ``precision="bfloat16"`` as in :func:`nce_loss`.
    """

    _loss = staticmethod(nce_loss)

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        num_sampled: int,
        *,
        num_true: int = 1,
        sampler: CandidateSampler | None = None,
        sparse: bool = False,
        reduction: str = "mean",
        remove_accidental_hits: bool = False,
        seed: Seed = None,
        dtype: torch.dtype | None = None,
        precision: str = "float32",
    ) -> None:
        super().__init__(
            num_classes,
            embedding_dim,
            num_sampled,
            num_true=num_true,
            sampler=sampler,
            sparse=sparse,
            reduction=reduction,
            remove_accidental_hits=remove_accidental_hits,
            seed=seed,
            dtype=dtype,
            precision=precision,
        )


class SampledSoftmaxLoss(_SampledLossModule):
    """``tf.nn.sampled_softmax_loss`` as a module (see :class:`NCELoss`; accidental hits are
    removed by default, as in TensorFlow)."""

    _loss = staticmethod(sampled_softmax_loss)

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        num_sampled: int,
        *,
        num_true: int = 1,
        sampler: CandidateSampler | None = None,
        sparse: bool = False,
        reduction: str = "mean",
        remove_accidental_hits: bool = True,
        seed: Seed = None,
        dtype: torch.dtype | None = None,
        precision: str = "float32",
    ) -> None:
        super().__init__(
            num_classes,
            embedding_dim,
            num_sampled,
            num_true=num_true,
            sampler=sampler,
            sparse=sparse,
            reduction=reduction,
            remove_accidental_hits=remove_accidental_hits,
            seed=seed,
            dtype=dtype,
            precision=precision,
        )
