//! Checkpoint readers. Whatever the format, tensors come out as f32 under their HF names
//! (`model.layers.3.self_attn.q_proj.weight`), in PyTorch layout.

pub mod gguf;
pub mod quant;
pub mod safetensors;

use std::path::Path;

use crate::error::{Error, Result};
use gguf::GgufFile;
use safetensors::SafetensorsCheckpoint;

/// A tensor on the host: row-major f32 with its shape.
#[derive(Debug, Clone)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
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
    },
}

impl Weights {
    pub fn open_safetensors(path: &Path) -> Result<Self> {
        Ok(Weights::Safetensors(SafetensorsCheckpoint::open(path)?))
    }

    /// Reads one tensor by its HF name and checks its shape.
    pub fn get(&self, hf_name: &str, expected: &[usize]) -> Result<HostTensor> {
        let t = self.get_any(hf_name)?;
        if t.shape != expected {
            return Err(Error::ShapeMismatch {
                name: hf_name.to_string(),
                expected: expected.to_vec(),
                actual: t.shape,
            });
        }
        Ok(t)
    }

    pub fn contains(&self, hf_name: &str) -> bool {
        match self {
            Weights::Safetensors(st) => st.contains(hf_name),
            Weights::Gguf { file, .. } => gguf_name(hf_name)
                .map(|n| file.tensor_info(&n).is_some())
                .unwrap_or(false),
        }
    }

    fn get_any(&self, hf_name: &str) -> Result<HostTensor> {
        match self {
            Weights::Safetensors(st) => {
                let (shape, data) = st.read_f32(hf_name)?;
                Ok(HostTensor { shape, data })
            }
            Weights::Gguf { file, permuted_qk } => {
                let name = gguf_name(hf_name).ok_or_else(|| Error::MissingTensor {
                    name: hf_name.to_string(),
                    source_desc: format!("{} (no GGUF name for it)", file.path().display()),
                })?;
                let (shape, mut data) = file.dequantize(&name).map_err(|e| match e {
                    Error::MissingTensor { source_desc, .. } => Error::MissingTensor {
                        name: format!("{name} (HF `{hf_name}`)"),
                        source_desc,
                    },
                    other => other,
                })?;
                if let Some(heads) = permuted_qk {
                    let n_heads = if hf_name.ends_with("q_proj.weight") {
                        Some(heads.n_heads)
                    } else if hf_name.ends_with("k_proj.weight") {
                        Some(heads.n_kv_heads)
                    } else {
                        None
                    };
                    if let Some(n) = n_heads {
                        data = unpermute_rows(&data, &shape, n).map_err(|reason| {
                            Error::ShapeMismatch {
                                name: format!("{hf_name}: {reason}"),
                                expected: vec![],
                                actual: shape.clone(),
                            }
                        })?;
                    }
                }
                Ok(HostTensor { shape, data })
            }
        }
    }
}

/// The GGUF tensor name llama.cpp's converter gives an HF Llama-family tensor.
pub fn gguf_name(hf: &str) -> Option<String> {
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
        "post_attention_layernorm" => "ffn_norm",
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
/// holds HF row `t * head_dim/2 + j` (HF rotates halves, llama.cpp rotates pairs).
fn unpermute_rows(data: &[f32], shape: &[usize], n_heads: usize) -> Result<Vec<f32>, String> {
    let (rows, cols) = match shape {
        [r, c] => (*r, *c),
        _ => return Err(format!("expected a matrix, got shape {shape:?}")),
    };
    if n_heads == 0 || !rows.is_multiple_of(n_heads) || !(rows / n_heads).is_multiple_of(2) {
        return Err(format!(
            "{rows} rows do not split into {n_heads} heads of even size"
        ));
    }
    let head_dim = rows / n_heads;
    let half = head_dim / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_heads {
        for j in 0..half {
            for t in 0..2 {
                let src = h * head_dim + 2 * j + t;
                let dst = h * head_dim + t * half + j;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&data[src * cols..(src + 1) * cols]);
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
            gguf_name("model.layers.12.mlp.down_proj.weight").as_deref(),
            Some("blk.12.ffn_down.weight")
        );
        assert_eq!(
            gguf_name("model.layers.0.self_attn.q_proj.bias").as_deref(),
            Some("blk.0.attn_q.bias")
        );
        assert_eq!(gguf_name("model.layers.x.mlp.up_proj.weight"), None);
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
        assert_eq!(
            unpermute_rows(&permuted, &[rows, cols], n_heads).unwrap(),
            hf
        );
    }
}
