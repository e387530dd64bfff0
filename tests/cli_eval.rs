//! `probe eval` end to end on the embedded default model: the biased-coin question set,
//! resume after a kill (torn last line), and the clean errors.

mod support;

use support::*;

fn eval(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let gguf = workspace_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    probe()
        .current_dir(workspace_root())
        .arg("eval")
        .arg(gguf)
        .args(["--questions", "data/eval/coin.jsonl"])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn eval_writes_cells_resumes_and_reports_tv() {
    if smollm2_gguf().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eval-coin");
    let args = [
        "--question-ids",
        "coin-10,coin-50,coin-90",
        "--methods",
        "logp,sample,verbalize",
        "--steering",
        "none",
        "--n",
        "10",
    ];
    let run = eval(&out, &args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("9 units in shard 0/1 (0 finished before), 9 to do"),
        "{stderr}"
    );
    for row in [
        "logp ",
        "sample ",
        "verbalize ",
        "baseline-uniform",
        "baseline-majority",
    ] {
        assert!(stdout.contains(row), "{stdout}");
    }
    let cells = probe_data::cells::read_jsonl(&out.join("eval.cells.jsonl"), false).unwrap();
    assert!(cells.len() >= 6, "{}", cells.len()); // logp and sample always parse
    for c in &cells {
        assert_eq!(c.options, ["Heads", "Tails"]);
        assert_eq!(c.labels["model"], "SmolLM2-135M-Instruct.Q4_1");
        let p = c.predicted.as_ref().unwrap();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{c:?}");
        let q = &c.labels["question"];
        let heads: f64 = q.trim_start_matches("coin-").parse::<f64>().unwrap() / 100.0;
        assert!((c.reference.as_ref().unwrap()[0] - heads).abs() < 1e-12);
    }
    let units = std::fs::read_to_string(out.join("units.jsonl")).unwrap();
    assert_eq!(units.lines().count(), 9);
    // the audit keeps the prompt in the model's chat template
    assert!(units.contains("<|im_start|>user"), "{units}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["by_setting"].as_array().unwrap().len(), 3);

    // killed mid-write: a torn last line is dropped and only the missing unit is redone
    let mut lines: Vec<&str> = units.lines().collect();
    let last = lines.pop().unwrap();
    let torn = format!("{}\n{}", lines.join("\n"), &last[..last.len() / 2]);
    std::fs::write(out.join("units.jsonl"), torn).unwrap();
    let run = eval(&out, &args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("(8 finished before), 1 to do"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("units.jsonl"))
            .unwrap()
            .lines()
            .count(),
        9
    );
    // plain-text prompts for base models
    let plain = tmp.path().join("plain");
    let run = eval(
        &plain,
        &[
            "--question-ids",
            "coin-30",
            "--methods",
            "logp",
            "--steering",
            "none",
            "--no-chat",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let units = std::fs::read_to_string(plain.join("units.jsonl")).unwrap();
    assert!(
        !units.contains("<|im_start|>") && units.contains("Question: A biased coin"),
        "{units}"
    );
    // few-shot with neighbours from the model's own hidden states
    let fewshot = tmp.path().join("fewshot");
    let run = eval(
        &fewshot,
        &[
            "--question-ids",
            "coin-50",
            "--methods",
            "logp",
            "--steering",
            "fewshot",
            "--similarity",
            "model",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let similar: std::collections::BTreeMap<String, Vec<String>> =
        serde_json::from_str(&std::fs::read_to_string(fewshot.join("similar.json")).unwrap())
            .unwrap();
    assert_eq!(similar.len(), 9);
    for (q, neighbours) in &similar {
        assert_eq!(neighbours.len(), 8, "{q}");
        assert!(!neighbours.contains(q), "{q} is its own neighbour");
    }
    let record: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(fewshot.join("units.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["audit"]["shots"], 5, "{record}");
    assert!(record["audit"]["prompt"]
        .as_str()
        .unwrap()
        .contains("Here is how people answered"));
    // other settings into the same directory: refused
    let mut other = args.to_vec();
    other[7] = "20";
    assert_clean_failure(&eval(&out, &other), "other settings");
}

#[test]
fn eval_bad_input() {
    if smollm2_gguf().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("e");
    assert_clean_failure(
        &eval(&out, &["--methods", "logits"]),
        "unknown method `logits`",
    );
    assert_clean_failure(
        &eval(&out, &["--steering", "sideways"]),
        "unknown steering `sideways`",
    );
    assert_clean_failure(
        &eval(&out, &["--question-ids", "coin-11"]),
        "question `coin-11` is not in coin",
    );
    assert_clean_failure(&eval(&out, &["--shard", "2/2"]), "'2/2' for '--shard");
    assert_clean_failure(&eval(&out, &["--n", "0"]), "--n <N>': must be at least 1");
}

fn eval_vote(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let gguf = workspace_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    probe()
        .current_dir(workspace_root())
        .arg("eval")
        .arg(gguf)
        .args(["--vote", "data/demo/wahl-o-mat/2099-demowahl"])
        .args(["--parties", "SA,ÖU,FB,LM,KBP,HL"])
        .args(["--where", "year=2021", "--persona-sample", "3"])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn eval_vote_asks_personas_and_the_report_pools_them_against_the_survey() {
    if smollm2_gguf().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let out = run_dir.join("eval-vote");
    let survey = [
        "--survey",
        "data/demo/survey.csv",
        "--survey-weight",
        "weight",
    ];
    // few-shot examples must come from another survey: without one, a clear refusal
    let mut args = vec!["--methods", "logp"];
    args.extend(survey);
    assert_clean_failure(
        &eval_vote(&out, &args),
        "few-shot steering of the voting question needs --shots-from",
    );
    // the scored survey itself as the shots' source is the answer in the prompt: refused
    let mut leaky = args.clone();
    leaky.extend(["--shots-from", "data/demo/survey.csv"]);
    assert_clean_failure(&eval_vote(&out, &leaky), "puts the answer in the prompt");
    args.extend(["--shots-from", "data/demo/survey-2095.csv"]);
    let run = eval_vote(&out, &args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("6 parties (SA, ÖU, FB, LM, KBP, HL), 3 personas"),
        "{stderr}"
    );
    // the population unsteered, 3 personas under persona and under few-shot steering
    assert!(stderr.contains("7 units in shard 0/1"), "{stderr}");
    let cells = probe_data::cells::read_jsonl(&out.join("eval.cells.jsonl"), false).unwrap();
    assert_eq!(cells.len(), 7);
    for c in &cells {
        assert_eq!(c.options, ["SA", "ÖU", "FB", "LM", "KBP", "HL"]);
        assert_eq!(c.labels["dataset"], "vote-2099-demowahl");
        let p = c.predicted.as_ref().unwrap();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let persona = c.labels.get("persona");
        assert_eq!(persona.is_none(), c.labels["steering"] == "none", "{c:?}");
        if let Some(id) = persona {
            assert!(id.starts_with("age=") && id.ends_with(";year=2021"), "{id}");
        }
    }
    // the fewshot prompt shows the persona's groups in the previous election (2095)
    let record: serde_json::Value = std::fs::read_to_string(out.join("units.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["cell"]["steering"] == "fewshot")
        .unwrap();
    let prompt = record["audit"]["prompt"].as_str().unwrap();
    assert!(prompt.contains("Gruppe „survey-2095 – "), "{prompt}");
    assert!(prompt.contains("bei einer anderen Wahl"), "{prompt}");
    assert!(prompt.contains("Versetzen Sie sich nun in folgende Person: „Ich bin"));
    // TV of the pooled distributions against the survey's groups
    for row in [
        "logp         none",
        "logp         persona",
        "logp         fewshot",
    ] {
        assert!(stdout.contains(row), "{stdout}");
    }
    let tv: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tv.json")).unwrap()).unwrap();
    assert_eq!(tv["reference"], "survey");
    let persona = tv["tv"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["steering"] == "persona")
        .unwrap();
    let tv_all = persona["tv_all"].as_f64().unwrap();
    assert!(tv_all > 0.0 && tv_all < 1.0, "{persona}");
    // the report pools the persona cells by attribute value beside the survey
    let report = probe()
        .current_dir(workspace_root())
        .arg("report")
        .arg(&run_dir)
        .args(survey)
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report/report.json")).unwrap())
            .unwrap();
    let board = json["leaderboard"].as_array().unwrap();
    let entry = board
        .iter()
        .find(|e| e["name"].as_str().unwrap().contains("logp · persona"))
        .unwrap_or_else(|| panic!("{board:?}"));
    // the report's TV over the survey's groups equals eval's mean over the same scopes
    let mean_tv = persona["mean_tv"].as_f64().unwrap();
    assert!(
        (entry["tv"].as_f64().unwrap() - mean_tv).abs() < 1e-9,
        "{entry} vs {mean_tv}"
    );
}
