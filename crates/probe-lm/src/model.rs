//! Loading a complete model (weights, config, tokenizer, chat template) from a `.gguf` file
//! or an HF checkpoint directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device};

use crate::chat::ChatTemplate;
use crate::config::{HfConfig, ModelConfig};
use crate::error::{Error, Result};
use crate::memory::{self, TensorEntry};
use crate::models::{config_from_gguf, config_from_hf, ArchitectureKind};
use crate::precision::{DtypeChoice, Precision, SourceKind};
use crate::tokenizer::Tokenizer;
use crate::transformer::{LoadPlan, Transformer};
use crate::weights::gguf::GgufFile;
use crate::weights::{GgmlType, HeadLayout, Weights};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    Gguf,
    HfSafetensors,
}

/// What a checkpoint is, read without loading its weights.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub format: ModelFormat,
    pub config: ModelConfig,
    /// Storage type → number of tensors.
    pub weight_dtypes: BTreeMap<String, usize>,
    pub has_tokenizer: bool,
    pub has_chat_template: bool,
    /// Every tensor's type and size, for memory estimates.
    #[serde(skip)]
    pub tensors: Vec<TensorEntry>,
}

pub struct Model {
    pub transformer: Transformer,
    pub tokenizer: Option<Tokenizer>,
    pub chat_template: Option<ChatTemplate>,
    pub info: ModelInfo,
}

/// Where the pieces of a checkpoint are.
enum Source {
    Gguf(GgufFile),
    Hf { dir: PathBuf, config: Box<HfConfig> },
}

fn open_source(path: &Path) -> Result<Source> {
    if !path.exists() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        });
    }
    if path.is_file() {
        // Decide by content, not extension: a GGUF starts with its magic.
        let mut magic = [0u8; 4];
        let n = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut magic))
            .map_err(|e| Error::io(path, e))?;
        let is_gguf_name = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        if (n == 4 && &magic == b"GGUF") || is_gguf_name {
            return Ok(Source::Gguf(GgufFile::open(path)?));
        }
        return Err(Error::Input(format!(
            "{}: expected a .gguf file or an HF model directory (config.json + safetensors)",
            path.display()
        )));
    }
    let config_path = path.join("config.json");
    if !config_path.is_file() {
        return Err(Error::Config(format!(
            "{} has no config.json",
            path.display()
        )));
    }
    Ok(Source::Hf {
        dir: path.to_path_buf(),
        config: Box::new(HfConfig::from_file(&config_path)?),
    })
}

impl ModelInfo {
    /// Reads config and tensor directory only.
    pub fn read(path: &Path) -> Result<Self> {
        let source = open_source(path)?;
        Self::from_source(path, &source)
    }

    fn from_source(path: &Path, source: &Source) -> Result<Self> {
        let mut weight_dtypes = BTreeMap::new();
        match source {
            Source::Gguf(file) => {
                let mut tensors = Vec::with_capacity(file.tensors().len());
                for t in file.tensors() {
                    *weight_dtypes
                        .entry(t.ggml_type.name().to_string())
                        .or_insert(0) += 1;
                    tensors.push(TensorEntry::new(
                        &t.name,
                        t.ggml_type,
                        &t.shape(),
                        t.stored_bytes(),
                    ));
                }
                Ok(ModelInfo {
                    path: path.to_path_buf(),
                    format: ModelFormat::Gguf,
                    config: config_from_gguf(file)?,
                    weight_dtypes,
                    has_tokenizer: file.meta("tokenizer.ggml.tokens").is_some(),
                    has_chat_template: file.meta("tokenizer.chat_template").is_some(),
                    tensors,
                })
            }
            Source::Hf { dir, config } => {
                let model_config = config_from_hf(config)?;
                let mut tensors = Vec::new();
                // a broken checkpoint is reported here, by `inspect`, not only when loading
                let st = crate::weights::safetensors::SafetensorsCheckpoint::open(dir)?;
                let names: Vec<String> = st.names().map(str::to_string).collect();
                // sizes read from a file are bounded by what the file holds: every layer has
                // tensors, so a config cannot have more layers than the checkpoint tensors
                if model_config.num_layers > names.len() {
                    return Err(Error::Config(format!(
                        "{}: num_hidden_layers is {}, but the checkpoint holds only {} tensors",
                        dir.join("config.json").display(),
                        model_config.num_layers,
                        names.len()
                    )));
                }
                for n in names {
                    if let Some(dt) = st.dtype_of(&n) {
                        *weight_dtypes.entry(dt).or_insert(0) += 1;
                    }
                    if let (Ok(ty), Some((shape, bytes))) = (st.stored_type(&n), st.extent(&n)) {
                        tensors.push(TensorEntry::new(&n, ty, shape, bytes as u64));
                    }
                }
                Ok(ModelInfo {
                    path: path.to_path_buf(),
                    format: ModelFormat::HfSafetensors,
                    config: model_config,
                    weight_dtypes,
                    has_tokenizer: dir.join("tokenizer.json").is_file(),
                    has_chat_template: hf_chat_template(dir).is_some(),
                    tensors,
                })
            }
        }
    }
}

impl ModelInfo {
    pub fn source_kind(&self) -> SourceKind {
        match self.format {
            ModelFormat::Gguf => SourceKind::Gguf,
            ModelFormat::HfSafetensors => SourceKind::Safetensors,
        }
    }

    /// Bytes the weights take on the CPU under `choice`, for all blocks or blocks `0..n`
    /// without the head; `None` where the format cannot take `choice`.
    pub fn cpu_weight_bytes(&self, choice: DtypeChoice, blocks: Option<usize>) -> Option<u64> {
        memory::cpu_bytes(&self.tensors, self.source_kind(), choice, blocks)
    }

    /// Bytes the weights take on a GPU computing in `dtype`.
    pub fn gpu_weight_bytes(&self, dtype: DType, blocks: Option<usize>) -> u64 {
        memory::gpu_bytes(&self.tensors, dtype.size() as u64, blocks)
    }

    /// The storage type of the largest matrix (what a GPU's `native` follows).
    pub fn largest_matrix_type(&self) -> GgmlType {
        self.tensors
            .iter()
            .filter(|t| t.matrix)
            .max_by_key(|t| t.n_elements)
            .map_or(GgmlType::F32, |t| t.ty)
    }

    /// The compute type `--dtype choice` gives on a GPU.
    pub fn gpu_compute_dtype(&self, choice: DtypeChoice) -> DType {
        Precision::gpu_compute(choice, self.source_kind(), self.largest_matrix_type())
    }
}

/// `(template, bos, eos)` from `tokenizer_config.json` (or `chat_template.jinja`).
fn hf_chat_template(dir: &Path) -> Option<(String, String, String)> {
    let cfg: Option<serde_json::Value> = std::fs::read_to_string(dir.join("tokenizer_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let token = |key: &str| -> String {
        cfg.as_ref()
            .and_then(|c| c.get(key))
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.get("content")?.as_str().map(str::to_string))
            })
            .unwrap_or_default()
    };
    let template = cfg
        .as_ref()
        .and_then(|c| c.get("chat_template"))
        .and_then(|v| v.as_str().map(str::to_string))
        .or_else(|| std::fs::read_to_string(dir.join("chat_template.jinja")).ok())?;
    Some((template, token("bos_token"), token("eos_token")))
}

/// Options for [`Model::load`].
#[derive(Default)]
pub struct LoadOptions<'a> {
    /// A `tokenizer.json` overriding the checkpoint's own.
    pub tokenizer: Option<PathBuf>,
    /// Called with (done, total) while blocks load.
    pub progress: Option<&'a dyn Fn(usize, usize)>,
    /// How weights are held, and the compute type on a GPU (`--dtype`; see [`crate::precision`]).
    pub dtype: DtypeChoice,
    /// Forces the compute type (checks the GPU's half-precision path on the CPU).
    pub compute: Option<DType>,
    /// Load only blocks `0..n` and no output head: all that hooks up to block n − 1 need.
    pub blocks: Option<usize>,
}

impl Model {
    pub fn load(path: &Path, device: &Device, options: LoadOptions<'_>) -> Result<Self> {
        let source = open_source(path)?;
        let info = ModelInfo::from_source(path, &source)?;
        let no_progress = |_: usize, _: usize| {};
        let progress = options.progress.unwrap_or(&no_progress);
        let mut generation_eos = Vec::new();
        let (weights, mut tokenizer, chat_template) = match source {
            Source::Gguf(file) => {
                let tokenizer = match &options.tokenizer {
                    Some(_) => None,
                    None if info.has_tokenizer => Some(Tokenizer::from_gguf(&file)?),
                    None => None,
                };
                let chat_template = gguf_chat_template(&file);
                let permuted_qk =
                    crate::models::gguf_architecture(file.meta_str("general.architecture")?)?
                        .gguf_permutes_qk()
                        .then_some(HeadLayout {
                            n_heads: info.config.num_heads,
                            n_kv_heads: info.config.num_kv_heads,
                        });
                let sandwich_norms = info.config.switches.sandwich_norms;
                (
                    Weights::Gguf {
                        file,
                        permuted_qk,
                        sandwich_norms,
                    },
                    tokenizer,
                    chat_template,
                )
            }
            Source::Hf { dir, .. } => {
                let tok_path = dir.join("tokenizer.json");
                let tokenizer = match &options.tokenizer {
                    Some(_) => None,
                    None if tok_path.is_file() => Some(Tokenizer::from_file(&tok_path)?),
                    None => None,
                };
                let chat_template =
                    hf_chat_template(&dir).map(|(t, b, e)| ChatTemplate::new(t, b, e));
                generation_eos = generation_config_eos(&dir)?;
                (Weights::open_safetensors(&dir)?, tokenizer, chat_template)
            }
        };
        if let Some(p) = &options.tokenizer {
            tokenizer = Some(Tokenizer::from_file(p)?);
        }
        if let Some(tok) = tokenizer.as_mut() {
            // Generation ends where transformers' `generate` ends it: at the tokenizer's EOS,
            // the config's and generation_config.json's (Llama 3.1 Instruct ends turns with
            // `<|eot_id|>`, Gemma's instruct models with `<end_of_turn>`, which llama.cpp also
            // treats as an end for a Gemma GGUF).
            let mut eos = tok.eos_token_ids().to_vec();
            eos.extend(&info.config.eos_token_ids);
            eos.extend(generation_eos);
            for token in info.config.architecture.spec().extra_eos() {
                eos.extend(tok.token_to_id(token));
            }
            let mut seen = std::collections::HashSet::new();
            eos.retain(|id| seen.insert(*id));
            tok.set_eos_token_ids(eos);
        }
        let precision = resolve_precision(&options, &info, device)?;
        let plan = LoadPlan {
            precision,
            blocks: options.blocks,
        };
        let transformer = Transformer::load(info.config.clone(), &weights, device, plan, progress)?;
        Ok(Model {
            transformer,
            tokenizer,
            chat_template,
            info,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.transformer.config
    }

    pub fn architecture(&self) -> ArchitectureKind {
        self.config().architecture
    }

    /// The tokenizer, or an error saying where one was looked for.
    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            Error::Tokenizer(format!(
                "{} has no tokenizer (no tokenizer.json / no tokenizer.ggml.* metadata): pass \
                 --tokenizer <tokenizer.json> or give token ids",
                self.info.path.display()
            ))
        })
    }
}

/// The `eos_token_id`s of an HF directory's `generation_config.json` (none without one).
fn generation_config_eos(dir: &Path) -> Result<Vec<u32>> {
    let path = dir.join("generation_config.json");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    // a few hundred bytes; bounded before reading, as config.json is
    let len = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    if len > 1 << 20 {
        return Err(Error::Config(format!(
            "{}: {len} bytes, not a config",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Config(format!("{}: not valid JSON: {e}", path.display())))?;
    Ok(HfConfig::token_ids(&value.get("eos_token_id").cloned()))
}

fn resolve_precision(
    options: &LoadOptions<'_>,
    info: &ModelInfo,
    device: &Device,
) -> Result<Precision> {
    let precision = Precision::resolve(
        options.dtype,
        info.source_kind(),
        info.largest_matrix_type(),
        device,
    )?;
    Ok(match options.compute {
        Some(compute) => precision.with_compute(compute),
        None => precision,
    })
}

/// A GGUF's chat template, with its BOS and EOS token texts.
fn gguf_chat_template(file: &GgufFile) -> Option<ChatTemplate> {
    let src = file.meta("tokenizer.chat_template")?.as_str()?;
    let tok_text = |key: &str| {
        file.meta(key)
            .and_then(|v| v.as_u64())
            .and_then(|id| {
                file.meta("tokenizer.ggml.tokens")?
                    .as_array()?
                    .get(usize::try_from(id).ok()?)?
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default()
    };
    Some(ChatTemplate::new(
        src.to_string(),
        tok_text("tokenizer.ggml.bos_token_id"),
        tok_text("tokenizer.ggml.eos_token_id"),
    ))
}

/// What `generate` and `eval` will use of a checkpoint's text side, built and tried now
/// (`probe inspect`): presence alone says nothing about a tokenizer without merges or with an
/// unknown pre-tokenizer, or a template that does not render.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TextSide {
    /// The tokenizer's vocabulary size, or why it cannot be built or used.
    pub tokenizer: std::result::Result<usize, String>,
    /// A sentence that does not decode back to itself (a warning, not an error: some
    /// normalizers change text on purpose).
    pub round_trip: Option<String>,
    /// `None` without a template; else whether a one-message conversation renders.
    pub chat_template: Option<std::result::Result<(), String>>,
}

/// Builds the tokenizer (`tokenizer` overrides the checkpoint's, as `--tokenizer` does) and
/// the chat template of a checkpoint, and tries both.
pub fn check_text_side(path: &Path, tokenizer: Option<&Path>) -> Result<TextSide> {
    const SENTENCE: &str = "Hallo Welt! Wie wählst du, 45 Jahre alt?";
    let source = open_source(path)?;
    let built = match (tokenizer, &source) {
        (Some(p), _) => Tokenizer::from_file(p),
        (None, Source::Gguf(file)) => Tokenizer::from_gguf(file),
        (None, Source::Hf { dir, .. }) => Tokenizer::from_file(&dir.join("tokenizer.json")),
    };
    let mut round_trip = None;
    let tokenizer = built
        .and_then(|t| {
            let ids = t.encode(SENTENCE)?;
            let back = t.decode(&ids, true)?;
            if back.trim() != SENTENCE {
                round_trip = Some(format!("{SENTENCE:?} decodes back as {back:?}"));
            }
            Ok(t.vocab_size())
        })
        .map_err(|e| e.to_string());
    let template = match &source {
        Source::Gguf(file) => gguf_chat_template(file),
        Source::Hf { dir, .. } => hf_chat_template(dir).map(|(t, b, e)| ChatTemplate::new(t, b, e)),
    };
    let chat_template = template.map(|t| {
        t.render(&[crate::chat::Message::new("user", "Hallo")], true)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    Ok(TextSide {
        tokenizer,
        round_trip,
        chat_template,
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_config_eos_ids_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("probe-genconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(generation_config_eos(&dir).unwrap().is_empty());
        let path = dir.join("generation_config.json");
        std::fs::write(&path, r#"{"bos_token_id": 2, "eos_token_id": [1, 107]}"#).unwrap();
        assert_eq!(generation_config_eos(&dir).unwrap(), vec![1, 107]);
        std::fs::write(&path, "{ not json").unwrap();
        let err = generation_config_eos(&dir).unwrap_err().to_string();
        assert!(err.contains("generation_config.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
