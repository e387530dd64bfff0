//! Simulated respondents (`probe simulate`'s `scores.json`): base, persona-prompted and
//! fine-tuned models side by side — marginals (KL, TV), individual agreement (accuracy, RMSE),
//! the item × item correlation structure with heatmaps (human, model, difference), and the
//! temperature sweep as a KL-vs-RMSE curve.

use probe_metrics::paired::Difference;
use probe_metrics::stats::Estimate;
use probe_schema::simulation::{PairedComparison, SplitScores, TemperatureScores};
use serde_json::{json, Value};

use super::*;
use crate::figures::Curve;

/// The scores of one simulation, as `scores.json` holds them.
struct Simulation<'a> {
    name: String,
    items: Vec<String>,
    split: &'a SplitScores,
    /// A baseline scored beside a model (no heatmaps of its own).
    baseline: bool,
    /// The model against each other predictor at this split (`scores.json` `differences`).
    differences: Vec<&'a PairedComparison>,
}

/// A temperature as `scores.json` writes it (`1.0`, `0.5`).
fn temperature(t: f32) -> String {
    serde_json::to_string(&t).unwrap_or_else(|_| t.to_string())
}

/// The held-out part of each simulation: `test` when scored separately, else `all`.
fn simulations<'a>(cx: &Context<'a>) -> Vec<Simulation<'a>> {
    let mut out = Vec::new();
    for run in cx.runs {
        for s in &run.simulations {
            let Some(split) = s
                .splits
                .iter()
                .find(|p| p.split == "test")
                .or_else(|| s.splits.first())
            else {
                continue;
            };
            let steering = if s.persona { "persona" } else { "no persona" };
            out.push(Simulation {
                name: format!("{} · {steering}", s.model),
                items: s.items.clone(),
                split,
                baseline: false,
                differences: s
                    .differences
                    .iter()
                    .filter(|d| d.split == split.split)
                    .collect(),
            });
            // the baselines at the same split; runs of the same respondents share them: once
            for b in &s.baselines {
                let Some(bsplit) = b.splits.iter().find(|p| p.split == split.split) else {
                    continue;
                };
                // a `--versus` run is a simulation of its own, shown where its folder is
                if b.name.ends_with("(--versus)") {
                    continue;
                }
                let same = |o: &Simulation<'_>| {
                    o.name == b.name
                        && o.split.respondents == bsplit.respondents
                        && o.items == s.items
                };
                if !out.iter().any(same) {
                    out.push(Simulation {
                        name: b.name.clone(),
                        items: s.items.clone(),
                        split: bsplit,
                        baseline: true,
                        differences: vec![],
                    });
                }
            }
        }
    }
    out
}

/// Each model against each other predictor by a paired bootstrap over the same respondents.
fn differences(sims: &[Simulation<'_>]) -> Option<Section> {
    let mut table = Table {
        header: [
            "model",
            "versus",
            "split",
            "T",
            "Δ mean KL",
            "p",
            "Δ accuracy",
            "p",
            "Δ RMSE",
            "p",
        ]
        .map(String::from)
        .to_vec(),
        rows: vec![],
    };
    let diff = |d: Option<&Difference>| -> (String, String) {
        (
            ci(d.map(|d| &d.difference)),
            d.and_then(|d| d.p)
                .map_or("—".into(), |p| format!("{p:.3}")),
        )
    };
    for sim in sims {
        for d in &sim.differences {
            let (kl, kl_p) = diff(Some(&d.differences.mean_kl));
            let (acc, acc_p) = diff(Some(&d.differences.mean_accuracy));
            let (rmse, rmse_p) = diff(d.differences.mean_rmse.as_ref());
            table.rows.push(vec![
                sim.name.clone(),
                d.versus.clone(),
                d.split.clone(),
                temperature(d.temperature),
                kl,
                kl_p,
                acc,
                acc_p,
                rmse,
                rmse_p,
            ]);
        }
    }
    (!table.rows.is_empty()).then(|| Section {
        id: "simulation-baselines",
        title: "Simulated respondents against the baselines".into(),
        paragraphs: vec!["Each model minus each other predictor on the same respondents, split and temperature: a negative Δ KL or Δ RMSE and a positive Δ accuracy favour the model. The baselines are fitted on the training respondents only: every twin answering from the item's training marginal, and a multinomial logistic regression on the codebook's demographics; both draw their answers at each temperature as the model's twins do. Brackets: 95 % paired bootstrap over respondents (both tables scored on the same resample); p: two-sided bootstrap p-value of no difference.".into()],
        table: Some(table),
        figure: None,
        how_to_read: Some("A model that does not beat the training marginal knows less about each person than the item's base rates do; one that does not beat the logistic regression adds nothing to what the demographics alone predict.".into()),
    })
}

/// "value [low, high]", or a dash where there is no estimate (RMSE of nominal items).
fn ci(e: Option<&Estimate>) -> String {
    match e {
        Some(e) => format!("{:.3} [{:.3}, {:.3}]", e.value, e.low, e.high),
        None => "—".into(),
    }
}

/// (9) Simulated respondents: one row per simulation and temperature.
pub(super) fn simulation(cx: &Context, json: &mut Value) -> Result<Vec<Section>> {
    let sims = simulations(cx);
    if sims.is_empty() {
        return Ok(vec![]);
    }
    let mut table = Table {
        header: [
            "model",
            "split",
            "n",
            "T",
            "mean KL",
            "mean TV",
            "accuracy",
            "RMSE",
            "corr. |Δr|",
        ]
        .map(String::from)
        .to_vec(),
        rows: vec![],
    };
    let mut lines: Vec<Curve> = Vec::new();
    let mut panels = Vec::new();
    let mut out = Vec::new();
    for (k, sim) in sims.iter().enumerate() {
        let split = sim.split;
        let n = split.respondents;
        let name = split.split.as_str();
        table.rows.push(vec![
            sim.name.clone(),
            name.into(),
            n.to_string(),
            "p (expected)".into(),
            ci(Some(&split.expected.mean_kl)),
            ci(Some(&split.expected.mean_tv)),
            "—".into(),
            "—".into(),
            "—".into(),
        ]);
        let mut curve = Vec::new();
        let temps = &split.temperatures;
        // heatmaps at temperature 1 (the tables' reference), else the first with a structure
        let heat_at = temps
            .iter()
            .position(|t| t.temperature == 1.0 && t.structure.is_some())
            .or_else(|| temps.iter().position(|t| t.structure.is_some()));
        for (ti, t) in temps.iter().enumerate() {
            table.rows.push(vec![
                sim.name.clone(),
                name.into(),
                n.to_string(),
                temperature(t.temperature),
                ci(Some(&t.marginals.mean_kl)),
                ci(Some(&t.marginals.mean_tv)),
                ci(Some(&t.agreement.mean_accuracy)),
                ci(t.agreement.mean_rmse.as_ref()),
                ci(t.structure.as_ref().map(|s| &s.mean_abs_diff)),
            ]);
            if let Some(rmse) = &t.agreement.mean_rmse {
                let kl = t.marginals.mean_kl.value;
                curve.push((rmse.value, kl, format!("T={}", temperature(t.temperature))));
            }
            // heatmaps: human, model, difference (models only)
            if let (true, false, Some(s)) = (heat_at == Some(ti), sim.baseline, &t.structure) {
                let labels: Vec<String> = s
                    .items
                    .iter()
                    .filter_map(|&i| sim.items.get(i).cloned())
                    .collect();
                let (real, model) = (s.real.clone(), s.simulated.clone());
                if panels.is_empty() {
                    panels.push(Heatmap {
                        title: format!("people ({name}, n = {n})"),
                        labels: labels.clone(),
                        values: real.clone(),
                    });
                }
                panels.push(Heatmap {
                    title: format!("{} (T = {})", sim.name, temperature(t.temperature)),
                    labels: labels.clone(),
                    values: model.clone(),
                });
                panels.push(Heatmap {
                    title: format!("{} − people", sim.name),
                    labels,
                    values: model.iter().zip(&real).map(|(m, r)| m - r).collect(),
                });
            }
        }
        if !curve.is_empty() {
            lines.push((sim.name.clone(), figures::color(k), curve));
        }
        out.push(json!({"series": sim.name, "split": sim.split}));
    }
    json["simulation"] = json!(out);
    let mut sections = vec![Section {
        id: "simulation",
        title: "Simulated respondents: marginals, individual answers, correlation structure".into(),
        paragraphs: vec![
            "One simulated twin per real respondent, prompted with the respondent's own demographics (`probe simulate`), scored on the held-out test split when the simulation has one. Mean KL and TV: per item between the real and the simulated answers' marginals, averaged over items (KL(real ‖ simulated), both smoothed by ε); p (expected): the marginal of the option distributions themselves. Accuracy and RMSE: the twin against its own respondent (RMSE on the item's scale, ordinal and numeric items). corr. |Δr|: mean absolute difference between the item × item correlation matrices of the real and the simulated answers. Brackets: 95 % bootstrap over respondents, bias-corrected (the percentile interval shifted by the bootstrap bias, so a plug-in KL is not left outside its own interval). Rows named \"baseline: …\" are predictors fitted on the training respondents and scored by the same code (next section).".into(),
        ],
        table: Some(table),
        figure: (!lines.is_empty())
            .then(|| {
                fig(
                    "simulation-temperature",
                    figures::log_y_curves(
                        "Temperature sweep: marginal KL against individual RMSE",
                        "mean RMSE of the twins' answers",
                        "mean KL of the marginals (log scale)",
                        &lines,
                    ),
                )
            })
            .transpose()?,
        how_to_read: Some("Each line is one model over its sampling temperatures: lower left is better on both. Sampling at a low temperature gives each twin its most probable answer (individual RMSE can fall, but the marginals collapse onto the modal answers and KL rises); a high temperature spreads the answers (the marginals can match while individuals do not) — the trade-off arXiv 2403.20252 describes.".into()),
    }];
    sections.extend(differences(&sims));
    sections.push(per_item(&sims));
    if !panels.is_empty() {
        sections.push(Section {
            id: "simulation-structure",
            title: "Item × item correlation structure of simulated respondents".into(),
            paragraphs: vec!["Pearson correlations between items over respondents (ordinal and numeric items on their scales, binary items as 0/1), people beside each model and the model's difference from the people (\"Beyond marginal distributions\"): a model can match every marginal and still answer items independently of each other.".into()],
            table: None,
            figure: Some(fig(
                "simulation-structure",
                figures::heatmaps("Item correlations: people, models, differences", &panels),
            )?),
            how_to_read: None,
        });
    }
    Ok(sections)
}

/// Per item and model, at temperature 1 (else the first temperature): marginal KL and TV,
/// accuracy and RMSE of the twins.
fn per_item<'a>(sims: &[Simulation<'a>]) -> Section {
    let mut table = Table {
        header: ["item", "model", "T", "KL", "TV", "accuracy", "RMSE"]
            .map(String::from)
            .to_vec(),
        rows: vec![],
    };
    let at = |sim: &Simulation<'a>| -> Option<&'a TemperatureScores> {
        let temps = &sim.split.temperatures;
        temps
            .iter()
            .find(|t| t.temperature == 1.0)
            .or_else(|| temps.first())
    };
    let n_items = sims.iter().map(|s| s.items.len()).max().unwrap_or(0);
    for i in 0..n_items {
        for sim in sims {
            let Some(t) = at(sim) else { continue };
            let m = t.marginals.items.iter().find(|e| e.item == i);
            let a = t.agreement.items.iter().find(|e| e.item == i);
            table.rows.push(vec![
                sim.items.get(i).cloned().unwrap_or_else(|| i.to_string()),
                sim.name.clone(),
                temperature(t.temperature),
                ci(m.map(|m| &m.kl)),
                ci(m.map(|m| &m.tv)),
                ci(a.map(|a| &a.accuracy)),
                ci(a.and_then(|a| a.rmse.as_ref())),
            ]);
        }
    }
    Section {
        id: "simulation-items",
        title: "Simulated respondents item by item".into(),
        paragraphs: vec!["Each item's marginal KL and TV and the twins' accuracy and RMSE (on the item's own scale; nominal items have none), at temperature 1 where it was simulated, with 95 % bootstrap intervals over respondents.".into()],
        table: Some(table),
        figure: None,
        how_to_read: None,
    }
}
