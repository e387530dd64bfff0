use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, View};

use crate::manifest::{Manifest, FORMAT_VERSION};
use crate::{write_atomic, CacheError, Result};

pub use probe_util::ShardSplit;

mod layout;
use layout::*;
pub use layout::{sha256_hex, ShardRecord};

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

    /// Rows in this job's unfinished shards (what a progress bar counts).
    pub fn pending_rows(&self) -> usize {
        self.pending()
            .into_iter()
            .map(|i| {
                let (s, e) = self.manifest.shard_rows(i);
                e - s
            })
            .sum()
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
            // the finite-output guard: a NaN, an infinity or (in f16) a value f16 cannot hold
            // is an error naming the hook and row, never a shard of garbage
            let limit = if m.dtype == "f16" {
                f16_max()
            } else {
                f32::MAX
            };
            if let Some(k) = data.iter().position(|x| x.is_nan() || x.abs() > limit) {
                let what = if data[k].is_finite() {
                    format!(
                        "{} exceeds the f16 range (±{limit}); extract with --dtype f32",
                        data[k]
                    )
                } else {
                    format!(
                        "{} is not finite (the checkpoint or adapter overflows?)",
                        data[k]
                    )
                };
                return Err(invalid(
                    &path,
                    format!(
                        "hook `{name}`, row {}, dimension {}: {what}",
                        start + k / dim.max(&1),
                        k % dim.max(&1)
                    ),
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

    /// Releases this writer's locks and opens the finished cache for reading (a reader next
    /// to a live writer that overwrote the cache would be refused by the writer's own lock).
    pub fn into_reader(self) -> Result<CacheReader> {
        let dir = self.dir.clone();
        drop(self);
        CacheReader::open(&dir)
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
mod tests;

/// The largest finite f16 (65504).
fn f16_max() -> f32 {
    half::f16::MAX.to_f32()
}

/// The first value of `values` that is not finite (NaN or ±infinity), with its index.
pub fn first_non_finite(values: &[f32]) -> Option<(usize, f32)> {
    values
        .iter()
        .position(|x| !x.is_finite())
        .map(|i| (i, values[i]))
}
