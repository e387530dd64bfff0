//! LoRA on the tiny Llama of ../shared/reference and the tiny Gemma 2 and Gemma 3 of
//! probe-lm's fixtures (all written by transformers): an adapter with B = 0 changes nothing, a
//! merged adapter equals the on-the-fly one, and burn's autodiff gradient of the training loss
//! w.r.t. A and B matches central finite differences (through Gemma's soft-capping, GeGLU,
//! sandwich and q/k norms too).

use std::path::PathBuf;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use probe_finetune::data::Example;
use probe_finetune::loss::LetterForms;
use probe_finetune::train::forward_loss;
use probe_lm::adapter::{AdapterConfig, TARGETS};
use probe_lm::{Batch, DtypeChoice, HookPoint, HookSpec, LoadOptions, Logits, Model, Transformer};

fn tiny() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/tiny-llama");
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        eprintln!("notice: {} absent; skipping", dir.display());
        None
    }
}

/// The tiny Llama (where ../shared is present) and the tiny Gemmas (always).
fn tiny_models() -> Vec<PathBuf> {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../probe-lm/tests/fixtures");
    tiny()
        .into_iter()
        .chain(["tiny-gemma2", "tiny-gemma3"].map(|name| fixtures.join(name)))
        .collect()
}

fn load(dir: &std::path::Path, device: &Device) -> Transformer {
    let options = LoadOptions {
        dtype: DtypeChoice::F32,
        ..Default::default()
    };
    Model::load(dir, device, options).unwrap().transformer
}

fn all_targets(r: usize) -> AdapterConfig {
    AdapterConfig::new(r, 2.0 * r as f64, 0.0, TARGETS.map(String::from).to_vec())
}

/// Deterministic values in [−scale, scale].
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * scale
        })
        .collect()
}

/// Gives every adapter a random B (A keeps its Kaiming init), `grad` marking them as leaves.
fn randomize_b(t: &mut Transformer, seed: u64) {
    let device = t.device();
    for (k, (_, linear)) in t.projections_mut().into_iter().enumerate() {
        let Some(lora) = linear.lora.as_mut() else {
            continue;
        };
        let [r, d_out] = lora.b.val().dims();
        let b = Tensor::<2>::from_data(
            TensorData::new(values(r * d_out, seed + k as u64, 0.2), [r, d_out]),
            &device,
        );
        lora.b = Param::from_tensor(b).set_require_grad(false);
    }
}

fn batch() -> Batch {
    Batch::left_padded(&[vec![5, 17, 3, 99, 42, 7, 8], vec![11, 64, 2, 9, 30]], 0).unwrap()
}

fn hooks(layers: usize) -> HookSpec {
    let mut spec = HookSpec::new();
    spec.insert(HookPoint::Embed);
    for l in 0..layers {
        spec.insert(HookPoint::ResidPost(l));
        spec.insert(HookPoint::MlpPost(l));
    }
    spec
}

/// Every hooked activation and the logits, flattened.
fn outputs(t: &Transformer) -> Vec<(String, Vec<f32>)> {
    let b = batch();
    let out = t
        .forward(&b, &hooks(t.config.num_layers), Logits::All)
        .unwrap();
    // padding positions are left out: kernels may differ there (nothing reads them)
    let real = |x: Tensor<3>| -> Vec<f32> {
        let [_, seq, dim] = x.dims();
        let v = x.into_data().try_to_vec::<f32>().unwrap();
        let mut keep = Vec::new();
        for (row, &pad) in b.pad_lens.iter().enumerate() {
            keep.extend_from_slice(&v[(row * seq + pad) * dim..(row + 1) * seq * dim]);
        }
        keep
    };
    let mut v: Vec<(String, Vec<f32>)> = out
        .cache
        .tensors
        .iter()
        .map(|(k, t)| (format!("{k:?}"), real(t.clone())))
        .collect();
    v.push(("logits".into(), real(out.logits.unwrap())));
    v
}

#[test]
fn an_adapter_with_b_zero_changes_nothing() {
    for dir in tiny_models() {
        an_adapter_with_b_zero_changes_nothing_on(&dir);
    }
}

fn an_adapter_with_b_zero_changes_nothing_on(dir: &std::path::Path) {
    let mut t = load(dir, &Device::flex());
    let before = outputs(&t);
    t.add_lora(&all_targets(4), 7).unwrap();
    assert_eq!(
        outputs(&t),
        before,
        "B = 0 must reproduce the base model exactly"
    );
}

#[test]
fn a_merged_adapter_equals_the_on_the_fly_one() {
    for dir in tiny_models() {
        a_merged_adapter_equals_the_on_the_fly_one_on(&dir);
    }
}

fn a_merged_adapter_equals_the_on_the_fly_one_on(dir: &std::path::Path) {
    let mut t = load(dir, &Device::flex());
    let base = outputs(&t);
    t.add_lora(&all_targets(4), 7).unwrap();
    randomize_b(&mut t, 3);
    let on_the_fly = outputs(&t);
    t.merge_adapters().unwrap();
    let merged = outputs(&t);
    let mut moved = 0.0f32;
    for (((name, a), (_, b)), (_, c)) in on_the_fly.iter().zip(&merged).zip(&base) {
        let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            diff / scale <= 1e-5,
            "{name}: merged differs by {diff} (scale {scale})"
        );
        moved = moved.max(a.iter().zip(c).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale);
    }
    assert!(
        moved > 1e-3,
        "the adapter should change the model (moved {moved})"
    );
}

/// Loss of two prompts answering options of a 3-option ordinal item and a 2-option nominal
/// one, with the numerical penalty on.
fn examples() -> Vec<Example> {
    let b = batch();
    let ids: Vec<Vec<u32>> = (0..2)
        .map(|i| b.input_ids[i * b.seq_len + b.pad_lens[i]..(i + 1) * b.seq_len].to_vec())
        .collect();
    vec![
        Example {
            ids: ids[0].clone(),
            n_options: 3,
            answer: 2,
            distance: vec![1.0, 0.5, 0.0],
            respondent: 0,
            item: 0,
        },
        Example {
            ids: ids[1].clone(),
            n_options: 2,
            answer: 0,
            distance: vec![],
            respondent: 1,
            item: 1,
        },
    ]
}

fn forms() -> LetterForms {
    // letters A, B, C spelled by two token forms each (as "A" and " A")
    LetterForms {
        ids: vec![10, 110, 20, 120, 30, 130],
        letter: vec![0, 0, 1, 1, 2, 2],
        letters: 3,
    }
}

fn loss_of(t: &Transformer) -> (Tensor<1>, f64) {
    let ex = examples();
    let batch: Vec<&Example> = ex.iter().collect();
    let (loss, _) = forward_loss(t, &forms(), &batch, 0.7).unwrap();
    let v = loss.clone().into_data().try_to_vec::<f32>().unwrap()[0] as f64;
    (loss, v)
}

#[test]
fn lora_gradients_match_finite_differences() {
    for dir in tiny_models() {
        lora_gradients_match_finite_differences_on(&dir);
    }
}

fn lora_gradients_match_finite_differences_on(dir: &std::path::Path) {
    let device = Device::flex().autodiff();
    let mut t = load(dir, &device).no_grad();
    t.add_lora(&all_targets(4), 11).unwrap();
    // the frozen projections on the fused kernels, as training runs them
    t.prepare_training();
    randomize_b(&mut t, 5);
    // the leaves: A and B of layer 0's q_proj and layer 3's down_proj
    let picks = [
        "model.layers.0.self_attn.q_proj",
        "model.layers.3.mlp.down_proj",
        "model.layers.1.self_attn.v_proj",
    ];
    let mut leaves = Vec::new();
    for (name, linear) in t.projections_mut() {
        if !picks.contains(&name.as_str()) {
            continue;
        }
        let lora = linear.lora.as_mut().unwrap();
        lora.a = Param::from_tensor(lora.a.val().detach()).set_require_grad(true);
        lora.b = Param::from_tensor(lora.b.val().detach()).set_require_grad(true);
        leaves.push((name.clone(), 'A', lora.a.val()));
        leaves.push((name, 'B', lora.b.val()));
    }
    let (loss, _) = loss_of(&t);
    let grads = loss.backward();
    let analytic: Vec<Vec<f32>> = leaves
        .iter()
        .map(|(_, _, leaf)| {
            leaf.grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        })
        .collect();
    // central differences on the largest-gradient entries of each leaf, in f64 on a model
    // made f32: h = 1e-2 balances truncation against rounding
    let h = 1e-2f32;
    let mut checked = 0;
    let mut worst = 0f64;
    for (k, (name, which, leaf)) in leaves.iter().enumerate() {
        let g = &analytic[k];
        let mut order: Vec<usize> = (0..g.len()).collect();
        order.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
        let dims = leaf.dims();
        let base = leaf
            .clone()
            .detach()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for &i in order.iter().take(3) {
            let at = |delta: f32| {
                let mut v = base.clone();
                v[i] += delta;
                let mut probe = t.clone();
                for (n, linear) in probe.projections_mut() {
                    if &n == name {
                        let lora = linear.lora.as_mut().unwrap();
                        let p = Param::from_tensor(Tensor::from_data(
                            TensorData::new(v.clone(), dims),
                            &device,
                        ))
                        .set_require_grad(false);
                        match which {
                            'A' => lora.a = p,
                            _ => lora.b = p,
                        }
                    }
                }
                loss_of(&probe).1
            };
            let fd = (at(h) - at(-h)) / (2.0 * h as f64);
            let an = g[i] as f64;
            assert!(
                (an - fd).abs() <= 2e-3 + 2e-2 * an.abs(),
                "{name}.lora_{which}[{i}]: autodiff {an:.6}, finite difference {fd:.6}"
            );
            worst = worst.max((an - fd).abs() / an.abs().max(1e-3));
            checked += 1;
        }
    }
    assert_eq!(checked, 18);
    eprintln!(
        "{}: 18 gradient entries, worst relative difference from central differences {worst:.2e}",
        dir.display()
    );
}

#[test]
fn the_autodiff_forward_equals_the_inference_forward() {
    for dir in tiny_models() {
        the_autodiff_forward_equals_the_inference_forward_on(&dir);
    }
}

fn the_autodiff_forward_equals_the_inference_forward_on(dir: &std::path::Path) {
    let a = outputs(&load(dir, &Device::flex()));
    let mut t = load(dir, &Device::flex().autodiff()).no_grad();
    let b = outputs(&t);
    t.prepare_training();
    let c = outputs(&t);
    for ((name, x), (_, y)) in b.iter().zip(&c) {
        let scale = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let diff = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(diff / scale <= 1e-5, "prepared {name}: {diff}");
    }
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let scale = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let diff = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(diff / scale <= 1e-5, "{name}: {diff}");
    }
}

/// QLoRA: with SmolLM2's Q4_1 blocks kept quantized (`--dtype native`), the adapters'
/// gradients equal those of the same model dequantized to dense f32 (whose gradients the
/// finite-difference test above checks) to 1e-4 of their scale (7e-6 measured): the block
/// backward computes `dy · W` panel by panel.
#[test]
fn quantized_base_gradients_equal_the_dequantized_ones() {
    let gguf = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !gguf.is_file() {
        eprintln!(
            "notice: {} absent (scripts/setup.sh); skipping",
            gguf.display()
        );
        return;
    }
    let device = Device::flex().autodiff();
    let grads = |dtype: DtypeChoice| -> Vec<Vec<f32>> {
        let options = LoadOptions {
            dtype,
            ..Default::default()
        };
        let mut t = Model::load(&gguf, &device, options)
            .unwrap()
            .transformer
            .no_grad();
        let config = AdapterConfig::new(4, 8.0, 0.0, vec!["q_proj".into(), "down_proj".into()]);
        t.add_lora(&config, 3).unwrap();
        t.prepare_training();
        randomize_b(&mut t, 9);
        let mut leaves = Vec::new();
        for (name, linear) in t.projections_mut() {
            if name != "model.layers.2.self_attn.q_proj" && name != "model.layers.20.mlp.down_proj"
            {
                continue;
            }
            let lora = linear.lora.as_mut().unwrap();
            lora.a = Param::from_tensor(lora.a.val().detach()).set_require_grad(true);
            leaves.push(lora.a.val());
        }
        let examples = [
            Example {
                ids: vec![1, 504, 3287, 30, 2],
                n_options: 3,
                answer: 1,
                distance: vec![0.5, 0.0, 0.5],
                respondent: 0,
                item: 0,
            },
            Example {
                ids: vec![1, 9, 17, 4010, 2103, 28, 30],
                n_options: 3,
                answer: 2,
                distance: vec![],
                respondent: 1,
                item: 1,
            },
        ];
        let batch: Vec<&Example> = examples.iter().collect();
        let letters = LetterForms {
            ids: vec![330, 389, 340],
            letter: vec![0, 1, 2],
            letters: 3,
        };
        let (loss, _) = forward_loss(&t, &letters, &batch, 0.5).unwrap();
        let g = loss.backward();
        leaves
            .iter()
            .map(|l| l.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap())
            .collect()
    };
    let dense = grads(DtypeChoice::F32);
    let quantized = grads(DtypeChoice::Native);
    for (q, d) in quantized.iter().zip(&dense) {
        let scale = d.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = q.iter().zip(d).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(scale > 0.0, "no gradient");
        assert!(
            diff <= 1e-4 * scale,
            "QLoRA gradient differs by {diff} (scale {scale})"
        );
        eprintln!(
            "QLoRA vs dense gradient: max |Δ| {:.2e} of the scale",
            diff / scale
        );
    }
}
