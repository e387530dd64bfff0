//! `probe train` end to end: extraction when the cache is missing, artifacts that load back
//! and reproduce the saved decisions, and clean errors on bad input.

mod support;

use std::path::Path;

use support::*;

const ELECTION: &str = "data/demo/wahl-o-mat/2099-demowahl";
/// Layers 24..=27 and 3 folds: a few seconds of training.
const DEMO: &[&str] = &["--layers", "0.8L..0.9L", "--folds", "3"];

/// `probe train` on the demo election; `extra` must include `--layers` and `--folds`.
fn train(gguf: &Path, tmp: &Path, extra: &[&str]) -> std::process::Output {
    probe()
        .current_dir(workspace_root())
        .arg("train")
        .arg(gguf)
        .args([
            "--election",
            ELECTION,
            "--parties",
            "SA,ÖU,FB,LM,KBP,HL",
            "--templates",
            "de-quiz,en-short",
            "--out",
        ])
        .arg(tmp.join("cache"))
        .arg("--probes-dir")
        .arg(tmp.join("probes"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn train_extracts_then_saves_probes_that_load_back() {
    let Some(gguf) = smollm2_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = train(&gguf, tmp.path(), &[DEMO, &["--run", "demo"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("6 of 6 shards to do") || stderr.contains("shards to do"),
        "{stderr}"
    );
    assert!(stdout.contains("leak-free"), "{stdout}");
    assert!(stdout.contains("best layer"), "{stdout}");

    let run = tmp.path().join("probes/SmolLM2-135M-Instruct.Q4_1/demo");
    let loaded = probe_train::load(&run).unwrap();
    let report = &loaded.json.report;
    // 0.8L..0.9L of 30 layers = blocks 24..27.
    assert_eq!(report.hooks.len(), 4);
    assert_eq!(report.parties.len(), 6);
    assert_eq!(loaded.per_layer.len(), 6);
    assert_eq!(loaded.per_layer[0].len(), 4);
    assert_eq!(loaded.shared.len(), 6);
    // the pooled shared-probe score printed is the one probes.json holds (hook `all`)
    let pooled: Vec<f64> = report
        .shared
        .iter()
        .filter(|r| r.hook == "all")
        .map(|r| r.mean.balanced_accuracy)
        .collect();
    assert_eq!(pooled.len(), 6);
    let line = format!(
        "all layers' rows pooled: mean balanced accuracy {:.3}",
        pooled.iter().sum::<f64>() / 6.0
    );
    assert!(stdout.contains(&line), "{line} not in {stdout}");
    assert_eq!(report.per_layer.len(), 6 * 4);
    assert_eq!(report.shared.len(), 6 * 5);
    assert_eq!(report.positive_replication, vec![5; 6]);
    for r in report.per_layer.iter().chain(&report.shared) {
        assert_eq!(r.folds.len(), 3);
        let m = r.mean;
        for v in [m.accuracy, m.balanced_accuracy, m.auc, m.f1] {
            assert!((0.0..=1.0).contains(&v), "{r:?}");
        }
    }
    // Statements never straddle folds: 12 statements × 6 parties × 2 templates.
    assert_eq!(report.folds.len(), 144);

    // The saved probe applied to the cached rows reproduces its own training-set decisions,
    // through both parameterizations (standardized weights, and activation-space direction).
    let cache = probe_cache::CacheReader::open(&tmp.path().join("cache")).unwrap();
    let (x, dim) = cache.read_hook(&report.hooks[0]).unwrap();
    let probe = &loaded.per_layer[2][0];
    let direction = probe.direction();
    let mut correct = 0;
    for (i, row) in cache.manifest().rows.iter().enumerate() {
        let v = &x[i * dim..(i + 1) * dim];
        let a = probe.decision(v);
        let b: f64 = direction
            .iter()
            .zip(v)
            .map(|(d, &x)| d * x as f64)
            .sum::<f64>()
            + probe.raw_bias();
        assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "{a} vs {b}");
        correct += usize::from((a > 0.0) == (row.label == Some(2)));
    }
    assert!(correct > 144 / 2, "training accuracy {correct}/144");

    // A second run reuses the finished cache, and reproduces the same scores (fixed seeds).
    let again = train(&gguf, tmp.path(), &[DEMO, &["--run", "again"]].concat());
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 of"));
    let second =
        probe_train::load(&tmp.path().join("probes/SmolLM2-135M-Instruct.Q4_1/again")).unwrap();
    assert_eq!(second.json.report.per_layer, report.per_layer);
    assert_eq!(second.json.data_sha256, loaded.json.data_sha256);
}

#[test]
fn train_bad_inputs() {
    let Some(gguf) = smollm2_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = train(&gguf, tmp.path(), &[DEMO, &["--C", "0"]].concat());
    assert_clean_failure(&out, "C must be a positive number");
    let out = train(
        &gguf,
        tmp.path(),
        &[DEMO, &["--parties", "Mondpartei"]].concat(),
    );
    assert_clean_failure(&out, "unknown party `Mondpartei`");
    let out = train(
        &gguf,
        tmp.path(),
        &[DEMO, &["--templates", "no-such-template"]].concat(),
    );
    assert_clean_failure(&out, "no-such-template");
    assert!(
        !tmp.path().join("cache").exists(),
        "nothing written on bad input"
    );
    // More folds than statements.
    let out = train(&gguf, tmp.path(), &["--folds", "13", "--layers", "27"]);
    assert_clean_failure(&out, "needs at least 13 groups");
    // The cache now exists for layer 27 only: asking for other layers must not reuse it.
    let out = train(&gguf, tmp.path(), &["--layers", "26", "--folds", "3"]);
    assert_clean_failure(&out, "was made for hook points");
    assert!(!tmp.path().join("probes").exists());
}

/// The real Wahl-o-Mat elections in `../shared` (different party sets and spellings) go
/// through extract + train unchanged; one template and an early layer (the forward stops after
/// the last hooked layer: 10 s an election instead of 58 s at layer 22) keep it short.
#[test]
fn train_runs_on_every_shared_election() {
    let Some(gguf) = smollm2_gguf() else { return };
    let shared = workspace_root().join("../shared/data/wahl-o-mat");
    if !shared.is_dir() {
        eprintln!("notice: {} is absent; skipping", shared.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for id in [
        "2017-deutschland",
        "2019-europa",
        "2024-europa",
        "2025-deutschland",
    ] {
        let out = probe()
            .current_dir(workspace_root())
            .arg("train")
            .arg(&gguf)
            .arg("--election")
            .arg(shared.join(id))
            // the chance level is tested on the demo election; here only that training runs
            .args([
                "--templates",
                "de-quiz",
                "--layers",
                "3",
                "--null-seeds",
                "0",
                "--out",
            ])
            .arg(tmp.path().join(id))
            .arg("--probes-dir")
            .arg(tmp.path().join("probes"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{id}: {stderr}");
        let run = tmp.path().join(format!(
            "probes/SmolLM2-135M-Instruct.Q4_1/{id}-last-before-answer"
        ));
        let loaded = probe_train::load(&run).unwrap();
        let report = &loaded.json.report;
        assert_eq!(report.parties.len(), 6, "{id}");
        assert_eq!(report.hooks, vec!["blocks.3.hook_resid_post"], "{id}");
        assert_eq!(report.folds.len(), 38 * 6, "{id}");
        let summary = report.summary[0].per_layer.unwrap();
        assert!(
            (0.0..=1.0).contains(&summary.balanced_accuracy) && (0.0..=1.0).contains(&summary.auc),
            "{id}: {summary:?}"
        );
        eprintln!(
            "{id}: mean balanced accuracy {:.3}, AUC {:.3}",
            summary.balanced_accuracy, summary.auc
        );
    }
}

/// An installed `probe` works from any directory: in an empty directory outside the
/// repository, train → vectors → scale run on their default data files (probe prompts, persona
/// grid and prompts), which are built into the binary.
#[test]
fn the_pipeline_runs_outside_the_repository_on_built_in_defaults() {
    let Some(gguf) = smollm2_gguf() else {
        return;
    };
    let gguf = gguf.canonicalize().unwrap();
    let election = workspace_root()
        .join("data/demo/wahl-o-mat/2099-demowahl")
        .canonicalize()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    assert!(!tmp.path().join("data").exists());
    let run = |args: &[&str]| {
        let out = probe().current_dir(tmp.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "probe {args:?}: {stderr}");
        stderr
    };
    let model = gguf.to_str().unwrap();
    run(&[
        "train",
        model,
        "--election",
        election.to_str().unwrap(),
        "--parties",
        "SA,ÖU,FB,LM,KBP,HL",
        "--templates",
        "de-quiz",
        "--folds",
        "2",
        "--null-seeds",
        "0",
    ]);
    let probes = "probes/SmolLM2-135M-Instruct.Q4_1/2099-demowahl-last-before-answer";
    assert!(tmp.path().join(probes).join("probes.json").is_file());
    run(&["vectors", model, "--probes", probes, "-k", "5"]);
    run(&[
        "scale",
        model,
        "--probes",
        probes,
        "--variants",
        "de-stimme",
        "--where",
        "age=45-54",
        "--where",
        "education=abitur",
        "--where",
        "income=middle",
        "--where",
        "employment=employed",
        "--where",
        "ideology=left",
        "--where",
        "region=east",
        "--where",
        "year=2021",
    ]);
    let scale = std::fs::read_dir(tmp.path().join(probes))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("scale-")
        })
        .expect("a scale-* directory");
    let psi: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scale.join("psi.json")).unwrap()).unwrap();
    // two personas (the genders) of the built-in grid, under one variant
    assert_eq!(psi["all"]["rows"], 2, "{}", psi["all"]);
    assert!(
        !tmp.path().join("data").exists(),
        "nothing was copied into the directory"
    );
}
