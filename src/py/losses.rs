//! The sampled logits, the two sampled losses and the full evaluation losses, for Python.
//! Dispatches on the float type of `inputs` and the integer type of `labels`, then hands views
//! to the core with the interpreter released.

use ndarray::ArrayView2;
use numpy::{Element, IntoPyArray, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::arguments::{
    count, float_type, matrix, partition_strategy, shard_arrays, sharded, vector, ClassMatrix,
    FloatType,
};
use crate::element_types::{ClassId, Real};
use crate::full_evaluation::{self, FullLoss};
use crate::losses::{self, SampledLoss};
use crate::sampled_logits::{SampledLossInputs, SampledValues};
use crate::sharding::PartitionStrategy;

/// The arguments shared by the sampled-logit functions, before their element type is known.
struct SampledArguments<'py> {
    weights: Vec<Bound<'py, PyAny>>,
    biases: Vec<Bound<'py, PyAny>>,
    inputs: Bound<'py, PyAny>,
    num_classes: usize,
    sampled_candidates: PyReadonlyArray1<'py, i64>,
    true_expected_count: Bound<'py, PyAny>,
    sampled_expected_count: Bound<'py, PyAny>,
    remove_accidental_hits: bool,
    subtract_log_q: bool,
    strategy: PartitionStrategy,
}

#[derive(Clone, Copy)]
enum SampledOutput {
    Logits,
    Loss(SampledLoss),
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

fn run_sampled<'py, F: Real + Element, L: ClassId>(
    py: Python<'py>,
    labels: ArrayView2<L>,
    arguments: &SampledArguments<'py>,
    output: SampledOutput,
) -> PyResult<Bound<'py, PyAny>> {
    let weights = shard_arrays::<F>(&arguments.weights, "weights")?;
    let biases = shard_arrays::<F>(&arguments.biases, "biases")?;
    let inputs = matrix::<F>(&arguments.inputs, "inputs")?;
    let true_expected_count = matrix::<F>(&arguments.true_expected_count, "sampled_values")?;
    let sampled_expected_count = vector::<F>(&arguments.sampled_expected_count, "sampled_values")?;
    let problem = SampledLossInputs {
        weights: sharded(&weights, arguments.strategy, "weights")?,
        biases: sharded(&biases, arguments.strategy, "biases")?,
        labels,
        inputs: inputs.as_array(),
        num_classes: arguments.num_classes,
        sampled: SampledValues {
            candidates: arguments.sampled_candidates.as_array(),
            true_expected_count: true_expected_count.as_array(),
            sampled_expected_count: sampled_expected_count.as_array(),
        },
        remove_accidental_hits: arguments.remove_accidental_hits,
        subtract_log_q: arguments.subtract_log_q,
    };
    Ok(match output {
        SampledOutput::Logits => py
            .detach(|| problem.compute_sampled_logits())?
            .into_pyarray(py)
            .into_any(),
        SampledOutput::Loss(kind) => py
            .detach(|| losses::sampled_loss(&problem, kind))?
            .into_pyarray(py)
            .into_any(),
    })
}

#[allow(clippy::too_many_arguments)]
fn sampled<'py>(
    py: Python<'py>,
    output: SampledOutput,
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
    strategy: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let float = float_type(&inputs, "inputs")?;
    let arguments = SampledArguments {
        weights,
        biases,
        inputs,
        num_classes: count(num_classes, "num_classes", 1)?,
        sampled_candidates,
        true_expected_count,
        sampled_expected_count,
        remove_accidental_hits,
        subtract_log_q,
        strategy: partition_strategy(strategy)?,
    };
    dispatch!(float, labels, run_sampled(py, &arguments, output))
}

/// The `[batch, num_true + num_sampled]` sampled logits.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn sampled_logits<'py>(
    py: Python<'py>,
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
    partition_strategy: &str,
) -> PyResult<Bound<'py, PyAny>> {
    sampled(
        py,
        SampledOutput::Logits,
        weights,
        biases,
        labels,
        inputs,
        num_classes,
        sampled_candidates,
        true_expected_count,
        sampled_expected_count,
        remove_accidental_hits,
        subtract_log_q,
        partition_strategy,
    )
}

/// Per-example `"nce"` or `"sampled_softmax"` loss `[batch]`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn sampled_loss<'py>(
    py: Python<'py>,
    loss: &str,
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
    partition_strategy: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let kind = match loss {
        "nce" => SampledLoss::Nce,
        "sampled_softmax" => SampledLoss::SampledSoftmax,
        other => {
            return Err(PyValueError::new_err(format!(
                "loss must be \"nce\" or \"sampled_softmax\", got {other:?}"
            )))
        }
    };
    sampled(
        py,
        SampledOutput::Loss(kind),
        weights,
        biases,
        labels,
        inputs,
        num_classes,
        sampled_candidates,
        true_expected_count,
        sampled_expected_count,
        remove_accidental_hits,
        subtract_log_q,
        partition_strategy,
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
    let loss = py.detach(|| {
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
