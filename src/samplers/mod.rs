//! Candidate samplers (docs/semantics.md §7): one shared sampling loop, expected counts and argument checks,
//! with each base distribution in a file of its own.

mod all_candidates;
mod fixed_unigram;
mod learned_unigram;
mod log_uniform;
mod uniform;

pub use all_candidates::AllCandidates;
pub use fixed_unigram::{
    parse_vocab, FixedUnigram, FixedUnigramConfig, UnigramSource, VocabError, MAX_VOCAB_LINE_BYTES,
};
pub use learned_unigram::LearnedUnigram;
pub use log_uniform::LogUniform;
pub use uniform::Uniform;

use std::collections::HashSet;

use ndarray::{Array2, ArrayView2};

use crate::element_types::ClassId;
use crate::error::{try_vec, NceError, Result, MAX_COUNT};
use crate::philox::{Philox4x32, RandomStream, Seed};

/// 32-bit words each call reserves on the persistent generator, per sampled candidate.
const WORDS_RESERVED_PER_CANDIDATE: u64 = 2048;
/// TensorFlow aborts unique sampling once this many draws have been made.
const MAX_UNIQUE_TRIES: u64 = i32::MAX as u64;

/// A base distribution over the ids `[0, range)`.
pub trait Distribution: Send {
    /// Number of ids; the all-candidate sampler's range is the number sampled.
    fn range(&self, num_sampled: usize) -> u64;
    /// One draw from the stream.
    fn draw(&self, stream: &mut RandomStream) -> i64;
    /// `p(id)` in float32, as TensorFlow computes it; 0 outside the range.
    fn probability(&self, id: i64) -> f32;
    /// How many ids can be drawn at all, which bounds unique sampling.
    fn ids_with_positive_probability(&self, num_sampled: usize) -> u64;
    /// Learns from the true classes (row-major) after a call (only the learned unigram
    /// sampler does).
    fn observe(&mut self, _true_classes: &mut dyn Iterator<Item = i64>) {}
    /// Whether the candidates are always `[0, S)`, without drawing (the all-candidate sampler).
    fn returns_all_candidates(&self) -> bool {
        false
    }
    /// Expected count of `id` among `num_sampled` candidates drawn in `num_tries` draws.
    fn expected_count(&self, id: i64, num_sampled: usize, num_tries: u64) -> f32 {
        expected_count(self.probability(id), num_sampled, num_tries)
    }
}

/// Expected count of an id with probability `p` (docs/semantics.md §7.2), in float32 arithmetic throughout.
pub fn expected_count(p: f32, num_sampled: usize, num_tries: u64) -> f32 {
    if num_tries == num_sampled as u64 {
        p * num_sampled as f32
    } else {
        -((num_tries as f32) * (-p).ln_1p()).exp_m1()
    }
}

/// What one sampler call returns.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateSample {
    pub sampled_candidates: Vec<i64>,
    pub true_expected_count: Array2<f32>,
    pub sampled_expected_count: Vec<f32>,
    pub num_tries: u64,
}

/// A sampler kernel: a base distribution plus its persistent random stream.
pub struct CandidateSampler {
    distribution: Box<dyn Distribution>,
    generator: Philox4x32,
}

impl CandidateSampler {
    pub fn new(distribution: Box<dyn Distribution>, seed: Seed) -> Self {
        CandidateSampler {
            distribution,
            generator: seed.generator(),
        }
    }

    pub fn uniform(range_max: i64, seed: Seed) -> Result<Self> {
        Ok(Self::new(Box::new(Uniform::new(range_max)?), seed))
    }

    pub fn log_uniform(range_max: i64, seed: Seed) -> Result<Self> {
        Ok(Self::new(Box::new(LogUniform::new(range_max)?), seed))
    }

    pub fn learned_unigram(range_max: i64, seed: Seed) -> Result<Self> {
        Ok(Self::new(Box::new(LearnedUnigram::new(range_max)?), seed))
    }

    pub fn fixed_unigram(config: FixedUnigramConfig, seed: Seed) -> Result<Self> {
        Ok(Self::new(Box::new(FixedUnigram::new(config)?), seed))
    }

    pub fn all_candidates(seed: Seed) -> Self {
        Self::new(Box::new(AllCandidates), seed)
    }

    pub fn distribution(&self) -> &dyn Distribution {
        self.distribution.as_ref()
    }

    /// One call of the sampler op: checks the arguments in TensorFlow's order, draws
    /// `num_sampled` candidates, computes both expected counts, then lets the distribution
    /// learn from the true classes.
    pub fn sample<L: ClassId>(
        &mut self,
        true_classes: ArrayView2<L>,
        num_true: usize,
        num_sampled: usize,
        unique: bool,
    ) -> Result<CandidateSample> {
        check_count(num_true, "num_true")?;
        check_count(num_sampled, "num_sampled")?;
        if true_classes.ncols() != num_true {
            return Err(NceError::invalid(
                "true_classes",
                format!(
                    "must have num_true = {num_true} columns, got shape [{}, {}]",
                    true_classes.nrows(),
                    true_classes.ncols()
                ),
            ));
        }
        let distribution = self.distribution.as_ref();
        let range = distribution.range(num_sampled);
        if unique && num_sampled as u64 > range {
            return Err(NceError::invalid(
                "num_sampled",
                format!("unique sampling of {num_sampled} candidates needs range_max >= num_sampled, got range {range} (TensorFlow: \"Sampler's range is too small.\")"),
            ));
        }
        for &class in true_classes.iter() {
            let class: i64 = class.into();
            if class < 0 || class as u64 >= range {
                return Err(NceError::out_of_range(
                    "true_classes",
                    format!("class {class} is out of range [0, {range})"),
                ));
            }
        }
        let drawable = distribution.ids_with_positive_probability(num_sampled);
        if unique && (num_sampled as u64) > drawable {
            return Err(NceError::invalid(
                "num_sampled",
                format!("unique sampling of {num_sampled} candidates is impossible: only {drawable} ids have a non-zero probability of being drawn"),
            ));
        }

        // Every output is allocated before the stream moves, so that a refused allocation
        // leaves the sampler as it was.
        let mut sampled_candidates = try_vec::<i64>(num_sampled, "num_sampled", "the candidates")?;
        let mut sampled_expected_count =
            try_vec::<f32>(num_sampled, "num_sampled", "the expected counts")?;
        let mut true_expected_count = try_vec::<f32>(
            true_classes.len(),
            "true_classes",
            "the true expected counts",
        )?;
        let mut seen = HashSet::new();
        if unique && !distribution.returns_all_candidates() {
            seen.try_reserve(num_sampled).map_err(|_| {
                NceError::out_of_memory::<(i64, u64)>(
                    "num_sampled",
                    "the set of distinct candidates",
                    num_sampled,
                )
            })?;
        }

        let num_tries = if distribution.returns_all_candidates() {
            sampled_candidates.extend(0..num_sampled as i64);
            num_sampled as u64
        } else {
            let mut stream = RandomStream::new(self.generator);
            self.generator
                .skip(WORDS_RESERVED_PER_CANDIDATE * num_sampled as u64 / 4);
            draw_candidates(
                distribution,
                &mut stream,
                num_sampled,
                unique.then_some(&mut seen),
                &mut sampled_candidates,
            )?
        };
        drop(seen);
        sampled_expected_count.extend(
            sampled_candidates
                .iter()
                .map(|&id| distribution.expected_count(id, num_sampled, num_tries)),
        );
        true_expected_count.extend(
            true_classes
                .iter()
                .map(|&id| distribution.expected_count(id.into(), num_sampled, num_tries)),
        );
        let true_expected_count =
            Array2::from_shape_vec(true_classes.raw_dim(), true_expected_count)
                .map_err(|error| NceError::invalid("true_classes", error.to_string()))?;
        self.distribution
            .observe(&mut true_classes.iter().map(|&id| id.into()));
        Ok(CandidateSample {
            sampled_candidates,
            true_expected_count,
            sampled_expected_count,
            num_tries,
        })
    }
}

/// Draws `num_sampled` ids into `picked`; with a `seen` set (unique sampling), rejects
/// repeats and keeps first-acceptance order. Returns the number of draws.
fn draw_candidates(
    distribution: &dyn Distribution,
    stream: &mut RandomStream,
    num_sampled: usize,
    seen: Option<&mut HashSet<i64>>,
    picked: &mut Vec<i64>,
) -> Result<u64> {
    let Some(seen) = seen else {
        picked.extend((0..num_sampled).map(|_| distribution.draw(stream)));
        return Ok(num_sampled as u64);
    };
    let mut num_tries = 0u64;
    while picked.len() < num_sampled {
        num_tries += 1;
        if num_tries >= MAX_UNIQUE_TRIES {
            return Err(NceError::invalid(
                "num_sampled",
                format!(
                    "unique sampling found only {} distinct ids in {num_tries} draws (TensorFlow aborts the process here)",
                    picked.len()
                ),
            ));
        }
        let id = distribution.draw(stream);
        if seen.insert(id) {
            picked.push(id);
        }
    }
    Ok(num_tries)
}

/// Checks `num_true` or `num_sampled`: at least 1 and at most `2**31 - 1`, TensorFlow's int32
/// range (anything larger would only exhaust memory).
fn check_count(value: usize, name: &str) -> Result<()> {
    if value < 1 {
        return Err(NceError::invalid(
            name,
            format!("must be at least 1, got {value}"),
        ));
    }
    if value > MAX_COUNT {
        return Err(NceError::invalid(
            name,
            format!("must be at most 2**31 - 1 = {MAX_COUNT}, got {value}"),
        ));
    }
    Ok(())
}

/// Checks the `range_max` every range sampler takes.
fn check_range_max(range_max: i64) -> Result<u64> {
    if range_max < 1 {
        return Err(NceError::invalid(
            "range_max",
            format!("must be at least 1, got {range_max}"),
        ));
    }
    Ok(range_max as u64)
}

#[cfg(test)]
mod tests;
