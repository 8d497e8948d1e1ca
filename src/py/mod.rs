//! The Python binding (`rustnce._rustnce`): turns NumPy arrays into views, releases the
//! interpreter around the core's work and maps `NceError` to Python exceptions. No arithmetic.

mod accidental_hits;
mod arguments;
mod errors;
mod losses;
mod samplers;
mod sharding;

use pyo3::prelude::*;

#[pymodule]
fn _rustnce(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<samplers::CandidateSampler>()?;
    module.add_function(wrap_pyfunction!(samplers::seed_attributes, module)?)?;
    module.add_function(wrap_pyfunction!(
        accidental_hits::compute_accidental_hits,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(sharding::embedding_lookup, module)?)?;
    module.add_function(wrap_pyfunction!(losses::sampled_logits, module)?)?;
    module.add_function(wrap_pyfunction!(losses::sampled_loss, module)?)?;
    module.add_function(wrap_pyfunction!(losses::full_loss, module)?)?;
    Ok(())
}
