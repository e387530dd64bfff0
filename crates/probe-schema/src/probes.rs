//! `probes.json` (`probe train`): what was trained on what, and how well. The probe weights
//! live beside it in `probes.safetensors` (probe-train's `save`/`load`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Artifact;

impl Artifact for ProbesJson {
    const FILE: &'static str = "probes.json";
    const FORMAT_VERSION: u32 = 1;
}

/// `probes.json`: the training report plus where the data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbesJson {
    #[serde(default = "crate::one")]
    pub format_version: u32,
    pub model: String,
    /// The LoRA adapter the model ran with (its name), when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    pub model_hash: String,
    pub cache: String,
    pub positions: String,
    /// SHA-256 of the training data (labels, groups, features).
    pub data_sha256: String,
    /// Tensor layout of `probes.safetensors`.
    pub tensors: BTreeMap<String, String>,
    pub report: TrainReport,
}

/// Cross-validation scores of one party's probe on one hook (or `all` hooks pooled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvResult {
    pub party: String,
    pub hook: String,
    pub folds: Vec<Scores>,
    pub mean: Scores,
}

/// Mean over parties of the mean CV scores, per hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookSummary {
    pub hook: String,
    pub per_layer: Option<Scores>,
    pub shared: Option<Scores>,
}

/// Everything about a training run except the probe weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub params: ProbeParams,
    pub parties: Vec<String>,
    pub hooks: Vec<String>,
    /// How many times each positive row is repeated in a fit (the class weight), per party.
    pub positive_replication: Vec<usize>,
    /// The CV fold of every cache row.
    pub folds: Vec<usize>,
    pub per_layer: Vec<CvResult>,
    pub shared: Vec<CvResult>,
    pub summary: Vec<HookSummary>,
    /// Largest ‖∇ mean loss‖∞ at any fit's solution, and how many fits stayed above tolerance.
    pub max_gradient_norm: f64,
    pub unconverged_fits: usize,
    pub fits: usize,
    /// Wall time of all fitting, and of its per-layer and shared parts.
    pub seconds: f64,
    pub per_layer_seconds: f64,
    pub shared_seconds: f64,
    /// The same shared training on labels shuffled within statements (`--null-seeds`): the
    /// chance level of the accuracies above. Absent when not run.
    #[serde(default)]
    pub null: Option<NullReport>,
}

/// Label-shuffled training, per seed and party (shared probe, hook `all`): computed by
/// `null::train_null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NullReport {
    pub seeds: Vec<u64>,
    /// `[seed][party]`: CV balanced accuracy of the probe trained on shuffled labels.
    pub balanced_accuracy: Vec<Vec<f64>>,
    /// Per party: the observed (unshuffled) shared CV balanced accuracy.
    pub observed: Vec<f64>,
    /// Per party: mean and standard deviation of the shuffled accuracies.
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
    /// Per party: (1 + #{shuffled ≥ observed}) / (1 + seeds), the permutation p-value.
    pub p_value: Vec<f64>,
    /// Per party: above chance at α = 0.05, not above, or undetermined when the seeds are too
    /// few for p < 0.05 (fewer than 20). Empty in files of older versions.
    #[serde(default)]
    pub verdict: Vec<probe_metrics::permutation::Verdict>,
}

/// Binary classification scores of a probe on held-out rows (probe-train's `metrics::score`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub accuracy: f64,
    /// Mean of the true-positive and true-negative rates: 0.5 is chance at any imbalance.
    pub balanced_accuracy: f64,
    /// Area under the ROC curve (ties count half); NaN when only one class is present.
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub auc: f64,
    /// F1 of the positive class; 0 when there are no true positives.
    pub f1: f64,
    pub n: usize,
}

/// Which optimiser minimises the (identical) objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// Newton's method with the exact Hessian and sample weights (`crate::newton`): ~10 steps.
    Newton,
    /// linfa-logistic's L-BFGS, classes balanced by repeating the positive rows.
    Lbfgs,
}

impl std::fmt::Display for Solver {
    /// The name `FromStr` reads (`newton`, `lbfgs`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Solver::Newton => "newton",
            Solver::Lbfgs => "lbfgs",
        })
    }
}

impl std::str::FromStr for Solver {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "newton" => Ok(Solver::Newton),
            "lbfgs" | "linfa" => Ok(Solver::Lbfgs),
            other => Err(format!("unknown solver `{other}` (known: newton, lbfgs)")),
        }
    }
}

/// How to train the probes. Defaults follow scikit-learn's `LogisticRegression` (C = 1,
/// L-BFGS, tolerance 1e-4) except for more iterations, so fits converge instead of stopping
/// at 100 steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeParams {
    /// Optimiser; both minimise the same objective (checked against scikit-learn).
    pub solver: Solver,
    /// Inverse L2 strength, scikit-learn's `C`: the objective is
    /// `C · Σᵢ wᵢ · logloss(xᵢ) + ½‖w‖²` (bias not penalised).
    pub c: f64,
    /// Cross-validation folds, grouped by statement.
    pub folds: usize,
    /// Seed of the fold assignment.
    pub seed: u64,
    pub max_iterations: u64,
    /// Stop when the gradient norm of the mean loss falls below this.
    pub tolerance: f64,
    /// Fit one probe per party and layer.
    pub per_layer: bool,
    /// Fit one probe per party shared by all layers (each (row, layer) a sample).
    pub shared: bool,
}

impl Default for ProbeParams {
    fn default() -> Self {
        ProbeParams {
            solver: Solver::Newton,
            c: 1.0,
            folds: 5,
            seed: 0,
            max_iterations: 1000,
            tolerance: 1e-4,
            per_layer: true,
            shared: true,
        }
    }
}

/// Parameters that passed [`ProbeParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidProbeParams(ProbeParams);

impl std::ops::Deref for ValidProbeParams {
    type Target = ProbeParams;
    fn deref(&self) -> &ProbeParams {
        &self.0
    }
}

impl ProbeParams {
    /// Refuses parameters no fit can use (the message says which and why).
    pub fn check(self) -> Result<ValidProbeParams, String> {
        let bad = |m: String| Err(m);
        if !(self.c.is_finite() && self.c > 0.0) {
            return bad(format!("C must be a positive number, not {}", self.c));
        }
        if self.folds < 2 {
            return bad(format!(
                "cross-validation needs at least 2 folds, not {}",
                self.folds
            ));
        }
        if self.max_iterations == 0 {
            return bad("max_iterations must be at least 1".into());
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return bad(format!(
                "tolerance must be a positive number, not {}",
                self.tolerance
            ));
        }
        if !self.per_layer && !self.shared {
            return bad("nothing to train: neither per-layer nor shared probes".into());
        }
        Ok(ValidProbeParams(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_rejects_nonsense() {
        assert!(ProbeParams::default().check().is_ok());
        for p in [
            ProbeParams {
                c: 0.0,
                ..Default::default()
            },
            ProbeParams {
                c: f64::NAN,
                ..Default::default()
            },
            ProbeParams {
                folds: 1,
                ..Default::default()
            },
            ProbeParams {
                tolerance: -1.0,
                ..Default::default()
            },
            ProbeParams {
                per_layer: false,
                shared: false,
                ..Default::default()
            },
        ] {
            let err = p.check().unwrap_err().to_string();
            assert!(!err.is_empty());
        }
    }
}
