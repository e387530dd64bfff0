//! What a simulation must beat: classical predictors of each respondent's answers, fitted on
//! the training split's real answers and the codebook's demographics only (arXiv 2403.20252
//! sets its fine-tuned models beside such predictors). Each gives, per respondent and item, a
//! distribution over the options, and one answer per temperature drawn from it as the model's
//! twins draw theirs ([`probe_eval::simulate::draw_tempered`]), so that the same scoring code
//! scores them on the same respondents.
//!
//! * `training marginal`: every twin answers from the item's (weighted) marginal among the
//!   training respondents — what knowing nothing about the person gives.
//! * `logistic regression`: per item, a multinomial logistic regression of the answer on the
//!   demographics (L2, α = 1 — scikit-learn's default C = 1 — intercept unpenalized).
//!   Demographics whose values are all numbers (ages, and the ordered numeric codes of ANES's
//!   education and income) enter standardized; others one-hot; a missing value enters as the
//!   training mean (or no category) with a missing flag.

use anyhow::{Context, Result};
use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};
use probe_data::survey::{Split, Survey};

use super::scores::{Row, Table};

/// The two baselines, in the order they are scored and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    TrainingMarginal,
    Logistic,
}

impl Baseline {
    pub const ALL: [Baseline; 2] = [Baseline::TrainingMarginal, Baseline::Logistic];

    pub fn name(self) -> &'static str {
        match self {
            Baseline::TrainingMarginal => "baseline: training marginal",
            Baseline::Logistic => "baseline: logistic regression",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Baseline::TrainingMarginal => {
                "every twin answers from the item's weighted marginal among the training respondents"
            }
            Baseline::Logistic => {
                "per item, a multinomial logistic regression (L2, α = 1) of the answer on the codebook's demographics, fitted on the training respondents"
            }
        }
    }
}

/// The baseline's table for the respondents of `table` (same rows, same order): per item its
/// distribution, and one draw per temperature (seeded by `seed`, the baseline, the respondent
/// and the item).
pub fn baseline_table(
    survey: &Survey,
    split: &Split,
    baseline: Baseline,
    table: &Table,
    seed: u64,
) -> Result<Table> {
    let items = &survey.codebook.items;
    let train = &split.train;
    if train.is_empty() {
        anyhow::bail!("the training split is empty: nothing to fit a baseline on");
    }
    let features = match baseline {
        Baseline::TrainingMarginal => None,
        Baseline::Logistic => Some(Features::new(survey, train)),
    };
    // per item: a function from a respondent to its distribution
    let mut per_item: Vec<Vec<Vec<f64>>> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let answered: Vec<(usize, usize)> = train
            .iter()
            .filter_map(|&r| Some((r, survey.respondents[r].answers[i]?)))
            .collect();
        let k = item.options.len();
        let marginal = {
            let mut m = vec![0.0; k];
            for &(r, a) in &answered {
                m[a] += survey.respondents[r].weight;
            }
            let total: f64 = m.iter().sum();
            if total > 0.0 {
                m.iter_mut().for_each(|x| *x /= total);
            } else {
                m = vec![1.0 / k as f64; k];
            }
            m
        };
        let rows: Vec<Vec<f64>> = match &features {
            None => vec![marginal; table.rows.len()],
            Some(features) => {
                let classes: std::collections::BTreeSet<usize> =
                    answered.iter().map(|&(_, a)| a).collect();
                if classes.len() < 2 {
                    // one answer among the training respondents: nothing to regress
                    vec![marginal; table.rows.len()]
                } else {
                    let x = features.matrix(survey, answered.iter().map(|&(r, _)| r));
                    let y = Array1::from_iter(answered.iter().map(|&(_, a)| a));
                    let fit = MultiLogisticRegression::default()
                        .alpha(1.0)
                        .max_iterations(1000)
                        .gradient_tolerance(1e-6)
                        .fit(&Dataset::new(x, y))
                        .with_context(|| {
                            format!(
                                "fitting the logistic-regression baseline of item {}",
                                item.column
                            )
                        })?;
                    let probabilities = fit.predict_probabilities(
                        &features.matrix(survey, table.rows.iter().map(|row| row.index)),
                    );
                    probabilities
                        .rows()
                        .into_iter()
                        .map(|p| {
                            let mut dist = vec![0.0; k];
                            for (class, &q) in fit.classes().iter().zip(p.iter()) {
                                dist[*class] = q;
                            }
                            dist
                        })
                        .collect()
                }
            }
        };
        per_item.push(rows);
    }
    let rows = table
        .rows
        .iter()
        .enumerate()
        .map(|(k, row)| {
            let id = &survey.respondents[row.index].id;
            let p: Vec<Vec<f64>> = per_item.iter().map(|item| item[k].clone()).collect();
            let sampled = p
                .iter()
                .zip(items)
                .map(|(dist, item)| {
                    table
                        .temperatures
                        .iter()
                        .map(|&t| {
                            probe_eval::simulate::draw_tempered(
                                dist,
                                t,
                                seed,
                                &format!("{}|{id}|{}", baseline.name(), item.column),
                            )
                        })
                        .collect()
                })
                .collect();
            Row {
                index: row.index,
                real: row.real.clone(),
                p,
                sampled,
            }
        })
        .collect();
    Ok(Table {
        rows,
        temperatures: table.temperatures.clone(),
    })
}

/// How each demographic enters the regression, learned from the training respondents.
struct Features {
    columns: Vec<Column>,
}

enum Column {
    /// Standardized with the training mean and sd; `missing`: a flag column follows.
    Number { mean: f64, sd: f64, missing: bool },
    /// One column per category seen in training (missing or unseen: all zero).
    Categories(Vec<String>),
}

impl Features {
    fn new(survey: &Survey, train: &[usize]) -> Features {
        let columns = (0..survey.codebook.demographics.len())
            .map(|d| {
                let values: Vec<Option<&str>> = train
                    .iter()
                    .map(|&r| survey.respondents[r].demographics[d].as_deref())
                    .collect();
                let numbers: Option<Vec<f64>> = values
                    .iter()
                    .flatten()
                    .map(|v| v.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
                    .collect();
                match numbers {
                    Some(xs) if !xs.is_empty() => {
                        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
                        let var =
                            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
                        Column::Number {
                            mean,
                            sd: if var > 0.0 { var.sqrt() } else { 1.0 },
                            missing: values.iter().any(Option::is_none),
                        }
                    }
                    _ => {
                        let mut categories: Vec<String> =
                            values.iter().flatten().map(|v| v.to_string()).collect();
                        categories.sort();
                        categories.dedup();
                        Column::Categories(categories)
                    }
                }
            })
            .collect();
        Features { columns }
    }

    fn width(&self) -> usize {
        self.columns
            .iter()
            .map(|c| match c {
                Column::Number { missing, .. } => 1 + usize::from(*missing),
                Column::Categories(c) => c.len(),
            })
            .sum()
    }

    fn matrix(&self, survey: &Survey, respondents: impl Iterator<Item = usize>) -> Array2<f64> {
        let rows: Vec<usize> = respondents.collect();
        let mut x = Array2::zeros((rows.len(), self.width()));
        for (k, &r) in rows.iter().enumerate() {
            let mut at = 0;
            for (d, column) in self.columns.iter().enumerate() {
                let value = survey.respondents[r].demographics[d].as_deref();
                match column {
                    Column::Number { mean, sd, missing } => {
                        let number = value.and_then(|v| v.trim().parse::<f64>().ok());
                        x[[k, at]] = number.map_or(0.0, |v| (v - mean) / sd);
                        if *missing {
                            x[[k, at + 1]] = f64::from(u8::from(number.is_none()));
                        }
                        at += 1 + usize::from(*missing);
                    }
                    Column::Categories(categories) => {
                        if let Some(c) = value.and_then(|v| categories.iter().position(|c| c == v))
                        {
                            x[[k, at + c]] = 1.0;
                        }
                        at += categories.len();
                    }
                }
            }
        }
        x
    }
}
