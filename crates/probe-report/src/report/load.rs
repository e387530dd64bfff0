//! Reading run directories: `probes.json`, `scale-*/psi.json` and `rows.jsonl`, `eval-*/` cells
//! and summaries, `vectors/vectors.json`; and cells files into series.

use probe_metrics::permutation::{Verdict, ALPHA};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

fn read_eval_tally(dir: &Path) -> Result<Vec<EvalTally>> {
    let path = dir.join("summary.json");
    if !path.is_file() {
        return Ok(vec![]);
    }
    let summary = read_json(&path)?;
    let eval = dir
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("eval")
        .to_string();
    summary["by_setting"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, v)| {
            // a count that is negative, fractional, null or text is an error, not a 0
            let count = |k: &str| -> Result<u64> {
                v[k].as_u64().ok_or_else(|| {
                    input_err(
                        &path,
                        format!("by_setting[{i}].{k} is {}, not a count", v[k]),
                    )
                })
            };
            let rate = match &v["parse_failure_rate"] {
                Value::Null => None,
                r => Some(
                    r.as_f64()
                        .filter(|x| (0.0..=1.0).contains(x))
                        .ok_or_else(|| {
                            input_err(
                        &path,
                        format!("by_setting[{i}].parse_failure_rate is {r}, not a rate in [0, 1]"),
                    )
                        })?,
                ),
            };
            Ok(EvalTally {
                eval: eval.clone(),
                method: v["method"].as_str().unwrap_or("?").to_string(),
                steering: v["steering"].as_str().unwrap_or("?").to_string(),
                units: count("units")?,
                failed_units: count("failed_units")?,
                parse_failures: count("parse_failures")?,
                parse_failure_rate: rate,
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
fn read_chance(dir: &Path, probes: Option<&Value>) -> Result<Vec<ChanceEntry>> {
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
    if let Some(null) = probes
        .map(|p| &p["report"]["null"])
        .filter(|n| n.is_object())
    {
        let parties = probes
            .and_then(|p| p["report"]["parties"].as_array())
            .cloned()
            .unwrap_or_default();
        for (i, party) in parties.iter().filter_map(Value::as_str).enumerate() {
            let at = |k: &str| null[k][i].as_f64();
            if let (Some(o), Some(m), Some(s)) = (at("observed"), at("mean"), at("sd")) {
                let e = entry(&mut out, party);
                out[e].accuracy = Some((o, m, s));
                let seeds = null["seeds"].as_array().map_or(0, Vec::len);
                if let Some(p) = at("p_value") {
                    out[e].accuracy_verdict = Some(Verdict::of(p, seeds, ALPHA).describe(seeds));
                }
            }
        }
    }
    let vectors = dir.join("vectors").join("vectors.json");
    if vectors.is_file() {
        let json = read_json(&vectors)?;
        super::validate::vectors(&json, &vectors)?;
        for c in json["chance"].as_array().into_iter().flatten() {
            let Some(party) = c["party"].as_str() else {
                continue;
            };
            let e = entry(&mut out, party);
            let zp = |t: &Value| Some((t["z"].as_f64().unwrap_or(f64::NAN), t["p"].as_f64()?));
            out[e].selection = c["random"]["observed"]
                .as_f64()
                .or(c["shuffled"]["observed"].as_f64());
            out[e].random = zp(&c["random"]);
            out[e].shuffled = zp(&c["shuffled"]);
            out[e].above_chance = c["above_chance"].as_bool();
            // the verdict as written, else (older files) recomputed from each null's p and n
            let tests: Vec<(f64, usize)> = [&c["random"], &c["shuffled"]]
                .into_iter()
                .filter_map(|t| Some((t["p"].as_f64()?, t["n"].as_u64()? as usize)))
                .collect();
            let smallest = tests.iter().map(|t| t.1).min().unwrap_or(0);
            let verdict = match serde_json::from_value::<Verdict>(c["verdict"].clone()) {
                Ok(v) => v,
                Err(_) if out[e].above_chance == Some(true) => Verdict::Above,
                Err(_) => Verdict::all(tests.iter().map(|&(p, n)| Verdict::of(p, n, ALPHA))),
            };
            out[e].verdict = Some(verdict.describe(smallest));
            out[e].verdict_kind = Some(verdict);
        }
    }
    Ok(out)
}

pub(super) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| input_err(path, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| input_err(path, format!("not JSON: {e}")))
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

fn read_probe_curves(path: &Path, run: &str) -> Result<ProbeCurves> {
    let json = read_json(path)?;
    super::validate::probes(&json, path)?;
    let summary = json
        .pointer("/report/summary")
        .and_then(Value::as_array)
        .ok_or_else(|| input_err(path, "no `report.summary` (not a probe train output?)"))?;
    let mut curves = ProbeCurves {
        run: run.to_string(),
        prompts: json
            .pointer("/report/folds")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        folds: json
            .pointer("/report/params/folds")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize,
        layers: vec![],
        per_layer: vec![],
        shared: vec![],
    };
    for entry in summary {
        let Some(layer) = entry["hook"].as_str().and_then(layer_of) else {
            continue; // the pooled `all` entry of the shared probe
        };
        curves.layers.push(layer);
        curves.per_layer.push(
            entry
                .pointer("/per_layer/balanced_accuracy")
                .and_then(Value::as_f64),
        );
        curves.shared.push(
            entry
                .pointer("/shared/balanced_accuracy")
                .and_then(Value::as_f64),
        );
    }
    if curves.layers.is_empty() {
        return Err(input_err(path, "`report.summary` lists no layer"));
    }
    Ok(curves)
}

/// The model's name for a run: the checkpoint named in `probes.json`, else the directory
/// above the run (`probes/<model>/<run>`).
/// The model's name (its file stem or folder), `+<adapter>` when it ran with a LoRA adapter.
fn model_name(dir: &Path, probes: Option<&Value>) -> String {
    let base = base_model_name(dir, probes);
    match probes.and_then(|p| p["adapter"].as_str()) {
        Some(adapter) => format!("{base}+{adapter}"),
        None => base,
    }
}

fn base_model_name(dir: &Path, probes: Option<&Value>) -> String {
    probes
        .and_then(|p| p["model"].as_str())
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
    psi: &Value,
    options: &[String],
    pooled: &BTreeMap<(String, String), Vec<f64>>,
) -> Result<Vec<(f64, f64)>> {
    let dist = |v: &Value| -> Option<Vec<f64>> {
        let m = v.get("psi")?.as_object()?;
        options.iter().map(|p| m.get(p)?.as_f64()).collect()
    };
    let variants: Vec<&Value> = psi["by_variant"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, v)| v)
        .collect();
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
            .map(|v| dist(&v["by_group"][attribute][value]))
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
fn latent_provenance(psi: &Value) -> String {
    let run = &psi["run"];
    let layers: Vec<u64> = run["vector_layers"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let layers = match (layers.first(), layers.last()) {
        // a contiguous ascending range (checked: a hand-edited file may list them backwards)
        (Some(a), Some(b))
            if a != b && b.checked_sub(*a).map(|d| d + 1) == Some(layers.len() as u64) =>
        {
            format!("layers {a}–{b}")
        }
        (Some(_), Some(_)) => format!(
            "layers {}",
            layers
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "layers not recorded (psi.json from an older probe)".to_string(),
    };
    let variants: Vec<&str> = run["variants"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!(
        "value vectors of {layers} ({}, k = {}); ψ pools {} rows: {} personas × {} variants ({})",
        run["select"].as_str().unwrap_or("?"),
        run["k"],
        psi["all"]["rows"],
        run["personas"],
        variants.len(),
        variants.join(", ")
    )
}

/// `run.policy_sensitivity` of `psi.json` (absent in runs of older versions: empty).
fn read_policy_sensitivity(psi: &Value) -> Vec<(String, f64, [Option<f64>; 3])> {
    let parties = psi["parties"].as_array().cloned().unwrap_or_default();
    let table = &psi["run"]["policy_sensitivity"];
    parties
        .iter()
        .filter_map(|p| {
            let p = p.as_str()?;
            let e = table.get(p)?;
            let psi = |policy: &str| e["psi"][policy].as_f64();
            Some((
                p.to_string(),
                e["negative_share"].as_f64()?,
                [psi("clip"), psi("shift"), psi("softmax")],
            ))
        })
        .collect()
}

fn read_scale_dir(dir: &Path, model: &str, run: &str) -> Result<Series> {
    let psi_path = dir.join("psi.json");
    let psi = read_json(&psi_path)?;
    super::validate::psi(&psi, &psi_path)?;
    let options: Vec<String> = psi["parties"]
        .as_array()
        .ok_or_else(|| input_err(&psi_path, "no `parties` list"))?
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    let dist = |v: &Value| -> Option<Vec<f64>> {
        let m = v.get("psi")?.as_object()?;
        options.iter().map(|p| m.get(p)?.as_f64()).collect()
    };
    // every scope of psi.json: `all`, then each `by_group` attribute value; its ψ and its rows
    let scopes = std::iter::once((("all".to_string(), "all".to_string()), &psi["all"])).chain(
        psi["by_group"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(attribute, values)| {
                values
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(move |(value, v)| ((attribute.clone(), value.clone()), v))
            }),
    );
    let mut pooled = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    for (scope, v) in scopes {
        if let Some(n) = v["rows"].as_u64() {
            sizes.insert(scope.clone(), n as usize);
        }
        if let Some(d) = dist(v) {
            pooled.insert(scope, d);
        }
    }
    if pooled.is_empty() {
        return Err(input_err(
            &psi_path,
            "no distribution (every persona undefined?)",
        ));
    }
    let variants = psi["by_variant"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, v)| Some((name.clone(), dist(&v["all"])?)))
        .collect();
    // per persona across variants, from rows.jsonl
    let rows_path = dir.join("rows.jsonl");
    let mut by_persona: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
    let mut entropy_units = super::ScopeUnits::new();
    if rows_path.is_file() {
        let text = std::fs::read_to_string(&rows_path)
            .map_err(|e| input_err(&rows_path, e.to_string()))?;
        // the file is read once: the persona units come from the same text
        entropy_units = units_of_rows(&text, &rows_path, &options)?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let row: Value = serde_json::from_str(line)
                .map_err(|e| input_err(&rows_path, format!("line {}: {e}", i + 1)))?;
            let Some(d) = row["distribution"].as_object() else {
                continue; // no positive factor: undefined row
            };
            let d: Option<Vec<f64>> = options.iter().map(|p| d.get(p)?.as_f64()).collect();
            let (Some(d), Some(persona)) = (d, row["persona"].as_str()) else {
                return Err(input_err(
                    &rows_path,
                    format!("line {}: no `persona` or a party is missing", i + 1),
                ));
            };
            by_persona.entry(persona.to_string()).or_default().push(d);
        }
    }
    let scale = dir
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("scale")
        .to_string();
    let sensitivity = group_sensitivity(&psi, &options, &pooled)?;
    let by_language = psi["run"]["by_language"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(lang, v)| {
            let d: Option<Vec<f64>> = v["psi"]
                .as_object()
                .and_then(|m| options.iter().map(|p| m.get(p)?.as_f64()).collect());
            Some((lang.clone(), v["rows"].as_u64()? as usize, d?))
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
        policy_sensitivity: read_policy_sensitivity(&psi),
        years: psi["by_group"]["year"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        by_language,
        provenance: Some(latent_provenance(&psi)),
        sizes,
        size_unit: "rows (persona × variant)",
        clipped: psi["negative_factors"]["count"]
            .as_u64()
            .zip(psi["negative_factors"]["of"].as_u64())
            .map(|(count, of)| {
                let policy = psi["negative"].as_str().unwrap_or("clip").to_string();
                (count, of, policy)
            }),
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
    let text =
        std::fs::read_to_string(&rows_path).map_err(|e| input_err(&rows_path, e.to_string()))?;
    units_of_rows(&text, &rows_path, options)
}

/// [`persona_units`] of the text of a `rows.jsonl` (`rows_path` for messages).
fn units_of_rows(text: &str, rows_path: &Path, options: &[String]) -> Result<super::ScopeUnits> {
    let mut out = super::ScopeUnits::new();
    // persona → (its scopes, Σ w · m′)
    type Sums = BTreeMap<String, (Vec<(String, String)>, Vec<f64>)>;
    let mut units = Sums::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: Value = serde_json::from_str(line)
            .map_err(|e| input_err(rows_path, format!("line {}: {e}", i + 1)))?;
        let adjusted: Option<Vec<f64>> = row["adjusted"]
            .as_object()
            .and_then(|m| options.iter().map(|p| m.get(p)?.as_f64()).collect());
        let (Some(m), Some(persona), Some(w)) =
            (adjusted, row["persona"].as_str(), row["weight"].as_f64())
        else {
            // a row of an older run (no m'), or one without the parties asked: no units
            return Ok(BTreeMap::new());
        };
        if !(m.iter().all(|x| x.is_finite() && *x >= 0.0) && w.is_finite() && w >= 0.0) {
            return Err(input_err(
                rows_path,
                format!("line {}: a negative or non-finite m' or weight", i + 1),
            ));
        }
        let unit = units.entry(persona.to_string()).or_insert_with(|| {
            let scopes = row["attributes"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(a, v)| Some((a.clone(), v.as_str()?.to_string())))
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
    let probes_json = probes_path
        .is_file()
        .then(|| read_json(&probes_path))
        .transpose()?;
    let model = model_name(dir, probes_json.as_ref());
    let probes = probes_json
        .is_some()
        .then(|| {
            // a fine-tuned model's probes beside the base model's of the same run name
            let label = match probes_json.as_ref().and_then(|p| p["adapter"].as_str()) {
                Some(adapter) => format!("{run} +{adapter}"),
                None => run.clone(),
            };
            read_probe_curves(&probes_path, &label)
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
            let scores = read_json(&scores_path)?;
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
