//! The coefficients `probe scale` reads are exactly `blocks.{l}.mlp.hook_post` of the
//! HuggingFace transformers reference for SmolLM2 (SwiGLU gate included), at the last token.

use probe_test_support as common;

use common::{reference_dir, smollm2_gguf as smollm2, workspace_root as root};

use probe_cache::{CacheReader, CacheWriter, Manifest, Row, ShardSplit};
use probe_latent::coefficients::{collect, hook_layout, read};
use probe_latent::{FactorPlan, Selected};
use probe_lm::burn::tensor::Device;
use probe_lm::{LoadOptions, Model};

/// `name` of a reference file as f32 with its shape.
fn reference_tensor(path: &std::path::Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    assert_eq!(t.dtype(), safetensors::Dtype::F32);
    let data = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), data)
}

/// A fresh cache in `dir` for `rows` prompts with the hook layout of `plan`.
fn open_cache(
    dir: &std::path::Path,
    plan: &FactorPlan,
    rows: usize,
    shard_size: usize,
) -> CacheWriter {
    let layout = hook_layout(plan);
    let manifest = Manifest {
        format_version: probe_cache::FORMAT_VERSION,
        model: "test".into(),
        model_hash: "test".into(),
        hooks: layout.hooks,
        dims: layout.dims,
        positions: "last".into(),
        dtype: "f32".into(),
        label_names: vec![],
        source: Default::default(),
        shard_size,
        rows: (0..rows)
            .map(|i| Row {
                id: format!("p{i}"),
                label: None,
                group: None,
                meta: Default::default(),
            })
            .collect(),
    };
    CacheWriter::open(dir, manifest, ShardSplit { k: 0, n: 1 }, false).unwrap()
}

#[test]
fn scale_coefficients_equal_reference_mlp_hook_post() {
    let (Some(reference), Some(gguf)) = (reference_dir(), smollm2()) else {
        return;
    };
    let prompts_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reference.join("smollm2-135m-prompts.json")).unwrap(),
    )
    .unwrap();
    let prompts: Vec<String> = prompts_json["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let model = Model::load(&gguf, &Device::flex(), LoadOptions::default()).unwrap();
    let tok = model.tokenizer().unwrap();
    for (p, ids) in prompts
        .iter()
        .zip(prompts_json["token_ids"].as_array().unwrap())
    {
        let want: Vec<u32> = ids
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tok.encode(p).unwrap(), want, "tokenization of {p:?}");
    }

    // Two "parties" whose value vectors span early, middle and last layers, sharing one.
    let picks = |v: &[(usize, usize)]| -> Vec<Selected> {
        v.iter()
            .map(|&(layer, neuron)| Selected {
                layer,
                neuron,
                cos: 0.5,
            })
            .collect()
    };
    let plan = FactorPlan::new(
        &["A".into(), "B".into()],
        &[
            picks(&[(0, 5), (18, 1535), (29, 700)]),
            picks(&[(18, 1535), (18, 3), (27, 1024), (29, 0)]),
        ],
    )
    .unwrap();
    let layout = hook_layout(&plan);
    assert_eq!(
        layout.hooks,
        [
            "blocks.0.mlp.hook_post",
            "blocks.18.mlp.hook_post",
            "blocks.27.mlp.hook_post",
            "blocks.29.mlp.hook_post"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let mut writer = open_cache(dir.path(), &plan, prompts.len(), 2);
    collect(
        &model,
        &mut writer,
        &plan,
        &|r| prompts[r].clone(),
        2,
        &|_, _| {},
    )
    .unwrap();
    let got = read(&CacheReader::open(dir.path()).unwrap(), &plan).unwrap();
    let width = plan.columns.len();

    for (i, _) in prompts.iter().enumerate() {
        let file = reference.join(format!("smollm2-135m-prompt{i}.safetensors"));
        for (c, &(layer, neuron)) in plan.columns.iter().enumerate() {
            let (shape, data) = reference_tensor(&file, &format!("blocks.{layer}.mlp.hook_post"));
            let (seq, width_ref) = (shape[1], shape[2]);
            let want = data[(seq - 1) * width_ref + neuron];
            let scale = data.iter().fold(0f32, |m, x| m.max(x.abs()));
            let g = got[i * width + c];
            assert!(
                (g - want).abs() <= 1e-4 * scale + 1e-5,
                "prompt {i} layer {layer} neuron {neuron}: {g} vs reference {want} (scale {scale})"
            );
        }
        // The scaling factors are the cosine-weighted means of exactly these numbers.
        let row = &got[i * width..(i + 1) * width];
        let m = plan.factors(row);
        let col = |l: usize, n: usize| {
            row[plan.columns.iter().position(|&x| x == (l, n)).unwrap()] as f64
        };
        let a = (col(0, 5) + col(18, 1535) + col(29, 700)) / 3.0;
        assert!((m[0] - a).abs() < 1e-9 * a.abs().max(1.0));
    }
}

/// `probe scale` computes a batch's common prefix once and continues it per persona; that
/// must give the same coefficients as running every prompt whole.
#[test]
fn shared_prefix_batches_match_whole_prompts() {
    let Some(gguf) = smollm2() else {
        return;
    };
    let spec =
        probe_data::personas::PersonaSpec::load(&root().join("data/personas/paper-grid.toml"))
            .unwrap();
    let templates =
        probe_data::personas::load_templates(&root().join("data/personas/prompts.toml")).unwrap();
    let filter = probe_data::personas::GridFilter::parse(&[
        "age=45-54".into(),
        "education=abitur,university".into(),
        "income=middle".into(),
        "employment=employed".into(),
    ])
    .unwrap();
    let personas = spec.grid(&filter).unwrap();
    let prompts: Vec<String> = personas
        .iter()
        .flat_map(|p| templates.iter().take(2).map(|t| spec.render(t, p)))
        .collect();
    assert_eq!(prompts.len(), 2 * 2 * 5 * 2 * 2 * 2);
    let model = Model::load(&gguf, &Device::flex(), LoadOptions::default()).unwrap();
    let tok = model.tokenizer().unwrap();
    let inputs = |r: usize| -> probe_extract::Result<(Vec<u32>, Vec<usize>)> {
        let ids = tok.encode(&prompts[r]).unwrap();
        let last = ids.len() - 1;
        Ok((ids, vec![last]))
    };
    let plan = FactorPlan::new(
        &["A".into()],
        &[(0..30)
            .map(|l| Selected {
                layer: l,
                neuron: 37 * l + 11,
                cos: 0.3,
            })
            .collect()],
    )
    .unwrap();
    let layout = hook_layout(&plan);
    let run = |share: bool| -> Vec<f32> {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = open_cache(dir.path(), &plan, prompts.len(), 64);
        probe_extract::fill_cache(
            &model,
            &mut writer,
            &inputs,
            &layout.columns,
            8,
            share,
            &|_, _| {},
        )
        .unwrap();
        read(&CacheReader::open(dir.path()).unwrap(), &plan).unwrap()
    };
    let whole = run(false);
    let shared = run(true);
    let scale = whole.iter().fold(0f32, |m, x| m.max(x.abs()));
    for (i, (a, b)) in whole.iter().zip(&shared).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * scale,
            "coefficient {i}: whole {a} vs shared prefix {b}"
        );
    }
}
