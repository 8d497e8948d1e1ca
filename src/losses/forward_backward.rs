//! One fused pass for either sampled loss: the logits, the per-example loss, and the gradients
//! with respect to the inputs, the sampled weight rows and biases (docs/semantics.md §6). Nothing larger
//! than the `[batch, num_true + num_sampled]` logits is materialised; the three matrix products
//! run as blocked matrix multiplications.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::{block_row_losses, SampledLoss};
use crate::bfloat16::{as_f32_view, as_f32_view_mut, BFloat16Products, PackedLeft, PackedRight};
use crate::element_types::{ClassId, Real};
use crate::error::{NceError, Result};
use crate::matrix_product::matrix_product;
use crate::parallelism;
use crate::phase_timers::{timed, Phase};
use crate::row_sparse::{check_scatter_targets, MergePlan, Merged, MergedRowsOut};
use crate::sampled_logits::{SampledLossInputs, ROWS_PER_BLOCK};
use crate::sharding::ShardedRowsMut;
use crate::simd::{compiled_for, InstructionSet};
use crate::workspace;

/// One block's rows of the outputs: its losses, true-logit gradients, inputs gradient, and
/// the rows of the kept logit gradient if one is kept.
type BlockViews<'a, F> = (
    usize,
    (
        (
            (ArrayViewMut1<'a, F>, ArrayViewMut2<'a, F>),
            ArrayViewMut2<'a, F>,
        ),
        // The block's rows of the kept logit gradient, of the copy of inputs and of the
        // label rows' weight values.
        (
            (Option<ArrayViewMut2<'a, F>>, Option<ArrayViewMut2<'a, F>>),
            Option<ArrayViewMut2<'a, F>>,
        ),
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
    /// `∂total/∂logit` for every column `[batch, num_true + num_sampled]`, kept only by
    /// [`forward_backward_rescalable`]: with it, [`SampledGradients::rescaled`] weights the
    /// examples differently afterwards without another pass over the weights.
    pub logit_gradient: Option<Array2<F>>,
    /// Whether the pass's products were bfloat16 (a rescaling's product is too).
    pub bfloat16: Option<BFloat16Products>,
    /// TensorFlow's weight values, when the pass formed them
    /// ([`forward_backward_copying_inputs`]).
    pub weight_values: Option<Array2<F>>,
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

    /// Starts loading the row that the weight gradient of position `position` is formed from.
    pub fn prefetch_weight_row(&self, position: usize, inputs: &ArrayView2<F>) {
        let true_rows = self.batch() * self.num_true;
        let row = if position < true_rows {
            inputs.row(position / self.num_true)
        } else {
            self.sampled_weight_gradient.row(position - true_rows)
        };
        if let Some(values) = row.as_slice() {
            crate::simd::prefetch_slice(values);
        }
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

impl<F: Real> SampledGradients<F> {
    /// The gradients with example `i`'s share multiplied by `upstream[i]`: with a pass for
    /// `Σ_i loss_i`, those of `Σ_i upstream[i] · loss_i`. Needs the kept logit gradient
    /// ([`forward_backward_rescalable`]), the inputs the pass read, and its inputs gradient
    /// (`self.inputs_gradient`, passed on its own since a caller may have moved it out); the
    /// weights are not read again. Everything per example scales row by row; only the sampled
    /// rows' gradients, which sum over the batch, are formed anew (`Gᵀ · inputs` on the scaled
    /// logit gradient). The loss is copied unchanged.
    pub fn rescaled(
        &self,
        inputs: &ArrayView2<F>,
        inputs_gradient: &ArrayView2<F>,
        upstream: &ArrayView1<F>,
    ) -> Result<Self> {
        let batch = self.batch();
        let Some(kept) = self.logit_gradient.as_ref() else {
            return Err(NceError::invalid(
                "upstream",
                "rescaling needs the logit gradient, which only a rescalable pass keeps",
            ));
        };
        if upstream.len() != batch {
            return Err(NceError::invalid(
                "upstream",
                format!(
                    "must have one entry per example ({batch}), got {}",
                    upstream.len()
                ),
            ));
        }
        for (name, matrix) in [("inputs", inputs), ("inputs_gradient", inputs_gradient)] {
            if matrix.dim() != (batch, self.dim()) {
                return Err(NceError::invalid(
                    name,
                    format!(
                        "must be the pass's [{batch}, {}] {name}, got {:?}",
                        self.dim(),
                        matrix.dim()
                    ),
                ));
            }
        }
        let (num_true, num_sampled, dim) =
            (self.num_true, self.sampled_bias_gradient.len(), self.dim());
        let mut logit_gradient = workspace::matrix::<F>(batch, kept.ncols());
        let mut scaled_inputs_gradient = workspace::matrix::<F>(batch, dim);
        let block_pass = |(task, (mut logits, mut input_rows)): (
            usize,
            (ArrayViewMut2<F>, ArrayViewMut2<F>),
        )| {
            let first = task * ROWS_PER_BLOCK;
            for (offset, (mut logit_row, mut input_row)) in logits
                .rows_mut()
                .into_iter()
                .zip(input_rows.rows_mut())
                .enumerate()
            {
                let g = upstream[first + offset];
                logit_row.zip_mut_with(&kept.row(first + offset), |out, &value| *out = g * value);
                input_row.zip_mut_with(&inputs_gradient.row(first + offset), |out, &value| {
                    *out = g * value
                });
            }
            let last = first + logits.nrows();
            sampled_rows_share(
                &logits.slice(s![.., num_true..]),
                &inputs.slice(s![first..last, ..]),
                self.bfloat16,
            )
        };
        let blocks = (
            logit_gradient.axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK),
            scaled_inputs_gradient.axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK),
        );
        let partials: Vec<(Array2<F>, Vec<F>)> = if parallelism::inline() {
            blocks.0.zip(blocks.1).enumerate().map(block_pass).collect()
        } else {
            blocks
                .0
                .into_par_iter()
                .zip(blocks.1)
                .enumerate()
                .map(block_pass)
                .collect()
        };
        let (sampled_weight_gradient, sampled_bias_gradient) =
            added_shares(partials, num_sampled, dim);
        Ok(SampledGradients {
            loss: self.loss.clone(),
            ids: self.ids.clone(),
            num_true,
            true_logit_gradient: logit_gradient.slice(s![.., ..num_true]).to_owned(),
            sampled_weight_gradient,
            sampled_bias_gradient,
            inputs_gradient: scaled_inputs_gradient,
            logit_gradient: Some(logit_gradient),
            bfloat16: self.bfloat16,
            weight_values: None,
        })
    }
}

/// Loss and gradients of `loss` in one pass.
pub fn forward_backward<F: Real, L: ClassId>(
    problem: &SampledLossInputs<F, L>,
    loss: SampledLoss,
    upstream: &Upstream<F>,
) -> Result<SampledGradients<F>> {
    Ok(fused_pass(problem, loss, upstream, false, false, false, None)?.0)
}

/// [`forward_backward`] (keeping the logits' gradient if `keep_logit_gradient`, as
/// [`forward_backward_rescalable`] does), which also forms the merged form of the weight and
/// bias gradients ([`SampledGradients::merged`], the same bit for bit): each block writes the
/// rows of its labels that are their id's only occurrence while their inputs are in cache, and
/// the remaining rows are formed after the pass.
pub fn forward_backward_merged<F: Real, L: ClassId>(
    problem: &SampledLossInputs<F, L>,
    loss: SampledLoss,
    upstream: &Upstream<F>,
    keep_logit_gradient: bool,
) -> Result<(SampledGradients<F>, Merged<F>)> {
    let (gradients, merged, _) = fused_pass(
        problem,
        loss,
        upstream,
        keep_logit_gradient,
        true,
        false,
        None,
    )?;
    Ok((
        gradients,
        merged.expect("a merging pass returns the merged form"),
    ))
}

/// [`forward_backward`], keeping the logits' gradient (`[batch, num_true + num_sampled]`) so
/// that [`SampledGradients::rescaled`] can apply a per-example upstream gradient later.
pub fn forward_backward_rescalable<F: Real, L: ClassId>(
    problem: &SampledLossInputs<F, L>,
    loss: SampledLoss,
    upstream: &Upstream<F>,
) -> Result<SampledGradients<F>> {
    Ok(fused_pass(problem, loss, upstream, true, false, false, None)?.0)
}

/// [`forward_backward`] (or [`forward_backward_rescalable`] if `keep_logit_gradient`), which
/// also copies `inputs` (`[batch, dim]`, in a reused buffer) and forms TensorFlow's weight
/// values ([`SampledGradients::tf_weight_values`], the same bits, in
/// `SampledGradients::weight_values`): each block copies its rows and writes its label rows'
/// values while they are in cache, where doing either after the pass would read them all from
/// memory again.
pub fn forward_backward_copying_inputs<F: Real, L: ClassId>(
    problem: &SampledLossInputs<F, L>,
    loss: SampledLoss,
    upstream: &Upstream<F>,
    keep_logit_gradient: bool,
) -> Result<(SampledGradients<F>, Array2<F>)> {
    let (gradients, _, copy) = fused_pass(
        problem,
        loss,
        upstream,
        keep_logit_gradient,
        false,
        true,
        None,
    )?;
    Ok((gradients, copy.expect("a copying pass returns the copy")))
}

/// Where an SGD step adds its update: `weights[id] += scale · ∂total/∂weights[id]`, and the
/// same for the biases (`scale` is minus the learning rate).
pub struct SgdTargets<'t, 'a, F> {
    pub weights: &'t ShardedRowsMut<'a, F>,
    pub biases: &'t ShardedRowsMut<'a, F>,
    pub scale: F,
}

/// The fused SGD step: [`forward_backward`], then `targets += scale · gradient`, the same bits
/// as [`SampledGradients::scatter_add`] after the pass. A label whose id occurs nowhere else
/// in the call (no other label, no sampled id) has its row and bias updated by the block that
/// computes its gradient, while that block's inputs and the row it gathered are in cache; the
/// other rows are updated after the pass. Returns the gradients (loss and inputs gradient
/// included).
///
/// # Safety
/// `targets` must be `problem`'s own weights and biases (the same memory, the same layout), or
/// memory that nothing else reads or writes during the call. The pass reads a label's row
/// only in the block that holds the label, before it writes the row, and no other block reads
/// a row whose id occurs once; the sampled rows are gathered before the blocks run.
pub unsafe fn sgd_step<F: Real, L: ClassId>(
    problem: &SampledLossInputs<F, L>,
    loss: SampledLoss,
    upstream: &Upstream<F>,
    targets: &SgdTargets<'_, '_, F>,
) -> Result<SampledGradients<F>> {
    let (gradients, _, _) =
        fused_pass(problem, loss, upstream, false, false, false, Some(targets))?;
    Ok(gradients)
}

/// What a pass returns: the gradients, and the merged form and the copy of `inputs` if asked.
type PassOutputs<F> = (SampledGradients<F>, Option<Merged<F>>, Option<Array2<F>>);

fn fused_pass<F: Real, L: ClassId>(
    problem: &SampledLossInputs<F, L>,
    loss: SampledLoss,
    upstream: &Upstream<F>,
    keep_logit_gradient: bool,
    merge: bool,
    copy_inputs: bool,
    sgd: Option<&SgdTargets<'_, '_, F>>,
) -> Result<PassOutputs<F>> {
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
    let products = gathered.bfloat16.as_ref().map(|packs| packs.products);
    // The rows the weight and bias gradients touch: labels (row-major), then sampled ids.
    let mut ids = Vec::with_capacity(gathered.ids.labels.len() + num_sampled);
    ids.extend_from_slice(&gathered.ids.labels);
    ids.extend_from_slice(&gathered.ids.sampled);
    let merging = merge.then(|| {
        let plan = MergePlan::new(&ids, gathered.ids.labels.len());
        let rows = MergedRowsOut::<F>::new(plan.len(), dim);
        (plan, rows)
    });
    let updating = match sgd {
        Some(targets) => {
            check_scatter_targets(Some(targets.weights), Some(targets.biases), &ids, dim)?;
            Some((targets, MergePlan::new(&ids, gathered.ids.labels.len())))
        }
        None => None,
    };

    // One pass per fixed block of rows: logits, then in place their losses' gradient, the
    // inputs gradient, and the block's share of the sampled rows' gradients.
    let mut losses = Array1::<F>::zeros(batch);
    let mut true_logit_gradient = Array2::<F>::zeros((batch, num_true));
    let mut inputs_gradient = workspace::matrix::<F>(batch, dim);
    let mut logit_gradient = keep_logit_gradient.then(|| workspace::matrix::<F>(batch, width));
    let mut inputs_copy = copy_inputs.then(|| workspace::matrix::<F>(batch, dim));
    // TensorFlow's weight values `[batch * num_true + num_sampled, dim]`, formed with the copy.
    let mut weight_values =
        copy_inputs.then(|| workspace::matrix::<F>(batch * num_true + num_sampled, dim));
    let block_pass = |(
        task,
        (
            ((mut block_losses, mut block_true_gradient), mut block_inputs_gradient),
            ((kept, copy), values),
        ),
    ): BlockViews<'_, F>| {
        let first = task * ROWS_PER_BLOCK;
        let rows = block_losses.len();
        let label_rows = timed(Phase::GatherLabelRows, || {
            problem.label_rows(&gathered, first, rows)
        });
        // The block's logits, then their gradient, in the kept matrix's rows or in a reused
        // buffer.
        let mut buffer = None;
        let mut gradient = match kept {
            Some(rows) => rows,
            None => buffer
                .insert(timed(Phase::BuffersAndCombine, || {
                    workspace::matrix::<F>(rows, width)
                }))
                .view_mut(),
        };
        problem.block_logits(&gathered, first, &label_rows, &mut gradient);
        if let Some(mut copy) = copy {
            timed(Phase::BuffersAndCombine, || {
                copy.assign(&problem.inputs.slice(s![first..first + rows, ..]))
            });
        }
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
        if let Some(mut values) = values {
            timed(Phase::RowSparseValues, || {
                write_label_values(&gradient, &problem.inputs, first, num_true, &mut values)
            });
        }
        if let Some((plan, merged_rows)) = &merging {
            timed(Phase::RowSparseValues, || {
                write_direct_rows(
                    plan,
                    merged_rows,
                    &gradient,
                    &problem.inputs,
                    first,
                    num_true,
                )
            });
        }
        if let Some((targets, plan)) = &updating {
            timed(Phase::ScatterRows, || {
                // SAFETY: `sgd_step`'s contract; a direct row's id occurs at this label
                // position only, which only this block holds.
                unsafe {
                    update_direct_rows(plan, targets, &gradient, &problem.inputs, first, num_true)
                }
            });
        }
        let sampled_gradient = gradient.slice(s![.., num_true..]);

        // ∂/∂inputs = G_sampled · W_sampled + Σ_t G_t · W[label_t].
        timed(Phase::InputsGradientProduct, || {
            let mut out = block_inputs_gradient.view_mut();
            let packed = gathered.bfloat16.as_ref();
            match (
                packed,
                as_f32_view(&sampled_gradient),
                as_f32_view_mut(&mut out),
            ) {
                (Some(packs), Some(gradient), Some(out)) => {
                    let left = PackedLeft::of_matrix(packs.products, gradient);
                    packs
                        .products
                        .product(&left, &packs.for_inputs_gradient, out)
                }
                _ => matrix_product(&sampled_gradient, &gathered.weights.view(), &mut out),
            }
        });
        timed(Phase::InputsGradientLabelRows, || {
            add_label_rows(
                &gradient.view(),
                &label_rows.rows,
                num_true,
                &mut block_inputs_gradient,
            )
        });

        // This block's share of the sampled rows' gradients: G_sampledᵀ · inputs, Σ_i G.
        let (weights, biases) = timed(Phase::SampledWeightGradientProduct, || {
            sampled_rows_share(
                &sampled_gradient,
                &problem.inputs.slice(s![first..first + rows, ..]),
                products,
            )
        });
        if let Some(buffer) = buffer {
            workspace::recycle(buffer);
        }
        label_rows.recycle();
        (weights, biases)
    };
    let (loss_blocks, true_blocks, input_blocks) = (
        losses.axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK),
        true_logit_gradient.axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK),
        inputs_gradient.axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK),
    );
    let blocks = batch.div_ceil(ROWS_PER_BLOCK);
    // Each block's label rows of the values (a last short block's chunk also spans sampled
    // rows, which it leaves alone: they are written after the pass).
    let value_blocks = optional_blocks(
        weight_values.as_mut(),
        ROWS_PER_BLOCK * num_true.max(1),
        blocks,
    );
    let kept_blocks: Vec<_> = optional_blocks(logit_gradient.as_mut(), ROWS_PER_BLOCK, blocks)
        .into_iter()
        .zip(optional_blocks(
            inputs_copy.as_mut(),
            ROWS_PER_BLOCK,
            blocks,
        ))
        .zip(value_blocks)
        .collect();
    let partials: Vec<(Array2<F>, Vec<F>)> = if parallelism::inline() {
        let blocks = loss_blocks
            .zip(true_blocks)
            .zip(input_blocks)
            .zip(kept_blocks);
        blocks.enumerate().map(block_pass).collect()
    } else {
        let blocks = loss_blocks
            .into_par_iter()
            .zip(true_blocks)
            .zip(input_blocks)
            .zip(kept_blocks);
        blocks.enumerate().map(block_pass).collect()
    };

    // The blocks' shares, added in block order.
    let (sampled_weight_gradient, sampled_bias_gradient) = timed(Phase::BuffersAndCombine, || {
        added_shares(partials, num_sampled, dim)
    });
    let mut gradients = SampledGradients {
        loss: losses,
        ids,
        num_true,
        true_logit_gradient,
        sampled_weight_gradient,
        sampled_bias_gradient,
        inputs_gradient,
        logit_gradient,
        bfloat16: products,
        weight_values: None,
    };
    if let Some(mut values) = weight_values {
        // The sampled rows' values, with `write_weight_row`'s operations.
        let label_rows = batch * num_true;
        for (j, mut row) in values
            .slice_mut(s![label_rows.., ..])
            .rows_mut()
            .into_iter()
            .enumerate()
        {
            let slot = row.as_slice_mut().expect("a fresh row is contiguous");
            gradients.write_weight_row(label_rows + j, &problem.inputs, slot);
        }
        gradients.weight_values = Some(values);
    }
    let merged = merging.map(|(plan, rows)| gradients.finish_merged(plan, rows, &problem.inputs));
    if let Some((targets, plan)) = updating {
        gradients.scatter_groups(
            &problem.inputs,
            Some(targets.weights),
            Some(targets.biases),
            targets.scale,
            plan.groups(),
            Some(plan.later()),
        );
    }
    Ok((gradients, merged, inputs_copy))
}

/// One entry per block: a matrix's chunks of `rows` rows (`None` for blocks past its last
/// chunk), or `blocks` times `None` without a matrix.
fn optional_blocks<F>(
    matrix: Option<&mut Array2<F>>,
    rows: usize,
    blocks: usize,
) -> Vec<Option<ArrayViewMut2<'_, F>>> {
    matrix
        .into_iter()
        .flat_map(|matrix| matrix.axis_chunks_iter_mut(Axis(0), rows).map(Some))
        .chain(std::iter::repeat_with(|| None))
        .take(blocks)
        .collect()
}

/// The weight values of a block's labels, `[rows * num_true, dim]`: `∂total/∂logit ·
/// inputs[i]`, with the operations of [`SampledGradients::write_weight_row`] (the same bits).
fn write_label_values<F: Real>(
    gradient: &ArrayViewMut2<F>,
    inputs: &ArrayView2<F>,
    first: usize,
    num_true: usize,
    values: &mut ArrayViewMut2<F>,
) {
    for (offset, gradient_row) in gradient.rows().into_iter().enumerate() {
        let input = inputs.row(first + offset);
        for t in 0..num_true {
            let mut out = values.row_mut(offset * num_true + t);
            let out = out
                .as_slice_mut()
                .expect("rows of a fresh matrix are contiguous");
            write_label_row(F::one() * gradient_row[t], &input, out, false);
        }
    }
}

/// `out = 0 + factor · input`, the operations of [`SampledGradients::write_weight_row`] (the
/// same bits); with `streaming`, whole cache lines are written past the caches.
fn write_label_row<F: Real>(factor: F, input: &ArrayView1<F>, out: &mut [F], streaming: bool) {
    match input.as_slice() {
        Some(values) if streaming => crate::simd::write_scaled_streaming(factor, values, out),
        Some(values) => crate::simd::write_scaled(factor, values, out),
        None => out
            .iter_mut()
            .zip(input.iter())
            .for_each(|(slot, &value)| *slot = F::zero() + factor * value),
    }
}

/// The merged rows of a block's labels that are their id's only occurrence:
/// `∂total/∂logit · inputs[i]`, with the operations of [`SampledGradients::write_weight_row`].
fn write_direct_rows<F: Real>(
    plan: &MergePlan,
    rows: &MergedRowsOut<F>,
    gradient: &ArrayViewMut2<F>,
    inputs: &ArrayView2<F>,
    first: usize,
    num_true: usize,
) {
    for (offset, gradient_row) in gradient.rows().into_iter().enumerate() {
        let i = first + offset;
        for t in 0..num_true {
            let Some(row) = plan.direct_row(i * num_true + t) else {
                continue;
            };
            // SAFETY: a direct row belongs to one label position, which only this block holds.
            let out = unsafe { rows.row_mut(row) };
            // Streamed past the caches: the rows are read again only after the call.
            write_label_row(F::one() * gradient_row[t], &inputs.row(i), out, true);
        }
    }
    crate::simd::store_fence();
}

/// The SGD update of a block's labels that are their id's only occurrence, with the
/// operations of [`SampledGradients::scatter_groups`] for a group of one position (the same
/// bits): the row `0 + ∂total/∂logit · inputs[i]`, then `weights[id] += scale · row`; the
/// bias `0 + ∂total/∂logit`, then `biases[id] += scale · bias`.
///
/// # Safety
/// No other thread reads or writes the direct rows' ids during the call (see [`sgd_step`]).
unsafe fn update_direct_rows<F: Real>(
    plan: &MergePlan,
    targets: &SgdTargets<'_, '_, F>,
    gradient: &ArrayViewMut2<F>,
    inputs: &ArrayView2<F>,
    first: usize,
    num_true: usize,
) {
    // The block's direct rows first, so that each row's target can be requested a few rows
    // before it is read and written (the targets are random rows of a large matrix).
    const PREFETCH_AHEAD: usize = 4;
    let rows = gradient.nrows();
    let direct: Vec<(usize, usize, usize)> = (0..rows * num_true)
        .filter_map(|local| {
            let group = plan.direct_row(first * num_true + local)?;
            Some((local / num_true, local % num_true, plan.groups().ids[group]))
        })
        .collect();
    let mut row = workspace::vector::<F>(inputs.ncols());
    for (index, &(offset, t, id)) in direct.iter().enumerate() {
        if let Some(&(_, _, ahead)) = direct.get(index + PREFETCH_AHEAD) {
            targets.weights.prefetch_row(ahead);
            targets.biases.prefetch_row(ahead);
        }
        let logit_gradient = gradient[[offset, t]];
        write_label_row(
            F::one() * logit_gradient,
            &inputs.row(first + offset),
            &mut row,
            false,
        );
        targets.weights.add_to_row(id, targets.scale, &row);
        let bias = [F::zero() + logit_gradient];
        targets.biases.add_to_row(id, targets.scale, &bias);
    }
    workspace::recycle_vector(row);
}

/// One block's share of the sampled rows' gradients, from its rows of the sampled logits'
/// gradient `[rows, num_sampled]` and its inputs `[rows, dim]`: `Gᵀ · inputs` and `Σ_i G`.
/// The weights' share is in a reused buffer (`added_shares` returns it).
fn sampled_rows_share<F: Real>(
    sampled_gradient: &ArrayView2<F>,
    inputs: &ArrayView2<F>,
    products: Option<BFloat16Products>,
) -> (Array2<F>, Vec<F>) {
    let (num_sampled, dim) = (sampled_gradient.ncols(), inputs.ncols());
    let mut weights = workspace::matrix::<F>(num_sampled, dim);
    let mut out = weights.view_mut();
    match (
        products,
        as_f32_view(sampled_gradient),
        as_f32_view(inputs),
        as_f32_view_mut(&mut out),
    ) {
        (Some(products), Some(gradient), Some(inputs), Some(out)) => {
            let left = PackedLeft::of_transpose(products, gradient);
            let right = PackedRight::of_matrix(products, inputs);
            products.product(&left, &right, out)
        }
        _ => matrix_product(&sampled_gradient.t(), inputs, &mut out),
    }
    let mut biases = vec![F::zero(); num_sampled];
    let add = |(sum, &g): (&mut F, &F)| *sum = *sum + g;
    for row in sampled_gradient.rows() {
        // Rows are contiguous here; a slice lets the compiler vectorise the sum.
        match row.as_slice() {
            Some(row) => biases.iter_mut().zip(row).for_each(add),
            None => biases.iter_mut().zip(row.iter()).for_each(add),
        }
    }
    (weights, biases)
}

/// The blocks' shares of the sampled rows' gradients, added in block order; their buffers go
/// back to the workspace.
fn added_shares<F: Real>(
    partials: Vec<(Array2<F>, Vec<F>)>,
    num_sampled: usize,
    dim: usize,
) -> (Array2<F>, Array1<F>) {
    let mut weight_sum = Array2::<F>::zeros((num_sampled, dim));
    let mut bias_sum = Array1::<F>::zeros(num_sampled);
    let add = |(sum, &part): (&mut F, &F)| *sum = *sum + part;
    // Split by rows of the sum, each piece adding the blocks' shares in block order: the
    // same additions, in the same order, as one loop over the blocks.
    let rows_pass = |(piece, mut rows): (usize, ArrayViewMut2<F>)| {
        let first = piece * SHARE_ROWS;
        for (weights, _) in &partials {
            let part = weights.slice(s![first..first + rows.nrows(), ..]);
            match (rows.as_slice_mut(), part.as_slice()) {
                (Some(sum), Some(part)) => sum.iter_mut().zip(part).for_each(add),
                _ => rows.zip_mut_with(&part, |sum, part| add((sum, part))),
            }
        }
    };
    let pieces = weight_sum.axis_chunks_iter_mut(Axis(0), SHARE_ROWS);
    if parallelism::inline() || num_sampled * dim < SHARE_ROWS * 256 {
        pieces.enumerate().for_each(rows_pass);
    } else {
        pieces.into_par_iter().enumerate().for_each(rows_pass);
    }
    for (weights, biases) in partials {
        bias_sum.iter_mut().zip(&biases).for_each(add);
        workspace::recycle(weights);
    }
    (weight_sum, bias_sum)
}

/// Rows of the sampled rows' gradient per piece when the blocks' shares are added.
const SHARE_ROWS: usize = 16;

/// `out[i] += Σ_t gradient[i, t] · label_rows[i * num_true + t]`, the labels added in order.
/// Runs the AVX2 build where the processor has it.
fn add_label_rows<F: Real>(
    gradient: &ArrayView2<F>,
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

compiled_for!(
    add_label_row_slices,
    [F: Real],
    (
        gradient: &[F],
        rows: &[F],
        num_true: usize,
        width: usize,
        dim: usize,
        out: &mut [F]
    ),
    avx2 => add_label_rows_avx2,
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
