//! Sampled softmax: softmax cross-entropy of each row of sampled logits against targets 1/T on
//! the true columns, with the row maximum subtracted first, and its gradient `softmax - y`.

use super::{sum_in_lanes, true_target};
use crate::element_types::Real;

/// The row's loss. With `gradient`, the row of logits is then overwritten with
/// `upstream · (softmax(z) - y)`, its gradient. `scratch` holds `exp(z - max)`.
#[inline(always)]
pub fn row_loss<F: Real>(
    logits: &mut [F],
    num_true: usize,
    upstream: F,
    gradient: bool,
    scratch: &mut [F],
) -> F {
    let max = logits
        .iter()
        .fold(F::neg_infinity(), |m, &z| if z > m { z } else { m });
    for (slot, &z) in scratch.iter_mut().zip(logits.iter()) {
        *slot = F::exp_nonpositive(z - max);
    }
    let sum = sum_in_lanes(scratch);
    let log_sum = sum.ln();
    let target = true_target::<F>(num_true);
    let loss = logits[..num_true].iter().fold(F::zero(), |total, &z| {
        total + target * (log_sum - (z - max))
    });
    // TensorFlow multiplies every zero target by its term: a -inf logit makes that 0 · ∞ = NaN.
    let loss = if logits[num_true..].iter().any(|&z| z == F::neg_infinity()) {
        F::nan()
    } else {
        loss
    };
    if gradient {
        let scale = upstream / sum;
        for (g, &e) in logits.iter_mut().zip(scratch.iter()) {
            *g = scale * e;
        }
        for g in logits[..num_true].iter_mut() {
            *g = *g - upstream * target;
        }
    }
    loss
}
