//! The candidate-sampler kernel as a Python class. Calls on one object are serialised by a
//! mutex, so a sampler shared between threads keeps a consistent stream and state.
//!
//! A `fork()` while another thread samples would leave the child a sampler whose mutex no
//! thread of the child will ever release. The Python package therefore registers
//! `before_fork`/`after_fork` with `os.register_at_fork`: a fork waits for the sampler calls
//! in flight (each holds the read side of `FORK_GATE`) and none starts until it is done.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::arguments::{count, seed, with_class_view, ClassMatrix};
use crate::samplers::{self, FixedUnigramConfig, UnigramSource};

static FORK_GATE: RwLock<()> = RwLock::new(());

thread_local! {
    /// The forking thread's hold on `FORK_GATE`, from `before_fork` to `after_fork` (which runs
    /// in the same thread, in the parent and in the child).
    static FORK_HOLD: RefCell<Option<RwLockWriteGuard<'static, ()>>> = const { RefCell::new(None) };
}

/// Held by work that runs with the interpreter released and takes locks a forked child must
/// not inherit locked; `before_fork` waits until no such work is in flight.
pub(crate) fn fork_safe_work() -> RwLockReadGuard<'static, ()> {
    FORK_GATE
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

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
        let kernel = py.detach(|| samplers::CandidateSampler::fixed_unigram(config, seed))?;
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
        let out = with_class_view!(true_classes, |view| py.detach(|| {
            let _gate = fork_safe_work();
            self.lock().sample(view, num_true, num_sampled, unique)
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
    ) -> Bound<'py, PyArray1<f32>> {
        let kernel = self.lock();
        let distribution = kernel.distribution();
        ids.as_array()
            .mapv(|id| distribution.probability(id))
            .into_pyarray(py)
    }

    #[getter]
    fn range_max(&self) -> Option<i64> {
        self.range_max
    }

    /// Waits for the sampler calls in flight and holds new ones back: for
    /// `os.register_at_fork(before=...)`.
    #[staticmethod]
    fn before_fork() {
        let hold = FORK_GATE
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        FORK_HOLD.with(|slot| *slot.borrow_mut() = Some(hold));
    }

    /// Lets sampler calls run again, in the parent and in the child: for
    /// `os.register_at_fork(after_in_parent=..., after_in_child=...)`.
    #[staticmethod]
    fn after_fork() {
        FORK_HOLD.with(|slot| slot.borrow_mut().take());
    }
}

/// The `(seed, seed2)` op attributes a seed argument stands for; `(0, 0)` when
/// nondeterministic (TensorFlow's convention).
#[pyfunction]
#[pyo3(signature = (seed=None))]
pub fn seed_attributes(seed: Option<&Bound<'_, PyAny>>) -> PyResult<(i64, i64)> {
    Ok(self::seed(seed)?.attributes().unwrap_or((0, 0)))
}
