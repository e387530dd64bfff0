//! OpinionQA group data (Santurkar et al. 2023) as redistributed with the distributional
//! alignment benchmark: `<ATTR>_data.json` (weighted answer counts per group) + `info.csv`
//! (option order and ordinal positions) + `metadata.csv` (the groups of each attribute).
//!
//! "Refused" is dropped from the distributions by default (and renormalized), as OpinionQA
//! does for its ordinal metrics; `keep_refused` keeps it as a last, non-ordinal option.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cells::Cell;
use crate::pylit::parse_list;
use crate::{DataError, Result};

pub const REFUSED: &str = "Refused";

fn file_err(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Per question: options in order and their ordinal positions, from `info.csv`.
struct QuestionInfo {
    /// `references`: the options in order. Preferred over the data file's `MC_options`, which
    /// upstream split at commas inside option texts ("Yes, frequently" → "Yes", "frequently").
    options: Option<Vec<String>>,
    ordinal: Vec<f64>,
}

fn read_info(dir: &Path) -> Result<HashMap<String, QuestionInfo>> {
    let path = dir.join("info.csv");
    let mut reader = csv::Reader::from_path(&path).map_err(|e| file_err(&path, e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| file_err(&path, e.to_string()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| file_err(&path, format!("no `{name}` column")))
    };
    let (key_col, ord_col) = (col("key")?, col("option_ordinal")?);
    let ref_col = headers.iter().position(|h| h == "references");
    let mut out = HashMap::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| DataError::Line {
            path: path.clone(),
            line: i + 2,
            reason: e.to_string(),
        })?;
        let ordinal = parse_list(rec.get(ord_col).unwrap_or(""))
            .and_then(|l| {
                l.iter()
                    .map(|x| x.parse::<f64>().ok())
                    .collect::<Option<Vec<f64>>>()
            })
            .ok_or_else(|| DataError::Line {
                path: path.clone(),
                line: i + 2,
                reason: "option_ordinal is not a list of numbers".into(),
            })?;
        let options = ref_col.and_then(|c| rec.get(c)).and_then(parse_list);
        out.insert(
            rec.get(key_col).unwrap_or("").to_string(),
            QuestionInfo { options, ordinal },
        );
    }
    Ok(out)
}

/// The groups `metadata.csv` lists for an attribute. Both the file and the attribute's row
/// are required: the data files also hold non-response categories (`Refused`) under the same
/// keys as groups, and only the metadata tells them apart.
fn read_groups(dir: &Path, attribute: &str) -> Result<Vec<String>> {
    let path = dir.join("metadata.csv");
    if !path.is_file() {
        return Err(file_err(
            &path,
            format!(
                "missing: it lists the groups of each attribute ({attribute}); without it the \
                 non-response category `{REFUSED}` would be read as a group"
            ),
        ));
    }
    let mut reader = csv::Reader::from_path(&path).map_err(|e| file_err(&path, e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| file_err(&path, e.to_string()))?
        .clone();
    let (Some(k), Some(o)) = (
        headers.iter().position(|h| h == "key"),
        headers.iter().position(|h| h == "options"),
    ) else {
        return Err(file_err(&path, "needs `key` and `options` columns"));
    };
    for rec in reader.records() {
        let rec = rec.map_err(|e| file_err(&path, e.to_string()))?;
        if rec.get(k) == Some(attribute) {
            let text = rec.get(o).unwrap_or("");
            return parse_list(text).ok_or_else(|| {
                file_err(
                    &path,
                    format!("row `{attribute}`: `options` is not a list of groups: {text}"),
                )
            });
        }
    }
    Err(file_err(
        &path,
        format!("has no row for attribute `{attribute}` (key column), so its groups are unknown"),
    ))
}

/// The attributes with a `<ATTR>_data.json` in `dir`.
pub fn attributes(dir: &Path) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix("_data.json")
                .map(str::to_string)
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Reference cells for every (question, group) of one attribute, labelled
/// `dataset=opinionqa, attribute, group, question`. Groups with no answers to a question are
/// skipped (they have no distribution).
pub fn read_attribute(dir: &Path, attribute: &str, keep_refused: bool) -> Result<Vec<Cell>> {
    let path: PathBuf = dir.join(format!("{attribute}_data.json"));
    let text = crate::read_text(&path)?;
    let data: BTreeMap<String, Value> =
        serde_json::from_str(&text).map_err(|e| file_err(&path, format!("not JSON: {e}")))?;
    let info = read_info(dir)?;
    let groups = read_groups(dir, attribute)?;
    let mut cells = Vec::new();
    for (key, q) in &data {
        let options_all: Vec<String> = match info.get(key).and_then(|i| i.options.clone()) {
            Some(options) => options,
            None => q
                .get("MC_options")
                .and_then(|o| o.as_array())
                .ok_or_else(|| file_err(&path, format!("question `{key}` has no MC_options")))?
                .iter()
                .filter_map(|o| o.as_str().map(str::to_string))
                .collect(),
        };
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = options_all.iter().find(|o| !seen.insert(o.as_str())) {
            return Err(file_err(
                &path,
                format!("question `{key}` lists option `{dup}` twice"),
            ));
        }
        let options: Vec<String> = options_all
            .iter()
            .filter(|o| keep_refused || o.as_str() != REFUSED)
            .cloned()
            .collect();
        let ordinal = info.get(key).map(|qi| {
            let mut it = qi.ordinal.iter();
            options
                .iter()
                .map(|o| {
                    if o == REFUSED {
                        None
                    } else {
                        it.next().copied()
                    }
                })
                .collect::<Vec<Option<f64>>>()
        });
        for group in &groups {
            let Some(counts) = q.get(group).and_then(|g| g.as_object()) else {
                continue;
            };
            let values: Vec<f64> = options
                .iter()
                .map(|o| counts.get(o).and_then(|c| c.as_f64()).unwrap_or(0.0))
                .collect();
            let total: f64 = values.iter().sum();
            if total <= 0.0 {
                continue;
            }
            let mut labels = BTreeMap::new();
            labels.insert("dataset".to_string(), "opinionqa".to_string());
            labels.insert("attribute".to_string(), attribute.to_string());
            labels.insert("group".to_string(), group.clone());
            labels.insert("question".to_string(), key.clone());
            cells.push(Cell {
                labels,
                options: options.clone(),
                predicted: None,
                reference: Some(values.iter().map(|v| v / total).collect()),
                weight: Some(total),
                ordinal: ordinal.clone(),
                origin: None,
            });
        }
    }
    if cells.is_empty() {
        return Err(file_err(&path, "no (question, group) cell has answers"));
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-question folder whose data file also holds the non-response `Refused` key.
    fn folder(metadata: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let counts = r#"{"Yes": 3, "No": 1, "Refused": 1}"#;
        std::fs::write(
            dir.path().join("SEX_data.json"),
            format!(
                r#"{{"Q1": {{"MC_options": ["Yes", "No", "Refused"], "question_text": "Q?",
                    "Male": {counts}, "Female": {counts}, "Refused": {counts}}}}}"#
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("info.csv"),
            "key,option_ordinal,references\nQ1,\"[1.0, 2.0]\",\"['Yes', 'No', 'Refused']\"\n",
        )
        .unwrap();
        if let Some(m) = metadata {
            std::fs::write(dir.path().join("metadata.csv"), m).unwrap();
        }
        dir
    }

    #[test]
    fn groups_come_from_metadata_never_from_the_data_keys() {
        let dir = folder(Some(",key,options\n0,SEX,\"['Male', 'Female']\"\n"));
        let cells = read_attribute(dir.path(), "SEX", false).unwrap();
        let groups: Vec<&str> = cells.iter().map(|c| c.labels["group"].as_str()).collect();
        assert_eq!(groups, ["Male", "Female"]);
        assert_eq!(cells[0].options, ["Yes", "No"]);
        assert_eq!(cells[0].reference, Some(vec![0.75, 0.25]));
    }

    #[test]
    fn a_folder_without_metadata_or_without_the_attribute_is_an_error() {
        let err = read_attribute(folder(None).path(), "SEX", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("metadata.csv") && err.contains("missing"),
            "{err}"
        );
        let other = folder(Some(",key,options\n0,AGE,\"['18-29']\"\n"));
        let err = read_attribute(other.path(), "SEX", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no row for attribute `SEX`"), "{err}");
        let broken = folder(Some(",key,options\n0,SEX,Male and Female\n"));
        let err = read_attribute(broken.path(), "SEX", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a list of groups"), "{err}");
    }
}
