//! Next-token log-probabilities of the option letters at the answer position.
//!
//! Each option's probability is the softmax mass of its letter token in both forms the
//! tokenizer may produce at that position, `"A"` and `" A"`, renormalized over the options.
//! A letter with no single-token form gets the floor rule of the distributional-alignment
//! benchmark: the smallest probability among the options that have one.

use probe_lm::tokenizer::Tokenizer;

use crate::{EvalError, Result};

/// The token ids that spell each option letter as one token.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionTokens {
    pub letters: Vec<char>,
    /// Per option: the ids of `"A"` and `" A"` that are single tokens.
    pub ids: Vec<Vec<u32>>,
}

impl OptionTokens {
    pub fn new(tokenizer: &Tokenizer, letters: &[char]) -> Result<Self> {
        let mut ids = Vec::with_capacity(letters.len());
        for l in letters {
            let mut forms = Vec::new();
            for text in [l.to_string(), format!(" {l}")] {
                let enc = tokenizer
                    .encode_continuation(&text)
                    .map_err(|e| EvalError::Model(e.to_string()))?;
                if let [id] = enc.as_slice() {
                    if !forms.contains(id) {
                        forms.push(*id);
                    }
                }
            }
            ids.push(forms);
        }
        if ids.iter().all(Vec::is_empty) {
            return Err(EvalError::Model(
                "no option letter is a single token: log-p needs single-token letters".into(),
            ));
        }
        Ok(OptionTokens {
            letters: letters.to_vec(),
            ids,
        })
    }

    /// The options' distribution from one position's logits (f64 log-sum-exp over the whole
    /// vocabulary), and the total probability the letters hold before renormalizing.
    pub fn distribution(&self, logits: &[f32]) -> Result<(Vec<f64>, f64)> {
        // the finite-output guard: one NaN logit makes every share NaN
        if let Some(i) = logits.iter().position(|x| !x.is_finite()) {
            return Err(EvalError::Model(format!(
                "the logit of token {i} is {}: not finite (is the checkpoint or the adapter broken?)",
                logits[i]
            )));
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let z: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
        let prob = |id: u32| -> Result<f64> {
            let x = *logits.get(id as usize).ok_or_else(|| {
                EvalError::Model(format!("option token {id} is outside the vocabulary"))
            })?;
            Ok((x as f64 - max).exp() / z)
        };
        let mut p: Vec<Option<f64>> = Vec::with_capacity(self.ids.len());
        for forms in &self.ids {
            if forms.is_empty() {
                p.push(None);
            } else {
                p.push(Some(forms.iter().map(|&id| prob(id)).sum::<Result<f64>>()?));
            }
        }
        let floor = p.iter().flatten().copied().fold(f64::INFINITY, f64::min);
        let p: Vec<f64> = p.into_iter().map(|x| x.unwrap_or(floor)).collect();
        let mass: f64 = p.iter().sum();
        if mass <= 0.0 || !mass.is_finite() {
            return Err(EvalError::Model(
                "the option letters have no probability".into(),
            ));
        }
        Ok((p.iter().map(|x| x / mass).collect(), mass))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_sum_and_floor_fills_missing_letters() {
        let tokens = OptionTokens {
            letters: vec!['A', 'B', 'C'],
            ids: vec![vec![0, 1], vec![2], vec![]],
        };
        // softmax over [ln 1, ln 2, ln 3, ln 4] = [.1, .2, .3, .4]
        let logits = [0.0f32, 2f32.ln(), 3f32.ln(), 4f32.ln()];
        let (p, mass) = tokens.distribution(&logits).unwrap();
        // A = .1 + .2, B = .3, C = floor = .3 → renormalized over .9
        let want = [0.3 / 0.9, 0.3 / 0.9, 0.3 / 0.9];
        assert!(
            p.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{p:?}"
        );
        assert!((mass - 0.9).abs() < 1e-6);
        assert!(tokens.distribution(&[f32::NAN; 4]).is_err());
        assert!(tokens.distribution(&[0.0; 2]).is_err());
    }
}
