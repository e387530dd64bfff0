//! Temperature scaling of answer distributions and expected calibration error.

use crate::divergence::total_variation;
use crate::{check_distribution, MetricError, Result};

/// softmax(ln p / τ): sharpens (τ < 1) or flattens (τ > 1) a distribution; zeros stay zero.
pub fn temperature_scale(p: &[f64], tau: f64) -> Result<Vec<f64>> {
    check_distribution(p, "p")?;
    if !(tau > 0.0 && tau.is_finite()) {
        return Err(MetricError::InvalidInput(format!(
            "temperature {tau} must be positive"
        )));
    }
    let logits: Vec<f64> = p
        .iter()
        .map(|&x| {
            if x > 0.0 {
                x.ln() / tau
            } else {
                f64::NEG_INFINITY
            }
        })
        .collect();
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits
        .iter()
        .map(|&l| if l.is_finite() { (l - max).exp() } else { 0.0 })
        .collect();
    let total: f64 = exps.iter().sum();
    Ok(exps.into_iter().map(|e| e / total).collect())
}

/// τ* = argmin_τ mean over cells of TV(y, softmax(ln p / τ)), searched over τ in
/// [`low`, `high`] (log-spaced grid, then golden-section refinement). Returns (τ*, mean TV).
pub fn fit_temperature(cells: &[(&[f64], &[f64])], low: f64, high: f64) -> Result<(f64, f64)> {
    if cells.is_empty() {
        return Err(MetricError::Empty("calibration cells".into()));
    }
    if !(low > 0.0 && high > low) {
        return Err(MetricError::InvalidInput(format!(
            "temperature bounds [{low}, {high}] are invalid"
        )));
    }
    let objective = |log_tau: f64| -> Result<f64> {
        let tau = log_tau.exp();
        let mut sum = 0.0;
        for (y, p) in cells {
            sum += total_variation(y, &temperature_scale(p, tau)?)?;
        }
        Ok(sum / cells.len() as f64)
    };
    let (lo, hi) = (low.ln(), high.ln());
    let steps = 400;
    let mut best = (lo, objective(lo)?);
    for s in 1..=steps {
        let x = lo + (hi - lo) * s as f64 / steps as f64;
        let f = objective(x)?;
        if f < best.1 {
            best = (x, f);
        }
    }
    let h = (hi - lo) / steps as f64;
    let (mut a, mut b) = ((best.0 - h).max(lo), (best.0 + h).min(hi));
    let phi = 0.5 * (5f64.sqrt() - 1.0);
    let mut c = b - phi * (b - a);
    let mut d = a + phi * (b - a);
    let (mut fc, mut fd) = (objective(c)?, objective(d)?);
    while b - a > 1e-12 {
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - phi * (b - a);
            fc = objective(c)?;
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + phi * (b - a);
            fd = objective(d)?;
        }
    }
    let x = 0.5 * (a + b);
    let f = objective(x)?;
    Ok(if f <= best.1 {
        (x.exp(), f)
    } else {
        (best.0.exp(), best.1)
    })
}

/// Expected calibration error of predicted answer distributions against reference
/// distributions (soft labels): in each of `n_bins` equal-width bins of the top predicted
/// probability, |mean q(top option) − mean p(top option)|, weighted by the bin's share of
/// cells. With one-hot references it is [`expected_calibration_error`] exactly; with a
/// group's answer distribution as `q` it asks whether a model that says "70 % choose A" is
/// right that 70 % of the group choose A.
pub fn expected_calibration_error_soft(
    predictions: &[&[f64]],
    references: &[&[f64]],
    n_bins: usize,
) -> Result<f64> {
    if predictions.is_empty() {
        return Err(MetricError::Empty("predictions".into()));
    }
    if predictions.len() != references.len() {
        return Err(MetricError::LengthMismatch {
            what: "predictions and references".into(),
            left: predictions.len(),
            right: references.len(),
        });
    }
    if n_bins == 0 {
        return Err(MetricError::InvalidInput(
            "ECE needs at least one bin".into(),
        ));
    }
    let mut count = vec![0usize; n_bins];
    let mut conf_sum = vec![0.0; n_bins];
    let mut hit_sum = vec![0.0; n_bins];
    for (p, q) in predictions.iter().zip(references) {
        crate::check_pair(p, q)?;
        let (arg, conf) =
            p.iter().enumerate().fold(
                (0, f64::NEG_INFINITY),
                |acc, (i, &x)| {
                    if x > acc.1 {
                        (i, x)
                    } else {
                        acc
                    }
                },
            );
        let bin = ((conf * n_bins as f64).ceil() as usize).clamp(1, n_bins) - 1;
        count[bin] += 1;
        conf_sum[bin] += conf;
        hit_sum[bin] += q[arg];
    }
    let n = predictions.len() as f64;
    Ok((0..n_bins)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let c = count[b] as f64;
            c / n * (hit_sum[b] / c - conf_sum[b] / c).abs()
        })
        .sum())
}

/// Expected calibration error of predicted distributions against observed labels:
/// Σ_b |B_b|/n · |accuracy(B_b) − confidence(B_b)| over `n_bins` equal-width bins of the top
/// probability, bins (b/n_bins, (b+1)/n_bins].
pub fn expected_calibration_error(
    predictions: &[Vec<f64>],
    labels: &[usize],
    n_bins: usize,
) -> Result<f64> {
    if predictions.is_empty() {
        return Err(MetricError::Empty("predictions".into()));
    }
    if predictions.len() != labels.len() {
        return Err(MetricError::LengthMismatch {
            what: "predictions and labels".into(),
            left: predictions.len(),
            right: labels.len(),
        });
    }
    if n_bins == 0 {
        return Err(MetricError::InvalidInput(
            "ECE needs at least one bin".into(),
        ));
    }
    let mut count = vec![0usize; n_bins];
    let mut conf_sum = vec![0.0; n_bins];
    let mut correct = vec![0usize; n_bins];
    for (p, &label) in predictions.iter().zip(labels) {
        check_distribution(p, "prediction")?;
        if label >= p.len() {
            return Err(MetricError::InvalidInput(format!(
                "label {label} outside {} options",
                p.len()
            )));
        }
        let (arg, conf) =
            p.iter().enumerate().fold(
                (0, f64::NEG_INFINITY),
                |acc, (i, &x)| if x > acc.1 { (i, x) } else { acc },
            );
        let bin = ((conf * n_bins as f64).ceil() as usize).clamp(1, n_bins) - 1;
        count[bin] += 1;
        conf_sum[bin] += conf;
        correct[bin] += usize::from(arg == label);
    }
    let n = predictions.len() as f64;
    Ok((0..n_bins)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let c = count[b] as f64;
            c / n * (correct[b] as f64 / c - conf_sum[b] / c).abs()
        })
        .sum())
}

#[cfg(test)]
mod soft_tests {
    use super::*;

    #[test]
    fn soft_ece_generalizes_label_ece() {
        let preds = vec![vec![0.7, 0.3], vec![0.6, 0.4], vec![0.2, 0.8]];
        let labels = [0usize, 1, 1];
        let one_hot: Vec<Vec<f64>> = labels
            .iter()
            .map(|&l| (0..2).map(|i| f64::from(u8::from(i == l))).collect())
            .collect();
        let p: Vec<&[f64]> = preds.iter().map(Vec::as_slice).collect();
        let q: Vec<&[f64]> = one_hot.iter().map(Vec::as_slice).collect();
        let hard = expected_calibration_error(&preds, &labels, 10).unwrap();
        assert!((expected_calibration_error_soft(&p, &q, 10).unwrap() - hard).abs() < 1e-15);
        // one cell: says 70 % choose A, and 50 % of the group do: ECE 0.2
        let e = expected_calibration_error_soft(&[&[0.7, 0.3]], &[&[0.5, 0.5]], 10).unwrap();
        assert!((e - 0.2).abs() < 1e-12);
    }
}
