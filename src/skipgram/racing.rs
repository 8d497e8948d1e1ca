//! Racing threads (Hogwild, as word2vec, gensim and fastText train): every thread runs its own
//! lane of pair-by-pair training over the same tables, without locks.
//!
//! The lanes take the corpus in turns from one shared reader, a chunk of sentences at a time
//! (about `CHUNK_WORDS` words, so the reader's lock is taken a few hundred times a second).
//! Each lane subsamples its sentences, cuts their windows, draws their negatives from its own
//! random streams and steps its batches pair by pair (`sequential.rs`), reading and writing
//! the input and output rows while the other lanes do the same. A lane may therefore read a
//! row in the middle of another lane's update of it, or overwrite a float another lane wrote
//! a moment before: one pair's step seen late or lost now and then, which at word2vec's rates
//! and vocabulary sizes changes nothing measurable (docs/word2vec.md, "Threads"). The
//! learning rate follows the words handed out to all lanes.
//!
//! Racing is not always faster (see [`RaceChooser`]): the lanes run in legs of about
//! `LEG_WORDS` words, either all racing or one lane alone with its next batch formed on a
//! second thread (as the deterministic trainer runs), whichever measured faster.
//!
//! The price is reproducibility: two runs with the same seed give different bits. The
//! deterministic trainer (one thread stepping, the other forming the next batch; the same
//! bits for any thread count) is `TrainingConfig(deterministic=True)`.
//!
//! On the memory model: the lanes' simultaneous plain loads and stores of the same floats
//! are data races, which Rust leaves undefined. They happen only inside the skip-gram kernels,
//! on aligned float32 values of the tables that the trainer's caller lent for the run (a
//! float is never torn on the processors rustnce builds for); every other piece of state is a
//! lane's own or behind a lock. Each lane reaches the tables through its own mutable slices
//! made from the lent pointers (the kernels take `Embeddings`), so the slices of two lanes
//! alias, which Rust's aliasing rules also forbid; the kernels read and write rows through
//! them one load and store at a time, and keep no row across pairs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::corpus::Sentences;
use super::pairs::PairGenerator;
use super::step::{Embeddings, SkipGramStep, UpdateRule, Workers};
use super::trainer::{
    diverged, epoch_negative_stream, epoch_pair_stream, epoch_sampler, SkipGramConfig, WindowBatch,
    WindowBatchSource,
};
use crate::error::{NceError, Result};
use crate::philox::RandomStream;
use crate::samplers::CandidateSampler;
use crate::spinning_team::Team;

/// Words a lane takes from the shared reader at a time.
const CHUNK_WORDS: usize = 4096;

/// Words of a leg: the lanes race, or one runs alone, for about this many words at a time
/// (10–15 ms on the 2-core machine).
const LEG_WORDS: u64 = 16_384;

/// Sentences a lane took from the shared reader and has not finished.
#[derive(Default)]
struct Chunk {
    ids: Vec<u32>,
    ends: Vec<usize>,
    next: usize,
}

impl Chunk {
    fn clear(&mut self) {
        self.ids.clear();
        self.ends.clear();
        self.next = 0;
    }
}

/// The corpus, shared by the lanes for one run.
struct Feed<'a> {
    corpus: Mutex<&'a mut dyn Sentences>,
    /// Words of this epoch handed out to the lanes.
    handed_out: AtomicU64,
}

/// A lane's view of the corpus: its chunk, refilled from the feed.
struct LaneSentences<'a, 'b> {
    feed: &'a Feed<'b>,
    chunk: &'a mut Chunk,
}

impl Sentences for LaneSentences<'_, '_> {
    fn tokens(&self) -> u64 {
        0 // not asked: the trainer counts the corpus's tokens
    }

    fn rewind(&mut self) -> Result<()> {
        Ok(()) // the trainer rewinds the shared corpus between epochs
    }

    fn next_sentence(&mut self) -> Result<Option<&[u32]>> {
        if self.chunk.next == self.chunk.ends.len() {
            self.chunk.clear();
            let mut corpus = self.feed.corpus.lock().unwrap_or_else(|e| e.into_inner());
            while self.chunk.ids.len() < CHUNK_WORDS {
                match corpus.next_sentence()? {
                    Some(sentence) => {
                        self.chunk.ids.extend_from_slice(sentence);
                        self.chunk.ends.push(self.chunk.ids.len());
                    }
                    None => break,
                }
            }
            drop(corpus);
            self.feed
                .handed_out
                .fetch_add(self.chunk.ids.len() as u64, Ordering::AcqRel);
            if self.chunk.ends.is_empty() {
                return Ok(None);
            }
        }
        let start = match self.chunk.next {
            0 => 0,
            k => self.chunk.ends[k - 1],
        };
        let end = self.chunk.ends[self.chunk.next];
        self.chunk.next += 1;
        Ok(Some(&self.chunk.ids[start..end]))
    }
}

/// What a lane forms its batches with: its part of the corpus, pairs and random draws.
struct Former {
    pairs: PairGenerator,
    stream: RandomStream,
    negative_stream: RandomStream,
    sampler: CandidateSampler,
    chunk: Chunk,
}

impl Former {
    /// The lane's next batch into `batch`, its sentences taken from `feed` as needed; whether
    /// the feed ran dry (the lane's epoch is over).
    fn form(
        &mut self,
        feed: &Feed<'_>,
        config: &SkipGramConfig,
        window_log_q: &[f32],
        batch: &mut WindowBatch,
    ) -> Result<bool> {
        let mut sentences = LaneSentences {
            feed,
            chunk: &mut self.chunk,
        };
        WindowBatchSource {
            pairs: &mut self.pairs,
            corpus: &mut sentences,
            stream: &mut self.stream,
            negative_stream: &mut self.negative_stream,
            sampler: &mut self.sampler,
            config,
            window_log_q,
        }
        .form(batch)
    }
}

/// One racing thread's state, kept from run to run within an epoch.
struct Lane {
    former: Former,
    batch: WindowBatch,
    /// The batch formed while `batch` trains (see [`pipelined_leg`]).
    next: WindowBatch,
    step: SkipGramStep,
    /// The shared reader ran dry for this lane: its epoch is over.
    epoch_done: bool,
}

/// What one run of the lanes did (or one lane's share of it).
#[derive(Default)]
pub(super) struct RaceOutcome {
    pub pairs: u64,
    pub loss: f64,
    /// A batch's loss per pair showed divergence (see `SkipGramTrainer::record`).
    pub diverged: Option<f64>,
    /// The rate of the last batch stepped.
    pub rate: f32,
    /// Every lane finished the epoch.
    pub epoch_end: bool,
}

impl RaceOutcome {
    /// Adds a stepped batch of `count` pairs; true if its loss shows that training diverged.
    fn add_batch(&mut self, config: &SkipGramConfig, count: usize, loss: f64, rate: f32) -> bool {
        self.pairs += count as u64;
        self.loss += loss;
        self.rate = rate;
        if diverged(config.negatives, loss, count) {
            self.diverged = Some(loss / count as f64);
        }
        self.diverged.is_some()
    }
}

/// The lanes of a racing trainer.
pub(super) struct Racers {
    lanes: Vec<Mutex<Lane>>,
    /// Words of the current epoch handed out to the lanes.
    handed_out: u64,
    chooser: RaceChooser,
}

/// The tables as raw pointers, lent to every lane for one run.
#[derive(Clone, Copy)]
struct SharedTables {
    input: *mut f32,
    output: *mut f32,
    biases: *mut f32,
    rows: usize,
    dim: usize,
}

// SAFETY: the pointers are the caller's tables, alive and unmoved for the whole run (the run
// borrows them mutably); the lanes' racing use of them is the design (see the module's text).
unsafe impl Send for SharedTables {}
unsafe impl Sync for SharedTables {}

impl SharedTables {
    /// # Safety
    /// Only during the run the tables were lent for.
    unsafe fn embeddings(&self) -> Embeddings<'_> {
        // SAFETY: the caller's contract; the slices cover exactly the lent tables.
        unsafe {
            Embeddings {
                input: std::slice::from_raw_parts_mut(self.input, self.rows * self.dim),
                output: std::slice::from_raw_parts_mut(self.output, self.rows * self.dim),
                biases: std::slice::from_raw_parts_mut(self.biases, self.rows),
                dim: self.dim,
            }
        }
    }
}

/// Lane `lane`'s streams of epoch `epoch`: lane 0 draws what the deterministic trainer draws.
fn lane_streams(seed: i64, epoch: usize, lane: usize) -> (RandomStream, RandomStream) {
    let seed = seed.wrapping_add((lane as i64).wrapping_mul(0x1F12_3BB5_159A_55E5));
    (
        epoch_pair_stream(seed, epoch),
        epoch_negative_stream(seed, epoch),
    )
}

impl Racers {
    /// `lanes` lanes at the start of epoch `epoch`.
    pub fn new(
        config: &SkipGramConfig,
        counts: &[f32],
        keep: &[f64],
        epoch: usize,
        lanes: usize,
    ) -> Result<Self> {
        let lanes = (0..lanes.max(1))
            .map(|lane| {
                let (stream, negative_stream) = lane_streams(config.seed, epoch, lane);
                Ok(Mutex::new(Lane {
                    former: Former {
                        pairs: PairGenerator::new(config.window, keep.to_vec()),
                        stream,
                        negative_stream,
                        sampler: epoch_sampler(config, counts, epoch)?,
                        chunk: Chunk::default(),
                    },
                    batch: WindowBatch::default(),
                    next: WindowBatch::default(),
                    step: SkipGramStep::with_fixed_biases(config.fixed_biases),
                    epoch_done: false,
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Racers {
            lanes,
            handed_out: 0,
            chooser: RaceChooser::default(),
        })
    }

    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Words of the current epoch handed out to the lanes.
    pub fn position(&self) -> u64 {
        self.handed_out
    }

    /// Every lane back at the start of epoch `epoch` (the caller rewinds the corpus).
    pub fn begin_epoch(
        &mut self,
        config: &SkipGramConfig,
        counts: &[f32],
        epoch: usize,
    ) -> Result<()> {
        self.handed_out = 0;
        for (index, lane) in self.lanes.iter_mut().enumerate() {
            let lane = lane.get_mut().unwrap_or_else(|e| e.into_inner());
            let former = &mut lane.former;
            former.pairs.restart();
            (former.stream, former.negative_stream) = lane_streams(config.seed, epoch, index);
            former.sampler = epoch_sampler(config, counts, epoch)?;
            former.chunk.clear();
            lane.epoch_done = false;
        }
        Ok(())
    }

    /// Runs the lanes until the words handed out this epoch reach `stop_at`, the epoch ends
    /// or a batch diverges: in legs of about `LEG_WORDS` words, each leg on every lane (one
    /// member of `team` each) or on one lane alone with its next batch formed on member 1
    /// ([`pipelined_leg`]), whichever the chooser measured faster.
    /// `rate(words)` is the learning rate after `words` words of this epoch. Ids and tables
    /// are checked by the caller.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        corpus: &mut dyn Sentences,
        config: &SkipGramConfig,
        window_log_q: &[f32],
        rate: &(dyn Fn(u64) -> f32 + Sync),
        embeddings: &mut Embeddings<'_>,
        stop_at: u64,
        team: &Team,
    ) -> Result<RaceOutcome> {
        let feed = Feed {
            corpus: Mutex::new(corpus),
            handed_out: AtomicU64::new(self.handed_out),
        };
        let tables = SharedTables {
            input: embeddings.input.as_mut_ptr(),
            output: embeddings.output.as_mut_ptr(),
            biases: embeddings.biases.as_mut_ptr(),
            rows: embeddings.vocabulary(),
            dim: embeddings.dim,
        };
        let mut total = RaceOutcome {
            rate: rate(self.handed_out),
            ..RaceOutcome::default()
        };
        let result = loop {
            let done =
                |lane: &Mutex<Lane>| lane.lock().unwrap_or_else(|e| e.into_inner()).epoch_done;
            let Some(first) = self.lanes.iter().position(|lane| !done(lane)) else {
                total.epoch_end = true;
                break Ok(());
            };
            let position = feed.handed_out.load(Ordering::Acquire);
            if position >= stop_at {
                break Ok(());
            }
            let leg_stop = stop_at.min(position.saturating_add(LEG_WORDS));
            let racing = self.chooser.racing();
            let started = Instant::now();
            let legs = if racing {
                self.race_leg(&feed, config, window_log_q, rate, tables, leg_stop, team)
            } else {
                let mut lane = self.lanes[first].lock().unwrap_or_else(|e| e.into_inner());
                // SAFETY: within the run the tables were lent for.
                let mut embeddings = unsafe { tables.embeddings() };
                vec![pipelined_leg(
                    &mut lane,
                    &feed,
                    config,
                    window_log_q,
                    rate,
                    &mut embeddings,
                    leg_stop,
                    team,
                )]
            };
            let mut leg_pairs = 0;
            let mut failed = None;
            for outcome in legs {
                match outcome {
                    Ok(outcome) => {
                        leg_pairs += outcome.pairs;
                        total.pairs += outcome.pairs;
                        total.loss += outcome.loss;
                        total.diverged = total.diverged.or(outcome.diverged);
                        if outcome.pairs > 0 {
                            total.rate = outcome.rate;
                        }
                    }
                    Err(error) => failed = failed.or(Some(error)),
                }
            }
            self.chooser.record(racing, leg_pairs, started.elapsed());
            if let Some(error) = failed {
                break Err(error);
            }
            if total.diverged.is_some() {
                break Ok(());
            }
        };
        self.handed_out = feed.handed_out.load(Ordering::Acquire);
        result.map(|()| total)
    }

    /// One leg on every lane, lane `m` on member `m` of `team`.
    #[allow(clippy::too_many_arguments)]
    fn race_leg(
        &self,
        feed: &Feed<'_>,
        config: &SkipGramConfig,
        window_log_q: &[f32],
        rate: &(dyn Fn(u64) -> f32 + Sync),
        tables: SharedTables,
        stop_at: u64,
        team: &Team,
    ) -> Vec<Result<RaceOutcome>> {
        let stop = AtomicBool::new(false);
        let outcomes: Vec<Mutex<Option<Result<RaceOutcome>>>> =
            self.lanes.iter().map(|_| Mutex::new(None)).collect();
        let lanes = &self.lanes;
        team.run(|member| {
            let Some(lane) = lanes.get(member) else {
                return;
            };
            let mut lane = lane.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: within the run the tables were lent for.
            let mut embeddings = unsafe { tables.embeddings() };
            let outcome = run_lane(
                &mut lane,
                feed,
                config,
                window_log_q,
                rate,
                &mut embeddings,
                stop_at,
                &stop,
            );
            if !matches!(outcome, Ok(RaceOutcome { diverged: None, .. })) {
                stop.store(true, Ordering::Release);
            }
            *outcomes[member].lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        });
        outcomes
            .into_iter()
            .map(|slot| {
                slot.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .unwrap_or_else(|| {
                        Err(NceError::invalid("threads", "a racing lane did not run"))
                    })
            })
            .collect()
    }
}

/// Whether the next leg runs on every lane or on one (its next batch formed on a second
/// thread). Racing is not always faster: with a small vocabulary every row is hot in both
/// cores' caches and each write moves it between them (measured on the 2-core machine, a
/// 3,000-word corpus: two racing threads at 0.78M words/s in some runs, one thread at 1.27M),
/// and on some corpora the two ways came within 5% of each other, either ahead. So every
/// `PERIOD` legs, `TRIAL` legs are timed each way and the faster is kept until the next trial.
#[derive(Default)]
struct RaceChooser {
    leg: usize,
    /// Pairs and seconds of this period's trial legs: one lane, every lane.
    alone: (u64, f64),
    together: (u64, f64),
    racing: bool,
}

impl RaceChooser {
    const TRIAL: usize = 2;
    const PERIOD: usize = 48;

    fn racing(&self) -> bool {
        match self.leg {
            leg if leg < Self::TRIAL => false,
            leg if leg < 2 * Self::TRIAL => true,
            _ => self.racing,
        }
    }

    fn record(&mut self, racing: bool, pairs: u64, time: Duration) {
        if self.leg < 2 * Self::TRIAL {
            let trial = if racing {
                &mut self.together
            } else {
                &mut self.alone
            };
            trial.0 += pairs;
            trial.1 += time.as_secs_f64();
        }
        self.leg += 1;
        if self.leg == 2 * Self::TRIAL {
            let speed = |(pairs, seconds): (u64, f64)| pairs as f64 / seconds.max(1e-9);
            self.racing = speed(self.together) > speed(self.alone);
        }
        if self.leg >= Self::PERIOD {
            *self = RaceChooser::default();
        }
    }
}

/// One leg of lane `lane` alone, its next batch formed on member 1 of `team` while member 0
/// (the caller) steps the current one, until the words handed out reach `stop_at` or the
/// epoch ends.
#[allow(clippy::too_many_arguments)]
fn pipelined_leg(
    lane: &mut Lane,
    feed: &Feed<'_>,
    config: &SkipGramConfig,
    window_log_q: &[f32],
    rate: &(dyn Fn(u64) -> f32 + Sync),
    embeddings: &mut Embeddings<'_>,
    stop_at: u64,
    team: &Team,
) -> Result<RaceOutcome> {
    let mut outcome = RaceOutcome::default();
    let Lane {
        former,
        batch,
        next,
        step,
        epoch_done,
    } = lane;
    let handed_out = || feed.handed_out.load(Ordering::Acquire);
    if *epoch_done || handed_out() >= stop_at {
        return Ok(outcome);
    }
    let mut form = |batch: &mut WindowBatch| former.form(feed, config, window_log_q, batch);
    let mut batch_rate = rate(handed_out());
    *epoch_done = form(batch)?;
    loop {
        let form_next = !*epoch_done && handed_out() < stop_at;
        let next_rate = rate(handed_out());
        let step_job = Mutex::new(Some((&mut *step, &mut *embeddings, &*batch)));
        let form_job = Mutex::new(form_next.then_some((&mut form, &mut *next)));
        let loss = Mutex::new(0.0f64);
        let formed = Mutex::new(None);
        team.run(|member| match member {
            0 => {
                let taken = step_job.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some((step, embeddings, batch)) = taken {
                    if !batch.centers.is_empty() {
                        *loss.lock().unwrap_or_else(|e| e.into_inner()) = step.run_on_workers(
                            embeddings,
                            &batch.pairs(),
                            config.loss,
                            batch_rate,
                            UpdateRule::Sequential,
                            Workers::Serial,
                        );
                    }
                }
            }
            1 => {
                let taken = form_job.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some((form, batch)) = taken {
                    *formed.lock().unwrap_or_else(|e| e.into_inner()) = Some(form(batch));
                }
            }
            _ => {}
        });
        // A team without a helper ran neither piece 1 nor had it run: form here.
        let mut formed = formed.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some((form, next)) = form_job.into_inner().unwrap_or_else(|e| e.into_inner()) {
            formed = Some(form(next));
        }
        let loss = loss.into_inner().unwrap_or_else(|e| e.into_inner());
        let count = batch.centers.len();
        if count > 0 && outcome.add_batch(config, count, loss, batch_rate) {
            // The formed batch is dropped with the run.
            return Ok(outcome);
        }
        match formed {
            Some(result) => {
                *epoch_done = result?;
                std::mem::swap(batch, next);
                batch_rate = next_rate;
            }
            None => return Ok(outcome),
        }
    }
}

/// One lane's share of a run (see [`Racers::run`]).
#[allow(clippy::too_many_arguments)]
fn run_lane(
    lane: &mut Lane,
    feed: &Feed<'_>,
    config: &SkipGramConfig,
    window_log_q: &[f32],
    rate: &(dyn Fn(u64) -> f32 + Sync),
    embeddings: &mut Embeddings<'_>,
    stop_at: u64,
    stop: &AtomicBool,
) -> Result<RaceOutcome> {
    let mut outcome = RaceOutcome::default();
    let Lane {
        former,
        batch,
        step,
        epoch_done,
        ..
    } = lane;
    while !*epoch_done
        && !stop.load(Ordering::Acquire)
        && feed.handed_out.load(Ordering::Acquire) < stop_at
    {
        let rate = rate(feed.handed_out.load(Ordering::Acquire));
        *epoch_done = former.form(feed, config, window_log_q, batch)?;
        let count = batch.centers.len();
        if count > 0 {
            let loss = step.run_on_workers(
                embeddings,
                &batch.pairs(),
                config.loss,
                rate,
                UpdateRule::Sequential,
                Workers::Serial,
            );
            if outcome.add_batch(config, count, loss, rate) {
                break;
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skipgram::corpus::Corpus;
    use crate::skipgram::pairs::keep_probabilities;
    use crate::skipgram::step::SkipGramLoss;
    use crate::skipgram::trainer::{NegativeSampler, NegativeSharing};
    use crate::spinning_team::with_team;

    /// Sentences of 1 to 40 words, ids `k % 50`: `(ids, sentence of each token)`.
    fn corpus() -> (Vec<i32>, Vec<i32>) {
        let (mut ids, mut sentences) = (Vec::new(), Vec::new());
        for sentence in 0..2_000i32 {
            for k in 0..1 + sentence * 7 % 40 {
                ids.push((sentence * 3 + k * k) % 50);
                sentences.push(sentence);
            }
        }
        (ids, sentences)
    }

    #[test]
    fn the_chooser_races_only_where_its_trials_found_racing_faster() {
        let mut chooser = RaceChooser::default();
        // `period(alone, together)`: pairs per millisecond each way; where each leg ran.
        let mut period = |alone: u64, together: u64| -> Vec<bool> {
            (0..RaceChooser::PERIOD)
                .map(|_| {
                    let racing = chooser.racing();
                    let pairs = if racing { together } else { alone };
                    chooser.record(racing, pairs, Duration::from_millis(1));
                    racing
                })
                .collect()
        };
        let trial = RaceChooser::TRIAL;
        let legs = period(100, 180);
        assert!(legs[..trial].iter().all(|&r| !r) && legs[trial..].iter().all(|&r| r));
        let legs = period(100, 60);
        assert!(legs[trial..2 * trial].iter().all(|&r| r));
        assert!(legs[2 * trial..].iter().all(|&r| !r));
        assert!(period(100, 101)[2 * trial..].iter().all(|&r| r));
    }

    #[test]
    fn lanes_taking_chunks_in_turns_read_every_sentence_once() {
        let (ids, sentences) = corpus();
        let mut whole = Corpus::new(&ids, &sentences, 50).unwrap();
        let mut expected = Vec::new();
        while let Some(sentence) = whole.next_sentence().unwrap() {
            expected.push(sentence.to_vec());
        }
        let mut shared = Corpus::new(&ids, &sentences, 50).unwrap();
        let feed = Feed {
            corpus: Mutex::new(&mut shared),
            handed_out: AtomicU64::new(0),
        };
        let mut chunks = [Chunk::default(), Chunk::default()];
        let mut seen = Vec::new();
        let mut finished = [false, false];
        let mut turn = 0;
        while !finished.iter().all(|&f| f) {
            let lane = turn % 2;
            turn += 1;
            if finished[lane] {
                continue;
            }
            let mut lane_sentences = LaneSentences {
                feed: &feed,
                chunk: &mut chunks[lane],
            };
            // A few sentences, then the other lane's turn.
            for _ in 0..1 + turn % 5 {
                match lane_sentences.next_sentence().unwrap() {
                    Some(sentence) => seen.push(sentence.to_vec()),
                    None => {
                        finished[lane] = true;
                        break;
                    }
                }
            }
        }
        assert_eq!(feed.handed_out.load(Ordering::Acquire), ids.len() as u64);
        seen.sort();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn two_racing_lanes_train_one_epoch_of_the_corpus() {
        let (ids, sentences) = corpus();
        let counts: Vec<i64> = (0..50)
            .map(|w| ids.iter().filter(|&&id| id == w).count().max(1) as i64)
            .collect();
        let config = SkipGramConfig {
            dim: 8,
            window: 3,
            negatives: 4,
            epochs: 1,
            batch_pairs: 64,
            loss: SkipGramLoss::Neg,
            sampler: NegativeSampler::Unigram { distortion: 0.75 },
            learning_rate: 0.025,
            subsample: 0.0,
            seed: 3,
            update: UpdateRule::Sequential,
            sharing: NegativeSharing::Window,
            fixed_biases: false,
            racing: true,
        };
        let float_counts: Vec<f32> = counts.iter().map(|&c| c as f32).collect();
        let keep = keep_probabilities(&counts, 0.0);
        let mut racers = Racers::new(&config, &float_counts, &keep, 0, 2).unwrap();
        let mut corpus = Corpus::new(&ids, &sentences, 50).unwrap();
        let mut tables = [
            (0..50 * 8)
                .map(|k| (k % 7) as f32 * 0.01 - 0.03)
                .collect::<Vec<f32>>(),
            vec![0.0f32; 50 * 8],
            vec![0.0f32; 50],
        ];
        let [input, output, biases] = &mut tables;
        let mut embeddings = Embeddings {
            input,
            output,
            biases,
            dim: 8,
        };
        let rates = Mutex::new(Vec::new());
        let rate = |words: u64| {
            rates.lock().unwrap().push(words);
            0.025 * (1.0 - words as f32 / ids.len() as f32).max(1e-4)
        };
        let (mut pairs, mut loss) = (0, 0.0);
        // Slices of 1,000 words, then to the end of the epoch.
        let mut position = 0;
        loop {
            let outcome = with_team(2, |team| {
                racers.run(
                    &mut corpus,
                    &config,
                    &[],
                    &rate,
                    &mut embeddings,
                    position + 1_000,
                    team,
                )
            })
            .unwrap();
            assert!(outcome.diverged.is_none());
            assert!(racers.position() >= position);
            position = racers.position();
            pairs += outcome.pairs;
            loss += outcome.loss;
            if outcome.epoch_end {
                break;
            }
        }
        assert_eq!(racers.position(), ids.len() as u64);
        // Every word a center once, with 1 to 3 contexts on each side within its sentence.
        let words = ids.len() as u64;
        assert!(
            pairs > words && pairs < 6 * words,
            "{pairs} pairs for {words} words"
        );
        assert!(loss.is_finite() && loss > 0.0);
        assert!(embeddings.output.iter().any(|&v| v != 0.0));
        // The rates were asked at growing word counts within the epoch.
        let rates = rates.into_inner().unwrap();
        assert!(rates.iter().all(|&w| w <= words));
        assert!(rates.len() as u64 >= words / 4096);
        // A new epoch starts at word 0.
        racers.begin_epoch(&config, &float_counts, 1).unwrap();
        assert_eq!(racers.position(), 0);
    }
}
