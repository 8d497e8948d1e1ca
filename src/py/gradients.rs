//! The gradients of a sampled loss as a Python object: the dense inputs gradient, and the
//! weight and bias gradients in TensorFlow's row-sparse form (whole or per shard), merged, or
//! scatter-added into arrays the caller owns.

use numpy::{Element, IntoPyArray, PyArray1, PyReadwriteArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::arguments::matrix;
use super::losses::install;
use super::output::{to_numpy, PooledElement};
use crate::element_types::Real;
use crate::losses::forward_backward::SampledGradients;
use crate::sharding::{ShardLayout, ShardedRowsMut};

/// The computed gradients, in the dtype of the inputs.
pub enum Computed {
    F32(SampledGradients<f32>),
    F64(SampledGradients<f64>),
}

pub trait IntoComputed: Real + PooledElement {
    fn wrap(gradients: SampledGradients<Self>) -> Computed;
}

impl IntoComputed for f32 {
    fn wrap(gradients: SampledGradients<f32>) -> Computed {
        Computed::F32(gradients)
    }
}

impl IntoComputed for f64 {
    fn wrap(gradients: SampledGradients<f64>) -> Computed {
        Computed::F64(gradients)
    }
}

/// Calls `$body` with `$g` bound to the typed gradients and `$t` to a value of its float type.
macro_rules! with_gradients {
    ($computed:expr, |$g:ident| $body:expr) => {
        match $computed {
            Computed::F32($g) => $body,
            Computed::F64($g) => $body,
        }
    };
}

#[pyclass(module = "rustnce._rustnce", frozen)]
pub struct SampledLossGradients {
    computed: Computed,
    /// The `inputs` array the loss was computed from: a label row's weight gradient is
    /// `∂total/∂logit · inputs[i]`, formed when asked for.
    inputs: Py<PyAny>,
    weight_layout: ShardLayout,
    bias_layout: ShardLayout,
    loss: Py<PyAny>,
    inputs_gradient: Py<PyAny>,
}

impl SampledLossGradients {
    pub fn new<F: IntoComputed>(
        py: Python<'_>,
        mut gradients: SampledGradients<F>,
        inputs: Py<PyAny>,
        weight_layout: ShardLayout,
        bias_layout: ShardLayout,
    ) -> PyResult<Self> {
        let loss = std::mem::take(&mut gradients.loss);
        let inputs_gradient = std::mem::take(&mut gradients.inputs_gradient);
        Ok(SampledLossGradients {
            computed: <F as IntoComputed>::wrap(gradients),
            inputs,
            weight_layout,
            bias_layout,
            loss: loss.into_pyarray(py).into_any().unbind(),
            inputs_gradient: to_numpy(py, inputs_gradient)?.into_any().unbind(),
        })
    }
}

fn weight_values<'py, F: Real + PooledElement>(
    py: Python<'py>,
    gradients: &SampledGradients<F>,
    inputs: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let inputs = matrix::<F>(inputs, "inputs")?;
    let view = inputs.as_array();
    let values = install(py, || gradients.tf_weight_values(&view));
    Ok(to_numpy(py, values)?.into_any())
}

fn merged<'py, F: Real + PooledElement>(
    py: Python<'py>,
    gradients: &SampledGradients<F>,
    inputs: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let inputs = matrix::<F>(inputs, "inputs")?;
    let view = inputs.as_array();
    let (ids, rows, biases) = install(py, || gradients.merged(&view));
    let ids: Vec<i64> = ids.into_iter().map(|id| id as i64).collect();
    Ok((
        ids.into_pyarray(py),
        rows.into_pyarray(py),
        biases.into_pyarray(py),
    )
        .into_pyobject(py)?
        .into_any())
}

fn scatter_add<'py, F: Real + Element>(
    py: Python<'py>,
    gradients: &SampledGradients<F>,
    owner: &SampledLossGradients,
    weights: Option<&[Bound<'py, PyAny>]>,
    biases: Option<&[Bound<'py, PyAny>]>,
    scale: f64,
) -> PyResult<()> {
    let (weight_layout, bias_layout) = (&owner.weight_layout, &owner.bias_layout);
    let inputs = matrix::<F>(owner.inputs.bind(py), "inputs")?;
    let mut weight_arrays = writable(weights.unwrap_or(&[]), "weights_gradient")?;
    let mut bias_arrays = writable(biases.unwrap_or(&[]), "biases_gradient")?;
    let weight_rows = match weights {
        Some(_) => Some(ShardedRowsMut::new(
            weight_arrays.iter_mut().map(|a| a.as_array_mut()).collect(),
            weight_layout.strategy(),
            "weights_gradient",
        )?),
        None => None,
    };
    let bias_rows = match biases {
        Some(_) => Some(ShardedRowsMut::new(
            bias_arrays.iter_mut().map(|a| a.as_array_mut()).collect(),
            bias_layout.strategy(),
            "biases_gradient",
        )?),
        None => None,
    };
    for (rows, layout, name, width) in [
        (
            &weight_rows,
            weight_layout,
            "weights_gradient",
            gradients.dim(),
        ),
        (&bias_rows, bias_layout, "biases_gradient", 1),
    ] {
        if let Some(rows) = rows {
            if rows.dim() != width {
                return Err(PyValueError::new_err(format!(
                    "{name} must have {width} columns like the argument it is the gradient of, got {}",
                    rows.dim()
                )));
            }
            if rows.layout() != layout {
                return Err(PyValueError::new_err(format!(
                    "{name} must be split into shards exactly like the argument it is the gradient of"
                )));
            }
        }
    }
    let view = inputs.as_array();
    let scale = F::from_f64(scale);
    install(py, || {
        gradients.scatter_add(&view, weight_rows.as_ref(), bias_rows.as_ref(), scale)
    })?;
    Ok(())
}

fn writable<'py, F: Element>(
    arrays: &[Bound<'py, PyAny>],
    name: &str,
) -> PyResult<Vec<PyReadwriteArray2<'py, F>>> {
    arrays
        .iter()
        .enumerate()
        .map(|(p, array)| {
            array.extract::<PyReadwriteArray2<'py, F>>().map_err(|_| {
                PyValueError::new_err(format!(
                    "{name}[{p}] must be a writeable 2-D array of {} (the dtype of inputs) that overlaps no other argument",
                    std::any::type_name::<F>()
                ))
            })
        })
        .collect()
}

#[pymethods]
impl SampledLossGradients {
    /// Per-example loss `[batch]`.
    #[getter]
    fn loss(&self, py: Python<'_>) -> Py<PyAny> {
        self.loss.clone_ref(py)
    }

    /// `∂total/∂inputs` `[batch, dim]`.
    #[getter]
    fn inputs_gradient(&self, py: Python<'_>) -> Py<PyAny> {
        self.inputs_gradient.clone_ref(py)
    }

    /// The rows the weight and bias gradients touch, in TensorFlow's order: labels row-major,
    /// then the sampled ids; duplicates kept. int64 `[batch * num_true + num_sampled]`.
    fn ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        with_gradients!(&self.computed, |g| g
            .ids
            .iter()
            .map(|&id| id as i64)
            .collect::<Vec<i64>>()
            .into_pyarray(py))
    }

    /// TensorFlow's weight gradient values, one row per entry of `ids()`.
    fn weight_values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inputs = self.inputs.bind(py);
        with_gradients!(&self.computed, |g| weight_values(py, g, inputs))
    }

    /// TensorFlow's bias gradient values, one per entry of `ids()`.
    fn bias_values<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        with_gradients!(&self.computed, |g| g
            .tf_bias_values()
            .into_pyarray(py)
            .into_any())
    }

    /// Per weight shard: `(shard-local indices int64, positions in ids())`.
    fn weight_shard_entries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.shard_entries(py, &self.weight_layout)
    }

    /// Per bias shard: `(shard-local indices int64, positions in ids())`.
    fn bias_shard_entries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.shard_entries(py, &self.bias_layout)
    }

    /// `(distinct ids ascending, summed weight rows, summed biases)`.
    fn merged<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inputs = self.inputs.bind(py);
        with_gradients!(&self.computed, |g| merged(py, g, inputs))
    }

    /// `target[id] += scale * gradient[id]` for the weight and/or bias targets, in place.
    #[pyo3(signature = (weights_gradient, biases_gradient, scale))]
    fn scatter_add(
        &self,
        py: Python<'_>,
        weights_gradient: Option<Vec<Bound<'_, PyAny>>>,
        biases_gradient: Option<Vec<Bound<'_, PyAny>>>,
        scale: f64,
    ) -> PyResult<()> {
        with_gradients!(&self.computed, |g| scatter_add(
            py,
            g,
            self,
            weights_gradient.as_deref(),
            biases_gradient.as_deref(),
            scale
        ))
    }
}

impl SampledLossGradients {
    fn shard_entries<'py>(
        &self,
        py: Python<'py>,
        layout: &ShardLayout,
    ) -> PyResult<Bound<'py, PyList>> {
        let entries = with_gradients!(&self.computed, |g| g.shard_entries(layout));
        let items = entries
            .into_iter()
            .map(|(local, positions)| {
                let positions: Vec<i64> = positions.into_iter().map(|p| p as i64).collect();
                (local.into_pyarray(py), positions.into_pyarray(py))
            })
            .collect::<Vec<_>>();
        PyList::new(py, items)
    }
}
