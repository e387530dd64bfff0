//! Gemma 3 text (`gemma3_text`, and the language model of a `gemma3` image-text checkpoint):
//! Gemma 2's block ([`super::gemma2`]) with an RMSNorm on every query and key head before RoPE,
//! five sliding-window layers to each global one, a RoPE base of its own on the sliding layers
//! (10 000 against the global 1 000 000, whose rescaling they do not share), no attention
//! soft-capping (transformers ignores the config key for Gemma 3) and no final one by default.

use crate::config::{parse_rope_scaling, HfConfig, LocalRope, ModelConfig, RopeScaling};
use crate::error::{Error, Result};
use crate::weights::gguf::GgufFile;

use super::gemma2::{gemma_from_hf, gemma_gguf_switches, GemmaDefaults};
use super::Architecture;

const GLOBAL_THETA: f64 = 1_000_000.0;
const LOCAL_THETA: f64 = 10_000.0;

pub fn config_from_hf(hf: &HfConfig) -> Result<ModelConfig> {
    // an image-text checkpoint: its language model's config
    if hf.model_type.as_deref() == Some("gemma3") {
        let text = hf
            .text_config
            .as_deref()
            .ok_or_else(|| Error::Config("a `gemma3` config.json without `text_config`".into()))?;
        return config_from_hf(&HfConfig {
            model_type: Some("gemma3_text".into()),
            ..text.clone()
        });
    }
    // transformers 5 nests RoPE per layer type; older configs name the global block
    // `rope_scaling`/`rope_theta` and the local base `rope_local_base_freq`
    let nested = hf
        .rope_parameters
        .as_ref()
        .filter(|p| p.get("full_attention").is_some() || p.get("sliding_attention").is_some());
    let (global, local) = match nested {
        Some(p) => (
            rope_block(p.get("full_attention"), GLOBAL_THETA)?,
            rope_block(p.get("sliding_attention"), LOCAL_THETA)?,
        ),
        None => (
            (hf.rope_theta_or(GLOBAL_THETA), hf.rope_scaling()?),
            (hf.rope_local_base_freq.unwrap_or(LOCAL_THETA), None),
        ),
    };
    let flat = HfConfig {
        rope_theta: Some(global.0),
        rope_scaling: None,
        rope_parameters: None,
        ..hf.clone()
    };
    let mut config = gemma_from_hf(
        &flat,
        Architecture::Gemma3,
        &GemmaDefaults {
            rope_theta: GLOBAL_THETA,
            max_position_embeddings: 131_072,
            attn_logit_softcap: None,
            final_logit_softcap: None,
            global_every: 6,
        },
    )?;
    config.rope_scaling = global.1;
    config.switches.qk_norm = true;
    // transformers' Gemma 3 attention never applies `attn_logit_softcapping` (the key exists
    // for Gemma 2's sake), nor does llama.cpp's
    config.switches.attn_logit_softcap = None;
    config.switches.local_rope = Some(LocalRope {
        theta: local.0,
        scaling: local.1,
    });
    Ok(config)
}

/// One layer type's `{rope_theta, rope_type, ...}`.
fn rope_block(
    block: Option<&serde_json::Value>,
    default_theta: f64,
) -> Result<(f64, Option<RopeScaling>)> {
    let Some(block) = block else {
        return Ok((default_theta, None));
    };
    let theta = block
        .get("rope_theta")
        .and_then(|v| v.as_f64())
        .unwrap_or(default_theta);
    Ok((theta, parse_rope_scaling(block)?))
}

pub fn config_from_gguf(file: &GgufFile) -> Result<ModelConfig> {
    let mut config = super::gguf_common(file, "gemma3", Architecture::Gemma3)?;
    config.rope_theta = file
        .meta("gemma3.rope.freq_base")
        .and_then(|v| v.as_f64())
        .unwrap_or(GLOBAL_THETA);
    if let (Some("linear"), Some(factor)) = (
        file.meta("gemma3.rope.scaling.type")
            .and_then(|v| v.as_str()),
        file.meta("gemma3.rope.scaling.factor")
            .and_then(|v| v.as_f64()),
    ) {
        config.rope_scaling = Some(RopeScaling::Linear { factor });
    }
    gemma_gguf_switches(file, "gemma3", &mut config, 6, 62);
    config.switches.qk_norm = true;
    // llama.cpp fixes the local base (`rope_freq_base_train_swa`) rather than storing it
    config.switches.local_rope = Some(LocalRope {
        theta: LOCAL_THETA,
        scaling: None,
    });
    Ok(config)
}
