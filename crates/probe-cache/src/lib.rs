//! `probe-cache`: activations on disk.
//!
//! A cache is a directory:
//! ```text
//! manifest.json              what the cache holds: model, hooks, position rule, dtype, rows
//! shard-00000.safetensors    rows [start, start + shard_size): one [rows, dim] tensor per hook,
//! shard-00001.safetensors    plus `row` (i64) with the global row indices
//! progress-0-of-1.json       shards finished by job 0 of 1 (one file per `--shard k/n` job)
//! ```
//! Every file is written to a temporary name and renamed, and a shard counts as finished only
//! once a progress file lists it, so a killed job loses at most the shard in flight and a
//! re-run resumes after the last finished shard. Jobs of a `k/n` split write disjoint shards
//! and disjoint progress files, so they can fill one cache concurrently.

mod manifest;
mod store;

pub use manifest::{Manifest, Row};
pub use store::{CacheReader, CacheWriter, ShardSplit};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cache {path}: {reason}")]
    Invalid {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cache {path} was made for {what}: {existing} ≠ {requested}; use another output directory or --overwrite")]
    Mismatch {
        path: std::path::PathBuf,
        what: String,
        existing: String,
        requested: String,
    },
}

pub type Result<T, E = CacheError> = std::result::Result<T, E>;

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let io = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
