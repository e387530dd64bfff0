//! `probe` as a library: every stage of the pipeline as one function over a typed options
//! struct, the way the `probe` command line and the Python bindings call it.
//!
//! ```no_run
//! use probe::{ModelSpec, RunWithCacheOptions, Reduce};
//! # fn main() -> anyhow::Result<()> {
//! let spec = ModelSpec::new("models/SmolLM2-135M-Instruct.Q4_1.gguf");
//! let model = spec.load()?;
//! let ids = probe::run_with_cache::tokenize(&model, &["Wer gewinnt die Wahl?".into()], false)?;
//! let options = RunWithCacheOptions { reduce: Reduce::Last, ..Default::default() };
//! let acts = probe::run_with_cache(&model, &ids, &options)?;
//! println!("{:?}", acts.tensors["blocks.18.hook_resid_post"].shape); // [1, 576]
//! # Ok(()) }
//! ```
//!
//! Long work draws progress bars on stderr ([`progress::set_visible`] turns them off) and
//! stops at its next forward pass after [`probe_lm::interrupt::request`].

pub mod alloc;
pub mod compare;
pub mod eval;
pub mod extract;
pub mod files;
pub mod finetune;
pub mod model;
pub mod personas;
pub mod progress;
pub mod report;
pub mod run_with_cache;
pub mod scale;
pub mod simulate;
pub mod study;
pub mod survey;
pub mod train;
pub mod vectors;

pub use extract::{ensure_cache, CacheStatus, ExtractOptions};
pub use model::ModelSpec;
pub use personas::PersonaSelection;
pub use probe_lm::{DeviceSpec, DtypeChoice, Logits, Model};
pub use run_with_cache::{run_with_cache, tokenize, Activations, Reduce, RunWithCacheOptions};
pub use train::{train, TrainOptions, TrainOutcome};

/// An error as one line, outermost context first ("loading model x: missing tensor `y` in
/// z"); a cause that an outer message already quotes (thiserror's `{source}`) is said once.
pub fn error_message(err: &anyhow::Error) -> String {
    let mut chain: Vec<String> = Vec::new();
    for cause in err.chain().map(|c| c.to_string()) {
        if !chain.last().is_some_and(|outer| outer.contains(&cause)) {
            chain.push(cause);
        }
    }
    chain.join(": ")
}
