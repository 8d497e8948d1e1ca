//! docs/semantics.md §13 item 1: losses and logits for fixed sampled values, recorded from TensorFlow 2.21.

use ndarray::{array, Array1, Array2};
use rustnce::losses::{sampled_loss, SampledLoss};
use rustnce::sampled_logits::{SampledLossInputs, SampledValues};
use rustnce::sharding::{PartitionStrategy, ShardedMatrix};

struct Case {
    weights: Array2<f32>,
    biases: Array2<f32>,
    labels: Array2<i64>,
    inputs: Array2<f32>,
    sampled: Array1<i64>,
    true_q: Array2<f32>,
    sampled_q: Array1<f32>,
}

fn spec_case() -> Case {
    Case {
        weights: array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]],
        biases: array![[0.1], [-0.2], [0.0], [0.3]],
        labels: array![[2], [0]],
        inputs: array![[0.5, -1.0], [2.0, 0.25]],
        sampled: array![2, 1, 3],
        true_q: array![[0.5], [0.25]],
        sampled_q: array![0.5, 0.8, 0.1],
    }
}

fn problem(case: &Case, remove_accidental_hits: bool) -> SampledLossInputs<'_, f32, i64> {
    SampledLossInputs {
        weights: ShardedMatrix::single(case.weights.view()),
        biases: ShardedMatrix::single(case.biases.view()),
        labels: case.labels.view(),
        inputs: case.inputs.view(),
        num_classes: 4,
        sampled: SampledValues {
            candidates: case.sampled.view(),
            true_expected_count: case.true_q.view().into_dyn(),
            sampled_expected_count: case.sampled_q.view().into_dyn(),
        },
        remove_accidental_hits,
        subtract_log_q: true,
        precision: rustnce::bfloat16::Precision::Float32,
    }
}

fn assert_close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (&g, &w) in got.iter().zip(want) {
        assert!(
            (g as f64 - w).abs() <= 2e-6 * w.abs().max(1.0),
            "got {got:?}, want {want:?}"
        );
    }
}

#[test]
fn sampled_logits_match_tensorflow() {
    let case = spec_case();
    let logits = problem(&case, false).compute_sampled_logits().unwrap();
    assert_close(
        logits.as_slice().unwrap(),
        &[
            0.19314718,
            0.19314718,
            -0.97685653,
            1.60258508,
            3.48629427,
            2.94314718,
            0.27314353,
            0.72758508,
        ],
    );
}

#[test]
fn hit_removal_masks_the_sampled_label_with_minus_flt_max() {
    let case = spec_case();
    let logits = problem(&case, true).compute_sampled_logits().unwrap();
    assert_eq!(logits[[0, 1]], -3.4028235e38);
}

#[test]
fn nce_loss_matches_tensorflow_with_and_without_hit_removal() {
    let case = spec_case();
    let plain = sampled_loss(&problem(&case, false), SampledLoss::Nce).unwrap();
    assert_close(plain.as_slice().unwrap(), &[3.5011971, 4.9853783]);
    let removed = sampled_loss(&problem(&case, true), SampledLoss::Nce).unwrap();
    assert_close(removed.as_slice().unwrap(), &[2.7068202, 4.9853783]);
}

#[test]
fn sampled_softmax_loss_matches_tensorflow_with_and_without_hit_removal() {
    let case = spec_case();
    let plain = sampled_loss(&problem(&case, false), SampledLoss::SampledSoftmax).unwrap();
    assert_close(plain.as_slice().unwrap(), &[1.8569258, 0.52148086]);
    let removed = sampled_loss(&problem(&case, true), SampledLoss::SampledSoftmax).unwrap();
    assert_close(removed.as_slice().unwrap(), &[1.6871431, 0.52148086]);
}

#[test]
fn div_sharded_weights_give_the_unsharded_loss() {
    let case = spec_case();
    let unsharded = sampled_loss(&problem(&case, false), SampledLoss::Nce).unwrap();
    let mut sharded = problem(&case, false);
    sharded.weights = ShardedMatrix::new(
        vec![
            case.weights.slice(ndarray::s![0..2, ..]),
            case.weights.slice(ndarray::s![2..4, ..]),
        ],
        PartitionStrategy::Div,
        "weights",
    )
    .unwrap();
    assert_eq!(sampled_loss(&sharded, SampledLoss::Nce).unwrap(), unsharded);
}

#[test]
fn nce_gradients_of_the_summed_loss_match_tensorflow() {
    use rustnce::losses::forward_backward::{forward_backward, Upstream};
    let case = spec_case();
    let problem = problem(&case, false);
    let gradients = forward_backward(&problem, SampledLoss::Nce, &Upstream::Sum).unwrap();
    assert_eq!(gradients.ids, vec![2, 0, 2, 1, 3]);
    let values = gradients.tf_weight_values(&case.inputs.view());
    assert_close(
        values.as_slice().unwrap(),
        &[
            -0.2259314, 0.4518628, -0.0594094, -0.0074262, 2.1739459, -0.3106526, 1.272487,
            -0.1315498, 1.76474, -0.6638106,
        ],
    );
    assert_close(
        gradients.tf_bias_values().as_slice().unwrap(),
        &[-0.4518628, -0.0297047, 1.4980758, 0.8413805, 1.5066545],
    );
    assert_close(
        gradients.inputs_gradient.as_slice().unwrap(),
        &[-0.7361048, 0.7859802, 0.2459587, 1.8549408],
    );
}
