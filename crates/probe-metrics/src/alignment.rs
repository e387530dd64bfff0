//! Distributional alignment (Meister et al. 2024): how far a model's answer distributions are
//! from each group's, and the baselines that put those numbers in context.

use crate::divergence::total_variation;
use crate::{check_distribution, MetricError, Result};

/// A(Y, Ŷ) = mean over (group, question) cells of TV(y, ŷ) (eq. 1), optionally weighted.
pub fn distributional_alignment(
    cells: &[(&[f64], &[f64])],
    weights: Option<&[f64]>,
) -> Result<f64> {
    if cells.is_empty() {
        return Err(MetricError::Empty("alignment cells".into()));
    }
    let tvs = cells
        .iter()
        .map(|(y, yhat)| total_variation(y, yhat))
        .collect::<Result<Vec<f64>>>()?;
    crate::stats::weighted_mean(&tvs, weights)
}

/// Knowledge-to-simulation gap KS = A(sequence) / A(verbalize) − 1: how much worse the model
/// is at *sampling* a distribution than at *stating* it.
pub fn knowledge_to_simulation_gap(a_sequence: f64, a_verbalize: f64) -> Result<f64> {
    if !(a_verbalize > 0.0 && a_sequence.is_finite()) {
        return Err(MetricError::InvalidInput(format!(
            "KS gap needs A(verbalize) > 0, got {a_verbalize}"
        )));
    }
    Ok(a_sequence / a_verbalize - 1.0)
}

/// TV of the uniform distribution from the reference.
pub fn uniform_baseline(reference: &[f64]) -> Result<f64> {
    let n = reference.len().max(1);
    total_variation(&vec![1.0 / n as f64; n], reference)
}

/// TV of a one-hot distribution on `majority`'s most likely option (e.g. the pooled
/// population's answer) from the reference: the majority-vote baseline.
pub fn majority_baseline(majority: &[f64], reference: &[f64]) -> Result<f64> {
    check_distribution(majority, "majority distribution")?;
    let k = majority
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let mut one_hot = vec![0.0; majority.len()];
    one_hot[k] = 1.0;
    total_variation(&one_hot, reference)
}

/// ln C(n, k) via ln Γ, exact enough for the multinomial weights used here.
fn ln_factorial(n: usize) -> f64 {
    (1..=n).map(|k| (k as f64).ln()).sum()
}

/// Expected TV between the empirical distribution of `n` samples from `reference` and the
/// reference itself: the floor a perfect sampler hits with n samples (the benchmark's
/// discretization error). Exact over all multinomial outcomes when there are at most
/// `max_outcomes` of them, else a seeded simulation of `simulations` draws.
pub fn discretization_error(
    reference: &[f64],
    n: usize,
    max_outcomes: usize,
    simulations: usize,
    seed: u64,
) -> Result<f64> {
    check_distribution(reference, "reference")?;
    if n == 0 {
        return Err(MetricError::InvalidInput(
            "discretization error needs n ≥ 1 samples".into(),
        ));
    }
    let k = reference.len();
    // Number of compositions of n into k parts: C(n + k − 1, k − 1).
    let outcomes = (ln_factorial(n + k - 1) - ln_factorial(k - 1) - ln_factorial(n)).exp();
    if outcomes <= max_outcomes as f64 {
        let ln_fact: Vec<f64> = (0..=n).map(ln_factorial).collect();
        let mut counts = vec![0usize; k];
        let mut total = 0.0;
        enumerate(&mut counts, 0, n, &mut |c| {
            let mut ln_p = ln_fact[n];
            for (ci, pi) in c.iter().zip(reference) {
                if *ci > 0 {
                    if *pi == 0.0 {
                        return;
                    }
                    ln_p += *ci as f64 * pi.ln() - ln_fact[*ci];
                }
            }
            let tv = 0.5
                * c.iter()
                    .zip(reference)
                    .map(|(ci, pi)| (*ci as f64 / n as f64 - pi).abs())
                    .sum::<f64>();
            total += ln_p.exp() * tv;
        });
        return Ok(total);
    }
    let mut rng = crate::stats::Rng::new(seed);
    let cdf: Vec<f64> = reference
        .iter()
        .scan(0.0, |acc, p| {
            *acc += p;
            Some(*acc)
        })
        .collect();
    let mut sum = 0.0;
    for _ in 0..simulations {
        let mut counts = vec![0usize; k];
        for _ in 0..n {
            let u = rng.next_f64() * cdf[k - 1];
            counts[cdf.iter().position(|&c| u < c).unwrap_or(k - 1)] += 1;
        }
        sum += 0.5
            * counts
                .iter()
                .zip(reference)
                .map(|(c, p)| (*c as f64 / n as f64 - p).abs())
                .sum::<f64>();
    }
    Ok(sum / simulations as f64)
}

fn enumerate(counts: &mut Vec<usize>, at: usize, left: usize, visit: &mut dyn FnMut(&[usize])) {
    if at + 1 == counts.len() {
        counts[at] = left;
        visit(counts);
        return;
    }
    for c in 0..=left {
        counts[at] = c;
        enumerate(counts, at + 1, left - c, visit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discretization_error_vanishes_for_one_hot_and_shrinks_with_n() {
        assert_eq!(
            discretization_error(&[0.0, 1.0], 5, 1 << 20, 0, 0).unwrap(),
            0.0
        );
        let e5 = discretization_error(&[0.3, 0.7], 5, 1 << 20, 0, 0).unwrap();
        let e50 = discretization_error(&[0.3, 0.7], 50, 1 << 20, 0, 0).unwrap();
        assert!(e50 < e5);
        let sim = discretization_error(&[0.3, 0.7], 50, 0, 20_000, 1).unwrap();
        assert!((sim - e50).abs() < 0.005, "{sim} vs {e50}");
    }

    #[test]
    fn ks_gap_and_baselines() {
        assert!((knowledge_to_simulation_gap(0.3, 0.2).unwrap() - 0.5).abs() < 1e-15);
        assert!(knowledge_to_simulation_gap(0.3, 0.0).is_err());
        assert_eq!(majority_baseline(&[0.2, 0.8], &[0.0, 1.0]).unwrap(), 0.0);
        assert!((uniform_baseline(&[1.0, 0.0]).unwrap() - 0.5).abs() < 1e-15);
    }
}
