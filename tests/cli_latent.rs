//! `probe vectors` and `probe scale` end to end on the embedded default model: train on the
//! demo election → value vectors with vocabulary projections → persona scaling factors and
//! ψ, ψ_g, ψ_{j,g} that each sum to 1; resuming; clean errors on bad input.

mod support;

use std::path::{Path, PathBuf};

use support::*;

/// A CPU-sized subset of the paper's grid: 2 genders × 5 ideologies × 2 regions × 2 years =
/// 40 personas, × 5 variants (3 German, 2 English) = 200 prompts.
const SUBSET: &[&str] = &[
    "--where",
    "age=45-54",
    "--where",
    "education=abitur",
    "--where",
    "income=middle",
    "--where",
    "employment=employed",
    "--variants",
    "de-stimme,de-interview,de-umfrage,en-vote,en-survey",
];

/// Trains demo probes (layers 24..27, 3 folds) in `tmp` and returns the run directory.
fn demo_probes(gguf: &Path, tmp: &Path) -> PathBuf {
    let out = probe()
        .current_dir(workspace_root())
        .arg("train")
        .arg(gguf)
        .args([
            "--election",
            "data/demo/wahl-o-mat/2099-demowahl",
            "--parties",
            "SA,ÖU,FB,LM,KBP,HL",
            "--templates",
            "de-quiz,en-short",
            "--layers",
            "0.8L..0.9L",
            "--folds",
            "3",
            "--run",
            "demo",
            "--out",
        ])
        .arg(tmp.join("cache"))
        .arg("--probes-dir")
        .arg(tmp.join("probes"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmp.join("probes/SmolLM2-135M-Instruct.Q4_1/demo")
}

/// `probe scale <gguf> --probes <probes> <args…>` from the workspace root.
fn scale(gguf: &Path, probes: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    probe()
        .current_dir(workspace_root())
        .arg("scale")
        .arg(gguf)
        .arg("--probes")
        .arg(probes)
        .args(args)
        .output()
        .unwrap()
}

fn sums_to_one(psi: &serde_json::Value, what: &str) {
    let total: f64 = psi
        .as_object()
        .unwrap_or_else(|| panic!("{what}: no distribution"))
        .values()
        .map(|x| x.as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "{what}: ψ sums to {total}");
}

#[test]
fn train_vectors_scale_end_to_end() {
    let Some(gguf) = smollm2_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let probes = demo_probes(&gguf, tmp.path());

    // probe vectors: all four selections, vocabulary projections printed per party.
    let out = probe()
        .current_dir(workspace_root())
        .arg("vectors")
        .arg(&gguf)
        .arg("--probes")
        .arg(&probes)
        .args(["--k", "10"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for party in ["SA", "ÖU", "FB", "LM", "KBP", "HL"] {
        assert!(
            stdout.contains(&format!("{party} (probe shared")),
            "{stdout}"
        );
    }
    assert!(stdout.matches("cos +").count() >= 6 * 5, "{stdout}");
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(probes.join("vectors/vectors.json")).unwrap(),
    )
    .unwrap();
    // By default the layers the probes were trained on (0.8L..0.9L of 30: 24..=27), as the
    // paper searches them.
    assert_eq!(vectors["layers"], serde_json::json!([24, 25, 26, 27]));
    assert_eq!(vectors["neurons"], 1536);
    // every party's selection is tested against chance: random directions and the 20
    // label-shuffled probes of its own party (`probe train`'s default --null-seeds 20), each
    // null large enough to decide (1/21 < 0.05): the verdict is never "undetermined" here
    let chance = vectors["chance"].as_array().unwrap();
    assert_eq!(chance.len(), 6);
    for c in chance {
        assert_eq!(c["random"]["n"], 200, "{c}");
        assert_eq!(c["shuffled"]["n"], 20, "{c}");
        let p = c["shuffled"]["p"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{c}");
        let above = p < 0.05 && c["random"]["p"].as_f64().unwrap() < 0.05;
        assert_eq!(c["above_chance"].as_bool().unwrap(), above);
        assert_eq!(
            c["verdict"],
            if above { "above" } else { "not-above" },
            "{c}"
        );
    }
    let probes_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(probes.join("probes.json")).unwrap())
            .unwrap();
    let null = &probes_json["report"]["null"];
    assert_eq!(
        null["seeds"],
        serde_json::json!((1..=20).collect::<Vec<u64>>())
    );
    assert_eq!(null["verdict"].as_array().unwrap().len(), 6, "{null}");
    for acc in null["balanced_accuracy"].as_array().unwrap() {
        for a in acc.as_array().unwrap() {
            let a = a.as_f64().unwrap();
            assert!((0.0..=1.0).contains(&a), "{null}");
        }
    }
    let rows = vectors["vectors"].as_array().unwrap();
    let count = |mode: &str| rows.iter().filter(|r| r["mode"] == mode).count();
    assert_eq!(count("joint"), 6 * 10);
    assert_eq!(count("per-layer"), 6 * 10 * 4);
    assert_eq!(count("diametric"), 6 * 10);
    for r in rows {
        assert_eq!(r["tokens"].as_array().unwrap().len(), 10, "{r}");
        let cos = r["cos"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&cos));
        if r["mode"] == "joint" || r["mode"] == "iqr" {
            assert!(cos > 0.0, "{r}");
        }
        if r["mode"] == "diametric" {
            assert!(cos < 0.0, "{r}");
        }
    }
    // `--top-tokens` is bounded by the vocabulary (100000 used to abort after 6 GiB)
    let out = probe()
        .current_dir(workspace_root())
        .arg("vectors")
        .arg(&gguf)
        .arg("--probes")
        .arg(&probes)
        .args(["--top-tokens", "100000", "--out"])
        .arg(tmp.path().join("too-many-tokens"))
        .output()
        .unwrap();
    assert_clean_failure(
        &out,
        "--top-tokens 100000 is more than the vocabulary's 49152 tokens",
    );
    let csv = std::fs::read_to_string(probes.join("vectors/vectors.csv")).unwrap();
    assert_eq!(csv.lines().count(), rows.len() + 1);
    assert!(probes.join("vectors/vectors.safetensors").is_file());

    // probe scale on a grid subset.
    let scale_args = |extra: &[&str]| -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = vec!["scale".into(), gguf.clone().into()];
        v.push("--probes".into());
        v.push(probes.clone().into());
        v.extend(SUBSET.iter().map(|s| s.into()));
        v.extend(extra.iter().map(|s| s.into()));
        v
    };
    let out = probe()
        .current_dir(workspace_root())
        .args(scale_args(&[]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("40 personas × 5 variants = 200 prompts"),
        "{stderr}"
    );
    assert!(stdout.contains("ψ (all 200 rows)"), "{stdout}");
    assert!(stdout.contains("negative:"), "{stdout}");
    let dir = probes.join("scale-paper-grid");
    let psi: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("psi.json")).unwrap()).unwrap();
    sums_to_one(&psi["all"]["psi"], "ψ");
    assert_eq!(psi["all"]["rows"], 200);
    assert_eq!(psi["format_version"], 1);
    // psi.json has a schema (probe-schema): a renamed field is an error naming the file and
    // the field's path, a newer version is refused naming it; never a "?" in a report
    let text = std::fs::read_to_string(dir.join("psi.json")).unwrap();
    for (edit, expected) in [
        (
            text.replacen("\"select\":", "\"selection\":", 1),
            "scale-x/psi.json: run: missing field `select`",
        ),
        (
            text.replacen("\"rows\": 200", "\"rows\": \"200\"", 1),
            "scale-x/psi.json: all.rows: invalid type: string \"200\", expected usize",
        ),
        (
            text.replacen("\"format_version\": 1", "\"format_version\": 9", 1),
            "scale-x/psi.json: format_version 9 is newer than this probe reads (up to 1)",
        ),
    ] {
        assert_ne!(edit, text, "the edit for `{expected}` changed nothing");
        let run = tmp.path().join("edited");
        std::fs::create_dir_all(run.join("scale-x")).unwrap();
        std::fs::write(run.join("scale-x/psi.json"), edit).unwrap();
        let out = probe().arg("report").arg(&run).output().unwrap();
        assert_clean_failure(&out, expected);
    }
    let groups = psi["by_group"].as_object().unwrap();
    assert_eq!(groups["gender"].as_object().unwrap().len(), 2);
    assert_eq!(groups["ideology"].as_object().unwrap().len(), 5);
    for (attr, values) in groups {
        for (value, d) in values.as_object().unwrap() {
            sums_to_one(&d["psi"], &format!("ψ_g {attr}={value}"));
        }
    }
    let variants = psi["by_variant"].as_object().unwrap();
    assert_eq!(variants.len(), 5);
    for (j, v) in variants {
        sums_to_one(&v["all"]["psi"], &format!("ψ_j {j}"));
        for (attr, values) in v["by_group"].as_object().unwrap() {
            for (value, d) in values.as_object().unwrap() {
                assert_eq!(
                    d["rows"],
                    if attr == "gender" || attr == "region" || attr == "year" {
                        20
                    } else if attr == "ideology" {
                        8
                    } else {
                        40
                    }
                );
                sums_to_one(&d["psi"], &format!("ψ_jg {j} {attr}={value}"));
            }
        }
    }
    assert_eq!(psi["negative"], "clip");
    // per party: the share of negative factors and ψ under each policy; clip is ψ itself
    for party in ["SA", "ÖU", "FB", "LM", "KBP", "HL"] {
        let e = &psi["run"]["policy_sensitivity"][party];
        let share = e["negative_share"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&share), "{e}");
        let clip = e["psi"]["clip"].as_f64().unwrap();
        assert!(
            (clip - psi["all"]["psi"][party].as_f64().unwrap()).abs() < 1e-9,
            "{e}"
        );
        assert!(e["psi"]["shift"].as_f64().is_some() && e["psi"]["softmax"].as_f64().is_some());
    }
    assert_eq!(
        psi["run"]["vector_layers"],
        serde_json::json!([24, 25, 26, 27])
    );
    assert!(psi["negative_factors"]["of"] == 200 * 6);
    let rows_csv = std::fs::read_to_string(dir.join("rows.csv")).unwrap();
    assert_eq!(rows_csv.lines().count(), 201);
    assert!(rows_csv.starts_with(
        "persona,variant,age,gender,education,income,employment,ideology,region,year,weight,m:SA"
    ));
    assert_eq!(
        std::fs::read_to_string(dir.join("rows.jsonl"))
            .unwrap()
            .lines()
            .count(),
        200
    );
    // The library reads both artifacts back: ψ in the parties' order, the rows with their
    // factors and distributions (the rows' weighted factor sums give ψ under clip).
    let summary = probe::scale::load_psi(&dir).unwrap();
    let order: Vec<&str> = summary
        .all
        .psi
        .as_ref()
        .unwrap()
        .0
        .iter()
        .map(|(p, _)| p.as_str())
        .collect();
    assert_eq!(order, ["SA", "ÖU", "FB", "LM", "KBP", "HL"]);
    assert_eq!(summary.by_variant.0.len(), 5);
    let rows = probe::scale::load_rows(&dir).unwrap();
    assert_eq!(rows.len(), 200);
    let clipped = |party: &str| -> f64 {
        rows.iter()
            .map(|r| r.weight * r.factors[party].max(0.0))
            .sum()
    };
    let total: f64 = order.iter().map(|p| clipped(p)).sum();
    for (party, psi) in &summary.all.psi.as_ref().unwrap().0 {
        assert!((clipped(party) / total - psi).abs() < 1e-9, "{party}");
    }
    assert!(dir.join("psi.csv").is_file());
    // The distributions as `probe compare` cells: they read back and each sums to 1.
    let cells = probe_data::cells::read_jsonl(&dir.join("psi.cells.jsonl"), false).unwrap();
    // Scopes: all, and the 15 kept attribute values (1+2+1+1+1+5+2+2); again per variant.
    assert_eq!(cells.len(), 1 + 15 + 5 * (1 + 15));
    assert!(cells
        .iter()
        .all(|c| c.options.len() == 6 && c.labels["method"] == "latent"));

    // Re-running reuses every coefficient; another negative rule only re-aggregates.
    let out = probe()
        .current_dir(workspace_root())
        .args(scale_args(&["--negative", "softmax"]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("0 of 1 shards to do"), "{stderr}");
    let psi: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("psi.json")).unwrap()).unwrap();
    assert_eq!(psi["negative"], "softmax");
    sums_to_one(&psi["all"]["psi"], "softmax ψ");

    // Explicit personas with survey weights.
    let jsonl = tmp.path().join("personas.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"a\", \"weight\": 3, \"attributes\": {\"age\": \"18-24\", \"gender\": \"female\", \"education\": \"university\", \"income\": \"low\", \"employment\": \"employed\", \"ideology\": \"left\", \"region\": \"east\", \"year\": \"2021\"}}\n\
         {\"id\": \"b\", \"weight\": 1, \"attributes\": {\"age\": \"75+\", \"gender\": \"male\", \"education\": \"hauptschule\", \"income\": \"high\", \"employment\": \"not-in-labour-force\", \"ideology\": \"right\", \"region\": \"west\", \"year\": \"tomorrow\"}}\n",
    )
    .unwrap();
    let out = probe()
        .current_dir(workspace_root())
        .arg("scale")
        .arg(&gguf)
        .arg("--probes")
        .arg(&probes)
        .arg("--personas")
        .arg(&jsonl)
        .args(["--variants", "de-stimme,en-vote"])
        .arg("--out")
        .arg(tmp.path().join("weighted"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let psi: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("weighted/psi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(psi["all"]["rows"], 4);
    assert_eq!(psi["all"]["weight"], 8.0);
    sums_to_one(&psi["all"]["psi"], "weighted ψ");

    // the same personas restricted to the 2021 vote: one year setting, compared like with like
    let out = probe()
        .current_dir(workspace_root())
        .args(scale_args(&["--where", "year=2021"]))
        .arg("--out")
        .arg(probes.join("scale-2021"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // probe report on this run against the fictional demo survey (data/demo/survey.csv, the
    // demo election's invented parties): every figure, numbers in report.json, and the HTML
    // renders in headless Chromium without errors.
    let out = probe()
        .current_dir(workspace_root())
        .arg("report")
        .arg(&probes)
        .args([
            "--survey",
            "data/demo/survey.csv",
            "--survey-weight",
            "weight",
        ])
        .args(["--bootstrap", "200"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report_dir = probes.join("report");
    let html = std::fs::read_to_string(report_dir.join("report.html")).unwrap();
    for id in probe_report::report::FIGURES {
        assert!(
            html.contains(&format!("<figure id=\"figure-{id}\">\n<svg")),
            "report.html lacks figure {id}"
        );
        // and for print: 300-dpi PNG and vector PDF (the default --format)
        for ext in ["svg", "png", "pdf"] {
            assert!(report_dir.join(format!("figures/{id}.{ext}")).is_file());
        }
    }
    let md = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(md.contains("![Probe accuracy per layer](figures/probe-accuracy.svg)"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("report.json")).unwrap())
            .unwrap();
    let board = report["leaderboard"].as_array().unwrap();
    // the grid subset pools both `year` settings (the 2021 vote and a vote "tomorrow"), and the
    // survey has no year: like with like, the latent ψ is not scored against it, and the
    // report says why
    assert!(
        !board.iter().any(|e| e["name"]
            .as_str()
            .unwrap()
            .contains("latent (demo/scale-paper-grid)")),
        "{board:?}"
    );
    assert!(
        md.contains("ψ pools personas of 2 (year = 2021, tomorrow)"),
        "{md}"
    );
    let latent = board
        .iter()
        .find(|e| {
            e["name"]
                .as_str()
                .unwrap()
                .contains("latent (demo/scale-2021)")
        })
        .unwrap_or_else(|| panic!("{board:?}"));
    // everyone + the 15 attribute values the grid subset covers (year: 2021 only, and no such
    // column in the survey): 1 + (1 + 2 + 1 + 1 + 1 + 5 + 2) = 14 groups
    assert_eq!(latent["groups"], 14, "{latent}");
    let tv = latent["tv"].as_f64().unwrap();
    assert!(tv > 0.0 && tv < 1.0 && latent["low"].as_f64().unwrap() <= tv);
    assert!(board.iter().any(|e| e["name"] == "baseline: uniform"));
    // the probes were trained on layers 0.8L..0.9L = 24..27
    assert_eq!(
        report["probe_accuracy"][0]["layers"],
        serde_json::json!([24, 25, 26, 27])
    );
    // the model's psi over everyone next to the survey's, both distributions
    let series = report["distributions"]["series"].as_array().unwrap();
    assert_eq!(series.len(), 3); // two ψ (both years, 2021 only) and the survey
    for s in series {
        let sum: f64 = s["distribution"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-9, "{s}");
    }
    if let Some(dom) = render_in_chromium(&report_dir.join("report.html"), "report") {
        for id in probe_report::report::FIGURES {
            let at = dom.find(&format!("id=\"figure-{id}\"")).expect(id);
            assert!(
                dom[at..].trim_start_matches(|c| c != '<').contains("<svg"),
                "{id}"
            );
        }
        assert_eq!(dom.matches("<svg").count(), 6);
    }

    // Bad input: the clean errors the issue asks for.
    let bad_spec = tmp.path().join("empty-attribute.toml");
    let spec =
        std::fs::read_to_string(workspace_root().join("data/personas/paper-grid.toml")).unwrap();
    let start = spec.find("name = \"income\"").unwrap();
    let values_start = start + spec[start..].find("values = [").unwrap();
    let values_end = values_start + spec[values_start..].find("]\n").unwrap() + 1;
    std::fs::write(
        &bad_spec,
        format!(
            "{}values = []{}",
            &spec[..values_start],
            &spec[values_end..]
        ),
    )
    .unwrap();
    let out = scale(
        &gguf,
        &probes,
        &["--persona".as_ref(), bad_spec.as_os_str()],
    );
    assert_clean_failure(&out, "attribute `income` has no values");

    let bad_prompts = tmp.path().join("no-slot.toml");
    std::fs::write(
        &bad_prompts,
        "[[template]]\nid = \"de-ohne\"\nlanguage = \"de\"\ntext = \"Meine Stimme {year} geht an die Partei\"\n",
    )
    .unwrap();
    let out = scale(
        &gguf,
        &probes,
        &["--prompts".as_ref(), bad_prompts.as_os_str()],
    );
    assert_clean_failure(&out, "template `de-ohne` has no {persona} slot");

    // Probes from another model: a different hidden size…
    let tiny = tmp.path().join("tiny");
    write_tiny_llama(&tiny, &tiny_config(), None);
    for cmd in ["vectors", "scale"] {
        let out = probe()
            .current_dir(workspace_root())
            .arg(cmd)
            .arg(&tiny)
            .arg("--probes")
            .arg(&probes)
            .output()
            .unwrap();
        assert_clean_failure(&out, "made with another model");
    }
    // …or the same architecture with other weights (a re-quantized file): fingerprint.
    let other = tmp.path().join("other.gguf");
    let mut bytes = std::fs::read(&gguf).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 4096..n - 2048] {
        *b ^= 0x11;
    }
    std::fs::write(&other, bytes).unwrap();
    let out = probe()
        .current_dir(workspace_root())
        .arg("vectors")
        .arg(&other)
        .arg("--probes")
        .arg(&probes)
        .output()
        .unwrap();
    assert_clean_failure(&out, "fingerprint");

    // Selections that cannot make a scaling factor.
    let out = probe()
        .current_dir(workspace_root())
        .args(scale_args(&["--select", "diametric"]))
        .output()
        .unwrap();
    assert_clean_failure(&out, "positively aligned");
    let out = probe()
        .current_dir(workspace_root())
        .args(scale_args(&["--where", "age=200"]))
        .output()
        .unwrap();
    assert_clean_failure(&out, "no value `200`");
}
