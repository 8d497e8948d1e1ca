//! Gradients of both sampled losses: central finite differences in float64, and the agreement
//! of the gradient forms (TensorFlow's row-sparse form, merged, dense scatter-add, SGD step).

use ndarray::{s, Array1, Array2, Axis};
use rustnce::losses::forward_backward::{forward_backward, Upstream};
use rustnce::losses::{sampled_loss, SampledLoss};
use rustnce::sampled_logits::{SampledLossInputs, SampledValues};
use rustnce::sharding::{PartitionStrategy, ShardedMatrix, ShardedRowsMut};

/// A small problem with repeated labels, a label among the sampled ids and a repeated sample.
struct Problem {
    weights: Array2<f64>,
    biases: Array2<f64>,
    labels: Array2<i64>,
    inputs: Array2<f64>,
    sampled: Array1<i64>,
    true_q: Array2<f64>,
    sampled_q: Array1<f64>,
    upstream: Array1<f64>,
}

fn pseudo_random(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

fn make_problem(num_true: usize) -> Problem {
    let (classes, dim, batch) = (9, 4, 5);
    let labels: Vec<i64> = (0..batch * num_true)
        .map(|p| ((p * 7 + 3) % classes) as i64)
        .collect();
    Problem {
        weights: Array2::from_shape_vec((classes, dim), pseudo_random(classes * dim, 1)).unwrap(),
        biases: Array2::from_shape_vec((classes, 1), pseudo_random(classes, 2)).unwrap(),
        labels: Array2::from_shape_vec((batch, num_true), labels).unwrap(),
        inputs: Array2::from_shape_vec((batch, dim), pseudo_random(batch * dim, 3)).unwrap(),
        sampled: Array1::from(vec![3, 0, 8, 3, 5]),
        true_q: Array2::from_elem((batch, num_true), 0.3),
        sampled_q: Array1::from(vec![0.5, 0.2, 0.9, 0.5, 0.1]),
        upstream: Array1::from(pseudo_random(batch, 4)),
    }
}

fn inputs_of<'a>(
    p: &'a Problem,
    weights: &'a Array2<f64>,
    biases: &'a Array2<f64>,
    inputs: &'a Array2<f64>,
    hits: bool,
) -> SampledLossInputs<'a, f64, i64> {
    SampledLossInputs {
        weights: ShardedMatrix::single(weights.view()),
        biases: ShardedMatrix::single(biases.view()),
        labels: p.labels.view(),
        inputs: inputs.view(),
        num_classes: weights.nrows(),
        sampled: SampledValues {
            candidates: p.sampled.view(),
            true_expected_count: p.true_q.view().into_dyn(),
            sampled_expected_count: p.sampled_q.view().into_dyn(),
        },
        remove_accidental_hits: hits,
        subtract_log_q: true,
        precision: rustnce::bfloat16::Precision::Float32,
    }
}

fn total(
    p: &Problem,
    w: &Array2<f64>,
    b: &Array2<f64>,
    x: &Array2<f64>,
    loss: SampledLoss,
    hits: bool,
) -> f64 {
    let values = sampled_loss(&inputs_of(p, w, b, x, hits), loss).unwrap();
    values
        .iter()
        .zip(p.upstream.iter())
        .map(|(l, g)| l * g)
        .sum()
}

fn dense_weight_gradient(
    p: &Problem,
    loss: SampledLoss,
    hits: bool,
) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
    let problem = inputs_of(p, &p.weights, &p.biases, &p.inputs, hits);
    let gradients =
        forward_backward(&problem, loss, &Upstream::PerExample(p.upstream.view())).unwrap();
    let mut dw = Array2::zeros(p.weights.raw_dim());
    let mut db = Array2::zeros(p.biases.raw_dim());
    {
        let w = ShardedRowsMut::new(vec![dw.view_mut()], PartitionStrategy::Div, "w").unwrap();
        let b = ShardedRowsMut::new(vec![db.view_mut()], PartitionStrategy::Div, "b").unwrap();
        gradients
            .scatter_add(&p.inputs.view(), Some(&w), Some(&b), 1.0)
            .unwrap();
    }
    (dw, db, gradients.inputs_gradient)
}

fn check_finite_differences(loss: SampledLoss, num_true: usize, hits: bool) {
    let p = make_problem(num_true);
    let (dw, db, dx) = dense_weight_gradient(&p, loss, hits);
    let h = 1e-6;
    let numeric = |array: &Array2<f64>, which: usize, r: usize, c: usize| {
        let mut plus = array.clone();
        let mut minus = array.clone();
        plus[[r, c]] += h;
        minus[[r, c]] -= h;
        let (f_plus, f_minus) = match which {
            0 => (
                total(&p, &plus, &p.biases, &p.inputs, loss, hits),
                total(&p, &minus, &p.biases, &p.inputs, loss, hits),
            ),
            1 => (
                total(&p, &p.weights, &plus, &p.inputs, loss, hits),
                total(&p, &p.weights, &minus, &p.inputs, loss, hits),
            ),
            _ => (
                total(&p, &p.weights, &p.biases, &plus, loss, hits),
                total(&p, &p.weights, &p.biases, &minus, loss, hits),
            ),
        };
        (f_plus - f_minus) / (2.0 * h)
    };
    for (which, (array, analytic)) in [(&p.weights, &dw), (&p.biases, &db), (&p.inputs, &dx)]
        .into_iter()
        .enumerate()
    {
        for ((r, c), &value) in analytic.indexed_iter() {
            let estimate = numeric(array, which, r, c);
            assert!(
                (estimate - value).abs() <= 1e-6 * (1.0 + value.abs()),
                "{loss:?} T={num_true} hits={hits}: gradient {which} at ({r},{c}): analytic {value}, numeric {estimate}"
            );
        }
    }
}

#[test]
fn nce_gradients_equal_finite_differences() {
    for num_true in [1, 3] {
        for hits in [false, true] {
            check_finite_differences(SampledLoss::Nce, num_true, hits);
        }
    }
}

#[test]
fn sampled_softmax_gradients_equal_finite_differences() {
    for num_true in [1, 3] {
        for hits in [false, true] {
            check_finite_differences(SampledLoss::SampledSoftmax, num_true, hits);
        }
    }
}

#[test]
fn gradient_forms_agree() {
    let p = make_problem(2);
    let problem = inputs_of(&p, &p.weights, &p.biases, &p.inputs, true);
    let gradients = forward_backward(&problem, SampledLoss::Nce, &Upstream::Sum).unwrap();
    // TensorFlow's form, scatter-added by hand.
    let values = gradients.tf_weight_values(&p.inputs.view());
    let bias_values = gradients.tf_bias_values();
    let mut dense = Array2::<f64>::zeros(p.weights.raw_dim());
    let mut dense_bias = Array1::<f64>::zeros(p.weights.nrows());
    for (position, &id) in gradients.ids.iter().enumerate() {
        let mut row = dense.row_mut(id);
        row += &values.row(position);
        dense_bias[id] += bias_values[position];
    }
    // The merged form.
    let merged = gradients.merged(&p.inputs.view());
    let (ids, rows, biases) = (merged.ids, merged.rows, merged.biases);
    let mut sorted = gradients.ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted);
    for (u, &id) in ids.iter().enumerate() {
        for c in 0..p.weights.ncols() {
            assert!((rows[[u, c]] - dense[[id, c]]).abs() < 1e-12);
        }
        assert!((biases[u] - dense_bias[id]).abs() < 1e-12);
    }
    // The SGD step: weights - lr * dense gradient.
    let learning_rate = 0.25;
    let mut stepped = p.weights.clone();
    let mut stepped_bias = p.biases.clone();
    {
        let w = ShardedRowsMut::new(vec![stepped.view_mut()], PartitionStrategy::Div, "w").unwrap();
        let b = ShardedRowsMut::new(vec![stepped_bias.view_mut()], PartitionStrategy::Div, "b")
            .unwrap();
        gradients
            .scatter_add(&p.inputs.view(), Some(&w), Some(&b), -learning_rate)
            .unwrap();
    }
    let expected = &p.weights - &(dense.clone() * learning_rate);
    assert!(stepped
        .iter()
        .zip(expected.iter())
        .all(|(a, b)| (a - b).abs() < 1e-12));
    let expected_bias = &p.biases.column(0) - &(dense_bias * learning_rate);
    assert!(stepped_bias
        .index_axis(Axis(1), 0)
        .iter()
        .zip(expected_bias.iter())
        .all(|(a, b)| (a - b).abs() < 1e-12));
}

#[test]
fn sharded_scatter_equals_unsharded() {
    let p = make_problem(1);
    let problem = inputs_of(&p, &p.weights, &p.biases, &p.inputs, false);
    let gradients =
        forward_backward(&problem, SampledLoss::SampledSoftmax, &Upstream::Mean).unwrap();
    let mut whole = Array2::<f64>::zeros(p.weights.raw_dim());
    {
        let w = ShardedRowsMut::new(vec![whole.view_mut()], PartitionStrategy::Div, "w").unwrap();
        gradients
            .scatter_add(&p.inputs.view(), Some(&w), None, 1.0)
            .unwrap();
    }
    // 9 rows over 2 "mod" shards: ids 0,2,4,6,8 and 1,3,5,7.
    let mut even = Array2::<f64>::zeros((5, p.weights.ncols()));
    let mut odd = Array2::<f64>::zeros((4, p.weights.ncols()));
    {
        let w = ShardedRowsMut::new(
            vec![even.view_mut(), odd.view_mut()],
            PartitionStrategy::Mod,
            "w",
        )
        .unwrap();
        gradients
            .scatter_add(&p.inputs.view(), Some(&w), None, 1.0)
            .unwrap();
    }
    assert_eq!(even, whole.slice(s![0..;2, ..]));
    assert_eq!(odd, whole.slice(s![1..;2, ..]));
}

/// Small calls run on the caller's thread, their parallel loops one piece after another: the
/// same pieces combined in the same order as on the pool, so the same bits.
#[test]
fn inline_and_pooled_runs_compute_the_same_bits() {
    use rustnce::parallelism::{install, install_sized};
    let (classes, dim, batch, num_true) = (60, 8, 700, 2);
    let labels: Vec<i64> = (0..batch * num_true)
        .map(|p| ((p * 13 + 5) % classes) as i64)
        .collect();
    let p = Problem {
        weights: Array2::from_shape_vec((classes, dim), pseudo_random(classes * dim, 11)).unwrap(),
        biases: Array2::from_shape_vec((classes, 1), pseudo_random(classes, 12)).unwrap(),
        labels: Array2::from_shape_vec((batch, num_true), labels).unwrap(),
        inputs: Array2::from_shape_vec((batch, dim), pseudo_random(batch * dim, 13)).unwrap(),
        sampled: Array1::from(
            (0..20)
                .map(|k| (k * 3 % classes) as i64)
                .collect::<Vec<_>>(),
        ),
        true_q: Array2::from_elem((batch, num_true), 0.3),
        sampled_q: Array1::from(vec![0.25; 20]),
        upstream: Array1::from(pseudo_random(batch, 14)),
    };
    let problem = inputs_of(&p, &p.weights, &p.biases, &p.inputs, true);
    let run = || {
        let g = forward_backward(&problem, SampledLoss::SampledSoftmax, &Upstream::Sum).unwrap();
        let values = g.tf_weight_values(&p.inputs.view());
        let merged = g.merged(&p.inputs.view());
        let loss = sampled_loss(&problem, SampledLoss::Nce).unwrap();
        let logits = problem.compute_sampled_logits().unwrap();
        (
            g.loss.clone(),
            g.inputs_gradient.clone(),
            values,
            merged.rows,
            loss,
            logits,
        )
    };
    let pooled = install(run);
    let inline = install_sized(0, run);
    assert_eq!(pooled.0, inline.0);
    assert_eq!(pooled.1, inline.1);
    assert_eq!(pooled.2, inline.2);
    assert_eq!(pooled.3, inline.3);
    assert_eq!(pooled.4, inline.4);
    assert_eq!(pooled.5, inline.5);
}

/// A pass for `Σ loss` that kept its logit gradient, rescaled by per-example weights, equals a
/// pass run with those weights as its upstream gradient: every form of every gradient, over
/// several blocks of rows, labels among the samples and repeated samples.
#[test]
fn rescaled_gradients_equal_a_pass_with_the_upstream() {
    use rustnce::losses::forward_backward::forward_backward_rescalable;
    let (classes, dim, batch) = (50, 7, 600);
    for num_true in [1, 3] {
        let labels: Vec<i64> = (0..batch * num_true)
            .map(|p| ((p * 17 + 2) % classes) as i64)
            .collect();
        let p = Problem {
            weights: Array2::from_shape_vec((classes, dim), pseudo_random(classes * dim, 21))
                .unwrap(),
            biases: Array2::from_shape_vec((classes, 1), pseudo_random(classes, 22)).unwrap(),
            labels: Array2::from_shape_vec((batch, num_true), labels).unwrap(),
            inputs: Array2::from_shape_vec((batch, dim), pseudo_random(batch * dim, 23)).unwrap(),
            sampled: Array1::from(vec![4, 19, 2, 4, 33, 0, 49, 2]),
            true_q: Array2::from_elem((batch, num_true), 0.2),
            sampled_q: Array1::from(vec![0.4, 0.1, 0.3, 0.4, 0.05, 0.6, 0.02, 0.3]),
            upstream: Array1::from(pseudo_random(batch, 24)),
        };
        for loss in [SampledLoss::Nce, SampledLoss::SampledSoftmax] {
            for hits in [false, true] {
                let problem = inputs_of(&p, &p.weights, &p.biases, &p.inputs, hits);
                let kept = forward_backward_rescalable(&problem, loss, &Upstream::Sum).unwrap();
                assert!(forward_backward(&problem, loss, &Upstream::Sum)
                    .unwrap()
                    .logit_gradient
                    .is_none());
                let gradient = kept.inputs_gradient.view();
                let rescaled = kept
                    .rescaled(&p.inputs.view(), &gradient, &p.upstream.view())
                    .unwrap();
                let direct =
                    forward_backward(&problem, loss, &Upstream::PerExample(p.upstream.view()))
                        .unwrap();
                let close = |a: &Array2<f64>, b: &Array2<f64>| {
                    assert_eq!(a.dim(), b.dim());
                    let scale = b.iter().fold(1e-12_f64, |m, v| m.max(v.abs()));
                    for (x, y) in a.iter().zip(b) {
                        assert!((x - y).abs() <= 1e-12 * scale, "{x} vs {y}");
                    }
                };
                assert_eq!(rescaled.loss, direct.loss);
                assert_eq!(rescaled.ids, direct.ids);
                close(&rescaled.inputs_gradient, &direct.inputs_gradient);
                close(&rescaled.true_logit_gradient, &direct.true_logit_gradient);
                close(
                    &rescaled.sampled_weight_gradient,
                    &direct.sampled_weight_gradient,
                );
                close(
                    &rescaled.sampled_bias_gradient.clone().insert_axis(Axis(1)),
                    &direct.sampled_bias_gradient.clone().insert_axis(Axis(1)),
                );
                close(
                    &rescaled.tf_weight_values(&p.inputs.view()),
                    &direct.tf_weight_values(&p.inputs.view()),
                );
                // Refused: an upstream of the wrong length, and a pass that kept nothing.
                let short = p.upstream.slice(s![..batch - 1]);
                assert!(kept.rescaled(&p.inputs.view(), &gradient, &short).is_err());
                let plain = forward_backward(&problem, loss, &Upstream::Sum).unwrap();
                let plain_gradient = plain.inputs_gradient.view();
                assert!(plain
                    .rescaled(&p.inputs.view(), &plain_gradient, &p.upstream.view())
                    .is_err());
            }
        }
    }
}

/// Mostly distinct labels (each its id's only occurrence), with id 5 at every seventh label
/// position and among the samples, and a label repeated among the samples; `classes` must be
/// 400. Seeds `seed..seed + 3` fill the weights, biases, inputs and upstream.
fn repeated_ids_problem(
    classes: usize,
    dim: usize,
    batch: usize,
    num_true: usize,
    seed: u64,
) -> Problem {
    let labels: Vec<i64> = (0..batch * num_true)
        .map(|p| {
            if p % 7 == 0 {
                5
            } else {
                ((p * 37 + 11) % classes) as i64
            }
        })
        .collect();
    Problem {
        weights: Array2::from_shape_vec((classes, dim), pseudo_random(classes * dim, seed))
            .unwrap(),
        biases: Array2::from_shape_vec((classes, 1), pseudo_random(classes, seed + 1)).unwrap(),
        labels: Array2::from_shape_vec((batch, num_true), labels.clone()).unwrap(),
        inputs: Array2::from_shape_vec((batch, dim), pseudo_random(batch * dim, seed + 2)).unwrap(),
        sampled: Array1::from(vec![labels[1], 5, 399, 0, labels[1], 250]),
        true_q: Array2::from_elem((batch, num_true), 0.2),
        sampled_q: Array1::from(vec![0.4, 0.1, 0.3, 0.05, 0.4, 0.6]),
        upstream: Array1::from(pseudo_random(batch, seed + 3)),
    }
}

/// A pass that forms the merged form itself (labels that are their id's only occurrence written
/// by their block, the rest after the pass) gives the bits of `merged()` on the finished
/// gradients, and the same gradients as a plain pass: both losses, accidental hits on and off,
/// one and several labels per example, ids repeated among the labels and among the samples and
/// shared between them, an upstream that weights the examples, on one thread and on the pool.
#[test]
fn a_merging_pass_forms_the_merged_form_bit_for_bit() {
    use rustnce::losses::forward_backward::{forward_backward_merged, forward_backward_rescalable};
    use rustnce::parallelism::{install, install_sized};
    let (classes, dim, batch) = (400, 9, 300);
    for num_true in [1, 3] {
        let p = repeated_ids_problem(classes, dim, batch, num_true, 31);
        for loss in [SampledLoss::Nce, SampledLoss::SampledSoftmax] {
            for hits in [false, true] {
                let problem = inputs_of(&p, &p.weights, &p.biases, &p.inputs, hits);
                for upstream in [Upstream::Sum, Upstream::PerExample(p.upstream.view())] {
                    for keep in [false, true] {
                        let run = || {
                            let (gradients, merged) =
                                forward_backward_merged(&problem, loss, &upstream, keep).unwrap();
                            let reference = if keep {
                                forward_backward_rescalable(&problem, loss, &upstream).unwrap()
                            } else {
                                forward_backward(&problem, loss, &upstream).unwrap()
                            };
                            (gradients, merged, reference)
                        };
                        for (gradients, merged, reference) in [install(run), install_sized(0, run)]
                        {
                            let expected = reference.merged(&p.inputs.view());
                            assert_eq!(merged.ids, expected.ids);
                            assert_eq!(merged.rows, expected.rows);
                            assert_eq!(merged.biases, expected.biases);
                            assert_eq!(gradients.loss, reference.loss);
                            assert_eq!(gradients.inputs_gradient, reference.inputs_gradient);
                            assert_eq!(
                                gradients.sampled_weight_gradient,
                                reference.sampled_weight_gradient
                            );
                            assert_eq!(gradients.logit_gradient, reference.logit_gradient);
                            assert_eq!(gradients.logit_gradient.is_some(), keep);
                        }
                    }
                }
            }
        }
    }
}

/// The fused SGD step, which updates a label's row inside the pass when its id occurs nowhere
/// else and the other rows after it, leaves the weights and biases with the bits of a plain
/// pass followed by `scatter_add`, reading and writing the same arrays: both losses, hits on
/// and off, one and several labels per example, ids repeated among the labels, among the
/// samples and between them, a weighting upstream, on one thread and on the pool. Targets too
/// small are refused before anything is written.
#[test]
fn the_sgd_step_updates_the_bits_of_a_scatter_add_after_the_pass() {
    use ndarray::{ArrayView2, ArrayViewMut2};
    use rustnce::losses::forward_backward::{sgd_step, SgdTargets};
    use rustnce::parallelism::{install, install_sized};
    let (classes, dim, batch) = (400, 9, 300);
    let scale = -0.37;
    for num_true in [1, 3] {
        let p = repeated_ids_problem(classes, dim, batch, num_true, 41);
        for loss in [SampledLoss::Nce, SampledLoss::SampledSoftmax] {
            for hits in [false, true] {
                for upstream in [Upstream::Sum, Upstream::PerExample(p.upstream.view())] {
                    // The reference: a pass over the original arrays, then the scatter-add.
                    let problem = inputs_of(&p, &p.weights, &p.biases, &p.inputs, hits);
                    let reference = forward_backward(&problem, loss, &upstream).unwrap();
                    let (mut expected_w, mut expected_b) = (p.weights.clone(), p.biases.clone());
                    let w = ShardedRowsMut::new(
                        vec![expected_w.view_mut()],
                        PartitionStrategy::Div,
                        "w",
                    )
                    .unwrap();
                    let b = ShardedRowsMut::new(
                        vec![expected_b.view_mut()],
                        PartitionStrategy::Div,
                        "b",
                    )
                    .unwrap();
                    reference
                        .scatter_add(&p.inputs.view(), Some(&w), Some(&b), scale)
                        .unwrap();
                    for pool in [false, true] {
                        let (mut stepped_w, mut stepped_b) = (p.weights.clone(), p.biases.clone());
                        let (w_ptr, b_ptr) = (stepped_w.as_mut_ptr(), stepped_b.as_mut_ptr());
                        // SAFETY: both views of each array come from one pointer to memory
                        // this test owns; `sgd_step` is given them as its contract asks.
                        let (read_w, read_b, write_w, write_b) = unsafe {
                            (
                                ArrayView2::from_shape_ptr((classes, dim), w_ptr as *const f64),
                                ArrayView2::from_shape_ptr((classes, 1), b_ptr as *const f64),
                                ArrayViewMut2::from_shape_ptr((classes, dim), w_ptr),
                                ArrayViewMut2::from_shape_ptr((classes, 1), b_ptr),
                            )
                        };
                        let mut problem = inputs_of(&p, &p.weights, &p.biases, &p.inputs, hits);
                        problem.weights = ShardedMatrix::single(read_w);
                        problem.biases = ShardedMatrix::single(read_b);
                        let w = ShardedRowsMut::new(vec![write_w], PartitionStrategy::Div, "w")
                            .unwrap();
                        let b = ShardedRowsMut::new(vec![write_b], PartitionStrategy::Div, "b")
                            .unwrap();
                        let targets = SgdTargets {
                            weights: &w,
                            biases: &b,
                            scale,
                        };
                        // SAFETY: the targets are the problem's own arrays.
                        let run = || unsafe { sgd_step(&problem, loss, &upstream, &targets) };
                        let gradients = if pool {
                            install(run)
                        } else {
                            install_sized(0, run)
                        }
                        .unwrap();
                        drop((w, b, problem));
                        assert_eq!(gradients.loss, reference.loss);
                        assert_eq!(gradients.inputs_gradient, reference.inputs_gradient);
                        assert_eq!(stepped_w, expected_w, "{loss:?} hits {hits} pool {pool}");
                        assert_eq!(stepped_b, expected_b, "{loss:?} hits {hits} pool {pool}");
                        assert_ne!(stepped_w, p.weights);
                    }
                }
            }
        }
        // Targets narrower than the weights, or too short for the ids, are refused untouched.
        let problem = inputs_of(&p, &p.weights, &p.biases, &p.inputs, false);
        let (mut narrow, mut short) = (Array2::<f64>::zeros((classes, dim - 1)), {
            Array2::<f64>::zeros((6, 1))
        });
        let narrow_rows =
            ShardedRowsMut::new(vec![narrow.view_mut()], PartitionStrategy::Div, "w").unwrap();
        let short_rows =
            ShardedRowsMut::new(vec![short.view_mut()], PartitionStrategy::Div, "b").unwrap();
        let targets = SgdTargets {
            weights: &narrow_rows,
            biases: &short_rows,
            scale,
        };
        // SAFETY: the targets are memory nothing else reads or writes.
        let refused = unsafe { sgd_step(&problem, SampledLoss::Nce, &Upstream::Sum, &targets) };
        assert!(refused.unwrap_err().to_string().contains("weights"));
        drop((narrow_rows, short_rows));
        assert!(narrow.iter().all(|&v| v == 0.0) && short.iter().all(|&v| v == 0.0));
    }
}
