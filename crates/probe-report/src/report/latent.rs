//! The latent side's evidence (probe accuracy per layer, chance levels) and what went into the
//! evaluations (units, failures, parse failures).

use probe_metrics::permutation::Verdict;
use serde_json::{json, Value};

use super::*;

/// (5) Probe accuracy per layer.
pub(super) fn probe_accuracy(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    let mut lines = Vec::new();
    let mut table = Table {
        header: vec![
            "run".into(),
            "layer".into(),
            "per-layer probes".into(),
            "shared probe".into(),
        ],
        rows: vec![],
    };
    // the run's name only where several runs share the figure
    let run_prefix = |c: &ProbeCurves| {
        if cx.curves.len() > 1 {
            format!("{} · ", c.run)
        } else {
            String::new()
        }
    };
    for (i, c) in cx.curves.iter().enumerate() {
        let n = if c.prompts > 0 {
            format!(" ({}, {} folds)", count(c.prompts, "prompt"), c.folds)
        } else {
            String::new()
        };
        let pts = |v: &[Option<f64>]| -> Vec<(f64, f64)> {
            c.layers
                .iter()
                .zip(v)
                .filter_map(|(l, a)| Some((*l as f64, (*a)?)))
                .collect()
        };
        let per_layer = pts(&c.per_layer);
        let shared = pts(&c.shared);
        if !per_layer.is_empty() {
            lines.push((
                format!("{}per-layer probes{n}", run_prefix(c)),
                figures::color(2 * i),
                per_layer,
            ));
        }
        if !shared.is_empty() {
            lines.push((
                format!("{}shared probe{n}", run_prefix(c)),
                figures::color(2 * i + 1),
                shared,
            ));
        }
        for (k, l) in c.layers.iter().enumerate() {
            table.rows.push(vec![
                c.run.clone(),
                l.to_string(),
                c.per_layer[k].map(f).unwrap_or_else(|| "–".into()),
                c.shared[k].map(f).unwrap_or_else(|| "–".into()),
            ]);
        }
    }
    json["probe_accuracy"] = json!(cx.curves);
    let mut paragraphs = vec!["Cross-validated balanced accuracy of the party-vs-rest probes per layer, mean over parties (probe train's folds). Dashed line: chance (0.5).".to_string()];
    if cx.curves.is_empty() {
        paragraphs.push("No run directory has a probes.json.".into());
    }
    sections.push(Section {
        id: "probe-accuracy",
        how_to_read: Some(HOW_PROBES.into()),
        title: "Probe accuracy per layer".into(),
        paragraphs,
        table: Some(table),
        figure: Some(fig(
            "probe-accuracy",
            figures::lines(
                "Probe balanced accuracy per layer",
                "layer",
                "balanced accuracy",
                &lines,
                Some(("chance", 0.5)),
            ),
        )?),
    });
    Ok(sections)
}

/// (5b) Chance levels of the latent results.
pub(super) fn chance(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    let mut table = Table {
        header: [
            "run",
            "party",
            "probe bal.acc",
            "shuffled labels",
            "probe verdict",
            "selection mean cos",
            "vs random (z, p)",
            "vs own shuffled probes (z, p)",
            "selection verdict",
        ]
        .map(String::from)
        .to_vec(),
        rows: vec![],
    };
    let mut warnings = Vec::new();
    let mut undetermined = Vec::new();
    for run in cx.runs {
        for c in &run.chance {
            let opt = |x: Option<f64>| x.map_or("–".to_string(), f);
            let zp = |t: Option<(f64, f64)>| {
                t.map_or("–".to_string(), |(z, p)| format!("{z:+.1}, {p:.3}"))
            };
            table.rows.push(vec![
                run.model.clone(),
                c.party.clone(),
                opt(c.accuracy.map(|a| a.0)),
                c.accuracy
                    .map_or("–".into(), |(_, m, s)| format!("{} ± {}", f(m), f(s))),
                c.accuracy_verdict.clone().unwrap_or_else(|| "–".into()),
                opt(c.selection),
                zp(c.random),
                zp(c.shuffled),
                c.verdict.clone().unwrap_or_else(|| "–".into()),
            ]);
            match c.verdict_kind {
                Some(Verdict::NotAbove) => warnings.push(c.party.clone()),
                Some(Verdict::Undetermined) => undetermined.push(c.party.clone()),
                _ => {}
            }
        }
    }
    if !table.rows.is_empty() {
        json["chance"] = json!(cx
            .runs
            .iter()
            .map(|r| json!({"run": r.model, "parties": r.chance}))
            .collect::<Vec<_>>());
        let mut paragraphs = vec!["Latent findings beside the level chance reaches. Probe accuracy: the shared probe's cross-validated balanced accuracy, and the same training on party labels shuffled within each statement (mean ± sd over seeds). Value vectors: the mean cosine of a party's joint top-k selection with its probe direction, against the same statistic for random directions and for the directions of the party's own label-shuffled probes (z-score and permutation p-value). A verdict is \"above chance\" when p < 0.05 against every null, \"not above chance\" when a null that could give p < 0.05 did not, and \"undetermined\" when a null is too small to give p < 0.05 at all (its smallest p is 1/(n+1): 20 shuffled seeds or more are needed).".to_string()];
        if !warnings.is_empty() {
            paragraphs.push(format!(
                "Not above chance: {}. Their value vectors, and the ψ built from them, may reflect no party signal.",
                warnings.join(", ")
            ));
        }
        if !undetermined.is_empty() {
            paragraphs.push(format!(
                "Undetermined: {}. A null was too small to give p < 0.05; train with `--null-seeds 20` or more to decide.",
                undetermined.join(", ")
            ));
        }
        sections.push(Section {
            id: "chance",
            how_to_read: None,
            title: "Chance levels of the latent results".into(),
            paragraphs,
            table: Some(table),
            figure: None,
        });
    }
    Ok(sections)
}

/// What went into the evaluations: units, failures and parse failures per setting.
pub(super) fn eval_tally(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    let mut table = Table {
        header: vec![
            "run".into(),
            "evaluation".into(),
            "method".into(),
            "steering".into(),
            "units".into(),
            "failed units".into(),
            "parse failures".into(),
            "parse failure rate".into(),
        ],
        rows: vec![],
    };
    for r in cx.runs {
        for t in &r.evals {
            table.rows.push(vec![
                r.model.clone(),
                t.eval.clone(),
                t.method.clone(),
                t.steering.clone(),
                t.units.to_string(),
                t.failed_units.to_string(),
                t.parse_failures.to_string(),
                t.parse_failure_rate.map_or("–".into(), f),
            ]);
        }
    }
    if !table.rows.is_empty() {
        json["eval_tally"] = json!(cx
            .runs
            .iter()
            .map(|r| json!({"run": r.model, "settings": r.evals}))
            .collect::<Vec<_>>());
        let failed: u64 = cx
            .runs
            .iter()
            .flat_map(|r| &r.evals)
            .map(|t| t.failed_units)
            .sum();
        let mut paragraphs = vec!["What went into each evaluation's numbers: per method and steering, the (group, question) units asked, the units that produced no distribution (every retry failed to parse; they are left out of every mean above, not counted as zero), and the answers that could not be parsed (the parse failure rate is per attempt).".to_string()];
        if failed > 0 {
            paragraphs.push(format!(
                "{failed} unit(s) produced no distribution: the scores of those settings rest on fewer units than asked."
            ));
        }
        sections.push(Section {
            id: "eval-tally",
            how_to_read: None,
            title: "Evaluations: units, failures and parse failures".into(),
            paragraphs,
            table: Some(table),
            figure: None,
        });
    }
    Ok(sections)
}
