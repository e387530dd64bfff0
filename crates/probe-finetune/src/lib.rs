//! `probe-finetune`: LoRA adapters trained on survey answers (arXiv 2403.20252) with burn's
//! autodiff through the very transformer `probe` runs. A training example is one respondent ×
//! item prompt of `probe simulate`, its target the respondent's option; the loss is the
//! cross-entropy of the options' distribution plus, for ordinal and numeric items, the expected
//! distance of the predicted option from the true one ([`loss`]). AdamW with a cosine schedule
//! ([`optim`]), gradient accumulation, early stopping on a validation split, and checkpoints
//! that resume a killed run exactly ([`train`]).

pub mod data;
pub mod loss;
pub mod optim;
pub mod train;

#[derive(Debug, thiserror::Error)]
pub enum FinetuneError {
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Model(#[from] probe_lm::Error),
    #[error(transparent)]
    Eval(#[from] probe_eval::EvalError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T, E = FinetuneError> = std::result::Result<T, E>;

pub(crate) fn io_error(path: &std::path::Path, source: std::io::Error) -> FinetuneError {
    FinetuneError::Io {
        path: path.to_path_buf(),
        source,
    }
}
