//! `eval-*/summary.json` (`probe eval`): how many units ran, how each method and steering
//! fared (failed units, parse failures), and what this invocation computed.

use serde::{Deserialize, Serialize};

use crate::psi::Ordered;
use crate::Artifact;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalSummary {
    #[serde(default = "crate::one")]
    pub format_version: u32,
    /// Units finished (over every run of this folder) and units planned.
    pub units: usize,
    pub of: usize,
    pub complete: bool,
    pub this_run: EvalThisRun,
    /// Per (method, steering), in that order.
    pub by_setting: Vec<EvalSetting>,
}

impl Artifact for EvalSummary {
    const FILE: &'static str = "summary.json";
    const FORMAT_VERSION: u32 = 1;
}

/// What one invocation computed (a resumed run counts only its own units).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalThisRun {
    pub units: usize,
    pub seconds: f64,
    pub tally: Tally,
    pub prompt_tokens_per_s: f64,
    pub generated_tokens_per_s: f64,
}

/// Counts of what happened in a run of units.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub units: usize,
    pub failed_units: usize,
    pub parse_failures: usize,
    pub attempts: usize,
    pub invalid_answers: usize,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
}

/// One method under one steering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSetting {
    pub method: String,
    pub steering: String,
    /// Units asked, and those that ended without a distribution (left out of every mean).
    pub units: usize,
    pub failed_units: usize,
    /// Generation attempts, those whose output did not parse, and their ratio (0 without
    /// attempts; `null` in files of older versions that had none).
    pub attempts: usize,
    pub parse_failures: usize,
    #[serde(default)]
    pub parse_failure_rate: Option<f64>,
}

/// `eval-*/tv.json` of the voting question (`probe eval --vote`): TV of each method ×
/// steering's pooled distributions against the survey or election result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoteTvFile {
    #[serde(default = "crate::one")]
    pub format_version: u32,
    /// The reference's name and how it was made.
    pub reference: String,
    pub notes: Vec<String>,
    pub tv: Vec<VoteTv>,
}

impl Artifact for VoteTvFile {
    const FILE: &'static str = "tv.json";
    const FORMAT_VERSION: u32 = 1;
}

/// TV of one method × steering's pooled voting distributions against the reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoteTv {
    pub method: String,
    pub steering: String,
    /// Everyone (`all=all`), when the reference has it.
    pub tv_all: Option<f64>,
    /// The mean over `by_scope`.
    pub mean_tv: f64,
    /// Everyone and each group (`attribute=value`) the reference has.
    pub by_scope: Vec<ScopeTv>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScopeTv {
    pub scope: String,
    pub tv: f64,
}

/// `eval-*/tv.json` of question sets with their own references (OpinionQA, the coin toy): the
/// benchmark's TV per method × steering with the baselines, log-p temperature-scaled and the
/// knowledge-to-simulation gap, per steering in the order run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskTvFile {
    #[serde(default = "crate::one")]
    pub format_version: u32,
    pub tv: Vec<crate::compare::Row>,
    pub logp_temperature_scaled: Ordered<TemperatureScaled>,
    pub knowledge_to_simulation_gap: Ordered<SimulationGap>,
}

impl Artifact for TaskTvFile {
    const FILE: &'static str = "tv.json";
    const FORMAT_VERSION: u32 = 1;
}

/// log-p with one temperature τ* fitted to these very cells (in-sample): argmin mean TV.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemperatureScaled {
    pub tau: f64,
    pub tv: f64,
    pub cells: usize,
}

/// A(sequence) / A(verbalize) − 1 over the (group, question) cells both methods parsed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimulationGap {
    pub gap: f64,
    pub a_sequence: f64,
    pub a_verbalize: f64,
    pub shared_cells: usize,
}
