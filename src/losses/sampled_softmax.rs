//! Sampled softmax: softmax cross-entropy of each row of sampled logits against targets 1/T on
//! the true columns, with the row maximum subtracted first.

use ndarray::{ArrayView1, ArrayViewMut1};

use super::true_target;
use crate::element_types::Real;

/// `max(z)` and `ln sum exp(z - max)` of a row.
pub fn shifted_log_sum_exp<F: Real>(logits: ArrayView1<F>) -> (F, F) {
    let max = logits.fold(F::neg_infinity(), |m, &z| if z > m { z } else { m });
    let sum: F = logits.iter().map(|&z| (z - max).exp()).sum();
    (max, sum.ln())
}

pub fn row_loss<F: Real>(logits: ArrayView1<F>, num_true: usize) -> F {
    let (max, log_sum) = shifted_log_sum_exp(logits);
    let target = true_target::<F>(num_true);
    logits
        .iter()
        .take(num_true)
        .map(|&z| target * (log_sum - (z - max)))
        .sum()
}

/// The row's loss; the row is then overwritten with `upstream · (softmax(z) - y)`, the loss's
/// gradient with respect to each logit.
pub fn row_loss_and_gradient<F: Real>(
    mut row: ArrayViewMut1<F>,
    num_true: usize,
    upstream: F,
) -> F {
    let loss = row_loss(row.view(), num_true);
    let (max, log_sum) = shifted_log_sum_exp(row.view());
    let target = true_target::<F>(num_true);
    for (c, z) in row.iter_mut().enumerate() {
        let y = if c < num_true { target } else { F::zero() };
        *z = upstream * ((*z - max - log_sum).exp() - y);
    }
    loss
}
