//! LoRA adapters on a [`Transformer`] in PEFT's layout: `adapter_config.json` and
//! `adapter_model.safetensors` with tensors named
//! `base_model.model.model.layers.{l}.self_attn.q_proj.lora_A.weight` (`[r, d_in]`) and
//! `….lora_B.weight` (`[d_out, r]`), so `PeftModel.from_pretrained(base, dir)` loads what
//! `probe finetune` writes and probe loads PEFT's LoRA adapters.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Param;
use burn::tensor::{DType, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layers::linear::Linear;
use crate::layers::lora::Lora;
use crate::transformer::Transformer;

/// The projections LoRA may adapt (PEFT's `target_modules` names).
pub const TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// The most a LoRA rank may be (it is read from files before allocating).
pub const MAX_RANK: usize = 4096;

/// PEFT's `LoraConfig` as `adapter_config.json` holds it: the fields probe uses, the others
/// kept as they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    pub r: usize,
    pub lora_alpha: f64,
    #[serde(default)]
    pub lora_dropout: f64,
    pub target_modules: Vec<String>,
    #[serde(default = "lora")]
    pub peft_type: String,
    #[serde(default)]
    pub task_type: Option<String>,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default = "none")]
    pub bias: String,
    #[serde(default)]
    pub fan_in_fan_out: bool,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default)]
    pub use_dora: bool,
    #[serde(default)]
    pub inference_mode: bool,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

fn lora() -> String {
    "LORA".into()
}

fn none() -> String {
    "none".into()
}

impl AdapterConfig {
    pub fn new(r: usize, lora_alpha: f64, lora_dropout: f64, target_modules: Vec<String>) -> Self {
        AdapterConfig {
            r,
            lora_alpha,
            lora_dropout,
            target_modules,
            peft_type: lora(),
            task_type: Some("CAUSAL_LM".into()),
            base_model_name_or_path: None,
            bias: none(),
            fan_in_fan_out: false,
            use_rslora: false,
            use_dora: false,
            inference_mode: true,
            other: BTreeMap::new(),
        }
    }

    /// `alpha / r` (`alpha / √r` under rsLoRA), as PEFT scales.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }

    /// Refuses what probe does not implement rather than computing something else.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Input(format!("adapter config: {m}")));
        if self.peft_type != "LORA" {
            return bad(format!("peft_type {} (only LORA)", self.peft_type));
        }
        if self.r == 0 || self.r > MAX_RANK {
            return bad(format!("rank r = {} must lie in 1..={MAX_RANK}", self.r));
        }
        if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
            return bad(format!("lora_alpha {} must be > 0", self.lora_alpha));
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return bad(format!(
                "lora_dropout {} must lie in [0, 1)",
                self.lora_dropout
            ));
        }
        if self.target_modules.is_empty() {
            return bad("no target_modules".into());
        }
        if let Some(t) = self
            .target_modules
            .iter()
            .find(|t| !TARGETS.contains(&t.as_str()))
        {
            return bad(format!(
                "target module {t}: probe adapts {}",
                TARGETS.join(", ")
            ));
        }
        if self.bias != "none" || self.fan_in_fan_out || self.use_dora {
            return bad("bias training, fan_in_fan_out and DoRA are not supported".into());
        }
        if let Some(key) = ["layers_to_transform", "rank_pattern", "alpha_pattern"]
            .iter()
            .find(|k| {
                self.other
                    .get(**k)
                    .is_some_and(|v| !v.is_null() && v != &serde_json::json!({}))
            })
        {
            return bad(format!("{key} is not supported"));
        }
        Ok(())
    }
}

/// Adapter tensors by PEFT name: shape and f32 values (PEFT's layout).
pub type AdapterTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// PEFT's name of a projection's tensor: `base_model.model.{module}.lora_A.weight`.
pub fn peft_name(module: &str, which: char) -> String {
    format!("base_model.model.{module}.lora_{which}.weight")
}

impl Transformer {
    /// Every adaptable projection as (HF module name, layer), blocks in order.
    pub fn projections_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut out = Vec::new();
        for (l, block) in self.layers.iter_mut().enumerate() {
            let a = &mut block.self_attn;
            let m = &mut block.mlp;
            for (name, linear) in [
                ("self_attn.q_proj", &mut a.q_proj),
                ("self_attn.k_proj", &mut a.k_proj),
                ("self_attn.v_proj", &mut a.v_proj),
                ("self_attn.o_proj", &mut a.o_proj),
                ("mlp.gate_proj", &mut m.gate_proj),
                ("mlp.up_proj", &mut m.up_proj),
                ("mlp.down_proj", &mut m.down_proj),
            ] {
                out.push((format!("model.layers.{l}.{name}"), linear));
            }
        }
        out
    }

    /// Adds fresh adapters as PEFT initializes them: `A` Kaiming-uniform (bound 1/√d_in, from
    /// a seeded RNG), `B` zero, so the model computes exactly what it computed before.
    pub fn add_lora(&mut self, config: &AdapterConfig, seed: u64) -> Result<()> {
        config.check()?;
        let device = self.device();
        let (r, scale, dropout) = (config.r, config.scale(), config.lora_dropout);
        let mut rng = probe_util::SplitMix64::from_state(seed ^ 0x5DEE_CE66_D1CE_4E5B);
        for (name, linear) in self.projections_mut() {
            if !targeted(config, &name) {
                continue;
            }
            let (d_in, d_out) = linear.dims();
            let bound = 1.0 / (d_in as f64).sqrt();
            let a: Vec<f32> = (0..d_in * r)
                .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
                .collect();
            linear.lora = Some(Lora {
                a: Param::from_tensor(host(a, [d_in, r], &device)),
                b: Param::from_tensor(host(vec![0.0; r * d_out], [r, d_out], &device)),
                scale,
                dropout,
            });
        }
        Ok(())
    }

    /// Reads a PEFT LoRA adapter folder and attaches its adapters (applied on the fly).
    pub fn load_adapter(&mut self, dir: &Path) -> Result<AdapterConfig> {
        let config_path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let config: AdapterConfig = serde_json::from_str(&text).map_err(|e| {
            Error::Input(format!(
                "{}: not a PEFT LoRA config: {e}",
                config_path.display()
            ))
        })?;
        config.check()?;
        let path = dir.join("adapter_model.safetensors");
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        // the safetensors crate's messages do not name the tensor; the checkpoint reader's do
        let file =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::Safetensors {
                path: path.clone(),
                reason: crate::weights::safetensors::header_problem(&bytes)
                    .unwrap_or_else(|| e.to_string()),
            })?;
        // every tensor names a LoRA matrix of a projection this model has, in a layer it has
        let total_layers = self.config.num_layers;
        for name in file.names() {
            let module = name.strip_prefix("base_model.model.").and_then(|n| {
                n.strip_suffix(".lora_A.weight")
                    .or_else(|| n.strip_suffix(".lora_B.weight"))
            });
            let known = module.is_some_and(|m| {
                m.strip_prefix("model.layers.")
                    .and_then(|rest| rest.split_once('.'))
                    .is_some_and(|(l, proj)| {
                        l.parse::<usize>().is_ok()
                            && ["self_attn.", "mlp."]
                                .iter()
                                .any(|p| proj.strip_prefix(p).is_some_and(|t| TARGETS.contains(&t)))
                    })
            });
            if !known {
                return Err(Error::Input(format!(
                    "{}: tensor `{name}` is not a LoRA matrix of a projection (base_model.model.model.layers.<l>.<self_attn|mlp>.<proj>.lora_<A|B>.weight)",
                    path.display()
                )));
            }
            if let Some(l) = layer_of(name).filter(|&l| l >= total_layers) {
                return Err(Error::Input(format!(
                    "{}: tensor `{name}` is for layer {l}, but the model has {total_layers} layers (0–{}): the adapter was trained on another model",
                    path.display(),
                    total_layers.saturating_sub(1)
                )));
            }
            if let Some(t) = module.and_then(|m| m.rsplit('.').next()) {
                if !targeted(&config, &format!(".{t}")) {
                    return Err(Error::Input(format!(
                        "{}: tensor `{name}` adapts `{t}`, which adapter_config.json's target_modules ({}) does not list",
                        path.display(),
                        config.target_modules.join(", ")
                    )));
                }
            }
        }
        let device = self.device();
        let (scale, dropout, r) = (config.scale(), config.lora_dropout, config.r);
        let mut used = 0usize;
        for (name, linear) in self.projections_mut() {
            if !targeted(&config, &name) {
                continue;
            }
            let (d_in, d_out) = linear.dims();
            let read = |which: char, shape: [usize; 2]| -> Result<Vec<f32>> {
                let key = peft_name(&name, which);
                let view = file.tensor(&key).map_err(|_| Error::MissingTensor {
                    name: key.clone(),
                    source_desc: format!("{} (is the adapter for another model?)", path.display()),
                })?;
                if view.shape() != shape {
                    return Err(Error::Input(format!(
                        "{}: `{key}` is {:?}, this model needs {shape:?}: the adapter was trained on another model",
                        path.display(),
                        view.shape()
                    )));
                }
                let values = to_f32(view.dtype(), view.data(), &key)?;
                // a NaN or infinity in an adapter makes every output of its layer garbage
                if let Some(i) = values.iter().position(|x| !x.is_finite()) {
                    return Err(Error::Input(format!(
                        "{}: tensor `{key}` holds {} at index {i}: an adapter's values must be finite",
                        path.display(),
                        values[i]
                    )));
                }
                Ok(values)
            };
            // PEFT: A `[r, d_in]`, B `[d_out, r]`; burn multiplies by their transposes
            let a = transpose(&read('A', [r, d_in])?, r, d_in);
            let b = transpose(&read('B', [d_out, r])?, d_out, r);
            linear.lora = Some(Lora {
                a: Param::from_tensor(host(a, [d_in, r], &device)),
                b: Param::from_tensor(host(b, [r, d_out], &device)),
                scale,
                dropout,
            });
            used += 2;
        }
        // tensors of blocks a hooks-only load left out are not needed
        let loaded = self.layers.len();
        let stored = file
            .names()
            .iter()
            .filter(|n| layer_of(n).is_none_or(|l| l < loaded))
            .count();
        if used != stored {
            return Err(Error::Input(format!(
                "{}: {stored} tensors, {used} match this model's {} blocks: the adapter was trained on another model",
                path.display(),
                self.layers.len()
            )));
        }
        Ok(config)
    }

    /// The adapters' `A` and `B` in PEFT's layout, by PEFT tensor name.
    pub fn adapter_tensors(&mut self) -> Result<AdapterTensors> {
        let mut out = BTreeMap::new();
        for (name, linear) in self.projections_mut() {
            let Some(lora) = &linear.lora else { continue };
            let (d_in, d_out) = linear.dims();
            let r = lora.rank();
            let a = read_f32(lora.a.val())?;
            let b = read_f32(lora.b.val())?;
            out.insert(
                peft_name(&name, 'A'),
                (vec![r, d_in], transpose(&a, d_in, r)),
            );
            out.insert(
                peft_name(&name, 'B'),
                (vec![d_out, r], transpose(&b, r, d_out)),
            );
        }
        Ok(out)
    }

    /// Prepares every projection's frozen weight for training on Flex
    /// ([`Linear::prepare_frozen`]).
    pub fn prepare_training(&mut self) {
        for (_, linear) in self.projections_mut() {
            linear.prepare_frozen();
        }
    }

    /// Folds every adapter into its weight (`W + s·A B`); see [`Linear::merge_lora`].
    pub fn merge_adapters(&mut self) -> Result<()> {
        for (name, linear) in self.projections_mut() {
            linear
                .merge_lora()
                .map_err(|e| Error::Input(format!("merging the adapter of {name}: {e}")))?;
        }
        Ok(())
    }
}

/// Writes an adapter folder in PEFT's layout (files replaced atomically).
pub fn save_adapter(dir: &Path, config: &AdapterConfig, tensors: &AdapterTensors) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, (shape, v))| {
            (
                k.clone(),
                shape.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(k, shape, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| Error::Input(format!("adapter tensor {k}: {e}")))
        })
        .collect::<Result<_>>()?;
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let data = safetensors::serialize(views, Some(meta)).map_err(|e| Error::Safetensors {
        path: dir.join("adapter_model.safetensors"),
        reason: e.to_string(),
    })?;
    write_atomic(&dir.join("adapter_model.safetensors"), &data)?;
    let json = serde_json::to_string_pretty(config)
        .map_err(|e| Error::Input(format!("adapter config: {e}")))?;
    write_atomic(&dir.join("adapter_config.json"), json.as_bytes())
}

/// The shared atomic write (a temporary name beside `path`, removed on any error).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    probe_util::write_atomic(path, bytes)
        .map_err(|e| Error::Input(format!("writing {}: {e}", path.display())))
}

/// The block a PEFT tensor name belongs to (`….layers.{l}.…`).
fn layer_of(name: &str) -> Option<usize> {
    let rest = name.split(".layers.").nth(1)?;
    rest.split('.').next()?.parse().ok()
}

fn targeted(config: &AdapterConfig, module: &str) -> bool {
    let leaf = module.rsplit('.').next().unwrap_or(module);
    config.target_modules.iter().any(|t| t == leaf)
}

pub(crate) fn host(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn read_f32(t: Tensor<2>) -> Result<Vec<f32>> {
    t.cast(DType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Input(format!("reading an adapter tensor: {e:?}")))
}

fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

fn to_f32(dtype: safetensors::Dtype, data: &[u8], name: &str) -> Result<Vec<f32>> {
    use safetensors::Dtype as D;
    Ok(match dtype {
        D::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        D::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        D::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => {
            return Err(Error::UnsupportedDtype {
                tensor: name.to_string(),
                dtype: format!("{other:?}"),
                supported: "F32, F16, BF16",
            })
        }
    })
}
