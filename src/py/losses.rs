//! The sampled logits, the two sampled losses and the full evaluation losses, for Python.
//! Dispatches on the float type of `inputs` and the integer type of `labels`, then hands views
//! to the core with the interpreter released.

use ndarray::{Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewMut2, Axis};
use numpy::{
    Element, IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use super::arguments::{
    array_of_any_rank, as_class_matrix, as_count, as_expected_counts, as_finite_float,
    as_float_array, as_id_vector, as_int, as_shards, check_broadcast, check_id_range,
    check_in_place_layout, check_in_place_targets, check_memory, check_shard_layout, matrix, seed,
    shape_tuple, shard_name, sharded, unpack_sampled_values, vector, with_class_view, Argument,
    ClassMatrix, FloatType, PartitionStrategyArgument, PrecisionArgument, UpstreamArgument,
    FLOAT32,
};
use super::errors;
use super::fork_gate::{install, install_locked};
use super::gradients::{IntoComputed, SampledLossGradients, Shapes};
use super::memory_locks::Access;
use super::output::to_numpy;
use super::samplers::{cached_sample, SamplerSettings};
use crate::bfloat16::Precision;
use crate::element_types::{ClassId, Real};
use crate::full_evaluation::{self, FullLoss};
use crate::losses::forward_backward::{
    forward_backward_copying_inputs, forward_backward_merged, sgd_step, SampledGradients,
    SgdTargets, Upstream,
};
use crate::losses::{self, SampledLoss};
use crate::philox::Seed;
use crate::sampled_logits::{
    SampledLossInputs, SampledValues, SAMPLED_EXPECTED_COUNT, TRUE_EXPECTED_COUNT,
};
use crate::samplers::CandidateSample;
use crate::sharding::{PartitionStrategy, ShardedMatrix, ShardedRowsMut};

/// The arguments every sampled-loss function shares, as the user passed them.
pub struct SharedArguments<'a, 'py> {
    pub weights: &'a Bound<'py, PyAny>,
    pub biases: &'a Bound<'py, PyAny>,
    pub labels: &'a Bound<'py, PyAny>,
    pub inputs: &'a Bound<'py, PyAny>,
    pub num_sampled: &'a Bound<'py, PyAny>,
    pub num_classes: &'a Bound<'py, PyAny>,
    pub num_true: &'a Argument<'py, i64>,
    pub sampled_values: Option<&'a Bound<'py, PyAny>>,
    pub remove_accidental_hits: &'a Argument<'py, bool>,
    pub partition_strategy: PartitionStrategy,
    pub seed: Option<&'a Bound<'py, PyAny>>,
    pub subtract_log_q: &'a Argument<'py, bool>,
    pub precision: Precision,
}

/// The caller's `sampled_values`, checked, or what the default sampler will draw.
enum Sampled<'py> {
    Given {
        candidates: PyReadonlyArray1<'py, i64>,
        /// In the dtype of `inputs`; empty when `ln Q` is not subtracted (never read).
        true_expected_count: Bound<'py, PyUntypedArray>,
        sampled_expected_count: Bound<'py, PyUntypedArray>,
    },
    Default {
        seed: Seed,
        num_sampled: usize,
    },
}

/// The shared arguments after every check: arrays of the right kinds and shapes.
pub struct Checked<'py> {
    float: FloatType,
    weights: Vec<Bound<'py, PyUntypedArray>>,
    /// 1-D shards.
    biases: Vec<Bound<'py, PyUntypedArray>>,
    labels: ClassMatrix<'py>,
    inputs: Bound<'py, PyUntypedArray>,
    num_classes: usize,
    strategy: PartitionStrategy,
    sampled: Sampled<'py>,
    remove_accidental_hits: bool,
    subtract_log_q: bool,
    precision: Precision,
}

impl<'py> Checked<'py> {
    fn batch(&self) -> usize {
        self.inputs.shape()[0]
    }

    /// The arrays a call reads that an in-place target must not overlap, by argument name.
    fn read_arrays(&self) -> Vec<(&'static str, Bound<'py, PyAny>)> {
        let mut read = vec![
            ("inputs", self.inputs.as_any().clone()),
            ("labels", self.labels.as_any().clone()),
        ];
        if let Sampled::Given {
            candidates,
            true_expected_count,
            sampled_expected_count,
        } = &self.sampled
        {
            read.push((
                "sampled_values[0] (sampled_candidates)",
                candidates.as_any().clone(),
            ));
            read.push((TRUE_EXPECTED_COUNT, true_expected_count.as_any().clone()));
            read.push((
                SAMPLED_EXPECTED_COUNT,
                sampled_expected_count.as_any().clone(),
            ));
        }
        read
    }
}

/// The arrays every loss reads, sampled or full, after their checks.
struct CheckedArrays<'py> {
    float: FloatType,
    weights: Vec<Bound<'py, PyUntypedArray>>,
    /// 1-D shards.
    biases: Vec<Bound<'py, PyUntypedArray>>,
    labels: ClassMatrix<'py>,
    inputs: Bound<'py, PyUntypedArray>,
    num_true: usize,
    num_classes: usize,
}

/// The checks every loss shares, sampled or full, in the order the arguments are documented:
/// dtypes, ranks, shapes, the shard layouts and `num_classes`. Nothing here reads more than
/// the arrays' headers (and the labels' dtype).
fn check_arrays<'py>(
    weights: &Bound<'py, PyAny>,
    biases: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
    inputs: &Bound<'py, PyAny>,
    num_true: &Argument<'py, i64>,
    num_classes: &Bound<'py, PyAny>,
    strategy: PartitionStrategy,
) -> PyResult<CheckedArrays<'py>> {
    let (inputs, float) = as_float_array(inputs, "inputs", 2)?;
    let weights = as_shards(weights, "weights", 2, float)?;
    let biases = as_shards(biases, "biases", 1, float)?;
    let labels = as_class_matrix(labels, "labels")?;
    let num_true = num_true.count("num_true")?;
    let labels_shape = labels.shape();
    let (batch, dim) = (inputs.shape()[0], inputs.shape()[1]);
    if labels_shape[1] != num_true {
        return Err(errors::wrong_value(format!(
            "labels must have shape [batch_size, num_true={num_true}], got {}",
            shape_tuple(&labels_shape)
        )));
    }
    if labels_shape[0] != batch {
        return Err(errors::wrong_value(format!(
            "labels has {} rows but inputs has {batch}: labels must be [batch_size, num_true] \
             with the batch of inputs",
            labels_shape[0]
        )));
    }
    for (p, shard) in weights.iter().enumerate() {
        if shard.shape()[1] != dim {
            return Err(errors::wrong_value(format!(
                "{} has {} columns but inputs have {dim}: weights must be [num_classes, dim] \
                 with the dim of inputs",
                shard_name("weights", p, weights.len()),
                shard.shape()[1]
            )));
        }
    }
    let weight_rows = check_shard_layout(&weights, "weights", strategy)?;
    let bias_rows = check_shard_layout(&biases, "biases", strategy)?;
    if bias_rows != weight_rows {
        return Err(errors::wrong_value(format!(
            "biases has {bias_rows} entries but weights have {weight_rows} rows: one bias per \
             row of weights"
        )));
    }
    let num_classes = as_int(num_classes, "num_classes", Some(1), Some(i64::MAX))?;
    if num_classes as u64 > weight_rows as u64 {
        return Err(errors::wrong_value(format!(
            "num_classes must be at most the rows of weights ({weight_rows}), got {num_classes}"
        )));
    }
    let num_classes = num_classes as usize;
    Ok(CheckedArrays {
        float,
        weights,
        biases,
        labels,
        inputs,
        num_true,
        num_classes,
    })
}

/// Every check the sampled-loss functions share, in the order the arguments are documented,
/// before anything is drawn or written.
pub fn check_shared<'py>(arguments: &SharedArguments<'_, 'py>) -> PyResult<Checked<'py>> {
    let py = arguments.inputs.py();
    let strategy = arguments.partition_strategy;
    let CheckedArrays {
        float,
        weights,
        biases,
        labels,
        inputs,
        num_true,
        num_classes,
    } = check_arrays(
        arguments.weights,
        arguments.biases,
        arguments.labels,
        arguments.inputs,
        arguments.num_true,
        arguments.num_classes,
        strategy,
    )?;
    let (batch, dim) = (inputs.shape()[0], inputs.shape()[1]);
    let remove_accidental_hits = arguments
        .remove_accidental_hits
        .flag("remove_accidental_hits")?;
    let subtract_log_q = arguments.subtract_log_q.flag("subtract_log_q")?;
    let precision = arguments.precision;
    if precision == Precision::BFloat16 && float != FloatType::F32 {
        return Err(errors::wrong_value(
            "precision='bfloat16' needs float32 weights, biases and inputs, got float64 \
             (bfloat16 products read float32 arrays)",
        ));
    }
    let num_sampled = if arguments.sampled_values.is_none() || remove_accidental_hits {
        as_count(arguments.num_sampled, "num_sampled")?
    } else {
        // TensorFlow never reads num_sampled once the candidates are given.
        as_int(arguments.num_sampled, "num_sampled", None, None)?;
        0
    };
    let seed = seed(arguments.seed)?; // a bad seed is refused even when no sampler needs it
                                      // Checked here rather than by the default sampler, so that the message names labels
                                      // (and so that explicit sampled_values get the check TensorFlow omits).
    with_class_view!(labels, |view| check_id_range(
        view.iter().copied(),
        "labels",
        num_classes,
        "num_classes"
    ))?;
    let sampled = match arguments.sampled_values {
        None => Sampled::Default { seed, num_sampled },
        Some(values) => given_sampled_values(
            values,
            num_sampled,
            num_classes,
            remove_accidental_hits,
            subtract_log_q,
            float,
            [batch, num_true],
        )?,
    };
    let num_sampled = match &sampled {
        Sampled::Given { candidates, .. } => candidates.len(),
        Sampled::Default { num_sampled, .. } => *num_sampled,
    };
    let elements = batch
        .saturating_mul(num_true.saturating_add(num_sampled))
        .saturating_add(num_sampled.saturating_mul(dim).saturating_mul(2))
        .saturating_add(batch.saturating_mul(dim));
    check_memory(py, elements.saturating_mul(float.itemsize()), || {
        format!(
            "the logits of batch {batch} x (num_true {num_true} + num_sampled {num_sampled}) and \
             {num_sampled} gathered rows of dim {dim}"
        )
    })?;
    Ok(Checked {
        float,
        weights,
        biases,
        labels,
        inputs,
        num_classes,
        strategy,
        sampled,
        remove_accidental_hits,
        subtract_log_q,
        precision,
    })
}

/// The caller's triple. As in TensorFlow, the candidates' own length is the number sampled,
/// and the expected counts are read only when `ln Q` is subtracted.
fn given_sampled_values<'py>(
    value: &Bound<'py, PyAny>,
    num_sampled: usize,
    num_classes: usize,
    remove_accidental_hits: bool,
    subtract_log_q: bool,
    float: FloatType,
    [batch, num_true]: [usize; 2],
) -> PyResult<Sampled<'py>> {
    const CANDIDATES: &str = "sampled_values[0] (sampled_candidates)";
    let [candidates, true_expected, sampled_expected] = unpack_sampled_values(value)?;
    let candidates = as_id_vector(&candidates, CANDIDATES)?;
    let ids = candidates.as_array();
    check_id_range(ids.iter().copied(), CANDIDATES, num_classes, "num_classes")?;
    if remove_accidental_hits && ids.len() != num_sampled {
        return Err(errors::wrong_value(format!(
            "num_sampled ({num_sampled}) must equal len(sampled_values[0]) ({}) when accidental \
             hits are removed: TensorFlow builds the hit mask with num_sampled columns",
            ids.len()
        )));
    }
    let count = ids.len();
    let (true_expected_count, sampled_expected_count) = if subtract_log_q {
        let true_expected = as_expected_counts(&true_expected, TRUE_EXPECTED_COUNT, float)?;
        let sampled_expected =
            as_expected_counts(&sampled_expected, SAMPLED_EXPECTED_COUNT, float)?;
        check_broadcast(
            true_expected.shape(),
            [batch, num_true],
            TRUE_EXPECTED_COUNT,
        )?;
        check_broadcast(
            sampled_expected.shape(),
            [batch, count],
            SAMPLED_EXPECTED_COUNT,
        )?;
        (true_expected, sampled_expected)
    } else {
        let unread = float.empty(value.py());
        (unread.clone(), unread)
    };
    Ok(Sampled::Given {
        candidates,
        true_expected_count,
        sampled_expected_count,
    })
}

/// The in-place targets of an SGD step: NumPy arrays, writeable, with elements apart, and
/// sharing no element with another argument. Checked before the default sampler draws.
fn check_targets<'py>(
    py: Python<'py>,
    checked: &Checked<'py>,
    upstream: Option<&Bound<'py, PyUntypedArray>>,
) -> PyResult<Access<'py>> {
    check_in_place_layout(&checked.weights, "weights")?;
    check_in_place_layout(&checked.biases, "biases")?;
    let mut access = Access::new();
    for (name, shards) in [("weights", &checked.weights), ("biases", &checked.biases)] {
        for (p, shard) in shards.iter().enumerate() {
            access.write(&shard_name(name, p, shards.len()), shard.as_any());
        }
    }
    for (name, array) in checked.read_arrays() {
        access.read(name, &array);
    }
    if let Some(upstream) = upstream {
        access.read("upstream", upstream.as_any());
    }
    access.check_disjoint(py)?;
    Ok(access)
}

/// The default sample (TensorFlow's: the log-uniform sampler, unique, over `num_classes`),
/// drawn by the kept sampler the module-level `log_uniform_candidate_sampler` also uses.
fn draw(py: Python<'_>, checked: &Checked<'_>) -> PyResult<Option<CandidateSample>> {
    let Sampled::Default { seed, num_sampled } = checked.sampled else {
        return Ok(None);
    };
    let settings = SamplerSettings::LogUniform(checked.num_classes as i64);
    let num_true = checked.labels.shape()[1];
    with_class_view!(checked.labels, |view| cached_sample(
        py,
        settings,
        view,
        num_true,
        num_sampled,
        true,
        seed
    ))
    .map(Some)
}

/// What a call computes from the checked arguments.
enum Output<'a, 'py> {
    Logits,
    Loss(SampledLoss),
    /// The loss, its upstream, whether to keep the logit gradient (`rescalable`) and whether to
    /// form the merged form in the pass (`merged`).
    Gradients(SampledLoss, &'a UpstreamArgument<'py>, bool, bool),
    SgdStep(SampledLoss, &'a UpstreamArgument<'py>, f64, Access<'py>),
}

/// The sampled values in the element type of the call, owned when the default sampler drew them.
// One per call, on the stack: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Values<'c, 'py, F: Element> {
    Given {
        candidates: ArrayView1<'c, i64>,
        true_expected_count: PyReadonlyArrayDyn<'py, F>,
        sampled_expected_count: PyReadonlyArrayDyn<'py, F>,
    },
    Drawn {
        candidates: Vec<i64>,
        true_expected_count: ArrayD<F>,
        sampled_expected_count: ArrayD<F>,
    },
}

impl<'c, 'py, F: Real + Element> Values<'c, 'py, F> {
    fn new(checked: &'c Checked<'py>, drawn: Option<CandidateSample>) -> PyResult<Self> {
        Ok(match (&checked.sampled, drawn) {
            (
                Sampled::Given {
                    candidates,
                    true_expected_count,
                    sampled_expected_count,
                },
                _,
            ) => Values::Given {
                candidates: candidates.as_array(),
                true_expected_count: array_of_any_rank::<F>(
                    true_expected_count.as_any(),
                    TRUE_EXPECTED_COUNT,
                )?,
                sampled_expected_count: array_of_any_rank::<F>(
                    sampled_expected_count.as_any(),
                    SAMPLED_EXPECTED_COUNT,
                )?,
            },
            (Sampled::Default { .. }, Some(drawn)) => Values::Drawn {
                candidates: drawn.sampled_candidates,
                true_expected_count: drawn
                    .true_expected_count
                    .mapv(|count| F::from_f64(f64::from(count)))
                    .into_dyn(),
                sampled_expected_count: ndarray::Array1::from_iter(
                    drawn
                        .sampled_expected_count
                        .iter()
                        .map(|&count| F::from_f64(f64::from(count))),
                )
                .into_dyn(),
            },
            (Sampled::Default { .. }, None) => {
                return Err(errors::wrong_value("the default sample was not drawn"))
            }
        })
    }

    fn views(&self) -> SampledValues<'_, F> {
        match self {
            Values::Given {
                candidates,
                true_expected_count,
                sampled_expected_count,
            } => SampledValues {
                candidates: candidates.view(),
                true_expected_count: true_expected_count.as_array(),
                sampled_expected_count: sampled_expected_count.as_array(),
            },
            Values::Drawn {
                candidates,
                true_expected_count,
                sampled_expected_count,
            } => SampledValues {
                candidates: ArrayView1::from(candidates.as_slice()),
                true_expected_count: true_expected_count.view(),
                sampled_expected_count: sampled_expected_count.view(),
            },
        }
    }
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

fn read_shards<'py, F: Element>(
    shards: &[Bound<'py, PyUntypedArray>],
    name: &str,
) -> PyResult<Vec<PyReadonlyArray2<'py, F>>> {
    shards
        .iter()
        .enumerate()
        .map(|(p, shard)| matrix::<F>(shard.as_any(), &shard_name(name, p, shards.len())))
        .collect()
}

fn read_bias_shards<'py, F: Element>(
    shards: &[Bound<'py, PyUntypedArray>],
) -> PyResult<Vec<PyReadonlyArray1<'py, F>>> {
    shards
        .iter()
        .enumerate()
        .map(|(p, shard)| vector::<F>(shard.as_any(), &shard_name("biases", p, shards.len())))
        .collect()
}

/// Runs the call for the element types of `inputs` and `labels`: views of the arrays, the core
/// with the interpreter released, the results as NumPy arrays.
fn run<'py, F: IntoComputed, L: ClassId>(
    py: Python<'py>,
    labels: ArrayView2<'_, L>,
    checked: &Checked<'py>,
    drawn: Option<CandidateSample>,
    output: Output<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let values = Values::<F>::new(checked, drawn)?;
    let inputs = matrix::<F>(checked.inputs.as_any(), "inputs")?;
    let upstream_array = match &output {
        Output::Gradients(_, upstream, _, _) | Output::SgdStep(_, upstream, _, _) => upstream
            .per_example(checked.batch(), checked.float)?
            .map(|array| vector::<F>(array.as_any(), "upstream"))
            .transpose()?,
        _ => None,
    };
    let upstream = match &output {
        Output::Gradients(_, argument, _, _) | Output::SgdStep(_, argument, _, _) => match argument
        {
            UpstreamArgument::Sum => Upstream::Sum,
            UpstreamArgument::Mean => Upstream::Mean,
            UpstreamArgument::PerExample(_) => match &upstream_array {
                Some(array) => Upstream::PerExample(array.as_array()),
                None => Upstream::Sum,
            },
        },
        _ => Upstream::Sum,
    };
    if let Output::SgdStep(kind, _, learning_rate, access) = output {
        let scale = F::from_f64(-learning_rate);
        if !scale.is_finite() {
            return Err(errors::wrong_value(format!(
                "learning_rate must be finite in the dtype of inputs, got {learning_rate}"
            )));
        }
        // SAFETY: these views only point at the shards' memory: they are read (the forward
        // pass) and written (the update) only inside the work below, which holds the memory
        // locks that keep every other rustnce call out, and no other argument of this call
        // shares memory with them (`check_targets`). A row is written only after the pass's
        // last read of it (`sgd_step`'s contract).
        let weight_arrays = checked
            .weights
            .iter()
            .map(|shard| shard.cast::<PyArray2<F>>().map_err(PyErr::from))
            .collect::<PyResult<Vec<_>>>()?;
        let bias_arrays = checked
            .biases
            .iter()
            .map(|shard| shard.cast::<PyArray1<F>>().map_err(PyErr::from))
            .collect::<PyResult<Vec<_>>>()?;
        let read_weights: Vec<ArrayView2<F>> = weight_arrays
            .iter()
            .map(|a| unsafe { a.as_array() })
            .collect();
        let read_biases: Vec<ArrayView2<F>> = bias_arrays
            .iter()
            .map(|a| unsafe { a.as_array() }.insert_axis(Axis(1)))
            .collect();
        let write_weights: Vec<ArrayViewMut2<F>> = weight_arrays
            .iter()
            .map(|a| unsafe { a.as_array_mut() })
            .collect();
        let write_biases: Vec<ArrayViewMut2<F>> = bias_arrays
            .iter()
            .map(|a| unsafe { a.as_array_mut() }.insert_axis(Axis(1)))
            .collect();
        let problem = problem(checked, labels, read_weights, read_biases, &inputs, &values)?;
        let strategy = checked.strategy;
        let work = work_estimate(&problem);
        let computed = install_locked(py, &access.regions(), work, move || {
            let weight_rows = ShardedRowsMut::new(write_weights, strategy, "weights")?;
            let bias_rows = ShardedRowsMut::new(write_biases, strategy, "biases")?;
            let targets = SgdTargets {
                weights: &weight_rows,
                biases: &bias_rows,
                scale,
            };
            // SAFETY: the targets are the problem's own weights and biases (the same arrays,
            // the same partition strategy), as `sgd_step` requires.
            unsafe { sgd_step(&problem, kind, &upstream, &targets) }
        })?;
        let SampledGradients {
            loss,
            inputs_gradient,
            ..
        } = computed;
        return Ok((loss.into_pyarray(py), to_numpy(py, inputs_gradient)?)
            .into_pyobject(py)?
            .into_any());
    }
    let weights = read_shards::<F>(&checked.weights, "weights")?;
    let biases = read_bias_shards::<F>(&checked.biases)?;
    let problem = problem(
        checked,
        labels,
        weights.iter().map(|a| a.as_array()).collect(),
        biases
            .iter()
            .map(|a| a.as_array().insert_axis(Axis(1)))
            .collect(),
        &inputs,
        &values,
    )?;
    let mut access = Access::new();
    for (name, shards) in [("weights", &checked.weights), ("biases", &checked.biases)] {
        for shard in shards.iter() {
            access.read(name, shard.as_any());
        }
    }
    access.read("inputs", checked.inputs.as_any());
    let regions = access.regions();
    let work = work_estimate(&problem);
    Ok(match output {
        Output::Logits => {
            let logits = install_locked(py, &regions, work, || problem.compute_sampled_logits())?;
            let num_true = problem.num_true();
            let mut targets = Array2::<F>::zeros(logits.dim());
            targets
                .slice_mut(ndarray::s![.., ..num_true])
                .fill(F::from_f64(1.0 / num_true as f64));
            (to_numpy(py, logits)?, targets.into_pyarray(py))
                .into_pyobject(py)?
                .into_any()
        }
        Output::Loss(kind) => {
            install_locked(py, &regions, work, || losses::sampled_loss(&problem, kind))?
                .into_pyarray(py)
                .into_any()
        }
        Output::Gradients(kind, _, rescalable, merge) => {
            // The gradients keep their own copy of `inputs`: what they compute later must not
            // depend on the caller leaving `inputs` untouched. A merging pass forms the merged
            // form at once and keeps no copy.
            let (computed, merged, inputs) = install_locked(py, &regions, work, || {
                if merge {
                    return forward_backward_merged(&problem, kind, &upstream, rescalable)
                        .map(|(computed, merged)| (computed, Some(merged), None));
                }
                forward_backward_copying_inputs(&problem, kind, &upstream, rescalable)
                    .map(|(computed, inputs)| (computed, None, Some(inputs)))
            })?;
            let shapes = Shapes {
                weights: checked
                    .weights
                    .iter()
                    .map(|w| (w.shape()[0], w.shape()[1]))
                    .collect(),
                biases: checked.biases.iter().map(|b| b.shape()[0]).collect(),
            };
            let read = checked
                .read_arrays()
                .into_iter()
                .map(|(name, array)| (name, array.unbind()))
                .collect();
            let gradients = SampledLossGradients::new(
                py,
                computed,
                inputs.map(std::sync::Arc::new),
                merged,
                problem.weights.layout().clone(),
                problem.biases.layout().clone(),
                shapes,
                read,
            )?;
            Bound::new(py, gradients)?.into_any()
        }
        Output::SgdStep(..) => unreachable!("handled above"),
    })
}

fn problem<'a, F: Real + Element, L: ClassId>(
    checked: &Checked<'_>,
    labels: ArrayView2<'a, L>,
    weights: Vec<ArrayView2<'a, F>>,
    biases: Vec<ArrayView2<'a, F>>,
    inputs: &'a PyReadonlyArray2<'_, F>,
    values: &'a Values<'_, '_, F>,
) -> PyResult<SampledLossInputs<'a, F, L>> {
    Ok(SampledLossInputs {
        weights: ShardedMatrix::new(weights, checked.strategy, "weights")?,
        biases: ShardedMatrix::new(biases, checked.strategy, "biases")?,
        labels,
        inputs: inputs.as_array(),
        num_classes: checked.num_classes,
        sampled: values.views(),
        remove_accidental_hits: checked.remove_accidental_hits,
        subtract_log_q: checked.subtract_log_q,
        precision: checked.precision,
    })
}

/// Checks, draws the default sample, and computes `output`: the body of every sampled-loss
/// function.
fn sampled_call<'py>(
    py: Python<'py>,
    checked: &Checked<'py>,
    output: Output<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let drawn = draw(py, checked)?;
    match (checked.float, &checked.labels) {
        (FloatType::F32, ClassMatrix::I64(l)) => {
            run::<f32, i64>(py, l.as_array(), checked, drawn, output)
        }
        (FloatType::F32, ClassMatrix::I32(l)) => {
            run::<f32, i32>(py, l.as_array(), checked, drawn, output)
        }
        (FloatType::F64, ClassMatrix::I64(l)) => {
            run::<f64, i64>(py, l.as_array(), checked, drawn, output)
        }
        (FloatType::F64, ClassMatrix::I32(l)) => {
            run::<f64, i32>(py, l.as_array(), checked, drawn, output)
        }
    }
}

/// The shared arguments of a public function, by their TensorFlow names.
macro_rules! shared {
    ($weights:ident, $biases:ident, $labels:ident, $inputs:ident, $num_sampled:ident,
     $num_classes:ident, $num_true:ident, $sampled_values:ident, $remove_accidental_hits:ident,
     $partition_strategy:ident, $seed:ident, $subtract_log_q:ident, $precision:expr) => {
        SharedArguments {
            weights: &$weights,
            biases: &$biases,
            labels: &$labels,
            inputs: &$inputs,
            num_sampled: &$num_sampled,
            num_classes: &$num_classes,
            num_true: &$num_true,
            sampled_values: $sampled_values.as_ref().filter(|v| !v.is_none()),
            remove_accidental_hits: &$remove_accidental_hits,
            partition_strategy: $partition_strategy.0,
            seed: $seed.as_ref(),
            subtract_log_q: &$subtract_log_q,
            precision: $precision,
        }
    };
}

const DIV: PartitionStrategyArgument = PartitionStrategyArgument(PartitionStrategy::Div);

/// Declares a sampled-loss function with TensorFlow's arguments and defaults, in TensorFlow's
/// order; `$output` is what it computes from the checked arguments.
macro_rules! loss_function {
    ($(#[$doc:meta])* $name:ident, remove_accidental_hits = $hits:expr, $text:literal, $output:expr) => {
        $(#[$doc])*
        #[pyfunction]
        #[pyo3(text_signature = $text)]
        #[allow(clippy::too_many_arguments)]
        #[pyo3(signature = (
            weights, biases, labels, inputs, num_sampled, num_classes,
            num_true=Argument::Default(1), sampled_values=None,
            remove_accidental_hits=Argument::Default($hits), partition_strategy=DIV, seed=None,
            subtract_log_q=Argument::Default(true), *, precision=FLOAT32
        ))]
        pub fn $name<'py>(
            py: Python<'py>,
            weights: Bound<'py, PyAny>,
            biases: Bound<'py, PyAny>,
            labels: Bound<'py, PyAny>,
            inputs: Bound<'py, PyAny>,
            num_sampled: Bound<'py, PyAny>,
            num_classes: Bound<'py, PyAny>,
            num_true: Argument<'py, i64>,
            sampled_values: Option<Bound<'py, PyAny>>,
            remove_accidental_hits: Argument<'py, bool>,
            partition_strategy: PartitionStrategyArgument,
            seed: Option<Bound<'py, PyAny>>,
            subtract_log_q: Argument<'py, bool>,
            precision: PrecisionArgument,
        ) -> PyResult<Bound<'py, PyAny>> {
            let checked = check_shared(&shared!(
                weights, biases, labels, inputs, num_sampled, num_classes, num_true,
                sampled_values, remove_accidental_hits, partition_strategy, seed, subtract_log_q,
                precision.0
            ))?;
            sampled_call(py, &checked, $output)
        }
    };
}

loss_function!(
    /// `tf.nn.nce_loss`: the per-example loss `[batch]`.
    nce_loss,
    remove_accidental_hits = false,
    "(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1, sampled_values=None, remove_accidental_hits=False, partition_strategy='div', seed=None, subtract_log_q=True, *, precision='float32')",
    Output::Loss(SampledLoss::Nce)
);
loss_function!(
    /// `tf.nn.sampled_softmax_loss`: the per-example loss `[batch]`.
    sampled_softmax_loss,
    remove_accidental_hits = true,
    "(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1, sampled_values=None, remove_accidental_hits=True, partition_strategy='div', seed=None, subtract_log_q=True, *, precision='float32')",
    Output::Loss(SampledLoss::SampledSoftmax)
);

/// TensorFlow's `_compute_sampled_logits`: `(logits, targets)`, each
/// `[batch, num_true + num_sampled]`. (`subtract_log_q` comes before
/// `remove_accidental_hits` here, as in TensorFlow.)
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(
    text_signature = "(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1, sampled_values=None, subtract_log_q=True, remove_accidental_hits=False, partition_strategy='div', seed=None, *, precision='float32')"
)]
#[pyo3(signature = (
    weights, biases, labels, inputs, num_sampled, num_classes, num_true=Argument::Default(1),
    sampled_values=None, subtract_log_q=Argument::Default(true),
    remove_accidental_hits=Argument::Default(false), partition_strategy=DIV, seed=None, *,
    precision=FLOAT32
))]
pub fn compute_sampled_logits<'py>(
    py: Python<'py>,
    weights: Bound<'py, PyAny>,
    biases: Bound<'py, PyAny>,
    labels: Bound<'py, PyAny>,
    inputs: Bound<'py, PyAny>,
    num_sampled: Bound<'py, PyAny>,
    num_classes: Bound<'py, PyAny>,
    num_true: Argument<'py, i64>,
    sampled_values: Option<Bound<'py, PyAny>>,
    subtract_log_q: Argument<'py, bool>,
    remove_accidental_hits: Argument<'py, bool>,
    partition_strategy: PartitionStrategyArgument,
    seed: Option<Bound<'py, PyAny>>,
    precision: PrecisionArgument,
) -> PyResult<Bound<'py, PyAny>> {
    let checked = check_shared(&shared!(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true,
        sampled_values,
        remove_accidental_hits,
        partition_strategy,
        seed,
        subtract_log_q,
        precision.0
    ))?;
    sampled_call(py, &checked, Output::Logits)
}

/// The sampled values a sampled loss with these arguments uses, after every check:
/// `(sampled_candidates, true_expected_count, sampled_expected_count)`, drawn by the default
/// sampler when not given; the counts in the dtype of `inputs` (for `rustnce.torch`, which
/// runs the passes itself and needs the same candidates in both).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(
    text_signature = "(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1, sampled_values=None, remove_accidental_hits=False, partition_strategy='div', seed=None, subtract_log_q=True)"
)]
#[pyo3(signature = (
    weights, biases, labels, inputs, num_sampled, num_classes, num_true=Argument::Default(1),
    sampled_values=None, remove_accidental_hits=Argument::Default(false), partition_strategy=DIV,
    seed=None, subtract_log_q=Argument::Default(true)
))]
pub fn checked_sampled_values<'py>(
    py: Python<'py>,
    weights: Bound<'py, PyAny>,
    biases: Bound<'py, PyAny>,
    labels: Bound<'py, PyAny>,
    inputs: Bound<'py, PyAny>,
    num_sampled: Bound<'py, PyAny>,
    num_classes: Bound<'py, PyAny>,
    num_true: Argument<'py, i64>,
    sampled_values: Option<Bound<'py, PyAny>>,
    remove_accidental_hits: Argument<'py, bool>,
    partition_strategy: PartitionStrategyArgument,
    seed: Option<Bound<'py, PyAny>>,
    subtract_log_q: Argument<'py, bool>,
) -> PyResult<Bound<'py, PyAny>> {
    let checked = check_shared(&shared!(
        weights,
        biases,
        labels,
        inputs,
        num_sampled,
        num_classes,
        num_true,
        sampled_values,
        remove_accidental_hits,
        partition_strategy,
        seed,
        subtract_log_q,
        Precision::Float32
    ))?;
    let drawn = draw(py, &checked)?;
    let float = checked.float;
    Ok(match (checked.sampled, drawn) {
        (_, Some(drawn)) => {
            let true_counts = drawn.true_expected_count.into_pyarray(py);
            let sampled_counts = drawn.sampled_expected_count.into_pyarray(py);
            (
                drawn.sampled_candidates.into_pyarray(py).into_any(),
                float.convert(true_counts.as_untyped())?,
                float.convert(sampled_counts.as_untyped())?,
            )
                .into_pyobject(py)?
                .into_any()
        }
        (
            Sampled::Given {
                candidates,
                true_expected_count,
                sampled_expected_count,
            },
            None,
        ) => (
            candidates.as_any().clone(),
            true_expected_count,
            sampled_expected_count,
        )
            .into_pyobject(py)?
            .into_any(),
        (Sampled::Default { .. }, None) => {
            return Err(errors::wrong_value("the default sample was not drawn"))
        }
    })
}

/// Declares a loss-and-gradients or SGD-step function with TensorFlow's arguments.
macro_rules! gradient_function {
    ($(#[$doc:meta])* $name:ident, $kind:expr, remove_accidental_hits = $hits:expr, $text:literal, sgd) => {
        $(#[$doc])*
        #[pyfunction]
        #[pyo3(text_signature = $text)]
        #[allow(clippy::too_many_arguments)]
        #[pyo3(signature = (
            weights, biases, labels, inputs, num_sampled, num_classes, learning_rate,
            num_true=Argument::Default(1), sampled_values=None,
            remove_accidental_hits=Argument::Default($hits), partition_strategy=DIV, seed=None,
            subtract_log_q=Argument::Default(true), upstream=UpstreamArgument::Mean, *,
            precision=FLOAT32
        ))]
        pub fn $name<'py>(
            py: Python<'py>,
            weights: Bound<'py, PyAny>,
            biases: Bound<'py, PyAny>,
            labels: Bound<'py, PyAny>,
            inputs: Bound<'py, PyAny>,
            num_sampled: Bound<'py, PyAny>,
            num_classes: Bound<'py, PyAny>,
            learning_rate: Bound<'py, PyAny>,
            num_true: Argument<'py, i64>,
            sampled_values: Option<Bound<'py, PyAny>>,
            remove_accidental_hits: Argument<'py, bool>,
            partition_strategy: PartitionStrategyArgument,
            seed: Option<Bound<'py, PyAny>>,
            subtract_log_q: Argument<'py, bool>,
            upstream: UpstreamArgument<'py>,
            precision: PrecisionArgument,
        ) -> PyResult<Bound<'py, PyAny>> {
            let learning_rate = as_finite_float(&learning_rate, "learning_rate")?;
            check_in_place_targets(&weights, "weights")?;
            check_in_place_targets(&biases, "biases")?;
            let checked = check_shared(&shared!(
                weights, biases, labels, inputs, num_sampled, num_classes, num_true,
                sampled_values, remove_accidental_hits, partition_strategy, seed, subtract_log_q,
                precision.0
            ))?;
            let per_example = upstream.per_example(checked.batch(), checked.float)?;
            let access = check_targets(py, &checked, per_example.as_ref())?;
            sampled_call(py, &checked, Output::SgdStep($kind, &upstream, learning_rate, access))
        }
    };
    ($(#[$doc:meta])* $name:ident, $kind:expr, remove_accidental_hits = $hits:expr, $text:literal) => {
        $(#[$doc])*
        #[pyfunction]
        #[pyo3(text_signature = $text)]
        #[allow(clippy::too_many_arguments)]
        #[pyo3(signature = (
            weights, biases, labels, inputs, num_sampled, num_classes,
            num_true=Argument::Default(1), sampled_values=None,
            remove_accidental_hits=Argument::Default($hits), partition_strategy=DIV, seed=None,
            subtract_log_q=Argument::Default(true), upstream=UpstreamArgument::Sum, *,
            rescalable=Argument::Default(false), merged=Argument::Default(false),
            precision=FLOAT32
        ))]
        pub fn $name<'py>(
            py: Python<'py>,
            weights: Bound<'py, PyAny>,
            biases: Bound<'py, PyAny>,
            labels: Bound<'py, PyAny>,
            inputs: Bound<'py, PyAny>,
            num_sampled: Bound<'py, PyAny>,
            num_classes: Bound<'py, PyAny>,
            num_true: Argument<'py, i64>,
            sampled_values: Option<Bound<'py, PyAny>>,
            remove_accidental_hits: Argument<'py, bool>,
            partition_strategy: PartitionStrategyArgument,
            seed: Option<Bound<'py, PyAny>>,
            subtract_log_q: Argument<'py, bool>,
            upstream: UpstreamArgument<'py>,
            rescalable: Argument<'py, bool>,
            merged: Argument<'py, bool>,
            precision: PrecisionArgument,
        ) -> PyResult<Bound<'py, PyAny>> {
            let rescalable = rescalable.flag("rescalable")?;
            let merged = merged.flag("merged")?;
            let checked = check_shared(&shared!(
                weights, biases, labels, inputs, num_sampled, num_classes, num_true,
                sampled_values, remove_accidental_hits, partition_strategy, seed, subtract_log_q,
                precision.0
            ))?;
            // Checked before the default sampler draws.
            upstream.per_example(checked.batch(), checked.float)?;
            sampled_call(py, &checked, Output::Gradients($kind, &upstream, rescalable, merged))
        }
    };
}

gradient_function!(
    /// `nce_loss` and its gradients in one fused pass, as a `SampledLossGradients`.
    nce_loss_and_gradients, SampledLoss::Nce, remove_accidental_hits = false,
    "(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1, sampled_values=None, remove_accidental_hits=False, partition_strategy='div', seed=None, subtract_log_q=True, upstream='sum', *, rescalable=False, merged=False, precision='float32')"
);
gradient_function!(
    /// `sampled_softmax_loss` and its gradients in one fused pass.
    sampled_softmax_loss_and_gradients, SampledLoss::SampledSoftmax, remove_accidental_hits = true,
    "(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1, sampled_values=None, remove_accidental_hits=True, partition_strategy='div', seed=None, subtract_log_q=True, upstream='sum', *, rescalable=False, merged=False, precision='float32')"
);
gradient_function!(
    /// One SGD step of `nce_loss` on `weights` and `biases`, in place:
    /// `(loss [batch], inputs gradient [batch, dim])`.
    nce_sgd_step, SampledLoss::Nce, remove_accidental_hits = false,
    "(weights, biases, labels, inputs, num_sampled, num_classes, learning_rate, num_true=1, sampled_values=None, remove_accidental_hits=False, partition_strategy='div', seed=None, subtract_log_q=True, upstream='mean', *, precision='float32')", sgd
);
gradient_function!(
    /// One SGD step of `sampled_softmax_loss`, in place.
    sampled_softmax_sgd_step, SampledLoss::SampledSoftmax, remove_accidental_hits = true,
    "(weights, biases, labels, inputs, num_sampled, num_classes, learning_rate, num_true=1, sampled_values=None, remove_accidental_hits=True, partition_strategy='div', seed=None, subtract_log_q=True, upstream='mean', *, precision='float32')", sgd
);

fn run_full<'py, F: Real + Element, L: ClassId>(
    py: Python<'py>,
    labels: ArrayView2<L>,
    checked: &CheckedArrays<'py>,
    strategy: PartitionStrategy,
    kind: FullLoss,
) -> PyResult<Bound<'py, PyAny>> {
    let weights = read_shards::<F>(&checked.weights, "weights")?;
    let biases = read_bias_shards::<F>(&checked.biases)?;
    let inputs = matrix::<F>(checked.inputs.as_any(), "inputs")?;
    let weights = sharded(&weights, strategy, "weights")?;
    let biases = ShardedMatrix::new(
        biases
            .iter()
            .map(|a| a.as_array().insert_axis(Axis(1)))
            .collect(),
        strategy,
        "biases",
    )?;
    let inputs = inputs.as_array();
    let num_classes = checked.num_classes;
    let loss = install(py, usize::MAX, || {
        full_evaluation::full_loss(&weights, &biases, labels, inputs, num_classes, kind)
    })?;
    Ok(loss.into_pyarray(py).into_any())
}

/// A full loss: the shared checks, the labels within `num_classes`, then the core.
#[allow(clippy::too_many_arguments)]
fn full_loss<'py>(
    py: Python<'py>,
    kind: FullLoss,
    weights: &Bound<'py, PyAny>,
    biases: &Bound<'py, PyAny>,
    labels: &Bound<'py, PyAny>,
    inputs: &Bound<'py, PyAny>,
    num_classes: &Bound<'py, PyAny>,
    num_true: &Argument<'py, i64>,
    strategy: PartitionStrategy,
) -> PyResult<Bound<'py, PyAny>> {
    let checked = check_arrays(
        weights,
        biases,
        labels,
        inputs,
        num_true,
        num_classes,
        strategy,
    )?;
    with_class_view!(checked.labels, |view| check_id_range(
        view.iter().copied(),
        "labels",
        checked.num_classes,
        "num_classes"
    ))?;
    match (checked.float, &checked.labels) {
        (FloatType::F32, ClassMatrix::I64(l)) => {
            run_full::<f32, i64>(py, l.as_array(), &checked, strategy, kind)
        }
        (FloatType::F32, ClassMatrix::I32(l)) => {
            run_full::<f32, i32>(py, l.as_array(), &checked, strategy, kind)
        }
        (FloatType::F64, ClassMatrix::I64(l)) => {
            run_full::<f64, i64>(py, l.as_array(), &checked, strategy, kind)
        }
        (FloatType::F64, ClassMatrix::I32(l)) => {
            run_full::<f64, i32>(py, l.as_array(), &checked, strategy, kind)
        }
    }
}

macro_rules! full_loss_function {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[pyfunction]
        #[pyo3(
            signature = (
                weights, biases, labels, inputs, num_classes, num_true=Argument::Default(1),
                partition_strategy=DIV
            ),
            text_signature = "(weights, biases, labels, inputs, num_classes, num_true=1, partition_strategy='div')"
        )]
        #[allow(clippy::too_many_arguments)]
        pub fn $name<'py>(
            py: Python<'py>,
            weights: Bound<'py, PyAny>,
            biases: Bound<'py, PyAny>,
            labels: Bound<'py, PyAny>,
            inputs: Bound<'py, PyAny>,
            num_classes: Bound<'py, PyAny>,
            num_true: Argument<'py, i64>,
            partition_strategy: PartitionStrategyArgument,
        ) -> PyResult<Bound<'py, PyAny>> {
            full_loss(
                py, $kind, &weights, &biases, &labels, &inputs, &num_classes, &num_true,
                partition_strategy.0,
            )
        }
    };
}

full_loss_function!(
    /// Per-example sigmoid cross-entropy over all `num_classes` classes.
    full_sigmoid_loss, FullLoss::Sigmoid
);
full_loss_function!(
    /// Per-example softmax cross-entropy over all `num_classes` classes.
    full_softmax_loss, FullLoss::Softmax
);
