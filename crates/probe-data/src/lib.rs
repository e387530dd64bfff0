//! `probe-data`: readers for everything `probe` compares model outputs against, each returning
//! validated [`cells::Cell`]s: one distribution over ordered options per (labels…) cell.

pub mod cells;
pub mod defaults;
pub mod opinionqa;
pub mod personas;
pub mod probe_prompts;
mod pylit;
pub mod respondents;
pub mod survey;
pub mod wahl_o_mat;

use std::path::{Path, PathBuf};

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

/// The largest text input read into memory (a data file, a template or experiment file).
pub const MAX_TEXT_INPUT: u64 = 1 << 30;

/// Reads a text input: a regular file (a FIFO or device given by mistake would block or never
/// end) of at most [`MAX_TEXT_INPUT`] bytes, checked before anything is allocated.
pub fn read_text(path: &Path) -> Result<String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        // a default data file not on disk: the built-in copy (see `defaults`)
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match defaults::embedded(path) {
                Some(text) => Ok(text.to_string()),
                None => Err(DataError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }),
            }
        }
        Err(source) => {
            return Err(DataError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !meta.is_file() {
        return Err(DataError::File {
            path: path.to_path_buf(),
            reason: "not a regular file (a directory, FIFO or device)".into(),
        });
    }
    if meta.len() > MAX_TEXT_INPUT {
        return Err(DataError::File {
            path: path.to_path_buf(),
            reason: format!(
                "{} bytes: larger than any input of this kind ({MAX_TEXT_INPUT} bytes at most)",
                meta.len()
            ),
        });
    }
    std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod read_text_tests {
    #[test]
    fn a_device_or_directory_is_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let err = super::read_text(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        if std::path::Path::new("/dev/zero").exists() {
            let err = super::read_text(std::path::Path::new("/dev/zero"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
    }
}
