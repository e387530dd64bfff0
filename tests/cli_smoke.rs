//! The `probe` commands end to end: on a tiny checkpoint written here, and on the embedded
//! default model when it is present.

mod support;

use support::*;

fn read_st(path: &std::path::Path) -> (Vec<u8>, Vec<(String, Vec<usize>)>) {
    let bytes = std::fs::read(path).unwrap();
    let names = {
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut v: Vec<(String, Vec<usize>)> = st
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.shape().to_vec()))
            .collect();
        v.sort();
        v
    };
    (bytes, names)
}

#[test]
fn run_with_cache_writes_hooked_tensors_with_padding_mask() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    let out = dir.path().join("acts.safetensors");
    let status = probe()
        .arg("run-with-cache")
        .arg(dir.path())
        .args([
            "--ids",
            "1,2,3,4",
            "--ids",
            "5,6",
            "--hooks",
            "blocks.*.hook_resid_post; blocks.1.mlp.hook_post; hook_embed",
            "--logits",
            "last",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let (bytes, names) = read_st(&out);
    let shapes: std::collections::BTreeMap<_, _> = names.into_iter().collect();
    assert_eq!(shapes["blocks.0.hook_resid_post"], vec![2, 4, TINY_HIDDEN]);
    assert_eq!(shapes["blocks.1.mlp.hook_post"], vec![2, 4, TINY_FF]);
    assert_eq!(shapes["hook_embed"], vec![2, 4, TINY_HIDDEN]);
    assert_eq!(shapes["logits"], vec![2, TINY_VOCAB]);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mask: Vec<i64> = st
        .tensor("attention_mask")
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(mask, vec![1, 1, 1, 1, 0, 0, 1, 1]);
    // Padded positions are zero-filled; real ones are not.
    let embed: Vec<f32> = st
        .tensor("hook_embed")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let row = |i: usize| &embed[i * TINY_HIDDEN..(i + 1) * TINY_HIDDEN];
    assert!(row(4).iter().all(|&x| x == 0.0));
    assert!(row(6).iter().any(|&x| x != 0.0));
}

#[test]
fn padded_sequence_equals_its_unpadded_run() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    let run = |ids: &[&str], reduce: &str| -> Vec<f32> {
        let out = dir.path().join(format!("{}.safetensors", ids.len()));
        let mut cmd = probe();
        cmd.arg("run-with-cache").arg(dir.path());
        for i in ids {
            cmd.args(["--ids", i]);
        }
        let ok = cmd
            .args([
                "--hooks",
                "blocks.1.hook_resid_post",
                "--reduce",
                reduce,
                "--out",
            ])
            .arg(&out)
            .status()
            .unwrap();
        assert!(ok.success());
        let bytes = std::fs::read(&out).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        st.tensor("blocks.1.hook_resid_post")
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    for reduce in ["last", "mean"] {
        let alone = run(&["7,8,9"], reduce);
        let batched = run(&["1,2,3,4,5,6", "7,8,9"], reduce);
        let second = &batched[TINY_HIDDEN..];
        let err = alone
            .iter()
            .zip(second)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err < 1e-5, "{reduce}: padded vs unpadded differ by {err}");
    }
}

#[test]
fn inspect_reports_architecture_and_hook_points() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    let out = probe().arg("inspect").arg(dir.path()).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("architecture   llama"), "{text}");
    assert!(text.contains("blocks.{0..1}.mlp.hook_post"), "{text}");
    let json = probe()
        .arg("inspect")
        .arg(dir.path())
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["config"]["num_layers"], 2);
}

#[test]
fn inspect_shows_gemmas_block_and_where_its_norms_sit_around_the_hooks() {
    let gemma = workspace_root().join("crates/probe-lm/tests/fixtures/tiny-gemma3");
    let out = probe().arg("inspect").arg(&gemma).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "architecture   gemma3",
        "RMSNorm before and after attention and MLP",
        "sliding window 4 on 4 of 6 layers (global: 2, 5); their rope theta 10000",
        "logits         soft-capped at 3",
        "blocks.{0..5}.hook_resid_mid      resid_pre + post_attention_layernorm(attention)",
        "blocks.{0..5}.hook_resid_post     resid_mid + post_feedforward_layernorm(down_proj·m)",
        "x = pre_feedforward_layernorm(resid_mid)",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    // the parameter count includes Gemma's four norms per block and the q/k norms
    assert!(text.contains("parameters     313184"), "{text}");
}

#[test]
fn generate_on_the_embedded_default_says_paris() {
    let Some(gguf) = smollm2_gguf() else { return };
    let out = probe()
        .arg("generate")
        .arg(&gguf)
        .args(["The capital of France is", "-n", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(" Paris."), "{text:?}");
}

fn opinionqa_dir() -> Option<std::path::PathBuf> {
    let dir = workspace_root().join("../shared/data/opinionqa/pew-atp-disagreement-500");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("notice: {} is absent; skipping", dir.display());
        None
    }
}

#[test]
fn compare_uniform_baseline_on_opinionqa_matches_hand_computation() {
    let Some(dir) = opinionqa_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // One question, one group, by hand: Democrats on WORRYB_W26 (Refused dropped) answered
    // 66 / 294 / 372 → (0.0902, 0.4016, 0.5082); TV to uniform = max(0, 1/3 − p_i) summed
    // = 1/3 − 66/732 = 0.243169...
    let reference = tmp.path().join("ref.jsonl");
    std::fs::write(
        &reference,
        r#"{"question":"WORRYB_W26","group":"Democrat","options":["Worry a lot","Worry a little","Do not worry at all"],"reference_counts":[66,294,372],"ordinal":[1,2,3]}"#,
    )
    .unwrap();
    let out = tmp.path().join("t.json");
    let status = probe()
        .args([
            "compare",
            "--baseline",
            "uniform",
            "--by",
            "model",
            "--metrics",
            "tv",
            "--reference",
        ])
        .arg(&reference)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(rows["format_version"], 1);
    let tv = rows["rows"][0]["estimate"]["value"].as_f64().unwrap();
    assert!((tv - (1.0 / 3.0 - 66.0 / 732.0)).abs() < 1e-12, "{tv}");

    // The same cell read from the OpinionQA files gives the same number.
    let out2 = tmp.path().join("all.json");
    let status = probe()
        .arg("compare")
        .arg("--opinionqa")
        .arg(&dir)
        .args([
            "--attribute",
            "POLPARTY",
            "--baseline",
            "uniform",
            "--by",
            "group,question",
            "--metrics",
            "tv",
            "--bootstrap",
            "10",
            "--out",
        ])
        .arg(&out2)
        .status()
        .unwrap();
    assert!(status.success());
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out2).unwrap()).unwrap();
    let row = file["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"]["group"] == "Democrat" && r["group"]["question"] == "WORRYB_W26")
        .unwrap();
    assert!((row["estimate"]["value"].as_f64().unwrap() - tv).abs() < 1e-12);
}

#[test]
fn compare_rejects_bad_cells_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"question\":\"q\",\"options\":[\"a\",\"b\"],\"reference\":[0.5,0.5]}\n{\"question\":\"q2\",\"options\":[\"a\",\"b\"],\"reference\":[0.5,0.6]}\n").unwrap();
    let out = probe()
        .args(["compare", "--baseline", "uniform", "--reference"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_clean_failure(&out, "bad.jsonl:2: `reference` sums to 1.1, not 1");
    let ok = probe()
        .args([
            "compare",
            "--baseline",
            "uniform",
            "--normalize",
            "--reference",
        ])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let pred = tmp.path().join("pred.jsonl");
    std::fs::write(
        &pred,
        "{\"question\":\"q\",\"model\":\"m\",\"options\":[\"a\",\"c\"],\"predicted\":[0.5,0.5]}\n",
    )
    .unwrap();
    let good = tmp.path().join("ref.jsonl");
    std::fs::write(
        &good,
        "{\"question\":\"q\",\"options\":[\"a\",\"b\"],\"reference\":[0.5,0.5]}\n",
    )
    .unwrap();
    let out = probe()
        .args(["compare", "--predicted"])
        .arg(&pred)
        .arg("--reference")
        .arg(&good)
        .output()
        .unwrap();
    assert_clean_failure(&out, "options differ");
    // the message names the offending line
    assert_clean_failure(&out, "pred.jsonl:1)");
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    let out = probe()
        .args(["compare", "--baseline", "uniform", "--reference"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_clean_failure(&out, "no cells");
}

#[test]
fn cli_reference_is_current() {
    let out = probe().arg("cli-reference").output().unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = workspace_root().join("docs/CLI.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        generated == committed,
        "docs/CLI.md is stale: run `target/release/probe cli-reference > docs/CLI.md`"
    );
}
