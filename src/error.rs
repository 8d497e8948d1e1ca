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
    /// An allocation the operating system refused, reported instead of aborting the process
    /// (Python `MemoryError`).
    OutOfMemory { argument: String, message: String },
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

    /// `elements` values of `T` for `what` could not be allocated.
    pub fn out_of_memory<T>(argument: impl Into<String>, what: &str, elements: usize) -> Self {
        let bytes = (elements as u128) * (std::mem::size_of::<T>() as u128);
        NceError::OutOfMemory {
            argument: argument.into(),
            message: format!("cannot allocate {bytes} bytes for {what} ({elements} values)"),
        }
    }
}

impl fmt::Display for NceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NceError::InvalidArgument { argument, message }
            | NceError::OutOfRange { argument, message }
            | NceError::OutOfMemory { argument, message } => write!(f, "{argument}: {message}"),
            NceError::Io { path, message, .. } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for NceError {}

pub type Result<T> = std::result::Result<T, NceError>;

/// An empty vector with room for `capacity` values, or `OutOfMemory` naming `argument` where
/// `Vec::with_capacity` would abort the process.
pub fn try_vec<T>(capacity: usize, argument: &str, what: &str) -> Result<Vec<T>> {
    let mut vector = Vec::new();
    vector
        .try_reserve_exact(capacity)
        .map_err(|_| NceError::out_of_memory::<T>(argument, what, capacity))?;
    Ok(vector)
}

/// The largest count TensorFlow's int32-valued attributes (`num_sampled`, `num_true`) and
/// tables (the unigram samplers' `range_max`) allow: `2**31 - 1`.
pub const MAX_COUNT: usize = i32::MAX as usize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_allocations_are_errors_not_aborts() {
        let error = try_vec::<u64>(usize::MAX / 4, "num_sampled", "the candidates").unwrap_err();
        assert!(matches!(error, NceError::OutOfMemory { .. }));
        assert!(error
            .to_string()
            .starts_with("num_sampled: cannot allocate"));
        assert!(try_vec::<u64>(16, "x", "y").unwrap().capacity() >= 16);
    }
}
