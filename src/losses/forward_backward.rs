//! One fused pass for either sampled loss: the logits, the per-example loss, and the gradients
//! with respect to the inputs, the sampled weight rows and biases (docs/semantics.md §6). Nothing larger
//! than the `[batch, num_true + num_sampled]` logits is materialised; the three matrix products
//! run as blocked matrix multiplications.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::{block_row_losses, SampledLoss};
use crate::element_types::{ClassId, Real};
use crate::error::{NceError, Result};
use crate::matrix_product::matrix_product;
use crate::parallelism;
use crate::phase_timers::{timed, Phase};
use crate::sampled_logits::{SampledLossInputs, ROWS_PER_BLOCK};
use crate::simd::{avx2_version, InstructionSet};
use crate::workspace;

/// One block's rows of the outputs: its losses, true-logit gradients and inputs gradient.
type BlockViews<'a, F> = (
    usize,
    (
        (ArrayViewMut1<'a, F>, ArrayViewMut2<'a, F>),
        ArrayViewMut2<'a, F>,
    ),
);

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
        self.combine_weight_row(position, inputs, scale, out, |slot, value| slot + value);
    }

    /// Writes the weight-gradient row of position `position` of `ids` to `out`: the bits of
    /// `add_weight_row` into zeros, without the zeros.
    pub fn write_weight_row(&self, position: usize, inputs: &ArrayView2<F>, out: &mut [F]) {
        self.combine_weight_row(position, inputs, F::one(), out, |_, value| {
            F::zero() + value
        });
    }

    #[inline(always)]
    fn combine_weight_row(
        &self,
        position: usize,
        inputs: &ArrayView2<F>,
        scale: F,
        out: &mut [F],
        combine: impl Fn(F, F) -> F,
    ) {
        let true_rows = self.batch() * self.num_true;
        let (factor, row) = if position < true_rows {
            let (i, t) = (position / self.num_true, position % self.num_true);
            (scale * self.true_logit_gradient[[i, t]], inputs.row(i))
        } else {
            (
                scale,
                self.sampled_weight_gradient.row(position - true_rows),
            )
        };
        // Contiguous rows (the usual case) as slices, so that the loop is vectorised.
        match row.as_slice() {
            Some(values) => {
                for (slot, &value) in out.iter_mut().zip(values) {
                    *slot = combine(*slot, factor * value);
                }
            }
            None => {
                for (slot, &value) in out.iter_mut().zip(row) {
                    *slot = combine(*slot, factor * value);
                }
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
    let gathered = timed(Phase::CheckAndGatherSampled, || problem.gather())?;
    let (num_true, num_sampled, dim) = (
        problem.num_true(),
        problem.num_sampled(),
        problem.weights.dim(),
    );
    let width = num_true + num_sampled;
    let weight = |row: usize| upstream.weight(row, batch);

    // One pass per fixed block of rows: logits, then in place their losses' gradient, the
    // inputs gradient, and the block's share of the sampled rows' gradients.
    let mut losses = Array1::<F>::zeros(batch);
    let mut true_logit_gradient = Array2::<F>::zeros((batch, num_true));
    let mut inputs_gradient = workspace::matrix::<F>(batch, dim);
    let block_pass = |(
        task,
        ((mut block_losses, mut block_true_gradient), mut block_inputs_gradient),
    ): BlockViews<'_, F>| {
        let first = task * ROWS_PER_BLOCK;
        let rows = block_losses.len();
        let label_rows = timed(Phase::GatherLabelRows, || {
            problem.label_rows(&gathered, first, rows)
        });
        let mut gradient = timed(Phase::BuffersAndCombine, || {
            workspace::matrix::<F>(rows, width)
        });
        problem.block_logits(&gathered, first, &label_rows, &mut gradient.view_mut());
        let block_losses = block_losses.as_slice_mut().expect("losses are contiguous");
        timed(Phase::RowLosses, || {
            block_row_losses(
                &mut gradient,
                block_losses,
                first,
                num_true,
                loss,
                Some(&weight),
            )
        });
        timed(Phase::BuffersAndCombine, || {
            block_true_gradient.assign(&gradient.slice(s![.., ..num_true]))
        });
        let sampled_gradient = gradient.slice(s![.., num_true..]);

        // ∂/∂inputs = G_sampled · W_sampled + Σ_t G_t · W[label_t].
        timed(Phase::InputsGradientProduct, || {
            matrix_product(
                &sampled_gradient,
                &gathered.weights.view(),
                &mut block_inputs_gradient.view_mut(),
            )
        });
        timed(Phase::InputsGradientLabelRows, || {
            add_label_rows(
                &gradient,
                &label_rows.rows,
                num_true,
                &mut block_inputs_gradient,
            )
        });

        // This block's share of the sampled rows' gradients: G_sampledᵀ · inputs, Σ_i G.
        let (weights, biases) = timed(Phase::SampledWeightGradientProduct, || {
            let mut weights = Array2::<F>::zeros((num_sampled, dim));
            matrix_product(
                &sampled_gradient.t(),
                &problem.inputs.slice(s![first..first + rows, ..]),
                &mut weights.view_mut(),
            );
            let mut biases = vec![F::zero(); num_sampled];
            for row in sampled_gradient.rows() {
                for (sum, &g) in biases.iter_mut().zip(row) {
                    *sum = *sum + g;
                }
            }
            (weights, biases)
        });
        workspace::recycle(gradient);
        label_rows.recycle();
        (weights, biases)
    };
    let (loss_blocks, true_blocks, input_blocks) = (
        losses.axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK),
        true_logit_gradient.axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK),
        inputs_gradient.axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK),
    );
    let partials: Vec<(Array2<F>, Vec<F>)> = if parallelism::inline() {
        let blocks = loss_blocks.zip(true_blocks).zip(input_blocks);
        blocks.enumerate().map(block_pass).collect()
    } else {
        let blocks = loss_blocks
            .into_par_iter()
            .zip(true_blocks)
            .zip(input_blocks);
        blocks.enumerate().map(block_pass).collect()
    };

    // The blocks' shares, added in block order.
    let (sampled_weight_gradient, sampled_bias_gradient, ids) =
        timed(Phase::BuffersAndCombine, || {
            let mut weight_sum = Array2::<F>::zeros((num_sampled, dim));
            let mut bias_sum = Array1::<F>::zeros(num_sampled);
            for (weights, biases) in &partials {
                weight_sum.zip_mut_with(weights, |sum, &part| *sum = *sum + part);
                bias_sum
                    .iter_mut()
                    .zip(biases)
                    .for_each(|(sum, &part)| *sum = *sum + part);
            }
            let mut ids = gathered.ids.labels;
            ids.extend_from_slice(&gathered.ids.sampled);
            (weight_sum, bias_sum, ids)
        });
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

/// `out[i] += Σ_t gradient[i, t] · label_rows[i * num_true + t]`, the labels added in order.
/// Runs the AVX2 build where the processor has it.
fn add_label_rows<F: Real>(
    gradient: &Array2<F>,
    label_rows: &Array2<F>,
    num_true: usize,
    out: &mut ArrayViewMut2<F>,
) {
    let (width, dim) = (gradient.ncols(), out.ncols());
    if dim == 0 {
        return;
    }
    let gradient = gradient
        .as_slice()
        .expect("the logit gradient is contiguous");
    let rows = label_rows.as_slice().expect("label rows are contiguous");
    let out = out
        .as_slice_mut()
        .expect("blocks of the inputs gradient are contiguous");
    #[cfg(target_arch = "x86_64")]
    if InstructionSet::detect().has_avx2_fma() {
        // SAFETY: an `InstructionSet` with AVX2 and FMA exists only where the processor has them.
        unsafe { add_label_rows_avx2(gradient, rows, num_true, width, dim, out) };
        return;
    }
    add_label_row_slices(gradient, rows, num_true, width, dim, out);
}

avx2_version!(
    add_label_rows_avx2,
    add_label_row_slices,
    <F: Real>,
    (
        gradient: &[F],
        rows: &[F],
        num_true: usize,
        width: usize,
        dim: usize,
        out: &mut [F]
    )
);

#[inline(always)]
fn add_label_row_slices<F: Real>(
    gradient: &[F],
    rows: &[F],
    num_true: usize,
    width: usize,
    dim: usize,
    out: &mut [F],
) {
    for ((out, labels), gradient) in out
        .chunks_exact_mut(dim)
        .zip(rows.chunks_exact(dim * num_true))
        .zip(gradient.chunks_exact(width))
    {
        for (label, &g) in labels.chunks_exact(dim).zip(&gradient[..num_true]) {
            for (sum, &w) in out.iter_mut().zip(label) {
                *sum = *sum + g * w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 build of the label rows' inputs gradient computes the bits of the plain build,
    /// which are those of adding `g · row` label by label.
    #[test]
    fn the_label_row_gradient_kernels_agree_bit_for_bit() {
        let (examples, num_true, dim, width) = (6, 3, 29, 8);
        let value = |k: usize| ((k * 2_654_435_761usize) % 2_001) as f32 / 1000.0 - 1.0;
        let gradient: Vec<f32> = (0..examples * width).map(value).collect();
        let rows: Vec<f32> = (0..examples * num_true * dim)
            .map(|k| value(k + 7))
            .collect();
        let start: Vec<f32> = (0..examples * dim).map(|k| value(k + 1_000)).collect();
        let mut expected = start.clone();
        for i in 0..examples {
            for t in 0..num_true {
                for d in 0..dim {
                    let g = gradient[i * width + t];
                    let slot = &mut expected[i * dim + d];
                    *slot += g * rows[(i * num_true + t) * dim + d];
                }
            }
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut plain = start.clone();
        add_label_row_slices(&gradient, &rows, num_true, width, dim, &mut plain);
        assert_eq!(bits(&plain), bits(&expected));
        if InstructionSet::detect().has_avx2_fma() {
            let mut fast = start.clone();
            // SAFETY: checked above that the processor has AVX2 and FMA.
            unsafe { add_label_rows_avx2(&gradient, &rows, num_true, width, dim, &mut fast) };
            assert_eq!(bits(&fast), bits(&expected));
        }
    }
}
