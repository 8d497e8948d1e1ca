//! `cargo bench`: sampler draws, sampled logits, the fused forward + backward on the issue's
//! configurations (float32), and the skip-gram step, on rustnce's thread pool
//! (`RUSTNCE_NUM_THREADS`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2};
use rustnce::losses::forward_backward::{
    forward_backward, forward_backward_rescalable, sgd_step, SgdTargets, Upstream,
};
use rustnce::losses::{sampled_loss, SampledLoss};
use rustnce::parallelism;
use rustnce::phase_timers;
use rustnce::sampled_logits::{SampledLossInputs, SampledValues};
use rustnce::samplers::{CandidateSampler, FixedUnigramConfig};
use rustnce::sharding::ShardedMatrix;
use rustnce::sharding::{PartitionStrategy, ShardedRowsMut};
use rustnce::skipgram::{Embeddings, PairBatch, SkipGramLoss, SkipGramStep, UpdateRule, Workers};
use rustnce::spinning_team::with_team;
use rustnce::workspace;
use rustnce::Seed;

struct Config {
    name: &'static str,
    classes: usize,
    dim: usize,
    batch: usize,
    num_sampled: usize,
    num_true: usize,
}

const CONFIGS: [Config; 3] = [
    Config {
        name: "w2v-small",
        classes: 100_000,
        dim: 128,
        batch: 1_024,
        num_sampled: 64,
        num_true: 1,
    },
    Config {
        name: "w2v-large",
        classes: 1_000_000,
        dim: 300,
        batch: 4_096,
        num_sampled: 128,
        num_true: 1,
    },
    Config {
        name: "multi-true",
        classes: 200_000,
        dim: 128,
        batch: 2_048,
        num_sampled: 64,
        num_true: 5,
    },
];

/// A deterministic pseudo-random value in [-0.5, 0.5).
fn noise(index: usize) -> f32 {
    let mut x = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
}

struct Problem {
    weights: Array2<f32>,
    biases: Array2<f32>,
    labels: Array2<i64>,
    inputs: Array2<f32>,
    sampled: Array1<i64>,
    true_q: Array2<f32>,
    sampled_q: Array1<f32>,
}

impl Problem {
    fn new(config: &Config) -> Self {
        let weights = Array2::from_shape_fn((config.classes, config.dim), |(i, j)| {
            0.1 * noise(i * config.dim + j)
        });
        // Zipf-like labels from the log-uniform distribution, as word frequencies (and as
        // benches/compare.py draws them): frequent rows stay in the cache.
        let labels = Array2::from_shape_fn((config.batch, config.num_true), |(i, t)| {
            let u = f64::from(noise(7 * i + t + 1)) + 0.5;
            let id = ((u * (config.classes as f64 + 1.0).ln()).exp()).floor() as i64 - 1;
            id.clamp(0, config.classes as i64 - 1)
        });
        let mut sampler =
            CandidateSampler::log_uniform(config.classes as i64, Seed::Op(1)).unwrap();
        let sample = sampler
            .sample(labels.view(), config.num_true, config.num_sampled, true)
            .unwrap();
        Problem {
            weights,
            biases: Array2::zeros((config.classes, 1)),
            inputs: Array2::from_shape_fn((config.batch, config.dim), |(i, j)| noise(31 * i + j)),
            labels,
            sampled: Array1::from(sample.sampled_candidates),
            true_q: sample.true_expected_count,
            sampled_q: Array1::from(sample.sampled_expected_count),
        }
    }

    fn inputs(&self) -> SampledLossInputs<'_, f32, i64> {
        SampledLossInputs {
            weights: ShardedMatrix::single(self.weights.view()),
            biases: ShardedMatrix::single(self.biases.view()),
            labels: self.labels.view(),
            inputs: self.inputs.view(),
            num_classes: self.weights.nrows(),
            sampled: SampledValues {
                candidates: self.sampled.view(),
                true_expected_count: self.true_q.view().into_dyn(),
                sampled_expected_count: self.sampled_q.view().into_dyn(),
            },
            remove_accidental_hits: false,
            subtract_log_q: true,
            // `RUSTNCE_PHASES_PRECISION=bfloat16` times the phases with bfloat16 products.
            precision: match std::env::var("RUSTNCE_PHASES_PRECISION").as_deref() {
                Ok("bfloat16") => rustnce::bfloat16::Precision::BFloat16,
                _ => rustnce::bfloat16::Precision::Float32,
            },
        }
    }
}

fn samplers(c: &mut Criterion) {
    let mut group = c.benchmark_group("sampler draws");
    group.measurement_time(Duration::from_secs(3));
    let true_classes = Array2::<i64>::zeros((1, 1));
    let draws = 4096;
    group.throughput(Throughput::Elements(draws as u64));
    let counts: Vec<f32> = (0..100_000).map(|i| 1e6 / (i as f32 + 1.0)).collect();
    for unique in [false, true] {
        let mut log_uniform = CandidateSampler::log_uniform(1_000_000, Seed::Op(1)).unwrap();
        group.bench_function(
            BenchmarkId::new("log-uniform 1e6", format!("unique={unique}")),
            |b| {
                b.iter(|| {
                    black_box(
                        log_uniform
                            .sample(true_classes.view(), 1, draws, unique)
                            .unwrap(),
                    )
                })
            },
        );
        let mut uniform = CandidateSampler::uniform(1_000_000, Seed::Op(1)).unwrap();
        group.bench_function(
            BenchmarkId::new("uniform 1e6", format!("unique={unique}")),
            |b| {
                b.iter(|| {
                    black_box(
                        uniform
                            .sample(true_classes.view(), 1, draws, unique)
                            .unwrap(),
                    )
                })
            },
        );
        let mut config = FixedUnigramConfig::from_counts(100_000, counts.clone());
        config.distortion = 0.75;
        let mut unigram = CandidateSampler::fixed_unigram(config, Seed::Op(1)).unwrap();
        group.bench_function(
            BenchmarkId::new("unigram^0.75 1e5", format!("unique={unique}")),
            |b| {
                b.iter(|| {
                    black_box(
                        unigram
                            .sample(true_classes.view(), 1, draws, unique)
                            .unwrap(),
                    )
                })
            },
        );
    }
    group.finish();
}

fn losses(c: &mut Criterion) {
    for config in &CONFIGS {
        let problem = Problem::new(config);
        let inputs = problem.inputs();
        let mut group = c.benchmark_group(config.name);
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(4));
        group.bench_function("sampled logits", |b| {
            b.iter(|| parallelism::install(|| black_box(inputs.compute_sampled_logits().unwrap())))
        });
        group.bench_function("nce forward", |b| {
            b.iter(|| {
                parallelism::install(|| black_box(sampled_loss(&inputs, SampledLoss::Nce).unwrap()))
            })
        });
        for (name, loss) in [
            ("nce", SampledLoss::Nce),
            ("sampled softmax", SampledLoss::SampledSoftmax),
        ] {
            group.bench_function(format!("{name} forward+backward"), |b| {
                b.iter(|| {
                    parallelism::install(|| {
                        black_box(forward_backward(&inputs, loss, &Upstream::Sum).unwrap())
                    })
                })
            });
        }
        // The same pass with bfloat16 products (where the processor has them).
        if rustnce::bfloat16::BFloat16Products::detect().is_some() {
            let bfloat16 = SampledLossInputs {
                precision: rustnce::bfloat16::Precision::BFloat16,
                ..inputs.clone()
            };
            group.bench_function("nce forward+backward, bfloat16 products", |b| {
                b.iter(|| {
                    parallelism::install(|| {
                        black_box(
                            forward_backward(&bfloat16, SampledLoss::Nce, &Upstream::Sum).unwrap(),
                        )
                    })
                })
            });
        }
        // What rustnce.torch's forward runs (the logits' gradient kept, its buffer recycled
        // as the binding does), and the backward of a grad_output that differs per example.
        group.bench_function("nce forward+backward, rescalable", |b| {
            b.iter(|| {
                parallelism::install(|| {
                    let mut gradients =
                        forward_backward_rescalable(&inputs, SampledLoss::Nce, &Upstream::Sum)
                            .unwrap();
                    if let Some(kept) = gradients.logit_gradient.take() {
                        workspace::recycle(kept);
                    }
                    black_box(gradients)
                })
            })
        });
        let kept = parallelism::install(|| {
            forward_backward_rescalable(&inputs, SampledLoss::Nce, &Upstream::Sum).unwrap()
        });
        let upstream = Array1::linspace(-1.0, 2.0, kept.batch());
        let upstream = upstream.mapv(|v: f64| v as f32);
        group.bench_function("nce rescaled by a per-example upstream", |b| {
            b.iter(|| {
                parallelism::install(|| {
                    let mut gradients = kept
                        .rescaled(
                            &inputs.inputs,
                            &kept.inputs_gradient.view(),
                            &upstream.view(),
                        )
                        .unwrap();
                    if let Some(kept) = gradients.logit_gradient.take() {
                        workspace::recycle(kept);
                    }
                    black_box(gradients)
                })
            })
        });
        group.finish();
    }
}

/// The skip-gram benchmark's tables and batch.
struct SkipGramData {
    input: Vec<f32>,
    output: Vec<f32>,
    biases: Vec<f32>,
    centers: Vec<u32>,
    contexts: Vec<u32>,
    context_log_q: Vec<f32>,
    negatives: Vec<u32>,
    negative_log_q: Vec<f32>,
    /// word2vec's orientation, negatives per window of 6 pairs (the trainer's default):
    /// contexts as inputs, each window's center as the positive output, 5 negatives a window.
    window_ends: Vec<u32>,
    window_negatives: Vec<u32>,
    window_negative_log_q: Vec<f32>,
    dim: usize,
    pairs: usize,
}

impl SkipGramData {
    fn new() -> Self {
        let (vocabulary, dim, pairs) = (10_000usize, 100usize, 512usize);
        // Centers repeat as in text (about six pairs each); contexts and negatives spread out.
        let negatives: Vec<u32> = (0..10).map(|j| (j * 997 + 3) as u32).collect();
        SkipGramData {
            input: (0..vocabulary * dim).map(|k| noise(k) * 0.01).collect(),
            output: (0..vocabulary * dim).map(|k| noise(k + 1) * 0.01).collect(),
            biases: vec![0.0f32; vocabulary],
            centers: (0..pairs)
                .map(|i| ((i / 6) * 37 % vocabulary) as u32)
                .collect(),
            contexts: (0..pairs)
                .map(|i| (i * 7_331 % vocabulary) as u32)
                .collect(),
            context_log_q: vec![-3.0f32; pairs],
            negative_log_q: vec![-2.0f32; negatives.len()],
            negatives,
            window_ends: (1..=pairs.div_ceil(6))
                .map(|w| (w * 6).min(pairs) as u32)
                .collect(),
            window_negatives: (0..pairs.div_ceil(6) * 5)
                .map(|k| (k * 4_099 % vocabulary) as u32)
                .collect(),
            window_negative_log_q: vec![-2.0f32; pairs.div_ceil(6) * 5],
            dim,
            pairs,
        }
    }

    /// The batch with shared negatives (`window = false`) or negatives per window.
    fn batch(&self, window: bool) -> PairBatch<'_> {
        if window {
            PairBatch {
                centers: &self.contexts,
                contexts: &self.centers,
                context_log_q: &self.context_log_q,
                negatives: &self.window_negatives,
                negative_log_q: &self.window_negative_log_q,
                group_ends: &self.window_ends,
            }
        } else {
            PairBatch {
                centers: &self.centers,
                contexts: &self.contexts,
                context_log_q: &self.context_log_q,
                negatives: &self.negatives,
                negative_log_q: &self.negative_log_q,
                group_ends: &[],
            }
        }
    }
}

/// `cargo bench -- phases` also: the skip-gram step (as in `skipgram_step`) on 1 and 2 threads,
/// interleaved in rounds, wall µs per step (medians).
fn skipgram_threads() {
    let data = SkipGramData::new();
    let (mut input, mut output, mut biases) =
        (data.input.clone(), data.output.clone(), data.biases.clone());
    let mut step = SkipGramStep::default();
    let (rounds, steps) = (9, 400);
    println!("\n== skip-gram step (512 pairs, dim 100; 10 negatives shared by the batch, or 5 per window of 6 pairs), bounded update: wall µs per step, medians of {rounds} interleaved rounds of {steps} steps");
    for (name, window) in [("batch-shared 10", false), ("per-window 5", true)] {
        let batch = data.batch(window);
        for loss in [SkipGramLoss::Nce, SkipGramLoss::Neg] {
            let mut times = [Vec::new(), Vec::new(), Vec::new()];
            for round in 0..=rounds {
                for (slot, slot_times) in times.iter_mut().enumerate() {
                    parallelism::set_num_threads(if slot == 0 { 1 } else { 2 });
                    let start = Instant::now();
                    let mut run = |workers: Workers<'_>| {
                        let mut embeddings = Embeddings {
                            input: &mut input,
                            output: &mut output,
                            biases: &mut biases,
                            dim: data.dim,
                        };
                        let rule = UpdateRule::Bounded;
                        run_steps(
                            &mut step,
                            &mut embeddings,
                            &batch,
                            loss,
                            rule,
                            workers,
                            steps,
                        );
                    };
                    match slot {
                        0 => run(Workers::Serial),
                        1 => parallelism::install(|| run(Workers::Pool)),
                        _ => with_team(2, |team| run(Workers::Team(team))),
                    }
                    if round > 0 {
                        slot_times.push(start.elapsed().as_secs_f64() * 1e6 / steps as f64);
                    }
                }
            }
            parallelism::set_num_threads(0);
            let (one, pool, team) = (
                median(&mut times[0]),
                median(&mut times[1]),
                median(&mut times[2]),
            );
            println!(
                "  {name} {loss:?}: 1 thread {one:.1}; 2 threads: pool {pool:.1} ({:.2}x), team {team:.1} ({:.2}x); {:.0} ns per pair on 1 thread",
                one / pool,
                one / team,
                one * 1e3 / data.pairs as f64
            );
        }
    }
    // The default update rule, pair by pair (one thread), against the bounded step on one
    // thread, on the per-window batch.
    let batch = data.batch(true);
    println!("\n== the same per-window batch on one thread: pair by pair (update sequential) against the bounded step, ns per pair, medians of {rounds} interleaved rounds of {steps} steps");
    for loss in [SkipGramLoss::Nce, SkipGramLoss::Neg] {
        let mut times = [Vec::new(), Vec::new()];
        for round in 0..=rounds {
            for (slot, rule) in [UpdateRule::Sequential, UpdateRule::Bounded]
                .into_iter()
                .enumerate()
            {
                let start = Instant::now();
                let mut embeddings = Embeddings {
                    input: &mut input,
                    output: &mut output,
                    biases: &mut biases,
                    dim: data.dim,
                };
                let serial = Workers::Serial;
                run_steps(
                    &mut step,
                    &mut embeddings,
                    &batch,
                    loss,
                    rule,
                    serial,
                    steps,
                );
                if round > 0 {
                    times[slot]
                        .push(start.elapsed().as_secs_f64() * 1e9 / (steps * data.pairs) as f64);
                }
            }
        }
        let (sequential, bounded) = (median(&mut times[0]), median(&mut times[1]));
        println!(
            "  {loss:?}: pair by pair {sequential:.0}, bounded {bounded:.0} ({:.2}x)",
            bounded / sequential
        );
    }
}

/// `steps` skip-gram steps on `batch` (a tiny rate keeps the tables from drifting).
fn run_steps(
    step: &mut SkipGramStep,
    embeddings: &mut Embeddings<'_>,
    batch: &PairBatch<'_>,
    loss: SkipGramLoss,
    rule: UpdateRule,
    workers: Workers<'_>,
    steps: usize,
) {
    for _ in 0..steps {
        black_box(step.run_on_workers(embeddings, batch, loss, 1e-6, rule, workers));
    }
}

/// One skip-gram SGD step on a word2vec-sized batch: 512 pairs, dim 100, 10 shared negatives,
/// a 10,000-word vocabulary (pairs per second is the throughput).
fn skipgram_step(c: &mut Criterion) {
    let data = SkipGramData::new();
    let (mut input, mut output, mut biases) =
        (data.input.clone(), data.output.clone(), data.biases.clone());
    let (dim, pairs) = (data.dim, data.pairs);
    let batch = data.batch(false);
    let mut step = SkipGramStep::default();
    let mut group = c.benchmark_group("skipgram step");
    group
        .throughput(Throughput::Elements(pairs as u64))
        .sample_size(30)
        .measurement_time(Duration::from_secs(3));
    for loss in [
        SkipGramLoss::Nce,
        SkipGramLoss::SampledSoftmax,
        SkipGramLoss::Neg,
    ] {
        group.bench_function(format!("{loss:?}"), |b| {
            // Inside the pool, as the trainer runs its steps (no hop into the pool per step).
            parallelism::install(|| {
                b.iter(|| {
                    let mut embeddings = Embeddings {
                        input: &mut input,
                        output: &mut output,
                        biases: &mut biases,
                        dim,
                    };
                    // A tiny rate keeps the tables from drifting over millions of steps.
                    black_box(step.run(&mut embeddings, &batch, loss, 1e-6, true))
                })
            })
        });
    }
    group.finish();
}

/// Median of `values` (sorted in place).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `cargo bench --features phase-timers -- phases`: where the fused pass of each configuration
/// spends its time, and what the gradient forms add. Three operations: the fused pass; the
/// fused pass + TensorFlow's row-sparse weight values (what `nce_loss_and_gradients` hands to
/// Python); the fused pass + scatter-add (the SGD step). Each runs on one thread (the calling
/// thread, timed in its CPU time: a shared machine disturbs it little) and on a pool of two
/// (timed in wall time), interleaved in rounds; medians of the rounds. The per-phase table is
/// CPU time per call summed over threads. Not a criterion benchmark: it runs only when the
/// filter is `phases`.
fn phases(_: &mut Criterion) {
    if !std::env::args().any(|argument| argument == "phases") {
        return;
    }
    if !phase_timers::ENABLED {
        println!("phases: build with `--features phase-timers` for the per-phase table");
    }
    const ROUNDS: usize = 7;
    const OPERATIONS: [&str; 3] = ["fused pass", "+ row-sparse values", "+ scatter-add (SGD)"];
    const FUSED_ONLY: [phase_timers::Phase; 3] = [
        phase_timers::Phase::RowSparseValues,
        phase_timers::Phase::GroupRows,
        phase_timers::Phase::ScatterRows,
    ];
    // `RUSTNCE_PHASES=multi-true` (say) runs one configuration and skips the skip-gram step;
    // `RUSTNCE_PHASES=skipgram` runs only the skip-gram step.
    let only = std::env::var("RUSTNCE_PHASES").ok();
    if only.is_none() || only.as_deref() == Some("skipgram") {
        skipgram_threads();
        if only.is_some() {
            return;
        }
    }
    for config in CONFIGS
        .iter()
        .filter(|config| only.as_deref().is_none_or(|name| name == config.name))
    {
        let problem = Problem::new(config);
        let inputs = problem.inputs();
        let mut target = problem.weights.clone();
        let mut target_biases = problem.biases.clone();
        let work = config.batch * (config.num_sampled + config.num_true) * config.dim;
        let calls = (400_000_000 / work).clamp(5, 200);
        let mut run = |operation: usize| {
            if operation == 2 {
                // The SGD step as the Python call runs it: reading and updating the same arrays.
                let (w_ptr, b_ptr) = (target.as_mut_ptr(), target_biases.as_mut_ptr());
                let (w_dim, b_dim) = (target.raw_dim(), target_biases.raw_dim());
                // SAFETY: two views of each of the bench's own target arrays, from one pointer
                // each, handed to `sgd_step` as its contract asks; nothing else touches them.
                let (read_w, read_b, write_w, write_b) = unsafe {
                    (
                        ArrayView2::from_shape_ptr(w_dim, w_ptr as *const f32),
                        ArrayView2::from_shape_ptr(b_dim, b_ptr as *const f32),
                        ArrayViewMut2::from_shape_ptr(w_dim, w_ptr),
                        ArrayViewMut2::from_shape_ptr(b_dim, b_ptr),
                    )
                };
                let mut stepped = inputs.clone();
                stepped.weights = ShardedMatrix::single(read_w);
                stepped.biases = ShardedMatrix::single(read_b);
                let weights =
                    ShardedRowsMut::new(vec![write_w], PartitionStrategy::Div, "weights").unwrap();
                let biases =
                    ShardedRowsMut::new(vec![write_b], PartitionStrategy::Div, "biases").unwrap();
                let targets = SgdTargets {
                    weights: &weights,
                    biases: &biases,
                    scale: -1e-9,
                };
                // SAFETY: the targets are the stepped problem's own arrays.
                let gradients =
                    unsafe { sgd_step(&stepped, SampledLoss::Nce, &Upstream::Sum, &targets) };
                black_box(gradients.unwrap());
                return;
            }
            let gradients = forward_backward(&inputs, SampledLoss::Nce, &Upstream::Sum).unwrap();
            if operation == 1 {
                black_box(gradients.tf_weight_values(&inputs.inputs));
            }
            black_box(gradients);
        };
        // [one thread CPU, one thread wall, two threads wall][operation]: µs per call per round.
        let mut times = vec![vec![Vec::new(); OPERATIONS.len()]; 3];
        // [one thread, two threads][phase]: µs per call, summed over threads and rounds.
        let mut phase_totals = vec![vec![0.0f64; phase_timers::PHASES.len()]; 2];
        parallelism::set_num_threads(2);
        for round in 0..=ROUNDS {
            for (pool, totals) in phase_totals.iter_mut().enumerate() {
                for (operation, _) in OPERATIONS.iter().enumerate() {
                    if pool == 1 {
                        // One untimed call first: the pool's threads slept through the
                        // one-thread timings, and waking them would count against whichever
                        // operation comes first.
                        parallelism::install(|| run(operation));
                    }
                    phase_timers::take();
                    let (cpu, wall) = (phase_timers::thread_cpu_time(), Instant::now());
                    for _ in 0..calls {
                        if pool == 0 {
                            // All on this thread: the pieces run one after another.
                            parallelism::install_sized(0, || run(operation));
                        } else {
                            parallelism::install(|| run(operation));
                        }
                    }
                    let per_call = |seconds: f64| seconds * 1e6 / calls as f64;
                    let (cpu, wall) = (
                        per_call((phase_timers::thread_cpu_time() - cpu).as_secs_f64()),
                        per_call(wall.elapsed().as_secs_f64()),
                    );
                    let spent = phase_timers::take();
                    if round == 0 {
                        continue; // warm-up
                    }
                    if pool == 0 {
                        times[0][operation].push(cpu);
                        times[1][operation].push(wall);
                    } else {
                        times[2][operation].push(wall);
                    }
                    for (total, (_, _, time)) in totals.iter_mut().zip(&spent) {
                        *total += per_call(time.as_secs_f64()) / ROUNDS as f64;
                    }
                }
            }
        }
        parallelism::set_num_threads(0);
        let medians: Vec<Vec<f64>> = times
            .iter_mut()
            .map(|rows| rows.iter_mut().map(|v| median(v)).collect())
            .collect();
        println!(
            "\n== phases {} (classes {}, dim {}, batch {}, sampled {}, true {}): µs per call, \
             medians of {ROUNDS} interleaved rounds of {calls} calls",
            config.name,
            config.classes,
            config.dim,
            config.batch,
            config.num_sampled,
            config.num_true
        );
        for (label, row) in ["1 thread, CPU", "1 thread, wall", "2 threads, wall"]
            .iter()
            .zip(&medians)
        {
            let cells: Vec<String> = OPERATIONS
                .iter()
                .zip(row)
                .map(|(name, us)| format!("{name} {us:.0}"))
                .collect();
            println!("  {label:<16} {}", cells.join(" | "));
        }
        println!(
            "  2 threads vs 1 (wall): fused pass {:.2}x, SGD step {:.2}x; \
             SGD step / gradients call: 1 thread (CPU) {:.3}, 2 threads (wall) {:.3}",
            medians[1][0] / medians[2][0],
            medians[1][2] / medians[2][2],
            medians[0][2] / medians[0][1],
            medians[2][2] / medians[2][1],
        );
        if !phase_timers::ENABLED {
            continue;
        }
        // The fused pass's phases ran in all three operations: per pass, a third of the total.
        let per_pass = |pool: usize, index: usize| {
            let (phase, _) = phase_timers::PHASES[index];
            let total = phase_totals[pool][index];
            if FUSED_ONLY.contains(&phase) {
                total
            } else {
                total / 3.0
            }
        };
        println!(
            "  per phase, CPU µs per call summed over threads (share of the 1-thread fused pass):"
        );
        for (index, &(_, name)) in phase_timers::PHASES.iter().enumerate() {
            println!(
                "    {name:<40} 1 thread {:>8.1} ({:>4.1}%)   2 threads {:>8.1}",
                per_pass(0, index),
                100.0 * per_pass(0, index) / medians[0][0],
                per_pass(1, index),
            );
        }
        let fused_phases = |pool: usize| -> f64 {
            (0..phase_timers::PHASES.len())
                .filter(|&index| !FUSED_ONLY.contains(&phase_timers::PHASES[index].0))
                .map(|index| per_pass(pool, index))
                .sum()
        };
        println!(
            "    fused pass outside the phases: 1 thread {:.1} (CPU − phases); \
             2 threads {:.1} (2 × wall − phases: waiting for the other thread, coordination)",
            medians[0][0] - fused_phases(0),
            2.0 * medians[2][0] - fused_phases(1),
        );
    }
}

criterion_group!(benches, phases, samplers, losses, skipgram_step);
criterion_main!(benches);
