//! Sixteen float32 lanes as one AVX-512 register, two AVX2 registers or a plain array, and the
//! row operations of the skip-gram step written once over them. The compiler did not keep the
//! step's partial sums in registers on its own; these types make it.
//!
//! Every function here is `#[inline(always)]` and meant to be inlined into a kernel compiled
//! with the matching `#[target_feature]` (see `step.rs`), which is what makes the intrinsics
//! fast. They are all `unsafe`: safe code cannot run a set's instructions without an
//! `InstructionSet` (`crate::simd`) proving the processor has them.

// Indexed loops over the small fixed-size accumulator arrays keep them in registers.
#![allow(clippy::needless_range_loop)]

/// Sixteen float32 lanes.
///
/// # Safety
/// Every method, and every function here generic over `Lanes`, executes the instructions of
/// the implementing type's instruction set: callers must ensure the processor supports it (the
/// skip-gram kernels run them only under a detected `crate::simd::InstructionSet`; `Scalar`
/// runs anywhere). Implementations must only use instructions of their set.
pub unsafe trait Lanes: Copy {
    /// # Safety
    /// `p` must point to 16 readable floats.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` must point to 16 writable floats.
    unsafe fn store(self, p: *mut f32);
    /// The first `n < 16` floats at `p`, the other lanes 0.
    ///
    /// # Safety
    /// `p` must point to `n` readable floats.
    unsafe fn load_partial(p: *const f32, n: usize) -> Self;
    /// Writes the first `n < 16` lanes to `p`.
    ///
    /// # Safety
    /// `p` must point to `n` writable floats.
    unsafe fn store_partial(self, p: *mut f32, n: usize);
    /// # Safety
    /// The processor supports the lanes' instruction set (as for every method).
    unsafe fn zero() -> Self;
    /// # Safety
    /// As `zero`.
    unsafe fn splat(value: f32) -> Self;
    /// `self * a + b`.
    ///
    /// # Safety
    /// As `zero`.
    unsafe fn mul_add(self, a: Self, b: Self) -> Self;
    /// The sum of the lanes, in a fixed order.
    ///
    /// # Safety
    /// As `zero`.
    unsafe fn sum(self) -> f32;
}

pub const WIDTH: usize = 16;

/// Plain arrays (any processor).
#[derive(Clone, Copy)]
pub struct Scalar([f32; WIDTH]);

// SAFETY: uses only the instructions of its own set (see the trait).

unsafe impl Lanes for Scalar {
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        Scalar(std::ptr::read_unaligned(p as *const [f32; WIDTH]))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        std::ptr::write_unaligned(p as *mut [f32; WIDTH], self.0)
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        let mut v = [0.0; WIDTH];
        std::ptr::copy_nonoverlapping(p, v.as_mut_ptr(), n);
        Scalar(v)
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        std::ptr::copy_nonoverlapping(self.0.as_ptr(), p, n);
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        Scalar([0.0; WIDTH])
    }
    #[inline(always)]
    unsafe fn splat(value: f32) -> Self {
        Scalar([value; WIDTH])
    }
    #[inline(always)]
    unsafe fn mul_add(self, a: Self, b: Self) -> Self {
        let mut out = b.0;
        for ((out, x), y) in out.iter_mut().zip(self.0).zip(a.0) {
            *out += x * y;
        }
        Scalar(out)
    }
    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        let mut v = self.0;
        let mut width = WIDTH / 2;
        while width > 0 {
            for l in 0..width {
                v[l] += v[l + width];
            }
            width /= 2;
        }
        v[0]
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Lanes;
    use std::arch::x86_64::*;

    /// One AVX-512 register.
    #[derive(Clone, Copy)]
    pub struct Avx512(__m512);

    // SAFETY: uses only the instructions of its own set (see the trait).

    unsafe impl Lanes for Avx512 {
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Avx512(_mm512_loadu_ps(p))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            _mm512_storeu_ps(p, self.0)
        }
        #[inline(always)]
        unsafe fn load_partial(p: *const f32, n: usize) -> Self {
            Avx512(_mm512_maskz_loadu_ps(((1u32 << n) - 1) as __mmask16, p))
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f32, n: usize) {
            _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as __mmask16, self.0)
        }
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: only reached inside kernels compiled for AVX-512.
            unsafe { Avx512(_mm512_setzero_ps()) }
        }
        #[inline(always)]
        unsafe fn splat(value: f32) -> Self {
            // SAFETY: as above.
            unsafe { Avx512(_mm512_set1_ps(value)) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, a: Self, b: Self) -> Self {
            // SAFETY: as above.
            unsafe { Avx512(_mm512_fmadd_ps(self.0, a.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn sum(self) -> f32 {
            // The same pairwise order as `Scalar::sum`: lanes l + 8, then l + 4, l + 2, l + 1.
            // SAFETY: only reached inside kernels compiled for AVX-512.
            unsafe {
                let low = _mm512_castps512_ps256(self.0);
                let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self.0)));
                Avx2(low, high).sum_halves()
            }
        }
    }

    /// Two AVX2 registers.
    #[derive(Clone, Copy)]
    pub struct Avx2(__m256, __m256);

    // SAFETY: uses only the instructions of its own set (see the trait).

    unsafe impl Lanes for Avx2 {
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Avx2(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            _mm256_storeu_ps(p, self.0);
            _mm256_storeu_ps(p.add(8), self.1);
        }
        #[inline(always)]
        unsafe fn load_partial(p: *const f32, n: usize) -> Self {
            let (low, high) = masks(n);
            Avx2(
                _mm256_maskload_ps(p, low),
                _mm256_maskload_ps(p.add(8), high),
            )
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f32, n: usize) {
            let (low, high) = masks(n);
            _mm256_maskstore_ps(p, low, self.0);
            _mm256_maskstore_ps(p.add(8), high, self.1);
        }
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: only reached inside kernels compiled for AVX2 + FMA.
            unsafe { Avx2(_mm256_setzero_ps(), _mm256_setzero_ps()) }
        }
        #[inline(always)]
        unsafe fn splat(value: f32) -> Self {
            // SAFETY: as above.
            unsafe { Avx2(_mm256_set1_ps(value), _mm256_set1_ps(value)) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, a: Self, b: Self) -> Self {
            // SAFETY: as above.
            unsafe {
                Avx2(
                    _mm256_fmadd_ps(self.0, a.0, b.0),
                    _mm256_fmadd_ps(self.1, a.1, b.1),
                )
            }
        }
        #[inline(always)]
        unsafe fn sum(self) -> f32 {
            // SAFETY: only reached inside kernels compiled for AVX2 (or AVX-512).
            unsafe { self.sum_halves() }
        }
    }

    impl Avx2 {
        /// Lanes l + 8, then l + 4, l + 2, l + 1 (the order of `Scalar::sum`).
        #[inline(always)]
        pub(super) unsafe fn sum_halves(self) -> f32 {
            let eight = _mm256_add_ps(self.0, self.1);
            let four = _mm_add_ps(
                _mm256_castps256_ps128(eight),
                _mm256_extractf128_ps::<1>(eight),
            );
            let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
            let one = _mm_add_ss(two, _mm_shuffle_ps::<0b01>(two, two));
            _mm_cvtss_f32(one)
        }
    }

    /// Lane masks for the first `n` of 16 lanes, as two AVX2 halves.
    #[inline(always)]
    unsafe fn masks(n: usize) -> (__m256i, __m256i) {
        let lanes_low = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let lanes_high = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
        let limit = _mm256_set1_epi32(n as i32);
        (
            _mm256_cmpgt_epi32(limit, lanes_low),
            _mm256_cmpgt_epi32(limit, lanes_high),
        )
    }
}

/// `x · rows[r]` for `N` rows side by side (independent chains hide the latency).
#[inline(always)]
/// # Safety
/// The processor supports `L`'s instruction set.
pub unsafe fn dot_group<L: Lanes, const N: usize>(x: &[f32], rows: [&[f32]; N]) -> [f32; N] {
    let dim = x.len();
    for row in rows {
        assert_eq!(row.len(), dim);
    }
    let full = dim / WIDTH * WIDTH;
    let mut acc = [L::zero(); N];
    let mut start = 0;
    while start < full {
        // SAFETY: `start + WIDTH <= full <= dim`, the length of `x` and of every row.
        unsafe {
            let xv = L::load(x.as_ptr().add(start));
            for r in 0..N {
                acc[r] = L::load(rows[r].as_ptr().add(start)).mul_add(xv, acc[r]);
            }
        }
        start += WIDTH;
    }
    let tail = dim - full;
    if tail > 0 {
        // SAFETY: `tail` floats remain after `full` in `x` and every row.
        unsafe {
            let xv = L::load_partial(x.as_ptr().add(full), tail);
            for r in 0..N {
                acc[r] = L::load_partial(rows[r].as_ptr().add(full), tail).mul_add(xv, acc[r]);
            }
        }
    }
    let mut out = [0.0f32; N];
    for r in 0..N {
        out[r] = acc[r].sum();
    }
    out
}

/// `out[r] = x · rows[r]` for every row, four at a time.
#[inline(always)]
/// # Safety
/// The processor supports `L`'s instruction set.
pub unsafe fn dots<L: Lanes>(x: &[f32], rows: &[&[f32]], out: &mut [f32]) {
    let mut r = 0;
    while r + 4 <= rows.len() {
        let values = dot_group::<L, 4>(x, [rows[r], rows[r + 1], rows[r + 2], rows[r + 3]]);
        out[r..r + 4].copy_from_slice(&values);
        r += 4;
    }
    match rows.len() - r {
        3 => out[r..].copy_from_slice(&dot_group::<L, 3>(x, [rows[r], rows[r + 1], rows[r + 2]])),
        2 => out[r..].copy_from_slice(&dot_group::<L, 2>(x, [rows[r], rows[r + 1]])),
        1 => out[r] = dot_group::<L, 1>(x, [rows[r]])[0],
        _ => {}
    }
}

/// Column chunks handled side by side: independent sums hide the multiply-add latency.
const CHUNKS_AT_ONCE: usize = 4;

/// Calls `body::<C>(start)` for groups of `C <= 4` full chunks covering `[0, dim / WIDTH *
/// WIDTH)`.
macro_rules! chunk_groups {
    ($dim:expr, |$start:ident, $c:ident| $body:expr) => {{
        let full_chunks = $dim / WIDTH;
        let mut chunk = 0;
        while chunk < full_chunks {
            let left = (full_chunks - chunk).min(CHUNKS_AT_ONCE);
            let $start = chunk * WIDTH;
            match left {
                1 => {
                    const $c: usize = 1;
                    $body
                }
                2 => {
                    const $c: usize = 2;
                    $body
                }
                3 => {
                    const $c: usize = 3;
                    $body
                }
                _ => {
                    const $c: usize = 4;
                    $body
                }
            }
            chunk += left;
        }
    }};
}

/// `g = Σ_r d[r] · rows[r]`, each group of column chunks summed in registers.
#[inline(always)]
/// # Safety
/// The processor supports `L`'s instruction set.
pub unsafe fn combine<L: Lanes>(g: &mut [f32], d: &[f32], rows: &[&[f32]]) {
    let dim = g.len();
    assert_eq!(d.len(), rows.len());
    for row in rows {
        assert_eq!(row.len(), dim);
    }
    chunk_groups!(dim, |start, C| combine_columns::<L, C>(g, d, rows, start));
    let full = dim / WIDTH * WIDTH;
    let tail = dim - full;
    if tail > 0 {
        let mut acc = L::zero();
        // SAFETY: `tail` floats remain after `full` in `g` and every row.
        unsafe {
            for (&coefficient, row) in d.iter().zip(rows) {
                acc = L::load_partial(row.as_ptr().add(full), tail)
                    .mul_add(L::splat(coefficient), acc);
            }
            acc.store_partial(g.as_mut_ptr().add(full), tail);
        }
    }
}

#[inline(always)]
/// # Safety
/// The processor supports `L`'s instruction set.
unsafe fn combine_columns<L: Lanes, const C: usize>(
    g: &mut [f32],
    d: &[f32],
    rows: &[&[f32]],
    start: usize,
) {
    assert!(start + C * WIDTH <= g.len());
    let mut acc = [L::zero(); C];
    // SAFETY: every row has `g.len()` columns (checked by `combine`) and the group ends
    // within them (checked above).
    unsafe {
        for (&coefficient, row) in d.iter().zip(rows) {
            let scale = L::splat(coefficient);
            for c in 0..C {
                acc[c] = L::load(row.as_ptr().add(start + c * WIDTH)).mul_add(scale, acc[c]);
            }
        }
        for c in 0..C {
            acc[c].store(g.as_mut_ptr().add(start + c * WIDTH));
        }
    }
}

/// `y += a x`.
#[inline(always)]
/// # Safety
/// The processor supports `L`'s instruction set.
pub unsafe fn axpy<L: Lanes>(y: &mut [f32], a: f32, x: &[f32]) {
    let dim = y.len();
    assert_eq!(x.len(), dim);
    let full = dim / WIDTH * WIDTH;
    let av = L::splat(a);
    let mut start = 0;
    while start < full {
        // SAFETY: `start + WIDTH <= full <= dim` for both.
        unsafe {
            let yp = y.as_mut_ptr().add(start);
            L::load(x.as_ptr().add(start))
                .mul_add(av, L::load(yp))
                .store(yp);
        }
        start += WIDTH;
    }
    let tail = dim - full;
    if tail > 0 {
        // SAFETY: `tail` floats remain after `full` in both.
        unsafe {
            let yp = y.as_mut_ptr().add(full);
            L::load_partial(x.as_ptr().add(full), tail)
                .mul_add(av, L::load_partial(yp, tail))
                .store_partial(yp, tail);
        }
    }
}

/// `out = Σ_i coefficient(i) · xs(i)`, summed in order of `i`. Every `xs(i)` must have
/// `out.len()` columns.
#[inline(always)]
/// # Safety
/// The processor supports `L`'s instruction set.
pub unsafe fn weighted_sum<'a, L: Lanes>(
    out: &mut [f32],
    count: usize,
    xs: impl Fn(usize) -> &'a [f32],
    coefficient: impl Fn(usize) -> f32,
) {
    let dim = out.len();
    chunk_groups!(dim, |start, C| weighted_columns::<L, C>(
        out,
        count,
        &xs,
        &coefficient,
        start
    ));
    let full = dim / WIDTH * WIDTH;
    let tail = dim - full;
    if tail > 0 {
        let mut acc = L::zero();
        for i in 0..count {
            let x = xs(i);
            assert!(x.len() >= dim);
            // SAFETY: `tail` floats remain after `full` in `x` (checked above).
            let xv = unsafe { L::load_partial(x.as_ptr().add(full), tail) };
            acc = xv.mul_add(L::splat(coefficient(i)), acc);
        }
        // SAFETY: `tail` floats remain after `full` in `out`.
        unsafe { acc.store_partial(out.as_mut_ptr().add(full), tail) };
    }
}

#[inline(always)]
/// # Safety
/// The processor supports `L`'s instruction set.
unsafe fn weighted_columns<'a, L: Lanes, const C: usize>(
    out: &mut [f32],
    count: usize,
    xs: &impl Fn(usize) -> &'a [f32],
    coefficient: &impl Fn(usize) -> f32,
    start: usize,
) {
    let end = start + C * WIDTH;
    assert!(end <= out.len());
    let mut acc = [L::zero(); C];
    for i in 0..count {
        let x = xs(i);
        assert!(x.len() >= end);
        let scale = L::splat(coefficient(i));
        for c in 0..C {
            // SAFETY: `x` has at least `end` columns (checked above).
            let xv = unsafe { L::load(x.as_ptr().add(start + c * WIDTH)) };
            acc[c] = xv.mul_add(scale, acc[c]);
        }
    }
    for c in 0..C {
        // SAFETY: `out` has at least `end` columns (checked above).
        unsafe { acc[c].store(out.as_mut_ptr().add(start + c * WIDTH)) };
    }
}

/// Asks the processor to start loading `row` into the cache (a hint; does nothing elsewhere).
#[inline(always)]
pub fn prefetch(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(row);
        let start = row.as_ptr() as *const i8;
        let mut offset = 0;
        while offset < bytes {
            // SAFETY: a prefetch never faults, and the address lies within `row`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset)) };
            offset += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}
