//! The skip-gram training loop: epochs of pairs in batches, negatives drawn by a candidate
//! sampler (per center's window, or per batch: `NegativeSharing`), one fused SGD step per
//! batch, and word2vec's learning rate decaying linearly with the raw words processed to
//! `1e-4` of its start.

use ndarray::ArrayView2;

use std::sync::Arc;
use std::time::Instant;

use super::corpus::{Corpus, Sentences};
use super::pairs::{keep_probabilities, PairGenerator};
use super::racing::Racers;
use super::step::{Embeddings, PairBatch, SkipGramLoss, SkipGramStep, UpdateRule, Workers};
use super::text_corpus::{TextCorpus, TextStream};
use crate::error::{NceError, Result};
use crate::parallelism;
use crate::philox::{Philox4x32, RandomStream, Seed};
use crate::samplers::{expected_count, CandidateSampler, FixedUnigramConfig};
use crate::spinning_team::{with_team, Team};
use std::sync::Mutex;

/// The generator of subsampling and window draws for `seed` in the first epoch, apart from
/// the sampler's.
pub fn pair_stream(seed: i64) -> RandomStream {
    epoch_pair_stream(seed, 0)
}

/// As [`pair_stream`], for epoch `epoch`: every epoch starts its own streams, so training
/// resumed at an epoch's start draws what an uninterrupted run draws.
pub(super) fn epoch_pair_stream(seed: i64, epoch: usize) -> RandomStream {
    RandomStream::new(Philox4x32::new(
        seed as u64 ^ 0x5EED_5EED_5EED_5EED,
        0x736B_6970_6772_616D ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15), // "skipgram"
    ))
}

/// The stream of epoch `epoch`'s per-window negatives (`NegativeSharing::Window`).
pub(super) fn epoch_negative_stream(seed: i64, epoch: usize) -> RandomStream {
    RandomStream::new(Philox4x32::new(
        seed as u64 ^ 0x4E45_4741_5449_5645, // "NEGATIVE"
        0x7769_6E64_6F77_7321 ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15), // "windows!"
    ))
}

/// The negative sampler of epoch `epoch`.
pub(super) fn epoch_sampler(
    config: &SkipGramConfig,
    counts: &[f32],
    epoch: usize,
) -> Result<CandidateSampler> {
    let seed = Seed::Op(
        config
            .seed
            .wrapping_add((epoch as i64).wrapping_mul(0x2545_F491)),
    );
    let range = counts.len() as i64;
    match config.sampler {
        NegativeSampler::LogUniform => CandidateSampler::log_uniform(range, seed),
        NegativeSampler::Unigram { distortion } => {
            let mut unigram = FixedUnigramConfig::from_counts(range, counts.to_vec());
            unigram.distortion = distortion;
            CandidateSampler::fixed_unigram(unigram, seed)
        }
    }
}

/// Where the negatives come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NegativeSampler {
    /// TensorFlow's default: log-uniform over frequency ranks (ids sorted by decreasing count).
    LogUniform,
    /// word2vec's: `count ** distortion`.
    Unigram { distortion: f32 },
}

/// Which pairs share one draw of negatives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegativeSharing {
    /// Each center's window draws `negatives` ids with replacement (as word2vec draws them,
    /// expected counts `negatives · p`), shared by the window's pairs; every context is an
    /// input row and the center the positive output row (word2vec's orientation), so the
    /// window's logits are its contexts' rows against the center's and the negatives' rows.
    Window,
    /// Each batch draws `negatives` distinct ids (TensorFlow's `unique=True`), shared by all
    /// its pairs; the center is the input row and the context the positive output row.
    Batch,
}

impl NegativeSharing {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "window" => Some(NegativeSharing::Window),
            "batch" => Some(NegativeSharing::Batch),
            _ => None,
        }
    }
}

/// Training settings (the corpus and counts come separately).
#[derive(Clone, Debug)]
pub struct SkipGramConfig {
    pub dim: usize,
    pub window: usize,
    pub negatives: usize,
    pub epochs: usize,
    pub batch_pairs: usize,
    pub loss: SkipGramLoss,
    pub sampler: NegativeSampler,
    /// Per-pair learning rate at the start.
    pub learning_rate: f32,
    pub subsample: f64,
    pub seed: i64,
    /// How a batch's gradients move the rows it touches.
    pub update: UpdateRule,
    /// Which pairs share a draw of negatives.
    pub sharing: NegativeSharing,
    /// Leave the output biases at their starting values (see `SkipGramStep::fixed_biases`).
    pub fixed_biases: bool,
    /// Pair by pair on two or more threads: the threads race over the tables (`racing.rs`,
    /// Hogwild) instead of one stepping while another forms the next batch (the same bits
    /// for any thread count).
    pub racing: bool,
}

/// Whether the steps run on the team or on the calling thread alone. The team is not always
/// faster: on the 2-core machine, for minutes at a time, two busy threads ran each step at
/// half speed (both cores fully used at half the single-thread rate), perhaps two hardware
/// threads of one core on the host. So every `PERIOD` steps, `TRIAL` steps are timed each way
/// and the faster is kept until the next trial. The bits are the same either way.
#[derive(Default)]
struct WorkerChooser {
    /// Steps since the period began.
    step: usize,
    /// Time of this period's trial steps: on the calling thread alone, on the team.
    alone: std::time::Duration,
    together: std::time::Duration,
    /// The choice after the trials.
    use_team: bool,
}

impl WorkerChooser {
    const TRIAL: usize = 16;
    const PERIOD: usize = 2048;

    /// Whether the next step runs on the team.
    fn team(&self) -> bool {
        match self.step {
            s if s < Self::TRIAL => false,
            s if s < 2 * Self::TRIAL => true,
            _ => self.use_team,
        }
    }

    /// Records a step that ran on the team (`team`) or alone, and took `time`.
    fn record(&mut self, team: bool, time: std::time::Duration) {
        if self.step < 2 * Self::TRIAL {
            if team {
                self.together += time;
            } else {
                self.alone += time;
            }
        }
        self.step += 1;
        if self.step == 2 * Self::TRIAL {
            self.use_team = self.together < self.alone;
        }
        if self.step >= Self::PERIOD {
            *self = WorkerChooser::default();
        }
    }
}

/// The learning rate never falls below this fraction of its start (word2vec's floor).
const MIN_RATE_FRACTION: f64 = 1e-4;

/// The learning rate after `done` of `total` words: linear decay from `start`, down to
/// `MIN_RATE_FRACTION` of it.
fn decayed_rate(start: f32, done: u64, total: u64) -> f32 {
    let fraction = done as f64 / total.max(1) as f64;
    (start as f64 * (1.0 - fraction).max(MIN_RATE_FRACTION)) as f32
}

/// Whether a batch of `count` pairs with summed loss `loss` shows that training diverged:
/// its loss per pair is above `100 (1 + negatives)` or not a number.
pub(super) fn diverged(negatives: usize, loss: f64, count: usize) -> bool {
    loss.is_nan() || loss >= 100.0 * (negatives + 1) as f64 * count as f64
}

/// What a call of [`SkipGramTrainer::run`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunReport {
    /// The epoch the call ended in (0-based).
    pub epoch: usize,
    /// Raw corpus words processed since training started (all epochs).
    pub words: u64,
    /// Pairs trained on in this call.
    pub pairs: u64,
    /// Summed loss of those pairs.
    pub loss: f64,
    /// The call stopped at the end of `epoch`.
    pub epoch_end: bool,
    /// Every epoch is done.
    pub finished: bool,
    /// The last batch's loss per pair exceeded `100 (1 + negatives)` or was not finite; training
    /// stopped with the parameters as that step left them.
    pub diverged: Option<f64>,
    /// The learning rate of the last step.
    pub learning_rate: f32,
}

/// One batch of windows with their negatives (`NegativeSharing::Window`): the buffers a batch
/// is formed in, so that the next can be formed while the current one trains.
#[derive(Default)]
pub(super) struct WindowBatch {
    pub(super) centers: Vec<u32>,
    contexts: Vec<u32>,
    window_ends: Vec<u32>,
    context_log_q: Vec<f32>,
    negatives: Vec<u32>,
    negative_log_q: Vec<f32>,
}

impl WindowBatch {
    /// The step's view: each window's context words as input rows against its center's
    /// output row and the window's negatives (word2vec's orientation).
    pub(super) fn pairs(&self) -> PairBatch<'_> {
        PairBatch {
            centers: &self.contexts,
            contexts: &self.centers,
            context_log_q: &self.context_log_q,
            negatives: &self.negatives,
            negative_log_q: &self.negative_log_q,
            group_ends: &self.window_ends,
        }
    }
}

/// What forming a window batch reads and advances (disjoint from what a step writes).
pub(super) struct WindowBatchSource<'a> {
    pub(super) pairs: &'a mut PairGenerator,
    pub(super) corpus: &'a mut dyn Sentences,
    pub(super) stream: &'a mut RandomStream,
    pub(super) negative_stream: &'a mut RandomStream,
    pub(super) sampler: &'a mut CandidateSampler,
    pub(super) config: &'a SkipGramConfig,
    pub(super) window_log_q: &'a [f32],
}

impl WindowBatchSource<'_> {
    /// The next batch of whole windows into `batch`, each window's negatives drawn with
    /// replacement, and `ln` of the expected counts; whether the epoch ended.
    pub(super) fn form(&mut self, batch: &mut WindowBatch) -> Result<bool> {
        batch.centers.clear();
        batch.contexts.clear();
        batch.window_ends.clear();
        let epoch_end = self.pairs.fill(
            self.corpus,
            self.stream,
            self.config.batch_pairs,
            &mut batch.centers,
            &mut batch.contexts,
            &mut batch.window_ends,
        )?;
        let draws = self.config.negatives;
        let distribution = self.sampler.distribution();
        batch.negatives.clear();
        if !batch.centers.is_empty() {
            for _ in 0..batch.window_ends.len() * draws {
                let id = distribution.draw(self.negative_stream);
                batch.negatives.push(id as u32);
            }
        }
        batch.negative_log_q.clear();
        batch.context_log_q.clear();
        if self.config.loss.uses_expected_counts() {
            let log_q = self.window_log_q;
            batch
                .negative_log_q
                .extend(batch.negatives.iter().map(|&id| log_q[id as usize]));
            batch
                .context_log_q
                .extend(batch.centers.iter().map(|&id| log_q[id as usize]));
        } else {
            batch.negative_log_q.resize(batch.negatives.len(), 0.0);
            batch.context_log_q.resize(batch.centers.len(), 0.0);
        }
        Ok(epoch_end)
    }
}

pub struct SkipGramTrainer {
    config: SkipGramConfig,
    float_counts: Vec<f32>,
    corpus: Box<dyn Sentences>,
    vocabulary: usize,
    sampler: CandidateSampler,
    pairs: PairGenerator,
    stream: RandomStream,
    epoch: usize,
    step: SkipGramStep,
    chooser: WorkerChooser,
    centers: Vec<u32>,
    contexts: Vec<u32>,
    context_log_q: Vec<f32>,
    negatives: Vec<u32>,
    negative_log_q: Vec<f32>,
    true_classes: Vec<i64>,
    /// Per center's window, where its pairs end.
    window_ends: Vec<u32>,
    /// Per-window negatives' stream, and `ln(negatives · p(id))` per id (`Window` sharing).
    negative_stream: RandomStream,
    window_log_q: Vec<f32>,
    /// Pair by pair on a team: the batch formed while the current one trains.
    formed: WindowBatch,
    /// Pair by pair on racing threads (`SkipGramConfig::racing` with two or more threads).
    racers: Option<Racers>,
}

impl SkipGramTrainer {
    /// `ids` and `sentence_of_token` describe the corpus (see [`Corpus::new`]); `counts[w]` is
    /// word `w`'s corpus count, ids sorted by decreasing count for the log-uniform sampler.
    pub fn new(
        ids: &[i32],
        sentence_of_token: &[i32],
        counts: &[i64],
        config: SkipGramConfig,
    ) -> Result<Self> {
        let corpus = Corpus::new(ids, sentence_of_token, counts.len())?;
        Self::with_sentences(Box::new(corpus), counts, config)
    }

    /// Trains on text files read as training goes, with their vocabulary's ids and counts.
    pub fn from_text(corpus: Arc<TextCorpus>, config: SkipGramConfig) -> Result<Self> {
        let counts = corpus.vocabulary.counts.clone();
        Self::with_sentences(Box::new(TextStream::new(corpus)), &counts, config)
    }

    /// Trains on `corpus`, whose ids must be below `counts.len()`.
    pub fn with_sentences(
        corpus: Box<dyn Sentences>,
        counts: &[i64],
        config: SkipGramConfig,
    ) -> Result<Self> {
        let vocabulary = counts.len();
        for (name, value) in [
            ("dim", config.dim),
            ("window", config.window),
            ("negatives", config.negatives),
            ("epochs", config.epochs),
            ("batch_pairs", config.batch_pairs),
        ] {
            if value < 1 {
                return Err(NceError::invalid(
                    name,
                    format!("must be at least 1, got {value}"),
                ));
            }
        }
        if vocabulary == 0 {
            return Err(NceError::invalid("counts", "must not be empty"));
        }
        if config.negatives >= vocabulary {
            return Err(NceError::invalid(
                "negatives",
                format!(
                    "must be smaller than the vocabulary ({vocabulary} words): negatives are distinct words, got {}",
                    config.negatives
                ),
            ));
        }
        if let Some(count) = counts.iter().find(|&&count| count < 1) {
            return Err(NceError::invalid(
                "counts",
                format!("every word's count must be at least 1, got {count}"),
            ));
        }
        if !(config.learning_rate.is_finite() && config.learning_rate > 0.0) {
            return Err(NceError::invalid(
                "learning_rate",
                format!("must be positive, got {}", config.learning_rate),
            ));
        }
        if !(config.subsample.is_finite() && config.subsample >= 0.0) {
            return Err(NceError::invalid(
                "subsample",
                format!("must be >= 0, got {}", config.subsample),
            ));
        }
        let float_counts: Vec<f32> = counts.iter().map(|&count| count as f32).collect();
        let sampler = epoch_sampler(&config, &float_counts, 0)?;
        let keep = keep_probabilities(counts, config.subsample);
        let threads = parallelism::configured_threads();
        let racers = if config.racing
            && config.update == UpdateRule::Sequential
            && config.sharing == NegativeSharing::Window
            && threads > 1
        {
            Some(Racers::new(&config, &float_counts, &keep, 0, threads)?)
        } else {
            None
        };
        let stream = pair_stream(config.seed);
        let window_log_q = if config.sharing == NegativeSharing::Window {
            let distribution = sampler.distribution();
            let draws = config.negatives;
            (0..vocabulary as i64)
                .map(|id| expected_count(distribution.probability(id), draws, draws as u64).ln())
                .collect()
        } else {
            Vec::new()
        };
        Ok(SkipGramTrainer {
            float_counts,
            pairs: PairGenerator::new(config.window, keep),
            corpus,
            vocabulary,
            sampler,
            stream,
            epoch: 0,
            step: SkipGramStep::with_fixed_biases(config.fixed_biases),
            chooser: WorkerChooser::default(),
            centers: Vec::new(),
            contexts: Vec::new(),
            context_log_q: Vec::new(),
            negatives: Vec::new(),
            negative_log_q: Vec::new(),
            true_classes: Vec::new(),
            window_ends: Vec::new(),
            negative_stream: epoch_negative_stream(config.seed, 0),
            window_log_q,
            formed: WindowBatch::default(),
            racers,
            config,
        })
    }

    /// Starts at the beginning of epoch `epoch` (0-based), as if the epochs before it had
    /// run: the learning rate and every random draw continue as in an uninterrupted run.
    pub fn start_at_epoch(&mut self, epoch: usize) -> Result<()> {
        if epoch > self.config.epochs {
            return Err(NceError::invalid(
                "start_epoch",
                format!(
                    "must be at most epochs ({}), got {epoch}",
                    self.config.epochs
                ),
            ));
        }
        self.begin_epoch(epoch)
    }

    fn begin_epoch(&mut self, epoch: usize) -> Result<()> {
        self.epoch = epoch;
        self.pairs.restart();
        self.corpus.rewind()?;
        self.stream = epoch_pair_stream(self.config.seed, epoch);
        self.negative_stream = epoch_negative_stream(self.config.seed, epoch);
        if epoch > 0 {
            self.sampler = epoch_sampler(&self.config, &self.float_counts, epoch)?;
        }
        if let Some(racers) = &mut self.racers {
            racers.begin_epoch(&self.config, &self.float_counts, epoch)?;
        }
        Ok(())
    }

    /// Raw corpus words over all epochs.
    pub fn total_words(&self) -> u64 {
        self.corpus.tokens() * self.config.epochs as u64
    }

    /// Raw corpus words processed so far.
    pub fn words_done(&self) -> u64 {
        // The pair generator restarts (position 0) at every epoch's end.
        let position = match &self.racers {
            Some(racers) => racers.position(),
            None => self.pairs.position(),
        };
        self.epoch as u64 * self.corpus.tokens() + position
    }

    /// Trains until at least `max_words` more raw words are processed, the current epoch ends,
    /// or training diverges. `embeddings` must have the vocabulary's rows and `dim` columns.
    /// `parallel`: on a team of rustnce's number of threads (see `spinning_team`), else on the
    /// calling thread; the results are the same bits. A racing trainer (`SkipGramConfig::
    /// racing`) always runs its lanes, one thread each.
    pub fn run(
        &mut self,
        embeddings: &mut Embeddings<'_>,
        max_words: u64,
        parallel: bool,
    ) -> Result<RunReport> {
        if self.racers.is_some() {
            return self.run_racing(embeddings, max_words);
        }
        let threads = if parallel {
            parallelism::configured_threads()
        } else {
            1
        };
        if threads <= 1 {
            return self.run_on(embeddings, max_words, Workers::Serial);
        }
        if self.config.update == UpdateRule::Sequential {
            // The pairs run on one thread in order; a second forms the next batch meanwhile.
            return with_team(2, |team| self.run_pipelined(embeddings, max_words, team));
        }
        with_team(threads, |team| {
            self.run_on(embeddings, max_words, Workers::Team(team))
        })
    }

    /// As `run_on` for `UpdateRule::Sequential` (negatives per window), with the next batch
    /// formed on the team's second member while the current one trains on the first. Every
    /// batch is formed from the same state, with the same rate, as in `run_on`, so the results
    /// are the same bits.
    fn run_pipelined(
        &mut self,
        embeddings: &mut Embeddings<'_>,
        max_words: u64,
        team: &Team,
    ) -> Result<RunReport> {
        self.check_tables(embeddings)?;
        let mut report = self.new_report();
        let start_words = self.words_done();
        if !self.continues(start_words, max_words) {
            return Ok(self.finished(report));
        }
        let mut current = WindowBatch::default();
        let mut rate = self.rate_now();
        let mut epoch_end = self.window_source().0.form(&mut current)?;
        loop {
            // Formed now exactly when `run_on` would form it next: same state, same rate.
            let form_next = !epoch_end && self.continues(start_words, max_words);
            let next_rate = self.rate_now();
            let mut next = std::mem::take(&mut self.formed);
            let loss_function = self.config.loss;
            let (loss, formed) = {
                let (mut source, step) = self.window_source();
                let step_job = Mutex::new(Some((step, &mut *embeddings, &current)));
                let form_job = Mutex::new(form_next.then_some((&mut source, &mut next)));
                let loss = Mutex::new(0.0f64);
                let formed = Mutex::new(None);
                Workers::Team(team).for_each(vec![0usize, 1], |job| {
                    if job == 0 {
                        let taken = step_job.lock().unwrap_or_else(|e| e.into_inner()).take();
                        if let Some((step, embeddings, batch)) = taken {
                            if !batch.centers.is_empty() {
                                *loss.lock().unwrap_or_else(|e| e.into_inner()) = step
                                    .run_on_workers(
                                        embeddings,
                                        &batch.pairs(),
                                        loss_function,
                                        rate,
                                        UpdateRule::Sequential,
                                        Workers::Serial,
                                    );
                            }
                        }
                    } else {
                        let taken = form_job.lock().unwrap_or_else(|e| e.into_inner()).take();
                        if let Some((source, batch)) = taken {
                            *formed.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(source.form(batch));
                        }
                    }
                });
                (
                    loss.into_inner().unwrap_or_else(|e| e.into_inner()),
                    formed.into_inner().unwrap_or_else(|e| e.into_inner()),
                )
            };
            let count = current.centers.len();
            if count > 0 && self.record(&mut report, count, loss, rate) {
                return Ok(report);
            }
            if epoch_end {
                report.epoch = self.epoch;
                report.epoch_end = true;
                self.begin_epoch(self.epoch + 1)?;
                break;
            }
            match formed {
                Some(result) => {
                    epoch_end = result?;
                    self.formed = std::mem::replace(&mut current, next);
                    rate = next_rate;
                }
                None => {
                    self.formed = next;
                    break;
                }
            }
        }
        Ok(self.finished(report))
    }

    /// As `run_on` for racing lanes (see `racing.rs`): the lanes run until the words handed
    /// out reach `max_words` more, the epoch ends or a batch diverges.
    fn run_racing(&mut self, embeddings: &mut Embeddings<'_>, max_words: u64) -> Result<RunReport> {
        self.check_tables(embeddings)?;
        let mut report = self.new_report();
        let start_words = self.words_done();
        if !self.continues(start_words, max_words) {
            return Ok(self.finished(report));
        }
        let before = self.epoch as u64 * self.corpus.tokens();
        let (learning_rate, total) = (self.config.learning_rate, self.total_words());
        let rate = move |handed_out: u64| decayed_rate(learning_rate, before + handed_out, total);
        let Some(racers) = self.racers.as_mut() else {
            return Ok(self.finished(report));
        };
        let stop_at = match max_words {
            0 => u64::MAX,
            words => racers.position().saturating_add(words),
        };
        let lanes = racers.lanes();
        let (corpus, config, window_log_q) =
            (self.corpus.as_mut(), &self.config, &self.window_log_q[..]);
        let outcome = with_team(lanes, |team| {
            racers.run(
                corpus,
                config,
                window_log_q,
                &rate,
                embeddings,
                stop_at,
                team,
            )
        })?;
        report.pairs = outcome.pairs;
        report.loss = outcome.loss;
        report.learning_rate = outcome.rate;
        if outcome.diverged.is_some() {
            report.diverged = outcome.diverged;
            report.words = self.words_done();
            return Ok(report);
        }
        if outcome.epoch_end {
            report.epoch = self.epoch;
            report.epoch_end = true;
            self.begin_epoch(self.epoch + 1)?;
        }
        Ok(self.finished(report))
    }

    /// What forming a window batch uses, and beside it the step (disjoint borrows, so that a
    /// batch can be formed while another trains).
    fn window_source(&mut self) -> (WindowBatchSource<'_>, &mut SkipGramStep) {
        let source = WindowBatchSource {
            pairs: &mut self.pairs,
            corpus: self.corpus.as_mut(),
            stream: &mut self.stream,
            negative_stream: &mut self.negative_stream,
            sampler: &mut self.sampler,
            config: &self.config,
            window_log_q: &self.window_log_q,
        };
        (source, &mut self.step)
    }

    /// A report that starts at the current epoch.
    fn new_report(&self) -> RunReport {
        RunReport {
            epoch: self.epoch.min(self.config.epochs.saturating_sub(1)),
            ..RunReport::default()
        }
    }

    /// Whether a run that started at `start_words` and may take `max_words` (0: to the
    /// epoch's end) forms another batch.
    fn continues(&self, start_words: u64, max_words: u64) -> bool {
        self.epoch < self.config.epochs
            && !(self.words_done() - start_words >= max_words && max_words > 0)
    }

    /// The learning rate of the next batch: linear decay with the words done, down to
    /// `MIN_RATE_FRACTION` of the start.
    fn rate_now(&self) -> f32 {
        decayed_rate(
            self.config.learning_rate,
            self.words_done(),
            self.total_words(),
        )
    }

    /// Adds a trained batch of `count` pairs to `report`; true (with `diverged` and `words`
    /// set) if its loss shows that training diverged.
    fn record(&self, report: &mut RunReport, count: usize, loss: f64, rate: f32) -> bool {
        report.pairs += count as u64;
        report.loss += loss;
        report.learning_rate = rate;
        if diverged(self.config.negatives, loss, count) {
            report.diverged = Some(loss / count as f64);
            report.words = self.words_done();
            return true;
        }
        false
    }

    /// `report` at the end of a run.
    fn finished(&self, mut report: RunReport) -> RunReport {
        report.finished = self.epoch >= self.config.epochs;
        report.words = self.words_done();
        report
    }

    /// The tables must have the vocabulary's rows and `dim` columns.
    fn check_tables(&self, embeddings: &Embeddings<'_>) -> Result<()> {
        let dim = self.config.dim;
        for (name, len, expected) in [
            (
                "input_vectors",
                embeddings.input.len(),
                self.vocabulary * dim,
            ),
            (
                "output_vectors",
                embeddings.output.len(),
                self.vocabulary * dim,
            ),
            ("biases", embeddings.biases.len(), self.vocabulary),
        ] {
            if len != expected || embeddings.dim != dim {
                return Err(NceError::invalid(
                    name,
                    format!(
                        "must have {expected} elements ([{}, {dim}] or [{}])",
                        self.vocabulary, self.vocabulary
                    ),
                ));
            }
        }
        Ok(())
    }

    fn run_on(
        &mut self,
        embeddings: &mut Embeddings<'_>,
        max_words: u64,
        workers: Workers,
    ) -> Result<RunReport> {
        self.check_tables(embeddings)?;
        let mut report = self.new_report();
        let start_words = self.words_done();
        while self.continues(start_words, max_words) {
            let rate = self.rate_now();
            let mut windows = std::mem::take(&mut self.formed);
            let epoch_end = match self.config.sharing {
                NegativeSharing::Window => self.window_source().0.form(&mut windows)?,
                NegativeSharing::Batch => {
                    self.centers.clear();
                    self.contexts.clear();
                    self.window_ends.clear();
                    self.pairs.fill(
                        self.corpus.as_mut(),
                        &mut self.stream,
                        self.config.batch_pairs,
                        &mut self.centers,
                        &mut self.contexts,
                        &mut self.window_ends,
                    )?
                }
            };
            let count = match self.config.sharing {
                NegativeSharing::Window => windows.centers.len(),
                NegativeSharing::Batch => self.centers.len(),
            };
            if count > 0 {
                let batch = match self.config.sharing {
                    NegativeSharing::Batch => {
                        self.draw_negatives()?;
                        PairBatch {
                            centers: &self.centers,
                            contexts: &self.contexts,
                            context_log_q: &self.context_log_q,
                            negatives: &self.negatives,
                            negative_log_q: &self.negative_log_q,
                            group_ends: &[],
                        }
                    }
                    NegativeSharing::Window => windows.pairs(),
                };
                // The team, or this thread alone where that measured faster: the same bits.
                let team = matches!(workers, Workers::Team(_)) && self.chooser.team();
                let started = Instant::now();
                let loss = self.step.run_on_workers(
                    embeddings,
                    &batch,
                    self.config.loss,
                    rate,
                    self.config.update,
                    if team { workers } else { Workers::Serial },
                );
                if matches!(workers, Workers::Team(_)) {
                    self.chooser.record(team, started.elapsed());
                }
                if self.record(&mut report, count, loss, rate) {
                    return Ok(report);
                }
            }
            self.formed = windows;
            if epoch_end {
                report.epoch = self.epoch;
                report.epoch_end = true;
                self.begin_epoch(self.epoch + 1)?;
                break;
            }
        }
        Ok(self.finished(report))
    }

    /// The batch's negatives and `ln` of the expected counts (TensorFlow's `unique=True` draw).
    fn draw_negatives(&mut self) -> Result<()> {
        let uses_counts = self.config.loss.uses_expected_counts();
        self.true_classes.clear();
        if uses_counts {
            self.true_classes
                .extend(self.contexts.iter().map(|&id| id as i64));
        } else {
            self.true_classes.push(0); // the expected counts are not used
        }
        let rows = self.true_classes.len();
        let classes = ArrayView2::from_shape((rows, 1), &self.true_classes)
            .map_err(|error| NceError::invalid("contexts", error.to_string()))?;
        let sample = self
            .sampler
            .sample(classes, 1, self.config.negatives, true)?;
        self.negatives.clear();
        self.negatives
            .extend(sample.sampled_candidates.iter().map(|&id| id as u32));
        self.negative_log_q.clear();
        self.context_log_q.clear();
        if uses_counts {
            self.negative_log_q
                .extend(sample.sampled_expected_count.iter().map(|q| q.ln()));
            self.context_log_q
                .extend(sample.true_expected_count.iter().map(|q| q.ln()));
        } else {
            self.negative_log_q.resize(self.negatives.len(), 0.0);
            self.context_log_q.resize(self.centers.len(), 0.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerChooser;
    use std::time::Duration;

    /// Runs one period in which a step takes `alone` on the calling thread and `together` on
    /// the team; returns where each step ran.
    fn period(chooser: &mut WorkerChooser, alone: u64, together: u64) -> Vec<bool> {
        (0..WorkerChooser::PERIOD)
            .map(|_| {
                let team = chooser.team();
                let time = if team { together } else { alone };
                chooser.record(team, Duration::from_micros(time));
                team
            })
            .collect()
    }

    #[test]
    fn the_chooser_keeps_whichever_way_its_trials_found_faster() {
        let trial = WorkerChooser::TRIAL;
        let mut chooser = WorkerChooser::default();
        // The team twice as fast: trials alone, then on the team, then the team.
        let places = period(&mut chooser, 100, 50);
        assert!(places[..trial].iter().all(|&team| !team));
        assert!(places[trial..2 * trial].iter().all(|&team| team));
        assert!(places[2 * trial..].iter().all(|&team| team));
        // The next period measures again: now the team at half speed loses.
        let places = period(&mut chooser, 100, 200);
        assert!(places[2 * trial..].iter().all(|&team| !team));
        // And the team wins back when it is faster again.
        let places = period(&mut chooser, 100, 90);
        assert!(places[2 * trial..].iter().all(|&team| team));
    }
}
