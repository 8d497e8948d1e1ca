//! The one error type of the core; the Python layer maps each variant to an exception class.

use std::fmt;

/// Everything the core can refuse. Each variant names the offending argument.
#[derive(Debug, Clone, PartialEq)]
pub enum NceError {
    /// A value or shape that is not acceptable (Python `ValueError`).
    InvalidArgument { argument: String, message: String },
    /// An id outside the range it must lie in (Python `IndexError`).
    OutOfRange { argument: String, message: String },
    /// A file that could not be read (Python `OSError`, or `FileNotFoundError`).
    Io {
        path: String,
        message: String,
        kind: std::io::ErrorKind,
    },
}

impl NceError {
    pub fn invalid(argument: impl Into<String>, message: impl Into<String>) -> Self {
        NceError::InvalidArgument {
            argument: argument.into(),
            message: message.into(),
        }
    }

    pub fn out_of_range(argument: impl Into<String>, message: impl Into<String>) -> Self {
        NceError::OutOfRange {
            argument: argument.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for NceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NceError::InvalidArgument { argument, message }
            | NceError::OutOfRange { argument, message } => write!(f, "{argument}: {message}"),
            NceError::Io { path, message, .. } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for NceError {}

pub type Result<T> = std::result::Result<T, NceError>;
