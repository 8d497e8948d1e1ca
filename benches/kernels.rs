//! `cargo bench`: sampler draws, sampled logits, the fused forward + backward on the issue's
//! configurations (float32), and the skip-gram step, on rustnce's thread pool
//! (`RUSTNCE_NUM_THREADS`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::{Array1, Array2};
use rustnce::losses::forward_backward::{forward_backward, Upstream};
use rustnce::losses::{sampled_loss, SampledLoss};
use rustnce::parallelism;
use rustnce::phase_timers;
use rustnce::sampled_logits::{SampledLossInputs, SampledValues};
use rustnce::samplers::{CandidateSampler, FixedUnigramConfig};
use rustnce::sharding::ShardedMatrix;
use rustnce::sharding::{PartitionStrategy, ShardedRowsMut};
use rustnce::skipgram::{Embeddings, PairBatch, SkipGramLoss, SkipGramStep};
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
        group.finish();
    }
}

/// One skip-gram SGD step on a word2vec-sized batch: 512 pairs, dim 100, 10 shared negatives,
/// a 10,000-word vocabulary (pairs per second is the throughput).
fn skipgram_step(c: &mut Criterion) {
    let (vocabulary, dim, pairs) = (10_000usize, 100usize, 512usize);
    let mut input: Vec<f32> = (0..vocabulary * dim).map(|k| noise(k) * 0.01).collect();
    let mut output: Vec<f32> = (0..vocabulary * dim).map(|k| noise(k + 1) * 0.01).collect();
    let mut biases = vec![0.0f32; vocabulary];
    // Centers repeat as in text (about six pairs each); contexts and negatives spread out.
    let centers: Vec<u32> = (0..pairs)
        .map(|i| ((i / 6) * 37 % vocabulary) as u32)
        .collect();
    let contexts: Vec<u32> = (0..pairs)
        .map(|i| (i * 7_331 % vocabulary) as u32)
        .collect();
    let negatives: Vec<u32> = (0..10).map(|j| (j * 997 + 3) as u32).collect();
    let context_log_q = vec![-3.0f32; pairs];
    let negative_log_q = vec![-2.0f32; negatives.len()];
    let batch = PairBatch {
        centers: &centers,
        contexts: &contexts,
        context_log_q: &context_log_q,
        negatives: &negatives,
        negative_log_q: &negative_log_q,
    };
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
/// spends its time (per-phase time summed over threads, per call), and the wall time per call
/// on 1 and 2 threads of: the fused pass, the fused pass + TensorFlow's row-sparse weight
/// values (what `nce_loss_and_gradients` hands to Python), and the fused pass + scatter-add
/// (the SGD step). Thread counts and operations are interleaved in rounds, medians reported.
/// Not a criterion benchmark: it runs only when the filter is `phases`.
fn phases(_: &mut Criterion) {
    if !std::env::args().any(|argument| argument == "phases") {
        return;
    }
    if !phase_timers::ENABLED {
        println!("phases: build with `--features phase-timers` for the per-phase table");
    }
    const ROUNDS: usize = 7;
    const THREADS: [usize; 2] = [1, 2];
    for config in &CONFIGS {
        let problem = Problem::new(config);
        let inputs = problem.inputs();
        let mut target = problem.weights.clone();
        let mut target_biases = problem.biases.clone();
        let calls = (400_000_000
            / (config.batch * (config.num_sampled + config.num_true) * config.dim))
            .clamp(5, 200);
        // Wall times per call [threads][operation], one entry per round.
        let mut walls = vec![vec![Vec::new(); 3]; THREADS.len()];
        let mut phase_totals = vec![vec![0.0f64; phase_timers::PHASES.len()]; THREADS.len()];
        for round in 0..=ROUNDS {
            for (slot, &threads) in THREADS.iter().enumerate() {
                parallelism::set_num_threads(threads);
                for operation in 0..3 {
                    phase_timers::take();
                    let start = Instant::now();
                    for _ in 0..calls {
                        parallelism::install(|| {
                            let gradients =
                                forward_backward(&inputs, SampledLoss::Nce, &Upstream::Sum)
                                    .unwrap();
                            match operation {
                                1 => {
                                    black_box(gradients.tf_weight_values(&inputs.inputs));
                                }
                                2 => {
                                    let weights = ShardedRowsMut::new(
                                        vec![target.view_mut()],
                                        PartitionStrategy::Div,
                                        "weights",
                                    )
                                    .unwrap();
                                    let biases = ShardedRowsMut::new(
                                        vec![target_biases.view_mut()],
                                        PartitionStrategy::Div,
                                        "biases",
                                    )
                                    .unwrap();
                                    gradients
                                        .scatter_add(
                                            &inputs.inputs,
                                            Some(&weights),
                                            Some(&biases),
                                            -1e-9,
                                        )
                                        .unwrap();
                                }
                                _ => {}
                            }
                            black_box(gradients)
                        });
                    }
                    let per_call = start.elapsed().as_secs_f64() / calls as f64;
                    let spent = phase_timers::take();
                    if round == 0 {
                        continue; // warm-up
                    }
                    walls[slot][operation].push(per_call);
                    for (total, (_, _, time)) in phase_totals[slot].iter_mut().zip(&spent) {
                        *total += time.as_secs_f64() * 1e6 / (calls * ROUNDS) as f64;
                    }
                }
            }
        }
        parallelism::set_num_threads(0);
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
        let names = ["fused pass", "+ row-sparse values", "+ scatter-add (SGD)"];
        for (slot, &threads) in THREADS.iter().enumerate() {
            let line: Vec<String> = names
                .iter()
                .zip(walls[slot].iter_mut())
                .map(|(name, times)| format!("{name} {:.0}", median(times) * 1e6))
                .collect();
            println!("  wall, {threads} thread(s): {}", line.join(" | "));
        }
        let fused: Vec<f64> = walls.iter_mut().map(|w| median(&mut w[0])).collect();
        println!(
            "  2 threads vs 1: fused pass {:.2}x, + scatter-add {:.2}x; SGD step / gradients call (1 thread) {:.3}, (2 threads) {:.3}",
            fused[0] / fused[1],
            median(&mut walls[0][2]) / median(&mut walls[1][2]),
            median(&mut walls[0][2]) / median(&mut walls[0][1]),
            median(&mut walls[1][2]) / median(&mut walls[1][1]),
        );
        if !phase_timers::ENABLED {
            continue;
        }
        // Phase times accumulate over all three operations; the fused pass's phases ran
        // three times as often as the others.
        println!("  per phase (µs per call, summed over threads; fused-pass phases per pass):");
        for (index, &(phase, name)) in phase_timers::PHASES.iter().enumerate() {
            let per_pass = |slot: usize| {
                let total = phase_totals[slot][index];
                match phase {
                    phase_timers::Phase::RowSparseValues
                    | phase_timers::Phase::GroupRows
                    | phase_timers::Phase::ScatterRows => total,
                    _ => total / 3.0,
                }
            };
            println!(
                "    {name:<40} 1 thread {:>8.1}   2 threads {:>8.1}   ({:>4.1}% of 1-thread fused pass)",
                per_pass(0),
                per_pass(1),
                100.0 * per_pass(0) / (fused[0] * 1e6)
            );
        }
        for (slot, &threads) in THREADS.iter().enumerate() {
            let accounted: f64 = phase_timers::PHASES
                .iter()
                .enumerate()
                .filter(|(_, (phase, _))| {
                    !matches!(
                        phase,
                        phase_timers::Phase::RowSparseValues
                            | phase_timers::Phase::GroupRows
                            | phase_timers::Phase::ScatterRows
                    )
                })
                .map(|(index, _)| phase_totals[slot][index] / 3.0)
                .sum();
            println!(
                "    {threads} thread(s): unaccounted in the fused pass (threads × wall − phases: waiting, coordination) {:.1} µs",
                threads as f64 * fused[slot] * 1e6 - accounted
            );
        }
    }
}

criterion_group!(benches, phases, samplers, losses, skipgram_step);
criterion_main!(benches);
