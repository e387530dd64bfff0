//! Reading run directories: `probes.json`, `scale-*/psi.json` and `rows.jsonl`, `eval-*/` cells
//! and summaries, `vectors/vectors.json`; and cells files into series.

use probe_metrics::permutation::{Verdict, ALPHA};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use probe_schema::eval::EvalSummary;
use probe_schema::probes::ProbesJson;
use probe_schema::psi::{Distribution, RowRecord, ScaleRun, Summary};
use probe_schema::simulation::SimulationScores;
use probe_schema::vectors::{ChanceTest, VectorsJson};
use probe_schema::Artifact;

use super::*;

fn read_eval_tally(dir: &Path) -> Result<Vec<EvalTally>> {
    let path = dir.join(EvalSummary::FILE);
    if !path.is_file() {
        return Ok(vec![]);
    }
    let summary: EvalSummary = probe_schema::read(&path)?;
    let eval = dir
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("eval")
        .to_string();
    summary
        .by_setting
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if let Some(r) = v.parse_failure_rate.filter(|r| !(0.0..=1.0).contains(r)) {
                return Err(input_err(
                    &path,
                    format!("by_setting[{i}].parse_failure_rate is {r}, not a rate in [0, 1]"),
                ));
            }
            Ok(EvalTally {
                eval: eval.clone(),
                method: v.method,
                steering: v.steering,
                units: v.units as u64,
                failed_units: v.failed_units as u64,
                parse_failures: v.parse_failures as u64,
                parse_failure_rate: v.parse_failure_rate,
            })
        })
        .collect()
}

/// One party's results beside their chance levels.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChanceEntry {
    pub party: String,
    /// Observed shared-probe balanced accuracy, and the shuffled runs' mean and sd.
    pub accuracy: Option<(f64, f64, f64)>,
    /// The accuracy's permutation test: its verdict at α = 0.05, described (with the smallest
    /// p its seeds allow when they are too few to decide).
    pub accuracy_verdict: Option<String>,
    /// Selection statistic (mean top-k cosine) and z / p against random directions.
    pub selection: Option<f64>,
    pub random: Option<(f64, f64)>,
    /// z / p against label-shuffled probes' directions.
    pub shuffled: Option<(f64, f64)>,
    pub above_chance: Option<bool>,
    /// The selection's verdict over both nulls, described ("above chance", "not above
    /// chance", "undetermined (p ≥ 1/(n+1) = …)").
    pub verdict: Option<String>,
    /// The verdict itself, for counting.
    #[serde(skip)]
    pub verdict_kind: Option<Verdict>,
}

/// Chance levels of a run (see [`ChanceEntry`]); empty when neither file has them.
fn read_chance(dir: &Path, probes: Option<&ProbesJson>) -> Result<Vec<ChanceEntry>> {
    let mut out: Vec<ChanceEntry> = Vec::new();
    let entry = |out: &mut Vec<ChanceEntry>, party: &str| -> usize {
        match out.iter().position(|e| e.party == party) {
            Some(i) => i,
            None => {
                out.push(ChanceEntry {
                    party: party.to_string(),
                    accuracy: None,
                    accuracy_verdict: None,
                    selection: None,
                    random: None,
                    shuffled: None,
                    above_chance: None,
                    verdict: None,
                    verdict_kind: None,
                });
                out.len() - 1
            }
        }
    };
    if let Some((null, parties)) =
        probes.and_then(|p| Some((p.report.null.as_ref()?, &p.report.parties)))
    {
        let seeds = null.seeds.len();
        for (i, party) in parties.iter().enumerate() {
            let at = |v: &[f64]| v.get(i).copied();
            if let (Some(o), Some(m), Some(s)) = (at(&null.observed), at(&null.mean), at(&null.sd))
            {
                let e = entry(&mut out, party);
                out[e].accuracy = Some((o, m, s));
                if let Some(p) = at(&null.p_value) {
                    out[e].accuracy_verdict = Some(Verdict::of(p, seeds, ALPHA).describe(seeds));
                }
            }
        }
    }
    let vectors = dir.join("vectors").join(VectorsJson::FILE);
    if vectors.is_file() {
        let json: VectorsJson = probe_schema::read(&vectors)?;
        super::validate::vectors(&json, &vectors)?;
        for c in &json.chance {
            let e = entry(&mut out, &c.party);
            let zp = |t: &Option<ChanceTest>| t.as_ref().map(|t| (t.z, t.p));
            out[e].selection = c
                .random
                .as_ref()
                .or(c.shuffled.as_ref())
                .map(|t| t.observed);
            out[e].random = zp(&c.random);
            out[e].shuffled = zp(&c.shuffled);
            out[e].above_chance = Some(c.above_chance);
            let smallest = [&c.random, &c.shuffled]
                .into_iter()
                .flatten()
                .map(|t| t.n)
                .min()
                .unwrap_or(0);
            // the verdict as written (files of older versions: upgraded on reading)
            out[e].verdict = Some(c.verdict.describe(smallest));
            out[e].verdict_kind = Some(c.verdict);
        }
    }
    Ok(out)
}

pub(super) fn scope_of(cell: &Cell) -> (String, String) {
    (
        cell.labels
            .get("attribute")
            .cloned()
            .unwrap_or_else(|| "all".into()),
        cell.labels
            .get("value")
            .cloned()
            .unwrap_or_else(|| "all".into()),
    )
}

fn layer_of(hook: &str) -> Option<usize> {
    hook.strip_prefix("blocks.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

fn read_probe_curves(path: &Path, json: &ProbesJson, run: &str) -> Result<ProbeCurves> {
    super::validate::probes(json, path)?;
    let report = &json.report;
    let mut curves = ProbeCurves {
        run: run.to_string(),
        prompts: report.folds.len(),
        folds: report.params.folds,
        layers: vec![],
        per_layer: vec![],
        shared: vec![],
    };
    for entry in &report.summary {
        let Some(layer) = layer_of(&entry.hook) else {
            continue; // the pooled `all` entry of the shared probe
        };
        curves.layers.push(layer);
        curves
            .per_layer
            .push(entry.per_layer.map(|s| s.balanced_accuracy));
        curves
            .shared
            .push(entry.shared.map(|s| s.balanced_accuracy));
    }
    if curves.layers.is_empty() {
        return Err(input_err(path, "`report.summary` lists no layer"));
    }
    Ok(curves)
}

/// The model's name for a run: the checkpoint named in `probes.json`, else the directory
/// above the run (`probes/<model>/<run>`).
/// The model's name (its file stem or folder), `+<adapter>` when it ran with a LoRA adapter.
fn model_name(dir: &Path, probes: Option<&ProbesJson>) -> String {
    let base = base_model_name(dir, probes);
    match probes.and_then(|p| p.adapter.as_deref()) {
        Some(adapter) => format!("{base}+{adapter}"),
        None => base,
    }
}

fn base_model_name(dir: &Path, probes: Option<&ProbesJson>) -> String {
    probes
        .map(|p| p.model.as_str())
        .map(|m| {
            let p = Path::new(m);
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or(m);
            // an HF directory's name is its model (dots included: Llama-3.1-8B); a file's stem is
            if p.extension().is_some() && !p.is_dir() {
                stem.to_string()
            } else {
                p.file_name()
                    .and_then(|s| s.to_str())
                    .unwrap_or(m)
                    .to_string()
            }
        })
        .or_else(|| {
            dir.parent()
                .and_then(|p| p.file_name())
                .and_then(|s| s.to_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "model".into())
}

/// The latent-space study's sensitivity, per group g: x = H_norm(ψ_g), y = mean over prompt
/// variants j of W(ψ_{j,g}, ψ̄_g), ψ̄_g the arithmetic barycenter of the ψ_{j,g}; all ψ as
/// `probe scale` computes them (ratios of sums). Groups lacking a variant are left out.
fn group_sensitivity(
    psi: &Summary,
    options: &[String],
    pooled: &BTreeMap<(String, String), Vec<f64>>,
) -> Result<Vec<(f64, f64)>> {
    let variants = &psi.by_variant.0;
    let mut points = Vec::new();
    if variants.len() < 2 {
        return Ok(points);
    }
    for ((attribute, value), psi_g) in pooled {
        if attribute == "all" {
            continue;
        }
        let per_variant: Option<Vec<Vec<f64>>> = variants
            .iter()
            .map(|(_, v)| shares(v.by_group.get(attribute)?.get(value)?, options))
            .collect();
        let Some(per_variant) = per_variant else {
            continue;
        };
        let bary = arithmetic_barycenter(&per_variant, None)?;
        let w = per_variant
            .iter()
            .map(|d| total_variation(d, &bary))
            .sum::<Result<f64, _>>()?
            / per_variant.len() as f64;
        points.push((normalized_entropy(psi_g)?, w));
    }
    Ok(points)
}

/// A scope's ψ over `options` (the parties, in order); `None` when it has none.
fn shares(d: &Distribution, options: &[String]) -> Option<Vec<f64>> {
    let psi = d.psi.as_ref()?;
    options.iter().map(|p| psi.get(p).copied()).collect()
}

/// Per persona: the variants' distributions → (H_norm of their barycenter, mean TV to it).
fn sensitivity_points(groups: BTreeMap<String, Vec<Vec<f64>>>) -> Result<Vec<(f64, f64)>> {
    let mut points = Vec::new();
    for dists in groups.into_values() {
        if dists.len() < 2 {
            continue;
        }
        let bary = arithmetic_barycenter(&dists, None)?;
        let w: f64 = dists
            .iter()
            .map(|d| total_variation(d, &bary))
            .sum::<Result<f64, _>>()?
            / dists.len() as f64;
        points.push((normalized_entropy(&bary)?, w));
    }
    Ok(points)
}

/// "value vectors of layers 24–27 (joint, k = 20); ψ pools 200 rows: 40 personas × 5 variants
/// (de-stimme, …)", from `psi.json`.
fn latent_provenance(psi: &Summary, run: &ScaleRun) -> String {
    let layers = &run.vector_layers;
    let layers = match (layers.first(), layers.last()) {
        // a contiguous ascending range (checked: a hand-edited file may list them backwards)
        (Some(a), Some(b)) if a != b && b.checked_sub(*a).map(|d| d + 1) == Some(layers.len()) => {
            format!("layers {a}–{b}")
        }
        (Some(_), Some(_)) => format!(
            "layers {}",
            layers
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "layers not recorded (psi.json from an older probe)".to_string(),
    };
    format!(
        "value vectors of {layers} ({}, k = {}); ψ pools {} rows: {} personas × {} variants ({})",
        run.select,
        run.k,
        psi.all.rows,
        run.personas,
        run.variants.len(),
        run.variants.join(", ")
    )
}

/// `run.policy_sensitivity` of `psi.json` (absent in runs of older versions: empty).
fn read_policy_sensitivity(psi: &Summary, run: &ScaleRun) -> Vec<(String, f64, [Option<f64>; 3])> {
    psi.parties
        .iter()
        .filter_map(|p| {
            let e = run.policy_sensitivity.get(p)?;
            let psi = |policy: &str| e.psi.get(policy).copied().flatten();
            Some((
                p.clone(),
                e.negative_share,
                [psi("clip"), psi("shift"), psi("softmax")],
            ))
        })
        .collect()
}

fn read_scale_dir(dir: &Path, model: &str, run: &str) -> Result<Series> {
    let psi_path = dir.join(Summary::FILE);
    let psi: Summary = probe_schema::read(&psi_path)?;
    super::validate::psi(&psi, &psi_path)?;
    let scale_run = psi.run.as_ref().expect("validate::psi requires `run`");
    let options = psi.parties.clone();
    // every scope of psi.json: `all`, then each `by_group` attribute value; its ψ and its rows
    let all = ("all".to_string(), "all".to_string());
    let scopes = std::iter::once((all, &psi.all)).chain(psi.by_group.0.iter().flat_map(
        |(attribute, values)| {
            values
                .0
                .iter()
                .map(move |(value, d)| ((attribute.clone(), value.clone()), d))
        },
    ));
    let mut pooled = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    for (scope, d) in scopes {
        sizes.insert(scope.clone(), d.rows);
        if let Some(d) = shares(d, &options) {
            pooled.insert(scope, d);
        }
    }
    if pooled.is_empty() {
        return Err(input_err(
            &psi_path,
            "no distribution (every persona undefined?)",
        ));
    }
    let variants = psi
        .by_variant
        .0
        .iter()
        .filter_map(|(name, v)| Some((name.clone(), shares(&v.all, &options)?)))
        .collect();
    // per persona across variants, from rows.jsonl
    let rows_path = dir.join("rows.jsonl");
    let mut by_persona: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
    let mut entropy_units = super::ScopeUnits::new();
    if rows_path.is_file() {
        // the file is read once: the persona units come from the same rows
        let rows: Vec<RowRecord> = probe_schema::read_jsonl(&rows_path)?;
        entropy_units = units_of_rows(&rows, &rows_path, &options)?;
        for (i, row) in rows.iter().enumerate() {
            let Some(d) = &row.distribution else {
                continue; // no positive factor: undefined row
            };
            let Some(d) = options.iter().map(|p| d.get(p).copied()).collect() else {
                return Err(input_err(
                    &rows_path,
                    format!("row {}: a party is missing from `distribution`", i + 1),
                ));
            };
            by_persona.entry(row.persona.clone()).or_default().push(d);
        }
    }
    let scale = dir
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("scale")
        .to_string();
    let sensitivity = group_sensitivity(&psi, &options, &pooled)?;
    let by_language = scale_run
        .by_language
        .iter()
        .filter_map(|(lang, l)| {
            let psi = l.psi.as_ref()?;
            let d: Option<Vec<f64>> = options.iter().map(|p| psi.get(p).copied()).collect();
            Some((lang.clone(), l.rows, d?))
        })
        .collect();
    Ok(Series {
        name: format!("{model} · latent ({run}/{scale})"),
        labels: BTreeMap::from([
            ("model".into(), model.to_string()),
            ("method".into(), "latent".into()),
            ("source".into(), format!("{run}/{scale}")),
        ]),
        options,
        pooled,
        variants,
        sensitivity,
        sensitivity_persona: sensitivity_points(by_persona)?,
        sensitivity_unit: "group",
        own: vec![],
        policy_sensitivity: read_policy_sensitivity(&psi, scale_run),
        years: psi
            .by_group
            .get("year")
            .map(|m| m.0.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default(),
        by_language,
        provenance: Some(latent_provenance(&psi, scale_run)),
        sizes,
        size_unit: "rows (persona × variant)",
        clipped: Some((
            psi.negative_factors.count as u64,
            psi.negative_factors.of as u64,
            psi.negative.clone(),
        )),
        entropy_units,
    })
}

/// Each persona's contribution to ψ of a `scale` directory, per scope (`all`/`all` and every
/// attribute value it has): Σ over its rows (prompt variants) of w · m' over `options` (the
/// parties), from `rows.jsonl`'s `adjusted` factors — the units a bootstrap over personas
/// resamples. Empty when the rows predate `adjusted` (or there are none).
pub fn persona_units(dir: &Path, options: &[String]) -> Result<super::ScopeUnits> {
    let rows_path = dir.join("rows.jsonl");
    if !rows_path.is_file() {
        return Ok(super::ScopeUnits::new());
    }
    let rows: Vec<RowRecord> = probe_schema::read_jsonl(&rows_path)?;
    units_of_rows(&rows, &rows_path, options)
}

/// [`persona_units`] of the rows of a `rows.jsonl` (`rows_path` for messages).
fn units_of_rows(
    rows: &[RowRecord],
    rows_path: &Path,
    options: &[String],
) -> Result<super::ScopeUnits> {
    let mut out = super::ScopeUnits::new();
    // persona → (its scopes, Σ w · m′)
    type Sums = BTreeMap<String, (Vec<(String, String)>, Vec<f64>)>;
    let mut units = Sums::new();
    for (i, row) in rows.iter().enumerate() {
        let adjusted: Option<Vec<f64>> = row
            .adjusted
            .as_ref()
            .and_then(|m| options.iter().map(|p| m.get(p).copied()).collect());
        let Some(m) = adjusted else {
            // a row of an older run (no m'), or one without the parties asked: no units
            return Ok(BTreeMap::new());
        };
        let w = row.weight;
        if !(m.iter().all(|x| x.is_finite() && *x >= 0.0) && w.is_finite() && w >= 0.0) {
            return Err(input_err(
                rows_path,
                format!("row {}: a negative or non-finite m' or weight", i + 1),
            ));
        }
        let unit = units.entry(row.persona.clone()).or_insert_with(|| {
            let scopes = row
                .attributes
                .iter()
                .map(|(a, v)| (a.clone(), v.clone()))
                .collect();
            (scopes, vec![0.0; options.len()])
        });
        for (s, x) in unit.1.iter_mut().zip(&m) {
            *s += w * x;
        }
    }
    for (scopes, unit) in units.into_values() {
        out.entry(("all".into(), "all".into()))
            .or_default()
            .push(unit.clone());
        for scope in scopes {
            out.entry(scope).or_default().push(unit.clone());
        }
    }
    Ok(out)
}

/// Reads a run directory: `probes.json`, every `scale-*/` and every `eval-*/*.cells.jsonl`.
pub fn load_run(dir: &Path) -> Result<Run> {
    if !dir.is_dir() {
        return Err(input_err(dir, "not a directory"));
    }
    let run = dir
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .to_string();
    let probes_path = dir.join("probes.json");
    let probes_json: Option<ProbesJson> = probes_path
        .is_file()
        .then(|| probe_schema::read(&probes_path))
        .transpose()?;
    let model = model_name(dir, probes_json.as_ref());
    let probes = probes_json
        .is_some()
        .then(|| {
            // a fine-tuned model's probes beside the base model's of the same run name
            let json = probes_json.as_ref().expect("is_some");
            let label = match &json.adapter {
                Some(adapter) => format!("{run} +{adapter}"),
                None => run.clone(),
            };
            read_probe_curves(&probes_path, json, &label)
        })
        .transpose()?;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| input_err(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut series = Vec::new();
    let mut eval_cells = Vec::new();
    let mut evals = Vec::new();
    let mut simulations = Vec::new();
    for path in &entries {
        let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
        if name.starts_with("simulate-") && path.join("scores.json").is_file() {
            let scores_path = path.join("scores.json");
            let scores: SimulationScores = probe_schema::read(&scores_path)?;
            super::validate::scores(&scores, &scores_path)?;
            super::validate::finished(path)?;
            simulations.push(scores);
        } else if name.starts_with("scale-") && path.join("psi.json").is_file() {
            series.push(read_scale_dir(path, &model, &run)?);
        } else if name.starts_with("eval-") && path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| input_err(path, e.to_string()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".cells.jsonl"))
                .collect();
            files.sort();
            for f in files {
                eval_cells.extend(probe_data::cells::read_jsonl(&f, false)?);
            }
            evals.extend(read_eval_tally(path)?);
        }
    }
    series.extend(series_from_cells(&eval_cells, &model)?);
    let chance = read_chance(dir, probes_json.as_ref())?;
    Ok(Run {
        path: dir.to_path_buf(),
        model,
        probes,
        series,
        chance,
        evals,
        simulations,
    })
}

/// Distributions and their weights.
type WeightedDistributions = (Vec<Vec<f64>>, Vec<f64>);

/// Groups predicted cells into series by (model, method, steering) and pools variants.
pub fn series_from_cells(cells: &[Cell], default_model: &str) -> Result<Vec<Series>> {
    // one series per dataset too: the coin toy and the voting question are not one pool
    let key_labels = ["model", "method", "steering", "dataset"];
    let mut groups: BTreeMap<Vec<String>, Vec<&Cell>> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.predicted.is_some()) {
        let key = key_labels
            .iter()
            .map(|k| match (*k, c.labels.get(*k)) {
                (_, Some(v)) => v.clone(),
                ("model", None) => default_model.to_string(),
                (_, None) => "-".to_string(),
            })
            .collect();
        groups.entry(key).or_default().push(c);
    }
    let mut out = Vec::new();
    for (key, all_members) in groups {
        // question-level cells with their own reference (`probe eval`) are kept apart
        let (question_level, members): (Vec<&Cell>, Vec<&Cell>) = all_members
            .into_iter()
            .partition(|c| c.reference.is_some() && c.labels.contains_key("question"));
        let own: Vec<OwnCell> = question_level
            .iter()
            .map(|c| OwnCell {
                group: match (c.labels.get("attribute"), c.labels.get("group")) {
                    (Some(a), Some(g)) => format!("{a}={g}"),
                    (None, Some(g)) => g.clone(),
                    _ => "everyone".into(),
                },
                question: c.labels["question"].clone(),
                predicted: c.predicted.clone().expect("filtered"),
                reference: c.reference.clone().expect("partitioned"),
                samples: c.labels.get("samples").and_then(|n| n.parse().ok()),
            })
            .collect();
        let options = members
            .first()
            .map(|c| c.options.clone())
            .unwrap_or_default();
        if let Some(bad) = members.iter().find(|c| c.options != options) {
            return Err(ReportError::Empty(format!(
                "cells of {} disagree on the options: {:?} vs {:?} (cell {})",
                key.join("/"),
                options,
                bad.options,
                bad.describe()
            )));
        }
        let variant_of = |c: &Cell| c.labels.get("variant").cloned();
        let mut pooled_direct = BTreeMap::new();
        let mut per_scope: BTreeMap<(String, String), Vec<Vec<f64>>> = BTreeMap::new();
        let mut per_variant_all: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        // the variants of one persona/question cell: every label except `variant`
        let mut per_unit: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
        // persona cells (`probe eval --vote`): pooled by attribute value like scale rows
        let mut per_persona_scope: BTreeMap<(String, String), WeightedDistributions> =
            BTreeMap::new();
        for c in &members {
            let p = c.predicted.clone().expect("filtered");
            if let Some(persona) = c.labels.get("persona") {
                let weight = c.weight.unwrap_or(1.0);
                let scopes = std::iter::once(("all".to_string(), "all".to_string())).chain(
                    persona.split(';').filter_map(|kv| {
                        let (a, v) = kv.split_once('=')?;
                        Some((a.to_string(), v.to_string()))
                    }),
                );
                for scope in scopes {
                    let e = per_persona_scope.entry(scope).or_default();
                    e.0.push(p.clone());
                    e.1.push(weight);
                }
                continue;
            }
            match variant_of(c).as_deref() {
                None | Some("all") => {
                    pooled_direct.insert(scope_of(c), p);
                }
                Some(v) => {
                    if scope_of(c) == ("all".to_string(), "all".to_string()) {
                        per_variant_all.insert(v.to_string(), p.clone());
                    }
                    per_scope.entry(scope_of(c)).or_default().push(p.clone());
                    let unit: Vec<String> = c
                        .labels
                        .iter()
                        .filter(|(k, _)| k.as_str() != "variant")
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    per_unit.entry(unit.join(",")).or_default().push(p);
                }
            }
        }
        // the unsteered voting question asks one population per year: everyone is their mean
        let all = ("all".to_string(), "all".to_string());
        let attributes: std::collections::BTreeSet<&String> =
            pooled_direct.keys().map(|(a, _)| a).collect();
        let mut sizes: BTreeMap<(String, String), usize> =
            pooled_direct.keys().map(|k| (k.clone(), 1)).collect();
        if pooled_direct.len() > 1 && attributes.len() == 1 && !pooled_direct.contains_key(&all) {
            let dists: Vec<Vec<f64>> = pooled_direct.values().cloned().collect();
            sizes.insert(all.clone(), dists.len());
            pooled_direct.insert(all, arithmetic_barycenter(&dists, None)?);
        }
        let mut size_unit = "prompts";
        let mut pooled = pooled_direct;
        for (scope, (dists, weights)) in per_persona_scope {
            size_unit = "personas";
            sizes.entry(scope.clone()).or_insert(dists.len());
            if let std::collections::btree_map::Entry::Vacant(e) = pooled.entry(scope) {
                e.insert(arithmetic_barycenter(&dists, Some(&weights))?);
            }
        }
        for (scope, dists) in per_scope {
            sizes.entry(scope.clone()).or_insert(dists.len());
            if let std::collections::btree_map::Entry::Vacant(e) = pooled.entry(scope) {
                e.insert(arithmetic_barycenter(&dists, None)?);
            }
        }
        let mut labels = BTreeMap::new();
        for (k, v) in key_labels.iter().zip(&key) {
            if v != "-" {
                labels.insert(k.to_string(), v.clone());
            }
        }
        let name = key
            .iter()
            .filter(|v| *v != "-")
            .cloned()
            .collect::<Vec<_>>()
            .join(" · ");
        out.push(Series {
            name,
            labels,
            options,
            pooled,
            variants: per_variant_all.into_iter().collect(),
            sensitivity: sensitivity_points(per_unit)?,
            sensitivity_persona: vec![],
            sensitivity_unit: "cell",
            own,
            policy_sensitivity: vec![],
            years: vec![],
            by_language: vec![],
            provenance: None,
            sizes,
            size_unit,
            clipped: None,
            entropy_units: BTreeMap::new(),
        });
    }
    Ok(out)
}

/// A reference distribution over `options`: the same option text or the same party under the
/// alias table; reference options without a counterpart are dropped and the rest renormalized.
/// Returns the distribution and the share of the reference it keeps; `None` when an option has
/// no counterpart.
pub fn align_reference(cell: &Cell, options: &[String]) -> Option<(Vec<f64>, f64)> {
    let reference = cell.reference.as_ref()?;
    let mut out = vec![0.0; options.len()];
    let mut found = vec![false; options.len()];
    for (o, r) in cell.options.iter().zip(reference) {
        let j = options.iter().position(|x| x == o).or_else(|| {
            let party = canonical_party(o)?;
            options
                .iter()
                .position(|x| canonical_party(x) == Some(party))
        });
        if let Some(j) = j {
            out[j] += r;
            found[j] = true;
        }
    }
    if found.iter().any(|f| !f) {
        return None;
    }
    let kept: f64 = out.iter().sum();
    if kept <= 0.0 {
        return None;
    }
    Some((out.iter().map(|x| x / kept).collect(), kept))
}
