//! Dense matrix products for the three `batch × num_sampled × dim` products of a sampled loss,
//! by the `gemm` crate (runtime-detected SIMD kernels). Always single-threaded: callers split
//! the work into pieces whose boundaries depend only on the shapes, so that results do not
//! depend on the number of threads.

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::element_types::Real;

/// `c = a · b`, overwriting `c`. Views may have any strides.
pub fn matrix_product<F: Real>(a: &ArrayView2<F>, b: &ArrayView2<F>, c: &mut ArrayViewMut2<F>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(b.nrows(), k, "inner dimensions of a matrix product");
    assert_eq!(c.dim(), (m, n), "shape of a matrix product's output");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(F::zero());
        return;
    }
    let (a_rows, a_columns) = (a.strides()[0], a.strides()[1]);
    let (b_rows, b_columns) = (b.strides()[0], b.strides()[1]);
    let (c_rows, c_columns) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the pointers and strides describe the three views exactly (shapes checked
    // above); `c` is borrowed mutably, so it cannot overlap `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_columns,
            c_rows,
            false,
            a.as_ptr(),
            a_columns,
            a_rows,
            b.as_ptr(),
            b_columns,
            b_rows,
            F::zero(),
            F::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};

    fn naive(a: &ArrayView2<f64>, b: &ArrayView2<f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|k| a[[i, k]] * b[[k, j]]).sum()
        })
    }

    #[test]
    fn equals_the_naive_product_for_strided_and_transposed_views() {
        let big = Array2::from_shape_fn((23, 31), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let a = big.slice(s![1..18;2, 3..12]);
        let b = big.slice(s![4..13, 0..20;3]).t().to_owned();
        let b = b.t();
        let mut c = Array2::from_elem((a.nrows(), b.ncols()), f64::NAN);
        matrix_product(&a, &b, &mut c.view_mut());
        assert_eq!(c, naive(&a, &b));
        let mut ct = Array2::from_elem((b.ncols(), a.nrows()), f64::NAN);
        matrix_product(&b.t(), &a.t(), &mut ct.view_mut());
        assert_eq!(ct, naive(&a, &b).t());
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let a = Array2::<f32>::zeros((3, 0));
        let b = Array2::<f32>::zeros((0, 2));
        let mut c = Array2::from_elem((3, 2), 7.0f32);
        matrix_product(&a.view(), &b.view(), &mut c.view_mut());
        assert!(c.iter().all(|&x| x == 0.0));
    }
}
