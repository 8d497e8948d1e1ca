//! Turning Python arguments into core arguments: array views of the right element type,
//! counts, seeds and the partition strategy. Errors name the argument.

use ndarray::ArrayView2;
use numpy::ndarray::Dimension;
use numpy::{
    Element, PyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods,
    PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyList, PyTuple};

use crate::error::NceError;
use crate::philox::Seed;
use crate::sharding::{PartitionStrategy, ShardedMatrix};

/// Class ids: an int32 or int64 matrix, read in place.
#[derive(FromPyObject)]
pub enum ClassMatrix<'py> {
    I64(PyReadonlyArray2<'py, i64>),
    I32(PyReadonlyArray2<'py, i32>),
}

impl<'py> ClassMatrix<'py> {
    pub fn as_any(&self) -> &Bound<'py, PyAny> {
        match self {
            ClassMatrix::I64(array) => array.as_any(),
            ClassMatrix::I32(array) => array.as_any(),
        }
    }
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

/// An array updated in place: `what` (e.g. "2-D float32 array") and writeable, else a
/// `TypeError`/`ValueError` naming the argument. It is viewed without NumPy's borrow
/// tracking, which would refuse readers in other threads; `memory_locks` keeps calls apart.
pub fn writable_array<'py, T: Element, D: Dimension>(
    array: &Bound<'py, PyAny>,
    name: &str,
    what: &str,
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    let typed = array
        .cast::<PyArray<T, D>>()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a {what}")))?;
    if !super::memory_locks::is_writeable(typed.as_untyped()) {
        return Err(PyValueError::new_err(format!(
            "{name} is read-only, but it is updated in place; pass a writeable array"
        )));
    }
    Ok(typed.clone())
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

/// An array of any rank of element type `T`, or a `TypeError` naming the argument.
pub fn array_of_any_rank<'py, T: Element>(
    array: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    array.extract::<PyReadonlyArrayDyn<'py, T>>().map_err(|_| {
        if array.cast::<PyArrayDyn<T>>().is_ok() {
            return overlap_error(name);
        }
        PyTypeError::new_err(format!(
            "{name} must be an array of {} (the dtype of inputs)",
            std::any::type_name::<T>()
        ))
    })
}

/// The name of shard `p` of `count` as the user wrote it: `weights` for a single array,
/// `weights[1]` for the second of a list of shards.
pub fn shard_name(name: &str, p: usize, count: usize) -> String {
    if count == 1 {
        name.to_string()
    } else {
        format!("{name}[{p}]")
    }
}

/// Every shard as a 2-D array of `T`.
pub fn shard_arrays<'py, T: Element>(
    shards: &[Bound<'py, PyAny>],
    name: &str,
) -> PyResult<Vec<PyReadonlyArray2<'py, T>>> {
    shards
        .iter()
        .enumerate()
        .map(|(p, shard)| matrix::<T>(shard, &shard_name(name, p, shards.len())))
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

/// `None`, an op seed `s` (any int: TensorFlow reduces it modulo `2**31 - 1`), or the raw
/// attribute pair `(seed, seed2)` (a tuple or list of two ints in `[-2**63, 2**64)`).
pub fn seed(value: Option<&Bound<'_, PyAny>>) -> PyResult<Seed> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Seed::Nondeterministic);
    };
    let items = if let Ok(pair) = value.cast::<PyTuple>() {
        Some(pair.iter().collect::<Vec<_>>())
    } else if let Ok(pair) = value.cast::<PyList>() {
        Some(pair.iter().collect::<Vec<_>>())
    } else {
        None
    };
    if let Some(items) = items {
        if items.len() != 2 {
            return Err(PyValueError::new_err(format!(
                "seed must be an int or a pair (seed, seed2), got a sequence of {} items",
                items.len()
            )));
        }
        return Ok(Seed::Attributes(
            attribute_value(&items[0], "seed[0]")?,
            attribute_value(&items[1], "seed[1]")?,
        ));
    }
    let integer = integer(value, "seed")?;
    match integer.extract::<i64>() {
        Ok(op_seed) => Ok(Seed::Op(op_seed)),
        // Only `op_seed mod (2**31 - 1)` matters; reduce a larger int exactly first.
        Err(_) => Ok(Seed::Op(integer.rem((1i64 << 31) - 1)?.extract::<i64>()?)),
    }
}

/// A Python or NumPy integer (not a bool or a float), as a Python int.
fn integer<'py>(value: &Bound<'py, PyAny>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let type_error = || {
        let kind = value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        PyTypeError::new_err(format!(
            "{name} must be None, an int, or a pair of ints (seed, seed2), got {kind}"
        ))
    };
    if value.is_instance_of::<PyBool>() || value.is_instance_of::<PyFloat>() {
        return Err(type_error());
    }
    value.call_method0("__index__").map_err(|_| type_error())
}

/// One raw seed attribute: 64 bits, given signed or unsigned.
fn attribute_value(value: &Bound<'_, PyAny>, name: &str) -> PyResult<i64> {
    let integer = integer(value, name)?;
    if let Ok(signed) = integer.extract::<i64>() {
        return Ok(signed);
    }
    integer
        .extract::<u64>()
        .map(|unsigned| unsigned as i64)
        .map_err(|_| {
            PyValueError::new_err(format!(
                "{name} must fit in 64 bits (in [-2**63, 2**64)), got {integer}"
            ))
        })
}

pub fn partition_strategy(name: &str) -> PyResult<PartitionStrategy> {
    Ok(PartitionStrategy::parse(name)?)
}
