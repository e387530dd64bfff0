//! `probe-eval`: a model's answer distributions from its outputs — next-token log-probabilities
//! of the option letters, a sequence of answers, a verbalized distribution, independent samples —
//! under no, persona and few-shot steering.

pub mod logp;
pub mod parse;
pub mod prompts;
pub mod questions;
pub mod run;
pub mod similarity;
pub mod simulate;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Data(#[from] probe_data::DataError),
    #[error("{0}")]
    Model(String),
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// FNV-1a: a seed from a text that is the same on every platform and run.
pub fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}
