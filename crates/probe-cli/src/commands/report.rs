//! `probe report`: run directories (+ cells, + a survey) → report.md, self-contained
//! report.html, figures/*.svg and report.json.

use std::path::PathBuf;

use anyhow::Result;
use probe::report::ReportRequest;

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
    pub fn source(&self) -> probe::survey::SurveySource {
        probe::survey::SurveySource {
            survey: self.survey.clone(),
            answer: self.answer.clone(),
            survey_weight: self.survey_weight.clone(),
            survey_attributes: self.survey_attributes.clone(),
            election: self.election.clone(),
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
    #[command(flatten)]
    pub intervals: crate::common::BootstrapArgs,
    /// Figure files written beside the HTML, comma-separated: svg, png (300 dpi, for slides
    /// and word processors), pdf (vector, for LaTeX). PNG and PDF need a sans font installed.
    #[arg(long = "format", value_delimiter = ',', default_value = "svg,png,pdf")]
    pub formats: Vec<probe_report::figures::Format>,
}

impl Args {
    pub fn request(&self) -> ReportRequest {
        ReportRequest {
            runs: self.runs.clone(),
            cells: self.cells.clone(),
            survey: self.survey.source(),
            reference: self.reference.clone(),
            title: self.title.clone(),
            notes: self.notes.clone(),
            bootstrap: self.intervals.bootstrap,
            level: self.intervals.level,
            seed: self.intervals.seed,
            formats: self.formats.clone(),
            out: self.out.clone(),
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let outcome = probe::report::report(&args.request())?;
    eprintln!(
        "report: {} run(s), {} distribution series, reference {} → {}",
        outcome.runs,
        outcome.series,
        outcome.reference,
        outcome.dir.join("report.html").display()
    );
    Ok(())
}
