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
        let positions = positions_by_id(ids);
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

/// Refuses scatter targets (weights `[rows, dim]`, biases `[rows, 1]`) too narrow, or too
/// short for the rows `ids`, before anything is written.
pub fn check_scatter_targets<F: Copy + std::ops::Add<Output = F> + std::ops::Mul<Output = F>>(
    weights: Option<&ShardedRowsMut<F>>,
    biases: Option<&ShardedRowsMut<F>>,
    ids: &[usize],
    dim: usize,
) -> Result<()> {
    let needed_rows = ids.iter().max().map_or(0, |&id| id + 1);
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
    Ok(())
}

/// The positions `0..ids.len()` ordered by id, positions ascending within an id: a stable
/// least-significant-digit radix sort on the ids' bits (at most 11 bits a pass), or a
/// comparison sort for a few ids.
fn positions_by_id(ids: &[usize]) -> Vec<usize> {
    const FEW: usize = 64;
    const MOST_BITS_A_PASS: u32 = 11;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    if ids.len() <= FEW {
        order.sort_by_key(|&position| (ids[position], position));
        return order;
    }
    let largest = ids.iter().copied().max().unwrap_or(0);
    let bits = usize::BITS - largest.leading_zeros();
    let passes = bits.div_ceil(MOST_BITS_A_PASS);
    if passes == 0 {
        return order; // every id is 0
    }
    let width = bits.div_ceil(passes);
    let mask = (1usize << width) - 1;
    let mut sorted = vec![0usize; ids.len()];
    let mut starts = vec![0usize; 1 << width];
    for pass in 0..passes {
        let shift = pass * width;
        let digit = |position: usize| (ids[position] >> shift) & mask;
        starts.fill(0);
        for &position in &order {
            starts[digit(position)] += 1;
        }
        let mut next = 0;
        for start in starts.iter_mut() {
            let count = *start;
            *start = next;
            next += count;
        }
        // Stable: positions keep their order within a digit, so earlier passes' order holds.
        for &position in &order {
            let slot = &mut starts[digit(position)];
            sorted[*slot] = position;
            *slot += 1;
        }
        std::mem::swap(&mut order, &mut sorted);
    }
    order
}

/// The merged form of the weight and bias gradients: one row per distinct id.
#[derive(Clone, Debug)]
pub struct Merged<F> {
    /// The distinct ids, ascending.
    pub ids: Vec<usize>,
    /// The summed weight-gradient row of each id `[ids, dim]`.
    pub rows: Array2<F>,
    /// The summed bias gradient of each id `[ids]`.
    pub biases: Array1<F>,
}

/// How a fused pass writes the merged form while each block's inputs are in cache: a label
/// position that is the only position of its id gets its row written by the block that
/// computes it; every other id (several positions, or a sampled one) waits for the finished
/// gradients ([`SampledGradients::finish_merged`]).
pub struct MergePlan {
    groups: RowGroups,
    /// Per label position: the row its gradient alone makes up, or `NOT_DIRECT`.
    direct: Vec<u32>,
    /// The groups written after the pass.
    later: Vec<usize>,
}

const NOT_DIRECT: u32 = u32::MAX;

impl MergePlan {
    /// For `ids` = the labels (row-major, `label_count` of them) then the sampled ids.
    pub fn new(ids: &[usize], label_count: usize) -> Self {
        let groups = RowGroups::new(ids);
        let mut direct = vec![NOT_DIRECT; label_count];
        let mut later = Vec::new();
        for group in 0..groups.len() {
            match groups.positions(group) {
                [position] if *position < label_count && group < NOT_DIRECT as usize => {
                    direct[*position] = group as u32;
                }
                _ => later.push(group),
            }
        }
        MergePlan {
            groups,
            direct,
            later,
        }
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The distinct ids grouped, ascending.
    pub fn groups(&self) -> &RowGroups {
        &self.groups
    }

    /// The groups a pass does not write itself: ids with several positions or a sampled one.
    pub fn later(&self) -> &[usize] {
        &self.later
    }

    /// The merged row that label position `position`'s gradient alone makes up, if any.
    pub fn direct_row(&self, position: usize) -> Option<usize> {
        let row = self.direct[position];
        (row != NOT_DIRECT).then_some(row as usize)
    }
}

/// The merged rows `[groups, dim]` while parallel tasks write them, each row by one task.
pub struct MergedRowsOut<F> {
    rows: Array2<F>,
    start: *mut F,
    dim: usize,
}

// SAFETY: tasks write disjoint rows through `row_mut`, whose contract says so.
unsafe impl<F: Send> Send for MergedRowsOut<F> {}
unsafe impl<F: Send> Sync for MergedRowsOut<F> {}

impl<F: Real> MergedRowsOut<F> {
    /// `rows × dim`, contents unspecified until written.
    pub fn new(rows: usize, dim: usize) -> Self {
        let mut rows = workspace::matrix::<F>(rows, dim);
        let start = rows.as_mut_ptr();
        MergedRowsOut { rows, start, dim }
    }

    /// Row `row` to write.
    ///
    /// # Safety
    /// `row` is below the row count, and no other reference to the same row exists while the
    /// returned one lives (each row is written by one task).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn row_mut(&self, row: usize) -> &mut [F] {
        debug_assert!(row < self.rows.nrows());
        std::slice::from_raw_parts_mut(self.start.add(row * self.dim), self.dim)
    }

    pub fn into_rows(self) -> Array2<F> {
        self.rows
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
    pub fn merged(&self, inputs: &ArrayView2<F>) -> Merged<F> {
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
            self.write_group_row(&groups, group, inputs, slot);
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
        let biases = self.summed_biases(&groups);
        Merged {
            ids: groups.ids,
            rows,
            biases,
        }
    }

    /// Group `group`'s summed weight row into `slot`: its first position written, the others
    /// added in order.
    fn write_group_row(
        &self,
        groups: &RowGroups,
        group: usize,
        inputs: &ArrayView2<F>,
        slot: &mut [F],
    ) {
        let (&first, rest) = groups
            .positions(group)
            .split_first()
            .expect("a group has at least one position");
        self.write_weight_row(first, inputs, slot);
        for &position in rest {
            self.add_weight_row(position, inputs, F::one(), slot);
        }
    }

    /// Every group's summed bias.
    fn summed_biases(&self, groups: &RowGroups) -> Array1<F> {
        (0..groups.len())
            .map(|group| self.summed_bias(groups, group))
            .collect()
    }

    /// The merged form's rows that a pass writing them itself left to do (see [`MergePlan`]):
    /// those of ids with several positions or a sampled position, from the finished gradients;
    /// then every id's summed bias. The same operations in the same order as [`Self::merged`],
    /// so the result is the same bit for bit.
    pub fn finish_merged(
        &self,
        plan: MergePlan,
        rows: MergedRowsOut<F>,
        inputs: &ArrayView2<F>,
    ) -> Merged<F> {
        let _timer = PhaseGuard::start(Phase::RowSparseValues);
        let groups = &plan.groups;
        let group_pass = |&group: &usize| {
            // SAFETY: every group's row is written by one task only (`later` holds each group
            // once, and the pass wrote only the groups not in it).
            let slot = unsafe { rows.row_mut(group) };
            self.write_group_row(groups, group, inputs, slot);
        };
        if parallelism::inline() {
            plan.later.iter().for_each(group_pass);
        } else {
            plan.later
                .par_iter()
                .with_min_len(ROWS_PER_TASK)
                .for_each(group_pass);
        }
        let biases = self.summed_biases(groups);
        Merged {
            ids: plan.groups.ids,
            rows: rows.into_rows(),
            biases,
        }
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
        check_scatter_targets(weights, biases, &self.ids, self.dim())?;
        let groups = RowGroups::new(&self.ids);
        self.scatter_groups(inputs, weights, biases, scale, &groups, None);
        Ok(())
    }

    /// The scatter-add of [`Self::scatter_add`] for the groups `only` (all groups if `None`),
    /// into targets already checked.
    pub fn scatter_groups(
        &self,
        inputs: &ArrayView2<F>,
        weights: Option<&ShardedRowsMut<F>>,
        biases: Option<&ShardedRowsMut<F>>,
        scale: F,
        groups: &RowGroups,
        only: Option<&[usize]>,
    ) {
        let dim = self.dim();
        let count = only.map_or(groups.len(), <[usize]>::len);
        let group_at = |index: usize| only.map_or(index, |only| only[index]);
        // Contiguous runs of groups per task, so that each task can prefetch the rows it
        // writes next.
        const GROUPS_PER_TASK: usize = 64;
        const PREFETCH_AHEAD: usize = 4;
        let tasks = count.div_ceil(GROUPS_PER_TASK);
        let task_pass = |task: usize| {
            let _timer = PhaseGuard::start(Phase::ScatterRows);
            let mut row = vec![F::zero(); dim];
            let first = task * GROUPS_PER_TASK;
            let last = (first + GROUPS_PER_TASK).min(count);
            for index in first..last {
                let group = group_at(index);
                let id = groups.ids[group];
                if let Some(weights) = weights {
                    if index + PREFETCH_AHEAD < last {
                        weights.prefetch_row(groups.ids[group_at(index + PREFETCH_AHEAD)]);
                    }
                    row.iter_mut().for_each(|value| *value = F::zero());
                    for &position in groups.positions(group) {
                        self.add_weight_row(position, inputs, F::one(), &mut row);
                    }
                    // SAFETY: every id is below the target's rows (checked by the caller) and
                    // group ids are distinct, so no other task writes this row.
                    unsafe { weights.add_to_row(id, scale, &row) };
                }
                if let Some(biases) = biases {
                    let bias = [self.summed_bias(groups, group)];
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_radix_order_equals_a_sort_by_id_then_position() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (len, largest) in [
            (0, 0),
            (1, 5),
            (64, 1000),
            (65, 1000),
            (300, 0),
            (1000, 1),
            (10_240, 200_000),
            (4_224, 1 << 20),
            (5_000, 1 << 33),
            (3_000, usize::MAX),
        ] {
            let ids: Vec<usize> = (0..len)
                .map(|_| match largest {
                    0 => 0,
                    usize::MAX => next() as usize,
                    // Repeats: a few ids recur often.
                    _ if next() % 4 == 0 => (next() as usize) % 7,
                    _ => (next() as usize) % (largest + 1),
                })
                .collect();
            let mut expected: Vec<usize> = (0..len).collect();
            expected.sort_by_key(|&position| (ids[position], position));
            assert_eq!(positions_by_id(&ids), expected, "{len} ids up to {largest}");
        }
    }

    #[test]
    fn groups_sort_ids_and_keep_positions_in_order() {
        let groups = RowGroups::new(&[4, 0, 6, 1, 4]);
        assert_eq!(groups.ids, vec![0, 1, 4, 6]);
        assert_eq!(groups.positions(2), &[0, 4]);
        assert_eq!(groups.positions(3), &[2]);
    }
}
