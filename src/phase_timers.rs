//! Where the fused pass spends its time: with the `phase-timers` feature, each phase adds the
//! CPU time its thread spent in it (summed over threads; time the thread was descheduled does
//! not count, so a shared machine disturbs the figures little) to a counter that `take` reads
//! and resets; without it, `timed` is just a call. `cargo bench --features phase-timers -- phases` prints the table
//! (docs/performance.md).

#[cfg(feature = "phase-timers")]
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The phases of a sampled loss's forward + backward and of its gradient forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Checking ids and counts; gathering the sampled rows, their biases and `ln Q`.
    CheckAndGatherSampled,
    /// Gathering the label rows (and their biases) of a block.
    GatherLabelRows,
    /// `inputs · W_sampledᵀ`, the sampled logits.
    SampledLogitsProduct,
    /// The true logits (label-row products), biases, hit masks and `ln Q` of a block.
    TrueLogitsAndCorrections,
    /// Per-row losses and their gradient with respect to the logits.
    RowLosses,
    /// `G_sampled · W_sampled`, the sampled part of the inputs gradient.
    InputsGradientProduct,
    /// `Σ_t G_t · W[label_t]`, the label rows' part of the inputs gradient.
    InputsGradientLabelRows,
    /// `G_sampledᵀ · inputs` and the bias sums, a block's share of the sampled rows' gradient.
    SampledWeightGradientProduct,
    /// Buffers, copies of the true-logit gradient, and adding the blocks' shares.
    BuffersAndCombine,
    /// TensorFlow's row-sparse weight-gradient values.
    RowSparseValues,
    /// Grouping the touched rows by id (for the merged form and the scatter-add).
    GroupRows,
    /// Summing and adding each touched row (the scatter-add, i.e. the SGD update).
    ScatterRows,
}

/// Every phase with its name, in the order of the fused pass.
pub const PHASES: [(Phase, &str); 12] = [
    (
        Phase::CheckAndGatherSampled,
        "check ids, gather sampled rows, ln Q",
    ),
    (Phase::GatherLabelRows, "gather label rows + biases"),
    (Phase::SampledLogitsProduct, "product 1: sampled logits"),
    (
        Phase::TrueLogitsAndCorrections,
        "true logits, biases, ln Q, hits",
    ),
    (Phase::RowLosses, "per-row losses + logit gradients"),
    (Phase::InputsGradientProduct, "product 2: inputs gradient"),
    (
        Phase::InputsGradientLabelRows,
        "inputs gradient from label rows",
    ),
    (
        Phase::SampledWeightGradientProduct,
        "product 3: sampled weight gradient",
    ),
    (Phase::BuffersAndCombine, "buffers, copies, combine blocks"),
    (Phase::RowSparseValues, "row-sparse weight values"),
    (Phase::GroupRows, "group rows by id"),
    (Phase::ScatterRows, "scatter-add rows (SGD update)"),
];

/// Whether the crate was built with the `phase-timers` feature.
pub const ENABLED: bool = cfg!(feature = "phase-timers");

#[cfg(feature = "phase-timers")]
static NANOS: [AtomicU64; PHASES.len()] = [const { AtomicU64::new(0) }; PHASES.len()];

/// Runs `work`, adding its elapsed time to `phase` when the timers are enabled.
#[inline(always)]
pub fn timed<R>(phase: Phase, work: impl FnOnce() -> R) -> R {
    #[cfg(feature = "phase-timers")]
    {
        let start = thread_cpu_time();
        let result = work();
        let nanos = (thread_cpu_time() - start).as_nanos() as u64;
        NANOS[phase as usize].fetch_add(nanos, Ordering::Relaxed);
        result
    }
    #[cfg(not(feature = "phase-timers"))]
    {
        let _ = phase;
        work()
    }
}

/// Each phase's time since the last `take` (zero without the feature), then resets them.
pub fn take() -> Vec<(Phase, &'static str, Duration)> {
    PHASES
        .iter()
        .map(|&(phase, name)| {
            #[cfg(feature = "phase-timers")]
            let nanos = NANOS[phase as usize].swap(0, Ordering::Relaxed);
            #[cfg(not(feature = "phase-timers"))]
            let nanos = 0;
            (phase, name, Duration::from_nanos(nanos))
        })
        .collect()
}

/// Adds the time from `start` to its drop to a phase (for spans awkward to wrap in `timed`).
pub struct PhaseGuard {
    #[cfg(feature = "phase-timers")]
    phase: Phase,
    #[cfg(feature = "phase-timers")]
    start: Duration,
}

impl PhaseGuard {
    #[inline(always)]
    pub fn start(phase: Phase) -> PhaseGuard {
        #[cfg(feature = "phase-timers")]
        {
            PhaseGuard {
                phase,
                start: thread_cpu_time(),
            }
        }
        #[cfg(not(feature = "phase-timers"))]
        {
            let _ = phase;
            PhaseGuard {}
        }
    }
}

#[cfg(feature = "phase-timers")]
impl Drop for PhaseGuard {
    fn drop(&mut self) {
        let nanos = (thread_cpu_time() - self.start).as_nanos() as u64;
        NANOS[self.phase as usize].fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The CPU time the calling thread has used (Linux; elsewhere the time since the first call,
/// which also counts time the thread was descheduled).
pub fn thread_cpu_time() -> Duration {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        #[repr(C)]
        struct Timespec {
            seconds: i64,
            nanoseconds: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut time = Timespec {
            seconds: 0,
            nanoseconds: 0,
        };
        // SAFETY: `time` is a valid `struct timespec` (64-bit Linux layout) to write into.
        if unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) } == 0 {
            return Duration::new(time.seconds as u64, time.nanoseconds as u32);
        }
    }
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}
