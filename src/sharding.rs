//! Rows of a matrix stored as a list of shards, split by TensorFlow's `"div"` (contiguous) or
//! `"mod"` (strided) partition strategy (spec §9).

use ndarray::{Array2, ArrayView1, ArrayView2};

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

/// A `[rows, dim]` matrix given as shards that follow a partition strategy. Biases are the
/// special case `dim == 1`.
#[derive(Clone, Debug)]
pub struct ShardedMatrix<'a, F> {
    shards: Vec<ArrayView2<'a, F>>,
    strategy: PartitionStrategy,
    rows: usize,
    dim: usize,
    /// Rows of the leading, one-row-larger "div" shards, and how many such shards there are.
    div_large: usize,
    div_extra: usize,
}

impl<'a, F: Copy> ShardedMatrix<'a, F> {
    /// Checks that the shards agree on `dim` and follow the strategy's layout; `argument`
    /// names them in errors.
    pub fn new(
        shards: Vec<ArrayView2<'a, F>>,
        strategy: PartitionStrategy,
        argument: &str,
    ) -> Result<Self> {
        let Some(first) = shards.first() else {
            return Err(NceError::invalid(argument, "must hold at least one shard"));
        };
        let dim = first.ncols();
        if let Some(p) = shards.iter().position(|s| s.ncols() != dim) {
            return Err(NceError::invalid(
                argument,
                format!(
                    "all shards must have the same number of columns: shard 0 has {dim}, shard {p} has {}",
                    shards[p].ncols()
                ),
            ));
        }
        let rows: usize = shards.iter().map(|s| s.nrows()).sum();
        let count = shards.len();
        if count > 1 {
            if rows < count {
                return Err(NceError::invalid(
                    argument,
                    format!("{count} shards hold only {rows} rows in total; every shard needs at least one row"),
                ));
            }
            for (p, shard) in shards.iter().enumerate() {
                let expected = shard_size(rows, count, p);
                if shard.nrows() != expected {
                    let sizes: Vec<usize> = shards.iter().map(|s| s.nrows()).collect();
                    let wanted: Vec<usize> =
                        (0..count).map(|q| shard_size(rows, count, q)).collect();
                    return Err(NceError::invalid(
                        argument,
                        format!(
                            "shard sizes {sizes:?} do not follow partition_strategy {:?}: {rows} rows over {count} shards must be split {wanted:?}",
                            strategy.name()
                        ),
                    ));
                }
            }
        }
        Ok(ShardedMatrix {
            shards,
            strategy,
            rows,
            dim,
            div_large: rows / count + 1,
            div_extra: rows % count,
        })
    }

    /// A single, unsharded matrix.
    pub fn single(matrix: ArrayView2<'a, F>) -> Self {
        let rows = matrix.nrows();
        ShardedMatrix {
            dim: matrix.ncols(),
            shards: vec![matrix],
            strategy: PartitionStrategy::Div,
            rows,
            div_large: rows + 1,
            div_extra: 0,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn shards(&self) -> &[ArrayView2<'a, F>] {
        &self.shards
    }

    /// `(shard, local row)` of a global id that is already known to be in `[0, rows)`.
    pub fn locate(&self, id: usize) -> (usize, usize) {
        let count = self.shards.len();
        if count == 1 {
            return (0, id);
        }
        match self.strategy {
            PartitionStrategy::Mod => (id % count, id / count),
            PartitionStrategy::Div => {
                let in_large = self.div_large * self.div_extra;
                if id < in_large {
                    (id / self.div_large, id % self.div_large)
                } else {
                    let small = self.div_large - 1;
                    let offset = id - in_large;
                    (self.div_extra + offset / small, offset % small)
                }
            }
        }
    }

    /// The global id of a shard's local row.
    pub fn global_id(&self, shard: usize, local: usize) -> usize {
        let count = self.shards.len();
        match self.strategy {
            _ if count == 1 => local,
            PartitionStrategy::Mod => shard + local * count,
            PartitionStrategy::Div => {
                let before: usize = (0..shard).map(|q| self.shards[q].nrows()).sum();
                before + local
            }
        }
    }

    /// How many of shard `shard`'s rows have a global id below `limit`; they come first.
    pub fn local_rows_below(&self, shard: usize, limit: usize) -> usize {
        let count = self.shards.len();
        let held = self.shards[shard].nrows();
        let below = match self.strategy {
            _ if count == 1 => limit,
            PartitionStrategy::Mod => limit.saturating_sub(shard).div_ceil(count),
            PartitionStrategy::Div => limit.saturating_sub(self.global_id(shard, 0)),
        };
        below.min(held)
    }

    /// Row `id`, which the caller has checked against `rows()`.
    pub fn row(&self, id: usize) -> ArrayView1<'_, F> {
        let (shard, local) = self.locate(id);
        self.shards[shard].row(local)
    }

    /// Element `(id, 0)`, for biases.
    pub fn scalar(&self, id: usize) -> F {
        let (shard, local) = self.locate(id);
        self.shards[shard][[local, 0]]
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

    /// `embedding_lookup`: the rows of `ids`, in order.
    pub fn gather(&self, ids: &[i64], argument: &str) -> Result<Array2<F>>
    where
        F: Default,
    {
        let checked = ids
            .iter()
            .map(|&id| self.check_id(id, argument))
            .collect::<Result<Vec<usize>>>()?;
        Ok(self.gather_checked(&checked))
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
                    let (shard, local) = matrix.locate(id);
                    assert_eq!(matrix.global_id(shard, local), id);
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
