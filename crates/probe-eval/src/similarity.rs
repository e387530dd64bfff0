//! Few-shot neighbours from the model's own representation of the questions: the residual
//! stream after the middle block, mean-pooled over the question's tokens, compared by cosine.

use std::collections::HashMap;

use probe_lm::tokenizer::Tokenizer;
use probe_lm::{Batch, HookPoint, HookSpec, Logits, Transformer};

use crate::questions::{top_neighbours, Question};
use crate::{EvalError, Result};

/// The 10 most similar other questions of each question (ties by id), by the cosine of the
/// mean-pooled `blocks.{L/2}.hook_resid_post` over "question + options" text.
pub fn model_similar(
    transformer: &Transformer,
    tokenizer: &Tokenizer,
    questions: &[Question],
    batch_size: usize,
) -> Result<HashMap<String, Vec<String>>> {
    let model_err = |e: probe_lm::Error| EvalError::Model(e.to_string());
    let layer = transformer.config.num_layers / 2;
    let mut hooks = HookSpec::new();
    hooks.insert(HookPoint::ResidPost(layer));
    let mut embeddings: Vec<Vec<f32>> = Vec::with_capacity(questions.len());
    for chunk in questions.chunks(batch_size.max(1)) {
        let ids = chunk
            .iter()
            .map(|q| tokenizer.encode(&format!("{}\n{}", q.text, q.options.join("\n"))))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(model_err)?;
        let batch = Batch::left_padded(&ids, tokenizer.pad_token_id()).map_err(model_err)?;
        let out = transformer
            .forward(&batch, &hooks, Logits::None)
            .map_err(model_err)?;
        let t = out
            .cache
            .get(HookPoint::ResidPost(layer))
            .ok_or_else(|| EvalError::Model("the hooked residual stream is missing".into()))?;
        let [_, seq, hidden] = t.dims();
        let values = t
            .clone()
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| EvalError::Model(format!("reading activations: {e:?}")))?;
        for (b, &pad) in batch.pad_lens.iter().enumerate() {
            let mut mean = vec![0f32; hidden];
            for pos in pad..seq {
                let row = &values[(b * seq + pos) * hidden..(b * seq + pos + 1) * hidden];
                mean.iter_mut().zip(row).for_each(|(m, x)| *m += x);
            }
            let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            mean.iter_mut().for_each(|m| *m /= norm);
            embeddings.push(mean);
        }
    }
    Ok(top_neighbours(questions, |i, j| {
        embeddings[i]
            .iter()
            .zip(&embeddings[j])
            .map(|(a, b)| (a * b) as f64)
            .sum()
    }))
}
