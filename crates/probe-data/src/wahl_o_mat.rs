//! Wahl-o-Mat elections in the layout of the public qual-o-mat-data repository
//! (`statement.json`, `party.json`, `answer.json`, `opinion.json`, `comment.json`,
//! `overview.json`), for any election directory.
//!
//! Parties are chosen by name with aliases ("CDU / CSU" = "CDU/CSU" = "CDU", "DIE LINKE" =
//! "Die Linke", "GRÜNE" = "BÜNDNIS 90/DIE GRÜNEN"); the default is the six parties of the
//! Bundestag the latent-space study probes: CDU/CSU, SPD, GRÜNE, FDP, AfD, DIE LINKE.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{DataError, Result};

/// The six Bundestag parties probed by default, in canonical spelling.
pub const DEFAULT_PARTIES: [&str; 6] = ["CDU/CSU", "SPD", "GRÜNE", "FDP", "AfD", "DIE LINKE"];

/// Canonical name → spellings seen across elections (compared after [`party_key`]).
const ALIASES: [(&str, &[&str]); 6] = [
    (
        "CDU/CSU",
        &["CDU / CSU", "CDU/CSU", "CDU", "CSU", "Union", "CDU-CSU"],
    ),
    ("SPD", &["SPD", "Sozialdemokratische Partei Deutschlands"]),
    (
        "GRÜNE",
        &[
            "GRÜNE",
            "Grüne",
            "Die Grünen",
            "BÜNDNIS 90/DIE GRÜNEN",
            "Bündnis 90/Die Grünen",
            "Gruene",
            "Greens",
            // inflected plural: "die Grünen"
            "Grünen",
        ],
    ),
    ("FDP", &["FDP", "Freie Demokratische Partei"]),
    ("AfD", &["AfD", "Alternative für Deutschland"]),
    (
        "DIE LINKE",
        // "Linken": inflected, as in "der Linken"
        &[
            "DIE LINKE",
            "Die Linke",
            "Linke",
            "LINKE",
            "Die Linke.",
            "Linken",
        ],
    ),
];

/// How a party refers to itself and is referred to, beyond its names, for masking probe
/// prompts: word beginnings (case-insensitive; the whole word is masked, so "SPDler",
/// "Sozialdemokratinnen" and "Freie Demokraten" go) — chosen so that no ordinary German or
/// English word begins with them.
const SELF_REFERENCE_STEMS: [(&str, &[&str]); 6] = [
    (
        "CDU/CSU",
        &[
            "cdu",
            "csu",
            "christdemokrat",
            "christsozial",
            "christlich demokratische union",
            "christlich-demokratische union",
            "christlich soziale union",
            "christlich-soziale union",
            "unionspartei",
            "unionsfraktion",
        ],
    ),
    ("SPD", &["spd", "sozialdemokrat"]),
    ("GRÜNE", &["bündnis 90", "bündnis90", "bündnisgrün"]),
    ("FDP", &["fdp", "freie demokrat", "freidemokrat"]),
    ("AfD", &["afd", "alternative für deutschland"]),
    ("DIE LINKE", &["linkspartei", "linksfraktion"]),
];

/// Spellings that are also ordinary words in another case ("grüne Energie", "linke Politik",
/// "Europäische Union"): masked only as written here, capitalized as a party name is. "Union"
/// is further left alone after "Europäische"/"European" (see the masking in `probe_prompts`).
pub const CASE_SENSITIVE_SPELLINGS: [&str; 9] = [
    "Grüne", "Grünen", "GRÜNE", "GRÜNEN", "Linke", "Linken", "LINKE", "LINKEN", "Union",
];

/// The word beginnings that identify a canonical party (see `SELF_REFERENCE_STEMS`).
pub fn self_reference_stems(canonical: &str) -> &'static [&'static str] {
    SELF_REFERENCE_STEMS
        .iter()
        .find(|(c, _)| *c == canonical)
        .map(|(_, s)| *s)
        .unwrap_or(&[])
}

/// Case-, space- and punctuation-insensitive form of a party name.
pub fn party_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Every known spelling of a canonical party (empty for parties outside the alias table).
pub fn alias_spellings(canonical: &str) -> &'static [&'static str] {
    ALIASES
        .iter()
        .find(|(c, _)| *c == canonical)
        .map(|(_, s)| *s)
        .unwrap_or(&[])
}

/// The canonical name of a known party spelling, if it is one.
pub fn canonical_party(name: &str) -> Option<&'static str> {
    let key = party_key(name);
    ALIASES
        .iter()
        .find(|(_, spellings)| spellings.iter().any(|s| party_key(s) == key))
        .map(|(c, _)| *c)
}

/// A party's answer to a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    Agree,
    Disagree,
    Neutral,
}

impl Position {
    fn from_message(message: &str) -> Option<Self> {
        match message.trim().to_lowercase().as_str() {
            "stimme zu" | "agree" => Some(Position::Agree),
            "stimme nicht zu" | "disagree" => Some(Position::Disagree),
            "neutral" => Some(Position::Neutral),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Position::Agree => "agree",
            Position::Disagree => "disagree",
            Position::Neutral => "neutral",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Statement {
    pub id: u32,
    pub label: String,
    pub text: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Party {
    pub id: u32,
    /// The name as the election spells it.
    pub name: String,
    pub longname: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Opinion {
    pub party: u32,
    pub statement: u32,
    pub position: Position,
    /// The party's justification, if it gave one.
    pub comment: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Election {
    /// The directory name, e.g. `2025-deutschland`.
    pub id: String,
    pub title: Option<String>,
    pub date: Option<String>,
    pub statements: Vec<Statement>,
    pub parties: Vec<Party>,
    pub opinions: Vec<Opinion>,
}

#[derive(Deserialize)]
struct RawStatement {
    id: u32,
    label: Option<String>,
    text: String,
}

#[derive(Deserialize)]
struct RawParty {
    id: u32,
    name: String,
    longname: Option<String>,
}

#[derive(Deserialize)]
struct RawAnswer {
    id: u32,
    message: String,
}

#[derive(Deserialize)]
struct RawOpinion {
    id: u32,
    party: u32,
    statement: u32,
    answer: u32,
    comment: Option<u32>,
}

#[derive(Deserialize)]
struct RawComment {
    id: u32,
    text: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawOverview {
    title: Option<String>,
    date: Option<String>,
}

fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T> {
    let path: PathBuf = dir.join(name);
    let text = crate::read_text(&path)?;
    serde_json::from_str(&text).map_err(|e| DataError::File {
        path,
        reason: format!("not a valid Wahl-o-Mat {name}: {e}"),
    })
}

impl Election {
    /// Loads and validates one election directory.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.exists() {
            // `<year>-<name>` is how `probe data fetch` names what it downloads
            let fetch = dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split_once('-'))
                .filter(|(year, name)| year.len() == 4 && !name.is_empty())
                .map_or_else(
                    || "probe data fetch wahl-o-mat <year> <name>".to_string(),
                    |(year, name)| format!("probe data fetch wahl-o-mat {year} {name}"),
                );
            return Err(DataError::File {
                path: dir.to_path_buf(),
                reason: format!("no such election directory; download it with `{fetch}`"),
            });
        }
        let statements: Vec<RawStatement> = read_json(dir, "statement.json")?;
        let parties: Vec<RawParty> = read_json(dir, "party.json")?;
        let answers: Vec<RawAnswer> = read_json(dir, "answer.json")?;
        let opinions: Vec<RawOpinion> = read_json(dir, "opinion.json")?;
        let comments: Vec<RawComment> = read_json(dir, "comment.json")?;
        let overview: RawOverview = if dir.join("overview.json").is_file() {
            read_json(dir, "overview.json")?
        } else {
            RawOverview::default()
        };
        let err = |file: &str, reason: String| DataError::File {
            path: dir.join(file),
            reason,
        };
        if statements.is_empty() || parties.is_empty() || opinions.is_empty() {
            return Err(err(
                "opinion.json",
                "the election has no statements, parties or opinions".into(),
            ));
        }
        // Ids must be unique (a duplicate would silently merge two statements or parties) and
        // every statement needs a text (an empty one makes prompts without a statement).
        let mut ids = std::collections::HashSet::new();
        for st in &statements {
            if !ids.insert(st.id) {
                return Err(err(
                    "statement.json",
                    format!("statement id {} appears twice", st.id),
                ));
            }
            if st.text.trim().is_empty() {
                return Err(err(
                    "statement.json",
                    format!("statement {} has an empty text", st.id),
                ));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for p in &parties {
            if !ids.insert(p.id) {
                return Err(err(
                    "party.json",
                    format!("party id {} appears twice", p.id),
                ));
            }
        }
        let mut positions = HashMap::new();
        for a in &answers {
            let p = Position::from_message(&a.message)
                .ok_or_else(|| err("answer.json", format!("answer {} has unknown message `{}` (expected Stimme zu / Stimme nicht zu / Neutral)", a.id, a.message)))?;
            positions.insert(a.id, p);
        }
        let comment_text: HashMap<u32, Option<String>> =
            comments.into_iter().map(|c| (c.id, c.text)).collect();
        let statement_ids: std::collections::HashSet<u32> =
            statements.iter().map(|s| s.id).collect();
        let party_ids: std::collections::HashSet<u32> = parties.iter().map(|p| p.id).collect();
        let mut out = Vec::with_capacity(opinions.len());
        let mut seen = std::collections::HashSet::new();
        for o in &opinions {
            if !party_ids.contains(&o.party) {
                return Err(err(
                    "opinion.json",
                    format!(
                        "opinion {} refers to party {}, which party.json lacks",
                        o.id, o.party
                    ),
                ));
            }
            if !statement_ids.contains(&o.statement) {
                return Err(err(
                    "opinion.json",
                    format!(
                        "opinion {} refers to statement {}, which statement.json lacks",
                        o.id, o.statement
                    ),
                ));
            }
            let position = *positions.get(&o.answer).ok_or_else(|| {
                err(
                    "opinion.json",
                    format!(
                        "opinion {} has answer code {}, which answer.json lacks",
                        o.id, o.answer
                    ),
                )
            })?;
            let comment = match o.comment {
                None => None,
                Some(c) => comment_text
                    .get(&c)
                    .ok_or_else(|| {
                        err(
                            "opinion.json",
                            format!(
                                "opinion {} refers to comment {}, which comment.json lacks",
                                o.id, c
                            ),
                        )
                    })?
                    .clone(),
            };
            if !seen.insert((o.party, o.statement)) {
                return Err(err(
                    "opinion.json",
                    format!("party {} answers statement {} twice", o.party, o.statement),
                ));
            }
            let comment = comment.map(|t| clean_comment(&t)).filter(|t| !t.is_empty());
            out.push(Opinion {
                party: o.party,
                statement: o.statement,
                position,
                comment,
            });
        }
        // Wahl-o-Mat asks every party every statement: a missing row would silently drop that
        // (party, statement) pair from the probe data and its class balance
        let answering: BTreeSet<u32> = out.iter().map(|o| o.party).collect();
        for party in &answering {
            if let Some(s) = statements.iter().find(|s| !seen.contains(&(*party, s.id))) {
                return Err(err(
                    "opinion.json",
                    format!(
                        "party {party} has no opinion on statement {} (every party that \
                         answers must answer every statement)",
                        s.id
                    ),
                ));
            }
        }
        Ok(Election {
            id: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            title: overview.title,
            date: overview.date,
            statements: statements
                .into_iter()
                .map(|s| Statement {
                    id: s.id,
                    label: s.label.unwrap_or_default(),
                    text: s.text,
                })
                .collect(),
            parties: parties
                .into_iter()
                .map(|p| Party {
                    id: p.id,
                    name: p.name,
                    longname: p.longname,
                })
                .collect(),
            opinions: out,
        })
    }

    /// Resolves party names (any alias or spelling, case-insensitive) to this election's
    /// parties, in the order given. An empty list means [`DEFAULT_PARTIES`].
    pub fn select_parties(&self, names: &[String]) -> Result<Vec<&Party>> {
        let wanted: Vec<String> = if names.is_empty() {
            DEFAULT_PARTIES.iter().map(|s| s.to_string()).collect()
        } else {
            names.to_vec()
        };
        let mut out = Vec::with_capacity(wanted.len());
        for name in &wanted {
            let canonical = canonical_party(name);
            let found = self.parties.iter().find(|p| {
                party_key(&p.name) == party_key(name)
                    || (canonical.is_some() && canonical_party(&p.name) == canonical)
            });
            match found {
                Some(p) => {
                    if out.iter().any(|q: &&Party| q.id == p.id) {
                        return Err(DataError::File {
                            path: PathBuf::from(&self.id),
                            reason: format!("party `{name}` is selected twice"),
                        });
                    }
                    if !self.opinions.iter().any(|o| o.party == p.id) {
                        return Err(DataError::File {
                            path: PathBuf::from(&self.id),
                            reason: format!("party `{}` has no opinions in this election", p.name),
                        });
                    }
                    out.push(p);
                }
                None => {
                    let available: Vec<&str> =
                        self.parties.iter().map(|p| p.name.as_str()).collect();
                    return Err(DataError::File {
                        path: PathBuf::from(&self.id),
                        reason: format!(
                            "unknown party `{name}`; this election has: {}",
                            available.join(", ")
                        ),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The display name for a party: canonical for the known six, else the election's own.
    pub fn display_name(party: &Party) -> String {
        canonical_party(&party.name)
            .map(str::to_string)
            .unwrap_or_else(|| party.name.clone())
    }

    pub fn statement(&self, id: u32) -> Option<&Statement> {
        self.statements.iter().find(|s| s.id == id)
    }

    /// Opinions of the selected parties, grouped by statement (statement id → opinions).
    pub fn opinions_by_statement(&self, parties: &[&Party]) -> BTreeMap<u32, Vec<&Opinion>> {
        let mut out: BTreeMap<u32, Vec<&Opinion>> = BTreeMap::new();
        for o in &self.opinions {
            if parties.iter().any(|p| p.id == o.party) {
                out.entry(o.statement).or_default().push(o);
            }
        }
        out
    }
}

/// Strips the quotes qual-o-mat keeps around justifications.
fn clean_comment(text: &str) -> String {
    let t = text.trim();
    let t = t.strip_prefix('"').unwrap_or(t);
    let t = t.strip_suffix('"').unwrap_or(t);
    t.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_across_spellings() {
        for (a, b) in [
            ("CDU / CSU", "CDU"),
            ("DIE LINKE", "Die Linke"),
            ("GRÜNE", "Bündnis 90/Die Grünen"),
            ("afd", "AfD"),
        ] {
            assert_eq!(canonical_party(a), canonical_party(b), "{a} vs {b}");
            assert!(canonical_party(a).is_some());
        }
        assert_eq!(canonical_party("Volt"), None);
    }
}
