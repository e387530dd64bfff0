//! Respondent-level surveys for individual simulation: a data file (one row per respondent)
//! and a TOML codebook that names the demographic columns (with the text each code becomes in
//! a persona), the items (question text, options, ordinal / nominal / numeric), an optional
//! weight column and codes that mean "no answer". See `data/surveys/anes96/codebook.toml`.
//!
//! Everything is checked when the survey loads: every named column exists, every item has at
//! least two options with distinct codes, every value in the data is a known code (or listed
//! as missing), and a demographic of kind `number` holds numbers.

mod codebook;

use probe_util::mix;
use std::path::{Path, PathBuf};

pub use codebook::{
    duplicate_column, AnswerOption, Codebook, Demographic, DemographicKind, Item, ItemKind,
    Respondent, DEFAULT_NUMBER_RANGE, MAX_COLUMNS, MAX_RESPONDENTS,
};

use codebook::file_error;

use crate::{read_text, DataError, Result};

/// A loaded, validated survey.
#[derive(Debug, Clone)]
pub struct Survey {
    pub codebook: Codebook,
    pub path: PathBuf,
    pub respondents: Vec<Respondent>,
}

impl Survey {
    /// Reads and checks a codebook and its data file.
    pub fn load(codebook_path: &Path) -> Result<Self> {
        let text = read_text(codebook_path)?;
        let codebook: Codebook =
            toml::from_str(&text).map_err(|e| file_error(codebook_path, e.to_string()))?;
        codebook.check(codebook_path)?;
        let data_path = codebook_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&codebook.data);
        let data = read_text(&data_path).map_err(|e| match e {
            DataError::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                file_error(
                    &path,
                    format!(
                        "not found ({}); fetch it with scripts/setup.sh",
                        codebook.source.lines().next().unwrap_or("")
                    ),
                )
            }
            other => other,
        })?;
        let respondents = codebook.parse(&data_path, &data)?;
        Ok(Survey {
            codebook,
            path: data_path,
            respondents,
        })
    }

    /// The persona text of respondent `r`; `None` when a demographic it names is missing.
    pub fn persona(&self, r: &Respondent) -> Option<String> {
        let mut out = self.codebook.persona.clone();
        for (d, value) in self.codebook.demographics.iter().zip(&r.demographics) {
            let key = format!("{{{}}}", d.column);
            if !out.contains(&key) {
                continue;
            }
            let value = value.as_ref()?;
            let text = match d.kind {
                DemographicKind::Coded => d.codes.get(value)?.clone(),
                // a number's own text where the codebook gives one (0 → "fewer than …")
                DemographicKind::Number => match (d.codes.get(value), &d.text) {
                    (Some(special), _) => special.clone(),
                    (None, Some(t)) => t.replace("{value}", value),
                    (None, None) => value.clone(),
                },
            };
            out = out.replace(&key, &text);
        }
        Some(out)
    }

    /// Refuses a part of the respondents (`part` names it: "train", "the selected") that cannot
    /// be scored or trained on: an item nobody in it answered, or answers that all weigh 0.
    /// Names every such item. `simulate` and `finetune` run the same check before any model
    /// loads.
    pub fn check_answered(&self, part: &str, respondents: &[usize]) -> Result<()> {
        let mut unanswered = Vec::new();
        let mut weightless = Vec::new();
        for (k, item) in self.codebook.items.iter().enumerate() {
            let answered: Vec<&Respondent> = respondents
                .iter()
                .map(|&i| &self.respondents[i])
                .filter(|r| r.answers[k].is_some())
                .collect();
            if answered.is_empty() {
                unanswered.push(format!("`{}`", item.column));
            } else if answered.iter().all(|r| r.weight == 0.0) {
                weightless.push(format!("`{}`", item.column));
            }
        }
        if !unanswered.is_empty() {
            return Err(file_error(
                &self.path,
                format!(
                    "no respondent of the {part} respondents ({}) answered item {}",
                    respondents.len(),
                    unanswered.join(", ")
                ),
            ));
        }
        if !weightless.is_empty() {
            return Err(file_error(
                &self.path,
                format!(
                    "every answer to item {} among the {part} respondents has weight 0",
                    weightless.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Seeded train / validation / test split of the respondents (indices into
    /// `respondents`), by a hash of (seed, id): the same seed and ids give the same split
    /// whatever the row order.
    pub fn split(&self, seed: u64, train: f64, validation: f64) -> Result<Split> {
        if !(train > 0.0 && validation >= 0.0 && train + validation < 1.0) {
            return Err(file_error(
                &self.path,
                format!("split fractions train {train}, validation {validation}: need train > 0, validation ≥ 0 and train + validation < 1"),
            ));
        }
        let mut order: Vec<(u64, usize)> = self
            .respondents
            .iter()
            .enumerate()
            // SplitMix64's finalizer: FNV alone keeps the ids' order nearly the same under another seed
            .map(|(i, r)| (mix(stable_hash(&r.id) ^ mix(seed)), i))
            .collect();
        order.sort_unstable();
        let n = order.len();
        let n_train = (train * n as f64).round() as usize;
        let n_val = (validation * n as f64).round() as usize;
        let take = |range: std::ops::Range<usize>| {
            let mut v: Vec<usize> = order[range].iter().map(|&(_, i)| i).collect();
            v.sort_unstable();
            v
        };
        let split = Split {
            seed,
            train: take(0..n_train),
            validation: take(n_train..(n_train + n_val).min(n)),
            test: take((n_train + n_val).min(n)..n),
        };
        for (name, part) in [("train", &split.train), ("test", &split.test)] {
            if part.is_empty() {
                return Err(file_error(
                    &self.path,
                    format!("the {name} split of {n} respondents is empty; change the fractions"),
                ));
            }
        }
        Ok(split)
    }
}

/// Respondent indices of a seeded split.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Split {
    pub seed: u64,
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
    pub test: Vec<usize>,
}

/// FNV-1a: stable across platforms and Rust versions (std's hasher is not).
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
