//! `compute_accidental_hits` for Python.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use super::arguments::{count, with_class_view, ClassMatrix};
use crate::accidental_hits;

type Hits<'py> = (
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f32>>,
);

#[pyfunction]
pub fn compute_accidental_hits<'py>(
    py: Python<'py>,
    true_classes: ClassMatrix<'py>,
    sampled_candidates: PyReadonlyArray1<'py, i64>,
    num_true: i64,
) -> PyResult<Hits<'py>> {
    let num_true = count(num_true, "num_true", 1)?;
    let sampled = sampled_candidates.as_array().to_vec();
    let hits = with_class_view!(true_classes, |view| py
        .detach(|| { accidental_hits::compute_accidental_hits(view, &sampled, num_true) }))?;
    Ok((
        hits.indices.into_pyarray(py),
        hits.ids.into_pyarray(py),
        hits.weights.into_pyarray(py),
    ))
}
