//! Distances and divergences between two distributions over the same options.

use crate::{check_distribution, check_pair, check_same_len, MetricError, Result};

/// Total variation ½ Σ |p_i − q_i|, in [0, 1]: the distributional-alignment benchmark's
/// yardstick (Meister et al. 2024, eq. 1).
pub fn total_variation(p: &[f64], q: &[f64]) -> Result<f64> {
    check_pair(p, q)?;
    Ok(0.5 * p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>())
}

/// TV as the alignment benchmark scored raw answer vectors: `½ Σ |p − q|` where `p` may hold
/// less than all the mass (answers outside the options, all-zero failed parses) or more (an
/// answer that marks several options) and `q` is a distribution. `p` must be non-negative.
pub fn total_variation_raw(p: &[f64], q: &[f64]) -> Result<f64> {
    crate::check_same_len(p, q, "p and q")?;
    crate::check_values(p, "p")?;
    crate::check_distribution(q, "q")?;
    Ok(0.5 * p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>())
}

/// Adds ε to every entry and renormalizes: the smoothing `kl_divergence` applies.
pub fn smooth(p: &[f64], epsilon: f64) -> Vec<f64> {
    let total = 1.0 + epsilon * p.len() as f64;
    p.iter().map(|x| (x + epsilon) / total).collect()
}

/// KL(p ‖ q) = Σ p_i ln(p_i / q_i) in nats (`scipy.stats.entropy(p, q)`).
///
/// With `smoothing = Some(ε)` both vectors get ε added to every entry and are renormalized
/// first (the survey fine-tuning study's practice). Without it, q_i = 0 where p_i > 0 is an
/// error rather than infinity.
pub fn kl_divergence(p: &[f64], q: &[f64], smoothing: Option<f64>) -> Result<f64> {
    check_pair(p, q)?;
    let (p, q) = match smoothing {
        Some(eps) if eps > 0.0 && eps.is_finite() => (smooth(p, eps), smooth(q, eps)),
        Some(eps) => {
            return Err(MetricError::InvalidInput(format!(
                "smoothing ε = {eps} must be positive"
            )))
        }
        None => (p.to_vec(), q.to_vec()),
    };
    let mut kl = 0.0;
    for (i, (&a, &b)) in p.iter().zip(&q).enumerate() {
        if a > 0.0 {
            if b == 0.0 {
                return Err(MetricError::InfiniteKl { index: i });
            }
            kl += a * (a / b).ln();
        }
    }
    Ok(kl.max(0.0))
}

/// Jensen–Shannon divergence ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q)/2, in nats, in [0, ln 2].
pub fn js_divergence(p: &[f64], q: &[f64]) -> Result<f64> {
    check_pair(p, q)?;
    let half_kl = |a: &[f64], m: &[f64]| -> f64 {
        a.iter()
            .zip(m)
            .filter(|(&x, _)| x > 0.0)
            .map(|(&x, &y)| x * (x / y).ln())
            .sum::<f64>()
    };
    let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| 0.5 * (a + b)).collect();
    Ok((0.5 * half_kl(p, &m) + 0.5 * half_kl(q, &m)).max(0.0))
}

/// Jensen–Shannon distance √JS (natural log), as `scipy.spatial.distance.jensenshannon`.
pub fn js_distance(p: &[f64], q: &[f64]) -> Result<f64> {
    Ok(js_divergence(p, q)?.sqrt())
}

/// Root mean squared error between two equally long vectors (e.g. probability vectors,
/// or expected ordinal values over questions): `sklearn`'s `root_mean_squared_error`.
pub fn rmse(a: &[f64], b: &[f64]) -> Result<f64> {
    check_same_len(a, b, "rmse inputs")?;
    if a.is_empty() {
        return Err(MetricError::Empty("rmse inputs".into()));
    }
    if let Some(i) = a.iter().chain(b).position(|x| !x.is_finite()) {
        return Err(MetricError::NonFinite {
            what: "rmse inputs".into(),
            index: i % a.len(),
        });
    }
    Ok((a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64).sqrt())
}

/// E_p[v] = Σ p_i v_i, the expected ordinal value of an answer distribution.
pub fn expected_value(p: &[f64], values: &[f64]) -> Result<f64> {
    check_same_len(p, values, "p and ordinal values")?;
    check_distribution(p, "p")?;
    Ok(p.iter().zip(values).map(|(a, v)| a * v).sum())
}

/// RMSE of expected ordinal values over paired distributions (one pair per question):
/// the survey fine-tuning study's RMSE on ordinal answers.
pub fn rmse_expected(pairs: &[(&[f64], &[f64])], values: &[f64]) -> Result<f64> {
    let mut a = Vec::with_capacity(pairs.len());
    let mut b = Vec::with_capacity(pairs.len());
    for (p, q) in pairs {
        a.push(expected_value(p, values)?);
        b.push(expected_value(q, values)?);
    }
    rmse(&a, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw vectors: the missing mass counts against the model, an all-zero answer scores
    /// ½ Σ q = 0.5; plain TV refuses both.
    #[test]
    fn raw_tv_scores_partial_and_empty_answers() {
        assert!((total_variation_raw(&[0.3, 0.2], &[0.5, 0.5]).unwrap() - 0.25).abs() < 1e-15);
        assert_eq!(total_variation_raw(&[0.0, 0.0], &[0.3, 0.7]).unwrap(), 0.5);
        assert!(total_variation(&[0.3, 0.2], &[0.5, 0.5]).is_err());
        // an answer that marks several options sums above 1: scored as written, as the
        // benchmark did (½(0.4 + 0.3))
        assert!((total_variation_raw(&[0.9, 0.2], &[0.5, 0.5]).unwrap() - 0.35).abs() < 1e-15);
        assert!(total_variation_raw(&[-0.1, 0.2], &[0.5, 0.5]).is_err());
    }

    #[test]
    fn kl_reports_zeros_instead_of_infinity() {
        let err = kl_divergence(&[0.5, 0.5], &[1.0, 0.0], None).unwrap_err();
        assert_eq!(err, MetricError::InfiniteKl { index: 1 });
        assert!(kl_divergence(&[0.5, 0.5], &[1.0, 0.0], Some(1e-3))
            .unwrap()
            .is_finite());
    }

    #[test]
    fn tv_and_js_bounds() {
        assert_eq!(total_variation(&[1.0, 0.0], &[0.0, 1.0]).unwrap(), 1.0);
        assert!((js_divergence(&[1.0, 0.0], &[0.0, 1.0]).unwrap() - 2f64.ln()).abs() < 1e-15);
        assert!(total_variation(&[1.0], &[0.5, 0.5]).is_err());
    }
}
