//! Respondent-level survey data: one CSV row per respondent with attribute columns, an optional
//! survey weight and the answer (e.g. the party voted for) — the shape of a GLES or ALLBUS
//! extract. Turned into weighted reference [`Cell`]s: everyone (`attribute=all,value=all`) and
//! one cell per attribute value (`attribute=age,value=18-24`), the labels `probe scale` writes,
//! so the two join directly when the CSV uses the persona spec's value ids.
//!
//! ```csv
//! id,age,gender,region,weight,vote
//! 1,18-24,female,east,0.93,GRÜNE
//! 2,65+,male,west,1.10,CDU/CSU
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cells::Cell;
use crate::wahl_o_mat::canonical_party;
use crate::{DataError, Result};

/// Answers that mean "no answer" unless the caller says otherwise (GLES codes negative
/// values for refusals and filters).
pub const DEFAULT_MISSING: [&str; 4] = ["", "NA", "nan", "."];

#[derive(Debug, Clone)]
pub struct RespondentOptions {
    /// Column holding the answer.
    pub answer: String,
    /// Column holding the survey weight (every respondent weighs 1 when absent).
    pub weight: Option<String>,
    /// Columns to group by; every column except answer and weight (and `id`) when `None`.
    pub attributes: Option<Vec<String>>,
    /// Answer values counted as no answer; also every negative integer code.
    pub missing: Vec<String>,
}

impl RespondentOptions {
    pub fn new(answer: impl Into<String>) -> Self {
        RespondentOptions {
            answer: answer.into(),
            weight: None,
            attributes: None,
            missing: DEFAULT_MISSING.iter().map(|s| s.to_string()).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Respondent {
    /// 1-based line in the file (the header is line 1).
    pub line: usize,
    /// Values of [`Respondents::attributes`], in that order.
    pub attributes: Vec<String>,
    pub weight: f64,
    pub answer: String,
}

#[derive(Debug, Clone)]
pub struct Respondents {
    pub path: PathBuf,
    pub answer_column: String,
    pub attributes: Vec<String>,
    pub rows: Vec<Respondent>,
    /// Respondents without an answer (missing codes), not in `rows`.
    pub missing_answers: usize,
}

/// What [`Respondents::reference_cells`] left out because the answer is not an option.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Dropped {
    pub respondents: usize,
    pub weight: f64,
    pub total_weight: f64,
    /// Dropped answers and their weight, largest first.
    pub answers: Vec<(String, f64)>,
}

fn file_err(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn line_err(path: &Path, line: usize, reason: impl Into<String>) -> DataError {
    DataError::Line {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

fn is_missing(answer: &str, missing: &[String]) -> bool {
    missing.iter().any(|m| m == answer) || answer.parse::<i64>().is_ok_and(|code| code < 0)
}

pub fn read_respondents(path: &Path, options: &RespondentOptions) -> Result<Respondents> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| file_err(path, e.to_string()))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| file_err(path, e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    // a column named twice would be grouped by its first copy while the second differs
    if let Some(name) = crate::survey::duplicate_column(&header) {
        return Err(file_err(
            path,
            format!("column `{name}` appears twice in the header"),
        ));
    }
    let column = |name: &str, role: &str| -> Result<usize> {
        header.iter().position(|h| h == name).ok_or_else(|| {
            file_err(
                path,
                format!("no {role} column `{name}` (columns: {})", header.join(", ")),
            )
        })
    };
    let answer_col = column(&options.answer, "answer")?;
    let weight_col = options
        .weight
        .as_deref()
        .map(|w| column(w, "weight"))
        .transpose()?;
    let attributes: Vec<String> = match &options.attributes {
        Some(a) => a.clone(),
        None => header
            .iter()
            .enumerate()
            .filter(|(i, h)| {
                *i != answer_col && Some(*i) != weight_col && !h.eq_ignore_ascii_case("id")
            })
            .map(|(_, h)| h.clone())
            .collect(),
    };
    if weight_col == Some(answer_col) {
        return Err(file_err(
            path,
            format!(
                "`{}` is both the answer and the weight column",
                options.answer
            ),
        ));
    }
    let attribute_cols = attributes
        .iter()
        .map(|a| column(a, "attribute"))
        .collect::<Result<Vec<_>>>()?;
    if let Some(a) = attribute_cols
        .iter()
        .position(|&c| c == answer_col || Some(c) == weight_col)
    {
        return Err(file_err(
            path,
            format!(
                "attribute `{}` is the {} column; group by other columns",
                attributes[a],
                if attribute_cols[a] == answer_col {
                    "answer"
                } else {
                    "weight"
                }
            ),
        ));
    }
    let mut rows = Vec::new();
    let mut missing_answers = 0;
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| line_err(path, line, e.to_string()))?;
        let answer = record.get(answer_col).unwrap_or("").trim().to_string();
        if is_missing(&answer, &options.missing) {
            missing_answers += 1;
            continue;
        }
        let weight = match weight_col {
            None => 1.0,
            Some(c) => {
                let text = record.get(c).unwrap_or("").trim();
                let w: f64 = text.parse().map_err(|_| {
                    line_err(path, line, format!("weight `{text}` is not a number"))
                })?;
                if !w.is_finite() || w < 0.0 {
                    return Err(line_err(
                        path,
                        line,
                        format!("weight {w} must be finite and non-negative"),
                    ));
                }
                w
            }
        };
        rows.push(Respondent {
            line,
            attributes: attribute_cols
                .iter()
                .map(|&c| record.get(c).unwrap_or("").trim().to_string())
                .collect(),
            weight,
            answer,
        });
    }
    if rows.is_empty() {
        return Err(file_err(
            path,
            format!(
                "no respondent with an answer in `{}` ({missing_answers} missing)",
                options.answer
            ),
        ));
    }
    if rows.iter().all(|r| r.weight == 0.0) {
        return Err(file_err(path, "every respondent has weight 0"));
    }
    Ok(Respondents {
        path: path.to_path_buf(),
        answer_column: options.answer.clone(),
        attributes,
        rows,
        missing_answers,
    })
}

impl Respondents {
    /// The distinct answers, heaviest first (ties by name).
    pub fn answers(&self) -> Vec<String> {
        let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
        for r in &self.rows {
            *totals.entry(&r.answer).or_default() += r.weight;
        }
        let mut v: Vec<(&str, f64)> = totals.into_iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter().map(|(a, _)| a.to_string()).collect()
    }

    /// Which option an answer counts for: the same text, or the same party under the
    /// Wahl-o-Mat alias table ("Bündnis 90/Die Grünen" = "GRÜNE").
    fn option_of(answer: &str, options: &[String]) -> Option<usize> {
        options.iter().position(|o| o == answer).or_else(|| {
            let party = canonical_party(answer)?;
            options
                .iter()
                .position(|o| canonical_party(o) == Some(party))
        })
    }

    /// Respondents (unweighted) behind each scope of [`Respondents::reference_cells`]: everyone
    /// (`all`/`all`) and every attribute value, counting only answers among `options`.
    pub fn scope_sizes(&self, options: &[String]) -> BTreeMap<(String, String), usize> {
        let mut sizes = BTreeMap::new();
        for r in self
            .rows
            .iter()
            .filter(|r| Self::option_of(&r.answer, options).is_some())
        {
            *sizes.entry(("all".into(), "all".into())).or_insert(0) += 1;
            for (a, v) in self.attributes.iter().zip(&r.attributes) {
                if !v.is_empty() {
                    *sizes.entry((a.clone(), v.clone())).or_insert(0) += 1;
                }
            }
        }
        sizes
    }

    /// Weighted answer shares for everyone and for every attribute value, over `options`
    /// (answers outside them are dropped and the rest renormalized, as when a model is asked
    /// to choose among six parties). Each cell's `weight` is its respondents' total weight.
    /// Per scope (`all`/`all` and each attribute value), each respondent's contribution to the
    /// scope's distribution over `options`: its weight on the option it chose (respondents
    /// answering outside the options are left out, as in [`Self::reference_cells`]). The
    /// units a bootstrap over respondents resamples.
    pub fn scope_units(&self, options: &[String]) -> BTreeMap<(String, String), Vec<Vec<f64>>> {
        let mut out: BTreeMap<(String, String), Vec<Vec<f64>>> = BTreeMap::new();
        for r in &self.rows {
            let Some(k) = Self::option_of(&r.answer, options) else {
                continue;
            };
            let mut unit = vec![0.0; options.len()];
            unit[k] = r.weight;
            out.entry(("all".into(), "all".into()))
                .or_default()
                .push(unit.clone());
            for (a, v) in self.attributes.iter().zip(&r.attributes) {
                if !v.is_empty() {
                    out.entry((a.clone(), v.clone()))
                        .or_default()
                        .push(unit.clone());
                }
            }
        }
        out
    }

    pub fn reference_cells(
        &self,
        options: &[String],
        labels: &BTreeMap<String, String>,
    ) -> Result<(Vec<Cell>, Dropped)> {
        if options.is_empty() {
            return Err(file_err(&self.path, "no answer options to count"));
        }
        // scope (attribute, value) → weighted counts per option
        let mut scopes: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        let mut order: Vec<(String, String)> = vec![("all".into(), "all".into())];
        let mut dropped = Dropped::default();
        let mut dropped_answers: BTreeMap<String, f64> = BTreeMap::new();
        for r in &self.rows {
            dropped.total_weight += r.weight;
            let Some(k) = Self::option_of(&r.answer, options) else {
                dropped.respondents += 1;
                dropped.weight += r.weight;
                *dropped_answers.entry(r.answer.clone()).or_default() += r.weight;
                continue;
            };
            let mut add = |scope: (String, String)| {
                let counts = scopes.entry(scope.clone()).or_insert_with(|| {
                    order.push(scope);
                    vec![0.0; options.len()]
                });
                counts[k] += r.weight;
            };
            add(("all".into(), "all".into()));
            for (a, v) in self.attributes.iter().zip(&r.attributes) {
                if !v.is_empty() {
                    add((a.clone(), v.clone()));
                }
            }
        }
        let mut answers: Vec<(String, f64)> = dropped_answers.into_iter().collect();
        answers.sort_by(|a, b| b.1.total_cmp(&a.1));
        dropped.answers = answers;
        let mut cells = Vec::new();
        for scope in order.into_iter().skip(1) {
            let counts = &scopes[&scope];
            let total: f64 = counts.iter().sum();
            if total <= 0.0 {
                continue;
            }
            let mut cell_labels = labels.clone();
            cell_labels.insert("attribute".into(), scope.0.clone());
            cell_labels.insert("value".into(), scope.1.clone());
            cells.push(Cell {
                labels: cell_labels,
                options: options.to_vec(),
                predicted: None,
                reference: Some(counts.iter().map(|c| c / total).collect()),
                weight: Some(total),
                ordinal: None,
                origin: None,
            });
        }
        if cells.is_empty() {
            return Err(file_err(
                &self.path,
                format!(
                    "no respondent answered one of {options:?} (answers: {})",
                    self.answers().join(", ")
                ),
            ));
        }
        cells.sort_by_key(|c| c.labels.get("attribute").map(|a| a != "all"));
        Ok((cells, dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("survey.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn weighted_shares_by_group_with_aliases_and_dropped_answers() {
        let (_d, path) = write(
            "id,gender,region,weight,vote\n\
             1,female,east,2,Bündnis 90/Die Grünen\n\
             2,female,west,1,SPD\n\
             3,male,east,1,SPD\n\
             4,male,west,1,Tierschutzpartei\n\
             5,male,west,3,-99\n",
        );
        let mut o = RespondentOptions::new("vote");
        o.weight = Some("weight".into());
        let r = read_respondents(&path, &o).unwrap();
        assert_eq!(r.attributes, ["gender", "region"]);
        assert_eq!(r.rows.len(), 4);
        assert_eq!(r.missing_answers, 1);
        let options = vec!["SPD".to_string(), "GRÜNE".to_string()];
        let (cells, dropped) = r.reference_cells(&options, &BTreeMap::new()).unwrap();
        let sizes = r.scope_sizes(&options);
        // unweighted: the three respondents who chose SPD or GRÜNE, in each scope they are in
        let n = |a: &str, v: &str| sizes[&(a.to_string(), v.to_string())];
        assert_eq!(
            (n("all", "all"), n("gender", "female"), n("gender", "male")),
            (3, 2, 1)
        );
        assert_eq!((n("region", "east"), n("region", "west")), (2, 1));
        assert_eq!(dropped.respondents, 1);
        assert_eq!(dropped.weight, 1.0);
        assert_eq!(dropped.total_weight, 5.0);
        let get = |a: &str, v: &str| {
            cells
                .iter()
                .find(|c| c.labels["attribute"] == a && c.labels["value"] == v)
                .unwrap()
        };
        // everyone: SPD 1+1, GRÜNE 2 → 0.5 / 0.5 over weight 4
        assert_eq!(get("all", "all").reference.as_ref().unwrap(), &[0.5, 0.5]);
        assert_eq!(get("all", "all").weight, Some(4.0));
        // female: SPD 1, GRÜNE 2
        let f = get("gender", "female").reference.clone().unwrap();
        assert!((f[0] - 1.0 / 3.0).abs() < 1e-15 && (f[1] - 2.0 / 3.0).abs() < 1e-15);
        // male west only answered outside the options: no cell
        assert!(cells.iter().all(|c| !(c.labels["attribute"] == "region"
            && c.labels["value"] == "west")
            || c.reference.as_ref().unwrap() == &[1.0, 0.0]));
        assert_eq!(cells[0].labels["attribute"], "all");
    }

    #[test]
    fn bad_weights_and_columns_name_the_line() {
        let (_d, path) = write("age,w,vote\n30,abc,SPD\n");
        let mut o = RespondentOptions::new("vote");
        o.weight = Some("w".into());
        let e = read_respondents(&path, &o).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("abc"), "{e}");
        let (_d, path) = write("age,w,vote\n30,-1,SPD\n");
        let e = read_respondents(&path, &o).unwrap_err().to_string();
        assert!(e.contains("non-negative"), "{e}");
        let o = RespondentOptions::new("party");
        let e = read_respondents(&path, &o).unwrap_err().to_string();
        assert!(e.contains("no answer column `party`"), "{e}");
        let (_d, path) = write("age,vote\n30,\n40,NA\n");
        let e = read_respondents(&path, &RespondentOptions::new("vote"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no respondent"), "{e}");
    }
}
