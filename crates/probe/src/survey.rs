//! The survey side of a comparison: a respondent-level survey CSV (weighted, grouped by its
//! attribute columns) or a built-in election result, as reference cells over the model's
//! options.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use probe_data::respondents::{read_respondents, RespondentOptions};
use probe_report::report::{align_reference, Reference};

use crate::progress::note;

/// Where the survey side comes from (`SurveySource::default()`: none given).
#[derive(Debug, Clone)]
pub struct SurveySource {
    /// Respondent-level survey CSV (one row per respondent: attribute columns, weight, answer).
    pub survey: Option<PathBuf>,
    /// The survey CSV's answer column.
    pub answer: String,
    /// The survey CSV's weight column (unweighted when absent).
    pub survey_weight: Option<String>,
    /// The survey CSV's columns to group by (default: every other column except `id`).
    pub survey_attributes: Vec<String>,
    /// A built-in election result as reference (`btw2021`), or `none`.
    pub election: Option<String>,
}

impl Default for SurveySource {
    fn default() -> Self {
        SurveySource {
            survey: None,
            answer: "vote".into(),
            survey_weight: None,
            survey_attributes: Vec::new(),
            election: None,
        }
    }
}

impl SurveySource {
    /// The reference over `options` (the model's options; answers outside them are dropped
    /// and the rest renormalized). `default_election` applies when nothing else is given.
    pub fn reference(
        &self,
        options: Option<&[String]>,
        default_election: Option<&str>,
    ) -> Result<Option<Reference>> {
        if let Some(path) = &self.survey {
            let mut o = RespondentOptions::new(self.answer.clone());
            o.weight = self.survey_weight.clone();
            if !self.survey_attributes.is_empty() {
                o.attributes = Some(self.survey_attributes.clone());
            }
            let respondents = read_respondents(path, &o)?;
            let options: Vec<String> = match options {
                Some(o) => o.to_vec(),
                None => respondents.answers(),
            };
            // no extra labels: the cells join on attribute/value alone
            let labels = BTreeMap::new();
            let (cells, dropped) = respondents.reference_cells(&options, &labels)?;
            let mut notes = vec![format!(
                "{}: {} respondents with an answer in `{}` ({} without), grouped by {}{}.",
                path.display(),
                respondents.rows.len(),
                respondents.answer_column,
                respondents.missing_answers,
                respondents.attributes.join(", "),
                if self.survey_weight.is_some() {
                    ", weighted"
                } else {
                    ", unweighted"
                }
            )];
            if dropped.respondents > 0 {
                let top: Vec<String> = dropped
                    .answers
                    .iter()
                    .take(5)
                    .map(|(a, w)| format!("{a} ({:.1} %)", 100.0 * w / dropped.total_weight))
                    .collect();
                notes.push(format!(
                    "{} respondents ({:.1} % of the weight) answered outside the model's options and are left out: {}.",
                    dropped.respondents,
                    100.0 * dropped.weight / dropped.total_weight,
                    top.join(", ")
                ));
            }
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("survey")
                .to_string();
            let units = respondents.scope_units(&options);
            let respondents = respondents.scope_sizes(&options);
            return Ok(Some(Reference {
                name,
                cells,
                notes,
                respondents,
                units,
            }));
        }
        let election = self.election.as_deref().or(default_election);
        match election {
            None | Some("none") => Ok(None),
            Some(id) => {
                let e = probe_report::builtin::find(id).with_context(|| {
                    format!(
                        "unknown election `{id}` (built in: {})",
                        probe_report::builtin::ELECTIONS
                            .iter()
                            .map(|e| e.id)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                let mut notes = vec![format!(
                    "{} (built in; scopes: everyone and the year-{} personas).",
                    e.description,
                    e.id.trim_start_matches(char::is_alphabetic)
                )];
                let mut cells = e.cells();
                if let Some(options) = options {
                    // over the model's options: other parties dropped, the rest renormalized
                    let mut kept_share = 1.0;
                    for c in &mut cells {
                        let Some((r, kept)) = align_reference(c, options) else {
                            if self.election.is_none() {
                                // the default reference simply does not apply (another election)
                                note(format_args!(
                                    "notice: the default reference {id} does not cover the options {options:?}; give --survey or --reference to compare with a survey"
                                ));
                                return Ok(None);
                            }
                            bail!("{id} has no counterpart for some of the options {options:?}");
                        };
                        kept_share = kept;
                        c.reference = Some(r);
                        c.options = options.to_vec();
                        c.labels.remove("dataset");
                    }
                    if kept_share < 1.0 - 1e-9 {
                        notes.push(format!(
                            "Restricted to the model's {} options ({:.1} % of the vote) and renormalized.",
                            options.len(),
                            100.0 * kept_share
                        ));
                    }
                }
                Ok(Some(Reference {
                    name: e.id.to_string(),
                    cells,
                    notes,
                    respondents: Default::default(),
                    units: Default::default(),
                }))
            }
        }
    }
}
