//! Reused buffers for per-call intermediates (the logits and their gradient, gathered rows) and
//! for large outputs (which the Python binding hands back here when NumPy frees them). Fresh
//! multi-megabyte allocations come from the operating system as untouched pages, and faulting
//! them in on every call cost as much as a matrix product.

use std::sync::Mutex;

use ndarray::Array2;

/// Buffers kept per element type. A call holds several at once (its logits' blocks, its
/// gathered rows, its outputs), and the results of the previous call may still be alive while
/// the next one runs (an autograd graph, arrays the caller keeps), so a few per output.
const KEPT: usize = 16;

/// The most memory the kept buffers of one element type may hold, in elements' bytes: a
/// buffer that would take the pool past it is freed instead.
const KEPT_BYTES: usize = 256 << 20;

pub trait Pooled: Copy + Default + Send + 'static {
    fn pool() -> &'static Mutex<Vec<Vec<Self>>>;
}

static F32_POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
static F64_POOL: Mutex<Vec<Vec<f64>>> = Mutex::new(Vec::new());
static U32_POOL: Mutex<Vec<Vec<u32>>> = Mutex::new(Vec::new());

impl Pooled for f32 {
    fn pool() -> &'static Mutex<Vec<Vec<f32>>> {
        &F32_POOL
    }
}

impl Pooled for f64 {
    fn pool() -> &'static Mutex<Vec<Vec<f64>>> {
        &F64_POOL
    }
}

/// Packed bfloat16 operands (`bfloat16.rs`).
impl Pooled for u32 {
    fn pool() -> &'static Mutex<Vec<Vec<u32>>> {
        &U32_POOL
    }
}

/// A `rows × columns` matrix whose contents are unspecified: the caller overwrites every element.
pub fn matrix<F: Pooled>(rows: usize, columns: usize) -> Array2<F> {
    Array2::from_shape_vec((rows, columns), vector(rows * columns))
        .expect("the length matches the shape")
}

/// A matrix of zeros in a reused buffer.
pub fn zeros<F: Pooled>(rows: usize, columns: usize) -> Array2<F> {
    let mut matrix = matrix(rows, columns);
    matrix.fill(F::default());
    matrix
}

/// A vector of `len` unspecified elements in a reused buffer.
pub fn vector<F: Pooled>(len: usize) -> Vec<F> {
    // The smallest kept buffer that holds `len`: a small request never takes the large buffer
    // the next large request needs (which would then fault in fresh pages).
    let reused = {
        let mut pool = F::pool().lock().unwrap_or_else(|e| e.into_inner());
        pool.iter()
            .enumerate()
            .filter(|(_, buffer)| buffer.capacity() >= len)
            .min_by_key(|(_, buffer)| buffer.capacity())
            .map(|(index, _)| index)
            .map(|index| pool.swap_remove(index))
    };
    let mut buffer = reused.unwrap_or_default();
    buffer.resize(len, F::default());
    buffer.truncate(len);
    buffer
}

/// Returns a matrix's buffer for reuse.
pub fn recycle<F: Pooled>(matrix: Array2<F>) {
    let (buffer, _) = matrix.into_raw_vec_and_offset();
    recycle_vector(buffer);
}

/// Returns a buffer for reuse.
pub fn recycle_vector<F: Pooled>(buffer: Vec<F>) {
    if buffer.capacity() == 0 {
        return;
    }
    let mut pool = F::pool().lock().unwrap_or_else(|e| e.into_inner());
    keep(&mut pool, buffer, KEPT, KEPT_BYTES);
}

/// Adds `buffer` to `pool` (at most `most` buffers, `most_bytes` bytes). A full pool keeps its
/// largest buffers: a small buffer is cheap to allocate again, a large one is not (its pages
/// fault in afresh), and a call returns its many small block buffers after its few large
/// outputs.
fn keep<F>(pool: &mut Vec<Vec<F>>, buffer: Vec<F>, most: usize, most_bytes: usize) {
    let bytes = |buffer: &Vec<F>| buffer.capacity() * std::mem::size_of::<F>();
    if bytes(&buffer) > most_bytes || most == 0 {
        return;
    }
    let mut kept_bytes: usize = pool.iter().map(bytes).sum();
    while pool.len() >= most || kept_bytes + bytes(&buffer) > most_bytes {
        let smallest = pool
            .iter()
            .enumerate()
            .min_by_key(|(_, kept)| kept.capacity())
            .map(|(index, kept)| (index, kept.capacity()));
        match smallest {
            Some((index, capacity)) if capacity < buffer.capacity() => {
                kept_bytes -= bytes(&pool.swap_remove(index));
            }
            _ => return,
        }
    }
    pool.push(buffer);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacities(pool: &[Vec<f32>]) -> Vec<usize> {
        let mut capacities: Vec<usize> = pool.iter().map(Vec::capacity).collect();
        capacities.sort_unstable();
        capacities
    }

    #[test]
    fn a_full_pool_keeps_its_largest_buffers() {
        let mut pool = Vec::new();
        keep(&mut pool, Vec::<f32>::with_capacity(1000), 3, usize::MAX);
        for _ in 0..10 {
            keep(&mut pool, Vec::with_capacity(10), 3, usize::MAX);
        }
        assert_eq!(capacities(&pool), [10, 10, 1000]);
        keep(&mut pool, Vec::with_capacity(500), 3, usize::MAX);
        assert_eq!(capacities(&pool), [10, 500, 1000]);
        // Smaller than everything kept: not kept.
        keep(&mut pool, Vec::with_capacity(5), 3, usize::MAX);
        assert_eq!(capacities(&pool), [10, 500, 1000]);
    }

    #[test]
    fn the_byte_budget_evicts_smaller_buffers_or_refuses_the_new_one() {
        let mut pool = Vec::new();
        keep(&mut pool, Vec::<f32>::with_capacity(100), 8, 1000 * 4);
        keep(&mut pool, Vec::with_capacity(200), 8, 1000 * 4);
        keep(&mut pool, Vec::with_capacity(800), 8, 1000 * 4);
        // 100 + 200 + 800 is over the budget: the 100 makes room for the 800.
        assert_eq!(capacities(&pool), [200, 800]);
        // A buffer beyond the whole budget is never kept, and evicts nothing.
        keep(&mut pool, Vec::with_capacity(1001), 8, 1000 * 4);
        assert_eq!(capacities(&pool), [200, 800]);
    }
}
