//! `psi.json` (`probe scale`): ψ, ψ_g and ψ_{j,g} of a run and how it was made; and the lines
//! of `rows.jsonl`, one (persona, variant) row's factors each.

use std::collections::BTreeMap;

use probe_metrics::stats::Estimate;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::Artifact;

/// Values keyed by name, serialized as a JSON object in this order.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Reads a JSON object back in the order its keys appear in the text.
impl<'de, V: serde::Deserialize<'de>> serde::Deserialize<'de> for Ordered<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Entries<V>(std::marker::PhantomData<V>);
        impl<'de, V: serde::Deserialize<'de>> serde::de::Visitor<'de> for Entries<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Entries(std::marker::PhantomData))
    }
}

impl<V> Ordered<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// ψ over one set of rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Distribution {
    pub rows: usize,
    pub weight: f64,
    /// ψ_n by party; absent when every factor of these rows is 0 after the policy.
    pub psi: Option<Ordered<f64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantSummary {
    pub all: Distribution,
    /// ψ_{j,g}: attribute → value → distribution.
    pub by_group: Ordered<Ordered<Distribution>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Count {
    pub count: usize,
    pub of: usize,
}

/// ψ, ψ_g and ψ_{j,g} of a run: `psi.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default = "crate::one")]
    pub format_version: u32,
    pub parties: Vec<String>,
    /// The negative-factor policy (`clip`, `shift`, `softmax`).
    pub negative: String,
    /// Factors m_p^n below 0 (before the policy).
    pub negative_factors: Count,
    /// Rows whose factors are all 0 after the policy: their own distribution is undefined.
    pub undefined_rows: usize,
    /// ψ over every row.
    pub all: Distribution,
    /// ψ_g: attribute → value → distribution (over all variants).
    pub by_group: Ordered<Ordered<Distribution>>,
    /// ψ_j and ψ_{j,g} per prompt variant.
    pub by_variant: Ordered<VariantSummary>,
    /// H_norm of ψ and of every ψ_g with bootstrap intervals over personas (absent in files
    /// of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy: Option<EntropySummary>,
    /// How the run was made. `probe scale` always writes it; it is `None` only in a summary
    /// not yet written (`summarize` leaves it to its caller), and the report refuses a file
    /// without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<ScaleRun>,
}

/// H_norm(ψ) pooled and per group, each with a bootstrap interval that resamples personas
/// (all of a persona's prompt variants together: they are one persona asked ten ways, not ten
/// observations).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntropySummary {
    /// What was resampled ("persona").
    pub unit: String,
    pub resamples: usize,
    pub level: f64,
    pub all: Estimate,
    pub by_group: Ordered<Ordered<Estimate>>,
}

/// One line of `rows.jsonl`: a (persona, variant) row's scaling factors m_p^n by party and
/// its own normalized distribution (None when every factor is 0 after the policy). Keys are
/// sorted, as in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowRecord {
    pub attributes: BTreeMap<String, String>,
    pub distribution: Option<BTreeMap<String, f64>>,
    pub factors: BTreeMap<String, f64>,
    /// m' per party: the factors after the run's negative-factor policy, what ψ sums (absent
    /// in rows of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjusted: Option<BTreeMap<String, f64>>,
    pub persona: String,
    pub variant: String,
    pub weight: f64,
}

/// `psi.json` is a [`Summary`] with its `run`.
pub type PsiFile = Summary;

impl Artifact for Summary {
    const FILE: &'static str = "psi.json";
    const FORMAT_VERSION: u32 = 1;
}

/// How a scale run was made: its value vectors and personas, and what it found on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleRun {
    /// The `probe vectors` folder whose selections were used.
    pub vectors: String,
    /// The selection (`joint`, `per-layer`, `iqr`) and its k.
    pub select: String,
    pub k: usize,
    /// The layers the value vectors come from (absent in files of older versions).
    #[serde(default)]
    pub vector_layers: Vec<usize>,
    pub persona_spec: String,
    pub personas: usize,
    /// The prompt variants (template ids), in the order they ran.
    pub variants: Vec<String>,
    /// MLP coefficients below 0 among those the factors read.
    #[serde(default)]
    pub negative_coefficients: Option<Count>,
    /// Per party: its share of negative factors and ψ under every negative-factor policy
    /// (absent in files of older versions).
    #[serde(default)]
    pub policy_sensitivity: BTreeMap<String, PolicySensitivity>,
    /// ψ per prompt language (absent in files of older versions).
    #[serde(default)]
    pub by_language: BTreeMap<String, LanguagePsi>,
    /// What this invocation computed (a resumed run counts only its own prompts).
    #[serde(default)]
    pub this_run: Option<ThisRun>,
}

/// One party's ψ under each negative-factor policy (`clip`, `shift`, `softmax`; null where a
/// policy leaves no distribution).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicySensitivity {
    pub negative_share: f64,
    pub psi: BTreeMap<String, Option<f64>>,
}

/// ψ over the rows of one prompt language.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LanguagePsi {
    pub rows: usize,
    pub psi: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThisRun {
    pub prompts: usize,
    pub tokens: usize,
    pub seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths inside nested objects are named.
    #[test]
    fn a_renamed_or_broken_field_is_named() {
        let text = r#"{"parties": ["A"], "negative": "clip",
            "negative_factors": {"count": 0, "of": 1}, "undefined_rows": 0,
            "all": {"rows": 1, "weight": 1.0, "psi": {"A": 1.0}},
            "by_group": {}, "by_variant": {},
            "run": {"vectors": "v", "select": "joint", "k": 1, "persona_spec": "p",
                    "personas": 1, "variants": ["x"]}}"#;
        let path = std::path::Path::new("s/psi.json");
        let psi: PsiFile = crate::from_text(text, path).unwrap();
        assert_eq!(psi.all.rows, 1);
        let e = crate::from_text::<PsiFile>(&text.replace("\"k\"", "\"kk\""), path)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s/psi.json: run: missing field `k` at line 6"),
            "{e}"
        );
        let e = crate::from_text::<PsiFile>(&text.replace("\"rows\": 1", "\"rows\": -1"), path)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s/psi.json: all.rows: invalid value: integer `-1`"),
            "{e}"
        );
    }
}
