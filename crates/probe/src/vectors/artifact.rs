//! The vectors artifact: `vectors.json` (every selection with the tokens each vector
//! promotes, and the chance tests), `vectors.csv` and `vectors.safetensors` (the cosine table
//! and the probe directions), written atomically.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use probe_latent::{PartyDirection, Selected};
use safetensors::Dtype;

use crate::files::write_safetensors;

pub use probe_schema::vectors::{ChanceRow, VectorRow, VectorsJson};

pub const VECTORS_JSON: &str = "vectors.json";

/// V̂ per party (in `parties` order) for one selection mode of `vectors.json`.
pub fn selections(json: &VectorsJson, mode: &str) -> Result<Vec<Vec<Selected>>> {
    let mut out = vec![Vec::new(); json.parties.len()];
    for v in json.vectors.iter().filter(|v| v.mode == mode) {
        let p = json
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

/// Reads `<dir>/vectors.json`.
pub fn read(dir: &Path) -> Result<VectorsJson> {
    probe_schema::read_in(dir).map_err(|e| match e {
        probe_schema::SchemaError::Io { .. } => {
            anyhow::anyhow!("{e} (run `probe vectors` on the probes first)")
        }
        e => e.into(),
    })
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
