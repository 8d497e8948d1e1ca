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
///
/// The row runs in chunks of eight columns, the last one padded: a row of five true columns
/// and 64 sampled ones is nine chunks, not eight and five scalar columns. Each column's values
/// are the same whatever chunk it falls in.
#[inline(always)]
pub fn row_loss<F: Real>(
    logits: &mut [F],
    num_true: usize,
    upstream: F,
    gradient: bool,
    scratch: &mut [F],
) -> F {
    let target = true_target::<F>(num_true);
    let scratch = &mut scratch[..logits.len()];
    let tail_column = logits.len() / 8 * 8;
    let mut logit_chunks = logits.chunks_exact_mut(8);
    let mut scratch_chunks = scratch.chunks_exact_mut(8);
    for (chunk, (z, slot)) in (&mut logit_chunks).zip(&mut scratch_chunks).enumerate() {
        columns(z, slot, chunk * 8, num_true, target, upstream, gradient);
    }
    let (z_tail, slot_tail) = (
        logit_chunks.into_remainder(),
        scratch_chunks.into_remainder(),
    );
    if !z_tail.is_empty() {
        let (mut z, mut slot) = ([F::zero(); 8], [F::zero(); 8]);
        z[..z_tail.len()].copy_from_slice(z_tail);
        columns(
            &mut z,
            &mut slot,
            tail_column,
            num_true,
            target,
            upstream,
            gradient,
        );
        z_tail.copy_from_slice(&z[..z_tail.len()]);
        slot_tail.copy_from_slice(&slot[..slot_tail.len()]);
    }
    sum_in_lanes(scratch)
}

/// Loss terms (into `slot`) and, with `gradient`, gradients (over `z`) of eight columns, the
/// first of which is column `first_column` of the row (columns below `num_true` have target
/// `target`, the others 0).
#[inline(always)]
fn columns<F: Real>(
    z: &mut [F],
    slot: &mut [F],
    first_column: usize,
    num_true: usize,
    target: F,
    upstream: F,
    gradient: bool,
) {
    let one = F::one();
    for (lane, (slot, z)) in slot[..8].iter_mut().zip(z[..8].iter_mut()).enumerate() {
        let y = if first_column + lane < num_true {
            target
        } else {
            F::zero()
        };
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
