//! What a cache is on disk: file names, progress records, locks and leftovers.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ShardSplit;
use crate::manifest::{Manifest, FORMAT_VERSION};
use crate::{CacheError, Result};

pub(super) fn shard_file(i: usize) -> String {
    format!("shard-{i:05}.safetensors")
}

pub(super) fn progress_file(split: ShardSplit) -> String {
    format!("progress-{}-of-{}.json", split.k, split.n)
}

/// The advisory lock every process using a cache holds: shared by writers and readers,
/// exclusive by an `--overwrite` job (so it never deletes files under another process).
pub(super) const CACHE_LOCK: &str = ".lock";

pub(super) fn job_lock_file(split: ShardSplit) -> String {
    format!(".lock-{}-of-{}", split.k, split.n)
}

pub(super) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a byte string, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// One finished shard as the job that wrote it recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: usize,
    /// Global rows `[start, end)` the shard holds.
    pub rows: [usize; 2],
    /// File size in bytes and SHA-256 of the whole file.
    pub bytes: u64,
    pub sha256: String,
}

/// A progress file: the shards one `--shard k/n` job has finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Progress {
    pub(super) format_version: u32,
    pub(super) shards: Vec<ShardRecord>,
}

pub(super) fn invalid(path: &Path, reason: impl Into<String>) -> CacheError {
    CacheError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

pub(super) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join("manifest.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
    // an older cache is named as such, not as "unreadable"
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        if let Some(version) = v.get("format_version").and_then(|v| v.as_u64()) {
            if version != u64::from(FORMAT_VERSION) {
                return Err(invalid(
                    &path,
                    format!(
                        "cache format version {version}, this probe reads {FORMAT_VERSION} \
                         (shards now carry content hashes): delete the cache directory and \
                         run again, or re-extract with --overwrite"
                    ),
                ));
            }
        }
    }
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| invalid(&path, format!("unreadable manifest: {e}")))?;
    m.validate(&path)?;
    Ok(Some(m))
}

pub(super) fn read_progress(path: &Path, manifest: &Manifest) -> Result<Vec<ShardRecord>> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let progress: Progress = serde_json::from_str(&text).map_err(|e| {
        invalid(
            path,
            format!("unreadable progress file (from an older probe?): {e}"),
        )
    })?;
    if progress.format_version != FORMAT_VERSION {
        return Err(invalid(
            path,
            format!(
                "progress format version {} (this probe reads {FORMAT_VERSION})",
                progress.format_version
            ),
        ));
    }
    for r in &progress.shards {
        let (start, end) = manifest.shard_rows(r.index);
        if r.index >= manifest.n_shards() || r.rows != [start, end] {
            return Err(invalid(
                path,
                format!(
                    "shard {} recorded with rows {:?}, but the manifest puts rows [{start}, \
                     {end}) there (the cache has {} shards)",
                    r.index,
                    r.rows,
                    manifest.n_shards()
                ),
            ));
        }
    }
    Ok(progress.shards)
}

/// Shards that some job has recorded as finished and whose file exists with the recorded
/// size (the content hash is checked when the shard is read).
pub(super) fn finished_shards(
    dir: &Path,
    manifest: &Manifest,
) -> Result<BTreeMap<usize, ShardRecord>> {
    let mut done = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("progress-") && n.ends_with(".json"))
        .collect();
    names.sort();
    for name in names {
        for record in read_progress(&dir.join(&name), manifest)? {
            let size = std::fs::metadata(dir.join(shard_file(record.index)))
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            if size == Some(record.bytes) {
                if let Some(other) = done.get(&record.index) {
                    // two jobs wrote the same shard (deterministic: the same bytes)
                    if other != &record {
                        return Err(invalid(
                            &dir.join(&name),
                            format!(
                                "shard {} is recorded twice with different contents",
                                record.index
                            ),
                        ));
                    }
                }
                done.insert(record.index, record);
            }
        }
    }
    Ok(done)
}

/// Whether `dir` holds anything a cache writes (so that `--overwrite` may clear it).
pub(super) fn looks_like_cache(dir: &Path) -> Result<bool> {
    let entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
    let mut empty = true;
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "manifest.json"
            || (name.starts_with("shard-") && name.ends_with(".safetensors"))
            || (name.starts_with("progress-") && name.ends_with(".json"))
        {
            return Ok(true);
        }
        empty &= name.starts_with(".lock") || name.contains(".tmp-");
    }
    Ok(empty)
}

/// Opens (creating it) a lock file and takes the lock, shared or exclusive, without waiting.
pub(super) fn try_lock(path: &Path, exclusive: bool) -> Result<Option<File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_error(path))?;
    let taken = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match taken {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(CacheError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Leftover temporary files (`.name.tmp-<pid>`) of a killed or failed write: those of the
/// files this job owns, and any whose process is gone and that are over an hour old (a
/// job of a `k/n` array on another host may still be writing its own).
pub(super) fn remove_leftovers(dir: &Path, owns: &dyn Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((stem, _pid)) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp-")) else {
            continue;
        };
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if owns(stem) || stale {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
