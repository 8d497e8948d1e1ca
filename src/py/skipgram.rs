//! Skip-gram training as Python objects: `SkipGramTrainer` (the whole loop in Rust, run in
//! slices of words so Python can report progress) and `skipgram_sgd_step` (one batch).

use std::borrow::Cow;
use std::sync::Mutex;

use numpy::ndarray::{Ix1, Ix2};
use numpy::{
    Element, IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::arguments::{
    as_array, as_expected_counts, as_finite_float, as_id_vector, repr, type_name,
    unpack_sampled_values, vector, writable_array, FloatType,
};
use super::corpus::TextCorpus;
use super::errors;
use super::fork_gate::install_locked;
use super::memory_locks::Access;
use crate::skipgram::{
    self, Embeddings, NegativeSampler, NegativeSharing, PairBatch, SkipGramConfig, SkipGramLoss,
    SkipGramStep, UpdateRule,
};

fn loss_kind(name: &str) -> PyResult<SkipGramLoss> {
    SkipGramLoss::parse(name).ok_or_else(|| {
        errors::wrong_value(format!(
            "loss must be 'nce', 'sampled_softmax' or 'neg', got {name:?}"
        ))
    })
}

/// The three writable, C-contiguous float32 parameter tables, updated in place.
struct Tables<'py> {
    input: Bound<'py, PyArray2<f32>>,
    output: Bound<'py, PyArray2<f32>>,
    biases: Bound<'py, PyArray1<f32>>,
    access: Access<'py>,
}

impl<'py> Tables<'py> {
    fn extract(
        py: Python<'py>,
        input: &Bound<'py, PyAny>,
        output: &Bound<'py, PyAny>,
        biases: &Bound<'py, PyAny>,
    ) -> PyResult<Self> {
        let input = writable_array::<f32, Ix2>(input, "input_vectors", "2-D float32 array")?;
        let output = writable_array::<f32, Ix2>(output, "output_vectors", "2-D float32 array")?;
        let biases = writable_array::<f32, Ix1>(biases, "biases", "1-D float32 array")?;
        let [rows, dim] = [input.shape()[0], input.shape()[1]];
        if output.shape() != [rows, dim] {
            return Err(errors::wrong_value(format!(
                "output_vectors must have the shape of input_vectors [{rows}, {dim}], got {:?}",
                output.shape()
            )));
        }
        if biases.len() != rows {
            return Err(errors::wrong_value(format!(
                "biases must have one entry per row of input_vectors ({rows}), got {}",
                biases.len()
            )));
        }
        if dim == 0 {
            return Err(errors::wrong_value(
                "input_vectors must have at least one column (dim >= 1)",
            ));
        }
        for (name, contiguous) in [
            ("input_vectors", input.is_c_contiguous()),
            ("output_vectors", output.is_c_contiguous()),
            ("biases", biases.is_c_contiguous()),
        ] {
            if !contiguous {
                return Err(errors::wrong_value(format!(
                    "{name} must be C-contiguous (it is updated in place); pass np.ascontiguousarray({name}) and keep that array"
                )));
            }
        }
        let mut access = Access::new();
        access
            .write("input_vectors", input.as_any())
            .write("output_vectors", output.as_any())
            .write("biases", biases.as_any());
        access.check_disjoint(py)?;
        Ok(Tables {
            input,
            output,
            biases,
            access,
        })
    }

    fn rows(&self) -> usize {
        self.biases.len()
    }

    /// Runs `work` on the tables on rustnce's pool, once no other call uses their memory.
    fn update<R: Send>(
        &mut self,
        py: Python<'_>,
        work: impl FnOnce(&mut Embeddings<'_>) -> R + Send,
    ) -> R {
        let dim = self.input.shape()[1];
        // SAFETY: these views only point at the tables, which share no element
        // (`check_disjoint`); they are read and written only inside the work below, which holds
        // the memory locks that keep every other rustnce call out of the tables.
        let (input, output, biases) = unsafe {
            (
                self.input.as_array_mut(),
                self.output.as_array_mut(),
                self.biases.as_array_mut(),
            )
        };
        install_locked(py, &self.access.regions(), usize::MAX, move || {
            let contiguous = "checked C-contiguous when extracted";
            let mut embeddings = Embeddings {
                input: input.into_slice().expect(contiguous),
                output: output.into_slice().expect(contiguous),
                biases: biases.into_slice().expect(contiguous),
                dim,
            };
            work(&mut embeddings)
        })
    }
}

/// The elements of a 1-D array: borrowed when contiguous, copied otherwise.
fn elements<'a, T: Element + Copy>(array: &'a PyReadonlyArray1<'_, T>) -> Cow<'a, [T]> {
    match array.as_slice() {
        Ok(slice) => Cow::Borrowed(slice),
        Err(_) => Cow::Owned(array.as_array().iter().copied().collect()),
    }
}

/// Ids as `u32` below `vocabulary`, or a `ValueError` naming the argument.
fn ids(array: &PyReadonlyArray1<'_, i64>, name: &str, vocabulary: usize) -> PyResult<Vec<u32>> {
    array
        .as_array()
        .iter()
        .enumerate()
        .map(|(k, &id)| {
            if id < 0 || id as u64 >= vocabulary as u64 {
                Err(errors::out_of_range(format!(
                    "{name}[{k}] = {id} is out of range [0, {vocabulary})"
                )))
            } else {
                Ok(id as u32)
            }
        })
        .collect()
}

/// `loss`: one of the skip-gram losses, as a string.
fn loss_argument(value: &Bound<'_, PyAny>) -> PyResult<SkipGramLoss> {
    const CHOICES: &str = "'nce', 'sampled_softmax', 'neg'";
    let Ok(text) = value.cast::<PyString>() else {
        return Err(errors::wrong_type(format!(
            "loss must be one of {CHOICES}, got {}",
            type_name(value)
        )));
    };
    SkipGramLoss::parse(&text.to_cow()?).ok_or_else(|| {
        errors::wrong_value(format!(
            "loss must be one of {CHOICES}, got {}",
            repr(value)
        ))
    })
}

/// int64 ids `[n]`; a `[n, 1]` matrix (a sampler's `true_classes` layout) is accepted.
fn id_argument<'py>(value: &Bound<'py, PyAny>, name: &str) -> PyResult<PyReadonlyArray1<'py, i64>> {
    let mut array = as_array(value, name)?;
    if array.ndim() == 2 && array.shape()[1] == 1 {
        array = array
            .call_method1("reshape", (-1isize,))?
            .cast_into::<PyUntypedArray>()?;
    }
    as_id_vector(array.as_any(), name)
}

/// Expected counts as float32 `[size]` (`[size, 1]` accepted).
fn count_argument<'py>(
    value: &Bound<'py, PyAny>,
    name: &str,
    size: usize,
) -> PyResult<PyReadonlyArray1<'py, f32>> {
    let array = as_expected_counts(value, name, FloatType::F32)?
        .call_method1("reshape", (-1isize,))?
        .cast_into::<PyUntypedArray>()?;
    if array.len() != size {
        return Err(errors::wrong_value(format!(
            "{name} must have {size} entries, got {}",
            array.len()
        )));
    }
    vector::<f32>(array.as_any(), name)
}

/// One fused skip-gram SGD step; returns the summed loss of the batch. Every argument is
/// checked here, in the order they are documented, before anything is written.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(
    signature = (
        input_vectors, output_vectors, biases, centers, contexts, sampled_values, learning_rate,
        loss=None
    ),
    text_signature = "(input_vectors, output_vectors, biases, centers, contexts, sampled_values, learning_rate, loss='nce')"
)]
pub fn skipgram_sgd_step(
    py: Python<'_>,
    input_vectors: &Bound<'_, PyAny>,
    output_vectors: &Bound<'_, PyAny>,
    biases: &Bound<'_, PyAny>,
    centers: &Bound<'_, PyAny>,
    contexts: &Bound<'_, PyAny>,
    sampled_values: &Bound<'_, PyAny>,
    learning_rate: &Bound<'_, PyAny>,
    loss: Option<&Bound<'_, PyAny>>,
) -> PyResult<f64> {
    let loss = match loss {
        None => SkipGramLoss::Nce,
        Some(value) => loss_argument(value)?,
    };
    let learning_rate = as_finite_float(learning_rate, "learning_rate")?;
    let centers = id_argument(centers, "centers")?;
    let contexts = id_argument(contexts, "contexts")?;
    if contexts.len() != centers.len() {
        return Err(errors::wrong_value(format!(
            "contexts must have one id per center ({}), got {}",
            centers.len(),
            contexts.len()
        )));
    }
    let [candidates, true_expected, sampled_expected] = unpack_sampled_values(sampled_values)?;
    let negatives = id_argument(&candidates, "sampled_values[0]")?;
    let context_expected_count =
        count_argument(&true_expected, "sampled_values[1]", centers.len())?;
    let negative_expected_count =
        count_argument(&sampled_expected, "sampled_values[2]", negatives.len())?;
    let mut tables = Tables::extract(py, input_vectors, output_vectors, biases)?;
    let vocabulary = tables.rows();
    let centers = ids(&centers, "centers", vocabulary)?;
    let contexts = ids(&contexts, "contexts", vocabulary)?;
    let negatives = ids(&negatives, "sampled_values[0]", vocabulary)?;
    if contexts.len() != centers.len() {
        return Err(errors::wrong_value(format!(
            "contexts must have one id per center ({}), got {}",
            centers.len(),
            contexts.len()
        )));
    }
    let log_q = |array: &PyReadonlyArray1<'_, f32>, name: &str, len: usize| {
        let values = array.as_array();
        if values.len() != len {
            return Err(errors::wrong_value(format!(
                "{name} must have {len} entries, got {}",
                values.len()
            )));
        }
        values
            .iter()
            .map(|&q| {
                if q > 0.0 && q.is_finite() {
                    Ok(q.ln())
                } else if !loss.uses_expected_counts() {
                    Ok(0.0)
                } else {
                    Err(errors::wrong_value(format!(
                        "{name} must be positive and finite, got {q}"
                    )))
                }
            })
            .collect::<PyResult<Vec<f32>>>()
    };
    let context_log_q = log_q(&context_expected_count, "sampled_values[1]", centers.len())?;
    let negative_log_q = log_q(
        &negative_expected_count,
        "sampled_values[2]",
        negatives.len(),
    )?;
    let rate = learning_rate as f32;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(errors::wrong_value(format!(
            "learning_rate must be positive and finite in float32, got {learning_rate}"
        )));
    }
    let batch = PairBatch {
        centers: &centers,
        contexts: &contexts,
        context_log_q: &context_log_q,
        negatives: &negatives,
        negative_log_q: &negative_log_q,
        group_ends: &[],
    };
    Ok(tables.update(py, |embeddings| {
        SkipGramStep::default().run(embeddings, &batch, loss, rate, true)
    }))
}

/// One epoch of skip-gram pairs `(centers, contexts)` as the trainer generates them (for
/// tests and inspection): subsampling and reduced windows drawn from `seed`'s pair stream.
#[pyfunction]
#[pyo3(signature = (ids, sentences, counts, window, subsample, seed))]
#[allow(clippy::type_complexity)]
pub fn skipgram_pairs<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray1<'_, i32>,
    sentences: PyReadonlyArray1<'_, i32>,
    counts: PyReadonlyArray1<'_, i64>,
    window: usize,
    subsample: f64,
    seed: i64,
) -> PyResult<(Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<u32>>)> {
    let counts = elements(&counts);
    let mut corpus = skipgram::Corpus::new(&elements(&ids), &elements(&sentences), counts.len())?;
    let mut generator =
        skipgram::PairGenerator::new(window, skipgram::keep_probabilities(&counts, subsample));
    let mut stream = skipgram::pair_stream(seed);
    let (mut centers, mut contexts, mut window_ends) = (Vec::new(), Vec::new(), Vec::new());
    while !generator.fill(
        &mut corpus,
        &mut stream,
        usize::MAX,
        &mut centers,
        &mut contexts,
        &mut window_ends,
    )? {}
    Ok((centers.into_pyarray(py), contexts.into_pyarray(py)))
}

/// What one `SkipGramTrainer.run` call did.
#[pyclass(module = "rustnce._rustnce", frozen, get_all)]
pub struct TrainingReport {
    /// The epoch the call ended in (0-based).
    epoch: usize,
    /// Raw corpus words processed since training started (all epochs).
    words: u64,
    /// Pairs trained on in this call.
    pairs: u64,
    /// Summed loss of those pairs.
    loss: f64,
    /// The call stopped at the end of `epoch`.
    epoch_end: bool,
    /// Every epoch is done.
    finished: bool,
    /// The loss per pair of the batch that diverged (training stopped there), or None.
    diverged: Option<f64>,
    /// The learning rate of the last step.
    learning_rate: f32,
}

#[pymethods]
impl TrainingReport {
    fn __repr__(&self) -> String {
        format!(
            "TrainingReport(epoch={}, words={}, pairs={}, loss={}, epoch_end={}, finished={}, diverged={:?}, learning_rate={})",
            self.epoch, self.words, self.pairs, self.loss, self.epoch_end, self.finished, self.diverged, self.learning_rate
        )
    }
}

/// The skip-gram training loop over a corpus, run a slice of words at a time.
#[pyclass(module = "rustnce._rustnce", frozen)]
pub struct SkipGramTrainer {
    inner: Mutex<skipgram::SkipGramTrainer>,
}

#[pymethods]
impl SkipGramTrainer {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (ids, sentences = None, counts = None, *, dim, window, negatives, epochs, batch_pairs, loss, sampler, distortion, learning_rate, subsample, seed, update = "sequential", sharing = "window", fixed_biases = false, deterministic = false, start_epoch = 0))]
    fn new(
        ids: &Bound<'_, PyAny>,
        sentences: Option<PyReadonlyArray1<'_, i32>>,
        counts: Option<PyReadonlyArray1<'_, i64>>,
        dim: usize,
        window: usize,
        negatives: usize,
        epochs: usize,
        batch_pairs: usize,
        loss: &str,
        sampler: &str,
        distortion: f32,
        learning_rate: f32,
        subsample: f64,
        seed: i64,
        update: &str,
        sharing: &str,
        fixed_biases: bool,
        deterministic: bool,
        start_epoch: usize,
    ) -> PyResult<Self> {
        let sharing = NegativeSharing::parse(sharing).ok_or_else(|| {
            errors::wrong_value(format!(
                "sharing must be 'window' or 'batch', got {sharing:?}"
            ))
        })?;
        let update = match update {
            "bounded" => UpdateRule::Bounded,
            "sum" => UpdateRule::Sum,
            "sequential" => UpdateRule::Sequential,
            other => {
                return Err(errors::wrong_value(format!(
                    "update must be 'bounded', 'sequential' or 'sum', got {other:?}"
                )))
            }
        };
        if update == UpdateRule::Sequential && sharing != NegativeSharing::Window {
            return Err(errors::wrong_value(
                "update='sequential' needs sharing='window' (word2vec's negatives per window)"
                    .to_string(),
            ));
        }
        let sampler = match sampler {
            "log_uniform" => NegativeSampler::LogUniform,
            "unigram" => {
                if !(distortion.is_finite() && distortion >= 0.0) {
                    return Err(errors::wrong_value(format!(
                        "distortion must be >= 0, got {distortion}"
                    )));
                }
                NegativeSampler::Unigram { distortion }
            }
            other => {
                return Err(errors::wrong_value(format!(
                    "sampler must be 'log_uniform' or 'unigram', got {other:?}"
                )))
            }
        };
        let config = SkipGramConfig {
            dim,
            window,
            negatives,
            epochs,
            batch_pairs,
            loss: loss_kind(loss)?,
            sampler,
            learning_rate,
            subsample,
            seed,
            update,
            sharing,
            fixed_biases,
            racing: !deterministic,
        };
        // `ids` is a `TextCorpus` (read as training goes, with its own counts) or token ids.
        let mut trainer = match (ids.cast::<TextCorpus>(), sentences, counts) {
            (Ok(text), None, None) => {
                skipgram::SkipGramTrainer::from_text(text.get().inner.clone(), config)?
            }
            (Ok(_), _, _) => {
                return Err(errors::wrong_value(
                    "a TextCorpus brings its sentences and counts: pass neither",
                ))
            }
            (Err(_), Some(sentences), Some(counts)) => {
                let ids: PyReadonlyArray1<'_, i32> = ids.extract().map_err(|_| {
                    errors::wrong_value("ids must be a 1-D int32 array or a TextCorpus")
                })?;
                skipgram::SkipGramTrainer::new(
                    &elements(&ids),
                    &elements(&sentences),
                    &elements(&counts),
                    config,
                )?
            }
            (Err(_), _, _) => {
                return Err(errors::wrong_value(
                    "token ids need their sentences and counts arrays",
                ))
            }
        };
        trainer.start_at_epoch(start_epoch)?;
        Ok(SkipGramTrainer {
            inner: Mutex::new(trainer),
        })
    }

    /// Trains at least `max_words` more raw corpus words (0: to the end of the epoch), stopping
    /// early at the end of an epoch.
    fn run(
        &self,
        py: Python<'_>,
        input_vectors: &Bound<'_, PyAny>,
        output_vectors: &Bound<'_, PyAny>,
        biases: &Bound<'_, PyAny>,
        max_words: u64,
    ) -> PyResult<TrainingReport> {
        let mut tables = Tables::extract(py, input_vectors, output_vectors, biases)?;
        let mut trainer = self.inner.try_lock().map_err(|_| {
            errors::wrong_value("this trainer is already running in another thread")
        })?;
        let trainer: &mut skipgram::SkipGramTrainer = &mut trainer;
        let report = tables.update(py, |embeddings| trainer.run(embeddings, max_words, true))?;
        Ok(TrainingReport {
            epoch: report.epoch,
            words: report.words,
            pairs: report.pairs,
            loss: report.loss,
            epoch_end: report.epoch_end,
            finished: report.finished,
            diverged: report.diverged,
            learning_rate: report.learning_rate,
        })
    }

    /// Raw corpus words over all epochs.
    #[getter]
    fn total_words(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .total_words()
    }
}
