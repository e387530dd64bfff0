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
/// How far a reference read under `--raw` may sum from 1 and still be taken (and
/// renormalized, counted): published survey marginals are rounded (the benchmark's sum to
/// 1.001 at worst).
pub const RAW_REFERENCE_TOLERANCE: f64 = 0.01;

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

/// How probability vectors that do not sum to 1 are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SumPolicy {
    /// Must sum to 1 (within 1e-6).
    #[default]
    Strict,
    /// Rescaled to sum 1 (counted); a cell whose `predicted` is all zero is dropped (counted)
    /// rather than stopping the run.
    Normalize,
    /// `predicted` kept as written — any non-negative vector: mass outside the options, the
    /// all-zero answers of failed parses, several options marked (sums above 1) — as the
    /// alignment benchmark scored its published tables. References within
    /// [`RAW_REFERENCE_TOLERANCE`] of summing to 1 (rounded marginals) are renormalized and
    /// counted; further off they are refused.
    Raw,
}

/// What reading did to the cells' vectors, for the user to see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadStats {
    /// Cells kept.
    pub cells: usize,
    /// Vectors rescaled to sum 1 (`Normalize`).
    pub rescaled: usize,
    /// Predicted vectors that sum to less than 1, kept as they are (`Raw`).
    pub partial: usize,
    /// Predicted vectors that sum to more than 1, kept as they are (`Raw`).
    pub over_one: usize,
    /// References that summed to 1 only within rounding, renormalized (`Raw`).
    pub reference_rescaled: usize,
    /// All-zero predicted vectors: kept and scored as they are (`Raw`), or dropped with their
    /// cell (`Normalize`).
    pub all_zero: usize,
    /// Cells left out (their `predicted` was all zero under `Normalize`).
    pub dropped: usize,
}

/// What [`distribution`] did to one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    AsIs,
    Rescaled,
    Partial,
    OverOne,
    AllZero,
}

/// Checks a probability vector (or normalizes counts) for one field of one line.
fn distribution(
    values: &[Value],
    field: &str,
    counts: bool,
    policy: SumPolicy,
    n_options: usize,
) -> std::result::Result<(Vec<f64>, Read), String> {
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
    if !sum.is_finite() {
        return Err(format!(
            "`{field}` sums beyond the largest number (overflow): rescaled, every share would read as 0"
        ));
    }
    if counts {
        if sum <= 0.0 {
            return Err(format!("`{field}` is all zeros"));
        }
        out.iter_mut().for_each(|x| *x /= sum);
        return Ok((out, Read::AsIs));
    }
    let off = (sum - 1.0).abs() > SUM_TOLERANCE;
    match policy {
        _ if !off => Ok((out, Read::AsIs)),
        SumPolicy::Strict => Err(format!("`{field}` sums to {sum}, not 1 (use `{field}_counts` for counts, --normalize to rescale, or --raw to score it as written)")),
        SumPolicy::Normalize if sum <= 0.0 => Ok((out, Read::AllZero)),
        SumPolicy::Normalize => {
            out.iter_mut().for_each(|x| *x /= sum);
            Ok((out, Read::Rescaled))
        }
        SumPolicy::Raw if sum <= 0.0 => Ok((out, Read::AllZero)),
        SumPolicy::Raw if sum > 1.0 => Ok((out, Read::OverOne)),
        SumPolicy::Raw => Ok((out, Read::Partial)),
    }
}

/// Parses one JSON object into a cell (`normalize`: [`SumPolicy::Normalize`], else strict; an
/// all-zero `predicted` is an error here).
pub fn parse_cell(obj: &Map<String, Value>, normalize: bool) -> std::result::Result<Cell, String> {
    let policy = if normalize {
        SumPolicy::Normalize
    } else {
        SumPolicy::Strict
    };
    let mut stats = ReadStats::default();
    let cell = parse_cell_with(obj, policy, &mut stats)?;
    if stats.all_zero > 0 {
        return Err("`predicted` is all zeros".into());
    }
    Ok(cell)
}

/// Parses one JSON object into a cell under `policy`, counting what it did in `stats` (the
/// caller drops the cell when `stats.all_zero` grew under `Normalize`).
pub fn parse_cell_with(
    obj: &Map<String, Value>,
    policy: SumPolicy,
    stats: &mut ReadStats,
) -> std::result::Result<Cell, String> {
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
    let read = |plain: &str,
                counts: &str,
                policy: SumPolicy|
     -> std::result::Result<Option<(Vec<f64>, Read)>, String> {
        match (obj.get(plain), obj.get(counts)) {
            (Some(_), Some(_)) => Err(format!("give `{plain}` or `{counts}`, not both")),
            (Some(Value::Array(a)), None) => {
                distribution(a, plain, false, policy, options.len()).map(Some)
            }
            (None, Some(Value::Array(a))) => {
                distribution(a, counts, true, policy, options.len()).map(Some)
            }
            (None, None) => Ok(None),
            _ => Err(format!("`{plain}` must be an array of numbers")),
        }
    };
    let predicted = read("predicted", "predicted_counts", policy)?;
    // References are survey answers: rescaled under `Normalize`; under `Raw` taken within
    // rounding of 1 and renormalized; else they must sum to 1.
    let reference_policy = if policy == SumPolicy::Normalize {
        SumPolicy::Normalize
    } else {
        SumPolicy::Strict
    };
    let reference = match read("reference", "reference_counts", reference_policy) {
        Err(strict) if policy == SumPolicy::Raw => {
            let (Some(Value::Array(values)), None) =
                (obj.get("reference"), obj.get("reference_counts"))
            else {
                return Err(strict);
            };
            let (mut q, _) =
                distribution(values, "reference", false, SumPolicy::Raw, options.len())?;
            let sum: f64 = q.iter().sum();
            if (sum - 1.0).abs() > RAW_REFERENCE_TOLERANCE {
                return Err(format!(
                    "`reference` sums to {sum}: further from 1 than rounding \
                     (±{RAW_REFERENCE_TOLERANCE}); a reference must be a distribution, even \
                     under --raw"
                ));
            }
            q.iter_mut().for_each(|x| *x /= sum);
            stats.reference_rescaled += 1;
            Some((q, Read::AsIs))
        }
        other => other?,
    };
    if let Some((_, Read::AllZero)) = reference {
        return Err("`reference` is all zeros".into());
    }
    for read in [&predicted, &reference].into_iter().flatten() {
        match read.1 {
            Read::Rescaled => stats.rescaled += 1,
            Read::Partial => stats.partial += 1,
            Read::OverOne => stats.over_one += 1,
            Read::AllZero => stats.all_zero += 1,
            Read::AsIs => {}
        }
    }
    let predicted = predicted.map(|p| p.0);
    let reference = reference.map(|r| r.0);
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

/// Reads a JSONL file of cells; errors name the file and line. `normalize`: see
/// [`SumPolicy::Normalize`] (cells with an all-zero `predicted` are dropped).
pub fn read_jsonl(path: &Path, normalize: bool) -> Result<Vec<Cell>> {
    let policy = if normalize {
        SumPolicy::Normalize
    } else {
        SumPolicy::Strict
    };
    Ok(read_jsonl_with(path, policy)?.0)
}

/// [`read_jsonl`] under any [`SumPolicy`], with counts of what reading changed or dropped.
pub fn read_jsonl_with(path: &Path, policy: SumPolicy) -> Result<(Vec<Cell>, ReadStats)> {
    let text = crate::read_text(path)?;
    let mut cells = Vec::new();
    let mut stats = ReadStats::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |reason: String| DataError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let value: Value =
            serde_json::from_str(line).map_err(|e| err(not_json(line, &e.to_string())))?;
        let obj = value
            .as_object()
            .ok_or_else(|| err("not a JSON object".into()))?;
        let zero_before = stats.all_zero;
        let mut cell = parse_cell_with(obj, policy, &mut stats).map_err(err)?;
        if policy == SumPolicy::Normalize && stats.all_zero > zero_before {
            stats.dropped += 1;
            continue;
        }
        cell.origin = Some(format!("{}:{}", path.display(), i + 1));
        cells.push(cell);
    }
    if cells.is_empty() {
        return Err(DataError::File {
            path: path.to_path_buf(),
            reason: if stats.dropped > 0 {
                format!(
                    "no cells left: all {} had an all-zero `predicted`",
                    stats.dropped
                )
            } else {
                "no cells (empty file)".into()
            },
        });
    }
    stats.cells = cells.len();
    Ok((cells, stats))
}

/// The message for a line serde_json rejects. JSON has no NaN or Infinity, but Python's
/// `json.dumps` writes them: say so, and name the cell and the fields that hold them.
fn not_json(line: &str, error: &str) -> String {
    let (patched, found) = replace_non_finite(line);
    if found.is_empty() {
        return format!("not JSON: {error}");
    }
    let cell = serde_json::from_str::<Value>(&patched).ok();
    let labels = cell
        .as_ref()
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter(|(k, v)| {
                    !RESERVED.contains(&k.as_str()) && (v.is_string() || v.is_number())
                })
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let fields: Vec<String> = cell
        .as_ref()
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter(|(_, v)| v.as_array().is_some_and(|a| a.iter().any(Value::is_null)))
                .map(|(k, _)| format!("`{k}`"))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "cell {labels}: {} {} holds {}, which is not a number (JSON has no NaN or Infinity; \
         drop the cell, or write its answer as counts)",
        if fields.len() == 1 { "field" } else { "fields" },
        if fields.is_empty() {
            "?".to_string()
        } else {
            fields.join(", ")
        },
        found.join(", ")
    )
}

/// `line` with bare NaN / Infinity / -Infinity tokens (outside strings) replaced by `null`,
/// and the tokens found.
fn replace_non_finite(line: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(line.len());
    let mut found = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if in_string {
            in_string = c != '"' || escaped;
            escaped = c == '\\' && !escaped;
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t))
        {
            out.push_str("null");
            found.push(token.to_string());
            rest = &rest[token.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    found.dedup();
    (out, found)
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

    /// `--raw` keeps vectors as written (partial mass, all-zero answers), `--normalize` drops
    /// all-zero cells instead of stopping, and both count what they did.
    #[test]
    fn raw_and_normalized_vectors_are_counted_not_silent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cells.jsonl");
        std::fs::write(
            &path,
            [
                r#"{"q":"1","options":["a","b"],"predicted":[0.3,0.2],"reference":[0.5,0.5]}"#,
                r#"{"q":"2","options":["a","b"],"predicted":[0,0],"reference":[0.5,0.5]}"#,
                r#"{"q":"3","options":["a","b"],"predicted":[0.4,0.6],"reference":[0.5,0.5]}"#,
            ]
            .join("\n"),
        )
        .unwrap();
        let (cells, stats) = read_jsonl_with(&path, SumPolicy::Raw).unwrap();
        assert_eq!(cells.len(), 3);
        assert_eq!(cells[0].predicted, Some(vec![0.3, 0.2]));
        assert_eq!((stats.partial, stats.all_zero, stats.dropped), (1, 1, 0));
        let (cells, stats) = read_jsonl_with(&path, SumPolicy::Normalize).unwrap();
        assert_eq!(cells.len(), 2);
        assert_eq!(cells[0].predicted, Some(vec![0.6, 0.4]));
        assert_eq!((stats.rescaled, stats.all_zero, stats.dropped), (1, 1, 1));
        assert!(read_jsonl_with(&path, SumPolicy::Strict).is_err());
    }

    /// The benchmark's released outputs as `--raw` must take them: predictions that mark
    /// several options (sum above 1) and references that sum to 1.001 are read (the reference
    /// renormalized and counted); a reference far from 1 is still refused.
    #[test]
    fn raw_reads_the_benchmarks_released_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cells.jsonl");
        std::fs::write(
            &path,
            [
                r#"{"q":"1","options":["a","b"],"predicted":[0.9,0.6],"reference":[0.5005,0.5005]}"#,
                r#"{"q":"2","options":["a","b"],"predicted":[0,0],"reference":[0.3,0.7]}"#,
            ]
            .join("\n"),
        )
        .unwrap();
        let (cells, stats) = read_jsonl_with(&path, SumPolicy::Raw).unwrap();
        assert_eq!(cells[0].predicted, Some(vec![0.9, 0.6]));
        assert_eq!(cells[0].reference, Some(vec![0.5, 0.5]));
        assert_eq!(
            (stats.over_one, stats.all_zero, stats.reference_rescaled),
            (1, 1, 1)
        );
        std::fs::write(
            &path,
            r#"{"options":["a","b"],"predicted":[0.9,0.6],"reference":[0.6,0.6]}"#,
        )
        .unwrap();
        let e = read_jsonl_with(&path, SumPolicy::Raw)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`reference` sums to 1.2"), "{e}");
        // outside --raw a reference off by rounding is still an error naming the way out
        std::fs::write(
            &path,
            r#"{"options":["a","b"],"predicted":[0.4,0.6],"reference":[0.5005,0.5005]}"#,
        )
        .unwrap();
        assert!(read_jsonl_with(&path, SumPolicy::Strict).is_err());
    }

    #[test]
    fn nan_names_the_cell_and_says_nan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cells.jsonl");
        std::fs::write(
            &path,
            r#"{"model":"m","question":"Q7","options":["a","b"],"predicted":[NaN,0.5],"reference":[0.5,0.5]}"#,
        )
        .unwrap();
        let e = read_jsonl(&path, false).unwrap_err().to_string();
        assert!(
            e.contains("NaN") && e.contains("question=Q7") && e.contains("`predicted`"),
            "{e}"
        );
        assert!(!e.contains("expected value"), "{e}");
    }
}
