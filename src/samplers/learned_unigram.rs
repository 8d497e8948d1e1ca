//! Learned unigram sampler (docs/semantics.md §7.7): integer counts start at 1 and grow by one for every
//! true class seen, after each call; draws are proportional to the counts.

use super::{check_range_max, Distribution};
use crate::error::{try_vec, NceError, Result};
use crate::philox::RandomStream;

const MAX_TOTAL: i64 = i32::MAX as i64;

pub struct LearnedUnigram {
    counts: Vec<i32>,
    /// Fenwick tree over `counts`, for prefix sums and inverse-CDF search in O(log n).
    tree: Vec<i64>,
    total: i64,
}

impl LearnedUnigram {
    pub fn new(range_max: i64) -> Result<Self> {
        let range = check_range_max(range_max)?;
        if range_max >= MAX_TOTAL {
            return Err(NceError::invalid(
                "range_max",
                format!(
                    "must be less than 2**31 - 1 for the learned unigram sampler, got {range_max}"
                ),
            ));
        }
        let n = range as usize;
        let mut tree = try_vec::<i64>(n + 1, "range_max", "the learned counts")?;
        tree.resize(n + 1, 0);
        let mut counts = try_vec::<i32>(n, "range_max", "the learned counts")?;
        counts.resize(n, 1);
        for i in 1..=n {
            tree[i] += 1;
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                tree[parent] += tree[i];
            }
        }
        Ok(LearnedUnigram {
            counts,
            tree,
            total: n as i64,
        })
    }

    /// The current counts, one per id.
    pub fn counts(&self) -> &[i32] {
        &self.counts
    }

    fn add_one(&mut self, id: usize) {
        self.counts[id] += 1;
        self.total += 1;
        let mut i = id + 1;
        while i < self.tree.len() {
            self.tree[i] += 1;
            i += i & i.wrapping_neg();
        }
    }

    /// The smallest id whose cumulative count exceeds `position`.
    fn find(&self, mut position: i64) -> usize {
        let n = self.counts.len();
        let mut index = 0usize;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = index + step;
            if next <= n && self.tree[next] <= position {
                index = next;
                position -= self.tree[next];
            }
            step >>= 1;
        }
        index
    }
}

impl Distribution for LearnedUnigram {
    fn range(&self, _num_sampled: usize) -> u64 {
        self.counts.len() as u64
    }

    fn draw(&self, stream: &mut RandomStream) -> i64 {
        let position = stream.uniform_u32(self.total as u32) as i64;
        self.find(position) as i64
    }

    fn probability(&self, id: i64) -> f32 {
        if id < 0 || id as u64 >= self.counts.len() as u64 {
            return 0.0;
        }
        self.counts[id as usize] as f32 / self.total as f32
    }

    fn ids_with_positive_probability(&self, _num_sampled: usize) -> u64 {
        self.counts.len() as u64
    }

    fn observe(&mut self, true_classes: &mut dyn Iterator<Item = i64>) {
        let room = (MAX_TOTAL - self.total).max(0) as usize;
        for id in true_classes.take(room) {
            // The sampler checked every true class against the range before drawing.
            if let Ok(id) = usize::try_from(id) {
                if id < self.counts.len() {
                    self.add_one(id);
                }
            }
        }
    }
}
