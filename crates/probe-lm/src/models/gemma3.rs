//! Gemma 3 text (`gemma3_text`, and the language model of a `gemma3` image-text checkpoint):
//! Gemma 2's block ([`super::gemma2`]) with an RMSNorm on every query and key head before RoPE,
//! five sliding-window layers to each global one, a RoPE base of its own on the sliding layers
//! (10 000 against the global 1 000 000, whose rescaling they do not share), no attention
//! soft-capping (transformers ignores the config key for Gemma 3) and no final one by default.

use crate::config::{parse_rope_scaling, HfConfig, LocalRope, ModelConfig, RopeScaling};
use crate::error::{Error, Result};
use crate::weights::gguf::GgufFile;

use super::gemma2::{gemma_from_hf, gemma_gguf_switches, GemmaDefaults};
use super::{Architecture, ArchitectureKind};

/// Gemma3: see the module's description.
pub struct Gemma3;

impl Architecture for Gemma3 {
    fn kind(&self) -> ArchitectureKind {
        ArchitectureKind::Gemma3
    }
    fn name(&self) -> &'static str {
        "gemma3"
    }
    fn hf_model_types(&self) -> &'static [&'static str] {
        &["gemma3_text", "gemma3"]
    }
    fn gguf_name(&self) -> Option<&'static str> {
        Some("gemma3")
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

const GLOBAL_THETA: f64 = 1_000_000.0;
const LOCAL_THETA: f64 = 10_000.0;

fn config_from_hf(hf: &HfConfig) -> Result<ModelConfig> {
    // an image-text checkpoint: its language model's config
    if hf.model_type.as_deref() == Some("gemma3") {
        let text = hf
            .text_config
            .as_deref()
            .ok_or_else(|| Error::Config("a `gemma3` config.json without `text_config`".into()))?;
        // special tokens live at the top level of such a config
        return config_from_hf(&HfConfig {
            model_type: Some("gemma3_text".into()),
            bos_token_id: text.bos_token_id.clone().or(hf.bos_token_id.clone()),
            eos_token_id: text.eos_token_id.clone().or(hf.eos_token_id.clone()),
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
        ArchitectureKind::Gemma3,
        &GemmaDefaults {
            vocab_size: 262_208,
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

fn config_from_gguf(file: &GgufFile) -> Result<ModelConfig> {
    let mut config = super::gguf_common(file, "gemma3", ArchitectureKind::Gemma3)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LayerType;

    #[test]
    fn an_image_text_config_leaves_most_of_its_text_config_to_the_defaults() {
        // the shape of gemma-3-4b-it's config.json
        let hf: HfConfig = serde_json::from_str(
            r#"{
              "architectures": ["Gemma3ForConditionalGeneration"],
              "model_type": "gemma3",
              "eos_token_id": [1, 106],
              "text_config": {
                "hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
                "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                "sliding_window": 1024
              },
              "vision_config": {"model_type": "siglip_vision_model"}
            }"#,
        )
        .unwrap();
        let c = super::super::config_from_hf(&hf).unwrap();
        assert_eq!(c.architecture, ArchitectureKind::Gemma3);
        assert_eq!(
            (c.hidden_size, c.num_layers, c.vocab_size),
            (2560, 34, 262_208)
        );
        assert_eq!((c.num_heads, c.num_kv_heads, c.head_dim), (8, 4, 256));
        assert_eq!(c.eos_token_ids, vec![1, 106]);
        assert_eq!(c.bos_token_id, Some(2));
        assert_eq!(c.rope_theta, GLOBAL_THETA);
        assert_eq!(c.rope_scaling, Some(RopeScaling::Linear { factor: 8.0 }));
        let local = c.switches.local_rope.as_ref().unwrap();
        assert_eq!((local.theta, local.scaling.is_none()), (LOCAL_THETA, true));
        assert_eq!(c.sliding_window, Some(1024));
        let globals: Vec<usize> = (0..c.num_layers)
            .filter(|&l| c.switches.layer_types[l] == LayerType::Full)
            .collect();
        assert_eq!(globals, vec![5, 11, 17, 23, 29]);
        assert_eq!(c.switches.query_pre_attn_scalar, Some(256.0));
        assert!(
            c.switches.attn_logit_softcap.is_none() && c.switches.final_logit_softcap.is_none()
        );
    }

    #[test]
    fn transformers_5_nests_rope_per_layer_type() {
        let hf: HfConfig = serde_json::from_str(
            r#"{"model_type": "gemma3_text", "num_hidden_layers": 4, "sliding_window": 8,
                "layer_types": ["sliding_attention", "full_attention", "sliding_attention",
                                "full_attention"],
                "rope_parameters": {
                  "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 5e5},
                  "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}}"#,
        )
        .unwrap();
        let c = config_from_hf(&hf).unwrap();
        assert_eq!(c.rope_theta, 5e5);
        assert_eq!(c.rope_scaling, Some(RopeScaling::Linear { factor: 4.0 }));
        assert_eq!(c.switches.local_rope.as_ref().unwrap().theta, 1e4);
        assert!(c.layer_slides(0) && !c.layer_slides(1));
    }

    #[test]
    fn unknown_layer_types_and_bad_scalars_are_errors() {
        let hf: HfConfig = serde_json::from_str(
            r#"{"model_type": "gemma3_text", "num_hidden_layers": 1,
                "layer_types": ["chunked_attention"]}"#,
        )
        .unwrap();
        let err = config_from_hf(&hf).unwrap_err().to_string();
        assert!(err.contains("chunked_attention"), "{err}");
        let hf: HfConfig = serde_json::from_str(
            r#"{"model_type": "gemma2", "num_hidden_layers": 2, "query_pre_attn_scalar": 0}"#,
        )
        .unwrap();
        let err = super::super::config_from_hf(&hf).unwrap_err().to_string();
        assert!(err.contains("query_pre_attn_scalar"), "{err}");
    }
}
