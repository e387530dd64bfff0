//! `probe-data`: readers for everything `probe` compares model outputs against, each returning
//! validated [`cells::Cell`]s: one distribution over ordered options per (labels…) cell.

pub mod cells;
pub mod opinionqa;
pub mod personas;
pub mod probe_prompts;
mod pylit;
pub mod respondents;
pub mod wahl_o_mat;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
