//! Uniform sampler (docs/semantics.md §7.3): every id in `[0, range)` with probability `1/range`.

use super::{check_range_max, Distribution};
use crate::error::Result;
use crate::philox::RandomStream;

pub struct Uniform {
    range: u64,
    probability: f32,
}

impl Uniform {
    pub fn new(range_max: i64) -> Result<Self> {
        let range = check_range_max(range_max)?;
        Ok(Uniform {
            range,
            probability: (1.0 / range as f64) as f32,
        })
    }
}

impl Distribution for Uniform {
    fn range(&self, _num_sampled: usize) -> u64 {
        self.range
    }

    fn draw(&self, stream: &mut RandomStream) -> i64 {
        stream.uniform_u64(self.range) as i64
    }

    fn probability(&self, id: i64) -> f32 {
        if id < 0 || id as u64 >= self.range {
            return 0.0;
        }
        self.probability
    }

    fn ids_with_positive_probability(&self, _num_sampled: usize) -> u64 {
        self.range
    }
}
