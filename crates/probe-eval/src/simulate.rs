//! Simulated respondents (arXiv 2403.20252): a real respondent's demographics become a persona,
//! the model is asked each survey item in turn, and per item it gives the options'
//! distribution (next-token log-probabilities of the option letters) and a sampled answer at
//! each temperature. `probe finetune` trains on exactly these prompts, so a fine-tuned model
//! is asked what it was taught to answer.

use probe_data::survey::Item;
use probe_lm::chat::{ChatTemplate, Message};
use probe_lm::generate::Rng;
use probe_lm::tokenizer::Tokenizer;
use probe_lm::{Batch, HookSpec, Logits, Transformer};

use crate::logp::OptionTokens;
use crate::parse::letters;
use crate::{stable_hash, EvalError, Result};

/// The most options an item may have: one letter each.
pub const MAX_OPTIONS: usize = 26;

/// The text asked for one item: the persona (when steered), the question, its options as
/// letters, and the instruction to answer with one letter.
pub fn item_prompt(persona: Option<&str>, item: &Item) -> Result<String> {
    if item.options.len() > MAX_OPTIONS {
        return Err(EvalError::Input(format!(
            "item {} has {} options; a prompt letters at most {MAX_OPTIONS}",
            item.column,
            item.options.len()
        )));
    }
    let mut text = String::new();
    if let Some(p) = persona {
        text.push_str(p.trim_end());
        text.push_str("\n\n");
    }
    text.push_str("Question: ");
    text.push_str(item.question.trim());
    text.push('\n');
    for (letter, option) in letters(item.options.len()).iter().zip(&item.options) {
        text.push_str(&format!("{letter}. {}\n", option.label));
    }
    text.push_str("Answer with the letter of one option only.\nAnswer:");
    Ok(text)
}

/// Tokenizes a prompt as `probe eval` does: in the chat template's user turn (assistant turn
/// opened) when `chat` and the model has one, else as plain text with the tokenizer's BOS rule.
pub fn encode_prompt(
    tokenizer: &Tokenizer,
    chat_template: Option<&ChatTemplate>,
    chat: bool,
    text: &str,
) -> Result<(String, Vec<u32>)> {
    let model_err = |e: probe_lm::Error| EvalError::Model(e.to_string());
    let (rendered, ids) = match (chat, chat_template) {
        (true, Some(t)) => {
            let rendered = t
                .render(&[Message::new("user", text)], true)
                .map_err(model_err)?;
            // chat templates spell out BOS themselves
            let ids = tokenizer
                .encode_continuation(&rendered)
                .map_err(model_err)?;
            (rendered, ids)
        }
        _ => (text.to_string(), tokenizer.encode(text).map_err(model_err)?),
    };
    Ok((rendered, ids))
}

/// What the model answered to one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemAnswer {
    /// The options' distribution (log-p of the letters at temperature 1, renormalized).
    pub p: Vec<f64>,
    /// The probability the letters held before renormalizing.
    pub letter_mass: f64,
    /// Per temperature asked: the option drawn from the tempered letter distribution
    /// (temperature 0: the most probable option).
    pub sampled: Vec<usize>,
}

/// One prompt to answer.
#[derive(Debug, Clone)]
pub struct ItemPrompt {
    /// Seeds the samples: the same key, seed and temperature give the same draw in any batch.
    pub key: String,
    pub ids: Vec<u32>,
    pub n_options: usize,
}

pub struct Simulator<'a> {
    pub transformer: &'a Transformer,
    pub tokenizer: &'a Tokenizer,
    pub temperatures: &'a [f32],
    pub seed: u64,
}

impl Simulator<'_> {
    /// Answers `prompts` in one forward pass (left-padded): last-position logits → the letters'
    /// distribution → one draw per temperature.
    pub fn answer(&self, prompts: &[ItemPrompt]) -> Result<Vec<ItemAnswer>> {
        let model_err = |e: probe_lm::Error| EvalError::Model(e.to_string());
        let ids: Vec<Vec<u32>> = prompts.iter().map(|p| p.ids.clone()).collect();
        let batch = Batch::left_padded(&ids, self.tokenizer.pad_token_id()).map_err(model_err)?;
        let out = self
            .transformer
            .forward(&batch, &HookSpec::new(), Logits::Last)
            .map_err(model_err)?;
        let logits = out
            .logits
            .ok_or_else(|| EvalError::Model("the model returned no logits".into()))?
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| EvalError::Model(format!("reading logits: {e:?}")))?;
        let vocab = logits.len() / prompts.len();
        let mut out = Vec::with_capacity(prompts.len());
        // the letters' token ids depend only on the number of options: tokenize them once
        let mut by_count: std::collections::BTreeMap<usize, OptionTokens> = Default::default();
        for (prompt, row) in prompts.iter().zip(logits.chunks_exact(vocab)) {
            let tokens = match by_count.entry(prompt.n_options) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(OptionTokens::new(
                    self.tokenizer,
                    &letters(prompt.n_options),
                )?),
            };
            let (p, letter_mass) = tokens
                .distribution(row)
                .map_err(|e| EvalError::Model(format!("respondent|item `{}`: {e}", prompt.key)))?;
            let mut sampled = Vec::with_capacity(self.temperatures.len());
            for &t in self.temperatures {
                sampled.push(if t == 0.0 {
                    argmax(&p)
                } else {
                    // the letters' softmax at temperature t: the logits scaled by 1/t
                    let scaled: Vec<f32> = row.iter().map(|x| x / t).collect();
                    let (q, _) = tokens.distribution(&scaled)?;
                    let mut rng = Rng::new(self.seed ^ stable_hash(&format!("{}@{t}", prompt.key)));
                    draw(&q, rng.next_f64())
                });
            }
            out.push(ItemAnswer {
                p,
                letter_mass,
                sampled,
            });
        }
        Ok(out)
    }
}

fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
        .0
}

/// One answer drawn from a distribution `p` over options at temperature `t`, as the model's
/// twins draw theirs: `t = 0` takes the most probable option; otherwise the draw is from
/// p^(1/t), renormalized (the softmax of ln p / t: the model's tempered letter softmax when p
/// is its letter distribution), seeded by `seed` and `key` alone. For predictors that give a
/// distribution rather than logits (the simulation's baselines).
pub fn draw_tempered(p: &[f64], t: f32, seed: u64, key: &str) -> usize {
    if t == 0.0 {
        return argmax(p);
    }
    let inverse = 1.0 / f64::from(t);
    let mut q: Vec<f64> = p
        .iter()
        .map(|&x| if x > 0.0 { x.powf(inverse) } else { 0.0 })
        .collect();
    let total: f64 = q.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        // p^(1/t) underflowed everywhere (a tiny t): the limit is the most probable option
        return argmax(p);
    }
    q.iter_mut().for_each(|x| *x /= total);
    let mut rng = Rng::new(seed ^ stable_hash(&format!("{key}@{t}")));
    draw(&q, rng.next_f64())
}

/// The option whose cumulative probability first exceeds `u` ∈ [0, 1).
fn draw(p: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, x) in p.iter().enumerate() {
        acc += x;
        if u < acc {
            return i;
        }
    }
    p.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_data::survey::{AnswerOption, ItemKind};

    fn item(n: usize) -> Item {
        Item {
            column: "q".into(),
            question: "Which?".into(),
            kind: ItemKind::Nominal,
            options: (0..n)
                .map(|i| AnswerOption {
                    code: i.to_string(),
                    label: format!("option {i}"),
                })
                .collect(),
        }
    }

    #[test]
    fn prompts_letter_the_options_after_the_persona() {
        let text = item_prompt(Some("You are 40.\n"), &item(2)).unwrap();
        assert_eq!(
            text,
            "You are 40.\n\nQuestion: Which?\nA. option 0\nB. option 1\nAnswer with the letter of one option only.\nAnswer:"
        );
        assert!(item_prompt(None, &item(2))
            .unwrap()
            .starts_with("Question: Which?"));
        assert!(item_prompt(None, &item(27)).is_err());
    }

    #[test]
    fn draws_follow_the_cumulative_distribution() {
        let p = [0.2, 0.5, 0.3];
        assert_eq!(draw(&p, 0.0), 0);
        assert_eq!(draw(&p, 0.19), 0);
        assert_eq!(draw(&p, 0.2), 1);
        assert_eq!(draw(&p, 0.69), 1);
        assert_eq!(draw(&p, 0.99), 2);
        assert_eq!(argmax(&p), 1);
    }
}
