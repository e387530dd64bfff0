//! Population-level fit of a simulated respondent × item table to the real one: per item the
//! KL divergence and total variation of the answer marginals (arXiv 2403.20252 scores the
//! marginals by KL), and the item × item correlation structure (the representativeness
//! framework, "Beyond marginal distributions"): both matrices and their distances. Every
//! statistic comes with a percentile bootstrap CI that resamples respondents — a real
//! respondent and their simulated twin together, all items at once.

use crate::correlation::{correlation_matrix, matrix_distance, CorrelationMatrix, Method};
use crate::divergence::{kl_divergence, total_variation};
use crate::stats::{interval, resample, Bootstrap, Estimate};
use crate::{MetricError, Result};

/// One item: its number of options and their values on the item's scale (`None` for nominal
/// items: no RMSE).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemScale {
    pub options: usize,
    pub values: Option<Vec<f64>>,
}

impl ItemScale {
    /// Options valued by their positions 0, 1, …, k − 1.
    pub fn ordinal(k: usize) -> Self {
        ItemScale {
            options: k,
            values: Some((0..k).map(|v| v as f64).collect()),
        }
    }

    pub fn nominal(k: usize) -> Self {
        ItemScale {
            options: k,
            values: None,
        }
    }
}

/// One item's marginals and how far apart they are.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItemMarginal {
    pub item: usize,
    /// Respondents with a real answer and a simulated one.
    pub n: usize,
    /// The real answers' (weighted) distribution over the options.
    pub real: Vec<f64>,
    /// The simulated answers' (weighted) distribution.
    pub simulated: Vec<f64>,
    /// KL(real ‖ simulated), both smoothed by ε (nats).
    pub kl: Estimate,
    pub tv: Estimate,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MarginalFit {
    pub items: Vec<ItemMarginal>,
    pub mean_kl: Estimate,
    pub mean_tv: Estimate,
    /// The ε added to both marginals before KL.
    pub kl_smoothing: f64,
}

/// `real[r][i]`: respondent r's option on item i; `simulated[r][i]`: the twin's answer as a
/// distribution over item i's options (one-hot for a sampled answer, the option probabilities
/// for the expected marginal). Only respondents with both count for an item.
pub fn marginals(
    options: &[usize],
    real: &[Vec<Option<usize>>],
    simulated: &[Vec<Option<Vec<f64>>>],
    weights: Option<&[f64]>,
    kl_smoothing: f64,
    bootstrap: Bootstrap,
) -> Result<MarginalFit> {
    let n = check_table(options.len(), real, simulated.len(), weights, bootstrap)?;
    for (r, row) in simulated.iter().enumerate() {
        if row.len() != options.len() {
            return Err(MetricError::InvalidInput(format!(
                "simulated respondent {r}: {} answers for {} items",
                row.len(),
                options.len()
            )));
        }
        for (i, p) in row.iter().enumerate() {
            if let Some(p) = p {
                if p.len() != options[i] {
                    return Err(MetricError::InvalidInput(format!(
                        "simulated respondent {r}, item {i}: {} probabilities for {} options",
                        p.len(),
                        options[i]
                    )));
                }
                crate::check_distribution(p, "a simulated answer")?;
            }
        }
        for (i, a) in real[r].iter().enumerate() {
            if a.is_some_and(|a| a >= options[i]) {
                return Err(MetricError::InvalidInput(format!(
                    "respondent {r}, item {i}: option {} of {}",
                    a.unwrap_or(0),
                    options[i]
                )));
            }
        }
    }
    if !(kl_smoothing > 0.0 && kl_smoothing.is_finite()) {
        return Err(MetricError::InvalidInput(format!(
            "KL smoothing ε = {kl_smoothing} must be positive"
        )));
    }
    let item_marginals =
        |i: usize, rows: &[usize]| item_marginal_pair(options, real, simulated, weights, i, rows);
    let distances = |i: usize, rows: &[usize]| -> Result<Option<(f64, f64)>> {
        match item_marginals(i, rows) {
            Some((a, b)) => Ok(Some((
                kl_divergence(&a, &b, Some(kl_smoothing))?,
                total_variation(&a, &b)?,
            ))),
            None => Ok(None),
        }
    };
    let all: Vec<usize> = (0..n).collect();
    let resamples = resample(n, bootstrap);
    let mut items = Vec::new();
    let mut item_draws: Vec<Vec<Option<(f64, f64)>>> = Vec::new();
    for i in 0..options.len() {
        let Some((a, b)) = item_marginals(i, &all) else {
            continue;
        };
        let draws = resamples
            .iter()
            .map(|rows| distances(i, rows))
            .collect::<Result<Vec<_>>>()?;
        let (kl, tv) = (
            kl_divergence(&a, &b, Some(kl_smoothing))?,
            total_variation(&a, &b)?,
        );
        items.push(ItemMarginal {
            item: i,
            n: all
                .iter()
                .filter(|&&r| real[r][i].is_some() && simulated[r][i].is_some())
                .count(),
            kl: interval(kl, draws.iter().flatten().map(|d| d.0).collect(), bootstrap)?,
            tv: interval(tv, draws.iter().flatten().map(|d| d.1).collect(), bootstrap)?,
            real: a,
            simulated: b,
        });
        item_draws.push(draws);
    }
    if items.is_empty() {
        return Err(MetricError::Empty(
            "respondents with a real and a simulated answer to any item".into(),
        ));
    }
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    // the mean over the items present in each resample
    let mean_draws = |pick: fn(&(f64, f64)) -> f64| -> Vec<f64> {
        (0..resamples.len())
            .filter_map(|s| {
                let xs: Vec<f64> = item_draws
                    .iter()
                    .filter_map(|d| d[s].as_ref().map(pick))
                    .collect();
                (!xs.is_empty()).then(|| mean(&xs))
            })
            .collect()
    };
    let kls: Vec<f64> = items.iter().map(|m| m.kl.value).collect();
    let tvs: Vec<f64> = items.iter().map(|m| m.tv.value).collect();
    Ok(MarginalFit {
        mean_kl: interval(mean(&kls), mean_draws(|d| d.0), bootstrap)?,
        mean_tv: interval(mean(&tvs), mean_draws(|d| d.1), bootstrap)?,
        items,
        kl_smoothing,
    })
}

/// The (real, simulated) marginals of item `i` over the respondents `rows` (a resample may
/// repeat one), weighted; `None` when nobody in it answered in both tables. The tables are
/// checked by the caller.
pub(crate) fn item_marginal_pair(
    options: &[usize],
    real: &[Vec<Option<usize>>],
    simulated: &[Vec<Option<Vec<f64>>>],
    weights: Option<&[f64]>,
    i: usize,
    rows: &[usize],
) -> Option<(Vec<f64>, Vec<f64>)> {
    let k = options[i];
    let (mut a, mut b, mut total) = (vec![0.0; k], vec![0.0; k], 0.0);
    for &r in rows {
        let (Some(x), Some(p)) = (real[r][i], &simulated[r][i]) else {
            continue;
        };
        let w = weights.map_or(1.0, |w| w[r]);
        a[x] += w;
        for (bj, pj) in b.iter_mut().zip(p) {
            *bj += w * pj;
        }
        total += w;
    }
    (total > 0.0).then(|| {
        a.iter_mut().chain(b.iter_mut()).for_each(|v| *v /= total);
        (a, b)
    })
}

/// The item × item correlation matrices of the real and the simulated answers and their
/// distances, each distance with a CI.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StructureFit {
    /// The items in the matrices (indices into the table's items).
    pub items: Vec<usize>,
    pub real: Vec<f64>,
    pub simulated: Vec<f64>,
    pub mean_abs_diff: Estimate,
    pub frobenius: Estimate,
    pub corr_of_corr: Estimate,
    /// Items with values left out because every respondent gives the same answer in the
    /// simulated table (or in the real one): a constant item has no correlation. A simulated
    /// item that collapses to one answer is itself the structural failure to report.
    pub constant_simulated: Vec<usize>,
    pub constant_real: Vec<usize>,
}

/// Correlations use the options' values (ordinal position or numeric value); a nominal item
/// with two options enters as 0/1 (point-biserial), nominal items with more options are left
/// out, since their codes carry no order. Each pair of items uses the respondents who answered
/// both. Unweighted, as the representativeness framework computes them.
pub fn structure(
    items: &[ItemScale],
    real: &[Vec<Option<usize>>],
    simulated: &[Vec<Option<usize>>],
    method: Method,
    bootstrap: Bootstrap,
) -> Result<StructureFit> {
    let n = check_table(items.len(), real, simulated.len(), None, bootstrap)?;
    let binary = [0.0, 1.0];
    let scales: Vec<(usize, &[f64])> = items
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.values {
            Some(v) => Some((i, v.as_slice())),
            None if s.options == 2 => Some((i, binary.as_slice())),
            None => None,
        })
        .collect();
    // an item everyone answers alike (in either table) has no correlation with anything: it is
    // left out and named, rather than sinking the whole comparison
    let constant = |table: &[Vec<Option<usize>>], i: usize| {
        let mut answers = table.iter().filter_map(|row| row[i]);
        let first = answers.next();
        answers.all(|a| Some(a) == first)
    };
    let constant_simulated: Vec<usize> = scales
        .iter()
        .map(|s| s.0)
        .filter(|&i| constant(simulated, i))
        .collect();
    let constant_real: Vec<usize> = scales
        .iter()
        .map(|s| s.0)
        .filter(|&i| constant(real, i))
        .collect();
    let with_values = scales.len();
    let scales: Vec<(usize, &[f64])> = scales
        .into_iter()
        .filter(|s| !constant_simulated.contains(&s.0) && !constant_real.contains(&s.0))
        .collect();
    if scales.len() < 2 {
        return Err(MetricError::InvalidInput(format!(
            "correlation structure needs at least 2 items that vary; {with_values} have values, \
             of which constant in the simulated answers: {constant_simulated:?}, in the real: \
             {constant_real:?}"
        )));
    }
    let matrix = |table: &[Vec<Option<usize>>], rows: &[usize]| -> Result<CorrelationMatrix> {
        let answers: Vec<Vec<f64>> = rows
            .iter()
            .map(|&r| {
                scales
                    .iter()
                    .map(|&(i, v)| match table[r][i] {
                        Some(a) if a < v.len() => Ok(v[a]),
                        Some(a) => Err(MetricError::InvalidInput(format!(
                            "respondent {r}, item {i}: option {a} of {}",
                            v.len()
                        ))),
                        None => Ok(f64::NAN),
                    })
                    .collect()
            })
            .collect::<Result<_>>()?;
        correlation_matrix(&answers, method)
    };
    let all: Vec<usize> = (0..n).collect();
    let (a, b) = (matrix(real, &all)?, matrix(simulated, &all)?);
    let d = matrix_distance(&a, &b)?;
    // a resample in which an item is constant has no correlation: it gives no draw
    let mut draws = Vec::new();
    for rows in resample(n, bootstrap) {
        if let (Ok(x), Ok(y)) = (matrix(real, &rows), matrix(simulated, &rows)) {
            draws.push(matrix_distance(&x, &y)?);
        }
    }
    Ok(StructureFit {
        items: scales.iter().map(|s| s.0).collect(),
        mean_abs_diff: interval(
            d.mean_abs_diff,
            draws.iter().map(|d| d.mean_abs_diff).collect(),
            bootstrap,
        )?,
        frobenius: interval(
            d.frobenius,
            draws.iter().map(|d| d.frobenius).collect(),
            bootstrap,
        )?,
        corr_of_corr: interval(
            d.corr_of_corr,
            draws.iter().map(|d| d.corr_of_corr).collect(),
            bootstrap,
        )?,
        real: a.values,
        simulated: b.values,
        constant_simulated,
        constant_real,
    })
}

/// Checks the table's shape and the bootstrap settings; returns the number of respondents.
pub(crate) fn check_table(
    n_items: usize,
    real: &[Vec<Option<usize>>],
    n_simulated: usize,
    weights: Option<&[f64]>,
    bootstrap: Bootstrap,
) -> Result<usize> {
    let n = real.len();
    if n == 0 {
        return Err(MetricError::Empty("respondents".into()));
    }
    if n_simulated != n || weights.is_some_and(|w| w.len() != n) {
        return Err(MetricError::InvalidInput(format!(
            "{n} real respondents, {n_simulated} simulated, {} weights",
            weights.map_or(n, <[f64]>::len)
        )));
    }
    if let Some(r) = real.iter().position(|row| row.len() != n_items) {
        return Err(MetricError::InvalidInput(format!(
            "respondent {r}: {} answers for {n_items} items",
            real[r].len()
        )));
    }
    if let Some(w) = weights {
        crate::check_values(w, "weights")?;
    }
    if !(bootstrap.level > 0.0 && bootstrap.level < 1.0) || bootstrap.resamples == 0 {
        return Err(MetricError::InvalidInput(format!(
            "bootstrap: {} resamples at level {}",
            bootstrap.resamples, bootstrap.level
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: Bootstrap = Bootstrap {
        resamples: 200,
        level: 0.95,
        seed: 3,
    };

    fn one_hot(k: usize, i: usize) -> Option<Vec<f64>> {
        let mut v = vec![0.0; k];
        v[i] = 1.0;
        Some(v)
    }

    /// The simulated marginal equals the real one, so the plug-in KL is 0, while every
    /// resample's marginals differ (KL > 0): a plain percentile interval lies wholly above the
    /// estimate. The bias-corrected interval contains it and reports the bias.
    #[test]
    fn intervals_contain_their_estimates() {
        let answers = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 0, 1];
        let real: Vec<Vec<Option<usize>>> = answers.iter().map(|&a| vec![Some(a)]).collect();
        // the same answers, given by other twins: equal marginals, different pairs
        let sim: Vec<Vec<Option<Vec<f64>>>> =
            answers.iter().rev().map(|&a| vec![one_hot(5, a)]).collect();
        let fit = marginals(&[5], &real, &sim, None, 1e-4, ONE).unwrap();
        for e in [fit.mean_kl, fit.mean_tv] {
            assert!(e.value.abs() < 1e-12);
            assert!(e.low <= e.value && e.value <= e.high, "{e:?}");
            assert!(e.bias.unwrap() > 0.0, "{e:?}");
        }
    }

    /// A simulated item that collapses to one answer is named and left out; the others'
    /// structure is still compared (it used to vanish whole).
    #[test]
    fn a_constant_item_is_named_not_fatal() {
        let items = vec![ItemScale::ordinal(3); 3];
        let real: Vec<Vec<Option<usize>>> = (0..12)
            .map(|r| vec![Some(r % 3), Some((r / 3) % 3), Some((r + r / 4) % 3)])
            .collect();
        let sim: Vec<Vec<Option<usize>>> = (0..12)
            .map(|r| vec![Some((r + 1) % 3), Some(1), Some((r / 2) % 3)])
            .collect();
        let fit = structure(&items, &real, &sim, Method::Pearson, ONE).unwrap();
        assert_eq!(fit.constant_simulated, vec![1]);
        assert!(fit.constant_real.is_empty());
        assert_eq!(fit.items, vec![0, 2]);
        let sim_two: Vec<Vec<Option<usize>>> = (0..12)
            .map(|r| vec![Some(r % 3), Some(1), Some(2)])
            .collect();
        let e = structure(&items, &real, &sim_two, Method::Pearson, ONE).unwrap_err();
        assert!(e.to_string().contains("[1, 2]"), "{e}");
    }

    /// Worked by hand: real answers 0, 0, 1, 1 (marginal ½ ½); simulated 0, 0, 0, 1
    /// (¾ ¼): TV = ¼; with ε = 0.01 both smoothed to (x + .01) / 1.02.
    #[test]
    fn marginals_by_hand() {
        let real: Vec<Vec<Option<usize>>> = [0, 0, 1, 1].iter().map(|&a| vec![Some(a)]).collect();
        let sim: Vec<Vec<Option<Vec<f64>>>> =
            [0, 0, 0, 1].iter().map(|&a| vec![one_hot(2, a)]).collect();
        let fit = marginals(&[2], &real, &sim, None, 0.01, ONE).unwrap();
        let m = &fit.items[0];
        assert_eq!(m.real, vec![0.5, 0.5]);
        assert_eq!(m.simulated, vec![0.75, 0.25]);
        assert!((m.tv.value - 0.25).abs() < 1e-12);
        let (p, q): ([f64; 2], [f64; 2]) = ([0.51 / 1.02, 0.51 / 1.02], [0.76 / 1.02, 0.26 / 1.02]);
        let want: f64 = p.iter().zip(q).map(|(a, b)| a * (a / b).ln()).sum();
        assert!((m.kl.value - want).abs() < 1e-12);
        assert_eq!(fit.mean_kl.value, m.kl.value);
        assert!(m.kl.low <= m.kl.value && m.kl.value <= m.kl.high);
        // weights 3, 1, 1, 3: real ½ ½ again; simulated (3 + 1 + 1) / 8 = 5/8
        let w = [3.0, 1.0, 1.0, 3.0];
        let fit = marginals(&[2], &real, &sim, Some(&w), 0.01, ONE).unwrap();
        assert!((fit.items[0].simulated[0] - 0.625).abs() < 1e-12);
        // soft answers: the expected marginal is the mean of the distributions
        let soft: Vec<Vec<Option<Vec<f64>>>> = (0..4).map(|_| vec![Some(vec![0.2, 0.8])]).collect();
        let fit = marginals(&[2], &real, &soft, None, 0.01, ONE).unwrap();
        assert!((fit.items[0].tv.value - 0.3).abs() < 1e-12);
    }

    #[test]
    fn identical_answers_have_perfect_structure() {
        let real: Vec<Vec<Option<usize>>> = (0..40)
            .map(|r| vec![Some(r % 5), Some((r * 3 + r / 7) % 5), Some(r % 2)])
            .collect();
        let items = [
            ItemScale::ordinal(5),
            ItemScale::ordinal(5),
            ItemScale::nominal(2),
        ];
        let fit = structure(&items, &real, &real, Method::Pearson, ONE).unwrap();
        assert_eq!(fit.items, vec![0, 1, 2]);
        assert_eq!(fit.mean_abs_diff.value, 0.0);
        assert_eq!((fit.frobenius.low, fit.frobenius.high), (0.0, 0.0));
        assert!((fit.corr_of_corr.value - 1.0).abs() < 1e-12);
        // a nominal item with three options has no order and stays out
        let items3 = [
            ItemScale::ordinal(5),
            ItemScale::ordinal(5),
            ItemScale::nominal(3),
        ];
        assert_eq!(
            structure(&items3, &real, &real, Method::Pearson, ONE)
                .unwrap()
                .items,
            vec![0, 1]
        );
    }

    /// Real r(x, y) = 1 (y = x); simulated y reversed: r = −1, so every |Δr| is 2.
    #[test]
    fn reversed_structure_by_hand() {
        let real: Vec<Vec<Option<usize>>> =
            (0..30).map(|r| vec![Some(r % 4), Some(r % 4)]).collect();
        let sim: Vec<Vec<Option<usize>>> = (0..30)
            .map(|r| vec![Some(r % 4), Some(3 - r % 4)])
            .collect();
        let items = [ItemScale::ordinal(4), ItemScale::ordinal(4)];
        let fit = structure(&items, &real, &sim, Method::Spearman, ONE).unwrap();
        assert!((fit.mean_abs_diff.value - 2.0).abs() < 1e-12);
        // off-diagonal entries differ by 2 twice: ‖Δ‖_F = √8
        assert!((fit.frobenius.value - 8f64.sqrt()).abs() < 1e-12);
        assert_eq!(fit.real[1], 1.0);
        assert!((fit.simulated[1] + 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_tables_are_refused() {
        let real = vec![vec![Some(0)]];
        let sim = vec![vec![one_hot(2, 0)]];
        assert!(marginals(&[2], &real, &sim, None, 0.0, ONE).is_err());
        assert!(marginals(&[3], &real, &sim, None, 0.01, ONE).is_err());
        assert!(marginals(&[2], &[vec![Some(4)]], &sim, None, 0.01, ONE).is_err());
        assert!(marginals(&[2], &real, &[], None, 0.01, ONE).is_err());
        assert!(marginals(&[2], &[vec![None]], &sim, None, 0.01, ONE).is_err());
        let bad = vec![vec![Some(vec![0.7, 0.7])]];
        assert!(marginals(&[2], &real, &bad, None, 0.01, ONE).is_err());
        let two = [ItemScale::ordinal(2), ItemScale::nominal(4)];
        let r2 = vec![vec![Some(0), Some(1)], vec![Some(1), Some(2)]];
        assert!(structure(&two, &r2, &r2, Method::Pearson, ONE).is_err());
    }
}
