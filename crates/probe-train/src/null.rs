//! The chance level of probes: the same shared-probe training on labels shuffled within each
//! statement, so that a cross-validated balanced accuracy of 0.58 comes with the spread chance
//! gives under the same grouped CV, and value-vector selections can be compared with what
//! probes that learned nothing select.

// the report is part of a training report (train.rs); this module computes it
pub use crate::NullReport;
use crate::{train, Features, Result, TrainError, TrainReport, ValidProbeParams};
use probe_metrics::permutation::{Verdict, ALPHA};

/// The null report and the shuffled probes' directions `[seed][party][dim]` (activation
/// space, as `Probe::direction`).
#[derive(Debug, Clone)]
pub struct NullProbes {
    pub report: NullReport,
    pub directions: Vec<Vec<Vec<f64>>>,
}

/// Labels permuted among the parties within each statement (group): every statement keeps one
/// opinion per party and the class sizes stay, but which opinion belongs to which party is
/// random, so nothing a probe learns can be about parties.
pub fn shuffled_labels(features: &Features, seed: u64) -> Vec<usize> {
    let n_parties = features.label_names.len();
    let mut rng = probe_util::SplitMix64::from_state(seed ^ 0x5EED_0FC4_A1CE);
    let mut groups: Vec<&String> = features.groups.iter().collect();
    groups.sort();
    groups.dedup();
    let permutation: std::collections::HashMap<&String, Vec<usize>> = groups
        .into_iter()
        .map(|g| {
            let mut p: Vec<usize> = (0..n_parties).collect();
            rng.shuffle(&mut p);
            (g, p)
        })
        .collect();
    features
        .labels
        .iter()
        .zip(&features.groups)
        .map(|(&l, g)| permutation[g][l])
        .collect()
}

/// Trains shared probes on shuffled labels for each seed (`observed`: the real run's report,
/// whose shared `all` accuracies are compared). `None` when the real run trained no shared
/// probe or `seeds` is empty. `progress` as in [`train`]: each seed's fits, `Break` stops.
pub fn train_null(
    features: &Features,
    params: &ValidProbeParams,
    seeds: &[u64],
    observed: &TrainReport,
    progress: &crate::train::Progress<'_>,
) -> Result<Option<NullProbes>> {
    if seeds.is_empty() || !params.shared {
        return Ok(None);
    }
    let mut shuffled_params = (**params).clone();
    shuffled_params.per_layer = false;
    let shuffled_params = shuffled_params.check().map_err(TrainError::Params)?;
    let n_parties = features.label_names.len();
    let all_accuracy = |report: &TrainReport| -> Vec<f64> {
        (0..n_parties)
            .map(|p| {
                report
                    .shared
                    .iter()
                    .find(|c| c.hook == "all" && c.party == features.label_names[p])
                    .map_or(f64::NAN, |c| c.mean.balanced_accuracy)
            })
            .collect()
    };
    let mut accuracy = Vec::new();
    let mut directions = Vec::new();
    for &seed in seeds {
        let mut shuffled = features.clone();
        shuffled.labels = shuffled_labels(features, seed);
        let probes = train(&shuffled, &shuffled_params, progress)?;
        accuracy.push(all_accuracy(&probes.report));
        directions.push(probes.shared.iter().map(|p| p.direction()).collect());
    }
    let observed = all_accuracy(observed);
    let n = seeds.len() as f64;
    let mean: Vec<f64> = (0..n_parties)
        .map(|p| accuracy.iter().map(|a: &Vec<f64>| a[p]).sum::<f64>() / n)
        .collect();
    let sd = (0..n_parties)
        .map(|p| {
            let var = accuracy
                .iter()
                .map(|a| (a[p] - mean[p]).powi(2))
                .sum::<f64>()
                / (n - 1.0).max(1.0);
            var.sqrt()
        })
        .collect();
    let p_value: Vec<f64> = (0..n_parties)
        .map(|p| {
            let at_least = accuracy.iter().filter(|a| a[p] >= observed[p]).count();
            (1 + at_least) as f64 / (1.0 + n)
        })
        .collect();
    let verdict = p_value
        .iter()
        .map(|&p| Verdict::of(p, seeds.len(), ALPHA))
        .collect();
    Ok(Some(NullProbes {
        report: NullReport {
            seeds: seeds.to_vec(),
            balanced_accuracy: accuracy,
            observed,
            mean,
            sd,
            p_value,
            verdict,
        },
        directions,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each statement keeps one row per party; the permutation differs between statements and
    /// seeds.
    #[test]
    fn shuffling_permutes_parties_within_each_statement() {
        let n = 40;
        let features = Features {
            hooks: vec!["h".into()],
            dim: 1,
            n_rows: n * 4,
            matrices: vec![vec![0.0; n * 4]],
            labels: (0..n * 4).map(|i| i % 4).collect(),
            groups: (0..n * 4).map(|i| format!("s{}", i / 4)).collect(),
            label_names: (0..4).map(|p| p.to_string()).collect(),
            sha256: String::new(),
        };
        let a = shuffled_labels(&features, 1);
        for s in a.chunks(4) {
            let mut s = s.to_vec();
            s.sort();
            assert_eq!(s, [0, 1, 2, 3]);
        }
        assert_ne!(a, features.labels);
        assert_ne!(a, shuffled_labels(&features, 2));
    }
}
