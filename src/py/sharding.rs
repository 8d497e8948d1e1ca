//! `embedding_lookup` over a list of shards, for Python: every argument checked here, in the
//! order they are documented, before anything is gathered.

use numpy::{Element, IntoPyArray, PyArrayDescrMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::arguments::{
    as_array, as_float_array, as_id_vector, as_shards, check_id_range, check_memory,
    check_shard_layout, shape_tuple, shard_arrays, shard_items, shard_name, sharded, FloatType,
    PartitionStrategyArgument,
};
use super::errors;
use crate::element_types::Real;
use crate::sharding::PartitionStrategy;

const DIV: PartitionStrategyArgument = PartitionStrategyArgument(PartitionStrategy::Div);

/// Rows `ids` (any shape) of `params` (one array or a list of shards, 1-D or 2-D, split by
/// `partition_strategy`); the result has shape `ids.shape + params' trailing shape`.
#[pyfunction]
#[pyo3(
    signature = (params, ids, partition_strategy=DIV),
    text_signature = "(params, ids, partition_strategy='div')"
)]
pub fn embedding_lookup<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyAny>,
    ids: &Bound<'py, PyAny>,
    partition_strategy: PartitionStrategyArgument,
) -> PyResult<Bound<'py, PyAny>> {
    let items = shard_items(params);
    let first = items.first().ok_or_else(|| {
        errors::wrong_value("params must be an array or a non-empty list of shards")
    })?;
    let first_label = shard_name("params", 0, items.len());
    let first = as_array(first, &first_label)?;
    let ndim = first.ndim();
    if !matches!(ndim, 1 | 2) {
        return Err(errors::wrong_value(format!(
            "{first_label} must be 1-D or 2-D ([rows] or [rows, dim]), got shape {}",
            shape_tuple(first.shape())
        )));
    }
    let (_, float) = as_float_array(first.as_any(), &first_label, ndim)?;
    let shards = as_shards(params, "params", ndim, float)?;
    let strategy = partition_strategy.0;
    let rows = check_shard_layout(&shards, "params", strategy)?;
    let width = if ndim == 1 { 1 } else { shards[0].shape()[1] };
    let shards = shards
        .iter()
        .map(|shard| {
            if ndim == 1 {
                shard.call_method1("reshape", ((-1isize, 1isize),))
            } else {
                Ok(shard.as_any().clone())
            }
        })
        .collect::<PyResult<Vec<_>>>()?;
    let ids_array = as_array(ids, "ids")?;
    let ids_shape = ids_array.shape().to_vec();
    let flat = as_id_vector(&ids_array.call_method1("reshape", (-1isize,))?, "ids")?;
    check_id_range(
        flat.as_array().iter().copied(),
        "ids",
        rows,
        "rows of params",
    )?;
    let count = flat.len();
    let itemsize = first.dtype().itemsize();
    check_memory(
        py,
        itemsize.saturating_mul(count).saturating_mul(width),
        || format!("{count} rows of width {width} gathered from params"),
    )?;
    let out = match float {
        FloatType::F32 => lookup::<f32>(py, &shards, flat, strategy)?,
        FloatType::F64 => lookup::<f64>(py, &shards, flat, strategy)?,
    };
    let mut shape = ids_shape;
    if ndim == 2 {
        shape.push(width);
    }
    out.call_method1("reshape", (PyTuple::new(py, shape)?,))
}

fn lookup<'py, F: Real + Element>(
    py: Python<'py>,
    params: &[Bound<'py, PyAny>],
    ids: PyReadonlyArray1<'py, i64>,
    strategy: PartitionStrategy,
) -> PyResult<Bound<'py, PyAny>> {
    let arrays = shard_arrays::<F>(params, "params")?;
    let matrix = sharded(&arrays, strategy, "params")?;
    let ids = ids.as_array().to_vec();
    let rows = py.detach(|| matrix.gather(&ids, "ids"))?;
    Ok(rows.into_pyarray(py).into_any())
}
