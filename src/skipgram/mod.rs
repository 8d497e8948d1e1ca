//! Skip-gram word-vector training (word2vec's model) on rustnce's sampled losses: the corpus
//! (`corpus`: ids in memory, or `text_corpus`: text files read as training goes), the pairs
//! (`pairs`), the fused SGD step on a batch of pairs sharing its negatives (`step`) or word2vec's
//! pair-by-pair updates (`sequential`), and the
//! loop over epochs with the learning-rate schedule (`trainer`). The Python package's
//! `rustnce.word2vec` drives it.

mod corpus;
mod lanes;
mod pairs;
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
