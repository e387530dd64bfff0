//! Mistral: the Llama block with optional sliding-window attention (Mistral 7B v0.1 uses a
//! 4096-token window; later versions set `sliding_window: null`). In GGUF files llama.cpp
//! stores Mistral under the `llama` architecture, so GGUF loading goes through `llama.rs`.

use crate::config::{Activation, BlockSwitches, HfConfig, ModelConfig};
use crate::error::Result;

use super::{Architecture, ArchitectureKind};

/// Mistral: see the module's description.
pub struct Mistral;

impl Architecture for Mistral {
    fn kind(&self) -> ArchitectureKind {
        ArchitectureKind::Mistral
    }
    fn name(&self) -> &'static str {
        "mistral"
    }
    fn hf_model_types(&self) -> &'static [&'static str] {
        &["mistral"]
    }
    fn gguf_name(&self) -> Option<&'static str> {
        None
    }
    fn config_from_hf(&self, hf: &HfConfig) -> Result<ModelConfig> {
        config_from_hf(hf)
    }
}

fn config_from_hf(hf: &HfConfig) -> Result<ModelConfig> {
    let hidden_size = hf.require(hf.hidden_size, "hidden_size")?;
    let num_heads = hf.require(hf.num_attention_heads, "num_attention_heads")?;
    let sliding_window = hf.sliding_window_or(None)?;
    Ok(ModelConfig {
        architecture: ArchitectureKind::Mistral,
        vocab_size: hf.require(hf.vocab_size, "vocab_size")?,
        hidden_size,
        intermediate_size: hf.require(hf.intermediate_size, "intermediate_size")?,
        num_layers: hf.require(hf.num_hidden_layers, "num_hidden_layers")?,
        num_heads,
        num_kv_heads: hf.num_key_value_heads.unwrap_or(num_heads),
        head_dim: super::hf_head_dim(hf, hidden_size, num_heads)?,
        rms_norm_eps: hf.rms_norm_eps.unwrap_or(1e-6),
        rope_theta: hf.rope_theta_or(10_000.0),
        rope_scaling: hf.rope_scaling()?,
        tie_word_embeddings: hf.tie_word_embeddings.unwrap_or(false),
        qkv_bias: false,
        o_bias: false,
        mlp_bias: false,
        sliding_window,
        max_position_embeddings: hf.max_position_embeddings.unwrap_or(32_768),
        bos_token_id: HfConfig::token_ids(&hf.bos_token_id).first().copied(),
        eos_token_ids: HfConfig::token_ids(&hf.eos_token_id),
        switches: BlockSwitches {
            activation: hf.activation(Activation::Silu)?,
            ..BlockSwitches::default()
        },
    })
}
