//! `probe extract` end to end on the embedded default and the fictional demo election:
//! killed mid-way and resumed, the cache is byte-identical to an uninterrupted run.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::*;

const ELECTION: &str = "data/demo/wahl-o-mat/2099-demowahl";

fn extract_cmd(gguf: &Path, out: &Path) -> std::process::Command {
    extract_layers(gguf, out, "0.6L..0.7L")
}

fn extract_layers(gguf: &Path, out: &Path, layers: &str) -> std::process::Command {
    let mut cmd = probe();
    cmd.current_dir(workspace_root())
        .arg("extract")
        .arg(gguf)
        .args([
            "--election",
            ELECTION,
            "--parties",
            "SA,ÖU,FB,LM,KBP,HL",
            "--templates",
            "de-quiz",
            "--layers",
            layers,
            "--shard-size",
            "8",
            "--batch-size",
            "4",
            "--out",
        ])
        .arg(out);
    cmd
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn killed_extraction_resumes_to_a_byte_identical_cache() {
    let Some(gguf) = smollm2_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (whole, resumed) = (tmp.path().join("whole"), tmp.path().join("resumed"));

    assert!(extract_cmd(&gguf, &whole).status().unwrap().success());

    let mut child = extract_cmd(&gguf, &resumed)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let progress = resumed.join("progress-0-of-1.json");
    let start = Instant::now();
    loop {
        let shards = std::fs::read_to_string(&progress)
            .ok()
            .and_then(|t| serde_json::from_str::<Vec<usize>>(&t).ok())
            .map_or(0, |v| v.len());
        if shards >= 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no shard finished in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    child.wait().unwrap();
    let done_before: Vec<usize> =
        serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
    assert!(
        !done_before.is_empty() && done_before.len() < 9,
        "killed after {} of 9 shards",
        done_before.len()
    );

    let out = extract_cmd(&gguf, &resumed).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} of 9 shards to do", 9 - done_before.len())),
        "{stderr}"
    );

    let (a, b) = (files(&whole), files(&resumed));
    assert_eq!(
        a.iter().map(|f| &f.0).collect::<Vec<_>>(),
        b.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "no stray temporary files"
    );
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x == y,
            "{name} differs between the resumed and the uninterrupted cache"
        );
    }

    // A second run has nothing to do; a run with other hook points is refused.
    let again = extract_cmd(&gguf, &resumed).output().unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 of 9 shards to do"));
    let other = extract_layers(&gguf, &resumed, "0.8L").output().unwrap();
    assert_clean_failure(&other, "was made for hook points");
}

/// `probe extract` on the demo election with `extra` arguments, output in `out`.
fn extract_with(gguf: &Path, extra: &[&str], out: &Path) -> std::process::Output {
    probe()
        .current_dir(workspace_root())
        .arg("extract")
        .arg(gguf)
        .args(["--election", ELECTION])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn extract_bad_inputs() {
    let Some(gguf) = smollm2_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c");
    let out = extract_with(&gguf, &["--parties", "SA,Mondpartei"], &cache);
    assert_clean_failure(&out, "unknown party `Mondpartei`");
    let out = extract_with(
        &gguf,
        &["--parties", "SA,HL", "--positions", "everywhere"],
        &cache,
    );
    assert_clean_failure(&out, "unknown position rule `everywhere`");
    assert!(!cache.exists(), "nothing written on bad input");
}

#[test]
fn cached_rows_equal_run_with_cache_on_the_same_prompt() {
    use probe_data::probe_prompts::{build_probe_prompts, TemplateSet};
    use probe_data::wahl_o_mat::Election;
    let Some(gguf) = smollm2_gguf() else { return };
    let root = workspace_root();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c");
    let status = probe()
        .current_dir(&root)
        .arg("extract")
        .arg(&gguf)
        .args([
            "--election",
            ELECTION,
            "--parties",
            "SA,HL",
            "--templates",
            "en-short",
            "--layers",
            "18",
            "--out",
        ])
        .arg(&cache)
        .status()
        .unwrap();
    assert!(status.success());
    let reader = probe_cache::CacheReader::open(&cache).unwrap();
    let (rows, dim) = reader.read_hook("blocks.18.hook_resid_post").unwrap();

    let e = Election::load(&root.join(ELECTION)).unwrap();
    let parties = e.select_parties(&["SA".into(), "HL".into()]).unwrap();
    let t = TemplateSet::load(&root.join("data/templates/probe-prompts.toml")).unwrap();
    let prompts = build_probe_prompts(
        &e,
        &parties,
        &t.select(&["en-short".into()]).unwrap(),
        &t.positions,
        0,
    )
    .unwrap();
    let k = 5;
    assert_eq!(reader.manifest().rows[k].id, prompts[k].id);
    let single = tmp.path().join("one.safetensors");
    let status = probe()
        .arg("run-with-cache")
        .arg(&gguf)
        .args([
            "--prompt",
            &prompts[k].prompt,
            "--hooks",
            "blocks.18.hook_resid_post",
            "--reduce",
            "last",
            "--out",
        ])
        .arg(&single)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&single).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let expected: Vec<f32> = st
        .tensor("blocks.18.hook_resid_post")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let ours = &rows[k * dim..(k + 1) * dim];
    let scale = expected.iter().fold(0f32, |m, x| m.max(x.abs()));
    let err = ours
        .iter()
        .zip(&expected)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= 1e-4 * scale,
        "cached row differs from run-with-cache by {err} (scale {scale})"
    );
}
