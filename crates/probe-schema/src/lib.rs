//! The artifacts probe writes, one serde type per file, shared by the writer and every reader.
//!
//! | file | type | written by |
//! | --- | --- | --- |
//! | `probes.json` | [`probes::ProbesJson`] | `probe train` |
//! | `vectors/vectors.json` | [`vectors::VectorsJson`] | `probe vectors` |
//! | `scale-*/psi.json` | [`psi::PsiFile`] | `probe scale` |
//! | `scale-*/rows.jsonl` | [`psi::RowRecord`] per line | `probe scale` |
//! | `eval-*/summary.json` | [`eval::EvalSummary`] | `probe eval` |
//! | `eval-*/tv.json` | [`eval::TvFile`] | `probe eval` (and `compare`) |
//! | `simulate-*/scores.json` | [`simulation::SimulationScores`] | `probe simulate` |
//! | `<finetune>/training.json` | [`finetune::TrainingSummary`] | `probe finetune` |
//!
//! Every file carries `format_version` ([`Artifact::FORMAT_VERSION`] when written). Reading
//! checks it first: a file without one is version 1 (everything written before the field
//! existed), a newer one than this build knows is refused naming both versions, and a field
//! that is missing, renamed or of the wrong type is an error naming the file and the field's
//! path (`psi.json: run.k: invalid type: string "x", expected usize`), never a `?` or a NaN
//! further down.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub mod compare;
pub mod eval;
pub mod finetune;
pub mod probes;
pub mod psi;
pub mod simulation;
pub mod vectors;

/// A file this crate describes.
pub trait Artifact: Serialize + DeserializeOwned {
    /// Its name inside the folder that holds it.
    const FILE: &'static str;
    /// The version this build writes; files of versions 1 to this one are read.
    const FORMAT_VERSION: u32;
    /// Fills what files of older versions lack from what they have (after reading).
    fn upgrade(&mut self) {}
}

/// Why an artifact could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    #[error("{}: not JSON: {reason}", path.display())]
    NotJson { path: PathBuf, reason: String },
    #[error(
        "{}: format_version {found} is newer than this probe reads (up to {reads}): \
         update probe, or rewrite the file with this version",
        path.display()
    )]
    Newer {
        path: PathBuf,
        found: u32,
        reads: u32,
    },
    #[error("{}: format_version {found} is not a version (they start at 1)", path.display())]
    BadVersion { path: PathBuf, found: u64 },
    /// A field that is missing, unknown to its type or of the wrong type; `field` is its path
    /// from the top of the file (`.` for the top itself; `line N:` prefixed in JSONL files).
    #[error("{}: {field}: {reason} (format_version {version})", path.display())]
    Field {
        path: PathBuf,
        field: String,
        reason: String,
        version: u32,
    },
}

pub type Result<T> = std::result::Result<T, SchemaError>;

fn one() -> u32 {
    1
}

/// An `f64` that is NaN by definition in some cases (an AUC of a one-class fold, a z-score of a
/// null that does not vary): serde_json writes NaN as `null`, so `null` reads back as NaN here,
/// and only in the fields that say so.
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Only the version, read before the rest (a file without the field is version 1).
#[derive(Deserialize)]
struct VersionOnly {
    #[serde(default)]
    format_version: Option<serde_json::Value>,
}

fn version_of<T: Artifact>(text: &str, path: &Path) -> Result<u32> {
    let head: VersionOnly = serde_json::from_str(text).map_err(|e| SchemaError::NotJson {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let found = match head.format_version {
        None => return Ok(one()),
        Some(v) => v.as_u64().ok_or_else(|| SchemaError::Field {
            path: path.to_path_buf(),
            field: "format_version".into(),
            reason: format!("{v} is not a whole number"),
            version: 0,
        })?,
    };
    if found == 0 || found > u64::from(u32::MAX) {
        return Err(SchemaError::BadVersion {
            path: path.to_path_buf(),
            found,
        });
    }
    let found = found as u32;
    if found > T::FORMAT_VERSION {
        return Err(SchemaError::Newer {
            path: path.to_path_buf(),
            found,
            reads: T::FORMAT_VERSION,
        });
    }
    Ok(found)
}

/// Deserializes `text` as a `T`, naming the path of a field that does not fit.
pub fn parse<T: DeserializeOwned>(text: &str, path: &Path, version: u32) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        SchemaError::Field {
            path: path.to_path_buf(),
            field: if field.is_empty() { ".".into() } else { field },
            reason: e.into_inner().to_string(),
            version,
        }
    })
}

/// Reads an artifact from its text (`path` names it in errors).
pub fn from_text<T: Artifact>(text: &str, path: &Path) -> Result<T> {
    let version = version_of::<T>(text, path)?;
    let mut artifact: T = parse(text, path, version)?;
    artifact.upgrade();
    Ok(artifact)
}

/// Reads the artifact at `path` (a file; see [`read_in`] for a folder).
pub fn read<T: Artifact>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| SchemaError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    from_text(&text, path)
}

/// Reads `<dir>/<T::FILE>`.
pub fn read_in<T: Artifact>(dir: &Path) -> Result<T> {
    read(&dir.join(T::FILE))
}

/// The artifact as pretty JSON with object keys sorted (as psi.json and the eval files were
/// always written), without a trailing newline, as `serde_json::to_string_pretty` writes it.
pub fn to_text<T: Artifact>(artifact: &T) -> Result<String> {
    let fail = |e: serde_json::Error| SchemaError::Field {
        path: PathBuf::from(T::FILE),
        field: ".".into(),
        reason: e.to_string(),
        version: T::FORMAT_VERSION,
    };
    // through a `Value`: its maps are sorted, so files do not depend on field order
    let value = serde_json::to_value(artifact).map_err(fail)?;
    serde_json::to_string_pretty(&value).map_err(fail)
}

/// Writes `artifact` to `path` atomically (a temporary file renamed into place).
pub fn write<T: Artifact>(path: &Path, artifact: &T) -> Result<()> {
    let text = to_text(artifact)?;
    probe_util::write_atomic(path, text.as_bytes()).map_err(|e| SchemaError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads a JSON-lines file of `T` (blank lines skipped); errors name the line and the field.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| SchemaError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    parse_jsonl(&text, path)
}

/// [`read_jsonl`] of a file's text.
pub fn parse_jsonl<T: DeserializeOwned>(text: &str, path: &Path) -> Result<Vec<T>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            parse(line, path, 1).map_err(|e| match e {
                SchemaError::Field {
                    path,
                    field,
                    reason,
                    version,
                } => SchemaError::Field {
                    path,
                    field: format!("line {}: {field}", i + 1),
                    reason,
                    version,
                },
                other => other,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Toy {
        #[serde(default = "one")]
        format_version: u32,
        inner: Inner,
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        k: usize,
    }
    impl Artifact for Toy {
        const FILE: &'static str = "toy.json";
        const FORMAT_VERSION: u32 = 2;
    }

    fn err(text: &str) -> String {
        from_text::<Toy>(text, Path::new("run/toy.json"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn versions_and_fields_are_named() {
        // no version: version 1, read
        let toy: Toy = from_text(r#"{"inner": {"k": 3}}"#, Path::new("t")).unwrap();
        assert_eq!(toy.inner.k, 3);
        assert_eq!(toy.format_version, 1);
        assert_eq!(
            err(r#"{"format_version": 3, "inner": {"k": 3}}"#),
            "run/toy.json: format_version 3 is newer than this probe reads (up to 2): \
             update probe, or rewrite the file with this version"
        );
        assert!(err(r#"{"format_version": 0, "inner": {"k": 3}}"#).contains("not a version"));
        assert!(err(r#"{"format_version": "2", "inner": {"k": 3}}"#).contains("whole number"));
        assert_eq!(
            err(r#"{"format_version": 2, "inner": {"kk": 3}}"#),
            "run/toy.json: inner: missing field `k` at line 1 column 40 (format_version 2)"
        );
        assert_eq!(
            err(r#"{"inner": {"k": "x"}}"#),
            "run/toy.json: inner.k: invalid type: string \"x\", expected usize at line 1 column 19 \
             (format_version 1)"
        );
        assert!(err("{").starts_with("run/toy.json: not JSON"));
    }

    #[test]
    fn written_files_read_back_and_jsonl_names_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(Toy::FILE);
        let toy = Toy {
            format_version: Toy::FORMAT_VERSION,
            inner: Inner { k: 7 },
        };
        write(&path, &toy).unwrap();
        assert_eq!(read_in::<Toy>(dir.path()).unwrap(), toy);
        let lines = "{\"k\": 1}\n\n{\"k\": -1}\n";
        let e = parse_jsonl::<Inner>(lines, Path::new("rows.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rows.jsonl: line 3: k: invalid value"), "{e}");
    }
}
