//! Parsers for what a model writes when asked for answers, tolerant where the intent is clear
//! and explicit where it is not: every rejection is a [`ParseError`] that callers count.
//!
//! **Sequence** (`"A, B, B, A, C"`, `"ABBAC"`): the answer is the longest block of answer
//! tokens — maximal runs of uppercase letters A–Z separated only by whitespace or punctuation
//! (digits such as list numbers are separators too) — so surrounding prose ("Here are my
//! answers:") is skipped. Lowercase letters count only when the text has no uppercase answer
//! block at all (`"a b b a"`). Letters outside the options inside the block are counted as
//! invalid; the block is cut at the requested length. Fewer valid answers than half the
//! requested number is rejected (an echo of the option list, `A. Heads`, is not a sequence).
//!
//! **Verbalized** (`{"A": 25, "B": 75}`): the first `{…}` object, else `key: value` pairs in
//! the text. Keys are option letters in any case, optionally quoted or written `Option A` /
//! `A)`; values are numbers, percentages (`"25%"`) or fractions (`1/4`). Missing options get 0,
//! unknown keys are ignored and counted, the values are renormalized and the raw sum reported.
//! Rejected: no pairs, negative or non-finite values, a key given twice, all values zero.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("no answer letters found")]
    NoAnswers,
    #[error("{found} answers where {wanted} were asked for (fewer than half)")]
    TooShort { found: usize, wanted: usize },
    #[error("no `option: value` pairs found")]
    NoPairs,
    #[error("value `{0}` for option {1} is not a non-negative number")]
    BadValue(String, char),
    #[error("option {0} is given twice")]
    Duplicate(char),
    #[error("every value is zero")]
    AllZero,
    #[error("no key is one of the options {0:?}")]
    NoKnownKeys(Vec<char>),
}

/// A parsed sequence of answers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SequenceAnswers {
    /// Answers per option, in option order.
    pub counts: Vec<usize>,
    /// Letters in the answer block that are not options.
    pub invalid: usize,
    /// Letters beyond the requested length, dropped.
    pub truncated: usize,
}

impl SequenceAnswers {
    pub fn valid(&self) -> usize {
        self.counts.iter().sum()
    }
}

/// The option letters A, B, C, … for `n` options (at most 26).
pub fn letters(n: usize) -> Vec<char> {
    (0..n.min(26)).map(|i| (b'A' + i as u8) as char).collect()
}

fn strip_fences(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace('`', "")
}

/// Blocks of letter runs separated only by non-letters: returns for each block its runs.
fn letter_blocks(text: &str, uppercase: bool) -> Vec<Vec<String>> {
    let mut blocks: Vec<Vec<String>> = vec![];
    let mut current: Vec<String> = vec![];
    let mut run = String::new();
    let flush_run = |run: &mut String, current: &mut Vec<String>, blocks: &mut Vec<Vec<String>>| {
        if run.is_empty() {
            return;
        }
        let is_answer_run = if uppercase {
            run.chars().all(|c| c.is_ascii_uppercase())
        } else {
            run.chars().count() == 1 && run.chars().all(|c| c.is_ascii_lowercase())
        };
        if is_answer_run {
            current.push(std::mem::take(run));
        } else {
            // a word: ends the block
            if !current.is_empty() {
                blocks.push(std::mem::take(current));
            }
            run.clear();
        }
    };
    for c in text.chars() {
        if c.is_alphabetic() {
            run.push(c);
        } else {
            flush_run(&mut run, &mut current, &mut blocks);
        }
    }
    flush_run(&mut run, &mut current, &mut blocks);
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

/// Parses up to `n` answers over `options` letters (see the module docs for the rules).
pub fn parse_sequence(
    text: &str,
    options: &[char],
    n: usize,
) -> Result<SequenceAnswers, ParseError> {
    let text = strip_fences(text);
    let pick = |uppercase: bool| -> Option<Vec<char>> {
        let blocks = letter_blocks(&text, uppercase);
        // the longest block by letters that are options; ties → the first
        let score = |b: &Vec<String>| {
            b.iter()
                .flat_map(|r| r.chars())
                .filter(|c| options.contains(&c.to_ascii_uppercase()))
                .count()
        };
        let best = blocks
            .iter()
            .fold(None::<&Vec<String>>, |best, b| match best {
                Some(x) if score(x) >= score(b) => Some(x),
                _ => Some(b),
            })?;
        (score(best) > 0).then(|| best.iter().flat_map(|r| r.chars()).collect())
    };
    let letters = pick(true)
        .or_else(|| pick(false))
        .ok_or(ParseError::NoAnswers)?;
    let mut counts = vec![0; options.len()];
    let (mut invalid, mut taken, mut truncated) = (0, 0, 0);
    for c in letters {
        let c = c.to_ascii_uppercase();
        if taken == n {
            truncated += 1;
            continue;
        }
        taken += 1;
        match options.iter().position(|&o| o == c) {
            Some(i) => counts[i] += 1,
            None => invalid += 1,
        }
    }
    let valid: usize = counts.iter().sum();
    if valid == 0 {
        return Err(ParseError::NoAnswers);
    }
    // an echo of the option list ("A. Heads") is not a sequence of answers
    if valid < n.div_ceil(2) {
        return Err(ParseError::TooShort {
            found: valid,
            wanted: n,
        });
    }
    Ok(SequenceAnswers {
        counts,
        invalid,
        truncated,
    })
}

/// A parsed verbalized distribution.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verbalized {
    /// Renormalized, in option order.
    pub distribution: Vec<f64>,
    /// The sum of the values as written (100 for percentages that add up).
    pub raw_sum: f64,
    /// Whether the values read as percentages (a `%` sign, or a sum above 1.5).
    pub percent: bool,
    /// Options the model left out (given 0).
    pub missing: Vec<char>,
    /// Keys that are not options, ignored.
    pub unknown_keys: Vec<String>,
}

impl Verbalized {
    /// How far the written values are from a proper distribution (|sum − 100| or |sum − 1|).
    pub fn sum_deviation(&self) -> f64 {
        if self.percent {
            (self.raw_sum - 100.0).abs()
        } else {
            (self.raw_sum - 1.0).abs()
        }
    }
}

/// The option letter a key names: `A`, `a`, `"A"`, `Option A`, `A)`, `(A)`, `A.`.
fn key_letter(key: &str) -> Option<char> {
    let k = key
        .trim()
        .trim_matches(|c: char| {
            c == '"' || c == '\'' || c == '(' || c == ')' || c == '.' || c == '*'
        })
        .trim();
    let k = k
        .strip_prefix("Option ")
        .or_else(|| k.strip_prefix("option "))
        .or_else(|| k.strip_prefix("Answer "))
        .unwrap_or(k)
        .trim_end_matches([')', '.', ']'])
        .trim_start_matches(['(', '['])
        .trim();
    let mut chars = k.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

/// A value: the number-like start of what follows the key — `25`, `25%`, `"25 %"`, `0.25`,
/// `1/4`. Returns (value, had a % sign).
fn value_of(raw: &str) -> Option<(f64, bool)> {
    let end = raw
        .char_indices()
        .find(|(_, c)| {
            !(c.is_ascii_digit() || matches!(c, '.' | '%' | '/' | '"' | '\'' | ' ' | '-' | '+'))
        })
        .map_or(raw.len(), |(i, _)| i);
    let v = raw[..end]
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'')
        .trim();
    let (v, percent) = match v.strip_suffix('%') {
        Some(x) => (x.trim(), true),
        None => (v, false),
    };
    let x = if let Some((a, b)) = v.split_once('/') {
        let (a, b): (f64, f64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if b == 0.0 {
            return None;
        }
        a / b
    } else {
        v.parse().ok()?
    };
    (x.is_finite() && x >= 0.0).then_some((x, percent))
}

/// `key: value` pairs from a JSON-ish object body or free text.
fn pairs(text: &str) -> Vec<(String, String)> {
    let body = match (text.find('{'), text.rfind('}')) {
        (Some(a), Some(b)) if b > a => &text[a + 1..b],
        _ => text,
    };
    let mut out = Vec::new();
    for piece in body.split([',', '\n', ';']) {
        let (k, v) = match piece.rsplit_once([':', '=']) {
            Some(kv) => kv,
            // `A) 25 %`, `B. 75%`: a letter with a closing mark as the key
            None => {
                let t = piece.trim();
                let mut chars = t.chars();
                match (chars.next(), chars.next()) {
                    (Some(l), Some(')' | '.')) if l.is_ascii_alphabetic() => t.split_at(2),
                    _ => continue,
                }
            }
        };
        let v = v.trim();
        if !v.is_empty() {
            out.push((k.trim().to_string(), v.to_string()));
        }
    }
    out
}

/// Parses a verbalized distribution over `options` (see the module docs for the rules).
pub fn parse_verbalized(text: &str, options: &[char]) -> Result<Verbalized, ParseError> {
    let text = strip_fences(text);
    let found = pairs(&text);
    if found.is_empty() {
        return Err(ParseError::NoPairs);
    }
    let mut values: BTreeMap<char, f64> = BTreeMap::new();
    let mut unknown_keys = Vec::new();
    let mut percent = false;
    for (k, v) in &found {
        // `Here is my estimate: A: 10` → the key's last word
        let letter = key_letter(k).or_else(|| k.split_whitespace().last().and_then(key_letter));
        let Some(letter) = letter.filter(|l| options.contains(l)) else {
            unknown_keys.push(k.clone());
            continue;
        };
        let (x, pct) = value_of(v).ok_or_else(|| ParseError::BadValue(v.clone(), letter))?;
        percent |= pct;
        if values.insert(letter, x).is_some() {
            return Err(ParseError::Duplicate(letter));
        }
    }
    if values.is_empty() {
        return Err(ParseError::NoKnownKeys(options.to_vec()));
    }
    let raw_sum: f64 = values.values().sum();
    if raw_sum <= 0.0 {
        return Err(ParseError::AllZero);
    }
    percent |= raw_sum > 1.5;
    Ok(Verbalized {
        distribution: options
            .iter()
            .map(|o| values.get(o).copied().unwrap_or(0.0) / raw_sum)
            .collect(),
        raw_sum,
        percent,
        missing: options
            .iter()
            .copied()
            .filter(|o| !values.contains_key(o))
            .collect(),
        unknown_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABCD: [char; 4] = ['A', 'B', 'C', 'D'];

    fn seq(text: &str, n: usize) -> Result<SequenceAnswers, ParseError> {
        parse_sequence(text, &ABCD, n)
    }

    #[test]
    fn sequences() {
        let cases: &[(&str, usize, [usize; 4], usize, usize)] = &[
            // text, n, counts, invalid, truncated
            ("ABBAC", 5, [2, 2, 1, 0], 0, 0),
            ("A, B, B, A, C", 5, [2, 2, 1, 0], 0, 0),
            ("Here are my 5 answers: A B D D A", 5, [2, 1, 0, 2], 0, 0),
            ("```\nA,A,B\n```", 3, [2, 1, 0, 0], 0, 0),
            ("1. A\n2. C\n3. C", 3, [1, 0, 2, 0], 0, 0),
            ("ABCDE", 5, [1, 1, 1, 1], 1, 0),
            ("AAAAB", 3, [3, 0, 0, 0], 0, 2),
            ("a, b, b, d", 4, [1, 2, 0, 1], 0, 0),
            (
                "I think the answers are: B B C. Done",
                3,
                [0, 2, 1, 0],
                0,
                0,
            ),
            ("`A`, `B`", 2, [1, 1, 0, 0], 0, 0),
            ("Sequence: [A][B][A]", 3, [2, 1, 0, 0], 0, 0),
            ("A-B-C-D", 4, [1, 1, 1, 1], 0, 0),
            ("ABAB", 8, [2, 2, 0, 0], 0, 0),
        ];
        for (text, n, counts, invalid, truncated) in cases {
            let s = seq(text, *n).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(
                (s.counts.as_slice(), s.invalid, s.truncated),
                (counts.as_slice(), *invalid, *truncated),
                "{text:?}"
            );
        }
        for text in ["", "I cannot answer that.", "EFG", "1 2 3"] {
            assert_eq!(seq(text, 30), Err(ParseError::NoAnswers), "{text:?}");
        }
        assert_eq!(
            seq("A. Heads\nB. Tails", 30),
            Err(ParseError::TooShort {
                found: 1,
                wanted: 30
            })
        );
        assert_eq!(
            seq("ABA", 8),
            Err(ParseError::TooShort {
                found: 3,
                wanted: 8
            })
        );
    }

    fn verb(text: &str) -> Result<Verbalized, ParseError> {
        parse_verbalized(text, &ABCD)
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn verbalized() {
        // text, distribution, raw sum, percent, missing
        type Case<'a> = (&'a str, [f64; 4], f64, bool, &'a [char]);
        let cases: &[Case] = &[
            // text, distribution, raw sum, percent, missing
            (
                r#"{"A": 25, "B": 25, "C": 25, "D": 25}"#,
                [0.25; 4],
                100.0,
                true,
                &[],
            ),
            (
                r#"{"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4}"#,
                [0.1, 0.2, 0.3, 0.4],
                1.0,
                false,
                &[],
            ),
            (
                r#"{"A": "50%", "B": "50%"}"#,
                [0.5, 0.5, 0.0, 0.0],
                100.0,
                true,
                &['C', 'D'],
            ),
            (
                "{'a': 30, 'b': 70}",
                [0.3, 0.7, 0.0, 0.0],
                100.0,
                true,
                &['C', 'D'],
            ),
            (
                "Sure! Here it is:\n```json\n{\"A\": 60, \"B\": 40}\n```",
                [0.6, 0.4, 0.0, 0.0],
                100.0,
                true,
                &['C', 'D'],
            ),
            (
                "{A: 20%, B: 30%, C: 50%,}",
                [0.2, 0.3, 0.5, 0.0],
                100.0,
                true,
                &['D'],
            ),
            (
                r#"{"A": 1/4, "B": 3/4}"#,
                [0.25, 0.75, 0.0, 0.0],
                1.0,
                false,
                &['C', 'D'],
            ),
            (
                "A: 10\nB: 20\nC: 30\nD: 40",
                [0.1, 0.2, 0.3, 0.4],
                100.0,
                true,
                &[],
            ),
            (
                "My estimate: A: 70, B: 30",
                [0.7, 0.3, 0.0, 0.0],
                100.0,
                true,
                &['C', 'D'],
            ),
            (
                "A = 0.6; B = 0.4",
                [0.6, 0.4, 0.0, 0.0],
                1.0,
                false,
                &['C', 'D'],
            ),
            (
                r#"{"A": 50, "B": 30, "C": 30}"#,
                [50.0 / 110.0, 30.0 / 110.0, 30.0 / 110.0, 0.0],
                110.0,
                true,
                &['D'],
            ),
            (
                r#"{"Option A": 40, "Option B": 60}"#,
                [0.4, 0.6, 0.0, 0.0],
                100.0,
                true,
                &['C', 'D'],
            ),
            (
                r#"{"A": 40, "B": 60, "E": 10}"#,
                [0.4, 0.6, 0.0, 0.0],
                100.0,
                true,
                &['C', 'D'],
            ),
            (
                "A) 25 %, B) 75 %",
                [0.25, 0.75, 0.0, 0.0],
                100.0,
                true,
                &['C', 'D'],
            ),
            (
                r#"{"A": 0.5, "B": 0.25, "C": 0.25} (these sum to 1)"#,
                [0.5, 0.25, 0.25, 0.0],
                1.0,
                false,
                &['D'],
            ),
        ];
        for (text, dist, sum, pct, missing) in cases {
            let v = verb(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(
                close(&v.distribution, dist),
                "{text:?}: {:?}",
                v.distribution
            );
            assert!((v.raw_sum - sum).abs() < 1e-9, "{text:?}: {}", v.raw_sum);
            assert_eq!(v.percent, *pct, "{text:?}");
            assert_eq!(v.missing, *missing, "{text:?}");
        }
        assert_eq!(
            verb(r#"{"A": 50, "B": 30, "C": 30}"#)
                .unwrap()
                .sum_deviation(),
            10.0
        );
        assert_eq!(
            verb(r#"{"A": 40, "B": 60, "E": 10}"#).unwrap().unknown_keys,
            ["\"E\""]
        );
        let rejected: &[(&str, ParseError)] = &[
            ("I would rather not say.", ParseError::NoPairs),
            (
                r#"{"A": -10, "B": 110}"#,
                ParseError::BadValue("-10".into(), 'A'),
            ),
            (r#"{"A": 50, "A": 50}"#, ParseError::Duplicate('A')),
            (r#"{"A": 0, "B": 0}"#, ParseError::AllZero),
            (
                r#"{"yes": 50, "no": 50}"#,
                ParseError::NoKnownKeys(ABCD.to_vec()),
            ),
            (
                r#"{"A": "lots", "B": 5}"#,
                ParseError::BadValue("\"lots\"".into(), 'A'),
            ),
        ];
        for (text, want) in rejected {
            assert_eq!(verb(text).as_ref().err(), Some(want), "{text:?}");
        }
    }
}
