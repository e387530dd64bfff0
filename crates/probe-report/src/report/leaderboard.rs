//! Leaderboards: TV to the survey (pooled distributions), and per task against the questions' own
//! references (Meister et al.'s A), each with its baselines.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::*;

/// Whether scope `scope` of series `s` may be scored against the survey's same scope: a latent
/// ψ whose rows pool several `year` settings (the 2021 vote and a vote "tomorrow") is compared
/// only through its year scopes, each against that year's reference.
fn like_with_like(s: &Series, scope: &(String, String)) -> bool {
    s.years.len() < 2 || scope.0 == "year"
}

/// The benchmark's majority baseline (Meister et al. 2024): each group's own most common answer.
pub(super) const MAJORITY_GROUPS: &str = "baseline: majority (each group's own answer)";
pub(super) const MAJORITY_QUESTIONS: &str =
    "baseline: majority (each group's own answer, per question)";

/// The calibration ECE of a series' cells against the survey (its pooled groups, or its own
/// question-level cells), and for sampled answers the discretization floor (see
/// `compare::tv_extras`).
/// A bootstrap interval as `[low, high]`, or `n/a (1 group)` where one group leaves nothing
/// to resample (its zero-width interval would read as certainty).
fn interval(e: &Estimate, groups: usize) -> String {
    if groups < 2 {
        "n/a (1 group)".to_string()
    } else {
        format!("[{}, {}]", f(e.low), f(e.high))
    }
}

/// A leaderboard row: rank, distribution, groups, TV, CI, calibration ECE, discretization floor.
fn leaderboard_row(
    rank: usize,
    (name, e, groups): &(String, Estimate, usize),
    extras: &BTreeMap<String, (Option<f64>, Option<f64>)>,
) -> Vec<String> {
    let (ece, floor) = extras.get(name).copied().unwrap_or_default();
    let cell = |x: Option<f64>| x.map_or("–".to_string(), f);
    vec![
        rank.to_string(),
        name.clone(),
        groups.to_string(),
        f(e.value),
        interval(e, *groups),
        cell(ece),
        cell(floor),
    ]
}

/// A ranking's bars: the models' filled, the baselines' outlined in grey, with bootstrap
/// whiskers where two or more groups give an interval.
fn ranking_bars(entries: &[(String, Estimate, usize)], models: &str) -> Vec<Bars> {
    let is_baseline = |name: &str| name.starts_with("baseline: ");
    let values = |baseline: bool| -> Vec<f64> {
        entries
            .iter()
            .map(|(n, e, _)| {
                if is_baseline(n) == baseline {
                    e.value
                } else {
                    f64::NAN
                }
            })
            .collect()
    };
    let intervals = |baseline: bool| -> Vec<(f64, f64)> {
        entries
            .iter()
            .map(|(n, e, groups)| {
                if *groups >= 2 && is_baseline(n) == baseline {
                    (e.low, e.high)
                } else {
                    (f64::NAN, f64::NAN)
                }
            })
            .collect()
    };
    let mut model_bars = Bars::new(models, values(false), figures::color(1));
    model_bars.intervals = Some(intervals(false));
    let mut baselines = Bars::new("baseline", values(true), figures::BASELINE);
    baselines.intervals = Some(intervals(true));
    baselines.baseline = true;
    vec![model_bars, baselines]
        .into_iter()
        .filter(|b| b.values.iter().any(|v| v.is_finite()))
        .collect()
}

/// Calibration ECE and discretization floor of a series: over its question-level cells
/// (`own`), or over its pooled distributions against the survey.
fn series_extras(
    s: &Series,
    ref_by_scope: &BTreeMap<(String, String), &Cell>,
    seed: u64,
    own: bool,
) -> Result<(Option<f64>, Option<f64>)> {
    use crate::compare::{tv_extras, Pair};
    let pair = |group: &str, question: &str, p: &[f64], q: &[f64], samples: Option<usize>| {
        let mut labels = BTreeMap::from([
            ("group".to_string(), group.to_string()),
            ("question".to_string(), question.to_string()),
        ]);
        if let Some(n) = samples {
            labels.insert("samples".into(), n.to_string());
        }
        Pair {
            labels,
            options: vec![],
            predicted: p.to_vec(),
            reference: q.to_vec(),
            ordinal: None,
            weight: 1.0,
        }
    };
    let mut pairs: Vec<Pair> = s
        .own
        .iter()
        .filter(|_| own)
        .map(|c| pair(&c.group, &c.question, &c.predicted, &c.reference, c.samples))
        .collect();
    for (scope, d) in s.pooled.iter().filter(|_| !own) {
        if let Some((r, _)) = ref_by_scope
            .get(scope)
            .and_then(|c| align_reference(c, &s.options))
        {
            pairs.push(pair(
                &format!("{}={}", scope.0, scope.1),
                "vote",
                d,
                &r,
                None,
            ));
        }
    }
    let members: Vec<&Pair> = pairs.iter().collect();
    let groups: Vec<String> = pairs.iter().map(|p| p.labels["group"].clone()).collect();
    tv_extras(&members, Some(&groups), seed).map_err(|e| ReportError::Empty(e.to_string()))
}

/// Each group's mean over its (question) values, in group order: the units the benchmark's A
/// averages and the bootstrap resamples (`compare::group_means`).
fn mean_of_group_means(values: &[(String, f64)]) -> Vec<f64> {
    let (groups, values): (Vec<String>, Vec<f64>) = values.iter().cloned().unzip();
    crate::compare::group_means(&values, &vec![1.0; values.len()], &groups).0
}

/// (4) TV leaderboard against the survey (pooled distributions only; the question-level
/// tasks are ranked in their own section, each against its own references).
pub(super) fn survey(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    let mut entries: Vec<(String, Estimate, usize)> = Vec::new();
    let mut extras: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
    let mut matched_scopes: BTreeSet<(String, String)> = BTreeSet::new();
    for s in &cx.series {
        let mut tvs = Vec::new();
        for (scope, d) in &s.pooled {
            if !like_with_like(s, scope) {
                continue;
            }
            if let Some((r, _)) = cx
                .ref_by_scope
                .get(scope)
                .and_then(|c| align_reference(c, &s.options))
            {
                tvs.push(total_variation(d, &r)?);
                matched_scopes.insert(scope.clone());
            }
        }
        if !tvs.is_empty() {
            let est = bootstrap_mean(&tvs, None, cx.o.bootstrap.max(1), cx.o.level, cx.o.seed)?;
            entries.push((s.name.clone(), est, tvs.len()));
            extras.insert(
                s.name.clone(),
                series_extras(s, &cx.ref_by_scope, cx.o.seed, false)?,
            );
        }
    }
    // baselines on the same groups, over the first series' options
    if let Some(options) = cx
        .series
        .iter()
        .find(|s| !s.options.is_empty())
        .map(|s| s.options.clone())
    {
        let refs: Vec<(Vec<f64>, f64)> = matched_scopes
            .iter()
            .filter_map(|sc| {
                let c = cx.ref_by_scope.get(sc)?;
                let (r, _) = align_reference(c, &options)?;
                Some((r, c.weight.unwrap_or(1.0)))
            })
            .collect();
        if !refs.is_empty() {
            let n = options.len();
            let uniform = vec![1.0 / n as f64; n];
            let everyone = cx
                .ref_by_scope
                .get(&cx.all_scope)
                .and_then(|c| align_reference(c, &options))
                .map(|(r, _)| r)
                .unwrap_or_else(|| refs[0].0.clone());
            let pooled_majority = crate::compare::one_hot_argmax(&everyone);
            let top = pooled_majority.iter().position(|&v| v == 1.0).unwrap_or(0);
            let pooled_name = format!("baseline: pooled majority ({})", options[top]);
            for (name, pred) in [
                ("baseline: uniform", Some(uniform)),
                (MAJORITY_GROUPS, None),
                (&*pooled_name, Some(pooled_majority)),
            ] {
                // `None`: each group's own most common answer.
                let tvs: Vec<f64> = refs
                    .iter()
                    .map(|(r, _)| {
                        total_variation(
                            pred.as_deref()
                                .unwrap_or(&crate::compare::one_hot_argmax(r)),
                            r,
                        )
                    })
                    .collect::<Result<_, _>>()?;
                let est = bootstrap_mean(&tvs, None, cx.o.bootstrap.max(1), cx.o.level, cx.o.seed)?;
                entries.push((name.to_string(), est, tvs.len()));
            }
        }
    }
    entries.sort_by(|a, b| a.1.value.total_cmp(&b.1.value));
    let mut paragraphs = vec![format!(
        "Total variation ½‖p − q‖₁ between each distribution and the survey, averaged over the groups both have (lower is better; the `groups` column counts groups), with {:.0} % percentile bootstrap intervals over groups ({} resamples, seed {}); an interval from one group is shown as n/a. Calibration ECE: in 10 bins of the top predicted probability, how far the share of the group that actually chose that option is from it (0 = calibrated). Discretization floor (sampled answers only): the TV a perfect sampler of the survey reaches with the same number of answers — the benchmark's discretization error, below which a sampling method cannot go. Baselines: the uniform distribution; the benchmark's majority baseline, all mass on each group's own most common answer; and, under its own name, the weaker pooled majority, all mass on the whole population's most common answer. Question-level tasks (OpinionQA, a question JSONL such as the coin toy) are scored against their own references in the next section, never ranked against the survey.",
        100.0 * cx.o.level,
        cx.o.bootstrap,
        cx.o.seed
    )];
    if entries.is_empty()
        && cx
            .series
            .iter()
            .any(|s| !s.own.is_empty() && s.pooled.is_empty())
    {
        paragraphs.push(
            "Nothing here is compared with the survey: the evaluations are question-level tasks, ranked in the next section against their own references.".into(),
        );
    } else if entries.is_empty() {
        paragraphs.push(format!(
            "No distribution shares a group with the reference ({}): give a survey with matching `attribute`/`value` labels.",
            cx.reference.name
        ));
    }
    let table = Table {
        header: vec![
            "rank".into(),
            "distribution".into(),
            "groups".into(),
            "TV".into(),
            "CI".into(),
            "calibration ECE".into(),
            "discretization floor".into(),
        ],
        rows: entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let mut row = leaderboard_row(i + 1, entry, &extras);
                row[1] = cx.display_name(&entry.0);
                row
            })
            .collect(),
    };
    json["leaderboard"] = json!(entries
        .iter()
        .map(|(n, e, k)| {
            let (ece, floor) = extras.get(n).copied().unwrap_or_default();
            json!({"name": n, "groups": k, "tv": e.value, "low": e.low, "high": e.high,
                   "calibration_ece": ece, "discretization_floor": floor})
        })
        .collect::<Vec<_>>());
    let categories: Vec<String> = entries
        .iter()
        .map(|(name, _, groups)| format!("{} ({})", cx.display_name(name), count(*groups, "group")))
        .collect();
    let bars = ranking_bars(&entries, "mean TV over groups");
    // a study of question-level tasks only has nothing to rank against the survey
    let figure = if entries.is_empty() {
        None
    } else {
        Some(fig(
            "leaderboard",
            figures::grouped_rows(
                "Total variation to the survey (lower is better)",
                "TV",
                &categories,
                &bars,
                None,
                None,
            ),
        )?)
    };
    sections.push(Section {
        id: "leaderboard",
        how_to_read: Some(HOW_LEADERBOARD.into()),
        title: "Leaderboard: total variation to the survey".into(),
        paragraphs,
        table: Some(table),
        figure,
    });
    Ok(sections)
}

/// (4b) Question-level tasks: per task (dataset), each series against the questions' own
/// references (Meister et al.'s A), with the baselines of that task's references only.
pub(super) fn tasks(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    let mut tasks: BTreeMap<String, Vec<&Series>> = BTreeMap::new();
    for s in cx.series.iter().filter(|s| !s.own.is_empty()) {
        let task = s
            .labels
            .get("dataset")
            .cloned()
            .unwrap_or_else(|| "questions".into());
        tasks.entry(task).or_default().push(s);
    }
    let mut rows_json = Vec::new();
    let mut table = Table {
        header: vec![
            "task".into(),
            "rank".into(),
            "distribution".into(),
            "groups".into(),
            "A (TV)".into(),
            "CI".into(),
            "calibration ECE".into(),
            "discretization floor".into(),
        ],
        rows: vec![],
    };
    let mut categories = Vec::new();
    let mut ranked = Vec::new();
    for (task, members) in &tasks {
        let questions_in_task = members
            .iter()
            .flat_map(|s| s.own.iter().map(|c| c.question.as_str()))
            .collect::<BTreeSet<_>>()
            .len();
        let mut entries: Vec<(String, Estimate, usize)> = Vec::new();
        let mut extras: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
        for s in members {
            // The benchmark's A: the mean over groups of each group's mean over questions.
            let own: Vec<(String, f64)> = s
                .own
                .iter()
                .map(|c| {
                    Ok((
                        c.group.clone(),
                        total_variation(&c.predicted, &c.reference)?,
                    ))
                })
                .collect::<Result<_>>()?;
            let tvs = mean_of_group_means(&own);
            let est = bootstrap_mean(&tvs, None, cx.o.bootstrap.max(1), cx.o.level, cx.o.seed)?;
            entries.push((s.name.clone(), est, tvs.len()));
            extras.insert(
                s.name.clone(),
                series_extras(s, &cx.ref_by_scope, cx.o.seed, true)?,
            );
        }
        // question-level baselines: every (group, question) reference of this task once
        let own_refs: BTreeMap<(String, String), &Vec<f64>> = members
            .iter()
            .flat_map(|s| s.own.iter())
            .map(|c| ((c.group.clone(), c.question.clone()), &c.reference))
            .collect();
        if !own_refs.is_empty() {
            // the majority option of a question: largest summed share over its groups
            let mut pooled: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
            for ((_, q), r) in &own_refs {
                let acc = pooled
                    .entry(q.as_str())
                    .or_insert_with(|| vec![0.0; r.len()]);
                acc.iter_mut().zip(r.iter()).for_each(|(a, b)| *a += b);
            }
            let mut uniform = Vec::new();
            let mut majority = Vec::new();
            let mut pooled_majority = Vec::new();
            for ((g, q), r) in &own_refs {
                let n = r.len();
                let g = g.clone();
                uniform.push((g.clone(), total_variation(&vec![1.0 / n as f64; n], r)?));
                majority.push((
                    g.clone(),
                    total_variation(&crate::compare::one_hot_argmax(r), r)?,
                ));
                let pooled = &pooled[q.as_str()];
                pooled_majority.push((
                    g,
                    total_variation(&crate::compare::one_hot_argmax(pooled), r)?,
                ));
            }
            for (name, tvs) in [
                ("baseline: uniform (questions)", uniform),
                (MAJORITY_QUESTIONS, majority),
                ("baseline: pooled majority per question", pooled_majority),
            ] {
                let tvs = mean_of_group_means(&tvs);
                let est = bootstrap_mean(&tvs, None, cx.o.bootstrap.max(1), cx.o.level, cx.o.seed)?;
                entries.push((name.to_string(), est, tvs.len()));
            }
        }
        entries.sort_by(|a, b| a.1.value.total_cmp(&b.1.value));
        for (rank, entry) in entries.iter().enumerate() {
            let (n, e, k) = entry;
            let (ece, floor) = extras.get(n).copied().unwrap_or_default();
            let mut row = vec![task.clone()];
            row.extend(leaderboard_row(rank + 1, entry, &extras));
            row[2] = cx.display_name(n);
            table.rows.push(row);
            rows_json.push(json!({"task": task, "name": n, "groups": k, "tv": e.value,
                "low": e.low, "high": e.high, "calibration_ece": ece,
                "discretization_floor": floor}));
            let questions = members
                .iter()
                .find(|s| &s.name == n)
                .map_or(questions_in_task, |s| s.own_extent().1);
            categories.push(format!(
                "{task}: {} ({}, {})",
                cx.display_name(n),
                count(*k, "group"),
                count(questions, "question")
            ));
            ranked.push(entry.clone());
        }
    }
    if !tasks.is_empty() {
        json["task_leaderboard"] = json!(rows_json);
        let bars = ranking_bars(&ranked, "A: mean over groups of the mean TV over questions");
        sections.push(Section {
            id: "task-leaderboard",
            how_to_read: Some(HOW_TASKS.into()),
            title: "Leaderboards by task: each question against its own reference".into(),
            paragraphs: vec![format!(
                "Question-level evaluations (`probe eval` on OpinionQA or a question file) are ranked per task, each against the reference distributions of its own questions, never against the survey above. A is Meister et al.'s (2024) distributional alignment: the total variation between predicted and reference distribution of each (group, question), averaged over a group's questions, then over groups (lower is better; `groups` counts groups), with {:.0} % percentile bootstrap intervals over groups ({} resamples, seed {}); an interval from one group is shown as n/a. Baselines per task: the uniform distribution; the benchmark's majority baseline, all mass on each group's own most common answer per question; and the weaker pooled majority per question, under its own name.",
                100.0 * cx.o.level,
                cx.o.bootstrap,
                cx.o.seed
            )],
            table: Some(table),
            figure: Some(fig(
                "task-leaderboard",
                figures::grouped_rows(
                    "A per task (lower is better)",
                    "A (TV)",
                    &categories,
                    &bars,
                    None,
                    None,
                ),
            )?),
        });
    }
    Ok(sections)
}
