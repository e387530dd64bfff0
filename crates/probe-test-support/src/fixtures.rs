//! Checkpoints and GGUF files written from scratch: a tiny Llama (HF layout) and a GGUF writer,
//! so the error-path tests need nothing from outside the repository.

use std::path::Path;

/// Deterministic pseudo-random weights.
fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
        })
        .collect()
}

pub const TINY_HIDDEN: usize = 32;
pub const TINY_FF: usize = 48;
pub const TINY_LAYERS: usize = 2;
pub const TINY_VOCAB: usize = 64;

pub fn tiny_config() -> serde_json::Value {
    serde_json::json!({
        "model_type": "llama",
        "vocab_size": TINY_VOCAB,
        "hidden_size": TINY_HIDDEN,
        "intermediate_size": TINY_FF,
        "num_hidden_layers": TINY_LAYERS,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": false,
        "hidden_act": "silu"
    })
}

/// The HF tensors of the tiny Llama: (name, shape).
pub fn tiny_tensor_shapes() -> Vec<(String, Vec<usize>)> {
    let (d, f, v) = (TINY_HIDDEN, TINY_FF, TINY_VOCAB);
    let kv = 2 * (d / 4);
    let mut out = vec![
        ("model.embed_tokens.weight".to_string(), vec![v, d]),
        ("model.norm.weight".to_string(), vec![d]),
        ("lm_head.weight".to_string(), vec![v, d]),
    ];
    for l in 0..TINY_LAYERS {
        let p = format!("model.layers.{l}");
        for (n, s) in [
            ("input_layernorm.weight", vec![d]),
            ("post_attention_layernorm.weight", vec![d]),
            ("self_attn.q_proj.weight", vec![d, d]),
            ("self_attn.k_proj.weight", vec![kv, d]),
            ("self_attn.v_proj.weight", vec![kv, d]),
            ("self_attn.o_proj.weight", vec![d, d]),
            ("mlp.gate_proj.weight", vec![f, d]),
            ("mlp.up_proj.weight", vec![f, d]),
            ("mlp.down_proj.weight", vec![d, f]),
        ] {
            out.push((format!("{p}.{n}"), s));
        }
    }
    out
}

/// Writes `config.json` + `model.safetensors` of a tiny random Llama; `skip` leaves one
/// tensor out.
pub fn write_tiny_llama(dir: &Path, config: &serde_json::Value, skip: Option<&str>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(config).unwrap(),
    )
    .unwrap();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = tiny_tensor_shapes()
        .into_iter()
        .enumerate()
        .filter(|(_, (n, _))| Some(n.as_str()) != skip)
        .map(|(i, (n, s))| {
            let data = weights(s.iter().product(), i as u64);
            let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
            (n, s, bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

/// A minimal GGUF v3 writer for tests.
#[derive(Default)]
pub struct GgufWriter {
    meta: Vec<u8>,
    n_meta: u64,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

impl GgufWriter {
    pub fn new() -> Self {
        GgufWriter::default()
    }

    fn key(&mut self, key: &str, ty: u32) {
        self.meta.extend((key.len() as u64).to_le_bytes());
        self.meta.extend(key.as_bytes());
        self.meta.extend(ty.to_le_bytes());
        self.n_meta += 1;
    }

    pub fn string(mut self, key: &str, value: &str) -> Self {
        self.key(key, 8);
        self.meta.extend((value.len() as u64).to_le_bytes());
        self.meta.extend(value.as_bytes());
        self
    }

    pub fn u32(mut self, key: &str, value: u32) -> Self {
        self.key(key, 4);
        self.meta.extend(value.to_le_bytes());
        self
    }

    pub fn f32(mut self, key: &str, value: f32) -> Self {
        self.key(key, 6);
        self.meta.extend(value.to_le_bytes());
        self
    }

    /// An array of strings (GGUF type 9 of type 8).
    pub fn strings(mut self, key: &str, values: &[&str]) -> Self {
        self.key(key, 9);
        self.meta.extend(8u32.to_le_bytes());
        self.meta.extend((values.len() as u64).to_le_bytes());
        for v in values {
            self.meta.extend((v.len() as u64).to_le_bytes());
            self.meta.extend(v.as_bytes());
        }
        self
    }

    /// `dims` in ggml order (fastest first); `data` raw bytes of `ggml_type`.
    pub fn tensor(mut self, name: &str, dims: Vec<u64>, ggml_type: u32, data: Vec<u8>) -> Self {
        self.tensors.push((name.to_string(), dims, ggml_type, data));
        self
    }

    pub fn write(self, path: &Path) {
        let mut out = Vec::new();
        out.extend(b"GGUF");
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend(self.n_meta.to_le_bytes());
        out.extend(&self.meta);
        let mut offset = 0u64;
        for (name, dims, ty, data) in &self.tensors {
            out.extend((name.len() as u64).to_le_bytes());
            out.extend(name.as_bytes());
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(ty.to_le_bytes());
            out.extend(offset.to_le_bytes());
            offset += (data.len() as u64).div_ceil(32) * 32;
        }
        while out.len() % 32 != 0 {
            out.push(0);
        }
        for (_, _, _, data) in &self.tensors {
            out.extend(data);
            while out.len() % 32 != 0 {
                out.push(0);
            }
        }
        std::fs::write(path, out).unwrap();
    }
}

/// GGUF metadata of a tiny llama (no tensors).
pub fn tiny_gguf_llama() -> GgufWriter {
    GgufWriter::new()
        .string("general.architecture", "llama")
        .u32("llama.block_count", 1)
        .u32("llama.embedding_length", 32)
        .u32("llama.feed_forward_length", 48)
        .u32("llama.attention.head_count", 4)
        .u32("llama.attention.head_count_kv", 2)
        .f32("llama.attention.layer_norm_rms_epsilon", 1e-6)
        .u32("llama.vocab_size", 64)
}
