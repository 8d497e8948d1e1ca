//! Skip-gram word-vector training (word2vec's model) on rustnce's sampled losses: the pairs
//! (`pairs`), the fused SGD step on a batch of pairs sharing its negatives (`step`), and the
//! loop over epochs with the learning-rate schedule (`trainer`). The Python package's
//! `rustnce.word2vec` drives it.

mod lanes;
mod pairs;
mod step;
mod trainer;

pub use pairs::{keep_probabilities, Corpus, PairGenerator};
pub use step::{Embeddings, PairBatch, SkipGramLoss, SkipGramStep, UpdateRule};
pub use trainer::{pair_stream, NegativeSampler, RunReport, SkipGramConfig, SkipGramTrainer};
