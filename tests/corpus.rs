//! The regression corpus of malformed inputs (`tests/corpus/`, written by
//! `scripts/make_malformed_corpus.py`): every case runs its command and must exit with its
//! code, never panic, and print an error that names the file and the field. `valid-*` cases
//! are the positive controls: the unbroken input of each family, accepted.

mod support;

use support::*;

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    args: Vec<String>,
    exit: i32,
    expect: Vec<String>,
    /// Paths under `{out}` the run must not leave (a failed run leaves nothing that looks done).
    #[serde(default)]
    absent: Vec<String>,
}

#[test]
fn every_malformed_input_gets_a_clear_error() {
    let root = workspace_root();
    let corpus = root.join("tests/corpus");
    let cases: Vec<Case> =
        serde_json::from_slice(&std::fs::read(corpus.join("cases.json")).unwrap()).unwrap();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let out_dir = tempfile::tempdir().unwrap();
        let dir = corpus.join(&case.name);
        unpack_election(&dir, out_dir.path());
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| {
                a.replace("{case}", &dir.to_string_lossy())
                    .replace("{out}", &out_dir.path().to_string_lossy())
                    .replace("{root}", &root.to_string_lossy())
            })
            .collect();
        let out = probe().current_dir(&root).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if out.status.code() != Some(case.exit) {
            problems.push(format!(
                "exit {:?}, expected {}",
                out.status.code(),
                case.exit
            ));
        }
        if stderr.contains("panicked") {
            problems.push("panicked".to_string());
        }
        if case.exit != 0 && !stderr.contains("error") {
            problems.push("no error line".to_string());
        }
        for a in &case.absent {
            if out_dir.path().join(a).exists() {
                problems.push(format!("left {a} behind"));
            }
        }
        for e in &case.expect {
            if !stderr.to_lowercase().contains(&e.to_lowercase()) {
                problems.push(format!("does not name {e:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n    stderr: {}",
                case.name,
                problems.join("; "),
                stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// An election case is stored as one `election.json` (file name → text); it is unpacked into
/// `<out>/e` in the qual-o-mat layout the command reads.
fn unpack_election(case: &std::path::Path, out: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(case.join("election.json")) else {
        return;
    };
    let files: std::collections::BTreeMap<String, String> = serde_json::from_str(&text).unwrap();
    let dir = out.join("e");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
}
