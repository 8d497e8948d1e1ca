//! NCE: sigmoid cross-entropy of every sampled logit against its target (1/T for true columns,
//! 0 for sampled ones), summed over the row.

use ndarray::{ArrayView1, ArrayViewMut1};

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

/// `σ(z) = 1 / (1 + e^-z)`, without overflow for either sign.
pub fn sigmoid<F: Real>(z: F) -> F {
    if z >= F::zero() {
        F::one() / (F::one() + (-z).exp())
    } else {
        let e = z.exp();
        e / (F::one() + e)
    }
}

/// The row's loss; the row is then overwritten with `upstream · (σ(z) - y)`, the loss's
/// gradient with respect to each logit.
pub fn row_loss_and_gradient<F: Real>(
    mut row: ArrayViewMut1<F>,
    num_true: usize,
    upstream: F,
) -> F {
    let target = true_target::<F>(num_true);
    let mut loss = F::zero();
    for (c, z) in row.iter_mut().enumerate() {
        let y = if c < num_true { target } else { F::zero() };
        loss = loss + sigmoid_cross_entropy(*z, y);
        *z = upstream * (sigmoid(*z) - y);
    }
    loss
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
