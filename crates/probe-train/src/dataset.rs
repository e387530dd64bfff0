//! Labelled features read from a finished activation cache.

use probe_cache::CacheReader;
use sha2::{Digest, Sha256};

use crate::{Result, TrainError};

/// One `[rows × dim]` matrix per hook, with the rows' labels and groups.
#[derive(Debug, Clone)]
pub struct Features {
    pub hooks: Vec<String>,
    pub dim: usize,
    pub n_rows: usize,
    /// Row-major `[n_rows × dim]` per hook.
    pub matrices: Vec<Vec<f32>>,
    pub labels: Vec<usize>,
    pub groups: Vec<String>,
    pub label_names: Vec<String>,
    /// SHA-256 over labels, groups and feature bytes: which data a probe was trained on.
    pub sha256: String,
}

impl Features {
    /// Reads every hook of a cache; rows need a label and a group, values must be finite.
    pub fn from_cache(cache: &CacheReader) -> Result<Self> {
        let m = cache.manifest();
        let n_rows = m.rows.len();
        if n_rows == 0 {
            return Err(TrainError::Data("the cache has no rows".into()));
        }
        let mut labels = Vec::with_capacity(n_rows);
        let mut groups = Vec::with_capacity(n_rows);
        for r in &m.rows {
            let label = r.label.ok_or_else(|| {
                TrainError::Data(format!("row {} has no label: not a probe cache", r.id))
            })?;
            if label >= m.label_names.len() {
                return Err(TrainError::Data(format!(
                    "row {} has label {label} but the cache names {} classes",
                    r.id,
                    m.label_names.len()
                )));
            }
            labels.push(label);
            groups.push(r.group.clone().ok_or_else(|| {
                TrainError::Data(format!(
                    "row {} has no group (statement): cannot split folds by statement",
                    r.id
                ))
            })?);
        }
        let dim = m.dims[0];
        if m.dims.iter().any(|&d| d != dim) {
            return Err(TrainError::Data(format!(
                "hooks of different widths {:?}: train them from separate caches",
                m.dims
            )));
        }
        let mut h = Sha256::new();
        for (l, g) in labels.iter().zip(&groups) {
            h.update((*l as u64).to_le_bytes());
            h.update(g.as_bytes());
            h.update([0]);
        }
        let mut matrices = Vec::with_capacity(m.hooks.len());
        for hook in &m.hooks {
            let (x, d) = cache.read_hook(hook)?;
            debug_assert_eq!(d, dim);
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                return Err(TrainError::Data(format!(
                    "{hook}: non-finite value {} in row {} (dimension {})",
                    x[i],
                    m.rows[i / dim].id,
                    i % dim
                )));
            }
            h.update(hook.as_bytes());
            for v in &x {
                h.update(v.to_le_bytes());
            }
            matrices.push(x);
        }
        let sha256 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let features = Features {
            hooks: m.hooks.clone(),
            dim,
            n_rows,
            matrices,
            labels,
            groups,
            label_names: m.label_names.clone(),
            sha256,
        };
        features.check_classes()?;
        Ok(features)
    }

    /// Every class needs rows, and there must be a "rest" to contrast it with.
    fn check_classes(&self) -> Result<()> {
        if self.label_names.len() < 2 {
            return Err(TrainError::Data(format!(
                "party-vs-rest probes need at least 2 parties, the cache has {}",
                self.label_names.len()
            )));
        }
        for (c, name) in self.label_names.iter().enumerate() {
            if !self.labels.contains(&c) {
                return Err(TrainError::Data(format!("no rows labelled {name}")));
            }
        }
        Ok(())
    }

    /// The layer index of each hook (`blocks.{l}.…`), if it names one.
    pub fn layers(&self) -> Vec<Option<usize>> {
        self.hooks
            .iter()
            .map(|h| {
                h.strip_prefix("blocks.")
                    .and_then(|r| r.split('.').next())
                    .and_then(|l| l.parse().ok())
            })
            .collect()
    }
}
