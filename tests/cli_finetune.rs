//! `probe finetune` end to end on the embedded default model and the demo survey (no download):
//! a kill mid-run resumes from the last checkpoint and ends with the adapter an uninterrupted
//! seeded run writes, bit for bit; the adapter (PEFT layout) is taken by `--adapter` and
//! changes the model's answers; bad input gets clear errors.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

const SMALL: [&str; 16] = [
    "--epochs",
    "2",
    "--survey",
    "data/demo",
    "--limit",
    "8",
    "--validation-limit",
    "2",
    "--batch-size",
    "4",
    "--max-steps",
    "5",
    "--checkpoint-every",
    "1",
    "--lr",
    "0.002",
];

fn finetune_command(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = probe();
    cmd.current_dir(workspace_root())
        .arg("finetune")
        .arg(workspace_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
        .args(SMALL)
        .arg("--out")
        .arg(out)
        .args(extra);
    cmd
}

fn finetune(out: &Path, extra: &[&str]) -> Output {
    finetune_command(out, extra).output().unwrap()
}

fn checkpoint_step(out: &Path) -> usize {
    std::fs::read_to_string(out.join("checkpoint/state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["step"].as_u64())
        .unwrap_or(0) as usize
}

#[test]
fn a_killed_finetune_resumes_to_the_uninterrupted_adapter() {
    if smollm2_gguf().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let run = finetune(&whole, &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("5 steps of 5 (16 training, 4 validation examples)"),
        "{stdout}"
    );
    for f in [
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "history.jsonl",
        "training.json",
    ] {
        assert!(whole.join(f).is_file(), "{f} missing");
    }
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(whole.join("adapter/adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 8);

    // kill -9 after the second checkpoint, then run again
    let killed = tmp.path().join("killed");
    let mut child = finetune_command(&killed, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while checkpoint_step(&killed) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint"
        );
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let at = checkpoint_step(&killed);
    assert!((2..5).contains(&at), "killed at step {at}");
    let rerun = finetune(&killed, &[]);
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "{stderr}");
    assert!(
        stderr.contains("resumed from the checkpoint at step"),
        "{stderr}"
    );
    for f in ["adapter/adapter_model.safetensors", "history.jsonl"] {
        assert_eq!(
            std::fs::read(killed.join(f)).unwrap(),
            std::fs::read(whole.join(f)).unwrap(),
            "{f}: a resumed run must end where the uninterrupted one does"
        );
    }

    // other settings in the same folder are refused, and the refusal changes no file
    let snapshot = || -> Vec<Vec<u8>> {
        [
            "settings.json",
            "adapter/adapter_model.safetensors",
            "training.json",
        ]
        .iter()
        .map(|f| std::fs::read(killed.join(f)).unwrap())
        .collect()
    };
    let before = snapshot();
    for other in [&["--seed", "3"][..], &["--weight-decay", "0.5"]] {
        let refused = finetune(&killed, other);
        assert_clean_failure(&refused, "a fine-tuning run of other data or settings");
    }
    assert!(before == snapshot(), "a refused rerun changed its folder");

    // the adapter changes the model's answers, and is named in the output folder
    let gguf = workspace_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let logits = |extra: &[&str], out: &Path| {
        let run = probe()
            .current_dir(workspace_root())
            .arg("run-with-cache")
            .arg(&gguf)
            .args([
                "-p",
                "Which party will you vote for?",
                "--logits",
                "last",
                "--hooks",
                "blocks.0.hook_resid_post",
            ])
            .arg("-o")
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        std::fs::read(out).unwrap()
    };
    let adapter = whole.join("adapter");
    let base = logits(&[], &tmp.path().join("base.safetensors"));
    let tuned = logits(
        &["--adapter", adapter.to_str().unwrap()],
        &tmp.path().join("tuned.safetensors"),
    );
    assert_ne!(base, tuned, "the adapter must change the logits");

    // the latent view of the fine-tuned model: `probe train --adapter` puts its probes under
    // `<model>+<adapter>`, and probes.json names the adapter (the report's model name)
    let root = workspace_root();
    let train = probe()
        .current_dir(tmp.path())
        .arg("train")
        .arg(&gguf)
        .arg("--adapter")
        .arg(&adapter)
        .arg("--election")
        .arg(root.join("data/demo/wahl-o-mat/2099-demowahl"))
        .args([
            "--parties",
            "SA,ÖU,FB,LM,KBP,HL",
            "--templates",
            "en-short",
            "--folds",
            "3",
        ])
        .args(["--layers", "20,24", "--run", "demo"])
        .output()
        .unwrap();
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    let probes = tmp
        .path()
        .join("probes/SmolLM2-135M-Instruct.Q4_1+whole/demo/probes.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&probes).unwrap()).unwrap();
    assert_eq!(json["adapter"], "whole");
}

/// A safetensors file of one f32 tensor of `shape` (zeros), written by hand.
fn write_safetensors(path: &Path, name: &str, shape: [usize; 2]) {
    let n = shape[0] * shape[1] * 4;
    let header = format!(
        r#"{{"{name}":{{"dtype":"F32","shape":[{},{}],"data_offsets":[0,{n}]}}}}"#,
        shape[0], shape[1]
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(std::iter::repeat_n(0u8, n));
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn finetune_and_adapters_refuse_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ft");
    // an empty training split
    let empty = finetune(&out, &["--train-fraction", "0.0001"]);
    assert_clean_failure(&empty, "split");
    assert_clean_failure(&finetune(&out, &["--warmup-ratio", "1.5"]), "warmup ratio");
    assert_clean_failure(
        &finetune(&out, &["--target-modules", "lm_head"]),
        "target module lm_head",
    );
    assert_clean_failure(&finetune(&out, &["--lora-dropout", "1"]), "lora_dropout");

    // an adapter made for another model: q_proj of width 2048 where SmolLM2 has 576
    if smollm2_gguf().is_none() {
        return;
    }
    let adapter = tmp.path().join("other-model");
    std::fs::create_dir(&adapter).unwrap();
    std::fs::write(
        adapter.join("adapter_config.json"),
        r#"{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "peft_type": "LORA"}"#,
    )
    .unwrap();
    write_safetensors(
        &adapter.join("adapter_model.safetensors"),
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
        [4, 2048],
    );
    let run = probe()
        .current_dir(workspace_root())
        .arg("run-with-cache")
        .arg(workspace_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
        .args(["-p", "Hi", "-o"])
        .arg(tmp.path().join("x.safetensors"))
        .arg("--adapter")
        .arg(&adapter)
        .output()
        .unwrap();
    assert_clean_failure(&run, "trained on another model");
    // not an adapter folder at all
    let run = probe()
        .current_dir(workspace_root())
        .arg("run-with-cache")
        .arg(workspace_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
        .args(["-p", "Hi", "-o"])
        .arg(tmp.path().join("x.safetensors"))
        .arg("--adapter")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_clean_failure(&run, "adapter_config.json");
}
