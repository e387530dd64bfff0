//! `probe compare`: join predicted cells with reference cells, compute metrics per cell, and
//! aggregate them by any labels with seeded bootstrap confidence intervals.

use std::collections::{BTreeMap, HashMap};

use probe_data::cells::Cell;
use probe_metrics::divergence::{js_distance, kl_divergence, total_variation};
use probe_metrics::entropy::normalized_entropy;
use probe_metrics::stats::bootstrap_mean;
use probe_metrics::wasserstein::{normalized_wasserstein_1d, wasserstein_1d};
/// A compare row and how its cells were averaged: `probe compare`'s table (probe-schema).
pub use probe_schema::compare::{Aggregate, Row};

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{0}")]
    Join(String),
    #[error("metric `{metric}` on cell {cell}: {error}")]
    Metric {
        metric: &'static str,
        cell: String,
        error: probe_metrics::MetricError,
    },
    #[error("{0}")]
    Input(String),
}

pub type Result<T, E = CompareError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Metric {
    /// Total variation (Meister et al.'s A when averaged).
    Tv,
    /// KL(reference ‖ predicted) with smoothing.
    Kl,
    /// Jensen–Shannon distance.
    Js,
    /// Wasserstein-1 on the ordinal positions (ordinal options only).
    W1,
    /// W1 / max possible W1 (OpinionQA's form).
    W1Norm,
    /// Normalized entropy of the predicted distribution.
    EntropyPredicted,
    /// Normalized entropy of the reference distribution.
    EntropyReference,
}

pub const METRIC_NAMES: &str = "tv, kl, js, w1, w1n, hpred, href";

impl Metric {
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name.trim() {
            "tv" => Metric::Tv,
            "kl" => Metric::Kl,
            "js" => Metric::Js,
            "w1" => Metric::W1,
            "w1n" => Metric::W1Norm,
            "hpred" => Metric::EntropyPredicted,
            "href" => Metric::EntropyReference,
            other => {
                return Err(CompareError::Input(format!(
                    "unknown metric `{other}` (known: {METRIC_NAMES})"
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Tv => "tv",
            Metric::Kl => "kl",
            Metric::Js => "js",
            Metric::W1 => "w1",
            Metric::W1Norm => "w1n",
            Metric::EntropyPredicted => "hpred",
            Metric::EntropyReference => "href",
        }
    }
}

/// A predicted distribution with its reference, options aligned.
#[derive(Debug, Clone)]
pub struct Pair {
    pub labels: BTreeMap<String, String>,
    pub options: Vec<String>,
    pub predicted: Vec<f64>,
    pub reference: Vec<f64>,
    pub ordinal: Option<Vec<Option<f64>>>,
    pub weight: f64,
}

/// The labels every reference cell has: the key that identifies a reference cell.
fn join_keys(reference: &[Cell]) -> Vec<String> {
    let mut keys: Vec<String> = reference
        .first()
        .map(|c| c.labels.keys().cloned().collect())
        .unwrap_or_default();
    keys.retain(|k| reference.iter().all(|c| c.labels.contains_key(k)));
    keys
}

fn project(labels: &BTreeMap<String, String>, keys: &[String]) -> Option<Vec<String>> {
    keys.iter().map(|k| labels.get(k).cloned()).collect()
}

/// The predicted cells that have a reference (their own, or a reference cell with their
/// identifying labels), and how many do not.
pub fn matched(predicted: &[Cell], reference: &[Cell]) -> (Vec<Cell>, usize) {
    let keys = join_keys(reference);
    let known: std::collections::HashSet<Vec<String>> = reference
        .iter()
        .filter_map(|r| project(&r.labels, &keys))
        .collect();
    let (kept, skipped): (Vec<&Cell>, Vec<&Cell>) = predicted.iter().partition(|p| {
        p.reference.is_some() || project(&p.labels, &keys).is_some_and(|k| known.contains(&k))
    });
    (kept.into_iter().cloned().collect(), skipped.len())
}

/// Pairs every predicted cell with its reference: the reference cell whose identifying labels
/// the predicted cell carries (or the predicted cell's own `reference`). Options must be the
/// same set; predicted values are reordered to the reference's order.
pub fn join(predicted: &[Cell], reference: &[Cell]) -> Result<Vec<Pair>> {
    let keys = join_keys(reference);
    let mut index: HashMap<Vec<String>, &Cell> = HashMap::new();
    for r in reference {
        let Some(key) = project(&r.labels, &keys) else {
            continue;
        };
        if r.reference.is_none() {
            return Err(CompareError::Join(format!(
                "reference cell {} has no `reference` distribution",
                r.describe()
            )));
        }
        if index.insert(key, r).is_some() {
            return Err(CompareError::Join(format!(
                "two reference cells share the labels {}",
                r.describe()
            )));
        }
    }
    let mut pairs = Vec::with_capacity(predicted.len());
    let mut unmatched = Vec::new();
    // a cell given twice (the same file passed twice, or two runs without telling labels)
    // would be counted twice in every mean
    let mut seen: std::collections::HashSet<&BTreeMap<String, String>> = Default::default();
    for p in predicted {
        let Some(pred) = &p.predicted else { continue };
        if !seen.insert(&p.labels) {
            return Err(CompareError::Join(format!(
                "predicted cell {} appears twice (the same file given twice, or cells \
                 without a label that tells them apart, e.g. `model`); each cell must be \
                 counted once",
                p.describe()
            )));
        }
        let (r_cell, r_dist) = match (
            &p.reference,
            project(&p.labels, &keys).and_then(|k| index.get(&k)),
        ) {
            (Some(own), _) => (p, own),
            (None, Some(r)) => (*r, r.reference.as_ref().expect("checked above")),
            (None, None) => {
                unmatched.push(p.describe());
                continue;
            }
        };
        let mut aligned = vec![0.0; r_cell.options.len()];
        if p.options.len() != r_cell.options.len() {
            return Err(CompareError::Join(format!(
                "options differ: predicted cell {} has {:?}, its reference has {:?}",
                p.describe(),
                p.options,
                r_cell.options
            )));
        }
        for (o, v) in p.options.iter().zip(pred) {
            let j = r_cell.options.iter().position(|x| x == o).ok_or_else(|| {
                CompareError::Join(format!(
                    "options differ: predicted cell {} has `{o}`, its reference has {:?}",
                    p.describe(),
                    r_cell.options
                ))
            })?;
            aligned[j] = *v;
        }
        let mut labels = r_cell.labels.clone();
        labels.extend(p.labels.clone());
        pairs.push(Pair {
            labels,
            options: r_cell.options.clone(),
            predicted: aligned,
            reference: r_dist.clone(),
            ordinal: r_cell.ordinal.clone().or_else(|| p.ordinal.clone()),
            weight: p.weight.or(r_cell.weight).unwrap_or(1.0),
        });
    }
    if !unmatched.is_empty() {
        return Err(CompareError::Join(format!(
            "{} predicted cell(s) have no reference (joined on {:?}), e.g. {} (--skip-unmatched leaves them out)",
            unmatched.len(),
            keys,
            unmatched[0]
        )));
    }
    if pairs.is_empty() {
        return Err(CompareError::Join("no predicted cells to compare".into()));
    }
    Ok(pairs)
}

/// Restricts a pair to its ordinal options (renormalized), for the Wasserstein metrics.
fn ordinal_part(pair: &Pair) -> Option<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let ord = pair.ordinal.as_ref()?;
    let (mut p, mut q, mut x) = (Vec::new(), Vec::new(), Vec::new());
    for ((a, b), o) in pair.predicted.iter().zip(&pair.reference).zip(ord) {
        if let Some(pos) = o {
            p.push(*a);
            q.push(*b);
            x.push(*pos);
        }
    }
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let distinct = x.iter().any(|v| *v != x[0]);
    if !distinct || sp <= 0.0 || sq <= 0.0 {
        return None;
    }
    Some((
        p.iter().map(|v| v / sp).collect(),
        q.iter().map(|v| v / sq).collect(),
        x,
    ))
}

/// One metric on one pair; `None` when it does not apply (W1 on a non-ordinal question).
pub fn metric_value(metric: Metric, pair: &Pair, kl_smoothing: f64) -> Result<Option<f64>> {
    metric_value_of(metric, pair, kl_smoothing, false)
}

/// [`metric_value`], with `raw` predicted vectors scored by TV as written.
pub fn metric_value_of(
    metric: Metric,
    pair: &Pair,
    kl_smoothing: f64,
    raw: bool,
) -> Result<Option<f64>> {
    let wrap = |error| CompareError::Metric {
        metric: metric.name(),
        cell: pair
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        error,
    };
    let (p, q) = (&pair.predicted, &pair.reference);
    let v = match metric {
        Metric::Tv if raw => probe_metrics::divergence::total_variation_raw(p, q),
        _ if raw => {
            return Err(CompareError::Input(format!(
                "metric `{}` needs distributions; raw vectors (--raw) are scored by tv only, as \
                 the benchmark did",
                metric.name()
            )))
        }
        Metric::Tv => total_variation(p, q),
        Metric::Kl => kl_divergence(q, p, Some(kl_smoothing)),
        Metric::Js => js_distance(p, q),
        Metric::EntropyPredicted => normalized_entropy(p),
        Metric::EntropyReference => normalized_entropy(q),
        Metric::W1 | Metric::W1Norm => {
            let Some((po, qo, x)) = ordinal_part(pair) else {
                return Ok(None);
            };
            if metric == Metric::W1 {
                wasserstein_1d(&po, &qo, Some(&x))
            } else {
                normalized_wasserstein_1d(&po, &qo, Some(&x))
            }
        }
    };
    v.map(Some).map_err(wrap)
}

#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub metrics: Vec<Metric>,
    pub by: Vec<String>,
    pub bootstrap: usize,
    pub level: f64,
    pub seed: u64,
    pub kl_smoothing: f64,
    /// Weight cells by their `weight` (e.g. group size) in the aggregates.
    pub weighted: bool,
    /// How the cells of one row are averaged.
    pub aggregate: Aggregate,
    /// Predicted vectors are raw (may sum to less than 1): TV is scored as the benchmark did,
    /// `½ Σ |p − q|` on the vector as written; other metrics are refused.
    pub raw: bool,
}

/// The group a cell belongs to for [`Aggregate::GroupMean`]: `attribute=group` (or `value`).
fn group_of(labels: &BTreeMap<String, String>) -> Option<String> {
    let group = labels.get("group").or_else(|| labels.get("value"))?;
    Some(match labels.get("attribute") {
        Some(a) => format!("{a}={group}"),
        None => group.clone(),
    })
}

/// Per-group means of `values` (cells keyed by `groups`), in group order, with each group's
/// summed weight: the first stage of the benchmark's mean of means.
pub fn group_means(values: &[f64], weights: &[f64], groups: &[String]) -> (Vec<f64>, Vec<f64>) {
    let mut acc: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
    for ((v, w), g) in values.iter().zip(weights).zip(groups) {
        let e = acc.entry(g.as_str()).or_default();
        e.0 += v;
        e.1 += 1.0;
        e.2 += w;
    }
    acc.values().map(|(s, n, w)| (s / n, *w)).unzip()
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            metrics: vec![Metric::Tv],
            by: vec![],
            bootstrap: 1000,
            level: 0.95,
            seed: 0,
            kl_smoothing: 1e-4,
            weighted: false,
            aggregate: Aggregate::GroupMean,
            raw: false,
        }
    }
}

/// Exact below this many multinomial outcomes, else simulated (see `discretization_error`).
const FLOOR_MAX_OUTCOMES: usize = 50_000;
const FLOOR_SIMULATIONS: usize = 4_000;

/// ECE and discretization floor of one TV row's cells (`None` where they do not apply); the
/// floor is averaged over `groups` first when given (the benchmark's aggregate).
pub fn tv_extras(
    members: &[&Pair],
    groups: Option<&[String]>,
    seed: u64,
) -> Result<(Option<f64>, Option<f64>)> {
    let wrap = |what: &'static str| {
        move |error| CompareError::Metric {
            metric: what,
            cell: "row".into(),
            error,
        }
    };
    let normalized = members
        .iter()
        .all(|p| (p.predicted.iter().sum::<f64>() - 1.0).abs() <= probe_metrics::PROB_TOLERANCE);
    let ece = if normalized {
        let p: Vec<&[f64]> = members.iter().map(|m| m.predicted.as_slice()).collect();
        let q: Vec<&[f64]> = members.iter().map(|m| m.reference.as_slice()).collect();
        Some(
            probe_metrics::calibration::expected_calibration_error_soft(&p, &q, 10)
                .map_err(wrap("calibration"))?,
        )
    } else {
        None
    };
    let samples: Option<Vec<usize>> = members
        .iter()
        .map(|p| p.labels.get("samples")?.parse().ok())
        .collect();
    let floor = match samples {
        Some(ns) if !ns.is_empty() => {
            let mut floors = Vec::with_capacity(ns.len());
            for (p, n) in members.iter().zip(ns) {
                floors.push(
                    probe_metrics::alignment::discretization_error(
                        &p.reference,
                        n,
                        FLOOR_MAX_OUTCOMES,
                        FLOOR_SIMULATIONS,
                        seed,
                    )
                    .map_err(wrap("discretization"))?,
                );
            }
            let floors = match groups {
                Some(g) => group_means(&floors, &vec![1.0; floors.len()], g).0,
                None => floors,
            };
            Some(floors.iter().sum::<f64>() / floors.len() as f64)
        }
        _ => None,
    };
    Ok((ece, floor))
}

/// Aggregates every metric over the pairs of each `by` group (mean with bootstrap CI).
pub fn compare(pairs: &[Pair], options: &CompareOptions) -> Result<Vec<Row>> {
    let mut groups: BTreeMap<Vec<String>, Vec<&Pair>> = BTreeMap::new();
    for p in pairs {
        let key: Vec<String> = options
            .by
            .iter()
            .map(|k| p.labels.get(k).cloned().unwrap_or_else(|| "-".into()))
            .collect();
        groups.entry(key).or_default().push(p);
    }
    if let Some(missing) = options
        .by
        .iter()
        .find(|k| pairs.iter().all(|p| !p.labels.contains_key(*k)))
    {
        return Err(CompareError::Input(format!(
            "no cell has the label `{missing}` given to --by"
        )));
    }
    let mut rows = Vec::new();
    for (key, members) in groups {
        for &metric in &options.metrics {
            let mut values = Vec::with_capacity(members.len());
            let mut weights = Vec::with_capacity(members.len());
            let mut groups = Vec::with_capacity(members.len());
            for p in &members {
                if let Some(v) = metric_value_of(metric, p, options.kl_smoothing, options.raw)? {
                    values.push(v);
                    weights.push(p.weight);
                    groups.push(group_of(&p.labels).filter(|_| p.labels.contains_key("question")));
                }
            }
            if values.is_empty() {
                continue;
            }
            let n_cells = values.len();
            let benchmark =
                options.aggregate == Aggregate::GroupMean && groups.iter().all(Option::is_some);
            let groups: Option<Vec<String>> =
                benchmark.then(|| groups.into_iter().flatten().collect());
            let (calibration_ece, discretization_floor) = if metric == Metric::Tv {
                tv_extras(&members, groups.as_deref(), options.seed)?
            } else {
                (None, None)
            };
            let (n_groups, aggregate) = if let Some(groups) = &groups {
                (values, weights) = group_means(&values, &weights, groups);
                (Some(values.len()), Aggregate::GroupMean)
            } else {
                (None, Aggregate::Cells)
            };
            let w = options.weighted.then_some(weights.as_slice());
            let estimate = bootstrap_mean(
                &values,
                w,
                options.bootstrap.max(1),
                options.level,
                options.seed,
            )
            .map_err(|error| CompareError::Metric {
                metric: metric.name(),
                cell: format!("group {key:?}"),
                error,
            })?;
            rows.push(Row {
                group: options
                    .by
                    .iter()
                    .cloned()
                    .zip(key.iter().cloned())
                    .collect(),
                metric: metric.name().to_string(),
                n_cells,
                aggregate,
                n_groups,
                estimate,
                calibration_ece,
                discretization_floor,
            });
        }
    }
    Ok(rows)
}

/// The references that predicted cells carry themselves (`probe eval` output), as reference
/// cells: the model-side labels (`model`, `method`, `steering`, `variant`) dropped, each cell
/// once.
pub fn own_references(predicted: &[Cell]) -> Vec<Cell> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for c in predicted.iter().filter(|c| c.reference.is_some()) {
        let mut r = c.clone();
        r.labels.retain(|k, _| {
            !matches!(
                k.as_str(),
                "model" | "method" | "steering" | "variant" | "samples"
            )
        });
        r.predicted = None;
        r.origin = None;
        if seen.insert(r.describe()) {
            out.push(r);
        }
    }
    out
}

/// All mass on the largest entry (the first of ties): the majority baselines' prediction.
pub fn one_hot_argmax(d: &[f64]) -> Vec<f64> {
    let top = d
        .iter()
        .enumerate()
        .fold(0, |b, (i, &v)| if v > d[b] { i } else { b });
    (0..d.len())
        .map(|i| if i == top { 1.0 } else { 0.0 })
        .collect()
}

/// Baseline predictions for reference cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// Every option equally likely.
    Uniform,
    /// All mass on the group's own most chosen option: the benchmark's majority baseline
    /// (Meister et al. 2024).
    Majority,
    /// All mass on the option most chosen by the whole population of the question (all groups
    /// of the same question pooled, weighted by their `weight`): weaker than [`Majority`], and
    /// reported only under its own name.
    ///
    /// [`Majority`]: Baseline::Majority
    PooledMajority,
}

impl Baseline {
    /// The name `probe compare --baseline` takes.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::Uniform => "uniform",
            Baseline::Majority => "majority",
            Baseline::PooledMajority => "pooled-majority",
        }
    }
}

pub fn baseline_cells(reference: &[Cell], baseline: Baseline) -> Vec<Cell> {
    let question_key = |c: &Cell| -> Vec<String> {
        c.labels
            .iter()
            .filter(|(k, _)| k.as_str() != "group")
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    };
    let mut pooled: HashMap<Vec<String>, Vec<f64>> = HashMap::new();
    if baseline == Baseline::PooledMajority {
        for c in reference {
            if let Some(r) = &c.reference {
                let acc = pooled
                    .entry(question_key(c))
                    .or_insert_with(|| vec![0.0; r.len()]);
                let w = c.weight.unwrap_or(1.0);
                acc.iter_mut().zip(r).for_each(|(a, b)| *a += w * b);
            }
        }
    }
    reference
        .iter()
        .filter(|c| c.reference.is_some())
        .map(|c| {
            let n = c.options.len();
            let predicted = match baseline {
                Baseline::Uniform => vec![1.0 / n as f64; n],
                Baseline::Majority => one_hot_argmax(c.reference.as_deref().unwrap_or_default()),
                Baseline::PooledMajority => one_hot_argmax(&pooled[&question_key(c)]),
            };
            let mut labels = c.labels.clone();
            labels.insert(
                "model".into(),
                match baseline {
                    Baseline::Uniform => "baseline-uniform".into(),
                    Baseline::Majority => "baseline-majority".into(),
                    Baseline::PooledMajority => "baseline-pooled-majority".into(),
                },
            );
            Cell {
                labels,
                options: c.options.clone(),
                predicted: Some(predicted),
                reference: None,
                weight: c.weight,
                ordinal: c.ordinal.clone(),
                origin: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One group (or one cell) leaves nothing to resample: no zero-width "CI".
    #[test]
    fn an_interval_from_one_unit_is_not_a_ci() {
        let row = |n_groups, n_cells| Row {
            group: BTreeMap::new(),
            metric: "tv".into(),
            n_cells,
            aggregate: Aggregate::GroupMean,
            n_groups,
            estimate: probe_metrics::stats::Estimate {
                value: 0.25,
                low: 0.25,
                high: 0.25,
                bias: None,
            },
            calibration_ece: None,
            discretization_floor: None,
        };
        assert_eq!(row(Some(1), 9).interval_text(), "n/a (1 group)");
        assert_eq!(row(None, 1).interval_text(), "n/a (1 cell)");
        assert_eq!(row(Some(3), 9).interval_text(), "[0.2500, 0.2500]");
    }

    fn cell(
        labels: &[(&str, &str)],
        options: &[&str],
        predicted: Option<Vec<f64>>,
        reference: Option<Vec<f64>>,
    ) -> Cell {
        Cell {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            options: options.iter().map(|s| s.to_string()).collect(),
            predicted,
            reference,
            weight: None,
            ordinal: Some(vec![Some(1.0), Some(2.0)]),
            origin: None,
        }
    }

    #[test]
    fn joins_on_reference_labels_and_reorders_options() {
        let reference = vec![cell(
            &[("question", "q1"), ("group", "g")],
            &["a", "b"],
            None,
            Some(vec![0.25, 0.75]),
        )];
        let predicted = vec![cell(
            &[("question", "q1"), ("group", "g"), ("model", "m")],
            &["b", "a"],
            Some(vec![1.0, 0.0]),
            None,
        )];
        let pairs = join(&predicted, &reference).unwrap();
        assert_eq!(pairs[0].predicted, vec![0.0, 1.0]);
        let rows = compare(
            &pairs,
            &CompareOptions {
                metrics: vec![Metric::Tv, Metric::W1],
                by: vec!["model".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(rows[0].estimate.value, 0.25);
        assert_eq!(rows[1].estimate.value, 0.25);
    }

    #[test]
    fn a_predicted_cell_given_twice_is_an_error_not_counted_twice() {
        let reference = vec![cell(
            &[("question", "q1")],
            &["a", "b"],
            None,
            Some(vec![0.5, 0.5]),
        )];
        let one = cell(
            &[("question", "q1"), ("model", "m")],
            &["a", "b"],
            Some(vec![1.0, 0.0]),
            None,
        );
        let err = join(&[one.clone(), one.clone()], &reference)
            .unwrap_err()
            .to_string();
        assert!(err.contains("appears twice"), "{err}");
        let mut other_model = one.clone();
        other_model.labels.insert("model".into(), "n".into());
        assert_eq!(join(&[one, other_model], &reference).unwrap().len(), 2);
    }

    #[test]
    fn differing_options_and_unmatched_cells_are_errors() {
        let reference = vec![cell(
            &[("question", "q1")],
            &["a", "b"],
            None,
            Some(vec![0.5, 0.5]),
        )];
        let other = vec![cell(
            &[("question", "q1")],
            &["a", "c"],
            Some(vec![0.5, 0.5]),
            None,
        )];
        assert!(join(&other, &reference)
            .unwrap_err()
            .to_string()
            .contains("options differ"));
        let missing = vec![cell(
            &[("question", "q2")],
            &["a", "b"],
            Some(vec![0.5, 0.5]),
            None,
        )];
        assert!(join(&missing, &reference)
            .unwrap_err()
            .to_string()
            .contains("no reference"));
    }

    #[test]
    fn majority_baseline_is_each_groups_own_answer() {
        let mut r1 = cell(
            &[("question", "q"), ("group", "x")],
            &["a", "b"],
            None,
            Some(vec![0.9, 0.1]),
        );
        r1.weight = Some(10.0);
        let mut r2 = cell(
            &[("question", "q"), ("group", "y")],
            &["a", "b"],
            None,
            Some(vec![0.3, 0.7]),
        );
        r2.weight = Some(100.0);
        // The benchmark's baseline: each group's own most common answer.
        let b = baseline_cells(&[r1.clone(), r2.clone()], Baseline::Majority);
        assert_eq!(b[0].predicted, Some(vec![1.0, 0.0]));
        assert_eq!(b[1].predicted, Some(vec![0.0, 1.0]));
        assert_eq!(b[0].labels["model"], "baseline-majority");
        // The pooled population's answer, under its own name.
        let b = baseline_cells(&[r1, r2], Baseline::PooledMajority);
        assert_eq!(b[0].predicted, Some(vec![0.0, 1.0]));
        assert_eq!(b[1].predicted, Some(vec![0.0, 1.0]));
        assert_eq!(b[0].labels["model"], "baseline-pooled-majority");
    }

    /// Group A answers three questions at TV 0.1, group B one at 0.5: the benchmark's mean over
    /// groups of the mean over questions is 0.3; a flat mean over cells would say 0.2.
    #[test]
    fn the_score_is_the_mean_over_groups_of_the_mean_over_questions() {
        let mut pairs = Vec::new();
        for (group, q, p) in [
            ("A", "q1", 0.6),
            ("A", "q2", 0.6),
            ("A", "q3", 0.6),
            ("B", "q1", 1.0),
        ] {
            let labels = [
                ("attribute", "SEX"),
                ("group", group),
                ("question", q),
                ("model", "m"),
            ];
            pairs.push(Pair {
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                options: vec!["a".into(), "b".into()],
                predicted: vec![p, 1.0 - p],
                reference: vec![0.5, 0.5],
                ordinal: None,
                weight: 1.0,
            });
        }
        let options = CompareOptions {
            by: vec!["model".into()],
            bootstrap: 10,
            ..CompareOptions::default()
        };
        let rows = compare(&pairs, &options).unwrap();
        assert!(
            (rows[0].estimate.value - 0.3).abs() < 1e-12,
            "{:?}",
            rows[0]
        );
        assert_eq!((rows[0].n_cells, rows[0].n_groups), (4, Some(2)));
        assert_eq!(rows[0].aggregate, Aggregate::GroupMean);
        let flat = compare(
            &pairs,
            &CompareOptions {
                aggregate: Aggregate::Cells,
                ..options
            },
        )
        .unwrap();
        assert!((flat[0].estimate.value - 0.2).abs() < 1e-12);
        assert_eq!(flat[0].aggregate, Aggregate::Cells);
    }

    /// TV rows carry the calibration ECE of their cells and, for sampled answers (a `samples`
    /// label), the discretization floor: with one answer from a 50/50 group a perfect sampler
    /// is always 0.5 off.
    #[test]
    fn tv_rows_report_calibration_and_the_discretization_floor() {
        let mk = |samples: Option<&str>| {
            let mut labels: BTreeMap<String, String> =
                [("group", "g"), ("question", "q"), ("model", "m")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
            if let Some(n) = samples {
                labels.insert("samples".into(), n.into());
            }
            Pair {
                labels,
                options: vec!["a".into(), "b".into()],
                predicted: vec![0.7, 0.3],
                reference: vec![0.5, 0.5],
                ordinal: None,
                weight: 1.0,
            }
        };
        let options = CompareOptions {
            by: vec!["model".into()],
            bootstrap: 10,
            ..CompareOptions::default()
        };
        let rows = compare(&[mk(Some("1"))], &options).unwrap();
        assert!((rows[0].calibration_ece.unwrap() - 0.2).abs() < 1e-12);
        assert!((rows[0].discretization_floor.unwrap() - 0.5).abs() < 1e-12);
        let rows = compare(&[mk(None)], &options).unwrap();
        assert_eq!(rows[0].discretization_floor, None);
    }
}
