//! `probe-lm`: a burn transformer runtime for interpretability.
//!
//! Loads HF checkpoints (`config.json` + safetensors + `tokenizer.json`) and GGUF files,
//! runs Llama / Qwen2 / Mistral forward passes on the CPU (burn's Flex backend) or, with the
//! `tch` feature, on CUDA, and records TransformerLens-named hook points
//! (`blocks.{l}.hook_resid_post`, `blocks.{l}.mlp.hook_post`, ...).
//!
//! ```no_run
//! use probe_lm::{Batch, DeviceSpec, HookSpec, Logits, Model};
//! let device = DeviceSpec::Cpu.device()?;
//! let model = Model::load("models/SmolLM2-135M-Instruct.Q4_1.gguf".as_ref(), &device, Default::default())?;
//! let ids = model.tokenizer()?.encode("The capital of France is")?;
//! let hooks = HookSpec::parse("blocks.{0.6L..0.9L}.hook_resid_post", model.config().num_layers)?;
//! let out = model.transformer.forward(&Batch::left_padded(&[ids], 0)?, &hooks, Logits::None)?;
//! # Ok::<(), probe_lm::Error>(())
//! ```

pub mod adapter;
pub mod chat;
pub mod config;
pub mod device;
pub mod error;
pub mod generate;
pub mod hooks;
pub mod interrupt;
pub mod kernels;
pub mod layers;
pub mod memory;
pub mod model;
pub mod models;
pub mod parallel;
pub mod precision;
pub mod tokenizer;
pub mod transformer;
pub mod weights;

pub use burn;
pub use chat::{ChatTemplate, Message};
pub use config::ModelConfig;
pub use device::DeviceSpec;
pub use error::{Error, Result};
pub use generate::{generate, GenerateParams, Generation};
pub use hooks::{parse_layers, HookPoint, HookSpec};
pub use model::{LoadOptions, Model, ModelFormat, ModelInfo};
pub use precision::{DtypeChoice, Precision};
pub use tokenizer::Tokenizer;
pub use transformer::{
    ActivationCache, Batch, ForwardOutput, KvCache, LoadPlan, Logits, Transformer,
};
