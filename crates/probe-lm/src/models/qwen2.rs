//! Qwen2 / Qwen2.5: the Llama block with biases on the q/k/v projections, usually tied
//! embeddings (small sizes), RoPE theta 1e6. llama.cpp does not permute Qwen2's Q/K rows.

use crate::config::{Activation, BlockSwitches, HfConfig, ModelConfig};
use crate::error::{Error, Result};
use crate::weights::gguf::GgufFile;

/// Qwen2: see the module's description.
pub struct Qwen2;

impl Architecture for Qwen2 {
    fn kind(&self) -> ArchitectureKind {
        ArchitectureKind::Qwen2
    }
    fn name(&self) -> &'static str {
        "qwen2"
    }
    fn hf_model_types(&self) -> &'static [&'static str] {
        &["qwen2"]
    }
    fn gguf_name(&self) -> Option<&'static str> {
        Some("qwen2")
    }
    fn config_from_hf(&self, hf: &HfConfig) -> Result<ModelConfig> {
        config_from_hf(hf)
    }
    fn config_from_gguf(&self, file: &GgufFile) -> Result<ModelConfig> {
        config_from_gguf(file)
    }
}

use super::{Architecture, ArchitectureKind};

fn config_from_hf(hf: &HfConfig) -> Result<ModelConfig> {
    let hidden_size = hf.require(hf.hidden_size, "hidden_size")?;
    let num_heads = hf.require(hf.num_attention_heads, "num_attention_heads")?;
    if hf.use_sliding_window == Some(true) {
        return Err(Error::Config(
            "Qwen2 with use_sliding_window=true is not supported (no released checkpoint uses it)"
                .into(),
        ));
    }
    Ok(ModelConfig {
        architecture: ArchitectureKind::Qwen2,
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
        qkv_bias: true,
        o_bias: false,
        mlp_bias: false,
        sliding_window: None,
        max_position_embeddings: hf.max_position_embeddings.unwrap_or(32_768),
        bos_token_id: HfConfig::token_ids(&hf.bos_token_id).first().copied(),
        eos_token_ids: HfConfig::token_ids(&hf.eos_token_id),
        switches: BlockSwitches {
            activation: hf.activation(Activation::Silu)?,
            ..BlockSwitches::default()
        },
    })
}

fn config_from_gguf(file: &GgufFile) -> Result<ModelConfig> {
    let mut config = super::gguf_common(file, "qwen2", ArchitectureKind::Qwen2)?;
    config.qkv_bias = true;
    Ok(config)
}
