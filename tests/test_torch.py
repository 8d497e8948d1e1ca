"""rustnce.torch against plain PyTorch.

The oracle is TensorFlow's formulas (``_compute_sampled_logits``, then the sigmoid or
softmax cross-entropy) written here in plain PyTorch ops and differentiated by PyTorch's own
autograd, fed the same ``sampled_values``. On float64 problems with num_true 1 and 3,
accidental hits removed or kept, weights and biases whole or in "div"/"mod" shards, and
``loss.sum()``, ``loss.mean()`` or a per-example weighting upstream, the loss and the three
gradients must agree. Then: ``torch.autograd.gradcheck``, sparse gradients against dense,
``torch.no_grad()``, zero copies, errors, determinism, ``torch.compile``, and the modules
training a small model with ``SparseAdam`` and ``SGD``.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

import rustnce
import rustnce.torch as rt

ROOT = Path(__file__).resolve().parent.parent
FLT_MAX = float(np.finfo(np.float32).max)
LOSSES = {"nce": rt.nce_loss, "sampled_softmax": rt.sampled_softmax_loss}
TOLERANCES = dict(rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ the PyTorch oracle


def oracle_lookup(params, ids, strategy):
    """``tf.nn.embedding_lookup`` on a tensor or a list of shards, by TensorFlow's formulas
    for the shard and the row within it."""
    if not isinstance(params, (list, tuple)):
        return params[ids]
    count = len(params)
    total = sum(p.shape[0] for p in params)
    rows = []
    for i in ids.tolist():
        if strategy == "mod":
            shard, row = i % count, i // count
        else:
            q, e = divmod(total, count)
            shard = max(i // (q + 1), (i - e) // q)
            row = i % (q + 1) if shard < e else (i - e) % q
        rows.append(params[shard][row])
    return torch.stack(rows) if rows else params[0][:0]


def oracle_loss(kind, weights, biases, labels, inputs, sampled_values, num_true, hits, strategy):
    """TensorFlow's nce_loss / sampled_softmax_loss in plain PyTorch ops."""
    sampled, true_expected, sampled_expected = (torch.as_tensor(v) for v in sampled_values)
    labels = torch.as_tensor(labels, dtype=torch.int64)
    batch = labels.shape[0]
    all_ids = torch.cat([labels.reshape(-1), sampled])
    all_w = oracle_lookup(weights, all_ids, strategy)
    all_b = oracle_lookup(biases, all_ids, strategy)
    true_w = all_w[: batch * num_true].reshape(batch, num_true, -1)
    true_logits = (inputs[:, None, :] * true_w).sum(-1) + all_b[: batch * num_true].reshape(
        batch, num_true
    )
    sampled_logits = inputs @ all_w[batch * num_true :].T + all_b[batch * num_true :]
    if hits:
        # tf.nn.compute_accidental_hits: a row's label masks the last position of that id.
        later = torch.triu(sampled[:, None] == sampled[None, :], diagonal=1).any(1)
        hit = (labels[:, :, None] == sampled[None, None, :]).any(1) & ~later
        sampled_logits = sampled_logits + torch.where(hit, -FLT_MAX, 0.0).to(inputs.dtype)
    true_logits = true_logits - torch.log(true_expected.to(inputs.dtype))
    sampled_logits = sampled_logits - torch.log(sampled_expected.to(inputs.dtype))
    logits = torch.cat([true_logits, sampled_logits], 1)
    targets = torch.cat(
        [
            torch.full((batch, num_true), 1.0 / num_true, dtype=inputs.dtype),
            torch.zeros(batch, sampled.shape[0], dtype=inputs.dtype),
        ],
        1,
    )
    if kind == "nce":
        # max(z, 0) - z y + log1p(exp(-|z|)), with TensorFlow's select on z >= 0.
        positive = logits >= 0
        relu = torch.where(positive, logits, torch.zeros_like(logits))
        negabs = torch.where(positive, -logits, logits)
        return (relu - logits * targets + torch.log1p(torch.exp(negabs))).sum(1)
    return -(targets * torch.log_softmax(logits, 1)).sum(1)


# ------------------------------------------------------------------ problems


def split(tensor, shards, strategy):
    """Leaf tensors laid out as TensorFlow's "div" (contiguous) or "mod" (strided) shards."""
    if shards is None:
        return tensor.detach().clone().requires_grad_()
    if strategy == "mod":
        parts = [tensor[p::shards] for p in range(shards)]
    else:
        q, e = divmod(tensor.shape[0], shards)
        sizes = [q + 1] * e + [q] * (shards - e)
        parts = list(torch.split(tensor, sizes))
    return [p.detach().clone().requires_grad_() for p in parts]


def leaves(param):
    return param if isinstance(param, list) else [param]


def make_problem(seed, num_true=1, shards=None, strategy="div", dtype=torch.float64):
    """A small problem whose sampled candidates include accidental hits and duplicates."""
    rng = np.random.default_rng(seed)
    batch, dim, classes, num_sampled = 5, 4, 11, 6
    rows = classes + 2
    weights = torch.from_numpy(rng.normal(0, 0.7, (rows, dim))).to(dtype)
    biases = torch.from_numpy(rng.normal(0, 0.3, rows)).to(dtype)
    inputs = torch.from_numpy(rng.normal(0, 1, (batch, dim))).to(dtype).requires_grad_()
    labels = rng.integers(0, classes, (batch, num_true))
    sampled = rng.integers(0, classes, num_sampled)
    sampled[0] = labels[1, 0]  # an accidental hit
    sampled[1] = labels[3, num_true - 1]  # another
    sampled[2] = sampled[4]  # a duplicate candidate
    sampled_values = (
        sampled,
        rng.uniform(0.05, 2.0, (batch, num_true)),
        rng.uniform(0.05, 2.0, num_sampled),
    )
    return dict(
        weights=split(weights, shards, strategy),
        biases=split(biases, shards, strategy),
        labels=labels,
        inputs=inputs,
        num_sampled=num_sampled,
        num_classes=classes,
        num_true=num_true,
        sampled_values=sampled_values,
        partition_strategy=strategy,
    )


def copy_problem(problem):
    copied = dict(problem)
    for name in ("weights", "biases", "inputs"):
        value = problem[name]
        copied[name] = (
            [p.detach().clone().requires_grad_() for p in value]
            if isinstance(value, list)
            else value.detach().clone().requires_grad_()
        )
    return copied


def reduce(loss, upstream):
    if upstream == "sum":
        return loss.sum()
    if upstream == "mean":
        return loss.mean()
    weights = torch.linspace(-1.5, 2.0, loss.shape[0], dtype=loss.dtype)
    return (weights * loss).sum()


def oracle_backward(kind, oracle, num_true, hits, strategy, upstream):
    """The oracle's loss on a copied problem, back-propagated through ``reduce(.., upstream)``
    into the copy's leaves."""
    expected = oracle_loss(
        kind,
        oracle["weights"],
        oracle["biases"],
        oracle["labels"],
        oracle["inputs"],
        oracle["sampled_values"],
        num_true,
        hits,
        strategy,
    )
    reduce(expected, upstream).backward()
    return expected


def gradients(problem):
    return [t.grad for t in (problem["inputs"], *leaves(problem["weights"]))] + [
        t.grad for t in leaves(problem["biases"])
    ]


# ------------------------------------------------------------------ against the oracle


@pytest.mark.parametrize("kind", sorted(LOSSES))
@pytest.mark.parametrize("num_true", [1, 3])
@pytest.mark.parametrize("hits", [False, True])
@pytest.mark.parametrize("sharding", [(None, "div"), (3, "div"), (2, "mod")])
@pytest.mark.parametrize("upstream", ["sum", "mean", "weighted"])
def test_loss_and_gradients_equal_pytorch_autograd_of_tf_formulas(
    kind, num_true, hits, sharding, upstream
):
    shards, strategy = sharding
    problem = make_problem(17 + num_true, num_true, shards, strategy)
    oracle = copy_problem(problem)

    loss = LOSSES[kind](**problem, remove_accidental_hits=hits)
    reduce(loss, upstream).backward()
    expected = oracle_backward(kind, oracle, num_true, hits, strategy, upstream)

    assert loss.dtype == torch.float64 and loss.shape == (5,)
    torch.testing.assert_close(loss.detach(), expected.detach(), **TOLERANCES)
    for mine, theirs in zip(gradients(problem), gradients(oracle)):
        assert not mine.is_sparse and mine.shape == theirs.shape
        torch.testing.assert_close(mine, theirs, **TOLERANCES)


def test_accidental_hits_change_the_result():
    """The problems really have hits: removing them changes the loss."""
    problem = make_problem(3)
    kept = rt.sampled_softmax_loss(**problem, remove_accidental_hits=False)
    removed = rt.sampled_softmax_loss(**problem, remove_accidental_hits=True)
    assert (kept != removed).any()


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_gradcheck_against_finite_differences(kind):
    """gradcheck also feeds one-hot grad_outputs: the per-example upstream path."""
    problem = make_problem(5, num_true=2, shards=2, strategy="mod")
    rest = {k: v for k, v in problem.items() if k not in ("weights", "biases", "inputs")}

    def loss(inputs, w0, w1, b0, b1):
        return LOSSES[kind]([w0, w1], [b0, b1], inputs=inputs, **rest)

    arguments = (problem["inputs"], *problem["weights"], *problem["biases"])
    assert torch.autograd.gradcheck(loss, arguments)


# ------------------------------------------------------------------ sparse gradients


@pytest.mark.parametrize("kind", sorted(LOSSES))
@pytest.mark.parametrize("sharding", [(None, "div"), (3, "div"), (3, "mod")])
@pytest.mark.parametrize("upstream", ["mean", "weighted"])
def test_sparse_gradients_equal_dense_and_are_coalesced(kind, sharding, upstream):
    shards, strategy = sharding
    dense = make_problem(9, 2, shards, strategy)
    sparse = copy_problem(dense)
    reduce(LOSSES[kind](**dense), upstream).backward()
    total = reduce(LOSSES[kind](**sparse, sparse_grad=True), upstream)
    params = leaves(sparse["weights"]) + leaves(sparse["biases"])
    grads = torch.autograd.grad(total, params)
    for grad, param, expected in zip(grads, params, gradients(dense)[1:]):
        assert grad.is_sparse and grad.is_coalesced() and grad.shape == param.shape
        indices = grad.indices()[0]
        assert (indices[1:] > indices[:-1]).all() and indices.max() < param.shape[0]
        torch.testing.assert_close(grad.to_dense(), expected, **TOLERANCES)


# ------------------------------------------------------------------ forward only


def test_no_grad_computes_the_plain_loss_and_no_gradients(monkeypatch):
    problem = make_problem(4)
    del problem["sampled_values"]

    def no_gradient_work(*args, **kwargs):
        raise AssertionError("the fused forward+backward pass ran under torch.no_grad()")

    monkeypatch.setattr(rt, "_nce_pass", no_gradient_work)
    rustnce.reset_sampler_cache()
    with torch.no_grad():
        loss = rt.nce_loss(**problem, seed=7)
    assert not loss.requires_grad and loss.grad_fn is None
    rustnce.reset_sampler_cache()
    plain = rustnce.nce_loss(
        problem["weights"].detach().numpy(),
        problem["biases"].detach().numpy(),
        problem["labels"],
        problem["inputs"].detach().numpy(),
        problem["num_sampled"],
        problem["num_classes"],
        seed=7,
    )
    np.testing.assert_array_equal(loss.numpy(), plain)


def test_default_sampler_draws_what_the_plain_call_draws():
    """With the default sampler and a seed, the differentiable call draws the same
    candidates as rustnce.sampled_softmax_loss (and as TensorFlow with that seed)."""
    problem = make_problem(6)
    del problem["sampled_values"]
    rustnce.reset_sampler_cache()
    loss = rt.sampled_softmax_loss(**problem, seed=11)
    assert loss.grad_fn is not None
    rustnce.reset_sampler_cache()
    with torch.no_grad():
        plain = rt.sampled_softmax_loss(**problem, seed=11)
    torch.testing.assert_close(loss.detach(), plain, rtol=0, atol=0)


def test_empty_batch():
    problem = make_problem(2)
    problem["inputs"] = problem["inputs"][:0].detach().requires_grad_()
    problem["labels"] = problem["labels"][:0]
    problem["sampled_values"] = (problem["sampled_values"][0], np.ones((0, 1)), np.ones(6))
    loss = rt.nce_loss(**problem)
    loss.sum().backward()
    assert loss.shape == (0,) and problem["inputs"].grad.shape == (0, 4)
    assert not problem["weights"].grad.any()


# ------------------------------------------------------------------ zero copies


def test_tensors_are_passed_to_the_fused_pass_as_views(monkeypatch):
    """The arrays handed to rustnce share memory with the tensors, for whole, transposed
    (Fortran-order) and sharded weights."""
    seen = []
    original = rt._sampled_softmax_pass

    def spy(weights, biases, labels, inputs, **kwargs):
        seen.append((weights, biases, inputs))
        return original(weights, biases, labels, inputs, **kwargs)

    monkeypatch.setattr(rt, "_sampled_softmax_pass", spy)
    problem = make_problem(8)
    fortran = torch.randn(4, 13, dtype=torch.float64).T.requires_grad_()
    shards = make_problem(8, shards=3)["weights"]
    for weights in (problem["weights"], fortran, shards):
        seen.clear()
        rt.sampled_softmax_loss(**{**problem, "weights": weights}).sum().backward()
        (passed_weights, passed_biases, passed_inputs) = seen[0]
        for tensor, array in zip(leaves(weights), leaves(passed_weights)):
            assert isinstance(array, np.ndarray) and np.shares_memory(
                array, tensor.detach().numpy()
            )
            assert array.ctypes.data == tensor.data_ptr()
        assert np.shares_memory(passed_biases, problem["biases"].detach().numpy())
        assert np.shares_memory(passed_inputs, problem["inputs"].detach().numpy())


def test_weights_are_never_copied_by_numpy():
    """Forward + sparse backward on 25 MB of weights allocates no NumPy memory on that scale
    (tracemalloc sees NumPy's allocations, so a copy of the weights would show)."""
    classes, dim = 200_000, 32
    weights = torch.zeros(classes, dim).normal_().requires_grad_()
    biases = torch.zeros(classes, requires_grad=True)
    inputs = torch.randn(64, dim, requires_grad=True)
    labels = torch.randint(0, classes, (64, 1))
    tracemalloc.start()
    try:
        loss = rt.nce_loss(weights, biases, labels, inputs, 32, classes, seed=1, sparse_grad=True)
        loss.mean().backward()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert weights.grad.is_sparse
    assert peak < weights.numel() * 4 / 20, peak


# ------------------------------------------------------------------ errors


def error_problem():
    problem = make_problem(1)
    problem["weights"] = problem["weights"].detach().requires_grad_()
    return problem


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(weights=torch.zeros(13, 4, dtype=torch.float64, device="meta")), ValueError,
         "weights is on device meta"),
        (dict(inputs=torch.zeros(5, 4, dtype=torch.float64, device="meta")), ValueError,
         "inputs is on device meta"),
        (dict(labels=torch.zeros(5, 1, dtype=torch.int64, device="meta")), ValueError,
         "labels is on device meta"),
        (dict(inputs=torch.zeros(5, 4, dtype=torch.int64)), TypeError,
         "inputs must be float32 or float64"),
        (dict(weights=torch.zeros(13, 4, dtype=torch.float16)), TypeError,
         "weights must be float32 or float64"),
        (dict(weights=[torch.zeros(7, 4, dtype=torch.float64), torch.zeros(6, 4)]), TypeError,
         "weights[1]"),
        (dict(weights=torch.zeros(13, 4)), TypeError, "weights has dtype float32"),
        (dict(weights=torch.zeros(13, 3, dtype=torch.float64)), ValueError,
         "weights has 3 columns"),
        (dict(biases=torch.zeros(12, dtype=torch.float64)), ValueError, "biases has 12 entries"),
        (dict(labels=np.zeros((4, 1), dtype=np.int64)), ValueError, "labels has 4 rows"),
        (dict(labels=torch.zeros(5, 1)), TypeError, "labels must hold integer class ids"),
        (dict(labels=torch.full((5, 1), 11)), IndexError, "labels: id 11 is out of range"),
        (dict(inputs=torch.zeros(5, dtype=torch.float64)), ValueError, "inputs must be 2-D"),
        (dict(weights=np.zeros((13, 4))), TypeError, "weights must be a torch.Tensor"),
        (dict(weights=torch.zeros(13, 4, dtype=torch.float64).to_sparse()), TypeError,
         "weights must be a dense"),
        (dict(sampled_values=(torch.zeros(6, dtype=torch.int64, device="meta"), 1, 1)),
         ValueError, "sampled_values[0] (sampled_candidates) is on device meta"),
        (dict(sampled_values=(1, 2)), TypeError, "sampled_values must be a triple"),
        (dict(sparse_grad=1), TypeError, "sparse_grad must be a bool"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_with_the_argument_named(change, error, message):
    problem = {**error_problem(), **change}
    with pytest.raises(error) as raised:
        rt.nce_loss(**problem)
    assert message in str(raised.value)


def test_modifying_inputs_before_backward_is_refused():
    problem = error_problem()
    inputs = problem["inputs"].detach().clone().requires_grad_()
    hidden = inputs * 1.0
    loss = rt.nce_loss(**{**problem, "inputs": hidden})
    with torch.no_grad():
        hidden.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.sum().backward()


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_a_weighted_backward_runs_no_second_pass_and_reads_no_weights(kind, monkeypatch):
    """A grad_output that differs between examples is applied to the saved gradients: the
    fused pass runs once (in forward), and weights changed in place after forward change
    nothing, since backward does not read them."""
    problem = make_problem(23, num_true=2, shards=2)
    oracle = copy_problem(problem)
    fused_passes = []
    name = f"_{kind}_pass"
    original = getattr(rt, name)

    def counted(*args, **kwargs):
        fused_passes.append(kwargs.get("rescalable"))
        return original(*args, **kwargs)

    monkeypatch.setattr(rt, name, counted)
    loss = LOSSES[kind](**problem)
    with torch.no_grad():
        for shard in problem["weights"] + problem["biases"]:
            shard.add_(1.0)
    reduce(loss, "weighted").backward()
    assert fused_passes == [True]
    oracle_backward(kind, oracle, 2, kind == "sampled_softmax", "div", "weighted")
    for mine, theirs in zip(gradients(problem), gradients(oracle)):
        torch.testing.assert_close(mine, theirs, **TOLERANCES)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(reduction="max"), ValueError, "reduction must be one of"),
        (dict(sampler="log_uniform"), TypeError, "sampler must be a rustnce sampler object"),
        (dict(sampler=rustnce.UniformSampler(50), seed=1), ValueError, "seed seeds"),
        (dict(sparse=1), TypeError, "sparse must be a bool"),
        (dict(dtype=torch.float16), TypeError, "dtype must be"),
        (dict(num_true=0), ValueError, "num_true must be at least 1"),
        (dict(precision="float16"), ValueError, "precision must be one of"),
        (dict(precision="bfloat16", dtype=torch.float64), ValueError, "needs float32"),
    ],
)
def test_module_arguments_are_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        rt.NCELoss(50, 8, 5, **kwargs)


def test_module_forward_checks_labels_and_inputs():
    module = rt.SampledSoftmaxLoss(50, 8, 5, seed=1)
    with pytest.raises(IndexError, match="labels: id 50 is out of range"):
        module(torch.zeros(3, 8), torch.tensor([1, 2, 50]))
    with pytest.raises(TypeError, match="labels must hold integer class ids"):
        module(torch.zeros(3, 8), torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="inputs has 7 columns|weights has 8 columns"):
        module(torch.zeros(3, 7), torch.tensor([1, 2, 3]))


# ------------------------------------------------------------------ modules and training


def test_module_initialisation_follows_tensorflow_examples():
    module = rt.NCELoss(5000, 64, 10, seed=0)
    std = 1 / 8
    assert module.weight.shape == (5000, 64) and module.bias.shape == (5000,)
    assert module.weight.abs().max() <= 2 * std and not module.bias.any()
    # A normal truncated at 2 standard deviations has standard deviation 0.88 * std.
    assert abs(module.weight.std().item() / std - 0.88) < 0.02


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_module_equals_the_function_with_its_sampler(reduction):
    module = rt.NCELoss(40, 6, 7, num_true=2, sampler=rustnce.UniformSampler(40, seed=3),
                        reduction=reduction, dtype=torch.float64)  # fmt: skip
    inputs = torch.randn(9, 6, dtype=torch.float64)
    labels = torch.randint(0, 40, (9, 2))
    out = module(inputs, labels)
    sampled_values = rustnce.UniformSampler(40, seed=3).sample(labels.numpy(), 2, 7, True)
    loss = rt.nce_loss(module.weight, module.bias, labels, inputs, 7, 40, num_true=2,
                       sampled_values=sampled_values)  # fmt: skip
    expected = {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def full_softmax_loss(weight, bias, inputs, targets):
    return torch.nn.functional.cross_entropy(inputs @ weight.T + bias, targets).item()


def successor_problem(classes=300, examples=4096, seed=0):
    """Each class has one successor: next = (7 * id + 3) mod classes."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, classes, (examples,), generator=generator)
    return ids, (7 * ids + 3) % classes


@pytest.mark.parametrize(
    "loss_class, sparse, optimizer",
    [
        (rt.SampledSoftmaxLoss, True, "SparseAdam"),
        (rt.SampledSoftmaxLoss, False, "SGD"),
        (rt.NCELoss, True, "SGD"),
        (rt.NCELoss, False, "SparseAdam"),
    ],
)
def test_modules_train_a_small_model(loss_class, sparse, optimizer):
    """An embedding trained through the loss learns each class's successor: the full softmax
    loss falls far below its starting value (about ln 300 = 5.7) and the successors rank
    first."""
    torch.manual_seed(0)
    classes, dim = 300, 32
    embedding = torch.nn.Embedding(classes, dim, sparse=optimizer == "SparseAdam")
    loss_module = loss_class(classes, dim, 32, sparse=sparse or optimizer == "SparseAdam",
                             seed=1)  # fmt: skip
    params = list(embedding.parameters()) + list(loss_module.parameters())
    if optimizer == "SparseAdam":
        opt: torch.optim.Optimizer = torch.optim.SparseAdam(params, lr=0.05)
    else:
        opt = torch.optim.SGD(params, lr=2.0 if loss_class is rt.SampledSoftmaxLoss else 4.0)
    ids, targets = successor_problem(classes)
    with torch.no_grad():
        before = full_softmax_loss(loss_module.weight, loss_module.bias, embedding(ids), targets)
    for _ in range(10):
        for start in range(0, len(ids), 128):
            batch = slice(start, start + 128)
            opt.zero_grad()
            loss = loss_module(embedding(ids[batch]), targets[batch])
            loss.backward()
            opt.step()
    with torch.no_grad():
        hidden = embedding(ids)
        after = full_softmax_loss(loss_module.weight, loss_module.bias, hidden, targets)
        top1 = ((hidden @ loss_module.weight.T + loss_module.bias).argmax(1) == targets).float()
    assert before > 5.0 and after < 0.2 * before, (before, after)
    assert top1.mean() > 0.9, top1.mean()


def test_deterministic_algorithms_give_bit_identical_training():
    def train():
        torch.manual_seed(0)
        embedding = torch.nn.Embedding(100, 8, sparse=True)
        loss_module = rt.SampledSoftmaxLoss(100, 8, 10, sparse=True, seed=5)
        opt = torch.optim.SparseAdam(
            list(embedding.parameters()) + list(loss_module.parameters()), lr=0.1
        )
        ids, targets = successor_problem(100, 512)
        for start in range(0, 512, 64):
            opt.zero_grad()
            loss_module(embedding(ids[start : start + 64]), targets[start : start + 64]).backward()
            opt.step()
        return loss_module.weight.detach().clone(), embedding.weight.detach().clone()

    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        first, second = train(), train()
    finally:
        torch.use_deterministic_algorithms(before)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_torch_compile_gives_the_eager_result():
    """The loss runs eagerly inside a compiled function (a graph break)."""
    torch.manual_seed(0)
    problem = make_problem(12, shards=None)
    rest = {k: v for k, v in problem.items() if k not in ("weights", "biases", "inputs")}
    projection = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)

    def total(inputs, weights, biases):
        return rt.sampled_softmax_loss(weights, biases, inputs=torch.tanh(inputs @ projection),
                                       **rest).mean()  # fmt: skip

    eager = copy_problem(problem)
    compiled = copy_problem(problem)
    total(eager["inputs"], eager["weights"], eager["biases"]).backward()
    compiled_total = torch.compile(total)
    value = compiled_total(compiled["inputs"], compiled["weights"], compiled["biases"])
    value.backward()
    for name in ("inputs", "weights", "biases"):
        torch.testing.assert_close(compiled[name].grad, eager[name].grad, **TOLERANCES)


# ------------------------------------------------------------------ packaging and example


def test_import_rustnce_does_not_import_torch():
    code = "import sys, rustnce; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import sys, rustnce.torch; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_next_word_example_learns():
    """examples/next_word.py trains a small next-word model with SampledSoftmaxLoss; its
    perplexity ends well below the unigram baseline, near the corpus's true perplexity."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "next_word.py"),
            "--words",
            "40000",
            "--epochs",
            "2",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = dict(
        line.split(": ", 1) for line in result.stdout.splitlines() if line.startswith("perplexity")
    )
    unigram = float(lines["perplexity unigram"])
    true = float(lines["perplexity true"])
    model = float(lines["perplexity model"])
    assert true < model < 0.5 * unigram, result.stdout


def test_a_retained_graph_gives_the_same_gradients_each_backward():
    """The saved inputs gradient is handed out without a copy (it may become inputs.grad);
    zeroing the .grad tensors in place must not change what a second backward gives."""
    problem = make_problem(13, shards=2)
    loss = rt.nce_loss(**problem).sum()
    loss.backward(retain_graph=True)
    first = [g.clone() for g in gradients(problem)]
    for g in gradients(problem):
        g.zero_()
    loss.backward()
    for once, again in zip(first, gradients(problem)):
        torch.testing.assert_close(again, once, **TOLERANCES)


def test_a_retained_graphs_second_backward_refuses_changed_weights():
    """The one backward that reads the weights again (a second one through a retained graph,
    after the first handed out the inputs gradient) refuses weights changed in between."""
    problem = make_problem(29)
    problem["weights"] = problem["weights"].detach().requires_grad_()
    loss = rt.nce_loss(**problem).sum()
    loss.backward(retain_graph=True)
    with torch.no_grad():
        problem["weights"].add_(1.0)
    with pytest.raises(RuntimeError, match="second backward through a retained graph"):
        loss.backward()


# ------------------------------------------------------------------ bfloat16 products


@pytest.mark.parametrize("kind", sorted(LOSSES))
@pytest.mark.parametrize("sparse_grad", [False, True])
def test_bfloat16_precision_gives_the_numpy_calls_bfloat16_gradients(kind, sparse_grad):
    """``precision="bfloat16"`` reaches the fused pass: the loss and the three gradients
    equal those of the NumPy call with the same precision and sampled values, and differ from
    float32 where the processor runs bfloat16 (they are equal elsewhere)."""
    rng = np.random.default_rng(5)
    weights = torch.tensor(rng.normal(size=(300, 40)) * 0.3, dtype=torch.float32)
    biases = torch.tensor(rng.normal(size=300) * 0.1, dtype=torch.float32)
    inputs = torch.tensor(rng.normal(size=(64, 40)), dtype=torch.float32)
    labels = rng.integers(0, 300, size=(64, 1))
    sampled = rustnce.log_uniform_candidate_sampler(labels, 1, 20, True, 300, seed=4)
    results = {}
    for precision in ("float32", "bfloat16"):
        w, b, x = (t.clone().requires_grad_(True) for t in (weights, biases, inputs))
        loss = LOSSES[kind](
            w,
            b,
            labels,
            x,
            20,
            300,
            sampled_values=sampled,
            sparse_grad=sparse_grad,
            precision=precision,
        )
        loss.sum().backward()
        grads = [t.grad.to_dense() if t.grad.is_sparse else t.grad for t in (x, w, b)]
        results[precision] = [loss.detach()] + grads
    numpy_call = {
        "nce": rustnce.nce_loss_and_gradients,
        "sampled_softmax": rustnce.sampled_softmax_loss_and_gradients,
    }[kind]
    expected = numpy_call(
        weights.numpy(),
        biases.numpy(),
        labels,
        inputs.numpy(),
        20,
        300,
        sampled_values=sampled,
        precision="bfloat16",
    )
    dense_w, dense_b = np.zeros((300, 40), np.float32), np.zeros(300, np.float32)
    expected.accumulate(dense_w, dense_b)
    for got, want in zip(results["bfloat16"], [expected.loss, expected.inputs, dense_w, dense_b]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
    difference = max(
        float((a - b).abs().max()) for a, b in zip(results["bfloat16"], results["float32"])
    )
    assert (difference > 1e-4) == rustnce.bfloat16_available()


def test_bfloat16_precision_refuses_float64_tensors():
    problem = make_problem(4)
    with pytest.raises(ValueError, match="precision='bfloat16' needs float32"):
        rt.nce_loss(**problem, precision="bfloat16")
