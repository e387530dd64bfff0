//! HF safetensors checkpoints: a single `model.safetensors` or shards listed in
//! `model.safetensors.index.json`; f32, f16 and bf16 tensors are read as f32.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

struct Shard {
    path: PathBuf,
    map: Mmap,
}

/// The tensors of a checkpoint directory (or one `.safetensors` file), memory-mapped.
pub struct SafetensorsCheckpoint {
    shards: Vec<Shard>,
    /// tensor name → shard index
    index: HashMap<String, usize>,
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

fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: read-only map of a checkpoint we do not modify.
    unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))
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
        for (i, file) in files.iter().enumerate() {
            let map = map_file(file)?;
            let st = SafeTensors::deserialize(&map).map_err(|e| st_err(file, e))?;
            for name in st.names() {
                index.insert(name.to_string(), i);
            }
            shards.push(Shard {
                path: file.clone(),
                map,
            });
        }
        Ok(SafetensorsCheckpoint {
            shards,
            index,
            desc: path.display().to_string(),
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(|s| s.as_str())
    }

    /// Dtype name of a tensor (for `inspect`).
    pub fn dtype_of(&self, name: &str) -> Option<String> {
        let shard = &self.shards[*self.index.get(name)?];
        let st = SafeTensors::deserialize(&shard.map).ok()?;
        Some(format!("{:?}", st.tensor(name).ok()?.dtype()))
    }

    /// Reads a tensor as f32 with its shape.
    pub fn read_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let shard_idx = *self.index.get(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_string(),
            source_desc: self.desc.clone(),
        })?;
        let shard = &self.shards[shard_idx];
        let st = SafeTensors::deserialize(&shard.map).map_err(|e| st_err(&shard.path, e))?;
        let view = st.tensor(name).map_err(|e| st_err(&shard.path, e))?;
        let shape = view.shape().to_vec();
        let bytes = view.data();
        let data = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::UnsupportedDtype {
                    tensor: name.to_string(),
                    dtype: format!("{other:?}"),
                    supported: "F32, F16, BF16",
                })
            }
        };
        Ok((shape, data))
    }
}
