//! A PEFT LoRA adapter: `adapter_config.json` and `adapter_model.safetensors` (the two parts of
//! one input, joined by `\n@@\n`) attached to a fixed tiny Llama (`load_adapter`), then one
//! forward pass; merged into the weights as `--merge-adapter` does.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use probe_lm::{Batch, HookSpec, Logits, Model};

const CONFIG: &str = r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama",
 "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
 "num_key_value_heads": 1, "vocab_size": 16, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
 "max_position_embeddings": 64, "hidden_act": "silu", "tie_word_embeddings": true}"#;
/// The tiny checkpoint of the regression corpus's valid case (one block, width 8).
const WEIGHTS: &[u8] = include_bytes!("../../tests/corpus/valid-safetensors/model.safetensors");

thread_local! {
    static MODEL: RefCell<Option<Model>> = const { RefCell::new(None) };
}

fn load() -> Model {
    let dir = probe_fuzz::scratch().join("model");
    std::fs::create_dir_all(&dir).expect("model directory");
    std::fs::write(dir.join("config.json"), CONFIG).expect("config");
    std::fs::write(dir.join("model.safetensors"), WEIGHTS).expect("weights");
    let options = probe_lm::LoadOptions {
        tokenizer: None,
        progress: None,
        dtype: probe_lm::DtypeChoice::F32,
        compute: None,
        blocks: None,
    };
    Model::load(&dir, &probe_lm::burn::tensor::Device::flex(), options).expect("tiny model")
}

fuzz_target!(|data: &[u8]| {
    let parts = probe_fuzz::parts(data, 2);
    let dir = probe_fuzz::scratch().join("adapter");
    std::fs::create_dir_all(&dir).expect("adapter directory");
    std::fs::write(dir.join("adapter_config.json"), parts[0]).expect("config");
    std::fs::write(dir.join("adapter_model.safetensors"), parts[1]).expect("tensors");
    MODEL.with(|cell| {
        let mut slot = cell.borrow_mut();
        // a fresh model per input: an adapter attached by the last input must not linger
        *slot = Some(load());
        let model = slot.as_mut().expect("loaded");
        if model.transformer.load_adapter(&dir).is_err() {
            return;
        }
        if let Ok(batch) = Batch::left_padded(&[vec![1, 2, 3]], 0) {
            let _ = model.transformer.forward(&batch, &HookSpec::new(), Logits::Last);
        }
        let _ = model.transformer.merge_adapters();
    });
});
