//! The sampler constructors and one call each, on arbitrary arguments: each builds or returns
//! an error naming an argument, never panics, and what it samples is in range.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ndarray::Array2;
use rustnce::samplers::{CandidateSampler, FixedUnigramConfig, UnigramSource};
use rustnce::Seed;

/// Keeps table sizes small enough for the fuzzer's memory limit; the arithmetic around them
/// (reserved ids across shards, the size check) still sees huge values.
fn small(value: i64) -> i64 {
    if value.unsigned_abs() > 5000 {
        value % 5000
    } else {
        value
    }
}

fuzz_target!(|input: (u8, i64, i64, i64, i64, f32, Vec<f32>, u16, u8, bool, i64)| {
    let (kind, range_max, reserved, shards, shard, distortion, counts, sampled, rows, unique, class) =
        input;
    let seed = Seed::Attributes(range_max, reserved);
    let built = match kind % 5 {
        0 => CandidateSampler::uniform(range_max, seed),
        1 => CandidateSampler::log_uniform(range_max, seed),
        2 => CandidateSampler::learned_unigram(small(range_max), seed),
        3 => CandidateSampler::fixed_unigram(
            FixedUnigramConfig {
                range_max: small(range_max),
                source: UnigramSource::Counts(counts.into_iter().take(2000).collect()),
                distortion,
                num_reserved_ids: if reserved.unsigned_abs() > 5000 && shards.unsigned_abs() < 1000 {
                    small(reserved)
                } else {
                    reserved
                },
                num_shards: shards,
                shard,
            },
            seed,
        ),
        _ => Ok(CandidateSampler::all_candidates(seed)),
    };
    let mut sampler = match built {
        Ok(sampler) => sampler,
        Err(error) => {
            let text = error.to_string();
            assert!(
                [
                    "range_max",
                    "num_shards",
                    "shard",
                    "num_reserved_ids",
                    "distortion",
                    "unigrams"
                ]
                .iter()
                .any(|name| text.starts_with(name)),
                "{text}"
            );
            return;
        }
    };
    let true_classes = Array2::from_elem((rows as usize % 4, 1), class);
    let num_sampled = sampled as usize % 300;
    match sampler.sample(true_classes.view(), 1, num_sampled, unique) {
        Ok(out) => {
            assert_eq!(out.sampled_candidates.len(), num_sampled);
            assert!(out.sampled_candidates.iter().all(|&id| id >= 0));
            assert!(out.sampled_expected_count.iter().all(|q| q.is_finite()));
        }
        Err(error) => {
            let text = error.to_string();
            assert!(
                ["num_sampled", "true_classes"]
                    .iter()
                    .any(|name| text.starts_with(name)),
                "{text}"
            );
        }
    }
});
