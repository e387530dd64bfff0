//! `probe-latent`: the latent-space method of "Human Preferences in LLM Latent Space" (2025).
//!
//! 1. [`cosine`]: the cosine of every MLP value vector (row of `down_proj` as `[intermediate,
//!    hidden]`) with every party's probe direction, one matrix product per layer.
//! 2. [`select`]: a party's value vectors V̂_n: top-k joint over layers, top-k per layer, IQR
//!    outliers, and the most negative ("diametric") ones.
//! 3. [`vocab`]: what a value vector promotes: the top tokens of the unembedding applied to it.
//! 4. [`scale`]: persona scaling factors m_p^n = Σ m_i cos θ_i / Σ cos θ_i over V̂_n and the
//!    party distributions ψ, ψ_g, ψ_{j,g}, with an explicit rule for negative factors.

pub mod coefficients;
pub mod cosine;
pub mod null;
pub mod scale;
pub mod select;
pub mod vocab;

pub use cosine::{cosine_scan, probe_directions, CosineTable, PartyDirection, ProbeChoice};
pub use scale::{FactorPlan, NegativePolicy, ScaleRow, Summary};
pub use select::{select, Selected, Selection};

#[derive(Debug, thiserror::Error)]
pub enum LatentError {
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Probes(#[from] probe_train::TrainError),
    #[error(transparent)]
    Model(#[from] probe_lm::Error),
    #[error(transparent)]
    Extract(#[from] probe_extract::ExtractError),
    #[error(transparent)]
    Cache(#[from] probe_cache::CacheError),
}

pub type Result<T, E = LatentError> = std::result::Result<T, E>;
