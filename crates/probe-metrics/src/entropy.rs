//! Shannon entropy and its normalized form.

use crate::stats::{interval, resample, two_sided_p, Bootstrap, Estimate};
use crate::{check_distribution, MetricError, Result};

/// H(p) = −Σ p_i ln p_i (nats; 0 ln 0 = 0). Equals `scipy.stats.entropy(p)`.
pub fn entropy(p: &[f64]) -> Result<f64> {
    check_distribution(p, "p")?;
    Ok(-p
        .iter()
        .filter(|&&x| x > 0.0)
        .map(|&x| x * x.ln())
        .sum::<f64>())
}

/// H(p) / ln N over the N categories, in [0, 1] whatever the log base; 0 for N = 1.
/// The latent-space voting study's measure of how spread a party distribution is.
pub fn normalized_entropy(p: &[f64]) -> Result<f64> {
    let h = entropy(p)?;
    Ok(if p.len() > 1 {
        h / (p.len() as f64).ln()
    } else {
        0.0
    })
}

/// H_norm of the distribution the units make together: normalize(Σ units). A unit is one
/// sampled element's contribution — a persona's weighted scaling factors summed over its
/// prompt variants (ψ), or a respondent's weight on the option it chose (a survey).
fn pooled_entropy(units: &[Vec<f64>], rows: impl Iterator<Item = usize>) -> Option<f64> {
    let k = units.first()?.len();
    let mut sum = vec![0.0; k];
    for r in rows {
        for (s, x) in sum.iter_mut().zip(&units[r]) {
            *s += x;
        }
    }
    let total: f64 = sum.iter().sum();
    // NaN sums (impossible for checked units) fail this too
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    sum.iter_mut().for_each(|x| *x /= total);
    normalized_entropy(&sum).ok()
}

fn check_units(units: &[Vec<f64>], what: &str) -> Result<()> {
    let Some(first) = units.first() else {
        return Err(MetricError::Empty(what.to_string()));
    };
    for u in units {
        if u.len() != first.len() {
            return Err(MetricError::InvalidInput(format!(
                "{what}: units over {} and {} options",
                first.len(),
                u.len()
            )));
        }
        crate::check_values(u, what)?;
    }
    Ok(())
}

/// H_norm of the pooled units with a bootstrap interval that resamples the units (personas
/// with all their prompt variants; respondents with their weights).
pub fn entropy_of_units(units: &[Vec<f64>], bootstrap: Bootstrap) -> Result<Estimate> {
    check_units(units, "units")?;
    let value = pooled_entropy(units, 0..units.len())
        .ok_or_else(|| MetricError::InvalidInput("the units sum to zero".into()))?;
    let draws = resample(units.len(), bootstrap)
        .iter()
        .filter_map(|rows| pooled_entropy(units, rows.iter().copied()))
        .collect();
    interval(value, draws, bootstrap)
}

/// A model's H_norm against a survey's, each from its own units, and their difference.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EntropyComparison {
    pub model: Estimate,
    pub survey: Estimate,
    /// Model − survey: negative when the model is less dispersed (collapses the group).
    pub difference: Estimate,
    /// Two-sided bootstrap p-value of "no difference".
    pub p: f64,
    pub model_units: usize,
    pub survey_units: usize,
}

/// Compares the H_norm of two independent samples (personas of a model, respondents of a
/// survey) by resampling each on its own, B times: the difference's interval and two-sided p
/// come from the B differences of the resampled entropies.
pub fn compare_entropy(
    model: &[Vec<f64>],
    survey: &[Vec<f64>],
    bootstrap: Bootstrap,
) -> Result<EntropyComparison> {
    check_units(model, "model units")?;
    check_units(survey, "survey units")?;
    if model.len() < 2 || survey.len() < 2 {
        return Err(MetricError::InvalidInput(format!(
            "{} model and {} survey units: a bootstrap needs at least two on each side",
            model.len(),
            survey.len()
        )));
    }
    if model[0].len() != survey[0].len() {
        return Err(MetricError::InvalidInput(format!(
            "model units over {} options, survey units over {}",
            model[0].len(),
            survey[0].len()
        )));
    }
    let zero = || MetricError::InvalidInput("the units sum to zero".into());
    let h_model = pooled_entropy(model, 0..model.len()).ok_or_else(zero)?;
    let h_survey = pooled_entropy(survey, 0..survey.len()).ok_or_else(zero)?;
    // independent samples: independent resamples (another seed for the survey's)
    let survey_bootstrap = Bootstrap {
        seed: bootstrap.seed ^ 0x5EED_0000_0001,
        ..bootstrap
    };
    let a: Vec<Option<f64>> = resample(model.len(), bootstrap)
        .iter()
        .map(|rows| pooled_entropy(model, rows.iter().copied()))
        .collect();
    let b: Vec<Option<f64>> = resample(survey.len(), survey_bootstrap)
        .iter()
        .map(|rows| pooled_entropy(survey, rows.iter().copied()))
        .collect();
    let d: Vec<f64> = a
        .iter()
        .zip(&b)
        .filter_map(|(x, y)| Some((*x)? - (*y)?))
        .collect();
    Ok(EntropyComparison {
        model: interval(h_model, a.into_iter().flatten().collect(), bootstrap)?,
        survey: interval(h_survey, b.into_iter().flatten().collect(), bootstrap)?,
        difference: interval(h_model - h_survey, d.clone(), bootstrap)?,
        p: two_sided_p(&d),
        model_units: model.len(),
        survey_units: survey.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_and_one_hot_are_the_extremes() {
        assert!((normalized_entropy(&[0.25; 4]).unwrap() - 1.0).abs() < 1e-15);
        assert_eq!(normalized_entropy(&[0.0, 1.0, 0.0]).unwrap(), 0.0);
        assert_eq!(normalized_entropy(&[1.0]).unwrap(), 0.0);
        assert!(entropy(&[0.5, 0.6]).is_err());
    }

    fn one_hot(k: usize, i: usize, w: f64) -> Vec<f64> {
        let mut v = vec![0.0; k];
        v[i] = w;
        v
    }

    /// A model whose 200 personas all lean to one party is found less dispersed than a
    /// survey spread over four (interval below 0, small p); two samples of one population are
    /// not told apart (interval around 0, large p). Weights count: a respondent of weight 3 is
    /// three of weight 1.
    #[test]
    fn entropy_comparisons_reach_both_verdicts() {
        let b = Bootstrap {
            resamples: 500,
            level: 0.95,
            seed: 4,
        };
        let survey: Vec<Vec<f64>> = (0..400).map(|r| one_hot(4, r % 4, 1.0)).collect();
        let collapsed: Vec<Vec<f64>> = (0..200)
            .map(|r| {
                let mut v = vec![0.02, 0.02, 0.02, 0.02];
                v[0] = if r % 10 == 0 { 0.1 } else { 0.9 };
                v
            })
            .collect();
        let c = compare_entropy(&collapsed, &survey, b).unwrap();
        assert!((c.survey.value - 1.0).abs() < 1e-12);
        assert!(c.difference.high < 0.0, "{c:?}");
        assert!(c.p < 0.01, "{c:?}");
        let same: Vec<Vec<f64>> = (0..300).map(|r| one_hot(4, (r * 7) % 4, 1.0)).collect();
        let c = compare_entropy(&same, &survey, b).unwrap();
        assert!(c.difference.low <= 0.0 && 0.0 <= c.difference.high, "{c:?}");
        assert!(c.p > 0.2, "{c:?}");
        // weights: [w=3 on A, w=1 on B] pools to (¾, ¼)
        let h = entropy_of_units(&[one_hot(2, 0, 3.0), one_hot(2, 1, 1.0)], b).unwrap();
        let want = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln()) / 2f64.ln();
        assert!((h.value - want).abs() < 1e-12);
        assert!(h.low <= h.value && h.value <= h.high);
        assert!(compare_entropy(&[], &survey, b).is_err());
        assert!(compare_entropy(&survey[..1], &survey, b).is_err());
    }
}
