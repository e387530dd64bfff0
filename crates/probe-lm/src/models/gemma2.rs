//! Gemma 2: the Llama block with Gemma's departures, each a switch of the shared transformer
//! ([`BlockSwitches`]):
//! - the embedding is scaled by √hidden; the unembedding is tied to it;
//! - RMSNorm scales by `1 + w`, in f32; four norms per block: before attention, after it
//!   (before the residual add), before the MLP and after it;
//! - GeGLU MLP (`gelu_pytorch_tanh`);
//! - attention scores scaled by `query_pre_attn_scalar^-1/2` and soft-capped,
//!   `cap · tanh(s / cap)`; the logits soft-capped too;
//! - sliding-window layers alternating with global ones, from layer 0.
//!
//! llama.cpp's `gemma2` GGUF stores the norms with the 1 already added and does not permute
//! Q/K rows; the query scale and the layer pattern are not in its metadata but fixed by size.

use crate::config::{Activation, BlockSwitches, HfConfig, ModelConfig};
use crate::error::Result;
use crate::weights::gguf::GgufFile;

use super::{Architecture, ArchitectureKind};

/// Gemma2: see the module's description.
pub struct Gemma2;

impl Architecture for Gemma2 {
    fn kind(&self) -> ArchitectureKind {
        ArchitectureKind::Gemma2
    }
    fn name(&self) -> &'static str {
        "gemma2"
    }
    fn hf_model_types(&self) -> &'static [&'static str] {
        &["gemma2"]
    }
    fn gguf_name(&self) -> Option<&'static str> {
        Some("gemma2")
    }
    fn config_from_hf(&self, hf: &HfConfig) -> Result<ModelConfig> {
        config_from_hf(hf)
    }
    fn config_from_gguf(&self, file: &GgufFile) -> Result<ModelConfig> {
        config_from_gguf(file)
    }
    fn extra_eos(&self) -> &'static [&'static str] {
        &["<end_of_turn>"]
    }
}

/// transformers' `Gemma2Config` / `Gemma3TextConfig` defaults, which apply to the keys a
/// config leaves out (Gemma 3's image-text checkpoints leave out most of `text_config`).
pub(crate) struct GemmaDefaults {
    pub vocab_size: usize,
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    pub attn_logit_softcap: Option<f64>,
    pub final_logit_softcap: Option<f64>,
    /// Every n-th layer is global.
    pub global_every: usize,
}

fn config_from_hf(hf: &HfConfig) -> Result<ModelConfig> {
    gemma_from_hf(
        hf,
        ArchitectureKind::Gemma2,
        &GemmaDefaults {
            vocab_size: 256_000,
            rope_theta: 10_000.0,
            max_position_embeddings: 8192,
            attn_logit_softcap: Some(50.0),
            final_logit_softcap: Some(30.0),
            global_every: 2,
        },
    )
}

/// The config both Gemma generations share; Gemma 3 adds q/k norms and local RoPE.
pub(crate) fn gemma_from_hf(
    hf: &HfConfig,
    architecture: ArchitectureKind,
    defaults: &GemmaDefaults,
) -> Result<ModelConfig> {
    // both configs default to Gemma 2 2B's sizes
    let num_layers = hf.num_hidden_layers.unwrap_or(26);
    let num_heads = hf.num_attention_heads.unwrap_or(8);
    // transformers' Gemma configs default the head size to 256, not hidden / heads
    let head_dim = hf.head_dim.unwrap_or(256);
    let attention_bias = hf.attention_bias.unwrap_or(false);
    let cap = |key: Option<Option<f64>>, default| key.unwrap_or(default);
    Ok(ModelConfig {
        architecture,
        vocab_size: hf.vocab_size.unwrap_or(defaults.vocab_size),
        hidden_size: hf.hidden_size.unwrap_or(2304),
        intermediate_size: hf.intermediate_size.unwrap_or(9216),
        num_layers,
        num_heads,
        num_kv_heads: hf.num_key_value_heads.unwrap_or(4),
        head_dim,
        rms_norm_eps: hf.rms_norm_eps.unwrap_or(1e-6),
        rope_theta: hf.rope_theta_or(defaults.rope_theta),
        rope_scaling: hf.rope_scaling()?,
        tie_word_embeddings: hf.tie_word_embeddings.unwrap_or(true),
        qkv_bias: attention_bias,
        o_bias: attention_bias,
        mlp_bias: false,
        sliding_window: hf.sliding_window_or(Some(4096))?,
        max_position_embeddings: hf
            .max_position_embeddings
            .unwrap_or(defaults.max_position_embeddings),
        bos_token_id: Some(
            HfConfig::token_ids(&hf.bos_token_id)
                .first()
                .copied()
                .unwrap_or(2),
        ),
        eos_token_ids: match HfConfig::token_ids(&hf.eos_token_id) {
            ids if ids.is_empty() && hf.eos_token_id.is_none() => vec![1],
            ids => ids,
        },
        switches: BlockSwitches {
            activation: hf.activation(Activation::GeluTanh)?,
            norm_weight_offset: 1.0,
            norm_in_f32: true,
            sandwich_norms: true,
            qk_norm: false,
            scale_embedding: true,
            query_pre_attn_scalar: Some(hf.query_pre_attn_scalar.unwrap_or(256.0)),
            attn_logit_softcap: cap(hf.attn_logit_softcapping, defaults.attn_logit_softcap),
            final_logit_softcap: cap(hf.final_logit_softcapping, defaults.final_logit_softcap),
            layer_types: super::hf_layer_types(hf, num_layers, defaults.global_every)?,
            local_rope: None,
        },
    })
}

fn config_from_gguf(file: &GgufFile) -> Result<ModelConfig> {
    let mut config = super::gguf_common(file, "gemma2", ArchitectureKind::Gemma2)?;
    gemma_gguf_switches(file, "gemma2", &mut config, 2, 46);
    Ok(config)
}

/// What a llama.cpp Gemma GGUF implies beyond the common keys: its `<arch>.*` window and
/// soft-capping keys, the fixed layer pattern, and llama.cpp's query scale (hidden / heads for
/// the 27B models, recognised by their `large_layers` blocks, else the head size).
pub(crate) fn gemma_gguf_switches(
    file: &GgufFile,
    arch: &str,
    config: &mut ModelConfig,
    global_every: usize,
    large_layers: usize,
) {
    let num = |key: &str| file.meta(&format!("{arch}.{key}")).and_then(|v| v.as_f64());
    config.sliding_window = num("attention.sliding_window").map(|w| w as usize);
    let query_scalar = if config.num_layers == large_layers {
        (config.hidden_size / config.num_heads) as f64
    } else {
        config.head_dim as f64
    };
    config.switches = BlockSwitches {
        activation: Activation::GeluTanh,
        // the converter stored `1 + w`
        norm_weight_offset: 0.0,
        norm_in_f32: true,
        sandwich_norms: true,
        qk_norm: false,
        scale_embedding: true,
        query_pre_attn_scalar: Some(query_scalar),
        attn_logit_softcap: num("attn_logit_softcapping"),
        final_logit_softcap: num("final_logit_softcapping"),
        layer_types: super::periodic_layer_types(config.num_layers, global_every),
        local_rope: None,
    };
}
