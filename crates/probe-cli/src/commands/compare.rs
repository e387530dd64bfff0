//! `probe compare`: model distributions against survey references, metrics by group with
//! bootstrap confidence intervals.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use probe::compare::CompareRequest;
use probe_report::compare::{Aggregate, Baseline, CompareOptions, Metric};

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
    /// The mean over groups of each group's mean over questions.
    #[value(alias = "benchmark")]
    GroupMean,
    /// A flat mean over cells.
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
    #[command(flatten)]
    pub intervals: crate::common::BootstrapArgs,
    /// Leave out predicted cells without a reference instead of failing (e.g. ψ of groups a
    /// built-in election result does not have).
    #[arg(long)]
    pub skip_unmatched: bool,
    /// Rescale probability vectors that do not sum to 1 instead of rejecting them; cells whose
    /// prediction is all zero are dropped. Both are counted and printed.
    #[arg(long, conflicts_with = "raw")]
    pub normalize: bool,
    /// Score predicted vectors as written, as the alignment benchmark's published tables did:
    /// any non-negative vector (mass outside the options, all-zero answers of failed parses,
    /// sums above 1) stays in, TV = ½Σ|p − q| (other metrics are refused); references within
    /// ±0.01 of summing to 1 are renormalized. Averages cells flat unless --aggregate says
    /// otherwise. What was partial, above 1, all zero or renormalized is counted and printed.
    #[arg(long)]
    pub raw: bool,
    /// Weight cells by their `weight` field (e.g. group size) in the aggregates.
    #[arg(long)]
    pub weighted: bool,
    /// How each row averages its cells: `group-mean` (the mean over groups of each group's
    /// mean over questions; cells without question and group labels fall back to cells) or
    /// `cells` (a flat mean over cells: with --raw, how the alignment benchmark's published
    /// tables average). The bootstrap resamples groups under `group-mean` and cells under
    /// `cells`. Default: `cells` with --raw, else `group-mean`.
    #[arg(long, value_enum)]
    pub aggregate: Option<AggregateArg>,
    /// Smoothing ε for KL.
    #[arg(long, default_value_t = 1e-4, value_parser = crate::common::non_negative)]
    pub kl_smoothing: f64,
    /// Write the table as CSV (.csv) or JSON (.json).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

impl Args {
    pub fn request(&self) -> Result<CompareRequest> {
        let metrics = self
            .metrics
            .iter()
            .map(|m| Metric::parse(m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CompareRequest {
            predicted: self.predicted.clone(),
            reference: self.reference.clone(),
            opinionqa: self.opinionqa.clone(),
            attributes: self.attribute.clone(),
            keep_refused: self.keep_refused,
            survey: self.survey.source(),
            baselines: self
                .baseline
                .iter()
                .map(|b| match b {
                    BaselineArg::Uniform => Baseline::Uniform,
                    BaselineArg::Majority => Baseline::Majority,
                    BaselineArg::PooledMajority => Baseline::PooledMajority,
                })
                .collect(),
            skip_unmatched: self.skip_unmatched,
            normalize: self.normalize,
            options: CompareOptions {
                metrics,
                by: self.by.clone(),
                bootstrap: self.intervals.bootstrap,
                level: self.intervals.level,
                seed: self.intervals.seed,
                kl_smoothing: self.kl_smoothing,
                weighted: self.weighted,
                aggregate: match self.aggregate {
                    Some(AggregateArg::GroupMean) => Aggregate::GroupMean,
                    Some(AggregateArg::Cells) => Aggregate::Cells,
                    None => Aggregate::default_for(self.raw),
                },
                raw: self.raw,
            },
            out: self.out.clone(),
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    let outcome = probe::compare::compare_all(&args.request()?)?;
    let mut out = std::io::stdout().lock();
    write!(
        out,
        "{}",
        probe::compare::table(&outcome.rows, &args.by, args.intervals.level)
    )?;
    write!(
        out,
        "{}",
        probe::compare::entropy_table(&outcome.entropy, args.intervals.level)
    )?;
    Ok(())
}
