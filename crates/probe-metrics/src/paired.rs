//! Two simulated tables of the same respondents compared by a paired bootstrap: each resample
//! draws respondents once and scores both tables on that same draw, so the interval of the
//! difference keeps what the tables share (the respondents) out of its width. Used for a model
//! against a baseline, and for a base model against its fine-tuned self.

use crate::divergence::{kl_divergence, total_variation};
use crate::individual::item_agreement;
use crate::population::{check_table, item_marginal_pair, ItemScale};
pub use crate::stats::two_sided_p;
use crate::stats::{interval, resample, Bootstrap, Estimate};
use crate::{MetricError, Result};

/// One statistic of tables A and B, and A − B with its paired bootstrap interval and the
/// two-sided bootstrap p-value of "no difference".
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Difference {
    pub a: f64,
    pub b: f64,
    /// A − B.
    pub difference: Estimate,
    /// 2 · min(P*(d ≤ 0), P*(d ≥ 0)) over the resampled differences, with the +1 of a
    /// permutation p so it is never 0; `None` with fewer than two respondents, where every
    /// resample is the same table and the bootstrap cannot speak.
    pub p: Option<f64>,
}

/// A − B for the marginals' mean KL and TV and the twins' mean accuracy and RMSE.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairedDifferences {
    pub mean_kl: Difference,
    pub mean_tv: Difference,
    pub mean_accuracy: Difference,
    /// Over the items with values (none: `None`).
    pub mean_rmse: Option<Difference>,
}

/// Mean KL, mean TV, mean accuracy and mean RMSE of one table (`None`: no item has them).
type TableStatistics = [Option<f64>; 4];

/// Mean KL, mean TV, mean accuracy and mean RMSE of a table over `rows` (the definitions of
/// [`crate::population::marginals`] and [`crate::individual::agreement`]).
fn table_statistics(
    items: &[ItemScale],
    real: &[Vec<Option<usize>>],
    hard: &[Vec<Option<usize>>],
    soft: &[Vec<Option<Vec<f64>>>],
    weights: Option<&[f64]>,
    kl_smoothing: f64,
    rows: &[usize],
) -> Result<Option<TableStatistics>> {
    let options: Vec<usize> = items.iter().map(|s| s.options).collect();
    let (mut kls, mut tvs, mut accuracies, mut rmses) = (vec![], vec![], vec![], vec![]);
    for i in 0..items.len() {
        if let Some((a, b)) = item_marginal_pair(&options, real, soft, weights, i, rows) {
            kls.push(kl_divergence(&a, &b, Some(kl_smoothing))?);
            tvs.push(total_variation(&a, &b)?);
        }
        if let Some((accuracy, rmse)) = item_agreement(items, real, hard, weights, i, rows) {
            accuracies.push(accuracy);
            rmses.extend(rmse);
        }
    }
    let mean = |xs: &[f64]| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    if kls.is_empty() {
        return Ok(None);
    }
    Ok(Some([
        mean(&kls),
        mean(&tvs),
        mean(&accuracies),
        mean(&rmses),
    ]))
}

/// `real[r][i]`: respondent r's option on item i; `a[r][i]`, `b[r][i]`: the answers of two
/// simulated tables of the same respondents (sampled answers). Weighted like the scores.
pub fn paired_differences(
    items: &[ItemScale],
    real: &[Vec<Option<usize>>],
    a: &[Vec<Option<usize>>],
    b: &[Vec<Option<usize>>],
    weights: Option<&[f64]>,
    kl_smoothing: f64,
    bootstrap: Bootstrap,
) -> Result<PairedDifferences> {
    let n = check_table(items.len(), real, a.len(), weights, bootstrap)?;
    check_table(items.len(), real, b.len(), weights, bootstrap)?;
    for table in [a, b] {
        for (r, row) in table.iter().enumerate() {
            if row.len() != items.len() {
                return Err(MetricError::InvalidInput(format!(
                    "simulated respondent {r}: {} answers for {} items",
                    row.len(),
                    items.len()
                )));
            }
            for (i, (x, y)) in real[r].iter().zip(row).enumerate() {
                if [x, y].into_iter().flatten().any(|&v| v >= items[i].options) {
                    return Err(MetricError::InvalidInput(format!(
                        "respondent {r}, item {i}: an option beyond the item's {}",
                        items[i].options
                    )));
                }
            }
        }
    }
    let one_hot = |table: &[Vec<Option<usize>>]| -> Vec<Vec<Option<Vec<f64>>>> {
        table
            .iter()
            .map(|row| {
                row.iter()
                    .zip(items)
                    .map(|(x, s)| {
                        x.map(|x| {
                            let mut v = vec![0.0; s.options];
                            v[x] = 1.0;
                            v
                        })
                    })
                    .collect()
            })
            .collect()
    };
    let (soft_a, soft_b) = (one_hot(a), one_hot(b));
    let stats = |rows: &[usize]| -> Result<Option<(TableStatistics, TableStatistics)>> {
        let x = table_statistics(items, real, a, &soft_a, weights, kl_smoothing, rows)?;
        let y = table_statistics(items, real, b, &soft_b, weights, kl_smoothing, rows)?;
        Ok(x.zip(y))
    };
    let all: Vec<usize> = (0..n).collect();
    let (full_a, full_b) = stats(&all)?.ok_or_else(|| {
        MetricError::Empty("respondents with a real and a simulated answer to any item".into())
    })?;
    let draws: Vec<(TableStatistics, TableStatistics)> = resample(n, bootstrap)
        .iter()
        .map(|rows| stats(rows))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let difference = |k: usize| -> Result<Option<Difference>> {
        let (Some(x), Some(y)) = (full_a[k], full_b[k]) else {
            return Ok(None);
        };
        let d: Vec<f64> = draws
            .iter()
            .filter_map(|(p, q)| Some(p[k]? - q[k]?))
            .collect();
        Ok(Some(Difference {
            a: x,
            b: y,
            p: (n >= 2).then(|| two_sided_p(&d)),
            difference: interval(x - y, d, bootstrap)?,
        }))
    };
    let missing = || MetricError::Empty("items with answers in both tables".into());
    Ok(PairedDifferences {
        mean_kl: difference(0)?.ok_or_else(missing)?,
        mean_tv: difference(1)?.ok_or_else(missing)?,
        mean_accuracy: difference(2)?.ok_or_else(missing)?,
        mean_rmse: difference(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bootstrap = Bootstrap {
        resamples: 400,
        level: 0.95,
        seed: 1,
    };

    /// Table A copies every real answer, table B misses half: A − B is found clearly (p small,
    /// interval excludes 0); A against itself is no difference (p = 1, the interval is 0).
    #[test]
    fn paired_differences_reach_both_verdicts() {
        let items = vec![ItemScale::ordinal(3); 2];
        let real: Vec<Vec<Option<usize>>> = (0..60)
            .map(|r| vec![Some(r % 3), Some((r / 3) % 3)])
            .collect();
        let b: Vec<Vec<Option<usize>>> = real
            .iter()
            .enumerate()
            .map(|(r, row)| {
                if r % 2 == 0 {
                    row.clone()
                } else {
                    vec![Some(0), Some(0)]
                }
            })
            .collect();
        let d = paired_differences(&items, &real, &real, &b, None, 1e-4, B).unwrap();
        assert_eq!(d.mean_accuracy.a, 1.0);
        // B is right on the 30 even rows, and on odd rows whose answer is 0
        let hits_b: f64 = (0..2)
            .map(|i| (0..60).filter(|&r| b[r][i] == real[r][i]).count() as f64 / 60.0)
            .sum::<f64>()
            / 2.0;
        assert!((d.mean_accuracy.b - hits_b).abs() < 1e-12);
        assert!(d.mean_accuracy.difference.low > 0.0, "{d:?}");
        assert!(d.mean_accuracy.p.unwrap() < 0.01, "{d:?}");
        assert!(d.mean_kl.difference.value < 0.0);
        let same = paired_differences(&items, &real, &b, &b, None, 1e-4, B).unwrap();
        assert_eq!(same.mean_accuracy.difference.value, 0.0);
        assert_eq!(same.mean_accuracy.p, Some(1.0));
        // one respondent: every resample is the same table, no p
        let one =
            paired_differences(&items, &real[..1], &real[..1], &b[1..2], None, 1e-4, B).unwrap();
        assert_eq!(one.mean_accuracy.p, None);
    }

    #[test]
    fn two_sided_p_by_hand() {
        // 3 of 9 draws ≤ 0: 2 · (1 + 3) / 10
        let d = [-1.0, -0.5, 0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
        assert!((two_sided_p(&d) - 0.8).abs() < 1e-12);
        assert!((two_sided_p(&[1.0; 99]) - 0.02).abs() < 1e-12);
    }
}
