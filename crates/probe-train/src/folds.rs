//! Stratified k-fold assignment grouped by statement: all prompts of a statement (every party,
//! every template) land in the same fold, so a probe never sees the test statement's wording.

use crate::{Result, TrainError};

/// The fold (0..k) of every row. Greedy like scikit-learn's `StratifiedGroupKFold(shuffle=True)`:
/// groups are shuffled with `seed`, taken in order of decreasing spread of their class counts,
/// and each goes to the fold that keeps the per-class fold shares most even (ties: the smaller
/// fold, then the lower index).
pub fn grouped_stratified_folds(
    labels: &[usize],
    groups: &[String],
    k: usize,
    seed: u64,
) -> Result<Vec<usize>> {
    assert_eq!(labels.len(), groups.len());
    let n_classes = labels.iter().max().map_or(0, |m| m + 1);
    let mut group_ids: Vec<&str> = groups.iter().map(String::as_str).collect();
    group_ids.sort_unstable();
    group_ids.dedup();
    if group_ids.len() < k {
        return Err(TrainError::Data(format!(
            "{k}-fold cross-validation needs at least {k} groups (statements), found {}",
            group_ids.len()
        )));
    }
    let index_of = |g: &str| group_ids.binary_search(&g).expect("collected above");
    let mut counts = vec![vec![0usize; n_classes]; group_ids.len()];
    for (l, g) in labels.iter().zip(groups) {
        counts[index_of(g)][*l] += 1;
    }
    let class_totals: Vec<usize> = (0..n_classes)
        .map(|c| counts.iter().map(|g| g[c]).sum())
        .collect();

    let mut order: Vec<usize> = (0..group_ids.len()).collect();
    shuffle(&mut order, seed);
    let spread = |g: &[usize]| {
        let m = g.iter().sum::<usize>() as f64 / g.len().max(1) as f64;
        g.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>()
    };
    order.sort_by(|&a, &b| spread(&counts[b]).total_cmp(&spread(&counts[a])));

    let mut fold_counts = vec![vec![0usize; n_classes]; k];
    let mut fold_sizes = vec![0usize; k];
    let mut fold_of_group = vec![0usize; group_ids.len()];
    for &g in &order {
        let mut best: Option<(f64, usize, usize)> = None;
        for f in 0..k {
            let unevenness = (0..n_classes)
                .filter(|&c| class_totals[c] > 0)
                .map(|c| {
                    let shares: Vec<f64> = (0..k)
                        .map(|j| {
                            let add = if j == f { counts[g][c] } else { 0 };
                            (fold_counts[j][c] + add) as f64 / class_totals[c] as f64
                        })
                        .collect();
                    let m = shares.iter().sum::<f64>() / k as f64;
                    (shares.iter().map(|s| (s - m).powi(2)).sum::<f64>() / k as f64).sqrt()
                })
                .sum::<f64>();
            let candidate = (unevenness, fold_sizes[f], f);
            let better = match best {
                None => true,
                Some((u, size, _)) => {
                    unevenness < u - 1e-12
                        || ((unevenness - u).abs() <= 1e-12 && fold_sizes[f] < size)
                }
            };
            if better {
                best = Some(candidate);
            }
        }
        let f = best.expect("k ≥ 1").2;
        fold_of_group[g] = f;
        fold_sizes[f] += counts[g].iter().sum::<usize>();
        for c in 0..n_classes {
            fold_counts[f][c] += counts[g][c];
        }
    }
    Ok(groups.iter().map(|g| fold_of_group[index_of(g)]).collect())
}

/// Fisher–Yates with SplitMix64: stable across platforms and releases.
fn shuffle(v: &mut [usize], seed: u64) {
    probe_util::SplitMix64::from_state(seed).shuffle(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn design(n_groups: usize, n_classes: usize, per: usize) -> (Vec<usize>, Vec<String>) {
        let mut labels = vec![];
        let mut groups = vec![];
        for g in 0..n_groups {
            for c in 0..n_classes {
                for _ in 0..per {
                    labels.push(c);
                    groups.push(format!("s{g}"));
                }
            }
        }
        (labels, groups)
    }

    #[test]
    fn groups_never_straddle_folds_and_folds_are_balanced() {
        let (labels, groups) = design(38, 6, 11);
        let folds = grouped_stratified_folds(&labels, &groups, 5, 7).unwrap();
        for g in 0..38 {
            let f: Vec<usize> = (0..labels.len())
                .filter(|&i| groups[i] == format!("s{g}"))
                .map(|i| folds[i])
                .collect();
            assert!(f.iter().all(|&x| x == f[0]));
        }
        let sizes: Vec<usize> = (0..5)
            .map(|f| folds.iter().filter(|&&x| x == f).count())
            .collect();
        // 38 statements into 5 folds: 8,8,8,7,7 statements of 66 rows each.
        let mut sorted = sizes.clone();
        sorted.sort();
        assert_eq!(sorted, vec![7 * 66, 7 * 66, 8 * 66, 8 * 66, 8 * 66]);
        assert_eq!(
            folds,
            grouped_stratified_folds(&labels, &groups, 5, 7).unwrap()
        );
        assert_ne!(
            folds,
            grouped_stratified_folds(&labels, &groups, 5, 8).unwrap()
        );
    }

    #[test]
    fn too_few_groups_is_an_error() {
        let (labels, groups) = design(3, 2, 1);
        let err = grouped_stratified_folds(&labels, &groups, 5, 0).unwrap_err();
        assert!(err.to_string().contains("at least 5 groups"), "{err}");
    }
}
