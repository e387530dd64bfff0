//! `import probe`: the pipeline from Python. Tensors come back as numpy arrays that own the
//! Rust buffers (no copy); long calls run without the GIL in a worker thread, draw progress
//! bars on stderr and stop at the next forward pass when Ctrl-C arrives.

// The same allocator as the `probe` binary: forward passes free and reallocate megabyte
// buffers on every op (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod blocking;
mod metrics;
mod model;
mod pipeline;
mod stages;
mod survey;

use pyo3::prelude::*;

pyo3::create_exception!(
    _probe,
    ProbeError,
    pyo3::exceptions::PyRuntimeError,
    "An error of probe: bad input, a missing file, a model that cannot load. The message is \
     the one the `probe` command line prints."
);

/// An error as the CLI words it, raised as `probe.ProbeError`.
pub(crate) fn to_py_err(err: anyhow::Error) -> PyErr {
    ProbeError::new_err(probe::error_message(&err))
}

/// `shard="k/n"` as a `ShardSplit` (a `ValueError` naming the argument when malformed).
pub(crate) fn parse_shard(shard: &str) -> PyResult<probe_util::ShardSplit> {
    shard
        .parse()
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("shard={shard:?}: {e}")))
}

/// Names (`methods=["logp"]`, `steering=["none"]`) as their types (a `ValueError` naming the
/// argument when one is unknown).
pub(crate) fn parse_names<T>(names: &[String], argument: &str) -> PyResult<Vec<T>>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    names
        .iter()
        .map(|n| {
            n.parse().map_err(|e| {
                pyo3::exceptions::PyValueError::new_err(format!("{argument}={names:?}: {e}"))
            })
        })
        .collect()
}

/// Shows (the default) or hides progress bars and progress notes on stderr.
#[pyfunction]
fn set_progress(visible: bool) {
    probe::progress::set_visible(visible);
}

#[pymodule]
fn _probe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    probe::alloc::keep_freed_memory_mapped();
    m.add("ProbeError", m.py().get_type::<ProbeError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model::Model>()?;
    m.add_function(wrap_pyfunction!(set_progress, m)?)?;
    stages::register(m)?;
    pipeline::register(m)?;
    survey::register(m)?;
    let metrics = PyModule::new(m.py(), "metrics")?;
    metrics::register(&metrics)?;
    m.add_submodule(&metrics)?;
    Ok(())
}
