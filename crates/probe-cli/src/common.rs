//! Pieces every subcommand shares: device and model options, loading with a progress bar.

use std::path::PathBuf;

use anyhow::{Context, Result};
use probe::ModelSpec;
use probe_lm::{DeviceSpec, DtypeChoice, Model, ModelInfo};

/// Where the model is and where it runs.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A .gguf file or an HF model directory (config.json + *.safetensors [+ tokenizer.json]).
    pub model: PathBuf,
    /// cpu, cuda or cuda:N (a GPU build: scripts/build-tch.sh, run through scripts/probe-gpu),
    /// torch-cpu (libtorch on the CPU, to check a GPU build without a GPU).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// A tokenizer.json to use instead of the model's own.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Weights: `native` keeps a GGUF's quantization and a checkpoint's bf16/f16 on the CPU
    /// (computing in f32) and computes in the checkpoint's type on a GPU; `f32` dequantizes
    /// (exact parity work); `bf16`/`f16` hold HF weights as halves on the CPU and compute in
    /// them on a GPU.
    #[arg(long, default_value = "native")]
    pub dtype: String,
    /// Decode (generate) with activations rounded to 8 bits against block-stored weights, as
    /// llama.cpp does: 1.5–2.5× faster on K-quant GGUFs, logits shifted by that rounding.
    /// Without it, decoding computes exactly what the dequantized model computes.
    #[arg(long)]
    pub fast_decode: bool,
    /// A LoRA adapter (PEFT layout: adapter_config.json + adapter_model.safetensors), e.g.
    /// `probe finetune`'s; applied on the fly. Output folders name it: `<model>+<adapter>` (the
    /// adapter folder's name, or the one above it when the folder is called `adapter`).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Fold the adapter into the weights at load (dense weights only: --dtype f32/bf16/f16).
    #[arg(long, requires = "adapter")]
    pub merge_adapter: bool,
}

impl ModelArgs {
    /// The model these flags name, with device and dtype parsed.
    pub fn spec(&self) -> Result<ModelSpec> {
        Ok(ModelSpec {
            path: self.model.clone(),
            device: self.device.parse::<DeviceSpec>()?,
            tokenizer: self.tokenizer.clone(),
            dtype: self.dtype.parse::<DtypeChoice>()?,
            fast_decode: self.fast_decode,
            adapter: self.adapter.clone(),
            merge_adapter: self.merge_adapter,
        })
    }

    /// The checkpoint's description, without loading its weights.
    pub fn info(&self) -> Result<ModelInfo> {
        ModelInfo::read(&self.model).with_context(|| format!("reading {}", self.model.display()))
    }

    /// The whole model.
    pub fn load(&self) -> Result<Model> {
        self.spec()?.load()
    }

    /// Blocks `0..n` only and no output head when `blocks` is given.
    pub fn load_blocks(&self, blocks: Option<usize>) -> Result<Model> {
        self.spec()?.load_blocks(blocks)
    }
}

pub use probe::files::check_out_file;
pub use probe::model::{is_out_of_memory, note_out_of_memory, out_of_memory_error};
pub use probe::progress::progress_bar;

/// The personas of `probe scale` and `probe eval --vote`: a spec's grid, filtered, or explicit
/// personas from a JSONL file.
#[derive(clap::Args, Debug)]
pub struct PersonaArgs {
    /// Persona spec (TOML): attributes, values and the persona description.
    #[arg(long, default_value = "data/personas/paper-grid.toml")]
    pub persona: PathBuf,
    /// Explicit personas (JSONL with optional survey weights) instead of the spec's grid.
    #[arg(long)]
    pub personas: Option<PathBuf>,
    /// Keep only some values of the grid: `--where year=tomorrow --where age=18-24,25-34`.
    #[arg(long = "where")]
    pub filter: Vec<String>,
}

impl PersonaArgs {
    pub fn selection(&self) -> probe::PersonaSelection {
        probe::PersonaSelection {
            spec: self.persona.clone(),
            personas: self.personas.clone(),
            filter: self.filter.clone(),
        }
    }
}

/// Bootstrap confidence intervals (`probe compare`, `probe report`).
#[derive(clap::Args, Debug, Clone)]
pub struct BootstrapArgs {
    /// Bootstrap resamples for the confidence intervals.
    #[arg(long, default_value_t = 1000, value_parser = positive)]
    pub bootstrap: usize,
    /// Confidence level of the intervals (between 0 and 1).
    #[arg(long, default_value_t = 0.95, value_parser = confidence_level)]
    pub level: f64,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl BootstrapArgs {
    /// The flags as the metrics crate takes them.
    pub fn settings(&self) -> probe_metrics::individual::Bootstrap {
        probe_metrics::individual::Bootstrap {
            resamples: self.bootstrap,
            level: self.level,
            seed: self.seed,
        }
    }
}

/// The seeded train / validation / test split of a survey's respondents (`probe simulate`,
/// `probe finetune`: the same flags give the same split).
#[derive(clap::Args, Debug, Clone)]
pub struct SplitArgs {
    /// Seed of the train / validation / test split (by respondent id).
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Fraction of respondents in the training split.
    #[arg(long, default_value_t = 0.7)]
    pub train_fraction: f64,
    /// Fraction of respondents in the validation split (the rest is the test split).
    #[arg(long, default_value_t = 0.1)]
    pub validation_fraction: f64,
}

impl SplitArgs {
    pub fn options(&self) -> probe::simulate::SplitOptions {
        probe::simulate::SplitOptions {
            seed: self.split_seed,
            train: self.train_fraction,
            validation: self.validation_fraction,
        }
    }
}

/// Every count flag that must be at least 1 (`--batch-size`, `--shard-size`, `--bootstrap`,
/// `--n`, `-k`, …) is parsed by this one function, so 0 is refused the same way everywhere.
pub fn positive(s: &str) -> std::result::Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// A confidence level: strictly between 0 and 1 (refused when parsed, before any work).
pub fn confidence_level(s: &str) -> std::result::Result<f64, String> {
    let x = number(s)?;
    if !(x > 0.0 && x < 1.0) {
        return Err(format!("{x} is not between 0 and 1 (e.g. 0.95)"));
    }
    Ok(x)
}

/// A finite number ≥ 0 (`--kl-smoothing`).
pub fn non_negative(s: &str) -> std::result::Result<f64, String> {
    let x = number(s)?;
    if !(x.is_finite() && x >= 0.0) {
        return Err(format!("{x} must be a finite number ≥ 0"));
    }
    Ok(x)
}

/// A flag's text as a number (the range checks are the callers').
fn number(s: &str) -> std::result::Result<f64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))
}
