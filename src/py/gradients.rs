//! The gradients of a sampled loss as a Python object: the dense inputs gradient, and the
//! weight and bias gradients in TensorFlow's row-sparse form (whole or per shard), merged, or
//! scatter-added into arrays the caller owns.

use ndarray::{Array2, ArrayViewMut2, Ix2};
use numpy::{
    Element, IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::sync::Arc;

use super::arguments::{
    as_finite_float, as_shards, check_in_place_layout, check_in_place_targets, float_type, matrix,
    shape_tuple, shard_name, vector, writable_array, UpstreamArgument,
};
use super::errors;
use super::fork_gate::{install, install_locked};
use super::memory_locks::Access;
use super::output::{to_numpy, PooledElement};
use crate::element_types::Real;
use crate::losses::forward_backward::SampledGradients;
use crate::row_sparse::Merged;
use crate::sharding::{ShardLayout, ShardedRowsMut};
use crate::workspace::{self, Pooled};

/// The computed gradients and the call's own copy of `inputs` (a label row's weight gradient
/// is `∂total/∂logit · inputs[i]`, formed when asked for), in the dtype of the inputs. The copy
/// is shared with the gradients rescaled from these (`rescaled`), which read the same inputs.
pub struct Saved<F: Pooled> {
    gradients: SampledGradients<F>,
    /// None for a call made with `merged=True`, which formed the merged form at once.
    inputs: Option<Arc<Array2<F>>>,
}

impl<F: Pooled> Drop for Saved<F> {
    fn drop(&mut self) {
        if let Some(inputs) = self.inputs.as_mut().and_then(Arc::get_mut) {
            workspace::recycle(std::mem::take(inputs));
        }
        if let Some(kept) = self.gradients.logit_gradient.take() {
            workspace::recycle(kept);
        }
    }
}

pub enum Computed {
    F32(Saved<f32>),
    F64(Saved<f64>),
}

pub trait IntoComputed: Real + PooledElement {
    fn wrap(saved: Saved<Self>) -> Computed;
}

impl IntoComputed for f32 {
    fn wrap(saved: Saved<f32>) -> Computed {
        Computed::F32(saved)
    }
}

impl IntoComputed for f64 {
    fn wrap(saved: Saved<f64>) -> Computed {
        Computed::F64(saved)
    }
}

/// Calls `$body` with `$g` bound to the typed gradients and `$x` to the saved inputs.
macro_rules! with_gradients {
    ($computed:expr, |$g:ident, $x:ident| $body:expr) => {
        match $computed {
            Computed::F32(Saved {
                gradients: $g,
                inputs: $x,
            }) => $body,
            Computed::F64(Saved {
                gradients: $g,
                inputs: $x,
            }) => $body,
        }
    };
}

/// The shapes of the weight shards and of the bias shards the gradients are for.
#[derive(Clone)]
pub struct Shapes {
    pub weights: Vec<(usize, usize)>,
    pub biases: Vec<usize>,
}

#[pyclass(module = "rustnce._rustnce", frozen)]
pub struct SampledLossGradients {
    computed: Computed,
    weight_layout: ShardLayout,
    bias_layout: ShardLayout,
    shapes: Shapes,
    /// The arrays the call read, by argument name, which a `scatter_add` target must not overlap.
    read: Vec<(&'static str, Py<PyAny>)>,
    loss: Py<PyAny>,
    inputs_gradient: Py<PyAny>,
    /// `(ids, rows, biases)` of the merged form, when the pass formed it.
    merged: Option<Py<PyAny>>,
    /// TensorFlow's weight values as the pass formed them, handed out by the first
    /// `weight_values()` (later calls form them again: each call returns its own array).
    formed_weight_values: std::sync::Mutex<Option<Py<PyAny>>>,
}

/// The call's copy of `inputs`, which `what` needs.
fn saved_inputs<'a, F: Pooled>(
    inputs: &'a Option<Arc<Array2<F>>>,
    what: &str,
) -> PyResult<&'a Arc<Array2<F>>> {
    inputs.as_ref().ok_or_else(|| {
        errors::wrong_value(format!(
            "{what} needs the call's copy of inputs, which a call made with merged=True does \
             not keep (it returns only the loss, the inputs gradient and merged())"
        ))
    })
}

impl SampledLossGradients {
    #[allow(clippy::too_many_arguments)]
    pub fn new<F: IntoComputed>(
        py: Python<'_>,
        mut gradients: SampledGradients<F>,
        inputs: Option<Arc<Array2<F>>>,
        merged: Option<Merged<F>>,
        weight_layout: ShardLayout,
        bias_layout: ShardLayout,
        shapes: Shapes,
        read: Vec<(&'static str, Py<PyAny>)>,
    ) -> PyResult<Self> {
        let loss = std::mem::take(&mut gradients.loss);
        let inputs_gradient = std::mem::take(&mut gradients.inputs_gradient);
        let formed_weight_values = match gradients.weight_values.take() {
            Some(values) => Some(to_numpy(py, values)?.into_any().unbind()),
            None => None,
        };
        let merged = match merged {
            Some(merged) => Some(merged_to_python(py, merged)?.unbind()),
            None => None,
        };
        Ok(SampledLossGradients {
            computed: <F as IntoComputed>::wrap(Saved { gradients, inputs }),
            weight_layout,
            bias_layout,
            shapes,
            read,
            loss: loss.into_pyarray(py).into_any().unbind(),
            inputs_gradient: to_numpy(py, inputs_gradient)?.into_any().unbind(),
            merged,
            formed_weight_values: std::sync::Mutex::new(formed_weight_values),
        })
    }
}

fn weight_values<'py, F: Real + PooledElement>(
    py: Python<'py>,
    gradients: &SampledGradients<F>,
    inputs: &Option<Arc<Array2<F>>>,
) -> PyResult<Bound<'py, PyAny>> {
    let view = saved_inputs(inputs, "the weight gradient's TensorFlow form")?.view();
    let work = gradients.ids.len() * gradients.dim();
    let values = install(py, work, || gradients.tf_weight_values(&view));
    Ok(to_numpy(py, values)?.into_any())
}

fn merged<'py, F: Real + PooledElement>(
    py: Python<'py>,
    gradients: &SampledGradients<F>,
    inputs: &Option<Arc<Array2<F>>>,
) -> PyResult<Bound<'py, PyAny>> {
    let view = saved_inputs(inputs, "merged")?.view();
    let work = gradients.ids.len() * gradients.dim();
    let merged = install(py, work, || gradients.merged(&view));
    merged_to_python(py, merged)
}

fn merged_to_python<'py, F: Real + PooledElement>(
    py: Python<'py>,
    merged: Merged<F>,
) -> PyResult<Bound<'py, PyAny>> {
    let ids: Vec<i64> = merged.ids.into_iter().map(|id| id as i64).collect();
    Ok((
        ids.into_pyarray(py),
        to_numpy(py, merged.rows)?,
        merged.biases.into_pyarray(py),
    )
        .into_pyobject(py)?
        .into_any())
}

fn scatter_add<'py, F: Real + Element + Pooled>(
    py: Python<'py>,
    gradients: &SampledGradients<F>,
    inputs: &Option<Arc<Array2<F>>>,
    owner: &SampledLossGradients,
    weights: Option<&[Bound<'py, PyAny>]>,
    biases: Option<&[Bound<'py, PyAny>]>,
    scale: f64,
) -> PyResult<()> {
    let (weight_layout, bias_layout) = (&owner.weight_layout, &owner.bias_layout);
    let inputs = saved_inputs(inputs, "accumulate")?;
    let scale = F::from_f64(scale);
    if !scale.is_finite() {
        return Err(errors::wrong_value(
            "scale must be finite in the dtype of the gradients",
        ));
    }
    let weight_arrays = writable::<F>(weights.unwrap_or(&[]), "weights_gradient")?;
    let bias_arrays = writable::<F>(biases.unwrap_or(&[]), "biases_gradient")?;
    let mut access = Access::new();
    for (name, arrays) in [
        ("weights_gradient", &weight_arrays),
        ("biases_gradient", &bias_arrays),
    ] {
        for (p, array) in arrays.iter().enumerate() {
            access.write(&shard_name(name, p, arrays.len()), array.as_any());
        }
    }
    for (name, array) in &owner.read {
        access.read(name, array.bind(py));
    }
    access.check_disjoint(py)?;
    // SAFETY: the targets share no element with each other (checked above), other rustnce
    // calls are kept out of them by the memory locks held while they are written, and the
    // views are only used inside that locked computation.
    fn views<'a, F: Element>(arrays: &'a [Bound<'_, PyArray2<F>>]) -> Vec<ArrayViewMut2<'a, F>> {
        arrays.iter().map(|a| unsafe { a.as_array_mut() }).collect()
    }
    let weight_rows = match weights {
        Some(_) => Some(ShardedRowsMut::new(
            views(&weight_arrays),
            weight_layout.strategy(),
            "weights_gradient",
        )?),
        None => None,
    };
    let bias_rows = match biases {
        Some(_) => Some(ShardedRowsMut::new(
            views(&bias_arrays),
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
                return Err(errors::wrong_value(format!(
                    "{name} must have {width} columns like the argument it is the gradient of, got {}",
                    rows.dim()
                )));
            }
            if rows.layout() != layout {
                return Err(errors::wrong_value(format!(
                    "{name} must be split into shards exactly like the argument it is the gradient of"
                )));
            }
        }
    }
    let view = inputs.view();
    let work = gradients.ids.len() * gradients.dim();
    install_locked(py, &access.regions(), work, || {
        gradients.scatter_add(&view, weight_rows.as_ref(), bias_rows.as_ref(), scale)
    })?;
    Ok(())
}

fn rescaled<F: IntoComputed>(
    py: Python<'_>,
    owner: &SampledLossGradients,
    gradients: &SampledGradients<F>,
    saved: &Option<Arc<Array2<F>>>,
    upstream: &UpstreamArgument<'_>,
    given: Option<&Bound<'_, PyAny>>,
) -> PyResult<SampledLossGradients> {
    if gradients.logit_gradient.is_none() {
        return Err(errors::wrong_value(
            "rescaled needs the gradients of a call made with rescalable=True",
        ));
    }
    let batch = gradients.batch();
    // The inputs the pass read: its own copy, or (a call made with merged=True keeps none)
    // the caller's, copied for the rescaled gradients to keep.
    let inputs =
        match (saved, given) {
            (Some(saved), None) => Arc::clone(saved),
            (Some(_), Some(_)) => {
                return Err(errors::wrong_value(
                    "inputs: these gradients keep their own copy of inputs; pass inputs only to \
                 rescale the gradients of a call made with merged=True",
                ))
            }
            (None, None) => return Err(errors::wrong_value(
                "rescaled needs inputs=, the inputs the call read: a call made with merged=True \
                 keeps no copy of them",
            )),
            (None, Some(given)) => {
                let array = matrix::<F>(given, "inputs")?;
                let view = array.as_array();
                if view.dim() != (batch, gradients.dim()) {
                    return Err(errors::wrong_value(format!(
                        "inputs must be the call's [{batch}, {}] inputs, got shape {}",
                        gradients.dim(),
                        shape_tuple(view.shape())
                    )));
                }
                let mut copy = workspace::matrix::<F>(batch, gradients.dim());
                copy.assign(&view);
                Arc::new(copy)
            }
        };
    let weights: Vec<F> = match upstream {
        UpstreamArgument::Sum => vec![F::one(); batch],
        UpstreamArgument::Mean => vec![F::one() / F::from_f64(batch as f64); batch],
        UpstreamArgument::PerExample(_) => {
            let array = upstream
                .per_example(batch, float_type(owner.inputs_gradient.bind(py), "inputs")?)?
                .expect("a per-example upstream");
            vector::<F>(array.as_any(), "upstream")?.as_array().to_vec()
        }
    };
    let loss = vector::<F>(owner.loss.bind(py), "loss")?
        .as_array()
        .to_owned();
    let inputs_gradient = matrix::<F>(owner.inputs_gradient.bind(py), "inputs_gradient")?;
    let (inputs_view, gradient_view) = (inputs.view(), inputs_gradient.as_array());
    let weights_view = ndarray::ArrayView1::from(&weights);
    let work = gradients.ids.len() * gradients.dim();
    let mut computed = install(py, work, || {
        gradients.rescaled(&inputs_view, &gradient_view, &weights_view)
    })?;
    computed.loss = loss;
    SampledLossGradients::new(
        py,
        computed,
        Some(inputs),
        None,
        owner.weight_layout.clone(),
        owner.bias_layout.clone(),
        owner.shapes.clone(),
        owner
            .read
            .iter()
            .map(|(name, array)| (*name, array.clone_ref(py)))
            .collect(),
    )
}

fn writable<'py, F: Element>(
    arrays: &[Bound<'py, PyAny>],
    name: &str,
) -> PyResult<Vec<Bound<'py, PyArray2<F>>>> {
    arrays
        .iter()
        .enumerate()
        .map(|(p, array)| {
            writable_array::<F, Ix2>(
                array,
                &format!("{name}[{p}]"),
                &format!(
                    "2-D array of {} (the dtype of inputs)",
                    std::any::type_name::<F>()
                ),
            )
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

    /// The shape of each weight shard.
    #[getter]
    fn weight_shapes(&self) -> Vec<(usize, usize)> {
        self.shapes.weights.clone()
    }

    /// The shape of each bias shard.
    #[getter]
    fn bias_shapes(&self) -> Vec<(usize,)> {
        self.shapes.biases.iter().map(|&rows| (rows,)).collect()
    }

    /// `∂total/∂inputs` `[batch, dim]`.
    #[getter]
    fn inputs_gradient(&self, py: Python<'_>) -> Py<PyAny> {
        self.inputs_gradient.clone_ref(py)
    }

    /// The rows the weight and bias gradients touch, in TensorFlow's order: labels row-major,
    /// then the sampled ids; duplicates kept. int64 `[batch * num_true + num_sampled]`.
    fn ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        with_gradients!(&self.computed, |g, _x| g
            .ids
            .iter()
            .map(|&id| id as i64)
            .collect::<Vec<i64>>()
            .into_pyarray(py))
    }

    /// TensorFlow's weight gradient values, one row per entry of `ids()`.
    fn weight_values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let formed = self
            .formed_weight_values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(values) = formed {
            return Ok(values.into_bound(py));
        }
        with_gradients!(&self.computed, |g, x| weight_values(py, g, x))
    }

    /// TensorFlow's bias gradient values, one per entry of `ids()`.
    fn bias_values<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        with_gradients!(&self.computed, |g, _x| g
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

    /// `(distinct ids ascending, summed weight rows, summed biases)`; formed by the pass of a
    /// call made with `merged=True` (every call then returns the same arrays).
    fn merged<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(merged) = &self.merged {
            return Ok(merged.bind(py).clone());
        }
        with_gradients!(&self.computed, |g, x| merged(py, g, x))
    }

    /// The gradients of `Σ_i upstream[i] · loss_i` from those of a call made with
    /// `rescalable=True` (for `Σ_i loss_i`): one weight per example (an array `[batch]`, or
    /// `"sum"` / `"mean"`). The weights are not read again; only the sampled rows' gradients
    /// are formed anew.
    /// A call made with `merged=True` keeps no copy of `inputs`: pass the inputs it read.
    #[pyo3(signature = (upstream, inputs=None))]
    fn rescaled(
        &self,
        py: Python<'_>,
        upstream: UpstreamArgument<'_>,
        inputs: Option<Bound<'_, PyAny>>,
    ) -> PyResult<SampledLossGradients> {
        with_gradients!(&self.computed, |g, x| rescaled(
            py,
            self,
            g,
            x,
            &upstream,
            inputs.as_ref()
        ))
    }

    /// `target[id] += scale * gradient[id]` for the weight and/or bias targets, in place;
    /// every argument is checked before anything is written.
    #[pyo3(signature = (weights_gradient, biases_gradient, scale))]
    fn accumulate(
        &self,
        py: Python<'_>,
        weights_gradient: Option<Bound<'_, PyAny>>,
        biases_gradient: Option<Bound<'_, PyAny>>,
        scale: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let scale = as_finite_float(&scale, "scale")?;
        for (target, name) in [
            (&weights_gradient, "weights_gradient"),
            (&biases_gradient, "biases_gradient"),
        ] {
            if let Some(target) = target {
                check_in_place_targets(target, name)?;
            }
        }
        let float = float_type(self.inputs_gradient.bind(py), "inputs")?;
        let weight_shapes: Vec<Vec<usize>> = self
            .shapes
            .weights
            .iter()
            .map(|&(rows, dim)| vec![rows, dim])
            .collect();
        let bias_shapes: Vec<Vec<usize>> = self.shapes.biases.iter().map(|&r| vec![r]).collect();
        let weights = match &weights_gradient {
            Some(target) => {
                let shards = as_shards(target, "weights_gradient", 2, float)?;
                check_target_shapes(&shards, &weight_shapes, "weights_gradient", "weights")?;
                check_in_place_layout(&shards, "weights_gradient")?;
                Some(shards.into_iter().map(Bound::into_any).collect::<Vec<_>>())
            }
            None => None,
        };
        let biases = match &biases_gradient {
            Some(target) => {
                let shards = as_shards(target, "biases_gradient", 1, float)?;
                check_target_shapes(&shards, &bias_shapes, "biases_gradient", "biases")?;
                check_in_place_layout(&shards, "biases_gradient")?;
                // `[rows, 1]` views, the form the sharded rows are written through.
                let columns = shards
                    .iter()
                    .map(|shard| shard.call_method1("reshape", ((-1isize, 1isize),)))
                    .collect::<PyResult<Vec<_>>>()?;
                Some(columns)
            }
            None => None,
        };
        with_gradients!(&self.computed, |g, x| scatter_add(
            py,
            g,
            x,
            self,
            weights.as_deref(),
            biases.as_deref(),
            scale
        ))
    }
}

/// A gradient target laid out exactly like the argument it is the gradient of.
fn check_target_shapes(
    targets: &[Bound<'_, PyUntypedArray>],
    shapes: &[Vec<usize>],
    name: &str,
    like: &str,
) -> PyResult<()> {
    if targets.len() != shapes.len() {
        return Err(errors::wrong_value(format!(
            "{name} must be split into {} shard(s) like {like}, got {}",
            shapes.len(),
            targets.len()
        )));
    }
    for (p, (target, shape)) in targets.iter().zip(shapes).enumerate() {
        if target.shape() != shape.as_slice() {
            return Err(errors::wrong_value(format!(
                "{} must have the shape of {} {}, got {}",
                shard_name(name, p, targets.len()),
                shard_name(like, p, shapes.len()),
                shape_tuple(shape),
                shape_tuple(target.shape())
            )));
        }
    }
    Ok(())
}

impl SampledLossGradients {
    fn shard_entries<'py>(
        &self,
        py: Python<'py>,
        layout: &ShardLayout,
    ) -> PyResult<Bound<'py, PyList>> {
        let entries = with_gradients!(&self.computed, |g, _x| g.shard_entries(layout));
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
