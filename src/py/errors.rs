//! `NceError` to the Python exception a user expects.

use pyo3::exceptions::{
    PyFileNotFoundError, PyIndexError, PyIsADirectoryError, PyMemoryError, PyOSError,
    PyPermissionError, PyValueError,
};
use pyo3::PyErr;

use crate::error::NceError;

impl From<NceError> for PyErr {
    fn from(error: NceError) -> PyErr {
        let message = error.to_string();
        match error {
            NceError::InvalidArgument { .. } => PyValueError::new_err(message),
            NceError::OutOfRange { .. } => PyIndexError::new_err(message),
            NceError::OutOfMemory { .. } => PyMemoryError::new_err(message),
            NceError::Io { kind, .. } => match kind {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
                std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(message),
                _ => PyOSError::new_err(message),
            },
        }
    }
}
