//! `compute_accidental_hits` for Python.

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

use super::arguments::{as_class_matrix, as_count, as_id_vector, shape_tuple, with_class_view};
use super::errors;
use crate::accidental_hits;

type Hits<'py> = (
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f32>>,
);

/// `tf.nn.compute_accidental_hits`, with the user's arguments.
#[pyfunction]
pub fn compute_accidental_hits<'py>(
    py: Python<'py>,
    true_classes: Bound<'py, PyAny>,
    sampled_candidates: Bound<'py, PyAny>,
    num_true: Bound<'py, PyAny>,
) -> PyResult<Hits<'py>> {
    let true_classes = as_class_matrix(&true_classes, "true_classes")?;
    let num_true = as_count(&num_true, "num_true")?;
    let shape = true_classes.shape();
    if shape[1] != num_true {
        return Err(errors::wrong_value(format!(
            "true_classes must be [batch_size, num_true={num_true}], got shape {}",
            shape_tuple(&shape)
        )));
    }
    let sampled_candidates = as_id_vector(&sampled_candidates, "sampled_candidates")?;
    let sampled = sampled_candidates.as_array().to_vec();
    let hits = with_class_view!(true_classes, |view| py
        .detach(|| { accidental_hits::compute_accidental_hits(view, &sampled, num_true) }))?;
    Ok((
        hits.indices.into_pyarray(py),
        hits.ids.into_pyarray(py),
        hits.weights.into_pyarray(py),
    ))
}
