//! The thread pool rustnce computes on. Its size comes from `RUSTNCE_NUM_THREADS` (default: the
//! number of cores) or `set_num_threads`. A process forked after the pool started (multiprocessing,
//! data-loader workers) has none of the pool's threads, so each process builds its own pool.
//!
//! Results never depend on the pool's size: work is split into pieces whose boundaries depend
//! only on the problem's shape, and partial results are combined in a fixed order.

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use rayon::{ThreadPool, ThreadPoolBuilder};

/// The most threads a pool may have (`RUSTNCE_NUM_THREADS` beyond it is clamped): more would
/// only exhaust the process's memory for stacks.
pub const MAX_THREADS: usize = 4096;

/// The environment variable that sets the number of threads.
pub const NUM_THREADS_VARIABLE: &str = "RUSTNCE_NUM_THREADS";

struct ProcessPool {
    process_id: u32,
    threads: usize,
    pool: Arc<ThreadPool>,
}

static POOL: Mutex<Option<ProcessPool>> = Mutex::new(None);
static REQUESTED: Mutex<Option<usize>> = Mutex::new(None);

/// Threads to use: `set_num_threads`, else `RUSTNCE_NUM_THREADS`, else the number of cores.
pub fn configured_threads() -> usize {
    if let Some(threads) = *REQUESTED.lock().unwrap_or_else(|e| e.into_inner()) {
        return threads;
    }
    default_threads()
}

/// `RUSTNCE_NUM_THREADS`, else the number of cores, read once per process: finding the number
/// of cores reads files (cgroup quotas), too slow to repeat on every call.
fn default_threads() -> usize {
    static DEFAULT: Mutex<Option<(u32, usize)>> = Mutex::new(None);
    let process_id = std::process::id();
    let mut slot = DEFAULT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((pid, threads)) = *slot {
        if pid == process_id {
            return threads;
        }
    }
    let threads = std::env::var(NUM_THREADS_VARIABLE)
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|&threads| threads > 0)
        .map(|threads| threads.min(MAX_THREADS))
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    *slot = Some((process_id, threads));
    threads
}

/// Uses `threads` threads from the next computation on (0 restores the default).
pub fn set_num_threads(threads: usize) {
    *REQUESTED.lock().unwrap_or_else(|e| e.into_inner()) = (threads > 0).then_some(threads);
}

/// The pool of this process, built (again) when missing, inherited through fork, or resized.
fn pool() -> Arc<ThreadPool> {
    let threads = configured_threads();
    let process_id = std::process::id();
    let mut slot = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(current) = slot.as_ref() {
        if current.process_id == process_id && current.threads == threads {
            return current.pool.clone();
        }
    }
    if let Some(stale) = slot.take() {
        if stale.process_id != process_id {
            // The threads of a pool inherited through fork do not exist here; dropping the
            // pool would only signal them, but forgetting it is certain to touch nothing.
            std::mem::forget(stale.pool);
        }
    }
    let pool = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|index| format!("rustnce-{index}"))
            .build()
            .unwrap_or_else(|_| {
                ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .expect("a one-thread pool")
            }),
    );
    *slot = Some(ProcessPool {
        process_id,
        threads,
        pool: pool.clone(),
    });
    pool
}

/// Runs `work` (and every rayon call inside it) on rustnce's pool.
pub fn install<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    pool().install(work)
}

/// Work estimated at up to this many multiply-adds runs on the calling thread: handing it to
/// the pool (waking a worker, waiting for it) would cost more than the work itself.
pub const INLINE_WORK: usize = 1 << 16;

thread_local! {
    static INLINE: Cell<bool> = const { Cell::new(false) };
}

/// Whether the work running on this thread is small enough to run here, without the pool:
/// its parallel loops then run their pieces one after another. The pieces and the order in
/// which their results are combined are the same, so are the bits.
pub fn inline() -> bool {
    INLINE.with(Cell::get)
}

/// Runs `work` of about `work_estimate` multiply-adds: on the calling thread when it is small
/// (see `INLINE_WORK`), else on rustnce's pool.
pub fn install_sized<R: Send>(work_estimate: usize, work: impl FnOnce() -> R + Send) -> R {
    if inline() {
        return work();
    }
    if work_estimate > INLINE_WORK {
        return install(work);
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            INLINE.with(|flag| flag.set(false));
        }
    }
    INLINE.with(|flag| flag.set(true));
    let _reset = Reset;
    work()
}

/// The number of threads of the pool `install` runs on.
pub fn current_num_threads() -> usize {
    pool().current_num_threads()
}
