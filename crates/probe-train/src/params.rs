//! Checked training parameters (linfa style: build `ProbeParams`, `check()` it, then fit).

use serde::{Deserialize, Serialize};

use crate::{Result, TrainError};

/// How to train the probes. Defaults follow scikit-learn's `LogisticRegression` (C = 1,
/// L-BFGS, tolerance 1e-4) except for more iterations, so fits converge instead of stopping
/// at 100 steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeParams {
    /// Optimiser; both minimise the same objective (checked against scikit-learn).
    pub solver: crate::fit::Solver,
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
            solver: crate::fit::Solver::Newton,
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
    pub fn check(self) -> Result<ValidProbeParams> {
        let bad = |m: String| Err(TrainError::Params(m));
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
