//! What probe's test suites share, once (a dev-dependency of the crates whose tests use it):
//! where the workspace, `../shared` and the fetched models are ([`workspace_root`],
//! [`reference_dir`], [`smollm2_gguf`]), tiny checkpoints and GGUF files written from scratch
//! ([`fixtures`]), and transformers' reference tensors with the comparisons the parity tests
//! make ([`reference`]).

use std::path::PathBuf;
use std::process::Output;

pub mod fixtures;
pub mod reference;

pub use fixtures::*;
pub use reference::*;

/// The repository's root (this crate sits at `crates/probe-test-support`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// `../shared/reference`, or `None` (with a printed notice) where it is absent.
pub fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PROBE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared"))
        .join("reference");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "notice: {} is absent; skipping this reference test",
            dir.display()
        );
        None
    }
}

/// The embedded default model; absent → skip with a notice, except under CI, where the
/// setup script must have fetched it.
pub fn smollm2_gguf() -> Option<PathBuf> {
    fetched_model("SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The Gemma 3 270M GGUF that `scripts/setup.sh` assembles from its PyPI part wheels.
pub fn gemma3_270m_gguf() -> Option<PathBuf> {
    fetched_model("gemma-3-270m-q4_k_m.gguf")
}

/// `models/<file>` as `scripts/setup.sh` fetches it; absent → skip with a notice, except
/// under CI, where the setup script must have run.
fn fetched_model(file: &str) -> Option<PathBuf> {
    let path = workspace_root().join("models").join(file);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing: CI must run scripts/setup.sh first",
            path.display()
        );
    }
    eprintln!(
        "notice: {} is absent (run scripts/setup.sh); skipping",
        path.display()
    );
    None
}

/// Runs and asserts a clean failure: non-zero exit, one `error:` line, no panic.
pub fn assert_clean_failure(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    assert!(stderr.contains("error:"), "no `error:` line: {stderr}");
    assert!(
        stderr.to_lowercase().contains(&expected.to_lowercase()),
        "stderr lacks {expected:?}: {stderr}"
    );
}
