//! Full (unsampled) evaluation losses over all `num_classes` classes — TensorFlow's documented
//! evaluation recipe: logits `x · W[:C]ᵀ + b[:C]` against targets `y[c] = (times c is a label) / T`.
//! The `[batch, C]` logits are never materialised: classes are streamed in blocks.

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::element_types::{ClassId, Real};
use crate::error::{NceError, Result};
use crate::losses::nce::sigmoid_cross_entropy;
use crate::matrix_product::matrix_product;
use crate::sharding::ShardedMatrix;

const ROWS_PER_TASK: usize = 64;
const CLASSES_PER_BLOCK: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullLoss {
    /// Sigmoid cross-entropy summed over all classes (evaluates `nce_loss`).
    Sigmoid,
    /// Softmax cross-entropy over all classes (evaluates `sampled_softmax_loss`).
    Softmax,
}

/// Per-example full loss `[batch]`.
pub fn full_loss<F: Real, L: ClassId>(
    weights: &ShardedMatrix<F>,
    biases: &ShardedMatrix<F>,
    labels: ArrayView2<L>,
    inputs: ArrayView2<F>,
    num_classes: usize,
    loss: FullLoss,
) -> Result<Array1<F>> {
    let labels = check(weights, biases, labels, inputs, num_classes)?;
    let num_true = labels.ncols();
    let target = F::one() / F::from_f64(num_true as f64);
    let mut out = Array1::<F>::zeros(inputs.nrows());
    out.axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
        .into_par_iter()
        .enumerate()
        .for_each(|(task, mut block_out)| {
            let first = task * ROWS_PER_TASK;
            let rows = block_out.len();
            let x = inputs.slice(s![first..first + rows, ..]);
            let mut accumulator = Accumulator::new(rows, loss);
            let mut buffer = Array2::<F>::zeros((rows, CLASSES_PER_BLOCK));
            for_each_class_block(weights, biases, num_classes, |w, b| {
                let mut logits = buffer.slice_mut(s![.., ..w.nrows()]);
                matrix_product(&x, &w.t(), &mut logits);
                logits.zip_mut_with(&b, |z, &bias| *z = *z + bias);
                accumulator.add(&logits);
            });
            for (offset, value) in block_out.iter_mut().enumerate() {
                let i = first + offset;
                let true_part: F = labels
                    .row(i)
                    .iter()
                    .map(|&label| inputs.row(i).dot(&weights.row(label)) + biases.scalar(label))
                    .sum();
                *value = accumulator.finish(offset) - target * true_part;
            }
        });
    Ok(out)
}

/// Per-row running sums: `Σ softplus(z)` (sigmoid) or a running max and `Σ exp(z - max)` (softmax).
struct Accumulator<F> {
    loss: FullLoss,
    max: Vec<F>,
    sum: Vec<F>,
}

impl<F: Real> Accumulator<F> {
    fn new(rows: usize, loss: FullLoss) -> Self {
        Accumulator {
            loss,
            max: vec![F::neg_infinity(); rows],
            sum: vec![F::zero(); rows],
        }
    }

    fn add(&mut self, logits: &ArrayViewMut2<F>) {
        for (r, row) in logits.axis_iter(Axis(0)).enumerate() {
            match self.loss {
                FullLoss::Sigmoid => {
                    // softplus(z) = ℓ(z, 0); the label terms are subtracted at the end.
                    self.sum[r] = self.sum[r]
                        + row
                            .iter()
                            .map(|&z| sigmoid_cross_entropy(z, F::zero()))
                            .sum();
                }
                FullLoss::Softmax => {
                    let block_max = row.fold(F::neg_infinity(), |m, &z| if z > m { z } else { m });
                    let new_max = if block_max > self.max[r] {
                        block_max
                    } else {
                        self.max[r]
                    };
                    let rescaled = if self.max[r] == F::neg_infinity() {
                        F::zero()
                    } else {
                        self.sum[r] * (self.max[r] - new_max).exp()
                    };
                    self.sum[r] = rescaled + row.iter().map(|&z| (z - new_max).exp()).sum();
                    self.max[r] = new_max;
                }
            }
        }
    }

    /// The loss of row `r` before the label terms are subtracted.
    fn finish(&self, r: usize) -> F {
        match self.loss {
            FullLoss::Sigmoid => self.sum[r],
            FullLoss::Softmax => self.max[r] + self.sum[r].ln(),
        }
    }
}

/// Calls `visit(weight_rows, biases)` for blocks of the classes below `num_classes`, each a
/// view of one shard (the order of classes does not matter to the sums).
fn for_each_class_block<F: Real>(
    weights: &ShardedMatrix<F>,
    biases: &ShardedMatrix<F>,
    num_classes: usize,
    mut visit: impl FnMut(ArrayView2<F>, Array1<F>),
) {
    for (p, shard) in weights.shards().iter().enumerate() {
        let usable = weights.layout().local_rows_below(p, num_classes);
        for start in (0..usable).step_by(CLASSES_PER_BLOCK) {
            let end = (start + CLASSES_PER_BLOCK).min(usable);
            let bias: Array1<F> = (start..end)
                .map(|r| biases.scalar(weights.layout().global_id(p, r)))
                .collect();
            visit(shard.slice(s![start..end, ..]), bias);
        }
    }
}

fn check<'a, F: Real, L: ClassId>(
    weights: &ShardedMatrix<F>,
    biases: &ShardedMatrix<F>,
    labels: ArrayView2<'a, L>,
    inputs: ArrayView2<F>,
    num_classes: usize,
) -> Result<Array2<usize>> {
    if inputs.ncols() != weights.dim() {
        return Err(NceError::invalid(
            "inputs",
            format!(
                "has {} columns but weights have dim {}",
                inputs.ncols(),
                weights.dim()
            ),
        ));
    }
    if biases.dim() != 1 || biases.rows() != weights.rows() {
        return Err(NceError::invalid(
            "biases",
            format!(
                "must be a vector of {} entries, one per row of weights",
                weights.rows()
            ),
        ));
    }
    if num_classes < 1 || num_classes > weights.rows() {
        return Err(NceError::invalid(
            "num_classes",
            format!(
                "must be in [1, rows of weights = {}], got {num_classes}",
                weights.rows()
            ),
        ));
    }
    if labels.nrows() != inputs.nrows() || labels.ncols() < 1 {
        return Err(NceError::invalid(
            "labels",
            format!(
                "must be [batch = {}, num_true >= 1], got shape {:?}",
                inputs.nrows(),
                labels.shape()
            ),
        ));
    }
    let mut checked = Array2::zeros(labels.raw_dim());
    for (slot, &label) in checked.iter_mut().zip(labels.iter()) {
        let id: i64 = label.into();
        if id < 0 || id as u64 >= num_classes as u64 {
            return Err(NceError::out_of_range(
                "labels",
                format!("id {id} is out of range [0, num_classes = {num_classes})"),
            ));
        }
        *slot = id as usize;
    }
    Ok(checked)
}
