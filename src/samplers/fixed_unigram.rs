//! Fixed unigram sampler (spec §7.6): ids drawn with probability proportional to
//! `count^distortion`, from a list of counts or a vocabulary file, optionally one shard of the
//! vocabulary and with reserved ids of weight 0; drawn with Walker's alias method.

use std::path::{Path, PathBuf};

use super::{check_range_max, Distribution};
use crate::error::{NceError, Result};
use crate::philox::RandomStream;

/// Where the counts come from.
#[derive(Clone, Debug, PartialEq)]
pub enum UnigramSource {
    Counts(Vec<f32>),
    VocabFile(PathBuf),
}

/// The sampler's construction arguments, as TensorFlow names them.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedUnigramConfig {
    pub range_max: i64,
    pub source: UnigramSource,
    pub distortion: f32,
    pub num_reserved_ids: i64,
    pub num_shards: i64,
    pub shard: i64,
}

impl FixedUnigramConfig {
    pub fn from_counts(range_max: i64, counts: Vec<f32>) -> Self {
        FixedUnigramConfig {
            range_max,
            source: UnigramSource::Counts(counts),
            distortion: 1.0,
            num_reserved_ids: 0,
            num_shards: 1,
            shard: 0,
        }
    }
}

pub struct FixedUnigram {
    /// The shard-local weight table `count^distortion` (reserved ids 0).
    weights: Vec<f32>,
    total_weight: f32,
    alias: AliasTable,
    positive: u64,
}

impl FixedUnigram {
    pub fn new(config: FixedUnigramConfig) -> Result<Self> {
        check_range_max(config.range_max)?;
        if config.num_shards < 1 {
            return Err(NceError::invalid(
                "num_shards",
                format!("must be at least 1, got {}", config.num_shards),
            ));
        }
        if config.shard < 0 || config.shard >= config.num_shards {
            return Err(NceError::invalid(
                "shard",
                format!(
                    "must be in [0, num_shards = {}), got {}",
                    config.num_shards, config.shard
                ),
            ));
        }
        if config.num_reserved_ids < 0 {
            return Err(NceError::invalid(
                "num_reserved_ids",
                format!("must be non-negative, got {}", config.num_reserved_ids),
            ));
        }
        if !config.distortion.is_finite() {
            return Err(NceError::invalid(
                "distortion",
                format!("must be finite, got {}", config.distortion),
            ));
        }
        let counts = match &config.source {
            UnigramSource::Counts(counts) => {
                for (position, &count) in counts.iter().enumerate() {
                    check_count(count).map_err(|why| {
                        NceError::invalid("unigrams", format!("entry {position} {why}"))
                    })?;
                }
                counts.clone()
            }
            UnigramSource::VocabFile(path) => read_vocab_file(path)?,
        };
        let (weights, total_weight) = weight_table(&config, &counts);
        if weights.len() as u64 != config.range_max as u64 {
            return Err(NceError::invalid(
                "range_max",
                format!(
                    "must equal the size of this shard's weight table ({} reserved and counted ids), got {}",
                    weights.len(),
                    config.range_max
                ),
            ));
        }
        if let Some(position) = weights.iter().position(|w| !w.is_finite()) {
            return Err(NceError::invalid(
                "distortion",
                format!("count^distortion is not finite for id {position} (a zero count with a negative distortion?)"),
            ));
        }
        let positive = weights.iter().filter(|&&w| w > 0.0).count() as u64;
        if positive == 0 || !(total_weight > 0.0 && total_weight.is_finite()) {
            return Err(NceError::invalid(
                "unigrams",
                "no id of this shard has a positive weight, so nothing can be sampled",
            ));
        }
        let alias = AliasTable::new(&weights);
        Ok(FixedUnigram {
            weights,
            total_weight,
            alias,
            positive,
        })
    }

    /// The shard-local weight table.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
}

fn check_count(count: f32) -> std::result::Result<(), String> {
    if count.is_nan() || count < 0.0 || count.is_infinite() {
        return Err(format!("must be a finite non-negative count, got {count}"));
    }
    Ok(())
}

/// Builds the shard-local table exactly as TensorFlow does, including its counter quirk: the
/// first counted id is numbered by the reserved ids kept in *this* shard.
fn weight_table(config: &FixedUnigramConfig, counts: &[f32]) -> (Vec<f32>, f32) {
    let shards = config.num_shards;
    let mut weights: Vec<f32> = (0..config.num_reserved_ids)
        .filter(|id| id % shards == config.shard)
        .map(|_| 0.0)
        .collect();
    let mut total = 0.0f32;
    let first_word_id = weights.len() as i64;
    for (word_id, &count) in (first_word_id..).zip(counts) {
        if word_id % shards == config.shard {
            let weight = count.powf(config.distortion);
            total += weight;
            weights.push(weight);
        }
    }
    (weights, total)
}

/// Reads a vocabulary file: one id a line, the last comma-separated field its count; empty
/// lines are skipped and take no id.
fn read_vocab_file(path: &Path) -> Result<Vec<f32>> {
    let text = std::fs::read_to_string(path).map_err(|error| NceError::Io {
        path: path.display().to_string(),
        message: format!("cannot read vocab_file: {error}"),
        kind: error.kind(),
    })?;
    let mut counts = Vec::new();
    for (index, raw_line) in text.split('\n').enumerate() {
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if line.is_empty() {
            continue;
        }
        let field = line.rsplit(',').next().unwrap_or(line).trim();
        let malformed = |why: String| {
            NceError::invalid(
                "vocab_file",
                format!("{}, line {}: {why}: {line:?}", path.display(), index + 1),
            )
        };
        let count: f32 = field
            .parse()
            .map_err(|_| malformed("the last comma-separated field is not a number".into()))?;
        check_count(count).map_err(|why| malformed(format!("the count {why}")))?;
        counts.push(count);
    }
    Ok(counts)
}

impl Distribution for FixedUnigram {
    fn range(&self, _num_sampled: usize) -> u64 {
        self.weights.len() as u64
    }

    fn draw(&self, stream: &mut RandomStream) -> i64 {
        self.alias.draw(stream)
    }

    fn probability(&self, id: i64) -> f32 {
        if id < 0 || id as u64 >= self.weights.len() as u64 {
            return 0.0;
        }
        self.weights[id as usize] / self.total_weight
    }

    fn ids_with_positive_probability(&self, _num_sampled: usize) -> u64 {
        self.positive
    }
}

/// Walker's alias table, built in TensorFlow's order so that draws match it bit for bit.
struct AliasTable {
    probability: Vec<f32>,
    alias: Vec<u32>,
}

impl AliasTable {
    fn new(weights: &[f32]) -> Self {
        let n = weights.len();
        let sum: f64 = weights.iter().map(|&w| w as f64).sum();
        // TensorFlow multiplies the float weight by the count in float32 before dividing.
        let mut scaled: Vec<f64> = weights
            .iter()
            .map(|&w| (w * n as f32) as f64 / sum)
            .collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut low, mut high): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(&l), Some(&h)) = (low.last(), high.last()) {
            low.pop();
            high.pop();
            alias[l] = h as u32;
            scaled[h] -= 1.0 - scaled[l];
            if scaled[h] < 1.0 {
                low.push(h);
            } else {
                high.push(h);
            }
        }
        let mut probability: Vec<f32> = scaled.iter().map(|&p| p as f32).collect();
        // Left-overs are within rounding of 1: they keep themselves.
        for &i in low.iter().chain(high.iter()) {
            probability[i] = 1.0;
            alias[i] = i as u32;
        }
        AliasTable { probability, alias }
    }

    fn draw(&self, stream: &mut RandomStream) -> i64 {
        let r = stream.next_f32();
        let index = stream.uniform_u32(self.probability.len() as u32) as usize;
        if r < self.probability[index] {
            index as i64
        } else {
            self.alias[index] as i64
        }
    }
}
