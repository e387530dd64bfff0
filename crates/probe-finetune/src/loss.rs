//! The training loss on the last position's logits, as burn tensor ops (so autodiff
//! differentiates it):
//!
//! 1. each option letter's logit is the log-sum-exp of its token forms (`"A"` and `" A"`, as
//!    `probe simulate` counts both);
//! 2. `q = softmax` over the item's letters (letters beyond its options masked out): the
//!    options' distribution `probe simulate` reports;
//! 3. loss = `−ln q[answer] + λ · Σ_k q_k |v_k − v_answer| / range` (the numerical penalty of
//!    arXiv 2403.20252 for ordinal and numeric items: the expected distance of the predicted
//!    answer from the true one, on the item's scale normalized to [0, 1]).
//!
//! Summed over the batch; the trainer divides by the examples of an optimizer step.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use probe_eval::logp::OptionTokens;
use probe_eval::parse::letters;
use probe_lm::tokenizer::Tokenizer;

use crate::data::Example;
use crate::{FinetuneError, Result};

/// Every single-token form of the letters A…, and which letter each form spells.
#[derive(Debug, Clone)]
pub struct LetterForms {
    pub ids: Vec<u32>,
    pub letter: Vec<usize>,
    pub letters: usize,
}

impl LetterForms {
    pub fn new(tokenizer: &Tokenizer, n_letters: usize) -> Result<Self> {
        let tokens = OptionTokens::new(tokenizer, &letters(n_letters))?;
        let (mut ids, mut letter) = (Vec::new(), Vec::new());
        for (k, forms) in tokens.ids.iter().enumerate() {
            if forms.is_empty() {
                return Err(FinetuneError::Input(format!(
                    "option letter {} is no single token of this tokenizer: the loss needs one",
                    tokens.letters[k]
                )));
            }
            for &id in forms {
                ids.push(id);
                letter.push(k);
            }
        }
        Ok(LetterForms {
            ids,
            letter,
            letters: n_letters,
        })
    }
}

/// The batch's loss (sum over examples) and its options' log-probabilities `[batch, letters]`.
pub fn option_loss(
    logits: Tensor<2>,
    batch: &[&Example],
    forms: &LetterForms,
    numeric_penalty: f64,
) -> Result<(Tensor<1>, Tensor<2>)> {
    let device = logits.device();
    let (b, k, f) = (batch.len(), forms.letters, forms.ids.len());
    let form_ids: Vec<i64> = forms.ids.iter().map(|&i| i as i64).collect();
    let form_ids: Tensor<1, Int> = Tensor::from_data(TensorData::new(form_ids, [f]), &device);
    let selected = logits.select(1, form_ids);
    // a per-row shift keeps exp finite; it cancels in the log
    let shift = selected.clone().detach().max_dim(1);
    let mut spell = vec![0f32; f * k];
    for (j, &letter) in forms.letter.iter().enumerate() {
        spell[j * k + letter] = 1.0;
    }
    let letter_logits = selected
        .sub(shift.clone())
        .exp()
        .matmul(host(spell, [f, k], &device))
        .log()
        .add(shift);
    let (mut mask, mut target, mut distance) =
        (vec![0f32; b * k], vec![0f32; b * k], vec![0f32; b * k]);
    for (e, ex) in batch.iter().enumerate() {
        if ex.n_options > k || ex.answer >= ex.n_options {
            return Err(FinetuneError::Input(format!(
                "an example with {} options (answer {}) in a loss over {k} letters",
                ex.n_options, ex.answer
            )));
        }
        for j in ex.n_options..k {
            mask[e * k + j] = -1.0e30;
        }
        target[e * k + ex.answer] = 1.0;
        for (j, d) in ex.distance.iter().enumerate() {
            distance[e * k + j] = *d;
        }
    }
    let log_q = log_softmax(letter_logits.add(host(mask, [b, k], &device)), 1);
    let ce = log_q.clone().mul(host(target, [b, k], &device)).sum().neg();
    let loss = if numeric_penalty > 0.0 {
        let penalty = log_q
            .clone()
            .exp()
            .mul(host(distance, [b, k], &device))
            .sum();
        ce.add(penalty.mul_scalar(numeric_penalty))
    } else {
        ce
    };
    Ok((loss, log_q))
}

fn host(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}
