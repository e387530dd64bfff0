//! Writing outputs safely: checks before any model runs that an output can be written,
//! atomic safetensors writes, content hashes for manifests.

use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::{Dtype, View};

struct Entry<'a> {
    dtype: Dtype,
    shape: &'a [usize],
    bytes: &'a [u8],
}

impl View for Entry<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes to a temporary name beside `path`, then renames: readers never see half a file.
pub fn write_safetensors(
    path: &Path,
    entries: &[(String, Dtype, Vec<usize>, Vec<u8>)],
    metadata: std::collections::HashMap<String, String>,
) -> Result<()> {
    let views = entries.iter().map(|(name, dtype, shape, bytes)| {
        (
            name.as_str(),
            Entry {
                dtype: *dtype,
                shape,
                bytes,
            },
        )
    });
    let bytes = probe_cache::canonical_safetensors(
        safetensors::serialize(views, Some(metadata)).context("serializing safetensors")?,
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(probe_cache::write_atomic(path, &bytes)?)
}

/// Checks, before any model runs, that `dir` can hold outputs: it is a directory or absent,
/// and its nearest existing ancestor is a directory a file can be written in. Nothing is
/// created (bad input writes nothing).
pub fn check_out_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("output {}: exists and is not a directory", dir.display());
    }
    let mut existing = dir;
    while !existing.exists() {
        existing = match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    if !existing.is_dir() {
        bail!(
            "output {}: {} is not a directory",
            dir.display(),
            existing.display()
        );
    }
    let probe_file = existing.join(format!(".probe-write-test-{}", std::process::id()));
    std::fs::write(&probe_file, b"").with_context(|| {
        format!(
            "output {}: {} is not writable",
            dir.display(),
            existing.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe_file);
    Ok(())
}

/// Checks, before any model runs, that `path` can be written as an output file with one of
/// the `extensions`: absent or a regular file (a FIFO or device given as `--out` would
/// otherwise be replaced by a regular file), in a writable directory.
pub fn check_out_file(path: &Path, extensions: &[&str]) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if !extensions.contains(&ext.as_str()) {
        bail!(
            "output {}: unsupported file type `.{ext}` (write {})",
            path.display(),
            extensions
                .iter()
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join(" or ")
        );
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() {
            bail!(
                "output {}: exists and is not a regular file (a directory, FIFO or device); \
                 give a file path",
                path.display()
            );
        }
    }
    let parent = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check_out_dir(parent)
}

/// Hex SHA-256 of a file's bytes (provenance of data and template files in manifests).
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    // a default data file not on disk is the built-in copy (probe_data::defaults)
    let bytes = match probe_data::defaults::embedded(path) {
        Some(text) => text.as_bytes().to_vec(),
        None => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    };
    Ok(sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The content fingerprint of a checkpoint (`probe_extract::model_fingerprint`).
pub fn fingerprint_model(path: &Path) -> Result<String> {
    Ok(probe_extract::model_fingerprint(path)?)
}

/// Refuses a name that becomes a folder or file name under an output directory unless it is
/// one safe path component: not empty, not `.` or `..`, no `/` or `\\`, no NUL, at most 255
/// bytes. `key` names where it came from (`model[0].label`). A label `../../x` or `/tmp/x`
/// would otherwise put a stage's outputs outside the study's folder.
pub fn check_component(name: &str, key: &str) -> Result<()> {
    let problem = if name.trim().is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." {
        Some("is a relative path, not a name")
    } else if name.contains(['/', '\\']) {
        Some("contains a path separator")
    } else if name.contains('\0') {
        Some("contains a NUL byte")
    } else if name.len() > 255 {
        Some("is longer than 255 bytes")
    } else {
        None
    };
    match problem {
        Some(why) => {
            bail!("{key}: `{name}` {why}; it names a folder, so it must be one path component")
        }
        None => Ok(()),
    }
}

/// Refuses a model path that is neither a GGUF file (by its magic) nor an HF model directory
/// (with `config.json`): a data folder or a README given by mistake fails the plan, not the
/// stage that loads it.
pub fn check_model_path(path: &Path, key: &str) -> Result<()> {
    if path.is_dir() {
        if !path.join("config.json").is_file() {
            bail!(
                "{key}: {} is a directory without config.json, not an HF model directory",
                path.display()
            );
        }
        return Ok(());
    }
    let mut magic = [0u8; 4];
    let read =
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
    if read.is_err() || &magic != b"GGUF" {
        bail!(
            "{key}: {} is not a GGUF file (no GGUF magic) or an HF model directory",
            path.display()
        );
    }
    Ok(())
}
