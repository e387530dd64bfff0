//! `probe report`: everything one or more run directories hold — latent ψ from `probe scale`,
//! prompt-based distributions from `probe eval` (cells), probe CV metrics from `probe train` —
//! compared with a survey reference, as `report.md`, a self-contained `report.html` (inline SVG,
//! no scripts, no external resources), one SVG per figure and `report.json` with every number.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use probe_data::cells::Cell;
use probe_data::wahl_o_mat::canonical_party;
use probe_metrics::correlation::{matrix_distance, pearson, CorrelationMatrix};
use probe_metrics::divergence::total_variation;
use probe_metrics::entropy::normalized_entropy;
use probe_metrics::stats::{bootstrap_mean, linear_regression, Estimate, Regression};
use probe_metrics::wasserstein::arithmetic_barycenter;
use serde_json::{json, Value};

use crate::figures::{self, Bars, Heatmap, Scatter, SURVEY};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error("{0}")]
    Data(#[from] probe_data::DataError),
    #[error("{0}")]
    Metric(#[from] probe_metrics::MetricError),
    #[error("drawing {figure}: {reason}")]
    Figure {
        figure: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Empty(String),
}

pub type Result<T, E = ReportError> = std::result::Result<T, E>;

fn input_err(path: &Path, reason: impl Into<String>) -> ReportError {
    ReportError::Input {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The survey side: reference cells labelled `attribute`/`value` (cells without them count as
/// `all`/`all`), a display name and notes on how it was made.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub name: String,
    pub cells: Vec<Cell>,
    pub notes: Vec<String>,
}

/// One model distribution source: a `probe scale` directory, or the cells of one
/// (model, method, steering) from `probe eval` or any cells file.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub options: Vec<String>,
    /// Distributions pooled over prompt variants, per (attribute, value) scope.
    pub pooled: BTreeMap<(String, String), Vec<f64>>,
    /// Population-level distribution of each prompt variant (ψ_j).
    pub variants: Vec<(String, Vec<f64>)>,
    /// The study's sensitivity points: per group g (latent runs), (H_norm(ψ_g), mean_j
    /// W(ψ_{j,g}, ψ̄_g)); per cell for question-level evaluations.
    pub sensitivity: Vec<(f64, f64)>,
    /// A second, labelled view (latent runs): per persona, (H_norm of the barycenter of its
    /// rows' own distributions, mean W to it).
    pub sensitivity_persona: Vec<(f64, f64)>,
    /// What one sensitivity point is ("persona", "cell").
    pub sensitivity_unit: &'static str,
    /// Question-level cells that carry their own reference (`probe eval`): one per
    /// (group, question), each with its own options.
    pub own: Vec<OwnCell>,
    /// Per party (latent runs): the share of rows with a negative scaling factor, and ψ over
    /// all rows under the clip, shift and softmax policies.
    pub policy_sensitivity: Vec<(String, f64, [Option<f64>; 3])>,
    /// Latent runs: the `year` values its rows span. With two or more (past vote and
    /// intention pooled), only the year scopes are compared with a survey.
    pub years: Vec<String>,
    /// Latent runs: ψ per language of the prompt variants (language, rows, ψ).
    pub by_language: Vec<(String, usize, Vec<f64>)>,
    /// What went into the distribution, in words (for ψ: the value vectors' layers and the
    /// rows pooled), shown beside it in the report.
    pub provenance: Option<String>,
}

/// A predicted distribution for one question and group, with the group's reference.
#[derive(Debug, Clone)]
pub struct OwnCell {
    /// `attribute=group` (or the group alone).
    pub group: String,
    pub question: String,
    pub predicted: Vec<f64>,
    pub reference: Vec<f64>,
    /// Answers the prediction counts (`sample`, `sequence`), from the cell's `samples` label.
    pub samples: Option<usize>,
}

/// Cross-validated balanced accuracy per layer from `probe train`'s `probes.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeCurves {
    pub run: String,
    pub layers: Vec<usize>,
    pub per_layer: Vec<Option<f64>>,
    pub shared: Vec<Option<f64>>,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub path: PathBuf,
    pub model: String,
    pub probes: Option<ProbeCurves>,
    pub series: Vec<Series>,
    /// Chance levels: per party, the probe's CV balanced accuracy against label-shuffled
    /// training (`probes.json` `report.null`) and the value-vector selection against random
    /// and shuffled directions (`vectors/vectors.json` `chance`).
    pub chance: Vec<ChanceEntry>,
    /// Per evaluation and setting: units, failed units, parse failures.
    pub evals: Vec<EvalTally>,
}

/// One (method, steering) setting of a `probe eval` run (its `summary.json`): what went into
/// its cells, and what did not.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalTally {
    /// The evaluation's directory, e.g. `eval-coin`.
    pub eval: String,
    pub method: String,
    pub steering: String,
    /// (group, question) units asked, those that produced no distribution, and the answers
    /// that could not be parsed (retried up to `--retries`).
    pub units: u64,
    pub failed_units: u64,
    pub parse_failures: u64,
    pub parse_failure_rate: Option<f64>,
}

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
    let count = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    Ok(summary["by_setting"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| EvalTally {
            eval: eval.clone(),
            method: v["method"].as_str().unwrap_or("?").to_string(),
            steering: v["steering"].as_str().unwrap_or("?").to_string(),
            units: count(v, "units"),
            failed_units: count(v, "failed_units"),
            parse_failures: count(v, "parse_failures"),
            parse_failure_rate: v["parse_failure_rate"].as_f64(),
        })
        .collect())
}

/// One party's results beside their chance levels.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChanceEntry {
    pub party: String,
    /// Observed shared-probe balanced accuracy, and the shuffled runs' mean and sd.
    pub accuracy: Option<(f64, f64, f64)>,
    /// Selection statistic (mean top-k cosine) and z / p against random directions.
    pub selection: Option<f64>,
    pub random: Option<(f64, f64)>,
    /// z / p against label-shuffled probes' directions.
    pub shuffled: Option<(f64, f64)>,
    pub above_chance: Option<bool>,
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
                    selection: None,
                    random: None,
                    shuffled: None,
                    above_chance: None,
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
            }
        }
    }
    let vectors = dir.join("vectors").join("vectors.json");
    if vectors.is_file() {
        let json = read_json(&vectors)?;
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
        }
    }
    Ok(out)
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| input_err(path, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| input_err(path, format!("not JSON: {e}")))
}

fn scope_of(cell: &Cell) -> (String, String) {
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
    let summary = json
        .pointer("/report/summary")
        .and_then(Value::as_array)
        .ok_or_else(|| input_err(path, "no `report.summary` (not a probe train output?)"))?;
    let mut curves = ProbeCurves {
        run: run.to_string(),
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
fn model_name(dir: &Path, probes: Option<&Value>) -> String {
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

/// Whether scope `scope` of series `s` may be scored against the survey's same scope: a latent
/// ψ whose rows pool several `year` settings (the 2021 vote and a vote "tomorrow") is compared
/// only through its year scopes, each against that year's reference.
fn like_with_like(s: &Series, scope: &(String, String)) -> bool {
    s.years.len() < 2 || scope.0 == "year"
}

/// The benchmark's majority baseline (Meister et al. 2024): each group's own most common answer.
const MAJORITY_GROUPS: &str = "baseline: majority (each group's own answer)";
const MAJORITY_QUESTIONS: &str = "baseline: majority (each group's own answer, per question)";

/// The calibration ECE of a series' cells against the survey (its pooled groups, or its own
/// question-level cells), and for sampled answers the discretization floor (see
/// `compare::tv_extras`).
/// A bootstrap interval as `[low, high]`, or `n/a (1 group)` where one group leaves nothing
/// to resample (its zero-width interval would read as certainty).
fn interval(e: &Estimate, groups: usize) -> String {
    if groups < 2 {
        "n/a (1 group)".to_string()
    } else {
        format!("[{}, {}]", f(e.low), f(e.high))
    }
}

/// A leaderboard row: rank, distribution, groups, TV, CI, calibration ECE, discretization floor.
fn leaderboard_row(
    rank: usize,
    (name, e, groups): &(String, Estimate, usize),
    extras: &BTreeMap<String, (Option<f64>, Option<f64>)>,
) -> Vec<String> {
    let (ece, floor) = extras.get(name).copied().unwrap_or_default();
    let cell = |x: Option<f64>| x.map_or("–".to_string(), f);
    vec![
        rank.to_string(),
        name.clone(),
        groups.to_string(),
        f(e.value),
        interval(e, *groups),
        cell(ece),
        cell(floor),
    ]
}

/// Calibration ECE and discretization floor of a series: over its question-level cells
/// (`own`), or over its pooled distributions against the survey.
fn series_extras(
    s: &Series,
    ref_by_scope: &BTreeMap<(String, String), &Cell>,
    seed: u64,
    own: bool,
) -> Result<(Option<f64>, Option<f64>)> {
    use crate::compare::{tv_extras, Pair};
    let pair = |group: &str, question: &str, p: &[f64], q: &[f64], samples: Option<usize>| {
        let mut labels = BTreeMap::from([
            ("group".to_string(), group.to_string()),
            ("question".to_string(), question.to_string()),
        ]);
        if let Some(n) = samples {
            labels.insert("samples".into(), n.to_string());
        }
        Pair {
            labels,
            options: vec![],
            predicted: p.to_vec(),
            reference: q.to_vec(),
            ordinal: None,
            weight: 1.0,
        }
    };
    let mut pairs: Vec<Pair> = s
        .own
        .iter()
        .filter(|_| own)
        .map(|c| pair(&c.group, &c.question, &c.predicted, &c.reference, c.samples))
        .collect();
    for (scope, d) in s.pooled.iter().filter(|_| !own) {
        if let Some((r, _)) = ref_by_scope
            .get(scope)
            .and_then(|c| align_reference(c, &s.options))
        {
            pairs.push(pair(
                &format!("{}={}", scope.0, scope.1),
                "vote",
                d,
                &r,
                None,
            ));
        }
    }
    let members: Vec<&Pair> = pairs.iter().collect();
    let groups: Vec<String> = pairs.iter().map(|p| p.labels["group"].clone()).collect();
    tv_extras(&members, Some(&groups), seed).map_err(|e| ReportError::Empty(e.to_string()))
}

/// Each group's mean over its (question) values, in group order: the units the benchmark's A
/// averages and the bootstrap resamples (`compare::group_means`).
fn mean_of_group_means(values: &[(String, f64)]) -> Vec<f64> {
    let (groups, values): (Vec<String>, Vec<f64>) = values.iter().cloned().unzip();
    crate::compare::group_means(&values, &vec![1.0; values.len()], &groups).0
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
        (Some(a), Some(b)) if layers.len() as u64 == b - a + 1 && a != b => {
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
    let mut pooled = BTreeMap::new();
    if let Some(d) = dist(&psi["all"]) {
        pooled.insert(("all".to_string(), "all".to_string()), d);
    }
    if let Some(groups) = psi["by_group"].as_object() {
        for (attribute, values) in groups {
            for (value, v) in values.as_object().into_iter().flatten() {
                if let Some(d) = dist(v) {
                    pooled.insert((attribute.clone(), value.clone()), d);
                }
            }
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
    if rows_path.is_file() {
        let text = std::fs::read_to_string(&rows_path)
            .map_err(|e| input_err(&rows_path, e.to_string()))?;
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
    })
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
        .then(|| read_probe_curves(&probes_path, &run))
        .transpose()?;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| input_err(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut series = Vec::new();
    let mut eval_cells = Vec::new();
    let mut evals = Vec::new();
    for path in &entries {
        let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
        if name.starts_with("scale-") && path.join("psi.json").is_file() {
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
        if pooled_direct.len() > 1 && attributes.len() == 1 && !pooled_direct.contains_key(&all) {
            let dists: Vec<Vec<f64>> = pooled_direct.values().cloned().collect();
            pooled_direct.insert(all, arithmetic_barycenter(&dists, None)?);
        }
        let mut pooled = pooled_direct;
        for (scope, (dists, weights)) in per_persona_scope {
            if let std::collections::btree_map::Entry::Vacant(e) = pooled.entry(scope) {
                e.insert(arithmetic_barycenter(&dists, Some(&weights))?);
            }
        }
        for (scope, dists) in per_scope {
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

#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub title: String,
    pub bootstrap: usize,
    pub level: f64,
    pub seed: u64,
    /// Sensitivity points drawn per series (all enter the regression).
    pub max_points: usize,
    /// Shown at the top of the report, highlighted: e.g. that the data is fictional.
    pub notes: Vec<String>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: "probe report".into(),
            bootstrap: 1000,
            level: 0.95,
            seed: 0,
            max_points: 1500,
            notes: vec![],
        }
    }
}

/// A rendered table: header and rows of display strings.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub id: &'static str,
    pub title: String,
    pub paragraphs: Vec<String>,
    pub table: Option<Table>,
    pub figure: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub title: String,
    pub sections: Vec<Section>,
    pub json: Value,
}

/// The figure ids every complete report has, in order.
pub const FIGURES: [&str; 6] = [
    "distributions",
    "entropy",
    "sensitivity",
    "leaderboard",
    "probe-accuracy",
    "group-covariation",
];

/// A row of the sensitivity table: series, points, slope [CI], intercept, r, mean W.
fn regression_row(
    series: String,
    points: String,
    fit: Option<Regression>,
    y: &[f64],
) -> Vec<String> {
    vec![
        series,
        points,
        fit.map(|r| format!("{:.4} [{:.4}, {:.4}]", r.slope, r.slope_low, r.slope_high))
            .unwrap_or_else(|| "–".into()),
        fit.map(|r| f(r.intercept)).unwrap_or_else(|| "–".into()),
        fit.map(|r| f(r.r)).unwrap_or_else(|| "–".into()),
        f(y.iter().sum::<f64>() / y.len() as f64),
    ]
}

fn f(x: f64) -> String {
    if x.is_finite() {
        // a rounding-level negative (an entropy of one certain option) prints as 0.000
        let x = if x.abs() < 5e-4 { 0.0 } else { x };
        format!("{x:.3}")
    } else {
        "–".into()
    }
}

fn fig(figure: &'static str, r: Result<String, String>) -> Result<String> {
    r.map_err(|reason| ReportError::Figure { figure, reason })
}

fn scope_name((a, v): &(String, String)) -> String {
    if a == "all" {
        "everyone".into()
    } else {
        format!("{a}={v}")
    }
}

/// Party × party Pearson correlations across groups; NaN where a party does not vary.
fn across_groups(rows: &[Vec<f64>], k: usize) -> CorrelationMatrix {
    let mut values = vec![1.0; k * k];
    for i in 0..k {
        for j in 0..k {
            if i != j {
                let x: Vec<f64> = rows.iter().map(|r| r[i]).collect();
                let y: Vec<f64> = rows.iter().map(|r| r[j]).collect();
                values[i * k + j] = pearson(&x, &y).unwrap_or(f64::NAN);
            }
        }
        let x: Vec<f64> = rows.iter().map(|r| r[i]).collect();
        if pearson(&x, &x).is_err() {
            values[i * k + i] = f64::NAN;
        }
    }
    CorrelationMatrix { n_items: k, values }
}

/// Deterministic thinning to at most `max` points (every ⌈n/max⌉-th).
fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let step = points.len().div_ceil(max.max(1)).max(1);
    points.iter().step_by(step).copied().collect()
}

pub fn build(
    runs: &[Run],
    extra: &[Series],
    reference: &Reference,
    o: &ReportOptions,
) -> Result<Report> {
    let series: Vec<&Series> = runs
        .iter()
        .flat_map(|r| r.series.iter())
        .chain(extra.iter())
        .collect();
    let curves: Vec<&ProbeCurves> = runs.iter().filter_map(|r| r.probes.as_ref()).collect();
    if series.is_empty() && curves.is_empty() {
        return Err(ReportError::Empty(
            "nothing to report: no scale-*/ or eval-*/ output and no probes.json in the run directories, and no --cells".into(),
        ));
    }
    let ref_by_scope: BTreeMap<(String, String), &Cell> = reference
        .cells
        .iter()
        .filter(|c| c.reference.is_some())
        .map(|c| (scope_of(c), c))
        .collect();
    let all_scope = ("all".to_string(), "all".to_string());
    let mut sections = Vec::new();
    let mut json = json!({
        "title": o.title,
        "reference": {"name": reference.name, "notes": reference.notes},
        "runs": runs.iter().map(|r| json!({"path": r.path, "model": r.model})).collect::<Vec<_>>(),
    });
    json["notes"] = json!(o.notes);
    let palette: BTreeMap<&str, usize> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let color_of = |s: &Series| figures::color(palette[s.name.as_str()]);
    // with one model, legends drop its name (the figures' captions say which model it is)
    let models: std::collections::BTreeSet<&str> = series
        .iter()
        .filter_map(|s| s.labels.get("model").map(String::as_str))
        .collect();
    let model_prefix = match models.iter().next() {
        Some(m) if models.len() == 1 => format!("{m} · "),
        _ => String::new(),
    };
    let legend_name = |s: &Series| -> String {
        match s.name.strip_prefix(&model_prefix) {
            Some(rest) if !model_prefix.is_empty() => rest.to_string(),
            _ => s.name.clone(),
        }
    };

    // 1. party distributions, everyone, model vs survey
    {
        let overall: Vec<&&Series> = series
            .iter()
            .filter(|s| s.pooled.contains_key(&all_scope))
            .collect();
        let options: Vec<String> = overall
            .first()
            .map(|s| s.options.clone())
            .unwrap_or_default();
        let same: Vec<&&Series> = overall
            .iter()
            .copied()
            .filter(|s| s.options == options)
            .collect();
        let mut bars: Vec<Bars> = same
            .iter()
            .filter_map(|s| {
                Some(Bars {
                    name: legend_name(s),
                    values: s.pooled.get(&all_scope)?.clone(),
                    color: color_of(s),
                    intervals: None,
                })
            })
            .collect();
        let mut paragraphs = vec![
            "Each model's distribution pooled over personas and prompt variants (ψ for the latent method), next to the survey.".to_string(),
        ];
        for s in &same {
            if let Some(p) = &s.provenance {
                paragraphs.push(format!("{}: {p}.", legend_name(s)));
            }
            if s.years.len() >= 2 {
                paragraphs.push(format!(
                    "{}: ψ pools personas of {} (year = {}); the survey is compared only with the ψ of the matching year scope, never with this pooled ψ or with groups that pool the years.",
                    legend_name(s),
                    s.years.len(),
                    s.years.join(", ")
                ));
            }
        }
        if let Some(model) = model_prefix.strip_suffix(" · ") {
            paragraphs.push(format!(
                "Model: {model} (the figures' legends leave its name out)."
            ));
        }
        let mut survey_row = None;
        if let Some((r, kept)) = ref_by_scope
            .get(&all_scope)
            .and_then(|c| align_reference(c, &options))
        {
            if kept < 1.0 - 1e-9 {
                paragraphs.push(format!(
                    "The survey is restricted to these {} options ({:.1} % of its answers) and renormalized.",
                    options.len(),
                    100.0 * kept
                ));
            }
            survey_row = Some(r.clone());
            bars.push(Bars {
                name: reference.name.clone(),
                values: r,
                color: SURVEY,
                intervals: None,
            });
        }
        let mut table = Table {
            header: std::iter::once("distribution".to_string())
                .chain(options.iter().cloned())
                .chain(["H_norm".to_string(), "TV to survey".to_string()])
                .collect(),
            rows: vec![],
        };
        for b in &bars {
            // a ψ pooling several year settings is not scored against one year's survey
            let pools_years = same
                .iter()
                .any(|s| legend_name(s) == b.name && s.years.len() >= 2);
            let tv = survey_row
                .as_ref()
                .filter(|_| !pools_years)
                .and_then(|r| total_variation(&b.values, r).ok())
                .unwrap_or(f64::NAN);
            table.rows.push(
                std::iter::once(b.name.clone())
                    .chain(b.values.iter().map(|v| f(*v)))
                    .chain([f(normalized_entropy(&b.values).unwrap_or(f64::NAN)), f(tv)])
                    .collect(),
            );
        }
        // ψ per language of the prompt variants, beside the pooled ψ above
        for s in &same {
            for (lang, rows, d) in &s.by_language {
                let tv = survey_row
                    .as_ref()
                    .filter(|_| s.years.len() < 2)
                    .and_then(|r| total_variation(d, r).ok())
                    .unwrap_or(f64::NAN);
                table.rows.push(
                    std::iter::once(format!("{} · {lang} prompts ({rows} rows)", legend_name(s)))
                        .chain(d.iter().map(|v| f(*v)))
                        .chain([f(normalized_entropy(d).unwrap_or(f64::NAN)), f(tv)])
                        .collect(),
                );
            }
        }
        if same.len() < series.len() {
            paragraphs.push(format!(
                "{} series without an overall distribution over these options (e.g. question-level evaluations, which the entropy section and the task leaderboards cover) are left out of this figure.",
                series.len() - same.len()
            ));
        }
        json["distributions"] = json!({
            "options": options,
            "series": bars.iter().map(|b| json!({"name": b.name, "distribution": b.values})).collect::<Vec<_>>(),
        });
        sections.push(Section {
            id: "distributions",
            title: "Party distributions: models vs survey".into(),
            paragraphs,
            table: Some(table),
            figure: Some(fig(
                "distributions",
                figures::grouped_columns(
                    "Distribution over options, everyone",
                    "share",
                    &options,
                    &bars,
                ),
            )?),
        });
    }

    // 2. normalized entropy per model and group
    {
        let scopes: BTreeSet<(String, String)> = series
            .iter()
            .flat_map(|s| s.pooled.keys().cloned())
            .filter(|s| s.0 != "all")
            .collect();
        let scopes: Vec<(String, String)> = scopes.into_iter().collect();
        // question-level groups: mean H_norm over the group's questions
        let own_groups: Vec<String> = series
            .iter()
            .flat_map(|s| s.own.iter().map(|c| c.group.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mean_h = |cells: &mut dyn Iterator<Item = &Vec<f64>>| -> f64 {
            let h: Vec<f64> = cells.filter_map(|d| normalized_entropy(d).ok()).collect();
            if h.is_empty() {
                f64::NAN
            } else {
                h.iter().sum::<f64>() / h.len() as f64
            }
        };
        let categories: Vec<String> = scopes
            .iter()
            .map(scope_name)
            .chain(
                own_groups
                    .iter()
                    .map(|g| format!("{g} (mean over questions)")),
            )
            .collect();
        let bars: Vec<Bars> = series
            .iter()
            .map(|s| Bars {
                name: legend_name(s),
                values: scopes
                    .iter()
                    .map(|sc| {
                        s.pooled
                            .get(sc)
                            .and_then(|d| normalized_entropy(d).ok())
                            .unwrap_or(f64::NAN)
                    })
                    .chain(own_groups.iter().map(|g| {
                        mean_h(&mut s.own.iter().filter(|c| &c.group == g).map(|c| &c.predicted))
                    }))
                    .collect(),
                color: color_of(s),
                intervals: None,
            })
            .collect();
        // the survey side of the question-level groups, each (group, question) once
        let own_reference: BTreeMap<(String, String), &Vec<f64>> = series
            .iter()
            .flat_map(|s| s.own.iter())
            .map(|c| ((c.group.clone(), c.question.clone()), &c.reference))
            .collect();
        let options = series
            .iter()
            .find(|s| !s.options.is_empty())
            .map(|s| s.options.clone())
            .unwrap_or_default();
        let survey_h = |scope: &(String, String)| {
            ref_by_scope
                .get(scope)
                .and_then(|c| align_reference(c, &options))
                .and_then(|(r, _)| normalized_entropy(&r).ok())
        };
        let marks: Vec<f64> = scopes
            .iter()
            .map(|s| survey_h(s).unwrap_or(f64::NAN))
            .chain(own_groups.iter().map(|g| {
                mean_h(
                    &mut own_reference
                        .iter()
                        .filter(|((group, _), _)| group == g)
                        .map(|(_, r)| *r),
                )
            }))
            .collect();
        let overall = survey_h(&all_scope);
        let mut paragraphs = vec![
            "Normalized entropy H/ln N of each group's distribution (1 = uniform over the options, 0 = one option). A model that collapses a group onto one party sits far left of the survey.".to_string(),
        ];
        if let Some(h) = overall {
            paragraphs.push(format!(
                "Dashed line: the survey's entropy for everyone, {h:.3}."
            ));
        }
        let any_marks = marks.iter().any(|m| m.is_finite());
        // question-level cells bring their own survey references
        let survey_name = if ref_by_scope.is_empty() && !own_reference.is_empty() {
            "survey (the cells' own references)".to_string()
        } else {
            reference.name.clone()
        };
        if any_marks {
            paragraphs.push("Dark ticks: the survey's entropy in the same group.".into());
        }
        let mut table = Table {
            header: std::iter::once("group".to_string())
                .chain(bars.iter().map(|b| b.name.clone()))
                .chain(any_marks.then(|| survey_name.clone()))
                .collect(),
            rows: vec![],
        };
        for (i, c) in categories.iter().enumerate() {
            table.rows.push(
                std::iter::once(c.clone())
                    .chain(bars.iter().map(|b| f(b.values[i])))
                    .chain(any_marks.then(|| f(marks[i])))
                    .collect(),
            );
        }
        json["entropy"] = json!({
            "groups": categories,
            "series": bars.iter().map(|b| json!({"name": b.name, "h_norm": b.values.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            "survey": marks.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>(),
            "survey_all": overall,
        });
        sections.push(Section {
            id: "entropy",
            title: "Normalized entropy per group".into(),
            paragraphs,
            table: Some(table),
            figure: Some(fig(
                "entropy",
                figures::grouped_rows(
                    "Normalized entropy per group",
                    "H / ln N",
                    &categories,
                    &bars,
                    any_marks.then_some((survey_name.as_str(), marks.as_slice())),
                    overall.map(|h| ("survey, everyone", h)),
                ),
            )?),
        });
    }

    // 3. prompt sensitivity: W(ψ_j, ψ̄) against H_norm(ψ̄)
    {
        let mut scatters = Vec::new();
        let mut table = Table {
            header: vec![
                "series".into(),
                "points".into(),
                "slope [CI]".into(),
                "intercept".into(),
                "r".into(),
                "mean W".into(),
            ],
            rows: vec![],
        };
        let mut variant_table = Table {
            header: vec![
                "series".into(),
                "variant".into(),
                "W(ψ_j, ψ̄)".into(),
                "H_norm(ψ_j)".into(),
            ],
            rows: vec![],
        };
        let mut fits = Vec::new();
        for s in &series {
            let (x, y): (Vec<f64>, Vec<f64>) = s.sensitivity.iter().copied().unzip();
            let fit: Option<Regression> = linear_regression(&x, &y, o.level).ok();
            if !s.sensitivity.is_empty() {
                table.rows.push(regression_row(
                    s.name.clone(),
                    format!("{} {}s", s.sensitivity.len(), s.sensitivity_unit),
                    fit,
                    &y,
                ));
                scatters.push(Scatter {
                    name: legend_name(s),
                    color: color_of(s),
                    points: thin(&s.sensitivity, o.max_points),
                    fit,
                });
            }
            fits.push(json!({"series": s.name, "points": s.sensitivity.len(), "unit": s.sensitivity_unit, "regression": fit}));
            if !s.sensitivity_persona.is_empty() {
                // the second view: per persona, labelled as such and kept out of the figure
                let (x, y): (Vec<f64>, Vec<f64>) = s.sensitivity_persona.iter().copied().unzip();
                let fit: Option<Regression> = linear_regression(&x, &y, o.level).ok();
                table.rows.push(regression_row(
                    format!("{} (per persona, second view)", s.name),
                    format!("{} personas", s.sensitivity_persona.len()),
                    fit,
                    &y,
                ));
                fits.push(json!({"series": s.name, "points": s.sensitivity_persona.len(), "unit": "persona (second view)", "regression": fit}));
            }
            if s.variants.len() >= 2 {
                let dists: Vec<Vec<f64>> = s.variants.iter().map(|(_, d)| d.clone()).collect();
                let bary = arithmetic_barycenter(&dists, None)?;
                for (name, d) in &s.variants {
                    variant_table.rows.push(vec![
                        s.name.clone(),
                        name.clone(),
                        f(total_variation(d, &bary)?),
                        f(normalized_entropy(d)?),
                    ]);
                }
            }
        }
        json["sensitivity"] = json!(fits);
        let mut paragraphs = vec![
            "Prompt sensitivity as in the latent-space voting study: for each group g (an attribute value), the distributions ψ_{j,g} of its prompt variants j, their barycenter ψ̄_g (arithmetic mean), x = H_norm(ψ_g) and y = mean_j W(ψ_{j,g}, ψ̄_g), with every ψ the ratio of sums `probe scale` computes. Parties are unordered, so W uses the 0/1 ground cost, which makes it the total variation. One line per series: ordinary least squares over all points (the figure draws at most a subsample). Question-level evaluations give one point per cell. The per-persona rows (each persona's own variants, from its rows' normalized distributions) are a second view, in the table only.".to_string(),
        ];
        if scatters.is_empty() {
            paragraphs.push(
                "No series has two or more prompt variants per persona: nothing to plot.".into(),
            );
        }
        sections.push(Section {
            id: "sensitivity",
            title: "Prompt sensitivity vs entropy".into(),
            paragraphs,
            table: Some(table),
            figure: Some(fig(
                "sensitivity",
                figures::scatter(
                    "Prompt sensitivity W vs normalized entropy",
                    "H_norm of the variants' barycenter",
                    "mean W(ψ_j, ψ̄)",
                    &scatters,
                ),
            )?),
        });
        if !variant_table.rows.is_empty() {
            sections.push(Section {
                id: "variants",
                title: "Population distribution per prompt variant".into(),
                paragraphs: vec!["W(ψ_j, ψ̄) of every prompt variant's population-level distribution to their barycenter.".into()],
                table: Some(variant_table),
                figure: None,
            });
        }
    }

    // 3c. negative scaling factors: does the policy, rather than the model, decide ψ?
    {
        let mut table = Table {
            header: [
                "distribution",
                "party",
                "negative factors",
                "ψ clip",
                "ψ shift",
                "ψ softmax",
            ]
            .map(String::from)
            .to_vec(),
            rows: vec![],
        };
        let mut warnings = Vec::new();
        let mut out = Vec::new();
        for s in series.iter().filter(|s| !s.policy_sensitivity.is_empty()) {
            for (party, share, psi) in &s.policy_sensitivity {
                let cell = |x: &Option<f64>| x.map_or("–".to_string(), f);
                table.rows.push(vec![
                    legend_name(s),
                    party.clone(),
                    format!("{:.0} %", 100.0 * share),
                    cell(&psi[0]),
                    cell(&psi[1]),
                    cell(&psi[2]),
                ]);
                out.push(
                    json!({"series": s.name, "party": party, "negative_share": share,
                                "psi": {"clip": psi[0], "shift": psi[1], "softmax": psi[2]}}),
                );
                if *share >= 0.5 {
                    warnings.push(format!(
                        "{}: {party}'s scaling factor is negative in {:.0} % of rows, so the negative-factor policy, not the model, sets most of its ψ (clip {}, shift {}).",
                        legend_name(s),
                        100.0 * share,
                        cell(&psi[0]),
                        cell(&psi[1])
                    ));
                }
            }
        }
        if !table.rows.is_empty() {
            json["negative_factors"] = json!(out);
            let mut paragraphs = vec!["A scaling factor m_p can be negative (the vectors' coefficients are), and ψ needs m' ≥ 0: `clip` (the default) sets negatives to 0, `shift` subtracts the run's smallest factor, `softmax` normalizes each row by exp. Per party: the share of rows with a negative factor, and ψ over all rows under each policy. Where the columns disagree, the policy decides the result.".to_string()];
            paragraphs.extend(warnings);
            sections.push(Section {
                id: "negative-factors",
                title: "Negative scaling factors and ψ under each policy".into(),
                paragraphs,
                table: Some(table),
                figure: None,
            });
        }
    }

    // 4. TV leaderboard against the survey (pooled distributions only; question-level tasks
    // are ranked in their own section, each against its own references)
    {
        let mut entries: Vec<(String, Estimate, usize)> = Vec::new();
        let mut extras: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
        let mut matched_scopes: BTreeSet<(String, String)> = BTreeSet::new();
        for s in &series {
            let mut tvs = Vec::new();
            for (scope, d) in &s.pooled {
                if !like_with_like(s, scope) {
                    continue;
                }
                if let Some((r, _)) = ref_by_scope
                    .get(scope)
                    .and_then(|c| align_reference(c, &s.options))
                {
                    tvs.push(total_variation(d, &r)?);
                    matched_scopes.insert(scope.clone());
                }
            }
            if !tvs.is_empty() {
                let est = bootstrap_mean(&tvs, None, o.bootstrap.max(1), o.level, o.seed)?;
                entries.push((s.name.clone(), est, tvs.len()));
                extras.insert(
                    s.name.clone(),
                    series_extras(s, &ref_by_scope, o.seed, false)?,
                );
            }
        }
        // baselines on the same groups, over the first series' options
        if let Some(options) = series
            .iter()
            .find(|s| !s.options.is_empty())
            .map(|s| s.options.clone())
        {
            let refs: Vec<(Vec<f64>, f64)> = matched_scopes
                .iter()
                .filter_map(|sc| {
                    let c = ref_by_scope.get(sc)?;
                    let (r, _) = align_reference(c, &options)?;
                    Some((r, c.weight.unwrap_or(1.0)))
                })
                .collect();
            if !refs.is_empty() {
                let n = options.len();
                let uniform = vec![1.0 / n as f64; n];
                let everyone = ref_by_scope
                    .get(&all_scope)
                    .and_then(|c| align_reference(c, &options))
                    .map(|(r, _)| r)
                    .unwrap_or_else(|| refs[0].0.clone());
                let pooled_majority = crate::compare::one_hot_argmax(&everyone);
                let top = pooled_majority.iter().position(|&v| v == 1.0).unwrap_or(0);
                let pooled_name = format!("baseline: pooled majority ({})", options[top]);
                for (name, pred) in [
                    ("baseline: uniform", Some(uniform)),
                    (MAJORITY_GROUPS, None),
                    (&*pooled_name, Some(pooled_majority)),
                ] {
                    // `None`: each group's own most common answer.
                    let tvs: Vec<f64> = refs
                        .iter()
                        .map(|(r, _)| {
                            total_variation(
                                pred.as_deref()
                                    .unwrap_or(&crate::compare::one_hot_argmax(r)),
                                r,
                            )
                        })
                        .collect::<Result<_, _>>()?;
                    let est = bootstrap_mean(&tvs, None, o.bootstrap.max(1), o.level, o.seed)?;
                    entries.push((name.to_string(), est, tvs.len()));
                }
            }
        }
        entries.sort_by(|a, b| a.1.value.total_cmp(&b.1.value));
        let mut paragraphs = vec![format!(
            "Total variation ½‖p − q‖₁ between each distribution and the survey, averaged over the groups both have (lower is better; the `groups` column counts groups), with {:.0} % percentile bootstrap intervals over groups ({} resamples, seed {}); an interval from one group is shown as n/a. Calibration ECE: in 10 bins of the top predicted probability, how far the share of the group that actually chose that option is from it (0 = calibrated). Discretization floor (sampled answers only): the TV a perfect sampler of the survey reaches with the same number of answers — the benchmark's discretization error, below which a sampling method cannot go. Baselines: the uniform distribution; the benchmark's majority baseline, all mass on each group's own most common answer; and, under its own name, the weaker pooled majority, all mass on the whole population's most common answer. Question-level tasks (OpinionQA, a question JSONL such as the coin toy) are scored against their own references in the next section, never ranked against the survey.",
            100.0 * o.level,
            o.bootstrap,
            o.seed
        )];
        if entries.is_empty()
            && series
                .iter()
                .any(|s| !s.own.is_empty() && s.pooled.is_empty())
        {
            paragraphs.push(
                "Nothing here is compared with the survey: the evaluations are question-level tasks, ranked in the next section against their own references.".into(),
            );
        } else if entries.is_empty() {
            paragraphs.push(format!(
                "No distribution shares a group with the reference ({}): give a survey with matching `attribute`/`value` labels.",
                reference.name
            ));
        }
        let table = Table {
            header: vec![
                "rank".into(),
                "distribution".into(),
                "groups".into(),
                "TV".into(),
                "CI".into(),
                "calibration ECE".into(),
                "discretization floor".into(),
            ],
            rows: entries
                .iter()
                .enumerate()
                .map(|(i, entry)| leaderboard_row(i + 1, entry, &extras))
                .collect(),
        };
        json["leaderboard"] = json!(entries
            .iter()
            .map(|(n, e, k)| {
                let (ece, floor) = extras.get(n).copied().unwrap_or_default();
                json!({"name": n, "groups": k, "tv": e.value, "low": e.low, "high": e.high,
                       "calibration_ece": ece, "discretization_floor": floor})
            })
            .collect::<Vec<_>>());
        let categories: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
        let bars: Vec<Bars> = vec![Bars {
            name: "mean TV over groups".into(),
            values: entries.iter().map(|e| e.1.value).collect(),
            color: figures::color(0),
            intervals: Some(entries.iter().map(|e| (e.1.low, e.1.high)).collect()),
        }];
        // a study of question-level tasks only has nothing to rank against the survey
        let figure = if entries.is_empty() {
            None
        } else {
            Some(fig(
                "leaderboard",
                figures::grouped_rows(
                    "Total variation to the survey (lower is better)",
                    "TV",
                    &categories,
                    &bars,
                    None,
                    None,
                ),
            )?)
        };
        sections.push(Section {
            id: "leaderboard",
            title: "Leaderboard: total variation to the survey".into(),
            paragraphs,
            table: Some(table),
            figure,
        });
    }

    // 4b. question-level tasks: per task (dataset), each series against the questions' own
    // references (Meister et al.'s A), with the baselines of that task's references only
    {
        let mut tasks: BTreeMap<String, Vec<&Series>> = BTreeMap::new();
        for s in series.iter().filter(|s| !s.own.is_empty()) {
            let task = s
                .labels
                .get("dataset")
                .cloned()
                .unwrap_or_else(|| "questions".into());
            tasks.entry(task).or_default().push(s);
        }
        let mut rows_json = Vec::new();
        let mut table = Table {
            header: vec![
                "task".into(),
                "rank".into(),
                "distribution".into(),
                "groups".into(),
                "A (TV)".into(),
                "CI".into(),
                "calibration ECE".into(),
                "discretization floor".into(),
            ],
            rows: vec![],
        };
        let mut categories = Vec::new();
        let mut bar_values = Vec::new();
        let mut bar_intervals = Vec::new();
        for (task, members) in &tasks {
            let mut entries: Vec<(String, Estimate, usize)> = Vec::new();
            let mut extras: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
            for s in members {
                // The benchmark's A: the mean over groups of each group's mean over questions.
                let own: Vec<(String, f64)> = s
                    .own
                    .iter()
                    .map(|c| {
                        Ok((
                            c.group.clone(),
                            total_variation(&c.predicted, &c.reference)?,
                        ))
                    })
                    .collect::<Result<_>>()?;
                let tvs = mean_of_group_means(&own);
                let est = bootstrap_mean(&tvs, None, o.bootstrap.max(1), o.level, o.seed)?;
                entries.push((s.name.clone(), est, tvs.len()));
                extras.insert(
                    s.name.clone(),
                    series_extras(s, &ref_by_scope, o.seed, true)?,
                );
            }
            // question-level baselines: every (group, question) reference of this task once
            let own_refs: BTreeMap<(String, String), &Vec<f64>> = members
                .iter()
                .flat_map(|s| s.own.iter())
                .map(|c| ((c.group.clone(), c.question.clone()), &c.reference))
                .collect();
            if !own_refs.is_empty() {
                // the majority option of a question: largest summed share over its groups
                let mut pooled: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
                for ((_, q), r) in &own_refs {
                    let acc = pooled
                        .entry(q.as_str())
                        .or_insert_with(|| vec![0.0; r.len()]);
                    acc.iter_mut().zip(r.iter()).for_each(|(a, b)| *a += b);
                }
                let mut uniform = Vec::new();
                let mut majority = Vec::new();
                let mut pooled_majority = Vec::new();
                for ((g, q), r) in &own_refs {
                    let n = r.len();
                    let g = g.clone();
                    uniform.push((g.clone(), total_variation(&vec![1.0 / n as f64; n], r)?));
                    majority.push((
                        g.clone(),
                        total_variation(&crate::compare::one_hot_argmax(r), r)?,
                    ));
                    let pooled = &pooled[q.as_str()];
                    pooled_majority.push((
                        g,
                        total_variation(&crate::compare::one_hot_argmax(pooled), r)?,
                    ));
                }
                for (name, tvs) in [
                    ("baseline: uniform (questions)", uniform),
                    (MAJORITY_QUESTIONS, majority),
                    ("baseline: pooled majority per question", pooled_majority),
                ] {
                    let tvs = mean_of_group_means(&tvs);
                    let est = bootstrap_mean(&tvs, None, o.bootstrap.max(1), o.level, o.seed)?;
                    entries.push((name.to_string(), est, tvs.len()));
                }
            }
            entries.sort_by(|a, b| a.1.value.total_cmp(&b.1.value));
            for (rank, entry) in entries.iter().enumerate() {
                let (n, e, k) = entry;
                let (ece, floor) = extras.get(n).copied().unwrap_or_default();
                let mut row = vec![task.clone()];
                row.extend(leaderboard_row(rank + 1, entry, &extras));
                table.rows.push(row);
                rows_json.push(json!({"task": task, "name": n, "groups": k, "tv": e.value,
                    "low": e.low, "high": e.high, "calibration_ece": ece,
                    "discretization_floor": floor}));
                categories.push(format!("{task}: {n}"));
                bar_values.push(e.value);
                bar_intervals.push((e.low, e.high));
            }
        }
        if !tasks.is_empty() {
            json["task_leaderboard"] = json!(rows_json);
            let bars = vec![Bars {
                name: "A: mean over groups of the mean TV over questions".into(),
                values: bar_values,
                color: figures::color(0),
                intervals: Some(bar_intervals),
            }];
            sections.push(Section {
                id: "task-leaderboard",
                title: "Leaderboards by task: each question against its own reference".into(),
                paragraphs: vec![format!(
                    "Question-level evaluations (`probe eval` on OpinionQA or a question file) are ranked per task, each against the reference distributions of its own questions, never against the survey above. A is Meister et al.'s (2024) distributional alignment: the total variation between predicted and reference distribution of each (group, question), averaged over a group's questions, then over groups (lower is better; `groups` counts groups), with {:.0} % percentile bootstrap intervals over groups ({} resamples, seed {}); an interval from one group is shown as n/a. Baselines per task: the uniform distribution; the benchmark's majority baseline, all mass on each group's own most common answer per question; and the weaker pooled majority per question, under its own name.",
                    100.0 * o.level,
                    o.bootstrap,
                    o.seed
                )],
                table: Some(table),
                figure: Some(fig(
                    "task-leaderboard",
                    figures::grouped_rows(
                        "A per task (lower is better)",
                        "A (TV)",
                        &categories,
                        &bars,
                        None,
                        None,
                    ),
                )?),
            });
        }
    }

    // 5. probe accuracy per layer
    {
        let mut lines = Vec::new();
        let mut table = Table {
            header: vec![
                "run".into(),
                "layer".into(),
                "per-layer probes".into(),
                "shared probe".into(),
            ],
            rows: vec![],
        };
        for (i, c) in curves.iter().enumerate() {
            let pts = |v: &[Option<f64>]| -> Vec<(f64, f64)> {
                c.layers
                    .iter()
                    .zip(v)
                    .filter_map(|(l, a)| Some((*l as f64, (*a)?)))
                    .collect()
            };
            let per_layer = pts(&c.per_layer);
            let shared = pts(&c.shared);
            if !per_layer.is_empty() {
                lines.push((
                    format!("{} per-layer", c.run),
                    figures::color(2 * i),
                    per_layer,
                ));
            }
            if !shared.is_empty() {
                lines.push((
                    format!("{} shared", c.run),
                    figures::color(2 * i + 1),
                    shared,
                ));
            }
            for (k, l) in c.layers.iter().enumerate() {
                table.rows.push(vec![
                    c.run.clone(),
                    l.to_string(),
                    c.per_layer[k].map(f).unwrap_or_else(|| "–".into()),
                    c.shared[k].map(f).unwrap_or_else(|| "–".into()),
                ]);
            }
        }
        json["probe_accuracy"] = json!(curves);
        let mut paragraphs = vec!["Cross-validated balanced accuracy of the party-vs-rest probes per layer, mean over parties (probe train's folds). Dashed line: chance (0.5).".to_string()];
        if curves.is_empty() {
            paragraphs.push("No run directory has a probes.json.".into());
        }
        sections.push(Section {
            id: "probe-accuracy",
            title: "Probe accuracy per layer".into(),
            paragraphs,
            table: Some(table),
            figure: Some(fig(
                "probe-accuracy",
                figures::lines(
                    "Probe balanced accuracy per layer",
                    "layer",
                    "balanced accuracy",
                    &lines,
                    Some(("chance", 0.5)),
                ),
            )?),
        });
    }

    // 5b. chance levels of the latent results
    {
        let mut table = Table {
            header: [
                "run",
                "party",
                "probe bal.acc",
                "shuffled labels",
                "selection mean cos",
                "vs random (z, p)",
                "vs shuffled probes (z, p)",
                "above chance",
            ]
            .map(String::from)
            .to_vec(),
            rows: vec![],
        };
        let mut warnings = Vec::new();
        for run in runs {
            for c in &run.chance {
                let opt = |x: Option<f64>| x.map_or("–".to_string(), f);
                let zp = |t: Option<(f64, f64)>| {
                    t.map_or("–".to_string(), |(z, p)| format!("{z:+.1}, {p:.3}"))
                };
                table.rows.push(vec![
                    run.model.clone(),
                    c.party.clone(),
                    opt(c.accuracy.map(|a| a.0)),
                    c.accuracy
                        .map_or("–".into(), |(_, m, s)| format!("{} ± {}", f(m), f(s))),
                    opt(c.selection),
                    zp(c.random),
                    zp(c.shuffled),
                    c.above_chance
                        .map_or("–".into(), |a| if a { "yes".into() } else { "no".into() }),
                ]);
                if c.above_chance == Some(false) {
                    warnings.push(c.party.clone());
                }
            }
        }
        if !table.rows.is_empty() {
            json["chance"] = json!(runs
                .iter()
                .map(|r| json!({"run": r.model, "parties": r.chance}))
                .collect::<Vec<_>>());
            let mut paragraphs = vec!["Latent findings beside the level chance reaches. Probe accuracy: the shared probe's cross-validated balanced accuracy, and the same training on party labels shuffled within each statement (mean ± sd over seeds). Value vectors: the mean cosine of a party's joint top-k selection with its probe direction, against the same statistic for random directions and for the label-shuffled probes' directions (z-score and permutation p-value); \"above chance\" means p < 0.05 against every null.".to_string()];
            if !warnings.is_empty() {
                paragraphs.push(format!(
                    "Not above chance: {}. Their value vectors, and the ψ built from them, may reflect no party signal.",
                    warnings.join(", ")
                ));
            }
            sections.push(Section {
                id: "chance",
                title: "Chance levels of the latent results".into(),
                paragraphs,
                table: Some(table),
                figure: None,
            });
        }
    }

    // what went into the evaluations: units, failures and parse failures per setting
    {
        let mut table = Table {
            header: vec![
                "run".into(),
                "evaluation".into(),
                "method".into(),
                "steering".into(),
                "units".into(),
                "failed units".into(),
                "parse failures".into(),
                "parse failure rate".into(),
            ],
            rows: vec![],
        };
        for r in runs {
            for t in &r.evals {
                table.rows.push(vec![
                    r.model.clone(),
                    t.eval.clone(),
                    t.method.clone(),
                    t.steering.clone(),
                    t.units.to_string(),
                    t.failed_units.to_string(),
                    t.parse_failures.to_string(),
                    t.parse_failure_rate.map_or("–".into(), f),
                ]);
            }
        }
        if !table.rows.is_empty() {
            json["eval_tally"] = json!(runs
                .iter()
                .map(|r| json!({"run": r.model, "settings": r.evals}))
                .collect::<Vec<_>>());
            let failed: u64 = runs
                .iter()
                .flat_map(|r| &r.evals)
                .map(|t| t.failed_units)
                .sum();
            let mut paragraphs = vec!["What went into each evaluation's numbers: per method and steering, the (group, question) units asked, the units that produced no distribution (every retry failed to parse; they are left out of every mean above, not counted as zero), and the answers that could not be parsed (the parse failure rate is per attempt).".to_string()];
            if failed > 0 {
                paragraphs.push(format!(
                    "{failed} unit(s) produced no distribution: the scores of those settings rest on fewer units than asked."
                ));
            }
            sections.push(Section {
                id: "eval-tally",
                title: "Evaluations: units, failures and parse failures".into(),
                paragraphs,
                table: Some(table),
                figure: None,
            });
        }
    }

    // 6. co-variation of party shares across groups (not item × item correlation of
    //    respondents, which the representativeness framework means by "correlation structure")
    {
        let mut panels = Vec::new();
        let mut table = Table {
            header: vec![
                "series".into(),
                "groups".into(),
                "mean |Δr|".into(),
                "Frobenius".into(),
                "corr. of corr.".into(),
            ],
            rows: vec![],
        };
        let mut out = Vec::new();
        for s in &series {
            let scopes: Vec<&(String, String)> =
                s.pooled.keys().filter(|sc| sc.0 != "all").collect();
            if scopes.len() < 3 {
                continue;
            }
            let model_rows: Vec<Vec<f64>> = scopes.iter().map(|sc| s.pooled[*sc].clone()).collect();
            let model = across_groups(&model_rows, s.options.len());
            panels.push(Heatmap {
                title: s.name.clone(),
                labels: s.options.clone(),
                values: model.values.clone(),
            });
            // the survey over the groups it shares with the model
            let shared: Vec<(Vec<f64>, Vec<f64>)> = scopes
                .iter()
                .filter_map(|sc| {
                    let (r, _) = align_reference(ref_by_scope.get(*sc)?, &s.options)?;
                    Some((s.pooled[*sc].clone(), r))
                })
                .collect();
            if shared.len() >= 3 {
                let (m_rows, r_rows): (Vec<_>, Vec<_>) = shared.into_iter().unzip();
                let m = across_groups(&m_rows, s.options.len());
                let h = across_groups(&r_rows, s.options.len());
                panels.push(Heatmap {
                    title: format!("{} (same {} groups)", reference.name, r_rows.len()),
                    labels: s.options.clone(),
                    values: h.values.clone(),
                });
                let finite = |c: &CorrelationMatrix| c.values.iter().all(|v| v.is_finite());
                if finite(&m) && finite(&h) {
                    let d = matrix_distance(&m, &h)?;
                    table.rows.push(vec![
                        s.name.clone(),
                        r_rows.len().to_string(),
                        f(d.mean_abs_diff),
                        f(d.frobenius),
                        f(d.corr_of_corr),
                    ]);
                    out.push(json!({"series": s.name, "groups": r_rows.len(), "distance": d, "model": m.values, "survey": h.values}));
                } else {
                    out.push(json!({"series": s.name, "groups": r_rows.len(), "distance": null, "model": m.values.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>()}));
                }
            } else {
                out.push(json!({"series": s.name, "groups": scopes.len(), "model": model.values.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>()}));
            }
        }
        json["group_covariation"] = json!(out);
        let mut paragraphs = vec!["Co-variation of party shares across groups: the Pearson correlation, over the groups (attribute values), between two options' shares — which parties draw support from the same groups — for each model and, where the survey has the same groups, for the survey; distances over the option pairs (mean |Δr|, Frobenius norm of the difference, correlation of the correlations).".to_string(),
            "Read with care: shares sum to 1 in every group, so these correlations are compositional and biased negative (with few parties, one party's gain is another's loss), and the groups overlap (every persona is in one group of each attribute), so they are not independent observations. This is not the item × item correlation structure of simulated respondents (\"Beyond marginal distributions\"), which needs individual-level answers.".to_string()];
        if panels.is_empty() {
            paragraphs.push("No series has three or more groups.".into());
        } else if table.rows.is_empty() {
            paragraphs.push("The reference has no group-level data (a respondent CSV gives it), so only the models' matrices are shown.".into());
        }
        sections.push(Section {
            id: "group-covariation",
            title: "Party shares across groups (compositional co-variation)".into(),
            paragraphs,
            table: (!table.rows.is_empty()).then_some(table),
            figure: Some(fig(
                "group-covariation",
                figures::heatmaps(
                    "Co-variation of option shares across groups (compositional)",
                    &panels,
                ),
            )?),
        });
    }

    Ok(Report {
        title: o.title.clone(),
        sections,
        json,
    })
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}\
table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}figure{margin:1em 0;overflow-x:auto}figure svg{max-width:100%;height:auto}\
.notes{color:#555;font-size:.9em}\
.banner{background:#fff4d6;border:1px solid #d9a93a;border-radius:4px;padding:.6em 1em}";

impl Report {
    /// Files to write, relative to the output directory: report.md, report.html, report.json
    /// and figures/<id>.svg.
    pub fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        let mut md = format!("# {}\n\n", self.title);
        let mut html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            html_escape(&self.title),
            html_escape(&self.title)
        );
        for note in self.json["notes"].as_array().into_iter().flatten() {
            let note = note.as_str().unwrap_or_default();
            let _ = writeln!(md, "> **Note:** {}\n", md_escape(note));
            let _ = writeln!(
                html,
                "<p class=\"banner\"><b>Note:</b> {}</p>",
                html_escape(note)
            );
        }
        if let Some(notes) = self.json["reference"]["notes"].as_array() {
            let name = self.json["reference"]["name"].as_str().unwrap_or("");
            let _ = writeln!(md, "Survey reference: **{}**.", md_escape(name));
            let _ = writeln!(
                html,
                "<p>Survey reference: <b>{}</b>.</p>",
                html_escape(name)
            );
            for n in notes.iter().filter_map(Value::as_str) {
                let _ = writeln!(md, "- {n}");
                let _ = writeln!(html, "<p class=\"notes\">{}</p>", html_escape(n));
            }
            md.push('\n');
        }
        html.push_str("<nav><ul>\n");
        for s in &self.sections {
            let _ = writeln!(
                html,
                "<li><a href=\"#{}\">{}</a></li>",
                s.id,
                html_escape(&s.title)
            );
        }
        html.push_str("</ul></nav>\n");
        for s in &self.sections {
            let _ = writeln!(md, "## {}\n", s.title);
            let _ = writeln!(
                html,
                "<section id=\"{}\">\n<h2>{}</h2>",
                s.id,
                html_escape(&s.title)
            );
            for p in &s.paragraphs {
                let _ = writeln!(md, "{p}\n");
                let _ = writeln!(html, "<p>{}</p>", html_escape(p));
            }
            if let Some(svg) = &s.figure {
                let rel = PathBuf::from("figures").join(format!("{}.svg", s.id));
                let _ = writeln!(md, "![{}]({})\n", s.title, rel.display());
                let _ = writeln!(html, "<figure id=\"figure-{}\">\n{svg}\n</figure>", s.id);
                files.push((rel, svg.clone().into_bytes()));
            }
            if let Some(t) = &s.table {
                if !t.rows.is_empty() {
                    let _ = writeln!(
                        md,
                        "| {} |",
                        t.header
                            .iter()
                            .map(|h| md_escape(h))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                    let _ = writeln!(md, "|{}", " --- |".repeat(t.header.len()));
                    html.push_str("<table>\n<tr>");
                    for h in &t.header {
                        let _ = write!(html, "<th>{}</th>", html_escape(h));
                    }
                    html.push_str("</tr>\n");
                    for r in &t.rows {
                        let _ = writeln!(
                            md,
                            "| {} |",
                            r.iter()
                                .map(|c| md_escape(c))
                                .collect::<Vec<_>>()
                                .join(" | ")
                        );
                        html.push_str("<tr>");
                        for c in r {
                            let _ = write!(html, "<td>{}</td>", html_escape(c));
                        }
                        html.push_str("</tr>\n");
                    }
                    html.push_str("</table>\n");
                    md.push('\n');
                }
            }
            html.push_str("</section>\n");
        }
        html.push_str("</body>\n</html>\n");
        files.push(("report.md".into(), md.into_bytes()));
        files.push(("report.html".into(), html.into_bytes()));
        files.push((
            "report.json".into(),
            serde_json::to_vec_pretty(&self.json).expect("report JSON is serializable"),
        ));
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTIES: [&str; 3] = ["SPD", "GRÜNE", "AfD"];

    fn psi(d: [f64; 3]) -> Value {
        json!({"psi": {"SPD": d[0], "GRÜNE": d[1], "AfD": d[2]}, "rows": 2, "weight": 2.0})
    }

    /// A run directory as `probe train` + `probe scale` leave it, with numbers chosen by hand.
    fn write_run(dir: &Path) {
        std::fs::write(
            dir.join("probes.json"),
            json!({"model": "models/tiny.Q8_0.gguf", "report": {
                "parties": PARTIES,
                "null": {"seeds": [1, 2], "observed": [0.8, 0.6, 0.7], "mean": [0.5, 0.52, 0.49], "sd": [0.03, 0.04, 0.02],
                         "balanced_accuracy": [[0.47, 0.48, 0.47], [0.53, 0.56, 0.51]], "p_value": [0.33, 0.33, 0.33]},
                "summary": [
                {"hook": "blocks.3.hook_resid_post", "per_layer": {"balanced_accuracy": 0.6}, "shared": {"balanced_accuracy": 0.55}},
                {"hook": "blocks.4.hook_resid_post", "per_layer": {"balanced_accuracy": 0.7}, "shared": {"balanced_accuracy": 0.65}},
                {"hook": "all", "shared": {"balanced_accuracy": 0.6}}
            ]}})
            .to_string(),
        )
        .unwrap();
        let vectors = dir.join("vectors");
        std::fs::create_dir_all(&vectors).unwrap();
        let test = |z: f64, p: f64| json!({"observed": 0.2, "n": 10, "mean": 0.1, "sd": 0.05, "z": z, "p": p});
        std::fs::write(
            vectors.join("vectors.json"),
            json!({"chance": [
                {"party": "SPD", "statistic": "s", "random": test(4.0, 0.01), "shuffled": test(3.0, 0.02), "above_chance": true},
                {"party": "GRÜNE", "statistic": "s", "random": test(0.5, 0.3), "shuffled": test(0.1, 0.45), "above_chance": false},
            ]})
            .to_string(),
        )
        .unwrap();
        let scale = dir.join("scale-grid");
        std::fs::create_dir_all(&scale).unwrap();
        let groups = json!({
            "gender": {"female": psi([0.5, 0.3, 0.2]), "male": psi([0.3, 0.2, 0.5])},
            "region": {"east": psi([0.2, 0.1, 0.7]), "west": psi([0.5, 0.3, 0.2])},
        });
        std::fs::write(
            scale.join("psi.json"),
            json!({"parties": PARTIES, "all": psi([0.4, 0.25, 0.35]), "by_group": groups,
                   "by_variant": {
                       "a": {"all": psi([0.5, 0.25, 0.25]), "by_group": {"gender": {"female": psi([0.6, 0.3, 0.1]), "male": psi([0.3, 0.2, 0.5])}}},
                       "b": {"all": psi([0.3, 0.25, 0.45]), "by_group": {"gender": {"female": psi([0.4, 0.3, 0.3]), "male": psi([0.3, 0.2, 0.5])}}}},
                   "run": {"vector_layers": [3, 4], "select": "joint", "k": 20, "personas": 4, "variants": ["a", "b"],
                           "policy_sensitivity": {
                               "SPD": {"negative_share": 0.1, "psi": {"clip": 0.4, "shift": 0.38, "softmax": 0.36}},
                               "GRÜNE": {"negative_share": 1.0, "psi": {"clip": 0.0, "shift": 0.2, "softmax": 0.3}},
                               "AfD": {"negative_share": 0.0, "psi": {"clip": 0.6, "shift": 0.42, "softmax": 0.34}}}}})
            .to_string(),
        )
        .unwrap();
        // three personas × two variants; persona p3 has one undefined row
        let rows = [
            ("p1", "a", Some([0.5, 0.5, 0.0])),
            ("p1", "b", Some([0.5, 0.0, 0.5])),
            ("p2", "a", Some([1.0, 0.0, 0.0])),
            ("p2", "b", Some([0.0, 1.0, 0.0])),
            ("p3", "a", Some([0.2, 0.4, 0.4])),
            ("p3", "b", None),
            ("p4", "a", Some([0.6, 0.2, 0.2])),
            ("p4", "b", Some([0.2, 0.2, 0.6])),
        ];
        let text: String = rows
            .iter()
            .map(|(p, v, d)| {
                let dist = d.map(|d| json!({"SPD": d[0], "GRÜNE": d[1], "AfD": d[2]}));
                json!({"persona": p, "variant": v, "distribution": dist}).to_string() + "\n"
            })
            .collect();
        std::fs::write(scale.join("rows.jsonl"), text).unwrap();
    }

    fn reference() -> Reference {
        let cell = |attribute: &str, value: &str, r: Vec<f64>, options: &[&str]| Cell {
            labels: BTreeMap::from([
                ("attribute".to_string(), attribute.to_string()),
                ("value".to_string(), value.to_string()),
            ]),
            options: options.iter().map(|s| s.to_string()).collect(),
            predicted: None,
            reference: Some(r),
            weight: None,
            ordinal: None,
            origin: None,
        };
        // the survey spells the Greens differently and has an extra option
        let opts = ["Bündnis 90/Die Grünen", "SPD", "AfD", "Sonstige"];
        Reference {
            name: "survey".into(),
            cells: vec![
                cell("all", "all", vec![0.2, 0.4, 0.2, 0.2], &opts),
                cell("gender", "female", vec![0.3, 0.3, 0.3, 0.1], &opts),
                cell("gender", "male", vec![0.1, 0.5, 0.3, 0.1], &opts),
                cell("region", "east", vec![0.1, 0.2, 0.6, 0.1], &opts),
                cell("region", "west", vec![0.3, 0.5, 0.1, 0.1], &opts),
            ],
            notes: vec![],
        }
    }

    /// ψ that pools the 2021 vote and a vote "tomorrow" is compared with the 2021 survey only
    /// through its year=2021 scope; a ψ of one year through every scope.
    #[test]
    fn a_psi_pooling_years_is_compared_only_by_year() {
        let dir = tempfile::tempdir().unwrap();
        write_run(dir.path());
        let psi_path = dir.path().join("scale-grid/psi.json");
        let mut doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&psi_path).unwrap()).unwrap();
        doc["by_group"]["year"] =
            json!({"2021": psi([0.4, 0.3, 0.3]), "tomorrow": psi([0.2, 0.2, 0.6])});
        std::fs::write(&psi_path, doc.to_string()).unwrap();
        let run = load_run(dir.path()).unwrap();
        assert_eq!(run.series[0].years, ["2021", "tomorrow"]);
        let mut r = reference();
        let mut year = r.cells[0].clone();
        year.labels.insert("attribute".into(), "year".into());
        year.labels.insert("value".into(), "2021".into());
        r.cells.push(year);
        let report = build(
            &[run],
            &[],
            &r,
            &ReportOptions {
                bootstrap: 50,
                ..ReportOptions::default()
            },
        )
        .unwrap();
        let board = report.json["leaderboard"].as_array().unwrap();
        let latent = board
            .iter()
            .find(|e| e["name"].as_str().unwrap().contains("latent"))
            .unwrap();
        assert_eq!(latent["groups"], 1, "{latent}");
        let dists = report
            .sections
            .iter()
            .find(|s| s.id == "distributions")
            .unwrap();
        assert!(
            dists
                .paragraphs
                .iter()
                .any(|p| p.contains("year = 2021, tomorrow")),
            "{:?}",
            dists.paragraphs
        );
    }

    #[test]
    fn aligns_reference_through_aliases_and_renormalizes() {
        let r = reference();
        let options: Vec<String> = PARTIES.iter().map(|s| s.to_string()).collect();
        let (d, kept) = align_reference(&r.cells[0], &options).unwrap();
        assert!((kept - 0.8).abs() < 1e-12);
        let want = [0.5, 0.25, 0.25]; // SPD .4, GRÜNE .2, AfD .2 over .8
        d.iter()
            .zip(want)
            .for_each(|(a, b)| assert!((a - b).abs() < 1e-12));
        let fdp = vec!["FDP".to_string(), "SPD".to_string()];
        assert!(align_reference(&r.cells[0], &fdp).is_none());
    }

    #[test]
    fn report_numbers_match_hand_computation_and_every_figure_is_drawn() {
        let dir = tempfile::tempdir().unwrap();
        write_run(dir.path());
        let run = load_run(dir.path()).unwrap();
        assert_eq!(run.model, "tiny.Q8_0");
        assert_eq!(run.probes.as_ref().unwrap().layers, [3, 4]);
        let s = &run.series[0];
        // the paper's points, one per group with every variant (region has none per variant):
        // women: ψ_{a,g} (.6,.3,.1), ψ_{b,g} (.4,.3,.3), barycenter (.5,.3,.2), W 0.1 each;
        // x = H_norm(ψ_g) of the pooled ψ_g (.5,.3,.2); men: identical variants, W 0
        let hn = |d: &[f64]| -d.iter().map(|p| p * p.ln()).sum::<f64>() / 3f64.ln();
        assert_eq!(s.sensitivity_unit, "group");
        assert_eq!(s.sensitivity.len(), 2);
        assert!((s.sensitivity[0].0 - hn(&[0.5, 0.3, 0.2])).abs() < 1e-12);
        assert!((s.sensitivity[0].1 - 0.1).abs() < 1e-12);
        assert!(
            (s.sensitivity[1].0 - hn(&[0.3, 0.2, 0.5])).abs() < 1e-12
                && s.sensitivity[1].1.abs() < 1e-12
        );
        // the second view, per persona: p3 has a single defined variant, so no point
        let sp = &s.sensitivity_persona;
        assert_eq!(sp.len(), 3);
        // p1: barycenter (.5,.25,.25), TV of each variant to it = .25; H_norm = H(.5,.25,.25)/ln 3
        let h = hn(&[0.5, 0.25, 0.25]);
        assert!((sp[0].0 - h).abs() < 1e-12 && (sp[0].1 - 0.25).abs() < 1e-12);
        // p2: barycenter (.5,.5,0), TV 0.5
        assert!((sp[1].1 - 0.5).abs() < 1e-12);

        let options = ReportOptions {
            bootstrap: 200,
            ..ReportOptions::default()
        };
        let report = build(&[run], &[], &reference(), &options).unwrap();
        let ids: Vec<&str> = report
            .sections
            .iter()
            .filter(|s| s.figure.is_some())
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, FIGURES);
        // leaderboard: TV per matched scope, survey renormalized over SPD, GRÜNE, AfD
        let tv = |p: [f64; 3], r: [f64; 3]| {
            let t: f64 = r.iter().sum();
            0.5 * p.iter().zip(r).map(|(a, b)| (a - b / t).abs()).sum::<f64>()
        };
        let want = [
            tv([0.4, 0.25, 0.35], [0.4, 0.2, 0.2]),
            tv([0.5, 0.3, 0.2], [0.3, 0.3, 0.3]),
            tv([0.3, 0.2, 0.5], [0.5, 0.1, 0.3]),
            tv([0.2, 0.1, 0.7], [0.2, 0.1, 0.6]),
            tv([0.5, 0.3, 0.2], [0.5, 0.3, 0.1]),
        ];
        let mean = want.iter().sum::<f64>() / 5.0;
        let board = report.json["leaderboard"].as_array().unwrap();
        let model = board
            .iter()
            .find(|e| e["name"].as_str().unwrap().contains("latent"))
            .unwrap();
        assert_eq!(model["groups"], 5);
        assert!((model["tv"].as_f64().unwrap() - mean).abs() < 1e-12);
        let uniform = board
            .iter()
            .find(|e| e["name"] == "baseline: uniform")
            .unwrap();
        assert!(uniform["tv"].as_f64().unwrap() > 0.0);
        // per-variant W: ψ_a and ψ_b are each 0.1 TV from their mean
        let variants = report.sections.iter().find(|s| s.id == "variants").unwrap();
        assert_eq!(variants.table.as_ref().unwrap().rows[0][2], "0.100");
        // chance levels: probe accuracy vs shuffled labels, selections vs random and shuffled
        let chance = report.sections.iter().find(|s| s.id == "chance").unwrap();
        assert_eq!(chance.table.as_ref().unwrap().rows.len(), 3);
        assert!(
            chance
                .paragraphs
                .iter()
                .any(|p| p.contains("Not above chance: GRÜNE")),
            "{:?}",
            chance.paragraphs
        );
        assert_eq!(chance.table.as_ref().unwrap().rows[0][3], "0.500 ± 0.030");
        // negative factors: GRÜNE negative in every row → a warning; ψ per policy in the table
        let neg = report
            .sections
            .iter()
            .find(|s| s.id == "negative-factors")
            .unwrap();
        assert_eq!(neg.table.as_ref().unwrap().rows.len(), 3);
        assert!(neg
            .paragraphs
            .iter()
            .any(|p| p.contains("GRÜNE") && p.contains("100 %")));
        assert_eq!(report.json["negative_factors"][1]["psi"]["shift"], 0.2);
        // ψ names its value-vector layers and rows
        let dists = report
            .sections
            .iter()
            .find(|s| s.id == "distributions")
            .unwrap();
        assert!(
            dists.paragraphs.iter().any(|p| p.contains("layers 3–4")),
            "{:?}",
            dists.paragraphs
        );
        // co-variation across groups: 4 groups shared → a distance row; named for what it is
        assert_eq!(report.json["group_covariation"][0]["groups"], 4);
        assert!(report.json.get("correlation").is_none());
        let files = report.files();
        let md = &files
            .iter()
            .find(|(p, _)| p.ends_with("report.md"))
            .unwrap()
            .1;
        let md = String::from_utf8(md.clone()).unwrap();
        assert!(!md.contains("Correlation structure"), "{md}");
        assert!(md.contains("compositional"));
        let html = &files
            .iter()
            .find(|(p, _)| p.ends_with("report.html"))
            .unwrap()
            .1;
        let html = String::from_utf8(html.clone()).unwrap();
        assert_eq!(html.matches("<svg").count(), 6);
        // self-contained: nothing fetched (the SVG namespace URI is an identifier, not a fetch)
        assert!(
            !html.contains("<script") && !html.contains("href=\"http") && !html.contains("src=")
        );
        assert!(files
            .iter()
            .any(|(p, _)| p.ends_with("figures/group-covariation.svg")));
    }

    #[test]
    fn persona_cells_pool_by_attribute_value_with_their_weights() {
        // `probe eval --vote` cells: one per persona (no reference), plus the population
        let cell = |steering: &str, persona: Option<&str>, p: Vec<f64>, w: f64| {
            let mut labels = BTreeMap::from(
                [
                    ("model", "m"),
                    ("method", "logp"),
                    ("steering", steering),
                    ("question", "vote"),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string())),
            );
            if let Some(id) = persona {
                labels.insert("persona".into(), id.into());
            }
            Cell {
                labels,
                options: vec!["SPD".into(), "AfD".into()],
                predicted: Some(p),
                reference: None,
                weight: Some(w),
                ordinal: None,
                origin: None,
            }
        };
        let cells = vec![
            cell(
                "persona",
                Some("gender=female;age=18-24"),
                vec![1.0, 0.0],
                1.0,
            ),
            cell(
                "persona",
                Some("gender=female;age=65-74"),
                vec![0.0, 1.0],
                3.0,
            ),
            cell(
                "persona",
                Some("gender=male;age=18-24"),
                vec![0.5, 0.5],
                1.0,
            ),
            cell("none", None, vec![0.6, 0.4], 1.0),
        ];
        let series = series_from_cells(&cells, "m").unwrap();
        let persona = series
            .iter()
            .find(|s| s.labels["steering"] == "persona")
            .unwrap();
        let close = |a: &str, v: &str, want: [f64; 2]| {
            let got = &persona.pooled[&(a.to_string(), v.to_string())];
            assert!(
                got.iter().zip(want).all(|(x, y)| (x - y).abs() < 1e-12),
                "{a}={v}: {got:?}"
            );
        };
        // weighted: female = (1·[1,0] + 3·[0,1]) / 4
        close("gender", "female", [0.25, 0.75]);
        close("age", "18-24", [0.75, 0.25]);
        close("all", "all", [0.3, 0.7]);
        assert!(persona.own.is_empty());
        let none = series
            .iter()
            .find(|s| s.labels["steering"] == "none")
            .unwrap();
        assert_eq!(none.pooled.len(), 1);
        assert_eq!(
            none.pooled[&("all".to_string(), "all".to_string())],
            [0.6, 0.4]
        );
    }

    #[test]
    fn question_level_cells_score_against_their_own_references() {
        // `probe eval` cells: one per (group, question), each with its reference
        let cell = |method: &str, group: &str, q: &str, p: Vec<f64>, r: Vec<f64>| Cell {
            labels: BTreeMap::from(
                [
                    ("model", "m"),
                    ("method", method),
                    ("steering", "none"),
                    ("attribute", "SEX"),
                    ("group", group),
                    ("question", q),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string())),
            ),
            options: vec!["yes".into(), "no".into()],
            predicted: Some(p),
            reference: Some(r),
            weight: None,
            ordinal: None,
            origin: None,
        };
        let cells = vec![
            cell("logp", "Male", "q1", vec![0.5, 0.5], vec![0.8, 0.2]),
            cell("logp", "Female", "q1", vec![0.9, 0.1], vec![0.3, 0.7]),
            cell("logp", "Male", "q2", vec![0.8, 0.2], vec![0.8, 0.2]),
            cell("verbalize", "Male", "q1", vec![0.8, 0.2], vec![0.8, 0.2]),
        ];
        let series = series_from_cells(&cells, "m").unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].own.len(), 3);
        let report = build(
            &[],
            &series,
            &Reference::default(),
            &ReportOptions::default(),
        )
        .unwrap();
        // ranked per task, against their own references, never against the survey
        assert!(report.json["leaderboard"].as_array().is_none_or(|b| b
            .iter()
            .all(|e| e["task"].is_null() && !e["name"].as_str().unwrap().contains("logp"))));
        let board = report.json["task_leaderboard"].as_array().unwrap();
        assert!(board.iter().all(|e| e["task"] == "questions"), "{board:?}");
        let tv = |name: &str| {
            board
                .iter()
                .find(|e| e["name"] == name)
                .unwrap_or_else(|| panic!("{name}: {board:?}"))["tv"]
                .as_f64()
                .unwrap()
        };
        // The benchmark's A: groups' means over their questions, then the mean over groups
        // (Male (0.3 + 0) / 2, Female 0.6), not the flat mean over cells (0.3).
        assert!((tv("m · logp · none") - (0.15 + 0.6) / 2.0).abs() < 1e-12);
        assert!(tv("m · verbalize · none").abs() < 1e-12);
        // calibration ECE beside every TV; no discretization floor for log-p (not sampled)
        let logp = board
            .iter()
            .find(|e| e["name"] == "m · logp · none")
            .unwrap();
        assert!(logp["calibration_ece"].as_f64().is_some(), "{logp}");
        assert!(logp["discretization_floor"].is_null());
        // uniform: Male (0.3 + 0.3) / 2, Female 0.2
        assert!((tv("baseline: uniform (questions)") - 0.25).abs() < 1e-12);
        // the benchmark's majority: each group's own answer (Male yes, Female no):
        // Male (0.2 + 0.2) / 2, Female 0.3
        assert!((tv(MAJORITY_QUESTIONS) - 0.25).abs() < 1e-12);
        // pooled: yes for both (q1: 1.1 vs 0.9): Male 0.2, Female 0.7, under its own name
        assert!((tv("baseline: pooled majority per question") - 0.45).abs() < 1e-12);
        let groups = report.json["entropy"]["groups"].as_array().unwrap();
        assert!(groups.iter().any(|g| g == "SEX=Male (mean over questions)"));
    }

    #[test]
    fn the_report_lists_units_failures_and_parse_failures_per_setting() {
        let tmp = tempfile::tempdir().unwrap();
        let eval = tmp.path().join("run/eval-coin");
        std::fs::create_dir_all(&eval).unwrap();
        std::fs::write(
            eval.join("eval.cells.jsonl"),
            r#"{"dataset": "coin", "group": "all", "method": "sequence", "steering": "none", "options": ["Heads", "Tails"], "predicted": [0.5, 0.5], "question": "coin-20", "reference": [0.2, 0.8]}
"#,
        )
        .unwrap();
        std::fs::write(
            eval.join("summary.json"),
            r#"{"by_setting": [{"attempts": 15, "failed_units": 3, "method": "sequence", "parse_failure_rate": 0.6, "parse_failures": 9, "steering": "none", "units": 9}]}"#,
        )
        .unwrap();
        let run = load_run(&tmp.path().join("run")).unwrap();
        let options = ReportOptions {
            notes: vec!["Fictional data.".into()],
            ..ReportOptions::default()
        };
        let report = build(&[run], &[], &Reference::default(), &options).unwrap();
        let html = report
            .files()
            .into_iter()
            .find(|(p, _)| p.ends_with("report.html"))
            .unwrap()
            .1;
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("<p class=\"banner\"><b>Note:</b> Fictional data.</p>"));
        let section = report
            .sections
            .iter()
            .find(|s| s.id == "eval-tally")
            .unwrap();
        let row = &section.table.as_ref().unwrap().rows[0];
        assert_eq!(
            row[1..],
            ["eval-coin", "sequence", "none", "9", "3", "9", "0.600"]
        );
        assert!(section.paragraphs[1].starts_with("3 unit(s) produced no distribution"));
        // the coin toy is ranked as its own task, not against the survey
        assert!(report.json["task_leaderboard"][0]["task"] == "coin");
    }

    #[test]
    fn empty_run_is_an_error_not_an_empty_report() {
        let dir = tempfile::tempdir().unwrap();
        let run = load_run(dir.path()).unwrap();
        let e = build(&[run], &[], &reference(), &ReportOptions::default()).unwrap_err();
        assert!(e.to_string().contains("nothing to report"), "{e}");
        let scale = dir.path().join("scale-x");
        std::fs::create_dir_all(&scale).unwrap();
        std::fs::write(scale.join("psi.json"), "{not json").unwrap();
        let e = load_run(dir.path()).unwrap_err().to_string();
        assert!(e.contains("psi.json") && e.contains("not JSON"), "{e}");
    }
}
