//! Llama 2, Llama 3.x (with `rope_scaling` type llama3) and Llama-architecture models such as
//! SmolLM2. Pre-norm decoder: RMSNorm → GQA attention with RoPE (rotate-half convention) →
//! RMSNorm → SwiGLU MLP; optional `attention_bias` / `mlp_bias`; untied or tied embeddings.

use crate::config::{Activation, BlockSwitches, HfConfig, ModelConfig, RopeScaling};
use crate::error::Result;
use crate::weights::gguf::GgufFile;

/// Llama: see the module's description.
pub struct Llama;

impl Architecture for Llama {
    fn kind(&self) -> ArchitectureKind {
        ArchitectureKind::Llama
    }
    fn name(&self) -> &'static str {
        "llama"
    }
    fn hf_model_types(&self) -> &'static [&'static str] {
        &["llama"]
    }
    fn gguf_name(&self) -> Option<&'static str> {
        Some("llama")
    }
    fn config_from_hf(&self, hf: &HfConfig) -> Result<ModelConfig> {
        config_from_hf(hf)
    }
    fn config_from_gguf(&self, file: &GgufFile) -> Result<ModelConfig> {
        config_from_gguf(file)
    }
    fn gguf_permutes_qk(&self) -> bool {
        true
    }
}

use super::{Architecture, ArchitectureKind};

fn config_from_hf(hf: &HfConfig) -> Result<ModelConfig> {
    let hidden_size = hf.require(hf.hidden_size, "hidden_size")?;
    let num_heads = hf.require(hf.num_attention_heads, "num_attention_heads")?;
    let attention_bias = hf.attention_bias.unwrap_or(false);
    Ok(ModelConfig {
        architecture: ArchitectureKind::Llama,
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
        qkv_bias: attention_bias,
        o_bias: attention_bias,
        mlp_bias: hf.mlp_bias.unwrap_or(false),
        sliding_window: None,
        max_position_embeddings: hf.max_position_embeddings.unwrap_or(2048),
        bos_token_id: HfConfig::token_ids(&hf.bos_token_id).first().copied(),
        eos_token_ids: HfConfig::token_ids(&hf.eos_token_id),
        switches: BlockSwitches {
            activation: hf.activation(Activation::Silu)?,
            ..BlockSwitches::default()
        },
    })
}

fn config_from_gguf(file: &GgufFile) -> Result<ModelConfig> {
    let mut config = super::gguf_common(file, "llama", ArchitectureKind::Llama)?;
    // llama.cpp stores Llama 3.1-style rescaling as per-frequency divisors.
    if file.tensor_info("rope_freqs.weight").is_some() {
        let (_, factors) = file.dequantize("rope_freqs.weight")?;
        config.rope_scaling = Some(RopeScaling::Factors(factors));
    } else if let (Some("linear"), Some(factor)) = (
        file.meta("llama.rope.scaling.type")
            .and_then(|v| v.as_str()),
        file.meta("llama.rope.scaling.factor")
            .and_then(|v| v.as_f64()),
    ) {
        config.rope_scaling = Some(RopeScaling::Linear { factor });
    }
    Ok(config)
}
