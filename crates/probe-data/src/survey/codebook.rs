//! The codebook: what each column of a respondent-level survey means, checked on load, and
//! the parser of the data file it describes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{DataError, Result};

/// The most respondents and columns a survey may have (checked before rows are kept).
pub const MAX_RESPONDENTS: usize = 10_000_000;
pub const MAX_COLUMNS: usize = 10_000;

/// One respondent: demographic values (as in the data), answers as option indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Respondent {
    pub id: String,
    pub weight: f64,
    /// Per demographic of the codebook, the raw value (`None`: missing).
    pub demographics: Vec<Option<String>>,
    /// Per item of the codebook, the index of the option answered (`None`: missing).
    pub answers: Vec<Option<usize>>,
}

pub(super) fn file_error(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// How an item's options relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// Ordered options (a 7-point scale): RMSE over option positions is meaningful.
    Ordinal,
    /// Unordered options (a vote): accuracy, not RMSE.
    Nominal,
    /// Options that are numbers (days per week): RMSE over the codes' values.
    Numeric,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerOption {
    /// The value in the data file.
    pub code: String,
    /// What the option says in a prompt.
    pub label: String,
}

/// One question of the survey.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub column: String,
    pub question: String,
    pub kind: ItemKind,
    pub options: Vec<AnswerOption>,
}

impl Item {
    /// The option's value on the item's scale: its code for numeric items, its position for
    /// ordinal ones; `None` for nominal items.
    pub fn value(&self, option: usize) -> Option<f64> {
        match self.kind {
            ItemKind::Numeric => self.options[option].code.trim().parse().ok(),
            ItemKind::Ordinal => Some(option as f64),
            ItemKind::Nominal => None,
        }
    }
}

/// A demographic column and how its values read in a persona.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demographic {
    pub column: String,
    /// `number`: the value itself (`text` may wrap it: "{value} thousand"; `codes` may give
    /// some values their own text); `coded`: one text per code.
    pub kind: DemographicKind,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub codes: BTreeMap<String, String>,
    /// The values a `number` demographic may take, inclusive (default
    /// [`DEFAULT_NUMBER_RANGE`]); values with their own text in `codes` are exempt. An age of
    /// −40 or 1e9 is a broken file, not a persona.
    #[serde(default)]
    pub range: Option<[f64; 2]>,
}

/// The range of a `number` demographic whose codebook declares none: non-negative and below
/// a million (populations in thousands, ages, counts); declare `range` for anything else.
pub const DEFAULT_NUMBER_RANGE: [f64; 2] = [0.0, 1e6];

impl Demographic {
    /// The inclusive range of a `number` demographic's values.
    pub fn range(&self) -> [f64; 2] {
        self.range.unwrap_or(DEFAULT_NUMBER_RANGE)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DemographicKind {
    Number,
    Coded,
}

/// The codebook file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Codebook {
    pub name: String,
    pub title: String,
    /// Where the data comes from, and its license.
    pub source: String,
    /// The data file, relative to the codebook.
    pub data: PathBuf,
    /// `,`, `tab` or `whitespace` (runs of spaces or tabs).
    #[serde(default = "comma")]
    pub separator: String,
    /// A column of respondent ids (default: the row number, from 1).
    #[serde(default)]
    pub id: Option<String>,
    /// A column of survey weights (default: every respondent weighs 1).
    #[serde(default)]
    pub weight: Option<String>,
    /// Codes that mean "no answer" in any item or demographic column.
    #[serde(default)]
    pub missing: Vec<String>,
    /// The persona: `{column}` becomes that demographic's text for the respondent.
    pub persona: String,
    #[serde(rename = "demographic")]
    pub demographics: Vec<Demographic>,
    #[serde(rename = "item")]
    pub items: Vec<Item>,
}

fn comma() -> String {
    ",".into()
}

impl Codebook {
    pub(super) fn check(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| Err(file_error(path, reason));
        if self.items.is_empty() {
            return bad("no [[item]]: nothing to ask".into());
        }
        if !matches!(self.separator.as_str(), "," | ";" | "tab" | "whitespace") {
            return bad(format!(
                "separator `{}`: use \",\", \";\", \"tab\" or \"whitespace\"",
                self.separator
            ));
        }
        let mut seen = HashMap::new();
        for column in self
            .demographics
            .iter()
            .map(|d| &d.column)
            .chain(self.items.iter().map(|i| &i.column))
        {
            if seen.insert(column.clone(), ()).is_some() {
                return bad(format!("column `{column}` is named twice"));
            }
        }
        for item in &self.items {
            if item.options.len() < 2 {
                return bad(format!(
                    "item `{}` has {} option(s); an item needs at least two",
                    item.column,
                    item.options.len()
                ));
            }
            let mut codes = HashMap::new();
            for o in &item.options {
                if codes.insert(o.code.as_str(), ()).is_some() {
                    return bad(format!("item `{}`: code `{}` twice", item.column, o.code));
                }
                if item.kind == ItemKind::Numeric && o.code.trim().parse::<f64>().is_err() {
                    return bad(format!(
                        "item `{}` is numeric but its code `{}` is not a number",
                        item.column, o.code
                    ));
                }
            }
            if item.question.trim().is_empty() {
                return bad(format!("item `{}` has no question text", item.column));
            }
        }
        for d in &self.demographics {
            if d.kind == DemographicKind::Coded && d.codes.is_empty() {
                return bad(format!(
                    "demographic `{}` is coded but has no codes",
                    d.column
                ));
            }
            if let Some([low, high]) = d.range {
                if d.kind != DemographicKind::Number {
                    return bad(format!(
                        "demographic `{}`: `range` is for kind = \"number\"",
                        d.column
                    ));
                }
                if !(low.is_finite() && high.is_finite() && low <= high) {
                    return bad(format!(
                        "demographic `{}`: range [{low}, {high}] is not an interval",
                        d.column
                    ));
                }
            }
        }
        // a `missing` code that is also an answer would silently turn those answers into
        // non-answers (and a persona value into a missing one)
        for m in &self.missing {
            for item in &self.items {
                if let Some(o) = item.options.iter().find(|o| &o.code == m) {
                    return bad(format!(
                        "missing code `{m}` is also the code of option `{}` of item `{}`; a code is either an answer or missing",
                        o.label, item.column
                    ));
                }
            }
            for d in &self.demographics {
                if d.codes.contains_key(m) {
                    return bad(format!(
                        "missing code `{m}` is also a code of demographic `{}`; a code is either a value or missing",
                        d.column
                    ));
                }
            }
        }
        // the id and weight columns are neither items nor demographics (nor each other)
        let role_of = |column: &str| -> Option<&'static str> {
            if self.items.iter().any(|i| i.column == column) {
                Some("an item")
            } else if self.demographics.iter().any(|d| d.column == column) {
                Some("a demographic")
            } else {
                None
            }
        };
        for (key, column) in [("weight", &self.weight), ("id", &self.id)] {
            if let Some(column) = column {
                if let Some(role) = role_of(column) {
                    return bad(format!(
                        "{key} column `{column}` is also {role}; name a column of its own"
                    ));
                }
            }
        }
        if self.weight.is_some() && self.weight == self.id {
            return bad(format!(
                "column `{}` is both the id and the weight column",
                self.weight.as_deref().unwrap_or_default()
            ));
        }
        // every {name} in the persona is a demographic
        let mut rest = self.persona.as_str();
        while let Some(start) = rest.find('{') {
            let end = rest[start..]
                .find('}')
                .map(|e| start + e)
                .ok_or_else(|| file_error(path, "persona: an unclosed `{`".to_string()))?;
            let name = &rest[start + 1..end];
            if !self.demographics.iter().any(|d| d.column == name) {
                return bad(format!(
                    "persona names `{{{name}}}`, which is not a [[demographic]] column"
                ));
            }
            rest = &rest[end + 1..];
        }
        Ok(())
    }

    fn split_line<'a>(&self, line: &'a str) -> Vec<&'a str> {
        match self.separator.as_str() {
            "whitespace" => line.split_whitespace().collect(),
            "tab" => line.split('\t').map(str::trim).collect(),
            sep => line.split(sep).map(str::trim).collect(),
        }
    }

    pub(super) fn parse(&self, path: &Path, text: &str) -> Result<Vec<Respondent>> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .ok_or_else(|| file_error(path, "empty: no header row"))?;
        // statsmodels quotes its header names: 'popul'
        let header: Vec<String> = self
            .split_line(header)
            .iter()
            .map(|h| h.trim_matches(|c| c == '\'' || c == '"').to_string())
            .collect();
        if header.len() > MAX_COLUMNS {
            return Err(file_error(
                path,
                format!("{} columns (at most {MAX_COLUMNS})", header.len()),
            ));
        }
        // a column named twice would be read from its first copy while the second differs
        if let Some(name) = duplicate_column(&header) {
            return Err(file_error(
                path,
                format!("column `{name}` appears twice in the header"),
            ));
        }
        let index = |name: &str| -> Result<usize> {
            header.iter().position(|h| h == name).ok_or_else(|| {
                file_error(
                    path,
                    format!("no column `{name}` (the file has: {})", header.join(", ")),
                )
            })
        };
        let id_col = self.id.as_deref().map(index).transpose()?;
        let weight_col = self.weight.as_deref().map(index).transpose()?;
        let demo_cols: Vec<usize> = self
            .demographics
            .iter()
            .map(|d| index(&d.column))
            .collect::<Result<_>>()?;
        let item_cols: Vec<usize> = self
            .items
            .iter()
            .map(|i| index(&i.column))
            .collect::<Result<_>>()?;
        let missing = |v: &str| v.is_empty() || self.missing.iter().any(|m| m == v);
        let mut out = Vec::new();
        let mut lines_of_ids: HashMap<String, usize> = HashMap::new();
        for (n, line) in lines {
            let at = |reason: String| DataError::Line {
                path: path.to_path_buf(),
                line: n + 1,
                reason,
            };
            if out.len() == MAX_RESPONDENTS {
                return Err(at(format!("more than {MAX_RESPONDENTS} respondents")));
            }
            let fields = self.split_line(line);
            if fields.len() != header.len() {
                return Err(at(format!(
                    "{} fields, the header has {}",
                    fields.len(),
                    header.len()
                )));
            }
            let weight = match weight_col {
                None => 1.0,
                Some(c) => match fields[c].parse::<f64>() {
                    Ok(w) if w.is_finite() && w >= 0.0 => w,
                    _ => return Err(at(format!("weight `{}` is not a number ≥ 0", fields[c]))),
                },
            };
            let mut demographics = Vec::with_capacity(demo_cols.len());
            for (d, &c) in self.demographics.iter().zip(&demo_cols) {
                let v = fields[c];
                if missing(v) {
                    demographics.push(None);
                    continue;
                }
                let known = match d.kind {
                    DemographicKind::Coded => d.codes.contains_key(v),
                    DemographicKind::Number => {
                        v.parse::<f64>().is_ok_and(f64::is_finite) || d.codes.contains_key(v)
                    }
                };
                if !known {
                    return Err(at(format!(
                        "`{v}` in column `{}` is not {}",
                        d.column,
                        match d.kind {
                            DemographicKind::Coded => "one of the codebook's codes",
                            DemographicKind::Number => "a number",
                        }
                    )));
                }
                if d.kind == DemographicKind::Number && !d.codes.contains_key(v) {
                    let [low, high] = d.range();
                    let x: f64 = v.parse().unwrap_or(f64::NAN);
                    if !(low..=high).contains(&x) {
                        return Err(at(format!(
                            "`{v}` in column `{}` is outside its range [{low}, {high}] (declare `range` in the codebook if it is right)",
                            d.column
                        )));
                    }
                }
                demographics.push(Some(v.to_string()));
            }
            let mut answers = Vec::with_capacity(item_cols.len());
            for (item, &c) in self.items.iter().zip(&item_cols) {
                let v = fields[c];
                if missing(v) {
                    answers.push(None);
                    continue;
                }
                let option = item.options.iter().position(|o| o.code == v).ok_or_else(|| {
                    at(format!(
                        "`{v}` in item `{}` is none of its options' codes ({}); list it under `missing` if it means no answer",
                        item.column,
                        item.options.iter().map(|o| o.code.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })?;
                answers.push(Some(option));
            }
            let id = match id_col {
                Some(c) => fields[c].to_string(),
                None => (out.len() + 1).to_string(),
            };
            // ids key the resumable logs, the split and the answers: one respondent each
            if id.is_empty() {
                return Err(at(format!(
                    "empty id in column `{}`",
                    self.id.as_deref().unwrap_or_default()
                )));
            }
            if let Some(first) = lines_of_ids.insert(id.clone(), n + 1) {
                return Err(at(format!(
                    "id `{id}` in column `{}` is also the id of line {first}; every respondent needs an id of its own",
                    self.id.as_deref().unwrap_or_default()
                )));
            }
            out.push(Respondent {
                id,
                weight,
                demographics,
                answers,
            });
        }
        if out.is_empty() {
            return Err(file_error(path, "no respondents"));
        }
        Ok(out)
    }
}

/// The first name that appears twice in a header.
pub fn duplicate_column(header: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    header
        .iter()
        .find(|h| !seen.insert(h.as_str()))
        .map(String::as_str)
}
