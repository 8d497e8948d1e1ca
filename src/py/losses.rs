//! The sampled logits, the two sampled losses and the full evaluation losses, for Python.
//! Dispatches on the float type of `inputs` and the integer type of `labels`, then hands views
//! to the core with the interpreter released.

use ndarray::{ArrayView2, ArrayViewMut2, Ix2};
use numpy::{
    Element, IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyReadonlyArrayDyn,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::arguments::{
    array_of_any_rank, count, float_type, matrix, partition_strategy, shard_arrays, shard_name,
    sharded, vector, writable_array, ClassMatrix, FloatType,
};
use super::fork_gate::{install, install_locked};
use super::gradients::{IntoComputed, SampledLossGradients};
use super::memory_locks::Access;
use super::output::to_numpy;
use crate::element_types::{ClassId, Real};
use crate::error::NceError;
use crate::full_evaluation::{self, FullLoss};
use crate::losses::forward_backward::{forward_backward, SampledGradients, Upstream};
use crate::losses::{self, SampledLoss};
use crate::sampled_logits::{SampledLossInputs, SampledValues};
use crate::sharding::{PartitionStrategy, ShardedMatrix, ShardedRowsMut};
use crate::workspace;

/// The arguments shared by the sampled-logit functions, as a dict from the Python layer,
/// before their element types are known.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct SampledArguments<'py> {
    weights: Vec<Bound<'py, PyAny>>,
    biases: Vec<Bound<'py, PyAny>>,
    labels: ClassMatrix<'py>,
    inputs: Bound<'py, PyAny>,
    num_classes: i64,
    sampled_candidates: PyReadonlyArray1<'py, i64>,
    true_expected_count: Bound<'py, PyAny>,
    sampled_expected_count: Bound<'py, PyAny>,
    remove_accidental_hits: bool,
    subtract_log_q: bool,
    partition_strategy: String,
}

/// `"sum"`, `"mean"`, or one weight per example.
#[derive(FromPyObject)]
pub enum UpstreamArgument<'py> {
    Reduction(String),
    PerExample(Bound<'py, PyAny>),
}

enum SampledOutput<'a, 'py> {
    Logits,
    Loss(SampledLoss),
    Gradients(SampledLoss, &'a UpstreamArgument<'py>),
}

/// Calls `$run::<F, L>(py, labels_view, rest...)` for the element types of `inputs` and `labels`.
macro_rules! dispatch {
    ($float:expr, $labels:expr, $run:ident($py:expr $(, $arg:expr)*)) => {
        match ($float, &$labels) {
            (FloatType::F32, ClassMatrix::I64(l)) => $run::<f32, i64>($py, l.as_array() $(, $arg)*),
            (FloatType::F32, ClassMatrix::I32(l)) => $run::<f32, i32>($py, l.as_array() $(, $arg)*),
            (FloatType::F64, ClassMatrix::I64(l)) => $run::<f64, i64>($py, l.as_array() $(, $arg)*),
            (FloatType::F64, ClassMatrix::I32(l)) => $run::<f64, i32>($py, l.as_array() $(, $arg)*),
        }
    };
}

fn loss_kind(name: &str) -> PyResult<SampledLoss> {
    match name {
        "nce" => Ok(SampledLoss::Nce),
        "sampled_softmax" => Ok(SampledLoss::SampledSoftmax),
        other => Err(PyValueError::new_err(format!(
            "loss must be \"nce\" or \"sampled_softmax\", got {other:?}"
        ))),
    }
}

fn upstream<'a, F: Real + Element>(
    argument: &UpstreamArgument<'_>,
    per_example: &'a Option<PyReadonlyArray1<'_, F>>,
) -> PyResult<Upstream<'a, F>> {
    match (argument, per_example) {
        (UpstreamArgument::Reduction(name), _) if name == "sum" => Ok(Upstream::Sum),
        (UpstreamArgument::Reduction(name), _) if name == "mean" => Ok(Upstream::Mean),
        (UpstreamArgument::PerExample(_), Some(array)) => {
            Ok(Upstream::PerExample(array.as_array()))
        }
        _ => Err(PyValueError::new_err(
            "upstream must be \"sum\", \"mean\" or an array of one weight per example",
        )),
    }
}

/// The small arrays of a call in their element type, borrowed for the call's duration.
struct TypedArrays<'py, F: Element> {
    inputs: PyReadonlyArray2<'py, F>,
    true_expected_count: PyReadonlyArrayDyn<'py, F>,
    sampled_expected_count: PyReadonlyArrayDyn<'py, F>,
    upstream: Option<PyReadonlyArray1<'py, F>>,
}

impl<'py, F: Real + Element> TypedArrays<'py, F> {
    fn new(
        arguments: &SampledArguments<'py>,
        upstream: Option<&UpstreamArgument<'py>>,
    ) -> PyResult<Self> {
        Ok(TypedArrays {
            inputs: matrix::<F>(&arguments.inputs, "inputs")?,
            true_expected_count: array_of_any_rank::<F>(
                &arguments.true_expected_count,
                "sampled_values[1] (true_expected_count)",
            )?,
            sampled_expected_count: array_of_any_rank::<F>(
                &arguments.sampled_expected_count,
                "sampled_values[2] (sampled_expected_count)",
            )?,
            upstream: match upstream {
                Some(UpstreamArgument::PerExample(array)) => Some(vector::<F>(array, "upstream")?),
                _ => None,
            },
        })
    }

    fn problem<'a, L: ClassId>(
        &'a self,
        arguments: &'a SampledArguments<'py>,
        labels: ArrayView2<'a, L>,
        weights: Vec<ArrayView2<'a, F>>,
        biases: Vec<ArrayView2<'a, F>>,
    ) -> PyResult<SampledLossInputs<'a, F, L>> {
        let strategy = partition_strategy(&arguments.partition_strategy)?;
        Ok(SampledLossInputs {
            weights: ShardedMatrix::new(weights, strategy, "weights")?,
            biases: ShardedMatrix::new(biases, strategy, "biases")?,
            labels,
            inputs: self.inputs.as_array(),
            num_classes: count(arguments.num_classes, "num_classes", 1)?,
            sampled: SampledValues {
                candidates: arguments.sampled_candidates.as_array(),
                true_expected_count: self.true_expected_count.as_array(),
                sampled_expected_count: self.sampled_expected_count.as_array(),
            },
            remove_accidental_hits: arguments.remove_accidental_hits,
            subtract_log_q: arguments.subtract_log_q,
        })
    }

    fn upstream(&self, argument: &UpstreamArgument<'_>) -> PyResult<Upstream<'_, F>> {
        upstream(argument, &self.upstream)
    }
}

fn run_sampled<'py, F: IntoComputed, L: ClassId>(
    py: Python<'py>,
    labels: ArrayView2<L>,
    arguments: &SampledArguments<'py>,
    output: SampledOutput<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let weights = shard_arrays::<F>(&arguments.weights, "weights")?;
    let biases = shard_arrays::<F>(&arguments.biases, "biases")?;
    let upstream_argument = match &output {
        SampledOutput::Gradients(_, argument) => Some(*argument),
        _ => None,
    };
    let arrays = TypedArrays::<F>::new(arguments, upstream_argument)?;
    let problem = arrays.problem(
        arguments,
        labels,
        weights.iter().map(|a| a.as_array()).collect(),
        biases.iter().map(|a| a.as_array()).collect(),
    )?;
    let regions = read_regions(arguments);
    let work = work_estimate(&problem);
    Ok(match output {
        SampledOutput::Logits => to_numpy(
            py,
            install_locked(py, &regions, work, || problem.compute_sampled_logits())?,
        )?
        .into_any(),
        SampledOutput::Loss(kind) => {
            install_locked(py, &regions, work, || losses::sampled_loss(&problem, kind))?
                .into_pyarray(py)
                .into_any()
        }
        SampledOutput::Gradients(kind, argument) => {
            let upstream = arrays.upstream(argument)?;
            // The gradients keep their own copy of `inputs`: what they compute later must not
            // depend on the caller leaving `inputs` untouched.
            let (computed, inputs) = install_locked(py, &regions, work, || {
                forward_backward(&problem, kind, &upstream).map(|computed| {
                    let mut inputs =
                        workspace::matrix::<F>(problem.batch(), problem.inputs.ncols());
                    inputs.assign(&problem.inputs);
                    (computed, inputs)
                })
            })?;
            let gradients = SampledLossGradients::new(
                py,
                computed,
                inputs,
                problem.weights.layout().clone(),
                problem.biases.layout().clone(),
            )?;
            Bound::new(py, gradients)?.into_any()
        }
    })
}

/// About how many multiply-adds the fused pass takes: `batch × (num_true + num_sampled) × dim`
/// for each of its products.
fn work_estimate<F: Real, L: ClassId>(problem: &SampledLossInputs<'_, F, L>) -> usize {
    let (batch, dim) = problem.inputs.dim();
    let columns = problem.labels.ncols() + problem.sampled.candidates.len();
    batch
        .saturating_mul(columns)
        .saturating_mul(dim)
        .saturating_mul(3)
}

/// The arrays a loss reads that another call might update in place, to lock for reading.
fn read_regions(arguments: &SampledArguments<'_>) -> Vec<super::memory_locks::Region> {
    let mut access = Access::new();
    for (name, shards) in [
        ("weights", &arguments.weights),
        ("biases", &arguments.biases),
    ] {
        for shard in shards.iter() {
            access.read(name, shard);
        }
    }
    access.read("inputs", &arguments.inputs);
    access.regions()
}

/// Loss and gradients, then `weights -= learning_rate * gradient` (and biases) in place.
fn sgd_step<'py, F: IntoComputed, L: ClassId>(
    py: Python<'py>,
    labels: ArrayView2<L>,
    arguments: &SampledArguments<'py>,
    kind: SampledLoss,
    argument: &UpstreamArgument<'py>,
    learning_rate: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let scale = F::from_f64(-learning_rate);
    if !scale.is_finite() {
        return Err(PyValueError::new_err(format!(
            "learning_rate must be finite in the dtype of inputs, got {learning_rate}"
        )));
    }
    let weights = writable_shards::<F>(&arguments.weights, "weights")?;
    let biases = writable_shards::<F>(&arguments.biases, "biases")?;
    let arrays = TypedArrays::<F>::new(arguments, Some(argument))?;
    let mut access = Access::new();
    for (name, shards) in [("weights", &weights), ("biases", &biases)] {
        for (p, shard) in shards.iter().enumerate() {
            access.write(&shard_name(name, p, shards.len()), shard.as_any());
        }
    }
    access
        .read("inputs", &arguments.inputs)
        .read("labels", arguments.labels.as_any())
        .read("sampled_values[0]", arguments.sampled_candidates.as_any())
        .read("sampled_values[1]", &arguments.true_expected_count)
        .read("sampled_values[2]", &arguments.sampled_expected_count);
    access.check_disjoint(py)?;
    // SAFETY: these views only point at the shards' memory: they are read (the forward pass)
    // and then written (the update) only inside the work below, which holds the memory locks
    // that keep every other rustnce call out, and no other argument of this call shares memory
    // with them (checked above). The write views are used only after the read views' last use.
    fn read_views<'a, F: Element>(shards: &'a [Bound<'_, PyArray2<F>>]) -> Vec<ArrayView2<'a, F>> {
        shards.iter().map(|a| unsafe { a.as_array() }).collect()
    }
    fn write_views<'a, F: Element>(
        shards: &'a [Bound<'_, PyArray2<F>>],
    ) -> Vec<ArrayViewMut2<'a, F>> {
        shards.iter().map(|a| unsafe { a.as_array_mut() }).collect()
    }
    let problem = arrays.problem(arguments, labels, read_views(&weights), read_views(&biases))?;
    let upstream = arrays.upstream(argument)?;
    let strategy = partition_strategy(&arguments.partition_strategy)?;
    let inputs = arrays.inputs.as_array();
    let (weight_views, bias_views) = (write_views(&weights), write_views(&biases));
    let work = work_estimate(&problem);
    let computed = install_locked(py, &access.regions(), work, move || {
        let computed = forward_backward(&problem, kind, &upstream)?;
        drop(problem);
        let weight_rows = ShardedRowsMut::new(weight_views, strategy, "weights")?;
        let bias_rows = ShardedRowsMut::new(bias_views, strategy, "biases")?;
        computed.scatter_add(&inputs, Some(&weight_rows), Some(&bias_rows), scale)?;
        Ok::<_, NceError>(computed)
    })?;
    let SampledGradients {
        loss,
        inputs_gradient,
        ..
    } = computed;
    Ok((loss.into_pyarray(py), to_numpy(py, inputs_gradient)?)
        .into_pyobject(py)?
        .into_any())
}

fn writable_shards<'py, T: Element>(
    shards: &[Bound<'py, PyAny>],
    name: &str,
) -> PyResult<Vec<Bound<'py, PyArray2<T>>>> {
    shards
        .iter()
        .enumerate()
        .map(|(p, shard)| {
            writable_array::<T, Ix2>(
                shard,
                &shard_name(name, p, shards.len()),
                &format!(
                    "2-D array of {} (the dtype of inputs)",
                    std::any::type_name::<T>()
                ),
            )
        })
        .collect()
}

fn sampled<'py>(
    py: Python<'py>,
    arguments: &SampledArguments<'py>,
    output: SampledOutput<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let float = float_type(&arguments.inputs, "inputs")?;
    dispatch!(float, arguments.labels, run_sampled(py, arguments, output))
}

/// The `[batch, num_true + num_sampled]` sampled logits.
#[pyfunction]
pub fn sampled_logits<'py>(
    py: Python<'py>,
    arguments: SampledArguments<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    sampled(py, &arguments, SampledOutput::Logits)
}

/// Per-example `"nce"` or `"sampled_softmax"` loss `[batch]`.
#[pyfunction]
pub fn sampled_loss<'py>(
    py: Python<'py>,
    loss: &str,
    arguments: SampledArguments<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    sampled(py, &arguments, SampledOutput::Loss(loss_kind(loss)?))
}

/// The loss and its gradients, as a `SampledLossGradients`.
#[pyfunction]
pub fn sampled_loss_gradients<'py>(
    py: Python<'py>,
    loss: &str,
    arguments: SampledArguments<'py>,
    upstream: UpstreamArgument<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    sampled(
        py,
        &arguments,
        SampledOutput::Gradients(loss_kind(loss)?, &upstream),
    )
}

/// One SGD step on the weights and biases, in place: `(loss [batch], inputs gradient [batch, dim])`.
#[pyfunction]
pub fn sampled_sgd_step<'py>(
    py: Python<'py>,
    loss: &str,
    arguments: SampledArguments<'py>,
    upstream: UpstreamArgument<'py>,
    learning_rate: f64,
) -> PyResult<Bound<'py, PyAny>> {
    if !learning_rate.is_finite() {
        return Err(PyValueError::new_err(format!(
            "learning_rate must be finite, got {learning_rate}"
        )));
    }
    let kind = loss_kind(loss)?;
    let float = float_type(&arguments.inputs, "inputs")?;
    dispatch!(
        float,
        arguments.labels,
        sgd_step(py, &arguments, kind, &upstream, learning_rate)
    )
}

#[allow(clippy::too_many_arguments)]
fn run_full<'py, F: Real + Element, L: ClassId>(
    py: Python<'py>,
    labels: ArrayView2<L>,
    weights: &[Bound<'py, PyAny>],
    biases: &[Bound<'py, PyAny>],
    inputs: &Bound<'py, PyAny>,
    num_classes: usize,
    strategy: PartitionStrategy,
    kind: FullLoss,
) -> PyResult<Bound<'py, PyAny>> {
    let weights = shard_arrays::<F>(weights, "weights")?;
    let biases = shard_arrays::<F>(biases, "biases")?;
    let inputs = matrix::<F>(inputs, "inputs")?;
    let weights = sharded(&weights, strategy, "weights")?;
    let biases = sharded(&biases, strategy, "biases")?;
    let inputs = inputs.as_array();
    let loss = install(py, usize::MAX, || {
        full_evaluation::full_loss(&weights, &biases, labels, inputs, num_classes, kind)
    })?;
    Ok(loss.into_pyarray(py).into_any())
}

/// Per-example `"sigmoid"` or `"softmax"` loss over all `num_classes` classes.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn full_loss<'py>(
    py: Python<'py>,
    loss: &str,
    weights: Vec<Bound<'py, PyAny>>,
    biases: Vec<Bound<'py, PyAny>>,
    labels: ClassMatrix<'py>,
    inputs: Bound<'py, PyAny>,
    num_classes: i64,
    partition_strategy: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let kind = match loss {
        "sigmoid" => FullLoss::Sigmoid,
        "softmax" => FullLoss::Softmax,
        other => {
            return Err(PyValueError::new_err(format!(
                "loss must be \"sigmoid\" or \"softmax\", got {other:?}"
            )))
        }
    };
    let float = float_type(&inputs, "inputs")?;
    let num_classes = count(num_classes, "num_classes", 1)?;
    let strategy = self::partition_strategy(partition_strategy)?;
    dispatch!(
        float,
        labels,
        run_full(py, &weights, &biases, &inputs, num_classes, strategy, kind)
    )
}
