//! Text corpora as Python objects: `TextCorpus` counts the words of text files (plain, gzip
//! or bzip2; files or directories) with the interpreter released; `SkipGramTrainer` then
//! reads them again every epoch instead of holding the corpus in memory.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;

use super::fork_gate::detached;
use crate::error::NceError;
use crate::skipgram;

/// A corpus in text files, counted once; training reads the files again every epoch.
#[pyclass(module = "rustnce._rustnce", frozen)]
pub struct TextCorpus {
    pub(crate) inner: Arc<skipgram::TextCorpus>,
}

/// Whether the user pressed Ctrl-C (asked between buffers of a long count).
fn interrupted() -> bool {
    Python::attach(|py| py.check_signals().is_err())
}

#[pymethods]
impl TextCorpus {
    /// Counts the words of `paths` (files, or directories standing for the files under them)
    /// and keeps those seen at least `min_count` times, most frequent first; or, with `words`
    /// and `counts` (a saved model's vocabulary), keeps exactly those.
    #[new]
    #[pyo3(signature = (paths, min_count = 1, *, words = None, counts = None))]
    fn new(
        py: Python<'_>,
        paths: Vec<PathBuf>,
        min_count: i64,
        words: Option<Vec<String>>,
        counts: Option<PyReadonlyArray1<'_, i64>>,
    ) -> PyResult<Self> {
        if min_count < 1 {
            return Err(PyValueError::new_err(format!(
                "min_count must be at least 1, got {min_count}"
            )));
        }
        let given = match (words, counts) {
            (None, None) => None,
            (Some(words), Some(counts)) => {
                let counts = counts.as_array().to_vec();
                if let Some(count) = counts.iter().find(|&&count| count < 1) {
                    return Err(PyValueError::new_err(format!(
                        "counts must be at least 1, got {count}"
                    )));
                }
                let words = words.into_iter().map(String::into_boxed_str).collect();
                Some(skipgram::Vocabulary::new(words, counts)?)
            }
            _ => {
                return Err(PyValueError::new_err(
                    "words and counts go together: give both or neither",
                ))
            }
        };
        let counted = detached(py, move || {
            let mut stop = interrupted;
            match given {
                None => skipgram::TextCorpus::count(&paths, min_count as u64, &mut stop),
                Some(vocabulary) => {
                    skipgram::TextCorpus::with_vocabulary(&paths, vocabulary, &mut stop)
                }
            }
        });
        match counted {
            Ok(corpus) => Ok(TextCorpus {
                inner: Arc::new(corpus),
            }),
            Err(NceError::InvalidArgument { message, .. }) if message == "interrupted" => {
                Err(PyKeyboardInterrupt::new_err(()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The files read, in reading order (directories expanded).
    #[getter]
    fn files(&self) -> Vec<PathBuf> {
        self.inner
            .files
            .iter()
            .map(|file| file.path.clone())
            .collect()
    }

    /// Each file's compression: "text", "gzip" or "bzip2".
    #[getter]
    fn compressions(&self) -> Vec<&'static str> {
        self.inner
            .files
            .iter()
            .map(|file| match file.compression {
                skipgram::Compression::Plain => "text",
                skipgram::Compression::Gzip => "gzip",
                skipgram::Compression::Bzip2 => "bzip2",
            })
            .collect()
    }

    /// The vocabulary, most frequent first.
    #[getter]
    fn words(&self) -> Vec<&str> {
        self.inner
            .vocabulary
            .words
            .iter()
            .map(|word| &**word)
            .collect()
    }

    /// Each vocabulary word's count in the corpus (int64).
    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        self.inner.vocabulary.counts.clone().into_pyarray(py)
    }

    /// Words of the vocabulary in the corpus: the tokens one epoch trains on.
    #[getter]
    fn tokens(&self) -> u64 {
        self.inner.tokens
    }

    /// All words in the corpus, those outside the vocabulary included.
    #[getter]
    fn raw_tokens(&self) -> u64 {
        self.inner.raw_words
    }

    /// The highest count of a word left out for being below `min_count` (0: none was).
    #[getter]
    fn most_frequent_dropped(&self) -> u64 {
        self.inner.most_frequent_dropped
    }

    /// Whether some line holds two vocabulary words (reads up to the first that does).
    fn has_pairs(&self, py: Python<'_>) -> PyResult<bool> {
        let corpus = Arc::clone(&self.inner);
        Ok(detached(py, move || skipgram::has_pairs(&corpus))?)
    }

    fn __len__(&self) -> usize {
        self.inner.tokens as usize
    }

    fn __repr__(&self) -> String {
        format!(
            "TextCorpus({} files, {} words, {} tokens)",
            self.inner.files.len(),
            self.inner.vocabulary.len(),
            self.inner.tokens
        )
    }
}
