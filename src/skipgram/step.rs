//! One skip-gram SGD step on a batch of (center, context) pairs sharing a set of negatives, with
//! the input vectors, output vectors and output biases updated in place.
//!
//! The maths is `nce_loss` / `sampled_softmax_loss` with `num_true = 1` and `upstream = "sum"`,
//! where `inputs[i]` is the center word's input vector: logits
//! `l_i0 = x_i·w_{ctx_i} + b_{ctx_i} − ln Q(ctx_i)` and `l_ij = x_i·w_{n_j} + b_{n_j} − ln Q(n_j)`,
//! then every parameter moves by `−rate · ∂(Σ_i loss_i)`, all gradients taken at the weights
//! before the step (as TensorFlow's SGD does). Negatives equal to the pair's context are left out
//! when accidental hits are removed.
//!
//! Small batches (hundreds of pairs, `dim` around 100) are far too small for a matrix-multiply
//! library, so the step is direct dot products and row updates on sixteen-float lanes
//! (`lanes.rs`), compiled for AVX-512, for AVX2 + FMA and plainly, picked at run time. The pairs
//! split into fixed chunks of 64: each chunk computes its logits, its pairs' input gradients and
//! its share of the negatives' gradients from data no thread writes; the shares are then added
//! in chunk order, and the updates split by row id into two pieces, each moving its own rows
//! with their contributions in pair order, so the result does not depend on the number of
//! threads. (Different instruction sets round differently: fused multiply-adds.)

use std::marker::PhantomData;
use std::sync::Mutex;

use rayon::prelude::*;

use super::lanes::{self, axpy, combine, dot_group, dots, prefetch, weighted_sum, Lanes};
use super::sequential::{self, SequentialBuffers};
use crate::fast_math::FastMath;
use crate::simd::{InstructionSet, Kind};
use crate::spinning_team::Team;

/// Which sampled loss a skip-gram step trains with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipGramLoss {
    /// TensorFlow's `nce_loss` (accidental hits kept, as its default).
    Nce,
    /// TensorFlow's `sampled_softmax_loss` (accidental hits removed).
    SampledSoftmax,
    /// word2vec's negative sampling: `nce_loss` with every expected count 1 (`ln Q = 0`) and
    /// accidental hits removed (word2vec skips a negative equal to the context).
    Neg,
}

impl SkipGramLoss {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "nce" => Some(SkipGramLoss::Nce),
            "sampled_softmax" => Some(SkipGramLoss::SampledSoftmax),
            "neg" => Some(SkipGramLoss::Neg),
            _ => None,
        }
    }

    pub fn removes_accidental_hits(self) -> bool {
        !matches!(self, SkipGramLoss::Nce)
    }

    /// Whether the logits subtract `ln Q` (not for `Neg`, whose expected counts are 1).
    pub fn uses_expected_counts(self) -> bool {
        !matches!(self, SkipGramLoss::Neg)
    }
}

/// The three parameter tables of a skip-gram model, row-major `[vocabulary, dim]` (biases
/// `[vocabulary]`).
pub struct Embeddings<'a> {
    pub input: &'a mut [f32],
    pub output: &'a mut [f32],
    pub biases: &'a mut [f32],
    pub dim: usize,
}

impl Embeddings<'_> {
    pub fn vocabulary(&self) -> usize {
        self.biases.len()
    }
}

/// One batch: pairs and the negatives they share, with `ln` of the expected counts (ignored
/// by `Neg`). Every id must be below the vocabulary size (checked by `SkipGramStep::run`).
///
/// `centers[i]` is pair `i`'s input row and `contexts[i]` its positive output row (the trainer
/// puts a window's center on either side, see `trainer.rs`).
pub struct PairBatch<'a> {
    pub centers: &'a [u32],
    pub contexts: &'a [u32],
    pub context_log_q: &'a [f32],
    pub negatives: &'a [u32],
    pub negative_log_q: &'a [f32],
    /// Empty: every pair shares all of `negatives`. Otherwise the pairs form groups, group `g`
    /// the pairs before `group_ends[g]` and from `group_ends[g - 1]` on (increasing, the last
    /// equal to the number of pairs), and group `g` shares its own `k` negatives,
    /// `negatives[g k .. (g + 1) k]`, with `k = negatives.len() / group_ends.len()`.
    pub group_ends: &'a [u32],
}

impl PairBatch<'_> {
    /// Negatives per group (all of them when one group shares them).
    fn negatives_per_group(&self) -> usize {
        self.negatives.len() / self.group_ends.len().max(1)
    }

    /// Whether every pair shares all the negatives.
    fn shared(&self) -> bool {
        self.group_ends.is_empty()
    }
}

/// How a batch's gradients become parameter updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateRule {
    /// Plain SGD on the batch's summed loss: every row moves by `−rate · G_r`, `G_r` the sum of
    /// the gradients of every pair whose loss depends on it (TensorFlow's SGD step).
    Sum,
    /// Each row moves by `−min(rate, NEWTON_STEPS / H_r) · G_r`, where `H_r` bounds the
    /// curvature of the batch's loss along the row (`Σ σ'·(|x|² + 1)` with `σ' <= 1/4`, over
    /// the pairs that touch it): plain SGD for a row few pairs touch, and at most
    /// `NEWTON_STEPS` steps of the curvature bound for a row many pairs touch (a shared
    /// negative, a frequent word), however many pairs the batch holds.
    Bounded,
    /// word2vec's order: the pairs one after another, each pair's SGD step applied before the
    /// next pair's logits (`sequential.rs`). A row many pairs touch sees each pair's step in
    /// turn, so its logits saturate instead of its gradients adding up. One thread.
    Sequential,
}

/// How many Newton steps of its curvature bound a row may move per batch (see
/// `UpdateRule::Bounded`). Measured on real corpora: 1 stalls learning (the bound `σ' = 1/4`
/// is far above the typical curvature), 16 trains as well as plain SGD on small batches.
pub const NEWTON_STEPS: f32 = 16.0;

/// Pairs per piece of parallel work (fixed, so results do not depend on the thread count).
const PAIRS_PER_CHUNK: usize = 64;

/// Reusable buffers of the step.
#[derive(Default)]
pub struct SkipGramStep {
    /// Leaves the output biases as they are (word2vec's model has none: with zeros, `Neg` is
    /// exactly its negative sampling). The logits still add them.
    fixed_biases: bool,
    /// `∂loss/∂logit`, `[pairs, 1 + negatives per group]`.
    dlogits: Vec<f32>,
    /// Per pair, its group of negatives (all 0 when they are shared).
    pair_group: Vec<u32>,
    /// The chunks of pairs of the current batch.
    chunks: Vec<Chunk>,
    /// `∂loss/∂x_i`, `[pairs, dim]`.
    input_gradient: Vec<f32>,
    /// Shared negatives: per chunk of pairs, its part of `∂loss/∂w_{n_j}`,
    /// `[chunks, negatives, dim]`; a group's: each negative's whole gradient, `[negatives, dim]`.
    negative_partials: Vec<f32>,
    /// As `negative_partials`, for `∂loss/∂b_{n_j}`.
    negative_bias_partials: Vec<f32>,
    chunk_losses: Vec<f64>,
    /// Per pair, `|x_i|²` and `|w_{ctx_i}|²` (for `UpdateRule::Bounded`).
    center_norms: Vec<f32>,
    output_norms: Vec<f32>,
    /// Per negative, `|w_{n_j}|²`.
    negative_norms: Vec<f32>,
    /// The factor of each update: per pair for its context row and its center row, per
    /// negative for its row (all 1 for `UpdateRule::Sum`).
    context_scale: Vec<f32>,
    center_scale: Vec<f32>,
    negative_scale: Vec<f32>,
    /// Per vocabulary row, the curvature bound of the pairs touching it (zero between steps).
    output_weight: Vec<f32>,
    input_weight: Vec<f32>,
    /// On a team, per vocabulary row, the update piece that writes it (`UNOWNED` between
    /// steps).
    output_owner: Vec<u16>,
    input_owner: Vec<u16>,
    /// `UpdateRule::Sequential`'s buffers.
    sequential: SequentialBuffers,
}

/// Where a step's parallel loops run (the results are the same bits on all of them).
#[derive(Clone, Copy)]
pub enum Workers<'a> {
    /// One piece after another on the calling thread.
    Serial,
    /// On rustnce's thread pool.
    Pool,
    /// On a team (`spinning_team`): member `m` computes the `m`-th share of the chunks of
    /// pairs and then updates the rows its share touched first, so most rows are written by
    /// the core that read them.
    Team(&'a Team),
}

impl Workers<'_> {
    /// The pool when `parallel`, else the calling thread.
    pub fn pool_if(parallel: bool) -> Self {
        if parallel {
            Workers::Pool
        } else {
            Workers::Serial
        }
    }

    /// Runs `run` on every item; on a team, member `m` takes the `m`-th share of the items.
    pub(super) fn for_each<T: Send>(self, items: Vec<T>, run: impl Fn(T) + Sync + Send) {
        match self {
            Workers::Serial => items.into_iter().for_each(run),
            Workers::Pool => items.into_par_iter().for_each(run),
            Workers::Team(team) => {
                let count = items.len();
                let members = team.members();
                let slots: Vec<Mutex<Option<T>>> = items
                    .into_iter()
                    .map(|item| Mutex::new(Some(item)))
                    .collect();
                team.run(|member| {
                    for slot in &slots[share(count, members, member)] {
                        let item = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                        if let Some(item) = item {
                            run(item);
                        }
                    }
                });
            }
        }
    }

    /// How many update pieces (each owning a set of rows) the updates split into.
    fn pieces(self) -> usize {
        match self {
            Workers::Team(team) => team.members(),
            Workers::Serial | Workers::Pool => UPDATE_PIECES,
        }
    }

    /// Runs `piece(p)` for every update piece; on a team, piece `m` on member `m`.
    fn for_each_piece(self, piece: impl Fn(usize) + Sync + Send) {
        match self {
            Workers::Team(team) => team.run(piece),
            _ => self.for_each((0..self.pieces()).collect(), piece),
        }
    }
}

/// Member `member`'s share of `count` items among `members`: a contiguous range.
fn share(count: usize, members: usize, member: usize) -> std::ops::Range<usize> {
    count * member / members..count * (member + 1) / members
}

impl SkipGramStep {
    /// A step whose updates leave the output biases alone if `fixed_biases`.
    pub fn with_fixed_biases(fixed_biases: bool) -> Self {
        SkipGramStep {
            fixed_biases,
            ..SkipGramStep::default()
        }
    }

    /// Applies one SGD step with learning rate `rate`; returns the summed loss of the batch.
    /// Panics if an id is out of range or the lengths disagree (callers check).
    pub fn run(
        &mut self,
        embeddings: &mut Embeddings<'_>,
        batch: &PairBatch<'_>,
        loss: SkipGramLoss,
        rate: f32,
        parallel: bool,
    ) -> f64 {
        let workers = Workers::pool_if(parallel);
        self.run_on_workers(embeddings, batch, loss, rate, UpdateRule::Sum, workers)
    }

    /// As [`SkipGramStep::run`], with the updates made by `rule`, on `workers`.
    pub fn run_on_workers(
        &mut self,
        embeddings: &mut Embeddings<'_>,
        batch: &PairBatch<'_>,
        loss: SkipGramLoss,
        rate: f32,
        rule: UpdateRule,
        workers: Workers<'_>,
    ) -> f64 {
        self.run_on(
            InstructionSet::detect(),
            embeddings,
            batch,
            loss,
            rate,
            rule,
            workers,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_on(
        &mut self,
        isa: InstructionSet,
        embeddings: &mut Embeddings<'_>,
        batch: &PairBatch<'_>,
        loss: SkipGramLoss,
        rate: f32,
        rule: UpdateRule,
        workers: Workers<'_>,
    ) -> f64 {
        let pairs = batch.centers.len();
        let negatives = batch.negatives.len();
        let dim = embeddings.dim;
        let vocabulary = embeddings.vocabulary();
        assert_eq!(batch.contexts.len(), pairs);
        assert_eq!(batch.context_log_q.len(), pairs);
        assert_eq!(batch.negative_log_q.len(), negatives);
        assert_eq!(embeddings.input.len(), vocabulary * dim);
        assert_eq!(embeddings.output.len(), vocabulary * dim);
        let in_range = |&id: &u32| (id as usize) < vocabulary;
        assert!(batch.centers.iter().all(in_range));
        assert!(batch.contexts.iter().all(in_range));
        assert!(batch.negatives.iter().all(in_range));
        let groups = batch.group_ends.len().max(1);
        assert_eq!(negatives % groups, 0);
        self.pair_group.clear();
        for (group, &end) in batch.group_ends.iter().enumerate() {
            assert!(end as usize > self.pair_group.len() && end as usize <= pairs);
            self.pair_group.resize(end as usize, group as u32);
        }
        self.pair_group.resize(pairs, 0);
        assert!(batch.shared() || batch.group_ends[groups - 1] as usize == pairs);
        if pairs == 0 {
            return 0.0;
        }
        if rule == UpdateRule::Sequential {
            return sequential::run(
                isa,
                embeddings,
                batch,
                &self.pair_group,
                loss,
                rate,
                self.fixed_biases,
                &mut self.sequential,
            );
        }
        let width = batch.negatives_per_group() + 1;
        // The chunks of pairs: fixed runs of `PAIRS_PER_CHUNK` when the negatives are shared
        // (each chunk then adds its share of their gradients), whole groups of about that many
        // pairs otherwise (each chunk then sums its groups' negatives' gradients whole).
        self.chunks.clear();
        if batch.shared() {
            for start in (0..pairs).step_by(PAIRS_PER_CHUNK) {
                let chunk = self.chunks.len();
                self.chunks.push(Chunk {
                    pairs: start..(start + PAIRS_PER_CHUNK).min(pairs),
                    slots: chunk * negatives..(chunk + 1) * negatives,
                });
            }
        } else {
            let per_group = batch.negatives_per_group();
            let (mut first_pair, mut first_group) = (0, 0);
            for (group, &end) in batch.group_ends.iter().enumerate() {
                let end = end as usize;
                if end - first_pair >= PAIRS_PER_CHUNK || end == pairs {
                    self.chunks.push(Chunk {
                        pairs: first_pair..end,
                        slots: first_group * per_group..(group + 1) * per_group,
                    });
                    (first_pair, first_group) = (end, group + 1);
                }
            }
        }
        let slots = self.chunks.last().map_or(0, |chunk| chunk.slots.end);
        resize(&mut self.dlogits, pairs * width);
        resize(&mut self.input_gradient, pairs * dim);
        resize(&mut self.negative_partials, slots * dim);
        resize(&mut self.negative_bias_partials, slots);
        self.chunk_losses.clear();
        self.chunk_losses.resize(self.chunks.len(), 0.0);
        let norms = rule == UpdateRule::Bounded;
        resize(&mut self.center_norms, pairs);
        resize(&mut self.output_norms, pairs);

        // 1. Per chunk of pairs, in parallel (reads only): logits, their gradients, each pair's
        //    input gradient, and the chunk's share of the negatives' gradients.
        let tables = Tables {
            input: embeddings.input,
            output: embeddings.output,
            biases: embeddings.biases,
            dim,
        };
        let mut work = Vec::with_capacity(self.chunks.len());
        {
            let (mut dlogits, mut gradient) = (&mut self.dlogits[..], &mut self.input_gradient[..]);
            let (mut partials, mut bias_partials) = (
                &mut self.negative_partials[..],
                &mut self.negative_bias_partials[..],
            );
            let (mut center_norms, mut output_norms) =
                (&mut self.center_norms[..], &mut self.output_norms[..]);
            // A group's negatives' norms come with their chunk (shared ones: in `scales`).
            let group_norms = if batch.shared() || !norms {
                0
            } else {
                negatives
            };
            resize(&mut self.negative_norms, group_norms);
            let mut negative_norms = &mut self.negative_norms[..];
            for (chunk, loss_out) in self.chunks.iter().zip(self.chunk_losses.iter_mut()) {
                let (count, slot_count) = (chunk.pairs.len(), chunk.slots.len());
                let own_norms = if group_norms > 0 { slot_count } else { 0 };
                let outputs = ChunkOutputs {
                    dlogits: take(&mut dlogits, count * width),
                    gradient: take(&mut gradient, count * dim),
                    partials: take(&mut partials, slot_count * dim),
                    bias_partials: take(&mut bias_partials, slot_count),
                    norms: (
                        take(&mut center_norms, count),
                        take(&mut output_norms, count),
                    ),
                    negative_norms: take(&mut negative_norms, own_norms),
                };
                work.push((chunk, outputs, loss_out));
            }
        }
        let pair_group = &self.pair_group[..];
        workers.for_each(work, |(chunk, mut outputs, loss_out)| {
            if !norms {
                outputs.norms = (&mut [], &mut []);
            }
            *loss_out = chunk_dispatch(isa, &tables, batch, pair_group, loss, chunk, outputs);
        });

        // 2. Each update's factor (serially: a few operations per pair).
        self.scales(isa, &tables_of(embeddings), batch, loss, rate, rule);

        // 3. The updates. Each row has one owner piece (`Owners`: by id parity, or on a team
        //    the member that read it first), which moves it by its contributions in the
        //    serial order, so pieces never touch the same row and the result is the serial
        //    one: first the output side (context rows pair by pair from the input rows before
        //    the step, then the negatives' rows), then the input rows.
        if let Workers::Team(team) = workers {
            self.assign_owners(batch, team.members(), vocabulary);
        }
        let shared = SharedTables::new(embeddings, self.fixed_biases);
        let step = &*self;
        let owners = match workers {
            Workers::Team(_) => Owners::Map {
                output: &self.output_owner,
                input: &self.input_owner,
            },
            Workers::Serial | Workers::Pool => Owners::Parity,
        };
        for side in [Side::Output, Side::Input] {
            workers.for_each_piece(|piece| {
                update_dispatch(isa, &shared, batch, step, owners, width, rate, side, piece)
            });
        }
        if let Workers::Team(_) = workers {
            for &id in batch.contexts.iter().chain(batch.negatives) {
                self.output_owner[id as usize] = UNOWNED;
            }
            for &id in batch.centers {
                self.input_owner[id as usize] = UNOWNED;
            }
        }
        self.chunk_losses.iter().sum()
    }

    /// On a team: each row's update piece, the member whose share of the chunks reads it
    /// first (in chunk order), so that most rows are written where they were read.
    fn assign_owners(&mut self, batch: &PairBatch<'_>, members: usize, vocabulary: usize) {
        if self.output_owner.len() != vocabulary {
            self.output_owner = vec![UNOWNED; vocabulary];
            self.input_owner = vec![UNOWNED; vocabulary];
        }
        let claim = |owners: &mut [u16], id: u32, member: u16| {
            let owner = &mut owners[id as usize];
            if *owner == UNOWNED {
                *owner = member;
            }
        };
        let count = self.chunks.len();
        for member in 0..members {
            for chunk in &self.chunks[share(count, members, member)] {
                let member = member as u16;
                for i in chunk.pairs.clone() {
                    claim(&mut self.input_owner, batch.centers[i], member);
                    claim(&mut self.output_owner, batch.contexts[i], member);
                }
                if !batch.shared() {
                    for &negative in &batch.negatives[chunk.slots.clone()] {
                        claim(&mut self.output_owner, negative, member);
                    }
                }
            }
        }
        // Shared negatives: whoever has not claimed them yet, member 0.
        for &negative in batch.negatives {
            claim(&mut self.output_owner, negative, 0);
        }
    }
}

/// No update piece owns the row yet (between steps, every row).
const UNOWNED: u16 = u16::MAX;

/// Which update piece writes a row.
#[derive(Clone, Copy)]
enum Owners<'a> {
    /// Piece `id % UPDATE_PIECES`.
    Parity,
    /// As the maps say (per table; see `SkipGramStep::assign_owners`).
    Map { output: &'a [u16], input: &'a [u16] },
}

impl Owners<'_> {
    /// Whether piece `piece` writes output row (and bias) `id`.
    #[inline(always)]
    fn output(self, piece: usize, id: u32) -> bool {
        match self {
            Owners::Parity => owns(piece, id),
            Owners::Map { output, .. } => output[id as usize] as usize == piece,
        }
    }

    /// Whether piece `piece` writes input row `id`.
    #[inline(always)]
    fn input(self, piece: usize, id: u32) -> bool {
        match self {
            Owners::Parity => owns(piece, id),
            Owners::Map { input, .. } => input[id as usize] as usize == piece,
        }
    }
}

/// A chunk of pairs and the slots of `negative_partials` it writes.
struct Chunk {
    pairs: std::ops::Range<usize>,
    slots: std::ops::Range<usize>,
}

/// The first `len` elements of `*rest`, leaving the others in it.
fn take<'a>(rest: &mut &'a mut [f32], len: usize) -> &'a mut [f32] {
    let (head, tail) = std::mem::take(rest).split_at_mut(len);
    *rest = tail;
    head
}

fn tables_of<'a>(embeddings: &'a Embeddings<'_>) -> Tables<'a> {
    Tables {
        input: embeddings.input,
        output: embeddings.output,
        biases: embeddings.biases,
        dim: embeddings.dim,
    }
}

impl SkipGramStep {
    /// Fills `context_scale`, `center_scale` and `negative_scale` for `rule`.
    fn scales(
        &mut self,
        isa: InstructionSet,
        tables: &Tables<'_>,
        batch: &PairBatch<'_>,
        loss: SkipGramLoss,
        rate: f32,
        rule: UpdateRule,
    ) {
        let pairs = batch.centers.len();
        let negatives = batch.negatives.len();
        for (buffer, len) in [
            (&mut self.context_scale, pairs),
            (&mut self.center_scale, pairs),
            (&mut self.negative_scale, negatives),
        ] {
            buffer.clear();
            buffer.resize(len, 1.0);
        }
        if rule == UpdateRule::Sum {
            return;
        }
        let vocabulary = tables.biases.len();
        if self.output_weight.len() != vocabulary {
            self.output_weight = vec![0.0; vocabulary];
            self.input_weight = vec![0.0; vocabulary];
        }
        // The curvature bounds of the losses along one row: a logistic or softmax logit's
        // second derivative is at most 1/4; an input row of a softmax sees the Hessian
        // `diag(p) − p pᵀ`, whose largest eigenvalue is at most 1/2.
        let (output_bound, input_bound) = match loss {
            SkipGramLoss::SampledSoftmax => (0.25f32, 0.5f32),
            SkipGramLoss::Nce | SkipGramLoss::Neg => (0.25, 0.25),
        };
        if batch.shared() {
            resize(&mut self.negative_norms, negatives);
            norms_dispatch(isa, tables, batch.negatives, &mut self.negative_norms);
        }
        let remove_hits = loss.removes_accidental_hits();
        if batch.shared() {
            let all_negative_norms: f32 = self.negative_norms.iter().sum();
            // Per negative, the summed bound of the pairs that leave it out (accidental hits).
            let mut removed = vec![0.0f32; negatives];
            let mut total = 0.0f32;
            for i in 0..pairs {
                let (center, context) = (batch.centers[i], batch.contexts[i]);
                // Along an output row: the pair's input row and the bias's 1; along an input
                // row: every output row the pair's logits use.
                let output_side = output_bound * (self.center_norms[i] + 1.0);
                let mut input_side = input_bound * (self.output_norms[i] + all_negative_norms);
                for (j, &negative) in batch.negatives.iter().enumerate() {
                    if remove_hits && negative == context {
                        removed[j] += output_side;
                        input_side -= input_bound * self.negative_norms[j];
                    }
                }
                total += output_side;
                self.output_weight[context as usize] += output_side;
                self.input_weight[center as usize] += input_side;
            }
            for (j, &negative) in batch.negatives.iter().enumerate() {
                self.output_weight[negative as usize] += total - removed[j];
            }
        } else {
            let per_group = batch.negatives_per_group();
            for i in 0..pairs {
                let (center, context) = (batch.centers[i], batch.contexts[i]);
                let output_side = output_bound * (self.center_norms[i] + 1.0);
                let mut input_side = input_bound * self.output_norms[i];
                let group = self.pair_group[i] as usize;
                for j in group * per_group..(group + 1) * per_group {
                    let negative = batch.negatives[j];
                    if !(remove_hits && negative == context) {
                        input_side += input_bound * self.negative_norms[j];
                        self.output_weight[negative as usize] += output_side;
                    }
                }
                self.output_weight[context as usize] += output_side;
                self.input_weight[center as usize] += input_side;
            }
        }
        // min(rate, NEWTON_STEPS / H) / rate
        let factor = |bound: f32| (NEWTON_STEPS / (rate * bound)).min(1.0);
        for i in 0..pairs {
            self.context_scale[i] = factor(self.output_weight[batch.contexts[i] as usize]);
            self.center_scale[i] = factor(self.input_weight[batch.centers[i] as usize]);
        }
        for (j, &negative) in batch.negatives.iter().enumerate() {
            self.negative_scale[j] = factor(self.output_weight[negative as usize]);
        }
        for &id in batch.contexts.iter().chain(batch.negatives) {
            self.output_weight[id as usize] = 0.0;
        }
        for &id in batch.centers {
            self.input_weight[id as usize] = 0.0;
        }
    }
}

/// Where one chunk of pairs writes.
struct ChunkOutputs<'a> {
    /// `[pairs, 1 + negatives]`.
    dlogits: &'a mut [f32],
    /// `[pairs, dim]`.
    gradient: &'a mut [f32],
    /// The chunk's `Σ_i ∂l_ij · x_i`, `[negatives, dim]`.
    partials: &'a mut [f32],
    /// The chunk's `Σ_i ∂l_ij`, `[negatives]`.
    bias_partials: &'a mut [f32],
    /// Per pair `|x_i|²` and `|w_{ctx_i}|²` (empty when the update rule does not need them).
    norms: (&'a mut [f32], &'a mut [f32]),
    /// Per slot of the chunk's groups, `|w_n|²` (empty for shared negatives, or when the
    /// update rule does not need them).
    negative_norms: &'a mut [f32],
}

/// Sizes a scratch buffer; its old contents stay (every entry is written before it is read).
fn resize(buffer: &mut Vec<f32>, len: usize) {
    buffer.resize(len, 0.0);
}

/// Read-only views of the parameters during the first two phases.
struct Tables<'a> {
    input: &'a [f32],
    output: &'a [f32],
    biases: &'a [f32],
    dim: usize,
}

impl Tables<'_> {
    #[inline(always)]
    fn input_row(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        &self.input[start..start + self.dim]
    }

    #[inline(always)]
    fn output_row(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        &self.output[start..start + self.dim]
    }
}

dispatched!(chunk_dispatch => chunk_work, (tables: &Tables<'_>, batch: &PairBatch<'_>, pair_group: &[u32], loss: SkipGramLoss, chunk: &Chunk, outputs: ChunkOutputs<'_>) -> f64);

dispatched!(norms_dispatch => squared_norms, (tables: &Tables<'_>, ids: &[u32], norms: &mut [f32]) -> ());

/// `|w_id|²` of each output row `ids` names.
#[inline(always)]
///
/// # Safety
/// The processor supports `L`'s instruction set (see `dispatched!`).
unsafe fn squared_norms<L: Lanes>(tables: &Tables<'_>, ids: &[u32], norms: &mut [f32]) {
    for (norm, &id) in norms.iter_mut().zip(ids) {
        let w = tables.output_row(id);
        *norm = dot_group::<L, 1>(w, [w])[0];
    }
}

/// Everything one chunk of pairs computes (see `ChunkOutputs`); returns its summed loss.
#[inline(always)]
///
/// # Safety
/// The processor supports `L`'s instruction set (see `dispatched!`).
unsafe fn chunk_work<L: Lanes>(
    tables: &Tables<'_>,
    batch: &PairBatch<'_>,
    pair_group: &[u32],
    loss: SkipGramLoss,
    chunk: &Chunk,
    outputs: ChunkOutputs<'_>,
) -> f64 {
    let ChunkOutputs {
        dlogits,
        gradient,
        partials,
        bias_partials,
        norms: (center_norms, context_norms),
        negative_norms,
    } = outputs;
    let pairs = chunk.pairs.clone();
    let total = pair_chunk::<L>(
        tables,
        batch,
        pair_group,
        loss,
        pairs.clone(),
        dlogits,
        gradient,
    );
    if !center_norms.is_empty() {
        // A window's pairs repeat one id on one side (the center): its norm is computed once.
        for (local, i) in pairs.clone().enumerate() {
            let repeats = |ids: &[u32]| local > 0 && ids[i] == ids[i - 1];
            center_norms[local] = if repeats(batch.centers) {
                center_norms[local - 1]
            } else {
                let x = tables.input_row(batch.centers[i]);
                dot_group::<L, 1>(x, [x])[0]
            };
            context_norms[local] = if repeats(batch.contexts) {
                context_norms[local - 1]
            } else {
                let w = tables.output_row(batch.contexts[i]);
                dot_group::<L, 1>(w, [w])[0]
            };
        }
    }
    if !negative_norms.is_empty() {
        squared_norms::<L>(
            tables,
            &batch.negatives[chunk.slots.clone()],
            negative_norms,
        );
    }
    let per_group = batch.negatives_per_group();
    let width = per_group + 1;
    let dim = tables.dim;
    let first = pairs.start;
    let column = |i: usize, j: usize| dlogits[(i - first) * width + 1 + j];
    let xs = |i: usize| tables.input_row(batch.centers[i]);
    // Each slot's `Σ_i ∂l_ij · x_i` and `Σ_i ∂l_ij` over the pairs `i` of this chunk that use
    // it: every pair for a shared negative, the group's pairs for a group's.
    let slots = partials.chunks_exact_mut(dim).zip(bias_partials.iter_mut());
    for (k, (row, bias)) in slots.enumerate() {
        let (j, users) = if batch.shared() {
            (k, pairs.clone())
        } else {
            let group = chunk.slots.start / per_group + k / per_group;
            let start = if group == 0 {
                0
            } else {
                batch.group_ends[group - 1] as usize
            };
            (k % per_group, start..batch.group_ends[group] as usize)
        };
        *bias = users.clone().map(|i| column(i, j)).sum();
        weighted_sum::<L>(
            row,
            users.len(),
            |i| xs(users.start + i),
            |i| column(users.start + i, j),
        );
    }
    total
}

/// Logits, loss and `∂loss/∂logit` of the pairs `pairs`, and `∂loss/∂x_i = Σ_j ∂l_ij · w_j`.
#[inline(always)]
///
/// # Safety
/// The processor supports `L`'s instruction set (see `dispatched!`).
unsafe fn pair_chunk<'a, L: Lanes>(
    tables: &'a Tables<'_>,
    batch: &PairBatch<'_>,
    pair_group: &[u32],
    loss: SkipGramLoss,
    pairs: std::ops::Range<usize>,
    dlogits: &mut [f32],
    gradient: &mut [f32],
) -> f64 {
    let per_group = batch.negatives_per_group();
    let width = per_group + 1;
    let dim = tables.dim;
    let subtract_log_q = loss.uses_expected_counts();
    let remove_hits = loss.removes_accidental_hits();
    // Row 0 is the pair's context, rows 1.. its group's negatives.
    let mut rows: Vec<&[f32]> = vec![&[]; width];
    let group_rows = |rows: &mut [&'a [f32]], group: usize| {
        let ids = &batch.negatives[group * per_group..(group + 1) * per_group];
        for (row, &id) in rows[1..].iter_mut().zip(ids) {
            *row = tables.output_row(id);
        }
    };
    let mut group = usize::MAX;
    let count = pairs.len();
    const AHEAD: usize = 2;
    for (local, i) in pairs.clone().enumerate() {
        if i + AHEAD < pairs.end {
            prefetch(tables.input_row(batch.centers[i + AHEAD]));
            prefetch(tables.output_row(batch.contexts[i + AHEAD]));
        }
        if pair_group[i] as usize != group {
            group = pair_group[i] as usize;
            group_rows(&mut rows, group);
            // The next group's negatives, while this group's pairs compute.
            let next = batch
                .negatives
                .get((group + 1) * per_group..(group + 2) * per_group);
            for &id in next.unwrap_or(&[]) {
                prefetch(tables.output_row(id));
            }
        }
        let negatives = &batch.negatives[group * per_group..(group + 1) * per_group];
        let negative_log_q = &batch.negative_log_q[group * per_group..(group + 1) * per_group];
        let x = tables.input_row(batch.centers[i]);
        let context = batch.contexts[i];
        rows[0] = tables.output_row(context);
        let d = &mut dlogits[local * width..(local + 1) * width];
        dots::<L>(x, &rows, d);
        d[0] += tables.biases[context as usize];
        if subtract_log_q {
            d[0] -= batch.context_log_q[i];
        }
        for (j, &negative) in negatives.iter().enumerate() {
            // A removed accidental hit is marked with -inf: it costs and moves nothing.
            d[j + 1] = if remove_hits && negative == context {
                f32::NEG_INFINITY
            } else if subtract_log_q {
                d[j + 1] + tables.biases[negative as usize] - negative_log_q[j]
            } else {
                d[j + 1] + tables.biases[negative as usize]
            };
        }
    }
    let dlogits = &mut dlogits[..count * width];
    let total = match loss {
        SkipGramLoss::Nce | SkipGramLoss::Neg => logistic_gradients(dlogits, width),
        SkipGramLoss::SampledSoftmax => dlogits
            .chunks_exact_mut(width)
            .map(|d| softmax_gradients(d) as f64)
            .sum(),
    };
    group = usize::MAX;
    for (local, i) in pairs.enumerate() {
        if pair_group[i] as usize != group {
            group = pair_group[i] as usize;
            group_rows(&mut rows, group);
        }
        rows[0] = tables.output_row(batch.contexts[i]);
        let d = &dlogits[local * width..(local + 1) * width];
        combine::<L>(&mut gradient[local * dim..(local + 1) * dim], d, &rows);
    }
    total
}

/// Sigmoid cross-entropy over rows of `width` logits, label 1 in each row's first column and
/// 0 elsewhere: replaces the logits by their gradients and returns the summed loss. `-inf` (a
/// removed hit) costs and moves nothing.
#[inline(always)]
pub(super) fn logistic_gradients(d: &mut [f32], width: usize) -> f64 {
    // Every entry as a label-0 entry first (one branch-free, vectorisable loop):
    // softplus(l) = max(l, 0) + log1p(exp(-|l|)), sigmoid(l) from the same exp.
    let mut label_logits = 0.0f64;
    for row in d.chunks_exact(width) {
        label_logits += row[0] as f64;
    }
    let mut total = 0.0f64;
    for block in d.chunks_mut(64) {
        let mut softplus = [0.0f32; 64];
        for (value, loss) in block.iter_mut().zip(softplus.iter_mut()) {
            let logit = *value;
            let e = f32::exp_nonpositive(-logit.abs());
            *loss = logit.max(0.0) + f32::ln_1p_unit(e);
            let inverse = 1.0 / (1.0 + e);
            *value = if logit >= 0.0 { inverse } else { e * inverse };
        }
        total += softplus.iter().sum::<f32>() as f64;
    }
    // The label entries: softplus(-l) = softplus(l) - l and ∂/∂l = sigmoid(l) - 1.
    for row in d.chunks_exact_mut(width) {
        row[0] -= 1.0;
    }
    total - label_logits
}

/// Softmax cross-entropy with the label at `d[0]`: replaces the logits by their gradients and
/// returns the loss `logsumexp(l) − l_0`. `-inf` entries get probability 0.
#[inline(always)]
pub(super) fn softmax_gradients(d: &mut [f32]) -> f32 {
    let max = d.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let label = d[0] - max;
    let mut sum = 0.0f32;
    for value in d.iter_mut() {
        *value = f32::exp_nonpositive(*value - max);
        sum += *value;
    }
    let loss = sum.ln() - label;
    let inverse = 1.0 / sum;
    for value in d.iter_mut() {
        *value *= inverse;
    }
    d[0] -= 1.0;
    loss
}

/// How many pieces the updates split into (fixed, so results do not depend on the threads).
/// Two: more pieces than threads made the two-core machine wait on each other (measured).
const UPDATE_PIECES: usize = 2;

/// Which table an update pass writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Output rows and biases (reading input rows).
    Output,
    /// Input rows.
    Input,
}

/// The parameter tables as raw rows, shared by the update pieces. Each piece writes only rows
/// it owns (see `owns`), and a pass reads only the table no pass writes at that time.
#[derive(Clone, Copy)]
struct SharedTables<'a> {
    input: *mut f32,
    output: *mut f32,
    biases: *mut f32,
    /// Whether the updates leave the biases alone (`SkipGramStep::fixed_biases`).
    fixed_biases: bool,
    dim: usize,
    vocabulary: usize,
    /// The tables stay mutably borrowed for as long as the raw pointers live.
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: the pointers come from `&mut` slices borrowed for `'a`, and the pieces write disjoint
// rows (each row has one owner piece, see `Owners`).
unsafe impl Send for SharedTables<'_> {}
// SAFETY: as above.
unsafe impl Sync for SharedTables<'_> {}

impl<'a> SharedTables<'a> {
    fn new(embeddings: &'a mut Embeddings<'_>, fixed_biases: bool) -> Self {
        SharedTables {
            input: embeddings.input.as_mut_ptr(),
            output: embeddings.output.as_mut_ptr(),
            biases: embeddings.biases.as_mut_ptr(),
            fixed_biases,
            dim: embeddings.dim,
            vocabulary: embeddings.vocabulary(),
            _borrow: PhantomData,
        }
    }

    /// # Safety
    /// `id < vocabulary`, and no one writes input rows while this lives.
    #[inline(always)]
    unsafe fn input_row(&self, id: u32) -> &[f32] {
        debug_assert!((id as usize) < self.vocabulary);
        std::slice::from_raw_parts(self.input.add(id as usize * self.dim), self.dim)
    }

    /// # Safety
    /// `id < vocabulary`, and only the caller's piece touches this row.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn input_row_mut(&self, id: u32) -> &mut [f32] {
        debug_assert!((id as usize) < self.vocabulary);
        std::slice::from_raw_parts_mut(self.input.add(id as usize * self.dim), self.dim)
    }

    /// # Safety
    /// As `input_row_mut`, for the output table.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn output_row_mut(&self, id: u32) -> &mut [f32] {
        debug_assert!((id as usize) < self.vocabulary);
        std::slice::from_raw_parts_mut(self.output.add(id as usize * self.dim), self.dim)
    }

    /// # Safety
    /// As `input_row_mut`, for a bias.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn bias_mut(&self, id: u32) -> &mut f32 {
        debug_assert!((id as usize) < self.vocabulary);
        &mut *self.biases.add(id as usize)
    }
}

/// Whether update piece `piece` owns row `id`.
#[inline(always)]
fn owns(piece: usize, id: u32) -> bool {
    id as usize % UPDATE_PIECES == piece
}

dispatched!(update_dispatch => update, (tables: &SharedTables<'_>, batch: &PairBatch<'_>, step: &SkipGramStep, owners: Owners<'_>, width: usize, rate: f32, side: Side, piece: usize) -> ());

/// One piece of one side of the updates (see `SkipGramStep::run_on`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
///
/// # Safety
/// The processor supports `L`'s instruction set (see `dispatched!`).
unsafe fn update<L: Lanes>(
    tables: &SharedTables<'_>,
    batch: &PairBatch<'_>,
    step: &SkipGramStep,
    owners: Owners<'_>,
    width: usize,
    rate: f32,
    side: Side,
    piece: usize,
) {
    let dim = tables.dim;
    // SAFETY (every block below): ids were checked against the vocabulary by `run_on`; the
    // output pass writes only output rows and biases of its piece and reads input rows, which
    // no piece writes during that pass; the input pass writes only input rows of its piece.
    if side == Side::Input {
        for (i, &center) in batch.centers.iter().enumerate() {
            if owners.input(piece, center) {
                let gradient = &step.input_gradient[i * dim..(i + 1) * dim];
                let scaled = -rate * step.center_scale[i];
                axpy::<L>(unsafe { tables.input_row_mut(center) }, scaled, gradient);
            }
        }
        return;
    }
    for (i, (&center, &context)) in batch.centers.iter().zip(batch.contexts).enumerate() {
        if owners.output(piece, context) {
            let d = step.dlogits[i * width];
            let scaled = rate * step.context_scale[i];
            let x = unsafe { tables.input_row(center) };
            axpy::<L>(unsafe { tables.output_row_mut(context) }, -scaled * d, x);
            if !tables.fixed_biases {
                *unsafe { tables.bias_mut(context) } -= scaled * d;
            }
        }
    }
    if !batch.shared() {
        // A group's negatives: each slot's gradient, whole (summed by its chunk).
        for (slot, &negative) in batch.negatives.iter().enumerate() {
            if owners.output(piece, negative) {
                let scaled = rate * step.negative_scale[slot];
                let gradient = &step.negative_partials[slot * dim..(slot + 1) * dim];
                axpy::<L>(
                    unsafe { tables.output_row_mut(negative) },
                    -scaled,
                    gradient,
                );
                if !tables.fixed_biases {
                    *unsafe { tables.bias_mut(negative) } -=
                        scaled * step.negative_bias_partials[slot];
                }
            }
        }
        return;
    }
    // Each negative's gradient: the chunks' partial sums, added in chunk order.
    let negatives = batch.negatives.len();
    let mut gradient = vec![0.0f32; dim];
    for (j, &negative) in batch.negatives.iter().enumerate() {
        if !owners.output(piece, negative) {
            continue;
        }
        gradient.fill(0.0);
        let mut bias = 0.0f32;
        for chunk in 0..step.chunks.len() {
            let at = (chunk * negatives + j) * dim;
            axpy::<L>(&mut gradient, 1.0, &step.negative_partials[at..at + dim]);
            bias += step.negative_bias_partials[chunk * negatives + j];
        }
        let scaled = rate * step.negative_scale[j];
        axpy::<L>(
            unsafe { tables.output_row_mut(negative) },
            -scaled,
            &gradient,
        );
        if !tables.fixed_biases {
            *unsafe { tables.bias_mut(negative) } -= scaled * bias;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spinning_team::with_team;

    struct Problem {
        tables: [Vec<f32>; 3],
        centers: Vec<u32>,
        contexts: Vec<u32>,
        negatives: Vec<u32>,
        context_log_q: Vec<f32>,
        negative_log_q: Vec<f32>,
        /// Empty: the negatives are shared.
        group_ends: Vec<u32>,
        dim: usize,
    }

    fn problem(dim: usize, pairs: usize) -> Problem {
        let vocabulary = 50;
        let value = |k: usize, salt: usize| {
            ((k.wrapping_mul(2_654_435_761).wrapping_add(salt) % 1000) as f32 / 1000.0 - 0.5) * 0.8
        };
        let mut contexts: Vec<u32> = (0..pairs).map(|i| (i * 7 % vocabulary) as u32).collect();
        contexts[0] = 3; // an accidental hit with the first negative
        Problem {
            tables: [
                (0..vocabulary * dim).map(|k| value(k, 1)).collect(),
                (0..vocabulary * dim).map(|k| value(k, 2)).collect(),
                (0..vocabulary).map(|k| value(k, 3)).collect(),
            ],
            centers: (0..pairs).map(|i| (i * 13 % vocabulary) as u32).collect(),
            contexts,
            negatives: vec![3, 8, 21, 34, 40],
            context_log_q: (0..pairs).map(|i| -1.0 - value(i, 4)).collect(),
            negative_log_q: vec![-0.5, -1.5, -2.0, -2.5, -3.0],
            group_ends: Vec::new(),
            dim,
        }
    }

    impl Problem {
        /// Pair `i`'s negatives and their `ln Q`.
        fn negatives_of(&self, i: usize) -> (&[u32], &[f32]) {
            if self.group_ends.is_empty() {
                return (&self.negatives, &self.negative_log_q);
            }
            let group = self
                .group_ends
                .iter()
                .filter(|&&end| end as usize <= i)
                .count();
            let k = self.negatives.len() / self.group_ends.len();
            let slots = group * k..(group + 1) * k;
            (&self.negatives[slots.clone()], &self.negative_log_q[slots])
        }
    }

    /// As `problem`, with the pairs in groups of 1 to 7, each with 3 negatives of its own
    /// (some equal to a pair's context, some repeated within the group or across groups).
    fn grouped_problem(dim: usize, pairs: usize) -> Problem {
        let mut problem = problem(dim, pairs);
        let (mut end, mut group) = (0usize, 0usize);
        problem.negatives.clear();
        problem.negative_log_q.clear();
        while end < pairs {
            end = (end + 1 + group * 5 % 7).min(pairs);
            problem.group_ends.push(end as u32);
            let context = problem.contexts[end - 1];
            let repeated = (group * 11 % 50) as u32;
            let third = if group % 4 == 0 { context } else { repeated };
            for (j, id) in [(group * 17 % 50) as u32, repeated, third]
                .into_iter()
                .enumerate()
            {
                problem.negatives.push(id);
                problem
                    .negative_log_q
                    .push(-1.0 - 0.3 * j as f32 - 0.01 * id as f32);
            }
            group += 1;
        }
        problem
    }

    fn run(
        problem: &Problem,
        isa: InstructionSet,
        loss: SkipGramLoss,
        parallel: bool,
    ) -> (f64, [Vec<f32>; 3]) {
        run_rule(problem, isa, loss, UpdateRule::Sum, 0.1, parallel)
    }

    fn run_rule(
        problem: &Problem,
        isa: InstructionSet,
        loss: SkipGramLoss,
        rule: UpdateRule,
        rate: f32,
        parallel: bool,
    ) -> (f64, [Vec<f32>; 3]) {
        run_on(problem, isa, loss, rule, rate, Workers::pool_if(parallel))
    }

    fn run_on(
        problem: &Problem,
        isa: InstructionSet,
        loss: SkipGramLoss,
        rule: UpdateRule,
        rate: f32,
        workers: Workers<'_>,
    ) -> (f64, [Vec<f32>; 3]) {
        let [mut input, mut output, mut biases] = problem.tables.clone();
        let mut embeddings = Embeddings {
            input: &mut input,
            output: &mut output,
            biases: &mut biases,
            dim: problem.dim,
        };
        let batch = PairBatch {
            centers: &problem.centers,
            contexts: &problem.contexts,
            context_log_q: &problem.context_log_q,
            negatives: &problem.negatives,
            negative_log_q: &problem.negative_log_q,
            group_ends: &problem.group_ends,
        };
        let total =
            SkipGramStep::default().run_on(isa, &mut embeddings, &batch, loss, rate, rule, workers);
        (total, [input, output, biases])
    }

    fn isas() -> Vec<InstructionSet> {
        InstructionSet::supported()
    }

    #[test]
    fn every_instruction_set_computes_the_same_step() {
        let problems = [1, 5, 16, 17, 40, 100]
            .into_iter()
            .flat_map(|dim| [problem(dim, 150), grouped_problem(dim, 150)]);
        for problem in problems {
            let dim = problem.dim;
            for loss in [
                SkipGramLoss::Nce,
                SkipGramLoss::SampledSoftmax,
                SkipGramLoss::Neg,
            ] {
                let (expected_total, expected) =
                    run(&problem, InstructionSet::generic(), loss, false);
                for isa in isas() {
                    let (total, tables) = run(&problem, isa, loss, false);
                    assert!((total - expected_total).abs() <= 1e-5 * expected_total.abs());
                    for (got, want) in tables.iter().zip(&expected) {
                        for (a, b) in got.iter().zip(want) {
                            assert!(
                                (a - b).abs() <= 1e-5,
                                "{isa:?} {loss:?} dim {dim}: {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_parallel_step_is_bit_identical_to_the_serial_one() {
        for problem in [problem(37, 300), grouped_problem(37, 300)] {
            parallel_step_is_bit_identical(&problem);
        }
    }

    fn parallel_step_is_bit_identical(problem: &Problem) {
        for isa in isas() {
            for loss in [
                SkipGramLoss::Nce,
                SkipGramLoss::SampledSoftmax,
                SkipGramLoss::Neg,
            ] {
                for rule in [UpdateRule::Sum, UpdateRule::Bounded] {
                    let serial = run_rule(problem, isa, loss, rule, 0.5, false);
                    for threads in [2, 3] {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .unwrap();
                        let parallel =
                            pool.install(|| run_rule(problem, isa, loss, rule, 0.5, true));
                        assert_eq!(serial.0.to_bits(), parallel.0.to_bits());
                        assert_eq!(serial.1, parallel.1);
                        let teamed = with_team(threads, |team| {
                            run_on(problem, isa, loss, rule, 0.5, Workers::Team(team))
                        });
                        assert_eq!(serial.0.to_bits(), teamed.0.to_bits());
                        assert_eq!(serial.1, teamed.1);
                    }
                }
            }
        }
    }

    #[test]
    fn zero_tables_cost_ln_2_per_logit_and_removed_hits_nothing() {
        let mut problem = problem(8, 10);
        for table in &mut problem.tables {
            table.fill(0.0);
        }
        problem.context_log_q.fill(0.0);
        problem.negative_log_q.fill(0.0);
        let (nce, _) = run(&problem, InstructionSet::detect(), SkipGramLoss::Nce, false);
        assert!((nce - 10.0 * 6.0 * std::f64::consts::LN_2).abs() < 1e-4);
        // Contexts 3 (pair 0) and 21 (pair 3) are negatives too: `Neg` leaves them out.
        let hits = problem
            .contexts
            .iter()
            .filter(|context| problem.negatives.contains(context))
            .count();
        assert_eq!(hits, 2);
        let (neg, _) = run(&problem, InstructionSet::detect(), SkipGramLoss::Neg, false);
        assert!((neg - (60 - hits) as f64 * std::f64::consts::LN_2).abs() < 1e-4);
    }

    /// The bounded step written as plain loops in f64: every pair's logit gradients at the
    /// tables before the step, each row's summed gradient `G_r` and curvature bound `H_r`,
    /// then `row -= min(rate, NEWTON_STEPS / H_r) · G_r`.
    fn bounded_oracle(problem: &Problem, loss: SkipGramLoss, rate: f64) -> [Vec<f32>; 3] {
        let dim = problem.dim;
        let [input, output, biases] = &problem.tables;
        let row = |table: &Vec<f32>, id: u32| -> Vec<f64> {
            table[id as usize * dim..(id as usize + 1) * dim]
                .iter()
                .map(|&v| v as f64)
                .collect()
        };
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let vocabulary = biases.len();
        let mut g_in = vec![vec![0.0f64; dim]; vocabulary];
        let mut g_out = vec![vec![0.0f64; dim]; vocabulary];
        let mut g_bias = vec![0.0f64; vocabulary];
        let (mut h_in, mut h_out) = (vec![0.0f64; vocabulary], vec![0.0f64; vocabulary]);
        let input_bound = if loss == SkipGramLoss::SampledSoftmax {
            0.5
        } else {
            0.25
        };
        for i in 0..problem.centers.len() {
            let x = row(input, problem.centers[i]);
            let context = problem.contexts[i];
            let mut ids = vec![context];
            let mut log_q = vec![problem.context_log_q[i] as f64];
            let (negatives, negative_log_q) = problem.negatives_of(i);
            for (j, &negative) in negatives.iter().enumerate() {
                if loss.removes_accidental_hits() && negative == context {
                    continue;
                }
                ids.push(negative);
                log_q.push(negative_log_q[j] as f64);
            }
            let logits: Vec<f64> = ids
                .iter()
                .zip(&log_q)
                .map(|(&id, &q)| {
                    let l = dot(&x, &row(output, id)) + biases[id as usize] as f64;
                    if loss.uses_expected_counts() {
                        l - q
                    } else {
                        l
                    }
                })
                .collect();
            let d: Vec<f64> = match loss {
                SkipGramLoss::SampledSoftmax => {
                    let max = logits.iter().cloned().fold(f64::MIN, f64::max);
                    let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
                    let mut p: Vec<f64> = logits.iter().map(|l| (l - max).exp() / sum).collect();
                    p[0] -= 1.0;
                    p
                }
                _ => logits
                    .iter()
                    .enumerate()
                    .map(|(k, l)| 1.0 / (1.0 + (-l).exp()) - if k == 0 { 1.0 } else { 0.0 })
                    .collect(),
            };
            let c = problem.centers[i] as usize;
            for (k, &id) in ids.iter().enumerate() {
                let w = row(output, id);
                for t in 0..dim {
                    g_in[c][t] += d[k] * w[t];
                    g_out[id as usize][t] += d[k] * x[t];
                }
                g_bias[id as usize] += d[k];
                h_in[c] += input_bound * dot(&w, &w);
                h_out[id as usize] += 0.25 * (dot(&x, &x) + 1.0);
            }
        }
        let step = |h: f64| rate.min(NEWTON_STEPS as f64 / h);
        let mut result = problem.tables.clone();
        for r in 0..vocabulary {
            for t in 0..dim {
                result[0][r * dim + t] -= (step(h_in[r]) * g_in[r][t]) as f32;
                result[1][r * dim + t] -= (step(h_out[r]) * g_out[r][t]) as f32;
            }
            result[2][r] -= (step(h_out[r]) * g_bias[r]) as f32;
        }
        result
    }

    #[test]
    fn the_bounded_step_matches_a_plain_loop_oracle() {
        for problem in [problem(24, 400), grouped_problem(24, 400)] {
            bounded_step_matches_the_oracle(&problem);
        }
    }

    fn bounded_step_matches_the_oracle(problem: &Problem) {
        for loss in [
            SkipGramLoss::Nce,
            SkipGramLoss::SampledSoftmax,
            SkipGramLoss::Neg,
        ] {
            // 0.01: no row reaches its bound; 5: the negatives' rows and many others do.
            for rate in [0.01f32, 5.0] {
                let expected = bounded_oracle(problem, loss, rate as f64);
                let (_, got) = run_rule(
                    problem,
                    InstructionSet::detect(),
                    loss,
                    UpdateRule::Bounded,
                    rate,
                    true,
                );
                for (table, (a, b)) in got.iter().zip(&expected).enumerate() {
                    for (k, (x, y)) in a.iter().zip(b).enumerate() {
                        assert!(
                            (x - y).abs() <= 2e-4 * (1.0 + y.abs()),
                            "{loss:?} rate {rate} table {table}[{k}]: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_every_pair_touches_moves_a_bounded_distance_whatever_the_batch_size() {
        // The negatives' rows are touched by every pair: their step must not grow with the
        // number of pairs once it reaches the bound, where the plain sum grows linearly.
        let moved = |pairs: usize, rule: UpdateRule| {
            let problem = problem(16, pairs);
            let (_, tables) = run_rule(
                &problem,
                InstructionSet::detect(),
                SkipGramLoss::Nce,
                rule,
                1.0,
                false,
            );
            let id = problem.negatives[4] as usize; // 40: no pair's context (ids i*7 % 50)
            let before = &problem.tables[1][id * 16..(id + 1) * 16];
            let after = &tables[1][id * 16..(id + 1) * 16];
            before
                .iter()
                .zip(after)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt()
        };
        let (small, large) = (
            moved(200, UpdateRule::Bounded),
            moved(3200, UpdateRule::Bounded),
        );
        assert!(large < 2.0 * small, "{small} -> {large}");
        let (small, large) = (moved(200, UpdateRule::Sum), moved(3200, UpdateRule::Sum));
        assert!(large > 8.0 * small, "{small} -> {large}");
    }
}
