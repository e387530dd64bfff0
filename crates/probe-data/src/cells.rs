//! The one input format for distributions: JSONL, one line per cell.
//!
//! ```json
//! {"model": "smollm2", "method": "verbalize", "group": "Democrat", "question": "WORRYB_W26",
//!  "options": ["Worry a lot", "Worry a little", "Do not worry at all"],
//!  "predicted": [0.2, 0.5, 0.3], "reference_counts": [66, 294, 372], "weight": 1.0,
//!  "ordinal": [1, 2, 3]}
//! ```
//!
//! Every string or number field other than the reserved ones (`options`, `predicted`,
//! `reference`, `predicted_counts`, `reference_counts`, `weight`, `ordinal`) is a free-form
//! label; labels may also be nested under `"labels"`. `predicted`/`reference` are
//! probabilities (must sum to 1 unless read with `normalize`); the `_counts` forms are counts.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value};

use crate::{DataError, Result};

const RESERVED: [&str; 7] = [
    "options",
    "predicted",
    "reference",
    "predicted_counts",
    "reference_counts",
    "weight",
    "ordinal",
];
const SUM_TOLERANCE: f64 = 1e-6;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cell {
    pub labels: BTreeMap<String, String>,
    pub options: Vec<String>,
    pub predicted: Option<Vec<f64>>,
    pub reference: Option<Vec<f64>>,
    /// Weight of the cell in aggregates (e.g. a group's population share); 1 when absent.
    pub weight: Option<f64>,
    /// Ordinal position of each option; `None` for options outside the scale ("Refused").
    pub ordinal: Option<Vec<Option<f64>>>,
    /// Where the cell was read (`file:line`), for error messages.
    #[serde(skip)]
    pub origin: Option<String>,
}

impl Cell {
    /// The labels as `k=v,k=v`, and the cell's `file:line` when it was read from one (for
    /// messages).
    pub fn describe(&self) -> String {
        let labels = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        match &self.origin {
            Some(origin) => format!("{labels} ({origin})"),
            None => labels,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.labels {
            m.insert(k.clone(), Value::String(v.clone()));
        }
        m.insert("options".into(), serde_json::json!(self.options));
        if let Some(p) = &self.predicted {
            m.insert("predicted".into(), serde_json::json!(p));
        }
        if let Some(r) = &self.reference {
            m.insert("reference".into(), serde_json::json!(r));
        }
        if let Some(w) = self.weight {
            m.insert("weight".into(), serde_json::json!(w));
        }
        if let Some(o) = &self.ordinal {
            m.insert("ordinal".into(), serde_json::json!(o));
        }
        Value::Object(m)
    }
}

/// Checks a probability vector (or normalizes counts) for one field of one line.
fn distribution(
    values: &[Value],
    field: &str,
    counts: bool,
    normalize: bool,
    n_options: usize,
) -> std::result::Result<Vec<f64>, String> {
    if values.len() != n_options {
        return Err(format!(
            "`{field}` has {} values for {n_options} options",
            values.len()
        ));
    }
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let x = v
            .as_f64()
            .ok_or_else(|| format!("`{field}`[{i}] = {v} is not a number"))?;
        if !x.is_finite() {
            return Err(format!("`{field}`[{i}] is not finite"));
        }
        if x < 0.0 {
            return Err(format!("`{field}`[{i}] = {x} is negative"));
        }
        out.push(x);
    }
    let sum: f64 = out.iter().sum();
    if counts || normalize {
        if sum <= 0.0 {
            return Err(format!("`{field}` is all zeros"));
        }
        out.iter_mut().for_each(|x| *x /= sum);
    } else if (sum - 1.0).abs() > SUM_TOLERANCE {
        return Err(format!("`{field}` sums to {sum}, not 1 (use `{field}_counts` for counts, or --normalize to rescale)"));
    }
    Ok(out)
}

/// Parses one JSON object into a cell.
pub fn parse_cell(obj: &Map<String, Value>, normalize: bool) -> std::result::Result<Cell, String> {
    let options: Vec<String> = match obj.get("options") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|o| match o {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!("option {other} is not a string")),
            })
            .collect::<std::result::Result<_, _>>()?,
        _ => return Err("missing `options` (an array of option names)".into()),
    };
    if options.is_empty() {
        return Err("`options` is empty".into());
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = options.iter().find(|o| !seen.insert(*o)) {
        return Err(format!("option `{dup}` appears twice"));
    }
    let mut labels = BTreeMap::new();
    let mut add_label = |k: &str, v: &Value| -> std::result::Result<(), String> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => return Err(format!("label `{k}` = {other} is not a string or number")),
        };
        labels.insert(k.to_string(), text);
        Ok(())
    };
    for (k, v) in obj {
        if RESERVED.contains(&k.as_str()) {
            continue;
        }
        if k == "labels" {
            let m = v.as_object().ok_or("`labels` must be an object")?;
            for (lk, lv) in m {
                add_label(lk, lv)?;
            }
        } else {
            add_label(k, v)?;
        }
    }
    let read = |plain: &str, counts: &str| -> std::result::Result<Option<Vec<f64>>, String> {
        match (obj.get(plain), obj.get(counts)) {
            (Some(_), Some(_)) => Err(format!("give `{plain}` or `{counts}`, not both")),
            (Some(Value::Array(a)), None) => {
                distribution(a, plain, false, normalize, options.len()).map(Some)
            }
            (None, Some(Value::Array(a))) => {
                distribution(a, counts, true, normalize, options.len()).map(Some)
            }
            (None, None) => Ok(None),
            _ => Err(format!("`{plain}` must be an array of numbers")),
        }
    };
    let predicted = read("predicted", "predicted_counts")?;
    let reference = read("reference", "reference_counts")?;
    if predicted.is_none() && reference.is_none() {
        return Err("a cell needs `predicted` and/or `reference`".into());
    }
    let weight = match obj.get("weight") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(w) if w.is_finite() && w >= 0.0 => Some(w),
            _ => return Err(format!("`weight` = {v} must be a non-negative number")),
        },
    };
    let ordinal = match obj.get("ordinal") {
        None => None,
        Some(Value::Array(a)) if a.len() == options.len() => {
            Some(a.iter().map(|v| v.as_f64()).collect())
        }
        Some(_) => {
            return Err("`ordinal` must be an array with one number (or null) per option".into())
        }
    };
    Ok(Cell {
        labels,
        options,
        predicted,
        reference,
        weight,
        ordinal,
        origin: None,
    })
}

/// Reads a JSONL file of cells; errors name the file and line.
pub fn read_jsonl(path: &Path, normalize: bool) -> Result<Vec<Cell>> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut cells = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |reason: String| DataError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let value: Value = serde_json::from_str(line).map_err(|e| err(format!("not JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| err("not a JSON object".into()))?;
        let mut cell = parse_cell(obj, normalize).map_err(err)?;
        cell.origin = Some(format!("{}:{}", path.display(), i + 1));
        cells.push(cell);
    }
    if cells.is_empty() {
        return Err(DataError::File {
            path: path.to_path_buf(),
            reason: "no cells (empty file)".into(),
        });
    }
    Ok(cells)
}

/// Writes cells as JSONL.
pub fn write_jsonl(path: &Path, cells: &[Cell]) -> Result<()> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for c in cells {
        writeln!(out, "{}", c.to_json()).map_err(io)?;
    }
    out.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str, normalize: bool) -> std::result::Result<Cell, String> {
        parse_cell(
            serde_json::from_str::<Value>(line)
                .unwrap()
                .as_object()
                .unwrap(),
            normalize,
        )
    }

    #[test]
    fn labels_counts_and_probabilities() {
        let c = parse(r#"{"model":"m","labels":{"group":"g"},"options":["a","b"],"predicted":[0.25,0.75],"reference_counts":[1,3],"weight":2}"#, false).unwrap();
        assert_eq!(c.labels["model"], "m");
        assert_eq!(c.labels["group"], "g");
        assert_eq!(c.reference, Some(vec![0.25, 0.75]));
        assert_eq!(c.weight, Some(2.0));
    }

    #[test]
    fn bad_cells_say_what_is_wrong() {
        let cases = [
            (
                r#"{"options":["a","b"],"predicted":[0.2,0.7]}"#,
                "sums to 0.8999999999999999, not 1",
            ),
            (
                r#"{"options":["a","b"],"predicted":[-0.2,1.2]}"#,
                "is negative",
            ),
            (
                r#"{"options":["a","b"],"predicted":[1.0]}"#,
                "has 1 values for 2 options",
            ),
            (
                r#"{"options":["a","a"],"predicted":[0.5,0.5]}"#,
                "appears twice",
            ),
            (
                r#"{"options":["a","b"]}"#,
                "needs `predicted` and/or `reference`",
            ),
            (r#"{"predicted":[1.0]}"#, "missing `options`"),
        ];
        for (line, expected) in cases {
            let err = parse(line, false).unwrap_err();
            assert!(err.contains(expected), "{line}: {err}");
        }
        assert!(parse(r#"{"options":["a","b"],"predicted":[0.2,0.6]}"#, true).is_ok());
    }
}
