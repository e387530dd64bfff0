//! `probe compare`: model distributions against survey references, metrics by group with
//! bootstrap confidence intervals.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use probe_data::cells::{read_jsonl_with, Cell, ReadStats, SumPolicy};
use probe_report::compare::{
    baseline_cells, compare, join, Aggregate, Baseline, CompareOptions, Metric, Row,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BaselineArg {
    /// Every option equally likely.
    Uniform,
    /// All mass on each group's own most common answer (the benchmark's majority baseline).
    Majority,
    /// All mass on the answer most common in the pooled population (weaker; its own name).
    PooledMajority,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AggregateArg {
    Benchmark,
    Cells,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Predicted cells (JSONL; see docs). Repeatable.
    #[arg(long)]
    pub predicted: Vec<PathBuf>,
    /// Reference cells (JSONL). Repeatable.
    #[arg(long)]
    pub reference: Vec<PathBuf>,
    /// An OpinionQA folder (`<ATTR>_data.json`, `info.csv`, `metadata.csv`) as reference.
    #[arg(long)]
    pub opinionqa: Option<PathBuf>,
    /// OpinionQA attributes to read (default: all in the folder).
    #[arg(long, value_delimiter = ',')]
    pub attribute: Vec<String>,
    /// Keep OpinionQA's "Refused" answers as an option instead of dropping them.
    #[arg(long)]
    pub keep_refused: bool,
    #[command(flatten)]
    pub survey: super::report::SurveyArgs,
    /// Also score these baselines against the reference.
    #[arg(long, value_enum)]
    pub baseline: Vec<BaselineArg>,
    /// Labels to group by, e.g. model,method.
    #[arg(long, value_delimiter = ',', default_value = "model")]
    pub by: Vec<String>,
    /// Metrics (tv, kl, js, w1, w1n, hpred, href).
    #[arg(long, value_delimiter = ',', default_value = "tv")]
    pub metrics: Vec<String>,
    /// Bootstrap resamples for the confidence intervals (over groups under `--aggregate benchmark`, over cells under `cells`).
    #[arg(long, default_value_t = 1000, value_parser = crate::common::positive)]
    pub bootstrap: usize,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Leave out predicted cells without a reference instead of failing (e.g. ψ of groups a
    /// built-in election result does not have).
    #[arg(long)]
    pub skip_unmatched: bool,
    /// Rescale probability vectors that do not sum to 1 instead of rejecting them; cells whose
    /// prediction is all zero are dropped. Both are counted and printed.
    #[arg(long, conflicts_with = "raw")]
    pub normalize: bool,
    /// Score predicted vectors as written, as the alignment benchmark's published tables did:
    /// mass outside the options and all-zero answers of failed parses stay in, TV = ½Σ|p − q|
    /// (other metrics are refused). How many were partial or all zero is printed.
    #[arg(long)]
    pub raw: bool,
    /// Weight cells by their `weight` field (e.g. group size) in the aggregates.
    #[arg(long)]
    pub weighted: bool,
    /// How each row averages its cells: `benchmark` (the mean over groups of each group's
    /// mean over questions, as Meister et al. score; cells without question and group labels
    /// fall back to cells) or `cells` (a flat mean over cells).
    #[arg(long, value_enum, default_value = "benchmark")]
    pub aggregate: AggregateArg,
    /// Smoothing ε for KL.
    #[arg(long, default_value_t = 1e-4)]
    pub kl_smoothing: f64,
    /// Write the table as CSV (.csv) or JSON (.json).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let metrics = args
        .metrics
        .iter()
        .map(|m| Metric::parse(m))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &args.out {
        crate::common::check_out_file(path, &["csv", "json"])?;
    }
    let mut reference: Vec<Cell> = Vec::new();
    for path in &args.reference {
        let (cells, stats) = read_jsonl_with(path, reference_policy(&args))?;
        report_stats(path, &stats);
        reference.extend(cells);
    }
    if let Some(dir) = &args.opinionqa {
        let attributes = if args.attribute.is_empty() {
            probe_data::opinionqa::attributes(dir)?
        } else {
            args.attribute.clone()
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
    let policy = if args.raw {
        SumPolicy::Raw
    } else {
        reference_policy(&args)
    };
    for path in &args.predicted {
        let (cells, stats) = read_jsonl_with(path, policy)?;
        report_stats(path, &stats);
        predicted.extend(cells);
    }
    // a respondent-level survey or a built-in result, over the predicted cells' options
    let options = predicted.first().map(|c| c.options.clone());
    if let Some(survey) = args.survey.reference(options.as_deref(), None)? {
        for note in &survey.notes {
            eprintln!("reference: {note}");
        }
        reference.extend(survey.cells);
    }
    // baselines for cells that carry their own reference (`probe eval` output)
    let own = if reference.is_empty() {
        probe_report::compare::own_references(&predicted)
    } else {
        vec![]
    };
    for b in &args.baseline {
        let kind = match b {
            BaselineArg::Uniform => Baseline::Uniform,
            BaselineArg::Majority => Baseline::Majority,
            BaselineArg::PooledMajority => Baseline::PooledMajority,
        };
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
            eprintln!(
                "comparing {} of {} predicted cells ({skipped} have no reference)",
                kept.len(),
                kept.len() + skipped
            );
        }
        predicted = kept;
    }
    let references = if reference.is_empty() {
        &own
    } else {
        &reference
    };
    let pairs = join(&predicted, references)?;
    let options = CompareOptions {
        metrics,
        by: args.by.clone(),
        bootstrap: args.bootstrap,
        level: args.level,
        seed: args.seed,
        kl_smoothing: args.kl_smoothing,
        weighted: args.weighted,
        aggregate: match args.aggregate {
            AggregateArg::Benchmark => Aggregate::Benchmark,
            AggregateArg::Cells => Aggregate::Cells,
        },
        raw: args.raw,
    };
    let rows = compare(&pairs, &options)?;
    print_table(&rows, &args.by, args.level)?;
    if let Some(path) = &args.out {
        write_rows(path, &rows, &args.by)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn reference_policy(args: &Args) -> SumPolicy {
    if args.normalize {
        SumPolicy::Normalize
    } else {
        SumPolicy::Strict
    }
}

/// Says what reading changed: nothing is rescaled, kept partial or dropped in silence.
fn report_stats(path: &std::path::Path, s: &ReadStats) {
    let mut parts = Vec::new();
    if s.rescaled > 0 {
        parts.push(format!("{} vectors rescaled to sum 1", s.rescaled));
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
        eprintln!(
            "{}: {} cells; {}",
            path.display(),
            s.cells,
            parts.join(", ")
        );
    }
}

fn print_table(rows: &[Row], by: &[String], level: f64) -> Result<()> {
    let mut out = std::io::stdout().lock();
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
    writeln!(out, "{}", line(&header))?;
    for r in &body {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}

fn write_rows(path: &PathBuf, rows: &[Row], by: &[String]) -> Result<()> {
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
                Aggregate::Benchmark => "benchmark",
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
