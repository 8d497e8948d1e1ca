//! Elementwise loss kernels compiled a second time for AVX2 + FMA, used when the processor has
//! them (checked at run time, so the library still runs on any x86-64). Rust never contracts
//! `a * b + c` into a fused multiply-add by itself, so both versions compute the same bits.

/// Whether the AVX2 + FMA versions can run here.
#[inline]
pub fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `$name_avx2`, the `#[inline(always)]` function `$name` compiled for AVX2 + FMA.
macro_rules! avx2_version {
    ($avx2:ident, $name:ident, <$($generic:ident: $bound:path),*>, ($($arg:ident: $type:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2<$($generic: $bound),*>($($arg: $type),*) {
            $name($($arg),*)
        }
    };
}
pub(crate) use avx2_version;
