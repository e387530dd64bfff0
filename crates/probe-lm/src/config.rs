//! The architecture-independent description of a decoder-only model, built from an HF
//! `config.json` or from GGUF metadata by the architecture files in `models/`.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The architectures `probe` runs (one file each under `models/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    Llama,
    Qwen2,
    Mistral,
}

pub const SUPPORTED_MODEL_TYPES: &str = "llama, qwen2, mistral";

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Mistral => "mistral",
        }
    }

    pub(crate) fn from_model_type(model_type: &str) -> Result<Self> {
        match model_type {
            "llama" => Ok(Architecture::Llama),
            "qwen2" => Ok(Architecture::Qwen2),
            "mistral" => Ok(Architecture::Mistral),
            other => Err(Error::UnknownArchitecture {
                found: other.to_string(),
                supported: SUPPORTED_MODEL_TYPES.to_string(),
            }),
        }
    }
}

/// How rotary frequencies are rescaled for long context.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RopeScaling {
    /// Llama 3.1's piecewise rescaling (`rope_type: "llama3"`).
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
    /// Position interpolation: every frequency divided by `factor`.
    Linear { factor: f64 },
    /// Per-frequency divisors as stored by llama.cpp in the `rope_freqs.weight` tensor.
    Factors(Vec<f32>),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<RopeScaling>,
    pub tie_word_embeddings: bool,
    /// Biases on the q/k/v projections (Qwen2) ...
    pub qkv_bias: bool,
    /// ... and on the output projection (Llama's `attention_bias`).
    pub o_bias: bool,
    pub mlp_bias: bool,
    /// Mistral-style local attention: a query sees at most this many keys (itself included).
    pub sliding_window: Option<usize>,
    pub max_position_embeddings: usize,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

impl ModelConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_layers),
            ("num_attention_heads", self.num_heads),
            ("num_key_value_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
        ] {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return bad(format!(
                "num_attention_heads ({}) is not a multiple of num_key_value_heads ({})",
                self.num_heads, self.num_kv_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(format!("head_dim {} must be even for RoPE", self.head_dim));
        }
        if !(self.rms_norm_eps > 0.0 && self.rope_theta > 0.0) {
            return bad("rms_norm_eps and rope_theta must be positive".into());
        }
        Ok(())
    }

    /// Number of weights, counting a tied embedding once.
    pub fn parameter_count(&self) -> usize {
        let (d, f, hd) = (self.hidden_size, self.intermediate_size, self.head_dim);
        let q = self.num_heads * hd;
        let kv = self.num_kv_heads * hd;
        let mut attn = d * q + 2 * d * kv + q * d;
        if self.qkv_bias {
            attn += q + 2 * kv;
        }
        if self.o_bias {
            attn += d;
        }
        let mut mlp = 3 * d * f;
        if self.mlp_bias {
            mlp += 2 * f + d;
        }
        let per_layer = attn + mlp + 2 * d;
        let embed = self.vocab_size * d;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        embed + head + d + self.num_layers * per_layer
    }

    /// Inverse RoPE frequencies, one per rotated pair, after any long-context rescaling.
    pub fn rope_inv_freq(&self) -> Vec<f32> {
        let hd = self.head_dim;
        let base: Vec<f64> = (0..hd / 2)
            .map(|i| 1.0 / self.rope_theta.powf((2 * i) as f64 / hd as f64))
            .collect();
        let scaled: Vec<f64> = match &self.rope_scaling {
            None => base,
            Some(RopeScaling::Linear { factor }) => base.iter().map(|f| f / factor).collect(),
            Some(RopeScaling::Factors(div)) => {
                base.iter().zip(div).map(|(f, d)| f / *d as f64).collect()
            }
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings: old_ctx,
            }) => {
                // transformers' `_compute_llama3_parameters`
                let low_wavelen = old_ctx / low_freq_factor;
                let high_wavelen = old_ctx / high_freq_factor;
                base.iter()
                    .map(|&f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen > low_wavelen {
                            f / factor
                        } else if wavelen < high_wavelen {
                            f
                        } else {
                            let smooth = (old_ctx / wavelen - low_freq_factor)
                                / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
        };
        // transformers keeps inv_freq as float32.
        scaled.into_iter().map(|f| f as f32).collect()
    }
}

/// The union of the `config.json` keys the supported architectures use. Each architecture
/// file applies its own defaults (transformers' `*Config` classes).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HfConfig {
    pub model_type: Option<String>,
    pub vocab_size: Option<usize>,
    pub hidden_size: Option<usize>,
    pub intermediate_size: Option<usize>,
    pub num_hidden_layers: Option<usize>,
    pub num_attention_heads: Option<usize>,
    pub num_key_value_heads: Option<usize>,
    pub head_dim: Option<usize>,
    pub rms_norm_eps: Option<f64>,
    pub rope_theta: Option<f64>,
    /// transformers < 5
    pub rope_scaling: Option<serde_json::Value>,
    /// transformers >= 5: `{rope_theta, rope_type, ...}`
    pub rope_parameters: Option<serde_json::Value>,
    pub tie_word_embeddings: Option<bool>,
    pub hidden_act: Option<String>,
    pub attention_bias: Option<bool>,
    pub mlp_bias: Option<bool>,
    pub sliding_window: Option<serde_json::Value>,
    pub use_sliding_window: Option<bool>,
    pub max_position_embeddings: Option<usize>,
    pub bos_token_id: Option<serde_json::Value>,
    pub eos_token_id: Option<serde_json::Value>,
}

impl HfConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        // a config is a few KiB; a FIFO or device given by mistake would block or never end
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.is_file() || meta.len() > 64 << 20 {
            return Err(Error::Config(format!(
                "{}: not a regular file of at most 64 MiB",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            // serde's message gives a line and column; name the key whose value is wrong
            let culprit = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text)
                .ok()
                .and_then(|map| {
                    map.into_iter().find(|(k, v)| {
                        let one = serde_json::Map::from_iter([(k.clone(), v.clone())]);
                        serde_json::from_value::<HfConfig>(serde_json::Value::Object(one)).is_err()
                    })
                });
            match culprit {
                Some((key, value)) => Error::Config(format!(
                    "{}: not a valid config.json: `{key}` = {value}: {e}",
                    path.display()
                )),
                None => Error::Config(format!("{}: not a valid config.json: {e}", path.display())),
            }
        })
    }

    pub fn require(&self, value: Option<usize>, key: &str) -> Result<usize> {
        value.ok_or_else(|| Error::Config(format!("config.json lacks `{key}`")))
    }

    /// `rope_theta` from either transformers generation, else `default`.
    pub fn rope_theta_or(&self, default: f64) -> f64 {
        self.rope_theta
            .or_else(|| {
                self.rope_parameters
                    .as_ref()
                    .and_then(|p| p.get("rope_theta"))
                    .and_then(|v| v.as_f64())
            })
            .unwrap_or(default)
    }

    /// The rope scaling block of either transformers generation, parsed.
    pub fn rope_scaling(&self) -> Result<Option<RopeScaling>> {
        let block = self
            .rope_scaling
            .as_ref()
            .or(self.rope_parameters.as_ref())
            .filter(|v| !v.is_null());
        let Some(block) = block else { return Ok(None) };
        let kind = block
            .get("rope_type")
            .or_else(|| block.get("type"))
            .and_then(|v| v.as_str())
            .unwrap_or("default");
        let num = |key: &str| -> Result<f64> {
            block.get(key).and_then(|v| v.as_f64()).ok_or_else(|| {
                Error::Config(format!("rope scaling `{kind}` lacks numeric `{key}`"))
            })
        };
        match kind {
            "default" => Ok(None),
            "linear" => Ok(Some(RopeScaling::Linear {
                factor: num("factor")?,
            })),
            "llama3" => Ok(Some(RopeScaling::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")?,
            })),
            other => Err(Error::Config(format!(
                "rope scaling type `{other}` is not supported (supported: default, linear, llama3)"
            ))),
        }
    }

    pub fn token_ids(value: &Option<serde_json::Value>) -> Vec<u32> {
        match value {
            Some(serde_json::Value::Number(n)) => {
                n.as_u64().map(|v| vec![v as u32]).unwrap_or_default()
            }
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_u64().map(|v| v as u32))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn check_activation(&self) -> Result<()> {
        match self.hidden_act.as_deref() {
            None | Some("silu") | Some("swish") => Ok(()),
            Some(other) => Err(Error::Config(format!(
                "hidden_act `{other}` is not supported (supported: silu)"
            ))),
        }
    }
}
