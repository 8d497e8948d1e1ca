//! Turning Python arguments into core arguments: array views of the right element type,
//! counts, seeds and the partition strategy. Errors name the argument.

use ndarray::ArrayView2;
use numpy::{
    Element, PyArray1, PyArray2, PyArrayDescrMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::error::NceError;
use crate::philox::Seed;
use crate::sharding::{PartitionStrategy, ShardedMatrix};

/// Class ids: an int32 or int64 matrix, read in place.
#[derive(FromPyObject)]
pub enum ClassMatrix<'py> {
    I64(PyReadonlyArray2<'py, i64>),
    I32(PyReadonlyArray2<'py, i32>),
}

/// Calls `$body` with `$view` bound to the class matrix's view, whatever its element type.
macro_rules! with_class_view {
    ($matrix:expr, |$view:ident| $body:expr) => {
        match &$matrix {
            $crate::py::arguments::ClassMatrix::I64(array) => {
                let $view = array.as_array();
                $body
            }
            $crate::py::arguments::ClassMatrix::I32(array) => {
                let $view = array.as_array();
                $body
            }
        }
    };
}
pub(crate) use with_class_view;

/// The floating element type of an array argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatType {
    F32,
    F64,
}

pub fn float_type(array: &Bound<'_, PyAny>, name: &str) -> PyResult<FloatType> {
    let untyped = array
        .cast::<PyUntypedArray>()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a NumPy array")))?;
    let py = array.py();
    let dtype = untyped.dtype();
    if dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
        Ok(FloatType::F32)
    } else if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) {
        Ok(FloatType::F64)
    } else {
        Err(PyTypeError::new_err(format!(
            "{name} must be float32 or float64, got {dtype}"
        )))
    }
}

/// A 2-D array of element type `T`, or a `TypeError` naming the argument.
pub fn matrix<'py, T: Element>(
    array: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray2<'py, T>> {
    array.extract::<PyReadonlyArray2<'py, T>>().map_err(|_| {
        if array.cast::<PyArray2<T>>().is_ok() {
            return overlap_error(name);
        }
        PyTypeError::new_err(format!(
            "{name} must be a 2-D array of {} (the dtype of inputs)",
            std::any::type_name::<T>()
        ))
    })
}

/// The error for an array of the right type that cannot be borrowed: it overlaps an array
/// this call writes.
fn overlap_error(name: &str) -> PyErr {
    PyValueError::new_err(format!(
        "{name} overlaps an array this call updates in place; pass a copy"
    ))
}

/// A 1-D array of element type `T`, or a `TypeError` naming the argument.
pub fn vector<'py, T: Element>(
    array: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    array.extract::<PyReadonlyArray1<'py, T>>().map_err(|_| {
        if array.cast::<PyArray1<T>>().is_ok() {
            return overlap_error(name);
        }
        PyTypeError::new_err(format!(
            "{name} must be a 1-D array of {}",
            std::any::type_name::<T>()
        ))
    })
}

/// Every shard as a 2-D array of `T`.
pub fn shard_arrays<'py, T: Element>(
    shards: &[Bound<'py, PyAny>],
    name: &str,
) -> PyResult<Vec<PyReadonlyArray2<'py, T>>> {
    shards
        .iter()
        .enumerate()
        .map(|(p, shard)| matrix::<T>(shard, &format!("{name}[{p}]")))
        .collect()
}

/// Views of the shards as one sharded matrix.
pub fn sharded<'a, T: Element + Copy>(
    arrays: &'a [PyReadonlyArray2<'_, T>],
    strategy: PartitionStrategy,
    name: &str,
) -> Result<ShardedMatrix<'a, T>, NceError> {
    let views: Vec<ArrayView2<'a, T>> = arrays.iter().map(|a| a.as_array()).collect();
    ShardedMatrix::new(views, strategy, name)
}

/// A count that must be at least `minimum`.
pub fn count(value: i64, name: &str, minimum: i64) -> PyResult<usize> {
    if value < minimum {
        return Err(PyValueError::new_err(format!(
            "{name} must be at least {minimum}, got {value}"
        )));
    }
    usize::try_from(value)
        .map_err(|_| PyValueError::new_err(format!("{name} is too large: {value}")))
}

/// `None`, an op seed `s`, or the raw attribute pair `(seed, seed2)`.
pub fn seed(value: Option<&Bound<'_, PyAny>>) -> PyResult<Seed> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Seed::Nondeterministic);
    };
    if let Ok(op_seed) = value.extract::<i64>() {
        return Ok(Seed::Op(op_seed));
    }
    if let Ok((seed, seed2)) = value.extract::<(i64, i64)>() {
        return Ok(Seed::Attributes(seed, seed2));
    }
    Err(PyTypeError::new_err(
        "seed must be None, an int, or a pair of ints (seed, seed2)",
    ))
}

pub fn partition_strategy(name: &str) -> PyResult<PartitionStrategy> {
    Ok(PartitionStrategy::parse(name)?)
}
