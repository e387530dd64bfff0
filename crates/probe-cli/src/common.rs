//! Pieces every subcommand shares: device and model options, loading with a progress bar.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use probe_lm::{DeviceSpec, DtypeChoice, LoadOptions, Model, ModelInfo};
use safetensors::{Dtype, View};

/// Where the model is and where it runs.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A .gguf file or an HF model directory (config.json + *.safetensors [+ tokenizer.json]).
    pub model: PathBuf,
    /// cpu, cuda or cuda:N (cuda needs a binary built with scripts/build-tch.sh).
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
}

impl ModelArgs {
    /// The model's name in output paths: the checkpoint's file stem (or directory name).
    pub fn name(&self) -> String {
        model_name(&self.model)
    }

    /// The checkpoint's description, without loading its weights.
    pub fn info(&self) -> Result<ModelInfo> {
        ModelInfo::read(&self.model).with_context(|| format!("reading {}", self.model.display()))
    }

    pub fn dtype(&self) -> Result<DtypeChoice> {
        Ok(self.dtype.parse::<DtypeChoice>()?)
    }

    /// The whole model.
    pub fn load(&self) -> Result<Model> {
        self.load_blocks(None)
    }

    /// Loads blocks `0..n` only and no output head when `blocks` is given: all that hooks up to
    /// block n − 1 need (a 70B model hooked at 0.6L–0.9L then fits one GPU).
    pub fn load_blocks(&self, blocks: Option<usize>) -> Result<Model> {
        let spec: DeviceSpec = self.device.parse()?;
        let dtype = self.dtype()?;
        let device = spec.device()?;
        let bar = progress_bar(0, "loading");
        bar.set_message(self.model.display().to_string());
        let on_progress = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        let model = Model::load(
            &self.model,
            &device,
            LoadOptions {
                tokenizer: self.tokenizer.clone(),
                progress: Some(&on_progress),
                dtype,
                compute: None,
                blocks,
            },
        )
        .with_context(|| format!("loading model {}", self.model.display()))?;
        bar.finish_and_clear();
        Ok(model)
    }
}

pub fn progress_bar(len: u64, prefix: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10.cyan} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

struct Entry<'a> {
    dtype: Dtype,
    shape: &'a [usize],
    bytes: &'a [u8],
}

impl View for Entry<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes to a temporary name beside `path`, then renames: readers never see half a file.
pub fn write_safetensors(
    path: &Path,
    entries: &[(String, Dtype, Vec<usize>, Vec<u8>)],
    metadata: std::collections::HashMap<String, String>,
) -> Result<()> {
    let views = entries.iter().map(|(name, dtype, shape, bytes)| {
        (
            name.as_str(),
            Entry {
                dtype: *dtype,
                shape,
                bytes,
            },
        )
    });
    let bytes = probe_cache::canonical_safetensors(
        safetensors::serialize(views, Some(metadata)).context("serializing safetensors")?,
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("safetensors.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Hex SHA-256 of a file's bytes (provenance of data and template files in manifests).
/// A model's name in output paths: a GGUF file's stem, an HF directory's name (whose dots,
/// as in `Llama-3.1-8B`, are no extension).
pub fn model_name(path: &Path) -> String {
    let name = if path.is_dir() {
        path.file_name()
    } else {
        path.file_stem()
    };
    name.map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

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
    pub fn spec(&self) -> Result<probe_data::personas::PersonaSpec> {
        Ok(probe_data::personas::PersonaSpec::load(&self.persona)?)
    }

    /// The grid personas `--where` keeps, or those of `--personas`.
    pub fn select(
        &self,
        spec: &probe_data::personas::PersonaSpec,
    ) -> Result<Vec<probe_data::personas::Persona>> {
        let filter = probe_data::personas::GridFilter::parse(&self.filter)
            .map_err(|e| anyhow::anyhow!("--where {e}"))?;
        match &self.personas {
            Some(path) => {
                if !filter.is_empty() {
                    anyhow::bail!(
                        "--where filters the grid; it cannot be combined with --personas"
                    );
                }
                Ok(spec.read_jsonl(path)?)
            }
            None => spec
                .grid(&filter)
                .map_err(|e| anyhow::anyhow!("{}: {e}", self.persona.display())),
        }
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
