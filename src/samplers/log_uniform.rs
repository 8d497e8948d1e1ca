//! Log-uniform (Zipfian) sampler (docs/semantics.md §7.5), TensorFlow's default for both losses:
//! `p(v) = ln((v+2)/(v+1)) / ln(range+1)`, drawn by inverting the continuous CDF.

use super::{check_range_max, Distribution};
use crate::error::Result;
use crate::philox::RandomStream;

pub struct LogUniform {
    range: u64,
    log_range: f64,
}

impl LogUniform {
    pub fn new(range_max: i64) -> Result<Self> {
        let range = check_range_max(range_max)?;
        Ok(LogUniform {
            range,
            log_range: (range as f64).ln_1p(),
        })
    }
}

impl Distribution for LogUniform {
    fn range(&self, _num_sampled: usize) -> u64 {
        self.range
    }

    fn draw(&self, stream: &mut RandomStream) -> i64 {
        let value = (stream.next_f64() * self.log_range).exp() as i64 - 1;
        // The modulo only guards against rounding at the top of the range.
        value.rem_euclid(self.range as i64)
    }

    fn probability(&self, id: i64) -> f32 {
        if id < 0 || id as u64 >= self.range {
            return 0.0;
        }
        let v = id as f64;
        (((v + 2.0) / (v + 1.0)).ln() / self.log_range) as f32
    }

    fn ids_with_positive_probability(&self, _num_sampled: usize) -> u64 {
        self.range
    }
}
