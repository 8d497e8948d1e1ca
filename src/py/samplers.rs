//! The candidate-sampler kernel as a Python class. Calls on one object are serialised by a
//! mutex, so a sampler shared between threads keeps a consistent stream and state. A sampling
//! call holds the fork gate (`fork_gate`) for as long as it holds the mutex, so a forked child
//! never inherits the mutex locked.

use std::path::PathBuf;
use std::sync::Mutex;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::prelude::*;

use super::arguments::{count, seed, with_class_view, ClassMatrix};
use super::fork_gate::detached;
use crate::samplers::{self, FixedUnigramConfig, UnigramSource};

type SampleTriple<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f32>>,
);

#[pyclass(module = "rustnce._rustnce", frozen)]
pub struct CandidateSampler {
    kernel: Mutex<samplers::CandidateSampler>,
    range_max: Option<i64>,
}

impl CandidateSampler {
    fn wrap(kernel: samplers::CandidateSampler, range_max: Option<i64>) -> Self {
        CandidateSampler {
            kernel: Mutex::new(kernel),
            range_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, samplers::CandidateSampler> {
        // A panic while sampling cannot leave the kernel half-updated in a way that matters
        // more than refusing all later calls would, so recover the guard.
        self.kernel
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[pymethods]
impl CandidateSampler {
    #[staticmethod]
    #[pyo3(signature = (range_max, seed=None))]
    fn uniform(range_max: i64, seed: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let kernel = samplers::CandidateSampler::uniform(range_max, self::seed(seed)?)?;
        Ok(Self::wrap(kernel, Some(range_max)))
    }

    #[staticmethod]
    #[pyo3(signature = (range_max, seed=None))]
    fn log_uniform(range_max: i64, seed: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let kernel = samplers::CandidateSampler::log_uniform(range_max, self::seed(seed)?)?;
        Ok(Self::wrap(kernel, Some(range_max)))
    }

    #[staticmethod]
    #[pyo3(signature = (range_max, seed=None))]
    fn learned_unigram(range_max: i64, seed: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let kernel = samplers::CandidateSampler::learned_unigram(range_max, self::seed(seed)?)?;
        Ok(Self::wrap(kernel, Some(range_max)))
    }

    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (range_max, vocab_file, distortion, num_reserved_ids, num_shards, shard, unigrams, seed=None))]
    fn fixed_unigram(
        py: Python<'_>,
        range_max: i64,
        vocab_file: &str,
        distortion: f32,
        num_reserved_ids: i64,
        num_shards: i64,
        shard: i64,
        unigrams: Option<PyReadonlyArray1<'_, f32>>,
        seed: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let source = match (vocab_file.is_empty(), unigrams) {
            (true, Some(counts)) if counts.len()? > 0 => {
                UnigramSource::Counts(counts.as_array().to_vec())
            }
            (false, None) => UnigramSource::VocabFile(PathBuf::from(vocab_file)),
            (false, Some(counts)) if counts.len()? == 0 => {
                UnigramSource::VocabFile(PathBuf::from(vocab_file))
            }
            (true, _) => {
                return Err(PyValueError::new_err(
                    "vocab_file, unigrams: must provide either vocab_file or unigrams",
                ))
            }
            (false, Some(_)) => {
                return Err(PyValueError::new_err(
                    "vocab_file, unigrams: must only provide one of vocab_file and unigrams",
                ))
            }
        };
        let config = FixedUnigramConfig {
            range_max,
            source,
            distortion,
            num_reserved_ids,
            num_shards,
            shard,
        };
        let seed = self::seed(seed)?;
        let kernel = detached(py, || {
            samplers::CandidateSampler::fixed_unigram(config, seed)
        })?;
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
        true_classes: ClassMatrix<'py>,
        num_true: i64,
        num_sampled: i64,
        unique: bool,
    ) -> PyResult<SampleTriple<'py>> {
        let num_true = count(num_true, "num_true", 1)?;
        let num_sampled = count(num_sampled, "num_sampled", 1)?;
        let out = with_class_view!(true_classes, |view| detached(py, || {
            // The kernel's guard is dropped inside the gated work, before the gate.
            let mut kernel = self.lock();
            let out = kernel.sample(view, num_true, num_sampled, unique);
            drop(kernel);
            out
        }))?;
        Ok((
            out.sampled_candidates.into_pyarray(py),
            out.true_expected_count.into_pyarray(py),
            out.sampled_expected_count.into_pyarray(py),
        ))
    }

    /// `p(id)` for each id, float32; 0 outside the range.
    fn probability<'py>(
        &self,
        py: Python<'py>,
        ids: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let ids = ids.as_array();
        let mut out: Vec<f32> = Vec::new();
        out.try_reserve_exact(ids.len()).map_err(|_| {
            PyMemoryError::new_err(format!(
                "ids: {} probabilities would not fit in memory",
                ids.len()
            ))
        })?;
        let kernel = self.lock();
        let distribution = kernel.distribution();
        out.extend(ids.iter().map(|&id| distribution.probability(id)));
        drop(kernel);
        Ok(out.into_pyarray(py))
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
