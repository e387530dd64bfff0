//! `probe finetune`'s folder: `history.jsonl` (one [`HistoryRecord`] per optimizer step and
//! validation) and `training.json` (a [`TrainingSummary`] of the run). The adapter beside them
//! is in PEFT's own layout (`adapter/`), not described here.

use serde::{Deserialize, Serialize};

use crate::Artifact;

/// One optimizer step's or one validation's record (a line of `history.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub step: usize,
    pub epoch: usize,
    pub train_loss: Option<f64>,
    pub validation_loss: Option<f64>,
    pub lr: f64,
}

/// `training.json`: where the run ended and how fast it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    #[serde(default = "crate::one")]
    pub format_version: u32,
    pub steps: usize,
    pub total_steps: usize,
    /// The step with the lowest validation loss (the adapter written), when validated.
    pub best_step: Option<usize>,
    pub best_validation_loss: Option<f64>,
    pub stopped_early: bool,
    /// The step this invocation resumed from (0: a fresh start).
    pub resumed_from: usize,
    pub train_examples: usize,
    pub validation_examples: usize,
    pub this_run: FinetuneThisRun,
}

impl Artifact for TrainingSummary {
    const FILE: &'static str = "training.json";
    const FORMAT_VERSION: u32 = 1;
}

/// What one invocation computed: its wall time, the seconds of its training steps alone,
/// the prompt tokens through forward and backward, and their rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneThisRun {
    pub seconds: f64,
    pub step_seconds: f64,
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub tokens_per_example: f64,
}
