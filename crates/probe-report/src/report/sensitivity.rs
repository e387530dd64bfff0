//! Prompt sensitivity (W against H_norm, per variant) and the negative-scaling-factor policies.

use serde_json::{json, Value};

use super::*;

/// A row of the sensitivity table: series, points, slope [CI], intercept, r, mean W.
fn regression_row(
    series: String,
    points: String,
    fit: Option<Regression>,
    y: &[f64],
) -> Vec<String> {
    vec![
        series,
        points,
        fit.map(|r| format!("{:.4} [{:.4}, {:.4}]", r.slope, r.slope_low, r.slope_high))
            .unwrap_or_else(|| "–".into()),
        fit.map(|r| f(r.intercept)).unwrap_or_else(|| "–".into()),
        fit.map(|r| f(r.r)).unwrap_or_else(|| "–".into()),
        f(y.iter().sum::<f64>() / y.len() as f64),
    ]
}

/// Deterministic thinning to at most `max` points (every ⌈n/max⌉-th).
fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let step = points.len().div_ceil(max.max(1)).max(1);
    points.iter().step_by(step).copied().collect()
}

/// (3) Prompt sensitivity: W(ψ_j, ψ̄) against H_norm(ψ̄), and each variant's population ψ.
pub(super) fn sensitivity(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    let mut scatters = Vec::new();
    let mut table = Table {
        header: vec![
            "series".into(),
            "points".into(),
            "slope [CI]".into(),
            "intercept".into(),
            "r".into(),
            "mean W".into(),
        ],
        rows: vec![],
    };
    let mut variant_table = Table {
        header: vec![
            "series".into(),
            "variant".into(),
            "W(ψ_j, ψ̄)".into(),
            "H_norm(ψ_j)".into(),
        ],
        rows: vec![],
    };
    let mut fits = Vec::new();
    for s in &cx.series {
        let (x, y): (Vec<f64>, Vec<f64>) = s.sensitivity.iter().copied().unzip();
        let fit: Option<Regression> = linear_regression(&x, &y, cx.o.level).ok();
        if !s.sensitivity.is_empty() {
            table.rows.push(regression_row(
                cx.legend_name(s),
                format!("{} {}s", s.sensitivity.len(), s.sensitivity_unit),
                fit,
                &y,
            ));
            scatters.push(Scatter {
                name: format!(
                    "{} ({})",
                    cx.legend_name(s),
                    count(s.sensitivity.len(), s.sensitivity_unit)
                ),
                color: cx.color_of(s),
                points: thin(&s.sensitivity, cx.o.max_points),
                fit,
            });
        }
        fits.push(json!({"series": s.name, "points": s.sensitivity.len(), "unit": s.sensitivity_unit, "regression": fit}));
        if !s.sensitivity_persona.is_empty() {
            // the second view: per persona, labelled as such and kept out of the figure
            let (x, y): (Vec<f64>, Vec<f64>) = s.sensitivity_persona.iter().copied().unzip();
            let fit: Option<Regression> = linear_regression(&x, &y, cx.o.level).ok();
            table.rows.push(regression_row(
                format!("{} (per persona, second view)", cx.legend_name(s)),
                format!("{} personas", s.sensitivity_persona.len()),
                fit,
                &y,
            ));
            fits.push(json!({"series": s.name, "points": s.sensitivity_persona.len(), "unit": "persona (second view)", "regression": fit}));
        }
        if s.variants.len() >= 2 {
            let dists: Vec<Vec<f64>> = s.variants.iter().map(|(_, d)| d.clone()).collect();
            let bary = arithmetic_barycenter(&dists, None)?;
            for (name, d) in &s.variants {
                variant_table.rows.push(vec![
                    cx.legend_name(s),
                    name.clone(),
                    f(total_variation(d, &bary)?),
                    f(normalized_entropy(d)?),
                ]);
            }
        }
    }
    json["sensitivity"] = json!(fits);
    let mut paragraphs = vec![
        "Prompt sensitivity as in the latent-space voting study: for each group g (an attribute value), the distributions ψ_{j,g} of its prompt variants j, their barycenter ψ̄_g (arithmetic mean), x = H_norm(ψ_g) and y = mean_j W(ψ_{j,g}, ψ̄_g), with every ψ the ratio of sums `probe scale` computes. Parties are unordered, so W uses the 0/1 ground cost, which makes it the total variation. One line per series: ordinary least squares over all points (the figure draws at most a subsample). Question-level evaluations give one point per cell. The per-persona rows (each persona's own variants, from its rows' normalized distributions) are a second view, in the table only.".to_string(),
    ];
    if scatters.is_empty() {
        paragraphs
            .push("No series has two or more prompt variants per persona: nothing to plot.".into());
    }
    sections.push(Section {
        id: "sensitivity",
        how_to_read: Some(HOW_SENSITIVITY.into()),
        title: "Prompt sensitivity vs entropy".into(),
        paragraphs,
        table: Some(table),
        figure: Some(fig(
            "sensitivity",
            figures::scatter(
                "Prompt sensitivity W vs normalized entropy",
                "H_norm of the variants' barycenter",
                "mean W(ψ_j, ψ̄)",
                &scatters,
            ),
        )?),
    });
    if !variant_table.rows.is_empty() {
        sections.push(Section {
            id: "variants",
            how_to_read: None,
            title: "Population distribution per prompt variant".into(),
            paragraphs: vec!["W(ψ_j, ψ̄) of every prompt variant's population-level distribution to their barycenter.".into()],
            table: Some(variant_table),
            figure: None,
        });
    }
    Ok(sections)
}

/// (3c) Negative scaling factors: does the policy, rather than the model, decide ψ?
pub(super) fn negative_factors(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    let mut table = Table {
        header: [
            "distribution",
            "party",
            "negative factors",
            "ψ clip",
            "ψ shift",
            "ψ softmax",
        ]
        .map(String::from)
        .to_vec(),
        rows: vec![],
    };
    let mut warnings = Vec::new();
    let mut out = Vec::new();
    for s in cx
        .series
        .iter()
        .filter(|s| !s.policy_sensitivity.is_empty())
    {
        for (party, share, psi) in &s.policy_sensitivity {
            let cell = |x: &Option<f64>| x.map_or("–".to_string(), f);
            table.rows.push(vec![
                cx.legend_name(s),
                party.clone(),
                format!("{:.0} %", 100.0 * share),
                cell(&psi[0]),
                cell(&psi[1]),
                cell(&psi[2]),
            ]);
            out.push(
                json!({"series": s.name, "party": party, "negative_share": share,
                            "psi": {"clip": psi[0], "shift": psi[1], "softmax": psi[2]}}),
            );
            if *share >= 0.5 {
                warnings.push(format!(
                    "{}: {party}'s scaling factor is negative in {:.0} % of rows, so the negative-factor policy, not the model, sets most of its ψ (clip {}, shift {}).",
                    cx.legend_name(s),
                    100.0 * share,
                    cell(&psi[0]),
                    cell(&psi[1])
                ));
            }
        }
    }
    if !table.rows.is_empty() {
        json["negative_factors"] = json!(out);
        let mut paragraphs = vec!["A scaling factor m_p can be negative (the vectors' coefficients are), and ψ needs m' ≥ 0: `clip` (the default) sets negatives to 0, `shift` subtracts the run's smallest factor, `softmax` normalizes each row by exp. Per party: the share of rows with a negative factor, and ψ over all rows under each policy. Where the columns disagree, the policy decides the result.".to_string()];
        paragraphs.extend(warnings);
        sections.push(Section {
            id: "negative-factors",
            how_to_read: None,
            title: "Negative scaling factors and ψ under each policy".into(),
            paragraphs,
            table: Some(table),
            figure: None,
        });
    }
    Ok(sections)
}
