//! The scale artifact: per-row factors and distributions (`rows.csv`, `rows.jsonl`), ψ in
//! every scope (`psi.json`, `psi.csv`) and as `compare` cells (`psi.cells.jsonl`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use probe_data::personas::PersonaTemplate;
use probe_latent::scale::{row_distributions, Distribution};
use probe_latent::{NegativePolicy, ScaleRow, Summary};
pub use probe_schema::psi::{LanguagePsi, PolicySensitivity, RowRecord, ScaleRun};

use crate::vectors::csv_field;

/// The rows of a finished `scale` directory (`rows.jsonl`).
pub fn load_rows(dir: &Path) -> Result<Vec<RowRecord>> {
    let path = dir.join("rows.jsonl");
    if !path.is_file() {
        anyhow::bail!("{} is missing (run `probe scale` first)", path.display());
    }
    Ok(probe_schema::read_jsonl(&path)?)
}

/// ψ under every negative-factor policy per party, and ψ per prompt language (German and
/// English prompts are not pooled silently), for `psi.json`'s `run`.
pub fn sensitivity_and_languages(
    parties: &[String],
    templates: &[PersonaTemplate],
    rows: &[ScaleRow],
    policy: NegativePolicy,
) -> (
    BTreeMap<String, PolicySensitivity>,
    BTreeMap<String, LanguagePsi>,
) {
    let sensitivity = probe_latent::scale::policy_sensitivity(rows);
    // ψ per language of the prompt variants (German and English prompts are not pooled
    // silently): variant → language, then the rows of each language.
    let language_of: std::collections::HashMap<&str, &str> = templates
        .iter()
        .map(|t| (t.id.as_str(), t.language.as_str()))
        .collect();
    let mut languages: Vec<&str> = templates.iter().map(|t| t.language.as_str()).collect();
    languages.sort_unstable();
    languages.dedup();
    let by_language = languages
        .iter()
        .map(|&lang| {
            let keep = |r: &ScaleRow| language_of.get(r.variant.as_str()) == Some(&lang);
            let psi = probe_latent::scale::psi_over(rows, policy, keep);
            let n = rows.iter().filter(|r| keep(r)).count();
            let psi = psi.map(|d| parties.iter().cloned().zip(d).collect());
            (lang.to_string(), LanguagePsi { rows: n, psi })
        })
        .collect();
    let policy_sensitivity = parties
        .iter()
        .enumerate()
        .map(|(p, party)| {
            let psi = sensitivity
                .psi
                .iter()
                .map(|(policy, d)| (policy.name().to_string(), d.as_ref().map(|d| d[p])))
                .collect();
            let entry = PolicySensitivity {
                negative_share: sensitivity.negative_share[p],
                psi,
            };
            (party.clone(), entry)
        })
        .collect();
    (policy_sensitivity, by_language)
}

pub fn write_rows(
    out: &Path,
    parties: &[String],
    rows: &[ScaleRow],
    policy: NegativePolicy,
) -> Result<()> {
    let factors: Vec<Vec<f64>> = rows.iter().map(|r| r.factors.clone()).collect();
    let dists = row_distributions(&factors, policy);
    let mut csv = String::from("persona,variant");
    if let Some(first) = rows.first() {
        for (a, _) in &first.values {
            csv.push(',');
            csv.push_str(&csv_field(a));
        }
    }
    csv.push_str(",weight");
    for p in parties {
        csv.push_str(&format!(",m:{}", csv_field(p)));
    }
    for p in parties {
        csv.push_str(&format!(",p:{}", csv_field(p)));
    }
    csv.push('\n');
    let mut jsonl = String::new();
    for (r, (adjusted, dist)) in rows.iter().zip(&dists) {
        csv.push_str(&csv_field(&r.persona));
        csv.push(',');
        csv.push_str(&csv_field(&r.variant));
        for (_, v) in &r.values {
            csv.push(',');
            csv.push_str(&csv_field(v));
        }
        csv.push_str(&format!(",{}", r.weight));
        for m in &r.factors {
            csv.push_str(&format!(",{m:.6e}"));
        }
        for p in 0..parties.len() {
            match dist {
                Some(d) => csv.push_str(&format!(",{:.6}", d[p])),
                None => csv.push(','),
            }
        }
        csv.push('\n');
        let line = RowRecord {
            attributes: r.values.iter().cloned().collect(),
            distribution: dist
                .as_ref()
                .map(|d| parties.iter().cloned().zip(d.iter().copied()).collect()),
            factors: parties
                .iter()
                .cloned()
                .zip(r.factors.iter().copied())
                .collect(),
            adjusted: Some(
                parties
                    .iter()
                    .cloned()
                    .zip(adjusted.iter().copied())
                    .collect(),
            ),
            persona: r.persona.clone(),
            variant: r.variant.clone(),
            weight: r.weight,
        };
        jsonl.push_str(&serde_json::to_string(&line)?);
        jsonl.push('\n');
    }
    probe_cache::write_atomic(&out.join("rows.csv"), csv.as_bytes())?;
    probe_cache::write_atomic(&out.join("rows.jsonl"), jsonl.as_bytes())?;
    Ok(())
}

/// Every scope of ψ as (variant, attribute, value, distribution), `all` for the pooled ones,
/// in psi.csv's order: everyone, each group, then the same per variant.
pub fn scopes(summary: &Summary) -> Vec<(&str, &str, &str, &Distribution)> {
    let mut out = vec![("all", "all", "all", &summary.all)];
    for (attr, values) in &summary.by_group.0 {
        for (value, d) in &values.0 {
            out.push(("all", attr.as_str(), value.as_str(), d));
        }
    }
    for (variant, v) in &summary.by_variant.0 {
        out.push((variant.as_str(), "all", "all", &v.all));
        for (attr, values) in &v.by_group.0 {
            for (value, d) in &values.0 {
                out.push((variant.as_str(), attr.as_str(), value.as_str(), d));
            }
        }
    }
    out
}

/// Writes `psi.json` (the summary with its `run`), `psi.csv` and `psi.cells.jsonl`.
pub fn write_summary(out: &Path, summary: &Summary) -> Result<()> {
    // the report's rules (shares in [0, 1] summing to 1, counts, k ≥ 1, a run recorded) hold
    // before anything is written; psi.json, what the report reads, comes last
    let psi_path = out.join("psi.json");
    probe_report::report::validate::psi(summary, &psi_path)?;
    // Long format: one line per (scope, variant, attribute, value, party); and the same
    // distributions as `probe compare` cells (method=latent), one per scope.
    let mut csv = String::from("variant,attribute,value,party,psi,rows,weight\n");
    let mut cells = String::new();
    let mut push = |variant: &str, attr: &str, value: &str, d: &Distribution| {
        if let Some(psi) = &d.psi {
            let cell = probe_data::cells::Cell {
                labels: [
                    ("method", "latent"),
                    ("variant", variant),
                    ("attribute", attr),
                    ("value", value),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                options: psi.0.iter().map(|(p, _)| p.clone()).collect(),
                predicted: Some(psi.0.iter().map(|(_, x)| *x).collect()),
                reference: None,
                weight: Some(d.weight),
                ordinal: None,
                origin: None,
            };
            cells.push_str(&cell.to_json().to_string());
            cells.push('\n');
            for (party, x) in &psi.0 {
                csv.push_str(&format!(
                    "{},{},{},{},{x:.6},{},{}\n",
                    csv_field(variant),
                    csv_field(attr),
                    csv_field(value),
                    csv_field(party),
                    d.rows,
                    d.weight
                ));
            }
        }
    };
    for (variant, attr, value, d) in scopes(summary) {
        push(variant, attr, value, d);
    }
    probe_cache::write_atomic(&out.join("psi.csv"), csv.as_bytes())?;
    probe_cache::write_atomic(&out.join("psi.cells.jsonl"), cells.as_bytes())?;
    probe_schema::write(&psi_path, summary)?;
    Ok(())
}
