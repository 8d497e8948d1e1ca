//! Skip-gram word-vector training (word2vec's model) on rustnce's sampled losses: the corpus
//! (`corpus`: ids in memory, or `text_corpus`: text files read as training goes), the pairs
//! (`pairs`), the fused SGD step on a batch of pairs sharing its negatives (`step`) or word2vec's
//! pair-by-pair updates (`sequential`), and the
//! loop over epochs with the learning-rate schedule (`trainer`). The Python package's
//! `rustnce.word2vec` drives it.

/// Defines `$name(isa, args...)` (for the kernels of `step` and `sequential`), calling
/// `$kernel::<L>` with the lanes of the instruction set `isa`, compiled for it. An
/// `InstructionSet` exists only for a set the processor has, which is what makes these calls
/// sound.
macro_rules! dispatched {
    ($(#[$meta:meta])* $vis:vis $name:ident => $kernel:ident, ($($arg:ident: $type:ty),*) -> $ret:ty) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(isa: InstructionSet, $($arg: $type),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $type),*) -> $ret {
                    $kernel::<lanes::Avx2>($($arg),*)
                }
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $type),*) -> $ret {
                    $kernel::<lanes::Avx512>($($arg),*)
                }
                match isa.kind() {
                    // SAFETY: `isa` exists only where the processor has these instructions.
                    Kind::Avx512 => return unsafe { avx512($($arg),*) },
                    Kind::Avx2Fma => return unsafe { avx2($($arg),*) },
                    Kind::Generic => {}
                }
            }
            let _ = isa;
            // SAFETY: plain arrays run on any processor.
            unsafe { $kernel::<lanes::Scalar>($($arg),*) }
        }
    };
}

mod corpus;
mod lanes;
mod pairs;
mod racing;
mod sequential;
mod step;
mod text_corpus;
mod trainer;

pub use corpus::{Corpus, Sentences};
pub use pairs::{keep_probabilities, PairGenerator};
pub use step::{Embeddings, PairBatch, SkipGramLoss, SkipGramStep, UpdateRule, Workers};
pub use text_corpus::{
    has_pairs, list_files, Compression, CorpusFile, TextCorpus, TextStream, Vocabulary,
};
pub use trainer::{
    pair_stream, NegativeSampler, NegativeSharing, RunReport, SkipGramConfig, SkipGramTrainer,
};
