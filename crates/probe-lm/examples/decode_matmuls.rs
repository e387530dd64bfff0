//! Time of a decoding step's matrix products alone (every projection of every block and the
//! unembedding, one activation row each), to separate them from the rest of a step.
use probe_lm::{LoadOptions, Model};
use std::time::Instant;
fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or("models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    let model = Model::load(
        path.as_ref(),
        &probe_lm::burn::tensor::Device::flex(),
        LoadOptions::default(),
    )
    .unwrap();
    let tf = &model.transformer;
    let mut mats = Vec::new();
    for b in &tf.layers {
        for l in [
            &b.self_attn.q_proj,
            &b.self_attn.k_proj,
            &b.self_attn.v_proj,
            &b.self_attn.o_proj,
            &b.mlp.gate_proj,
            &b.mlp.up_proj,
            &b.mlp.down_proj,
        ] {
            mats.push(l.blocks.clone().unwrap());
        }
    }
    mats.push(tf.embed_tokens.blocks.clone().unwrap());
    let xs: Vec<Vec<f32>> = mats
        .iter()
        .map(|m| (0..m.shape().1).map(|i| (i as f32 * 0.37).sin()).collect())
        .collect();
    let steps = 200;
    for _ in 0..20 {
        for (m, x) in mats.iter().zip(&xs) {
            std::hint::black_box(m.matmul(x, 1));
        }
    }
    let t = Instant::now();
    for _ in 0..steps {
        for (m, x) in mats.iter().zip(&xs) {
            std::hint::black_box(m.matmul(x, 1));
        }
    }
    let per = t.elapsed().as_secs_f64() / steps as f64;
    println!(
        "{} products per step: {:.2} ms per step = {:.1} steps/s",
        mats.len(),
        per * 1e3,
        1.0 / per
    );
}
