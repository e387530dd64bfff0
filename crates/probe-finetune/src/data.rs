//! Training examples: one per respondent × item with a real answer, the prompt exactly as
//! `probe simulate` asks it (so the fine-tuned model is scored on what it was taught).

use probe_data::survey::{ItemKind, Survey};
use probe_eval::simulate::{encode_prompt, item_prompt};
use probe_lm::chat::ChatTemplate;
use probe_lm::tokenizer::Tokenizer;

use crate::{FinetuneError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub n_options: usize,
    /// The respondent's option.
    pub answer: usize,
    /// Per option `|v_k − v_answer| / (v_max − v_min)` for ordinal and numeric items (what the
    /// numerical penalty weighs), empty for nominal ones.
    pub distance: Vec<f32>,
    pub respondent: usize,
    pub item: usize,
}

/// How prompts are written and tokenized.
pub struct PromptStyle<'a> {
    pub tokenizer: &'a Tokenizer,
    pub chat_template: Option<&'a ChatTemplate>,
    pub chat: bool,
    /// Prompt with each respondent's persona (else unsteered).
    pub persona: bool,
}

/// The examples of `respondents` (indices into the survey), respondent by respondent, items in
/// codebook order; a respondent whose persona cannot be written is left out.
pub fn examples(
    survey: &Survey,
    respondents: &[usize],
    style: &PromptStyle<'_>,
) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for &r in respondents {
        let respondent = survey.respondents.get(r).ok_or_else(|| {
            FinetuneError::Input(format!("respondent index {r} is outside the survey"))
        })?;
        let persona = if style.persona {
            match survey.persona(respondent) {
                Some(p) => Some(p),
                None => continue,
            }
        } else {
            None
        };
        for (i, item) in survey.codebook.items.iter().enumerate() {
            let Some(answer) = respondent.answers[i] else {
                continue;
            };
            let text = item_prompt(persona.as_deref(), item)?;
            let (_, ids) = encode_prompt(style.tokenizer, style.chat_template, style.chat, &text)?;
            let distance = match item.kind {
                ItemKind::Nominal => Vec::new(),
                _ => {
                    let values: Vec<f64> = (0..item.options.len())
                        .map(|o| item.value(o).unwrap_or(o as f64))
                        .collect();
                    let (lo, hi) = values
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                            (a.min(v), b.max(v))
                        });
                    let range = (hi - lo).max(f64::MIN_POSITIVE);
                    values
                        .iter()
                        .map(|v| ((v - values[answer]).abs() / range) as f32)
                        .collect()
                }
            };
            out.push(Example {
                ids,
                n_options: item.options.len(),
                answer,
                distance,
                respondent: r,
                item: i,
            });
        }
    }
    Ok(out)
}
