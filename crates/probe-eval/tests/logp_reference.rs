//! log-p extraction against transformers: the softmax over a fixed set of option-letter
//! tokens, computed from our logits, equals the one computed from the stored reference logits.

use probe_test_support as common;

use common::*;
use probe_eval::logp::OptionTokens;
use probe_lm::{Batch, LoadOptions, Model};

#[test]
fn option_softmax_from_our_logits_equals_the_reference() {
    let (Some(dir), Some(gguf)) = (reference_dir(), smollm2_gguf()) else {
        return;
    };
    let model = Model::load(&gguf, &test_device(), LoadOptions::default()).unwrap();
    let tok = model.tokenizer().unwrap();
    let tokens = OptionTokens::new(tok, &['A', 'B', 'C', 'D', 'E']).unwrap();
    // SmolLM2's byte-level BPE has both "A" and " A" as single tokens
    assert!(
        tokens.ids.iter().all(|forms| forms.len() == 2),
        "{tokens:?}"
    );
    let mut worst: f64 = 0.0;
    for i in 0..3 {
        let r = read_reference(&dir.join(format!("smollm2-135m-prompt{i}.safetensors")));
        let ids: Vec<u32> = r["input_ids"].i64.iter().map(|&x| x as u32).collect();
        let batch = Batch::left_padded(&[ids], tok.pad_token_id()).unwrap();
        let (logits, _) = model.transformer.prefill(&batch).unwrap();
        let (ours, _) = tokens.distribution(&to_vec(&logits)).unwrap();
        let (reference, _) = tokens.distribution(&r["logits"].f32).unwrap();
        for (a, b) in ours.iter().zip(&reference) {
            worst = worst.max((a - b).abs());
        }
        assert!(
            ours.iter()
                .zip(&reference)
                .all(|(a, b)| (a - b).abs() < 1e-4),
            "prompt {i}: ours {ours:?} vs reference {reference:?}"
        );
    }
    eprintln!("max |Δp| over 3 prompts × 5 options: {worst:.2e}");
}
