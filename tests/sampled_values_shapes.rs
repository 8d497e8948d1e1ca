//! `sampled_values` shapes TensorFlow accepts (docs/semantics.md §2.1): expected
//! counts broadcast against the logits they are subtracted from, counts not read without
//! `ln Q`, and the candidates' own length as `num_sampled`.

use ndarray::{array, Array1, Array2, ArrayD, IxDyn};
use rustnce::losses::{sampled_loss, SampledLoss};
use rustnce::sampled_logits::{SampledLossInputs, SampledValues};
use rustnce::sharding::ShardedMatrix;
use rustnce::NceError;

struct Case {
    weights: Array2<f64>,
    biases: Array2<f64>,
    labels: Array2<i64>,
    inputs: Array2<f64>,
    candidates: Array1<i64>,
}

/// Three examples with two labels each, five classes, dim 2.
fn case() -> Case {
    Case {
        weights: array![
            [1.0, 0.0],
            [0.0, 1.0],
            [1.0, 1.0],
            [-1.0, 0.5],
            [0.25, -2.0]
        ],
        biases: array![[0.1], [-0.2], [0.0], [0.3], [0.05]],
        labels: array![[0, 1], [2, 3], [4, 0]],
        inputs: array![[0.5, -1.0], [2.0, 0.25], [-1.5, 0.75]],
        candidates: array![1, 0, 2, 3],
    }
}

fn problem<'a>(
    case: &'a Case,
    true_counts: &'a ArrayD<f64>,
    sampled_counts: &'a ArrayD<f64>,
    subtract_log_q: bool,
) -> SampledLossInputs<'a, f64, i64> {
    SampledLossInputs {
        weights: ShardedMatrix::single(case.weights.view()),
        biases: ShardedMatrix::single(case.biases.view()),
        labels: case.labels.view(),
        inputs: case.inputs.view(),
        num_classes: 5,
        sampled: SampledValues {
            candidates: case.candidates.view(),
            true_expected_count: true_counts.view(),
            sampled_expected_count: sampled_counts.view(),
        },
        remove_accidental_hits: false,
        subtract_log_q,
        precision: rustnce::bfloat16::Precision::Float32,
    }
}

/// `x_i . w_c + b_c`, written out.
fn raw_logit(case: &Case, row: usize, class: usize) -> f64 {
    case.inputs.row(row).dot(&case.weights.row(class)) + case.biases[[class, 0]]
}

fn counts(shape: &[usize], values: &[f64]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap()
}

#[test]
fn a_true_count_per_row_is_broadcast_over_the_labels() {
    let case = case();
    let true_counts = counts(&[3, 1], &[0.5, 0.25, 0.125]);
    let sampled_counts = counts(&[4], &[0.5, 0.8, 0.1, 0.4]);
    let logits = problem(&case, &true_counts, &sampled_counts, true)
        .compute_sampled_logits()
        .unwrap();
    assert_eq!(logits.dim(), (3, 6));
    for row in 0..3 {
        for t in 0..2 {
            let label = case.labels[[row, t]] as usize;
            let want = raw_logit(&case, row, label) - true_counts[[row, 0]].ln();
            assert!((logits[[row, t]] - want).abs() < 1e-12);
        }
        for (k, &id) in case.candidates.iter().enumerate() {
            let want = raw_logit(&case, row, id as usize) - sampled_counts[[k]].ln();
            assert!((logits[[row, 2 + k]] - want).abs() < 1e-12);
        }
    }
}

#[test]
fn scalar_and_per_label_counts_equal_their_full_matrices() {
    let case = case();
    let full_true = counts(&[3, 2], &[0.5, 0.7, 0.5, 0.7, 0.5, 0.7]);
    let full_sampled = counts(&[3, 4], &[0.25; 12]);
    let want = problem(&case, &full_true, &full_sampled, true)
        .compute_sampled_logits()
        .unwrap();
    let per_label = counts(&[2], &[0.5, 0.7]);
    let scalar = counts(&[], &[0.25]);
    let got = problem(&case, &per_label, &scalar, true)
        .compute_sampled_logits()
        .unwrap();
    assert_eq!(got, want);
}

#[test]
fn sampled_counts_may_differ_per_row() {
    let case = case();
    let true_counts = counts(&[3, 2], &[1.0; 6]);
    let per_row: Vec<f64> = (0..12).map(|k| 0.05 + k as f64 / 20.0).collect();
    let sampled_counts = counts(&[3, 4], &per_row);
    let logits = problem(&case, &true_counts, &sampled_counts, true)
        .compute_sampled_logits()
        .unwrap();
    for row in 0..3 {
        for (k, &id) in case.candidates.iter().enumerate() {
            let want = raw_logit(&case, row, id as usize) - per_row[row * 4 + k].ln();
            assert!((logits[[row, 2 + k]] - want).abs() < 1e-12);
        }
    }
}

#[test]
fn counts_that_would_widen_the_logits_are_refused() {
    let case = case();
    let good_sampled = counts(&[4], &[0.5; 4]);
    // [batch] against [batch, num_true = 2]: does not broadcast (3 vs 2).
    for bad_true in [counts(&[3], &[0.5; 3]), counts(&[2, 2], &[0.5; 4])] {
        let error = problem(&case, &bad_true, &good_sampled, true)
            .compute_sampled_logits()
            .unwrap_err();
        assert!(
            matches!(&error, NceError::InvalidArgument { argument, .. } if argument.contains("true_expected_count")),
            "{error}"
        );
    }
    let good_true = counts(&[3, 1], &[0.5; 3]);
    for bad_sampled in [
        counts(&[5], &[0.5; 5]),
        counts(&[4, 1], &[0.5; 4]),
        counts(&[1, 3, 4], &[0.5; 12]),
    ] {
        let error = problem(&case, &good_true, &bad_sampled, true)
            .compute_sampled_logits()
            .unwrap_err();
        assert!(
            error.to_string().contains("sampled_expected_count"),
            "{error}"
        );
    }
}

#[test]
fn counts_are_not_read_when_log_q_is_not_subtracted() {
    let case = case();
    let nonsense = counts(&[7, 1, 2], &[f64::NAN; 14]);
    let logits = problem(&case, &nonsense, &nonsense, false)
        .compute_sampled_logits()
        .unwrap();
    for row in 0..3 {
        for t in 0..2 {
            let want = raw_logit(&case, row, case.labels[[row, t]] as usize);
            assert!((logits[[row, t]] - want).abs() < 1e-12);
        }
    }
}

#[test]
fn nonpositive_counts_are_still_refused_when_log_q_is_subtracted() {
    let case = case();
    let true_counts = counts(&[3, 1], &[0.5, 0.0, 0.5]);
    let sampled_counts = counts(&[4], &[0.5; 4]);
    let error = sampled_loss(
        &problem(&case, &true_counts, &sampled_counts, true),
        SampledLoss::Nce,
    )
    .unwrap_err();
    assert!(error.to_string().contains("NaN"), "{error}");
}

#[test]
fn any_number_of_candidates_is_used_as_given() {
    let mut case = case();
    case.candidates = array![4, 4, 1];
    let true_counts = counts(&[3, 1], &[0.5; 3]);
    let sampled_counts = counts(&[1], &[0.5]);
    let logits = problem(&case, &true_counts, &sampled_counts, true)
        .compute_sampled_logits()
        .unwrap();
    assert_eq!(logits.dim(), (3, 5));
    case.candidates = Array1::zeros(0);
    let logits = problem(&case, &true_counts, &counts(&[0], &[]), true)
        .compute_sampled_logits()
        .unwrap();
    assert_eq!(logits.dim(), (3, 2));
    for loss in [SampledLoss::Nce, SampledLoss::SampledSoftmax] {
        let losses = sampled_loss(
            &problem(&case, &true_counts, &counts(&[0], &[]), true),
            loss,
        )
        .unwrap();
        assert!(losses.iter().all(|l| l.is_finite()));
    }
}
