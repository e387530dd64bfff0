//! Probe prompts: statement + one party's answer and justification + the shuffled list of
//! parties, with the party's name as the teacher-forced answer. Templates are data
//! (`data/templates/probe-prompts.toml`), not code.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::wahl_o_mat::{alias_spellings, canonical_party, Election, Party, Position};
use crate::{DataError, Result};

#[derive(Debug, Clone, Deserialize)]
pub struct PositionWords {
    pub agree: String,
    pub disagree: String,
    pub neutral: String,
    pub masked_party: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Template {
    pub id: String,
    pub language: String,
    #[serde(default = "default_prefix")]
    pub answer_prefix: String,
    pub text: String,
}

fn default_prefix() -> String {
    " ".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct TemplateSet {
    pub positions: HashMap<String, PositionWords>,
    #[serde(rename = "template")]
    pub templates: Vec<Template>,
}

const PLACEHOLDERS: [&str; 5] = [
    "{statement}",
    "{label}",
    "{position}",
    "{justification}",
    "{parties}",
];

impl TemplateSet {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| DataError::File {
            path: path.to_path_buf(),
            reason,
        })
    }

    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let set: TemplateSet =
            toml::from_str(text).map_err(|e| format!("not a valid template file: {e}"))?;
        if set.templates.is_empty() {
            return Err("no [[template]] entries".into());
        }
        let mut ids = std::collections::HashSet::new();
        for t in &set.templates {
            if !ids.insert(&t.id) {
                return Err(format!("template id `{}` appears twice", t.id));
            }
            if !set.positions.contains_key(&t.language) {
                return Err(format!(
                    "template `{}`: no [positions.{}] table",
                    t.id, t.language
                ));
            }
            for needed in ["{statement}", "{position}", "{parties}"] {
                if !t.text.contains(needed) {
                    return Err(format!("template `{}` lacks {needed}", t.id));
                }
            }
            let mut rest = t.text.as_str();
            while let Some(start) = rest.find('{') {
                let end = rest[start..]
                    .find('}')
                    .map(|e| start + e + 1)
                    .ok_or_else(|| format!("template `{}`: unclosed `{{`", t.id))?;
                let ph = &rest[start..end];
                if !PLACEHOLDERS.contains(&ph) {
                    return Err(format!(
                        "template `{}`: unknown placeholder {ph} (known: {})",
                        t.id,
                        PLACEHOLDERS.join(" ")
                    ));
                }
                rest = &rest[end..];
            }
        }
        Ok(set)
    }

    /// The templates with these ids (all when empty); unknown ids are an error.
    pub fn select(&self, ids: &[String]) -> Result<Vec<&Template>, String> {
        if ids.is_empty() {
            return Ok(self.templates.iter().collect());
        }
        ids.iter()
            .map(|id| {
                self.templates.iter().find(|t| &t.id == id).ok_or_else(|| {
                    format!(
                        "unknown template `{id}` (known: {})",
                        self.templates
                            .iter()
                            .map(|t| t.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            })
            .collect()
    }
}

/// One teacher-forced probe prompt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProbePrompt {
    /// `<statement>-<party index>-<template>`: stable across runs.
    pub id: String,
    pub statement: u32,
    /// Index into the selected parties: the class label.
    pub label: usize,
    pub party: String,
    pub position: Position,
    pub template: String,
    /// The text before the answer.
    pub prompt: String,
    /// The answer: prefix + party name.
    pub answer: String,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every spelling of a party that could leak its identity: its names and known aliases.
fn spellings(party: &Party) -> Vec<String> {
    let mut out = vec![party.name.clone()];
    out.extend(party.longname.clone());
    if let Some(c) = canonical_party(&party.name) {
        out.push(c.to_string());
        out.extend(alias_spellings(c).iter().map(|s| s.to_string()));
    }
    out.retain(|s| s.chars().count() >= 2);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// Replaces every selected party's names (any known spelling, case-insensitive) in `text`
/// with `mask`.
pub fn mask_party_names(text: &str, parties: &[&Party], mask: &str) -> String {
    let mut all: Vec<Vec<char>> = parties
        .iter()
        .flat_map(|p| spellings(p))
        .map(|s| s.to_lowercase().chars().collect())
        .collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all.dedup();
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        // Only whole words: the match must not sit inside a longer word.
        let at_word_start = i == 0 || !chars[i - 1].is_alphanumeric();
        let hit = at_word_start.then(|| {
            all.iter().find(|name| {
                lower.len() >= i + name.len()
                    && lower[i..i + name.len()] == name[..]
                    && chars
                        .get(i + name.len())
                        .is_none_or(|c| !c.is_alphanumeric())
            })
        });
        match hit.flatten() {
            Some(name) => {
                out.push_str(mask);
                i += name.len();
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// Builds the prompts for every (statement, selected party) opinion × template. The party list
/// in each prompt is shuffled deterministically from `seed`, the prompt's ids and nothing else.
pub fn build_probe_prompts(
    election: &Election,
    parties: &[&Party],
    templates: &[&Template],
    words: &HashMap<String, PositionWords>,
    seed: u64,
) -> Result<Vec<ProbePrompt>> {
    let names: Vec<String> = parties.iter().map(|p| Election::display_name(p)).collect();
    let mut out = Vec::new();
    for (statement_id, opinions) in election.opinions_by_statement(parties) {
        let statement = election.statement(statement_id).expect("validated at load");
        for opinion in opinions {
            let label = parties
                .iter()
                .position(|p| p.id == opinion.party)
                .expect("selected");
            for t in templates {
                let w = &words[&t.language];
                let position = match opinion.position {
                    Position::Agree => &w.agree,
                    Position::Disagree => &w.disagree,
                    Position::Neutral => &w.neutral,
                };
                let justification = match &opinion.comment {
                    Some(c) => mask_party_names(c, parties, &w.masked_party),
                    None if t.language == "de" => "(keine Begründung)".to_string(),
                    None => "(no justification given)".to_string(),
                };
                let mut order: Vec<usize> = (0..names.len()).collect();
                let mut state = seed
                    ^ stable_hash(&format!(
                        "{}:{}:{}:{}",
                        election.id, statement_id, label, t.id
                    ));
                for i in (1..order.len()).rev() {
                    state = splitmix(state);
                    order.swap(i, (state % (i as u64 + 1)) as usize);
                }
                let party_list = order
                    .iter()
                    .map(|&i| names[i].as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let prompt = t
                    .text
                    .replace(
                        "{statement}",
                        &mask_party_names(&statement.text, parties, &w.masked_party),
                    )
                    .replace("{label}", &statement.label)
                    .replace("{position}", position)
                    .replace("{justification}", &justification)
                    .replace("{parties}", &party_list);
                out.push(ProbePrompt {
                    id: format!("{statement_id}-{label}-{}", t.id),
                    statement: statement_id,
                    label,
                    party: names[label].clone(),
                    position: opinion.position,
                    template: t.id.clone(),
                    prompt,
                    answer: format!("{}{}", t.answer_prefix, names[label]),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(DataError::File {
            path: election.id.clone().into(),
            reason: "no prompts: the selected parties have no opinions".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_names_aliases_and_inflections_but_not_substrings() {
        let parties = [
            Party {
                id: 0,
                name: "GRÜNE".into(),
                longname: Some("BÜNDNIS 90/DIE GRÜNEN".into()),
            },
            Party {
                id: 1,
                name: "CDU / CSU".into(),
                longname: None,
            },
            Party {
                id: 2,
                name: "SPD".into(),
                longname: None,
            },
        ];
        let refs: Vec<&Party> = parties.iter().collect();
        let text = "Wir Grünen wollen mehr als die Union und die spd. SPDler und CDU-Mitglieder";
        let masked = mask_party_names(text, &refs, "[P]");
        assert_eq!(
            masked,
            "Wir [P] wollen mehr als die [P] und die [P]. SPDler und [P]-Mitglieder"
        );
    }
}
