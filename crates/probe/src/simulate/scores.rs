//! The simulated table against the real one: per split and temperature the marginals' KL and
//! TV, the twins' accuracy and RMSE, and the item × item correlation structure, all with
//! bootstrap CIs over respondents (`probe_metrics::{population, individual}`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use probe_data::cells::Cell;
use probe_data::survey::{ItemKind, Survey};
use probe_metrics::correlation::Method;
use probe_metrics::individual::{agreement, ItemScale};
use probe_metrics::population::{marginals, structure};
use serde_json::Value;

pub use probe_schema::simulation::{
    ComparatorScores, PairedComparison, SimulationScores, SplitScores, TemperatureScores,
};

use super::SimulateOptions;
use crate::vectors::csv_field;

/// One simulated respondent: per item the real answer, the option distribution and one draw
/// per temperature.
#[derive(Debug, Clone)]
pub struct Row {
    /// Index into the survey's respondents.
    pub index: usize,
    pub real: Vec<Option<usize>>,
    pub p: Vec<Vec<f64>>,
    pub sampled: Vec<Vec<usize>>,
}

/// The simulated respondents in the order they were selected.
#[derive(Debug, Clone)]
pub struct Table {
    pub rows: Vec<Row>,
    pub temperatures: Vec<f32>,
}

impl Table {
    /// The logged records of the `selected` respondents (others, from another selection, are
    /// ignored); each is checked against the codebook.
    pub fn from_records(
        survey: &Survey,
        records: &[Value],
        selected: &[usize],
        temperatures: &[f32],
    ) -> Result<Table> {
        let by_id: HashMap<&str, &Value> = records
            .iter()
            .filter_map(|r| Some((r["key"].as_str()?, r)))
            .collect();
        let items = &survey.codebook.items;
        let mut rows = Vec::new();
        for &index in selected {
            let respondent = &survey.respondents[index];
            let Some(record) = by_id.get(respondent.id.as_str()) else {
                continue;
            };
            let bad = |what: &str| {
                anyhow::anyhow!(
                    "respondents.jsonl: the record of respondent {} {what}; delete the file to simulate again",
                    respondent.id
                )
            };
            let answers = record["items"]
                .as_array()
                .filter(|a| a.len() == items.len())
                .ok_or_else(|| bad("does not answer every item"))?;
            let (mut p, mut sampled) = (Vec::new(), Vec::new());
            for (item, a) in items.iter().zip(answers) {
                let dist: Vec<f64> = serde_json::from_value(a["p"].clone())
                    .map_err(|_| bad("has an unreadable distribution"))?;
                let draws: Vec<usize> = serde_json::from_value(a["sampled"].clone())
                    .map_err(|_| bad("has unreadable samples"))?;
                if dist.len() != item.options.len()
                    || draws.len() != temperatures.len()
                    || draws.iter().any(|&d| d >= item.options.len())
                {
                    return Err(bad(&format!("does not fit item {}", item.column)));
                }
                p.push(dist);
                sampled.push(draws);
            }
            rows.push(Row {
                index,
                real: respondent.answers.clone(),
                p,
                sampled,
            });
        }
        Ok(Table {
            rows,
            temperatures: temperatures.to_vec(),
        })
    }

    /// `answers.csv`: one line per respondent × item × temperature, with the codes of the real
    /// and the simulated answer (empty: no answer) and the probability of the real one.
    pub fn write_answers(&self, survey: &Survey, names: &[&str], path: &Path) -> Result<()> {
        let mut text = String::from("id,split,weight,item,temperature,real,simulated,p_real\n");
        for row in &self.rows {
            let r = &survey.respondents[row.index];
            for (i, item) in survey.codebook.items.iter().enumerate() {
                let real = row.real[i].map(|a| item.options[a].code.as_str());
                let p_real = row.real[i].map(|a| row.p[i][a].to_string());
                for (t, &draw) in self.temperatures.iter().zip(&row.sampled[i]) {
                    text.push_str(&format!(
                        "{},{},{},{},{t},{},{},{}\n",
                        csv_field(&r.id),
                        names[row.index],
                        r.weight,
                        csv_field(&item.column),
                        real.map(csv_field).unwrap_or_default(),
                        csv_field(&item.options[draw].code),
                        p_real.clone().unwrap_or_default()
                    ));
                }
            }
        }
        probe_cache::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// A table scored beside the model's: its name, what it is, its rows.
pub struct Comparator<'a> {
    pub name: String,
    pub description: String,
    pub table: &'a Table,
}

/// The parts scored: every simulated respondent (`all`, or the one split simulated) and, when
/// several splits are among them, each split; as positions into `table.rows`.
fn parts(table: &Table, names: &[&str]) -> Vec<(String, Vec<usize>)> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (k, row) in table.rows.iter().enumerate() {
        groups.entry(names[row.index]).or_default().push(k);
    }
    // one split simulated (`--respondents test`): named by it
    let everyone = match groups.keys().collect::<Vec<_>>().as_slice() {
        [only] => only.to_string(),
        _ => "all".into(),
    };
    let mut parts = vec![(everyone, (0..table.rows.len()).collect())];
    if groups.len() > 1 {
        for split in ["train", "validation", "test"] {
            if let Some(rows) = groups.remove(split) {
                parts.push((split.into(), rows));
            }
        }
    }
    parts
}

/// Scores of every simulated respondent (`all`) and, when several splits are among them, of
/// each split; the same for every comparator (baselines, other runs of the same respondents),
/// and the model against each by a paired bootstrap.
pub fn score(
    survey: &Survey,
    table: &Table,
    names: &[&str],
    options: &SimulateOptions,
    model: &str,
    comparators: &[Comparator<'_>],
) -> Result<SimulationScores> {
    let method = if options.spearman {
        Method::Spearman
    } else {
        Method::Pearson
    };
    let parts = parts(table, names);
    let score_table = |t: &Table| -> Result<Vec<SplitScores>> {
        parts
            .iter()
            .map(|(split, positions)| {
                let rows: Vec<&Row> = positions.iter().map(|&k| &t.rows[k]).collect();
                score_rows(survey, t, split, &rows, options, method)
            })
            .collect()
    };
    let splits = score_table(table)?;
    let mut baselines = Vec::new();
    let mut differences = Vec::new();
    let scales = item_scales(survey);
    for c in comparators {
        if c.table.rows.len() != table.rows.len()
            || c.table
                .rows
                .iter()
                .zip(&table.rows)
                .any(|(a, b)| a.index != b.index)
            || c.table.temperatures != table.temperatures
        {
            bail!(
                "{} does not hold the same respondents and temperatures as this simulation",
                c.name
            );
        }
        baselines.push(ComparatorScores {
            name: c.name.clone(),
            description: c.description.clone(),
            splits: score_table(c.table)?,
        });
        for (split, positions) in &parts {
            let real: Vec<Vec<Option<usize>>> = positions
                .iter()
                .map(|&k| table.rows[k].real.clone())
                .collect();
            let weights: Vec<f64> = positions
                .iter()
                .map(|&k| survey.respondents[table.rows[k].index].weight)
                .collect();
            for (ti, &temperature) in table.temperatures.iter().enumerate() {
                let hard = |t: &Table| -> Vec<Vec<Option<usize>>> {
                    positions
                        .iter()
                        .map(|&k| t.rows[k].sampled.iter().map(|s| Some(s[ti])).collect())
                        .collect()
                };
                let d = probe_metrics::paired::paired_differences(
                    &scales,
                    &real,
                    &hard(table),
                    &hard(c.table),
                    Some(&weights),
                    options.kl_smoothing,
                    options.bootstrap,
                )
                .with_context(|| format!("the {split} respondents against {}", c.name))?;
                differences.push(PairedComparison {
                    versus: c.name.clone(),
                    split: split.clone(),
                    temperature,
                    differences: d,
                });
            }
        }
    }
    Ok(SimulationScores {
        format_version: <SimulationScores as probe_schema::Artifact>::FORMAT_VERSION,
        model: model.to_string(),
        survey: survey.codebook.name.clone(),
        persona: options.persona,
        items: survey
            .codebook
            .items
            .iter()
            .map(|i| i.column.clone())
            .collect(),
        correlation: if options.spearman {
            "spearman"
        } else {
            "pearson"
        }
        .to_string(),
        splits,
        baselines,
        differences,
    })
}

/// Each item's scale for the individual metrics: ordinal positions, numeric codes, none.
pub fn item_scales(survey: &Survey) -> Vec<ItemScale> {
    survey
        .codebook
        .items
        .iter()
        .map(|item| ItemScale {
            options: item.options.len(),
            values: match item.kind {
                ItemKind::Nominal => None,
                _ => (0..item.options.len())
                    .map(|o| item.value(o))
                    .collect::<Option<Vec<f64>>>(),
            },
        })
        .collect()
}

fn score_rows(
    survey: &Survey,
    table: &Table,
    split: &str,
    rows: &[&Row],
    options: &SimulateOptions,
    method: Method,
) -> Result<SplitScores> {
    let scales = item_scales(survey);
    let n_options: Vec<usize> = scales.iter().map(|s| s.options).collect();
    let real: Vec<Vec<Option<usize>>> = rows.iter().map(|r| r.real.clone()).collect();
    let weights: Vec<f64> = rows
        .iter()
        .map(|r| survey.respondents[r.index].weight)
        .collect();
    let soft: Vec<Vec<Option<Vec<f64>>>> = rows
        .iter()
        .map(|r| r.p.iter().cloned().map(Some).collect())
        .collect();
    let context = |what: &str| format!("scoring the {split} respondents: {what}");
    let expected = marginals(
        &n_options,
        &real,
        &soft,
        Some(&weights),
        options.kl_smoothing,
        options.bootstrap,
    )
    .with_context(|| context("expected marginals"))?;
    let mut temperatures = Vec::new();
    for (t, &temperature) in table.temperatures.iter().enumerate() {
        let hard: Vec<Vec<Option<usize>>> = rows
            .iter()
            .map(|r| r.sampled.iter().map(|s| Some(s[t])).collect())
            .collect();
        let one_hot: Vec<Vec<Option<Vec<f64>>>> = hard
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&n_options)
                    .map(|(a, &k)| {
                        a.map(|a| {
                            let mut v = vec![0.0; k];
                            v[a] = 1.0;
                            v
                        })
                    })
                    .collect()
            })
            .collect();
        let structure_fit = structure(&scales, &real, &hard, method, options.bootstrap);
        temperatures.push(TemperatureScores {
            temperature,
            marginals: marginals(
                &n_options,
                &real,
                &one_hot,
                Some(&weights),
                options.kl_smoothing,
                options.bootstrap,
            )
            .with_context(|| context("marginals"))?,
            agreement: agreement(&scales, &real, &hard, Some(&weights), options.bootstrap)
                .with_context(|| context("agreement"))?,
            structure: structure_fit.as_ref().ok().cloned(),
            structure_note: structure_fit.err().map(|e| e.to_string()),
        });
    }
    Ok(SplitScores {
        split: split.to_string(),
        respondents: rows.len(),
        expected,
        temperatures,
    })
}

/// Per item, the simulated marginal of every respondent (the first part of `scores`) as a
/// `compare` cell against the real one: method `logp` (the expected marginal) and `sample` (`sample@T` in a sweep).
pub fn cells(
    survey: &Survey,
    scores: &SimulationScores,
    options: &SimulateOptions,
    model: &str,
) -> Result<Vec<Cell>> {
    // the first part scored is every simulated respondent: its marginals are the cells'
    let all = scores.splits.first().context("no scored respondents")?;
    if all.expected.items.len() != survey.codebook.items.len() {
        let missing: Vec<&str> = survey
            .codebook
            .items
            .iter()
            .enumerate()
            .filter(|(k, _)| !all.expected.items.iter().any(|m| m.item == *k))
            .map(|(_, i)| i.column.as_str())
            .collect();
        bail!(
            "item(s) {} have no respondent with a real answer",
            missing.join(", ")
        );
    }
    let mut out = Vec::new();
    let mut settings = vec![("logp".to_string(), &all.expected)];
    for t in &all.temperatures {
        let label = if all.temperatures.len() > 1 {
            format!("sample@{}", t.temperature)
        } else {
            "sample".into()
        };
        settings.push((label, &t.marginals));
    }
    for (method, fit) in settings {
        for (item, m) in survey.codebook.items.iter().zip(&fit.items) {
            let mut labels = BTreeMap::new();
            for (k, v) in [
                ("model", model),
                ("method", method.as_str()),
                ("steering", if options.persona { "persona" } else { "none" }),
                ("dataset", survey.codebook.name.as_str()),
                ("question", item.column.as_str()),
            ] {
                labels.insert(k.to_string(), v.to_string());
            }
            out.push(Cell {
                labels,
                options: item.options.iter().map(|o| o.label.clone()).collect(),
                predicted: Some(m.simulated.clone()),
                reference: Some(m.real.clone()),
                weight: None,
                ordinal: match item.kind {
                    ItemKind::Nominal => None,
                    _ => Some((0..item.options.len()).map(|o| item.value(o)).collect()),
                },
                origin: None,
            });
        }
    }
    Ok(out)
}

/// `scores.json` as the table `probe simulate` prints.
pub struct ScoresTable<'a>(pub &'a SimulationScores);

impl fmt::Display for ScoresTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scores = self.0;
        let ci = |e: &probe_metrics::stats::Estimate| {
            format!("{:.3} [{:.3}, {:.3}]", e.value, e.low, e.high)
        };
        writeln!(
            f,
            "{} on {} ({}), bias-corrected bootstrap CIs over respondents:",
            scores.model,
            scores.survey,
            if scores.persona {
                "persona prompts"
            } else {
                "no persona"
            }
        )?;
        // the predictors' names set the first column's width
        let w = std::iter::once(scores.model.chars().count())
            .chain(scores.baselines.iter().map(|b| b.name.chars().count()))
            .max()
            .unwrap_or(9)
            .max(9);
        writeln!(
            f,
            "{:<w$} {:<11} {:>5} {:>6}  {:<22} {:<22} {:<22} {:<22} corr |Δr| ({})",
            "predictor",
            "split",
            "n",
            "T",
            "mean KL",
            "mean TV",
            "accuracy",
            "RMSE",
            scores.correlation
        )?;
        let mut notes = Vec::new();
        let predictors = std::iter::once((scores.model.as_str(), &scores.splits)).chain(
            scores
                .baselines
                .iter()
                .map(|b| (b.name.as_str(), &b.splits)),
        );
        for (name, splits) in predictors {
            for s in splits {
                writeln!(
                    f,
                    "{:<w$} {:<11} {:>5} {:>6}  {:<22} {:<22}",
                    name,
                    s.split,
                    s.respondents,
                    "p",
                    ci(&s.expected.mean_kl),
                    ci(&s.expected.mean_tv)
                )?;
                for t in &s.temperatures {
                    writeln!(
                        f,
                        "{:<w$} {:<11} {:>5} {:>6}  {:<22} {:<22} {:<22} {:<22} {}",
                        name,
                        s.split,
                        s.respondents,
                        t.temperature,
                        ci(&t.marginals.mean_kl),
                        ci(&t.marginals.mean_tv),
                        ci(&t.agreement.mean_accuracy),
                        t.agreement.mean_rmse.as_ref().map(ci).unwrap_or_default(),
                        t.structure
                            .as_ref()
                            .map(|s| ci(&s.mean_abs_diff))
                            .unwrap_or_else(|| "—".into())
                    )?;
                    let item_names = |items: &[usize]| {
                        items
                            .iter()
                            .filter_map(|&i| scores.items.get(i).cloned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    if let Some(fit) = &t.structure {
                        if !fit.constant_simulated.is_empty() {
                            notes.push(format!(
                                "{name}, {} at T = {}: constant in the simulated answers, left out of the correlation structure: {}",
                                s.split,
                                t.temperature,
                                item_names(&fit.constant_simulated)
                            ));
                        }
                    } else if let Some(note) = &t.structure_note {
                        notes.push(format!(
                            "{name}, {} at T = {}: no correlation structure ({note})",
                            s.split, t.temperature
                        ));
                    }
                }
            }
        }
        if !scores.differences.is_empty() {
            writeln!(
                f,
                "{} minus each other predictor, paired bootstrap over the same respondents (two-sided p):",
                scores.model
            )?;
            let d = |x: &probe_metrics::paired::Difference| {
                format!(
                    "{:+.3} [{:+.3}, {:+.3}] p {}",
                    x.difference.value,
                    x.difference.low,
                    x.difference.high,
                    x.p.map_or("—".into(), |p| format!("{p:.3}"))
                )
            };
            for c in &scores.differences {
                writeln!(
                    f,
                    "  vs {:<w$} {:<11} T {:<4} ΔKL {}  Δaccuracy {}  ΔRMSE {}",
                    c.versus,
                    c.split,
                    c.temperature,
                    d(&c.differences.mean_kl),
                    d(&c.differences.mean_accuracy),
                    c.differences
                        .mean_rmse
                        .as_ref()
                        .map(d)
                        .unwrap_or_else(|| "—".into())
                )?;
            }
        }
        for n in notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}
