//! The report's first sections: the pooled distributions beside the survey, and entropy per group.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::*;
use probe_metrics::entropy::{compare_entropy, entropy_of_units, EntropyComparison};
use probe_metrics::stats::{Bootstrap, Estimate};

/// (1) Party distributions, everyone: each model beside the survey.
pub(super) fn distributions(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    let overall: Vec<&&Series> = cx
        .series
        .iter()
        .filter(|s| s.pooled.contains_key(&cx.all_scope))
        .collect();
    let options: Vec<String> = overall
        .first()
        .map(|s| s.options.clone())
        .unwrap_or_default();
    let same: Vec<&&Series> = overall
        .iter()
        .copied()
        .filter(|s| s.options == options)
        .collect();
    // (legend name, n, distribution, pools years) per bar series, the survey last
    let mut rows: Vec<(String, String, Vec<f64>, bool)> = same
        .iter()
        .map(|s| {
            (
                cx.legend_name(s),
                s.n_text(&cx.all_scope),
                s.pooled[&cx.all_scope].clone(),
                s.years.len() >= 2,
            )
        })
        .collect();
    let mut colors: Vec<_> = same.iter().map(|s| cx.color_of(s)).collect();
    let mut paragraphs = vec![
        "Each model's distribution pooled over personas and prompt variants (ψ for the latent method), next to the survey.".to_string(),
    ];
    for s in &same {
        if let Some(p) = &s.provenance {
            paragraphs.push(format!("{}: {p}.", cx.legend_name(s)));
        }
        if let Some((count, of, policy)) = &s.clipped {
            paragraphs.push(format!(
                "{}: {count} of {of} scaling factors ({:.1} %) were negative; the `{policy}` policy set them (see the negative-factor section).",
                cx.legend_name(s),
                100.0 * *count as f64 / (*of).max(1) as f64
            ));
        }
        if s.years.len() >= 2 {
            paragraphs.push(format!(
                "{}: ψ pools personas of {} (year = {}); the survey is compared only with the ψ of the matching year scope, never with this pooled ψ or with groups that pool the years.",
                cx.legend_name(s),
                s.years.len(),
                s.years.join(", ")
            ));
        }
    }
    if let Some(model) = cx.model_prefix.strip_suffix(" · ") {
        paragraphs.push(format!(
            "Model: {model} (the figures' legends leave its name out)."
        ));
    }
    let mut survey_row = None;
    if let Some((r, kept)) = cx
        .ref_by_scope
        .get(&cx.all_scope)
        .and_then(|c| align_reference(c, &options))
    {
        if kept < 1.0 - 1e-9 {
            paragraphs.push(format!(
                "The survey is restricted to these {} options ({:.1} % of its answers) and renormalized.",
                options.len(),
                100.0 * kept
            ));
        }
        survey_row = Some(r.clone());
        rows.push((
            cx.reference.name.clone(),
            cx.respondents_text(&cx.all_scope),
            r,
            false,
        ));
        colors.push(SURVEY);
    }
    let mut table = Table {
        header: std::iter::once("distribution".to_string())
            .chain(["n".to_string()])
            .chain(options.iter().cloned())
            .chain(["H_norm".to_string(), "TV to survey".to_string()])
            .collect(),
        rows: vec![],
    };
    for (name, n, d, pools_years) in &rows {
        // a ψ pooling several year settings is not scored against one year's survey
        let tv = survey_row
            .as_ref()
            .filter(|_| !pools_years)
            .and_then(|r| total_variation(d, r).ok())
            .unwrap_or(f64::NAN);
        table.rows.push(
            [name.clone(), n.trim_start_matches("n = ").to_string()]
                .into_iter()
                .chain(d.iter().map(|v| f(*v)))
                .chain([f(normalized_entropy(d).unwrap_or(f64::NAN)), f(tv)])
                .collect(),
        );
    }
    let bars: Vec<Bars> = rows
        .iter()
        .zip(colors)
        .map(|((name, n, d, _), color)| {
            let name = if n.is_empty() {
                name.clone()
            } else {
                format!("{name} ({n})")
            };
            Bars::new(name, d.clone(), color)
        })
        .collect();
    // ψ per language of the prompt variants, beside the pooled ψ above
    for s in &same {
        for (lang, rows, d) in &s.by_language {
            let tv = survey_row
                .as_ref()
                .filter(|_| s.years.len() < 2)
                .and_then(|r| total_variation(d, r).ok())
                .unwrap_or(f64::NAN);
            table.rows.push(
                [
                    format!("{} · {lang} prompts", cx.legend_name(s)),
                    format!("{rows} rows"),
                ]
                .into_iter()
                .chain(d.iter().map(|v| f(*v)))
                .chain([f(normalized_entropy(d).unwrap_or(f64::NAN)), f(tv)])
                .collect(),
            );
        }
    }
    if same.len() < cx.series.len() {
        paragraphs.push(format!(
            "{} series without an overall distribution over these options (e.g. question-level evaluations, which the entropy section and the task leaderboards cover) are left out of this figure.",
            cx.series.len() - same.len()
        ));
    }
    json["distributions"] = json!({
        "options": options,
        "series": rows.iter().map(|(name, n, d, _)| json!({"name": name, "n": n, "distribution": d})).collect::<Vec<_>>(),
    });
    sections.push(Section {
        id: "distributions",
        title: "Party distributions: models vs survey".into(),
        paragraphs,
        table: Some(table),
        how_to_read: Some(HOW_DISTRIBUTIONS.into()),
        figure: Some(fig(
            "distributions",
            figures::grouped_columns(
                "Distribution over options, everyone",
                "share",
                &options,
                &bars,
            ),
        )?),
    });
    Ok(sections)
}

/// Mean H_norm of distributions; NaN when there are none.
fn mean_entropy<'a>(dists: impl Iterator<Item = &'a Vec<f64>>) -> f64 {
    let h: Vec<f64> = dists.filter_map(|d| normalized_entropy(d).ok()).collect();
    if h.is_empty() {
        f64::NAN
    } else {
        h.iter().sum::<f64>() / h.len() as f64
    }
}

/// "0.852 (50)": a value with the n behind it.
fn with_n(value: f64, n: Option<usize>) -> String {
    match (value.is_finite(), n) {
        (true, Some(n)) => format!("{} ({n})", f(value)),
        _ => f(value),
    }
}

/// (2) Normalized entropy per model and survey group (the voting question's series only;
/// question-level tasks get their own section).
pub(super) fn entropy(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let members: Vec<&&Series> = cx
        .series
        .iter()
        .filter(|s| s.pooled.keys().any(|sc| sc.0 != "all"))
        .collect();
    if members.is_empty() {
        return Ok(vec![]);
    }
    let scopes: Vec<(String, String)> = members
        .iter()
        .flat_map(|s| s.pooled.keys().cloned())
        .filter(|s| s.0 != "all")
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let options = members[0].options.clone();
    let survey_h = |scope: &(String, String)| {
        cx.ref_by_scope
            .get(scope)
            .and_then(|c| align_reference(c, &options))
            .and_then(|(r, _)| normalized_entropy(&r).ok())
    };
    // the survey's n beside each group's name
    let categories: Vec<String> = scopes
        .iter()
        .map(|sc| match cx.reference.respondents.get(sc) {
            Some(n) => format!("{} (survey n = {n})", scope_name(sc)),
            None => scope_name(sc),
        })
        .collect();
    let entropy_bootstrap = Bootstrap {
        resamples: cx.o.bootstrap.max(1),
        level: cx.o.level,
        seed: cx.o.seed,
    };
    // H_norm with intervals where the units are known (personas of a latent run; respondents
    // of a respondent-level survey), and model − survey with its interval and p
    let comparisons: Vec<Vec<Option<EntropyComparison>>> = members
        .iter()
        .map(|s| {
            scopes
                .iter()
                .map(|sc| {
                    let model = s.entropy_units.get(sc)?;
                    let survey = cx.reference.units.get(sc)?;
                    compare_entropy(model, survey, entropy_bootstrap).ok()
                })
                .collect()
        })
        .collect();
    let model_intervals: Vec<Vec<Option<Estimate>>> = members
        .iter()
        .zip(&comparisons)
        .map(|(s, row)| {
            scopes
                .iter()
                .zip(row)
                .map(|(sc, c)| match c {
                    Some(c) => Some(c.model),
                    None => entropy_of_units(s.entropy_units.get(sc)?, entropy_bootstrap).ok(),
                })
                .collect()
        })
        .collect();
    let bars: Vec<Bars> = members
        .iter()
        .zip(&model_intervals)
        .map(|(s, intervals)| {
            let values = scopes
                .iter()
                .map(|sc| {
                    s.pooled
                        .get(sc)
                        .and_then(|d| normalized_entropy(d).ok())
                        .unwrap_or(f64::NAN)
                })
                .collect();
            let n = s.n_text(&cx.all_scope);
            let name = if n.is_empty() {
                cx.legend_name(s)
            } else {
                format!("{} ({n} in all)", cx.legend_name(s))
            };
            let mut bars = Bars::new(name, values, cx.color_of(s));
            if intervals.iter().any(Option::is_some) {
                bars.intervals = Some(
                    intervals
                        .iter()
                        .map(|e| e.map_or((f64::NAN, f64::NAN), |e| (e.low, e.high)))
                        .collect(),
                );
            }
            bars
        })
        .collect();
    let marks: Vec<f64> = scopes
        .iter()
        .map(|s| survey_h(s).unwrap_or(f64::NAN))
        .collect();
    let overall = survey_h(&cx.all_scope);
    let any_marks = marks.iter().any(|m| m.is_finite());
    let survey_intervals: Vec<Option<Estimate>> = scopes
        .iter()
        .map(|sc| entropy_of_units(cx.reference.units.get(sc)?, entropy_bootstrap).ok())
        .collect();
    let mut paragraphs = vec![
        "Normalized entropy H/ln N of each group's distribution (1 = uniform over the options, 0 = one option). A model that collapses a group onto one party sits far left of the survey. In the table, each value is followed by its n in parentheses: rows, personas or prompts for a model, respondents for the survey.".to_string(),
    ];
    if let Some(h) = overall {
        paragraphs.push(format!(
            "Dashed line: the survey's entropy for everyone, {h:.3}."
        ));
    }
    if model_intervals.iter().flatten().any(Option::is_some) {
        paragraphs.push(format!(
            "Whiskers: {:.0} % bootstrap intervals ({} resamples, bias-corrected) that resample personas (all of a persona's prompt variants together); the next section tests each against the survey.",
            100.0 * entropy_bootstrap.level,
            entropy_bootstrap.resamples
        ));
    }
    let mut table = Table {
        header: std::iter::once("group".to_string())
            .chain(members.iter().map(|s| cx.legend_name(s)))
            .chain(any_marks.then(|| cx.reference.name.clone()))
            .collect(),
        rows: vec![],
    };
    for (i, sc) in scopes.iter().enumerate() {
        table.rows.push(
            std::iter::once(scope_name(sc))
                .chain(
                    members
                        .iter()
                        .zip(&bars)
                        .map(|(s, b)| with_n(b.values[i], s.sizes.get(sc).copied())),
                )
                .chain(
                    any_marks.then(|| with_n(marks[i], cx.reference.respondents.get(sc).copied())),
                )
                .collect(),
        );
    }
    // the test against the survey: one narrow row per (model, group), everyone first
    let ci = |e: &Estimate| format!("{} [{}, {}]", f(e.value), f(e.low), f(e.high));
    let mut tests = Table {
        header: [
            "model",
            "group",
            "model H_norm",
            "survey H_norm",
            "Δ model − survey",
            "p",
        ]
        .map(String::from)
        .to_vec(),
        rows: vec![],
    };
    let mut test_paragraphs = Vec::new();
    let mut everyone_tests: Vec<Option<EntropyComparison>> = vec![None; members.len()];
    for (m, s) in members.iter().enumerate() {
        everyone_tests[m] = s
            .entropy_units
            .get(&cx.all_scope)
            .zip(cx.reference.units.get(&cx.all_scope))
            .and_then(|(model, people)| compare_entropy(model, people, entropy_bootstrap).ok());
        let rows = std::iter::once((scope_name(&cx.all_scope), everyone_tests[m])).chain(
            scopes
                .iter()
                .zip(&comparisons[m])
                .map(|(sc, c)| (scope_name(sc), *c)),
        );
        let (mut lower, mut higher) = (Vec::new(), Vec::new());
        for (group, c) in rows {
            let Some(c) = c else { continue };
            if c.p < 0.05 {
                if c.difference.value < 0.0 {
                    lower.push(group.clone());
                } else {
                    higher.push(group.clone());
                }
            }
            tests.rows.push(vec![
                cx.legend_name(s),
                group,
                ci(&c.model),
                ci(&c.survey),
                format!(
                    "{:+.3} [{:+.3}, {:+.3}]",
                    c.difference.value, c.difference.low, c.difference.high
                ),
                format!("{:.3}", c.p),
            ]);
        }
        if !lower.is_empty() || !higher.is_empty() || comparisons[m].iter().any(Option::is_some) {
            test_paragraphs.push(format!(
                "{}: less dispersed than the survey (p < 0.05) in {}; more dispersed in {}; the others are not told apart at this n.",
                cx.legend_name(s),
                if lower.is_empty() { "no group".into() } else { lower.join(", ") },
                if higher.is_empty() { "no group".into() } else { higher.join(", ") },
            ));
        }
    }
    let optional =
        |v: &[f64]| -> Vec<Option<f64>> { v.iter().map(|x| x.is_finite().then_some(*x)).collect() };
    json["entropy"] = json!({
        "groups": scopes.iter().map(scope_name).collect::<Vec<_>>(),
        "series": members.iter().zip(&bars).enumerate().map(|(m, (s, b))| json!({
            "name": s.name,
            "h_norm": optional(&b.values),
            "interval": model_intervals[m],
            "n": scopes.iter().map(|sc| s.sizes.get(sc)).collect::<Vec<_>>(),
            "unit": s.size_unit,
            "versus_survey": comparisons[m],
            "everyone_versus_survey": everyone_tests[m],
        })).collect::<Vec<_>>(),
        "survey": optional(&marks),
        "survey_interval": survey_intervals,
        "survey_n": scopes.iter().map(|sc| cx.reference.respondents.get(sc)).collect::<Vec<_>>(),
        "survey_all": overall,
    });
    let survey_mark = format!("{}, same group", cx.reference.name);
    let mut sections = vec![Section {
        id: "entropy",
        how_to_read: Some(HOW_ENTROPY.into()),
        title: "Normalized entropy per group".into(),
        paragraphs,
        table: Some(table),
        figure: Some(fig(
            "entropy",
            figures::grouped_rows(
                "Normalized entropy per group",
                "H / ln N",
                &categories,
                &bars,
                any_marks.then_some((survey_mark.as_str(), marks.as_slice())),
                overall.map(|h| ("survey, everyone", h)),
            ),
        )?),
    }];
    if !tests.rows.is_empty() {
        let mut paragraphs = vec![format!(
            "The latent-space study's question: is ψ more or less dispersed than the survey? H_norm of each model's ψ with a {:.0} % bootstrap interval that resamples personas (all of a persona's prompt variants together), the survey's resampling respondents with their weights, and Δ = model − survey with its interval from {} independent resamples of both and the two-sided bootstrap p of no difference.",
            100.0 * entropy_bootstrap.level,
            entropy_bootstrap.resamples
        )];
        paragraphs.extend(test_paragraphs);
        sections.push(Section {
            id: "entropy-survey",
            how_to_read: None,
            title: "Normalized entropy against the survey, with intervals and a test".into(),
            paragraphs,
            table: Some(tests),
            figure: None,
        });
    }
    Ok(sections)
}

/// (2b) Normalized entropy of question-level tasks (OpinionQA, a question file), each task's
/// groups against the mean entropy of their questions' own references.
pub(super) fn entropy_tasks(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let members: Vec<&&Series> = cx.series.iter().filter(|s| !s.own.is_empty()).collect();
    if members.is_empty() {
        return Ok(vec![]);
    }
    let task_of = |s: &Series| {
        s.labels
            .get("dataset")
            .cloned()
            .unwrap_or_else(|| "questions".into())
    };
    // (task, group) rows, each task's groups together
    let rows: Vec<(String, String)> = members
        .iter()
        .flat_map(|s| s.own.iter().map(move |c| (task_of(s), c.group.clone())))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let questions_of = |task: &str, group: &str| -> usize {
        members
            .iter()
            .filter(|s| task_of(s) == task)
            .flat_map(|s| s.own.iter().filter(|c| c.group == group))
            .map(|c| c.question.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    };
    let categories: Vec<String> = rows
        .iter()
        .map(|(t, g)| format!("{t}: {g} ({})", count(questions_of(t, g), "question")))
        .collect();
    let bars: Vec<Bars> = members
        .iter()
        .map(|s| {
            let values = rows
                .iter()
                .map(|(t, g)| {
                    if *t != task_of(s) {
                        return f64::NAN;
                    }
                    mean_entropy(s.own.iter().filter(|c| &c.group == g).map(|c| &c.predicted))
                })
                .collect();
            Bars::new(cx.legend_name(s), values, cx.color_of(s))
        })
        .collect();
    // the references of each (task, group), each question once
    let marks: Vec<f64> = rows
        .iter()
        .map(|(t, g)| {
            let refs: BTreeMap<&str, &Vec<f64>> = members
                .iter()
                .filter(|s| task_of(s) == *t)
                .flat_map(|s| s.own.iter().filter(|c| &c.group == g))
                .map(|c| (c.question.as_str(), &c.reference))
                .collect();
            mean_entropy(refs.into_values())
        })
        .collect();
    let mut table = Table {
        header: [
            "task",
            "group",
            "questions",
            "distribution",
            "mean H_norm",
            "reference mean H_norm",
        ]
        .map(String::from)
        .to_vec(),
        rows: vec![],
    };
    for (i, (t, g)) in rows.iter().enumerate() {
        for (s, b) in members.iter().zip(&bars) {
            if b.values[i].is_finite() {
                table.rows.push(vec![
                    t.clone(),
                    g.clone(),
                    questions_of(t, g).to_string(),
                    cx.legend_name(s),
                    f(b.values[i]),
                    f(marks[i]),
                ]);
            }
        }
    }
    json["entropy_tasks"] = json!({
        "groups": rows.iter().map(|(t, g)| format!("{t}: {g}")).collect::<Vec<_>>(),
        "series": members.iter().zip(&bars).map(|(s, b)| json!({
            "name": s.name,
            "mean_h_norm": b.values.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "reference": marks.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>(),
    });
    Ok(vec![Section {
        id: "entropy-tasks",
        how_to_read: Some(HOW_ENTROPY_TASKS.into()),
        title: "Normalized entropy per task: each question against its own reference".into(),
        paragraphs: vec!["Question-level evaluations (`probe eval` on OpinionQA or a question file), per task and group: the mean normalized entropy of the predicted distributions over the group's questions, beside the mean over the same questions' reference distributions (ticks).".into()],
        table: Some(table),
        figure: Some(fig(
            "entropy-tasks",
            figures::grouped_rows(
                "Mean normalized entropy per task and group",
                "mean H / ln N over questions",
                &categories,
                &bars,
                Some(("reference, same questions", marks.as_slice())),
                None,
            ),
        )?),
    }])
}
