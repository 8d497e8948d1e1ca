"""Every ``sampled_values`` TensorFlow accepts and computes is accepted, with TensorFlow's result
(docs/semantics.md §2.1): expected counts broadcast against the logits they are
subtracted from, counts not read when ``ln Q`` is not subtracted, the candidates' own length
used as the number sampled. What TensorFlow refuses (or would silently widen) is refused, with
the same exception class from every entry point and from the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

import rustnce
from rustnce import reference

LABELS = np.array([[0, 1], [2, 3], [4, 0]])
CANDIDATES = [1, 0, 2, 3]


def problem(dtype=np.float64):
    rng = np.random.default_rng(7)
    return dict(
        weights=rng.standard_normal((5, 4)).astype(dtype),
        biases=rng.standard_normal(5).astype(dtype),
        labels=LABELS,
        inputs=rng.standard_normal((3, 4)).astype(dtype),
        num_sampled=4,
        num_classes=5,
        num_true=2,
    )


def written_out_logits(kwargs, candidates, true_count, sampled_count):
    """``x . w + b - ln Q``, true columns then candidates, with NumPy's broadcasting."""
    w, b, x = kwargs["weights"], kwargs["biases"], kwargs["inputs"]
    labels = kwargs["labels"]
    true_logits = np.einsum("bd,btd->bt", x, w[labels]) + b[labels] - np.log(true_count)
    sampled_logits = x @ w[candidates].T + b[candidates] - np.log(sampled_count)
    return np.concatenate([true_logits, sampled_logits], axis=1)


@pytest.mark.parametrize("module", [rustnce, reference], ids=["rustnce", "reference"])
def test_the_issue_example_subtracts_log_half_from_both_true_columns(module):
    kwargs = problem()
    true_count = np.full([3, 1], 0.5, np.float32)
    sampled_count = np.full([4], 0.5, np.float32)
    logits, targets = module.compute_sampled_logits(
        **kwargs, sampled_values=(CANDIDATES, true_count, sampled_count)
    )
    assert logits.shape == targets.shape == (3, 6)
    expected = written_out_logits(kwargs, CANDIDATES, 0.5, 0.5)
    np.testing.assert_allclose(logits, expected, rtol=1e-12)
    np.testing.assert_array_equal(targets[:, :2], 0.5)


TRUE_COUNTS = {
    "[batch, num_true]": np.array([[0.5, 0.25], [0.125, 0.5], [0.75, 0.2]]),
    "[batch, 1]": np.array([[0.5], [0.25], [0.125]]),
    "[1, num_true]": np.array([[0.5, 0.25]]),
    "[num_true]": np.array([0.5, 0.25]),
    "scalar": np.array(0.3),
}
SAMPLED_COUNTS = {
    "[num_sampled]": np.array([0.5, 0.8, 0.1, 0.4]),
    "[1, num_sampled]": np.array([[0.5, 0.8, 0.1, 0.4]]),
    "[batch, num_sampled]": np.linspace(0.05, 0.95, 12).reshape(3, 4),
    "[batch, 1]": np.array([[0.5], [0.25], [0.125]]),
    "scalar": np.array(0.6),
}


@pytest.mark.parametrize("true_shape", sorted(TRUE_COUNTS))
@pytest.mark.parametrize("sampled_shape", sorted(SAMPLED_COUNTS))
def test_counts_broadcast_as_tensorflow_broadcasts_them(true_shape, sampled_shape):
    kwargs = problem()
    true_count, sampled_count = TRUE_COUNTS[true_shape], SAMPLED_COUNTS[sampled_shape]
    values = (np.array(CANDIDATES), true_count, sampled_count)
    expected = written_out_logits(kwargs, CANDIDATES, true_count, sampled_count)
    for module in (rustnce, reference):
        logits, _ = module.compute_sampled_logits(**kwargs, sampled_values=values)
        np.testing.assert_allclose(logits, expected, rtol=1e-12)
    for loss in ("nce_loss", "sampled_softmax_loss"):
        np.testing.assert_allclose(
            getattr(rustnce, loss)(**kwargs, sampled_values=values),
            getattr(reference, loss)(**kwargs, sampled_values=values),
            rtol=1e-12,
        )
    got = rustnce.nce_loss_and_gradients(**kwargs, sampled_values=values)
    want = reference.nce_loss_and_gradients(**kwargs, sampled_values=values)
    np.testing.assert_allclose(got.inputs, want["inputs_grad"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got.weights.values, want["weight_values"], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "position,counts",
    [
        (1, np.full([3], 0.5)),  # [batch] vs [batch, 2]
        (1, np.full([3, 2, 1], 0.5)),  # rank 3: TensorFlow's concat fails
        (1, np.full([2, 2], 0.5)),
        (2, np.full([5], 0.5)),
        (2, np.full([4, 1], 0.5)),
    ],
)
@pytest.mark.parametrize("module", [rustnce, reference], ids=["rustnce", "reference"])
def test_counts_that_do_not_broadcast_are_refused(module, position, counts):
    kwargs = problem()
    values = [np.array(CANDIDATES), np.full([3, 2], 0.5), np.full([4], 0.5)]
    values[position] = counts
    with pytest.raises(ValueError, match=rf"sampled_values\[{position}\]"):
        module.nce_loss(**kwargs, sampled_values=tuple(values))


def test_a_batch_vector_of_true_counts_is_refused_rather_than_widening_the_logits():
    """num_true = 1 and true counts of shape [batch]: TensorFlow broadcasts [3, 1] - [3] into
    [3, 3] true logits (a deliberate difference: rustnce refuses it)."""
    kwargs = dict(problem(), labels=LABELS[:, :1], num_true=1)
    values = (np.array(CANDIDATES), np.full([3], 0.5), np.full([4], 0.5))
    for module in (rustnce, reference):
        with pytest.raises(ValueError, match=r"sampled_values\[1\]"):
            module.compute_sampled_logits(**kwargs, sampled_values=values)


@pytest.mark.parametrize("module", [rustnce, reference], ids=["rustnce", "reference"])
def test_counts_are_not_read_without_log_q(module):
    kwargs = problem()
    good = (np.array(CANDIDATES), np.full([3, 2], 0.5), np.full([4], 0.5))
    junk = (np.array(CANDIDATES), np.full([7, 1, 5], np.nan), np.array([-1.0, 0.0]))
    for function in ("compute_sampled_logits", "nce_loss", "sampled_softmax_loss"):
        call = getattr(module, function)
        want = call(**kwargs, sampled_values=good, subtract_log_q=False)
        got = call(**kwargs, sampled_values=junk, subtract_log_q=False)
        for g, w in zip(np.atleast_1d(got), np.atleast_1d(want)):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("candidates", [[4, 4, 1], [2], [0, 1, 2, 3, 4, 1]])
@pytest.mark.parametrize("num_sampled", [1, 4, 9])
def test_the_candidates_own_length_is_used_without_hit_removal(candidates, num_sampled):
    kwargs = dict(problem(), num_sampled=num_sampled)
    values = (np.array(candidates), np.full([3, 1], 0.5), np.full([len(candidates)], 0.25))
    expected = written_out_logits(kwargs, candidates, 0.5, 0.25)
    for module in (rustnce, reference):
        logits, _ = module.compute_sampled_logits(**kwargs, sampled_values=values)
        np.testing.assert_allclose(logits, expected, rtol=1e-12)
        loss = module.sampled_softmax_loss(
            **kwargs, sampled_values=values, remove_accidental_hits=False
        )
        assert loss.shape == (3,)
    np.testing.assert_allclose(
        rustnce.nce_loss(**kwargs, sampled_values=values),
        reference.nce_loss(**kwargs, sampled_values=values),
        rtol=1e-12,
    )


def test_no_candidates_at_all_leave_the_true_columns():
    kwargs = problem()
    values = (np.zeros(0, np.int64), np.full([3, 2], 0.5), np.zeros(0))
    for module in (rustnce, reference):
        logits, _ = module.compute_sampled_logits(**kwargs, sampled_values=values)
        np.testing.assert_allclose(logits, written_out_logits(kwargs, [], 0.5, 1.0), rtol=1e-12)


@pytest.mark.parametrize("module", [rustnce, reference], ids=["rustnce", "reference"])
def test_hit_removal_needs_num_sampled_to_match_the_candidates(module):
    """TensorFlow sizes the hit mask with num_sampled; any other length fails there (or, for a
    length or num_sampled of 1, masks or repeats whole rows: refused as well)."""
    kwargs = dict(problem(), num_sampled=3)
    values = (np.array(CANDIDATES), np.full([3, 1], 0.5), np.full([4], 0.5))
    with pytest.raises(ValueError, match="num_sampled"):
        module.sampled_softmax_loss(**kwargs, sampled_values=values)
    module.sampled_softmax_loss(**dict(kwargs, num_sampled=4), sampled_values=values)


# ------------------------------------------------- one exception class per malformed triple


def skipgram_step(sampled_values):
    vectors = np.zeros((5, 4), np.float32)
    return rustnce.skipgram_sgd_step(
        vectors, vectors.copy(), np.zeros(5, np.float32), [0, 1], [2, 3], sampled_values, 0.1
    )


ENTRY_POINTS = {
    "nce_loss": lambda values: rustnce.nce_loss(**problem(), sampled_values=values),
    "sampled_softmax_sgd_step": lambda values: rustnce.sampled_softmax_sgd_step(
        **problem(), sampled_values=values, learning_rate=0.1
    ),
    "skipgram_sgd_step": skipgram_step,
    "reference.nce_loss": lambda values: reference.nce_loss(**problem(), sampled_values=values),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize(
    "value,exception",
    [
        (([1, 2], np.ones([3, 2])), ValueError),
        (([1, 2], np.ones([3, 2]), np.ones(2), np.ones(2)), ValueError),
        (7, TypeError),
        (object(), TypeError),
    ],
    ids=["two-items", "four-items", "int", "object"],
)
def test_a_malformed_triple_raises_the_same_exception_everywhere(entry, value, exception):
    with pytest.raises(exception, match="sampled_values"):
        ENTRY_POINTS[entry](value)
