//! `_compute_sampled_logits` (spec §2): the `[batch, num_true + num_sampled]` logits both losses
//! start from — true and sampled rows gathered from (sharded) weights, dot products, biases, the
//! accidental-hit mask and the `ln Q` correction.

use std::collections::HashMap;

use ndarray::{s, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::accidental_hits::last_positions;
use crate::element_types::{ClassId, Real, HIT_MASK};
use crate::error::{NceError, Result};
use crate::matrix_product::matrix_product;
use crate::sharding::ShardedMatrix;
use crate::workspace;

/// Rows of the batch handed to one parallel task: fixed, so that results do not depend on the
/// number of threads, and large enough to amortise the packing of matrix products.
pub const ROWS_PER_BLOCK: usize = 256;

/// The candidates shared by the whole batch and their expected counts (a sampler's triple).
#[derive(Clone, Debug)]
pub struct SampledValues<'a, F> {
    pub candidates: ArrayView1<'a, i64>,
    pub true_expected_count: ArrayView2<'a, F>,
    pub sampled_expected_count: ArrayView1<'a, F>,
}

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
        let (batch, num_true, num_sampled) = (self.batch(), self.num_true(), self.num_sampled());
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
        let shape = self.sampled.true_expected_count.shape();
        if shape != [batch, num_true] {
            return Err(NceError::invalid(
                "sampled_values",
                format!("true_expected_count must have shape [{batch}, {num_true}] like labels, got {shape:?}"),
            ));
        }
        if self.sampled.sampled_expected_count.len() != num_sampled {
            return Err(NceError::invalid(
                "sampled_values",
                format!(
                    "sampled_expected_count must have num_sampled = {num_sampled} entries like sampled_candidates, got {}",
                    self.sampled.sampled_expected_count.len()
                ),
            ));
        }
        if self.subtract_log_q {
            check_expected_counts(
                self.sampled.true_expected_count.iter(),
                "true_expected_count",
            )?;
            check_expected_counts(
                self.sampled.sampled_expected_count.iter(),
                "sampled_expected_count",
            )?;
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

    /// The logits `[batch, num_true + num_sampled]`: true columns first, in label order.
    pub fn compute_sampled_logits(&self) -> Result<Array2<F>> {
        let gathered = self.gather()?;
        let (batch, width) = (self.batch(), self.num_true() + self.num_sampled());
        let mut logits = workspace::matrix::<F>(batch, width);
        logits
            .axis_chunks_iter_mut(Axis(0), ROWS_PER_BLOCK)
            .into_par_iter()
            .enumerate()
            .for_each(|(task, mut block)| {
                let first = task * ROWS_PER_BLOCK;
                let label_rows = self.label_rows(&gathered, first, block.nrows());
                self.block_logits(&gathered, first, &label_rows, &mut block);
                workspace::recycle(label_rows);
            });
        Ok(logits)
    }

    /// Checks the inputs and gathers what every row shares: the sampled rows, their biases
    /// and `ln Q`, and where each sampled id last occurs (for hit removal).
    pub fn gather(&self) -> Result<Gathered<F>> {
        let ids = self.check()?;
        let weights = self.weights.gather_checked(&ids.sampled);
        let biases = ids
            .sampled
            .iter()
            .map(|&id| self.biases.scalar(id))
            .collect();
        let log_q = self
            .sampled
            .sampled_expected_count
            .iter()
            .map(|&q| {
                if self.subtract_log_q {
                    q.ln()
                } else {
                    F::zero()
                }
            })
            .collect();
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
        })
    }

    /// The label rows of the weights for batch rows `first..first + rows`, contiguous
    /// `[rows * num_true, dim]` in a reused buffer: each is read twice (logit, then inputs
    /// gradient), and gathering them once turns scattered reads into sequential ones.
    pub fn label_rows(&self, gathered: &Gathered<F>, first: usize, rows: usize) -> Array2<F> {
        let num_true = self.num_true();
        let labels = &gathered.ids.labels[first * num_true..(first + rows) * num_true];
        let mut out = workspace::matrix::<F>(labels.len(), self.weights.dim());
        self.weights.gather_into(labels, &mut out.view_mut());
        out
    }

    /// The logits of batch rows `first..first + block.nrows()` into `block`, given their
    /// label rows.
    pub fn block_logits(
        &self,
        gathered: &Gathered<F>,
        first: usize,
        label_rows: &Array2<F>,
        block: &mut ArrayViewMut2<F>,
    ) {
        let num_true = self.num_true();
        let mask = F::from_f32(HIT_MASK);
        let inputs = self.inputs.slice(s![first..first + block.nrows(), ..]);
        matrix_product(
            &inputs,
            &gathered.weights.t(),
            &mut block.slice_mut(s![.., num_true..]),
        );
        let mut masked = Vec::new();
        for (offset, mut row) in block.rows_mut().into_iter().enumerate() {
            let i = first + offset;
            let x = inputs.row(offset);
            let labels = &gathered.ids.labels[i * num_true..(i + 1) * num_true];
            let row = row.as_slice_mut().expect("logit rows are contiguous");
            let (true_part, sampled_part) = row.split_at_mut(num_true);
            for (t, (z, &label)) in true_part.iter_mut().zip(labels).enumerate() {
                *z = x.dot(&label_rows.row(offset * num_true + t)) + self.biases.scalar(label);
                if self.subtract_log_q {
                    *z = *z - self.sampled.true_expected_count[[i, t]].ln();
                }
            }
            for (z, &b) in sampled_part.iter_mut().zip(&gathered.biases) {
                *z = *z + b;
            }
            if let Some(positions) = &gathered.hit_positions {
                hit_columns(labels, positions, &mut masked);
                for &k in &masked {
                    sampled_part[k] = sampled_part[k] + mask;
                }
            }
            for (z, &log_q) in sampled_part.iter_mut().zip(&gathered.log_q) {
                *z = *z - log_q;
            }
        }
    }
}

/// What every row of the batch shares, gathered once per call.
pub struct Gathered<F> {
    pub ids: CheckedIds,
    /// The sampled rows of the weights, contiguous `[num_sampled, dim]`.
    pub weights: Array2<F>,
    pub biases: Vec<F>,
    /// `ln Q` of each sampled id, or 0 when log Q is not subtracted.
    pub log_q: Vec<F>,
    /// The last position of each sampled id, when accidental hits are removed.
    pub hit_positions: Option<HashMap<i64, usize>>,
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

fn check_expected_counts<'b, F: Real>(
    counts: impl Iterator<Item = &'b F>,
    name: &str,
) -> Result<()> {
    for (position, &q) in counts.enumerate() {
        if q.is_nan() || q <= F::zero() || q.is_infinite() {
            return Err(NceError::invalid(
                "sampled_values",
                format!(
                    "{name} entry {position} is {q:?}; expected counts must be positive and finite because ln Q is subtracted (a class the sampler never draws gives TensorFlow a NaN loss)"
                ),
            ));
        }
    }
    Ok(())
}
