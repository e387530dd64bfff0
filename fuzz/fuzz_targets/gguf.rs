//! The GGUF reader: header, metadata, tensor directory, the model config built from metadata
//! (`ModelInfo::read`, what `probe inspect` runs), and dequantizing every small tensor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use probe_lm::weights::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    let path = probe_fuzz::scratch_file("model.gguf", data);
    let _ = probe_lm::ModelInfo::read(&path);
    if let Ok(file) = GgufFile::open(&path) {
        let names: Vec<String> = file.tensors().iter().map(|t| t.name.clone()).collect();
        for name in names {
            // bounded: the reader must have refused anything the file cannot hold
            let _ = file.dequantize(&name);
        }
    }
});
