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

/// Why a safetensors header is invalid, naming the tensor (`None` if no reason is found here:
/// the caller falls back to the safetensors crate's message).
pub(crate) fn header_problem(bytes: &[u8]) -> Option<String> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let header_end = 8u64.checked_add(n).filter(|&e| e <= bytes.len() as u64)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..header_end as usize]).ok()?;
    let data_len = bytes.len() as u64 - header_end;
    let mut spans: Vec<(u64, u64, &str)> = Vec::new();
    for (name, info) in &header {
        if name == "__metadata__" {
            continue;
        }
        let bad = |what: &str| Some(format!("tensor `{name}`: {what}"));
        let Some(dtype) = info.get("dtype").and_then(|d| d.as_str()) else {
            return bad("no `dtype`");
        };
        let size: u64 = match dtype {
            "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
            "I16" | "U16" | "F16" | "BF16" => 2,
            "I32" | "U32" | "F32" => 4,
            "I64" | "U64" | "F64" => 8,
            _ => return bad(&format!("unknown dtype `{dtype}`")),
        };
        let Some(shape) = info
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|s| s.iter().map(|d| d.as_u64()).collect::<Option<Vec<u64>>>())
        else {
            return bad("`shape` is not a list of sizes");
        };
        let Some([start, end]) = info
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .and_then(|o| o.iter().map(|v| v.as_u64()).collect::<Option<Vec<u64>>>())
            .and_then(|o| <[u64; 2]>::try_from(o).ok())
        else {
            return bad("`data_offsets` is not [start, end]");
        };
        let Some(need) = shape.iter().try_fold(size, |acc, &d| acc.checked_mul(d)) else {
            return bad(&format!("shape {shape:?} overflows"));
        };
        if end < start || end - start != need {
            return bad(&format!(
                "shape {shape:?} of {dtype} needs {need} bytes, but data_offsets [{start}, \
                 {end}] span {}",
                end.saturating_sub(start)
            ));
        }
        if end > data_len {
            return bad(&format!(
                "ends at byte {end} of the data, beyond its {data_len} bytes: truncated?"
            ));
        }
        spans.push((start, end, name));
    }
    spans.sort();
    let mut previous: Option<(u64, &str)> = None;
    for &(start, end, name) in &spans {
        let (prev_end, prev_name) = previous.unwrap_or((0, ""));
        if start != prev_end {
            let after = if prev_name.is_empty() {
                "the data's start (0)".to_string()
            } else {
                format!("the end of `{prev_name}` ({prev_end})")
            };
            return Some(format!(
                "tensor `{name}` starts at byte {start} of the data, not at {after}: a tensor \
                 is missing from the header there, or two overlap"
            ));
        }
        previous = Some((end, name));
    }
    match previous {
        Some((end, name)) if end != data_len => Some(format!(
            "the last tensor `{name}` ends at byte {end}, but the data has {data_len} bytes: \
             a tensor is missing from the header, or the file has trailing bytes"
        )),
        _ => None,
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

/// The tensors of an image-text checkpoint's language model (Gemma 3's), renamed as those of
/// the text model alone: `language_model.model.*` (checkpoints on the Hub) or
/// `model.language_model.*` (transformers 5) become `model.*`, its `lm_head` becomes
/// `lm_head`. A text checkpoint is returned unchanged.
fn text_model_names(index: HashMap<String, Entry>) -> HashMap<String, Entry> {
    const RENAMES: [(&str, &str); 3] = [
        ("language_model.model.", "model."),
        ("model.language_model.", "model."),
        ("language_model.lm_head.", "lm_head."),
    ];
    if index.contains_key("model.embed_tokens.weight")
        || !RENAMES
            .iter()
            .any(|(from, _)| index.contains_key(&format!("{from}embed_tokens.weight")))
    {
        return index;
    }
    index
        .into_iter()
        .map(|(name, entry)| {
            let renamed = RENAMES
                .iter()
                .find_map(|(from, to)| name.strip_prefix(from).map(|rest| format!("{to}{rest}")));
            (renamed.unwrap_or(name), entry)
        })
        .collect()
}

impl SafetensorsCheckpoint {
    /// Opens `path`: a `.safetensors` file, or a directory with `model.safetensors` or
    /// `model.safetensors.index.json`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut weight_map = None;
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
                if let Some(bad) = names
                    .iter()
                    .find(|n| Path::new(n).components().count() != 1 || n.starts_with('.'))
                {
                    return Err(st_err(
                        &index_path,
                        format!("shard file name `{bad}` is not a file name in the directory"),
                    ));
                }
                weight_map = Some(index.weight_map);
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
            // the safetensors crate's messages do not name the tensor; ours do
            let st = SafeTensors::deserialize(&map)
                .map_err(|e| st_err(path, header_problem(&map).unwrap_or_else(|| e.to_string())))?;
            for (name, view) in st.tensors() {
                let start = view.data().as_ptr() as usize - map.as_ptr() as usize;
                let entry = Entry {
                    shard: i,
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    start,
                    len: view.data().len(),
                };
                if let Some(first) = index.insert(name.clone(), entry) {
                    return Err(st_err(
                        path,
                        format!(
                            "tensor `{name}` is also in {}: which one to load is ambiguous",
                            files[first.shard].display()
                        ),
                    ));
                }
            }
            shards.push(Shard {
                path: path.clone(),
                map: Arc::new(map),
                file,
            });
        }
        if let Some(map) = &weight_map {
            for (name, file) in map {
                if !index.contains_key(name) {
                    return Err(st_err(
                        &path.join("model.safetensors.index.json"),
                        format!("maps tensor `{name}` to {file}, which does not hold it"),
                    ));
                }
            }
        }
        Ok(SafetensorsCheckpoint {
            shards,
            index: text_model_names(index),
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
