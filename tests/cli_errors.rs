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
    // Hooks up to block 1 read block 1's weights (a hooks-only load reads no later block).
    assert_clean_failure(
        &run_ids(dir.path(), &["--hooks", "blocks.1.hook_resid_post"]),
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

/// A minimal `probe scale` output (every field psi.json's schema requires): ψ over two
/// parties for everyone.
const MINIMAL_PSI: &str = r#"{"format_version": 1, "parties": ["SPD", "FDP"], "negative": "clip",
    "negative_factors": {"count": 0, "of": 20}, "undefined_rows": 0,
    "all": {"psi": {"SPD": 0.7, "FDP": 0.3}, "rows": 10, "weight": 10.0},
    "by_group": {}, "by_variant": {},
    "run": {"vectors": "vectors", "select": "joint", "k": 10, "persona_spec": "personas.toml",
            "personas": 10, "variants": ["de-stimme"]}}"#;

fn scale_run(dir: &std::path::Path) {
    let scale = dir.join("scale-x");
    std::fs::create_dir_all(&scale).unwrap();
    std::fs::write(scale.join("psi.json"), MINIMAL_PSI).unwrap();
}

#[test]
fn report_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let report = |args: &[&std::ffi::OsStr]| probe().arg("report").args(args).output().unwrap();
    let missing = tmp.path().join("no-such-run");
    assert_clean_failure(&report(&[missing.as_os_str()]), "not a directory");
    assert_clean_failure(&report(&[tmp.path().as_os_str()]), "nothing to report");
    scale_run(tmp.path());
    let run = tmp.path().as_os_str();
    assert_clean_failure(
        &report(&[run, "--election".as_ref(), "btw1999".as_ref()]),
        "unknown election `btw1999` (built in: btw2021)",
    );
    let survey = tmp.path().join("survey.csv");
    std::fs::write(&survey, "id,age,weight,party\n1,30,1.0,SPD\n2,40,x,FDP\n").unwrap();
    assert_clean_failure(
        &report(&[run, "--survey".as_ref(), survey.as_os_str()]),
        "no answer column `vote`",
    );
    assert_clean_failure(
        &report(&[
            run,
            "--survey".as_ref(),
            survey.as_os_str(),
            "--answer".as_ref(),
            "party".as_ref(),
            "--survey-weight".as_ref(),
            "weight".as_ref(),
        ]),
        "survey.csv:3: weight `x` is not a number",
    );
    assert_clean_failure(
        &report(&[
            run,
            "--survey".as_ref(),
            survey.as_os_str(),
            "--election".as_ref(),
            "btw2021".as_ref(),
        ]),
        "give one survey reference",
    );
    std::fs::write(
        tmp.path().join("scale-x/psi.json"),
        MINIMAL_PSI.replace(r#", "FDP": 0.3}"#, "}"),
    )
    .unwrap();
    assert_clean_failure(&report(&[run]), "all.psi.FDP is missing");
    std::fs::write(
        tmp.path().join("scale-x/psi.json"),
        MINIMAL_PSI.replace(r#""undefined_rows""#, r#""undefined""#),
    )
    .unwrap();
    assert_clean_failure(
        &report(&[run]),
        "scale-x/psi.json: .: missing field `undefined_rows`",
    );
}

#[test]
fn report_on_a_scale_output_against_the_built_in_election() {
    let tmp = tempfile::tempdir().unwrap();
    scale_run(tmp.path());
    let out = probe().arg("report").arg(tmp.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("report/report.json")).unwrap(),
    )
    .unwrap();
    // BTW 2021 over SPD and FDP: 25.7 / 37.2 and 11.5 / 37.2; TV to (0.7, 0.3) by hand
    let spd: f64 = 25.7 / 37.2;
    let board = json["leaderboard"].as_array().unwrap();
    let model = board
        .iter()
        .find(|e| e["groups"] == 1 && e["name"].as_str().unwrap().contains("latent"))
        .unwrap();
    assert!(
        (model["tv"].as_f64().unwrap() - (0.7 - spd).abs()).abs() < 1e-12,
        "{model}"
    );
    assert!(
        json["reference"]["notes"][1]
            .as_str()
            .unwrap()
            .contains("37.2 %"),
        "{json}"
    );
}

#[test]
fn dtypes_a_model_cannot_take_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    assert_clean_failure(
        &run_ids(dir.path(), &["--dtype", "int4"]),
        "unknown --dtype `int4` (expected one of native, f32, bf16, f16)",
    );
    if let Some(gguf) = smollm2_gguf() {
        assert_clean_failure(
            &run_ids(&gguf, &["--dtype", "bf16"]),
            "--dtype bf16 is not for GGUF files on the CPU",
        );
    }
}

/// Counts are checked in one place: 0 is refused by every size flag, with the flag named.
#[test]
fn zero_counts_are_refused_everywhere() {
    for args in [
        &["extract", "m.gguf", "--batch-size", "0"][..],
        &["extract", "m.gguf", "--shard-size", "0"],
        &["scale", "m.gguf", "--shard-size", "0"],
        &["scale", "m.gguf", "--batch-size", "0"],
        &["compare", "--bootstrap", "0"],
        &["report", "run", "--bootstrap", "0"],
        &["eval", "m.gguf", "--n", "0"],
        &["vectors", "m.gguf", "--probes", "p", "-k", "0"],
        &["run-with-cache", "m.gguf", "--batch-size", "0"],
    ] {
        let out = probe().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains("must be at least 1"), "{args:?}: {stderr}");
    }
}

/// A closed stdout (`probe inspect m.gguf | head -1`) ends quietly with exit 0, as `cat` does.
#[test]
fn a_closed_stdout_ends_quietly() {
    let Some(gguf) = smollm2_gguf() else { return };
    let mut child = probe()
        .arg("inspect")
        .arg(&gguf)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before the first line
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Generation and forward passes respect the context length (SmolLM2: 8192 tokens): an
/// endless `-n` and an over-long prompt are refused before anything runs.
#[test]
fn the_context_length_is_respected() {
    let Some(gguf) = smollm2_gguf() else { return };
    let out = probe()
        .arg("generate")
        .arg(&gguf)
        .arg("Hallo")
        .args(["-n", "4000000000"])
        .output()
        .unwrap();
    assert_clean_failure(&out, "exceed the model's context of 8192 tokens");
    let ids: Vec<String> = (0..8200).map(|i| (1 + i % 1000).to_string()).collect();
    let dir = tempfile::tempdir().unwrap();
    let out = probe()
        .arg("run-with-cache")
        .arg(&gguf)
        .args(["--ids", &ids.join(",")])
        .args(["--hooks", "blocks.0.hook_resid_post"])
        .arg("--out")
        .arg(dir.path().join("x.safetensors"))
        .output()
        .unwrap();
    assert_clean_failure(&out, "longer than the model's context of 8192 tokens");
}

/// Sizes read from a file are bounded before anything is allocated by them: a GGUF claiming
/// 4e9 blocks is refused at once (it used to allocate until the allocator aborted).
#[test]
fn an_absurd_block_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    GgufWriter::new()
        .string("general.architecture", "llama")
        .u32("llama.block_count", 4_000_000_000)
        .u32("llama.embedding_length", 32)
        .u32("llama.feed_forward_length", 48)
        .u32("llama.attention.head_count", 4)
        .u32("llama.attention.head_count_kv", 2)
        .f32("llama.attention.layer_norm_rms_epsilon", 1e-6)
        .u32("llama.vocab_size", 64)
        .tensor("token_embd.weight", vec![32, 64], 0, vec![0u8; 64 * 32 * 4])
        .write(&path);
    let out = probe().arg("inspect").arg(&path).output().unwrap();
    assert_clean_failure(
        &out,
        "block_count is 4000000000, but the file holds only 1 tensors",
    );
}

#[test]
fn out_that_is_a_fifo_or_unsupported_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("table.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let (reference, predicted) = (dir.path().join("ref.jsonl"), dir.path().join("pred.jsonl"));
    let cell = |field: &str| {
        format!("{{\"question\": \"q\", \"group\": \"g\", \"options\": [\"a\", \"b\"], \"{field}\": [0.5, 0.5]}}\n")
    };
    std::fs::write(&reference, cell("reference")).unwrap();
    std::fs::write(&predicted, cell("predicted")).unwrap();
    let compare = |out: &std::path::Path| {
        probe()
            .arg("compare")
            .arg("--reference")
            .arg(&reference)
            .arg("--predicted")
            .arg(&predicted)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    if made {
        let out = compare(&fifo);
        assert_clean_failure(&out, "is not a regular file");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo_like());
    }
    assert_clean_failure(
        &compare(&dir.path().join("table.parquet")),
        "unsupported file type `.parquet` (write .csv or .json)",
    );
    assert!(!dir.path().join("table.parquet").exists());
    assert_clean_failure(
        &compare(std::path::Path::new("/proc/no-such-dir/table.csv")),
        "/proc is not writable",
    );
}

#[test]
fn extract_out_that_is_a_file_fails_before_the_model_loads() {
    let Some(gguf) = smollm2_gguf() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cache");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = probe()
        .current_dir(workspace_root())
        .arg("extract")
        .arg(&gguf)
        .args(["--election", "data/demo/wahl-o-mat/2099-demowahl"])
        .args(["--parties", "SA,ÖU", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert_clean_failure(&out, "exists and is not a directory");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

/// `FileType::is_fifo` exists only on Unix; elsewhere there are no FIFOs to test.
trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}

impl FifoLike for std::fs::FileType {
    #[cfg(unix)]
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
    #[cfg(not(unix))]
    fn is_fifo_like(&self) -> bool {
        false
    }
}

/// Rewrites the JSON header of a safetensors file (the data stays as it is).
fn edit_safetensors_header(path: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut header);
    let text = serde_json::to_vec(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

#[test]
fn safetensors_header_errors_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    let path = dir.path().join("model.safetensors");
    let pristine = std::fs::read(&path).unwrap();
    edit_safetensors_header(&path, |h| {
        h["model.layers.0.mlp.up_proj.weight"]["shape"] = serde_json::json!([48, 33]);
    });
    assert_clean_failure(
        &run_ids(dir.path(), &[]),
        "tensor `model.layers.0.mlp.up_proj.weight`: shape [48, 33] of F32 needs 6336 bytes",
    );
    // a tensor left out of the header (its bytes still there): blamed on the gap, not on
    // the neighbour's offsets
    std::fs::write(&path, &pristine).unwrap();
    let mut gap_after = String::new();
    edit_safetensors_header(&path, |h| {
        let map = h.as_object_mut().unwrap();
        let mut spans: Vec<(u64, String)> = map
            .iter()
            .filter(|(k, _)| *k != "__metadata__")
            .map(|(k, v)| (v["data_offsets"][0].as_u64().unwrap(), k.clone()))
            .collect();
        spans.sort();
        map.remove(&spans[3].1);
        gap_after = spans[4].1.clone();
    });
    assert_clean_failure(
        &run_ids(dir.path(), &[]),
        &format!("tensor `{gap_after}` starts at byte"),
    );
    assert_clean_failure(&run_ids(dir.path(), &[]), "missing from the header");
}

#[test]
fn shard_index_naming_a_tensor_its_file_lacks() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), None);
    let names: Vec<String> = tiny_tensor_shapes().into_iter().map(|(n, _)| n).collect();
    let mut map: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .map(|n| (n.clone(), serde_json::json!("model.safetensors")))
        .collect();
    map.insert(
        "model.layers.9.mlp.up_proj.weight".into(),
        "model.safetensors".into(),
    );
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        serde_json::to_vec(&serde_json::json!({"weight_map": map})).unwrap(),
    )
    .unwrap();
    assert_clean_failure(
        &run_ids(dir.path(), &[]),
        "maps tensor `model.layers.9.mlp.up_proj.weight` to model.safetensors, which does not hold it",
    );
}

#[test]
fn untied_checkpoint_without_lm_head_is_refused_for_logits() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llama(dir.path(), &tiny_config(), Some("lm_head.weight"));
    assert_clean_failure(
        &run_ids(dir.path(), &["--logits", "last"]),
        "no `lm_head.weight`, but config.json has tie_word_embeddings = false",
    );
    // hooks only need no head
    let out = run_ids(dir.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gguf_tensor_offset_off_the_alignment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    tiny_gguf_llama()
        .tensor("first_tensor", vec![4], 0, vec![0u8; 16])
        .tensor("second_tensor", vec![4], 0, vec![0u8; 16])
        .write(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let name = b"second_tensor";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    let offset_at = at + 4 + 8 + 4; // n_dims, one dim, type
    assert_eq!(bytes[offset_at..offset_at + 8], 32u64.to_le_bytes());
    bytes[offset_at..offset_at + 8].copy_from_slice(&16u64.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    assert_clean_failure(
        &probe().arg("inspect").arg(&path).output().unwrap(),
        "tensor `second_tensor`: data offset 16 is not a multiple of the alignment 32",
    );
}

/// A tiny GGUF with a byte-level BPE tokenizer over `a`, `b`, `ab`, … (one tensor: `inspect`
/// reads only metadata), with `edit` applied to its metadata.
fn tokenizer_gguf(path: &std::path::Path, edit: impl FnOnce(GgufWriter) -> GgufWriter) {
    // every byte-level symbol the test sentence needs, then one merge
    let sentence = "Hallo Welt! Wie wählst du, 45 Jahre alt?";
    let mut tokens: Vec<String> = Vec::new();
    for b in sentence.bytes().chain(*b"ab") {
        let t = byte_level(b);
        if !tokens.contains(&t) {
            tokens.push(t);
        }
    }
    tokens.push("ab".into());
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let writer = tiny_gguf_llama()
        .string("tokenizer.ggml.model", "gpt2")
        .string("tokenizer.ggml.pre", "default")
        .strings("tokenizer.ggml.tokens", &refs)
        .tensor("token_embd.weight", vec![32, 64], 0, vec![0u8; 32 * 64 * 4]);
    edit(writer).write(path);
}

/// GPT-2's byte-to-unicode map (the byte-level BPE alphabet).
fn byte_level(b: u8) -> String {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        char::from_u32(b as u32).unwrap().to_string()
    } else {
        let mut n = 0;
        for x in 0..=255u8 {
            if !printable(x) {
                if x == b {
                    break;
                }
                n += 1;
            }
        }
        char::from_u32(256 + n).unwrap().to_string()
    }
}

#[test]
fn inspect_builds_and_tries_the_tokenizer_and_chat_template() {
    let dir = tempfile::tempdir().unwrap();
    let inspect = |path: &std::path::Path| {
        let out = probe().arg("inspect").arg(path).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let good = dir.path().join("good.gguf");
    tokenizer_gguf(&good, |w| {
        w.strings("tokenizer.ggml.merges", &["a b"]).string(
            "tokenizer.chat_template",
            "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}",
        )
    });
    let text = inspect(&good);
    assert!(text.contains("tokenizer      yes"), "{text}");
    assert!(text.contains("chat template  yes (renders)"), "{text}");

    let no_merges = dir.path().join("no-merges.gguf");
    tokenizer_gguf(&no_merges, |w| w);
    let text = inspect(&no_merges);
    assert!(
        text.contains("tokenizer      BROKEN") && text.contains("no tokenizer.ggml.merges"),
        "{text}"
    );

    let unknown_pre = dir.path().join("pre.gguf");
    tokenizer_gguf(&unknown_pre, |w| {
        w.strings("tokenizer.ggml.merges", &["a b"])
            .string("tokenizer.ggml.pre", "klingon")
    });
    let text = inspect(&unknown_pre);
    assert!(
        text.contains("pre-tokenizer `klingon` is not supported"),
        "{text}"
    );

    let broken_template = dir.path().join("template.gguf");
    tokenizer_gguf(&broken_template, |w| {
        w.strings("tokenizer.ggml.merges", &["a b"]).string(
            "tokenizer.chat_template",
            "{% for m in messages %}{{ m.content }",
        )
    });
    let text = inspect(&broken_template);
    assert!(text.contains("chat template  BROKEN"), "{text}");
}

#[test]
fn a_fifo_or_device_as_input_is_refused_not_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("cells.jsonl");
    if !std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        return;
    }
    // reading a FIFO nobody writes to would block forever
    let out = probe()
        .arg("compare")
        .arg("--reference")
        .arg(&fifo)
        .arg("--predicted")
        .arg(&fifo)
        .output()
        .unwrap();
    assert_clean_failure(&out, "not a regular file");
    let study = probe()
        .args(["study", "/dev/zero", "--dry-run"])
        .output()
        .unwrap();
    assert_clean_failure(&study, "/dev/zero: not a regular file");
}

#[test]
fn an_error_states_its_cause_once() {
    let out = probe()
        .args(["compare", "--predicted", "/no/such/cells.jsonl"])
        .output()
        .unwrap();
    assert_clean_failure(&out, "/no/such/cells.jsonl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}
