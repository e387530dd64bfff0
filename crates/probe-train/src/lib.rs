//! `probe-train`: one logistic-regression probe per party (party vs rest) on cached
//! activations, per layer and shared across layers, cross-validated by statement.
//!
//! ```text
//! Features::from_cache ──► train(features, ProbeParams::check()) ──► TrainedProbes ──► save
//! ```
//! Class weighting: linfa-logistic has no sample weights, so each positive row is repeated
//! `round(n_neg / n_pos)` times (5 for six parties): exactly scikit-learn's
//! `sample_weight`/`class_weight` with that integer weight, which `scripts/probe_sklearn.py`
//! uses to check the probes.

// Party × hook × fold tables are indexed in parallel; index loops say that most plainly.
#![allow(clippy::needless_range_loop)]

mod artifacts;
pub mod convert;
mod dataset;
pub mod fit;
pub mod folds;
pub mod metrics;
mod newton;
pub mod null;
mod train;

pub use artifacts::{load, save, LoadedProbes, Provenance, PROBES_FILE, REPORT_FILE};
pub use dataset::Features;
/// The report types are `probes.json`'s schema, shared with every reader (probe-schema).
pub use probe_schema::probes::{
    CvResult, HookSummary, NullReport, ProbeParams, ProbesJson, Scores, Solver, TrainReport,
    ValidProbeParams,
};
pub use train::Progress;
pub use train::{train, Probe, TrainedProbes};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Cache(#[from] probe_cache::CacheError),
    #[error(transparent)]
    Schema(#[from] probe_schema::SchemaError),
    #[error("invalid probe parameters: {0}")]
    Params(String),
    #[error("{0}")]
    Data(String),
    #[error("logistic regression failed: {0}")]
    Fit(String),
    #[error("{path}: {reason}")]
    Artifact {
        path: std::path::PathBuf,
        reason: String,
    },
    /// The progress callback asked to stop (a host's Ctrl-C).
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
