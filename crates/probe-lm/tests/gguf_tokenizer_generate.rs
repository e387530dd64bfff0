//! The embedded default model as a lone GGUF file: its rebuilt tokenizer reproduces the HF
//! token ids, and greedy decoding reproduces transformers' continuations.

mod common;

use common::*;
use probe_lm::{generate, Batch, GenerateParams, HookSpec, LoadOptions, Logits, Model};

struct Prompts {
    prompts: Vec<String>,
    token_ids: Vec<Vec<u32>>,
    greedy_12: std::collections::BTreeMap<String, String>,
}

fn load_prompts() -> Option<Prompts> {
    let dir = reference_dir()?;
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("smollm2-135m-prompts.json")).unwrap(),
    )
    .unwrap();
    Some(Prompts {
        prompts: serde_json::from_value(v["prompts"].clone()).unwrap(),
        token_ids: serde_json::from_value(v["token_ids"].clone()).unwrap(),
        greedy_12: serde_json::from_value(v["greedy_12"].clone()).unwrap(),
    })
}

fn load_model() -> Option<Model> {
    load_model_as(*f32_exact_dtypes().last().unwrap())
}

fn load_model_as(dtype: probe_lm::DtypeChoice) -> Option<Model> {
    let path = smollm2_gguf()?;
    let options = LoadOptions {
        dtype,
        ..Default::default()
    };
    Some(Model::load(&path, &test_device(), options).unwrap())
}

#[test]
fn gguf_tokenizer_reproduces_reference_ids_and_round_trips() {
    let (Some(p), Some(model)) = (load_prompts(), load_model()) else {
        return;
    };
    let tok = model.tokenizer().unwrap();
    for (prompt, ids) in p.prompts.iter().zip(&p.token_ids) {
        assert_eq!(&tok.encode(prompt).unwrap(), ids, "ids of {prompt:?}");
        assert_eq!(
            &tok.decode(ids, false).unwrap(),
            prompt,
            "decoding {prompt:?}"
        );
    }
    // Control tokens from the GGUF vocabulary are matched whole.
    let im_start = tok.token_to_id("<|im_start|>").expect("ChatML token");
    assert_eq!(tok.encode("<|im_start|>user").unwrap()[0], im_start);
}

/// The reference's continuations: greedy, 12 new tokens.
fn greedy_12() -> GenerateParams {
    GenerateParams {
        max_new_tokens: 12,
        ..Default::default()
    }
}

#[test]
fn greedy_generation_matches_transformers_one_by_one_and_batched() {
    // Dequantized to f32, and with the file's blocks multiplied in place (the dot kernels
    // decode, the tiled GEMM prefills).
    for dtype in f32_exact_dtypes() {
        greedy_generation_matches_transformers(dtype);
    }
}

fn greedy_generation_matches_transformers(dtype: probe_lm::DtypeChoice) {
    let (Some(p), Some(model)) = (load_prompts(), load_model_as(dtype)) else {
        return;
    };
    let tok = model.tokenizer().unwrap();
    let params = greedy_12();
    for (prompt, ids) in p.prompts.iter().zip(&p.token_ids) {
        let g = generate(
            &model.transformer,
            tok,
            std::slice::from_ref(ids),
            &params,
            |_| {},
        )
        .unwrap();
        assert_eq!(g[0].text, p.greedy_12[prompt], "continuation of {prompt:?}");
    }
    // Left-padded batch of all three: same continuations.
    let g = generate(&model.transformer, tok, &p.token_ids, &params, |_| {}).unwrap();
    for (gen, prompt) in g.iter().zip(&p.prompts) {
        assert_eq!(
            gen.text, p.greedy_12[prompt],
            "batched continuation of {prompt:?}"
        );
    }
    assert!(g[0].text.starts_with(" Paris."));
}

#[test]
fn kv_cache_decoding_equals_full_recomputation() {
    let (Some(p), Some(model)) = (load_prompts(), load_model()) else {
        return;
    };
    let ids = &p.token_ids[2];
    let (mut logits, mut kv) = model
        .transformer
        .prefill(&Batch::left_padded(std::slice::from_ref(ids), 0).unwrap())
        .unwrap();
    let mut seq = ids.clone();
    for _ in 0..4 {
        let row = to_vec(&logits);
        let next = probe_lm::generate::argmax(&row);
        seq.push(next);
        logits = model.transformer.decode_step(&[next], &mut kv).unwrap();
        let full = model
            .transformer
            .forward(
                &Batch::left_padded(&[seq.clone()], 0).unwrap(),
                &HookSpec::new(),
                Logits::Last,
            )
            .unwrap();
        let (a, b) = (to_vec(&logits), to_vec(full.logits.as_ref().unwrap()));
        let err = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(err < 1e-3, "cached vs full logits differ by {err}");
    }
}

#[test]
fn decoding_selected_rows_of_a_prefill_equals_generating_them() {
    let (Some(p), Some(model)) = (load_prompts(), load_model()) else {
        return;
    };
    let tok = model.tokenizer().unwrap();
    let params = greedy_12();
    let batch = Batch::left_padded(&p.token_ids, tok.pad_token_id()).unwrap();
    let (logits, kv) = model.transformer.prefill(&batch).unwrap();
    // rows 2 and 0 of the prefilled batch (reordered), decoded on their own: the reference's
    // greedy continuations, as when the whole batch is generated
    let rows = [2, 0];
    let g = probe_lm::generate::generate_prefilled(
        &model.transformer,
        tok,
        probe_lm::transformer::select_rows(&logits, &rows),
        kv.select_rows(&rows).unwrap(),
        &params,
        |_| {},
    )
    .unwrap();
    for (gen, &r) in g.iter().zip(&rows) {
        let prompt = &p.prompts[r];
        assert_eq!(gen.text, p.greedy_12[prompt], "row {r}: {prompt:?}");
    }
    assert!(kv.select_rows(&[3]).is_err());
}

/// `fast_decode` (8-bit activations in decoding steps, as llama.cpp) against exact decoding:
/// the first step's logits stay close, and the well-separated continuation is the same.
#[test]
fn fast_decoding_stays_close_to_exact_decoding() {
    let (Some(p), Some(mut model)) = (load_prompts(), load_model_as(probe_lm::DtypeChoice::Native))
    else {
        return;
    };
    if test_device() != probe_lm::burn::tensor::Device::flex() {
        return;
    }
    let ids = p.token_ids[0].clone();
    let batch = Batch::left_padded(std::slice::from_ref(&ids), 0).unwrap();
    let step = |model: &Model| {
        let (logits, mut kv) = model.transformer.prefill(&batch).unwrap();
        let next = to_vec(&logits)
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
            .0 as u32;
        to_vec(&model.transformer.decode_step(&[next], &mut kv).unwrap())
    };
    let exact = step(&model);
    model.transformer.set_fast_decode(true);
    let fast = step(&model);
    let worst = exact
        .iter()
        .zip(&fast)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    let range = exact.iter().fold(0f32, |m, v| m.max(v.abs()));
    eprintln!(
        "fast vs exact decoding step: logits max abs diff {worst:.3} (|logits| ≤ {range:.1})"
    );
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        assert!(worst > 0.0, "fast decoding did not take the 8-bit kernels");
    }
    assert!(worst < 0.02 * range, "logits moved by {worst}");
    let tok = model.tokenizer().unwrap();
    let g = generate(&model.transformer, tok, &[ids], &greedy_12(), |_| {}).unwrap();
    assert!(g[0].text.starts_with(" Paris."), "{:?}", g[0].text);
}
