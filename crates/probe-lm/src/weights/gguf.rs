//! GGUF (v2/v3) reader: metadata, tensor directory and dequantized tensors.
//!
//! Every count, length and offset in the header is checked against the file size before it
//! is trusted, so a truncated or hostile file yields an error rather than a panic or a huge
//! allocation.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::quant::{GgmlType, SUPPORTED_GGML_TYPES};
use super::{read_range, HostBytes, RawTensor};
use crate::error::{Error, Result};

const GGUF_MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;

/// A metadata value. Arrays of strings (vocabularies, merges) are the large ones.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<MetaValue>),
}

impl MetaValue {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v as u64),
            MetaValue::U16(v) => Some(v as u64),
            MetaValue::U32(v) => Some(v as u64),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) if v >= 0 => Some(v as u64),
            MetaValue::I16(v) if v >= 0 => Some(v as u64),
            MetaValue::I32(v) if v >= 0 => Some(v as u64),
            MetaValue::I64(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v as f64),
            MetaValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// One entry of the tensor directory. `dims` are in ggml order (fastest-varying first), i.e.
/// the reverse of the PyTorch shape.
#[derive(Debug, Clone)]
pub struct GgufTensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    offset: u64,
    n_bytes: u64,
}

impl GgufTensorInfo {
    /// The shape in PyTorch (row-major) order.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Bytes the tensor takes in the file.
    pub fn stored_bytes(&self) -> u64 {
        self.n_bytes
    }
}

/// An opened GGUF file; tensor bytes stay memory-mapped until asked for.
pub struct GgufFile {
    path: PathBuf,
    pub version: u32,
    pub metadata: BTreeMap<String, MetaValue>,
    tensors: Vec<GgufTensorInfo>,
    by_name: HashMap<String, usize>,
    map: Arc<Mmap>,
    file: File,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Gguf {
            path: self.path.to_path_buf(),
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(self.err(format!(
                "file ends while reading {what} at byte {} (file has {} bytes): truncated?",
                self.pos,
                self.bytes.len()
            ))),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count that each take at least `min_item_bytes`: bounded by the bytes left.
    fn count(&mut self, what: &str, min_item_bytes: usize) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min_item_bytes.max(1) as u64) > left {
            return Err(self.err(format!(
                "{what} = {n} cannot fit in the {left} bytes left in the file"
            )));
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.count(what, 1)?;
        let raw = self.take(len, what)?;
        // A vocabulary's pieces are its tokens' text: an invalid one would decode as U+FFFD
        // and tokenize nothing (byte-fallback pieces are ASCII `<0xAB>`, byte-level BPE's are
        // valid by construction), so it is an error there; other strings (names, licenses)
        // stay usable.
        if what == "tokenizer.ggml.tokens" {
            return String::from_utf8(raw.to_vec()).map_err(|e| {
                self.err(format!(
                    "metadata `{what}`: a piece is not valid UTF-8 ({e}; bytes {:02x?})",
                    &raw[..raw.len().min(16)]
                ))
            });
        }
        Ok(String::from_utf8_lossy(raw).into_owned())
    }

    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<MetaValue> {
        Ok(match ty {
            0 => MetaValue::U8(self.array::<1>(key)?[0]),
            1 => MetaValue::I8(self.array::<1>(key)?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(key)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(key)?)),
            4 => MetaValue::U32(self.u32(key)?),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(key)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(key)?)),
            7 => MetaValue::Bool(self.array::<1>(key)?[0] != 0),
            8 => MetaValue::String(self.string(key)?),
            9 => {
                if depth > 4 {
                    return Err(self.err(format!("metadata `{key}`: arrays nested too deeply")));
                }
                let item_ty = self.u32(key)?;
                let min_bytes = match item_ty {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    other => {
                        return Err(
                            self.err(format!("metadata `{key}`: unknown array item type {other}"))
                        )
                    }
                };
                let n = self.count(key, min_bytes)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(item_ty, key, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(self.u64(key)?),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(key)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(key)?)),
            other => return Err(self.err(format!("metadata `{key}`: unknown value type {other}"))),
        })
    }
}

impl GgufFile {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only and the file is not modified by us while mapped; a
        // concurrent writer could change bytes under us, as with any mmap-based loader.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Self::parse(path, map, file)
    }

    fn parse(path: &Path, map: Mmap, file: File) -> Result<Self> {
        let mut c = Cursor {
            bytes: &map,
            pos: 0,
            path,
        };
        let magic = c.array::<4>("magic")?;
        if &magic != GGUF_MAGIC {
            return Err(c.err(format!(
                "wrong magic {:?} (expected \"GGUF\"): not a GGUF file",
                String::from_utf8_lossy(&magic)
            )));
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(c.err(format!(
                "GGUF version {version} is not supported (supported: 2, 3)"
            )));
        }
        // A tensor entry has at least a name length, n_dims, type and offset: 24 bytes.
        let n_tensors = c.count("tensor count", 24)?;
        // A metadata entry has at least a key length and a type: 12 bytes.
        let n_meta = c.count("metadata count", 12)?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_meta {
            let key = c.string("metadata key")?;
            let ty = c.u32("metadata type")?;
            let value = c.value(ty, &key, 0)?;
            metadata.insert(key, value);
        }
        let mut infos = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = c.string("tensor name")?;
            let n_dims = c.u32("tensor n_dims")? as usize;
            if n_dims == 0 || n_dims > 4 {
                return Err(c.err(format!("tensor `{name}` has {n_dims} dimensions (1..=4)")));
            }
            let mut dims = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                dims.push(c.u64("tensor dim")?);
            }
            if dims.contains(&0) {
                return Err(c.err(format!(
                    "tensor `{name}` has a dimension of size 0: {dims:?}"
                )));
            }
            let code = c.u32("tensor type")?;
            let offset = c.u64("tensor offset")?;
            infos.push((name, dims, code, offset));
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => return Err(c.err(format!("general.alignment {v:?} is not a power of two"))),
            },
        };
        let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
        let file_len = map.len() as u64;
        let mut tensors = Vec::with_capacity(infos.len());
        let mut by_name = HashMap::with_capacity(infos.len());
        for (name, dims, code, offset) in infos {
            let n_elements = dims
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| c.err(format!("tensor `{name}`: dimensions {dims:?} overflow")))?;
            // Unsupported types are kept in the directory as an error so `inspect` still works
            // and loading names the offending tensor.
            let ggml_type = match GgmlType::from_code(code) {
                Ok(t) => t,
                Err(desc) => {
                    return Err(Error::UnsupportedDtype {
                        tensor: name,
                        dtype: desc,
                        supported: SUPPORTED_GGML_TYPES,
                    })
                }
            };
            // llama.cpp places every tensor at a multiple of the alignment; an offset that is
            // not is a broken writer, and reading it would decode shifted bytes
            if offset % alignment != 0 {
                return Err(c.err(format!(
                    "tensor `{name}`: data offset {offset} is not a multiple of the alignment \
                     {alignment} (general.alignment): the file was written wrongly"
                )));
            }
            let (block, _) = ggml_type.block_layout();
            if dims[0] % block as u64 != 0 {
                return Err(c.err(format!(
                    "tensor `{name}`: rows of {} elements are not whole {} blocks of {block}",
                    dims[0],
                    ggml_type.name()
                )));
            }
            let n_bytes = ggml_type.byte_size(n_elements).ok_or_else(|| {
                c.err(format!(
                    "tensor `{name}`: {n_elements} elements is not a whole number of {} blocks",
                    ggml_type.name()
                ))
            })?;
            let end = data_start
                .checked_add(offset)
                .and_then(|s| s.checked_add(n_bytes));
            if end.is_none_or(|e| e > file_len) {
                return Err(c.err(format!(
                    "tensor `{name}` ({} bytes at data offset {offset}) lies beyond the end of the \
                     file ({file_len} bytes): truncated?",
                    n_bytes
                )));
            }
            if by_name.insert(name.clone(), tensors.len()).is_some() {
                return Err(c.err(format!("tensor `{name}` appears twice")));
            }
            tensors.push(GgufTensorInfo {
                name,
                dims,
                ggml_type,
                offset: data_start + offset,
                n_bytes,
            });
        }
        Ok(GgufFile {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            by_name,
            map: Arc::new(map),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }

    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    pub fn meta(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    /// A required metadata value, with an error naming the key when it is absent.
    pub fn meta_required(&self, key: &str) -> Result<&MetaValue> {
        self.meta(key).ok_or_else(|| Error::Gguf {
            path: self.path.clone(),
            reason: format!("missing metadata key `{key}`"),
        })
    }

    pub fn meta_u64(&self, key: &str) -> Result<u64> {
        let v = self.meta_required(key)?;
        v.as_u64().ok_or_else(|| Error::Gguf {
            path: self.path.clone(),
            reason: format!("metadata `{key}` = {v:?} is not an unsigned integer"),
        })
    }

    pub fn meta_f64(&self, key: &str) -> Result<f64> {
        let v = self.meta_required(key)?;
        v.as_f64().ok_or_else(|| Error::Gguf {
            path: self.path.clone(),
            reason: format!("metadata `{key}` = {v:?} is not a number"),
        })
    }

    pub fn meta_str(&self, key: &str) -> Result<&str> {
        let v = self.meta_required(key)?;
        v.as_str().ok_or_else(|| Error::Gguf {
            path: self.path.clone(),
            reason: format!("metadata `{key}` is not a string"),
        })
    }

    fn info_or_missing(&self, name: &str) -> Result<&GgufTensorInfo> {
        self.tensor_info(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_string(),
            source_desc: self.path.display().to_string(),
        })
    }

    /// A tensor as stored, its bytes left in the mapped file.
    pub fn mapped(&self, name: &str) -> Result<RawTensor> {
        let info = self.info_or_missing(name)?;
        Ok(RawTensor {
            ty: info.ggml_type,
            shape: info.shape(),
            bytes: HostBytes::Mapped {
                map: self.map.clone(),
                start: info.offset as usize,
                len: info.n_bytes as usize,
            },
        })
    }

    /// A tensor as stored, its bytes read into a buffer of their own.
    pub fn copied(&self, name: &str) -> Result<RawTensor> {
        let info = self.info_or_missing(name)?;
        let bytes = read_range(&self.file, &self.path, info.offset, info.n_bytes as usize)?;
        Ok(RawTensor {
            ty: info.ggml_type,
            shape: info.shape(),
            bytes: HostBytes::Owned(Arc::new(bytes)),
        })
    }

    /// A tensor dequantized to f32, with its PyTorch-order shape.
    pub fn dequantize(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self.copied(name)?.to_f32();
        Ok((t.shape, t.data))
    }
}
