//! What the crate's integration tests share: the workspace root and the embedded model.
// each test binary compiles this module and uses part of it
#![allow(dead_code)]

use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// SmolLM2-135M-Instruct (Q4_1), fetched by scripts/setup.sh; `None` with a notice when absent
/// (CI must have it).
pub fn smollm2() -> Option<PathBuf> {
    let path = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: CI must run scripts/setup.sh first",
        path.display()
    );
    eprintln!(
        "notice: {} is absent (run scripts/setup.sh); skipping",
        path.display()
    );
    None
}
