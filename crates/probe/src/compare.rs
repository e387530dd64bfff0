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

/// Reads the cells, joins predictions with references and scores them; writes `out`.
pub fn compare(request: &CompareRequest) -> Result<Vec<Row>> {
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
    if let Some(survey) = args.survey.reference(options.as_deref(), None)? {
        for line in &survey.notes {
            note(format_args!("reference: {line}"));
        }
        reference.extend(survey.cells);
    }
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
    }
    Ok(rows)
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
        serde_json::to_string_pretty(rows)?
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
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
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
