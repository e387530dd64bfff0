//! Which model to load and where: a checkpoint path, a device and a dtype, loaded with a
//! progress bar; on a GPU the weights' size is checked against free memory first, and what
//! was loaded is remembered so an out-of-memory panic later can name it.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use probe_lm::{DeviceSpec, DtypeChoice, LoadOptions, Model, ModelInfo};

use crate::progress::progress_bar;

/// A model to load: `ModelSpec::new(path)` is the checkpoint on the CPU in its own dtype.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// A .gguf file or an HF model directory (config.json + *.safetensors [+ tokenizer.json]).
    pub path: PathBuf,
    /// Where it runs.
    pub device: DeviceSpec,
    /// A tokenizer.json to use instead of the model's own.
    pub tokenizer: Option<PathBuf>,
    /// How the weights are held and computed in (`native` keeps a GGUF's quantization).
    pub dtype: DtypeChoice,
    /// Decode with 8-bit activations against block-stored weights, as llama.cpp does.
    pub fast_decode: bool,
    /// A LoRA adapter folder in PEFT's layout (`probe finetune`'s output or PEFT's).
    pub adapter: Option<PathBuf>,
    /// Fold the adapter into the weights at load instead of applying it on the fly.
    pub merge_adapter: bool,
}

impl ModelSpec {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ModelSpec {
            path: path.into(),
            device: DeviceSpec::Cpu,
            tokenizer: None,
            dtype: DtypeChoice::default(),
            fast_decode: false,
            adapter: None,
            merge_adapter: false,
        }
    }

    /// The model's name in output paths: the checkpoint's file stem (or directory name),
    /// `+<adapter folder>` with an adapter, so a fine-tuned model's outputs never land on
    /// the base model's.
    pub fn name(&self) -> String {
        let base = probe_lm::model::model_name(&self.path);
        match self.adapter_name() {
            Some(adapter) => format!("{base}+{adapter}"),
            None => base,
        }
    }

    /// The adapter's name: its folder's, or the folder above when that is `adapter` (`probe
    /// finetune --out runs/anes96-lora` writes `runs/anes96-lora/adapter`: "anes96-lora").
    pub fn adapter_name(&self) -> Option<String> {
        let dir = self.adapter.as_ref()?;
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        let named = match dir.file_name().and_then(|n| n.to_str()) {
            Some("adapter") => dir.parent().unwrap_or(&dir).to_path_buf(),
            _ => dir,
        };
        Some(probe_lm::model::model_name(&named))
    }

    /// The content fingerprint of what this spec loads: the checkpoint's
    /// (`probe_extract::model_fingerprint`), combined with the adapter's files when there is
    /// one, so a fine-tuned model's caches and probes are never taken for the base model's.
    pub fn fingerprint(&self) -> Result<String> {
        let base = probe_extract::model_fingerprint(&self.path)?;
        let Some(dir) = &self.adapter else {
            return Ok(base);
        };
        let mut parts = vec![base];
        for f in ["adapter_config.json", "adapter_model.safetensors"] {
            parts.push(crate::files::sha256_file(&dir.join(f))?);
        }
        if self.merge_adapter {
            parts.push("merged".into());
        }
        let joined = parts.join("+");
        Ok(probe_cache::fingerprint_texts([joined.as_str()]))
    }

    /// The checkpoint's description, without loading its weights.
    pub fn info(&self) -> Result<ModelInfo> {
        ModelInfo::read(&self.path).with_context(|| format!("reading {}", self.path.display()))
    }

    /// What can be known without loading the weights, checked before a stage writes anything:
    /// the checkpoint's description, and that `--dtype` suits its format on this device (an
    /// f16 request for a GGUF on the CPU fails here, not after a cache manifest exists).
    pub fn check(&self) -> Result<ModelInfo> {
        let info = self.info()?;
        let device = self.device.device()?;
        probe_lm::precision::Precision::resolve(
            self.dtype,
            info.source_kind(),
            info.largest_matrix_type(),
            &device,
        )?;
        if let Some(adapter) = &self.adapter {
            let config = adapter.join("adapter_config.json");
            if !config.is_file() {
                anyhow::bail!(
                    "--adapter {}: no adapter_config.json (a PEFT LoRA folder holds it and adapter_model.safetensors)",
                    adapter.display()
                );
            }
        }
        Ok(info)
    }

    /// The whole model.
    pub fn load(&self) -> Result<Model> {
        self.load_blocks(None)
    }

    /// Loads blocks `0..n` only and no output head when `blocks` is given: all that hooks up to
    /// block n − 1 need (a 70B model hooked at 0.6L–0.9L then fits one GPU).
    pub fn load_blocks(&self, blocks: Option<usize>) -> Result<Model> {
        let device = self.device.device()?;
        if let DeviceSpec::Cuda(index) = self.device {
            self.check_gpu_fits(index, blocks)?;
        }
        self.load_with(&device, blocks)
    }

    /// The whole model on `device` (e.g. the autodiff form of this spec's device, to train).
    pub fn load_on(&self, device: &probe_lm::burn::tensor::Device) -> Result<Model> {
        if let DeviceSpec::Cuda(index) = self.device {
            self.check_gpu_fits(index, None)?;
        }
        self.load_with(device, None)
    }

    fn load_with(
        &self,
        device: &probe_lm::burn::tensor::Device,
        blocks: Option<usize>,
    ) -> Result<Model> {
        let device = device.clone();
        let bar = progress_bar(0, "loading");
        bar.set_message(self.path.display().to_string());
        let on_progress = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        let mut model = Model::load(
            &self.path,
            &device,
            LoadOptions {
                tokenizer: self.tokenizer.clone(),
                progress: Some(&on_progress),
                dtype: self.dtype,
                compute: None,
                blocks,
            },
        )
        .with_context(|| format!("loading model {}", self.path.display()))?;
        bar.finish_and_clear();
        model.transformer.set_fast_decode(self.fast_decode);
        if let Some(dir) = &self.adapter {
            model
                .transformer
                .load_adapter(dir)
                .with_context(|| format!("loading adapter {}", dir.display()))?;
            if self.merge_adapter {
                model.transformer.merge_adapters()?;
            }
        } else if self.merge_adapter {
            bail!("--merge-adapter without --adapter");
        }
        Ok(model)
    }

    /// Refuses a load whose weights alone exceed the GPU's free memory, and records what is
    /// loaded for an out-of-memory error later.
    fn check_gpu_fits(&self, index: usize, blocks: Option<usize>) -> Result<()> {
        use probe_lm::memory::human_bytes;
        let info = self.info()?;
        let compute = info.gpu_compute_dtype(self.dtype);
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

/// Checks that `model` is the model the probes (or vectors) were made with: the content
/// fingerprint must match, and so must the hidden size.
pub fn check_same_model(
    spec: &ModelSpec,
    model: &Model,
    trained_on: &str,
    trained_hash: &str,
    hidden: usize,
    what: &str,
) -> Result<()> {
    let path = &spec.path;
    let hash = spec.fingerprint()?;
    let size = model.config().hidden_size;
    if hidden != size {
        bail!(
            "the {what} have {hidden} dimensions but {} has hidden size {size}: they were made \
             with another model ({trained_on})",
            path.display()
        );
    }
    if hash != trained_hash {
        bail!(
            "the {what} were made with {trained_on} (fingerprint {}…), not {} (fingerprint {}…)",
            &trained_hash[..trained_hash.len().min(12)],
            path.display(),
            &hash[..12]
        );
    }
    Ok(())
}

/// What is on the GPU, for an out-of-memory error to name (set when a model is loaded there).
static GPU_CONTEXT: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
/// The first line of an out-of-memory panic, kept by the panic hook for `main`.
static OOM_MESSAGE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Whether a panic message is a GPU running out of memory (libtorch's "CUDA out of memory",
/// CubeCL's "Out of memory").
pub fn is_out_of_memory(message: &str) -> bool {
    message.to_ascii_lowercase().contains("out of memory")
}

/// Called by a panic hook with an out-of-memory panic's message.
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
