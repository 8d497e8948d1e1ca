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
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::errors;
use crate::bfloat16::Precision;
use crate::element_types::ClassId;
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

    /// `[batch, num_true]`.
    pub fn shape(&self) -> [usize; 2] {
        match self {
            ClassMatrix::I64(array) => [array.shape()[0], array.shape()[1]],
            ClassMatrix::I32(array) => [array.shape()[0], array.shape()[1]],
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
        .map_err(|_| errors::wrong_type(format!("{name} must be a NumPy array")))?;
    let py = array.py();
    let dtype = untyped.dtype();
    if dtype.is_equiv_to(&numpy::dtype::<f32>(py)) {
        Ok(FloatType::F32)
    } else if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) {
        Ok(FloatType::F64)
    } else {
        Err(errors::wrong_type(format!(
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
        errors::wrong_type(format!(
            "{name} must be a 2-D array of {} (the dtype of inputs)",
            std::any::type_name::<T>()
        ))
    })
}

/// The error for an array of the right type that cannot be borrowed: it overlaps an array
/// this call writes.
fn overlap_error(name: &str) -> PyErr {
    errors::wrong_value(format!(
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
        .map_err(|_| errors::wrong_type(format!("{name} must be a {what}")))?;
    if !super::memory_locks::is_writeable(typed.as_untyped()) {
        return Err(errors::wrong_value(format!(
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
        errors::wrong_type(format!(
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
        errors::wrong_type(format!(
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
            return Err(errors::wrong_value(format!(
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
        errors::wrong_type(format!(
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
            errors::wrong_value(format!(
                "{name} must fit in 64 bits (in [-2**63, 2**64)), got {integer}"
            ))
        })
}

// ---------------------------------------------------------------------------------------------
// The public functions' arguments as the user passes them: each check below is the only one a
// call makes before the core, and names the argument as the user wrote it (`weights[1]` for the
// second shard of a list). See the "Errors" section of docs/api.md.

/// TensorFlow's int32 range for `num_sampled`, `num_true` and the unigram tables.
pub const MAX_COUNT: i64 = (1 << 31) - 1;

/// Working memory from which a call first asks the operating system whether it will provide
/// it (`rustnce._arguments.check_memory`): a refused allocation inside the core would abort.
const MEMORY_PROBE_BYTES: usize = 1 << 30;

pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "?".into())
}

pub fn repr(value: &Bound<'_, PyAny>) -> String {
    value
        .repr()
        .map(|text| text.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A shape as Python prints a tuple: `(3,)`, `(3, 2)`.
pub fn shape_tuple(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn shape_list(shape: &[usize]) -> String {
    format!("{shape:?}")
}

fn is_bool(value: &Bound<'_, PyAny>) -> bool {
    value.is_instance_of::<PyBool>()
        || value
            .get_type()
            .name()
            .is_ok_and(|name| name.to_cow().is_ok_and(|n| n == "bool" || n == "bool_"))
}

/// An integer argument (a Python or NumPy int; not a bool or a float), optionally within
/// `[minimum, maximum]`. An int beyond int64 is refused by the bound on its side, or saturates
/// where that side has none.
pub fn as_int(
    value: &Bound<'_, PyAny>,
    name: &str,
    minimum: Option<i64>,
    maximum: Option<i64>,
) -> PyResult<i64> {
    let py = value.py();
    let integer = if value.is_exact_instance_of::<PyInt>() {
        value.clone()
    } else {
        if is_bool(value) {
            return Err(errors::wrong_type(format!(
                "{name} must be an int, got a bool ({})",
                repr(value)
            )));
        }
        // SAFETY: `value` is a live object and the interpreter is attached.
        unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyNumber_Index(value.as_ptr())) }
            .map_err(|error| {
                if error.is_instance_of::<PyTypeError>(py) {
                    errors::wrong_type(format!(
                        "{name} must be an int, got {} ({})",
                        type_name(value),
                        repr(value)
                    ))
                } else {
                    error
                }
            })?
    };
    let (result, text) = match integer.extract::<i64>() {
        Ok(result) => (result, result.to_string()),
        Err(_) => {
            // Beyond int64: refused by the bound on its side, if there is one.
            let negative = integer.lt(0)?;
            let text = integer.str()?.to_string();
            match (negative, minimum, maximum) {
                (true, Some(minimum), _) => {
                    return Err(errors::wrong_value(format!(
                        "{name} must be at least {minimum}, got {text}"
                    )))
                }
                (false, _, Some(maximum)) => {
                    return Err(errors::wrong_value(format!(
                        "{name} must be at most {maximum}, got {text}"
                    )))
                }
                _ => (if negative { i64::MIN } else { i64::MAX }, text),
            }
        }
    };
    if let Some(minimum) = minimum.filter(|&minimum| result < minimum) {
        return Err(errors::wrong_value(format!(
            "{name} must be at least {minimum}, got {text}"
        )));
    }
    if let Some(maximum) = maximum.filter(|&maximum| result > maximum) {
        return Err(errors::wrong_value(format!(
            "{name} must be at most {maximum}, got {text}"
        )));
    }
    Ok(result)
}

/// `num_sampled`/`num_true`: an int in `[1, 2**31 - 1]`.
pub fn as_count(value: &Bound<'_, PyAny>, name: &str) -> PyResult<usize> {
    Ok(as_int(value, name, Some(1), Some(MAX_COUNT))? as usize)
}

/// A Python or NumPy bool; ints are refused (`unique=1` is almost always a slip).
pub fn as_bool(value: &Bound<'_, PyAny>, name: &str) -> PyResult<bool> {
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(flag.is_true());
    }
    if is_bool(value) {
        return value.is_truthy();
    }
    Err(errors::wrong_type(format!(
        "{name} must be a bool, got {} ({})",
        type_name(value),
        repr(value)
    )))
}

/// A finite real number (a Python or NumPy int or float, not a bool or a string).
pub fn as_finite_float(value: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    let py = value.py();
    let result = if let Ok(float) = value.cast_exact::<PyFloat>() {
        float.value()
    } else {
        let numpy = py.import("numpy")?;
        let real = !is_bool(value)
            && (value.is_instance_of::<PyInt>()
                || value.is_instance_of::<PyFloat>()
                || value.is_instance(&numpy.getattr("integer")?)?
                || value.is_instance(&numpy.getattr("floating")?)?);
        if !real {
            return Err(errors::wrong_type(format!(
                "{name} must be a real number, got {} ({})",
                type_name(value),
                repr(value)
            )));
        }
        // SAFETY: `value` is a live object and the interpreter is attached.
        let float =
            unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyNumber_Float(value.as_ptr())) };
        match float {
            Ok(float) => float.extract::<f64>()?,
            Err(error) if error.is_instance_of::<pyo3::exceptions::PyOverflowError>(py) => {
                return Err(errors::wrong_value(format!(
                    "{name} is too large for a float: {}",
                    value.str()?
                )))
            }
            Err(error) => return Err(error),
        }
    };
    if !result.is_finite() {
        return Err(errors::wrong_value(format!(
            "{name} must be finite, got {}",
            PyFloat::new(py, result).str()?
        )));
    }
    Ok(result)
}

/// `partition_strategy`: `"div"` or `"mod"`.
pub struct PartitionStrategyArgument(pub PartitionStrategy);

impl<'a, 'py> FromPyObject<'a, 'py> for PartitionStrategyArgument {
    type Error = PyErr;

    fn extract(value: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let Ok(text) = value.cast::<PyString>() else {
            return Err(errors::wrong_type(format!(
                "partition_strategy must be one of 'div', 'mod', got {}",
                type_name(&value)
            )));
        };
        match text.to_cow()?.as_ref() {
            "div" => Ok(PartitionStrategyArgument(PartitionStrategy::Div)),
            "mod" => Ok(PartitionStrategyArgument(PartitionStrategy::Mod)),
            _ => Err(errors::wrong_value(format!(
                "partition_strategy must be one of 'div', 'mod', got {}",
                repr(&value)
            ))),
        }
    }
}

/// `precision`: `"float32"` or `"bfloat16"` (the matrix products' arithmetic).
pub struct PrecisionArgument(pub Precision);

/// The default `precision`.
pub const FLOAT32: PrecisionArgument = PrecisionArgument(Precision::Float32);

impl<'a, 'py> FromPyObject<'a, 'py> for PrecisionArgument {
    type Error = PyErr;

    fn extract(value: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let Ok(text) = value.cast::<PyString>() else {
            return Err(errors::wrong_type(format!(
                "precision must be one of 'float32', 'bfloat16', got {}",
                type_name(&value)
            )));
        };
        match Precision::parse(text.to_cow()?.as_ref()) {
            Some(precision) => Ok(PrecisionArgument(precision)),
            None => Err(errors::wrong_value(format!(
                "precision must be one of 'float32', 'bfloat16', got {}",
                repr(&value)
            ))),
        }
    }
}

fn is_exact_array(value: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `value` is a live object and the interpreter is attached.
    unsafe { numpy::npyffi::PyArray_CheckExact(value.py(), value.as_ptr()) != 0 }
}

/// A file path (`str`, `bytes` or `os.PathLike`) as a `String`; `""` for none.
pub fn as_path(value: &Bound<'_, PyAny>, name: &str) -> PyResult<String> {
    let py = value.py();
    let os = py.import("os")?;
    let path = os.getattr("fspath")?.call1((value,)).map_err(|error| {
        if error.is_instance_of::<PyTypeError>(py) {
            errors::wrong_type(format!(
                "{name} must be a path (str, bytes or os.PathLike), got {}",
                type_name(value)
            ))
        } else {
            error
        }
    })?;
    let path = if path.is_instance_of::<pyo3::types::PyBytes>() {
        os.getattr("fsdecode")?.call1((path,))?
    } else {
        path
    };
    let text: String = path.extract()?;
    if text.contains('\0') {
        return Err(errors::wrong_value(format!(
            "{name} must not contain a NUL character: {}",
            repr(&path)
        )));
    }
    Ok(text)
}

/// Counts as float32 (as TensorFlow's `unigrams` attribute holds them); values beyond float32
/// become infinite without a warning, and the core refuses them.
pub fn as_unigrams(value: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f32>> {
    let py = value.py();
    if value.is_instance_of::<PyString>() || value.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(errors::wrong_type(format!(
            "{name} must be a sequence of counts, got {}",
            type_name(value)
        )));
    }
    let array = as_array(value, name)?;
    if !matches!(dtype_kind(&array), b'f' | b'i' | b'u') {
        return Err(errors::wrong_type(format!(
            "{name} must hold real counts, got dtype {}",
            array.dtype().str()?
        )));
    }
    if array.ndim() != 1 {
        return Err(errors::wrong_value(format!(
            "{name} must be a list of counts, got shape {}",
            shape_tuple(array.shape())
        )));
    }
    let numpy = py.import("numpy")?;
    let keywords = pyo3::types::PyDict::new(py);
    keywords.set_item("over", "ignore")?;
    keywords.set_item("invalid", "ignore")?;
    let quiet = numpy.getattr("errstate")?.call((), Some(&keywords))?;
    quiet.call_method0("__enter__")?;
    let converted = astype(&array, numpy::dtype::<f32>(py).as_any());
    quiet.call_method1("__exit__", (py.None(), py.None(), py.None()))?;
    let counts = converted?.cast_into::<numpy::PyArray1<f32>>()?;
    let counts = counts.readonly();
    Ok(counts.as_array().to_vec())
}

/// `numpy.asarray(value)` (the array itself when it already is one), with a ragged or
/// otherwise unconvertible value named.
pub fn as_array<'py>(
    value: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = value.py();
    if is_exact_array(value) {
        return Ok(value.cast::<PyUntypedArray>()?.clone());
    }
    match py.import("numpy")?.getattr("asarray")?.call1((value,)) {
        Ok(array) => Ok(array.cast_into::<PyUntypedArray>()?),
        Err(error)
            if error.is_instance_of::<PyValueError>(py)
                || error.is_instance_of::<PyTypeError>(py) =>
        {
            Err(errors::wrong_value(format!(
                "{name} cannot be made into an array: {}",
                error.value(py)
            )))
        }
        Err(error) => Err(error),
    }
}

fn is_dtype<T: Element>(array: &Bound<'_, PyUntypedArray>) -> bool {
    array.dtype().is_equiv_to(&numpy::dtype::<T>(array.py()))
}

fn dtype_kind(array: &Bound<'_, PyUntypedArray>) -> u8 {
    array.dtype().kind()
}

fn astype<'py>(
    array: &Bound<'py, PyUntypedArray>,
    dtype: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let keywords = pyo3::types::PyDict::new(array.py());
    keywords.set_item("copy", false)?;
    Ok(array
        .call_method("astype", (dtype,), Some(&keywords))?
        .cast_into::<PyUntypedArray>()?)
}

/// Integer ids that are not int64 (or int32, for a class matrix) as int64; an unsigned id
/// beyond int64 is refused.
fn widen_ids<'py>(
    array: &Bound<'py, PyUntypedArray>,
    name: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    if dtype_kind(array) == b'u' && array.len() > 0 {
        let largest = array.call_method0("max")?;
        if largest.gt(i64::MAX)? {
            return Err(errors::out_of_range(format!(
                "{name}: id {largest} does not fit in int64"
            )));
        }
    }
    astype(array, numpy::dtype::<i64>(array.py()).as_any())
}

/// Class ids `[batch, num_true]`: int32 and int64 are read in place; other integer types are
/// widened to int64; floats are refused (TensorFlow would truncate them silently).
pub fn as_class_matrix<'py>(value: &Bound<'py, PyAny>, name: &str) -> PyResult<ClassMatrix<'py>> {
    let mut array = as_array(value, name)?;
    if !(is_dtype::<i64>(&array) || is_dtype::<i32>(&array)) {
        let kind = dtype_kind(&array);
        if !matches!(kind, b'i' | b'u') {
            if array.len() == 0 && kind == b'f' {
                array = astype(&array, numpy::dtype::<i64>(value.py()).as_any())?;
            } else {
                return Err(errors::wrong_type(format!(
                    "{name} must hold integer class ids (int32 or int64), got dtype {}{}",
                    array.dtype(),
                    if kind == b'f' {
                        "; TensorFlow would truncate floats silently"
                    } else {
                        ""
                    }
                )));
            }
        }
    }
    if array.ndim() != 2 {
        return Err(errors::wrong_value(format!(
            "{name} must be a matrix [batch_size, num_true], got shape {}",
            shape_tuple(array.shape())
        )));
    }
    if !(is_dtype::<i64>(&array) || is_dtype::<i32>(&array)) {
        array = widen_ids(&array, name)?;
    }
    array
        .extract::<ClassMatrix<'py>>()
        .map_err(|_| overlap_error(name))
}

/// A 1-D vector of int64 ids.
pub fn as_id_vector<'py>(
    value: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray1<'py, i64>> {
    let mut array = as_array(value, name)?;
    if !is_dtype::<i64>(&array) {
        let kind = dtype_kind(&array);
        if !(matches!(kind, b'i' | b'u') || (array.len() == 0 && kind == b'f')) {
            return Err(errors::wrong_type(format!(
                "{name} must hold integer ids, got dtype {}",
                array.dtype()
            )));
        }
    }
    if array.ndim() != 1 {
        return Err(errors::wrong_value(format!(
            "{name} must be a vector, got shape {}",
            shape_tuple(array.shape())
        )));
    }
    if !is_dtype::<i64>(&array) {
        array = widen_ids(&array, name)?;
    }
    vector::<i64>(array.as_any(), name)
}

/// Every id in `[0, limit)`, else an `IndexError` naming the first offending id.
pub fn check_id_range<L: ClassId>(
    ids: impl Iterator<Item = L>,
    name: &str,
    limit: usize,
    what: &str,
) -> PyResult<()> {
    let (mut low, mut high) = (i64::MAX, i64::MIN);
    for id in ids {
        let id: i64 = id.into();
        low = low.min(id);
        high = high.max(id);
    }
    if low > high {
        return Ok(());
    }
    if low < 0 || high as u64 >= limit as u64 {
        let bad = if low < 0 { low } else { high };
        return Err(errors::out_of_range(format!(
            "{name}: id {bad} is out of range [0, {what} = {limit})"
        )));
    }
    Ok(())
}

/// A float32 or float64 array of `ndim` dimensions.
pub fn as_float_array<'py>(
    value: &Bound<'py, PyAny>,
    name: &str,
    ndim: usize,
) -> PyResult<(Bound<'py, PyUntypedArray>, FloatType)> {
    let array = as_array(value, name)?;
    let float = if is_dtype::<f32>(&array) {
        FloatType::F32
    } else if is_dtype::<f64>(&array) {
        FloatType::F64
    } else {
        let dtype = array.dtype();
        let hint = if dtype.kind() == b'f' && matches!(dtype.itemsize(), 4 | 8) {
            " (non-native byte order: convert with .astype(np.float32) or np.float64)"
        } else {
            ""
        };
        return Err(errors::wrong_type(format!(
            "{name} must be float32 or float64, got dtype {dtype}{hint}"
        )));
    };
    if array.ndim() != ndim {
        return Err(errors::wrong_value(format!(
            "{name} must be {ndim}-D, got shape {}",
            shape_tuple(array.shape())
        )));
    }
    Ok((array, float))
}

/// The shards of a single array or of a list or tuple of shards.
pub fn shard_items<'py>(value: &Bound<'py, PyAny>) -> Vec<Bound<'py, PyAny>> {
    if let Ok(list) = value.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        vec![value.clone()]
    }
}

/// A single array or a list of shards, each of the dtype of `inputs` (never converted: the
/// weights are read in place, so a different dtype is an error).
pub fn as_shards<'py>(
    value: &Bound<'py, PyAny>,
    name: &str,
    ndim: usize,
    float: FloatType,
) -> PyResult<Vec<Bound<'py, PyUntypedArray>>> {
    let items = shard_items(value);
    if items.is_empty() {
        return Err(errors::wrong_value(format!(
            "{name} must be an array or a non-empty list of shards"
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(p, item)| {
            let label = shard_name(name, p, items.len());
            let (array, shard_float) = as_float_array(item, &label, ndim)?;
            if shard_float != float {
                return Err(errors::wrong_type(format!(
                    "{label} has dtype {} but inputs have dtype {}; rustnce reads weights and \
                     biases in place and does not cast them",
                    array.dtype(),
                    float.name()
                )));
            }
            Ok(array)
        })
        .collect()
}

/// Shards that follow the partition strategy (every shard non-empty, sizes `q+1` then `q`);
/// returns the total number of rows.
pub fn check_shard_layout(
    shards: &[Bound<'_, PyUntypedArray>],
    name: &str,
    strategy: PartitionStrategy,
) -> PyResult<usize> {
    let sizes: Vec<usize> = shards.iter().map(|shard| shard.shape()[0]).collect();
    let rows: usize = sizes.iter().sum();
    let count = shards.len();
    if count > 1 {
        if rows < count {
            return Err(errors::wrong_value(format!(
                "{name}: {count} shards hold only {rows} rows in total; every shard needs at \
                 least one row (TensorFlow divides by zero here)"
            )));
        }
        let wanted: Vec<usize> = (0..count)
            .map(|p| crate::sharding::shard_size(rows, count, p))
            .collect();
        if sizes != wanted {
            return Err(errors::wrong_value(format!(
                "{name}: shard sizes {sizes:?} do not follow partition_strategy '{}': {rows} \
                 rows over {count} shards must be split {wanted:?} (TensorFlow would read wrong \
                 rows or fail)",
                strategy.name()
            )));
        }
        let trailing = &shards[0].shape()[1..];
        for (p, shard) in shards.iter().enumerate() {
            if &shard.shape()[1..] != trailing {
                return Err(errors::wrong_value(format!(
                    "{name}[{p}] has shape {} but {name}[0] has {}: all shards must agree on \
                     everything but their rows",
                    shape_tuple(shard.shape()),
                    shape_tuple(shards[0].shape())
                )));
            }
        }
    }
    Ok(rows)
}

/// `(sampled_candidates, true_expected_count, sampled_expected_count)` out of
/// `sampled_values`, refused as TensorFlow's unpacking refuses it.
pub fn unpack_sampled_values<'py>(value: &Bound<'py, PyAny>) -> PyResult<[Bound<'py, PyAny>; 3]> {
    const TRIPLE: &str = "sampled_values must be a triple (sampled_candidates, \
                          true_expected_count, sampled_expected_count), got";
    let items: Vec<Bound<'py, PyAny>> = if let Ok(tuple) = value.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        if value.is_instance_of::<PyString>()
            || value.is_instance_of::<pyo3::types::PyBytes>()
            || !value.hasattr("__iter__")?
        {
            return Err(errors::wrong_type(format!("{TRIPLE} {}", type_name(value))));
        }
        value.try_iter()?.collect::<PyResult<_>>()?
    };
    <[Bound<'py, PyAny>; 3]>::try_from(items)
        .map_err(|items| errors::wrong_value(format!("{TRIPLE} {} item(s)", items.len())))
}

/// Expected counts in the dtype of `inputs` (a small copy when the dtypes differ).
pub fn as_expected_counts<'py>(
    value: &Bound<'py, PyAny>,
    name: &str,
    float: FloatType,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let array = as_array(value, name)?;
    if !matches!(dtype_kind(&array), b'f' | b'i' | b'u') {
        return Err(errors::wrong_type(format!(
            "{name} must hold real numbers, got dtype {}",
            array.dtype()
        )));
    }
    float.convert(&array)
}

/// Expected counts must broadcast to the logits they are subtracted from, without widening
/// them (docs/semantics.md §2.1).
pub fn check_broadcast(counts: &[usize], shape: [usize; 2], name: &str) -> PyResult<()> {
    let fits = counts.len() <= 2
        && counts
            .iter()
            .rev()
            .zip(shape.iter().rev())
            .all(|(&count, &wanted)| count == wanted || count == 1);
    if fits {
        return Ok(());
    }
    Err(errors::wrong_value(format!(
        "{name} has shape {}, which does not broadcast to the logits it is subtracted from, {}",
        shape_list(counts),
        shape_list(&shape)
    )))
}

impl FloatType {
    pub fn name(self) -> &'static str {
        match self {
            FloatType::F32 => "float32",
            FloatType::F64 => "float64",
        }
    }

    pub fn itemsize(self) -> usize {
        match self {
            FloatType::F32 => 4,
            FloatType::F64 => 8,
        }
    }

    /// An empty vector of this type.
    pub fn empty(self, py: Python<'_>) -> Bound<'_, PyUntypedArray> {
        match self {
            FloatType::F32 => PyArray1::<f32>::zeros(py, 0, false).as_untyped().clone(),
            FloatType::F64 => PyArray1::<f64>::zeros(py, 0, false).as_untyped().clone(),
        }
    }

    /// `array.astype(this type, copy=False)`.
    pub fn convert<'py>(
        self,
        array: &Bound<'py, PyUntypedArray>,
    ) -> PyResult<Bound<'py, PyUntypedArray>> {
        let py = array.py();
        let dtype = match self {
            FloatType::F32 => numpy::dtype::<f32>(py),
            FloatType::F64 => numpy::dtype::<f64>(py),
        };
        if array.dtype().is_equiv_to(&dtype) {
            return Ok(array.clone());
        }
        astype(array, dtype.as_any())
    }
}

/// `upstream`: `"sum"`, `"mean"`, or one weight per example (an array, list or tuple).
pub enum UpstreamArgument<'py> {
    Sum,
    Mean,
    PerExample(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for UpstreamArgument<'py> {
    type Error = PyErr;

    fn extract(value: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(text) = value.cast::<PyString>() {
            return match text.to_cow()?.as_ref() {
                "sum" => Ok(UpstreamArgument::Sum),
                "mean" => Ok(UpstreamArgument::Mean),
                _ => Err(errors::wrong_value(format!(
                    "upstream must be \"sum\", \"mean\" or an array, got {}",
                    repr(&value)
                ))),
            };
        }
        let array_like = value.is_instance_of::<PyUntypedArray>()
            || value.is_instance_of::<PyList>()
            || value.is_instance_of::<PyTuple>();
        if !array_like {
            return Err(errors::wrong_type(format!(
                "upstream must be \"sum\", \"mean\" or an array, got {}",
                type_name(&value)
            )));
        }
        Ok(UpstreamArgument::PerExample(value.to_owned()))
    }
}

impl<'py> UpstreamArgument<'py> {
    /// One weight per example as an array `[batch]` in the dtype of `inputs`.
    pub fn per_example(
        &self,
        batch: usize,
        float: FloatType,
    ) -> PyResult<Option<Bound<'py, PyUntypedArray>>> {
        let UpstreamArgument::PerExample(value) = self else {
            return Ok(None);
        };
        let array = as_array(value, "upstream")?;
        if !matches!(dtype_kind(&array), b'f' | b'i' | b'u') {
            return Err(errors::wrong_type(format!(
                "upstream must hold real numbers, got dtype {}",
                array.dtype()
            )));
        }
        if array.shape() != [batch] {
            return Err(errors::wrong_value(format!(
                "upstream must have shape [batch]=({batch},), got {}",
                shape_tuple(array.shape())
            )));
        }
        Ok(Some(float.convert(&array)?))
    }
}

/// An in-place target (or each of its shards) must be a NumPy array: anything else would be
/// converted to a temporary copy, and the update silently lost.
pub fn check_in_place_targets(value: &Bound<'_, PyAny>, name: &str) -> PyResult<()> {
    let items = shard_items(value);
    for (p, item) in items.iter().enumerate() {
        if !item.is_instance_of::<PyUntypedArray>() {
            return Err(errors::wrong_type(format!(
                "{} must be a NumPy array, because it is updated in place (a {} would be copied \
                 and the update lost)",
                shard_name(name, p, items.len()),
                type_name(item)
            )));
        }
    }
    Ok(())
}

/// In-place targets must be writeable, and their strides must keep elements apart (an
/// `as_strided` view would be written from several threads at once). Conservative: strides
/// that do not visibly keep elements apart are refused too.
pub fn check_in_place_layout(arrays: &[Bound<'_, PyUntypedArray>], name: &str) -> PyResult<()> {
    for (p, array) in arrays.iter().enumerate() {
        if !super::memory_locks::is_writeable(array) {
            return Err(errors::wrong_value(format!(
                "{} is read-only, but it is updated in place; pass a writeable array",
                shard_name(name, p, arrays.len())
            )));
        }
    }
    for (p, array) in arrays.iter().enumerate() {
        if array.len() <= 1 {
            continue;
        }
        let mut extent = array.dtype().itemsize() as isize;
        let mut axes: Vec<(isize, usize)> = array
            .strides()
            .iter()
            .zip(array.shape())
            .filter(|(_, &length)| length > 1)
            .map(|(&stride, &length)| (stride.abs(), length))
            .collect();
        axes.sort_unstable();
        for (stride, length) in axes {
            if stride < extent {
                return Err(errors::wrong_value(format!(
                    "{} has strides {} under which elements share memory, but it is updated in \
                     place; pass a copy",
                    shard_name(name, p, arrays.len()),
                    strides_tuple(array.strides())
                )));
            }
            extent += stride * (length as isize - 1);
        }
    }
    Ok(())
}

fn strides_tuple(strides: &[isize]) -> String {
    match strides {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            strides
                .iter()
                .map(isize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Refuses with `MemoryError` a call whose working memory the operating system will not
/// provide, before the core would abort on the failed allocation; below 1 GiB nothing is asked.
pub fn check_memory(py: Python<'_>, bytes: usize, what: impl FnOnce() -> String) -> PyResult<()> {
    if bytes < MEMORY_PROBE_BYTES {
        return Ok(());
    }
    py.import("rustnce._arguments")?
        .getattr("check_memory")?
        .call1((bytes, what()))?;
    Ok(())
}

/// An optional argument: its TensorFlow default, or what the user passed (checked where it is
/// used, so that the message names it).
pub enum Argument<'py, T> {
    Default(T),
    Given(Bound<'py, PyAny>),
}

impl<'a, 'py, T> FromPyObject<'a, 'py> for Argument<'py, T> {
    type Error = PyErr;

    fn extract(value: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Argument::Given(value.to_owned()))
    }
}

impl Argument<'_, i64> {
    /// A count in `[1, 2**31 - 1]`.
    pub fn count(&self, name: &str) -> PyResult<usize> {
        match self {
            Argument::Default(value) => Ok(*value as usize),
            Argument::Given(value) => as_count(value, name),
        }
    }
}

impl Argument<'_, bool> {
    pub fn flag(&self, name: &str) -> PyResult<bool> {
        match self {
            Argument::Default(value) => Ok(*value),
            Argument::Given(value) => as_bool(value, name),
        }
    }
}
