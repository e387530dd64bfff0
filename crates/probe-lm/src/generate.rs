//! Autoregressive decoding with a KV cache: greedy or sampled (temperature, top-k, top-p,
//! seeded), stop strings, batched prompts of different lengths (left padding).

use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;
use crate::transformer::{Batch, KvCache, Transformer};
use burn::tensor::Tensor;

#[derive(Debug, Clone)]
pub struct GenerateParams {
    pub max_new_tokens: usize,
    /// 0 means greedy.
    pub temperature: f32,
    /// Keep the smallest set of tokens whose probability reaches `top_p` (1.0 = off).
    pub top_p: f32,
    /// Keep the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
    pub seed: u64,
    pub stop: Vec<String>,
    /// Keep decoding past end-of-sequence tokens (benchmarks: a fixed number of tokens).
    pub ignore_eos: bool,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_new_tokens: 32,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
            stop: Vec::new(),
            ignore_eos: false,
        }
    }
}

impl GenerateParams {
    pub fn check(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::Input(format!(
                "temperature {} must be ≥ 0",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::Input(format!(
                "top_p {} must lie in (0, 1]",
                self.top_p
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Eos,
    Stop,
    Length,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Generation {
    pub token_ids: Vec<u32>,
    pub text: String,
    pub finish_reason: FinishReason,
}

/// The sampler's random numbers: SplitMix64, the same stream on every platform.
pub use probe_util::SplitMix64 as Rng;

/// Picks the next token from one row of logits.
pub fn sample(logits: &[f32], params: &GenerateParams, rng: &mut Rng) -> u32 {
    if params.temperature == 0.0 {
        return argmax(logits);
    }
    let mut idx: Vec<usize> = (0..logits.len())
        .filter(|&i| logits[i].is_finite())
        .collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if params.top_k > 0 {
        idx.truncate(params.top_k);
    }
    let max = logits[idx[0]] as f64;
    let t = params.temperature as f64;
    let mut probs: Vec<f64> = idx
        .iter()
        .map(|&i| ((logits[i] as f64 - max) / t).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if params.top_p < 1.0 {
        let mut acc = 0.0;
        let keep = probs
            .iter()
            .position(|&p| {
                acc += p;
                acc >= params.top_p as f64
            })
            .map_or(probs.len(), |i| i + 1);
        probs.truncate(keep);
        idx.truncate(keep);
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
    }
    let mut u = rng.next_f64();
    for (p, &i) in probs.iter().zip(&idx) {
        if u < *p {
            return i as u32;
        }
        u -= p;
    }
    idx[idx.len() - 1] as u32
}

pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Generates continuations of several prompts at once.
pub fn generate(
    model: &Transformer,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    params: &GenerateParams,
    on_token: impl FnMut(usize),
) -> Result<Vec<Generation>> {
    params.check()?;
    let batch = Batch::left_padded(prompts, tokenizer.pad_token_id())?;
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    check_context(model, longest, params.max_new_tokens)?;
    if params.max_new_tokens == 0 {
        return Ok(prompts
            .iter()
            .map(|_| Generation {
                token_ids: vec![],
                text: String::new(),
                finish_reason: FinishReason::Length,
            })
            .collect());
    }
    let (logits, kv) = model.prefill(&batch)?;
    generate_prefilled(model, tokenizer, logits, kv, params, on_token)
}

/// The prompt (`prompt_len` tokens, padding included) and `max_new_tokens` must fit the
/// model's context (`max_position_embeddings`): past it, positions the model was never trained
/// on would be decoded in silence (and `-n 4000000000` would never end).
fn check_context(model: &Transformer, prompt_len: usize, max_new_tokens: usize) -> Result<()> {
    let context = model.config.max_position_embeddings;
    if prompt_len.saturating_add(max_new_tokens) > context {
        return Err(Error::Input(format!(
            "the prompt ({prompt_len} tokens) and --max-new-tokens {max_new_tokens} exceed the model's context of {context} tokens: ask for at most {} new tokens",
            context.saturating_sub(prompt_len)
        )));
    }
    Ok(())
}

/// Decodes on from a prefill ([`Transformer::prefill`], or rows of one selected with
/// [`KvCache::select_rows`] and [`crate::transformer::select_rows`]): what [`generate`] does
/// after its prefill, so several attempts at the same prompts share one prefill.
pub fn generate_prefilled(
    model: &Transformer,
    tokenizer: &Tokenizer,
    mut logits: Tensor<3>,
    mut kv: KvCache,
    params: &GenerateParams,
    mut on_token: impl FnMut(usize),
) -> Result<Vec<Generation>> {
    params.check()?;
    check_context(model, kv.past_len(), params.max_new_tokens)?;
    let n = logits.dims()[0];
    let mut rng = Rng::new(params.seed);
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut finished: Vec<Option<FinishReason>> = vec![None; n];
    let vocab = model.config.vocab_size;
    let eos = tokenizer.eos_token_ids();
    // with max_new_tokens = 0 nothing runs: empty generations, finished by length
    for step in 0..params.max_new_tokens {
        let rows = logits
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| Error::Input(format!("reading logits: {e:?}")))?;
        let mut next = Vec::with_capacity(n);
        for (i, row) in rows.chunks_exact(vocab).enumerate() {
            if finished[i].is_some() {
                next.push(tokenizer.pad_token_id());
                continue;
            }
            // the finite-output guard: NaN logits would "sample" an arbitrary token
            if let Some(t) = row.iter().position(|x| x.is_nan() || *x == f32::INFINITY) {
                return Err(Error::Input(format!(
                    "prompt {i}, generated token {}: the logit of token {t} is {} (is the checkpoint or the adapter broken?)",
                    step + 1,
                    row[t]
                )));
            }
            let tok = sample(row, params, &mut rng);
            next.push(tok);
            if eos.contains(&tok) && !params.ignore_eos {
                finished[i] = Some(FinishReason::Eos);
                continue;
            }
            out[i].push(tok);
            if !params.stop.is_empty() {
                let text = tokenizer.decode(&out[i], false)?;
                if params.stop.iter().any(|s| text.contains(s.as_str())) {
                    finished[i] = Some(FinishReason::Stop);
                }
            }
        }
        on_token(step + 1);
        if finished.iter().all(Option::is_some) || step + 1 == params.max_new_tokens {
            break;
        }
        logits = model.decode_step(&next, &mut kv)?;
    }
    out.into_iter()
        .zip(finished)
        .map(|(ids, fin)| {
            let mut text = tokenizer.decode(&ids, true)?;
            let mut reason = fin.unwrap_or(FinishReason::Length);
            if reason == FinishReason::Stop {
                if let Some(cut) = params
                    .stop
                    .iter()
                    .filter_map(|s| text.find(s.as_str()))
                    .min()
                {
                    text.truncate(cut);
                }
            } else if let Some(cut) = params
                .stop
                .iter()
                .filter_map(|s| text.find(s.as_str()))
                .min()
            {
                text.truncate(cut);
                reason = FinishReason::Stop;
            }
            Ok(Generation {
                token_ids: ids,
                text,
                finish_reason: reason,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_is_argmax_and_sampling_is_seeded() {
        let logits = [0.1f32, 3.0, -1.0, 2.9];
        let greedy = GenerateParams::default();
        assert_eq!(sample(&logits, &greedy, &mut Rng::new(1)), 1);
        let hot = GenerateParams {
            temperature: 1.0,
            ..Default::default()
        };
        let a: Vec<u32> = {
            let mut r = Rng::new(7);
            (0..20).map(|_| sample(&logits, &hot, &mut r)).collect()
        };
        let b: Vec<u32> = {
            let mut r = Rng::new(7);
            (0..20).map(|_| sample(&logits, &hot, &mut r)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().all(|&t| t < 4));
        let top1 = GenerateParams {
            temperature: 1.0,
            top_k: 1,
            ..Default::default()
        };
        assert_eq!(sample(&logits, &top1, &mut Rng::new(3)), 1);
        let nucleus = GenerateParams {
            temperature: 1.0,
            top_p: 0.4,
            ..Default::default()
        };
        assert!((0..50).all(|s| sample(&logits, &nucleus, &mut Rng::new(s)) == 1));
    }
}
