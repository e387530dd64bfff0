//! `probe compare`'s tables as JSON (`--out x.json`): the metric rows, and the entropy tests of
//! latent ψ against a respondent-level survey (`x.entropy.json`). The CSV forms carry the same
//! columns.

use std::collections::BTreeMap;

use probe_metrics::entropy::EntropyComparison;
use probe_metrics::stats::Estimate;
use serde::{Deserialize, Serialize};

use crate::Artifact;

/// `probe compare --out x.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareFile {
    #[serde(default = "crate::one")]
    pub format_version: u32,
    pub rows: Vec<Row>,
}

impl Artifact for CompareFile {
    const FILE: &'static str = "compare.json";
    const FORMAT_VERSION: u32 = 1;
}

/// `x.entropy.json` beside `probe compare --out x.json --survey …`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntropyFile {
    #[serde(default = "crate::one")]
    pub format_version: u32,
    pub tests: Vec<EntropyTest>,
}

impl Artifact for EntropyFile {
    const FILE: &'static str = "compare.entropy.json";
    const FORMAT_VERSION: u32 = 1;
}

/// One aggregate: a metric over the cells of one group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub group: BTreeMap<String, String>,
    /// The metric's name (`tv`, `kl`, `js`, `w1`, …).
    pub metric: String,
    pub n_cells: usize,
    /// How the cells were averaged (the benchmark's mean over groups of the mean over
    /// questions, or a flat mean over cells).
    pub aggregate: Aggregate,
    /// Groups averaged over (for [`Aggregate::GroupMean`]).
    pub n_groups: Option<usize>,
    pub estimate: Estimate,
    /// TV rows: the expected calibration error of the cells' top options against the
    /// references (10 bins; see `expected_calibration_error_soft`).
    pub calibration_ece: Option<f64>,
    /// TV rows whose cells carry a `samples` label n (the `sample` and `sequence` methods):
    /// the TV a perfect sampler of the reference reaches with n answers, averaged like the row
    /// (the benchmark's discretization error; a floor for these methods).
    pub discretization_floor: Option<f64>,
}

impl Row {
    /// The bootstrap interval as `[low, high]`, or `n/a (1 group)` (`n/a (1 cell)`) where a
    /// single unit leaves nothing to resample: its zero-width interval would read as certainty.
    pub fn interval_text(&self) -> String {
        match (self.n_groups, self.n_cells) {
            (Some(1), _) => "n/a (1 group)".into(),
            (None, 1) => "n/a (1 cell)".into(),
            _ => format!("[{:.4}, {:.4}]", self.estimate.low, self.estimate.high),
        }
    }
}

/// How a row's cells are averaged into its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregate {
    /// The mean over groups of each group's mean over its questions, bootstrapped over groups:
    /// every group counts alike however many of its questions parsed. Rows whose cells lack
    /// `question` or a group label (`group`, else `value`) fall back to [`Aggregate::Cells`],
    /// and say so. (Not how the alignment benchmark's published tables were averaged.)
    GroupMean,
    /// A flat mean over cells (weights groups by how many of their cells parsed). With raw TV
    /// (`raw`), this is how Meister et al.'s published tables (8/9) average their released
    /// outputs: all 18 rows within ±0.002.
    Cells,
}

impl Aggregate {
    /// The name `probe compare --aggregate` takes.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::GroupMean => "group-mean",
            Aggregate::Cells => "cells",
        }
    }

    /// `Cells` for raw vectors (the published tables' average), else `GroupMean`.
    pub fn default_for(raw: bool) -> Aggregate {
        if raw {
            Aggregate::Cells
        } else {
            Aggregate::GroupMean
        }
    }
}

/// One latent ψ's normalized entropy against a respondent-level survey's, in one scope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntropyTest {
    /// The `scale` directory of the ψ.
    pub source: String,
    pub attribute: String,
    pub value: String,
    /// H_norm of ψ (resampling personas) and of the survey (resampling respondents), model −
    /// survey with its interval and two-sided p.
    pub comparison: EntropyComparison,
}
