//! Rows of a matrix stored as a list of shards, split by TensorFlow's `"div"` (contiguous) or
//! `"mod"` (strided) partition strategy (docs/semantics.md §9).

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2};

use crate::error::{NceError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartitionStrategy {
    /// Contiguous blocks; the first `rows mod shards` shards hold one extra row.
    Div,
    /// Shard `p` holds ids `p, p + P, p + 2P, ...`.
    Mod,
}

impl PartitionStrategy {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "div" => Ok(PartitionStrategy::Div),
            "mod" => Ok(PartitionStrategy::Mod),
            other => Err(NceError::invalid(
                "partition_strategy",
                format!("must be \"div\" or \"mod\", got {other:?}"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PartitionStrategy::Div => "div",
            PartitionStrategy::Mod => "mod",
        }
    }
}

/// The number of rows shard `shard` holds when `rows` rows are split `shards` ways. Both
/// strategies give the first `rows mod shards` shards one extra row; they differ in which ids.
pub fn shard_size(rows: usize, shards: usize, shard: usize) -> usize {
    rows / shards + usize::from(shard < rows % shards)
}

/// Which shard and local row hold each global id: the part of sharding that does not depend
/// on the element type or on whether the shards are read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardLayout {
    strategy: PartitionStrategy,
    sizes: Vec<usize>,
    /// The global id of each shard's first row ("div").
    offsets: Vec<usize>,
    rows: usize,
}

impl ShardLayout {
    /// Checks that shards of these sizes follow the strategy's layout; `argument` names them.
    pub fn new(sizes: Vec<usize>, strategy: PartitionStrategy, argument: &str) -> Result<Self> {
        let count = sizes.len();
        if count == 0 {
            return Err(NceError::invalid(argument, "must hold at least one shard"));
        }
        let rows: usize = sizes.iter().sum();
        if count > 1 {
            if rows < count {
                return Err(NceError::invalid(
                    argument,
                    format!("{count} shards hold only {rows} rows in total; every shard needs at least one row"),
                ));
            }
            let wanted: Vec<usize> = (0..count).map(|p| shard_size(rows, count, p)).collect();
            if sizes != wanted {
                return Err(NceError::invalid(
                    argument,
                    format!(
                        "shard sizes {sizes:?} do not follow partition_strategy {:?}: {rows} rows over {count} shards must be split {wanted:?}",
                        strategy.name()
                    ),
                ));
            }
        }
        let offsets = sizes
            .iter()
            .scan(0, |start, &size| {
                let offset = *start;
                *start += size;
                Some(offset)
            })
            .collect();
        Ok(ShardLayout {
            strategy,
            sizes,
            offsets,
            rows,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn shard_count(&self) -> usize {
        self.sizes.len()
    }

    pub fn strategy(&self) -> PartitionStrategy {
        self.strategy
    }

    /// `(shard, local row)` of a global id in `[0, rows)`.
    pub fn locate(&self, id: usize) -> (usize, usize) {
        let count = self.sizes.len();
        if count == 1 {
            return (0, id);
        }
        match self.strategy {
            PartitionStrategy::Mod => (id % count, id / count),
            PartitionStrategy::Div => {
                let large = self.sizes[0];
                let extra = self.rows % count;
                let in_large = large * extra;
                if id < in_large {
                    (id / large, id % large)
                } else {
                    let small = self.rows / count;
                    let offset = id - in_large;
                    (extra + offset / small, offset % small)
                }
            }
        }
    }

    /// The global id of a shard's local row.
    pub fn global_id(&self, shard: usize, local: usize) -> usize {
        let count = self.sizes.len();
        match self.strategy {
            _ if count == 1 => local,
            PartitionStrategy::Mod => shard + local * count,
            PartitionStrategy::Div => self.offsets[shard] + local,
        }
    }

    /// How many of shard `shard`'s rows have a global id below `limit`; they come first.
    pub fn local_rows_below(&self, shard: usize, limit: usize) -> usize {
        let count = self.sizes.len();
        let below = match self.strategy {
            _ if count == 1 => limit,
            PartitionStrategy::Mod => limit.saturating_sub(shard).div_ceil(count),
            PartitionStrategy::Div => limit.saturating_sub(self.offsets[shard]),
        };
        below.min(self.sizes[shard])
    }

    /// Checks that `id` names a row, for the argument `argument`.
    pub fn check_id(&self, id: i64, argument: &str) -> Result<usize> {
        if id < 0 || id as u64 >= self.rows as u64 {
            return Err(NceError::out_of_range(
                argument,
                format!(
                    "id {id} is out of range [0, {}) of the rows held",
                    self.rows
                ),
            ));
        }
        Ok(id as usize)
    }
}

/// A `[rows, dim]` matrix given as shards that follow a partition strategy. Biases are the
/// special case `dim == 1`.
#[derive(Clone, Debug)]
pub struct ShardedMatrix<'a, F> {
    shards: Vec<ArrayView2<'a, F>>,
    layout: ShardLayout,
    dim: usize,
}

impl<'a, F: Copy> ShardedMatrix<'a, F> {
    /// Checks that the shards agree on `dim` and follow the strategy's layout; `argument`
    /// names them in errors.
    pub fn new(
        shards: Vec<ArrayView2<'a, F>>,
        strategy: PartitionStrategy,
        argument: &str,
    ) -> Result<Self> {
        let dim = check_dims(shards.iter().map(|s| s.ncols()), argument)?;
        let layout = ShardLayout::new(
            shards.iter().map(|s| s.nrows()).collect(),
            strategy,
            argument,
        )?;
        Ok(ShardedMatrix {
            shards,
            layout,
            dim,
        })
    }

    /// A single, unsharded matrix.
    pub fn single(matrix: ArrayView2<'a, F>) -> Self {
        Self::new(vec![matrix], PartitionStrategy::Div, "matrix")
            .expect("one shard always follows the layout")
    }

    pub fn rows(&self) -> usize {
        self.layout.rows()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn shards(&self) -> &[ArrayView2<'a, F>] {
        &self.shards
    }

    pub fn layout(&self) -> &ShardLayout {
        &self.layout
    }

    /// Row `id`, which the caller has checked against `rows()`.
    pub fn row(&self, id: usize) -> ArrayView1<'_, F> {
        let (shard, local) = self.layout.locate(id);
        self.shards[shard].row(local)
    }

    /// Element `(id, 0)`, for biases.
    pub fn scalar(&self, id: usize) -> F {
        let (shard, local) = self.layout.locate(id);
        self.shards[shard][[local, 0]]
    }

    /// `embedding_lookup`: the rows of `ids`, in order.
    pub fn gather(&self, ids: &[i64], argument: &str) -> Result<Array2<F>>
    where
        F: Default,
    {
        let checked = ids
            .iter()
            .map(|&id| self.layout.check_id(id, argument))
            .collect::<Result<Vec<usize>>>()?;
        Ok(self.gather_checked(&checked))
    }

    /// Copies the rows `ids` (checked against `rows()`) into `out`, prefetching rows a few
    /// ahead: rows of a large matrix are cache and TLB misses, and this overlaps them.
    pub fn gather_into(&self, ids: &[usize], out: &mut ArrayViewMut2<F>) {
        // Rows are requested about 4 KiB ahead of the copy: enough loads in flight to hide
        // the memory latency, few enough that the processor's miss buffers do not overflow.
        let ahead = (4096 / (self.dim * std::mem::size_of::<F>()).max(1)).clamp(2, 8);
        for (r, mut target) in out.rows_mut().into_iter().enumerate() {
            if let Some(&next) = ids.get(r + ahead) {
                self.prefetch_row(next);
            }
            target.assign(&self.row(ids[r]));
        }
    }

    /// Hints the processor to start loading row `id` into the cache.
    #[inline(always)]
    fn prefetch_row(&self, id: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let (shard, local) = self.layout.locate(id);
            let view = &self.shards[shard];
            if view.strides()[1] != 1 {
                return;
            }
            let start = view.row(local).as_ptr() as *const i8;
            let bytes = self.dim * std::mem::size_of::<F>();
            for offset in (0..bytes).step_by(64) {
                // SAFETY: prefetching is a hint that never faults; the address is inside the row.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        start.wrapping_add(offset),
                    )
                };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = id;
    }

    /// The rows of ids already checked against `rows()`, as a contiguous `[ids, dim]` matrix.
    pub fn gather_checked(&self, ids: &[usize]) -> Array2<F>
    where
        F: Default,
    {
        let mut out = Array2::default((ids.len(), self.dim));
        for (mut target, &id) in out.rows_mut().into_iter().zip(ids) {
            target.assign(&self.row(id));
        }
        out
    }
}

fn check_dims(mut dims: impl Iterator<Item = usize>, argument: &str) -> Result<usize> {
    let Some(dim) = dims.next() else {
        return Err(NceError::invalid(argument, "must hold at least one shard"));
    };
    if let Some((p, other)) = dims.enumerate().find(|&(_, d)| d != dim) {
        return Err(NceError::invalid(
            argument,
            format!(
                "all shards must have the same number of columns: shard 0 has {dim}, shard {} has {other}",
                p + 1
            ),
        ));
    }
    Ok(dim)
}

/// Writable shards whose rows may be updated from several threads at once, one thread per row.
pub struct ShardedRowsMut<'a, F> {
    shards: Vec<RawShard<F>>,
    layout: ShardLayout,
    dim: usize,
    _borrow: std::marker::PhantomData<&'a mut F>,
}

struct RawShard<F> {
    data: *mut F,
    row_stride: isize,
    column_stride: isize,
}

// SAFETY: the pointers come from exclusive borrows held for 'a; `add_to_row` is the only
// access, and its contract gives each row to at most one thread at a time.
unsafe impl<F: Send> Send for ShardedRowsMut<'_, F> {}
unsafe impl<F: Send> Sync for ShardedRowsMut<'_, F> {}

impl<'a, F: Copy + std::ops::Add<Output = F> + std::ops::Mul<Output = F>> ShardedRowsMut<'a, F> {
    pub fn new(
        mut shards: Vec<ArrayViewMut2<'a, F>>,
        strategy: PartitionStrategy,
        argument: &str,
    ) -> Result<Self> {
        let dim = check_dims(shards.iter().map(|s| s.ncols()), argument)?;
        let layout = ShardLayout::new(
            shards.iter().map(|s| s.nrows()).collect(),
            strategy,
            argument,
        )?;
        let shards = shards
            .iter_mut()
            .map(|shard| RawShard {
                data: shard.as_mut_ptr(),
                row_stride: shard.strides()[0],
                column_stride: shard.strides()[1],
            })
            .collect();
        Ok(ShardedRowsMut {
            shards,
            layout,
            dim,
            _borrow: std::marker::PhantomData,
        })
    }

    pub fn layout(&self) -> &ShardLayout {
        &self.layout
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Hints the processor to start loading row `id` (in range) into the cache.
    #[inline(always)]
    pub fn prefetch_row(&self, id: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            let (shard, local) = self.layout.locate(id);
            let raw = &self.shards[shard];
            if raw.column_stride != 1 {
                return;
            }
            let start = raw.data.wrapping_offset(local as isize * raw.row_stride) as *const i8;
            for offset in (0..self.dim * std::mem::size_of::<F>()).step_by(64) {
                // SAFETY: prefetching is a hint that never faults.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        start.wrapping_add(offset),
                    )
                };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = id;
    }

    /// `row[id] += scale * values`.
    ///
    /// # Safety
    /// `id < rows()`, `values.len() == dim()`, and no other thread touches row `id` meanwhile.
    pub unsafe fn add_to_row(&self, id: usize, scale: F, values: &[F]) {
        let (shard, local) = self.layout.locate(id);
        let raw = &self.shards[shard];
        let row = raw.data.offset(local as isize * raw.row_stride);
        if raw.column_stride == 1 {
            let row = std::slice::from_raw_parts_mut(row, values.len());
            for (element, &value) in row.iter_mut().zip(values) {
                *element = *element + scale * value;
            }
            return;
        }
        for (column, &value) in values.iter().enumerate() {
            let element = row.offset(column as isize * raw.column_stride);
            *element = *element + scale * value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn contiguous_shards(rows: usize, shards: usize) -> Vec<Array2<f64>> {
        let mut start = 0;
        (0..shards)
            .map(|p| {
                let size = shard_size(rows, shards, p);
                let shard = Array2::from_shape_fn((size, 1), |(r, _)| (start + r) as f64);
                start += size;
                shard
            })
            .collect()
    }

    #[test]
    fn div_formula_equals_contiguous_layout() {
        for rows in 1..40 {
            for count in 1..=9.min(rows) {
                let owned = contiguous_shards(rows, count);
                let views = owned.iter().map(|s| s.view()).collect();
                let matrix = ShardedMatrix::new(views, PartitionStrategy::Div, "weights").unwrap();
                for id in 0..rows {
                    assert_eq!(matrix.scalar(id), id as f64);
                    let (shard, local) = matrix.layout().locate(id);
                    assert_eq!(matrix.layout().global_id(shard, local), id);
                }
            }
        }
    }

    #[test]
    fn thirteen_rows_over_five_div_shards() {
        let sizes: Vec<usize> = (0..5).map(|p| shard_size(13, 5, p)).collect();
        assert_eq!(sizes, vec![3, 3, 3, 2, 2]);
    }

    #[test]
    fn mod_shards_hold_strided_ids() {
        let rows = 11;
        let owned: Vec<Array2<f64>> = (0..3)
            .map(|p| {
                let size = shard_size(rows, 3, p);
                Array2::from_shape_fn((size, 1), |(r, _)| (p + 3 * r) as f64)
            })
            .collect();
        let views = owned.iter().map(|s| s.view()).collect();
        let matrix = ShardedMatrix::new(views, PartitionStrategy::Mod, "weights").unwrap();
        for id in 0..rows {
            assert_eq!(matrix.scalar(id), id as f64);
        }
    }

    #[test]
    fn shards_off_the_layout_are_refused() {
        let a = Array2::<f64>::zeros((2, 1));
        let b = Array2::<f64>::zeros((4, 1));
        let error = ShardedMatrix::new(vec![a.view(), b.view()], PartitionStrategy::Div, "weights")
            .unwrap_err();
        assert!(error.to_string().starts_with("weights:"));
    }

    #[test]
    fn fewer_rows_than_shards_are_refused() {
        let a = Array2::<f64>::zeros((1, 1));
        let b = Array2::<f64>::zeros((0, 1));
        assert!(
            ShardedMatrix::new(vec![a.view(), b.view()], PartitionStrategy::Div, "weights")
                .is_err()
        );
    }
}
