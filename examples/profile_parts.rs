use ndarray::{Array1, Array2};
use rustnce::losses::forward_backward::{forward_backward, Upstream};
use rustnce::losses::{sampled_loss, SampledLoss};
use rustnce::sampled_logits::{SampledLossInputs, SampledValues};
use rustnce::sharding::ShardedMatrix;
use std::time::Instant;

fn time<R>(name: &str, reps: usize, mut f: impl FnMut() -> R) {
    f();
    let mut ts: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("{name:>30}: {:.3} ms", ts[reps / 2]);
}

fn main() {
    let (c, d, b, s, t) = (1_000_000usize, 300usize, 4096usize, 128usize, 1usize);
    let w = Array2::<f32>::from_shape_fn((c, d), |(i, j)| ((i * 31 + j * 7) % 101) as f32 * 1e-4);
    let bias = Array2::<f32>::zeros((c, 1));
    let x =
        Array2::<f32>::from_shape_fn((b, d), |(i, j)| ((i * 13 + j * 3) % 17) as f32 * 0.05 - 0.4);
    let labels =
        Array2::<i64>::from_shape_fn((b, t), |(i, k)| ((i * 7919 + k * 104729) % c) as i64);
    let sampled = Array1::<i64>::from_shape_fn(s, |k| (k * k * 37 % c) as i64);
    let tq = Array2::<f32>::from_elem((b, t), 0.01);
    let sq = Array1::<f32>::from_elem(s, 0.02);
    let p = SampledLossInputs {
        weights: ShardedMatrix::single(w.view()),
        biases: ShardedMatrix::single(bias.view()),
        labels: labels.view(),
        inputs: x.view(),
        num_classes: c,
        sampled: SampledValues {
            candidates: sampled.view(),
            true_expected_count: tq.view(),
            sampled_expected_count: sq.view(),
        },
        remove_accidental_hits: false,
        subtract_log_q: true,
    };
    if std::env::var("ONLY_FUSED").is_ok() {
        rustnce::parallelism::install(|| {
            for _ in 0..300 {
                std::hint::black_box(
                    forward_backward(&p, SampledLoss::Nce, &Upstream::Sum).unwrap(),
                );
            }
        });
        return;
    }
    rustnce::parallelism::install(|| {
        time("gather", 20, || p.gather().unwrap());
        let g = p.gather().unwrap();
        time("logits", 20, || p.logits(&g));
        time("loss fwd", 20, || {
            sampled_loss(&p, SampledLoss::Nce).unwrap()
        });
        time("fwd+bwd", 20, || {
            forward_backward(&p, SampledLoss::Nce, &Upstream::Sum).unwrap()
        });
        let mut out = Array2::<f32>::zeros((b, s));
        time("mm X·Wsᵀ single", 20, || {
            rustnce::matrix_product::matrix_product(&x.view(), &g.weights.t(), &mut out.view_mut())
        });
        for rows in [64usize, 256, 1024] {
            time(&format!("mm blocks of {rows} (1 thread)"), 20, || {
                for first in (0..b).step_by(rows) {
                    let xs = x.slice(ndarray::s![first..(first + rows).min(b), ..]);
                    let mut o = out.slice_mut(ndarray::s![first..(first + rows).min(b), ..]);
                    rustnce::matrix_product::matrix_product(&xs, &g.weights.t(), &mut o);
                }
            });
        }
        time("true dots (1 thread)", 20, || {
            (0..b)
                .map(|i| x.row(i).dot(&w.row(labels[[i, 0]] as usize)))
                .sum::<f32>()
        });
        let logits = p.logits(&g);
        let mut scratch = vec![0f32; s + 1];
        let mut lg = logits.clone();
        time("row losses+grad (1 thread)", 20, || {
            lg.rows_mut()
                .into_iter()
                .map(|mut r| {
                    SampledLoss::Nce.row_loss(r.as_slice_mut().unwrap(), 1, 1.0, true, &mut scratch)
                })
                .sum::<f32>()
        });
    });
}
#[allow(dead_code)]
fn unused() {}
