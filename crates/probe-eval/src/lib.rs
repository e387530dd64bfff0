//! `probe-eval`: a model's answer distributions from its outputs — next-token log-probabilities
//! of the option letters, a sequence of answers, a verbalized distribution, independent samples —
//! under no, persona and few-shot steering.

pub mod logp;
pub mod parse;
pub mod prompts;
pub mod questions;
pub mod run;
pub mod similarity;

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
