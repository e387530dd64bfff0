//! `probe-metrics`: every yardstick the source studies use to compare a model's answer
//! distributions with real people's, in one dependency-free crate (f64 throughout).
//!
//! | module | metrics | source |
//! | --- | --- | --- |
//! | [`entropy`] | entropy, normalized entropy H/ln N | latent-space voting study |
//! | [`divergence`] | total variation, KL (explicit smoothing), Jensen–Shannon, RMSE | alignment benchmark, survey fine-tuning |
//! | [`wasserstein`] | W1 on ordered categories (+ normalized), barycenters, prompt sensitivity | OpinionQA, latent-space study |
//! | [`ot`] | exact optimal transport with any cost matrix, Sinkhorn | POT's `emd2` / `sinkhorn2` |
//! | [`alignment`] | distributional alignment A, knowledge-to-simulation gap, baselines, discretization error | Meister et al. 2024 |
//! | [`calibration`] | temperature scaling, expected calibration error | alignment benchmark |
//! | [`correlation`] | Pearson/Spearman item×item matrices and their distances | representativeness framework |
//! | [`individual`] | per-item accuracy and RMSE of simulated twins | survey fine-tuning |
//! | [`population`] | KL/TV of a simulated table's marginals, its correlation structure | survey fine-tuning, representativeness framework |
//! | [`paired`] | differences of two simulated tables of the same respondents, paired bootstrap CI and p | survey fine-tuning baselines |
//! | [`permutation`] | permutation-test verdicts at α, with "undetermined" for nulls too small to decide | |
//! | [`stats`] | OLS regression with CI, percentile bootstrap, weighted means | |
//!
//! Inputs are checked: lengths must agree, values be finite and non-negative, probability
//! vectors sum to 1 within [`PROB_TOLERANCE`]. Failures are [`MetricError`]s, never NaN.

pub mod alignment;
pub mod calibration;
pub mod correlation;
pub mod divergence;
pub mod entropy;
mod error;
pub mod individual;
pub mod ot;
pub mod paired;
pub mod permutation;
pub mod population;
pub mod stats;
pub mod wasserstein;

pub use error::{MetricError, Result};

/// How far a probability vector's sum may stray from 1.
pub const PROB_TOLERANCE: f64 = 1e-6;

/// Non-empty, finite and non-negative.
pub(crate) fn check_values(values: &[f64], what: &str) -> Result<()> {
    if values.is_empty() {
        return Err(MetricError::Empty(what.to_string()));
    }
    for (i, &x) in values.iter().enumerate() {
        if !x.is_finite() {
            return Err(MetricError::NonFinite {
                what: what.to_string(),
                index: i,
            });
        }
        if x < 0.0 {
            return Err(MetricError::Negative {
                what: what.to_string(),
                index: i,
                value: x,
            });
        }
    }
    Ok(())
}

/// Checks that `p` is a probability vector: non-empty, finite, non-negative, summing to 1.
pub fn check_distribution(p: &[f64], what: &str) -> Result<()> {
    check_values(p, what)?;
    let sum: f64 = p.iter().sum();
    if (sum - 1.0).abs() > PROB_TOLERANCE {
        return Err(MetricError::NotNormalized {
            what: what.to_string(),
            sum,
        });
    }
    Ok(())
}

/// Counts or unnormalized weights → probabilities.
pub fn normalize(counts: &[f64], what: &str) -> Result<Vec<f64>> {
    check_values(counts, what)?;
    let total: f64 = counts.iter().sum();
    if !total.is_finite() {
        return Err(MetricError::InvalidInput(format!(
            "{what}: the counts sum beyond the largest number (overflow); every share would read as 0"
        )));
    }
    if total <= 0.0 {
        return Err(MetricError::InvalidInput(format!(
            "{what}: all counts are zero"
        )));
    }
    Ok(counts.iter().map(|c| c / total).collect())
}

pub(crate) fn check_same_len(a: &[f64], b: &[f64], what: &str) -> Result<()> {
    if a.len() != b.len() {
        return Err(MetricError::LengthMismatch {
            what: what.to_string(),
            left: a.len(),
            right: b.len(),
        });
    }
    Ok(())
}

pub(crate) fn check_pair(p: &[f64], q: &[f64]) -> Result<()> {
    check_same_len(p, q, "p and q")?;
    check_distribution(p, "p")?;
    check_distribution(q, "q")
}
