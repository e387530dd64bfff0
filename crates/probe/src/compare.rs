//! `compare`: model distributions (cells) against survey references, metrics by group with
//! bootstrap confidence intervals.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use probe_data::cells::{read_jsonl_with, Cell, ReadStats, SumPolicy};
use probe_report::compare::{
    baseline_cells, compare as score, join, Aggregate, Baseline, CompareOptions, Row,
};

use crate::files::check_out_file;
use crate::progress::note;
use crate::survey::SurveySource;
use crate::vectors::csv_field;

/// What to compare and how (`CompareRequest::default()` compares nothing yet).
#[derive(Debug, Clone, Default)]
pub struct CompareRequest {
    /// Predicted cells (JSONL).
    pub predicted: Vec<PathBuf>,
    /// Reference cells (JSONL).
    pub reference: Vec<PathBuf>,
    /// An OpinionQA folder as reference, its attributes (empty: all) and whether "Refused"
    /// stays an option.
    pub opinionqa: Option<PathBuf>,
    pub attributes: Vec<String>,
    pub keep_refused: bool,
    /// A respondent-level survey or built-in election result as reference.
    pub survey: SurveySource,
    /// Baselines scored beside the predictions.
    pub baselines: Vec<Baseline>,
    /// Leave out predicted cells without a reference instead of failing.
    pub skip_unmatched: bool,
    /// Rescale vectors that do not sum to 1 (and drop all-zero predictions).
    pub normalize: bool,
    /// Metrics, grouping, bootstrap, aggregation (`options.raw`: score vectors as written).
    pub options: CompareOptions,
    /// Write the rows as CSV (.csv) or JSON (.json).
    pub out: Option<PathBuf>,
}

pub use probe_schema::compare::EntropyTest;

/// What [`compare_all`] found: the metric rows, and the entropy tests of every latent ψ
/// (`psi.cells.jsonl` of a `scale` directory) against a respondent-level survey (`--survey`).
#[derive(Debug, Clone)]
pub struct CompareOutcome {
    pub rows: Vec<Row>,
    pub entropy: Vec<EntropyTest>,
}

/// Reads the cells, joins predictions with references and scores them; writes `out`.
pub fn compare(request: &CompareRequest) -> Result<Vec<Row>> {
    Ok(compare_all(request)?.rows)
}

/// [`compare`], with ψ's entropy tested against the survey's where both sides have units: a
/// predicted `psi.cells.jsonl` beside its `rows.jsonl` (personas) and a respondent-level
/// `--survey` (respondents). Writes the tests beside `out` (`<stem>.entropy.csv|json`).
pub fn compare_all(request: &CompareRequest) -> Result<CompareOutcome> {
    let args = request;
    if let Some(path) = &args.out {
        check_out_file(path, &["csv", "json"])?;
    }
    let mut reference: Vec<Cell> = Vec::new();
    for path in &args.reference {
        let (cells, stats) = read_jsonl_with(path, reference_policy(args))?;
        report_stats(path, &stats);
        reference.extend(cells);
    }
    if let Some(dir) = &args.opinionqa {
        let attributes = if args.attributes.is_empty() {
            probe_data::opinionqa::attributes(dir)?
        } else {
            args.attributes.clone()
        };
        if attributes.is_empty() {
            bail!("{} has no <ATTR>_data.json files", dir.display());
        }
        for a in &attributes {
            reference.extend(
                probe_data::opinionqa::read_attribute(dir, a, args.keep_refused)
                    .with_context(|| format!("reading OpinionQA attribute {a}"))?,
            );
        }
    }
    let mut predicted: Vec<Cell> = Vec::new();
    let policy = if args.options.raw {
        SumPolicy::Raw
    } else {
        reference_policy(args)
    };
    for path in &args.predicted {
        let (cells, stats) = read_jsonl_with(path, policy)?;
        report_stats(path, &stats);
        predicted.extend(cells);
    }
    // a respondent-level survey or a built-in result, over the predicted cells' options
    let options = predicted.first().map(|c| c.options.clone());
    let mut survey_units = Default::default();
    if let Some(survey) = args.survey.reference(options.as_deref(), None)? {
        for line in &survey.notes {
            note(format_args!("reference: {line}"));
        }
        reference.extend(survey.cells);
        survey_units = survey.units;
    }
    let entropy = entropy_tests(args, &survey_units)?;
    // baselines for cells that carry their own reference (`probe eval` output)
    let own = if reference.is_empty() {
        probe_report::compare::own_references(&predicted)
    } else {
        vec![]
    };
    for &kind in &args.baselines {
        predicted.extend(baseline_cells(&reference, kind));
        predicted.extend(baseline_cells(&own, kind));
    }
    if predicted.is_empty() {
        bail!("nothing to compare: give --predicted files or --baseline");
    }
    if reference.is_empty() && predicted.iter().all(|c| c.reference.is_none()) {
        bail!("no reference: give --reference files or --opinionqa, or cells with a `reference` field");
    }
    if args.skip_unmatched {
        let (kept, skipped) = probe_report::compare::matched(&predicted, &reference);
        if skipped > 0 {
            note(format_args!(
                "comparing {} of {} predicted cells ({skipped} have no reference)",
                kept.len(),
                kept.len() + skipped
            ));
        }
        predicted = kept;
    }
    let references = if reference.is_empty() {
        &own
    } else {
        &reference
    };
    let pairs = join(&predicted, references)?;
    let rows = score(&pairs, &args.options)?;
    if let Some(path) = &args.out {
        write_rows(path, &rows, &args.options.by)?;
        note(format_args!("wrote {}", path.display()));
        if !entropy.is_empty() {
            let sibling = entropy_path(path);
            write_entropy(&sibling, &entropy)?;
            note(format_args!("wrote {}", sibling.display()));
        }
    }
    Ok(CompareOutcome { rows, entropy })
}

/// The entropy tests of every predicted `psi.cells.jsonl` whose `scale` directory has persona
/// units, against the survey's respondents, in every scope both have.
fn entropy_tests(
    args: &CompareRequest,
    survey: &probe_report::report::ScopeUnits,
) -> Result<Vec<EntropyTest>> {
    let mut out = Vec::new();
    if survey.is_empty() {
        return Ok(out);
    }
    let bootstrap = probe_metrics::stats::Bootstrap {
        resamples: args.options.bootstrap.max(1),
        level: args.options.level,
        seed: args.options.seed,
    };
    for path in &args.predicted {
        let Some(dir) = path
            .parent()
            .filter(|_| path.file_name().is_some_and(|n| n == "psi.cells.jsonl"))
        else {
            continue;
        };
        let psi: serde_json::Value = match std::fs::read_to_string(dir.join("psi.json")) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", dir.join("psi.json").display()))?,
            Err(_) => continue,
        };
        let parties: Vec<String> = psi["parties"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(String::from))
            .collect();
        let units = probe_report::report::persona_units(dir, &parties)?;
        if units.is_empty() {
            note(format_args!(
                "{}: rows.jsonl has no m' (a run of an older probe): no entropy test",
                dir.display()
            ));
        }
        for (scope, model) in &units {
            let Some(people) = survey.get(scope) else {
                continue;
            };
            let comparison = probe_metrics::entropy::compare_entropy(model, people, bootstrap)
                .with_context(|| {
                    format!(
                        "the entropy of {} in {}={}",
                        dir.display(),
                        scope.0,
                        scope.1
                    )
                })?;
            out.push(EntropyTest {
                source: dir.display().to_string(),
                attribute: scope.0.clone(),
                value: scope.1.clone(),
                comparison,
            });
        }
    }
    Ok(out)
}

/// `<stem>.entropy.<ext>` beside `out`.
fn entropy_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("compare");
    let ext = out.extension().and_then(|s| s.to_str()).unwrap_or("csv");
    out.with_file_name(format!("{stem}.entropy.{ext}"))
}

fn write_entropy(path: &Path, tests: &[EntropyTest]) -> Result<()> {
    let text = if path.extension().is_some_and(|e| e == "json") {
        probe_schema::to_text(&probe_schema::compare::EntropyFile {
            format_version:
                <probe_schema::compare::EntropyFile as probe_schema::Artifact>::FORMAT_VERSION,
            tests: tests.to_vec(),
        })?
    } else {
        let mut s = String::from("source,attribute,value,model_h,model_low,model_high,survey_h,survey_low,survey_high,difference,difference_low,difference_high,p,personas,respondents\n");
        for t in tests {
            let c = &t.comparison;
            s.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                csv_field(&t.source),
                csv_field(&t.attribute),
                csv_field(&t.value),
                c.model.value,
                c.model.low,
                c.model.high,
                c.survey.value,
                c.survey.low,
                c.survey.high,
                c.difference.value,
                c.difference.low,
                c.difference.high,
                c.p,
                c.model_units,
                c.survey_units
            ));
        }
        s
    };
    probe_cache::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The entropy tests as a text table (empty when there are none).
pub fn entropy_table(tests: &[EntropyTest], level: f64) -> String {
    if tests.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "normalized entropy of ψ (resampling personas) vs the survey's (resampling respondents), {:.0}% bootstrap CIs:\n",
        level * 100.0
    );
    out.push_str(&format!(
        "{:<28} {:<26} {:<26} {:<30} {:>7}\n",
        "group", "ψ", "survey", "ψ − survey", "p"
    ));
    for t in tests {
        let c = &t.comparison;
        let group = if t.attribute == "all" {
            "everyone".to_string()
        } else {
            format!("{}={}", t.attribute, t.value)
        };
        out.push_str(&format!(
            "{:<28} {:<26} {:<26} {:<30} {:>7.3}\n",
            group,
            format!(
                "{:.3} [{:.3}, {:.3}]",
                c.model.value, c.model.low, c.model.high
            ),
            format!(
                "{:.3} [{:.3}, {:.3}]",
                c.survey.value, c.survey.low, c.survey.high
            ),
            format!(
                "{:+.3} [{:+.3}, {:+.3}]",
                c.difference.value, c.difference.low, c.difference.high
            ),
            c.p
        ));
    }
    out
}

fn reference_policy(request: &CompareRequest) -> SumPolicy {
    if request.options.raw {
        // references within rounding of 1 are renormalized (and counted), as published
        // marginals sum to 1.001
        SumPolicy::Raw
    } else if request.normalize {
        SumPolicy::Normalize
    } else {
        SumPolicy::Strict
    }
}

/// Says what reading changed: nothing is rescaled, kept partial or dropped in silence.
fn report_stats(path: &Path, s: &ReadStats) {
    let mut parts = Vec::new();
    if s.rescaled > 0 {
        parts.push(format!("{} vectors rescaled to sum 1", s.rescaled));
    }
    if s.over_one > 0 {
        parts.push(format!(
            "{} predictions sum to more than 1 (scored as written)",
            s.over_one
        ));
    }
    if s.reference_rescaled > 0 {
        parts.push(format!(
            "{} references summed to 1 only within ±{} and were renormalized",
            s.reference_rescaled,
            probe_data::cells::RAW_REFERENCE_TOLERANCE
        ));
    }
    if s.partial > 0 {
        parts.push(format!(
            "{} predictions sum to less than 1 (scored as written)",
            s.partial
        ));
    }
    if s.all_zero > 0 && s.dropped == 0 {
        parts.push(format!(
            "{} all-zero predictions (scored as written: TV ½Σq)",
            s.all_zero
        ));
    }
    if s.dropped > 0 {
        parts.push(format!("{} cells dropped (all-zero prediction)", s.dropped));
    }
    if !parts.is_empty() {
        note(format_args!(
            "{}: {} cells; {}",
            path.display(),
            s.cells,
            parts.join(", ")
        ));
    }
}

/// The rows as CSV (`.csv`) or JSON (`.json`), written atomically.
pub fn write_rows(path: &Path, rows: &[Row], by: &[String]) -> Result<()> {
    let text = if path.extension().is_some_and(|e| e == "json") {
        probe_schema::to_text(&probe_schema::compare::CompareFile {
            format_version:
                <probe_schema::compare::CompareFile as probe_schema::Artifact>::FORMAT_VERSION,
            rows: rows.to_vec(),
        })?
    } else {
        let mut s = by.join(",");
        s.push_str(if by.is_empty() { "" } else { "," });
        s.push_str("metric,cells,groups,aggregate,mean,ci_low,ci_high,calibration_ece,discretization_floor\n");
        for r in rows {
            let quote = |v: &str| {
                if v.contains([',', '"']) {
                    format!("\"{}\"", v.replace('"', "\"\""))
                } else {
                    v.to_string()
                }
            };
            for k in by {
                s.push_str(&quote(r.group.get(k).map(String::as_str).unwrap_or("")));
                s.push(',');
            }
            let aggregate = match r.aggregate {
                Aggregate::GroupMean => "group-mean",
                Aggregate::Cells => "cells",
            };
            let opt = |x: Option<f64>| x.map_or(String::new(), |x| x.to_string());
            s.push_str(&format!(
                "{},{},{},{aggregate},{},{},{},{},{}\n",
                r.metric,
                r.n_cells,
                r.n_groups.map_or(String::new(), |g| g.to_string()),
                r.estimate.value,
                r.estimate.low,
                r.estimate.high,
                opt(r.calibration_ece),
                opt(r.discretization_floor)
            ));
        }
        s
    };
    Ok(probe_cache::write_atomic(path, text.as_bytes())?)
}

/// The rows as the aligned text table `probe compare` prints (`by` columns, metric, cells,
/// groups, mean, the `level` interval, ECE, floor).
pub fn table(rows: &[Row], by: &[String], level: f64) -> String {
    let mut out = String::new();
    let header: Vec<String> = by
        .iter()
        .cloned()
        .chain([
            "metric".into(),
            "cells".into(),
            "groups".into(),
            "mean".into(),
            format!("{:.0}% CI", level * 100.0),
            "ECE".into(),
            "floor".into(),
        ])
        .collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            by.iter()
                .map(|k| r.group.get(k).cloned().unwrap_or_default())
                .chain([
                    r.metric.to_string(),
                    r.n_cells.to_string(),
                    r.n_groups.map_or("-".into(), |g| g.to_string()),
                    format!("{:.4}", r.estimate.value),
                    r.interval_text(),
                    r.calibration_ece.map_or("-".into(), |x| format!("{x:.4}")),
                    r.discretization_floor
                        .map_or("-".into(), |x| format!("{x:.4}")),
                ])
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            body.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cols: &[String]| {
        cols.iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    out.push_str(&line(&header));
    out.push('\n');
    for r in &body {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells built like the alignment benchmark's released outputs — a prediction that marks
    /// two options (sum 1.5), the all-zero vector of a failed parse, a partial one, and a
    /// reference that sums to 1.001 — are scored under `--raw` without refusing, and the row
    /// is the flat mean of ½Σ|p − q| over cells, computed here by hand.
    #[test]
    fn raw_scores_the_benchmarks_released_cells_as_its_tables_do() {
        let dir = tempfile::tempdir().unwrap();
        let predicted = dir.path().join("predicted.jsonl");
        let reference = dir.path().join("reference.jsonl");
        let cell = |g: &str, q: &str, p: [f64; 2]| {
            format!(
                r#"{{"model":"m","group":"{g}","question":"{q}","options":["a","b"],"predicted":{p:?}}}"#
            )
        };
        std::fs::write(
            &predicted,
            [
                cell("A", "q1", [0.9, 0.6]),
                cell("A", "q2", [0.0, 0.0]),
                cell("A", "q3", [0.2, 0.3]),
                cell("B", "q1", [0.1, 0.9]),
            ]
            .join("\n"),
        )
        .unwrap();
        let reference_cell = |g: &str, q: &str, r: [f64; 2]| {
            format!(r#"{{"group":"{g}","question":"{q}","options":["a","b"],"reference":{r:?}}}"#)
        };
        std::fs::write(
            &reference,
            [
                reference_cell("A", "q1", [0.5005, 0.5005]),
                reference_cell("A", "q2", [0.3, 0.7]),
                reference_cell("A", "q3", [0.4, 0.6]),
                reference_cell("B", "q1", [0.6, 0.4]),
            ]
            .join("\n"),
        )
        .unwrap();
        // by hand: ½(0.4 + 0.1), ½(0.3 + 0.7), ½(0.2 + 0.3), ½(0.5 + 0.5)
        let tv = [0.25, 0.5, 0.25, 0.5];
        let flat = tv.iter().sum::<f64>() / 4.0;
        let group_mean = ((tv[0] + tv[1] + tv[2]) / 3.0 + tv[3]) / 2.0;
        let mut request = CompareRequest {
            predicted: vec![predicted],
            reference: vec![reference],
            options: CompareOptions {
                raw: true,
                aggregate: Aggregate::default_for(true),
                bootstrap: 100,
                ..CompareOptions::default()
            },
            ..CompareRequest::default()
        };
        let rows = compare(&request).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].aggregate, Aggregate::Cells);
        assert_eq!(rows[0].n_cells, 4);
        assert!((rows[0].estimate.value - flat).abs() < 1e-12, "{rows:?}");
        // the mean of group means is another number (and is named for what it is)
        request.options.aggregate = Aggregate::GroupMean;
        let rows = compare(&request).unwrap();
        assert_eq!(rows[0].aggregate, Aggregate::GroupMean);
        assert!((rows[0].estimate.value - group_mean).abs() < 1e-12);
        assert!((flat - group_mean).abs() > 0.04);
    }
}

#[cfg(test)]
mod entropy_tests {
    use super::*;

    /// A latent ψ's `psi.cells.jsonl` beside its rows, against a respondent-level survey: the
    /// men's ψ collapses onto one party while the survey's men spread evenly (less dispersed,
    /// p small), the women are spread like the survey's (not told apart); the tests are
    /// printed and written beside --out.
    #[test]
    fn compare_tests_psi_entropy_against_the_survey() {
        let dir = tempfile::tempdir().unwrap();
        let scale = dir.path().join("scale-grid");
        std::fs::create_dir_all(&scale).unwrap();
        let parties = ["A", "B", "C"];
        std::fs::write(
            scale.join("psi.json"),
            serde_json::json!({"parties": parties}).to_string(),
        )
        .unwrap();
        let (mut rows, mut male, mut female) = (String::new(), [0.0; 3], [0.0; 3]);
        for p in 0..40 {
            let gender = if p % 2 == 0 { "female" } else { "male" };
            let m = if gender == "male" {
                [0.9, 0.05, 0.05]
            } else {
                let mut m = [0.0; 3];
                m[(p / 2) % 3] = 1.0;
                m
            };
            let sums = if gender == "male" {
                &mut male
            } else {
                &mut female
            };
            for variant in ["a", "b"] {
                for (s, x) in sums.iter_mut().zip(m) {
                    *s += x;
                }
                let adjusted = serde_json::json!({"A": m[0], "B": m[1], "C": m[2]});
                rows.push_str(
                    &(serde_json::json!({"persona": format!("p{p}"), "variant": variant,
                        "weight": 1.0, "attributes": {"gender": gender}, "factors": adjusted,
                        "adjusted": adjusted})
                    .to_string()
                        + "\n"),
                );
            }
        }
        std::fs::write(scale.join("rows.jsonl"), rows).unwrap();
        let normalize = |v: [f64; 3]| {
            let t: f64 = v.iter().sum();
            v.map(|x| x / t)
        };
        let cell = |g: &str, d: [f64; 3]| {
            serde_json::json!({"model": "m", "attribute": "gender", "value": g,
                "options": parties, "predicted": d})
            .to_string()
        };
        std::fs::write(
            scale.join("psi.cells.jsonl"),
            [
                cell("female", normalize(female)),
                cell("male", normalize(male)),
            ]
            .join("\n"),
        )
        .unwrap();
        let survey = dir.path().join("survey.csv");
        let mut csv = String::from("gender,vote\n");
        for r in 0..180 {
            let gender = if r % 2 == 0 { "female" } else { "male" };
            csv.push_str(&format!("{gender},{}\n", parties[(r / 2) % 3]));
        }
        std::fs::write(&survey, csv).unwrap();
        let out = dir.path().join("tv.csv");
        let request = CompareRequest {
            predicted: vec![scale.join("psi.cells.jsonl")],
            survey: SurveySource {
                survey: Some(survey),
                ..SurveySource::default()
            },
            options: CompareOptions {
                bootstrap: 400,
                ..CompareOptions::default()
            },
            out: Some(out.clone()),
            ..CompareRequest::default()
        };
        let outcome = compare_all(&request).unwrap();
        let find = |g: &str| {
            outcome
                .entropy
                .iter()
                .find(|t| t.attribute == "gender" && t.value == g)
                .unwrap()
                .comparison
        };
        let (m, f) = (find("male"), find("female"));
        assert_eq!((m.model_units, m.survey_units), (20, 90));
        assert!(m.difference.high < 0.0 && m.p < 0.05, "{m:?}");
        assert!(
            f.difference.low <= 0.0 && 0.0 <= f.difference.high && f.p > 0.05,
            "{f:?}"
        );
        // pooled too: everyone
        assert!(outcome.entropy.iter().any(|t| t.attribute == "all"));
        let table = entropy_table(&outcome.entropy, 0.95);
        assert!(table.contains("gender=male"), "{table}");
        let written = std::fs::read_to_string(dir.path().join("tv.entropy.csv")).unwrap();
        assert_eq!(written.lines().count(), 1 + outcome.entropy.len());
    }
}
