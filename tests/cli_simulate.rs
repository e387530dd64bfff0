//! `probe simulate` end to end on the embedded default model and the demo survey (no download):
//! the table and its files, greedy draws = the most probable option, resume after a kill (a
//! torn last line), sharding, and the clean errors. The scores are recomputed independently
//! with numpy/scipy in crates/probe-py/tests/test_simulate.py.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::*;

fn simulate(out: &Path, extra: &[&str]) -> Output {
    simulate_survey("data/demo", out, extra)
}

fn simulate_survey(survey: &str, out: &Path, extra: &[&str]) -> Output {
    let gguf = workspace_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    probe()
        .current_dir(workspace_root())
        .arg("simulate")
        .arg(gguf)
        .args(["--survey", survey, "--temperature", "0,1"])
        .args(["--bootstrap", "50"])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn records(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("respondents.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The records by respondent id.
fn by_key(text: &str) -> std::collections::BTreeMap<String, Value> {
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["key"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// Equal JSON up to `tol` on numbers: a respondent asked in another batch has other padding,
/// which moves its logits by float rounding.
fn assert_close(a: &Value, b: &Value, tol: f64, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= tol * (1.0 + x.abs()), "{at}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_close(x, y, tol, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{at}"
            );
            for (k, v) in x {
                assert_close(v, &y[k], tol, &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn simulate_writes_the_table_resumes_and_shards() {
    if smollm2_gguf().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sim");
    let run = simulate(&out, &["--limit", "6"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("6 respondents × 2 items of demo (shard 0/1: 6 to do)"),
        "{stderr}"
    );
    assert!(stdout.contains("mean KL"), "{stdout}");
    // the baselines stand beside the model in the table, and the model minus each
    for baseline in [
        "baseline: training marginal",
        "baseline: logistic regression",
    ] {
        assert!(stdout.contains(baseline), "{stdout}");
        assert!(stdout.contains(&format!("vs {baseline}")), "{stdout}");
    }
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scores.json")).unwrap()).unwrap();
    assert_eq!(scores["baselines"].as_array().unwrap().len(), 2);
    let first = &scores["differences"][0];
    assert_eq!(first["split"], "all");
    assert!(first["differences"]["mean_kl"]["p"].as_f64().unwrap() > 0.0);
    assert_eq!(
        scores["baselines"][1]["splits"][0]["respondents"],
        scores["splits"][0]["respondents"]
    );
    // another simulation of the same respondents (no persona) against this one: paired
    let unsteered = tmp.path().join("unsteered");
    let versus = simulate(
        &unsteered,
        &[
            "--limit",
            "6",
            "--no-persona",
            "--versus",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        versus.status.success(),
        "{}",
        String::from_utf8_lossy(&versus.stderr)
    );
    let paired: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(unsteered.join("scores.json")).unwrap())
            .unwrap();
    let against = paired["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["versus"] == "SmolLM2-135M-Instruct.Q4_1 · persona (--versus)" && d["split"] == "all"
        })
        .count();
    assert_eq!(against, 2, "one per temperature");
    // other respondents cannot be paired: a clear error
    let mismatched = simulate(
        &tmp.path().join("mismatched"),
        &["--limit", "5", "--versus", out.to_str().unwrap()],
    );
    assert!(!mismatched.status.success());
    assert!(
        String::from_utf8_lossy(&mismatched.stderr).contains("its `limit` (6) differs"),
        "{}",
        String::from_utf8_lossy(&mismatched.stderr)
    );
    let recs = records(&out);
    assert_eq!(recs.len(), 6);
    for r in &recs {
        assert!(r["persona"].as_str().unwrap().contains("It is 2099."));
        for item in r["items"].as_array().unwrap() {
            let p: Vec<f64> = serde_json::from_value(item["p"].clone()).unwrap();
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            // temperature 0 draws the most probable option
            let best = (0..p.len()).fold(0, |b, i| if p[i] > p[b] { i } else { b });
            assert_eq!(item["sampled"][0].as_u64().unwrap() as usize, best);
        }
    }
    // 6 respondents × 2 items × 2 temperatures
    let answers = std::fs::read_to_string(out.join("answers.csv")).unwrap();
    assert_eq!(answers.lines().count(), 1 + 24);
    assert!(answers.starts_with("id,split,weight,item,temperature,real,simulated,p_real\n"));
    let scores: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scores.json")).unwrap()).unwrap();
    assert_eq!(scores["splits"][0]["split"], "all");
    assert_eq!(scores["splits"][0]["respondents"], 6);
    let split: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("split.json")).unwrap()).unwrap();
    let n_split: usize = ["train", "validation", "test"]
        .iter()
        .map(|s| split[s].as_array().unwrap().len())
        .sum();
    assert_eq!(n_split, 1500);
    let cells = std::fs::read_to_string(out.join("simulate.cells.jsonl")).unwrap();
    // logp + sample@0 + sample@1, per item
    assert_eq!(cells.lines().count(), 6);

    // a kill mid-write: the torn last record is dropped and that respondent asked again
    let log = out.join("respondents.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let keep = text.trim_end().rfind('\n').unwrap() + 1;
    std::fs::write(&log, format!("{}{{\"key\": \"torn", &text[..keep])).unwrap();
    let rerun = simulate(&out, &["--limit", "6"]);
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "{stderr}");
    assert!(stderr.contains("1 to do"), "{stderr}");
    let resumed = std::fs::read_to_string(&log).unwrap();
    assert_close(
        &serde_json::to_value(by_key(&resumed)).unwrap(),
        &serde_json::to_value(by_key(&text)).unwrap(),
        1e-5,
        "resumed",
    );

    // two shards give the same records and scores as one job
    let sharded = tmp.path().join("sharded");
    for shard in ["0/2", "1/2"] {
        let run = simulate(&sharded, &["--limit", "6", "--shard", shard]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let sharded_log = std::fs::read_to_string(sharded.join("respondents.jsonl")).unwrap();
    assert_close(
        &serde_json::to_value(by_key(&sharded_log)).unwrap(),
        &serde_json::to_value(by_key(&resumed)).unwrap(),
        1e-5,
        "sharded",
    );
    assert_close(
        &read_json(&sharded.join("scores.json")),
        &read_json(&out.join("scores.json")),
        1e-4,
        "scores",
    );

    // other settings in the same folder are refused
    let other = simulate(&out, &["--limit", "5"]);
    assert_clean_failure(&other, "holds a simulation with other settings");
}

#[test]
fn simulate_refuses_bad_input_before_loading_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sim");
    let missing = simulate_survey("no/such/survey", &out, &[]);
    assert_clean_failure(&missing, "no/such/survey");
    assert_clean_failure(
        &simulate(&out, &["--respondents", "everyone"]),
        "expected all, train, validation or test",
    );
    assert_clean_failure(&simulate(&out, &["--temperature=-1"]), "must be ≥ 0");
    assert_clean_failure(
        &simulate(
            &out,
            &["--train-fraction", "0.95", "--validation-fraction", "0.1"],
        ),
        "train + validation < 1",
    );
    // a codebook that names a column the data lacks
    let dir = tmp.path().join("survey");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("data.csv"), "id,age,q\n1,30,1\n").unwrap();
    std::fs::write(
        dir.join("codebook.toml"),
        r#"name = "bad"
title = "bad"
source = "test"
data = "data.csv"
persona = "You are {age}."
[[demographic]]
column = "age"
kind = "number"
[[item]]
column = "qq"
kind = "ordinal"
question = "?"
options = [{ code = "1", label = "a" }, { code = "2", label = "b" }]
"#,
    )
    .unwrap();
    let bad = simulate_survey(dir.to_str().unwrap(), &out, &[]);
    assert_clean_failure(&bad, "qq");
    assert!(!out.exists(), "bad input wrote {}", out.display());
}
