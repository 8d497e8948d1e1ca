//! Accidental hits (docs/semantics.md §8): positions where a sampled candidate equals one of a row's labels.

use std::collections::HashMap;

use ndarray::ArrayView2;

use crate::element_types::{ClassId, HIT_MASK};
use crate::error::{NceError, Result};

/// `compute_accidental_hits`' three outputs, in row-major order of the labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccidentalHits {
    /// The example (row) of each hit.
    pub indices: Vec<i32>,
    /// The position in the sampled candidates of each hit; for a repeated candidate, the last.
    pub ids: Vec<i64>,
    /// `-FLT_MAX` for every hit.
    pub weights: Vec<f32>,
}

pub fn compute_accidental_hits<L: ClassId>(
    true_classes: ArrayView2<L>,
    sampled_candidates: &[i64],
    num_true: usize,
) -> Result<AccidentalHits> {
    if true_classes.ncols() != num_true {
        return Err(NceError::invalid(
            "true_classes",
            format!(
                "must be a [batch_size, num_true = {num_true}] matrix, got shape [{}, {}]",
                true_classes.nrows(),
                true_classes.ncols()
            ),
        ));
    }
    if true_classes.nrows() > i32::MAX as usize {
        return Err(NceError::invalid(
            "true_classes",
            "has more rows than an int32 hit index can name",
        ));
    }
    let positions = last_positions(sampled_candidates);
    let mut hits = AccidentalHits::default();
    for (row, labels) in true_classes.rows().into_iter().enumerate() {
        for &label in labels {
            if let Some(&position) = positions.get(&label.into()) {
                hits.indices.push(row as i32);
                hits.ids.push(position as i64);
                hits.weights.push(HIT_MASK);
            }
        }
    }
    Ok(hits)
}

/// Maps each sampled id to the last position it occupies.
pub fn last_positions(sampled_candidates: &[i64]) -> HashMap<i64, usize> {
    sampled_candidates
        .iter()
        .enumerate()
        .map(|(position, &id)| (id, position))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn spec_example_reports_last_positions_row_major() {
        let true_classes = array![[5i64, 1], [1, 1], [7, 9], [2, 5]];
        let hits = compute_accidental_hits(true_classes.view(), &[1, 5, 3, 1, 2], 2).unwrap();
        assert_eq!(hits.indices, vec![0, 0, 1, 1, 3, 3]);
        assert_eq!(hits.ids, vec![1, 3, 3, 3, 4, 1]);
        assert_eq!(hits.weights, vec![-3.4028235e38; 6]);
    }

    #[test]
    fn no_hits_gives_empty_outputs() {
        let hits = compute_accidental_hits(array![[0i32]].view(), &[1, 2], 1).unwrap();
        assert_eq!(hits, AccidentalHits::default());
    }

    #[test]
    fn wrong_column_count_is_refused() {
        assert!(compute_accidental_hits(array![[0i64, 1]].view(), &[1], 1).is_err());
    }
}
