//! `embedding_lookup` over a list of shards, for Python.

use numpy::{Element, IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;

use super::arguments::{float_type, partition_strategy, shard_arrays, sharded, FloatType};
use super::errors;
use crate::element_types::Real;

#[pyfunction]
pub fn embedding_lookup<'py>(
    py: Python<'py>,
    params: Vec<Bound<'py, PyAny>>,
    ids: PyReadonlyArray1<'py, i64>,
    partition_strategy: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let strategy = self::partition_strategy(partition_strategy)?;
    let first = params
        .first()
        .ok_or_else(|| errors::wrong_value("params: must hold at least one shard"))?;
    match float_type(first, "params")? {
        FloatType::F32 => lookup::<f32>(py, &params, ids, strategy),
        FloatType::F64 => lookup::<f64>(py, &params, ids, strategy),
    }
}

fn lookup<'py, F: Real + Element>(
    py: Python<'py>,
    params: &[Bound<'py, PyAny>],
    ids: PyReadonlyArray1<'py, i64>,
    strategy: crate::sharding::PartitionStrategy,
) -> PyResult<Bound<'py, PyAny>> {
    let arrays = shard_arrays::<F>(params, "params")?;
    let matrix = sharded(&arrays, strategy, "params")?;
    let ids = ids.as_array().to_vec();
    let rows = py.detach(|| matrix.gather(&ids, "ids"))?;
    Ok(rows.into_pyarray(py).into_any())
}
