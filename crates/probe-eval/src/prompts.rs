//! Prompt templates (a TOML data file, `data/eval/prompts.toml`): one text per expression
//! method, a prefix per steering, the rendering of few-shot examples, and the groups as noun
//! phrases.

use std::collections::BTreeMap;
use std::path::Path;

use crate::parse::letters;
use crate::questions::{GroupReference, Question, ScopeReference};
use crate::{stable_hash, EvalError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Next-token probabilities of the option letters.
    Logp,
    /// n independent answers drawn from the same next-token distribution (temperature, top-p).
    Sample,
    /// The model writes n answers as one sequence of letters.
    Sequence,
    /// The model writes the distribution as JSON.
    Verbalize,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::Logp,
        Method::Sample,
        Method::Sequence,
        Method::Verbalize,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Logp => "logp",
            Method::Sample => "sample",
            Method::Sequence => "sequence",
            Method::Verbalize => "verbalize",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| {
                EvalError::Input(format!(
                    "unknown method `{s}` (known: logp, sample, sequence, verbalize)"
                ))
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Steering {
    None,
    Persona,
    Fewshot,
}

impl Steering {
    pub const ALL: [Steering; 3] = [Steering::None, Steering::Persona, Steering::Fewshot];

    pub fn name(self) -> &'static str {
        match self {
            Steering::None => "none",
            Steering::Persona => "persona",
            Steering::Fewshot => "fewshot",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Steering::ALL
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| {
                EvalError::Input(format!(
                    "unknown steering `{s}` (known: none, persona, fewshot)"
                ))
            })
    }
}

/// `FromStr` and `Display` by name, so the edges (clap, Python) parse `logp`/`none` once.
macro_rules! by_name {
    ($t:ty) => {
        impl std::str::FromStr for $t {
            type Err = EvalError;
            fn from_str(s: &str) -> Result<Self> {
                <$t>::parse(s)
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
by_name!(Method);
by_name!(Steering);

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Shot {
    distribution: String,
    sequence: String,
    /// A survey group's distribution on the same question (the voting question's few-shot
    /// examples): `{group}` and `{json}`; `group_sequence` for the sequence method, with
    /// `{sequence}`.
    group: Option<String>,
    group_sequence: Option<String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Templates {
    /// Language of the texts; persona descriptions are composed in it (voting question).
    pub language: Option<String>,
    /// The voting question (options: the parties), with persona-spec attribute slots such as
    /// `{year}`.
    pub vote_question: Option<String>,
    method: BTreeMap<String, String>,
    steering: BTreeMap<String, String>,
    shot: Shot,
    #[serde(default)]
    persona: BTreeMap<String, [String; 2]>,
}

/// A few-shot example: another question and the group's reference distribution on it, or
/// (voting question) another group's distribution on the same question.
pub struct Example<'a> {
    pub question: &'a Question,
    pub distribution: &'a [f64],
    /// The other group's name, for group examples.
    pub group: Option<&'a str>,
}

fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in slots {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// `A. text` lines.
pub fn option_lines(options: &[String]) -> String {
    options
        .iter()
        .zip(letters(options.len()))
        .map(|(o, l)| format!("{l}. {o}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whole percentages summing to 100 (largest remainder), as JSON over the letters.
pub fn percent_json(distribution: &[f64]) -> String {
    let counts = largest_remainder(distribution, 100);
    let body: Vec<String> = letters(distribution.len())
        .iter()
        .zip(counts)
        .map(|(l, c)| format!("\"{l}\": {c}"))
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// Integer counts summing to `n`, proportional to `p` (largest remainder; ties → first).
pub fn largest_remainder(p: &[f64], n: usize) -> Vec<usize> {
    let total: f64 = p.iter().sum();
    let exact: Vec<f64> = p.iter().map(|x| x / total * n as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let missing = n.saturating_sub(counts.iter().sum());
    for &i in order.iter().take(missing) {
        counts[i] += 1;
    }
    counts
}

/// A sequence of `n` letters with the distribution's proportions, in a fixed shuffled order
/// (seeded by `seed`), as a few-shot answer.
pub fn letter_sequence(distribution: &[f64], n: usize, seed: u64) -> String {
    let mut seq: Vec<char> = letters(distribution.len())
        .into_iter()
        .zip(largest_remainder(distribution, n))
        .flat_map(|(l, c)| std::iter::repeat_n(l, c))
        .collect();
    let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
    for i in (1..seq.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seq.swap(i, (s >> 33) as usize % (i + 1));
    }
    seq.into_iter().collect()
}

impl Templates {
    pub fn load(path: &Path) -> Result<Self> {
        // the built-in copy when the default file is not on disk (probe_data::defaults)
        let text = probe_data::read_text(path).map_err(|e| EvalError::Input(e.to_string()))?;
        let t: Templates = toml::from_str(&text)
            .map_err(|e| EvalError::Input(format!("{}: {e}", path.display())))?;
        for m in Method::ALL {
            let body = t.method.get(m.name()).ok_or_else(|| {
                EvalError::Input(format!("{}: no [method] {}", path.display(), m.name()))
            })?;
            for slot in ["{question}", "{options}", "{steer}"] {
                if !body.contains(slot) {
                    return Err(EvalError::Input(format!(
                        "{}: method {} lacks {slot}",
                        path.display(),
                        m.name()
                    )));
                }
            }
        }
        for s in Steering::ALL {
            if !t.steering.contains_key(s.name()) {
                return Err(EvalError::Input(format!(
                    "{}: no [steering] {}",
                    path.display(),
                    s.name()
                )));
            }
        }
        if !t.steering["fewshot"].contains("{shots}") {
            return Err(EvalError::Input(format!(
                "{}: the fewshot steering lacks {{shots}}",
                path.display()
            )));
        }
        Ok(t)
    }

    /// The group as [singular, plural] noun phrases (listed as `<attribute>.<group>`, or for
    /// every group of an attribute as `<attribute>`); the bare group name when not listed,
    /// and "a person" / "people" for a generic set's `all`.
    pub fn persona(&self, group: &GroupReference) -> [String; 2] {
        self.persona
            .get(&format!("{}.{}", group.attribute, group.group))
            .or_else(|| self.persona.get(&group.attribute))
            .cloned()
            .unwrap_or_else(|| {
                if group.attribute.is_empty() && group.group == "all" {
                    ["a person".into(), "people".into()]
                } else {
                    [group.group.clone(), group.group.clone()]
                }
            })
    }

    /// The prompt text (before any chat template) for one question, group and setting.
    pub fn render(
        &self,
        method: Method,
        steering: Steering,
        question: &Question,
        group: &GroupReference,
        shots: &[Example<'_>],
        n: usize,
    ) -> Result<String> {
        let [singular, plural] = self.persona(group);
        // unsteered OpinionQA prompts ask about people in general; the voting question's
        // population group names itself
        let people = match steering {
            Steering::None if group.persona.is_none() => "people".to_string(),
            _ => plural.clone(),
        };
        let letter_list = letters(question.options.len())
            .iter()
            .map(char::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let uniform = vec![1.0; question.options.len()];
        let example = percent_json(&uniform);
        let shots_text = if steering == Steering::Fewshot {
            if shots.is_empty() {
                return Err(EvalError::Input(format!(
                    "few-shot steering for {}: no example questions",
                    question.id
                )));
            }
            shots
                .iter()
                .map(|s| {
                    let options = option_lines(&s.question.options);
                    if let Some(name) = s.group {
                        let template = match (&self.shot.group_sequence, method) {
                            (Some(t), Method::Sequence) => Some(t),
                            _ => self.shot.group.as_ref(),
                        };
                        let Some(template) = template else {
                            return Err(EvalError::Input(
                                "the prompts have no [shot] group text for survey-group examples"
                                    .into(),
                            ));
                        };
                        let seq = letter_sequence(s.distribution, n, stable_hash(name));
                        return Ok(fill(
                            template,
                            &[
                                ("group", name),
                                ("question", &s.question.text),
                                ("options", &options),
                                ("json", &percent_json(s.distribution)),
                                ("sequence", &seq),
                            ],
                        ));
                    }
                    Ok(if method == Method::Sequence {
                        let seq = letter_sequence(s.distribution, n, stable_hash(&s.question.id));
                        fill(
                            &self.shot.sequence,
                            &[
                                ("question", &s.question.text),
                                ("options", &options),
                                ("sequence", &seq),
                            ],
                        )
                    } else {
                        fill(
                            &self.shot.distribution,
                            &[
                                ("question", &s.question.text),
                                ("options", &options),
                                ("json", &percent_json(s.distribution)),
                            ],
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?
                .join("\n")
        } else {
            String::new()
        };
        let steer = fill(
            &self.steering[steering.name()],
            &[
                ("persona", &singular),
                ("people", &people),
                ("shots", &shots_text),
            ],
        );
        let n_text = n.to_string();
        let text = fill(
            &self.method[method.name()],
            &[
                ("steer", &steer),
                ("question", &question.text),
                ("options", &option_lines(&question.options)),
                ("letters", &letter_list),
                ("n", &n_text),
                ("example", &example),
                ("people", &people),
                ("persona", &singular),
            ],
        );
        // a persona's description and attribute texts (`{year}` in the voting question)
        Ok(match &group.persona {
            Some(p) => {
                let mut slots: Vec<(&str, &str)> = vec![("description", &p.description)];
                slots.extend(p.texts.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                fill(&text, &slots)
            }
            None => text,
        })
    }
}

/// Question texts whose content words are at least this similar ([`text_similarity`]) count as
/// the same question reworded and are never shown as a shot of one another: "How much, if at
/// all, do you worry about X?" and "How much do you worry about X?" (1.0), but not "… 10 % of
/// the time" and "… 50 % of the time" or "How much of a problem is crime?" and "… is drug
/// addiction?", which ask different things (tested).
pub const NEAR_DUPLICATE_TEXT: f64 = 0.9;

/// Shots whose distributions lie within this TV of an already chosen shot add nothing.
const NEAR_DUPLICATE_DISTRIBUTION: f64 = 0.02;

/// Function words left out of [`text_similarity`]: rewordings add and drop these.
const FUNCTION_WORDS: [&str; 48] = [
    "a", "about", "all", "an", "and", "any", "are", "as", "at", "be", "by", "can", "do", "does",
    "for", "from", "has", "have", "how", "if", "in", "is", "it", "much", "not", "of", "on", "or",
    "should", "so", "that", "the", "their", "there", "these", "this", "to", "was", "we", "what",
    "when", "which", "who", "will", "with", "would", "you", "your",
];

/// Jaccard similarity of two texts' content words and ordered pairs of consecutive content
/// words (lower-cased, numbers included, the [`FUNCTION_WORDS`] left out): rewordings that add
/// or drop function words score 1, while "heads 40 %, tails 60 %" and "heads 60 %, tails
/// 40 %" differ in their pairs.
pub fn text_similarity(a: &str, b: &str) -> f64 {
    let words = |t: &str| -> std::collections::BTreeSet<String> {
        let content: Vec<String> = t
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .filter(|w| !FUNCTION_WORDS.contains(&w.as_str()))
            .collect();
        let pairs = content.windows(2).map(|p| format!("{} {}", p[0], p[1]));
        content.iter().cloned().chain(pairs).collect()
    };
    let (a, b) = (words(a), words(b));
    let union = a.union(&b).count();
    if union == 0 {
        return 1.0;
    }
    a.intersection(&b).count() as f64 / union as f64
}

/// The name `probe` gives its few-shot selection rule (CLI help, GUIDE, README): it is its
/// own rule, not the alignment benchmark's App. A.8, which ranks neighbours with a
/// sentence-embedding model and does not always start from the most similar question.
pub const FEWSHOT_RULE: &str = "nearest-spread";

/// The few-shot examples of `question` for `group` by [`FEWSHOT_RULE`] ("nearest-spread"):
/// among the most similar other questions (`similar`, most similar first, from
/// `--similarity`: a given list, TF-IDF, or the model's own activations) that have this
/// group, the `k` whose answer distributions differ most from one another — greedily,
/// starting from the most similar, each next shot the candidate farthest (in TV) from those
/// chosen. Like Meister et al. 2024, App. A.8, it takes similar questions with diverse answers;
/// unlike it, similarity is not a sentence-embedding model's and the first shot is always the
/// most similar question. The question itself is never a candidate, nor is any
/// question whose text is a near-duplicate of it ([`NEAR_DUPLICATE_TEXT`]) or of a more
/// similar candidate; shots within TV 0.02 of a chosen one are skipped.
pub fn select_shots<'a>(
    question: &Question,
    group: &GroupReference,
    similar: &[String],
    questions: &'a [Question],
    k: usize,
) -> Vec<Example<'a>> {
    let tv = |a: &[f64], b: &[f64]| 0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>();
    let mut candidates: Vec<(&'a Question, &'a [f64])> = Vec::new();
    for id in similar {
        let Some(q) = questions
            .iter()
            .find(|q| &q.id == id && q.id != question.id)
        else {
            continue;
        };
        let duplicate = std::iter::once(question.text.as_str())
            .chain(candidates.iter().map(|(c, _)| c.text.as_str()))
            .any(|t| text_similarity(t, &q.text) >= NEAR_DUPLICATE_TEXT);
        if duplicate {
            continue;
        }
        if let Some(g) = q
            .groups
            .iter()
            .find(|g| g.attribute == group.attribute && g.group == group.group)
        {
            candidates.push((q, &g.distribution));
        }
    }
    let mut chosen: Vec<(&'a Question, &'a [f64])> = Vec::new();
    while chosen.len() < k {
        // the candidate farthest from every chosen shot (the first, most similar, to start)
        let best = candidates
            .iter()
            .enumerate()
            .map(|(i, (_, d))| {
                let spread = chosen
                    .iter()
                    .filter(|(_, c)| c.len() == d.len())
                    .map(|(_, c)| tv(c, d))
                    .fold(f64::INFINITY, f64::min);
                (i, spread)
            })
            .filter(|&(_, spread)| spread >= NEAR_DUPLICATE_DISTRIBUTION)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let Some((i, _)) = best else { break };
        chosen.push(candidates.remove(i));
    }
    chosen
        .into_iter()
        .map(|(q, d)| Example {
            question: q,
            distribution: d,
            group: None,
        })
        .collect()
}

/// The few-shot examples of a persona on the voting question: the survey groups it belongs
/// to (one per attribute value it has), those furthest from the population's distribution
/// first (they say the most about the persona), skipping near-duplicates (TV < 0.02).
pub fn select_scope_shots<'a>(
    question: &'a Question,
    group: &GroupReference,
    scopes: &'a [ScopeReference],
    population: Option<&[f64]>,
    k: usize,
) -> Vec<Example<'a>> {
    let Some(persona) = &group.persona else {
        return vec![];
    };
    let tv = |a: &[f64], b: &[f64]| 0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>();
    let mut candidates: Vec<(f64, &ScopeReference)> = scopes
        .iter()
        .filter(|s| s.distribution.len() == question.options.len())
        .filter(|s| {
            persona
                .values
                .iter()
                .any(|(a, v)| *a == s.attribute && *v == s.value)
        })
        .map(|s| (population.map_or(0.0, |p| tv(&s.distribution, p)), s))
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.label.cmp(&b.1.label)));
    let mut shots: Vec<Example<'a>> = Vec::new();
    for (_, s) in candidates {
        if shots.len() == k {
            break;
        }
        if shots
            .iter()
            .any(|e| tv(e.distribution, &s.distribution) < 0.02)
        {
            continue;
        }
        shots.push(Example {
            question,
            distribution: &s.distribution,
            group: Some(&s.label),
        });
    }
    shots
}

#[cfg(test)]
mod fewshot_rule_tests {
    /// The few-shot rule is called by its own name wherever it is described, never "as the
    /// benchmark does" (it differs from App. A.8: see [`super::FEWSHOT_RULE`]).
    #[test]
    fn the_fewshot_rule_is_named_for_what_it_is() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for file in [
            "README.md",
            "docs/GUIDE.md",
            "crates/probe-cli/src/commands/eval.rs",
        ] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                !flat.contains("as the benchmark does"),
                "{file} calls the few-shot rule the benchmark's"
            );
            assert!(
                flat.contains(super::FEWSHOT_RULE),
                "{file} does not name the few-shot rule `{}`",
                super::FEWSHOT_RULE
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> Templates {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/eval/prompts.toml");
        Templates::load(&path).unwrap()
    }

    fn question(id: &str, dist: Vec<f64>) -> Question {
        Question {
            id: id.into(),
            text: format!("Question {id}?"),
            options: vec!["Yes".into(), "No".into(), "Unsure".into()],
            ordinal: None,
            groups: vec![GroupReference::new("POLPARTY", "Democrat", dist, 1.0)],
        }
    }

    #[test]
    fn rounding_and_sequences_keep_proportions() {
        assert_eq!(largest_remainder(&[0.333, 0.333, 0.334], 100), [33, 33, 34]);
        assert_eq!(largest_remainder(&[0.5, 0.5], 3), [2, 1]);
        assert_eq!(percent_json(&[0.125, 0.875]), r#"{"A": 13, "B": 87}"#);
        let s = letter_sequence(&[0.5, 0.3, 0.2], 30, 7);
        assert_eq!(s.len(), 30);
        assert_eq!(s.matches('A').count(), 15);
        assert_eq!(s.matches('C').count(), 6);
        assert_eq!(s, letter_sequence(&[0.5, 0.3, 0.2], 30, 7));
    }

    #[test]
    fn prompts_compose_method_and_steering() {
        let t = templates();
        let q = question("q1", vec![0.2, 0.5, 0.3]);
        let g = &q.groups[0];
        let p = t
            .render(Method::Logp, Steering::None, &q, g, &[], 30)
            .unwrap();
        assert!(
            p.starts_with("Question: Question q1?\nA. Yes\nB. No\nC. Unsure\n"),
            "{p}"
        );
        assert!(p.ends_with("Answer:"));
        let p = t
            .render(Method::Logp, Steering::Persona, &q, g, &[], 30)
            .unwrap();
        assert!(p.starts_with("Answer as a Democrat would."), "{p}");
        let p = t
            .render(Method::Sequence, Steering::Persona, &q, g, &[], 30)
            .unwrap();
        assert!(
            p.contains("how 30 different Democrats would answer") && p.contains("(A, B, C)"),
            "{p}"
        );
        let p = t
            .render(Method::Verbalize, Steering::None, &q, g, &[], 30)
            .unwrap();
        assert!(p.contains(r#"like {"A": 34, "B": 33, "C": 33}"#), "{p}");
        // few-shot: the question is never its own shot; near-duplicates are skipped
        let others = vec![
            q.clone(),
            question("q2", vec![0.6, 0.2, 0.2]),
            question("q3", vec![0.605, 0.2, 0.195]),
            question("q4", vec![0.1, 0.1, 0.8]),
        ];
        let similar: Vec<String> = ["q1", "q2", "q3", "q4"].map(String::from).to_vec();
        let mut distinct = others.clone();
        distinct[2].text = "Another text?".into();
        let shots = select_shots(&q, g, &similar, &distinct, 5);
        let ids: Vec<&str> = shots.iter().map(|s| s.question.id.as_str()).collect();
        assert_eq!(ids, ["q2", "q4"]);
        // a planted paraphrase of the target, most similar and with the target's own
        // distribution, is never shown; the shots after the first are the most different
        let mut planted = distinct.clone();
        planted.push(question("q5", vec![0.3, 0.3, 0.4]));
        planted.push(question("q6", vec![0.45, 0.3, 0.25]));
        let mut target = q.clone();
        target.text = "How much do you worry about climate change?".into();
        let mut paraphrase = q.clone();
        paraphrase.id = "q1-reworded".into();
        paraphrase.text = "How much, if at all, do you worry about climate change?".into();
        assert!(text_similarity(&paraphrase.text, &target.text) >= NEAR_DUPLICATE_TEXT);
        // templated questions that ask different things are not near-duplicates
        for (a, b) in [
            ("A coin lands heads 10% of the time. Heads or tails?", "A coin lands heads 50% of the time. Heads or tails?"),
            ("How much of a problem is crime in the country today?", "How much of a problem is drug addiction in the country today?"),
            ("A coin lands heads 40% and tails 60% of the time.", "A coin lands heads 60% and tails 40% of the time."),
            (
                "A biased coin lands heads with probability 40% and tails with probability 60%. It is flipped once. What is the outcome?",
                "A biased coin lands heads with probability 60% and tails with probability 40%. It is flipped once. What is the outcome?",
            ),
        ] {
            assert!(text_similarity(a, b) < NEAR_DUPLICATE_TEXT, "{a} / {b}");
        }
        planted.push(paraphrase);
        let similar: Vec<String> = ["q1-reworded", "q2", "q6", "q5", "q4"]
            .map(String::from)
            .to_vec();
        let shots = select_shots(&target, g, &similar, &planted, 3);
        let ids: Vec<&str> = shots.iter().map(|s| s.question.id.as_str()).collect();
        // q2 (most similar left), then q4 (TV 0.6 from q2), then q5 (farthest from both)
        assert_eq!(ids, ["q2", "q4", "q5"]);
        let p = t
            .render(Method::Verbalize, Steering::Fewshot, &q, g, &shots, 30)
            .unwrap();
        assert!(p.starts_with("Here is how Democrats answered"), "{p}");
        assert!(
            p.contains("Distribution: {\"A\": 60, \"B\": 20, \"C\": 20}"),
            "{p}"
        );
        assert!(p.contains("Question: Question q1?"));
        let p = t
            .render(Method::Sequence, Steering::Fewshot, &q, g, &shots, 10)
            .unwrap();
        assert!(
            p.contains("Answers: ") && !p.contains("Distribution:"),
            "{p}"
        );
        assert!(t
            .render(Method::Logp, Steering::Fewshot, &q, g, &[], 30)
            .is_err());
    }
}
