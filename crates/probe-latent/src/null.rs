//! Is a value-vector selection above chance? The statistic is the mean cosine of a party's
//! joint top-k vectors with its probe direction; the null is the same statistic for directions
//! that know nothing about the party: random directions (isotropic), and the directions of
//! probes trained on labels shuffled within statements (`probe train --null-seeds`), which keep
//! the residual stream's anisotropy.

use serde::{Deserialize, Serialize};

/// The observed statistic against a null sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChanceTest {
    pub observed: f64,
    /// Null sample size, mean and standard deviation.
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    /// (observed − mean) / sd.
    pub z: f64,
    /// (1 + #{null ≥ observed}) / (1 + n): the permutation p-value.
    pub p: f64,
}

/// Mean of the `k` largest values of `cos` (the joint top-k selection's mean cosine).
pub fn top_k_mean(cos: &[f32], k: usize) -> f64 {
    let k = k.min(cos.len()).max(1);
    let mut v: Vec<f32> = cos.to_vec();
    let at = cos.len() - k;
    v.select_nth_unstable_by(at, |a, b| a.total_cmp(b));
    v[at..].iter().map(|&x| f64::from(x)).sum::<f64>() / k as f64
}

/// `observed` against the null sample `null`.
pub fn chance_test(observed: f64, null: &[f64]) -> ChanceTest {
    let n = null.len();
    let mean = null.iter().sum::<f64>() / n.max(1) as f64;
    let sd = (null.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64).sqrt();
    let at_least = null.iter().filter(|&&x| x >= observed).count();
    ChanceTest {
        observed,
        n,
        mean,
        sd,
        z: if sd > 0.0 {
            (observed - mean) / sd
        } else {
            f64::NAN
        },
        p: (1 + at_least) as f64 / (1 + n) as f64,
    }
}

/// `n` random unit directions of dimension `dim` (Gaussian, seeded).
pub fn random_directions(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed ^ 0xA5A5_5A5A_DEAD_BEEF;
    let mut uniform = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let v: Vec<f64> = (0..dim)
                .map(|_| {
                    // Box–Muller
                    let (u1, u2) = (uniform().max(1e-300), uniform());
                    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.iter().map(|x| (x / norm) as f32).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_mean_and_the_test() {
        assert!((top_k_mean(&[0.1, 0.5, -0.2, 0.3, 0.4], 2) - 0.45).abs() < 1e-7);
        assert!((top_k_mean(&[0.1, 0.5], 5) - 0.3).abs() < 1e-7);
        let t = chance_test(0.5, &[0.1, 0.2, 0.3]);
        assert_eq!(t.p, 0.25);
        assert!((t.z - 3.0).abs() < 1e-12);
        let t = chance_test(0.15, &[0.1, 0.2, 0.3]);
        assert_eq!(t.p, 0.75);
    }

    /// Random unit vectors of dimension 576 have cosines with a fixed direction of spread
    /// ≈ 1/√576: the scale the "z ≈ 4" was read against.
    #[test]
    fn random_directions_are_unit_and_isotropic() {
        let d = random_directions(2000, 576, 7);
        let cos: Vec<f64> = d.iter().map(|v| f64::from(v[0])).collect();
        let norm: f32 = d[0].iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        let sd = (cos.iter().map(|c| c * c).sum::<f64>() / cos.len() as f64).sqrt();
        assert!((sd * 24.0 - 1.0).abs() < 0.06, "{sd}");
    }
}
