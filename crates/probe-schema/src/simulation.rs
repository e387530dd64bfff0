//! `simulate-*/scores.json` (`probe simulate`): the simulated respondents scored against the
//! real ones, per split and temperature, beside the baselines scored by the same code and the
//! paired differences to each.

use probe_metrics::individual::Agreement;
use probe_metrics::paired::PairedDifferences;
use probe_metrics::population::{MarginalFit, StructureFit};
use serde::{Deserialize, Serialize};

use crate::Artifact;

impl Artifact for SimulationScores {
    const FILE: &'static str = "scores.json";
    const FORMAT_VERSION: u32 = 1;
}

/// Every score of one split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitScores {
    /// `all`, or a split's name.
    pub split: String,
    pub respondents: usize,
    /// The marginals of the option distributions themselves (each twin's answer counted as
    /// its distribution): what infinitely many draws at temperature 1 would give.
    pub expected: MarginalFit,
    pub temperatures: Vec<TemperatureScores>,
}

/// The table of one temperature's draws.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemperatureScores {
    pub temperature: f32,
    pub marginals: MarginalFit,
    pub agreement: Agreement,
    /// `None` when fewer than two items that vary have values (`structure_note` says why);
    /// items constant in either table are left out and named in the fit.
    pub structure: Option<StructureFit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structure_note: Option<String>,
}

/// A baseline (or another simulation of the same respondents) scored by the same code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComparatorScores {
    pub name: String,
    pub description: String,
    pub splits: Vec<SplitScores>,
}

/// The model's table against another of the same respondents (a baseline, or another run),
/// at one split and temperature: A = the model, B = `versus`; paired bootstrap over
/// respondents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairedComparison {
    pub versus: String,
    pub split: String,
    pub temperature: f32,
    pub differences: PairedDifferences,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimulationScores {
    #[serde(default = "crate::one")]
    pub format_version: u32,
    pub model: String,
    pub survey: String,
    pub persona: bool,
    pub items: Vec<String>,
    /// How the item × item correlations were computed (e.g. Pearson on option codes).
    pub correlation: String,
    pub splits: Vec<SplitScores>,
    /// The baselines (and `--versus` runs), scored on the same respondents by the same code.
    #[serde(default)]
    pub baselines: Vec<ComparatorScores>,
    /// The model against each of them, per split and temperature (paired bootstrap).
    #[serde(default)]
    pub differences: Vec<PairedComparison>,
}
