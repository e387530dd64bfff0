//! `probe report`: everything one or more run directories hold — latent ψ from `probe scale`,
//! prompt-based distributions from `probe eval` (cells), probe CV metrics from `probe train` —
//! compared with a survey reference, as `report.md`, a self-contained `report.html` (inline SVG,
//! no scripts, no external resources), one SVG per figure and `report.json` with every number.

use std::collections::{BTreeMap, BTreeSet};
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
use load::scope_of;
pub use load::ChanceEntry;
use plotters::style::RGBColor;

mod covariation;
mod distributions;
mod how_to_read;
mod latent;
mod leaderboard;
mod load;
mod render;
mod sensitivity;
mod simulation;
#[cfg(test)]
mod tests;
pub mod validate;

use how_to_read::*;
pub use load::{align_reference, load_run, persona_units, series_from_cells};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error("{0}")]
    Data(#[from] probe_data::DataError),
    #[error("{0}")]
    Metric(#[from] probe_metrics::MetricError),
    /// A file whose fields do not fit its schema (named with the field's path).
    #[error(transparent)]
    Schema(#[from] probe_schema::SchemaError),
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

/// Per (attribute, value) scope, the units a bootstrap resamples (personas of a ψ, respondents
/// of a survey), each a vector over the options.
pub type ScopeUnits = BTreeMap<(String, String), Vec<Vec<f64>>>;

/// The survey side: reference cells labelled `attribute`/`value` (cells without them count as
/// `all`/`all`), a display name and notes on how it was made.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub name: String,
    pub cells: Vec<Cell>,
    pub notes: Vec<String>,
    /// Respondents behind each (attribute, value) scope (unweighted), where the reference is
    /// respondent-level.
    pub respondents: BTreeMap<(String, String), usize>,
    /// Per scope, each respondent's weight on the option it chose (over the report's options),
    /// where the reference is respondent-level: what an interval for the survey's entropy
    /// resamples. Empty for aggregate results.
    pub units: ScopeUnits,
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
    /// Per scope, how many units went into the distribution ([`Series::size_unit`]): the
    /// n a reader needs beside each bar.
    pub sizes: BTreeMap<(String, String), usize>,
    /// What one unit of [`Series::sizes`] is: "rows (persona × variant)", "personas", "prompts".
    pub size_unit: &'static str,
    /// Latent runs: the scaling factors the negative-factor policy changed, of all factors,
    /// and the policy (`clip`, `shift`, `softmax`).
    pub clipped: Option<(u64, u64, String)>,
    /// Latent runs: per scope, each persona's contribution to ψ (Σ over its prompt variants
    /// of w · m'), the units a bootstrap over personas resamples. Empty elsewhere (and for
    /// runs of older versions).
    pub entropy_units: ScopeUnits,
}

impl Series {
    /// "n = 100 rows (persona × variant)" for a scope, or "" when unknown.
    pub fn n_text(&self, scope: &(String, String)) -> String {
        self.sizes
            .get(scope)
            .map(|n| format!("n = {}", count(*n, self.size_unit)))
            .unwrap_or_default()
    }

    /// Question-level series: (groups, questions) its own cells span.
    pub fn own_extent(&self) -> (usize, usize) {
        let groups: BTreeSet<&str> = self.own.iter().map(|c| c.group.as_str()).collect();
        let questions: BTreeSet<&str> = self.own.iter().map(|c| c.question.as_str()).collect();
        (groups.len(), questions.len())
    }
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
    /// Prompts the probes were trained and cross-validated on, and the folds.
    pub prompts: usize,
    pub folds: usize,
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
    /// `probe simulate`'s `scores.json` of each `simulate-*` folder.
    pub simulations: Vec<probe_schema::simulation::SimulationScores>,
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
    /// Under the figure: what is drawn, the formula and the paper it comes from.
    pub how_to_read: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub title: String,
    /// Banners above everything (`ReportOptions::notes`).
    pub notes: Vec<String>,
    /// The survey reference's name and its notes.
    pub reference: (String, Vec<String>),
    pub sections: Vec<Section>,
    /// `report.json`: every number the sections draw, for other tools (written, never read
    /// back by the report itself).
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

/// "1 group", "14 groups"; a unit of several words pluralizes its first ("rows (persona ×
/// variant)"), and a unit given in the plural is made singular for one.
pub(crate) fn count(n: usize, unit: &str) -> String {
    let (first, rest) = unit.split_once(' ').unwrap_or((unit, ""));
    let stem = first.strip_suffix('s').unwrap_or(first);
    let word = if n == 1 {
        stem.to_string()
    } else {
        format!("{stem}s")
    };
    if rest.is_empty() {
        format!("{n} {word}")
    } else {
        format!("{n} {word} {rest}")
    }
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

/// What every section reads: the series and probe curves of all runs, the survey by scope,
/// the options, and the legend conventions (colours, names) shared by all figures.
pub(crate) struct Context<'a> {
    pub series: Vec<&'a Series>,
    pub curves: Vec<&'a ProbeCurves>,
    pub runs: &'a [Run],
    pub reference: &'a Reference,
    pub ref_by_scope: BTreeMap<(String, String), &'a Cell>,
    /// The (attribute, value) scope of everyone: `("all", "all")`.
    pub all_scope: (String, String),
    pub o: &'a ReportOptions,
    /// With one model, legends drop its name (the captions say which model it is).
    pub model_prefix: String,
    palette: BTreeMap<String, usize>,
}

impl<'a> Context<'a> {
    fn new(
        runs: &'a [Run],
        extra: &'a [Series],
        reference: &'a Reference,
        o: &'a ReportOptions,
    ) -> Self {
        let series: Vec<&Series> = runs
            .iter()
            .flat_map(|r| r.series.iter())
            .chain(extra.iter())
            .collect();
        let curves = runs.iter().filter_map(|r| r.probes.as_ref()).collect();
        let ref_by_scope = reference
            .cells
            .iter()
            .filter(|c| c.reference.is_some())
            .map(|c| (scope_of(c), c))
            .collect();
        let palette = series
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        let models: BTreeSet<&str> = series
            .iter()
            .filter_map(|s| s.labels.get("model").map(String::as_str))
            .collect();
        let model_prefix = match models.iter().next() {
            Some(m) if models.len() == 1 => format!("{m} · "),
            _ => String::new(),
        };
        Context {
            series,
            curves,
            runs,
            reference,
            ref_by_scope,
            all_scope: ("all".to_string(), "all".to_string()),
            o,
            model_prefix,
            palette,
        }
    }

    /// "n = 1435 respondents" behind a scope of the survey, or "" when unknown.
    pub fn respondents_text(&self, scope: &(String, String)) -> String {
        self.reference
            .respondents
            .get(scope)
            .map(|n| format!("n = {}", count(*n, "respondents")))
            .unwrap_or_default()
    }

    /// A series' legend name, by its name (a baseline's name is its own).
    pub fn display_name(&self, name: &str) -> String {
        self.series
            .iter()
            .find(|s| s.name == name)
            .map_or_else(|| name.to_string(), |s| self.legend_name(s))
    }

    /// A series' colour, the same in every figure.
    pub fn color_of(&self, s: &Series) -> RGBColor {
        figures::color(self.palette[s.name.as_str()])
    }

    /// A series' name in legends and tables, in words a reader knows ("log-prob, few-shot ·
    /// vote-2021", "latent ψ (personas)"), without the model when there is only one.
    pub fn legend_name(&self, s: &Series) -> String {
        let words = series_in_words(s);
        match s.labels.get("model") {
            Some(m) if self.model_prefix.is_empty() => format!("{m} · {words}"),
            _ => words,
        }
    }
}

/// A series without its model, in words: the method and steering of an evaluation, or the
/// persona set of a latent ψ; the series' own name where its labels say neither.
fn series_in_words(s: &Series) -> String {
    let label = |k: &str| s.labels.get(k).map(String::as_str);
    match (label("method"), label("steering")) {
        (Some("latent"), _) => {
            let (run, scale) = label("source")
                .and_then(|src| src.rsplit_once('/'))
                .unwrap_or(("run", "scale"));
            let set = scale.strip_prefix("scale-").unwrap_or(scale);
            // `run` is the default run directory's name: it says nothing
            match run {
                "run" => format!("latent ψ ({set})"),
                _ => format!("latent ψ ({set}, run {run})"),
            }
        }
        (Some(method), steering) => {
            let method = match method {
                "logp" => "log-prob",
                "sample" => "sampled",
                "sequence" => "sequence",
                "verbalize" => "verbalized",
                other => other,
            };
            let steering = match steering {
                Some("none") | None => "no steering",
                Some("persona") => "persona prompt",
                Some("fewshot") => "few-shot",
                Some(other) => other,
            };
            match label("dataset") {
                Some(d) => format!("{method}, {steering} · {d}"),
                None => format!("{method}, {steering}"),
            }
        }
        _ => match s.labels.get("model") {
            Some(m) => s
                .name
                .strip_prefix(&format!("{m} · "))
                .unwrap_or(&s.name)
                .to_string(),
            None => s.name.clone(),
        },
    }
}

/// A section's builder: its sections (none when it has nothing to show), and its numbers
/// added to `report.json`.
type SectionBuilder = fn(&Context, &mut Value) -> Result<Vec<Section>>;

pub fn build(
    runs: &[Run],
    extra: &[Series],
    reference: &Reference,
    o: &ReportOptions,
) -> Result<Report> {
    let cx = Context::new(runs, extra, reference, o);
    if cx.series.is_empty() && cx.curves.is_empty() && runs.iter().all(|r| r.simulations.is_empty())
    {
        return Err(ReportError::Empty(
            "nothing to report: no scale-*/, eval-*/ or simulate-*/ output and no probes.json in the run directories, and no --cells".into(),
        ));
    }
    let mut json = json!({
        "title": o.title,
        "reference": {"name": reference.name, "notes": reference.notes},
        "runs": runs.iter().map(|r| json!({"path": r.path, "model": r.model})).collect::<Vec<_>>(),
    });
    json["notes"] = json!(o.notes);
    let builders: [SectionBuilder; 12] = [
        distributions::distributions,
        distributions::entropy,
        distributions::entropy_tasks,
        sensitivity::sensitivity,
        sensitivity::negative_factors,
        leaderboard::survey,
        leaderboard::tasks,
        latent::probe_accuracy,
        latent::chance,
        latent::eval_tally,
        covariation::covariation,
        simulation::simulation,
    ];
    // simulations alone: the distribution and probe sections would only say they are empty
    let only_simulations = cx.series.is_empty() && cx.curves.is_empty();
    let mut sections = Vec::new();
    if only_simulations {
        sections.extend(simulation::simulation(&cx, &mut json)?);
    } else {
        for section in builders {
            sections.extend(section(&cx, &mut json)?);
        }
    }
    Ok(Report {
        title: o.title.clone(),
        notes: o.notes.clone(),
        reference: (reference.name.clone(), reference.notes.clone()),
        sections,
        json,
    })
}
