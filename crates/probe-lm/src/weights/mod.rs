//! Checkpoint readers. Whatever the format, tensors come out under their HF names
//! (`model.layers.3.self_attn.q_proj.weight`), in PyTorch layout, either as the file stores them
//! ([`RawTensor`]: f32, f16, bf16 or ggml blocks) or dequantized to f32 ([`HostTensor`]).
//!
//! Two ways to reach a tensor's bytes, chosen by what happens to them next:
//! * [`Weights::mapped`]: the bytes stay in the memory-mapped file (no copy). The CPU kernels
//!   multiply quantized and half-precision weights in place, so a GGUF model takes about its
//!   file size in memory.
//! * [`Weights::copied`]: the bytes are read with `pread` into a buffer of their own. Tensors
//!   that are converted (dequantized, cast) or uploaded to a GPU go this way, so the file's pages
//!   never become part of the process's resident memory and the host holds one tensor at a time.

pub mod gguf;
pub mod quant;
pub mod safetensors;

use std::fs::File;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, Result};
use gguf::GgufFile;
pub use quant::GgmlType;
use safetensors::SafetensorsCheckpoint;

/// A tensor on the host: row-major f32 with its shape.
#[derive(Debug, Clone)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The bytes of one stored tensor: a range of a memory-mapped file, or a buffer of its own.
#[derive(Clone)]
pub enum HostBytes {
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        len: usize,
    },
    Owned(Arc<Vec<u8>>),
}

impl Deref for HostBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            HostBytes::Mapped { map, start, len } => &map[*start..*start + *len],
            HostBytes::Owned(v) => v,
        }
    }
}

impl HostBytes {
    /// The bytes as a vector of their own (no copy when this is their only owner).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            HostBytes::Owned(v) => Arc::try_unwrap(v).unwrap_or_else(|v| v.to_vec()),
            mapped => mapped.to_vec(),
        }
    }
}

impl std::fmt::Debug for HostBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostBytes::Mapped { len, .. } => write!(f, "Mapped({len} bytes)"),
            HostBytes::Owned(v) => write!(f, "Owned({} bytes)", v.len()),
        }
    }
}

/// A tensor as its checkpoint stores it: little-endian elements of `ty` (for the block types,
/// whole blocks along the last dimension), shape in PyTorch order.
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub ty: GgmlType,
    pub shape: Vec<usize>,
    pub bytes: HostBytes,
}

impl RawTensor {
    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Dequantized (or widened) to f32.
    pub fn to_f32(&self) -> HostTensor {
        let mut data = vec![0f32; self.n_elements()];
        quant::dequantize(self.ty, &self.bytes, &mut data);
        HostTensor {
            shape: self.shape.clone(),
            data,
        }
    }
}

/// Reads `len` bytes at `offset` of `file` into a buffer of their own (`pread`), so the file's
/// pages are not mapped into the process.
pub(crate) fn read_range(file: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(&mut buf, offset)
            .map_err(|e| Error::io(path, e))?;
    }
    #[cfg(not(unix))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file.try_clone().map_err(|e| Error::io(path, e))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(path, e))?;
        f.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
    }
    Ok(buf)
}

/// Head counts needed to undo llama.cpp's Q/K row permutation.
#[derive(Debug, Clone, Copy)]
pub struct HeadLayout {
    pub n_heads: usize,
    pub n_kv_heads: usize,
}

pub enum Weights {
    Safetensors(SafetensorsCheckpoint),
    Gguf {
        file: GgufFile,
        /// llama.cpp permutes Q/K rows only for its `llama` architecture (interleaved RoPE).
        permuted_qk: Option<HeadLayout>,
        /// Gemma's four norms per block, whose GGUF names differ from Llama's two.
        sandwich_norms: bool,
    },
}

/// How [`Weights::raw`] reaches the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Mapped,
    Copied,
}

impl Weights {
    pub fn open_safetensors(path: &Path) -> Result<Self> {
        Ok(Weights::Safetensors(SafetensorsCheckpoint::open(path)?))
    }

    /// Reads one tensor by its HF name as f32 and checks its shape.
    pub fn get(&self, hf_name: &str, expected: &[usize]) -> Result<HostTensor> {
        Ok(self.copied(hf_name, expected)?.to_f32())
    }

    /// One tensor as stored, its bytes left in the mapped file where possible (see the module
    /// docs); llama.cpp's Q/K rows come back in HF order, in a buffer of their own.
    pub fn mapped(&self, hf_name: &str, expected: &[usize]) -> Result<RawTensor> {
        self.raw(hf_name, expected, Access::Mapped)
    }

    /// One tensor as stored, its bytes read into a buffer of their own.
    pub fn copied(&self, hf_name: &str, expected: &[usize]) -> Result<RawTensor> {
        self.raw(hf_name, expected, Access::Copied)
    }

    /// The storage type of a tensor, without reading it.
    pub fn stored_type(&self, hf_name: &str) -> Result<GgmlType> {
        match self {
            Weights::Safetensors(st) => st.stored_type(hf_name),
            Weights::Gguf { file, .. } => Ok(file
                .tensor_info(&self.gguf_name_of(hf_name)?)
                .ok_or_else(|| self.missing(hf_name))?
                .ggml_type),
        }
    }

    pub fn contains(&self, hf_name: &str) -> bool {
        match self {
            Weights::Safetensors(st) => st.contains(hf_name),
            Weights::Gguf {
                file,
                sandwich_norms,
                ..
            } => gguf_name(hf_name, *sandwich_norms)
                .map(|n| file.tensor_info(&n).is_some())
                .unwrap_or(false),
        }
    }

    fn missing(&self, hf_name: &str) -> Error {
        match self {
            Weights::Safetensors(st) => Error::MissingTensor {
                name: hf_name.to_string(),
                source_desc: st.describe().to_string(),
            },
            Weights::Gguf {
                file,
                sandwich_norms,
                ..
            } => Error::MissingTensor {
                name: match gguf_name(hf_name, *sandwich_norms) {
                    Some(n) => format!("{n} (HF `{hf_name}`)"),
                    None => hf_name.to_string(),
                },
                source_desc: file.path().display().to_string(),
            },
        }
    }

    fn gguf_name_of(&self, hf_name: &str) -> Result<String> {
        let sandwich = matches!(
            self,
            Weights::Gguf {
                sandwich_norms: true,
                ..
            }
        );
        gguf_name(hf_name, sandwich).ok_or_else(|| match self {
            Weights::Gguf { file, .. } => Error::MissingTensor {
                name: hf_name.to_string(),
                source_desc: format!("{} (no GGUF name for it)", file.path().display()),
            },
            Weights::Safetensors(_) => self.missing(hf_name),
        })
    }

    fn raw(&self, hf_name: &str, expected: &[usize], access: Access) -> Result<RawTensor> {
        let t = match self {
            Weights::Safetensors(st) => match access {
                Access::Mapped => st.mapped(hf_name)?,
                Access::Copied => st.copied(hf_name)?,
            },
            Weights::Gguf {
                file, permuted_qk, ..
            } => {
                let name = self.gguf_name_of(hf_name)?;
                if file.tensor_info(&name).is_none() {
                    return Err(self.missing(hf_name));
                }
                let n_heads = permuted_qk.and_then(|heads| {
                    // The converter permutes biases the same way as the weights.
                    if hf_name.ends_with("q_proj.weight") || hf_name.ends_with("q_proj.bias") {
                        Some(heads.n_heads)
                    } else if hf_name.ends_with("k_proj.weight") || hf_name.ends_with("k_proj.bias")
                    {
                        Some(heads.n_kv_heads)
                    } else {
                        None
                    }
                });
                // A permuted tensor is rewritten anyway: read it into its own buffer.
                let mut t = match (access, n_heads) {
                    (Access::Mapped, None) => file.mapped(&name)?,
                    _ => file.copied(&name)?,
                };
                if let Some(n) = n_heads {
                    let bytes = unpermute_rows(&t.bytes, &t.shape, t.ty, n).map_err(|reason| {
                        Error::ShapeMismatch {
                            name: format!("{hf_name}: {reason}"),
                            expected: vec![],
                            actual: t.shape.clone(),
                        }
                    })?;
                    t.bytes = HostBytes::Owned(Arc::new(bytes));
                }
                t
            }
        };
        if t.shape != expected {
            return Err(Error::ShapeMismatch {
                name: hf_name.to_string(),
                expected: expected.to_vec(),
                actual: t.shape,
            });
        }
        Ok(t)
    }
}

/// The GGUF tensor name llama.cpp's converter gives an HF Llama-family tensor. With Gemma's
/// `sandwich_norms`, `post_attention_layernorm` is the norm after attention
/// (`post_attention_norm`), not the one before the MLP (`ffn_norm`).
pub fn gguf_name(hf: &str, sandwich_norms: bool) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, suffix) = tail.rsplit_once('.')?;
    let mapped = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" if sandwich_norms => "post_attention_norm",
        "post_attention_layernorm" => "ffn_norm",
        "pre_feedforward_layernorm" => "ffn_norm",
        "post_feedforward_layernorm" => "post_ffw_norm",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{mapped}.{suffix}"))
}

/// Undoes llama.cpp's `permute` of Q/K projection rows: within each head, GGUF row `2j + t`
/// holds HF row `t * head_dim/2 + j` (HF rotates halves, llama.cpp rotates pairs). Rows move
/// whole, so this works on any storage type: a row of a quantized matrix is whole blocks.
fn unpermute_rows(
    data: &[u8],
    shape: &[usize],
    ty: GgmlType,
    n_heads: usize,
) -> Result<Vec<u8>, String> {
    let (rows, cols) = match shape {
        [r, c] => (*r, *c),
        // A bias: one element per row.
        [r] => (*r, 1),
        _ => return Err(format!("expected a matrix, got shape {shape:?}")),
    };
    if n_heads == 0 || !rows.is_multiple_of(n_heads) || !(rows / n_heads).is_multiple_of(2) {
        return Err(format!(
            "{rows} rows do not split into {n_heads} heads of even size"
        ));
    }
    let row_bytes = ty
        .byte_size(cols as u64)
        .ok_or_else(|| format!("a row of {cols} is not whole {} blocks", ty.name()))?
        as usize;
    if data.len() != rows * row_bytes {
        return Err(format!(
            "{} bytes for {rows} rows of {row_bytes}",
            data.len()
        ));
    }
    let head_dim = rows / n_heads;
    let half = head_dim / 2;
    let mut out = vec![0u8; data.len()];
    for h in 0..n_heads {
        for j in 0..half {
            for t in 0..2 {
                let src = h * head_dim + 2 * j + t;
                let dst = h * head_dim + t * half + j;
                out[dst * row_bytes..(dst + 1) * row_bytes]
                    .copy_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_follow_llama_cpp() {
        assert_eq!(
            gguf_name("model.layers.12.mlp.down_proj.weight", false).as_deref(),
            Some("blk.12.ffn_down.weight")
        );
        assert_eq!(
            gguf_name("model.layers.0.self_attn.q_proj.bias", false).as_deref(),
            Some("blk.0.attn_q.bias")
        );
        assert_eq!(gguf_name("model.layers.x.mlp.up_proj.weight", false), None);
        // Gemma: the norm after attention, and the one before the MLP
        let gemma = |hf: &str| gguf_name(hf, true);
        assert_eq!(
            gemma("model.layers.3.post_attention_layernorm.weight").as_deref(),
            Some("blk.3.post_attention_norm.weight")
        );
        assert_eq!(
            gemma("model.layers.3.pre_feedforward_layernorm.weight").as_deref(),
            Some("blk.3.ffn_norm.weight")
        );
        assert_eq!(
            gemma("model.layers.3.post_feedforward_layernorm.weight").as_deref(),
            Some("blk.3.post_ffw_norm.weight")
        );
        assert_eq!(
            gemma("model.layers.3.self_attn.k_norm.weight").as_deref(),
            Some("blk.3.attn_k_norm.weight")
        );
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(rows, cols)
        let (n_heads, head_dim, cols) = (2, 4, 3);
        let rows = n_heads * head_dim;
        let hf: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let mut permuted = vec![0f32; hf.len()];
        for h in 0..n_heads {
            for t in 0..2 {
                for j in 0..head_dim / 2 {
                    let src = h * head_dim + t * (head_dim / 2) + j;
                    let dst = h * head_dim + j * 2 + t;
                    permuted[dst * cols..(dst + 1) * cols]
                        .copy_from_slice(&hf[src * cols..(src + 1) * cols]);
                }
            }
        }
        let bytes: Vec<u8> = permuted.iter().flat_map(|v| v.to_le_bytes()).collect();
        let back = unpermute_rows(&bytes, &[rows, cols], GgmlType::F32, n_heads).unwrap();
        let back: Vec<f32> = back
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(back, hf);
    }

    #[test]
    fn unpermute_moves_whole_quantized_rows() {
        // Two heads of 2 rows, each row one Q8_0 block (34 bytes) tagged by its first byte.
        let row = 34;
        let mut data = vec![0u8; 4 * row];
        for r in 0..4 {
            data[r * row] = r as u8;
        }
        let out = unpermute_rows(&data, &[4, 32], GgmlType::Q8_0, 2).unwrap();
        // head_dim 2: rows 2j + t -> t + j, i.e. the identity for half = 1.
        assert_eq!(out, data);
        assert!(unpermute_rows(&data[..100], &[4, 32], GgmlType::Q8_0, 2).is_err());
        assert!(unpermute_rows(&data, &[4, 31], GgmlType::Q8_0, 2).is_err());
    }
}
