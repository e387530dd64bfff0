//! Probe artifacts: `probes.safetensors` (weights, biases, scalers, activation-space
//! directions) and `probes.json` (what was trained on what, and how well). The JSON is written
//! last, so a directory without it is an unfinished run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::fit::Scaler;
use crate::{Probe, ProbesJson, Result, TrainError, TrainedProbes};

pub const PROBES_FILE: &str = "probes.safetensors";
pub const REPORT_FILE: &str = "probes.json";

/// Provenance stored next to the probes.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub model: String,
    pub adapter: Option<String>,
    pub model_hash: String,
    pub cache: String,
    pub positions: String,
    pub data_sha256: String,
}

fn layout() -> BTreeMap<String, String> {
    let doc = [
        (
            "per_layer.weight",
            "[parties, hooks, dim] weights on standardized features",
        ),
        ("per_layer.bias", "[parties, hooks]"),
        ("per_layer.scaler_mean", "[hooks, dim]"),
        ("per_layer.scaler_std", "[hooks, dim]"),
        (
            "per_layer.direction",
            "[parties, hooks, dim] weight / std: the probe in activation space",
        ),
        (
            "per_layer.raw_bias",
            "[parties, hooks] bias for raw activations: direction·x + raw_bias",
        ),
        ("shared.weight", "[parties, dim]"),
        ("shared.bias", "[parties]"),
        ("shared.scaler_mean", "[dim]"),
        ("shared.scaler_std", "[dim]"),
        ("shared.direction", "[parties, dim]"),
        ("shared.raw_bias", "[parties]"),
        (
            "null.shared.direction",
            "[seeds, parties, dim] directions of shared probes trained on labels shuffled within statements (the chance level)",
        ),
    ];
    doc.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Writes the probes into `dir` (created if needed); both files atomically, JSON last.
pub fn save(dir: &Path, probes: &TrainedProbes, provenance: &Provenance) -> Result<()> {
    let err = |path: &Path, reason: String| TrainError::Artifact {
        path: path.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut add = |name: &str, shape: Vec<usize>, values: Vec<f64>| {
        tensors.push((
            name.into(),
            shape,
            values.into_iter().map(|v| v as f32).collect(),
        ));
    };
    let n_parties = probes.report.parties.len();
    if !probes.per_layer.is_empty() && !probes.per_layer[0].is_empty() {
        let n_hooks = probes.per_layer[0].len();
        let dim = probes.per_layer[0][0].weight.len();
        let all = || probes.per_layer.iter().flatten();
        add(
            "per_layer.weight",
            vec![n_parties, n_hooks, dim],
            all().flat_map(|p| p.weight.clone()).collect(),
        );
        add(
            "per_layer.bias",
            vec![n_parties, n_hooks],
            all().map(|p| p.bias).collect(),
        );
        add(
            "per_layer.direction",
            vec![n_parties, n_hooks, dim],
            all().flat_map(|p| p.direction()).collect(),
        );
        add(
            "per_layer.raw_bias",
            vec![n_parties, n_hooks],
            all().map(|p| p.raw_bias()).collect(),
        );
        let first = &probes.per_layer[0];
        add(
            "per_layer.scaler_mean",
            vec![n_hooks, dim],
            first.iter().flat_map(|p| p.scaler.mean.clone()).collect(),
        );
        add(
            "per_layer.scaler_std",
            vec![n_hooks, dim],
            first.iter().flat_map(|p| p.scaler.std.clone()).collect(),
        );
    }
    if let Some(first) = probes.shared.first() {
        let dim = first.weight.len();
        let all = || probes.shared.iter();
        add(
            "shared.weight",
            vec![n_parties, dim],
            all().flat_map(|p| p.weight.clone()).collect(),
        );
        add(
            "shared.bias",
            vec![n_parties],
            all().map(|p| p.bias).collect(),
        );
        add(
            "shared.direction",
            vec![n_parties, dim],
            all().flat_map(|p| p.direction()).collect(),
        );
        add(
            "shared.raw_bias",
            vec![n_parties],
            all().map(|p| p.raw_bias()).collect(),
        );
        if let Some(seed0) = probes.null_directions.first() {
            add(
                "null.shared.direction",
                vec![probes.null_directions.len(), seed0.len(), dim],
                probes
                    .null_directions
                    .iter()
                    .flatten()
                    .flatten()
                    .copied()
                    .collect(),
            );
        }
        add("shared.scaler_mean", vec![dim], first.scaler.mean.clone());
        add("shared.scaler_std", vec![dim], first.scaler.std.clone());
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| err(dir, e.to_string()))
        })
        .collect::<Result<_>>()?;
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("parties".to_string(), probes.report.parties.join("\t"));
    metadata.insert("hooks".to_string(), probes.report.hooks.join("\t"));
    let st_path = dir.join(PROBES_FILE);
    let st = probe_cache::canonical_safetensors(
        safetensors::serialize(views, Some(metadata)).map_err(|e| err(&st_path, e.to_string()))?,
    );
    probe_cache::write_atomic(&st_path, &st)?;
    let json = ProbesJson {
        format_version: <ProbesJson as probe_schema::Artifact>::FORMAT_VERSION,
        model: provenance.model.clone(),
        adapter: provenance.adapter.clone(),
        model_hash: provenance.model_hash.clone(),
        cache: provenance.cache.clone(),
        positions: provenance.positions.clone(),
        data_sha256: provenance.data_sha256.clone(),
        tensors: layout(),
        report: probes.report.clone(),
    };
    probe_schema::write(&dir.join(REPORT_FILE), &json)?;
    Ok(())
}

/// Probes read back from a run directory.
#[derive(Debug, Clone)]
pub struct LoadedProbes {
    pub json: ProbesJson,
    /// `per_layer[party][hook]`; empty when the run trained none.
    pub per_layer: Vec<Vec<Probe>>,
    /// `shared[party]`; empty when the run trained none.
    pub shared: Vec<Probe>,
    /// Label-shuffled shared probes' directions `[seed][party][dim]`; empty when not trained.
    pub null_directions: Vec<Vec<Vec<f64>>>,
}

/// Reads a run directory written by [`save`].
pub fn load(dir: &Path) -> Result<LoadedProbes> {
    let json_path = dir.join(REPORT_FILE);
    let err = |path: &PathBuf, reason: String| TrainError::Artifact {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&json_path).map_err(|e| {
        err(
            &json_path,
            format!("{e} (not a finished `probe train` run?)"),
        )
    })?;
    let json: ProbesJson = probe_schema::from_text(&text, &json_path)?;
    let st_path = dir.join(PROBES_FILE);
    let bytes = std::fs::read(&st_path).map_err(|e| err(&st_path, e.to_string()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| err(&st_path, e.to_string()))?;
    let read = |name: &str, shape: &[usize]| -> Result<Option<Vec<f64>>> {
        let t = match st.tensor(name) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            return Err(err(
                &st_path,
                format!(
                    "{name}: {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        Ok(Some(
            t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
        ))
    };
    let n_parties = json.report.parties.len();
    let n_hooks = json.report.hooks.len();
    let dim = match st
        .tensor("shared.scaler_mean")
        .or_else(|_| st.tensor("per_layer.scaler_mean"))
    {
        Ok(t) => *t.shape().last().unwrap_or(&0),
        Err(_) => return Err(err(&st_path, "no probes in the file".into())),
    };
    let missing = |name: &str| err(&st_path, format!("missing tensor {name}"));
    let mut per_layer = Vec::new();
    if let Some(w) = read("per_layer.weight", &[n_parties, n_hooks, dim])? {
        let b = read("per_layer.bias", &[n_parties, n_hooks])?
            .ok_or_else(|| missing("per_layer.bias"))?;
        let m = read("per_layer.scaler_mean", &[n_hooks, dim])?
            .ok_or_else(|| missing("per_layer.scaler_mean"))?;
        let s = read("per_layer.scaler_std", &[n_hooks, dim])?
            .ok_or_else(|| missing("per_layer.scaler_std"))?;
        for p in 0..n_parties {
            per_layer.push(
                (0..n_hooks)
                    .map(|h| Probe {
                        scaler: Scaler {
                            mean: m[h * dim..(h + 1) * dim].to_vec(),
                            std: s[h * dim..(h + 1) * dim].to_vec(),
                        },
                        weight: w[(p * n_hooks + h) * dim..(p * n_hooks + h + 1) * dim].to_vec(),
                        bias: b[p * n_hooks + h],
                    })
                    .collect(),
            );
        }
    }
    let mut shared = Vec::new();
    if let Some(w) = read("shared.weight", &[n_parties, dim])? {
        let b = read("shared.bias", &[n_parties])?.ok_or_else(|| missing("shared.bias"))?;
        let m = read("shared.scaler_mean", &[dim])?.ok_or_else(|| missing("shared.scaler_mean"))?;
        let s = read("shared.scaler_std", &[dim])?.ok_or_else(|| missing("shared.scaler_std"))?;
        for p in 0..n_parties {
            shared.push(Probe {
                scaler: Scaler {
                    mean: m.clone(),
                    std: s.clone(),
                },
                weight: w[p * dim..(p + 1) * dim].to_vec(),
                bias: b[p],
            });
        }
    }
    let seeds = json.report.null.as_ref().map_or(0, |n| n.seeds.len());
    let mut null_directions = Vec::new();
    if seeds > 0 {
        let d = read("null.shared.direction", &[seeds, n_parties, dim])?
            .ok_or_else(|| missing("null.shared.direction"))?;
        null_directions = d
            .chunks_exact(n_parties * dim)
            .map(|s| s.chunks_exact(dim).map(<[f64]>::to_vec).collect())
            .collect();
    }
    Ok(LoadedProbes {
        json,
        per_layer,
        shared,
        null_directions,
    })
}
