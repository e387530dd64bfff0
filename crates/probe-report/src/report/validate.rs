//! What a run's JSON files must *mean* before the report draws them (not only parse): ψ shares
//! in [0, 1] summing to 1, counts ≥ 0, k ≥ 1, estimates with finite value and bounds, no
//! `"NaN"` strings and no `null` where a number belongs. A value that breaks a rule is an error
//! naming the file and the field (`scores.json: splits[0].expected.mean_kl.value is null`):
//! a report never shows a dash, a negative share or a vanished section for a broken number.

use std::path::Path;

use serde_json::Value;

use super::{input_err, Result};

/// How far a distribution's sum may stray from 1 (the writers' f64 sums are within 1e-12).
const SUM_TOLERANCE: f64 = 1e-6;

/// A field's path as the messages print it: `splits[0].expected.mean_kl`.
fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// The first string anywhere in `v` that spells a non-finite number ("NaN", "inf",
/// "-Infinity"): a writer that turned a NaN into text.
fn non_finite_string(v: &Value, at: &str) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim().to_ascii_lowercase();
            let t = t.trim_start_matches(['+', '-']);
            matches!(t, "nan" | "inf" | "infinity").then(|| at.to_string())
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| non_finite_string(x, &format!("{at}[{i}]"))),
        Value::Object(m) => m
            .iter()
            .find_map(|(k, x)| non_finite_string(x, &join(at, k))),
        _ => None,
    }
}

/// The first `null` in `v` whose key is not in `optional` (fields a writer leaves empty on
/// purpose, such as a p-value a bootstrap could not give).
fn unexpected_null(v: &Value, at: &str, optional: &[&str]) -> Option<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| unexpected_null(x, &format!("{at}[{i}]"), optional)),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let here = join(at, k);
            if x.is_null() {
                (!optional.contains(&k.as_str())).then_some(here)
            } else {
                unexpected_null(x, &here, optional)
            }
        }),
        _ => None,
    }
}

/// Refuses `"NaN"`-like strings anywhere and `null` outside `optional` keys.
fn no_broken_numbers(v: &Value, file: &Path, optional: &[&str]) -> Result<()> {
    no_broken_numbers_at(v, "", file, optional)
}

/// [`no_broken_numbers`] of the part of a file at `root` (`chance`), named from there.
fn no_broken_numbers_at(v: &Value, root: &str, file: &Path, optional: &[&str]) -> Result<()> {
    if let Some(at) = non_finite_string(v, root) {
        return Err(input_err(
            file,
            format!(
                "{at} is the string {}, not a finite number",
                v_at(
                    v,
                    at.strip_prefix(root).unwrap_or(&at).trim_start_matches('.')
                )
            ),
        ));
    }
    if let Some(at) = unexpected_null(v, root, optional) {
        return Err(input_err(
            file,
            format!("{at} is null (a number the writer could not compute?)"),
        ));
    }
    Ok(())
}

/// The JSON text of the field at a printed path (for messages only; best effort).
fn v_at(v: &Value, at: &str) -> String {
    let mut cur = v;
    for part in at.split('.') {
        let (key, indices) = match part.find('[') {
            Some(b) => (&part[..b], &part[b..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            cur = &cur[key];
        }
        for i in indices
            .split(['[', ']'])
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse::<usize>().ok())
        {
            cur = &cur[i];
        }
    }
    cur.to_string()
}

/// A finite number at `v` (named `at`).
fn number(v: &Value, file: &Path, at: &str) -> Result<f64> {
    match v.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        _ if v.is_null() => Err(input_err(file, format!("{at} is missing"))),
        _ => Err(input_err(file, format!("{at} is {v}, not a finite number"))),
    }
}

/// A count: a whole number ≥ 0.
fn count(v: &Value, file: &Path, at: &str) -> Result<u64> {
    match v.as_u64() {
        Some(n) => Ok(n),
        None if v.is_null() => Err(input_err(file, format!("{at} is missing"))),
        None => Err(input_err(
            file,
            format!("{at} is {v}, not a count (a whole number ≥ 0)"),
        )),
    }
}

/// An estimate: `value`, `low` and `high` finite, `low ≤ high`.
fn estimate(v: &Value, file: &Path, at: &str) -> Result<()> {
    if !v.is_object() {
        return Err(input_err(
            file,
            format!("{at} is {v}, not an estimate {{value, low, high}}"),
        ));
    }
    let value = number(&v["value"], file, &join(at, "value"))?;
    let low = number(&v["low"], file, &join(at, "low"))?;
    let high = number(&v["high"], file, &join(at, "high"))?;
    if low > high + 1e-12 {
        return Err(input_err(
            file,
            format!("{at}: interval [{low}, {high}] runs backwards (value {value})"),
        ));
    }
    Ok(())
}

/// A probability distribution over `n` options (any n when `None`): finite shares in [0, 1]
/// summing to 1.
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

fn array<'a>(v: &'a Value, file: &Path, at: &str) -> Result<&'a Vec<Value>> {
    v.as_array()
        .ok_or_else(|| input_err(file, format!("{at} is {v}, not a list")))
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

/// `psi.json` of `probe scale`: parties, every scope's ψ, row counts, weights, k, the
/// clipped-factor counts and the entropy estimates.
pub fn psi(json: &Value, file: &Path) -> Result<()> {
    no_broken_numbers(json, file, &[])?;
    let parties: Vec<&str> = array(&json["parties"], file, "parties")?
        .iter()
        .map(|p| {
            p.as_str()
                .ok_or_else(|| input_err(file, format!("parties: {p} is not a party name")))
        })
        .collect::<Result<_>>()?;
    if parties.is_empty() {
        return Err(input_err(file, "parties is empty"));
    }
    let scope = |v: &Value, at: &str| -> Result<()> {
        if !v.is_object() {
            return Err(input_err(file, format!("{at} is {v}, not a scope of ψ")));
        }
        if v.get("psi").is_some() {
            let shares = &v["psi"];
            if !shares.is_object() {
                return Err(input_err(
                    file,
                    format!("{at}.psi is {shares}, not shares by party"),
                ));
            }
            let values: Vec<f64> = parties
                .iter()
                .map(|p| number(&shares[*p], file, &format!("{at}.psi.{p}")))
                .collect::<Result<_>>()?;
            distribution(&values, file, &join(at, "psi"))?;
        }
        count(&v["rows"], file, &join(at, "rows"))?;
        if !v["weight"].is_null() {
            let w = number(&v["weight"], file, &join(at, "weight"))?;
            if w < 0.0 {
                return Err(input_err(file, format!("{at}.weight is {w}, below 0")));
            }
        }
        Ok(())
    };
    let groups = |v: &Value, at: &str| -> Result<()> {
        for (attribute, values) in v.as_object().into_iter().flatten() {
            for (value, s) in values.as_object().into_iter().flatten() {
                scope(s, &format!("{at}.{attribute}.{value}"))?;
            }
        }
        Ok(())
    };
    scope(&json["all"], "all")?;
    groups(&json["by_group"], "by_group")?;
    for (variant, v) in json["by_variant"].as_object().into_iter().flatten() {
        scope(&v["all"], &format!("by_variant.{variant}.all"))?;
        groups(&v["by_group"], &format!("by_variant.{variant}.by_group"))?;
    }
    for (language, v) in json["run"]["by_language"].as_object().into_iter().flatten() {
        scope(v, &format!("run.by_language.{language}"))?;
    }
    if let Some(layers) = json["run"].get("vector_layers") {
        let layers: Vec<u64> = array(layers, file, "run.vector_layers")?
            .iter()
            .enumerate()
            .map(|(i, l)| count(l, file, &format!("run.vector_layers[{i}]")))
            .collect::<Result<_>>()?;
        if layers.windows(2).any(|w| w[0] >= w[1]) {
            return Err(input_err(
                file,
                format!("run.vector_layers {layers:?} are not ascending layer indices"),
            ));
        }
    }
    if !json["run"]["k"].is_null() && count(&json["run"]["k"], file, "run.k")? < 1 {
        return Err(input_err(
            file,
            "run.k is 0: ψ needs at least one value vector",
        ));
    }
    if json.get("negative_factors").is_some() {
        let n = count(
            &json["negative_factors"]["count"],
            file,
            "negative_factors.count",
        )?;
        let of = count(&json["negative_factors"]["of"], file, "negative_factors.of")?;
        if n > of {
            return Err(input_err(
                file,
                format!("negative_factors: {n} of {of} factors"),
            ));
        }
    }
    if let Some(e) = json.get("entropy") {
        estimate(&e["all"], file, "entropy.all")?;
        groups_of_estimates(&e["by_group"], file, "entropy.by_group")?;
    }
    Ok(())
}

fn groups_of_estimates(v: &Value, file: &Path, at: &str) -> Result<()> {
    for (attribute, values) in v.as_object().into_iter().flatten() {
        for (value, e) in values.as_object().into_iter().flatten() {
            estimate(e, file, &format!("{at}.{attribute}.{value}"))?;
        }
    }
    Ok(())
}

/// Fields of `scores.json` that are `null` on purpose: a p-value a bootstrap could not give,
/// RMSE of nominal-only items, the item structure where fewer than two items vary, a limit.
const SCORES_OPTIONAL: &[&str] = &[
    "p",
    "mean_rmse",
    "rmse",
    "structure",
    "structure_note",
    "limit",
    "values",
];

/// `scores.json` of `probe simulate`: every scored part's estimates, marginals and counts,
/// the baselines' parts and the paired differences.
pub fn scores(json: &Value, file: &Path) -> Result<()> {
    no_broken_numbers(json, file, SCORES_OPTIONAL)?;
    let n_items = array(&json["items"], file, "items")?.len();
    if n_items == 0 {
        return Err(input_err(file, "items is empty"));
    }
    let parts = |splits: &Value, at: &str| -> Result<()> {
        let splits = array(splits, file, at)?;
        if splits.is_empty() {
            return Err(input_err(
                file,
                format!("{at} is empty: nothing was scored"),
            ));
        }
        for (i, s) in splits.iter().enumerate() {
            let at = format!("{at}[{i}]");
            if s["split"].as_str().is_none() {
                return Err(input_err(
                    file,
                    format!("{at}.split is {}, not a name", s["split"]),
                ));
            }
            count(&s["respondents"], file, &format!("{at}.respondents"))?;
            marginals(&s["expected"], file, &format!("{at}.expected"), n_items)?;
            let temps = array(&s["temperatures"], file, &format!("{at}.temperatures"))?;
            if temps.is_empty() {
                return Err(input_err(file, format!("{at}.temperatures is empty")));
            }
            for (k, t) in temps.iter().enumerate() {
                let at = format!("{at}.temperatures[{k}]");
                let temperature = number(&t["temperature"], file, &format!("{at}.temperature"))?;
                if temperature < 0.0 {
                    return Err(input_err(
                        file,
                        format!("{at}.temperature is {temperature}"),
                    ));
                }
                marginals(&t["marginals"], file, &format!("{at}.marginals"), n_items)?;
                let a = &t["agreement"];
                estimate(
                    &a["mean_accuracy"],
                    file,
                    &format!("{at}.agreement.mean_accuracy"),
                )?;
                if !a["mean_rmse"].is_null() {
                    estimate(&a["mean_rmse"], file, &format!("{at}.agreement.mean_rmse"))?;
                }
                for (j, item) in array(&a["items"], file, &format!("{at}.agreement.items"))?
                    .iter()
                    .enumerate()
                {
                    let at = format!("{at}.agreement.items[{j}]");
                    estimate(&item["accuracy"], file, &format!("{at}.accuracy"))?;
                    if !item["rmse"].is_null() {
                        estimate(&item["rmse"], file, &format!("{at}.rmse"))?;
                    }
                }
                if t["structure"].is_object() {
                    estimate(
                        &t["structure"]["mean_abs_diff"],
                        file,
                        &format!("{at}.structure.mean_abs_diff"),
                    )?;
                }
            }
        }
        Ok(())
    };
    parts(&json["splits"], "splits")?;
    for (b, baseline) in json["baselines"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        parts(&baseline["splits"], &format!("baselines[{b}].splits"))?;
    }
    for (d, diff) in json["differences"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("differences[{d}]");
        for (key, e) in diff["differences"].as_object().into_iter().flatten() {
            if e.is_null() {
                continue; // RMSE of nominal-only items
            }
            estimate(
                &e["difference"],
                file,
                &format!("{at}.differences.{key}.difference"),
            )?;
            if !e["p"].is_null() {
                let p = number(&e["p"], file, &format!("{at}.differences.{key}.p"))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(input_err(file, format!("{at}.differences.{key}.p is {p}")));
                }
            }
        }
    }
    Ok(())
}

/// A marginal fit: mean KL and TV, and per item the real and simulated distributions.
fn marginals(v: &Value, file: &Path, at: &str, n_items: usize) -> Result<()> {
    estimate(&v["mean_kl"], file, &join(at, "mean_kl"))?;
    estimate(&v["mean_tv"], file, &join(at, "mean_tv"))?;
    let items = array(&v["items"], file, &join(at, "items"))?;
    if items.len() > n_items {
        return Err(input_err(
            file,
            format!(
                "{at}.items: {} items, the survey has {n_items}",
                items.len()
            ),
        ));
    }
    for (j, item) in items.iter().enumerate() {
        let at = format!("{at}.items[{j}]");
        count(&item["n"], file, &format!("{at}.n"))?;
        for key in ["real", "simulated"] {
            let values: Vec<f64> = array(&item[key], file, &format!("{at}.{key}"))?
                .iter()
                .enumerate()
                .map(|(o, x)| number(x, file, &format!("{at}.{key}[{o}]")))
                .collect::<Result<_>>()?;
            distribution(&values, file, &format!("{at}.{key}"))?;
        }
        estimate(&item["kl"], file, &format!("{at}.kl"))?;
        estimate(&item["tv"], file, &format!("{at}.tv"))?;
    }
    Ok(())
}

/// `probes.json` of `probe train`: the balanced accuracies the report draws and the
/// chance-level null's numbers, each in range.
pub fn probes(json: &Value, file: &Path) -> Result<()> {
    no_broken_numbers(json, file, &["p_value", "model_hash", "adapter"])?;
    let summary = array(&json["report"]["summary"], file, "report.summary")?;
    for (i, entry) in summary.iter().enumerate() {
        for probe in ["per_layer", "shared"] {
            let v = &entry[probe]["balanced_accuracy"];
            if v.is_null() && entry.get(probe).is_none() {
                continue;
            }
            let at = format!("report.summary[{i}].{probe}.balanced_accuracy");
            let x = number(v, file, &at)?;
            if !(0.0..=1.0).contains(&x) {
                return Err(input_err(file, format!("{at} is {x}, outside [0, 1]")));
            }
        }
    }
    let null = &json["report"]["null"];
    if null.is_object() {
        for key in ["observed", "mean", "sd"] {
            for (i, x) in array(&null[key], file, &format!("report.null.{key}"))?
                .iter()
                .enumerate()
            {
                number(x, file, &format!("report.null.{key}[{i}]"))?;
            }
        }
        for (i, x) in null["p_value"].as_array().into_iter().flatten().enumerate() {
            let p = number(x, file, &format!("report.null.p_value[{i}]"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(input_err(file, format!("report.null.p_value[{i}] is {p}")));
            }
        }
    }
    Ok(())
}

/// `vectors/vectors.json` of `probe vectors`: each party's chance tests (observed statistic,
/// null mean and sd, z (null when the draws do not vary), p in [0, 1], a null size ≥ 1), the
/// numbers the chance table shows.
pub fn vectors(json: &Value, file: &Path) -> Result<()> {
    no_broken_numbers_at(&json["chance"], "chance", file, &["z"])?;
    let chance = match json.get("chance") {
        None => return Ok(()),
        Some(c) => array(c, file, "chance")?,
    };
    for (i, c) in chance.iter().enumerate() {
        if c["party"].as_str().is_none() {
            return Err(input_err(
                file,
                format!("chance[{i}].party is {}, not a party", c["party"]),
            ));
        }
        for null in ["random", "shuffled"] {
            let t = &c[null];
            if t.is_null() {
                continue;
            }
            let at = format!("chance[{i}].{null}");
            for key in ["observed", "mean", "sd"] {
                number(&t[key], file, &format!("{at}.{key}"))?;
            }
            // z is undefined (written as null) when the null's draws do not vary; p decides
            if !t["z"].is_null() {
                number(&t["z"], file, &format!("{at}.z"))?;
            }
            let p = number(&t["p"], file, &format!("{at}.p"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(input_err(file, format!("{at}.p is {p}, outside [0, 1]")));
            }
            if count(&t["n"], file, &format!("{at}.n"))? == 0 {
                return Err(input_err(file, format!("{at}.n is 0: a null of no draws")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn psi_ok() -> Value {
        json!({"parties": ["A", "B"], "all": {"psi": {"A": 0.25, "B": 0.75}, "rows": 4, "weight": 4.0},
               "by_group": {"age": {"young": {"psi": {"A": 0.5, "B": 0.5}, "rows": 2, "weight": 2.0}}},
               "run": {"k": 3}, "negative_factors": {"count": 1, "of": 8}})
    }

    fn psi_err(edit: impl FnOnce(&mut Value)) -> String {
        let mut v = psi_ok();
        edit(&mut v);
        psi(&v, Path::new("psi.json")).unwrap_err().to_string()
    }

    #[test]
    fn psi_is_checked_for_meaning() {
        psi(&psi_ok(), Path::new("psi.json")).unwrap();
        let e = psi_err(|v| v["all"]["psi"] = json!({"A": -0.25, "B": 1.25}));
        assert!(
            e.contains("psi.json") && e.contains("all.psi") && e.contains("-0.25"),
            "{e}"
        );
        let e = psi_err(|v| v["all"]["psi"]["B"] = json!(0.5));
        assert!(e.contains("sum to 0.75"), "{e}");
        let e = psi_err(|v| v["run"]["k"] = json!(-20));
        assert!(e.contains("run.k") && e.contains("-20"), "{e}");
        let e = psi_err(|v| v["all"]["rows"] = json!(-8));
        assert!(e.contains("all.rows") && e.contains("-8"), "{e}");
        let e = psi_err(|v| v["by_group"]["age"]["young"]["psi"]["A"] = json!("NaN"));
        assert!(
            e.contains("by_group.age.young.psi.A") && e.contains("NaN"),
            "{e}"
        );
        let e = psi_err(|v| v["all"]["weight"] = Value::Null);
        assert!(e.contains("all.weight is null"), "{e}");
        let e = psi_err(|v| v["negative_factors"]["count"] = json!(9));
        assert!(e.contains("9 of 8"), "{e}");
    }

    fn scores_ok() -> Value {
        let est = json!({"value": 0.1, "low": 0.05, "high": 0.2, "bias": 0.0});
        let marg = json!({"mean_kl": est, "mean_tv": est, "kl_smoothing": 1e-4,
            "items": [{"item": 0, "n": 3, "real": [0.5, 0.5], "simulated": [1.0, 0.0], "kl": est, "tv": est}]});
        let split = json!({"split": "all", "respondents": 3, "expected": marg,
            "temperatures": [{"temperature": 1.0, "marginals": marg,
                "agreement": {"items": [{"item": 0, "accuracy": est, "rmse": null}], "mean_accuracy": est, "mean_rmse": null},
                "structure": null, "structure_note": "one item"}]});
        json!({"model": "m", "items": ["vote"], "splits": [split], "baselines": [], "differences": []})
    }

    #[test]
    fn scores_are_checked_for_meaning() {
        let file = Path::new("scores.json");
        scores(&scores_ok(), file).unwrap();
        let mut v = scores_ok();
        v["splits"][0]["expected"]["mean_kl"]["value"] = Value::Null;
        let e = scores(&v, file).unwrap_err().to_string();
        assert!(
            e.contains("splits[0].expected.mean_kl.value is null"),
            "{e}"
        );
        let mut v = scores_ok();
        v["splits"][0]["temperatures"][0]["agreement"]["mean_accuracy"] = json!({});
        let e = scores(&v, file).unwrap_err().to_string();
        assert!(e.contains("mean_accuracy.value is missing"), "{e}");
        let mut v = scores_ok();
        v["splits"][0]["expected"]["mean_tv"]["low"] = json!("NaN");
        let e = scores(&v, file).unwrap_err().to_string();
        assert!(e.contains("mean_tv.low") && e.contains("NaN"), "{e}");
        let mut v = scores_ok();
        v["splits"] = json!([]);
        assert!(scores(&v, file)
            .unwrap_err()
            .to_string()
            .contains("nothing was scored"));
    }
}
