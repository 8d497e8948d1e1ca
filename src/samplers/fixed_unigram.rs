//! Fixed unigram sampler (docs/semantics.md §7.6): ids drawn with probability proportional to
//! `count^distortion`, from a list of counts or a vocabulary file, optionally one shard of the
//! vocabulary and with reserved ids of weight 0; drawn with Walker's alias method.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::{check_range_max, Distribution};
use crate::error::{try_vec, NceError, Result, MAX_COUNT};
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
    /// How many ids a draw can return (see `AliasTable::drawable`).
    drawable: u64,
}

impl FixedUnigram {
    pub fn new(config: FixedUnigramConfig) -> Result<Self> {
        check_range_max(config.range_max)?;
        if config.range_max as u64 > MAX_COUNT as u64 {
            return Err(NceError::invalid(
                "range_max",
                format!(
                    "must be at most 2**31 - 1 = {MAX_COUNT} for the fixed unigram sampler, got {}",
                    config.range_max
                ),
            ));
        }
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
        let from_file;
        let (counts, source): (&[f32], &str) = match &config.source {
            UnigramSource::Counts(counts) => {
                for (position, &count) in counts.iter().enumerate() {
                    check_count(count).map_err(|why| {
                        NceError::invalid("unigrams", format!("entry {position} {why}"))
                    })?;
                }
                (counts, "unigrams")
            }
            UnigramSource::VocabFile(path) => {
                from_file = read_vocab_file(path)?;
                (&from_file, "vocab_file")
            }
        };
        // The table's size, known before it is built: a wrong `range_max` or a huge
        // `num_reserved_ids` is refused without allocating anything.
        let reserved = ids_in_shard(0, config.num_reserved_ids as u64, &config);
        let counted = ids_in_shard(reserved, counts.len() as u64, &config);
        let size = reserved + counted;
        if size != config.range_max as u64 {
            return Err(NceError::invalid(
                "range_max",
                format!(
                    "must equal the size of this shard's weight table ({size} = {reserved} reserved and {counted} counted ids; TensorFlow: \"range is {} must be equal to weights size {size}\"), got {}",
                    config.range_max, config.range_max
                ),
            ));
        }
        let (weights, total_weight) = weight_table(&config, counts, size as usize)?;
        if let Some(position) = weights.iter().position(|w| !w.is_finite()) {
            return Err(NceError::invalid(
                "distortion",
                format!("count^distortion is not finite for id {position} (a zero count with a negative distortion?)"),
            ));
        }
        let positive = weights.iter().filter(|&&w| w > 0.0).count() as u64;
        if positive == 0 {
            return Err(NceError::invalid(
                source,
                "no id of this shard has a positive weight, so nothing can be sampled",
            ));
        }
        if !total_weight.is_finite() {
            return Err(NceError::invalid(
                source,
                "the weights count^distortion add up to more than float32 can hold",
            ));
        }
        let alias = AliasTable::new(&weights)?;
        let drawable = alias.drawable()?;
        Ok(FixedUnigram {
            weights,
            total_weight,
            alias,
            drawable,
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

/// How many of the `length` ids numbered from `first` belong to the configured shard.
fn ids_in_shard(first: u64, length: u64, config: &FixedUnigramConfig) -> u64 {
    let (shards, shard) = (config.num_shards as u64, config.shard as u64);
    // Ids below `n` in the shard: those congruent to `shard`, i.e. ceil((n - shard) / shards).
    let below = |n: u64| n.saturating_sub(shard).div_ceil(shards);
    below(first.saturating_add(length)) - below(first)
}

/// Builds the shard-local table exactly as TensorFlow does, including its counter quirk: the
/// first counted id is numbered by the reserved ids kept in *this* shard.
fn weight_table(
    config: &FixedUnigramConfig,
    counts: &[f32],
    size: usize,
) -> Result<(Vec<f32>, f32)> {
    let shards = config.num_shards;
    let mut weights = try_vec::<f32>(size, "range_max", "the weight table")?;
    // The reserved ids of this shard, weight 0 (counted, not enumerated: there may be many
    // reserved ids in other shards).
    weights.resize(
        ids_in_shard(0, config.num_reserved_ids as u64, config) as usize,
        0.0,
    );
    let mut total = 0.0f32;
    let first_word_id = weights.len() as i64;
    for (word_id, &count) in (first_word_id..).zip(counts) {
        if word_id % shards == config.shard {
            let weight = count.powf(config.distortion);
            total += weight;
            weights.push(weight);
        }
    }
    Ok((weights, total))
}

/// The longest vocabulary line accepted: a longer one is malformed (and reading `/dev/zero`
/// must end in an error, not in exhausted memory).
pub const MAX_VOCAB_LINE_BYTES: usize = 1 << 20;

/// Reads a vocabulary file: one id a line, the last comma-separated field its count; empty
/// lines are skipped and take no id. Bytes other than the count need not be UTF-8.
fn read_vocab_file(path: &Path) -> Result<Vec<f32>> {
    let io_error = |error: std::io::Error| NceError::Io {
        path: path.display().to_string(),
        message: format!("cannot read vocab_file: {error}"),
        kind: error.kind(),
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    if file.metadata().map_err(io_error)?.is_dir() {
        return Err(NceError::Io {
            path: path.display().to_string(),
            message: "cannot read vocab_file: it is a directory".into(),
            kind: std::io::ErrorKind::IsADirectory,
        });
    }
    parse_vocab(BufReader::new(file), &path.display().to_string()).map_err(|error| match error {
        VocabError::Io(error) => io_error(error),
        VocabError::Invalid(error) => error,
    })
}

/// Why a vocabulary could not be read.
pub enum VocabError {
    Io(std::io::Error),
    Invalid(NceError),
}

/// Parses vocabulary lines from `reader` (`name` is the file, for messages): the counts of the
/// non-empty lines, each checked to be a finite non-negative number. Errors name the file and
/// the 1-based line.
pub fn parse_vocab(
    mut reader: impl BufRead,
    name: &str,
) -> std::result::Result<Vec<f32>, VocabError> {
    let mut counts: Vec<f32> = Vec::new();
    let mut line = Vec::new();
    for number in 1usize.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_VOCAB_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(VocabError::Io)?;
        if read == 0 {
            break;
        }
        let malformed = |why: &str, line: &[u8]| {
            let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
            VocabError::Invalid(NceError::invalid(
                "vocab_file",
                format!("{name}, line {number}: {why} (TensorFlow: \"Wrong vocabulary format at line\"): {shown:?}"),
            ))
        };
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if line.len() > MAX_VOCAB_LINE_BYTES {
            return Err(malformed(
                &format!("the line is longer than {MAX_VOCAB_LINE_BYTES} bytes"),
                &line,
            ));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            continue;
        }
        let field = line.rsplit(|&byte| byte == b',').next().unwrap_or(&line);
        let count = std::str::from_utf8(field)
            .ok()
            .and_then(|field| field.trim().parse::<f32>().ok())
            .ok_or_else(|| malformed("the last comma-separated field is not a number", &line))?;
        check_count(count).map_err(|why| malformed(&format!("the count {why}"), &line))?;
        if counts.len() >= MAX_COUNT {
            return Err(malformed(
                &format!("more than 2**31 - 1 = {MAX_COUNT} counted lines"),
                &line,
            ));
        }
        counts.try_reserve(1).map_err(|_| {
            VocabError::Invalid(NceError::out_of_memory::<f32>(
                "vocab_file",
                "the counts",
                counts.len() + 1,
            ))
        })?;
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
        self.drawable
    }
}

/// Walker's alias table, built in TensorFlow's order so that draws match it bit for bit.
struct AliasTable {
    probability: Vec<f32>,
    alias: Vec<u32>,
}

impl AliasTable {
    fn new(weights: &[f32]) -> Result<Self> {
        let n = weights.len();
        let sum: f64 = weights.iter().map(|&w| w as f64).sum();
        // TensorFlow multiplies the float weight by the count in float32 before dividing.
        let mut scaled = try_vec::<f64>(n, "range_max", "the alias table")?;
        scaled.extend(weights.iter().map(|&w| (w * n as f32) as f64 / sum));
        let mut alias = try_vec::<u32>(n, "range_max", "the alias table")?;
        alias.extend(0..n as u32);
        let below_one = scaled.iter().filter(|&&p| p < 1.0).count();
        // Each step pops one index from both lists and pushes one back: neither ever grows.
        let mut low = try_vec::<usize>(below_one, "range_max", "the alias table")?;
        let mut high = try_vec::<usize>(n - below_one, "range_max", "the alias table")?;
        for (i, &p) in scaled.iter().enumerate() {
            if p < 1.0 {
                low.push(i);
            } else {
                high.push(i);
            }
        }
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
        let mut probability = try_vec::<f32>(n, "range_max", "the alias table")?;
        probability.extend(scaled.iter().map(|&p| p as f32));
        // Left-overs are within rounding of 1: they keep themselves.
        for &i in low.iter().chain(high.iter()) {
            probability[i] = 1.0;
            alias[i] = i as u32;
        }
        Ok(AliasTable { probability, alias })
    }

    /// How many ids a draw can return. A draw returns `index` when `r < probability[index]`
    /// (possible iff that is positive, since `r` can be 0) and `alias[index]` when
    /// `r >= probability[index]` (possible iff it is at most `1 - 2**-23`, the largest `r`).
    /// A count whose weight is positive but negligible next to the total can be unreachable:
    /// unique sampling must not wait for it.
    fn drawable(&self) -> Result<u64> {
        const LARGEST_R: f32 = 1.0 - 1.0 / (1u32 << 23) as f32;
        let n = self.probability.len();
        let mut reachable = try_vec::<bool>(n, "range_max", "the alias table")?;
        reachable.resize(n, false);
        for (index, (&p, &alias)) in self.probability.iter().zip(&self.alias).enumerate() {
            if p > 0.0 {
                reachable[index] = true;
            }
            if p <= LARGEST_R {
                reachable[alias as usize] = true;
            }
        }
        Ok(reachable.iter().filter(|&&r| r).count() as u64)
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
