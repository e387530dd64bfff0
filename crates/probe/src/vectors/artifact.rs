//! The vectors artifact: `vectors.json` (every selection with the tokens each vector
//! promotes, and the chance tests), `vectors.csv` and `vectors.safetensors` (the cosine table
//! and the probe directions), written atomically.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use probe_latent::{PartyDirection, Selected};
use safetensors::Dtype;
use serde::{Deserialize, Serialize};

use crate::files::write_safetensors;

pub const VECTORS_JSON: &str = "vectors.json";

/// One selected value vector, as written to vectors.json / vectors.csv.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorRow {
    pub party: String,
    pub mode: String,
    pub rank: usize,
    pub layer: usize,
    pub neuron: usize,
    pub cos: f32,
    pub tokens: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorsJson {
    pub format_version: u32,
    pub model: String,
    pub model_hash: String,
    pub hidden_size: usize,
    pub probes: String,
    pub probe: String,
    pub parties: Vec<String>,
    /// Per party: `shared` or the hook of its per-layer probe.
    pub probe_sources: Vec<String>,
    pub layers: Vec<usize>,
    pub neurons: usize,
    pub k: usize,
    pub iqr_c: f64,
    /// Per party: the IQR threshold Q3 + c·IQR of its cosines.
    pub iqr_thresholds: Vec<f64>,
    pub vectors: Vec<VectorRow>,
    /// Per party: is the joint top-k selection above chance? (Absent in older files.)
    #[serde(default)]
    pub chance: Vec<ChanceRow>,
}

/// One party's selection against chance: the mean cosine of its joint top-k vectors, against
/// the same statistic for random directions and for label-shuffled probes' directions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChanceRow {
    pub party: String,
    pub statistic: String,
    pub random: Option<probe_latent::null::ChanceTest>,
    pub shuffled: Option<probe_latent::null::ChanceTest>,
    /// p < 0.05 against every null that was run (`verdict` is `above`).
    pub above_chance: bool,
    /// Above chance, not above, or undetermined where a null was too small for p < 0.05
    /// (older files: read from `above_chance`, a `false` there as undetermined).
    #[serde(default)]
    pub verdict: probe_latent::null::Verdict,
}

impl VectorsJson {
    /// Reads `<dir>/vectors.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(VECTORS_JSON);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (run `probe vectors` on the probes first)",
                path.display()
            )
        })?;
        let mut json: VectorsJson =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        // files written before verdicts: a `true` there was p < 0.05 against every null
        for c in json.chance.iter_mut().filter(|c| c.above_chance) {
            c.verdict = probe_latent::null::Verdict::Above;
        }
        if json.format_version != 1 {
            bail!(
                "{}: format version {} (this probe reads 1)",
                path.display(),
                json.format_version
            );
        }
        Ok(json)
    }

    /// V̂ per party (in `parties` order) for one selection mode.
    pub fn selections(&self, mode: &str) -> Result<Vec<Vec<Selected>>> {
        let mut out = vec![Vec::new(); self.parties.len()];
        for v in self.vectors.iter().filter(|v| v.mode == mode) {
            let p = self
                .parties
                .iter()
                .position(|p| p == &v.party)
                .with_context(|| format!("vectors.json names unknown party `{}`", v.party))?;
            out[p].push(Selected {
                layer: v.layer,
                neuron: v.neuron,
                cos: v.cos,
            });
        }
        Ok(out)
    }
}

/// Writes `vectors.json`, `vectors.csv` and `vectors.safetensors` (with the cosine table
/// `cos` `[party, layer, neuron]` and the probe directions) into `out`.
pub fn save(
    out: &Path,
    json: &VectorsJson,
    cos: &[f32],
    directions: &[PartyDirection],
) -> Result<()> {
    let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let i64_bytes = |v: &[usize]| {
        v.iter()
            .flat_map(|&x| (x as i64).to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let p = json.parties.len();
    let mut entries = vec![
        (
            "cosines".to_string(),
            Dtype::F32,
            vec![p, json.layers.len(), json.neurons],
            f32_bytes(cos),
        ),
        (
            "layers".to_string(),
            Dtype::I64,
            vec![json.layers.len()],
            i64_bytes(&json.layers),
        ),
        (
            "directions".to_string(),
            Dtype::F32,
            vec![p, json.hidden_size],
            f32_bytes(
                &directions
                    .iter()
                    .flat_map(|d| d.direction.iter().copied())
                    .collect::<Vec<_>>(),
            ),
        ),
    ];
    for mode in ["joint", "per-layer", "iqr", "diametric"] {
        let rows: Vec<&VectorRow> = json.vectors.iter().filter(|r| r.mode == mode).collect();
        let party: Vec<usize> = rows
            .iter()
            .map(|r| json.parties.iter().position(|p| p == &r.party).unwrap_or(0))
            .collect();
        let col = |f: &dyn Fn(&VectorRow) -> usize| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
        for (name, values) in [
            ("party", party),
            ("layer", col(&|r| r.layer)),
            ("neuron", col(&|r| r.neuron)),
        ] {
            entries.push((
                format!("{mode}.{name}"),
                Dtype::I64,
                vec![rows.len()],
                i64_bytes(&values),
            ));
        }
        let cos: Vec<f32> = rows.iter().map(|r| r.cos).collect();
        entries.push((
            format!("{mode}.cos"),
            Dtype::F32,
            vec![rows.len()],
            f32_bytes(&cos),
        ));
    }
    let metadata: HashMap<String, String> = [
        ("parties".to_string(), serde_json::to_string(&json.parties)?),
        ("model".to_string(), json.model.clone()),
        ("probe".to_string(), json.probe.clone()),
    ]
    .into_iter()
    .collect();
    write_safetensors(&out.join("vectors.safetensors"), &entries, metadata)?;
    probe_cache::write_atomic(
        &out.join(VECTORS_JSON),
        serde_json::to_string_pretty(json)?.as_bytes(),
    )?;
    let mut csv = String::from("party,mode,rank,layer,neuron,cos,top_tokens\n");
    for r in &json.vectors {
        csv.push_str(&format!(
            "{},{},{},{},{},{:.6},{}\n",
            csv_field(&r.party),
            r.mode,
            r.rank,
            r.layer,
            r.neuron,
            r.cos,
            // Escaped (`\n`, `\t`, …) so that every vector is one line.
            csv_field(
                &r.tokens
                    .iter()
                    .map(|t| t.escape_debug().to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            )
        ));
    }
    probe_cache::write_atomic(&out.join("vectors.csv"), csv.as_bytes())?;
    Ok(())
}

/// Quotes a CSV field when needed (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
