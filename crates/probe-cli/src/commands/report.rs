//! `probe report`: run directories (+ cells, + a survey) → report.md, self-contained
//! report.html, figures/*.svg and report.json.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use probe_data::cells::read_jsonl;
use probe_data::respondents::{read_respondents, RespondentOptions};
use probe_report::report::{
    align_reference, build, load_run, series_from_cells, Reference, ReportOptions, Series,
};

/// Where the survey side comes from; shared with `probe compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct SurveyArgs {
    /// Respondent-level survey CSV (one row per respondent: attribute columns, weight, answer).
    #[arg(long)]
    pub survey: Option<PathBuf>,
    /// The survey CSV's answer column.
    #[arg(long, default_value = "vote")]
    pub answer: String,
    /// The survey CSV's weight column (unweighted when absent).
    #[arg(long)]
    pub survey_weight: Option<String>,
    /// The survey CSV's columns to group by (default: every other column except `id`).
    #[arg(long, value_delimiter = ',')]
    pub survey_attributes: Vec<String>,
    /// A built-in election result as reference (`btw2021`), or `none`.
    #[arg(long)]
    pub election: Option<String>,
}

impl SurveyArgs {
    /// The reference over `options` (the model's options; answers outside them are dropped
    /// and the rest renormalized). `default_election` applies when nothing else is given.
    pub fn reference(
        &self,
        options: Option<&[String]>,
        default_election: Option<&str>,
    ) -> Result<Option<Reference>> {
        if let Some(path) = &self.survey {
            let mut o = RespondentOptions::new(self.answer.clone());
            o.weight = self.survey_weight.clone();
            if !self.survey_attributes.is_empty() {
                o.attributes = Some(self.survey_attributes.clone());
            }
            let respondents = read_respondents(path, &o)?;
            let options: Vec<String> = match options {
                Some(o) => o.to_vec(),
                None => respondents.answers(),
            };
            // no extra labels: the cells join on attribute/value alone
            let labels = BTreeMap::new();
            let (cells, dropped) = respondents.reference_cells(&options, &labels)?;
            let mut notes = vec![format!(
                "{}: {} respondents with an answer in `{}` ({} without), grouped by {}{}.",
                path.display(),
                respondents.rows.len(),
                respondents.answer_column,
                respondents.missing_answers,
                respondents.attributes.join(", "),
                if self.survey_weight.is_some() {
                    ", weighted"
                } else {
                    ", unweighted"
                }
            )];
            if dropped.respondents > 0 {
                let top: Vec<String> = dropped
                    .answers
                    .iter()
                    .take(5)
                    .map(|(a, w)| format!("{a} ({:.1} %)", 100.0 * w / dropped.total_weight))
                    .collect();
                notes.push(format!(
                    "{} respondents ({:.1} % of the weight) answered outside the model's options and are left out: {}.",
                    dropped.respondents,
                    100.0 * dropped.weight / dropped.total_weight,
                    top.join(", ")
                ));
            }
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("survey")
                .to_string();
            let respondents = respondents.scope_sizes(&options);
            return Ok(Some(Reference {
                name,
                cells,
                notes,
                respondents,
            }));
        }
        let election = self.election.as_deref().or(default_election);
        match election {
            None | Some("none") => Ok(None),
            Some(id) => {
                let e = probe_report::builtin::find(id).with_context(|| {
                    format!(
                        "unknown election `{id}` (built in: {})",
                        probe_report::builtin::ELECTIONS
                            .iter()
                            .map(|e| e.id)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                let mut notes = vec![format!(
                    "{} (built in; scopes: everyone and the year-{} personas).",
                    e.description,
                    e.id.trim_start_matches(char::is_alphabetic)
                )];
                let mut cells = e.cells();
                if let Some(options) = options {
                    // over the model's options: other parties dropped, the rest renormalized
                    let mut kept_share = 1.0;
                    for c in &mut cells {
                        let Some((r, kept)) = align_reference(c, options) else {
                            if self.election.is_none() {
                                // the default reference simply does not apply (another election)
                                eprintln!(
                                    "notice: the default reference {id} does not cover the options {options:?}; give --survey or --reference to compare with a survey"
                                );
                                return Ok(None);
                            }
                            bail!("{id} has no counterpart for some of the options {options:?}");
                        };
                        kept_share = kept;
                        c.reference = Some(r);
                        c.options = options.to_vec();
                        c.labels.remove("dataset");
                    }
                    if kept_share < 1.0 - 1e-9 {
                        notes.push(format!(
                            "Restricted to the model's {} options ({:.1} % of the vote) and renormalized.",
                            options.len(),
                            100.0 * kept_share
                        ));
                    }
                }
                Ok(Some(Reference {
                    name: e.id.to_string(),
                    cells,
                    notes,
                    respondents: Default::default(),
                }))
            }
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run directories (`probes/<model>/<run>`): probes.json, scale-*/, eval-*/.
    pub runs: Vec<PathBuf>,
    /// More model distributions as cells (JSONL), e.g. from `probe eval`. Repeatable.
    #[arg(long)]
    pub cells: Vec<PathBuf>,
    /// Survey reference cells (JSONL with `attribute`/`value` labels and `reference`).
    #[arg(long)]
    pub reference: Vec<PathBuf>,
    #[command(flatten)]
    pub survey: SurveyArgs,
    /// Output directory (default: <first run>/report).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// The report's title.
    #[arg(long, default_value = "probe report")]
    pub title: String,
    /// A note shown highlighted at the top of the report, e.g. that the data is fictional
    /// (repeatable).
    #[arg(long = "note")]
    pub notes: Vec<String>,
    /// Bootstrap resamples for the leaderboard's intervals.
    #[arg(long, default_value_t = 1000, value_parser = crate::common::positive)]
    pub bootstrap: usize,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Figure files written beside the HTML, comma-separated: svg, png (300 dpi, for slides
    /// and word processors), pdf (vector, for LaTeX). PNG and PDF need a sans font installed.
    #[arg(long = "format", value_delimiter = ',', default_value = "svg,png,pdf")]
    pub formats: Vec<probe_report::figures::Format>,
}

pub fn run(args: Args) -> Result<()> {
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
    eprintln!(
        "report: {} run(s), {series} distribution series, reference {} → {}",
        runs.len(),
        reference.name,
        out.join("report.html").display()
    );
    Ok(())
}
