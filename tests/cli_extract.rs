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
            .and_then(|t| finished_in(&t))
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
        finished_in(&std::fs::read_to_string(&progress).unwrap()).unwrap();
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

/// The shard indices a progress file lists as finished.
fn finished_in(progress: &str) -> Option<Vec<usize>> {
    let v: serde_json::Value = serde_json::from_str(progress).ok()?;
    v["shards"]
        .as_array()?
        .iter()
        .map(|r| r["index"].as_u64().map(|i| i as usize))
        .collect()
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

/// The dtype each shard of a cache stores its hook tensors in (from the safetensors headers).
fn shard_dtypes(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|(n, _)| n.starts_with("shard-"))
        .map(|(_, bytes)| {
            let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
            let dtypes: std::collections::BTreeSet<String> = header
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.starts_with("blocks."))
                .map(|(_, v)| v["dtype"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(dtypes.len(), 1, "one dtype per shard");
            dtypes.into_iter().next().unwrap()
        })
        .collect()
}

fn cache_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files(dir)
        .into_iter()
        .filter(|(n, _)| !n.starts_with('.'))
        .collect()
}

#[test]
fn two_writers_on_one_cache_give_a_correct_cache_or_a_refusal_never_a_mix() {
    let Some(gguf) = smollm2_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (whole, shared) = (tmp.path().join("whole"), tmp.path().join("shared"));
    assert!(extract_cmd(&gguf, &whole).status().unwrap().success());

    // Same settings, started together: one fills the cache, the other is refused by the
    // job lock (or, if it started after the first finished, has nothing to do).
    let a = extract_cmd(&gguf, &shared)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = extract_cmd(&gguf, &shared).output().unwrap();
    let a = a.wait_with_output().unwrap();
    for out in [&a, &b] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("job 0/1 is already filling this cache"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(a.status.success() || b.status.success());
    assert_eq!(cache_files(&whole), cache_files(&shared));

    // An f16 --overwrite started while an f32 job runs is refused while the job holds the
    // cache; either way the cache ends up all of one dtype, the one its manifest names.
    let mut running = extract_cmd(&gguf, &shared)
        .arg("--overwrite")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let over = extract_cmd(&gguf, &shared)
        .args(["--overwrite", "--cache-dtype", "f16"])
        .output()
        .unwrap();
    let first_ok = running.wait().unwrap().success();
    let stderr = String::from_utf8_lossy(&over.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shared.join("manifest.json")).unwrap()).unwrap();
    let dtype = manifest["dtype"].as_str().unwrap();
    let want = if dtype == "f16" { "F16" } else { "F32" };
    assert!(shard_dtypes(&shared).iter().all(|d| d == want));
    if over.status.success() {
        assert_eq!(dtype, "f16");
    } else {
        assert!(
            stderr.contains("cannot overwrite a cache that is in use"),
            "{stderr}"
        );
        assert!(first_ok);
        assert_eq!(cache_files(&whole), cache_files(&shared));
    }
}

#[test]
fn an_edited_statement_under_the_same_election_name_is_a_different_cache() {
    let Some(gguf) = smollm2_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let election = tmp.path().join("2099-demowahl");
    std::fs::create_dir_all(&election).unwrap();
    for e in std::fs::read_dir(workspace_root().join(ELECTION)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), election.join(e.file_name())).unwrap();
    }
    let cache = tmp.path().join("c");
    let run = || {
        probe()
            .current_dir(workspace_root())
            .arg("extract")
            .arg(&gguf)
            .arg("--election")
            .arg(&election)
            .args([
                "--parties",
                "SA,HL",
                "--templates",
                "en-short",
                "--layers",
                "3",
            ])
            .arg("--out")
            .arg(&cache)
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    let path = election.join("statement.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("deutlich erhöht", "abgeschafft");
    std::fs::write(&path, text).unwrap();
    let again = run();
    assert_clean_failure(&again, "was made for source");
}
