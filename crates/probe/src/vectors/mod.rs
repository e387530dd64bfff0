//! `vectors`: each party's MLP value vectors (columns of `down_proj`) ranked by cosine with
//! its probe direction — joint top-k over layers, top-k per layer, IQR outliers and the most
//! negative — with the tokens each one promotes, and a chance test per party.

mod artifact;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use probe_latent::null::Verdict;
use probe_latent::{
    cosine_scan, probe_directions, select, vocab, PartyDirection, ProbeChoice, Selection,
};
use probe_lm::burn::tensor::{Int, Tensor, TensorData};
use probe_lm::{parse_layers, Model};

pub use artifact::{
    csv_field, read, save, selections, ChanceRow, VectorRow, VectorsJson, VECTORS_JSON,
};

use crate::files::check_out_dir;
use crate::model::{check_same_model, ModelSpec};

/// Options of [`vectors`]; `VectorsOptions::new(model, probes)` has the CLI's defaults.
#[derive(Debug, Clone)]
pub struct VectorsOptions {
    pub model: ModelSpec,
    /// A `train` run directory (probes.json, probes.safetensors).
    pub probes: PathBuf,
    /// Which probe gives each party's direction: `shared`, `best`, or a hook / layer index.
    pub probe: String,
    /// Layers searched: `probed` (the probes' layers), `all`, indices or fractions.
    pub layers: String,
    /// Value vectors per party in the joint, per-layer and diametric selections.
    pub k: usize,
    /// IQR outliers: cos > Q3 + c·IQR.
    pub iqr_c: f64,
    /// Tokens kept per vector (vocabulary projection).
    pub top_tokens: usize,
    /// Random directions in each party's chance test (0 skips it).
    pub null_random: usize,
    /// Output directory (default `<probes>/vectors`).
    pub out: Option<PathBuf>,
}

impl VectorsOptions {
    pub fn new(model: ModelSpec, probes: impl Into<PathBuf>) -> Self {
        VectorsOptions {
            model,
            probes: probes.into(),
            probe: "shared".into(),
            layers: "probed".into(),
            k: 20,
            iqr_c: 2.5,
            top_tokens: 10,
            null_random: 200,
            out: None,
        }
    }
}

/// The saved selections.
#[derive(Debug)]
pub struct VectorsOutcome {
    pub dir: PathBuf,
    pub vectors: VectorsJson,
    /// Seconds the cosine scan took (model load included).
    pub scan_seconds: f64,
}

/// Scans, selects, projects to the vocabulary, tests against chance and saves.
pub fn vectors(options: &VectorsOptions) -> Result<VectorsOutcome> {
    let args = options;
    if args.k == 0 {
        bail!("-k must be at least 1");
    }
    let start = Instant::now();
    let probes = probe_train::load(&args.probes)
        .with_context(|| format!("loading probes from {}", args.probes.display()))?;
    let choice = ProbeChoice::parse(&args.probe);
    let directions = probe_directions(&probes, &choice)?;
    let modes = [
        Selection::parse("joint", args.k, args.iqr_c)?,
        Selection::parse("per-layer", args.k, args.iqr_c)?,
        Selection::parse("iqr", args.k, args.iqr_c)?,
        Selection::parse("diametric", args.k, args.iqr_c)?,
    ];
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.probes.join("vectors"));
    // an unwritable --out fails now, not after the model has run
    check_out_dir(&out)?;
    let model = args.model.load()?;
    let hidden = directions[0].direction.len();
    check_same_model(
        &args.model,
        &model,
        &probes.json.model,
        &probes.json.model_hash,
        hidden,
        "probes",
    )?;
    let vocab_size = model.config().vocab_size;
    if args.top_tokens > vocab_size {
        bail!(
            "--top-tokens {} is more than the vocabulary's {vocab_size} tokens",
            args.top_tokens
        );
    }
    let layers = value_vector_layers(
        &args.layers,
        &probes.json.report.hooks,
        model.config().num_layers,
    )?;
    let tf = &model.transformer;
    let value_vectors: Vec<(usize, Tensor<2>)> = layers
        .iter()
        .map(|&l| (l, tf.value_vectors(l).expect("layer exists")))
        .collect();
    let device = tf.device();
    let table = cosine_scan(&directions, &value_vectors, &device)?;
    let scan_seconds = start.elapsed().as_secs_f64();

    let mut rows: Vec<VectorRow> = Vec::new();
    let mut thresholds = Vec::new();
    for (p, dir) in directions.iter().enumerate() {
        thresholds.push(probe_latent::select::iqr_threshold(
            table.party(p),
            args.iqr_c,
        ));
        for mode in modes {
            for (rank, s) in select(&table, p, mode)?.into_iter().enumerate() {
                rows.push(VectorRow {
                    party: dir.party.clone(),
                    mode: mode.name().to_string(),
                    rank: rank + 1,
                    layer: s.layer,
                    neuron: s.neuron,
                    cos: s.cos,
                    tokens: Vec::new(),
                });
            }
        }
    }
    project_to_vocabulary(&model, &value_vectors, &mut rows, args.top_tokens)?;
    let chance = chance_rows(args, &probes, &directions, &value_vectors, &device)?;

    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let json = VectorsJson {
        format_version: 1,
        model: probes.json.model.clone(),
        model_hash: probes.json.model_hash.clone(),
        hidden_size: hidden,
        probes: args.probes.display().to_string(),
        probe: args.probe.clone(),
        parties: directions.iter().map(|d| d.party.clone()).collect(),
        probe_sources: directions.iter().map(|d| d.source.clone()).collect(),
        layers: table.layers.clone(),
        neurons: table.neurons,
        k: args.k,
        iqr_c: args.iqr_c,
        iqr_thresholds: thresholds,
        vectors: rows,
        chance,
    };
    save(&out, &json, &table.cos, &directions)?;
    Ok(VectorsOutcome {
        dir: out,
        vectors: json,
        scan_seconds,
    })
}

/// Each party's joint top-k mean cosine against random directions and against the directions
/// of its own label-shuffled probes (`probe train --null-seeds`).
fn chance_rows(
    args: &VectorsOptions,
    probes: &probe_train::LoadedProbes,
    directions: &[PartyDirection],
    value_vectors: &[(usize, Tensor<2>)],
    device: &probe_lm::burn::tensor::Device,
) -> Result<Vec<ChanceRow>> {
    let shuffled: Vec<Vec<Vec<f32>>> = probes
        .null_directions
        .iter()
        .map(|seed| {
            seed.iter()
                .map(|d| d.iter().map(|&x| x as f32).collect())
                .collect()
        })
        .collect();
    let tests = probe_latent::null::party_chance_tests(
        directions,
        &shuffled,
        value_vectors,
        args.k,
        args.null_random,
        device,
    )?;
    Ok(directions
        .iter()
        .zip(tests)
        .map(|(dir, t)| ChanceRow {
            party: dir.party.clone(),
            statistic: format!("mean cosine of the joint top-{} value vectors", args.k),
            above_chance: t.verdict == Verdict::Above,
            verdict: t.verdict,
            random: t.random,
            shuffled: t.shuffled,
        })
        .collect())
}

/// The layers `--layers` names; `probed` is the layers of the hooks the probes were trained on.
pub fn value_vector_layers(spec: &str, hooks: &[String], num_layers: usize) -> Result<Vec<usize>> {
    if spec != "probed" {
        return parse_layers(spec, num_layers).context("--layers");
    }
    let mut layers = Vec::new();
    for hook in hooks {
        let point = probe_lm::HookPoint::parse(hook, num_layers)
            .with_context(|| format!("the probes' hook `{hook}`"))?;
        if let Some(layer) = point.layer() {
            layers.push(layer);
        }
    }
    layers.sort_unstable();
    layers.dedup();
    if layers.is_empty() {
        bail!("--layers probed: the probes name no block layer (hooks {hooks:?}); give --layers");
    }
    Ok(layers)
}

/// Fills `tokens` of every row: each distinct (layer, neuron) is projected once.
fn project_to_vocabulary(
    model: &Model,
    value_vectors: &[(usize, Tensor<2>)],
    rows: &mut [VectorRow],
    top: usize,
) -> Result<()> {
    if top == 0 || rows.is_empty() {
        return Ok(());
    }
    let tf = &model.transformer;
    let tok = model.tokenizer()?;
    let mut wanted: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for r in rows.iter() {
        wanted.entry(r.layer).or_default().push(r.neuron);
    }
    let mut keys = Vec::new();
    let mut vectors = Vec::new();
    for (layer, mut neurons) in wanted {
        neurons.sort_unstable();
        neurons.dedup();
        let vv = &value_vectors
            .iter()
            .find(|(l, _)| *l == layer)
            .expect("selected from a searched layer")
            .1;
        let hidden = vv.dims()[1];
        let idx: Vec<i64> = neurons.iter().map(|&n| n as i64).collect();
        let picked = vv.clone().select(
            0,
            Tensor::<1, Int>::from_data(TensorData::new(idx, [neurons.len()]), &vv.device()),
        );
        let data = picked
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading value vectors: {e:?}"))?;
        for (n, v) in neurons.iter().zip(data.chunks_exact(hidden)) {
            keys.push((layer, *n));
            vectors.push(v.to_vec());
        }
    }
    let norm = tf
        .final_norm_weight()
        .context("the model was loaded without its output head")?;
    let tops = vocab::top_tokens(&tf.unembedding(), &norm, &vectors, top)?;
    let by_key: HashMap<(usize, usize), Vec<String>> = keys
        .into_iter()
        .zip(tops)
        .map(|(k, t)| (k, t.iter().map(|(id, _)| tok.token_text(*id)).collect()))
        .collect();
    for r in rows.iter_mut() {
        r.tokens = by_key[&(r.layer, r.neuron)].clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn value_vectors_default_to_the_probed_layers() {
        let hooks = [
            "blocks.24.hook_resid_post",
            "blocks.25.hook_resid_post",
            "blocks.24.hook_resid_mid",
        ]
        .map(String::from);
        let probed = super::value_vector_layers("probed", &hooks, 30).unwrap();
        assert_eq!(probed, [24, 25]);
        assert_eq!(
            super::value_vector_layers("all", &hooks, 30).unwrap().len(),
            30
        );
        assert_eq!(
            super::value_vector_layers("0.8L..0.9L", &hooks, 30).unwrap(),
            [24, 25, 26, 27]
        );
        assert!(super::value_vector_layers("probed", &[], 30).is_err());
        // The default is `probed`.
        let options = super::VectorsOptions::new(super::ModelSpec::new("m.gguf"), "p");
        assert_eq!(options.layers, "probed");
    }
}
