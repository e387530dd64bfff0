use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{CacheError, Result};

/// 2: progress files record each shard's rows, size and SHA-256.
pub const FORMAT_VERSION: u32 = 2;

/// One cached row (one prompt, reduced to one vector per hook point).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: String,
    /// Class label index (e.g. the party), if the rows are labelled.
    pub label: Option<usize>,
    /// Grouping key for cross-validation (e.g. the statement id).
    pub group: Option<String>,
    /// Free-form metadata (template id, position, ...).
    #[serde(default)]
    pub meta: std::collections::BTreeMap<String, String>,
}

/// What a cache holds. Two runs that would write different bytes have different manifests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// The model file or directory as given, and a content hash of it.
    pub model: String,
    pub model_hash: String,
    /// TransformerLens hook names, one tensor per name in every shard.
    pub hooks: Vec<String>,
    /// Width of each hook's vectors.
    pub dims: Vec<usize>,
    /// Which token positions were reduced into each row, e.g. `last-before-answer`.
    pub positions: String,
    /// Storage dtype of the shards: `f32` or `f16`.
    pub dtype: String,
    /// Names of the label classes (e.g. parties), indexed by `Row::label`.
    pub label_names: Vec<String>,
    /// Anything else that determines the content (dataset, templates, seed).
    pub source: std::collections::BTreeMap<String, String>,
    pub shard_size: usize,
    pub rows: Vec<Row>,
}

impl Manifest {
    pub fn n_shards(&self) -> usize {
        self.rows.len().div_ceil(self.shard_size.max(1))
    }

    /// Rows `[start, end)` of shard `i`.
    pub fn shard_rows(&self, i: usize) -> (usize, usize) {
        let start = i * self.shard_size;
        (start, (start + self.shard_size).min(self.rows.len()))
    }

    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| {
            Err(CacheError::Invalid {
                path: path.to_path_buf(),
                reason,
            })
        };
        if self.format_version != FORMAT_VERSION {
            return bad(format!(
                "format version {} (this probe reads {FORMAT_VERSION})",
                self.format_version
            ));
        }
        if self.rows.is_empty() {
            return bad("no rows".into());
        }
        if self.hooks.is_empty() || self.hooks.len() != self.dims.len() {
            return bad("hooks and dims disagree".into());
        }
        if self.shard_size == 0 {
            return bad("shard_size is 0".into());
        }
        if !matches!(self.dtype.as_str(), "f32" | "f16") {
            return bad(format!("dtype `{}` (expected f32 or f16)", self.dtype));
        }
        Ok(())
    }

    /// The first field in which `other` differs, as (field, ours, theirs).
    pub fn difference(&self, other: &Manifest) -> Option<(String, String, String)> {
        let short = |v: &dyn std::fmt::Debug| {
            let s = format!("{v:?}");
            if s.len() > 120 {
                format!(
                    "{}…",
                    &s[..s.char_indices().nth(120).map_or(s.len(), |(i, _)| i)]
                )
            } else {
                s
            }
        };
        let fields: [(&str, String, String); 11] = [
            (
                "format version",
                self.format_version.to_string(),
                other.format_version.to_string(),
            ),
            ("model", self.model_hash.clone(), other.model_hash.clone()),
            ("hook points", short(&self.hooks), short(&other.hooks)),
            ("dims", short(&self.dims), short(&other.dims)),
            ("positions", self.positions.clone(), other.positions.clone()),
            ("dtype", self.dtype.clone(), other.dtype.clone()),
            (
                "labels",
                short(&self.label_names),
                short(&other.label_names),
            ),
            ("source", short(&self.source), short(&other.source)),
            (
                "shard size",
                self.shard_size.to_string(),
                other.shard_size.to_string(),
            ),
            (
                "rows",
                format!("{} rows", self.rows.len()),
                format!("{} rows", other.rows.len()),
            ),
            (
                "row ids",
                short(&self.rows.first().map(|r| &r.id)),
                short(&other.rows.first().map(|r| &r.id)),
            ),
        ];
        for (what, a, b) in fields {
            if a != b {
                return Some((what.to_string(), a, b));
            }
        }
        // Any other row field (a label, a group, metadata): name the first row that differs.
        // The model's path is not compared: the same weights (`model_hash`) may be reached by
        // another path (relative or absolute, a moved file) and the cache still holds them.
        let i = self
            .rows
            .iter()
            .zip(&other.rows)
            .position(|(a, b)| a != b)?;
        Some((
            format!("row {i}"),
            short(&self.rows[i]),
            short(&other.rows[i]),
        ))
    }
}
