//! `report`: run directories (+ cells, + a survey) → report.md, a self-contained
//! report.html, figures (SVG, PNG, PDF) and report.json.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use probe_data::cells::read_jsonl;
use probe_report::figures::Format;
use probe_report::report::{build, load_run, series_from_cells, Reference, ReportOptions, Series};

use crate::survey::SurveySource;

/// What to report on (`ReportRequest::default()`: the CLI's defaults, no inputs yet).
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// Run directories (`probe train` runs holding scale-*/ and eval-*/).
    pub runs: Vec<PathBuf>,
    /// Extra distribution cells (JSONL).
    pub cells: Vec<PathBuf>,
    /// The survey side; with none of it and no `reference`, the built-in btw2021 when it
    /// covers the options.
    pub survey: SurveySource,
    /// Reference cells (JSONL) instead of a survey.
    pub reference: Vec<PathBuf>,
    pub title: String,
    /// Notes shown highlighted at the top (e.g. that the data is fictional).
    pub notes: Vec<String>,
    /// Bootstrap resamples, confidence level and seed of the leaderboard's intervals.
    pub bootstrap: usize,
    pub level: f64,
    pub seed: u64,
    /// Figure files written beside the HTML.
    pub formats: Vec<Format>,
    /// Output directory (default `<first run>/report`).
    pub out: Option<PathBuf>,
}

impl Default for ReportRequest {
    fn default() -> Self {
        ReportRequest {
            runs: Vec::new(),
            cells: Vec::new(),
            survey: SurveySource::default(),
            reference: Vec::new(),
            title: "probe report".into(),
            notes: Vec::new(),
            bootstrap: 1000,
            level: 0.95,
            seed: 0,
            formats: vec![Format::Svg, Format::Png, Format::Pdf],
            out: None,
        }
    }
}

/// Where the report went and what it covers.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    pub dir: PathBuf,
    pub runs: usize,
    pub series: usize,
    pub reference: String,
}

/// Reads the runs and cells, builds the survey reference, writes every report file.
pub fn report(request: &ReportRequest) -> Result<ReportOutcome> {
    let args = request;
    if args.runs.is_empty() && args.cells.is_empty() {
        bail!("give at least one run directory or --cells file");
    }
    let runs = args
        .runs
        .iter()
        .map(|r| load_run(r).with_context(|| format!("reading run {}", r.display())))
        .collect::<Result<Vec<_>>>()?;
    let mut cells = Vec::new();
    for path in &args.cells {
        cells.extend(read_jsonl(path, false)?);
    }
    let default_model = runs.first().map_or("model", |r| r.model.as_str());
    let extra: Vec<Series> = series_from_cells(&cells, default_model)?;
    let options: Option<Vec<String>> = runs
        .iter()
        .flat_map(|r| r.series.iter())
        .chain(extra.iter())
        .next()
        .map(|s| s.options.clone());
    let given = [
        args.survey.survey.is_some(),
        !args.reference.is_empty(),
        args.survey.election.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        bail!("give one survey reference: --survey, --reference or --election");
    }
    let reference = if !args.reference.is_empty() {
        let mut reference = Reference {
            name: args.reference[0]
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("reference")
                .to_string(),
            ..Reference::default()
        };
        for path in &args.reference {
            let cells = read_jsonl(path, false)?;
            reference.notes.push(format!(
                "{}: {} reference cells.",
                path.display(),
                cells.len()
            ));
            reference.cells.extend(cells);
        }
        reference
    } else {
        args.survey
            .reference(options.as_deref(), Some("btw2021"))?
            .unwrap_or_else(|| Reference {
                name: "no survey".into(),
                ..Reference::default()
            })
    };
    let options = ReportOptions {
        title: args.title.clone(),
        notes: args.notes.clone(),
        bootstrap: args.bootstrap,
        level: args.level,
        seed: args.seed,
        ..ReportOptions::default()
    };
    let report = build(&runs, &extra, &reference, &options)?;
    let out = match (&args.out, args.runs.first()) {
        (Some(o), _) => o.clone(),
        (None, Some(r)) => r.join("report"),
        (None, None) => bail!("give --out when reporting on --cells only"),
    };
    std::fs::create_dir_all(out.join("figures"))
        .with_context(|| format!("creating {}", out.display()))?;
    for (rel, bytes) in report.files_as(&args.formats)? {
        probe_cache::write_atomic(&out.join(&rel), &bytes)?;
    }
    let series: usize = runs.iter().map(|r| r.series.len()).sum::<usize>() + extra.len();
    Ok(ReportOutcome {
        dir: out,
        runs: runs.len(),
        series,
        reference: reference.name,
    })
}
