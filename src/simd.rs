//! The one place rustnce picks an instruction set at run time.
//!
//! An `InstructionSet` value exists only for a set the processor has: its field is private and
//! values are made only by `detect` and `supported`. Code that holds one may therefore run the
//! `#[target_feature]` functions of that set; the dispatchers (`avx2_version!` here, and the
//! skip-gram step's kernels) match on it and need no other check. Kernels are compiled once
//! per set; Rust never contracts `a * b + c` into a fused multiply-add by itself, so a kernel
//! computes the same bits whichever set runs it unless it asks for FMA explicitly.

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

    pub(crate) fn kind(self) -> Kind {
        self.0
    }
}

/// Defines `$avx2`, the `#[inline(always)]` function `$name` compiled for AVX2 + FMA. Call it
/// only under an `InstructionSet` whose `has_avx2_fma()` is true.
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
