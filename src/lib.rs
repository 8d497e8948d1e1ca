//! rustnce: TensorFlow's NCE and sampled softmax losses and the candidate samplers behind them,
//! reproduced exactly (see `docs/semantics.md`), as a pure-Rust core. The Python binding
//! lives in `py/`, compiled only with the `python` feature.

pub mod error;
pub mod philox;
pub mod samplers;

pub use error::{NceError, Result};
pub use philox::Seed;
pub mod accidental_hits;
pub mod bfloat16;
pub mod element_types;
pub mod full_evaluation;
pub mod losses;
pub mod sampled_logits;
pub mod sharding;
pub mod simd;
pub mod skipgram;
pub mod spinning_team;

pub mod fast_math;
pub mod matrix_product;
pub mod parallelism;
pub mod phase_timers;
#[cfg(feature = "python")]
mod py;
pub mod row_sparse;
pub mod workspace;
