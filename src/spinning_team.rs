//! A team of threads for long runs of short parallel loops (the skip-gram trainer's steps: a
//! few loops of tens of microseconds each, thousands of times a second), where each member
//! always takes the same share of every loop.
//!
//! Two things a thread pool does not give. rayon's workers go to sleep within microseconds of
//! running out of work, and waking one costs about as much as such a loop (measured on the
//! 2-core machine: after 20 µs of serial work, a join of two 4 µs tasks took as long on two
//! threads as on one). And which worker runs which piece changes from loop to loop, so the rows
//! one thread read in one loop are written by the other in the next, and travel between the
//! cores' caches. A team's members spin between loops (parking only after `SPIN_LIMIT` without
//! work), and member `m` always runs piece `m`.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long a helper spins for the next loop before it parks.
const SPIN_LIMIT: Duration = Duration::from_micros(500);

/// The current loop, as the helpers see it.
type Job = &'static (dyn Fn(usize) + Sync);

/// The team's shared state.
struct Shared {
    /// The current loop's number (0: none yet); helpers run each number once.
    generation: AtomicU64,
    /// The current loop, valid while a helper's `finished` is behind `generation`.
    job: UnsafeCell<Option<Job>>,
    /// Per helper, the last loop number it is done with.
    finished: Vec<AtomicU64>,
    /// Per helper, whether it is parked (or about to park) and needs an unpark.
    parked: Vec<AtomicBool>,
    threads: Mutex<Vec<Thread>>,
    stop: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `job` is written only by the caller between loops, when every helper has finished
// the previous loop (see `Team::run`), and read by helpers only during a loop.
unsafe impl Sync for Shared {}

/// The caller's handle on its helpers (see [`with_team`]).
pub struct Team {
    shared: Shared,
}

/// Runs `body` with a team of `threads` members: the calling thread (member 0) and
/// `threads - 1` helpers, which live until `body` returns.
pub fn with_team<R>(threads: usize, body: impl FnOnce(&Team) -> R) -> R {
    let helpers = threads.max(1) - 1;
    let team = Team {
        shared: Shared {
            generation: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            finished: (0..helpers).map(|_| AtomicU64::new(0)).collect(),
            parked: (0..helpers).map(|_| AtomicBool::new(false)).collect(),
            threads: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            panic: Mutex::new(None),
        },
    };
    let shared = &team.shared;
    std::thread::scope(|scope| {
        let mut threads = Vec::with_capacity(helpers);
        for index in 0..helpers {
            let spawned = std::thread::Builder::new()
                .name(format!("rustnce-team-{}", index + 1))
                .spawn_scoped(scope, move || helper(shared, index));
            match spawned {
                Ok(handle) => threads.push(handle.thread().clone()),
                Err(_) => {
                    // No thread: its pieces run on the caller (see `Team::run`).
                    shared.finished[index].store(u64::MAX, Ordering::Release);
                }
            }
        }
        *shared.threads.lock().unwrap_or_else(|e| e.into_inner()) = threads;
        struct Stop<'a>(&'a Shared);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.stop.store(true, Ordering::SeqCst);
                for thread in self
                    .0
                    .threads
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                {
                    thread.unpark();
                }
            }
        }
        let _stop = Stop(shared);
        body(&team)
    })
}

impl Team {
    /// The number of members, the caller included.
    pub fn members(&self) -> usize {
        self.shared.finished.len() + 1
    }

    /// Runs `piece(m)` for every member `m`, member `m` on its own thread (a helper that could
    /// not be started has its piece run by the caller); returns when all are done. A panic in
    /// a piece is raised here once every member has finished.
    pub fn run(&self, piece: impl Fn(usize) + Sync) {
        let shared = &self.shared;
        if shared.finished.is_empty() {
            piece(0);
            return;
        }
        let piece_ref: &(dyn Fn(usize) + Sync) = &piece;
        // SAFETY: every helper has finished the previous loop (waited for below), so none
        // reads `job`. The borrow's lifetime is erased: this function does not return before
        // every helper has finished this loop, and `job` is cleared before it returns.
        unsafe {
            *shared.job.get() = Some(std::mem::transmute::<
                &(dyn Fn(usize) + Sync),
                &'static (dyn Fn(usize) + Sync),
            >(piece_ref));
        }
        // SeqCst here and in `helper`'s park: either the helper sees this loop or this sees
        // its flag.
        let generation = shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let threads = shared.threads.lock().unwrap_or_else(|e| e.into_inner());
        for (parked, thread) in shared.parked.iter().zip(threads.iter()) {
            if parked.load(Ordering::SeqCst) {
                thread.unpark();
            }
        }
        drop(threads);
        let mut result = catch_unwind(AssertUnwindSafe(|| piece(0)));
        for (index, finished) in shared.finished.iter().enumerate() {
            if finished.load(Ordering::Acquire) == u64::MAX {
                // A helper that never started: its piece runs here.
                let missing = catch_unwind(AssertUnwindSafe(|| piece(index + 1)));
                result = result.and(missing);
                continue;
            }
            let mut spins = 0u32;
            while finished.load(Ordering::Acquire) < generation {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(4096) {
                    // A helper the system has not scheduled: let it run here.
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        // SAFETY: every helper has finished this loop.
        unsafe { *shared.job.get() = None };
        if let Err(panic) = result {
            resume_unwind(panic);
        }
        if let Some(panic) = shared
            .panic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            resume_unwind(panic);
        }
    }
}

/// Helper `index`'s life (member `index + 1`): wait for a loop (spinning, then parked), run
/// its piece, report it done.
fn helper(shared: &Shared, index: usize) {
    let mut done = 0u64;
    loop {
        let mut idle_since: Option<Instant> = None;
        let mut spins = 0u32;
        let generation = loop {
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            let generation = shared.generation.load(Ordering::Acquire);
            if generation > done {
                break generation;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) {
                std::hint::spin_loop();
                continue;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= SPIN_LIMIT {
                shared.parked[index].store(true, Ordering::SeqCst);
                // Checked again after announcing the park: a loop started in between has
                // either seen the flag (and unparks this thread) or is visible here.
                if shared.generation.load(Ordering::SeqCst) == done
                    && !shared.stop.load(Ordering::SeqCst)
                {
                    std::thread::park_timeout(Duration::from_millis(50));
                }
                shared.parked[index].store(false, Ordering::SeqCst);
                idle_since = None;
            }
        };
        // SAFETY: the caller set `job` before publishing `generation` and keeps it until this
        // helper's `finished` reaches it.
        if let Some(job) = unsafe { *shared.job.get() } {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| job(index + 1))) {
                *shared.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(panic);
            }
        }
        done = generation;
        shared.finished[index].store(generation, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_member_runs_its_piece_once_per_loop_on_its_own_thread() {
        for members in [1, 2, 3, 5] {
            with_team(members, |team| {
                assert_eq!(team.members(), members);
                let names: Vec<Mutex<Option<String>>> =
                    (0..members).map(|_| Mutex::new(None)).collect();
                for round in 0..300 {
                    let hits: Vec<AtomicUsize> =
                        (0..members).map(|_| AtomicUsize::new(0)).collect();
                    team.run(|member| {
                        hits[member].fetch_add(1, Ordering::Relaxed);
                        let name = std::thread::current().name().map(str::to_owned);
                        let mut seen = names[member].lock().unwrap();
                        assert!(seen.is_none() || *seen == name, "member {member} moved");
                        *seen = name;
                    });
                    assert!(hits.iter().all(|hit| hit.load(Ordering::Relaxed) == 1));
                    if round % 100 == 0 {
                        // Long enough for the helpers to park.
                        std::thread::sleep(SPIN_LIMIT * 3);
                    }
                }
            });
        }
    }

    #[test]
    fn a_panic_in_a_piece_reaches_the_caller_and_the_team_goes_on() {
        with_team(3, |team| {
            for bad in 0..3 {
                let result = catch_unwind(AssertUnwindSafe(|| {
                    team.run(|member| {
                        if member == bad {
                            panic!("member {member}");
                        }
                    })
                }));
                assert!(result.is_err());
                let total = AtomicUsize::new(0);
                team.run(|member| {
                    total.fetch_add(member + 1, Ordering::Relaxed);
                });
                assert_eq!(total.load(Ordering::Relaxed), 6);
            }
        });
    }
}
