//! Shared by the fuzz targets: the readers under test take paths, so each input is written to
//! a per-process scratch directory (in /dev/shm where there is one: no disk I/O per run).

use std::path::{Path, PathBuf};

/// This process's scratch directory, created once.
pub fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("probe-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

/// Writes `bytes` as `name` in the scratch directory and returns its path.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("scratch file");
    path
}

/// Splits an input into `n` parts at the separator `\n@@\n` (missing parts are empty), so one
/// fuzz input can be a directory of files.
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    const SEP: &[u8] = b"\n@@\n";
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    while out.len() < n {
        out.push(&[]);
    }
    out
}
