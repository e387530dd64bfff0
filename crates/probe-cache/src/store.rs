use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::{Manifest, FORMAT_VERSION};
use crate::{write_atomic, CacheError, Result};

/// Job `k` of `n`: this job fills the shards i with i mod n = k.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSplit {
    pub k: usize,
    pub n: usize,
}

impl Default for ShardSplit {
    fn default() -> Self {
        ShardSplit { k: 0, n: 1 }
    }
}

impl std::str::FromStr for ShardSplit {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected k/n, e.g. 0/4"))?;
        let (k, n): (usize, usize) = (
            k.trim()
                .parse()
                .map_err(|_| format!("`{s}`: k is not a number"))?,
            n.trim()
                .parse()
                .map_err(|_| format!("`{s}`: n is not a number"))?,
        );
        if n == 0 || k >= n {
            return Err(format!("`{s}`: need 0 ≤ k < n"));
        }
        Ok(ShardSplit { k, n })
    }
}

fn shard_file(i: usize) -> String {
    format!("shard-{i:05}.safetensors")
}

fn progress_file(split: ShardSplit) -> String {
    format!("progress-{}-of-{}.json", split.k, split.n)
}

/// The advisory lock every process using a cache holds: shared by writers and readers,
/// exclusive by an `--overwrite` job (so it never deletes files under another process).
const CACHE_LOCK: &str = ".lock";

fn job_lock_file(split: ShardSplit) -> String {
    format!(".lock-{}-of-{}", split.k, split.n)
}

fn hex(digest: &[u8]) -> String {
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
struct Progress {
    format_version: u32,
    shards: Vec<ShardRecord>,
}

fn invalid(path: &Path, reason: impl Into<String>) -> CacheError {
    CacheError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
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
                         (shards now carry content hashes); re-extract with --overwrite"
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

fn read_progress(path: &Path, manifest: &Manifest) -> Result<Vec<ShardRecord>> {
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
fn finished_shards(dir: &Path, manifest: &Manifest) -> Result<BTreeMap<usize, ShardRecord>> {
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
fn looks_like_cache(dir: &Path) -> Result<bool> {
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
fn try_lock(path: &Path, exclusive: bool) -> Result<Option<File>> {
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
fn remove_leftovers(dir: &Path, owns: &dyn Fn(&str) -> bool) {
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

struct Entry<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: &'a [u8],
}

impl View for Entry<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Fills a cache, shard by shard.
///
/// It holds advisory locks for its lifetime: the cache's lock (shared; exclusive when it
/// overwrote the cache) and its job's lock (exclusive), so a second process running the same
/// job, or overwriting the cache under a running one, is refused instead of mixing files.
#[derive(Debug)]
pub struct CacheWriter {
    dir: PathBuf,
    manifest: Manifest,
    split: ShardSplit,
    mine: BTreeMap<usize, ShardRecord>,
    done: BTreeSet<usize>,
    _locks: [File; 2],
}

impl CacheWriter {
    /// Opens (or creates) the cache in `dir` for `manifest`. An existing cache must have been
    /// made for exactly the same manifest, unless `overwrite` clears it first.
    pub fn open(
        dir: &Path,
        manifest: Manifest,
        split: ShardSplit,
        overwrite: bool,
    ) -> Result<Self> {
        manifest.validate(&dir.join("manifest.json"))?;
        if dir.exists() && !dir.is_dir() {
            return Err(invalid(dir, "exists and is not a directory"));
        }
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let busy = |what: &str| {
            invalid(
                dir,
                format!(
                    "{what} (another probe process holds its lock); wait for it to finish, \
                     or use another output directory"
                ),
            )
        };
        let cache_lock = try_lock(&dir.join(CACHE_LOCK), overwrite)?.ok_or_else(|| {
            busy(if overwrite {
                "cannot overwrite a cache that is in use"
            } else {
                "the cache is being overwritten"
            })
        })?;
        let job_lock = try_lock(&dir.join(job_lock_file(split)), true)?.ok_or_else(|| {
            busy(&format!(
                "job {}/{} is already filling this cache",
                split.k, split.n
            ))
        })?;
        if overwrite {
            if !looks_like_cache(dir)? {
                return Err(invalid(
                    dir,
                    "is not a probe cache (no manifest, shards or progress files); refusing \
                     to delete it for --overwrite",
                ));
            }
            let entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
            for e in entries.filter_map(|e| e.ok()) {
                if e.file_name().to_string_lossy().starts_with(".lock") {
                    continue;
                }
                let path = e.path();
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.map_err(io_error(&path))?;
            }
        }
        let n_shards = manifest.n_shards();
        let owned = move |i: usize| i < n_shards && i % split.n == split.k;
        let progress_name = progress_file(split);
        remove_leftovers(dir, &|stem: &str| {
            overwrite
                || stem == progress_name
                || stem
                    .strip_prefix("shard-")
                    .and_then(|s| s.strip_suffix(".safetensors"))
                    .and_then(|i| i.parse().ok())
                    .is_some_and(owned)
        });
        match read_manifest(dir)? {
            Some(existing) => {
                if let Some((what, a, b)) = existing.difference(&manifest) {
                    return Err(CacheError::Mismatch {
                        path: dir.to_path_buf(),
                        what,
                        existing: a,
                        requested: b,
                    });
                }
            }
            None => {
                if !holds_no_shards(dir)? {
                    return Err(invalid(
                        dir,
                        "has shards or progress files but no manifest.json, so what they hold \
                         is unknown; re-run with --overwrite to start over",
                    ));
                }
                let bytes = serde_json::to_vec_pretty(&manifest).expect("serializable");
                write_atomic(&dir.join("manifest.json"), &bytes)?;
            }
        }
        let progress = dir.join(&progress_name);
        let done_all = finished_shards(dir, &manifest)?;
        let mine: BTreeMap<usize, ShardRecord> = if progress.is_file() {
            read_progress(&progress, &manifest)?
                .into_iter()
                .filter(|r| done_all.contains_key(&r.index))
                .map(|r| (r.index, r))
                .collect()
        } else {
            BTreeMap::new()
        };
        Ok(CacheWriter {
            dir: dir.to_path_buf(),
            manifest,
            split,
            mine,
            done: done_all.into_keys().collect(),
            _locks: [cache_lock, job_lock],
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// This job's shards that are not finished yet, in order.
    pub fn pending(&self) -> Vec<usize> {
        (0..self.manifest.n_shards())
            .filter(|i| i % self.split.n == self.split.k && !self.done.contains(i))
            .collect()
    }

    /// Writes shard `i` from one `[rows × dim]` f32 block per hook (in manifest order), then
    /// records it, with its size and SHA-256, as finished.
    pub fn write_shard(&mut self, i: usize, hooks: &[Vec<f32>]) -> Result<()> {
        let m = &self.manifest;
        let path = self.dir.join(shard_file(i));
        if i >= m.n_shards() {
            return Err(invalid(
                &path,
                format!("shard {i} of a cache of {} shards", m.n_shards()),
            ));
        }
        let (start, end) = m.shard_rows(i);
        let rows = end - start;
        if hooks.len() != m.hooks.len() {
            return Err(invalid(
                &path,
                format!("{} hook blocks for {} hooks", hooks.len(), m.hooks.len()),
            ));
        }
        let row_ids: Vec<u8> = (start..end)
            .flat_map(|r| (r as i64).to_le_bytes())
            .collect();
        let mut blocks: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> =
            vec![("row".into(), Dtype::I64, vec![rows], row_ids)];
        for ((name, dim), data) in m.hooks.iter().zip(&m.dims).zip(hooks) {
            if data.len() != rows * dim {
                return Err(invalid(
                    &path,
                    format!("{name}: {} values for {rows} rows × {dim}", data.len()),
                ));
            }
            let (dtype, bytes) = match m.dtype.as_str() {
                "f16" => (
                    Dtype::F16,
                    data.iter()
                        .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                        .collect(),
                ),
                _ => (
                    Dtype::F32,
                    data.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
            };
            blocks.push((name.clone(), dtype, vec![rows, *dim], bytes));
        }
        let views = blocks.iter().map(|(n, d, s, b)| {
            (
                n.as_str(),
                Entry {
                    dtype: *d,
                    shape: s.clone(),
                    bytes: b,
                },
            )
        });
        let bytes =
            safetensors::serialize(views, None).map_err(|e| invalid(&path, e.to_string()))?;
        let record = ShardRecord {
            index: i,
            rows: [start, end],
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        };
        write_atomic(&path, &bytes)?;
        self.mine.insert(i, record);
        self.done.insert(i);
        let progress = Progress {
            format_version: FORMAT_VERSION,
            shards: self.mine.values().cloned().collect(),
        };
        write_atomic(
            &self.dir.join(progress_file(self.split)),
            &serde_json::to_vec(&progress).expect("serializable"),
        )
    }

    /// Whether every shard of the cache (all jobs) is finished.
    pub fn is_complete(&self) -> Result<bool> {
        Ok(finished_shards(&self.dir, &self.manifest)?.len() == self.manifest.n_shards())
    }
}

/// Whether a directory holds no shard and no progress file (so a missing manifest is one
/// that was never written, not one that was deleted).
fn holds_no_shards(dir: &Path) -> Result<bool> {
    let entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
    Ok(entries.filter_map(|e| e.ok()).all(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        !(name.starts_with("shard-") || name.starts_with("progress-"))
    }))
}

/// Reads a finished cache. Every shard is checked as it is read: its size and SHA-256
/// against the progress file, its `row` tensor against the manifest's row range, and each
/// hook's dtype and shape against the manifest.
#[derive(Debug)]
pub struct CacheReader {
    dir: PathBuf,
    manifest: Manifest,
    records: BTreeMap<usize, ShardRecord>,
    _lock: Option<File>,
}

impl CacheReader {
    /// Opens a cache; an unfinished one is an error naming the missing shards.
    pub fn open(dir: &Path) -> Result<Self> {
        let manifest = read_manifest(dir)?
            .ok_or_else(|| invalid(dir, "no manifest.json: not a cache (or not started)"))?;
        // A read-only cache cannot be written under us either: reading it needs no lock.
        let lock = match try_lock(&dir.join(CACHE_LOCK), false) {
            Ok(Some(file)) => Some(file),
            Ok(None) => {
                return Err(invalid(
                    dir,
                    "is being overwritten by another probe process; wait for it to finish",
                ))
            }
            Err(_) => None,
        };
        let records = finished_shards(dir, &manifest)?;
        let missing: Vec<usize> = (0..manifest.n_shards())
            .filter(|i| !records.contains_key(i))
            .collect();
        if !missing.is_empty() {
            return Err(invalid(
                dir,
                format!(
                    "incomplete: {} of {} shards missing (first: {}); re-run the extraction \
                     to resume",
                    missing.len(),
                    manifest.n_shards(),
                    missing[0]
                ),
            ));
        }
        Ok(CacheReader {
            dir: dir.to_path_buf(),
            manifest,
            records,
            _lock: lock,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Shard `i`'s bytes, after checking them against what its job recorded.
    fn shard_bytes(&self, i: usize) -> Result<Vec<u8>> {
        let path = self.dir.join(shard_file(i));
        let bytes = std::fs::read(&path).map_err(io_error(&path))?;
        let record = &self.records[&i];
        if bytes.len() as u64 != record.bytes || sha256_hex(&bytes) != record.sha256 {
            return Err(invalid(
                &path,
                format!(
                    "content differs from what was recorded when it was written ({} bytes, \
                     sha256 {}…): the file was changed or replaced; re-extract it with \
                     --overwrite",
                    record.bytes,
                    &record.sha256[..record.sha256.len().min(12)]
                ),
            ));
        }
        Ok(bytes)
    }

    /// All rows of one hook as f32, `[rows × dim]` row-major, and `dim`.
    pub fn read_hook(&self, hook: &str) -> Result<(Vec<f32>, usize)> {
        let h = self
            .manifest
            .hooks
            .iter()
            .position(|x| x == hook)
            .ok_or_else(|| {
                invalid(
                    &self.dir,
                    format!(
                        "no hook `{hook}` in the cache (it has {})",
                        self.manifest.hooks.join(", ")
                    ),
                )
            })?;
        let dim = self.manifest.dims[h];
        let want_dtype = match self.manifest.dtype.as_str() {
            "f16" => Dtype::F16,
            _ => Dtype::F32,
        };
        let mut out = Vec::with_capacity(self.manifest.rows.len() * dim);
        for i in 0..self.manifest.n_shards() {
            let path = self.dir.join(shard_file(i));
            let bytes = self.shard_bytes(i)?;
            let st = SafeTensors::deserialize(&bytes).map_err(|e| invalid(&path, e.to_string()))?;
            let (start, end) = self.manifest.shard_rows(i);
            let row = st
                .tensor("row")
                .map_err(|e| invalid(&path, format!("tensor `row`: {e}")))?;
            let expected: Vec<u8> = (start..end)
                .flat_map(|r| (r as i64).to_le_bytes())
                .collect();
            if row.dtype() != Dtype::I64 || row.data() != expected.as_slice() {
                return Err(invalid(
                    &path,
                    format!(
                        "tensor `row` does not hold rows [{start}, {end}) of the manifest: \
                         the shard belongs elsewhere"
                    ),
                ));
            }
            let t = st
                .tensor(hook)
                .map_err(|e| invalid(&path, format!("tensor `{hook}`: {e}")))?;
            if t.shape() != [end - start, dim] {
                return Err(invalid(
                    &path,
                    format!(
                        "{hook} has shape {:?}, expected [{}, {dim}]",
                        t.shape(),
                        end - start
                    ),
                ));
            }
            if t.dtype() != want_dtype {
                return Err(invalid(
                    &path,
                    format!(
                        "{hook} has dtype {:?}, but the manifest says {}",
                        t.dtype(),
                        self.manifest.dtype
                    ),
                ));
            }
            match t.dtype() {
                Dtype::F16 => out.extend(
                    t.data()
                        .chunks_exact(2)
                        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
                ),
                _ => out.extend(
                    t.data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ),
            }
        }
        Ok((out, dim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Row;

    fn manifest(rows: usize) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            model: "m".into(),
            model_hash: "abc".into(),
            hooks: vec!["blocks.0.hook_resid_post".into()],
            dims: vec![3],
            positions: "last".into(),
            dtype: "f32".into(),
            label_names: vec!["a".into(), "b".into()],
            source: Default::default(),
            shard_size: 2,
            rows: (0..rows)
                .map(|i| Row {
                    id: format!("r{i}"),
                    label: Some(i % 2),
                    group: None,
                    meta: Default::default(),
                })
                .collect(),
        }
    }

    fn block(i: usize, m: &Manifest) -> Vec<f32> {
        let (s, e) = m.shard_rows(i);
        (s * 3..e * 3).map(|x| x as f32).collect()
    }

    #[test]
    fn resumes_split_jobs_and_reads_back_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let m = manifest(5);
        let mut w0 = CacheWriter::open(&dir, m.clone(), "0/2".parse().unwrap(), false).unwrap();
        assert_eq!(w0.pending(), vec![0, 2]);
        w0.write_shard(0, &[block(0, &m)]).unwrap();
        assert!(CacheReader::open(&dir)
            .unwrap_err()
            .to_string()
            .contains("2 of 3 shards missing"));
        // "Killed" (its locks go with the process) and restarted: shard 0 is not redone.
        drop(w0);
        let mut w0 = CacheWriter::open(&dir, m.clone(), "0/2".parse().unwrap(), false).unwrap();
        assert_eq!(w0.pending(), vec![2]);
        w0.write_shard(2, &[block(2, &m)]).unwrap();
        let mut w1 = CacheWriter::open(&dir, m.clone(), "1/2".parse().unwrap(), false).unwrap();
        assert_eq!(w1.pending(), vec![1]);
        w1.write_shard(1, &[block(1, &m)]).unwrap();
        assert!(w1.is_complete().unwrap());
        let (data, dim) = CacheReader::open(&dir)
            .unwrap()
            .read_hook("blocks.0.hook_resid_post")
            .unwrap();
        assert_eq!(dim, 3);
        assert_eq!(data, (0..15).map(|x| x as f32).collect::<Vec<_>>());
    }

    #[test]
    fn a_cache_for_other_hooks_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        CacheWriter::open(&dir, manifest(4), ShardSplit::default(), false).unwrap();
        let mut other = manifest(4);
        other.hooks = vec!["blocks.1.hook_resid_post".into()];
        let err = CacheWriter::open(&dir, other.clone(), ShardSplit::default(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("was made for hook points"), "{err}");
        assert!(CacheWriter::open(&dir, other, ShardSplit::default(), true).is_ok());
        assert!("3/2".parse::<ShardSplit>().is_err());
    }

    /// A finished 3-shard cache of `manifest(5)` in `dir`.
    fn filled(dir: &Path) -> Manifest {
        let m = manifest(5);
        let mut w = CacheWriter::open(dir, m.clone(), ShardSplit::default(), false).unwrap();
        for i in w.pending() {
            w.write_shard(i, &[block(i, &m)]).unwrap();
        }
        m
    }

    fn read_err(dir: &Path) -> String {
        match CacheReader::open(dir) {
            Err(e) => e.to_string(),
            Ok(r) => r
                .read_hook("blocks.0.hook_resid_post")
                .expect_err("the cache should be refused")
                .to_string(),
        }
    }

    #[test]
    fn swapped_shards_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        filled(&dir);
        let (a, b) = (dir.join(shard_file(0)), dir.join(shard_file(1)));
        std::fs::rename(&a, dir.join("x")).unwrap();
        std::fs::rename(&b, &a).unwrap();
        std::fs::rename(dir.join("x"), &b).unwrap();
        let err = read_err(&dir);
        assert!(err.contains("content differs"), "{err}");
    }

    #[test]
    fn a_shard_with_the_right_hash_but_wrong_rows_is_refused() {
        // shards 0 and 1 have the same size; swap them and their progress records' hashes
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        filled(&dir);
        let progress = dir.join("progress-0-of-1.json");
        let mut p: Progress =
            serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
        let (h0, h1) = (p.shards[0].sha256.clone(), p.shards[1].sha256.clone());
        p.shards[0].sha256 = h1;
        p.shards[1].sha256 = h0;
        std::fs::write(&progress, serde_json::to_vec(&p).unwrap()).unwrap();
        let (a, b) = (dir.join(shard_file(0)), dir.join(shard_file(1)));
        std::fs::rename(&a, dir.join("x")).unwrap();
        std::fs::rename(&b, &a).unwrap();
        std::fs::rename(dir.join("x"), &b).unwrap();
        let err = read_err(&dir);
        assert!(err.contains("does not hold rows [0, 2)"), "{err}");
        // a record whose row range disagrees with the manifest is refused on open
        p.shards[0].rows = [2, 4];
        std::fs::write(&progress, serde_json::to_vec(&p).unwrap()).unwrap();
        assert!(read_err(&dir).contains("recorded with rows [2, 4]"));
    }

    #[test]
    fn a_shard_of_the_wrong_dtype_is_refused_even_with_a_matching_hash() {
        let tmp = tempfile::tempdir().unwrap();
        let (f16_dir, dir) = (tmp.path().join("h"), tmp.path().join("c"));
        filled(&dir);
        let mut m = manifest(5);
        m.dtype = "f16".into();
        let mut w = CacheWriter::open(&f16_dir, m.clone(), ShardSplit::default(), false).unwrap();
        w.write_shard(1, &[block(1, &m)]).unwrap();
        // shard 1 replaced by an f16 shard, and its record with the f16 shard's record
        std::fs::copy(f16_dir.join(shard_file(1)), dir.join(shard_file(1))).unwrap();
        let progress = dir.join("progress-0-of-1.json");
        let mut p: Progress =
            serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
        let theirs: Progress = serde_json::from_str(
            &std::fs::read_to_string(f16_dir.join("progress-0-of-1.json")).unwrap(),
        )
        .unwrap();
        p.shards[1] = theirs.shards[0].clone();
        std::fs::write(&progress, serde_json::to_vec(&p).unwrap()).unwrap();
        let err = read_err(&dir);
        assert!(
            err.contains("dtype F16, but the manifest says f32"),
            "{err}"
        );
    }

    #[test]
    fn a_deleted_manifest_over_shards_is_refused_unless_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        filled(&dir);
        std::fs::remove_file(dir.join("manifest.json")).unwrap();
        let mut other = manifest(5);
        other
            .source
            .insert("inputs_sha256".into(), "changed".into());
        let err = CacheWriter::open(&dir, other.clone(), ShardSplit::default(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no manifest.json"), "{err}");
        let w = CacheWriter::open(&dir, other, ShardSplit::default(), true).unwrap();
        assert_eq!(w.pending(), vec![0, 1, 2]);
    }

    #[test]
    fn changed_inputs_are_a_mismatch() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        filled(&dir);
        let mut other = manifest(5);
        other
            .source
            .insert("inputs_sha256".into(), "changed".into());
        let err = CacheWriter::open(&dir, other, ShardSplit::default(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("was made for source"), "{err}");
    }

    #[test]
    fn locks_refuse_a_second_writer_of_a_job_and_an_overwrite_under_a_writer() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let m = manifest(5);
        let first = CacheWriter::open(&dir, m.clone(), ShardSplit::default(), false).unwrap();
        let same = CacheWriter::open(&dir, m.clone(), ShardSplit::default(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            same.contains("job 0/1 is already filling this cache"),
            "{same}"
        );
        let over = CacheWriter::open(&dir, m.clone(), ShardSplit::default(), true)
            .err()
            .unwrap()
            .to_string();
        assert!(
            over.contains("cannot overwrite a cache that is in use"),
            "{over}"
        );
        // other jobs of a k/n split work alongside
        let other = CacheWriter::open(&dir, m.clone(), "1/2".parse().unwrap(), false).unwrap();
        drop((first, other));
        let w = CacheWriter::open(&dir, m.clone(), ShardSplit::default(), true).unwrap();
        // while it overwrites, neither writers nor readers get in
        let during = CacheWriter::open(&dir, m, "1/2".parse().unwrap(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(during.contains("being overwritten"), "{during}");
        drop(w);
    }

    #[test]
    fn leftovers_are_removed_and_overwrite_refuses_a_foreign_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            ".shard-00000.safetensors.tmp-999999",
            ".shard-00001.safetensors.tmp-999999",
            ".progress-0-of-2.json.tmp-1",
        ] {
            std::fs::write(dir.join(name), b"partial").unwrap();
        }
        let w = CacheWriter::open(&dir, manifest(5), "0/2".parse().unwrap(), false).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        left.sort();
        // job 0/2 owns shard 0 and its progress file; shard 1 belongs to job 1/2
        assert_eq!(left, [".shard-00001.safetensors.tmp-999999"]);
        drop(w);

        let home = tmp.path().join("notes");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("thesis.tex"), b"precious").unwrap();
        let err = CacheWriter::open(&home, manifest(5), ShardSplit::default(), true)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("is not a probe cache"), "{err}");
        assert!(home.join("thesis.tex").is_file());
    }

    #[test]
    fn a_cache_of_an_older_format_is_named_as_such() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        filled(&dir);
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"format_version\": 2", "\"format_version\": 1");
        std::fs::write(&path, text).unwrap();
        let err = read_err(&dir);
        assert!(err.contains("format version 1"), "{err}");
        std::fs::write(&path, b"{").unwrap();
        assert!(read_err(&dir).contains("unreadable manifest"));
    }
}
