//! `cargo bench`: sampler draws, sampled logits, the fused forward + backward on the issue's
//! configurations (float32), and the skip-gram step, on rustnce's thread pool
//! (`RUSTNCE_NUM_THREADS`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::{Array1, Array2};
use rustnce::losses::forward_backward::{forward_backward, Upstream};
use rustnce::losses::{sampled_loss, SampledLoss};
use rustnce::parallelism;
use rustnce::sampled_logits::{SampledLossInputs, SampledValues};
use rustnce::samplers::{CandidateSampler, FixedUnigramConfig};
use rustnce::sharding::ShardedMatrix;
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
        let labels = Array2::from_shape_fn((config.batch, config.num_true), |(i, t)| {
            ((noise(7 * i + t + 1) + 0.5) * config.classes as f32) as i64 % config.classes as i64
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

criterion_group!(benches, samplers, losses, skipgram_step);
criterion_main!(benches);
