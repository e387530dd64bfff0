//! Probe prompts: statement + one party's answer and justification + the shuffled list of
//! parties, with the party's name as the teacher-forced answer. Templates are data
//! (`data/templates/probe-prompts.toml`), not code.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::wahl_o_mat::{
    alias_spellings, canonical_party, self_reference_stems, Election, Party, Position,
    CASE_SENSITIVE_SPELLINGS,
};
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
        let text = crate::read_text(path)?;
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

/// One SplitMix64 step from `z`, whose output becomes the next state (this order's own
/// chaining, kept so seeded prompts stay the same).
fn splitmix(z: u64) -> u64 {
    probe_util::SplitMix64::from_state(z).next_u64()
}

fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One way a party is named: a spelling (whole words) or a stem (the word it begins).
struct Pattern {
    /// Lower-cased unless `case_sensitive`.
    text: Vec<char>,
    case_sensitive: bool,
    /// A stem: the match extends to the end of the word ("SPD" → "SPDler").
    stem: bool,
    /// Index into the parties the patterns were built for.
    party: usize,
}

/// Every spelling of the parties that could leak their identity: names, long names, known
/// aliases, and the stems of their self-references; longest first.
fn patterns(parties: &[&Party]) -> Vec<Pattern> {
    let mut out = Vec::new();
    for (k, party) in parties.iter().enumerate() {
        let mut spellings = vec![party.name.clone()];
        spellings.extend(party.longname.clone());
        let canonical = canonical_party(&party.name);
        if let Some(c) = canonical {
            spellings.push(c.to_string());
            spellings.extend(alias_spellings(c).iter().map(|s| s.to_string()));
        }
        for s in spellings.iter().filter(|s| s.chars().count() >= 2) {
            let case_sensitive = CASE_SENSITIVE_SPELLINGS.contains(&s.as_str());
            let text = if case_sensitive {
                s.clone()
            } else {
                s.to_lowercase()
            };
            out.push(Pattern {
                text: text.chars().collect(),
                case_sensitive,
                stem: false,
                party: k,
            });
        }
        for stem in canonical.map(self_reference_stems).unwrap_or_default() {
            out.push(Pattern {
                text: stem.chars().collect(),
                case_sensitive: false,
                stem: true,
                party: k,
            });
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.text.len()));
    out
}

/// A party named in a text: characters `start..end` name `parties[party]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub start: usize,
    pub end: usize,
    pub party: usize,
}

/// Whether the words before char `i` make "Union" the European one.
fn european_union(chars: &[char], i: usize) -> bool {
    let before: String = chars[..i].iter().collect();
    let word = before
        .trim_end()
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    let word = word.to_lowercase();
    word.starts_with("europäisch") || word == "european"
}

/// Every place `text` names one of `parties` (any spelling or self-reference, on word
/// boundaries), left to right, without overlaps.
pub fn party_mentions(text: &str, parties: &[&Party]) -> Vec<Mention> {
    let all = patterns(parties);
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        // Only at the start of a word: a match must not sit inside a longer word.
        let at_word_start = i == 0 || !chars[i - 1].is_alphanumeric();
        let hit = at_word_start.then(|| {
            all.iter().find_map(|p| {
                let n = p.text.len();
                let src = if p.case_sensitive { &chars } else { &lower };
                if src.len() < i + n || src[i..i + n] != p.text[..] {
                    return None;
                }
                let mut end = i + n;
                if p.stem {
                    while chars.get(end).is_some_and(|c| c.is_alphanumeric()) {
                        end += 1;
                    }
                } else if chars.get(end).is_some_and(|c| c.is_alphanumeric()) {
                    return None;
                }
                if p.case_sensitive
                    && p.text == ['U', 'n', 'i', 'o', 'n']
                    && european_union(&chars, i)
                {
                    return None;
                }
                Some(Mention {
                    start: i,
                    end,
                    party: p.party,
                })
            })
        });
        match hit.flatten() {
            Some(m) => {
                i = m.end;
                out.push(m);
            }
            None => i += 1,
        }
    }
    out
}

/// Replaces every mention of the parties in `text` (see [`party_mentions`]) with `mask`.
pub fn mask_party_names(text: &str, parties: &[&Party], mask: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for m in party_mentions(text, parties) {
        out.extend(&chars[at..m.start]);
        out.push_str(mask);
        at = m.end;
    }
    out.extend(&chars[at..]);
    out
}

/// A party name left in the text of a probe prompt (see [`audit_prompts`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Leftover {
    /// The party whose opinion the prompt states (its label).
    pub party: String,
    pub statement: u32,
    /// `statement` or `justification`.
    pub field: &'static str,
    /// The party the words name, and the words.
    pub names: String,
    pub text: String,
    /// Up to 40 characters either side.
    pub context: String,
}

/// Checks the texts probe prompts are built from, after masking: the statement and every
/// selected party's justification. Any remaining mention of a selected party — by any
/// spelling or self-reference, also inside compound words ("Anti-SPD-Kurs", "CDUgeführt") —
/// is listed. An empty list means the prompts name no party outside their option list.
pub fn audit_prompts(election: &Election, parties: &[&Party], mask: &str) -> Vec<Leftover> {
    let all = patterns(parties);
    let mut out = Vec::new();
    for (statement_id, opinions) in election.opinions_by_statement(parties) {
        let statement = election.statement(statement_id).expect("validated at load");
        for opinion in opinions {
            let label = parties
                .iter()
                .position(|p| p.id == opinion.party)
                .expect("selected");
            let mut fields = vec![(
                "statement",
                mask_party_names(&statement.text, parties, mask),
            )];
            if let Some(c) = &opinion.comment {
                fields.push(("justification", mask_party_names(c, parties, mask)));
            }
            for (field, text) in fields {
                for (start, end, party) in substring_mentions(&text, &all) {
                    let chars: Vec<char> = text.chars().collect();
                    let from = start.saturating_sub(40);
                    let to = (end + 40).min(chars.len());
                    out.push(Leftover {
                        party: Election::display_name(parties[label]),
                        statement: statement_id,
                        field,
                        names: Election::display_name(parties[party]),
                        text: chars[start..end].iter().collect(),
                        context: chars[from..to].iter().collect(),
                    });
                }
            }
        }
    }
    out
}

/// Mentions anywhere, also inside words (a stricter check than the masking's word
/// boundaries); case-sensitive spellings still only at word starts, and not "Europäische Union".
fn substring_mentions(text: &str, all: &[Pattern]) -> Vec<(usize, usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let at_word_start = i == 0 || !chars[i - 1].is_alphanumeric();
        let hit = all.iter().find(|p| {
            let n = p.text.len();
            let src = if p.case_sensitive { &chars } else { &lower };
            src.len() >= i + n
                && src[i..i + n] == p.text[..]
                && (!p.case_sensitive
                    || (at_word_start
                        && !chars.get(i + n).is_some_and(|c| c.is_alphanumeric())
                        && !(p.text == ['U', 'n', 'i', 'o', 'n'] && european_union(&chars, i))))
                // An acronym inside a longer word of letters ("Kasperle" has no "spd"; but
                // "Gesundheitsamt" must not match "afd"-like runs): acronyms need a boundary
                // or a capital-letter run around them.
                && (p.case_sensitive || p.stem || n > 4 || acronym_boundary(&chars, i, n))
        });
        match hit {
            Some(p) => {
                out.push((i, i + p.text.len(), p.party));
                i += p.text.len();
            }
            None => i += 1,
        }
    }
    out
}

/// An acronym match at `i..i + n` is a mention when it is not buried in a lower-case word:
/// it starts a word, or stands in upper case ("NichtSPD").
fn acronym_boundary(chars: &[char], i: usize, n: usize) -> bool {
    let starts_word = i == 0 || !chars[i - 1].is_alphanumeric();
    starts_word || chars[i..i + n].iter().all(|c| !c.is_lowercase())
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
            "Wir [P] wollen mehr als die [P] und die [P]. [P] und [P]-Mitglieder"
        );
    }

    /// Self-references and long forms go; ordinary words that look like party names stay.
    #[test]
    fn masks_self_references_but_not_ordinary_words() {
        let parties = [
            Party {
                id: 0,
                name: "FDP".into(),
                longname: Some("Freie Demokratische Partei".into()),
            },
            Party {
                id: 1,
                name: "CDU / CSU".into(),
                longname: None,
            },
            Party {
                id: 2,
                name: "GRÜNE".into(),
                longname: None,
            },
            Party {
                id: 3,
                name: "SPD".into(),
                longname: None,
            },
            Party {
                id: 4,
                name: "DIE LINKE".into(),
                longname: None,
            },
            Party {
                id: 5,
                name: "AfD".into(),
                longname: None,
            },
        ];
        let refs: Vec<&Party> = parties.iter().collect();
        let cases = [
            ("Wir Freie Demokraten wollen das.", "Wir [P] wollen das."),
            (
                "Die Europäische Union muss handeln; die Union nicht.",
                "Die Europäische Union muss handeln; die [P] nicht.",
            ),
            ("in der Europäischen Union", "in der Europäischen Union"),
            ("Bündnis 90/Die Grünen und die Grünen", "[P] und [P]"),
            (
                "grüner Wasserstoff und linke Mehrheiten",
                "grüner Wasserstoff und linke Mehrheiten",
            ),
            (
                "Sozialdemokraten, Christdemokraten und die Linkspartei",
                "[P], [P] und die [P]",
            ),
            (
                "Die Alternative für Deutschland und SPDler",
                "Die [P] und [P]",
            ),
            ("Die Linke fordert", "[P] fordert"),
        ];
        for (text, want) in cases {
            assert_eq!(mask_party_names(text, &refs, "[P]"), want, "{text}");
        }
    }

    /// The audit's stricter search finds what word-boundary masking would miss, and what the
    /// masking before this fix left ("Freie Demokraten"), but not ordinary words.
    #[test]
    fn the_audit_finds_names_inside_words() {
        let parties = [
            Party {
                id: 0,
                name: "FDP".into(),
                longname: None,
            },
            Party {
                id: 1,
                name: "SPD".into(),
                longname: None,
            },
            Party {
                id: 2,
                name: "CDU / CSU".into(),
                longname: None,
            },
        ];
        let refs: Vec<&Party> = parties.iter().collect();
        let all = patterns(&refs);
        let found = |t: &str| -> Vec<String> {
            let chars: Vec<char> = t.chars().collect();
            substring_mentions(t, &all)
                .into_iter()
                .map(|(a, b, _)| chars[a..b].iter().collect())
                .collect()
        };
        assert_eq!(
            found("Wir Freie Demokraten und der NichtSPD-Kurs"),
            ["Freie Demokrat", "SPD"]
        );
        assert!(found("Gesundheitsamt, Kasperle, die Europäische Union").is_empty());
        assert_eq!(found("die Union"), ["Union"]);
    }
}
