//! The vocabulary-file parser on arbitrary bytes: it returns counts or an error naming the
//! line, never panics; the counts it returns are finite and non-negative and, if any is
//! positive, make a fixed unigram sampler that samples.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ndarray::Array2;
use rustnce::samplers::{
    parse_vocab, CandidateSampler, FixedUnigramConfig, VocabError, MAX_VOCAB_LINE_BYTES,
};
use rustnce::{NceError, Seed};

fuzz_target!(|data: &[u8]| {
    match parse_vocab(data, "fuzz.csv") {
        Ok(counts) => {
            assert!(counts.iter().all(|c| c.is_finite() && *c >= 0.0));
            let lines = data.split(|&b| b == b'\n').filter(|l| !l.is_empty() && *l != b"\r");
            assert_eq!(counts.len(), lines.count());
            let range_max = counts.len() as i64;
            let positive = counts.iter().filter(|&&c| c > 0.0).count();
            match CandidateSampler::fixed_unigram(
                FixedUnigramConfig::from_counts(range_max, counts.clone()),
                Seed::Attributes(1, 2),
            ) {
                Ok(mut sampler) => {
                    assert!(positive > 0);
                    let none = Array2::<i64>::zeros((0, 1));
                    let out = sampler.sample(none.view(), 1, 8, false).unwrap();
                    assert!(out
                        .sampled_candidates
                        .iter()
                        .all(|&id| id >= 0 && id < range_max));
                    // Unique sampling is refused at once when too few ids can be drawn (a
                    // positive count negligible next to the total cannot be).
                    match sampler.sample(none.view(), 1, positive.min(4), true) {
                        Ok(out) => assert_eq!(out.sampled_candidates.len(), positive.min(4)),
                        Err(error) => assert!(error.to_string().contains("non-zero"), "{error}"),
                    }
                }
                Err(error) => assert!(
                    positive == 0 || range_max == 0 || error.to_string().contains("float32"),
                    "{error}"
                ),
            }
        }
        Err(VocabError::Invalid(NceError::InvalidArgument { argument, message })) => {
            assert_eq!(argument, "vocab_file");
            assert!(message.starts_with("fuzz.csv, line "), "{message}");
        }
        Err(VocabError::Invalid(other)) => panic!("unexpected error {other}"),
        Err(VocabError::Io(error)) => panic!("reading a slice failed: {error}"),
    }
    let _ = MAX_VOCAB_LINE_BYTES;
});
