//! Question sets: OpinionQA-style folders and a generic JSONL, each question with its options
//! (lettered A, B, C, … in order) and the reference distribution of every group.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use probe_data::personas::{Persona, PersonaSpec};

use crate::{EvalError, Result};

/// One group's reference answers to a question.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReference {
    /// The attribute the group belongs to (`POLPARTY`), empty for generic sets.
    pub attribute: String,
    pub group: String,
    pub distribution: Vec<f64>,
    /// Total (weighted) respondents.
    pub weight: f64,
    /// Set for the voting question's groups: a persona, or the population it is drawn from.
    pub persona: Option<PersonaGroup>,
}

impl GroupReference {
    /// A group with a reference distribution (OpinionQA, generic JSONL).
    pub fn new(attribute: &str, group: &str, distribution: Vec<f64>, weight: f64) -> Self {
        GroupReference {
            attribute: attribute.to_string(),
            group: group.to_string(),
            distribution,
            weight,
            persona: None,
        }
    }

    /// The reference distribution, if the group has one (persona groups have none: the
    /// report compares them, pooled by attribute value, with a survey).
    pub fn reference(&self) -> Option<&[f64]> {
        (!self.distribution.is_empty()).then_some(self.distribution.as_slice())
    }
}

/// A voting-question group: one persona of the grid, or the population (no persona, asked
/// under no steering; one per value of the attributes the question itself names, e.g. year).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PersonaGroup {
    pub population: bool,
    /// First-person description ("Ich bin eine Frau, 45 bis 54 Jahre alt, …"); empty for the
    /// population.
    pub description: String,
    /// `(attribute, value id)` pairs.
    pub values: Vec<(String, String)>,
    /// The text of each value in the prompts' language, for slots such as `{year}`.
    pub texts: BTreeMap<String, String>,
}

/// A reference distribution of a survey group (`gender=female`), shown as a few-shot example
/// for the personas in that group.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeReference {
    pub attribute: String,
    pub value: String,
    /// How the group is named in a prompt ("gender: eine Frau").
    pub label: String,
    pub distribution: Vec<f64>,
}

/// How close (TV) a few-shot distribution may come to a scored one before it counts as a copy
/// of it (`--leak-tolerance`): rounded, reweighted or re-aggregated copies of a survey's vote
/// (e.g. vote recall from the same election's survey) land within 0.02; different elections'
/// groups are typically 0.05 or more apart.
pub const DEFAULT_LEAK_TOLERANCE: f64 = 0.02;

/// The groups (`attribute=value`) whose few-shot distribution in `shots` is within TV ≤
/// `tolerance` of the distribution `scored` has for the same group, or for any group: a prompt
/// showing it would show (a copy of) the target its pooled cells are scored against. Each is
/// named with the scored group it copies and their TV.
pub fn shot_leaks(
    shots: &[probe_data::cells::Cell],
    scored: &[probe_data::cells::Cell],
    tolerance: f64,
) -> Vec<String> {
    let tv = |a: &[f64], b: &[f64]| 0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>();
    let mut out = Vec::new();
    for s in shots {
        let Some(d) = &s.reference else { continue };
        // the closest scored group, when it is within the tolerance (exact copies: TV 0)
        let hit = scored
            .iter()
            .filter_map(|r| {
                let q = r.reference.as_ref()?;
                (q.len() == d.len()).then(|| (r, tv(q, d)))
            })
            .filter(|&(_, distance)| distance <= tolerance)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((r, distance)) = hit {
            let name = |c: &probe_data::cells::Cell| {
                format!(
                    "{}={}",
                    c.labels.get("attribute").map_or("all", String::as_str),
                    c.labels.get("value").map_or("all", String::as_str)
                )
            };
            out.push(if name(s) == name(r) {
                format!("{} (TV {distance:.3})", name(s))
            } else {
                format!("{} (≈ scored {}, TV {distance:.3})", name(s), name(r))
            });
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub id: String,
    pub text: String,
    /// Answer options without "Refused" (OpinionQA keeps it out of the distributions).
    pub options: Vec<String>,
    pub ordinal: Option<Vec<Option<f64>>>,
    pub groups: Vec<GroupReference>,
}

#[derive(Debug, Clone)]
pub struct QuestionSet {
    pub dataset: String,
    /// The questions to evaluate.
    pub questions: Vec<Question>,
    /// Every question of the set, whatever `select`/`truncate` kept: the few-shot pool.
    pub pool: Vec<Question>,
    /// Most similar questions first (for few-shot steering), where the set provides them.
    pub similar: HashMap<String, Vec<String>>,
    /// Survey groups with reference distributions, the few-shot examples of the voting
    /// question's personas (empty otherwise).
    pub scopes: Vec<ScopeReference>,
}

fn file_err(path: &Path, reason: impl Into<String>) -> EvalError {
    EvalError::Input(format!("{}: {}", path.display(), reason.into()))
}

impl QuestionSet {
    /// An OpinionQA folder: `<ATTR>_data.json` for each of `attributes` (all when empty),
    /// `info.csv`, `metadata.csv`, optional `question_similarity_top10.json`.
    pub fn opinionqa(dir: &Path, attributes: &[String]) -> Result<Self> {
        let attributes = if attributes.is_empty() {
            probe_data::opinionqa::attributes(dir)?
        } else {
            attributes.to_vec()
        };
        if attributes.is_empty() {
            return Err(file_err(dir, "no <ATTR>_data.json files"));
        }
        let mut texts: HashMap<String, String> = HashMap::new();
        let mut by_id: BTreeMap<String, Question> = BTreeMap::new();
        for attribute in &attributes {
            let path = dir.join(format!("{attribute}_data.json"));
            let raw: Value = serde_json::from_str(
                &std::fs::read_to_string(&path).map_err(|e| file_err(&path, e.to_string()))?,
            )
            .map_err(|e| file_err(&path, format!("not JSON: {e}")))?;
            if let Some(map) = raw.as_object() {
                for (k, q) in map {
                    if let Some(t) = q["question_text"].as_str() {
                        texts.insert(k.clone(), t.trim().to_string());
                    }
                }
            }
            for cell in probe_data::opinionqa::read_attribute(dir, attribute, false)? {
                let id = cell.labels["question"].clone();
                let q = by_id.entry(id.clone()).or_insert_with(|| Question {
                    text: texts.get(&id).cloned().unwrap_or_default(),
                    id,
                    options: cell.options.clone(),
                    ordinal: cell.ordinal.clone(),
                    groups: vec![],
                });
                if q.options != cell.options {
                    return Err(file_err(
                        &path,
                        format!(
                            "question {} has other options than in another attribute file",
                            q.id
                        ),
                    ));
                }
                q.groups.push(GroupReference::new(
                    attribute,
                    &cell.labels["group"],
                    cell.reference.clone().unwrap_or_default(),
                    cell.weight.unwrap_or(1.0),
                ));
            }
        }
        if let Some(q) = by_id.values().find(|q| q.text.is_empty()) {
            return Err(file_err(
                dir,
                format!("question {} has no question_text", q.id),
            ));
        }
        let similar_path = dir.join("question_similarity_top10.json");
        let similar = if similar_path.is_file() {
            serde_json::from_str(
                &std::fs::read_to_string(&similar_path)
                    .map_err(|e| file_err(&similar_path, e.to_string()))?,
            )
            .map_err(|e| file_err(&similar_path, format!("expected {{key: [keys…]}}: {e}")))?
        } else {
            HashMap::new()
        };
        Ok(QuestionSet {
            dataset: dir
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("opinionqa")
                .to_string(),
            pool: by_id.values().cloned().collect(),
            questions: by_id.into_values().collect(),
            similar,
            scopes: vec![],
        })
    }

    /// A generic JSONL: one question per line,
    /// `{"id", "question", "options": [...], "groups": {"<group>": [counts or probabilities]}}`
    /// (`groups` optional; `similar`: optional list of ids).
    pub fn jsonl(path: &Path) -> Result<Self> {
        let text = probe_data::read_text(path).map_err(|e| EvalError::Input(e.to_string()))?;
        let mut questions = Vec::new();
        let mut similar = HashMap::new();
        let mut first_line: HashMap<String, usize> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let err = |reason: String| file_err(path, format!("line {}: {reason}", i + 1));
            let v: Value = serde_json::from_str(line).map_err(|e| err(format!("not JSON: {e}")))?;
            let id = v["id"]
                .as_str()
                .map(str::to_string)
                .or_else(|| v["id"].as_i64().map(|n| n.to_string()))
                .ok_or_else(|| err("no `id`".into()))?;
            // answers, references and few-shot exclusions are keyed by id: two questions with
            // one id would be merged or answered twice
            if let Some(first) = first_line.insert(id.clone(), i + 1) {
                return Err(err(format!("`id` {id:?} is also used on line {first}")));
            }
            let question = v["question"]
                .as_str()
                .ok_or_else(|| err("no `question` text".into()))?
                .to_string();
            let options: Vec<String> = v["options"]
                .as_array()
                .ok_or_else(|| err("no `options` list".into()))?
                .iter()
                .map(|o| o.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| err("`options` must be strings".into()))?;
            if options.len() < 2 || options.len() > 26 {
                return Err(err(format!(
                    "{} options (2 to 26 are lettered A–Z)",
                    options.len()
                )));
            }
            let mut groups = Vec::new();
            if let Some(g) = v["groups"].as_object() {
                for (name, values) in g {
                    let values: Vec<f64> = values
                        .as_array()
                        .and_then(|a| a.iter().map(Value::as_f64).collect())
                        .ok_or_else(|| {
                            err(format!("group `{name}`: expected a list of numbers"))
                        })?;
                    if values.len() != options.len() {
                        return Err(err(format!(
                            "group `{name}` has {} values for {} options",
                            values.len(),
                            options.len()
                        )));
                    }
                    let distribution = probe_metrics::normalize(&values, name)
                        .map_err(|e| err(format!("group `{name}`: {e}")))?;
                    groups.push(GroupReference::new(
                        "",
                        name,
                        distribution,
                        values.iter().sum(),
                    ));
                }
            }
            if let Some(s) = v["similar"].as_array() {
                similar.insert(
                    id.clone(),
                    s.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                );
            }
            questions.push(Question {
                id,
                text: question,
                options,
                ordinal: None,
                groups,
            });
        }
        if questions.is_empty() {
            return Err(file_err(path, "no questions"));
        }

        Ok(QuestionSet {
            dataset: path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("questions")
                .to_string(),
            pool: questions.clone(),
            questions,
            similar,
            scopes: vec![],
        })
    }

    /// The voting question of the persona grid: one question whose options are the parties,
    /// one group per persona (asked under persona and few-shot steering) and population groups
    /// (asked under no steering), one per combination of the attribute values that `question`
    /// names itself (e.g. `{year}`). No group carries a reference: the report pools the
    /// personas by attribute value and compares those with a survey or election result.
    pub fn vote(
        dataset: &str,
        question: &str,
        parties: &[String],
        personas: &[Persona],
        spec: &PersonaSpec,
        language: &str,
    ) -> Result<Self> {
        let bad = |m: String| Err(EvalError::Input(m));
        if parties.len() < 2 || parties.len() > 26 {
            return bad(format!(
                "{} parties (2 to 26 are lettered A–Z)",
                parties.len()
            ));
        }
        if personas.is_empty() {
            return bad("no personas (check --where)".into());
        }
        let mut in_question = Vec::new();
        let slots = probe_data::personas::slot_names(question)
            .map_err(|e| EvalError::Input(format!("the vote question: {e}")))?;
        for slot in slots {
            if spec.attribute(slot).is_none() {
                return bad(format!(
                    "the vote question names `{{{slot}}}`, which is not an attribute of the persona spec"
                ));
            }
            in_question.push(slot.to_string());
        }
        let mut groups = Vec::new();
        let mut populations: BTreeMap<Vec<(String, String)>, GroupReference> = BTreeMap::new();
        for p in personas {
            let (description, texts) = spec.describe(p, language).ok_or_else(|| {
                EvalError::Input(format!(
                    "persona {}: the spec has no `{language}` description or text for one of its values",
                    p.id
                ))
            })?;
            let shared: Vec<(String, String)> = p
                .values
                .iter()
                .filter(|(a, _)| in_question.contains(a))
                .cloned()
                .collect();
            if shared.len() < in_question.len() {
                return bad(format!(
                    "persona {} lacks an attribute the vote question names ({})",
                    p.id,
                    in_question.join(", ")
                ));
            }
            populations.entry(shared.clone()).or_insert_with(|| {
                let id = if shared.is_empty() {
                    "all".to_string()
                } else {
                    shared
                        .iter()
                        .map(|(a, v)| format!("{a}={v}"))
                        .collect::<Vec<_>>()
                        .join(";")
                };
                GroupReference {
                    persona: Some(PersonaGroup {
                        population: true,
                        description: String::new(),
                        texts: shared
                            .iter()
                            .map(|(a, _)| (a.clone(), texts[a].clone()))
                            .collect(),
                        values: shared,
                    }),
                    ..GroupReference::new("population", &id, vec![], 1.0)
                }
            });
            groups.push(GroupReference {
                persona: Some(PersonaGroup {
                    population: false,
                    description,
                    values: p.values.clone(),
                    texts,
                }),
                ..GroupReference::new("persona", &p.id, vec![], p.weight)
            });
        }
        // populations first: the runner counts them from the front
        let mut all_groups: Vec<GroupReference> = populations.into_values().collect();
        all_groups.extend(groups);
        let q = Question {
            id: "vote".into(),
            text: question.to_string(),
            options: parties.to_vec(),
            ordinal: None,
            groups: all_groups,
        };
        Ok(QuestionSet {
            dataset: dataset.to_string(),
            pool: vec![],
            questions: vec![q],
            similar: HashMap::new(),
            scopes: vec![],
        })
    }

    /// Gives the set's personas few-shot examples: the survey groups in `reference` (cells
    /// with `attribute`/`value` labels over the same options), each named by its attribute
    /// and the value's text in `language`; the `all` scope is the population they are
    /// contrasted with.
    /// The few-shot examples of the voting question: the group distributions of `shots` (cells
    /// with `attribute`/`value` labels), each named with `source` ("Wahl 2095 – gender: eine
    /// Frau"), after checking that none of them is a distribution `scored` scores a cell
    /// against, or within TV ≤ `leak_tolerance` of one (see [`shot_leaks`]).
    pub fn set_shot_scopes(
        &mut self,
        shots: &[probe_data::cells::Cell],
        scored: &[probe_data::cells::Cell],
        source: &str,
        spec: &PersonaSpec,
        language: &str,
        leak_tolerance: f64,
    ) -> Result<()> {
        if !(0.0..=1.0).contains(&leak_tolerance) {
            return Err(EvalError::Input(format!(
                "--leak-tolerance {leak_tolerance} must be a total variation in [0, 1]"
            )));
        }
        let leaks = shot_leaks(shots, scored, leak_tolerance);
        if !leaks.is_empty() {
            return Err(EvalError::Input(format!(
                "few-shot examples from {source} would show distributions the cells are scored against, \
                 or copies within TV ≤ {leak_tolerance} of them ({}): that is the answer in the prompt. \
                 Take the examples from another election or survey (or, if these are truly \
                 different, lower --leak-tolerance)",
                leaks.join(", ")
            )));
        }
        self.set_scopes(shots, spec, language);
        for s in &mut self.scopes {
            s.label = format!("{source} – {}", s.label);
        }
        Ok(())
    }

    pub fn set_scopes(
        &mut self,
        reference: &[probe_data::cells::Cell],
        spec: &PersonaSpec,
        language: &str,
    ) {
        self.scopes = reference
            .iter()
            .filter_map(|c| {
                let attribute = c.labels.get("attribute")?;
                let value = c.labels.get("value")?;
                let text = spec.value_text(attribute, value, language).unwrap_or(value);
                Some(ScopeReference {
                    attribute: attribute.clone(),
                    value: value.clone(),
                    label: format!("{attribute}: {text}"),
                    distribution: c.reference.clone()?,
                })
            })
            .collect();
    }

    /// Keeps the questions whose ids are listed (in the set's order); unknown ids are errors.
    pub fn select(&mut self, ids: &[String]) -> Result<()> {
        if let Some(missing) = ids
            .iter()
            .find(|id| !self.questions.iter().any(|q| &q.id == *id))
        {
            return Err(EvalError::Input(format!(
                "question `{missing}` is not in {}",
                self.dataset
            )));
        }
        self.questions.retain(|q| ids.contains(&q.id));
        Ok(())
    }

    /// The first `n` questions in id order (a documented CPU-sized subset).
    pub fn truncate(&mut self, n: usize) {
        self.questions.truncate(n);
    }

    pub fn get(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }
}

/// Most similar questions by TF-IDF cosine of their texts (words = lowercase alphanumeric runs,
/// idf = ln(N / df) + 1), for sets that bring no similarity of their own. Top 10 per question,
/// never the question itself; ties by id.
pub fn tfidf_similar(questions: &[Question]) -> HashMap<String, Vec<String>> {
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let docs: Vec<Vec<String>> = questions
        .iter()
        .map(|q| words(&format!("{} {}", q.text, q.options.join(" "))))
        .collect();
    let mut df: HashMap<&str, usize> = HashMap::new();
    for d in &docs {
        let unique: std::collections::HashSet<&str> = d.iter().map(String::as_str).collect();
        for w in unique {
            *df.entry(w).or_default() += 1;
        }
    }
    let n = docs.len() as f64;
    let vectors: Vec<HashMap<&str, f64>> = docs
        .iter()
        .map(|d| {
            let mut tf: HashMap<&str, f64> = HashMap::new();
            for w in d {
                *tf.entry(w.as_str()).or_default() += 1.0;
            }
            for (w, x) in tf.iter_mut() {
                *x *= (n / df[w] as f64).ln() + 1.0;
            }
            let norm = tf.values().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            tf.values_mut().for_each(|x| *x /= norm);
            tf
        })
        .collect();
    top_neighbours(questions, |i, j| {
        vectors[i]
            .iter()
            .filter_map(|(w, x)| vectors[j].get(w).map(|y| x * y))
            .sum()
    })
}

/// The 10 highest-scoring other questions of each question, ties by id; never itself.
pub(crate) fn top_neighbours(
    questions: &[Question],
    score: impl Fn(usize, usize) -> f64,
) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    for (i, q) in questions.iter().enumerate() {
        let mut scored: Vec<(f64, &str)> = questions
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, other)| (score(i, j), other.id.as_str()))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        out.insert(
            q.id.clone(),
            scored
                .into_iter()
                .take(10)
                .map(|(_, id)| id.to_string())
                .collect(),
        );
    }
    out
}

/// Where a question set comes from.
#[derive(Debug, Clone)]
pub enum Source {
    OpinionQa {
        dir: PathBuf,
        attributes: Vec<String>,
    },
    Jsonl(PathBuf),
}

impl Source {
    pub fn load(&self) -> Result<QuestionSet> {
        match self {
            Source::OpinionQa { dir, attributes } => QuestionSet::opinionqa(dir, attributes),
            Source::Jsonl(p) => QuestionSet::jsonl(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_jsonl_with_groups_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.jsonl");
        std::fs::write(
            &p,
            r#"{"id": "coin", "question": "Heads or tails?", "options": ["Heads", "Tails"], "groups": {"all": [30, 70]}}
"#,
        )
        .unwrap();
        let set = QuestionSet::jsonl(&p).unwrap();
        assert_eq!(set.questions[0].groups[0].distribution, [0.3, 0.7]);
        assert!(set.similar.is_empty());
        assert_eq!(set.dataset, "q");
        std::fs::write(&p, r#"{"id": "x", "question": "?", "options": ["a"]}"#).unwrap();
        let e = QuestionSet::jsonl(&p).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("1 options"), "{e}");
        std::fs::write(
            &p,
            r#"{"id": "x", "question": "?", "options": ["a", "b"], "groups": {"g": [1]}}"#,
        )
        .unwrap();
        let e = QuestionSet::jsonl(&p).unwrap_err().to_string();
        assert!(e.contains("group `g` has 1 values for 2 options"), "{e}");
        let q = r#"{"id": "x", "question": "?", "options": ["a", "b"]}"#;
        std::fs::write(&p, format!("{q}\n\n{q}\n")).unwrap();
        let e = QuestionSet::jsonl(&p).unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("also used on line 1"),
            "{e}"
        );
    }

    #[test]
    fn opinionqa_questions_carry_text_groups_and_similarity() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/opinionqa/pew-atp-disagreement-500");
        if !dir.is_dir() {
            eprintln!("notice: {} absent; skipping", dir.display());
            return;
        }
        let set = QuestionSet::opinionqa(&dir, &["POLPARTY".to_string()]).unwrap();
        assert!(set.questions.len() >= 490, "{}", set.questions.len());
        let q = set.get("WORRYB_W26").unwrap();
        assert!(q.text.starts_with("How much, if at all, do you worry"));
        assert_eq!(
            q.options,
            ["Worry a lot", "Worry a little", "Do not worry at all"]
        );
        let groups: Vec<&str> = q.groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(groups, ["Republican", "Democrat", "Independent", "Other"]);
        assert!(set.similar["WORRYB_W26"].contains(&"WORRYF_W26".to_string()));
    }
}

#[cfg(test)]
mod tfidf_tests {
    use super::*;

    #[test]
    fn tfidf_ranks_shared_rare_words_first() {
        let q = |id: &str, text: &str| Question {
            id: id.into(),
            text: text.into(),
            options: vec!["Yes".into(), "No".into()],
            ordinal: None,
            groups: vec![],
        };
        let set = [
            q("a", "Do you worry about terrorism attacks?"),
            q("b", "Do you eat breakfast?"),
            q("c", "Are terrorism attacks rising?"),
            q("d", "Do you like cats?"),
        ];
        let s = tfidf_similar(&set);
        // "terrorism attacks" (in 2 of 4) outweighs "do you" (in 3 of 4)
        assert_eq!(s["a"][0], "c");
        // "do you" with the shorter question
        assert_eq!(s["b"][0], "d");
        assert!(!s["a"].contains(&"a".to_string()));
        assert_eq!(s["a"].len(), 3);
    }
}
