//! Individual-level agreement between real respondents and their simulated twins (one
//! simulated respondent per real one, asked the same items; arXiv 2403.20252): per item the
//! accuracy (the same option) and, for ordinal and numeric items, the RMSE of the answers'
//! values, plus their means over items, each with a percentile bootstrap CI that resamples
//! respondents (all items of a respondent together, so the items' dependence is kept).

use crate::population::check_table;
pub use crate::population::ItemScale;
pub use crate::stats::Bootstrap;
use crate::stats::{interval, resample, Estimate};
use crate::{MetricError, Result};

/// Agreement on one item, over the respondents who answered it in both tables.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItemAgreement {
    pub item: usize,
    /// Respondents with a real and a simulated answer.
    pub n: usize,
    pub accuracy: Estimate,
    /// Root mean squared difference of the answers' values (ordinal and numeric items).
    pub rmse: Option<Estimate>,
}

/// Per item, then the means over items (accuracy over all items, RMSE over the items that
/// have values).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Agreement {
    pub items: Vec<ItemAgreement>,
    pub mean_accuracy: Estimate,
    pub mean_rmse: Option<Estimate>,
}

/// `real[r][i]` and `simulated[r][i]` are respondent r's option index on item i (`None`: no
/// answer); `weights` are survey weights per respondent (default 1).
pub fn agreement(
    items: &[ItemScale],
    real: &[Vec<Option<usize>>],
    simulated: &[Vec<Option<usize>>],
    weights: Option<&[f64]>,
    bootstrap: Bootstrap,
) -> Result<Agreement> {
    let n = check_table(items.len(), real, simulated.len(), weights, bootstrap)?;
    for (r, (a, b)) in real.iter().zip(simulated).enumerate() {
        if b.len() != items.len() {
            return Err(MetricError::InvalidInput(format!(
                "simulated respondent {r}: {} answers for {} items",
                b.len(),
                items.len()
            )));
        }
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let options = items[i].options;
            for v in [x, y].into_iter().flatten() {
                if *v >= options {
                    return Err(MetricError::InvalidInput(format!(
                        "respondent {r}, item {i}: option {v} of {options}"
                    )));
                }
            }
        }
    }
    let item_stats =
        |i: usize, rows: &[usize]| item_agreement(items, real, simulated, weights, i, rows);
    let means = |rows: &[usize]| -> (Option<f64>, Option<f64>) {
        let stats: Vec<(f64, Option<f64>)> = (0..items.len())
            .filter_map(|i| item_stats(i, rows))
            .collect();
        let mean =
            |xs: Vec<f64>| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
        (
            mean(stats.iter().map(|s| s.0).collect()),
            mean(stats.iter().filter_map(|s| s.1).collect()),
        )
    };
    let all: Vec<usize> = (0..n).collect();
    let resamples = resample(n, bootstrap);
    let interval = |value: f64, draws: Vec<f64>| interval(value, draws, bootstrap);
    let mut out_items = Vec::new();
    for i in 0..items.len() {
        let Some((accuracy, rmse)) = item_stats(i, &all) else {
            continue;
        };
        let count = all
            .iter()
            .filter(|&&r| real[r][i].is_some() && simulated[r][i].is_some())
            .count();
        let draws: Vec<(f64, Option<f64>)> = resamples
            .iter()
            .filter_map(|rows| item_stats(i, rows))
            .collect();
        out_items.push(ItemAgreement {
            item: i,
            n: count,
            accuracy: interval(accuracy, draws.iter().map(|d| d.0).collect())?,
            rmse: match rmse {
                Some(v) => Some(interval(v, draws.iter().filter_map(|d| d.1).collect())?),
                None => None,
            },
        });
    }
    let (Some(mean_accuracy), mean_rmse) = means(&all) else {
        return Err(MetricError::Empty(
            "respondents with a real and a simulated answer to any item".into(),
        ));
    };
    let draws: Vec<(Option<f64>, Option<f64>)> = resamples.iter().map(|rows| means(rows)).collect();
    Ok(Agreement {
        items: out_items,
        mean_accuracy: interval(mean_accuracy, draws.iter().filter_map(|d| d.0).collect())?,
        mean_rmse: match mean_rmse {
            Some(v) => Some(interval(v, draws.iter().filter_map(|d| d.1).collect())?),
            None => None,
        },
    })
}

/// Item `i`'s (accuracy, RMSE) over the respondents `rows` (a resample may repeat one),
/// weighted; `None` when no respondent in it answered in both tables. The tables are checked
/// by the caller.
pub(crate) fn item_agreement(
    items: &[ItemScale],
    real: &[Vec<Option<usize>>],
    simulated: &[Vec<Option<usize>>],
    weights: Option<&[f64]>,
    i: usize,
    rows: &[usize],
) -> Option<(f64, Option<f64>)> {
    let (mut w_sum, mut hits, mut sq) = (0.0, 0.0, 0.0);
    for &r in rows {
        let (Some(a), Some(b)) = (real[r][i], simulated[r][i]) else {
            continue;
        };
        let w = weights.map_or(1.0, |w| w[r]);
        w_sum += w;
        hits += w * f64::from(u8::from(a == b));
        if let Some(v) = &items[i].values {
            sq += w * (v[a] - v[b]).powi(2);
        }
    }
    (w_sum > 0.0).then(|| {
        let rmse = items[i].values.as_ref().map(|_| (sq / w_sum).sqrt());
        (hits / w_sum, rmse)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordinal(k: usize) -> ItemScale {
        ItemScale::ordinal(k)
    }

    const NOMINAL: ItemScale = ItemScale {
        options: 2,
        values: None,
    };
    const ONE: Bootstrap = Bootstrap {
        resamples: 200,
        level: 0.95,
        seed: 1,
    };

    /// Worked by hand: item 0 (0..2) pairs (0,0) (1,2) (2,2) → errors 0, 1, 0, RMSE √(1/3),
    /// accuracy 2/3; item 1 (nominal) 3 of 4 equal.
    #[test]
    fn accuracy_and_rmse_by_hand() {
        let real = vec![
            vec![Some(0), Some(0)],
            vec![Some(1), Some(1)],
            vec![Some(2), Some(0)],
            vec![None, Some(1)],
        ];
        let sim = vec![
            vec![Some(0), Some(0)],
            vec![Some(2), Some(0)],
            vec![Some(2), Some(0)],
            vec![Some(1), Some(1)],
        ];
        let a = agreement(&[ordinal(3), NOMINAL], &real, &sim, None, ONE).unwrap();
        assert_eq!(a.items[0].n, 3);
        assert!((a.items[0].accuracy.value - 2.0 / 3.0).abs() < 1e-12);
        assert!((a.items[0].rmse.unwrap().value - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((a.items[1].accuracy.value - 0.75).abs() < 1e-12);
        assert!(a.items[1].rmse.is_none());
        assert!((a.mean_accuracy.value - (2.0 / 3.0 + 0.75) / 2.0).abs() < 1e-12);
        assert!((a.mean_rmse.unwrap().value - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
        for e in [a.items[0].accuracy, a.items[1].accuracy, a.mean_accuracy] {
            assert!(
                e.low <= e.value + 1e-12 && e.value <= e.high + 1e-12,
                "{e:?}"
            );
        }
        // weights 1, 2, 1, 1: item 0's squared errors 0, 1, 0 weigh 1, 2, 1 → RMSE √(2/4)
        let w = [1.0, 2.0, 1.0, 1.0];
        let a = agreement(&[ordinal(3), NOMINAL], &real, &sim, Some(&w), ONE).unwrap();
        assert!((a.items[0].rmse.unwrap().value - 0.5f64.sqrt()).abs() < 1e-12);
        assert!((a.items[0].accuracy.value - 0.5).abs() < 1e-12);
        // seeded: the same intervals again
        assert_eq!(
            a,
            agreement(&[ordinal(3), NOMINAL], &real, &sim, Some(&w), ONE).unwrap()
        );
    }

    #[test]
    fn perfect_twins_have_no_error_and_a_point_interval() {
        let real: Vec<Vec<Option<usize>>> = (0..50).map(|r| vec![Some(r % 7)]).collect();
        let a = agreement(&[ordinal(7)], &real, &real, None, ONE).unwrap();
        let e = a.items[0].rmse.unwrap();
        assert_eq!((e.value, e.low, e.high), (0.0, 0.0, 0.0));
        assert_eq!(a.items[0].accuracy.low, 1.0);
    }

    #[test]
    fn bad_tables_are_refused() {
        let real = vec![vec![Some(0)]];
        assert!(agreement(&[ordinal(2)], &real, &[], None, ONE).is_err());
        assert!(agreement(&[ordinal(2)], &real, &[vec![Some(5)]], None, ONE).is_err());
        assert!(agreement(&[ordinal(2), NOMINAL], &real, &real, None, ONE).is_err());
        assert!(agreement(&[ordinal(2)], &[vec![None]], &[vec![Some(0)]], None, ONE).is_err());
        let zero = Bootstrap {
            resamples: 0,
            ..ONE
        };
        assert!(agreement(&[ordinal(2)], &real, &real, None, zero).is_err());
        assert!(agreement(&[ordinal(2)], &real, &real, Some(&[-1.0]), ONE).is_err());
    }
}
