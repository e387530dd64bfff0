//! The loader's host memory: a bf16 checkpoint loads tensor by tensor, in its own type, without
//! an f32 copy and without the file's pages becoming resident. Loaded here onto the CPU with
//! bf16 compute (the tensors a GPU load uploads stay in host memory instead), so after the load
//! the process holds the weights once, and while loading at most a tensor or two more.
//!
//! One test in its own binary: peak RSS is a per-process figure.

use std::collections::HashMap;

use probe_lm::burn::tensor::{DType, Device};
use probe_lm::{LoadOptions, Model};

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap()
}

/// A Llama-shaped bf16 checkpoint with pseudo-random finite weights; returns (dir, bytes of
/// weights, bytes of the largest tensor).
fn write_checkpoint(dir: &std::path::Path) -> (u64, u64) {
    let (hidden, inter, layers, vocab) = (1024usize, 2816usize, 4usize, 32000usize);
    let config = serde_json::json!({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
        "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": vocab,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
        "tie_word_embeddings": false, "torch_dtype": "bfloat16"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![vocab, hidden]),
        ("lm_head.weight".into(), vec![vocab, hidden]),
        ("model.norm.weight".into(), vec![hidden]),
    ];
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        for (n, s) in [
            ("self_attn.q_proj", vec![hidden, hidden]),
            ("self_attn.k_proj", vec![hidden, hidden]),
            ("self_attn.v_proj", vec![hidden, hidden]),
            ("self_attn.o_proj", vec![hidden, hidden]),
            ("mlp.gate_proj", vec![inter, hidden]),
            ("mlp.up_proj", vec![inter, hidden]),
            ("mlp.down_proj", vec![hidden, inter]),
            ("input_layernorm", vec![hidden]),
            ("post_attention_layernorm", vec![hidden]),
        ] {
            shapes.push((format!("{p}.{n}.weight"), s));
        }
    }
    let mut data: HashMap<String, (Vec<usize>, Vec<u8>)> = HashMap::new();
    let (mut total, mut largest) = (0u64, 0u64);
    for (i, (name, shape)) in shapes.into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let bytes: Vec<u8> = (0..n)
            .flat_map(|j| {
                let v = (((i * 7919 + j) as f32) * 0.618_034).fract() * 0.02 - 0.01;
                half::bf16::from_f32(v).to_le_bytes()
            })
            .collect();
        total += bytes.len() as u64;
        largest = largest.max(bytes.len() as u64);
        data.insert(name, (shape, bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(k, (shape, bytes))| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(
                    safetensors::Dtype::BF16,
                    shape.clone(),
                    bytes,
                )
                .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    (total, largest)
}

#[test]
fn a_bf16_checkpoint_loads_without_f32_copies_or_resident_file_pages() {
    if !std::path::Path::new("/proc/self/clear_refs").exists() {
        eprintln!("notice: no /proc/self/clear_refs; skipping the host memory test");
        return;
    }
    let dir = std::env::temp_dir().join(format!("probe-host-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (weights, largest) = write_checkpoint(&dir);
    // Start from a clean slate: writing the file must not count, and "5" resets VmHWM.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kb("VmRSS:") * 1024;
    let model = Model::load(
        &dir,
        &Device::flex(),
        LoadOptions {
            compute: Some(DType::BF16),
            ..Default::default()
        },
    )
    .unwrap();
    let after = status_kb("VmRSS:") * 1024;
    let peak = status_kb("VmHWM:") * 1024;
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(model.transformer.precision().compute, DType::BF16);
    let held = after.saturating_sub(before);
    let transient = peak.saturating_sub(after);
    eprintln!(
        "weights {:.0} MB (largest tensor {:.0} MB): held {:.0} MB after the load, peak {:.0} MB above that",
        weights as f64 / 1e6,
        largest as f64 / 1e6,
        held as f64 / 1e6,
        transient as f64 / 1e6
    );
    // Held once in bf16 (an f32 copy would be twice that; resident file pages would add it again).
    assert!(
        held < weights + weights / 5,
        "held {held} bytes for {weights} bytes of bf16 weights"
    );
    // While loading: at most the tensor being read and its device copy beyond what is held.
    assert!(
        transient < 2 * largest + 32 * 1024 * 1024,
        "{transient} bytes above the held weights while loading (largest tensor {largest})"
    );
}
