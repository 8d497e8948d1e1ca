//! The Python binding (`rustnce._rustnce`): turns NumPy arrays into views, releases the
//! interpreter around the core's work and maps `NceError` to Python exceptions. No arithmetic.

mod accidental_hits;
mod arguments;
mod corpus;
mod errors;
mod fork_gate;
mod gradients;
mod losses;
mod memory_locks;
mod output;
mod samplers;
mod sharding;
mod skipgram;

use pyo3::prelude::*;

#[pymodule]
fn _rustnce(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_class::<samplers::CandidateSampler>()?;
    module.add_function(wrap_pyfunction!(samplers::seed_attributes, module)?)?;
    module.add_function(wrap_pyfunction!(
        accidental_hits::compute_accidental_hits,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(sharding::embedding_lookup, module)?)?;
    module.add_function(wrap_pyfunction!(samplers::kept_sampler_sample, module)?)?;
    module.add_function(wrap_pyfunction!(samplers::reset_sampler_cache, module)?)?;
    module.add_function(wrap_pyfunction!(samplers::sampler_cache_usage, module)?)?;
    module.add("MAX_CACHED_SAMPLERS", samplers::MAX_CACHED_SAMPLERS)?;
    module.add("MAX_CACHED_BYTES", samplers::MAX_CACHED_BYTES)?;
    module.add_function(wrap_pyfunction!(losses::nce_loss, module)?)?;
    module.add_function(wrap_pyfunction!(losses::sampled_softmax_loss, module)?)?;
    module.add_function(wrap_pyfunction!(losses::compute_sampled_logits, module)?)?;
    module.add_function(wrap_pyfunction!(losses::nce_loss_and_gradients, module)?)?;
    module.add_function(wrap_pyfunction!(
        losses::sampled_softmax_loss_and_gradients,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(losses::nce_sgd_step, module)?)?;
    module.add_function(wrap_pyfunction!(losses::sampled_softmax_sgd_step, module)?)?;
    module.add_function(wrap_pyfunction!(losses::checked_sampled_values, module)?)?;
    module.add_function(wrap_pyfunction!(losses::full_sigmoid_loss, module)?)?;
    module.add_function(wrap_pyfunction!(losses::full_softmax_loss, module)?)?;
    module.add_function(wrap_pyfunction!(set_num_threads, module)?)?;
    module.add_function(wrap_pyfunction!(get_num_threads, module)?)?;
    module.add_function(wrap_pyfunction!(bfloat16_available, module)?)?;
    module.add_function(wrap_pyfunction!(skipgram::skipgram_sgd_step, module)?)?;
    module.add_class::<skipgram::SkipGramTrainer>()?;
    module.add_class::<skipgram::TrainingReport>()?;
    module.add_function(wrap_pyfunction!(skipgram::skipgram_pairs, module)?)?;
    module.add_class::<gradients::SampledLossGradients>()?;
    module.add_class::<output::PooledBuffer>()?;
    fork_gate::register(module)?;
    module.add_class::<corpus::TextCorpus>()?;
    Ok(())
}

/// Use `threads` threads from the next call on; 0 restores the default
/// (`RUSTNCE_NUM_THREADS`, else the number of cores).
#[pyfunction]
fn set_num_threads(threads: &Bound<'_, PyAny>) -> PyResult<()> {
    let maximum = crate::parallelism::MAX_THREADS as i64;
    let threads = arguments::as_int(threads, "threads", Some(0), Some(maximum))?;
    crate::parallelism::set_num_threads(threads as usize);
    Ok(())
}

/// The number of threads rustnce computes on.
#[pyfunction]
fn get_num_threads() -> usize {
    crate::parallelism::current_num_threads()
}

/// Whether `precision="bfloat16"` computes in bfloat16 on this processor (AVX-512 F, BW and
/// BF16); elsewhere it computes in float32.
#[pyfunction]
fn bfloat16_available() -> bool {
    crate::bfloat16::BFloat16Products::detect().is_some()
}
