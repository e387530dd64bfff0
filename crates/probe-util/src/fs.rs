//! Writing a file so that a reader sees the old contents or the new, never half of the new:
//! what makes every `probe` artifact safe against a killed job or a full disk.

use std::path::{Path, PathBuf};

/// Where [`write_atomic`] stages `path`'s new contents: `.name.tmp-<pid>` beside it (same
/// directory, so the rename stays on one file system; the pid keeps concurrent jobs apart; the
/// cache recognizes and clears leftovers of this shape).
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically (a temporary file beside it, then a rename). A failed
/// write (disk full) removes its temporary file rather than leave it filling the disk. The
/// error is the file system's; callers name `path` in theirs.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary_path(path);
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_failures_leave_nothing() {
        let dir = std::env::temp_dir().join(format!("probe-util-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        // a directory in the way: the rename fails and no temporary file is left
        let blocked = dir.join("sub");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomic(&blocked, b"x").is_err());
        assert!(!temporary_path(&blocked).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
