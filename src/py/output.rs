//! Large results handed to NumPy without a copy, in buffers that go back to rustnce's
//! `workspace` when NumPy frees the array, so the next call reuses memory that is already
//! paged in.

use ndarray::{Array, ArrayView, Dimension};
use numpy::{Element, PyArray};
use pyo3::prelude::*;

use crate::workspace::{self, Pooled};

/// Owns the buffer behind a NumPy array; returns it to the workspace when dropped.
#[pyclass(module = "rustnce._rustnce", frozen)]
pub struct PooledBuffer {
    buffer: Buffer,
}

pub enum Buffer {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        match &mut self.buffer {
            Buffer::F32(buffer) => workspace::recycle_vector(std::mem::take(buffer)),
            Buffer::F64(buffer) => workspace::recycle_vector(std::mem::take(buffer)),
        }
    }
}

/// The element types whose buffers are pooled.
pub trait PooledElement: Pooled + Element {
    fn wrap(buffer: Vec<Self>) -> Buffer;
    fn pointer(buffer: &Buffer) -> *const Self;
}

impl PooledElement for f32 {
    fn wrap(buffer: Vec<f32>) -> Buffer {
        Buffer::F32(buffer)
    }
    fn pointer(buffer: &Buffer) -> *const f32 {
        match buffer {
            Buffer::F32(buffer) => buffer.as_ptr(),
            Buffer::F64(_) => unreachable!("wrapped as f32"),
        }
    }
}

impl PooledElement for f64 {
    fn wrap(buffer: Vec<f64>) -> Buffer {
        Buffer::F64(buffer)
    }
    fn pointer(buffer: &Buffer) -> *const f64 {
        match buffer {
            Buffer::F64(buffer) => buffer.as_ptr(),
            Buffer::F32(_) => unreachable!("wrapped as f64"),
        }
    }
}

/// A NumPy array over `array`'s buffer (in standard layout), returned to the pool on release.
pub fn to_numpy<'py, F: PooledElement, D: Dimension>(
    py: Python<'py>,
    array: Array<F, D>,
) -> PyResult<Bound<'py, PyArray<F, D>>> {
    let array = if array.is_standard_layout() {
        array
    } else {
        array.as_standard_layout().into_owned()
    };
    let shape = array.raw_dim();
    let (buffer, offset) = array.into_raw_vec_and_offset();
    debug_assert_eq!(offset.unwrap_or(0), 0);
    let container = Bound::new(
        py,
        PooledBuffer {
            buffer: F::wrap(buffer),
        },
    )?;
    let pointer = F::pointer(&container.get().buffer);
    // SAFETY: the container owns the buffer, which it never reallocates and drops only when
    // NumPy releases the array; `shape` is the shape the buffer was created with.
    unsafe {
        let view = ArrayView::from_shape_ptr(shape, pointer);
        Ok(PyArray::borrow_from_array(&view, container.into_any()))
    }
}
