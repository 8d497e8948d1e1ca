//! All-candidate sampler (docs/semantics.md §7.4): returns `[0, num_sampled)` with expected counts of 1.

use super::Distribution;
use crate::philox::RandomStream;

pub struct AllCandidates;

impl Distribution for AllCandidates {
    fn range(&self, num_sampled: usize) -> u64 {
        num_sampled as u64
    }

    /// Never called (see `returns_all_candidates`); returns the first id rather than panicking.
    fn draw(&self, _stream: &mut RandomStream) -> i64 {
        0
    }

    fn probability(&self, _id: i64) -> f32 {
        1.0
    }

    fn ids_with_positive_probability(&self, num_sampled: usize) -> u64 {
        num_sampled as u64
    }

    fn returns_all_candidates(&self) -> bool {
        true
    }

    fn expected_count(&self, _id: i64, _num_sampled: usize, _num_tries: u64) -> f32 {
        1.0
    }
}
