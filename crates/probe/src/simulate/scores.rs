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
use probe_metrics::individual::{agreement, Agreement, ItemScale};
use probe_metrics::population::{marginals, structure, MarginalFit, StructureFit};
use serde_json::Value;

use super::SimulateOptions;

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

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Every score of one split.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SplitScores {
    /// `all`, or a split's name.
    pub split: String,
    pub respondents: usize,
    /// The marginals of the option distributions themselves (each twin's answer counted as
    /// its distribution): what infinitely many draws at temperature 1 would give.
    pub expected: MarginalFit,
    pub temperatures: Vec<TemperatureScores>,
}

/// The table of one temperature's draws.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TemperatureScores {
    pub temperature: f32,
    pub marginals: MarginalFit,
    pub agreement: Agreement,
    /// `None` when fewer than two items have values, or an item is constant.
    pub structure: Option<StructureFit>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SimulationScores {
    pub model: String,
    pub survey: String,
    pub persona: bool,
    pub items: Vec<String>,
    pub correlation: &'static str,
    pub splits: Vec<SplitScores>,
}

/// Scores of every simulated respondent (`all`) and, when several splits are among them, of
/// each split.
pub fn score(
    survey: &Survey,
    table: &Table,
    names: &[&str],
    options: &SimulateOptions,
    model: &str,
) -> Result<SimulationScores> {
    let mut groups: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in &table.rows {
        groups.entry(names[row.index]).or_default().push(row);
    }
    // one split simulated (`--respondents test`): named by it
    let everyone = match groups.keys().collect::<Vec<_>>().as_slice() {
        [only] => only.to_string(),
        _ => "all".into(),
    };
    let mut parts: Vec<(String, Vec<&Row>)> = vec![(everyone, table.rows.iter().collect())];
    if groups.len() > 1 {
        for split in ["train", "validation", "test"] {
            if let Some(rows) = groups.remove(split) {
                parts.push((split.into(), rows));
            }
        }
    }
    let method = if options.spearman {
        Method::Spearman
    } else {
        Method::Pearson
    };
    let mut splits = Vec::new();
    for (split, rows) in parts {
        splits.push(score_rows(survey, table, &split, &rows, options, method)?);
    }
    Ok(SimulationScores {
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
        },
        splits,
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
            structure: structure(&scales, &real, &hard, method, options.bootstrap).ok(),
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
        bail!("an item has no respondent with a real answer");
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

impl fmt::Display for SimulationScores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ci = |e: &probe_metrics::stats::Estimate| {
            format!("{:.3} [{:.3}, {:.3}]", e.value, e.low, e.high)
        };
        writeln!(
            f,
            "{} on {} ({}), bootstrap CIs over respondents:",
            self.model,
            self.survey,
            if self.persona {
                "persona prompts"
            } else {
                "no persona"
            }
        )?;
        writeln!(
            f,
            "{:<11} {:>5} {:>6}  {:<22} {:<22} {:<22} {:<22} corr |Δr| ({})",
            "split", "n", "T", "mean KL", "mean TV", "accuracy", "RMSE", self.correlation
        )?;
        for s in &self.splits {
            writeln!(
                f,
                "{:<11} {:>5} {:>6}  {:<22} {:<22}",
                s.split,
                s.respondents,
                "p",
                ci(&s.expected.mean_kl),
                ci(&s.expected.mean_tv)
            )?;
            for t in &s.temperatures {
                writeln!(
                    f,
                    "{:<11} {:>5} {:>6}  {:<22} {:<22} {:<22} {:<22} {}",
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
            }
        }
        Ok(())
    }
}
