//! The safetensors checkpoint reader: header, tensor directory, the model built from a fixed
//! tiny config over fuzzed weights (`ModelInfo::read`), and every tensor read as f32.
#![no_main]

use libfuzzer_sys::fuzz_target;
use probe_lm::weights::safetensors::SafetensorsCheckpoint;

const CONFIG: &str = r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama",
 "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
 "num_key_value_heads": 1, "vocab_size": 16, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
 "max_position_embeddings": 64, "hidden_act": "silu", "tie_word_embeddings": true}"#;

fuzz_target!(|data: &[u8]| {
    probe_fuzz::scratch_file("config.json", CONFIG.as_bytes());
    let path = probe_fuzz::scratch_file("model.safetensors", data);
    let _ = probe_lm::ModelInfo::read(probe_fuzz::scratch());
    if let Ok(ckpt) = SafetensorsCheckpoint::open(&path) {
        let names: Vec<String> = ckpt.names().map(str::to_string).collect();
        for name in names {
            let _ = ckpt.read_f32(&name);
        }
    }
});
