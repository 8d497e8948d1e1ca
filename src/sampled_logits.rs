//! `_compute_sampled_logits` (docs/semantics.md §2): the
//! `[batch, num_true + num_sampled]` logits both losses start from — true and sampled rows
//! gathered from (sharded) weights, dot products, biases, the accidental-hit mask and the `ln Q`
//! correction.

use std::collections::HashMap;

use ndarray::{s, Array2, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::accidental_hits::last_positions;
use crate::bfloat16::{
    as_f32_view, as_f32_view_mut, BFloat16Products, PackedLeft, PackedRight, Precision,
};
use crate::element_types::{ClassId, Real, HIT_MASK};
use crate::error::{NceError, Result};
use crate::matrix_product::matrix_product;
use crate::parallelism;
use crate::phase_timers::{timed, Phase, PhaseGuard};
use crate::sharding::ShardedMatrix;
use crate::simd::{self, compiled_for, InstructionSet};
use crate::workspace::{self, Pooled};

/// Rows of the batch handed to one parallel task: fixed, so that results do not depend on the
/// number of threads, and large enough to amortise the packing of matrix products.
pub const ROWS_PER_BLOCK: usize = 256;

/// The candidates shared by the whole batch and their expected counts (a sampler's triple).
///
/// `num_sampled` is the candidates' own length, as in TensorFlow once `sampled_values` is given.
/// The counts are read only when `ln Q` is subtracted, and then broadcast as TensorFlow's
/// `logits - log(count)` broadcasts them: `true_expected_count` to `[batch, num_true]` (a sampler
/// gives exactly that; `[batch, 1]`, `[num_true]` or a scalar work too) and
/// `sampled_expected_count` to `[batch, num_sampled]` (a sampler gives `[num_sampled]`).
#[derive(Clone, Debug)]
pub struct SampledValues<'a, F> {
    pub candidates: ArrayView1<'a, i64>,
    pub true_expected_count: ArrayViewD<'a, F>,
    pub sampled_expected_count: ArrayViewD<'a, F>,
}

/// How the core names the two expected-count arrays (their positions in `sampled_values`).
pub const TRUE_EXPECTED_COUNT: &str = "sampled_values[1] (true_expected_count)";
pub const SAMPLED_EXPECTED_COUNT: &str = "sampled_values[2] (sampled_expected_count)";

/// Everything a sampled loss reads, as views of the caller's arrays.
#[derive(Clone, Debug)]
pub struct SampledLossInputs<'a, F, L> {
    /// `[C', dim]`, possibly sharded.
    pub weights: ShardedMatrix<'a, F>,
    /// `[C', 1]`, possibly sharded.
    pub biases: ShardedMatrix<'a, F>,
    /// `[batch, num_true]`.
    pub labels: ArrayView2<'a, L>,
    /// `[batch, dim]`.
    pub inputs: ArrayView2<'a, F>,
    pub num_classes: usize,
    pub sampled: SampledValues<'a, F>,
    pub remove_accidental_hits: bool,
    pub subtract_log_q: bool,
    /// The arithmetic of the three matrix products (`bfloat16.rs`); bfloat16 needs float32
    /// arrays.
    pub precision: Precision,
}

/// Ids checked against the weights, ready to index rows.
pub struct CheckedIds {
    /// Labels, row-major, `[batch * num_true]`.
    pub labels: Vec<usize>,
    pub sampled: Vec<usize>,
}

impl<'a, F: Real, L: ClassId> SampledLossInputs<'a, F, L> {
    pub fn batch(&self) -> usize {
        self.inputs.nrows()
    }

    pub fn num_true(&self) -> usize {
        self.labels.ncols()
    }

    pub fn num_sampled(&self) -> usize {
        self.sampled.candidates.len()
    }

    /// Checks shapes, id ranges and expected counts; returns the ids as row numbers.
    pub fn check(&self) -> Result<CheckedIds> {
        let (batch, num_true) = (self.batch(), self.num_true());
        if self.inputs.ncols() != self.weights.dim() {
            return Err(NceError::invalid(
                "inputs",
                format!(
                    "has {} columns but weights have dim {}",
                    self.inputs.ncols(),
                    self.weights.dim()
                ),
            ));
        }
        if self.biases.dim() != 1 {
            return Err(NceError::invalid(
                "biases",
                "must be one-dimensional (or a list of 1-D shards)",
            ));
        }
        if self.biases.rows() != self.weights.rows() {
            return Err(NceError::invalid(
                "biases",
                format!(
                    "has {} entries but weights have {} rows",
                    self.biases.rows(),
                    self.weights.rows()
                ),
            ));
        }
        if num_true < 1 {
            return Err(NceError::invalid("num_true", "must be at least 1"));
        }
        if self.labels.nrows() != batch {
            return Err(NceError::invalid(
                "labels",
                format!(
                    "must be [batch = {batch}, num_true = {num_true}] like inputs' batch, got shape [{}, {num_true}]",
                    self.labels.nrows()
                ),
            ));
        }
        if self.num_classes < 1 || self.num_classes > self.weights.rows() {
            return Err(NceError::invalid(
                "num_classes",
                format!(
                    "must be in [1, rows of weights = {}], got {}",
                    self.weights.rows(),
                    self.num_classes
                ),
            ));
        }
        if self.subtract_log_q {
            let true_counts = self.true_counts()?;
            let sampled_counts = self.sampled_counts()?;
            if !true_counts.is_empty() {
                check_expected_counts(
                    self.sampled.true_expected_count.iter(),
                    TRUE_EXPECTED_COUNT,
                )?;
            }
            if !sampled_counts.is_empty() {
                check_expected_counts(
                    self.sampled.sampled_expected_count.iter(),
                    SAMPLED_EXPECTED_COUNT,
                )?;
            }
        }
        let class_id = |id: i64, argument: &str| -> Result<usize> {
            if id < 0 || id as u64 >= self.num_classes as u64 {
                return Err(NceError::out_of_range(
                    argument,
                    format!(
                        "id {id} is out of range [0, num_classes = {})",
                        self.num_classes
                    ),
                ));
            }
            Ok(id as usize)
        };
        let labels = self
            .labels
            .iter()
            .map(|&id| class_id(id.into(), "labels"))
            .collect::<Result<Vec<_>>>()?;
        let sampled = self
            .sampled
            .candidates
            .iter()
            .map(|&id| class_id(id, "sampled_values"))
            .collect::<Result<Vec<_>>>()?;
        Ok(CheckedIds { labels, sampled })
    }

    /// `true_expected_count` as `[batch, num_true]` (a view, broadcast where TensorFlow
    /// broadcasts it).
    pub fn true_counts(&self) -> Result<ArrayView2<'_, F>> {
        broadcast_counts(
            &self.sampled.true_expected_count,
            (self.batch(), self.num_true()),
            TRUE_EXPECTED_COUNT,
            "num_true",
        )
    }

    /// `sampled_expected_count` as `[batch, num_sampled]` (a view, broadcast where TensorFlow
    /// broadcasts it).
    pub fn sampled_counts(&self) -> Result<ArrayView2<'_, F>> {
        broadcast_counts(
            &self.sampled.sampled_expected_count,
            (self.batch(), self.num_sampled()),
            SAMPLED_EXPECTED_COUNT,
            "num_sampled = len(sampled_candidates)",
        )
    }

    /// The logits `[batch, num_true + num_sampled]`: true columns first, in label order.
    pub fn compute_sampled_logits(&self) -> Result<Array2<F>> {
        let gathered = self.gather()?;
        let (batch, width) = (self.batch(), self.num_true() + self.num_sampled());
        let mut logits = workspace::matrix::<F>(batch, width);
        let block_logits = |(task, mut block): (usize, ArrayViewMut2<F>)| {
            let first = task * ROWS_PER_BLOCK;
            let label_rows = self.label_rows(&gathered, first, block.nrows());
            self.block_logits(&gathered, first, &label_rows, &mut block);
            label_rows.recycle();
        };
        let blocks = logits.axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK);
        if parallelism::inline() {
            blocks.enumerate().for_each(block_logits);
        } else {
            blocks.into_par_iter().enumerate().for_each(block_logits);
        }
        Ok(logits)
    }

    /// Checks the inputs and gathers what every row shares: the sampled rows, their biases
    /// and `ln Q`, and where each sampled id last occurs (for hit removal).
    pub fn gather(&self) -> Result<Gathered<F>> {
        let ids = self.check()?;
        let weights = self.weights.gather_checked(&ids.sampled);
        let bfloat16 = match self.precision {
            Precision::Float32 => None,
            Precision::BFloat16 => {
                let Some(sampled) = as_f32_view(&weights.view()).copied() else {
                    return Err(NceError::invalid(
                        "precision",
                        "'bfloat16' needs float32 weights, biases and inputs",
                    ));
                };
                BFloat16Products::detect().map(|products| SampledPacks {
                    products,
                    for_logits: PackedRight::of_transpose(products, &sampled),
                    for_inputs_gradient: PackedRight::of_matrix(products, &sampled),
                })
            }
        };
        let biases = ids
            .sampled
            .iter()
            .map(|&id| self.biases.scalar(id))
            .collect();
        let log_q = if self.subtract_log_q {
            sampled_log_q(self.sampled_counts()?)
        } else {
            Array2::zeros((1, self.num_sampled()))
        };
        let candidates = self.sampled.candidates.to_vec();
        let hit_positions = self
            .remove_accidental_hits
            .then(|| last_positions(&candidates));
        Ok(Gathered {
            ids,
            weights,
            biases,
            log_q,
            hit_positions,
            bfloat16,
        })
    }

    /// The label rows of the weights and their biases for batch rows `first..first + rows`,
    /// contiguous `[rows * num_true, dim]` in reused buffers: each row is read twice (logit,
    /// then inputs gradient), and gathering them once, prefetched a few rows ahead, turns
    /// scattered reads into sequential ones.
    pub fn label_rows(&self, gathered: &Gathered<F>, first: usize, rows: usize) -> LabelRows<F> {
        let num_true = self.num_true();
        let labels = &gathered.ids.labels[first * num_true..(first + rows) * num_true];
        let mut out = workspace::matrix::<F>(labels.len(), self.weights.dim());
        let mut biases = workspace::vector::<F>(labels.len());
        // The biases' cache lines are requested first and read after the rows (a bias read
        // right after its logit's product was the pass's costliest cache miss).
        for &label in labels {
            simd::prefetch_first(self.biases.row(label));
        }
        self.weights.gather_into(labels, &mut out.view_mut());
        for (bias, &label) in biases.iter_mut().zip(labels) {
            *bias = self.biases.scalar(label);
        }
        LabelRows { rows: out, biases }
    }

    /// The logits of batch rows `first..first + block.nrows()` into `block`, given their
    /// label rows.
    pub fn block_logits(
        &self,
        gathered: &Gathered<F>,
        first: usize,
        label_rows: &LabelRows<F>,
        block: &mut ArrayViewMut2<F>,
    ) {
        let num_true = self.num_true();
        let mask = F::from_f32(HIT_MASK);
        let true_counts = self.subtract_log_q.then(|| {
            self.true_counts()
                .expect("the counts' shapes were checked by gather()")
        });
        let inputs = self.inputs.slice(s![first..first + block.nrows(), ..]);
        timed(Phase::SampledLogitsProduct, || {
            let mut out = block.slice_mut(s![.., num_true..]);
            let packed = gathered.bfloat16.as_ref();
            match (packed, as_f32_view(&inputs), as_f32_view_mut(&mut out)) {
                (Some(packs), Some(inputs), Some(out)) => {
                    let left = PackedLeft::of_matrix(packs.products, inputs);
                    packs.products.product(&left, &packs.for_logits, out)
                }
                _ => matrix_product(&inputs, &gathered.weights.t(), &mut out),
            }
        });
        let _timer = PhaseGuard::start(Phase::TrueLogitsAndCorrections);
        true_logits(num_true, &inputs, label_rows, block);
        let mut masked = Vec::new();
        let log_q_rows = gathered.log_q.as_standard_layout();
        for (offset, mut row) in block.rows_mut().into_iter().enumerate() {
            let i = first + offset;
            let labels = &gathered.ids.labels[i * num_true..(i + 1) * num_true];
            let row = row.as_slice_mut().expect("logit rows are contiguous");
            let (true_part, sampled_part) = row.split_at_mut(num_true);
            let biases = &label_rows.biases[offset * num_true..(offset + 1) * num_true];
            for (t, (z, &bias)) in true_part.iter_mut().zip(biases).enumerate() {
                *z = *z + bias;
                if let Some(counts) = &true_counts {
                    *z = *z - counts[[i, t]].ln();
                }
            }
            let log_q_row = if gathered.log_q.nrows() == 1 { 0 } else { i };
            let log_q = log_q_rows.row(log_q_row);
            let log_q = log_q.as_slice().expect("ln Q is in standard layout");
            let sampled_part = &mut sampled_part[..log_q.len()];
            let sampled_biases = &gathered.biases[..log_q.len()];
            if let Some(positions) = &gathered.hit_positions {
                for (z, &b) in sampled_part.iter_mut().zip(sampled_biases) {
                    *z = *z + b;
                }
                hit_columns(labels, positions, &mut masked);
                for &k in &masked {
                    sampled_part[k] = sampled_part[k] + mask;
                }
                for (z, &log_q) in sampled_part.iter_mut().zip(log_q) {
                    *z = *z - log_q;
                }
            } else {
                // The same two roundings, in one pass over the row.
                for ((z, &b), &log_q) in sampled_part.iter_mut().zip(sampled_biases).zip(log_q) {
                    *z = (*z + b) - log_q;
                }
            }
        }
    }
}

/// The label rows of a block of the batch, gathered from the weights, and their biases.
pub struct LabelRows<F: Pooled> {
    /// `[rows * num_true, dim]`: example by example, label by label.
    pub rows: Array2<F>,
    /// The bias of each label row.
    pub biases: Vec<F>,
}

impl<F: Pooled> LabelRows<F> {
    /// Returns the buffers for reuse.
    pub fn recycle(self) {
        workspace::recycle(self.rows);
        workspace::recycle_vector(self.biases);
    }
}

/// The true logits' products into the first `num_true` columns of `block`: each example's
/// input row against its label rows. Runs the AVX2 build where the processor has it.
fn true_logits<F: Real>(
    num_true: usize,
    inputs: &ArrayView2<F>,
    label_rows: &LabelRows<F>,
    block: &mut ArrayViewMut2<F>,
) {
    let (dim, width) = (inputs.ncols(), block.ncols());
    if dim == 0 {
        block.slice_mut(s![.., ..num_true]).fill(F::zero());
        return;
    }
    let rows = label_rows
        .rows
        .as_slice()
        .expect("label rows are contiguous");
    let out = block.as_slice_mut().expect("logit blocks are contiguous");
    let inputs = inputs.as_standard_layout();
    let x = inputs.as_slice().expect("a standard layout is contiguous");
    #[cfg(target_arch = "x86_64")]
    if InstructionSet::detect().has_avx2_fma() {
        if let (Some(x), Some(rows), Some(out)) = (as_f32(x), as_f32(rows), as_f32_mut(out)) {
            // SAFETY: an `InstructionSet` with AVX2 and FMA exists only where the processor
            // has them.
            unsafe { true_logits_f32_avx2(x, rows, out, num_true, dim, width) };
            return;
        }
        // SAFETY: as above.
        unsafe { true_logits_avx2(x, rows, out, num_true, dim, width) };
        return;
    }
    generic_true_logit_rows(x, rows, out, num_true, dim, width);
}

/// The slice as `f32`s when `F` is `f32`.
fn as_f32<F: 'static>(values: &[F]) -> Option<&[f32]> {
    (std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: `F` is `f32`, so the slice already is a `[f32]`.
        unsafe { std::slice::from_raw_parts(values.as_ptr() as *const f32, values.len()) }
    })
}

/// The slice as `f32`s when `F` is `f32`.
fn as_f32_mut<F: 'static>(values: &mut [F]) -> Option<&mut [f32]> {
    (std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: `F` is `f32`, so the slice already is a `[f32]`.
        unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr() as *mut f32, values.len()) }
    })
}

/// `true_logit_rows` for `f32` with `simd::dots_in_lanes_f32_avx2` (the same bits).
///
/// # Safety
/// The processor must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn true_logits_f32_avx2(
    x: &[f32],
    rows: &[f32],
    out: &mut [f32],
    num_true: usize,
    dim: usize,
    width: usize,
) {
    true_logit_rows(
        x,
        rows,
        out,
        (num_true, dim, width),
        // SAFETY: the caller guarantees AVX2 and FMA.
        |x, four| unsafe { simd::dots_in_lanes_f32_avx2(x, four) },
        |x, row| unsafe { simd::dots_in_lanes_f32_avx2(x, [row]) }[0],
    );
}

compiled_for!(
    generic_true_logit_rows,
    [F: Real],
    (
        x: &[F],
        rows: &[F],
        out: &mut [F],
        num_true: usize,
        dim: usize,
        width: usize
    ),
    avx2 => true_logits_avx2,
);

/// `true_logit_rows` with the generic `simd::dots_in_lanes`.
#[inline(always)]
fn generic_true_logit_rows<F: Real>(
    x: &[F],
    rows: &[F],
    out: &mut [F],
    num_true: usize,
    dim: usize,
    width: usize,
) {
    true_logit_rows(
        x,
        rows,
        out,
        (num_true, dim, width),
        |x, four| simd::dots_in_lanes(x, four),
        |x, row| simd::dots_in_lanes(x, [row])[0],
    );
}

/// `out[i, t] = x[i] · rows[i * num_true + t]`, four label rows at a time (`dots`), the rest
/// one by one (`dot`).
#[inline(always)]
fn true_logit_rows<F: Real>(
    x: &[F],
    rows: &[F],
    out: &mut [F],
    (num_true, dim, width): (usize, usize, usize),
    dots: impl Fn(&[F], [&[F]; 4]) -> [F; 4],
    dot: impl Fn(&[F], &[F]) -> F,
) {
    for ((x, labels), out) in x
        .chunks_exact(dim)
        .zip(rows.chunks_exact(dim * num_true))
        .zip(out.chunks_exact_mut(width))
    {
        let row = |t: usize| &labels[t * dim..(t + 1) * dim];
        let mut t = 0;
        while t + 4 <= num_true {
            out[t..t + 4].copy_from_slice(&dots(x, [row(t), row(t + 1), row(t + 2), row(t + 3)]));
            t += 4;
        }
        while t < num_true {
            out[t] = dot(x, row(t));
            t += 1;
        }
    }
}

/// What every row of the batch shares, gathered once per call.
pub struct Gathered<F> {
    pub ids: CheckedIds,
    /// The sampled rows of the weights, contiguous `[num_sampled, dim]`.
    pub weights: Array2<F>,
    pub biases: Vec<F>,
    /// `ln Q` of each sampled column, `[1, num_sampled]` when every row shares it (as from a
    /// sampler) or `[batch, num_sampled]`; 0 when log Q is not subtracted.
    pub log_q: Array2<F>,
    /// The last position of each sampled id, when accidental hits are removed.
    pub hit_positions: Option<HashMap<i64, usize>>,
    /// The sampled rows packed for bfloat16 products, when they are used.
    pub bfloat16: Option<SampledPacks>,
}

/// The sampled rows `W_s` (`[num_sampled, dim]`) as the right operands of the bfloat16
/// products that read them: the logits (`inputs · W_sᵀ`) and the inputs gradient
/// (`G · W_s`).
pub struct SampledPacks {
    pub products: BFloat16Products,
    pub for_logits: PackedRight,
    pub for_inputs_gradient: PackedRight,
}

/// The sampled columns a row's labels hit (each once, however many labels repeat).
fn hit_columns(labels: &[usize], positions: &HashMap<i64, usize>, columns: &mut Vec<usize>) {
    columns.clear();
    columns.extend(
        labels
            .iter()
            .filter_map(|&label| positions.get(&(label as i64)).copied()),
    );
    columns.sort_unstable();
    columns.dedup();
}

/// `counts` seen as `shape`, broadcast as NumPy and TensorFlow broadcast (leading axes of
/// length 1 added, axes of length 1 stretched), or an error naming `name`. A shape that would
/// broadcast only by widening `shape` is refused: TensorFlow would silently grow the logits.
fn broadcast_counts<'v, F>(
    counts: &'v ArrayViewD<'_, F>,
    shape: (usize, usize),
    name: &str,
    columns: &str,
) -> Result<ArrayView2<'v, F>> {
    if counts.ndim() <= 2 {
        if let Some(view) = counts.broadcast(shape) {
            return Ok(view);
        }
    }
    Err(NceError::invalid(
        name,
        format!(
            "has shape {:?}, which does not broadcast to the logits it is subtracted from, \
             [batch = {}, {columns} = {}] (e.g. give [batch, {}], [batch, 1], [{}] or a scalar)",
            counts.shape(),
            shape.0,
            shape.1,
            shape.1,
            shape.1
        ),
    ))
}

/// `ln Q` of the sampled columns: one row when every batch row shares the counts.
fn sampled_log_q<F: Real>(counts: ArrayView2<'_, F>) -> Array2<F> {
    if counts.nrows() == 0 {
        return Array2::zeros((1, counts.ncols()));
    }
    if counts.nrows() == 1 || counts.strides()[0] == 0 {
        return counts.slice(s![0..1, ..]).mapv(|q| q.ln());
    }
    counts.mapv(|q| q.ln())
}

fn check_expected_counts<'b, F: Real>(
    counts: impl Iterator<Item = &'b F>,
    name: &str,
) -> Result<()> {
    for (position, &q) in counts.enumerate() {
        if q.is_nan() || q <= F::zero() || q.is_infinite() {
            return Err(NceError::invalid(
                name,
                format!(
                    "entry {position} is {q:?}; expected counts must be positive and finite because ln Q is subtracted (a class the sampler never draws gives TensorFlow a NaN loss)"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 builds of the true logits compute the very bits of the plain build, and each
    /// logit is the dot product of its example's input and label row.
    #[test]
    fn the_true_logit_kernels_agree_bit_for_bit() {
        let (examples, num_true, dim, width) = (7, 5, 37, 9);
        let value = |k: usize| ((k * 2_654_435_761usize) % 2_001) as f32 / 1000.0 - 1.0;
        let x: Vec<f32> = (0..examples * dim).map(value).collect();
        let rows: Vec<f32> = (0..examples * num_true * dim)
            .map(|k| value(k + 99))
            .collect();
        let mut plain = vec![0.0f32; examples * width];
        generic_true_logit_rows(&x, &rows, &mut plain, num_true, dim, width);
        for i in 0..examples {
            for t in 0..num_true {
                let label = &rows[(i * num_true + t) * dim..][..dim];
                let expected: f64 = x[i * dim..][..dim]
                    .iter()
                    .zip(label)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                assert!((f64::from(plain[i * width + t]) - expected).abs() < 1e-5);
            }
        }
        if InstructionSet::detect().has_avx2_fma() {
            let mut fast = vec![0.0f32; examples * width];
            // SAFETY: checked above that the processor has AVX2 and FMA.
            unsafe { true_logits_avx2(&x, &rows, &mut fast, num_true, dim, width) };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&plain), bits(&fast));
            let mut lanes = vec![0.0f32; examples * width];
            // SAFETY: as above.
            unsafe { true_logits_f32_avx2(&x, &rows, &mut lanes, num_true, dim, width) };
            assert_eq!(bits(&plain), bits(&lanes));
        }
    }
}
