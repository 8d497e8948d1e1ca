//! The two sampled losses over the sampled logits, per example (docs/semantics.md §3, §4).

pub mod forward_backward;
pub mod nce;
pub mod sampled_softmax;

use ndarray::{Array1, ArrayViewMut1, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::element_types::{ClassId, Real};
use crate::error::Result;
use crate::parallelism;
use crate::sampled_logits::{SampledLossInputs, ROWS_PER_BLOCK};
use crate::simd::{compiled_for, InstructionSet};
use crate::workspace;

/// Which loss to put on the logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampledLoss {
    /// Sigmoid cross-entropy summed over the columns (`nce_loss`).
    Nce,
    /// Softmax cross-entropy over each row (`sampled_softmax_loss`).
    SampledSoftmax,
}

impl SampledLoss {
    /// The loss of one row of logits whose first `num_true` columns have target `1/num_true`;
    /// with `gradient`, the row is then overwritten with its gradient times `upstream`.
    /// `scratch` is a row-sized buffer.
    #[inline(always)]
    pub fn row_loss<F: Real>(
        self,
        logits: &mut [F],
        num_true: usize,
        upstream: F,
        gradient: bool,
        scratch: &mut [F],
    ) -> F {
        match self {
            SampledLoss::Nce => nce::row_loss(logits, num_true, upstream, gradient, scratch),
            SampledLoss::SampledSoftmax => {
                sampled_softmax::row_loss(logits, num_true, upstream, gradient, scratch)
            }
        }
    }
}

/// Per-example loss `[batch]`, block by block: logits of a block of rows, then their losses.
pub fn sampled_loss<F: Real, L: ClassId>(
    inputs: &SampledLossInputs<F, L>,
    loss: SampledLoss,
) -> Result<Array1<F>> {
    let gathered = inputs.gather()?;
    let width = inputs.num_true() + inputs.num_sampled();
    let mut losses = Array1::<F>::zeros(inputs.batch());
    let block_losses = |(task, mut block_losses): (usize, ArrayViewMut1<F>)| {
        let first = task * ROWS_PER_BLOCK;
        let rows = block_losses.len();
        let label_rows = inputs.label_rows(&gathered, first, rows);
        let mut logits = workspace::matrix::<F>(rows, width);
        inputs.block_logits(&gathered, first, &label_rows, &mut logits.view_mut());
        let losses = block_losses.as_slice_mut().expect("losses are contiguous");
        block_row_losses(
            &mut logits.view_mut(),
            losses,
            first,
            inputs.num_true(),
            loss,
            None,
        );
        workspace::recycle(logits);
        label_rows.recycle();
    };
    let blocks = losses.axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK);
    if parallelism::inline() {
        blocks.enumerate().for_each(block_losses);
    } else {
        blocks.into_par_iter().enumerate().for_each(block_losses);
    }
    Ok(losses)
}

/// Each row's loss of a block of logits (rows `first..` of the batch); with `upstream`, each
/// row is overwritten with its gradient, weighted by `upstream(row)`. Runs the AVX-512 build
/// of the kernel where the processor has it, else the AVX2 + FMA build (same bits).
pub fn block_row_losses<F: Real>(
    logits: &mut ArrayViewMut2<F>,
    losses: &mut [F],
    first: usize,
    num_true: usize,
    loss: SampledLoss,
    upstream: Option<&(dyn Fn(usize) -> F + Sync)>,
) {
    let width = logits.ncols();
    let rows = logits.as_slice_mut().expect("logit blocks are contiguous");
    #[cfg(target_arch = "x86_64")]
    {
        let set = InstructionSet::detect();
        if set.has_avx512() {
            // SAFETY: an `InstructionSet` with AVX-512 exists only where the processor has it.
            unsafe { row_block_avx512(rows, width, losses, first, num_true, loss, upstream) };
            return;
        }
        if set.has_avx2_fma() {
            // SAFETY: an `InstructionSet` with AVX2 and FMA exists only where the processor
            // has them.
            unsafe { row_block_avx2(rows, width, losses, first, num_true, loss, upstream) };
            return;
        }
    }
    row_block(rows, width, losses, first, num_true, loss, upstream);
}

compiled_for!(
    row_block,
    [F: Real],
    (
        rows: &mut [F],
        width: usize,
        losses: &mut [F],
        first: usize,
        num_true: usize,
        loss: SampledLoss,
        upstream: Option<&(dyn Fn(usize) -> F + Sync)>
    ),
    avx2 => row_block_avx2,
    avx512 => row_block_avx512,
);

/// The rows of one task: `rows` holds `losses.len()` rows of `width` logits.
#[inline(always)]
fn row_block<F: Real>(
    rows: &mut [F],
    width: usize,
    losses: &mut [F],
    first: usize,
    num_true: usize,
    loss: SampledLoss,
    upstream: Option<&(dyn Fn(usize) -> F + Sync)>,
) {
    let mut scratch = vec![F::zero(); width];
    for (offset, (value, row)) in losses
        .iter_mut()
        .zip(rows.chunks_exact_mut(width))
        .enumerate()
    {
        let weight = upstream.map(|g| g(first + offset));
        *value = loss.row_loss(
            row,
            num_true,
            weight.unwrap_or_else(F::one),
            weight.is_some(),
            &mut scratch,
        );
    }
}

/// A sum in eight interleaved lanes (vectorisable, and the same order everywhere).
#[inline(always)]
pub fn sum_in_lanes<F: Real>(values: &[F]) -> F {
    let mut lanes = [F::zero(); 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &value) in lanes.iter_mut().zip(chunk) {
            *lane = *lane + value;
        }
    }
    let mut total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for &value in chunks.remainder() {
        total = total + value;
    }
    total
}

/// The target of each true column.
fn true_target<F: Real>(num_true: usize) -> F {
    F::one() / F::from_f64(num_true as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 and AVX-512 builds compute the very bits of the plain build (no contraction into
    /// FMA).
    #[test]
    fn the_avx2_and_avx512_row_kernels_compute_the_same_bits_as_the_plain_one() {
        if !InstructionSet::detect().has_avx2_fma() {
            return;
        }
        let (rows, width) = (37, 70);
        let logits: Vec<f32> = (0..rows * width)
            .map(|k| ((k * 2_654_435_761usize) % 20_001) as f32 / 1000.0 - 10.0)
            .collect();
        let upstream = |row: usize| 0.5 + row as f32 / 10.0;
        for loss in [SampledLoss::Nce, SampledLoss::SampledSoftmax] {
            for num_true in [1, 3] {
                for weighted in [false, true] {
                    let weight: Option<&(dyn Fn(usize) -> f32 + Sync)> =
                        if weighted { Some(&upstream) } else { None };
                    let (mut plain, mut plain_losses) = (logits.clone(), vec![0.0f32; rows]);
                    row_block(
                        &mut plain,
                        width,
                        &mut plain_losses,
                        4,
                        num_true,
                        loss,
                        weight,
                    );
                    let (mut fast, mut fast_losses) = (logits.clone(), vec![0.0f32; rows]);
                    // SAFETY: checked above that the processor has AVX2 and FMA.
                    unsafe {
                        row_block_avx2(
                            &mut fast,
                            width,
                            &mut fast_losses,
                            4,
                            num_true,
                            loss,
                            weight,
                        )
                    };
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&plain), bits(&fast));
                    assert_eq!(bits(&plain_losses), bits(&fast_losses));
                    if InstructionSet::detect().has_avx512() {
                        let (mut wide, mut wide_losses) = (logits.clone(), vec![0.0f32; rows]);
                        // SAFETY: checked just above that the processor has AVX-512.
                        unsafe {
                            row_block_avx512(
                                &mut wide,
                                width,
                                &mut wide_losses,
                                4,
                                num_true,
                                loss,
                                weight,
                            )
                        };
                        assert_eq!(bits(&plain), bits(&wide));
                        assert_eq!(bits(&plain_losses), bits(&wide_losses));
                    }
                }
            }
        }
    }
}
