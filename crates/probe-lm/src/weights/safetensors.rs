//! HF safetensors checkpoints: a single `model.safetensors` or shards listed in
//! `model.safetensors.index.json`; f32, f16 and bf16 tensors.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use super::{read_range, GgmlType, HostBytes, RawTensor};
use crate::error::{Error, Result};

struct Shard {
    path: PathBuf,
    map: Arc<Mmap>,
    file: File,
}

/// Where one tensor lies: its shard, type, shape and byte range in the shard file.
struct Entry {
    shard: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    len: usize,
}

/// The tensors of a checkpoint directory (or one `.safetensors` file), memory-mapped; headers
/// are parsed once, at open.
pub struct SafetensorsCheckpoint {
    shards: Vec<Shard>,
    index: HashMap<String, Entry>,
    desc: String,
}

#[derive(serde::Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

fn st_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Safetensors {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The storage types probe reads, as the ggml codes the rest of the loader speaks.
fn stored_type(dtype: Dtype, name: &str) -> Result<GgmlType> {
    match dtype {
        Dtype::F32 => Ok(GgmlType::F32),
        Dtype::F16 => Ok(GgmlType::F16),
        Dtype::BF16 => Ok(GgmlType::BF16),
        other => Err(Error::UnsupportedDtype {
            tensor: name.to_string(),
            dtype: format!("{other:?}"),
            supported: "F32, F16, BF16",
        }),
    }
}

impl SafetensorsCheckpoint {
    /// Opens `path`: a `.safetensors` file, or a directory with `model.safetensors` or
    /// `model.safetensors.index.json`.
    pub fn open(path: &Path) -> Result<Self> {
        let files: Vec<PathBuf> = if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            let index_path = path.join("model.safetensors.index.json");
            let single = path.join("model.safetensors");
            if index_path.is_file() {
                let text =
                    std::fs::read_to_string(&index_path).map_err(|e| Error::io(&index_path, e))?;
                let index: ShardIndex = serde_json::from_str(&text)
                    .map_err(|e| st_err(&index_path, format!("bad shard index: {e}")))?;
                let mut names: Vec<String> = index.weight_map.values().cloned().collect();
                names.sort();
                names.dedup();
                names.into_iter().map(|n| path.join(n)).collect()
            } else if single.is_file() {
                vec![single]
            } else {
                return Err(Error::MissingTensor {
                    name: "model.safetensors".into(),
                    source_desc: format!(
                        "{} (no model.safetensors or model.safetensors.index.json)",
                        path.display()
                    ),
                });
            }
        };
        let mut shards = Vec::with_capacity(files.len());
        let mut index = HashMap::new();
        for (i, path) in files.iter().enumerate() {
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            // SAFETY: read-only map of a checkpoint we do not modify.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
            let st = SafeTensors::deserialize(&map).map_err(|e| st_err(path, e))?;
            for (name, view) in st.tensors() {
                let start = view.data().as_ptr() as usize - map.as_ptr() as usize;
                index.insert(
                    name,
                    Entry {
                        shard: i,
                        dtype: view.dtype(),
                        shape: view.shape().to_vec(),
                        start,
                        len: view.data().len(),
                    },
                );
            }
            shards.push(Shard {
                path: path.clone(),
                map: Arc::new(map),
                file,
            });
        }
        Ok(SafetensorsCheckpoint {
            shards,
            index,
            desc: path.display().to_string(),
        })
    }

    pub fn describe(&self) -> &str {
        &self.desc
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(|s| s.as_str())
    }

    /// Dtype name of a tensor (for `inspect`).
    pub fn dtype_of(&self, name: &str) -> Option<String> {
        Some(format!("{:?}", self.index.get(name)?.dtype))
    }

    /// A tensor's shape and byte length.
    pub fn extent(&self, name: &str) -> Option<(&[usize], usize)> {
        self.index.get(name).map(|e| (&e.shape[..], e.len))
    }

    fn entry(&self, name: &str) -> Result<&Entry> {
        self.index.get(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_string(),
            source_desc: self.desc.clone(),
        })
    }

    /// The storage type of a tensor, or an error for types probe does not read.
    pub fn stored_type(&self, name: &str) -> Result<GgmlType> {
        stored_type(self.entry(name)?.dtype, name)
    }

    /// A tensor as stored, its bytes left in the mapped file.
    pub fn mapped(&self, name: &str) -> Result<RawTensor> {
        let e = self.entry(name)?;
        Ok(RawTensor {
            ty: stored_type(e.dtype, name)?,
            shape: e.shape.clone(),
            bytes: HostBytes::Mapped {
                map: self.shards[e.shard].map.clone(),
                start: e.start,
                len: e.len,
            },
        })
    }

    /// A tensor as stored, its bytes read into a buffer of their own.
    pub fn copied(&self, name: &str) -> Result<RawTensor> {
        let e = self.entry(name)?;
        let ty = stored_type(e.dtype, name)?;
        let shard = &self.shards[e.shard];
        let bytes = read_range(&shard.file, &shard.path, e.start as u64, e.len)?;
        Ok(RawTensor {
            ty,
            shape: e.shape.clone(),
            bytes: HostBytes::Owned(Arc::new(bytes)),
        })
    }

    /// Reads a tensor as f32 with its shape.
    pub fn read_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self.copied(name)?.to_f32();
        Ok((t.shape, t.data))
    }
}
