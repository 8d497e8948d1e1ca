//! Work done with the interpreter released, and what keeps it safe across `fork()`.
//!
//! Such work takes locks (a sampler's mutex, the thread pool's and the workspace's, the memory
//! locks of `memory_locks`) that a forked child must not inherit held: the thread holding them
//! does not exist in the child, which would then block forever. Every such piece of work holds
//! the read side of `FORK_GATE` for its whole duration, and a fork takes the write side first
//! (`os.register_at_fork`, registered once when the module is imported), so a fork waits for the
//! work in flight and none starts until the fork is done.
//!
//! pyo3 and rust-numpy fill some caches on first use (NumPy's C API and its shared borrow
//! flags, the class behind arrays made from Rust buffers, interned attribute names). Filling one
//! marks it as being filled and briefly releases the interpreter, so another thread can fork
//! right then, and a child that later needs the same cache waits forever for a filling thread
//! it does not have. `warm_up` fills them all when the module is imported, before any call.

use std::cell::RefCell;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use numpy::{IntoPyArray, PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyTypeMethods};

use super::memory_locks::{self, Region};
use crate::parallelism;

static FORK_GATE: RwLock<()> = RwLock::new(());

thread_local! {
    /// The forking thread's hold on `FORK_GATE`, from `before_fork` to `after_fork` (which runs
    /// in the same thread, in the parent and in the child).
    static FORK_HOLD: RefCell<Option<RwLockWriteGuard<'static, ()>>> = const { RefCell::new(None) };
}

/// Held by work that runs with the interpreter released; `before_fork` waits until no such
/// work is in flight. Never taken twice by one thread: a fork waiting for the write side
/// blocks new readers.
fn fork_safe_work() -> RwLockReadGuard<'static, ()> {
    FORK_GATE
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `work` with the interpreter released and the fork gate held (no pool, no memory locks).
pub fn detached<R: Send>(py: Python<'_>, work: impl FnOnce() -> R + Send) -> R {
    py.detach(|| {
        let _gate = fork_safe_work();
        work()
    })
}

/// The computation, of about `work_estimate` multiply-adds, with the interpreter released: on
/// rustnce's thread pool, or on this thread when it is too small to be worth handing over.
pub fn install<R: Send>(
    py: Python<'_>,
    work_estimate: usize,
    work: impl FnOnce() -> R + Send,
) -> R {
    install_locked(py, &[], work_estimate, work)
}

/// As `install`, once no other call holds memory that conflicts with `regions` (see
/// `memory_locks`); the regions stay locked until `work` is done.
pub fn install_locked<R: Send>(
    py: Python<'_>,
    regions: &[Region],
    work_estimate: usize,
    work: impl FnOnce() -> R + Send,
) -> R {
    py.detach(|| {
        let _gate = fork_safe_work();
        let _locked = memory_locks::lock(regions);
        parallelism::install_sized(work_estimate, work)
    })
}

/// `os.register_at_fork(before=...)`: waits for the work in flight and holds new work back.
#[pyfunction]
fn before_fork() {
    let hold = FORK_GATE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    FORK_HOLD.with(|slot| *slot.borrow_mut() = Some(hold));
}

/// `os.register_at_fork(after_in_parent=..., after_in_child=...)`: lets work run again.
#[pyfunction]
fn after_fork() {
    FORK_HOLD.with(|slot| slot.borrow_mut().take());
}

/// Fills, while the module is imported, the lazily filled caches of pyo3 and rust-numpy that
/// rustnce's calls reach (see the module's documentation).
fn warm_up(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    // NumPy's C API, the shared borrow flags, read-only and writable borrows.
    let floats = PyArray1::<f32>::zeros(py, 1, false);
    drop(floats.readonly());
    drop(floats.readwrite());
    drop(PyArray1::<i64>::zeros(py, 1, false).readonly());
    // The Python class that owns the buffers of arrays made from Rust vectors.
    drop(vec![0f32].into_pyarray(py));
    drop(vec![0i64].into_pyarray(py));
    // The attribute names behind type names in error messages, `bool` from NumPy's booleans,
    // and the note naming the argument of a failed conversion.
    let float_type = py.get_type::<PyFloat>();
    float_type.name()?;
    float_type.qualname()?;
    float_type.module()?;
    float_type.fully_qualified_name()?;
    let numpy_true = py.import("numpy")?.getattr("bool_")?.call1((true,))?;
    numpy_true.extract::<bool>()?;
    // A refused int (`as_int`), and pyo3's path for an argument whose extraction fails.
    let refused = module.getattr("set_num_threads")?.call1(("not a number",));
    debug_assert!(refused.is_err());
    let refused = module
        .getattr("embedding_lookup")?
        .call1((py.None(), py.None(), 0));
    debug_assert!(refused.is_err());
    Ok(())
}

/// Fills the lazy caches (`warm_up`) and registers the fork handlers with
/// `os.register_at_fork` (where the platform has it). Called at the end of the module's set-up.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    warm_up(module)?;
    let py = module.py();
    let os = py.import("os")?;
    if !os.hasattr("register_at_fork")? {
        return Ok(());
    }
    let before = wrap_pyfunction!(before_fork, module)?;
    let after = wrap_pyfunction!(after_fork, module)?;
    let handlers = PyDict::new(py);
    handlers.set_item("before", before)?;
    handlers.set_item("after_in_parent", &after)?;
    handlers.set_item("after_in_child", &after)?;
    os.call_method("register_at_fork", (), Some(&handlers))?;
    Ok(())
}
