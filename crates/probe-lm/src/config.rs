//! The architecture-independent description of a decoder-only model, built from an HF
//! `config.json` or from GGUF metadata by the architecture files in `models/`.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The architectures `probe` runs: one file each under `models/`, each implementing the
/// `Architecture` trait there (which also gives each kind its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchitectureKind {
    Llama,
    Qwen2,
    Mistral,
    Gemma2,
    Gemma3,
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

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `silu` (SwiGLU: Llama, Qwen2, Mistral).
    #[default]
    Silu,
    /// `gelu_pytorch_tanh`, GELU's tanh approximation (GeGLU: Gemma).
    GeluTanh,
}

/// Whether a layer attends to every earlier position or only to the last `sliding_window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerType {
    Full,
    Sliding,
}

/// RoPE of the sliding-window layers where it differs from the global layers' (Gemma 3: base
/// 10 000 locally, 1 000 000 and maybe rescaled globally).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LocalRope {
    pub theta: f64,
    pub scaling: Option<RopeScaling>,
}

/// Where the Gemma family departs from the Llama block; everything off (`Default`) for Llama,
/// Qwen2 and Mistral. The shared transformer reads these switches, so one forward pass (and
/// one set of hooks) serves every architecture.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BlockSwitches {
    pub activation: Activation,
    /// Added to every stored RMSNorm weight: HF Gemma stores `w` and scales by `1 + w`
    /// (llama.cpp's converter adds the 1 itself, so 0 for a GGUF).
    pub norm_weight_offset: f32,
    /// RMSNorm multiplies by its weight in f32 and rounds once (Gemma's `(x·w).to(dtype)`,
    /// where Llama rounds `x` first); the same in f32, different in half precision.
    pub norm_in_f32: bool,
    /// Norms on the attention and MLP outputs before they join the residual stream (Gemma's
    /// `post_attention_layernorm` / `post_feedforward_layernorm`).
    pub sandwich_norms: bool,
    /// RMSNorm of each query and key head before RoPE (Gemma 3).
    pub qk_norm: bool,
    /// The token embedding is multiplied by √hidden (rounded to the activations' type).
    pub scale_embedding: bool,
    /// Attention scores are scaled by `query_pre_attn_scalar^-1/2` instead of `head_dim^-1/2`.
    pub query_pre_attn_scalar: Option<f64>,
    /// `cap · tanh(score / cap)` on the scaled attention scores, before the mask.
    pub attn_logit_softcap: Option<f64>,
    /// `cap · tanh(logit / cap)` on the output logits.
    pub final_logit_softcap: Option<f64>,
    /// Per layer: full or sliding-window attention. Empty: every layer slides when
    /// `sliding_window` is set (Mistral), none otherwise.
    pub layer_types: Vec<LayerType>,
    /// The sliding layers' own RoPE, when they have one.
    pub local_rope: Option<LocalRope>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelConfig {
    pub architecture: ArchitectureKind,
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
    /// Gemma's departures from the Llama block.
    pub switches: BlockSwitches,
}

impl ModelConfig {
    /// Whether layer `l` attends through the sliding window.
    pub fn layer_slides(&self, l: usize) -> bool {
        self.sliding_window.is_some()
            && self
                .switches
                .layer_types
                .get(l)
                .is_none_or(|t| *t == LayerType::Sliding)
    }

    /// The layer's attention window: `sliding_window` on sliding layers, else none.
    pub fn layer_window(&self, l: usize) -> Option<usize> {
        self.sliding_window.filter(|_| self.layer_slides(l))
    }

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
        if self.sliding_window == Some(0) {
            return bad("sliding_window must be positive".into());
        }
        if self.max_position_embeddings == 0 {
            return bad(
                "max_position_embeddings (a GGUF's context_length) must be positive".into(),
            );
        }
        // special ids index the embedding: one beyond it would make generate print another
        // token or stop never
        for (name, id) in std::iter::once(("bos_token_id", self.bos_token_id)).chain(
            self.eos_token_ids
                .iter()
                .map(|&e| ("eos_token_id", Some(e))),
        ) {
            if let Some(id) = id.filter(|&id| id as usize >= self.vocab_size) {
                return bad(format!(
                    "{name} {id} lies outside the vocabulary of {} tokens",
                    self.vocab_size
                ));
            }
        }
        let s = &self.switches;
        if !s.layer_types.is_empty() && s.layer_types.len() != self.num_layers {
            return bad(format!(
                "layer_types has {} entries for {} layers",
                s.layer_types.len(),
                self.num_layers
            ));
        }
        for (name, v) in [
            ("query_pre_attn_scalar", s.query_pre_attn_scalar),
            ("attn_logit_softcapping", s.attn_logit_softcap),
            ("final_logit_softcapping", s.final_logit_softcap),
            ("local rope_theta", s.local_rope.as_ref().map(|r| r.theta)),
        ] {
            if v.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
                return bad(format!("{name} must be positive"));
            }
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
        let s = &self.switches;
        let norms = if s.sandwich_norms { 4 * d } else { 2 * d };
        let qk_norms = if s.qk_norm { 2 * hd } else { 0 };
        let per_layer = attn + mlp + norms + qk_norms;
        let embed = self.vocab_size * d;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        embed + head + d + self.num_layers * per_layer
    }

    /// Inverse RoPE frequencies, one per rotated pair, after any long-context rescaling.
    pub fn rope_inv_freq(&self) -> Vec<f32> {
        rope_inv_freq(self.head_dim, self.rope_theta, self.rope_scaling.as_ref())
    }

    /// Gemma's departures in words, one `(label, description)` per line (`probe inspect`);
    /// empty for the plain Llama block.
    pub fn describe_switches(&self) -> Vec<(&'static str, String)> {
        let s = &self.switches;
        let mut lines = Vec::new();
        if s.sandwich_norms || s.scale_embedding || s.activation != Activation::Silu {
            let mut parts = vec![match s.activation {
                Activation::Silu => "SwiGLU MLP",
                Activation::GeluTanh => "GeGLU MLP (gelu_pytorch_tanh)",
            }
            .to_string()];
            if s.sandwich_norms {
                parts.push("RMSNorm before and after attention and MLP".into());
            }
            if s.norm_in_f32 {
                parts.push(if s.norm_weight_offset != 0.0 {
                    "norms scale by 1 + w, in f32".into()
                } else {
                    "norms scale by w (stored with the 1 added), in f32".into()
                });
            }
            if s.qk_norm {
                parts.push("q/k head norms".into());
            }
            if s.scale_embedding {
                parts.push("embedding × √hidden".into());
            }
            lines.push(("block", parts.join("; ")));
        }
        let mut attention = Vec::new();
        if let Some(w) = self.sliding_window {
            let sliding: Vec<usize> = (0..self.num_layers)
                .filter(|&l| self.layer_slides(l))
                .collect();
            attention.push(if sliding.len() == self.num_layers {
                format!("sliding window {w} on every layer")
            } else {
                format!(
                    "sliding window {w} on {} of {} layers (global: {})",
                    sliding.len(),
                    self.num_layers,
                    (0..self.num_layers)
                        .filter(|&l| !self.layer_slides(l))
                        .map(|l| l.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
            if let Some(local) = &s.local_rope {
                attention.push(format!("their rope theta {}", local.theta));
            }
        }
        if let Some(q) = s.query_pre_attn_scalar {
            attention.push(format!("scores × {q}^-1/2"));
        }
        if let Some(cap) = s.attn_logit_softcap {
            attention.push(format!("scores soft-capped at {cap}"));
        }
        if !attention.is_empty() {
            lines.push(("attention", attention.join("; ")));
        }
        if let Some(cap) = s.final_logit_softcap {
            lines.push(("logits", format!("soft-capped at {cap}")));
        }
        lines
    }

    /// The RoPE base and rescaling of the sliding-window layers (the global ones' unless the
    /// model gives them their own).
    pub fn local_rope(&self) -> (f64, Option<&RopeScaling>) {
        match &self.switches.local_rope {
            Some(local) => (local.theta, local.scaling.as_ref()),
            None => (self.rope_theta, self.rope_scaling.as_ref()),
        }
    }
}

/// Inverse RoPE frequencies of `head_dim` for base `theta`, rescaled by `scaling`.
pub fn rope_inv_freq(hd: usize, theta: f64, scaling: Option<&RopeScaling>) -> Vec<f32> {
    let base: Vec<f64> = (0..hd / 2)
        .map(|i| 1.0 / theta.powf((2 * i) as f64 / hd as f64))
        .collect();
    let scaled: Vec<f64> = match scaling {
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
    /// `None` when absent, `Some(None)` when `null`: Gemma's default window applies only to
    /// the former.
    #[serde(default, deserialize_with = "present")]
    pub sliding_window: Option<Option<serde_json::Value>>,
    pub use_sliding_window: Option<bool>,
    pub max_position_embeddings: Option<usize>,
    pub bos_token_id: Option<serde_json::Value>,
    pub eos_token_id: Option<serde_json::Value>,
    // Gemma
    /// Gemma's name for `hidden_act`.
    pub hidden_activation: Option<String>,
    pub query_pre_attn_scalar: Option<f64>,
    /// Absent: the architecture's default; `null`: off.
    #[serde(default, deserialize_with = "present")]
    pub attn_logit_softcapping: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    pub final_logit_softcapping: Option<Option<f64>>,
    /// `full_attention` / `sliding_attention` per layer (transformers ≥ 4.53) ...
    pub layer_types: Option<Vec<String>>,
    /// ... or every n-th layer global (older Gemma 3 configs).
    pub sliding_window_pattern: Option<usize>,
    /// Gemma 3's RoPE base of the sliding layers (older configs).
    pub rope_local_base_freq: Option<f64>,
    /// A `gemma3` image-text checkpoint's language model.
    pub text_config: Option<Box<HfConfig>>,
}

/// A key that is present, `null` or not: `Some(None)` for `null` (with `#[serde(default)]`,
/// an absent key stays `None`).
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
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
        match block {
            Some(block) => parse_rope_scaling(block),
            None => Ok(None),
        }
    }

    /// The sliding window: the key's value, `default` when the key is absent, none when
    /// `null`.
    pub fn sliding_window_or(&self, default: Option<usize>) -> Result<Option<usize>> {
        match &self.sliding_window {
            None => Ok(default),
            Some(None) | Some(Some(serde_json::Value::Null)) => Ok(None),
            Some(Some(v)) => Ok(Some(v.as_u64().filter(|&w| w > 0).ok_or_else(|| {
                Error::Config(format!("sliding_window {v} is not a positive integer"))
            })? as usize)),
        }
    }
}

/// One rope block (`rope_scaling`, or transformers 5's `rope_parameters`), parsed.
pub(crate) fn parse_rope_scaling(block: &serde_json::Value) -> Result<Option<RopeScaling>> {
    let kind = block
        .get("rope_type")
        .or_else(|| block.get("type"))
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    let num = |key: &str| -> Result<f64> {
        block
            .get(key)
            .and_then(|v| v.as_f64())
            .ok_or_else(|| Error::Config(format!("rope scaling `{kind}` lacks numeric `{key}`")))
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

impl HfConfig {
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

    /// The MLP activation: `hidden_activation` (Gemma) or `hidden_act`, else `default`.
    pub fn activation(&self, default: Activation) -> Result<Activation> {
        match self
            .hidden_activation
            .as_deref()
            .or(self.hidden_act.as_deref())
        {
            None => Ok(default),
            Some("silu") | Some("swish") => Ok(Activation::Silu),
            Some("gelu_pytorch_tanh") | Some("gelu_tanh") => Ok(Activation::GeluTanh),
            Some(other) => Err(Error::Config(format!(
                "hidden activation `{other}` is not supported (supported: silu, \
                 gelu_pytorch_tanh)"
            ))),
        }
    }
}
