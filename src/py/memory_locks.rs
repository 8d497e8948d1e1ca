//! Which NumPy memory a call reads and writes, and the locks that keep concurrent calls apart.
//!
//! Semantics (documented in `docs/api.md`, "Threads"): calls that only read an array run
//! concurrently; a call that updates memory in place waits until no other rustnce call reads or
//! writes that memory, and holds it until it is done. So in-place updates of one array from
//! several Python threads are serialised (each update whole, in some order), and a read-only
//! call never fails, or sees half an update, because another thread writes. Memory is compared
//! by each array's byte extent, so two interleaved views of one buffer (`big[:, :d]` and
//! `big[:, d]`) are serialised although they share no element: a wait, never a refusal.
//! Within one call, written arrays must not share elements with any other argument; that is
//! refused with both names (`check_disjoint`), by NumPy's `shares_memory` (pairs it cannot decide
//! within bounded work count as sharing).

use std::sync::{Condvar, Mutex};

use numpy::npyffi::objects::_PyArray_GET_ITEM_DATA;
use numpy::npyffi::NPY_ARRAY_WRITEABLE;
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// The bytes `[start, end)` an array's elements lie within, and whether the call writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    start: usize,
    end: usize,
    write: bool,
}

impl Region {
    fn conflicts_with(&self, other: &Region) -> bool {
        (self.write || other.write) && self.start < other.end && other.start < self.end
    }
}

/// The byte extent of an array's elements; `None` when it has none.
fn extent(array: &Bound<'_, PyUntypedArray>) -> Option<(usize, usize)> {
    let shape = array.shape();
    if shape.contains(&0) {
        return None;
    }
    // SAFETY: `as_array_ptr` points to a live array object while `array` is borrowed, and the
    // interpreter is attached; reading its data pointer reads no element.
    let data = unsafe { (*_PyArray_GET_ITEM_DATA(array.as_array_ptr())).data } as usize;
    let itemsize = array.dtype().itemsize();
    let (mut low, mut high) = (data as isize, data as isize + itemsize as isize);
    for (&length, &stride) in shape.iter().zip(array.strides()) {
        let reach = stride * (length as isize - 1);
        if reach < 0 {
            low += reach;
        } else {
            high += reach;
        }
    }
    Some((low as usize, high as usize))
}

struct Entry<'py> {
    name: String,
    array: Bound<'py, PyUntypedArray>,
    extent: (usize, usize),
    write: bool,
}

/// How much work `numpy.shares_memory` may do on one pair before the pair counts as
/// overlapping (an exact answer can take exponential time on crafted strides).
const SHARES_MEMORY_MAX_WORK: usize = 100_000;

/// NumPy's `TooHardError`: `shares_memory` gave up within its `max_work`.
fn is_too_hard(py: Python<'_>, error: &PyErr) -> bool {
    error
        .get_type(py)
        .name()
        .is_ok_and(|name| name.to_cow().is_ok_and(|name| name == "TooHardError"))
}

/// The arrays one call reads and writes, by argument name.
#[derive(Default)]
pub struct Access<'py> {
    entries: Vec<Entry<'py>>,
}

impl<'py> Access<'py> {
    pub fn new() -> Self {
        Access::default()
    }

    fn add(&mut self, name: &str, array: &Bound<'py, PyAny>, write: bool) {
        let Ok(array) = array.cast::<PyUntypedArray>() else {
            return;
        };
        if let Some(extent) = extent(array) {
            self.entries.push(Entry {
                name: name.to_string(),
                array: array.clone(),
                extent,
                write,
            });
        }
    }

    /// The call reads `array` (anything that is not a NumPy array is ignored).
    pub fn read(&mut self, name: &str, array: &Bound<'py, PyAny>) -> &mut Self {
        self.add(name, array, false);
        self
    }

    /// The call updates `array` in place.
    pub fn write(&mut self, name: &str, array: &Bound<'py, PyAny>) -> &mut Self {
        self.add(name, array, true);
        self
    }

    /// Refuses a written array that shares an element with another argument of the call.
    pub fn check_disjoint(&self, py: Python<'py>) -> PyResult<()> {
        let mut shares_memory = None;
        for (i, target) in self.entries.iter().enumerate() {
            if !target.write {
                continue;
            }
            for (j, other) in self.entries.iter().enumerate() {
                if i == j || (other.write && j < i) {
                    continue;
                }
                let (a, b) = (target.extent, other.extent);
                if a.0 >= b.1 || b.0 >= a.1 {
                    continue;
                }
                let exact = match &shares_memory {
                    Some(function) => function,
                    None => shares_memory.insert(py.import("numpy")?.getattr("shares_memory")?),
                };
                // Bounded work: strides for which NumPy cannot decide quickly count as overlap.
                let keywords = pyo3::types::PyDict::new(py);
                keywords.set_item("max_work", SHARES_MEMORY_MAX_WORK)?;
                let overlapping = match exact.call((&target.array, &other.array), Some(&keywords)) {
                    Ok(answer) => answer.is_truthy()?,
                    Err(error) if is_too_hard(py, &error) => true,
                    Err(error) => return Err(error),
                };
                if overlapping {
                    return Err(super::errors::wrong_value(format!(
                        "{} overlaps {}, but {} is updated in place; pass a copy of one of them",
                        target.name, other.name, target.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The regions to lock for the call's duration.
    pub fn regions(&self) -> Vec<Region> {
        self.entries
            .iter()
            .map(|entry| Region {
                start: entry.extent.0,
                end: entry.extent.1,
                write: entry.write,
            })
            .collect()
    }
}

struct Held {
    call: u64,
    regions: Vec<Region>,
}

struct Registry {
    next_call: u64,
    held: Vec<Held>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next_call: 0,
    held: Vec::new(),
});
static RELEASED: Condvar = Condvar::new();

/// Regions held by one call; released when dropped.
pub struct Locked {
    call: Option<u64>,
}

impl Drop for Locked {
    fn drop(&mut self) {
        if let Some(call) = self.call {
            let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            registry.held.retain(|held| held.call != call);
            drop(registry);
            RELEASED.notify_all();
        }
    }
}

/// Waits until no other call holds a region that conflicts with `regions`, then holds them.
/// A call takes all its regions at once and never waits while holding any, so calls cannot
/// deadlock on each other. Must run with the interpreter released.
pub fn lock(regions: &[Region]) -> Locked {
    if regions.is_empty() {
        return Locked { call: None };
    }
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let busy = registry.held.iter().any(|held| {
            held.regions
                .iter()
                .any(|theirs| regions.iter().any(|ours| ours.conflicts_with(theirs)))
        });
        if !busy {
            break;
        }
        registry = RELEASED.wait(registry).unwrap_or_else(|e| e.into_inner());
    }
    let call = registry.next_call;
    registry.next_call += 1;
    registry.held.push(Held {
        call,
        regions: regions.to_vec(),
    });
    Locked { call: Some(call) }
}

/// A NumPy array's `WRITEABLE` flag.
pub fn is_writeable(array: &Bound<'_, PyUntypedArray>) -> bool {
    // SAFETY: reads the flags of a live array object, with the interpreter attached.
    unsafe { (*_PyArray_GET_ITEM_DATA(array.as_array_ptr())).flags & NPY_ARRAY_WRITEABLE != 0 }
}
