//! word2vec's order of updates (`UpdateRule::Sequential`): the pairs of a batch one after
//! another, each pair's step applied before the next pair's logits are computed.
//!
//! For pair `i` (input row `x`, output rows `w_0` = its context and `w_1..w_k` its negatives):
//! the logits `l_j = x · w_j + b_j` (minus `ln Q_j` for `nce`), their gradients `d_j` (the
//! loss's, as in the batched step), then
//!
//! ```text
//! w_j -= rate · d_j · x,   b_j -= rate · d_j,   x -= rate · Σ_j d_j · w_j
//! ```
//!
//! with every right-hand side taken before this pair's updates. That is word2vec's
//! skip-gram update (which applies each negative's output update before the next negative's
//! dot product; here a pair's logits all see the state before the pair). A row that many pairs
//! of a batch touch sees each pair's step in turn, so its logits saturate as word2vec's do and
//! the step a pair takes is at most `rate · |x|` (an output row), `rate` (a bias) or
//! `rate · Σ_j |w_j|` (the input row): no sum over the batch's pairs builds up (see
//! docs/word2vec.md).
//!
//! It runs on one thread, in pair order: the same bits whatever the thread count.

use super::lanes::{self, prefetch, Lanes, WIDTH};
use super::step::{logistic_gradients, softmax_gradients, Embeddings, PairBatch, SkipGramLoss};
use crate::fast_math::FastMath;
use crate::simd::{InstructionSet, Kind};

/// Reused buffers.
#[derive(Default)]
pub struct SequentialBuffers {
    /// Every pair's logits `[pairs, 1 + negatives]`, for the batch's loss.
    logits: Vec<f32>,
    /// One pair's gradient coefficients and output row ids.
    coefficients: Vec<f32>,
    ids: Vec<u32>,
}

dispatched!(
    /// Runs the pairs of `batch` in order (see the module's documentation); returns the summed
    /// loss, each pair's taken before its update. `pair_group[i]` is pair `i`'s group of
    /// negatives (all 0 when they are shared). Ids and lengths are checked by the caller.
    pub run => pairs_in_order, (embeddings: &mut Embeddings<'_>, batch: &PairBatch<'_>, pair_group: &[u32], loss: SkipGramLoss, rate: f32, fixed_biases: bool, buffers: &mut SequentialBuffers) -> f64
);

/// # Safety
/// The processor supports `L`'s instruction set.
#[inline(always)]
unsafe fn pairs_in_order<L: Lanes>(
    embeddings: &mut Embeddings<'_>,
    batch: &PairBatch<'_>,
    pair_group: &[u32],
    loss: SkipGramLoss,
    rate: f32,
    fixed_biases: bool,
    buffers: &mut SequentialBuffers,
) -> f64 {
    let dim = embeddings.dim;
    let per_group = batch.negatives.len() / batch.group_ends.len().max(1);
    let width = per_group + 1;
    let subtract_log_q = loss.uses_expected_counts();
    let remove_hits = loss.removes_accidental_hits();
    let pairs = batch.centers.len();
    // Every pair's logits, kept for the loss (computed after the pairs, vectorised).
    // `ROW_LANES` floats of slack, so that any pair's logits can be read as a whole register.
    buffers.logits.clear();
    buffers.logits.resize(pairs * width + ROW_LANES, 0.0);
    buffers.coefficients.resize(width.max(ROW_LANES), 0.0);
    buffers.ids.resize(width, 0);
    let input = embeddings.input.as_mut_ptr();
    let output = embeddings.output.as_mut_ptr();
    let mut current_group = usize::MAX;
    const AHEAD: usize = 2;
    #[allow(clippy::needless_range_loop)] // pair `i` reads several arrays and looks ahead
    for i in 0..pairs {
        let group = pair_group[i] as usize;
        let negatives = &batch.negatives[group * per_group..(group + 1) * per_group];
        let negative_log_q = &batch.negative_log_q[group * per_group..(group + 1) * per_group];
        if i + AHEAD < pairs {
            prefetch(row(embeddings.input, batch.centers[i + AHEAD], dim));
            prefetch(row(embeddings.output, batch.contexts[i + AHEAD], dim));
        }
        let center = batch.centers[i];
        let context = batch.contexts[i];
        let ids = &mut buffers.ids[..];
        if group != current_group {
            // The next group's negatives, while this group's pairs compute.
            current_group = group;
            let next = batch
                .negatives
                .get((group + 1) * per_group..(group + 2) * per_group);
            for &id in next.unwrap_or(&[]) {
                prefetch(row(embeddings.output, id, dim));
            }
            ids[1..].copy_from_slice(negatives);
        }
        ids[0] = context;
        let logits = &mut buffers.logits[i * width..(i + 1) * width];
        // The logits, from the rows as they are before this pair's step.
        {
            let x = row(embeddings.input, center, dim);
            let output: &[f32] = embeddings.output;
            let mut stack: [&[f32]; ROWS_ON_STACK] = [&[]; ROWS_ON_STACK];
            let mut heap = Vec::new();
            let rows = output_rows(output, dim, ids, &mut stack, &mut heap);
            // SAFETY: the caller's instruction set; every row has `dim` floats.
            unsafe { lanes::dots::<L>(x, rows, logits) };
        }
        for (j, logit) in logits.iter_mut().enumerate() {
            let id = ids[j];
            *logit = if j > 0 && remove_hits && id == context {
                // A removed accidental hit: it costs and moves nothing.
                f32::NEG_INFINITY
            } else if !subtract_log_q {
                *logit + embeddings.biases[id as usize]
            } else if j == 0 {
                *logit + embeddings.biases[id as usize] - batch.context_log_q[i]
            } else {
                *logit + embeddings.biases[id as usize] - negative_log_q[j - 1]
            };
        }
        // This pair's logits and the slack after them, as one register's worth.
        let padded = &buffers.logits[i * width..i * width + width.max(ROW_LANES)];
        let d = &mut buffers.coefficients[..];
        match loss {
            SkipGramLoss::Nce | SkipGramLoss::Neg => logistic_row(padded, width, d),
            SkipGramLoss::SampledSoftmax => softmax_row(padded, width, d),
        }
        let d = &mut d[..width];
        // A row named twice (a negative drawn twice, or equal to the context) takes both
        // coefficients at its first place: every term is then formed from the rows before
        // the pair's step.
        for j in 1..width {
            if let Some(k) = ids[..j].iter().position(|&id| id == ids[j]) {
                d[k] += d[j];
                d[j] = 0.0;
            }
        }
        if !fixed_biases {
            for (j, &dj) in d.iter().enumerate() {
                embeddings.biases[ids[j] as usize] -= rate * dj;
            }
        }
        // SAFETY: the caller's instruction set; `center` and every id are rows of the
        // tables (checked by the caller), the input and output tables do not overlap, and a
        // repeated output row has coefficient 0 after its first place.
        unsafe { sweep::<L>(input.add(center as usize * dim), output, ids, d, rate, dim) };
    }
    // The pairs' losses, from their logits before their steps.
    let logits = &mut buffers.logits[..pairs * width];
    match loss {
        SkipGramLoss::Nce | SkipGramLoss::Neg => logistic_gradients(logits, width),
        SkipGramLoss::SampledSoftmax => logits
            .chunks_exact_mut(width)
            .map(|row| softmax_gradients(row) as f64)
            .sum(),
    }
}

/// Lanes of the per-pair gradient (more logits than this fall back to the batched kernels).
const ROW_LANES: usize = 16;

/// `d = σ(l) − label` for one pair's `n` logits, label 1 first and 0 after (`-inf`: 0), into
/// `d[..n]`. `padded` holds the logits and at least `ROW_LANES` floats in all; `d` at least
/// as many (up to `ROW_LANES` logits are computed as one register, whatever follows them).
#[inline(always)]
fn logistic_row(padded: &[f32], n: usize, d: &mut [f32]) {
    if n > ROW_LANES {
        d[..n].copy_from_slice(&padded[..n]);
        logistic_gradients(&mut d[..n], n);
        return;
    }
    let values: &[f32; ROW_LANES] = padded[..ROW_LANES].try_into().expect("ROW_LANES floats");
    let out: &mut [f32; ROW_LANES] = (&mut d[..ROW_LANES]).try_into().expect("ROW_LANES floats");
    for (out, &value) in out.iter_mut().zip(values) {
        let e = f32::exp_nonpositive(-value.abs());
        let inverse = 1.0 / (1.0 + e);
        *out = if value >= 0.0 { inverse } else { e * inverse };
    }
    out[0] -= 1.0;
}

/// `d = softmax(l) − label` for one pair's `n` logits, the label first (`-inf`: probability
/// 0), into `d[..n]`; `padded` and `d` as for [`logistic_row`].
#[inline(always)]
fn softmax_row(padded: &[f32], n: usize, d: &mut [f32]) {
    if n > ROW_LANES {
        d[..n].copy_from_slice(&padded[..n]);
        softmax_gradients(&mut d[..n]);
        return;
    }
    let values: &[f32; ROW_LANES] = padded[..ROW_LANES].try_into().expect("ROW_LANES floats");
    let mut lanes = [f32::NEG_INFINITY; ROW_LANES];
    for (k, (lane, &value)) in lanes.iter_mut().zip(values).enumerate() {
        if k < n {
            *lane = value;
        }
    }
    let max = lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for value in lanes.iter_mut() {
        *value = f32::exp_nonpositive(*value - max);
    }
    for &value in &lanes {
        sum += value;
    }
    let inverse = 1.0 / sum;
    let out: &mut [f32; ROW_LANES] = (&mut d[..ROW_LANES]).try_into().expect("ROW_LANES floats");
    for (out, &value) in out.iter_mut().zip(&lanes) {
        *out = value * inverse;
    }
    out[0] -= 1.0;
}

/// One pair's step in one sweep over the columns: for each column chunk, with `x` the input
/// row and `w_j` the output rows `ids[j]`,
/// `g = Σ_j d_j · w_j`, `w_j += −rate · d_j · x`, then `x += −rate · g`, every right-hand
/// side from the values before the pair (chunks are independent).
///
/// # Safety
/// The processor supports `L`'s instruction set; `x` points to `dim` floats of a row that
/// none of the output rows overlaps; `output` holds every row `ids[j]` (`dim` floats each),
/// and a row named twice has coefficient 0 after its first place.
#[inline(always)]
unsafe fn sweep<L: Lanes>(
    x: *mut f32,
    output: *mut f32,
    ids: &[u32],
    d: &[f32],
    rate: f32,
    dim: usize,
) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match ids.len() {
                // SAFETY: the caller's contract.
                $($n => return unsafe { sweep_rows::<L, $n>(x, output, ids, d, rate, dim) },)*
                _ => {}
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    // More than 16 rows (16 or more negatives): `g` from every row first, then the rows'
    // updates, then `x`'s, in three passes.
    let mut g = vec![0.0f32; dim];
    for (&id, &dj) in ids.iter().zip(d) {
        // SAFETY: the caller's contract.
        let w = unsafe { std::slice::from_raw_parts(output.add(id as usize * dim), dim) };
        // SAFETY: as above.
        unsafe { lanes::axpy::<L>(&mut g, dj, w) };
    }
    // SAFETY: as above.
    let xs = unsafe { std::slice::from_raw_parts_mut(x, dim) };
    for (&id, &dj) in ids.iter().zip(d) {
        if dj != 0.0 {
            // SAFETY: as above; rows do not overlap `x`.
            let w = unsafe { std::slice::from_raw_parts_mut(output.add(id as usize * dim), dim) };
            // SAFETY: as above.
            unsafe { lanes::axpy::<L>(w, -rate * dj, xs) };
        }
    }
    // SAFETY: as above.
    unsafe { lanes::axpy::<L>(xs, -rate, &g) };
}

/// `sweep` for exactly `W` output rows: the coefficients and row addresses in registers.
///
/// # Safety
/// As `sweep`, with `ids.len() == d.len() == W`.
#[inline(always)]
unsafe fn sweep_rows<L: Lanes, const W: usize>(
    x: *mut f32,
    output: *mut f32,
    ids: &[u32],
    d: &[f32],
    rate: f32,
    dim: usize,
) {
    assert!(ids.len() == W && d.len() == W);
    let mut rows = [std::ptr::null_mut::<f32>(); W];
    let mut gradient = [L::zero(); W];
    let mut step = [L::zero(); W];
    for j in 0..W {
        // SAFETY: the caller's contract: row `ids[j]` lies within `output`.
        rows[j] = unsafe { output.add(ids[j] as usize * dim) };
        gradient[j] = L::splat(d[j]);
        step[j] = L::splat(-rate * d[j]);
    }
    let neg_rate = L::splat(-rate);
    let full = dim / WIDTH * WIDTH;
    let mut start = 0;
    // SAFETY (both parts): every offset stays within the `dim` floats of each row.
    while start < full {
        unsafe {
            let xp = x.add(start);
            let xv = L::load(xp);
            let mut g = L::zero();
            for j in 0..W {
                let wp = rows[j].add(start);
                let wv = L::load(wp);
                g = wv.mul_add(gradient[j], g);
                xv.mul_add(step[j], wv).store(wp);
            }
            g.mul_add(neg_rate, xv).store(xp);
        }
        start += WIDTH;
    }
    let tail = dim - full;
    if tail > 0 {
        unsafe {
            let xp = x.add(full);
            let xv = L::load_partial(xp, tail);
            let mut g = L::zero();
            for j in 0..W {
                let wp = rows[j].add(full);
                let wv = L::load_partial(wp, tail);
                g = wv.mul_add(gradient[j], g);
                xv.mul_add(step[j], wv).store_partial(wp, tail);
            }
            g.mul_add(neg_rate, xv).store_partial(xp, tail);
        }
    }
}

/// Output rows of one pair held on the stack (more, as with 16 or more negatives, in a `Vec`).
const ROWS_ON_STACK: usize = 16;

/// The output rows `ids`, in `stack` if they fit, else in `heap`.
#[inline(always)]
fn output_rows<'a, 'b>(
    output: &'a [f32],
    dim: usize,
    ids: &[u32],
    stack: &'b mut [&'a [f32]; ROWS_ON_STACK],
    heap: &'b mut Vec<&'a [f32]>,
) -> &'b [&'a [f32]] {
    if ids.len() <= ROWS_ON_STACK {
        for (slot, &id) in stack.iter_mut().zip(ids) {
            *slot = row(output, id, dim);
        }
        &stack[..ids.len()]
    } else {
        heap.extend(ids.iter().map(|&id| row(output, id, dim)));
        heap
    }
}

#[inline(always)]
fn row(table: &[f32], id: u32, dim: usize) -> &[f32] {
    &table[id as usize * dim..(id as usize + 1) * dim]
}

#[cfg(test)]
mod tests {
    use super::super::step::{SkipGramStep, UpdateRule, Workers};
    use super::*;

    /// A batch of windows: `windows` groups of 1 to 7 pairs with `negatives` draws each (some
    /// repeated within a group, some equal to the group's context).
    struct Problem {
        tables: [Vec<f32>; 3],
        centers: Vec<u32>,
        contexts: Vec<u32>,
        context_log_q: Vec<f32>,
        negatives: Vec<u32>,
        negative_log_q: Vec<f32>,
        group_ends: Vec<u32>,
        dim: usize,
    }

    fn problem(dim: usize, windows: usize, negatives: usize) -> Problem {
        let vocabulary = 40;
        let value = |k: usize, salt: usize| {
            ((k.wrapping_mul(2_654_435_761).wrapping_add(salt * 977) % 1000) as f32 / 1000.0 - 0.5)
                * 0.8
        };
        let mut problem = Problem {
            tables: [
                (0..vocabulary * dim).map(|k| value(k, 1)).collect(),
                (0..vocabulary * dim).map(|k| value(k, 2)).collect(),
                (0..vocabulary).map(|k| value(k, 3)).collect(),
            ],
            centers: Vec::new(),
            contexts: Vec::new(),
            context_log_q: Vec::new(),
            negatives: Vec::new(),
            negative_log_q: Vec::new(),
            group_ends: Vec::new(),
            dim,
        };
        for w in 0..windows {
            let context = (w * 11 % vocabulary) as u32;
            for p in 0..1 + w * 5 % 7 {
                problem.centers.push(((w * 7 + p * 3) % vocabulary) as u32);
                problem.contexts.push(context);
                problem.context_log_q.push(-1.0 - value(w + p, 4));
            }
            problem.group_ends.push(problem.centers.len() as u32);
            for j in 0..negatives {
                let id = match j % 4 {
                    0 if w % 3 == 0 => context,                          // an accidental hit
                    1 => problem.negatives.last().copied().unwrap_or(0), // drawn twice
                    _ => ((w * 13 + j * 17) % vocabulary) as u32,
                };
                problem.negatives.push(id);
                problem
                    .negative_log_q
                    .push(-1.5 - 0.1 * j as f32 - 0.01 * id as f32);
            }
        }
        problem
    }

    impl Problem {
        fn batch(&self) -> PairBatch<'_> {
            PairBatch {
                centers: &self.centers,
                contexts: &self.contexts,
                context_log_q: &self.context_log_q,
                negatives: &self.negatives,
                negative_log_q: &self.negative_log_q,
                group_ends: &self.group_ends,
            }
        }

        /// The pairs in order with plain float64 loops, every term of a pair's step from the
        /// tables before it: (summed loss, the tables after).
        fn oracle(
            &self,
            loss: SkipGramLoss,
            rate: f64,
            fixed_biases: bool,
        ) -> (f64, [Vec<f64>; 3]) {
            let dim = self.dim;
            let [mut input, mut output, mut biases] = self
                .tables
                .clone()
                .map(|t| t.into_iter().map(f64::from).collect::<Vec<_>>());
            let k = self.negatives.len() / self.group_ends.len();
            let mut total = 0.0;
            for i in 0..self.centers.len() {
                let group = self
                    .group_ends
                    .iter()
                    .filter(|&&end| end as usize <= i)
                    .count();
                let x = self.centers[i] as usize;
                let mut ids = vec![self.contexts[i] as usize];
                let mut log_q = vec![self.context_log_q[i] as f64];
                for j in 0..k {
                    ids.push(self.negatives[group * k + j] as usize);
                    log_q.push(self.negative_log_q[group * k + j] as f64);
                }
                let logits: Vec<f64> = (0..=k)
                    .map(|j| {
                        if j > 0 && loss.removes_accidental_hits() && ids[j] == ids[0] {
                            return f64::NEG_INFINITY;
                        }
                        let dot: f64 = (0..dim)
                            .map(|c| input[x * dim + c] * output[ids[j] * dim + c])
                            .sum();
                        let q = if loss.uses_expected_counts() {
                            log_q[j]
                        } else {
                            0.0
                        };
                        dot + biases[ids[j]] - q
                    })
                    .collect();
                let d: Vec<f64> = match loss {
                    SkipGramLoss::SampledSoftmax => {
                        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
                        total += sum.ln() + max - logits[0];
                        logits
                            .iter()
                            .enumerate()
                            .map(|(j, l)| (l - max).exp() / sum - if j == 0 { 1.0 } else { 0.0 })
                            .collect()
                    }
                    _ => logits
                        .iter()
                        .enumerate()
                        .map(|(j, &l)| {
                            let label = if j == 0 { 1.0 } else { 0.0 };
                            if l == f64::NEG_INFINITY {
                                return 0.0;
                            }
                            total += if j == 0 {
                                (-l).exp().ln_1p()
                            } else {
                                l.exp().ln_1p()
                            };
                            1.0 / (1.0 + (-l).exp()) - label
                        })
                        .collect(),
                };
                let before_x: Vec<f64> = input[x * dim..(x + 1) * dim].to_vec();
                let before_w = output.clone();
                for (j, &id) in ids.iter().enumerate() {
                    for c in 0..dim {
                        input[x * dim + c] -= rate * d[j] * before_w[id * dim + c];
                        output[id * dim + c] -= rate * d[j] * before_x[c];
                    }
                    if !fixed_biases {
                        biases[id] -= rate * d[j];
                    }
                }
            }
            (total, [input, output, biases])
        }
    }

    fn run_step(
        problem: &Problem,
        isa: InstructionSet,
        loss: SkipGramLoss,
        rate: f32,
        fixed_biases: bool,
        workers: Workers<'_>,
    ) -> (f64, [Vec<f32>; 3]) {
        let [mut input, mut output, mut biases] = problem.tables.clone();
        let mut embeddings = Embeddings {
            input: &mut input,
            output: &mut output,
            biases: &mut biases,
            dim: problem.dim,
        };
        let total = SkipGramStep::with_fixed_biases(fixed_biases).run_on(
            isa,
            &mut embeddings,
            &problem.batch(),
            loss,
            rate,
            UpdateRule::Sequential,
            workers,
        );
        (total, [input, output, biases])
    }

    #[test]
    fn every_pair_takes_its_sgd_step_in_order_from_the_tables_before_it() {
        for dim in [1, 5, 16, 17, 40, 100] {
            for negatives in [1, 5, 15, 20] {
                let problem = problem(dim, 30, negatives);
                for loss in [
                    SkipGramLoss::Nce,
                    SkipGramLoss::Neg,
                    SkipGramLoss::SampledSoftmax,
                ] {
                    for fixed_biases in [false, true] {
                        let (want_loss, want) = problem.oracle(loss, 0.1, fixed_biases);
                        for isa in InstructionSet::supported() {
                            let (got_loss, got) =
                                run_step(&problem, isa, loss, 0.1, fixed_biases, Workers::Serial);
                            let context = format!(
                                "dim {dim}, {negatives} negatives, {loss:?}, fixed biases \
                                 {fixed_biases}, {isa:?}"
                            );
                            assert!(
                                (got_loss - want_loss).abs() <= 1e-4 * want_loss.abs().max(1.0),
                                "{context}: loss {got_loss} against {want_loss}"
                            );
                            for (table, (g, w)) in got.iter().zip(&want).enumerate() {
                                for (k, (&g, &w)) in g.iter().zip(w).enumerate() {
                                    assert!(
                                        (g as f64 - w).abs() <= 1e-5 * w.abs().max(1.0),
                                        "{context}: table {table}[{k}] {g} against {w}"
                                    );
                                }
                            }
                            if fixed_biases {
                                assert_eq!(got[2], problem.tables[2], "{context}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_same_bits_on_any_workers() {
        let problem = problem(40, 50, 5);
        let isa = InstructionSet::detect();
        let serial = run_step(
            &problem,
            isa,
            SkipGramLoss::Nce,
            0.3,
            false,
            Workers::Serial,
        );
        let pool = run_step(&problem, isa, SkipGramLoss::Nce, 0.3, false, Workers::Pool);
        let team = crate::spinning_team::with_team(2, |team| {
            run_step(
                &problem,
                isa,
                SkipGramLoss::Nce,
                0.3,
                false,
                Workers::Team(team),
            )
        });
        assert_eq!(serial.0.to_bits(), pool.0.to_bits());
        assert_eq!(serial.1, pool.1);
        assert_eq!(serial.1, team.1);
    }

    /// A row every pair of a large batch touches (one context, the same negatives) moves by
    /// a bounded amount, however many pairs the batch holds: each pair's step sees the
    /// previous ones, and the logits saturate.
    #[test]
    fn a_row_every_pair_touches_moves_a_bounded_distance_whatever_the_batch_size() {
        let dim = 20;
        let vocabulary = 8;
        let mut moved = Vec::new();
        for pairs in [64usize, 4096, 65_536] {
            let mut input: Vec<f32> = (0..vocabulary * dim)
                .map(|k| (k % 7) as f32 * 0.05)
                .collect();
            let mut output = vec![0.01f32; vocabulary * dim];
            let mut biases = vec![0.0f32; vocabulary];
            let start = output.clone();
            let centers: Vec<u32> = (0..pairs).map(|i| 1 + (i % 6) as u32).collect();
            let contexts = vec![0u32; pairs];
            let batch = PairBatch {
                centers: &centers,
                contexts: &contexts,
                context_log_q: &vec![-1.0; pairs],
                negatives: &[7, 7, 6],
                negative_log_q: &[-1.0, -1.0, -1.0],
                group_ends: &[],
            };
            let mut embeddings = Embeddings {
                input: &mut input,
                output: &mut output,
                biases: &mut biases,
                dim,
            };
            let total = SkipGramStep::default().run_on_workers(
                &mut embeddings,
                &batch,
                SkipGramLoss::Nce,
                0.5,
                UpdateRule::Sequential,
                Workers::Serial,
            );
            assert!(total.is_finite());
            let distance = |id: usize| {
                (0..dim)
                    .map(|c| (output[id * dim + c] - start[id * dim + c]).powi(2))
                    .sum::<f32>()
                    .sqrt()
            };
            moved.push((distance(0), distance(7)));
            assert!(
                biases.iter().all(|b| b.is_finite() && b.abs() < 50.0),
                "{biases:?}"
            );
        }
        // 1,000 times the pairs: the rows move by at most a few times as far.
        let (small, large) = (moved[0], moved[2]);
        assert!(large.0 < 5.0 * small.0.max(0.5), "{moved:?}");
        assert!(large.1 < 5.0 * small.1.max(0.5), "{moved:?}");
    }
}
