//! Is a value-vector selection above chance? The statistic is the mean cosine of a party's
//! joint top-k vectors with its probe direction; the null is the same statistic for directions
//! that know nothing about the party: random directions (isotropic), and the directions of
//! probes trained on labels shuffled within statements (`probe train --null-seeds`), which keep
//! the residual stream's anisotropy.

use probe_lm::burn::tensor::{Device, Tensor};

use crate::{cosine_scan, LatentError, PartyDirection, Result};

pub use probe_metrics::permutation::{null_size_for, smallest_p, Verdict, ALPHA};

pub use probe_schema::vectors::ChanceTest;

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
    let p = (1 + at_least) as f64 / (1 + n) as f64;
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
        p,
        verdict: Verdict::of(p, n, ALPHA),
    }
}

/// One party's selection against chance (see [`party_chance_tests`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PartyChance {
    /// Against random unit directions.
    pub random: Option<ChanceTest>,
    /// Against this party's own label-shuffled probes' directions (one per seed).
    pub shuffled: Option<ChanceTest>,
    /// Both nulls together ([`Verdict::all`]).
    pub verdict: Verdict,
}

/// Tests each party's joint top-`k` mean cosine against two nulls: `n_random` random unit
/// directions (seeded, the same for every party), and the directions of that party's own
/// label-shuffled probes, `shuffled[seed][party]`. Each party is held to its own shuffled
/// probes, not all parties' pooled: a pooled null mixes parties whose shuffled directions
/// differ in kind, and its size (seeds × parties) would not be the number of independent
/// permutations the test rests on.
pub fn party_chance_tests(
    directions: &[PartyDirection],
    shuffled: &[Vec<Vec<f32>>],
    value_vectors: &[(usize, Tensor<2>)],
    k: usize,
    n_random: usize,
    device: &Device,
) -> Result<Vec<PartyChance>> {
    let Some(first) = directions.first() else {
        return Err(LatentError::Input("no probe directions".into()));
    };
    let dim = first.direction.len();
    if let Some(bad) = shuffled.iter().find(|seed| seed.len() != directions.len()) {
        return Err(LatentError::Input(format!(
            "label-shuffled probes name {} parties, the probes {}",
            bad.len(),
            directions.len()
        )));
    }
    let observed_table = cosine_scan(directions, value_vectors, device)?;
    let means = |dirs: Vec<Vec<f32>>| -> Result<Vec<f64>> {
        if dirs.is_empty() {
            return Ok(Vec::new());
        }
        let dirs: Vec<PartyDirection> = dirs
            .into_iter()
            .enumerate()
            .map(|(i, direction)| PartyDirection {
                party: format!("null{i}"),
                source: "null".into(),
                direction,
            })
            .collect();
        let t = cosine_scan(&dirs, value_vectors, device)?;
        Ok((0..dirs.len()).map(|i| top_k_mean(t.party(i), k)).collect())
    };
    let random = means(random_directions(n_random, dim, 0))?;
    // one scan for every seed and party: index seed · parties + party
    let shuffled_means = means(shuffled.iter().flatten().cloned().collect())?;
    let parties = directions.len();
    Ok((0..parties)
        .map(|p| {
            let observed = top_k_mean(observed_table.party(p), k);
            let random = (!random.is_empty()).then(|| chance_test(observed, &random));
            let own: Vec<f64> = shuffled_means
                .iter()
                .skip(p)
                .step_by(parties)
                .copied()
                .collect();
            let shuffled = (!own.is_empty()).then(|| chance_test(observed, &own));
            let verdict = Verdict::all(random.iter().chain(shuffled.iter()).map(|t| t.verdict));
            PartyChance {
                random,
                shuffled,
                verdict,
            }
        })
        .collect())
}

/// `n` random unit directions of dimension `dim` (Gaussian, seeded).
pub fn random_directions(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = probe_util::SplitMix64::from_state(seed ^ 0xA5A5_5A5A_DEAD_BEEF);
    let mut uniform = || rng.next_f64();
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

    /// A null of 19 cannot give p < 0.05 (1/20 = 0.05), one of 20 can (1/21); an observation
    /// beyond a too-small null is "undetermined", never "above" or "not above".
    #[test]
    fn verdicts_reach_both_answers_and_say_undetermined_for_small_nulls() {
        assert_eq!(null_size_for(0.05), 20);
        let null = |n: usize| (0..n).map(|i| i as f64 / n as f64).collect::<Vec<_>>();
        let t = chance_test(2.0, &null(19));
        assert_eq!((t.p, t.verdict), (0.05, Verdict::Undetermined));
        let t = chance_test(2.0, &null(20));
        assert!(t.p < 0.05);
        assert_eq!(t.verdict, Verdict::Above);
        let t = chance_test(0.5, &null(20));
        assert_eq!(t.verdict, Verdict::NotAbove);
        // the pooled-null floor of the old default: 3 seeds × 6 parties = 18 → p ≥ 1/19
        let t = chance_test(2.0, &null(18));
        assert_eq!(t.verdict, Verdict::Undetermined);
        assert!(Verdict::Undetermined.describe(18).contains("0.053"));
        use Verdict::*;
        assert_eq!(Verdict::all([Above, Above]), Above);
        assert_eq!(Verdict::all([Above, Undetermined]), Undetermined);
        assert_eq!(Verdict::all([Undetermined, NotAbove]), NotAbove);
        assert_eq!(Verdict::all([]), Undetermined);
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
