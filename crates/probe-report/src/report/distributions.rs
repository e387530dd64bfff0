//! The report's first sections: the pooled distributions beside the survey, and entropy per group.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::*;

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
    let mut bars: Vec<Bars> = same
        .iter()
        .filter_map(|s| {
            Some(Bars {
                name: cx.legend_name(s),
                values: s.pooled.get(&cx.all_scope)?.clone(),
                color: cx.color_of(s),
                intervals: None,
            })
        })
        .collect();
    let mut paragraphs = vec![
        "Each model's distribution pooled over personas and prompt variants (ψ for the latent method), next to the survey.".to_string(),
    ];
    for s in &same {
        if let Some(p) = &s.provenance {
            paragraphs.push(format!("{}: {p}.", cx.legend_name(s)));
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
        bars.push(Bars {
            name: cx.reference.name.clone(),
            values: r,
            color: SURVEY,
            intervals: None,
        });
    }
    let mut table = Table {
        header: std::iter::once("distribution".to_string())
            .chain(options.iter().cloned())
            .chain(["H_norm".to_string(), "TV to survey".to_string()])
            .collect(),
        rows: vec![],
    };
    for b in &bars {
        // a ψ pooling several year settings is not scored against one year's survey
        let pools_years = same
            .iter()
            .any(|s| cx.legend_name(s) == b.name && s.years.len() >= 2);
        let tv = survey_row
            .as_ref()
            .filter(|_| !pools_years)
            .and_then(|r| total_variation(&b.values, r).ok())
            .unwrap_or(f64::NAN);
        table.rows.push(
            std::iter::once(b.name.clone())
                .chain(b.values.iter().map(|v| f(*v)))
                .chain([f(normalized_entropy(&b.values).unwrap_or(f64::NAN)), f(tv)])
                .collect(),
        );
    }
    // ψ per language of the prompt variants, beside the pooled ψ above
    for s in &same {
        for (lang, rows, d) in &s.by_language {
            let tv = survey_row
                .as_ref()
                .filter(|_| s.years.len() < 2)
                .and_then(|r| total_variation(d, r).ok())
                .unwrap_or(f64::NAN);
            table.rows.push(
                std::iter::once(format!(
                    "{} · {lang} prompts ({rows} rows)",
                    cx.legend_name(s)
                ))
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
        "series": bars.iter().map(|b| json!({"name": b.name, "distribution": b.values})).collect::<Vec<_>>(),
    });
    sections.push(Section {
        id: "distributions",
        title: "Party distributions: models vs survey".into(),
        paragraphs,
        table: Some(table),
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

/// (2) Normalized entropy per model and group.
pub(super) fn entropy(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    let scopes: BTreeSet<(String, String)> = cx
        .series
        .iter()
        .flat_map(|s| s.pooled.keys().cloned())
        .filter(|s| s.0 != "all")
        .collect();
    let scopes: Vec<(String, String)> = scopes.into_iter().collect();
    // question-level groups: mean H_norm over the group's questions
    let own_groups: Vec<String> = cx
        .series
        .iter()
        .flat_map(|s| s.own.iter().map(|c| c.group.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mean_h = |cells: &mut dyn Iterator<Item = &Vec<f64>>| -> f64 {
        let h: Vec<f64> = cells.filter_map(|d| normalized_entropy(d).ok()).collect();
        if h.is_empty() {
            f64::NAN
        } else {
            h.iter().sum::<f64>() / h.len() as f64
        }
    };
    let categories: Vec<String> = scopes
        .iter()
        .map(scope_name)
        .chain(
            own_groups
                .iter()
                .map(|g| format!("{g} (mean over questions)")),
        )
        .collect();
    let bars: Vec<Bars> = cx
        .series
        .iter()
        .map(|s| Bars {
            name: cx.legend_name(s),
            values: scopes
                .iter()
                .map(|sc| {
                    s.pooled
                        .get(sc)
                        .and_then(|d| normalized_entropy(d).ok())
                        .unwrap_or(f64::NAN)
                })
                .chain(own_groups.iter().map(|g| {
                    mean_h(&mut s.own.iter().filter(|c| &c.group == g).map(|c| &c.predicted))
                }))
                .collect(),
            color: cx.color_of(s),
            intervals: None,
        })
        .collect();
    // the survey side of the question-level groups, each (group, question) once
    let own_reference: BTreeMap<(String, String), &Vec<f64>> = cx
        .series
        .iter()
        .flat_map(|s| s.own.iter())
        .map(|c| ((c.group.clone(), c.question.clone()), &c.reference))
        .collect();
    let options = cx
        .series
        .iter()
        .find(|s| !s.options.is_empty())
        .map(|s| s.options.clone())
        .unwrap_or_default();
    let survey_h = |scope: &(String, String)| {
        cx.ref_by_scope
            .get(scope)
            .and_then(|c| align_reference(c, &options))
            .and_then(|(r, _)| normalized_entropy(&r).ok())
    };
    let marks: Vec<f64> = scopes
        .iter()
        .map(|s| survey_h(s).unwrap_or(f64::NAN))
        .chain(own_groups.iter().map(|g| {
            mean_h(
                &mut own_reference
                    .iter()
                    .filter(|((group, _), _)| group == g)
                    .map(|(_, r)| *r),
            )
        }))
        .collect();
    let overall = survey_h(&cx.all_scope);
    let mut paragraphs = vec![
        "Normalized entropy H/ln N of each group's distribution (1 = uniform over the options, 0 = one option). A model that collapses a group onto one party sits far left of the survey.".to_string(),
    ];
    if let Some(h) = overall {
        paragraphs.push(format!(
            "Dashed line: the survey's entropy for everyone, {h:.3}."
        ));
    }
    let any_marks = marks.iter().any(|m| m.is_finite());
    // question-level cells bring their own survey references
    let survey_name = if cx.ref_by_scope.is_empty() && !own_reference.is_empty() {
        "survey (the cells' own references)".to_string()
    } else {
        cx.reference.name.clone()
    };
    if any_marks {
        paragraphs.push("Dark ticks: the survey's entropy in the same group.".into());
    }
    let mut table = Table {
        header: std::iter::once("group".to_string())
            .chain(bars.iter().map(|b| b.name.clone()))
            .chain(any_marks.then(|| survey_name.clone()))
            .collect(),
        rows: vec![],
    };
    for (i, c) in categories.iter().enumerate() {
        table.rows.push(
            std::iter::once(c.clone())
                .chain(bars.iter().map(|b| f(b.values[i])))
                .chain(any_marks.then(|| f(marks[i])))
                .collect(),
        );
    }
    json["entropy"] = json!({
        "groups": categories,
        "series": bars.iter().map(|b| json!({"name": b.name, "h_norm": b.values.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "survey": marks.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>(),
        "survey_all": overall,
    });
    sections.push(Section {
        id: "entropy",
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
                any_marks.then_some((survey_name.as_str(), marks.as_slice())),
                overall.map(|h| ("survey, everyone", h)),
            ),
        )?),
    });
    Ok(sections)
}
