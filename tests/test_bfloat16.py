"""``precision="bfloat16"``: the three matrix products with bfloat16 operands and float32 sums.

Against the float64 NumPy reference, every output stays within an a-priori bound derived from
the operands' rounding alone (docs/performance.md, "bfloat16 products"): a product of two
operands rounded to bfloat16 (unit roundoff ``u = 2^-8``) is off by at most ``(2u + u²)`` of
its magnitude, so a sampled logit by at most ``PRODUCT · Σ_k |x_k w_k|``; the true logits are
float32 dot products, untouched. From the logits' error, each loss and gradient's:

- NCE: the loss moves by at most the sum of its sampled logits' errors (every term is
  1-Lipschitz in its logit), each logit gradient ``σ(z) - y`` by a quarter of its logit's;
- sampled softmax: the loss (log-sum-exp minus the true logits) by the row's largest logit
  error ``m``, each probability ``p`` by ``p · (e^{2m} - 1)``;
- the inputs gradient ``G_s · W_s + G_t · W_t`` by ``|ΔG_s| · |W_s| + PRODUCT · |G_s| · |W_s|
  + |ΔG_t| · |W_t|``; the sampled rows' gradient ``G_sᵀ · X`` likewise; a label row's
  ``G_it · x_i`` by ``|ΔG_it| · |x_i|``; the biases' by the sums of ``|ΔG|``.

The float32 sums add their own rounding: the allowance is the bound plus four times the
float32 call's own error and ``1e-6`` of the output's scale. The bfloat16 results must also
differ from float32 by more than float32's own error: the products really are bfloat16.
Where the processor lacks AVX-512 BF16, ``precision="bfloat16"`` must equal float32 bit for
bit instead.
"""

from __future__ import annotations

import numpy as np
import pytest

import rustnce
import rustnce.reference as reference

U = 2.0**-8  # bfloat16's unit roundoff (8 significant bits, round to nearest)
PRODUCT = (2 * U + U * U) * 1.001  # one product of two rounded operands, relative
LOSSES = {
    "nce": (rustnce.nce_loss_and_gradients, reference.nce_loss_and_gradients),
    "sampled_softmax": (
        rustnce.sampled_softmax_loss_and_gradients,
        reference.sampled_softmax_loss_and_gradients,
    ),
}
FORWARD = {"nce": rustnce.nce_loss, "sampled_softmax": rustnce.sampled_softmax_loss}
SGD = {"nce": rustnce.nce_sgd_step, "sampled_softmax": rustnce.sampled_softmax_sgd_step}
CASES = [
    # (classes, dim, batch, num_sampled, num_true, remove_accidental_hits)
    (400, 70, 300, 40, 1, False),
    (400, 70, 300, 40, 1, True),
    (60, 33, 50, 31, 3, True),
    (60, 33, 50, 31, 3, False),
    (5000, 128, 600, 64, 1, False),
    (200, 301, 257, 17, 2, True),
]


def problem(case, seed):
    classes, dim, batch, num_sampled, num_true, hits = case
    rng = np.random.default_rng(seed)
    weights = (rng.normal(size=(classes, dim)) * 0.4).astype(np.float32)
    biases = (rng.normal(size=classes) * 0.2).astype(np.float32)
    inputs = rng.normal(size=(batch, dim)).astype(np.float32)
    labels = rng.integers(0, classes, size=(batch, num_true)).astype(np.int64)
    sampled = rustnce.log_uniform_candidate_sampler(
        labels, num_true, num_sampled, True, classes, seed=seed
    )
    return dict(
        weights=weights,
        biases=biases,
        labels=labels,
        inputs=inputs,
        num_sampled=num_sampled,
        num_classes=classes,
        num_true=num_true,
        sampled_values=sampled,
        remove_accidental_hits=hits,
    )


def as_float64(kwargs):
    out = dict(kwargs)
    for name in ("weights", "biases", "inputs"):
        out[name] = kwargs[name].astype(np.float64)
    out["sampled_values"] = tuple(
        np.asarray(v).astype(np.float64) if i else np.asarray(v)
        for i, v in enumerate(kwargs["sampled_values"])
    )
    return out


def bounds(kind, kwargs, ref):
    """The a-priori bounds of the module docstring, from the float64 reference."""
    t = kwargs["num_true"]
    x = np.abs(kwargs["inputs"].astype(np.float64))
    weights = kwargs["weights"].astype(np.float64)
    sampled_w = np.abs(weights[np.asarray(kwargs["sampled_values"][0])])
    true_w = np.abs(weights[kwargs["labels"]])  # [batch, num_true, dim]
    z, y = ref["logits"], ref["targets"]
    dz = np.zeros_like(z)
    dz[:, t:] = PRODUCT * (x @ sampled_w.T)
    if kind == "nce":
        p = 0.5 * (1.0 + np.tanh(z / 2.0))
        dg = dz / 4.0
        loss = dz.sum(axis=1)
    else:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        m = dz.max(axis=1)
        dg = p * np.expm1(2.0 * m)[:, None]
        loss = m
    g = np.abs(p - y)
    inputs = (
        dg[:, t:] @ sampled_w
        + PRODUCT * (g[:, t:] @ sampled_w)
        + (dg[:, :t, None] * true_w).sum(axis=1)
    )
    label_rows = (dg[:, :t, None] * x[:, None, :]).reshape(-1, x.shape[1])
    sampled_rows = dg[:, t:].T @ x + PRODUCT * (g[:, t:].T @ x)
    return {
        "loss": loss,
        "inputs": inputs,
        "weight_values": np.concatenate([label_rows, sampled_rows]),
        "bias_values": np.concatenate([dg[:, :t].reshape(-1), dg[:, t:].sum(axis=0)]),
    }


def outputs(gradients):
    return {
        "loss": gradients.loss,
        "inputs": gradients.inputs,
        "weight_values": gradients.weights.values,
        "bias_values": gradients.biases.values,
    }


REFERENCE_NAMES = {
    "loss": "loss",
    "inputs": "inputs_grad",
    "weight_values": "weight_values",
    "bias_values": "bias_values",
}


@pytest.mark.parametrize("kind", sorted(LOSSES))
@pytest.mark.parametrize("case", CASES)
def test_bfloat16_stays_within_the_bounds_of_its_rounding(kind, case):
    call, reference_call = LOSSES[kind]
    kwargs = problem(case, seed=sum(case[:4]))
    ref = reference_call(**as_float64(kwargs))
    bound = bounds(kind, kwargs, ref)
    float32 = outputs(call(**kwargs))
    bfloat16 = outputs(call(**kwargs, precision="bfloat16"))
    largest_difference = 0.0
    largest_float32_error = 0.0
    for name, got in bfloat16.items():
        want = ref[REFERENCE_NAMES[name]].astype(np.float64)
        float32_error = np.abs(float32[name].astype(np.float64) - want)
        scale = np.abs(want).max()
        allowed = bound[name] + 4 * float32_error + 1e-6 * scale
        error = np.abs(got.astype(np.float64) - want)
        worst = np.unravel_index(np.argmax(error - allowed), error.shape)
        assert np.all(error <= allowed), (
            f"{name}: error {error[worst]:.3g} > allowed {allowed[worst]:.3g} at {worst}"
        )
        largest_difference = max(largest_difference, float(np.abs(got - float32[name]).max()))
        largest_float32_error = max(largest_float32_error, float(float32_error.max()))
    if rustnce.bfloat16_available():
        assert largest_difference > 10 * largest_float32_error
    else:
        assert largest_difference == 0.0


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_every_form_of_a_bfloat16_call_agrees(kind):
    """The forward-only loss, the merged, rescalable and sharded calls and the SGD step all
    use the bfloat16 products: each equals the plain bfloat16 gradients call."""
    call, _ = LOSSES[kind]
    kwargs = problem((500, 64, 400, 32, 2, True), seed=7)
    plain = call(**kwargs, precision="bfloat16")
    loss = FORWARD[kind](**kwargs, precision="bfloat16")
    np.testing.assert_array_equal(loss, plain.loss)
    merged = call(**kwargs, precision="bfloat16", merged=True)
    np.testing.assert_array_equal(merged.inputs, plain.inputs)
    for got, want in zip(merged.merged(), plain.merged()):
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.values, want.values)
    sharded = dict(kwargs, weights=np.array_split(kwargs["weights"], 3))
    sharded = call(**sharded, precision="bfloat16")
    np.testing.assert_array_equal(sharded.inputs, plain.inputs)
    np.testing.assert_array_equal(sharded.weights.values, plain.weights.values)
    upstream = np.linspace(-1.0, 2.0, 400).astype(np.float32)
    rescaled = call(**kwargs, precision="bfloat16", rescalable=True).rescaled(upstream)
    direct = call(**kwargs, precision="bfloat16", upstream=upstream)
    # Rescaling scales the rows of the bfloat16 pass; the sampled rows' product is formed
    # anew from the scaled logit gradient, whose bfloat16 rounding differs from a pass made
    # with that upstream by the rounding itself.
    np.testing.assert_allclose(rescaled.inputs, upstream[:, None] * plain.inputs, rtol=1e-6)
    scale = np.abs(direct.weights.values).max()
    np.testing.assert_allclose(rescaled.weights.values, direct.weights.values, atol=4 * U * scale)
    weights, biases = kwargs["weights"].copy(), kwargs["biases"].copy()
    step = dict(kwargs, weights=weights, biases=biases)
    step_loss, step_inputs = SGD[kind](**step, learning_rate=0.5, precision="bfloat16")
    mean = call(**kwargs, precision="bfloat16", upstream="mean")
    np.testing.assert_array_equal(step_loss, mean.loss)
    np.testing.assert_array_equal(step_inputs, mean.inputs)
    expected = kwargs["weights"].copy()
    mean.accumulate(expected, scale=-0.5)
    np.testing.assert_allclose(weights, expected, rtol=1e-6, atol=1e-6)


def test_bfloat16_logits_are_the_rounded_operands_products():
    kwargs = problem((300, 50, 40, 20, 1, False), seed=3)
    kwargs.pop("remove_accidental_hits")
    logits, _ = rustnce.compute_sampled_logits(**kwargs, precision="bfloat16")
    float32, _ = rustnce.compute_sampled_logits(**kwargs)
    np.testing.assert_array_equal(logits[:, :1], float32[:, :1])  # true logits: float32
    if not rustnce.bfloat16_available():
        np.testing.assert_array_equal(logits, float32)
        return

    # The sampled columns from operands rounded to bfloat16, in float64.
    def rounded(a):
        bits = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
        return bits.astype(np.uint32).view(np.float32).astype(np.float64)

    sampled = np.asarray(kwargs["sampled_values"][0])
    products = rounded(kwargs["inputs"]) @ rounded(kwargs["weights"][sampled]).T
    corrections = float32[:, 1:] - (
        kwargs["inputs"].astype(np.float64) @ kwargs["weights"][sampled].astype(np.float64).T
    )
    np.testing.assert_allclose(logits[:, 1:], products + corrections, rtol=0, atol=2e-5)


@pytest.mark.parametrize("function", [rustnce.nce_loss, rustnce.nce_loss_and_gradients])
def test_bad_precisions_are_refused_naming_the_argument(function):
    kwargs = problem((50, 8, 6, 5, 1, False), seed=1)
    with pytest.raises(ValueError, match="precision must be one of 'float32', 'bfloat16'"):
        function(**kwargs, precision="float16")
    with pytest.raises(TypeError, match="precision must be one of"):
        function(**kwargs, precision=16)
    with pytest.raises(ValueError, match="precision='bfloat16' needs float32"):
        function(**as_float64(kwargs), precision="bfloat16")
    # float64 with the default precision is fine.
    function(**as_float64(kwargs), precision="float32")


def test_availability_matches_the_processor():
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        pytest.skip("no /proc/cpuinfo to compare with")
    listed = {"avx512f", "avx512bw", "avx512_bf16"} <= flags
    assert rustnce.bfloat16_available() == listed


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_bfloat16_results_do_not_depend_on_the_number_of_threads(kind):
    """Blocks, tiles and packings are fixed by the shapes: one thread and two give the same
    bits (several blocks of 256 rows, a short last one)."""
    call, _ = LOSSES[kind]
    kwargs = problem((900, 96, 700, 48, 2, True), seed=11)
    before = rustnce.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 1):
            rustnce.set_num_threads(threads)
            g = call(**kwargs, precision="bfloat16")
            results.append([g.loss, g.inputs, g.weights.values, g.biases.values])
    finally:
        rustnce.set_num_threads(before)
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            assert got.tobytes() == want.tobytes()
