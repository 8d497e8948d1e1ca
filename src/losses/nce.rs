//! NCE: sigmoid cross-entropy of every sampled logit against its target (1/T for true columns,
//! 0 for sampled ones), summed over the row.

use ndarray::ArrayView1;

use super::true_target;
use crate::element_types::Real;

/// `max(z, 0) - z*y + log1p(exp(-|z|))`, selecting on `z >= 0` exactly as TensorFlow does.
pub fn sigmoid_cross_entropy<F: Real>(z: F, y: F) -> F {
    let (relu, negative_abs) = if z >= F::zero() {
        (z, -z)
    } else {
        (F::zero(), z)
    };
    relu - z * y + negative_abs.exp().ln_1p()
}

pub fn row_loss<F: Real>(logits: ArrayView1<F>, num_true: usize) -> F {
    let target = true_target::<F>(num_true);
    logits
        .iter()
        .enumerate()
        .map(|(c, &z)| sigmoid_cross_entropy(z, if c < num_true { target } else { F::zero() }))
        .sum()
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
