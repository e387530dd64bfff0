//! `probe study` end to end on the embedded default model and the demo election: a rerun
//! reuses everything, a killed study (during extraction, then during scaling) resumes to the
//! same results, a changed persona template re-runs only what depends on it, and malformed
//! experiment files fail before any model is loaded, naming the key.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A small study: one template, 2-fold CV, 16 personas × 2 variants, the coin toy (log-p).
fn experiment(out: &Path, persona_templates: &Path) -> String {
    format!(
        r#"
name = "test study"
out = "{out}"

[[model]]
path = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
label = "smol"

[election]
dir = "data/demo/wahl-o-mat/2099-demowahl"
parties = ["SA", "ÖU", "FB", "LM", "KBP", "HL"]

[probes]
templates = ["de-quiz"]
folds = 2
k = 5
shard_size = 16

[personas]
templates = "{templates}"
variants = ["de-stimme", "en-vote"]
where = ["age=45-54", "education=abitur", "income=middle", "employment=employed", "ideology=left,right"]
shard_size = 4

[[eval]]
questions = "data/eval/coin.jsonl"
question_ids = ["coin-10", "coin-90"]
methods = ["logp"]
steering = ["none"]

[survey]
csv = "data/demo/survey.csv"
weight = "weight"

[report]
bootstrap = 50
"#,
        out = out.display(),
        templates = persona_templates.display()
    )
}

fn spawn(experiment: &Path) -> Child {
    probe()
        .current_dir(workspace_root())
        .arg("study")
        .arg(experiment)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn run_to_end(experiment: &Path) -> String {
    let out = probe()
        .current_dir(workspace_root())
        .arg("study")
        .arg(experiment)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_with_ext(&p, ext));
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
    out
}

/// Kills `child` once `ready` holds (polling), before it exits on its own.
fn kill_when(mut child: Child, what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("probe study exited ({status}) before {what}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "waited too long for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn run_dir(out: &Path) -> PathBuf {
    out.join("smol/SmolLM2-135M-Instruct.Q4_1/run")
}

/// The results that must not depend on interruptions: probe weights, ψ, eval cells.
fn results(out: &Path) -> Vec<(String, Vec<u8>)> {
    let run = run_dir(out);
    [
        "probes.safetensors",
        "scale-personas/psi.json",
        "scale-personas/rows.jsonl",
        "eval-coin/eval.cells.jsonl",
    ]
    .iter()
    .map(|f| {
        let mut bytes = std::fs::read(run.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        if !f.ends_with(".safetensors") {
            // provenance names the study's own directory
            let text = String::from_utf8(bytes).unwrap();
            bytes = text
                .replace(&out.display().to_string(), "<out>")
                .into_bytes();
        }
        if f.ends_with(".json") {
            // wall times are the one thing an interruption may change
            let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            drop_seconds(&mut v);
            return (f.to_string(), serde_json::to_vec_pretty(&v).unwrap());
        }
        (f.to_string(), bytes)
    })
    .collect()
}

fn drop_seconds(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.remove("seconds");
            map.values_mut().for_each(drop_seconds);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_seconds),
        _ => {}
    }
}

fn assert_same_results(a: &Path, b: &Path) {
    for ((name, x), (_, y)) in results(a).iter().zip(results(b)) {
        if *x != y {
            let first = String::from_utf8_lossy(x)
                .lines()
                .zip(String::from_utf8_lossy(&y).lines())
                .find(|(l, r)| l != r)
                .map(|(l, r)| format!("{l}\n  vs\n{r}"))
                .unwrap_or_default();
            panic!(
                "{name} differs after the interrupted run ({} vs {} bytes): {}",
                x.len(),
                y.len(),
                first.chars().take(600).collect::<String>()
            );
        }
    }
}

#[test]
fn study_reuses_resumes_and_reruns_only_what_changed() {
    if smollm2_gguf().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let templates = tmp.path().join("persona-prompts.toml");
    std::fs::copy(
        workspace_root().join("data/personas/prompts.toml"),
        &templates,
    )
    .unwrap();

    // an uninterrupted study
    let a = tmp.path().join("a");
    let exp_a = tmp.path().join("a.toml");
    std::fs::write(&exp_a, experiment(&a, &templates)).unwrap();
    let first = run_to_end(&exp_a);
    assert!(
        first.contains("done in") && first.contains("7 stages run, 0 reused"),
        "{first}"
    );
    assert!(a.join("report/report.html").is_file());
    assert!(run_dir(&a).join("compare-coin.csv").is_file());
    assert!(a.join("study.log").is_file());
    // immediately again: everything reused
    let t = Instant::now();
    let again = run_to_end(&exp_a);
    assert!(again.contains("0 stages run, 7 reused"), "{again}");
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());

    // killed during extraction, then during scaling, then run to the end: same results
    let b = tmp.path().join("b");
    let exp_b = tmp.path().join("b.toml");
    std::fs::write(&exp_b, experiment(&b, &templates)).unwrap();
    let cache = b.join("smol/cache");
    kill_when(spawn(&exp_b), "the first extraction shard", || {
        !files_with_ext(&cache, "safetensors").is_empty()
    });
    assert!(
        !b.join("stages/smol__extract.json").exists(),
        "extraction finished before the kill"
    );
    let scale_dir = run_dir(&b).join("scale-personas");
    kill_when(spawn(&exp_b), "the first scaling shard", || {
        !files_with_ext(&scale_dir, "safetensors").is_empty()
    });
    assert!(
        b.join("stages/smol__extract.json").exists(),
        "the second run finished extraction"
    );
    assert!(
        !b.join("stages/smol__scale.json").exists(),
        "scaling finished before the kill"
    );
    let resumed = run_to_end(&exp_b);
    assert!(resumed.contains("smol/extract reused"), "{resumed}");
    assert_same_results(&a, &b);

    // a job array: two extraction shards, then one run for the rest — same results again
    let c = tmp.path().join("c");
    let exp_c = tmp.path().join("c.toml");
    std::fs::write(&exp_c, experiment(&c, &templates)).unwrap();
    for shard in ["0/2", "1/2"] {
        let job = probe()
            .current_dir(workspace_root())
            .args([
                "study",
                exp_c.to_str().unwrap(),
                "--stage",
                "extract",
                "--shard",
                shard,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&job.stderr);
        assert!(job.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("shard {shard} finished")),
            "{stderr}"
        );
    }
    assert!(!c.join("stages/smol__extract.json").exists());
    let merged = run_to_end(&exp_c);
    assert!(merged.contains("0 of 5 shards to do"), "{merged}");
    assert_same_results(&a, &c);

    // one persona template changed: scale and report run again, nothing else
    let text = std::fs::read_to_string(&templates).unwrap();
    let changed = text.replacen(
        "Meine Zweitstimme {year} geht an die Partei",
        "Meine Zweitstimme {year} bekommt die Partei",
        1,
    );
    assert_ne!(text, changed);
    std::fs::write(&templates, changed).unwrap();
    let rerun = run_to_end(&exp_a);
    for reused in ["extract", "train", "vectors", "eval-coin", "compare-coin"] {
        assert!(
            rerun.contains(&format!("smol/{reused} reused")),
            "{reused}: {rerun}"
        );
    }
    assert!(rerun.contains("smol/scale started"), "{rerun}");
    assert!(rerun.contains("report started"), "{rerun}");
    assert!(rerun.contains("2 stages run, 5 reused"), "{rerun}");
}

#[test]
fn malformed_experiments_fail_before_loading_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let templates = workspace_root().join("data/personas/prompts.toml");
    let out = tmp.path().join("out");
    let good = experiment(&out, &templates);
    let cases = [
        (
            good.replace("label = \"smol\"", "label = \"smol\"\nlable = \"x\""),
            "unknown field `lable`",
        ),
        (
            good.replace("SmolLM2-135M-Instruct.Q4_1.gguf", "missing.gguf"),
            "model[0].path: models/missing.gguf does not exist",
        ),
        (
            good.replace("folds = 2", "folds = 2\nlayers = [0.6, 1.2]"),
            "probes.layers[1]: 1.2 lies outside (0, 1]",
        ),
        (
            good.replace(
                "bootstrap = 50",
                "bootstrap = 50\nmetrics = [\"tv\", \"emd\"]",
            ),
            "report.metrics: unknown metric `emd`",
        ),
        (
            good.replace("methods = [\"logp\"]", "methods = [\"logits\"]"),
            "eval[0].methods: unknown method `logits`",
        ),
        (
            good.replace("ideology=left,right", "ideology=far-left"),
            "personas.where",
        ),
        // the contents of the inputs, not only their existence (issue 19 item 11)
        (
            good.replace("\"SA\", \"ÖU\"", "\"SA\", \"ÖUX\""),
            "election.parties: 2099-demowahl: unknown party `ÖUX`",
        ),
        (
            good.replace("\"de-stimme\"", "\"de-stimmen\""),
            "personas.variants: no variant `de-stimmen`",
        ),
        (
            good.replace("templates = [\"de-quiz\"]", "templates = [\"de-quizz\"]"),
            "probes.templates",
        ),
        (
            good.replace("\"coin-90\"", "\"coin-91\""),
            "eval[0].question_ids",
        ),
        (
            good.replace("weight = \"weight\"", "weight = \"gewicht\""),
            "survey.csv",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = tmp.path().join(format!("bad-{i}.toml"));
        std::fs::write(&path, text).unwrap();
        for dry_run in [true, false] {
            let run = probe()
                .current_dir(workspace_root())
                .arg("study")
                .arg(&path)
                .args(dry_run.then_some("--dry-run"))
                .output()
                .unwrap();
            assert_clean_failure(&run, expected);
            assert!(!out.exists(), "case {i} created the output before failing");
        }
    }
}
