//! `config.json` of an HF checkpoint: parsed and turned into a model config next to a fixed
//! tiny valid `model.safetensors` (what `probe inspect <dir>` reads).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static WEIGHTS: std::sync::Once = std::sync::Once::new();
    WEIGHTS.call_once(|| {
        // one small tensor: the config decides everything else
        let header =
            br#"{"model.embed_tokens.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0u8; 16]);
        probe_fuzz::scratch_file("model.safetensors", &bytes);
    });
    let path = probe_fuzz::scratch_file("config.json", data);
    let _ = probe_lm::config::HfConfig::from_file(&path);
    let _ = probe_lm::ModelInfo::read(probe_fuzz::scratch());
});
