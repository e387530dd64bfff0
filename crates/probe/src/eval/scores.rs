//! What `eval` scores its cells with, written to `tv.json`: for the voting question, TV of
//! the pooled distributions per method × steering against the survey; for question sets with
//! their own references, the benchmark's TV with baselines, log-p with a fitted temperature
//! and the knowledge-to-simulation gap.

use std::path::Path;

use anyhow::Result;
use probe_data::cells::Cell;
use probe_report::compare::{
    baseline_cells, compare, join, own_references, Baseline, CompareOptions, Metric, Pair,
};
use probe_schema::eval::{ScopeTv, SimulationGap, TemperatureScaled};
pub use probe_schema::eval::{TaskTvFile as OwnScores, VoteTv, VoteTvFile};
use probe_schema::psi::Ordered;

/// The scores of one eval run: `tv.json`.
#[derive(Debug)]
pub enum Scores {
    Vote(VoteTvFile),
    Own(OwnScores),
}

/// The tables `probe eval` prints: TV per method × steering; for own references also the
/// baselines, log-p temperature-scaled and the knowledge-to-simulation gap.
impl std::fmt::Display for Scores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scores::Vote(file) => {
                writeln!(
                    f,
                    "{:<12} {:<9} {:>7} {:>10} {:>12}",
                    "method", "steering", "scopes", "TV(all)", "mean TV"
                )?;
                for r in &file.tv {
                    writeln!(
                        f,
                        "{:<12} {:<9} {:>7} {:>10} {:>12.4}",
                        r.method,
                        r.steering,
                        r.by_scope.len(),
                        r.tv_all.map_or("-".into(), |v| format!("{v:.4}")),
                        r.mean_tv
                    )?;
                }
            }
            Scores::Own(scores) => {
                writeln!(
                    f,
                    "{:<18} {:<9} {:>6} {:>6} {:>8}  {:<18} {:>7} {:>7}",
                    "method", "steering", "cells", "groups", "TV", "95% CI", "ECE", "floor"
                )?;
                let opt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.4}"));
                for r in &scores.tv {
                    writeln!(
                        f,
                        "{:<18} {:<9} {:>6} {:>6} {:>8.4}  {:<18} {:>7} {:>7}",
                        r.group["method"],
                        r.group["steering"],
                        r.n_cells,
                        r.n_groups.map_or("-".into(), |g| g.to_string()),
                        r.estimate.value,
                        r.interval_text(),
                        opt(r.calibration_ece),
                        opt(r.discretization_floor)
                    )?;
                }
                for (steering, TemperatureScaled { tau, tv, cells }) in
                    &scores.logp_temperature_scaled.0
                {
                    writeln!(
                        f,
                        "{:<18} {:<9} {:>6} {:>8.4}  (τ* = {tau:.3}, fitted on these cells)",
                        "logp-scaled", steering, cells, tv
                    )?;
                }
                for (steering, g) in &scores.knowledge_to_simulation_gap.0 {
                    let (gap, cells) = (g.gap, g.shared_cells);
                    writeln!(
                        f,
                        "knowledge-to-simulation gap ({steering}): {gap:+.3} over {cells} shared cells"
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// TV per method × steering of the pooled voting distributions (everyone and each attribute
/// value the reference has) against the survey or election result.
pub fn vote_scores(
    cells: &[Cell],
    model: &str,
    reference: &probe_report::report::Reference,
    out: &Path,
) -> Result<VoteTvFile> {
    let series = probe_report::report::series_from_cells(cells, model)?;
    let mut rows = Vec::new();
    for s in &series {
        let mut tvs: Vec<(String, f64)> = Vec::new();
        for c in &reference.cells {
            let scope = (
                c.labels.get("attribute").cloned().unwrap_or("all".into()),
                c.labels.get("value").cloned().unwrap_or("all".into()),
            );
            let (Some(p), Some((r, _))) = (
                s.pooled.get(&scope),
                probe_report::report::align_reference(c, &s.options),
            ) else {
                continue;
            };
            tvs.push((
                format!("{}={}", scope.0, scope.1),
                probe_metrics::divergence::total_variation(p, &r)?,
            ));
        }
        if tvs.is_empty() {
            continue;
        }
        let all = tvs.iter().find(|(k, _)| k == "all=all").map(|t| t.1);
        let mean = tvs.iter().map(|t| t.1).sum::<f64>() / tvs.len() as f64;
        let label = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
        rows.push(VoteTv {
            method: label("method"),
            steering: label("steering"),
            by_scope: tvs
                .into_iter()
                .map(|(scope, tv)| ScopeTv { scope, tv })
                .collect(),
            tv_all: all,
            mean_tv: mean,
        });
    }
    let file = VoteTvFile {
        format_version: <VoteTvFile as probe_schema::Artifact>::FORMAT_VERSION,
        reference: reference.name.clone(),
        notes: reference.notes.clone(),
        tv: rows,
    };
    probe_schema::write(&out.join("tv.json"), &file)?;
    Ok(file)
}

/// The benchmark's A of `sequence` and of `verbalize` under `steering`, each over only the
/// cells (group, question) both have, and how many those are; `None` when they share none.
pub(crate) fn shared_cell_scores(
    pairs: &[Pair],
    steering: &str,
) -> Result<Option<(f64, f64, usize)>> {
    let key = |p: &Pair| {
        let l = &p.labels;
        (
            l.get("attribute").cloned(),
            l.get("group").cloned(),
            l.get("question").cloned(),
        )
    };
    let of = |method: &str| -> Vec<&Pair> {
        pairs
            .iter()
            .filter(|p| {
                p.labels.get("method").map(String::as_str) == Some(method)
                    && p.labels.get("steering").map(String::as_str) == Some(steering)
            })
            .collect()
    };
    let (seq, verb) = (of("sequence"), of("verbalize"));
    let in_verb: std::collections::HashSet<_> = verb.iter().map(|p| key(p)).collect();
    let shared: std::collections::HashSet<_> = seq
        .iter()
        .map(|p| key(p))
        .filter(|k| in_verb.contains(k))
        .collect();
    if shared.is_empty() {
        return Ok(None);
    }
    let score = |set: &[&Pair]| -> Result<f64> {
        let kept: Vec<Pair> = set
            .iter()
            .filter(|p| shared.contains(&key(p)))
            .map(|p| (*p).clone())
            .collect();
        let rows = compare(
            &kept,
            &CompareOptions {
                bootstrap: 1,
                ..CompareOptions::default()
            },
        )?;
        Ok(rows[0].estimate.value)
    };
    Ok(Some((score(&seq)?, score(&verb)?, shared.len())))
}

/// TV per method × steering against the cells' own references, with the baselines.
pub fn own_scores(cells: &[Cell], out: &Path) -> Result<OwnScores> {
    let references = own_references(cells);
    let mut predicted = cells.to_vec();
    predicted.extend(baseline_cells(&references, Baseline::Uniform));
    predicted.extend(baseline_cells(&references, Baseline::Majority));
    for c in predicted.iter_mut() {
        if c.labels
            .get("model")
            .is_some_and(|m| m.starts_with("baseline-"))
        {
            let m = c.labels["model"].clone();
            c.labels.insert("method".into(), m);
            c.labels.insert("steering".into(), "-".into());
        }
        c.reference = None;
    }
    let pairs = join(&predicted, &references)?;
    let rows = compare(
        &pairs,
        &CompareOptions {
            metrics: vec![Metric::Tv],
            by: vec!["method".into(), "steering".into()],
            ..CompareOptions::default()
        },
    )?;
    // log-p with temperature scaling: τ* fitted per steering on these cells (in-sample)
    let mut scaled = Ordered(Vec::new());
    for steering in ["none", "persona", "fewshot"] {
        let pairs: Vec<(&[f64], &[f64])> = cells
            .iter()
            .filter(|c| {
                c.labels.get("method").map(String::as_str) == Some("logp")
                    && c.labels.get("steering").map(String::as_str) == Some(steering)
            })
            .filter_map(|c| Some((c.reference.as_deref()?, c.predicted.as_deref()?)))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let (tau, tv) = probe_metrics::calibration::fit_temperature(&pairs, 0.05, 20.0)?;
        let cells = pairs.len();
        scaled
            .0
            .push((steering.to_string(), TemperatureScaled { tau, tv, cells }));
    }
    // knowledge-to-simulation gap per steering: A(sequence) / A(verbalize) − 1, both scored
    // over the (group, question) cells both methods parsed, so that neither is scored on
    // questions the other failed.
    let mut gaps = Ordered(Vec::new());
    for steering in ["none", "persona", "fewshot"] {
        if let Some((seq, verb, cells)) = shared_cell_scores(&pairs, steering)? {
            if let Ok(ks) = probe_metrics::alignment::knowledge_to_simulation_gap(seq, verb) {
                let gap = SimulationGap {
                    gap: ks,
                    a_sequence: seq,
                    a_verbalize: verb,
                    shared_cells: cells,
                };
                gaps.0.push((steering.to_string(), gap));
            }
        }
    }
    let file = OwnScores {
        format_version: <OwnScores as probe_schema::Artifact>::FORMAT_VERSION,
        tv: rows,
        logp_temperature_scaled: scaled,
        knowledge_to_simulation_gap: gaps,
    };
    probe_schema::write(&out.join("tv.json"), &file)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use probe_report::compare::Pair;

    fn pair(method: &str, question: &str, predicted: f64) -> Pair {
        let labels = [
            ("method", method),
            ("steering", "none"),
            ("attribute", "SEX"),
            ("group", "Male"),
            ("question", question),
        ];
        Pair {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            options: vec!["a".into(), "b".into()],
            predicted: vec![predicted, 1.0 - predicted],
            reference: vec![0.5, 0.5],
            ordinal: None,
            weight: 1.0,
        }
    }

    /// `sequence` parsed q1 and q2, `verbalize` only q1: the gap compares both on q1 alone.
    #[test]
    fn knowledge_to_simulation_gap_uses_only_shared_cells() {
        let pairs = [
            pair("sequence", "q1", 0.7),
            pair("sequence", "q2", 1.0),
            pair("verbalize", "q1", 0.6),
        ];
        let (seq, verb, shared) = super::shared_cell_scores(&pairs, "none").unwrap().unwrap();
        assert_eq!(shared, 1);
        assert!((seq - 0.2).abs() < 1e-12, "{seq}");
        assert!((verb - 0.1).abs() < 1e-12, "{verb}");
        assert!(super::shared_cell_scores(&pairs, "persona")
            .unwrap()
            .is_none());
    }
}
