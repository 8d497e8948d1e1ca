//! The one place rustnce picks an instruction set at run time.
//!
//! An `InstructionSet` value exists only for a set the processor has: its field is private and
//! values are made only by `detect` and `supported`. Code that holds one may therefore run the
//! `#[target_feature]` functions of that set; the dispatchers (`compiled_for!` here, and the
//! skip-gram step's kernels) match on it and need no other check. Kernels are compiled once
//! per set; Rust never contracts `a * b + c` into a fused multiply-add by itself, so a kernel
//! computes the same bits whichever set runs it unless it asks for FMA explicitly.

use crate::element_types::Real;

/// An instruction set this processor supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstructionSet(Kind);

/// The sets kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Generic,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl InstructionSet {
    /// The widest set the processor supports.
    pub fn detect() -> InstructionSet {
        *InstructionSet::supported()
            .last()
            .expect("the generic set is always supported")
    }

    /// Every set the processor supports, narrowest (the generic code) first.
    pub fn supported() -> Vec<InstructionSet> {
        #[allow(unused_mut)]
        let mut sets = vec![InstructionSet(Kind::Generic)];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                sets.push(InstructionSet(Kind::Avx2Fma));
                if has!("avx512f") {
                    sets.push(InstructionSet(Kind::Avx512));
                }
            }
        }
        sets
    }

    /// The plain code, which runs anywhere.
    pub fn generic() -> InstructionSet {
        InstructionSet(Kind::Generic)
    }

    /// Whether AVX2 and FMA instructions may run (AVX-512 processors have them too).
    pub fn has_avx2_fma(self) -> bool {
        self.0 != Kind::Generic
    }

    /// Whether AVX-512 (F, VL) instructions may run.
    pub fn has_avx512(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self.0 == Kind::Avx512
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    pub(crate) fn kind(self) -> Kind {
        self.0
    }
}

/// Defines, for each `set => name` pair, `name`: the `#[inline(always)]` function `$base`
/// compiled for that instruction set, `avx2` (AVX2 + FMA) or `avx512` (AVX-512 F and VL, with
/// AVX2 and FMA). Call `name` only under an `InstructionSet` that has the set (`has_avx2_fma()`,
/// `has_avx512()`).
macro_rules! compiled_for {
    ($base:ident, $generics:tt, $params:tt, $($set:ident => $version:ident),+ $(,)?) => {
        $( $crate::simd::compiled_for!(@set $set, $version, $base, $generics, $params); )+
    };
    (@set avx2, $($rest:tt)*) => {
        $crate::simd::compiled_for!(@features "avx2,fma", $($rest)*);
    };
    (@set avx512, $($rest:tt)*) => {
        $crate::simd::compiled_for!(@features "avx512f,avx512vl,avx2,fma", $($rest)*);
    };
    (@features $features:literal, $version:ident, $base:ident,
        [$($generic:ident: $bound:path),*], ($($arg:ident: $type:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $version<$($generic: $bound),*>($($arg: $type),*) {
            $base($($arg),*)
        }
    };
}
pub(crate) use compiled_for;

/// Dot products of `x` with each of `N` rows, each summed in eight interleaved lanes in a fixed
/// order (the bits of one product do not depend on `N`, the instruction set or the threads).
/// Several rows at once keep several independent chains of additions in flight.
#[inline(always)]
pub fn dots_in_lanes<F: Real, const N: usize>(x: &[F], rows: [&[F]; N]) -> [F; N] {
    let mut lanes = [[F::zero(); 8]; N];
    let chunks = x.len() / 8;
    for chunk in 0..chunks {
        let x = &x[chunk * 8..chunk * 8 + 8];
        for (lanes, row) in lanes.iter_mut().zip(&rows) {
            let row = &row[chunk * 8..chunk * 8 + 8];
            for lane in 0..8 {
                lanes[lane] = lanes[lane] + x[lane] * row[lane];
            }
        }
    }
    let mut totals = [F::zero(); N];
    for ((total, lanes), row) in totals.iter_mut().zip(&lanes).zip(&rows) {
        let mut sum = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
            + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
        for (&a, &b) in x[chunks * 8..].iter().zip(&row[chunks * 8..]) {
            sum = sum + a * b;
        }
        *total = sum;
    }
    totals
}

/// `dots_in_lanes` for `f32` with each row's eight lanes in one AVX register: the same
/// operations in the same order, so the same bits (LLVM vectorises the generic version across
/// the rows instead, with shuffles and spills). Every row must be at least as long as `x`.
///
/// # Safety
/// The processor must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dots_in_lanes_f32_avx2<const N: usize>(x: &[f32], rows: [&[f32]; N]) -> [f32; N] {
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };
    for row in &rows {
        assert!(row.len() >= x.len(), "a row shorter than x");
    }
    let chunks = x.len() / 8;
    let mut lanes: [__m256; N] = [_mm256_setzero_ps(); N];
    for chunk in 0..chunks {
        // SAFETY: `chunk * 8 + 8 <= x.len() <= row.len()`: every load is in bounds.
        unsafe {
            let xv = _mm256_loadu_ps(x.as_ptr().add(chunk * 8));
            for (lane, row) in lanes.iter_mut().zip(&rows) {
                let rv = _mm256_loadu_ps(row.as_ptr().add(chunk * 8));
                *lane = _mm256_add_ps(*lane, _mm256_mul_ps(xv, rv));
            }
        }
    }
    let mut totals = [0.0f32; N];
    for ((total, lane), row) in totals.iter_mut().zip(&lanes).zip(&rows) {
        let mut l = [0.0f32; 8];
        // SAFETY: `l` holds eight floats.
        unsafe { _mm256_storeu_ps(l.as_mut_ptr(), *lane) };
        let mut sum = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
        for (&a, &b) in x[chunks * 8..].iter().zip(&row[chunks * 8..]) {
            sum += a * b;
        }
        *total = sum;
    }
    totals
}

/// Hints the processor to start loading the first element of a row.
#[inline(always)]
pub fn prefetch_first<F>(row: ndarray::ArrayView1<'_, F>) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            row.as_ptr() as *const i8
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Hints the processor to start loading every cache line of a contiguous row.
#[inline(always)]
pub fn prefetch_slice<F>(row: &[F]) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = row.as_ptr() as *const i8;
        for offset in (0..std::mem::size_of_val(row)).step_by(64) {
            // SAFETY: prefetching is a hint that never faults; the address is inside the row.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    start.wrapping_add(offset),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// `out[j] = 0 + factor · values[j]`, the operations of the plain loop (so the same bits),
/// with every whole 64-byte line of `out` written past the caches (non-temporal stores): for
/// large outputs that are read again only after the call, which would otherwise first be read
/// into the cache to be overwritten and then push out data the call still needs. Call
/// [`store_fence`] before another thread reads what was written.
pub fn write_scaled_streaming<F: Real>(factor: F, values: &[F], out: &mut [F]) {
    assert_eq!(values.len(), out.len(), "one value per output");
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_load_si128, _mm_stream_si128};
        const LINE: usize = 64;
        #[repr(align(64))]
        struct Line([u8; LINE]);
        let size = std::mem::size_of::<F>();
        let per_line = LINE / size;
        let address = out.as_ptr() as usize;
        let head = (LINE - address % LINE) % LINE / size;
        if address.is_multiple_of(size) && out.len() >= head + per_line {
            write_scaled(factor, &values[..head], &mut out[..head]);
            let lines = (out.len() - head) / per_line;
            let mut buffer = Line([0; LINE]);
            for line in 0..lines {
                let start = head + line * per_line;
                // SAFETY: the buffer holds `per_line` elements of `F` and is aligned for them.
                let typed = unsafe {
                    std::slice::from_raw_parts_mut(buffer.0.as_mut_ptr().cast::<F>(), per_line)
                };
                write_scaled(factor, &values[start..start + per_line], typed);
                // SAFETY: `out[start..start + per_line]` is one whole 64-byte-aligned line inside
                // `out`, and the buffer is 64-byte aligned; SSE2 is part of x86_64.
                unsafe {
                    let to = out.as_mut_ptr().add(start).cast::<__m128i>();
                    let from = buffer.0.as_ptr().cast::<__m128i>();
                    for part in 0..LINE / 16 {
                        _mm_stream_si128(to.add(part), _mm_load_si128(from.add(part)));
                    }
                }
            }
            let done = head + lines * per_line;
            write_scaled(factor, &values[done..], &mut out[done..]);
            return;
        }
    }
    write_scaled(factor, values, out);
}

/// `out[j] = 0 + factor · values[j]`, through the caches.
#[inline(always)]
pub fn write_scaled<F: Real>(factor: F, values: &[F], out: &mut [F]) {
    for (slot, &value) in out.iter_mut().zip(values) {
        *slot = F::zero() + factor * value;
    }
}

/// Orders the non-temporal stores made so far before the stores that follow (a thread that
/// then signals another makes what it streamed visible to it).
pub fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86_64; a fence has no other effect.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_avx2_f32_dots_compute_the_same_bits_as_the_generic_ones() {
        if !InstructionSet::detect().has_avx2_fma() {
            return;
        }
        for len in [0usize, 5, 8, 37, 128, 300] {
            let x: Vec<f32> = (0..len).map(|k| (k as f32 * 0.37).sin()).collect();
            let rows: Vec<Vec<f32>> = (0..4)
                .map(|r| {
                    (0..len)
                        .map(|k| ((k + 11 * r) as f32 * 0.21).cos())
                        .collect()
                })
                .collect();
            let generic = dots_in_lanes(&x, [&rows[0], &rows[1], &rows[2], &rows[3]]);
            // SAFETY: checked above that the processor has AVX2 and FMA.
            let fast =
                unsafe { dots_in_lanes_f32_avx2(&x, [&rows[0], &rows[1], &rows[2], &rows[3]]) };
            let single = unsafe { dots_in_lanes_f32_avx2(&x, [rows[2].as_slice()]) };
            assert_eq!(
                generic.map(f32::to_bits),
                fast.map(f32::to_bits),
                "length {len}"
            );
            assert_eq!(generic[2].to_bits(), single[0].to_bits(), "length {len}");
        }
    }

    #[test]
    fn dots_in_lanes_agree_with_a_plain_dot_and_do_not_depend_on_grouping() {
        let x: Vec<f64> = (0..37).map(|k| (k as f64 * 0.37).sin()).collect();
        let rows: Vec<Vec<f64>> = (0..3)
            .map(|r| {
                (0..37)
                    .map(|k| ((k + 11 * r) as f64 * 0.21).cos())
                    .collect()
            })
            .collect();
        let three = dots_in_lanes(&x, [&rows[0], &rows[1], &rows[2]]);
        for (r, row) in rows.iter().enumerate() {
            let plain: f64 = x.iter().zip(row).map(|(a, b)| a * b).sum();
            assert!((three[r] - plain).abs() < 1e-12);
            assert_eq!(
                three[r].to_bits(),
                dots_in_lanes(&x, [row.as_slice()])[0].to_bits()
            );
        }
    }

    /// Streaming writes give the plain loop's bits for every length and every alignment of
    /// the output (whole lines, a head and a tail, outputs shorter than a line), and write
    /// nothing outside the output.
    #[test]
    fn streaming_writes_equal_the_plain_loop() {
        fn check<F: Real>(factor: F) {
            for len in [0, 1, 7, 15, 16, 17, 31, 64, 100, 300] {
                for offset in 0..17 {
                    let values: Vec<F> = (0..len)
                        .map(|j| F::from_f64((j as f64 * 0.37).sin() * 3.0 - 0.5))
                        .collect();
                    let mut buffer = vec![F::from_f64(-7.0); offset + len + 3];
                    write_scaled_streaming(factor, &values, &mut buffer[offset..offset + len]);
                    store_fence();
                    for (j, &value) in values.iter().enumerate() {
                        let expected = F::zero() + factor * value;
                        assert_eq!(
                            buffer[offset + j].to_f64().to_bits(),
                            expected.to_f64().to_bits()
                        );
                    }
                    assert!(buffer[..offset].iter().all(|&v| v == F::from_f64(-7.0)));
                    assert!(buffer[offset + len..]
                        .iter()
                        .all(|&v| v == F::from_f64(-7.0)));
                }
            }
        }
        check::<f32>(-1.25e-3);
        check::<f64>(0.7);
        check::<f32>(0.0);
    }
}
