//! The weight and bias gradients in the forms users need (docs/semantics.md §6): TensorFlow's row-sparse
//! form (one row per label and per sampled id, duplicates kept, per shard with shard-local
//! indices), the merged form (unique ids, summed rows), and scatter-adds into dense arrays —
//! which is also the fused SGD step.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut1};
use rayon::prelude::*;

use crate::element_types::Real;
use crate::error::{NceError, Result};
use crate::losses::forward_backward::SampledGradients;
use crate::parallelism;
use crate::phase_timers::{Phase, PhaseGuard};
use crate::sharding::{ShardLayout, ShardedRowsMut};
use crate::workspace;

/// Rows per piece of parallel work when gradient rows are formed: one row is too little work
/// to hand to another thread.
const ROWS_PER_TASK: usize = 64;

/// The positions of `ids` grouped by id: ids ascending, positions ascending within a group.
#[derive(Clone, Debug)]
pub struct RowGroups {
    /// The distinct ids, ascending.
    pub ids: Vec<usize>,
    /// Group `g` is `positions[starts[g]..starts[g + 1]]`.
    starts: Vec<usize>,
    positions: Vec<usize>,
}

impl RowGroups {
    pub fn new(ids: &[usize]) -> Self {
        let _timer = PhaseGuard::start(Phase::GroupRows);
        let positions =
            if (ids.len() as u64) < 1 << 32 && ids.iter().all(|&id| (id as u64) < 1 << 32) {
                // (id, position) packed in one integer: an unstable sort of plain integers.
                let mut keys: Vec<u64> = ids
                    .iter()
                    .enumerate()
                    .map(|(position, &id)| (id as u64) << 32 | position as u64)
                    .collect();
                keys.sort_unstable();
                keys.into_iter()
                    .map(|key| (key & 0xFFFF_FFFF) as usize)
                    .collect()
            } else {
                let mut order: Vec<usize> = (0..ids.len()).collect();
                order.sort_by_key(|&position| (ids[position], position));
                order
            };
        let mut groups = RowGroups {
            ids: Vec::new(),
            starts: Vec::new(),
            positions,
        };
        for (index, &position) in groups.positions.iter().enumerate() {
            if groups.ids.last() != Some(&ids[position]) {
                groups.ids.push(ids[position]);
                groups.starts.push(index);
            }
        }
        groups.starts.push(groups.positions.len());
        groups
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn positions(&self, group: usize) -> &[usize] {
        &self.positions[self.starts[group]..self.starts[group + 1]]
    }
}

impl<F: Real> SampledGradients<F> {
    /// TensorFlow's weight gradient values `[ids, dim]`, one row per position of `ids`.
    pub fn tf_weight_values(&self, inputs: &ArrayView2<F>) -> Array2<F> {
        let _timer = PhaseGuard::start(Phase::RowSparseValues);
        let mut values = workspace::matrix::<F>(self.ids.len(), self.dim());
        let row_pass = |(position, mut row): (usize, ArrayViewMut1<F>)| {
            let slot = row.as_slice_mut().expect("a fresh row is contiguous");
            self.write_weight_row(position, inputs, slot);
        };
        let rows = values.axis_iter_mut(ndarray::Axis(0));
        if parallelism::inline() {
            rows.enumerate().for_each(row_pass);
        } else {
            rows.into_par_iter()
                .with_min_len(ROWS_PER_TASK)
                .enumerate()
                .for_each(row_pass);
        }
        values
    }

    /// TensorFlow's bias gradient values `[ids]`.
    pub fn tf_bias_values(&self) -> Array1<F> {
        (0..self.ids.len()).map(|p| self.bias_value(p)).collect()
    }

    /// For each shard of `layout`, the shard-local row and the position in `ids` of every
    /// entry that falls in it, in the order of `ids` (TensorFlow's per-shard `IndexedSlices`).
    pub fn shard_entries(&self, layout: &ShardLayout) -> Vec<(Vec<i64>, Vec<usize>)> {
        let mut shards = vec![(Vec::new(), Vec::new()); layout.shard_count()];
        for (position, &id) in self.ids.iter().enumerate() {
            let (shard, local) = layout.locate(id);
            shards[shard].0.push(local as i64);
            shards[shard].1.push(position);
        }
        shards
    }

    /// The merged form: distinct ids ascending, and for each the summed weight row and bias.
    pub fn merged(&self, inputs: &ArrayView2<F>) -> (Vec<usize>, Array2<F>, Array1<F>) {
        let groups = RowGroups::new(&self.ids);
        // Every row is written by its group's first position (a group is never empty), so the
        // buffer needs no zeros first.
        let mut rows = workspace::matrix::<F>(groups.len(), self.dim());
        // Groups go in id order, so the rows they read (inputs' rows for labels) come in random
        // order: each group starts loading the row a few groups ahead needs.
        const PREFETCH_AHEAD: usize = 4;
        let group_pass = |(group, mut row): (usize, ArrayViewMut1<F>)| {
            if group + PREFETCH_AHEAD < groups.len() {
                let ahead = groups.positions(group + PREFETCH_AHEAD)[0];
                self.prefetch_weight_row(ahead, inputs);
            }
            let slot = row.as_slice_mut().expect("a fresh row is contiguous");
            let (&first, rest) = groups
                .positions(group)
                .split_first()
                .expect("a group has at least one position");
            self.write_weight_row(first, inputs, slot);
            for &position in rest {
                self.add_weight_row(position, inputs, F::one(), slot);
            }
        };
        let group_rows = rows.axis_iter_mut(ndarray::Axis(0));
        if parallelism::inline() {
            group_rows.enumerate().for_each(group_pass);
        } else {
            group_rows
                .into_par_iter()
                .with_min_len(ROWS_PER_TASK)
                .enumerate()
                .for_each(group_pass);
        }
        let biases = (0..groups.len())
            .map(|group| self.summed_bias(&groups, group))
            .collect();
        (groups.ids, rows, biases)
    }

    fn summed_bias(&self, groups: &RowGroups, group: usize) -> F {
        groups
            .positions(group)
            .iter()
            .fold(F::zero(), |sum, &position| sum + self.bias_value(position))
    }

    /// `weights[id] += scale · gradient[id]` (and the same for biases) for every touched row,
    /// each row summed in the order of `ids` then added once: the dense scatter-add, or with
    /// `scale = -learning_rate` an SGD step. Rows are updated in parallel, one thread per row.
    pub fn scatter_add(
        &self,
        inputs: &ArrayView2<F>,
        weights: Option<&ShardedRowsMut<F>>,
        biases: Option<&ShardedRowsMut<F>>,
        scale: F,
    ) -> Result<()> {
        let dim = self.dim();
        let needed_rows = self.ids.iter().max().map_or(0, |&id| id + 1);
        for (target, name, width) in [(weights, "weights", dim), (biases, "biases", 1)] {
            let Some(target) = target else { continue };
            if target.dim() != width || target.layout().rows() < needed_rows {
                return Err(NceError::invalid(
                    name,
                    format!(
                        "the target must have at least {needed_rows} rows of width {width}, got {} rows of width {}",
                        target.layout().rows(),
                        target.dim()
                    ),
                ));
            }
        }
        let groups = RowGroups::new(&self.ids);
        // Contiguous runs of groups per task, so that each task can prefetch the rows it
        // writes next.
        const GROUPS_PER_TASK: usize = 64;
        const PREFETCH_AHEAD: usize = 4;
        let tasks = groups.len().div_ceil(GROUPS_PER_TASK);
        let task_pass = |task: usize| {
            let _timer = PhaseGuard::start(Phase::ScatterRows);
            let mut row = vec![F::zero(); dim];
            let first = task * GROUPS_PER_TASK;
            let last = (first + GROUPS_PER_TASK).min(groups.len());
            for group in first..last {
                let id = groups.ids[group];
                if let Some(weights) = weights {
                    if group + PREFETCH_AHEAD < last {
                        weights.prefetch_row(groups.ids[group + PREFETCH_AHEAD]);
                    }
                    row.iter_mut().for_each(|value| *value = F::zero());
                    for &position in groups.positions(group) {
                        self.add_weight_row(position, inputs, F::one(), &mut row);
                    }
                    // SAFETY: every id is below the target's rows (checked above) and group
                    // ids are distinct, so no other task writes this row.
                    unsafe { weights.add_to_row(id, scale, &row) };
                }
                if let Some(biases) = biases {
                    let bias = [self.summed_bias(&groups, group)];
                    // SAFETY: as above, for the biases' rows.
                    unsafe { biases.add_to_row(id, scale, &bias) };
                }
            }
        };
        if parallelism::inline() {
            (0..tasks).for_each(task_pass);
        } else {
            (0..tasks).into_par_iter().for_each(task_pass);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_sort_ids_and_keep_positions_in_order() {
        let groups = RowGroups::new(&[4, 0, 6, 1, 4]);
        assert_eq!(groups.ids, vec![0, 1, 4, 6]);
        assert_eq!(groups.positions(2), &[0, 4]);
        assert_eq!(groups.positions(3), &[2]);
    }
}
