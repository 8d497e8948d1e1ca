//! The candidate-sampler kernel as a Python class, and the kept samplers of the module-level
//! functions. Calls on one kernel are serialised by a mutex, so a sampler shared between threads
//! keeps a consistent stream and state. A sampling call holds the fork gate (`fork_gate`) for as
//! long as it holds the mutex, so a forked child never inherits the mutex locked.
//!
//! Like TensorFlow's eager kernel cache, the module-level samplers (`uniform_candidate_sampler`
//! and the rest) and the default draw of the sampled losses keep one kernel per set of
//! attributes, so that calls with the same attributes continue one random stream
//! (`SamplerCache`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use numpy::{IntoPyArray, PyArray1, PyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::arguments::{
    as_array, as_bool, as_class_matrix, as_count, as_finite_float, as_id_vector, as_int, as_path,
    as_unigrams, check_memory, seed, shape_tuple, with_class_view, ClassMatrix, MAX_COUNT,
};
use super::errors;
use super::fork_gate::detached;
use crate::element_types::ClassId;
use crate::philox::Seed;
use crate::samplers::{self, CandidateSample, FixedUnigramConfig, UnigramSource};

type SampleTriple<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
);

/// A sampler kernel that a Python object and the cache may share.
#[derive(Clone)]
pub struct SharedKernel(Arc<Mutex<samplers::CandidateSampler>>);

impl SharedKernel {
    fn new(kernel: samplers::CandidateSampler) -> Self {
        SharedKernel(Arc::new(Mutex::new(kernel)))
    }

    fn lock(&self) -> MutexGuard<'_, samplers::CandidateSampler> {
        // A panic while sampling cannot leave the kernel half-updated in a way that matters
        // more than refusing all later calls would, so recover the guard.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One draw, with the interpreter released and the fork gate held.
    pub fn sample<L: ClassId>(
        &self,
        py: Python<'_>,
        true_classes: ndarray::ArrayView2<'_, L>,
        num_true: usize,
        num_sampled: usize,
        unique: bool,
    ) -> PyResult<CandidateSample> {
        Ok(detached(py, || {
            // The kernel's guard is dropped inside the gated work, before the gate.
            let mut kernel = self.lock();
            let out = kernel.sample(true_classes, num_true, num_sampled, unique);
            drop(kernel);
            out
        })?)
    }
}

/// `range_max`: an int in `[1, 2**63 - 1]`.
fn range_max_argument(value: &Bound<'_, PyAny>) -> PyResult<i64> {
    as_int(value, "range_max", Some(1), Some(i64::MAX))
}

#[pyclass(module = "rustnce._rustnce", frozen)]
pub struct CandidateSampler {
    kernel: SharedKernel,
    range_max: Option<i64>,
}

impl CandidateSampler {
    fn wrap(kernel: samplers::CandidateSampler, range_max: Option<i64>) -> Self {
        CandidateSampler {
            kernel: SharedKernel::new(kernel),
            range_max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, samplers::CandidateSampler> {
        self.kernel.lock()
    }
}

#[pymethods]
impl CandidateSampler {
    #[staticmethod]
    #[pyo3(signature = (range_max, seed=None))]
    fn uniform(range_max: &Bound<'_, PyAny>, seed: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let range_max = range_max_argument(range_max)?;
        let kernel = samplers::CandidateSampler::uniform(range_max, self::seed(seed)?)?;
        Ok(Self::wrap(kernel, Some(range_max)))
    }

    #[staticmethod]
    #[pyo3(signature = (range_max, seed=None))]
    fn log_uniform(
        range_max: &Bound<'_, PyAny>,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let range_max = range_max_argument(range_max)?;
        let kernel = samplers::CandidateSampler::log_uniform(range_max, self::seed(seed)?)?;
        Ok(Self::wrap(kernel, Some(range_max)))
    }

    #[staticmethod]
    #[pyo3(signature = (range_max, seed=None))]
    fn learned_unigram(
        py: Python<'_>,
        range_max: &Bound<'_, PyAny>,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let range_max = range_max_argument(range_max)?;
        if range_max < MAX_COUNT {
            // An int32 count and an int64 prefix sum per id.
            check_memory(py, 12 * range_max as usize, || {
                format!("range_max = {range_max}: the learned counts")
            })?;
        }
        let kernel = samplers::CandidateSampler::learned_unigram(range_max, self::seed(seed)?)?;
        Ok(Self::wrap(kernel, Some(range_max)))
    }

    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (range_max, vocab_file, distortion, num_reserved_ids, num_shards, shard, unigrams, seed=None))]
    fn fixed_unigram(
        py: Python<'_>,
        range_max: &Bound<'_, PyAny>,
        vocab_file: &Bound<'_, PyAny>,
        distortion: &Bound<'_, PyAny>,
        num_reserved_ids: &Bound<'_, PyAny>,
        num_shards: &Bound<'_, PyAny>,
        shard: &Bound<'_, PyAny>,
        unigrams: &Bound<'_, PyAny>,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let settings = fixed_unigram_settings(
            py,
            range_max,
            vocab_file,
            distortion,
            num_reserved_ids,
            num_shards,
            shard,
            unigrams,
        )?;
        let range_max = settings.range_max;
        let kernel = settings.into_settings().make(py, self::seed(seed)?)?;
        Ok(Self::wrap(kernel, Some(range_max)))
    }

    #[staticmethod]
    #[pyo3(signature = (seed=None))]
    fn all_candidates(seed: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(Self::wrap(
            samplers::CandidateSampler::all_candidates(self::seed(seed)?),
            None,
        ))
    }

    /// `(sampled_candidates [S] int64, true_expected_count [B, T] float32,
    /// sampled_expected_count [S] float32)`.
    fn sample<'py>(
        &self,
        py: Python<'py>,
        true_classes: Bound<'py, PyAny>,
        num_true: Bound<'py, PyAny>,
        num_sampled: Bound<'py, PyAny>,
        unique: Bound<'py, PyAny>,
    ) -> PyResult<SampleTriple<'py>> {
        let (true_classes, num_true, num_sampled, unique) =
            checked_draw(&true_classes, &num_true, &num_sampled, &unique)?;
        let out = with_class_view!(true_classes, |view| self.kernel.sample(
            py,
            view,
            num_true,
            num_sampled,
            unique
        ))?;
        Ok(triple(py, out))
    }

    /// `p(id)` for each id, float32; 0 outside the range.
    fn probability<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let array = as_array(ids, "ids")?;
        let shape = array.shape().to_vec();
        let count = array.len();
        check_memory(py, count.saturating_mul(4), || {
            format!("the probabilities of {count} ids")
        })?;
        let flat = as_id_vector(&array.call_method1("reshape", (-1isize,))?, "ids")?;
        let ids = flat.as_array();
        let mut out: Vec<f32> = Vec::new();
        out.try_reserve_exact(ids.len()).map_err(|_| {
            errors::out_of_memory(format!(
                "ids: {} probabilities would not fit in memory",
                ids.len()
            ))
        })?;
        let kernel = self.lock();
        let distribution = kernel.distribution();
        out.extend(ids.iter().map(|&id| distribution.probability(id)));
        drop(kernel);
        out.into_pyarray(py)
            .call_method1("reshape", (PyTuple::new(py, shape)?,))
    }

    #[getter]
    fn range_max(&self) -> Option<i64> {
        self.range_max
    }
}

/// The `(seed, seed2)` op attributes a seed argument stands for; `(0, 0)` when
/// nondeterministic (TensorFlow's convention).
#[pyfunction]
#[pyo3(signature = (seed=None))]
pub fn seed_attributes(seed: Option<&Bound<'_, PyAny>>) -> PyResult<(i64, i64)> {
    Ok(self::seed(seed)?.attributes().unwrap_or((0, 0)))
}

/// The arguments every sampler call shares, checked in TensorFlow's order.
fn checked_draw<'py>(
    true_classes: &Bound<'py, PyAny>,
    num_true: &Bound<'py, PyAny>,
    num_sampled: &Bound<'py, PyAny>,
    unique: &Bound<'py, PyAny>,
) -> PyResult<(ClassMatrix<'py>, usize, usize, bool)> {
    let num_true = as_count(num_true, "num_true")?;
    let num_sampled = as_count(num_sampled, "num_sampled")?;
    let unique = as_bool(unique, "unique")?;
    let true_classes = as_class_matrix(true_classes, "true_classes")?;
    let shape = true_classes.shape();
    if shape[1] != num_true {
        return Err(errors::wrong_value(format!(
            "true_classes must have num_true = {num_true} columns, got shape {}",
            shape_tuple(&shape)
        )));
    }
    // Candidates, their expected counts and (unique) the set of ids seen; true counts.
    let per_candidate = 16 + if unique { 32 } else { 0 };
    let bytes = num_sampled
        .saturating_mul(per_candidate)
        .saturating_add(4 * shape[0] * shape[1]);
    check_memory(true_classes.as_any().py(), bytes, || {
        format!("sampling num_sampled = {num_sampled} candidates")
    })?;
    Ok((true_classes, num_true, num_sampled, unique))
}

fn triple(py: Python<'_>, out: CandidateSample) -> SampleTriple<'_> {
    (
        out.sampled_candidates.into_pyarray(py),
        out.true_expected_count.into_pyarray(py),
        out.sampled_expected_count.into_pyarray(py),
    )
}

/// How many samplers the module-level functions keep (the least recently used go first).
pub const MAX_CACHED_SAMPLERS: usize = 4096;

/// How much memory the kept samplers' tables may take together (estimated from `range_max`);
/// the least recently used go first, but the sampler of the latest call is always kept.
pub const MAX_CACHED_BYTES: usize = 256 << 20;

/// A sampler's attributes, as the module-level functions take them (checked by the caller).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SamplerSettings {
    Uniform(i64),
    LogUniform(i64),
    LearnedUnigram(i64),
    FixedUnigram {
        range_max: i64,
        vocab_file: String,
        /// The bits of the `f64` distortion (floats are not `Eq`).
        distortion: u64,
        num_reserved_ids: i64,
        num_shards: i64,
        shard: i64,
        /// The bits of the `f32` counts.
        unigrams: Vec<u32>,
    },
    All,
}

impl SamplerSettings {
    fn make(&self, py: Python<'_>, seed: Seed) -> PyResult<samplers::CandidateSampler> {
        Ok(match self {
            SamplerSettings::Uniform(range_max) => {
                samplers::CandidateSampler::uniform(*range_max, seed)?
            }
            SamplerSettings::LogUniform(range_max) => {
                samplers::CandidateSampler::log_uniform(*range_max, seed)?
            }
            SamplerSettings::LearnedUnigram(range_max) => {
                samplers::CandidateSampler::learned_unigram(*range_max, seed)?
            }
            SamplerSettings::FixedUnigram {
                range_max,
                vocab_file,
                distortion,
                num_reserved_ids,
                num_shards,
                shard,
                unigrams,
            } => {
                let counts: Vec<f32> = unigrams.iter().map(|&bits| f32::from_bits(bits)).collect();
                let config = FixedUnigramConfig {
                    range_max: *range_max,
                    source: unigram_source(vocab_file, (!counts.is_empty()).then_some(counts))?,
                    distortion: f64::from_bits(*distortion) as f32,
                    num_reserved_ids: *num_reserved_ids,
                    num_shards: *num_shards,
                    shard: *shard,
                };
                detached(py, || {
                    samplers::CandidateSampler::fixed_unigram(config, seed)
                })?
            }
            SamplerSettings::All => samplers::CandidateSampler::all_candidates(seed),
        })
    }

    /// The estimated size of the sampler's tables, which the cache bounds.
    fn table_bytes(&self) -> usize {
        match self {
            SamplerSettings::LearnedUnigram(range_max) => 12 * *range_max as usize,
            SamplerSettings::FixedUnigram { range_max, .. } => 20 * *range_max as usize,
            _ => 0,
        }
    }
}

fn unigram_source(vocab_file: &str, counts: Option<Vec<f32>>) -> PyResult<UnigramSource> {
    match (vocab_file.is_empty(), counts) {
        (true, Some(counts)) if !counts.is_empty() => Ok(UnigramSource::Counts(counts)),
        (false, None) => Ok(UnigramSource::VocabFile(PathBuf::from(vocab_file))),
        (false, Some(counts)) if counts.is_empty() => {
            Ok(UnigramSource::VocabFile(PathBuf::from(vocab_file)))
        }
        (true, _) => Err(errors::wrong_value(
            "vocab_file, unigrams: must provide either vocab_file or unigrams",
        )),
        (false, Some(_)) => Err(errors::wrong_value(
            "vocab_file, unigrams: must only provide one of vocab_file and unigrams",
        )),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    settings: SamplerSettings,
    num_true: usize,
    num_sampled: usize,
    unique: bool,
    seed: (i64, i64),
}

struct CacheEntry {
    kernel: SharedKernel,
    table_bytes: usize,
    last_use: u64,
}

/// The kept samplers. Its lock is held only briefly, with the interpreter attached and never
/// around a draw or a table build, so a fork (which needs the interpreter) never finds it held.
#[derive(Default)]
struct SamplerCache {
    entries: HashMap<CacheKey, CacheEntry>,
    clock: u64,
    held_bytes: usize,
}

static CACHE: Mutex<Option<SamplerCache>> = Mutex::new(None);

fn with_cache<R>(work: impl FnOnce(&mut SamplerCache) -> R) -> R {
    let mut guard = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    work(guard.get_or_insert_with(SamplerCache::default))
}

impl SamplerCache {
    fn get(&mut self, key: &CacheKey) -> Option<SharedKernel> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(key).map(|entry| {
            entry.last_use = clock;
            entry.kernel.clone()
        })
    }

    /// Keeps `kernel` for `key` (or returns the one another thread kept meanwhile), then
    /// forgets the least recently used samplers beyond the limits.
    fn insert(&mut self, key: CacheKey, kernel: SharedKernel, table_bytes: usize) -> SharedKernel {
        if let Some(kept) = self.get(&key) {
            return kept;
        }
        self.clock += 1;
        self.held_bytes += table_bytes;
        self.entries.insert(
            key,
            CacheEntry {
                kernel: kernel.clone(),
                table_bytes,
                last_use: self.clock,
            },
        );
        while self.entries.len() > 1
            && (self.entries.len() > MAX_CACHED_SAMPLERS || self.held_bytes > MAX_CACHED_BYTES)
        {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_use)
                .map(|(key, _)| key.clone());
            if let Some(entry) = oldest.and_then(|key| self.entries.remove(&key)) {
                self.held_bytes -= entry.table_bytes;
            }
        }
        kernel
    }
}

/// Draws with the kept sampler for these attributes, made on first use: the module-level
/// samplers and the losses' default draw continue one stream per set of attributes.
pub fn cached_sample<L: ClassId>(
    py: Python<'_>,
    settings: SamplerSettings,
    true_classes: ndarray::ArrayView2<'_, L>,
    num_true: usize,
    num_sampled: usize,
    unique: bool,
    seed: Seed,
) -> PyResult<CandidateSample> {
    let key = CacheKey {
        settings,
        num_true,
        num_sampled,
        unique,
        seed: seed.attributes().unwrap_or((0, 0)),
    };
    let kernel = match with_cache(|cache| cache.get(&key)) {
        Some(kernel) => kernel,
        None => {
            let made = SharedKernel::new(key.settings.make(py, seed)?);
            let table_bytes = key.settings.table_bytes();
            with_cache(|cache| cache.insert(key, made, table_bytes))
        }
    };
    kernel.sample(py, true_classes, num_true, num_sampled, unique)
}

/// The sampler kinds of the module-level functions.
pub enum SamplerKind {
    Uniform,
    LogUniform,
    LearnedUnigram,
    FixedUnigram,
    All,
}

impl<'a, 'py> FromPyObject<'a, 'py> for SamplerKind {
    type Error = PyErr;

    fn extract(value: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match &*value.extract::<String>()? {
            "uniform" => Ok(SamplerKind::Uniform),
            "log_uniform" => Ok(SamplerKind::LogUniform),
            "learned_unigram" => Ok(SamplerKind::LearnedUnigram),
            "fixed_unigram" => Ok(SamplerKind::FixedUnigram),
            "all" => Ok(SamplerKind::All),
            other => Err(errors::wrong_value(format!(
                "sampler must be \"uniform\", \"log_uniform\", \"learned_unigram\", \"fixed_unigram\" or \"all\", got {other:?}"
            ))),
        }
    }
}

/// The fixed unigram sampler's settings as the user passed them, checked and normalised (the
/// core checks the counts and that the table's size equals `range_max`).
struct FixedUnigramSettings {
    range_max: i64,
    vocab_file: String,
    distortion: f64,
    num_reserved_ids: i64,
    num_shards: i64,
    shard: i64,
    unigrams: Vec<f32>,
}

impl FixedUnigramSettings {
    /// The settings the kept samplers are keyed by (and made from).
    fn into_settings(self) -> SamplerSettings {
        SamplerSettings::FixedUnigram {
            range_max: self.range_max,
            vocab_file: self.vocab_file,
            distortion: self.distortion.to_bits(),
            num_reserved_ids: self.num_reserved_ids,
            num_shards: self.num_shards,
            shard: self.shard,
            unigrams: self.unigrams.iter().map(|count| count.to_bits()).collect(),
        }
    }
}

/// How many of the `length` ids numbered from `first` fall in `shard` of `num_shards`.
fn ids_in_shard(first: i128, length: i128, num_shards: i128, shard: i128) -> i128 {
    let below = |n: i128| {
        let past = (n - shard).max(0);
        past / num_shards + i128::from(past % num_shards != 0)
    };
    below(first + length) - below(first)
}

#[allow(clippy::too_many_arguments)]
fn fixed_unigram_settings(
    py: Python<'_>,
    range_max: &Bound<'_, PyAny>,
    vocab_file: &Bound<'_, PyAny>,
    distortion: &Bound<'_, PyAny>,
    num_reserved_ids: &Bound<'_, PyAny>,
    num_shards: &Bound<'_, PyAny>,
    shard: &Bound<'_, PyAny>,
    unigrams: &Bound<'_, PyAny>,
) -> PyResult<FixedUnigramSettings> {
    let range_max = range_max_argument(range_max)?;
    let vocab_file = as_path(vocab_file, "vocab_file")?;
    let distortion = as_finite_float(distortion, "distortion")?;
    let num_reserved_ids = as_int(
        num_reserved_ids,
        "num_reserved_ids",
        Some(0),
        Some(i64::MAX),
    )?;
    let num_shards = as_int(num_shards, "num_shards", Some(1), Some(i64::MAX))?;
    let shard = as_int(shard, "shard", Some(0), Some(num_shards - 1))?;
    let unigrams = as_unigrams(unigrams, "unigrams")?;
    // The tables' size, bounded before anything is built (a size other than range_max is
    // refused by the core without allocating): the reserved ids of this shard plus at most
    // one counted id per vocabulary line (two bytes) or per unigram.
    let (shards, this_shard) = (i128::from(num_shards), i128::from(shard));
    let reserved = ids_in_shard(0, i128::from(num_reserved_ids), shards, this_shard);
    let lines = if vocab_file.is_empty() {
        unigrams.len() as i128
    } else {
        // A file that cannot be read is named by the core.
        std::fs::metadata(&vocab_file).map_or(0, |metadata| i128::from(metadata.len() / 2 + 1))
    };
    let largest = reserved + ids_in_shard(reserved, lines, shards, this_shard);
    let size = i128::from(range_max);
    if reserved <= size && size <= largest.min(i128::from(MAX_COUNT)) {
        // The weights (float32), Walker's alias table (float64 while built, float32 and
        // uint32 kept) and its two work lists.
        check_memory(py, 40 * range_max as usize, || {
            format!("range_max = {range_max}: the tables of a fixed unigram sampler")
        })?;
    }
    Ok(FixedUnigramSettings {
        range_max,
        vocab_file,
        distortion,
        num_reserved_ids,
        num_shards,
        shard,
        unigrams,
    })
}

/// A module-level sampler call (`uniform_candidate_sampler` and the rest) with checked
/// arguments: the kept sampler for these attributes draws.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (sampler, true_classes, num_true, num_sampled, unique, range_max=None, seed=None, vocab_file=None, distortion=None, num_reserved_ids=None, num_shards=None, shard=None, unigrams=None))]
pub fn kept_sampler_sample<'py>(
    py: Python<'py>,
    sampler: SamplerKind,
    true_classes: Bound<'py, PyAny>,
    num_true: Bound<'py, PyAny>,
    num_sampled: Bound<'py, PyAny>,
    unique: Bound<'py, PyAny>,
    range_max: Option<Bound<'py, PyAny>>,
    seed: Option<&Bound<'py, PyAny>>,
    vocab_file: Option<Bound<'py, PyAny>>,
    distortion: Option<Bound<'py, PyAny>>,
    num_reserved_ids: Option<Bound<'py, PyAny>>,
    num_shards: Option<Bound<'py, PyAny>>,
    shard: Option<Bound<'py, PyAny>>,
    unigrams: Option<Bound<'py, PyAny>>,
) -> PyResult<SampleTriple<'py>> {
    // The sampler's settings first (TensorFlow's attributes), then the draw's arguments.
    let given =
        |value: Option<Bound<'py, PyAny>>, default: Bound<'py, PyAny>| value.unwrap_or(default);
    let range_max_value = || {
        range_max.clone().ok_or_else(|| {
            errors::wrong_type("range_max must be given for this sampler".to_string())
        })
    };
    let settings = match sampler {
        SamplerKind::Uniform => SamplerSettings::Uniform(range_max_argument(&range_max_value()?)?),
        SamplerKind::LogUniform => {
            SamplerSettings::LogUniform(range_max_argument(&range_max_value()?)?)
        }
        SamplerKind::LearnedUnigram => {
            SamplerSettings::LearnedUnigram(range_max_argument(&range_max_value()?)?)
        }
        SamplerKind::FixedUnigram => fixed_unigram_settings(
            py,
            &range_max_value()?,
            &given(vocab_file, "".into_pyobject(py)?.into_any()),
            &given(distortion, 1.0f64.into_pyobject(py)?.into_any()),
            &given(num_reserved_ids, 0i64.into_pyobject(py)?.into_any()),
            &given(num_shards, 1i64.into_pyobject(py)?.into_any()),
            &given(shard, 0i64.into_pyobject(py)?.into_any()),
            &given(unigrams, PyTuple::empty(py).into_any()),
        )?
        .into_settings(),
        SamplerKind::All => SamplerSettings::All,
    };
    let (true_classes, num_true, num_sampled, unique) =
        checked_draw(&true_classes, &num_true, &num_sampled, &unique)?;
    let seed = self::seed(seed)?;
    let out = with_class_view!(true_classes, |view| cached_sample(
        py,
        settings,
        view,
        num_true,
        num_sampled,
        unique,
        seed
    ))?;
    Ok(triple(py, out))
}

/// Forgets the kept samplers (their streams and learned counts).
#[pyfunction]
pub fn reset_sampler_cache() {
    let forgotten = with_cache(std::mem::take);
    drop(forgotten);
}

/// `(samplers kept, estimated bytes of their tables)`.
#[pyfunction]
pub fn sampler_cache_usage() -> (usize, usize) {
    with_cache(|cache| (cache.entries.len(), cache.held_bytes))
}
