//! Numerics against HuggingFace transformers (`../shared/reference/`, see its README).
//! Bars: logits max abs error ≤ 1e-3; hidden states ‖ours − ref‖∞ / ‖ref‖∞ ≤ 1e-4, over the
//! real (unpadded) positions.

use probe_test_support as common;

use std::path::Path;

use common::*;
use probe_lm::layers::attention::SdpaKernel;
use probe_lm::{LoadOptions, Model};

const LOGITS_MAX_ABS: f32 = 1e-3;
const HIDDEN_MAX_REL: f32 = 1e-4;

/// Runs the model on the reference batch and checks every stored tensor.
fn check_against(model: &Model, reference: &Path) {
    let e = compare_with_reference(model, reference, HIDDEN_MAX_REL);
    assert!(
        e.logits_abs <= LOGITS_MAX_ABS,
        "{}: logits max abs err {:e}",
        reference.display(),
        e.logits_abs
    );
    eprintln!(
        "{}: {} hook tensors (worst rel err {:.2e}) + logits (max abs err {:.2e}) within bounds",
        reference.display(),
        e.checked,
        e.worst_rel,
        e.logits_abs
    );
}

fn check_tiny(name: &str) {
    let Some(dir) = reference_dir() else { return };
    let dir = dir.join(name);
    let model = Model::load(&dir, &test_device(), LoadOptions::default()).unwrap();
    check_against(&model, &dir.join("reference.safetensors"));
}

#[test]
fn composed_attention_kernel_matches_transformers_too() {
    // The portable kernel (used on libtorch devices and for autodiff) on the CPU backend.
    let Some(dir) = reference_dir() else { return };
    for name in ["tiny-llama", "tiny-qwen2", "tiny-mistral"] {
        let dir = dir.join(name);
        let mut model = Model::load(&dir, &test_device(), LoadOptions::default()).unwrap();
        model.transformer.set_sdpa_kernel(SdpaKernel::Composed);
        check_against(&model, &dir.join("reference.safetensors"));
    }
}

#[test]
fn tiny_llama_matches_transformers() {
    check_tiny("tiny-llama");
}

#[test]
fn tiny_qwen2_matches_transformers() {
    check_tiny("tiny-qwen2");
}

#[test]
fn tiny_mistral_matches_transformers() {
    check_tiny("tiny-mistral");
}

#[test]
fn smollm2_gguf_matches_transformers_single_prompts_and_padded_batch() {
    let (Some(dir), Some(gguf)) = (reference_dir(), smollm2_gguf()) else {
        return;
    };
    // `--dtype f32` (dequantized on load) and `native` (the file's blocks, multiplied in
    // place) both meet the f32 bars.
    for dtype in f32_exact_dtypes() {
        let options = LoadOptions {
            dtype,
            ..Default::default()
        };
        let model = Model::load(&gguf, &test_device(), options).unwrap();
        for file in [
            "smollm2-135m-prompt0.safetensors",
            "smollm2-135m-prompt1.safetensors",
            "smollm2-135m-prompt2.safetensors",
            "smollm2-135m-leftpad-batch.safetensors",
        ] {
            check_against(&model, &dir.join(file));
        }
    }
}
