//! What a run's files must *mean* before the report draws them, beyond their types (which
//! `probe_schema` checks on reading, naming the field that does not fit): ψ shares in [0, 1]
//! summing to 1, k ≥ 1, finite estimates with ordered bounds, p-values in [0, 1]. The writers
//! run the same checks before they write (a NaN would otherwise be written as `null`). A value
//! that breaks a rule is an error naming the file and the field
//! (`scores.json: splits[0].expected.mean_kl.value is NaN, not a finite number`): a report never
//! shows a dash, a negative share or a vanished section for a broken number.

use std::path::Path;

use probe_metrics::population::MarginalFit;
use probe_metrics::stats::Estimate;
use probe_schema::probes::ProbesJson;
use probe_schema::psi::{Distribution, Ordered, Summary};
use probe_schema::simulation::{SimulationScores, SplitScores};
use probe_schema::vectors::VectorsJson;

use super::{input_err, Result};

/// How far a distribution's sum may stray from 1 (the writers' f64 sums are within 1e-12).
const SUM_TOLERANCE: f64 = 1e-6;

/// A finite number (named `at`).
fn number(x: f64, file: &Path, at: &str) -> Result<f64> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(input_err(file, format!("{at} is {x}, not a finite number")))
    }
}

/// A probability in [0, 1].
fn probability(x: f64, file: &Path, at: &str) -> Result<()> {
    if (0.0..=1.0).contains(&number(x, file, at)?) {
        Ok(())
    } else {
        Err(input_err(file, format!("{at} is {x}, outside [0, 1]")))
    }
}

/// An estimate: `value`, `low` and `high` finite, `low ≤ high`.
fn estimate(e: &Estimate, file: &Path, at: &str) -> Result<()> {
    let value = number(e.value, file, &format!("{at}.value"))?;
    let low = number(e.low, file, &format!("{at}.low"))?;
    let high = number(e.high, file, &format!("{at}.high"))?;
    if let Some(bias) = e.bias {
        number(bias, file, &format!("{at}.bias"))?;
    }
    if low > high + 1e-12 {
        return Err(input_err(
            file,
            format!("{at}: interval [{low}, {high}] runs backwards (value {value})"),
        ));
    }
    Ok(())
}

/// A probability distribution: finite shares in [0, 1] summing to 1.
fn distribution(values: &[f64], file: &Path, at: &str) -> Result<()> {
    if let Some(x) = values.iter().find(|x| !(0.0..=1.0).contains(*x)) {
        return Err(input_err(
            file,
            format!("{at}: share {x} lies outside [0, 1]"),
        ));
    }
    let sum: f64 = values.iter().sum();
    if (sum - 1.0).abs() > SUM_TOLERANCE {
        return Err(input_err(file, format!("{at}: shares sum to {sum}, not 1")));
    }
    Ok(())
}

/// A stage's folder is complete: its completion marker (written last) is there. Outputs of a
/// run that failed or is still going are refused, not drawn.
pub fn finished(dir: &Path) -> Result<()> {
    if probe_cache::is_complete(dir) {
        return Ok(());
    }
    Err(input_err(
        dir,
        format!(
            "no {} (the run did not finish, or was written by a probe older than this one); rerun its command to finish it (it resumes)",
            probe_cache::COMPLETE_MARKER
        ),
    ))
}

/// `psi.json` of `probe scale`: parties, every scope's ψ (a share for every party), weights,
/// k, the vector layers, the negative-factor counts and the entropy estimates.
pub fn psi(json: &Summary, file: &Path) -> Result<()> {
    if json.parties.is_empty() {
        return Err(input_err(file, "parties is empty"));
    }
    // (party, share) pairs of one ψ, from an ordered or a sorted map
    let shares = |psi: &[(&String, f64)], at: &str| -> Result<()> {
        let values: Vec<f64> = json
            .parties
            .iter()
            .map(|p| {
                let (_, x) = psi
                    .iter()
                    .find(|(k, _)| *k == p)
                    .ok_or_else(|| input_err(file, format!("{at}.{p} is missing")))?;
                number(*x, file, &format!("{at}.{p}"))
            })
            .collect::<Result<_>>()?;
        if let Some((extra, _)) = psi.iter().find(|(k, _)| !json.parties.contains(k)) {
            return Err(input_err(
                file,
                format!("{at}.{extra}: a party not in `parties`"),
            ));
        }
        distribution(&values, file, at)
    };
    let scope = |d: &Distribution, at: &str| -> Result<()> {
        if let Some(psi) = &d.psi {
            let pairs: Vec<_> = psi.0.iter().map(|(k, x)| (k, *x)).collect();
            shares(&pairs, &format!("{at}.psi"))?;
        }
        let w = number(d.weight, file, &format!("{at}.weight"))?;
        if w < 0.0 {
            return Err(input_err(file, format!("{at}.weight is {w}, below 0")));
        }
        Ok(())
    };
    let groups = |g: &Ordered<Ordered<Distribution>>, at: &str| -> Result<()> {
        for (attribute, values) in &g.0 {
            for (value, d) in &values.0 {
                scope(d, &format!("{at}.{attribute}.{value}"))?;
            }
        }
        Ok(())
    };
    scope(&json.all, "all")?;
    groups(&json.by_group, "by_group")?;
    for (variant, v) in &json.by_variant.0 {
        scope(&v.all, &format!("by_variant.{variant}.all"))?;
        groups(&v.by_group, &format!("by_variant.{variant}.by_group"))?;
    }
    let Some(run) = &json.run else {
        return Err(input_err(
            file,
            "no `run` (how the ψ were made): not written by `probe scale`?",
        ));
    };
    for (language, l) in &run.by_language {
        if let Some(psi) = &l.psi {
            let pairs: Vec<_> = psi.iter().map(|(k, x)| (k, *x)).collect();
            shares(&pairs, &format!("run.by_language.{language}.psi"))?;
        }
    }
    if run.vector_layers.windows(2).any(|w| w[0] >= w[1]) {
        return Err(input_err(
            file,
            format!(
                "run.vector_layers {:?} are not ascending layer indices",
                run.vector_layers
            ),
        ));
    }
    if run.k < 1 {
        return Err(input_err(
            file,
            "run.k is 0: ψ needs at least one value vector",
        ));
    }
    let n = &json.negative_factors;
    if n.count > n.of {
        return Err(input_err(
            file,
            format!("negative_factors: {} of {} factors", n.count, n.of),
        ));
    }
    if let Some(e) = &json.entropy {
        estimate(&e.all, file, "entropy.all")?;
        for (attribute, values) in &e.by_group.0 {
            for (value, e) in &values.0 {
                estimate(e, file, &format!("entropy.by_group.{attribute}.{value}"))?;
            }
        }
    }
    Ok(())
}

/// `scores.json` of `probe simulate`: every scored part's estimates, marginals and counts,
/// the baselines' parts and the paired differences.
pub fn scores(json: &SimulationScores, file: &Path) -> Result<()> {
    let n_items = json.items.len();
    if n_items == 0 {
        return Err(input_err(file, "items is empty"));
    }
    let parts = |splits: &[SplitScores], at: &str| -> Result<()> {
        if splits.is_empty() {
            return Err(input_err(
                file,
                format!("{at} is empty: nothing was scored"),
            ));
        }
        for (i, s) in splits.iter().enumerate() {
            let at = format!("{at}[{i}]");
            marginals(&s.expected, file, &format!("{at}.expected"), n_items)?;
            if s.temperatures.is_empty() {
                return Err(input_err(file, format!("{at}.temperatures is empty")));
            }
            for (k, t) in s.temperatures.iter().enumerate() {
                let at = format!("{at}.temperatures[{k}]");
                let temperature = f64::from(t.temperature);
                if number(temperature, file, &format!("{at}.temperature"))? < 0.0 {
                    return Err(input_err(
                        file,
                        format!("{at}.temperature is {temperature}"),
                    ));
                }
                marginals(&t.marginals, file, &format!("{at}.marginals"), n_items)?;
                let a = &t.agreement;
                estimate(
                    &a.mean_accuracy,
                    file,
                    &format!("{at}.agreement.mean_accuracy"),
                )?;
                if let Some(e) = &a.mean_rmse {
                    estimate(e, file, &format!("{at}.agreement.mean_rmse"))?;
                }
                for (j, item) in a.items.iter().enumerate() {
                    let at = format!("{at}.agreement.items[{j}]");
                    estimate(&item.accuracy, file, &format!("{at}.accuracy"))?;
                    if let Some(e) = &item.rmse {
                        estimate(e, file, &format!("{at}.rmse"))?;
                    }
                }
                if let Some(structure) = &t.structure {
                    let at = format!("{at}.structure");
                    estimate(
                        &structure.mean_abs_diff,
                        file,
                        &format!("{at}.mean_abs_diff"),
                    )?;
                    estimate(&structure.frobenius, file, &format!("{at}.frobenius"))?;
                    estimate(&structure.corr_of_corr, file, &format!("{at}.corr_of_corr"))?;
                }
            }
        }
        Ok(())
    };
    parts(&json.splits, "splits")?;
    for (b, baseline) in json.baselines.iter().enumerate() {
        parts(&baseline.splits, &format!("baselines[{b}].splits"))?;
    }
    for (d, diff) in json.differences.iter().enumerate() {
        let at = format!("differences[{d}].differences");
        let dd = &diff.differences;
        for (key, e) in [
            ("mean_kl", Some(&dd.mean_kl)),
            ("mean_tv", Some(&dd.mean_tv)),
            ("mean_accuracy", Some(&dd.mean_accuracy)),
            ("mean_rmse", dd.mean_rmse.as_ref()),
        ] {
            // RMSE is absent for nominal-only items
            let Some(e) = e else { continue };
            estimate(&e.difference, file, &format!("{at}.{key}.difference"))?;
            if let Some(p) = e.p {
                probability(p, file, &format!("{at}.{key}.p"))?;
            }
        }
    }
    Ok(())
}

/// A marginal fit: mean KL and TV, and per item the real and simulated distributions.
fn marginals(v: &MarginalFit, file: &Path, at: &str, n_items: usize) -> Result<()> {
    estimate(&v.mean_kl, file, &format!("{at}.mean_kl"))?;
    estimate(&v.mean_tv, file, &format!("{at}.mean_tv"))?;
    if v.items.len() > n_items {
        return Err(input_err(
            file,
            format!(
                "{at}.items: {} items, the survey has {n_items}",
                v.items.len()
            ),
        ));
    }
    for (j, item) in v.items.iter().enumerate() {
        let at = format!("{at}.items[{j}]");
        for (key, values) in [("real", &item.real), ("simulated", &item.simulated)] {
            for (o, x) in values.iter().enumerate() {
                number(*x, file, &format!("{at}.{key}[{o}]"))?;
            }
            distribution(values, file, &format!("{at}.{key}"))?;
        }
        estimate(&item.kl, file, &format!("{at}.kl"))?;
        estimate(&item.tv, file, &format!("{at}.tv"))?;
    }
    Ok(())
}

/// `probes.json` of `probe train`: the balanced accuracies the report draws and the
/// chance-level null's numbers, each in range.
pub fn probes(json: &ProbesJson, file: &Path) -> Result<()> {
    for (i, entry) in json.report.summary.iter().enumerate() {
        for (probe, scores) in [("per_layer", &entry.per_layer), ("shared", &entry.shared)] {
            if let Some(scores) = scores {
                let at = format!("report.summary[{i}].{probe}.balanced_accuracy");
                probability(scores.balanced_accuracy, file, &at)?;
            }
        }
    }
    if let Some(null) = &json.report.null {
        let parties = json.report.parties.len();
        for (key, values) in [
            ("observed", &null.observed),
            ("mean", &null.mean),
            ("sd", &null.sd),
            ("p_value", &null.p_value),
        ] {
            if values.len() != parties {
                return Err(input_err(
                    file,
                    format!(
                        "report.null.{key} has {} values for {parties} parties",
                        values.len()
                    ),
                ));
            }
            for (i, x) in values.iter().enumerate() {
                number(*x, file, &format!("report.null.{key}[{i}]"))?;
            }
        }
        for (i, p) in null.p_value.iter().enumerate() {
            probability(*p, file, &format!("report.null.p_value[{i}]"))?;
        }
    }
    Ok(())
}

/// `vectors/vectors.json` of `probe vectors`: each party's chance tests (observed statistic,
/// null mean and sd, z (NaN when the draws do not vary), p in [0, 1], a null size ≥ 1), the
/// numbers the chance table shows.
pub fn vectors(json: &VectorsJson, file: &Path) -> Result<()> {
    for (i, c) in json.chance.iter().enumerate() {
        for (null, test) in [("random", &c.random), ("shuffled", &c.shuffled)] {
            let Some(t) = test else { continue };
            let at = format!("chance[{i}].{null}");
            for (key, x) in [("observed", t.observed), ("mean", t.mean), ("sd", t.sd)] {
                number(x, file, &format!("{at}.{key}"))?;
            }
            // z is undefined (NaN, written as null) when the null's draws do not vary; p decides
            if !t.z.is_nan() {
                number(t.z, file, &format!("{at}.z"))?;
            }
            probability(t.p, file, &format!("{at}.p"))?;
            if t.n == 0 {
                return Err(input_err(file, format!("{at}.n is 0: a null of no draws")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// Typed read (as the report does), then the rules: every message names file and field.
    fn check<T: probe_schema::Artifact>(
        v: &Value,
        name: &str,
        rules: fn(&T, &Path) -> Result<()>,
    ) -> std::result::Result<(), String> {
        let path = Path::new(name);
        let typed: T = probe_schema::from_text(&v.to_string(), path).map_err(|e| e.to_string())?;
        rules(&typed, path).map_err(|e| e.to_string())
    }

    fn psi_ok() -> Value {
        json!({"parties": ["A", "B"], "negative": "clip", "undefined_rows": 0,
               "all": {"psi": {"A": 0.25, "B": 0.75}, "rows": 4, "weight": 4.0},
               "by_group": {"age": {"young": {"psi": {"A": 0.5, "B": 0.5}, "rows": 2, "weight": 2.0}}},
               "by_variant": {},
               "run": {"vectors": "v", "select": "joint", "k": 3, "persona_spec": "p",
                       "personas": 2, "variants": ["x"]},
               "negative_factors": {"count": 1, "of": 8}})
    }

    fn psi_err(edit: impl FnOnce(&mut Value)) -> String {
        let mut v = psi_ok();
        edit(&mut v);
        check::<Summary>(&v, "psi.json", psi).unwrap_err()
    }

    #[test]
    fn psi_is_checked_for_meaning() {
        check::<Summary>(&psi_ok(), "psi.json", psi).unwrap();
        let e = psi_err(|v| v["all"]["psi"] = json!({"A": -0.25, "B": 1.25}));
        assert!(
            e.contains("psi.json") && e.contains("all.psi") && e.contains("-0.25"),
            "{e}"
        );
        let e = psi_err(|v| v["all"]["psi"]["B"] = json!(0.5));
        assert!(e.contains("sum to 0.75"), "{e}");
        let e = psi_err(|v| v["run"]["k"] = json!(-20));
        assert!(e.contains("run.k") && e.contains("-20"), "{e}");
        let e = psi_err(|v| v["run"]["k"] = json!(0));
        assert!(e.contains("run.k is 0"), "{e}");
        let e = psi_err(|v| v["all"]["rows"] = json!(-8));
        assert!(e.contains("all.rows") && e.contains("-8"), "{e}");
        let e = psi_err(|v| v["by_group"]["age"]["young"]["psi"]["A"] = json!("NaN"));
        assert!(
            e.contains("by_group.age.young.psi.A") && e.contains("NaN"),
            "{e}"
        );
        let e = psi_err(|v| v["all"]["weight"] = Value::Null);
        assert!(e.contains("all.weight") && e.contains("null"), "{e}");
        let e = psi_err(|v| v["all"]["psi"] = json!({"A": 0.25}));
        assert!(e.contains("all.psi.B is missing"), "{e}");
        let e = psi_err(|v| v["negative_factors"]["count"] = json!(9));
        assert!(e.contains("9 of 8"), "{e}");
        let e = psi_err(|v| {
            v.as_object_mut().unwrap().remove("run");
        });
        assert!(e.contains("no `run`"), "{e}");
    }

    fn scores_ok() -> Value {
        let est = json!({"value": 0.1, "low": 0.05, "high": 0.2, "bias": 0.0});
        let marg = json!({"mean_kl": est, "mean_tv": est, "kl_smoothing": 1e-4,
            "items": [{"item": 0, "n": 3, "real": [0.5, 0.5], "simulated": [1.0, 0.0], "kl": est, "tv": est}]});
        let split = json!({"split": "all", "respondents": 3, "expected": marg,
            "temperatures": [{"temperature": 1.0, "marginals": marg,
                "agreement": {"items": [{"item": 0, "n": 3, "accuracy": est, "rmse": null}], "mean_accuracy": est, "mean_rmse": null},
                "structure": null, "structure_note": "one item"}]});
        json!({"model": "m", "survey": "s", "persona": true, "correlation": "pearson",
               "items": ["vote"], "splits": [split], "baselines": [], "differences": []})
    }

    #[test]
    fn scores_are_checked_for_meaning() {
        let run = |v: &Value| check::<SimulationScores>(v, "scores.json", scores);
        run(&scores_ok()).unwrap();
        let mut v = scores_ok();
        v["splits"][0]["expected"]["mean_kl"]["value"] = Value::Null;
        let e = run(&v).unwrap_err();
        assert!(
            e.contains("scores.json: splits[0].expected.mean_kl.value: invalid type: null"),
            "{e}"
        );
        let mut v = scores_ok();
        v["splits"][0]["temperatures"][0]["agreement"]["mean_accuracy"] = json!({});
        let e = run(&v).unwrap_err();
        assert!(
            e.contains("splits[0].temperatures[0].agreement.mean_accuracy: missing field `value`"),
            "{e}"
        );
        let mut v = scores_ok();
        v["splits"][0]["expected"]["mean_tv"]["low"] = json!("NaN");
        let e = run(&v).unwrap_err();
        assert!(e.contains("mean_tv.low") && e.contains("NaN"), "{e}");
        let mut v = scores_ok();
        v["splits"][0]["expected"]["mean_tv"]["low"] = json!(0.5);
        let e = run(&v).unwrap_err();
        assert!(
            e.contains("expected.mean_tv: interval [0.5, 0.2] runs backwards"),
            "{e}"
        );
        let mut v = scores_ok();
        v["splits"] = json!([]);
        assert!(run(&v).unwrap_err().contains("nothing was scored"));
        // the writer's side: a NaN in the typed value is refused before it becomes `null`
        let mut typed: SimulationScores =
            probe_schema::from_text(&scores_ok().to_string(), Path::new("scores.json")).unwrap();
        typed.splits[0].expected.mean_kl.value = f64::NAN;
        let e = scores(&typed, Path::new("scores.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("splits[0].expected.mean_kl.value is NaN"), "{e}");
    }
}
