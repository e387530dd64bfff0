//! `probe-cache`: activations on disk.
//!
//! A cache is a directory:
//! ```text
//! manifest.json              what the cache holds: model, hooks, position rule, dtype, rows
//! shard-00000.safetensors    rows [start, start + shard_size): one [rows, dim] tensor per hook,
//! shard-00001.safetensors    plus `row` (i64) with the global row indices
//! progress-0-of-1.json       shards finished by job 0 of 1 (one file per `--shard k/n` job),
//!                            each with its row range, size and SHA-256
//! .lock, .lock-0-of-1        advisory locks: the cache (shared; exclusive to overwrite), the job
//! ```
//! Every file is written to a temporary name and renamed, and a shard counts as finished only
//! once a progress file lists it, so a killed job loses at most the shard in flight and a
//! re-run resumes after the last finished shard. Jobs of a `k/n` split write disjoint shards
//! and disjoint progress files, so they can fill one cache concurrently; a second process on
//! the same job, or an `--overwrite` under a running job, is refused by the locks. Readers
//! check every shard against its recorded hash, its `row` tensor against the manifest's
//! range, and its dtype and shapes against the manifest, so swapped, replaced or mixed shards
//! are errors, never features under the wrong labels.

mod manifest;
mod store;

pub use manifest::{Manifest, Row, FORMAT_VERSION};
pub use store::{first_non_finite, sha256_hex, CacheReader, CacheWriter, ShardRecord, ShardSplit};

/// A fingerprint of a model's inputs: SHA-256 over every text, each prefixed by its length
/// (so that no two different lists of texts collide by concatenation). Manifests record it
/// so that a changed statement or persona text cannot reuse the old activations.
pub fn fingerprint_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for t in texts {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

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

/// [`probe_util::write_atomic`] with the cache's error, which names `path`.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    probe_util::write_atomic(path, bytes).map_err(|source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Rewrites a serialized safetensors file's header with its JSON keys sorted, so the same
/// tensors and metadata give the same bytes on every run (the safetensors crate writes the
/// metadata from a `HashMap`, whose order is random per process). The header keeps its
/// length: the same keys and values, reordered.
pub fn canonical_safetensors(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(len) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    else {
        return bytes;
    };
    let Some(header) = bytes.get(8..8 + len) else {
        return bytes;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(header) else {
        return bytes;
    };
    // serde_json's map is a BTreeMap here: keys come out sorted
    let Ok(sorted) = serde_json::to_vec(&value) else {
        return bytes;
    };
    if sorted.len() <= len {
        let padded: Vec<u8> = sorted
            .into_iter()
            .chain(std::iter::repeat(b' '))
            .take(len)
            .collect();
        bytes[8..8 + len].copy_from_slice(&padded);
    }
    bytes
}

#[cfg(test)]
mod write_tests {
    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // renaming a file over a non-empty directory fails, after the temporary is written
        let target = dir.path().join("shard-00000.safetensors");
        std::fs::create_dir_all(target.join("occupied")).unwrap();
        assert!(super::write_atomic(&target, b"bytes").is_err());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["shard-00000.safetensors"], "{names:?}");
    }
}

#[cfg(test)]
mod canonical_tests {
    #[test]
    fn metadata_order_no_longer_changes_the_bytes() {
        let data = vec![0u8; 8];
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
        let files: Vec<Vec<u8>> = (0..8)
            .map(|_| {
                let metadata: std::collections::HashMap<String, String> = ["b", "a", "c", "d"]
                    .map(|k| (k.to_string(), k.repeat(3)))
                    .into();
                let bytes = safetensors::serialize([("x", view.clone())], Some(metadata)).unwrap();
                super::canonical_safetensors(bytes)
            })
            .collect();
        assert!(files.windows(2).all(|w| w[0] == w[1]));
        let st = safetensors::SafeTensors::deserialize(&files[0]).unwrap();
        assert_eq!(st.tensor("x").unwrap().shape(), [2]);
        let (_, meta) = safetensors::SafeTensors::read_metadata(&files[0]).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap()["a"], "aaa");
    }
}

/// The file that says a run folder's outputs are complete: written last, after every output
/// it lists, and removed when a run starts (or resumes) in the folder, so that outputs left by
/// a failed or unfinished run never pass for results. Readers (`probe report`) refuse a folder
/// without it.
pub const COMPLETE_MARKER: &str = "complete.json";

/// Removes `dir`'s completion marker (a run is starting there).
pub fn clear_complete(dir: &std::path::Path) -> Result<()> {
    let path = dir.join(COMPLETE_MARKER);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(CacheError::Io { path, source: e })
        }
        _ => Ok(()),
    }
}

/// Marks `dir` complete: `stage` wrote every file of `outputs` (each must exist).
pub fn mark_complete(dir: &std::path::Path, stage: &str, outputs: &[&str]) -> Result<()> {
    for name in outputs {
        if !dir.join(name).is_file() {
            return Err(CacheError::Invalid {
                path: dir.to_path_buf(),
                reason: format!("{stage} did not write {name}"),
            });
        }
    }
    let text = serde_json::json!({"stage": stage, "outputs": outputs}).to_string();
    write_atomic(&dir.join(COMPLETE_MARKER), text.as_bytes())
}

/// Whether `dir` holds a completion marker.
pub fn is_complete(dir: &std::path::Path) -> bool {
    dir.join(COMPLETE_MARKER).is_file()
}
