//! Errors to the Python exception a user expects, in one place: the core's `NceError`, and the
//! binding's own `ArgumentError` for a refused argument.

use pyo3::exceptions::{
    PyFileNotFoundError, PyIndexError, PyIsADirectoryError, PyMemoryError, PyOSError,
    PyPermissionError, PyTypeError, PyValueError,
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

/// A refused argument, by the kind of mistake: the one place that decides which Python
/// exception each kind becomes (the core's `NceError` above follows the same rule).
#[derive(Debug)]
pub enum ArgumentError {
    /// A value of the wrong kind (a float where an int is expected, a wrong dtype...).
    WrongType(String),
    /// A value of the right kind with a wrong shape or value.
    WrongValue(String),
    /// An id outside its range.
    OutOfRange(String),
    /// Working memory the process cannot get.
    OutOfMemory(String),
}

impl From<ArgumentError> for PyErr {
    fn from(error: ArgumentError) -> PyErr {
        match error {
            ArgumentError::WrongType(message) => PyTypeError::new_err(message),
            ArgumentError::WrongValue(message) => PyValueError::new_err(message),
            ArgumentError::OutOfRange(message) => PyIndexError::new_err(message),
            ArgumentError::OutOfMemory(message) => PyMemoryError::new_err(message),
        }
    }
}

/// `TypeError` naming the argument.
pub fn wrong_type(message: impl Into<String>) -> PyErr {
    ArgumentError::WrongType(message.into()).into()
}

/// `ValueError` naming the argument.
pub fn wrong_value(message: impl Into<String>) -> PyErr {
    ArgumentError::WrongValue(message.into()).into()
}

/// `IndexError` naming the argument and the id.
pub fn out_of_range(message: impl Into<String>) -> PyErr {
    ArgumentError::OutOfRange(message.into()).into()
}

/// `MemoryError` saying what would not fit.
pub fn out_of_memory(message: impl Into<String>) -> PyErr {
    ArgumentError::OutOfMemory(message.into()).into()
}
