//! One file per architecture: each knows its `config.json` defaults and its GGUF metadata.
//! The forward pass they share lives in `transformer.rs` and `layers/`.

pub mod gemma2;
pub mod gemma3;
pub mod llama;
pub mod mistral;
pub mod qwen2;

// the architectures are part of a model description (config.rs); models only builds them
pub use crate::config::ArchitectureKind;
use crate::config::{BlockSwitches, HfConfig, LayerType, ModelConfig};
use crate::error::{Error, Result};
use crate::weights::gguf::GgufFile;

/// What makes an architecture, besides the forward pass every one shares
/// (`transformer.rs`, whose differences are [`BlockSwitches`]): the names it goes by and how
/// its description is read. Implemented once per file of this module, listed once in
/// [`ARCHITECTURES`].
pub trait Architecture: Sync {
    fn kind(&self) -> ArchitectureKind;
    /// The short name (`probe inspect`, artifacts).
    fn name(&self) -> &'static str;
    /// The `model_type` values of an HF `config.json` it reads.
    fn hf_model_types(&self) -> &'static [&'static str];
    /// Its GGUF `general.architecture`, `None` where llama.cpp stores it as another (Mistral
    /// as `llama`).
    fn gguf_name(&self) -> Option<&'static str>;
    /// The description from an HF `config.json`.
    fn config_from_hf(&self, hf: &HfConfig) -> Result<ModelConfig>;
    /// The description from GGUF metadata (called only for files of [`Self::gguf_name`]).
    fn config_from_gguf(&self, file: &GgufFile) -> Result<ModelConfig> {
        Err(Error::Gguf {
            path: file.path().to_path_buf(),
            reason: format!(
                "llama.cpp stores {} under another architecture",
                self.name()
            ),
        })
    }
    /// Tokens that end a generation besides the tokenizer's and the config's EOS (Gemma's
    /// instruct models end turns with `<end_of_turn>`, which llama.cpp also stops at).
    fn extra_eos(&self) -> &'static [&'static str] {
        &[]
    }
    /// Whether llama.cpp stored its Q/K projection rows permuted for interleaved RoPE (its
    /// `llama` architecture does; loading undoes it).
    fn gguf_permutes_qk(&self) -> bool {
        false
    }
}

/// Every architecture `probe` runs: the one list that `config.json`, GGUF files and
/// [`ArchitectureKind`] are matched against.
pub static ARCHITECTURES: &[&dyn Architecture] = &[
    &llama::Llama,
    &qwen2::Qwen2,
    &mistral::Mistral,
    &gemma2::Gemma2,
    &gemma3::Gemma3,
];

impl ArchitectureKind {
    /// The short name (`llama`, `gemma3`, …: `probe inspect`, artifacts).
    pub fn name(self) -> &'static str {
        self.spec().name()
    }

    /// What makes this architecture ([`ARCHITECTURES`]).
    pub fn spec(self) -> &'static dyn Architecture {
        *ARCHITECTURES
            .iter()
            .find(|a| a.kind() == self)
            .expect("every kind is listed in models::ARCHITECTURES")
    }

    /// The architecture of an HF `config.json`'s `model_type`.
    pub(crate) fn from_model_type(model_type: &str) -> Result<Self> {
        ARCHITECTURES
            .iter()
            .find(|a| a.hf_model_types().contains(&model_type))
            .map(|a| a.kind())
            .ok_or_else(|| Error::UnknownArchitecture {
                found: model_type.to_string(),
                supported: supported_model_types(),
            })
    }
}

/// The HF `model_type` values `probe` reads, for error messages.
pub fn supported_model_types() -> String {
    let types: Vec<&str> = ARCHITECTURES
        .iter()
        .flat_map(|a| a.hf_model_types().iter().copied())
        .collect();
    types.join(", ")
}

/// The architecture of a GGUF file's `general.architecture`.
pub fn gguf_architecture(name: &str) -> Result<&'static dyn Architecture> {
    ARCHITECTURES
        .iter()
        .copied()
        .find(|a| a.gguf_name() == Some(name))
        .ok_or_else(|| {
            let names: Vec<&str> = ARCHITECTURES.iter().filter_map(|a| a.gguf_name()).collect();
            Error::UnknownArchitecture {
                found: format!("{name} (GGUF general.architecture)"),
                supported: format!(
                    "{} (llama.cpp stores Llama 2/3, Mistral and SmolLM as llama)",
                    names.join(", ")
                ),
            }
        })
}

/// Builds the model description from an HF `config.json`.
pub fn config_from_hf(hf: &HfConfig) -> Result<ModelConfig> {
    let model_type = hf
        .model_type
        .as_deref()
        .ok_or_else(|| Error::Config("config.json lacks `model_type`".into()))?;
    let config = ArchitectureKind::from_model_type(model_type)?
        .spec()
        .config_from_hf(hf)?;
    config.validate()?;
    Ok(config)
}

/// Builds the model description from GGUF metadata (`general.architecture` and its keys).
pub fn config_from_gguf(file: &GgufFile) -> Result<ModelConfig> {
    let config =
        gguf_architecture(file.meta_str("general.architecture")?)?.config_from_gguf(file)?;
    config.validate()?;
    Ok(config)
}

/// The head size when the config leaves it out: the hidden size split evenly over the heads
/// (a remainder would leave some of the hidden state out of attention: a broken config).
pub(crate) fn implied_head_dim(
    hidden_size: usize,
    num_heads: usize,
    hidden_key: &str,
    heads_key: &str,
) -> Result<usize> {
    if num_heads == 0 {
        return Err(Error::Config(format!("{heads_key} must be positive")));
    }
    if !hidden_size.is_multiple_of(num_heads) {
        return Err(Error::Config(format!(
            "{hidden_key} {hidden_size} is not a multiple of {heads_key} {num_heads}, and no \
             head size is given"
        )));
    }
    Ok(hidden_size / num_heads)
}

/// An HF config's `head_dim`, or the one its hidden size and heads imply.
pub(crate) fn hf_head_dim(hf: &HfConfig, hidden_size: usize, num_heads: usize) -> Result<usize> {
    match hf.head_dim {
        Some(d) => Ok(d),
        None => implied_head_dim(hidden_size, num_heads, "hidden_size", "num_attention_heads"),
    }
}

/// The hyper-parameters every llama.cpp architecture stores under `<arch>.*`.
pub(crate) fn gguf_common(
    file: &GgufFile,
    arch: &str,
    architecture: ArchitectureKind,
) -> Result<ModelConfig> {
    let key = |k: &str| format!("{arch}.{k}");
    // Sizes read from the file are bounded by what the file holds before anything is sized by
    // them: every block has tensors, so `block_count` cannot exceed the tensor count.
    let block_count = file.meta_u64(&key("block_count"))?;
    if block_count > file.tensors().len() as u64 {
        return Err(crate::Error::Gguf {
            path: file.path().to_path_buf(),
            reason: format!(
                "{arch}.block_count is {block_count}, but the file holds only {} tensors",
                file.tensors().len()
            ),
        });
    }
    let hidden_size = file.meta_u64(&key("embedding_length"))? as usize;
    let num_heads = file.meta_u64(&key("attention.head_count"))? as usize;
    let num_kv_heads = match file.meta(&key("attention.head_count_kv")) {
        Some(v) => v.as_u64().unwrap_or(num_heads as u64) as usize,
        None => num_heads,
    };
    let head_dim = match file.meta(&key("attention.key_length")) {
        Some(v) => v.as_u64().unwrap_or(0) as usize,
        None => implied_head_dim(
            hidden_size,
            num_heads,
            &key("embedding_length"),
            &key("attention.head_count"),
        )
        .map_err(|e| crate::Error::Gguf {
            path: file.path().to_path_buf(),
            reason: e.to_string(),
        })?,
    };
    let vocab_size = match file.meta(&key("vocab_size")) {
        Some(v) => v.as_u64().unwrap_or(0) as usize,
        None => file
            .meta("tokenizer.ggml.tokens")
            .and_then(|t| t.as_array())
            .map(|a| a.len())
            .or_else(|| file.tensor_info("token_embd.weight").map(|t| t.shape()[0]))
            .unwrap_or(0),
    };
    let eos = file
        .meta("tokenizer.ggml.eos_token_id")
        .and_then(|v| v.as_u64())
        .map(|v| vec![v as u32])
        .unwrap_or_default();
    Ok(ModelConfig {
        architecture,
        vocab_size,
        hidden_size,
        intermediate_size: file.meta_u64(&key("feed_forward_length"))? as usize,
        num_layers: block_count as usize,
        num_heads,
        num_kv_heads,
        head_dim,
        rms_norm_eps: file.meta_f64(&key("attention.layer_norm_rms_epsilon"))?,
        rope_theta: file
            .meta(&key("rope.freq_base"))
            .and_then(|v| v.as_f64())
            .unwrap_or(10_000.0),
        rope_scaling: None,
        tie_word_embeddings: file.tensor_info("output.weight").is_none(),
        qkv_bias: file.tensor_info("blk.0.attn_q.bias").is_some(),
        o_bias: file.tensor_info("blk.0.attn_output.bias").is_some(),
        mlp_bias: file.tensor_info("blk.0.ffn_up.bias").is_some(),
        sliding_window: None,
        max_position_embeddings: file
            .meta(&key("context_length"))
            .and_then(|v| v.as_u64())
            .unwrap_or(4096) as usize,
        bos_token_id: file
            .meta("tokenizer.ggml.bos_token_id")
            .and_then(|v| v.as_u64())
            .map(|v| v as u32),
        eos_token_ids: eos,
        switches: BlockSwitches::default(),
    })
}

/// Gemma's layer pattern when a config gives only a period: every `period`-th layer (counting
/// from 1) is global, the others slide (transformers' and llama.cpp's rule).
pub(crate) fn periodic_layer_types(num_layers: usize, period: usize) -> Vec<LayerType> {
    (0..num_layers)
        .map(|i| {
            if period > 0 && (i + 1).is_multiple_of(period) {
                LayerType::Full
            } else {
                LayerType::Sliding
            }
        })
        .collect()
}

/// An HF config's `layer_types`, else the pattern of `sliding_window_pattern` (or `period`).
pub(crate) fn hf_layer_types(
    hf: &HfConfig,
    num_layers: usize,
    period: usize,
) -> Result<Vec<LayerType>> {
    match &hf.layer_types {
        Some(types) => types
            .iter()
            .map(|t| match t.as_str() {
                "full_attention" => Ok(LayerType::Full),
                "sliding_attention" => Ok(LayerType::Sliding),
                other => Err(Error::Config(format!(
                    "layer type `{other}` is not supported (supported: full_attention, \
                     sliding_attention)"
                ))),
            })
            .collect(),
        None => Ok(periodic_layer_types(
            num_layers,
            hf.sliding_window_pattern.unwrap_or(period),
        )),
    }
}
