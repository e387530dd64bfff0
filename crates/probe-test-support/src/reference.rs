//! transformers' reference tensors (`../shared/reference/*.safetensors`) and the comparisons
//! the parity tests make with them.

use std::collections::HashMap;

use probe_lm::burn::tensor::Tensor;

/// A reference's `input_ids` as a left-padded batch (checked against its `attention_mask`),
/// and the mask.
pub fn batch_from_reference(r: &HashMap<String, RefTensor>) -> (probe_lm::Batch, Vec<i64>) {
    let ids = &r["input_ids"];
    let mask = &r["attention_mask"];
    let (b, s) = (ids.shape[0], ids.shape[1]);
    let seqs: Vec<Vec<u32>> = (0..b)
        .map(|i| {
            (0..s)
                .filter(|&j| mask.i64[i * s + j] == 1)
                .map(|j| ids.i64[i * s + j] as u32)
                .collect()
        })
        .collect();
    let batch = probe_lm::Batch::left_padded(&seqs, 0).unwrap();
    assert_eq!(
        batch.attention_mask(),
        mask.i64,
        "reference must be left-padded"
    );
    (batch, mask.i64.clone())
}

/// How far a model's forward is from a transformers reference file.
pub struct ReferenceErrors {
    /// Hook tensors compared (`embed`, `blocks.{l}.hook_resid_post`, `blocks.{l}.mlp.hook_post`).
    pub checked: usize,
    pub worst_rel: f32,
    pub logits_abs: f32,
    pub logits_rel: f32,
    /// The reference batch: its padded length and leading pads.
    pub seq_len: usize,
    pub pad_lens: Vec<usize>,
}

/// Runs `model` on a reference's left-padded batch with every hook the reference stores,
/// asserting each hook tensor within `hidden_max_rel` (‖ours − ref‖∞ / ‖ref‖∞ over the real
/// positions; the message names the tensor), and measures the logits (all positions, or the
/// last, as the reference stores them).
pub fn compare_with_reference(
    model: &probe_lm::Model,
    reference: &std::path::Path,
    hidden_max_rel: f32,
) -> ReferenceErrors {
    use probe_lm::{HookPoint, HookSpec, Logits};
    let r = read_reference(reference);
    let (batch, mask) = batch_from_reference(&r);
    let n_layers = model.config().num_layers;
    let mut hooks = HookSpec::from_points([HookPoint::Embed]);
    for l in 0..n_layers {
        hooks.insert(HookPoint::ResidPost(l));
        hooks.insert(HookPoint::MlpPost(l));
    }
    let full_logits = r["logits"].shape[1] == batch.seq_len;
    let which = if full_logits {
        Logits::All
    } else {
        Logits::Last
    };
    let out = model.transformer.forward(&batch, &hooks, which).unwrap();
    let (mut checked, mut worst_rel) = (0, 0f32);
    for (name, t) in &r {
        let point = match name.as_str() {
            "embed" => HookPoint::Embed,
            other => match HookPoint::parse(other, n_layers) {
                Ok(p) => p,
                Err(_) => continue,
            },
        };
        let ours = to_vec(out.cache.get(point).unwrap());
        let (abs, rel) = compare_masked(&ours, &t.f32, &t.shape, &mask);
        assert!(
            rel <= hidden_max_rel,
            "{}: {name} rel err {rel:e} (abs {abs:e})",
            reference.display()
        );
        worst_rel = worst_rel.max(rel);
        checked += 1;
    }
    let logits = to_vec(out.logits.as_ref().unwrap());
    let lref = &r["logits"];
    let rows = if full_logits {
        mask
    } else {
        vec![1; lref.shape[0]]
    };
    let (logits_abs, logits_rel) = compare_masked(&logits, &lref.f32, &lref.shape, &rows);
    ReferenceErrors {
        checked,
        worst_rel,
        logits_abs,
        logits_rel,
        seq_len: batch.seq_len,
        pad_lens: batch.pad_lens,
    }
}

pub struct RefTensor {
    pub shape: Vec<usize>,
    pub f32: Vec<f32>,
    pub i64: Vec<i64>,
}

pub fn read_reference(path: &std::path::Path) -> HashMap<String, RefTensor> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let (f32v, i64v) = match view.dtype() {
            safetensors::Dtype::F32 => (
                data.chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                vec![],
            ),
            safetensors::Dtype::I64 => (
                vec![],
                data.chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
            ),
            other => panic!("unexpected dtype {other:?} for {name}"),
        };
        out.insert(
            name,
            RefTensor {
                shape: view.shape().to_vec(),
                f32: f32v,
                i64: i64v,
            },
        );
    }
    out
}

/// The device under test: `PROBE_TEST_DEVICE` (cpu, torch-cpu, cuda), default cpu.
pub fn test_device() -> probe_lm::burn::tensor::Device {
    let spec: probe_lm::DeviceSpec = std::env::var("PROBE_TEST_DEVICE")
        .unwrap_or_else(|_| "cpu".into())
        .parse()
        .unwrap();
    spec.device().unwrap()
}

/// The `--dtype`s held to the f32 bars on the device under test: `f32` everywhere, and
/// `native` on the CPU, where a GGUF's blocks are multiplied with f32 activations (on a GPU,
/// `native` computes a GGUF in bf16, which has bars of its own).
pub fn f32_exact_dtypes() -> Vec<probe_lm::DtypeChoice> {
    let mut out = vec![probe_lm::DtypeChoice::F32];
    if test_device() == probe_lm::burn::tensor::Device::flex() {
        out.push(probe_lm::DtypeChoice::Native);
    }
    out
}

pub fn to_vec<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.clone().into_data().try_into_vec::<f32>().unwrap()
}

/// Errors over the real (unpadded) positions of `[batch, seq, dim]` tensors:
/// (max abs error, max abs error / max |reference|).
pub fn compare_masked(
    ours: &[f32],
    reference: &[f32],
    shape: &[usize],
    mask: &[i64],
) -> (f32, f32) {
    assert_eq!(ours.len(), reference.len(), "length mismatch");
    let dim = shape[2];
    let mut max_err = 0f32;
    let mut max_ref = 0f32;
    for (row, &m) in mask.iter().enumerate() {
        if m == 0 {
            continue;
        }
        for k in row * dim..(row + 1) * dim {
            assert!(ours[k].is_finite(), "non-finite value at {k}");
            max_err = max_err.max((ours[k] - reference[k]).abs());
            max_ref = max_ref.max(reference[k].abs());
        }
    }
    (max_err, max_err / max_ref.max(f32::MIN_POSITIVE))
}
