//! One fused pass for either sampled loss: the logits, the per-example loss, and the gradients
//! with respect to the inputs, the sampled weight rows and biases (spec §6). Nothing larger
//! than the `[batch, num_true + num_sampled]` logits is materialised; the three matrix products
//! run as blocked matrix multiplications.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use super::{row_losses, SampledLoss};
use crate::element_types::{ClassId, Real};
use crate::error::{NceError, Result};
use crate::matrix_product::matrix_product;
use crate::sampled_logits::SampledLossInputs;
use crate::workspace;

/// Rows of the batch per matrix product task (large enough to amortise packing).
const ROWS_PER_PRODUCT: usize = 256;
/// Rows of the batch per partial product of the sampled weight gradient; partials are summed
/// in task order, so the result does not depend on the number of threads.
const ROWS_PER_PARTIAL: usize = 512;

/// How the per-example losses combine into the total whose gradient is taken.
#[derive(Clone, Debug)]
pub enum Upstream<'a, F> {
    /// `Σ_i loss_i`.
    Sum,
    /// `Σ_i loss_i / batch`.
    Mean,
    /// `Σ_i g_i · loss_i`, TensorFlow's upstream gradient `g`.
    PerExample(ArrayView1<'a, F>),
}

impl<F: Real> Upstream<'_, F> {
    fn weight(&self, row: usize, batch: usize) -> F {
        match self {
            Upstream::Sum => F::one(),
            Upstream::Mean => F::one() / F::from_f64(batch as f64),
            Upstream::PerExample(g) => g[row],
        }
    }
}

/// The loss and its gradients, in compact form: the weight and bias gradients touch only the
/// label rows and the sampled rows.
#[derive(Clone, Debug)]
pub struct SampledGradients<F> {
    /// Per-example loss `[batch]`.
    pub loss: Array1<F>,
    /// Labels, row-major `[batch * num_true]`, then sampled ids `[num_sampled]`: the rows the
    /// weight and bias gradients touch, in TensorFlow's order.
    pub ids: Vec<usize>,
    pub num_true: usize,
    /// `∂total/∂logit` for the true columns `[batch, num_true]`: the bias gradient of each
    /// label row, and the factor of `inputs[i]` in its weight gradient.
    pub true_logit_gradient: Array2<F>,
    /// Weight gradient of each sampled row, summed over the batch `[num_sampled, dim]`.
    pub sampled_weight_gradient: Array2<F>,
    /// Bias gradient of each sampled row, summed over the batch `[num_sampled]`.
    pub sampled_bias_gradient: Array1<F>,
    /// `∂total/∂inputs` `[batch, dim]`.
    pub inputs_gradient: Array2<F>,
}

impl<F: Real> SampledGradients<F> {
    pub fn batch(&self) -> usize {
        self.true_logit_gradient.nrows()
    }

    pub fn dim(&self) -> usize {
        self.sampled_weight_gradient.ncols()
    }

    /// Adds `scale ·` the weight-gradient row of position `position` of `ids` to `out`.
    pub fn add_weight_row(&self, position: usize, inputs: &ArrayView2<F>, scale: F, out: &mut [F]) {
        let true_rows = self.batch() * self.num_true;
        if position < true_rows {
            let (i, t) = (position / self.num_true, position % self.num_true);
            let factor = scale * self.true_logit_gradient[[i, t]];
            for (slot, &x) in out.iter_mut().zip(inputs.row(i)) {
                *slot = *slot + factor * x;
            }
        } else {
            let row = self.sampled_weight_gradient.row(position - true_rows);
            for (slot, &g) in out.iter_mut().zip(row) {
                *slot = *slot + scale * g;
            }
        }
    }

    /// The bias gradient of position `position` of `ids`.
    pub fn bias_value(&self, position: usize) -> F {
        let true_rows = self.batch() * self.num_true;
        if position < true_rows {
            self.true_logit_gradient[[position / self.num_true, position % self.num_true]]
        } else {
            self.sampled_bias_gradient[position - true_rows]
        }
    }
}

/// Loss and gradients of `loss` in one pass.
pub fn forward_backward<F: Real, L: ClassId>(
    problem: &SampledLossInputs<F, L>,
    loss: SampledLoss,
    upstream: &Upstream<F>,
) -> Result<SampledGradients<F>> {
    let batch = problem.batch();
    if let Upstream::PerExample(g) = upstream {
        if g.len() != batch {
            return Err(NceError::invalid(
                "upstream",
                format!("must have one entry per example ({batch}), got {}", g.len()),
            ));
        }
    }
    let mut gathered = problem.gather()?;
    let (num_true, num_sampled, dim) = (
        problem.num_true(),
        problem.num_sampled(),
        problem.weights.dim(),
    );

    // The logits, then in place each row's loss and gradient.
    let mut logit_gradient = problem.logits(&gathered);
    let weight = |row: usize| upstream.weight(row, batch);
    let losses = row_losses(&mut logit_gradient, num_true, loss, Some(&weight));
    let sampled_gradient = logit_gradient.slice(s![.., num_true..]);

    // ∂/∂inputs = G_sampled · W_sampled + Σ_t G_t · W[label_t].
    let mut inputs_gradient = workspace::matrix::<F>(batch, dim);
    inputs_gradient
        .axis_chunks_iter_mut(Axis(0), ROWS_PER_PRODUCT)
        .into_par_iter()
        .enumerate()
        .for_each(|(task, mut block)| {
            let first = task * ROWS_PER_PRODUCT;
            let rows = block.nrows();
            matrix_product(
                &sampled_gradient.slice(s![first..first + rows, ..]),
                &gathered.weights.view(),
                &mut block.view_mut(),
            );
            for (offset, mut row) in block.rows_mut().into_iter().enumerate() {
                let i = first + offset;
                for t in 0..num_true {
                    let label_row = gathered.true_weights.row(i * num_true + t);
                    row.scaled_add(logit_gradient[[i, t]], &label_row);
                }
            }
        });

    // Sampled rows: weights G_sampledᵀ · inputs and biases Σ_i G_sampled, as partial sums over
    // fixed row blocks, added in block order.
    let partials: Vec<(Array2<F>, Vec<F>)> = (0..batch.div_ceil(ROWS_PER_PARTIAL))
        .into_par_iter()
        .map(|task| {
            let first = task * ROWS_PER_PARTIAL;
            let last = (first + ROWS_PER_PARTIAL).min(batch);
            let block = sampled_gradient.slice(s![first..last, ..]);
            let mut weights = Array2::<F>::zeros((num_sampled, dim));
            matrix_product(
                &block.t(),
                &problem.inputs.slice(s![first..last, ..]),
                &mut weights.view_mut(),
            );
            let mut biases = vec![F::zero(); num_sampled];
            for row in block.rows() {
                for (sum, &g) in biases.iter_mut().zip(row) {
                    *sum = *sum + g;
                }
            }
            (weights, biases)
        })
        .collect();
    let mut sampled_weight_gradient = Array2::<F>::zeros((num_sampled, dim));
    let mut sampled_bias_gradient = Array1::<F>::zeros(num_sampled);
    for (weights, biases) in &partials {
        sampled_weight_gradient.zip_mut_with(weights, |sum, &part| *sum = *sum + part);
        sampled_bias_gradient
            .iter_mut()
            .zip(biases)
            .for_each(|(sum, &part)| *sum = *sum + part);
    }

    let true_logit_gradient = logit_gradient.slice(s![.., ..num_true]).to_owned();
    workspace::recycle(logit_gradient);
    let mut ids = std::mem::take(&mut gathered.ids.labels);
    ids.extend_from_slice(&gathered.ids.sampled);
    gathered.recycle();
    Ok(SampledGradients {
        loss: losses,
        ids,
        num_true,
        true_logit_gradient,
        sampled_weight_gradient,
        sampled_bias_gradient,
        inputs_gradient,
    })
}
