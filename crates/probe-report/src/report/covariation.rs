//! Co-variation of party shares across groups, model beside survey.

use serde_json::{json, Value};

use super::*;

/// Party × party Pearson correlations across groups; NaN where a party does not vary.
fn across_groups(rows: &[Vec<f64>], k: usize) -> CorrelationMatrix {
    let mut values = vec![1.0; k * k];
    for i in 0..k {
        for j in 0..k {
            if i != j {
                let x: Vec<f64> = rows.iter().map(|r| r[i]).collect();
                let y: Vec<f64> = rows.iter().map(|r| r[j]).collect();
                values[i * k + j] = pearson(&x, &y).unwrap_or(f64::NAN);
            }
        }
        let x: Vec<f64> = rows.iter().map(|r| r[i]).collect();
        if pearson(&x, &x).is_err() {
            values[i * k + i] = f64::NAN;
        }
    }
    CorrelationMatrix { n_items: k, values }
}

/// (6) Co-variation of party shares across groups (not the item × item correlation of the
/// respondents, which the representativeness framework means by "correlation structure").
pub(super) fn covariation(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    let mut panels = Vec::new();
    let mut table = Table {
        header: vec![
            "series".into(),
            "groups".into(),
            "mean |Δr|".into(),
            "Frobenius".into(),
            "corr. of corr.".into(),
        ],
        rows: vec![],
    };
    let mut out = Vec::new();
    for s in &cx.series {
        let scopes: Vec<&(String, String)> = s.pooled.keys().filter(|sc| sc.0 != "all").collect();
        if scopes.len() < 3 {
            continue;
        }
        let model_rows: Vec<Vec<f64>> = scopes.iter().map(|sc| s.pooled[*sc].clone()).collect();
        let model = across_groups(&model_rows, s.options.len());
        panels.push(Heatmap {
            title: format!("{} ({})", cx.legend_name(s), count(scopes.len(), "group")),
            labels: s.options.clone(),
            values: model.values.clone(),
        });
        // the survey over the groups it shares with the model
        let shared: Vec<(Vec<f64>, Vec<f64>)> = scopes
            .iter()
            .filter_map(|sc| {
                let (r, _) = align_reference(cx.ref_by_scope.get(*sc)?, &s.options)?;
                Some((s.pooled[*sc].clone(), r))
            })
            .collect();
        if shared.len() >= 3 {
            let (m_rows, r_rows): (Vec<_>, Vec<_>) = shared.into_iter().unzip();
            let m = across_groups(&m_rows, s.options.len());
            let h = across_groups(&r_rows, s.options.len());
            panels.push(Heatmap {
                title: format!("{} (same {} groups)", cx.reference.name, r_rows.len()),
                labels: s.options.clone(),
                values: h.values.clone(),
            });
            let finite = |c: &CorrelationMatrix| c.values.iter().all(|v| v.is_finite());
            if finite(&m) && finite(&h) {
                let d = matrix_distance(&m, &h)?;
                table.rows.push(vec![
                    cx.legend_name(s),
                    r_rows.len().to_string(),
                    f(d.mean_abs_diff),
                    f(d.frobenius),
                    f(d.corr_of_corr),
                ]);
                out.push(json!({"series": s.name, "groups": r_rows.len(), "distance": d, "model": m.values, "survey": h.values}));
            } else {
                out.push(json!({"series": s.name, "groups": r_rows.len(), "distance": null, "model": m.values.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>()}));
            }
        } else {
            out.push(json!({"series": s.name, "groups": scopes.len(), "model": model.values.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>()}));
        }
    }
    json["group_covariation"] = json!(out);
    let mut paragraphs = vec!["Co-variation of party shares across groups: the Pearson correlation, over the groups (attribute values), between two options' shares — which parties draw support from the same groups — for each model and, where the survey has the same groups, for the survey; distances over the option pairs (mean |Δr|, Frobenius norm of the difference, correlation of the correlations).".to_string(),
        "Read with care: shares sum to 1 in every group, so these correlations are compositional and biased negative (with few parties, one party's gain is another's loss), and the groups overlap (every persona is in one group of each attribute), so they are not independent observations. This is not the item × item correlation structure of simulated respondents (\"Beyond marginal distributions\"), which needs individual-level answers.".to_string()];
    if panels.is_empty() {
        paragraphs.push("No series has three or more groups.".into());
    } else if table.rows.is_empty() {
        paragraphs.push("The reference has no group-level data (a respondent CSV gives it), so only the models' matrices are shown.".into());
    }
    sections.push(Section {
        id: "group-covariation",
        how_to_read: Some(HOW_COVARIATION.into()),
        title: "Party shares across groups (compositional co-variation)".into(),
        paragraphs,
        table: (!table.rows.is_empty()).then_some(table),
        figure: Some(fig(
            "group-covariation",
            figures::heatmaps(
                "Co-variation of option shares across groups (compositional)",
                &panels,
            ),
        )?),
    });
    Ok(sections)
}
