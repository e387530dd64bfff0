use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, View};

use crate::manifest::Manifest;
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

fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join("manifest.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|source| CacheError::Io {
        path: path.clone(),
        source,
    })?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| CacheError::Invalid {
        path: path.clone(),
        reason: format!("unreadable manifest: {e}"),
    })?;
    m.validate(&path)?;
    Ok(Some(m))
}

/// Shards that some job has recorded as finished (and whose file exists).
fn finished_shards(dir: &Path) -> Result<BTreeSet<usize>> {
    let mut done = BTreeSet::new();
    let entries = std::fs::read_dir(dir).map_err(|source| CacheError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("progress-") && name.ends_with(".json") {
            let text = std::fs::read_to_string(e.path()).map_err(|source| CacheError::Io {
                path: e.path(),
                source,
            })?;
            let list: Vec<usize> =
                serde_json::from_str(&text).map_err(|err| CacheError::Invalid {
                    path: e.path(),
                    reason: format!("unreadable progress file: {err}"),
                })?;
            done.extend(
                list.into_iter()
                    .filter(|&i| dir.join(shard_file(i)).is_file()),
            );
        }
    }
    Ok(done)
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
#[derive(Debug)]
pub struct CacheWriter {
    dir: PathBuf,
    manifest: Manifest,
    split: ShardSplit,
    mine: BTreeSet<usize>,
    done: BTreeSet<usize>,
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
        let io = |source| CacheError::Io {
            path: dir.to_path_buf(),
            source,
        };
        if overwrite && dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io)?;
        }
        std::fs::create_dir_all(dir).map_err(io)?;
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
                let bytes = serde_json::to_vec_pretty(&manifest).expect("serializable");
                write_atomic(&dir.join("manifest.json"), &bytes)?;
            }
        }
        let progress = dir.join(format!("progress-{}-of-{}.json", split.k, split.n));
        let mine: BTreeSet<usize> = if progress.is_file() {
            let text = std::fs::read_to_string(&progress).map_err(|source| CacheError::Io {
                path: progress.clone(),
                source,
            })?;
            serde_json::from_str::<Vec<usize>>(&text)
                .map_err(|e| CacheError::Invalid {
                    path: progress.clone(),
                    reason: e.to_string(),
                })?
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        let done = finished_shards(dir)?;
        Ok(CacheWriter {
            dir: dir.to_path_buf(),
            manifest,
            split,
            mine,
            done,
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
    /// records it as finished.
    pub fn write_shard(&mut self, i: usize, hooks: &[Vec<f32>]) -> Result<()> {
        let m = &self.manifest;
        let (start, end) = m.shard_rows(i);
        let rows = end - start;
        let path = self.dir.join(shard_file(i));
        if hooks.len() != m.hooks.len() {
            return Err(CacheError::Invalid {
                path,
                reason: format!("{} hook blocks for {} hooks", hooks.len(), m.hooks.len()),
            });
        }
        let row_ids: Vec<u8> = (start..end)
            .flat_map(|r| (r as i64).to_le_bytes())
            .collect();
        let mut blocks: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> =
            vec![("row".into(), Dtype::I64, vec![rows], row_ids)];
        for ((name, dim), data) in m.hooks.iter().zip(&m.dims).zip(hooks) {
            if data.len() != rows * dim {
                return Err(CacheError::Invalid {
                    path,
                    reason: format!("{name}: {} values for {rows} rows × {dim}", data.len()),
                });
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
        let bytes = safetensors::serialize(views, None).map_err(|e| CacheError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&path, &bytes)?;
        self.mine.insert(i);
        self.done.insert(i);
        let list: Vec<usize> = self.mine.iter().copied().collect();
        write_atomic(
            &self.dir.join(format!(
                "progress-{}-of-{}.json",
                self.split.k, self.split.n
            )),
            &serde_json::to_vec(&list).expect("serializable"),
        )
    }

    /// Whether every shard of the cache (all jobs) is finished.
    pub fn is_complete(&self) -> Result<bool> {
        Ok(finished_shards(&self.dir)?.len() == self.manifest.n_shards())
    }
}

/// Reads a finished cache.
#[derive(Debug)]
pub struct CacheReader {
    dir: PathBuf,
    manifest: Manifest,
}

impl CacheReader {
    /// Opens a cache; an unfinished one is an error naming the missing shards.
    pub fn open(dir: &Path) -> Result<Self> {
        let manifest = read_manifest(dir)?.ok_or_else(|| CacheError::Invalid {
            path: dir.to_path_buf(),
            reason: "no manifest.json: not a cache (or not started)".into(),
        })?;
        let done = finished_shards(dir)?;
        let missing: Vec<usize> = (0..manifest.n_shards())
            .filter(|i| !done.contains(i))
            .collect();
        if !missing.is_empty() {
            return Err(CacheError::Invalid {
                path: dir.to_path_buf(),
                reason: format!("incomplete: {} of {} shards missing (first: {}); re-run the extraction to resume", missing.len(), manifest.n_shards(), missing[0]),
            });
        }
        Ok(CacheReader {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// All rows of one hook as f32, `[rows × dim]` row-major, and `dim`.
    pub fn read_hook(&self, hook: &str) -> Result<(Vec<f32>, usize)> {
        let h = self
            .manifest
            .hooks
            .iter()
            .position(|x| x == hook)
            .ok_or_else(|| CacheError::Invalid {
                path: self.dir.clone(),
                reason: format!(
                    "no hook `{hook}` in the cache (it has {})",
                    self.manifest.hooks.join(", ")
                ),
            })?;
        let dim = self.manifest.dims[h];
        let mut out = Vec::with_capacity(self.manifest.rows.len() * dim);
        for i in 0..self.manifest.n_shards() {
            let path = self.dir.join(shard_file(i));
            let bytes = std::fs::read(&path).map_err(|source| CacheError::Io {
                path: path.clone(),
                source,
            })?;
            let st = SafeTensors::deserialize(&bytes).map_err(|e| CacheError::Invalid {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let t = st.tensor(hook).map_err(|e| CacheError::Invalid {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let (start, end) = self.manifest.shard_rows(i);
            if t.shape() != [end - start, dim] {
                return Err(CacheError::Invalid {
                    path,
                    reason: format!(
                        "{hook} has shape {:?}, expected [{}, {dim}]",
                        t.shape(),
                        end - start
                    ),
                });
            }
            match t.dtype() {
                Dtype::F32 => out.extend(
                    t.data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ),
                Dtype::F16 => out.extend(
                    t.data()
                        .chunks_exact(2)
                        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
                ),
                other => {
                    return Err(CacheError::Invalid {
                        path,
                        reason: format!("{hook} has dtype {other:?}"),
                    })
                }
            }
        }
        Ok((out, dim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Row, FORMAT_VERSION};

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
        // "Killed" and restarted: shard 0 is not redone.
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
}
