//! Pieces every subcommand shares: device and model options, loading with a progress bar.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use probe_lm::{DeviceSpec, DtypeChoice, LoadOptions, Model, ModelInfo};
use safetensors::{Dtype, View};

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
        if let DeviceSpec::Cuda(index) = spec {
            self.check_gpu_fits(index, dtype, blocks)?;
        }
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
        let mut model = model;
        model.transformer.set_fast_decode(self.fast_decode);
        Ok(model)
    }
}

/// What is on the GPU, for an out-of-memory error to name (set when a model is loaded there).
static GPU_CONTEXT: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
/// The first line of an out-of-memory panic, kept by the panic hook for `main`.
static OOM_MESSAGE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

impl ModelArgs {
    /// Refuses a load whose weights alone exceed the GPU's free memory, and records what is
    /// loaded for an out-of-memory error later.
    fn check_gpu_fits(
        &self,
        index: usize,
        dtype: DtypeChoice,
        blocks: Option<usize>,
    ) -> Result<()> {
        use probe_lm::memory::human_bytes;
        let info = self.info()?;
        let compute = info.gpu_compute_dtype(dtype);
        let need = info.gpu_weight_bytes(compute, blocks);
        let params = info.config.parameter_count() as f64 / 1e9;
        let part = match blocks {
            Some(n) => format!("blocks 0..{n} of {}", info.config.num_layers),
            None => "all blocks and the head".into(),
        };
        let what = format!(
            "{} ({params:.1} B parameters; {part} in {}: {} of weights)",
            self.name(),
            probe_lm::precision::dtype_name(compute),
            human_bytes(need)
        );
        let memory = probe_lm::device::cuda_memory(index);
        let free = match memory {
            Some((free, total)) => format!(
                "cuda:{index} had {} free of {} at load",
                human_bytes(free),
                human_bytes(total)
            ),
            None => format!("cuda:{index}'s free memory is unknown"),
        };
        *GPU_CONTEXT.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{what}; {free}"));
        if let Some((free, total)) = memory {
            if need > free {
                bail!(
                    "{what} cannot fit cuda:{index}, which has {} free of {}: use --dtype bf16 \
                     (if it is f32), hook earlier layers (only blocks up to the last hook are \
                     loaded), or a larger GPU",
                    human_bytes(free),
                    human_bytes(total)
                );
            }
        }
        Ok(())
    }
}

/// Whether a panic message is a GPU running out of memory (libtorch's "CUDA out of memory",
/// CubeCL's "Out of memory").
pub fn is_out_of_memory(message: &str) -> bool {
    message.to_ascii_lowercase().contains("out of memory")
}

/// Called by the panic hook with an out-of-memory panic's message.
pub fn note_out_of_memory(message: &str) {
    let first = message
        .lines()
        .map(str::trim)
        .find(|l| l.to_ascii_lowercase().contains("out of memory"))
        .unwrap_or("out of memory");
    *OOM_MESSAGE.lock().unwrap_or_else(|e| e.into_inner()) = Some(first.to_string());
}

/// The error to print after an out-of-memory panic: the backend's line, what was loaded, the
/// free memory then and now, and what to change; `None` when no such panic happened.
pub fn out_of_memory_error() -> Option<String> {
    let message = OOM_MESSAGE.lock().ok()?.clone()?;
    let context = GPU_CONTEXT.lock().ok().and_then(|c| c.clone());
    let mut out = format!("the GPU ran out of memory ({message})");
    if let Some(c) = context {
        out.push_str(&format!("; model: {c}"));
    }
    out.push_str(": use a smaller --batch-size, --dtype bf16 (if it is f32) or a larger GPU");
    Some(out)
}

pub fn progress_bar(len: u64, prefix: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10.cyan} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg} ({elapsed})",
        )
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

pub use probe_lm::model::model_name;

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

/// Checks, before any model runs, that `dir` can hold outputs: it is a directory or absent,
/// and its nearest existing ancestor is a directory a file can be written in. Nothing is
/// created (bad input writes nothing).
pub fn check_out_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("output {}: exists and is not a directory", dir.display());
    }
    let mut existing = dir;
    while !existing.exists() {
        existing = match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    if !existing.is_dir() {
        bail!(
            "output {}: {} is not a directory",
            dir.display(),
            existing.display()
        );
    }
    let probe_file = existing.join(format!(".probe-write-test-{}", std::process::id()));
    std::fs::write(&probe_file, b"").with_context(|| {
        format!(
            "output {}: {} is not writable",
            dir.display(),
            existing.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe_file);
    Ok(())
}

/// Checks, before any model runs, that `path` can be written as an output file with one of
/// the `extensions`: absent or a regular file (a FIFO or device given as `--out` would
/// otherwise be replaced by a regular file), in a writable directory.
pub fn check_out_file(path: &Path, extensions: &[&str]) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if !extensions.contains(&ext.as_str()) {
        bail!(
            "output {}: unsupported file type `.{ext}` (write {})",
            path.display(),
            extensions
                .iter()
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join(" or ")
        );
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() {
            bail!(
                "output {}: exists and is not a regular file (a directory, FIFO or device);                  give a file path",
                path.display()
            );
        }
    }
    let parent = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check_out_dir(parent)
}

/// Hex SHA-256 of a file's bytes (provenance of data and template files in manifests).
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    // a default data file not on disk is the built-in copy (probe_data::defaults)
    let bytes = match probe_data::defaults::embedded(path) {
        Some(text) => text.as_bytes().to_vec(),
        None => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    };
    Ok(sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_panics_become_one_line_naming_the_model() {
        let torch = "Torch(\"CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total \
                     capacity of 139.8 GiB of which 1.2 GiB is free.\nException raised from ...\")";
        assert!(is_out_of_memory(torch));
        assert!(!is_out_of_memory("index out of bounds"));
        *GPU_CONTEXT.lock().unwrap() = Some("llama (8.0 B parameters)".into());
        note_out_of_memory(torch);
        let err = out_of_memory_error().unwrap();
        assert!(err.contains("Tried to allocate 2.00 GiB"), "{err}");
        assert!(err.contains("8.0 B parameters"), "{err}");
        assert!(!err.contains("Exception raised"), "{err}");
    }
}
