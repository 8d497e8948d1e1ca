"""The boundary between the Python package and the extension: each sampled-loss function is one
typed call into ``src/py/losses.rs``, which checks the arguments, draws the default sample from
the kept sampler the module-level samplers share, and computes."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

import rustnce
from rustnce import _rustnce, _samplers

C, D, B, S = 50, 6, 4, 5

PASSED_THROUGH = [
    "nce_loss",
    "sampled_softmax_loss",
    "compute_sampled_logits",
    "nce_loss_and_gradients",
    "sampled_softmax_loss_and_gradients",
    "nce_sgd_step",
    "sampled_softmax_sgd_step",
]


def problem():
    rng = np.random.default_rng(3)
    return dict(
        weights=rng.standard_normal((C, D)).astype(np.float32),
        biases=rng.standard_normal(C).astype(np.float32),
        labels=rng.integers(0, C, (B, 1)),
        inputs=rng.standard_normal((B, D)).astype(np.float32),
        num_sampled=S,
        num_classes=C,
    )


@pytest.mark.parametrize("name", PASSED_THROUGH)
def test_the_extension_takes_the_public_signature_with_tensorflows_defaults(name):
    public = inspect.signature(getattr(rustnce, name)).parameters
    extension = inspect.signature(getattr(_rustnce, name)).parameters
    assert list(extension) == list(public)
    for parameter in public.values():
        assert extension[parameter.name].default == parameter.default, parameter.name


def test_the_default_draw_continues_the_module_level_samplers_stream():
    """As TensorFlow's kernel cache: a module-level log-uniform call and a loss's default draw
    with the same attributes continue one stream."""
    args = problem()
    stream = rustnce.LogUniformSampler(C, seed=(1, 2))
    first = stream.sample(args["labels"], 1, S, True)
    second = stream.sample(args["labels"], 1, S, True)
    rustnce.reset_sampler_cache()
    drawn = rustnce.log_uniform_candidate_sampler(args["labels"], 1, S, True, C, seed=(1, 2))
    np.testing.assert_array_equal(drawn[0], first[0])
    loss = rustnce.nce_loss(**args, seed=(1, 2))
    want = rustnce.nce_loss(**args, sampled_values=second)
    np.testing.assert_array_equal(loss, want)


def test_the_default_sample_is_drawn_inside_the_extension(monkeypatch):
    """No Python sampler takes part in a loss's default draw."""

    def refuse(*args, **kwargs):
        raise AssertionError("the Python sampler layer was called")

    for name in ("log_uniform_candidate_sampler", "LogUniformSampler", "CandidateSampler"):
        monkeypatch.setattr(_samplers, name, refuse)
    rustnce.reset_sampler_cache()
    assert rustnce.nce_loss(**problem(), seed=4).shape == (B,)
    assert _rustnce.sampler_cache_usage()[0] == 1


def test_a_refused_step_draws_nothing_and_writes_nothing():
    """Overlapping in-place targets are refused by the extension before the default sampler
    draws: the kept samplers stay as they were and the weights untouched."""
    args = problem()
    rustnce.reset_sampler_cache()
    before = args["weights"].copy()
    with pytest.raises(ValueError, match="inputs overlaps weights|weights overlaps inputs"):
        rustnce.nce_sgd_step(**dict(args, inputs=args["weights"][:B]), learning_rate=0.1)
    np.testing.assert_array_equal(args["weights"], before)
    assert _rustnce.sampler_cache_usage() == (0, 0)


def test_the_stub_types_the_boundary():
    stub = (Path(_rustnce.__file__).parent / "_rustnce.pyi").read_text()
    assert "dict[str, Any]" not in stub
    assert '_PartitionStrategy = Literal["div", "mod"]' in stub
    assert '_Upstream = Literal["sum", "mean"] | npt.ArrayLike' in stub
