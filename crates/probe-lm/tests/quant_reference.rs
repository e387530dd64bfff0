//! Dequantizers against gguf-py, llama.cpp's own Python package (fixture written by
//! `scripts/make_quant_fixtures.py` from random blocks).

use probe_lm::weights::quant::{dequantize, GgmlType};

#[test]
fn every_block_format_matches_gguf_py() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/quant_blocks.safetensors"
    );
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let formats = [
        ("Q4_0", GgmlType::Q4_0),
        ("Q4_1", GgmlType::Q4_1),
        ("Q5_0", GgmlType::Q5_0),
        ("Q5_1", GgmlType::Q5_1),
        ("Q8_0", GgmlType::Q8_0),
        ("Q4_K", GgmlType::Q4K),
        ("Q5_K", GgmlType::Q5K),
        ("Q6_K", GgmlType::Q6K),
    ];
    for (name, ty) in formats {
        let blocks = st.tensor(&format!("{name}.blocks")).unwrap();
        let expected: Vec<f32> = st
            .tensor(&format!("{name}.values"))
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let mut ours = vec![0f32; expected.len()];
        dequantize(ty, blocks.data(), &mut ours);
        let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in ours.iter().zip(&expected).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * scale.max(1.0),
                "{name}[{i}]: ours {a} vs gguf-py {b}"
            );
        }
    }
}
