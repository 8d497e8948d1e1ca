//! The two sampled losses over the sampled logits, per example (spec §3, §4).

pub mod forward_backward;
pub mod nce;
pub mod sampled_softmax;

use ndarray::{Array1, ArrayView1, ArrayViewMut1, Axis};
use rayon::prelude::*;

use crate::element_types::{ClassId, Real};
use crate::error::Result;
use crate::sampled_logits::SampledLossInputs;

/// Which loss to put on the logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampledLoss {
    /// Sigmoid cross-entropy summed over the columns (`nce_loss`).
    Nce,
    /// Softmax cross-entropy over each row (`sampled_softmax_loss`).
    SampledSoftmax,
}

impl SampledLoss {
    /// The loss of one row of logits whose first `num_true` columns have target `1/num_true`.
    pub fn row_loss<F: Real>(self, logits: ArrayView1<F>, num_true: usize) -> F {
        match self {
            SampledLoss::Nce => nce::row_loss(logits, num_true),
            SampledLoss::SampledSoftmax => sampled_softmax::row_loss(logits, num_true),
        }
    }
}

impl SampledLoss {
    /// The row's loss; the row of logits is then overwritten with its gradient times `upstream`.
    pub fn row_loss_and_gradient<F: Real>(
        self,
        row: ArrayViewMut1<F>,
        num_true: usize,
        upstream: F,
    ) -> F {
        match self {
            SampledLoss::Nce => nce::row_loss_and_gradient(row, num_true, upstream),
            SampledLoss::SampledSoftmax => {
                sampled_softmax::row_loss_and_gradient(row, num_true, upstream)
            }
        }
    }
}

/// Per-example loss `[batch]`.
pub fn sampled_loss<F: Real, L: ClassId>(
    inputs: &SampledLossInputs<F, L>,
    loss: SampledLoss,
) -> Result<Array1<F>> {
    let logits = inputs.compute_sampled_logits()?;
    let num_true = inputs.num_true();
    let per_row: Vec<F> = logits
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|row| loss.row_loss(row, num_true))
        .collect();
    Ok(Array1::from(per_row))
}

/// The target of each true column.
fn true_target<F: Real>(num_true: usize) -> F {
    F::one() / F::from_f64(num_true as f64)
}
