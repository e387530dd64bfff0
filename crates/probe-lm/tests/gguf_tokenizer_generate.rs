//! The embedded default model as a lone GGUF file: its rebuilt tokenizer reproduces the HF
//! token ids, and greedy decoding reproduces transformers' continuations.

use probe_test_support as common;

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

/// `fast_decode` (8-bit activations in decoding steps, as llama.cpp) against exact decoding on
/// every reference prompt: the first step picks the same token, its next-token distribution
/// stays close, and the well-separated continuation is the same. That the kernels compute
/// exactly the rounded activations' products is the unit test
/// `eight_bit_decoding_kernels_stay_within_their_rounding`; here the rounding's effect on the
/// model is bounded. The rounding mostly shifts every logit alike (SmolLM2: +0.34 on prompt 0),
/// which softmax ignores, so the bars are on log-probabilities.
#[test]
fn fast_decoding_stays_close_to_exact_decoding() {
    let (Some(p), Some(mut model)) = (load_prompts(), load_model_as(probe_lm::DtypeChoice::Native))
    else {
        return;
    };
    if test_device() != probe_lm::burn::tensor::Device::flex() {
        return;
    }
    let argmax = probe_lm::generate::argmax;
    let log_softmax = |v: Vec<f32>| {
        let max = v.iter().fold(f32::MIN, |m, &x| m.max(x)) as f64;
        let lse = max + v.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
        v.into_iter().map(|x| x as f64 - lse).collect::<Vec<f64>>()
    };
    let step = |model: &Model, ids: &[u32]| {
        let batch = Batch::left_padded(&[ids.to_vec()], 0).unwrap();
        let (logits, mut kv) = model.transformer.prefill(&batch).unwrap();
        let next = argmax(&to_vec(&logits));
        to_vec(&model.transformer.decode_step(&[next], &mut kv).unwrap())
    };
    for ids in &p.token_ids {
        model.transformer.set_fast_decode(false);
        let exact = step(&model, ids);
        model.transformer.set_fast_decode(true);
        let fast = step(&model, ids);
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            assert_ne!(exact, fast, "fast decoding did not take the 8-bit kernels");
        }
        assert_eq!(
            argmax(&fast),
            argmax(&exact),
            "fast decoding changed the next token"
        );
        let (exact, fast) = (log_softmax(exact), log_softmax(fast));
        let kl: f64 = exact
            .iter()
            .zip(&fast)
            .map(|(e, f)| e.exp() * (e - f))
            .sum();
        // Over the tokens with probability above 1e-4 (the ones sampling can reach).
        let worst = exact
            .iter()
            .zip(&fast)
            .filter(|(e, _)| **e > 1e-4f64.ln())
            .fold(0f64, |m, (e, f)| m.max((e - f).abs()));
        eprintln!(
            "fast vs exact decoding step ({} prompt tokens): KL {kl:.2e} nats, \
             log-probabilities of tokens above 1e-4 within {worst:.3}",
            ids.len()
        );
        assert!(kl < 1e-2, "next-token KL {kl}");
        assert!(worst < 0.75, "a log-probability moved by {worst}");
    }
    let ids = p.token_ids[0].clone();
    let tok = model.tokenizer().unwrap();
    let g = generate(&model.transformer, tok, &[ids], &greedy_12(), |_| {}).unwrap();
    assert!(g[0].text.starts_with(" Paris."), "{:?}", g[0].text);
}
