//! Bad input gets one clear error line and a non-zero exit, never a panic: one test per case.

mod support;

use support::*;

fn run_ids(model: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = probe();
    cmd.arg("run-with-cache")
        .arg(model)
        .args(["--ids", "1,2,3"]);
    if !extra.contains(&"--hooks") {
        cmd.args(["--hooks", "blocks.0.hook_resid_post"]);
    }
    cmd.arg("--out").arg(out.path().join("x.safetensors"));
    cmd.args(extra);
    cmd.output().unwrap()
}

#[test]
fn garbage_safetensors_header() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    // A header length far beyond the file, then junk.
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend(b"{not json at all");
    std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
    assert_clean_failure(&run_ids(dir.path(), &[]), "malformed safetensors");
}

#[test]
fn truncated_safetensors_file() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_clean_failure(&run_ids(dir.path(), &[]), "malformed safetensors");
}

#[test]
fn gguf_with_wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, b"GGML\x03\x00\x00\x00 this is not a gguf file").unwrap();
    assert_clean_failure(&run_ids(&path, &[]), "wrong magic");
    let out = probe().arg("inspect").arg(&path).output().unwrap();
    assert_clean_failure(&out, "not a GGUF file");
}

#[test]
fn truncated_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    tiny_gguf_llama().write(&path);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() * 6 / 10]).unwrap();
    assert_clean_failure(
        &probe().arg("inspect").arg(&path).output().unwrap(),
        "truncated",
    );
}

#[test]
fn gguf_with_unsupported_quant_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    // Q2_K (ggml type 10): 256 elements per 84-byte block.
    tiny_gguf_llama()
        .tensor("token_embd.weight", vec![256, 1], 10, vec![0u8; 84])
        .write(&path);
    let out = probe().arg("inspect").arg(&path).output().unwrap();
    assert_clean_failure(&out, "unsupported tensor type Q2_K");
}

#[test]
fn missing_tensor() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(
        dir.path(),
        &tiny_config(),
        Some("model.layers.1.mlp.up_proj.weight"),
    );
    assert_clean_failure(
        &run_ids(dir.path(), &[]),
        "missing tensor `model.layers.1.mlp.up_proj.weight`",
    );
}

#[test]
fn missing_tensor_in_gguf_names_both_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let embed: Vec<u8> = vec![0u8; 64 * 32 * 4];
    tiny_gguf_llama()
        .tensor("token_embd.weight", vec![32, 64], 0, embed)
        .write(&path);
    assert_clean_failure(&run_ids(&path, &[]), "blk.0.attn_norm.weight");
}

#[test]
fn shape_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config();
    config["intermediate_size"] = serde_json::json!(40);
    write_tiny_llama(dir.path(), &config, None);
    let out = run_ids(dir.path(), &[]);
    assert_clean_failure(&out, "has shape [48, 32], expected [40, 32]");
}

#[test]
fn unknown_model_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config();
    config["model_type"] = serde_json::json!("gpt_neox");
    write_tiny_llama(dir.path(), &config, None);
    let out = run_ids(dir.path(), &[]);
    assert_clean_failure(
        &out,
        "unknown model_type `gpt_neox`: supported architectures are llama, qwen2, mistral",
    );
}

#[test]
fn missing_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    let out = probe()
        .arg("generate")
        .arg(dir.path())
        .arg("Hallo")
        .output()
        .unwrap();
    assert_clean_failure(&out, "has no tokenizer");
}

#[test]
fn out_of_range_layer_fraction() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    let out = run_ids(
        dir.path(),
        &["--hooks", "blocks.{0.5L..1.5L}.hook_resid_post"],
    );
    assert_clean_failure(&out, "layer fraction 1.5 is outside (0, 1]");
}

#[test]
fn out_of_range_layer_index_and_token_id() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    let out = run_ids(dir.path(), &["--hooks", "blocks.7.hook_resid_post"]);
    assert_clean_failure(&out, "layer 7 is out of range");
    let tmp = tempfile::tempdir().unwrap();
    let out = probe()
        .arg("run-with-cache")
        .arg(dir.path())
        .args(["--ids", "1,999", "--out"])
        .arg(tmp.path().join("x.safetensors"))
        .output()
        .unwrap();
    assert_clean_failure(&out, "token id 999 is outside the vocabulary");
}

#[test]
fn missing_model_path() {
    let out = probe()
        .args(["inspect", "/nonexistent/model.gguf"])
        .output()
        .unwrap();
    assert_clean_failure(&out, "no such file");
}

#[test]
fn cuda_without_gpu_build() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    if cfg!(feature = "tch") {
        return;
    }
    let out = run_ids(dir.path(), &["--device", "cuda"]);
    assert_clean_failure(&out, "built without GPU support");
}

#[test]
fn data_fetch_rejects_unknown_datasets_and_odd_names_before_any_download() {
    let out = probe()
        .args(["data", "fetch", "gles", "2021", "deutschland"])
        .output()
        .unwrap();
    assert_clean_failure(&out, "unknown dataset `gles`");
    let out = probe()
        .args(["data", "fetch", "wahl-o-mat", "2021", "../etc"])
        .output()
        .unwrap();
    assert_clean_failure(&out, "must be a plain name");
}
