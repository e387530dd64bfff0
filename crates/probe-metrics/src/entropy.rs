//! Shannon entropy and its normalized form.

use crate::{check_distribution, Result};

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
}
