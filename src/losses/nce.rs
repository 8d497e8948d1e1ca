//! NCE: sigmoid cross-entropy of every sampled logit against its target (1/T for true columns,
//! 0 for sampled ones), summed over the row, and its gradient `σ(z) - y`.

use super::{sum_in_lanes, true_target};
use crate::element_types::Real;

/// `max(z, 0) - z*y + log1p(exp(-|z|))`, selecting on `z >= 0` exactly as TensorFlow does.
#[inline(always)]
pub fn sigmoid_cross_entropy<F: Real>(z: F, y: F) -> F {
    let (relu, negative_abs) = if z >= F::zero() {
        (z, -z)
    } else {
        (F::zero(), z)
    };
    relu - z * y + F::ln_1p_unit(F::exp_nonpositive(negative_abs))
}

/// The row's loss. With `gradient`, the row of logits is then overwritten with
/// `upstream · (σ(z) - y)`, its gradient. `scratch` holds the per-logit losses, summed in a
/// fixed order.
#[inline(always)]
pub fn row_loss<F: Real>(
    logits: &mut [F],
    num_true: usize,
    upstream: F,
    gradient: bool,
    scratch: &mut [F],
) -> F {
    let target = true_target::<F>(num_true);
    let (true_logits, sampled_logits) = logits.split_at_mut(num_true);
    let (true_scratch, sampled_scratch) = scratch.split_at_mut(num_true);
    if 1 < num_true && num_true < PADDED {
        // A few true columns: padded to one vector's width rather than a scalar loop (each
        // column's values are the same either way; one column is cheaper alone).
        let (mut z, mut slot) = ([F::zero(); PADDED], [F::zero(); PADDED]);
        z[..num_true].copy_from_slice(true_logits);
        columns(&mut z, &mut slot, target, upstream, gradient);
        true_logits.copy_from_slice(&z[..num_true]);
        true_scratch.copy_from_slice(&slot[..num_true]);
    } else {
        columns(true_logits, true_scratch, target, upstream, gradient);
    }
    columns(
        sampled_logits,
        sampled_scratch,
        F::zero(),
        upstream,
        gradient,
    );
    sum_in_lanes(scratch)
}

/// The width the true columns are padded to when there are fewer.
const PADDED: usize = 8;

/// Loss terms (into `scratch`) and, with `gradient`, gradients (over `logits`) of columns
/// sharing the target `y`.
#[inline(always)]
fn columns<F: Real>(logits: &mut [F], scratch: &mut [F], y: F, upstream: F, gradient: bool) {
    let one = F::one();
    for (slot, z) in scratch.iter_mut().zip(logits.iter_mut()) {
        let positive = *z >= F::zero();
        let (relu, negative_abs) = if positive { (*z, -*z) } else { (F::zero(), *z) };
        let e = F::exp_nonpositive(negative_abs);
        *slot = relu - *z * y + F::ln_1p_unit(e);
        if gradient {
            // σ(z) from e = exp(-|z|), without overflow for either sign.
            let reciprocal = one / (one + e);
            let sigma = if positive { reciprocal } else { e * reciprocal };
            *z = upstream * (sigma - y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_logit_contributes_nothing() {
        assert_eq!(sigmoid_cross_entropy(-f32::MAX, 0.0), 0.0);
    }

    #[test]
    fn equals_the_textbook_form() {
        for &z in &[-30.0f64, -2.5, -1e-3, 0.0, 0.7, 12.0] {
            for &y in &[0.0, 0.5, 1.0] {
                let sigma = 1.0 / (1.0 + (-z).exp());
                let textbook = -y * sigma.ln() - (1.0 - y) * (1.0 - sigma).ln();
                assert!((sigmoid_cross_entropy(z, y) - textbook).abs() < 1e-9);
            }
        }
    }
}
