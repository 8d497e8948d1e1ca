//! All-candidate sampler (spec §7.4): returns `[0, num_sampled)` with expected counts of 1.

use super::Distribution;
use crate::philox::RandomStream;

pub struct AllCandidates;

impl Distribution for AllCandidates {
    fn range(&self, num_sampled: usize) -> u64 {
        num_sampled as u64
    }

    fn draw(&self, _stream: &mut RandomStream) -> i64 {
        unreachable!("the all-candidate sampler returns fixed candidates and never draws")
    }

    fn probability(&self, _id: i64) -> f32 {
        1.0
    }

    fn ids_with_positive_probability(&self, num_sampled: usize) -> u64 {
        num_sampled as u64
    }

    fn fixed_candidates(&self, num_sampled: usize) -> Option<Vec<i64>> {
        Some((0..num_sampled as i64).collect())
    }

    fn expected_count(&self, _id: i64, _num_sampled: usize, _num_tries: u64) -> f32 {
        1.0
    }
}
