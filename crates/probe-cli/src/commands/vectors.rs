//! `probe vectors`: each party's MLP value vectors (columns of `down_proj`) ranked by cosine
//! with its probe direction — joint top-k over layers, top-k per layer, IQR outliers and the
//! most negative — with the tokens each one promotes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use probe_latent::{
    cosine_scan, probe_directions, select, vocab, PartyDirection, ProbeChoice, Selected, Selection,
};
use probe_lm::burn::tensor::{Int, Tensor, TensorData};
use probe_lm::{parse_layers, Model};
use safetensors::Dtype;
use serde::{Deserialize, Serialize};

use crate::common::{write_safetensors, ModelArgs};

pub const VECTORS_JSON: &str = "vectors.json";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A `probe train` run directory (holding probes.json and probes.safetensors).
    #[arg(long)]
    pub probes: PathBuf,
    /// Which probe gives each party's direction: shared (trained on all cached layers; the
    /// default), best (per party, the per-layer probe with the best CV balanced accuracy) or
    /// a hook / layer index of a per-layer probe.
    #[arg(long, default_value = "shared")]
    pub probe: String,
    /// Layers whose value vectors are searched: `probed` (default: the layers the probes were
    /// trained on, as the paper searches them), `all`, indices or fractions (0.6L..0.9L).
    #[arg(long, default_value = "probed")]
    pub layers: String,
    /// Value vectors per party in the joint, per-layer and diametric selections.
    #[arg(long, short, default_value_t = 20, value_parser = crate::common::positive)]
    pub k: usize,
    /// IQR outliers: cos > Q3 + c·IQR.
    #[arg(long = "iqr-c", default_value_t = 2.5)]
    pub iqr_c: f64,
    /// Tokens shown per vector (vocabulary projection).
    #[arg(long, default_value_t = 10)]
    pub top_tokens: usize,
    /// Vectors per party printed (joint selection).
    #[arg(long, default_value_t = 5)]
    pub print: usize,
    /// Random directions in the chance test of each party's selection (0 skips it).
    #[arg(long, default_value_t = 200)]
    pub null_random: usize,
    /// Output directory (default: <probes>/vectors).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// One selected value vector, as written to vectors.json / vectors.csv.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorRow {
    pub party: String,
    pub mode: String,
    pub rank: usize,
    pub layer: usize,
    pub neuron: usize,
    pub cos: f32,
    pub tokens: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorsJson {
    pub format_version: u32,
    pub model: String,
    pub model_hash: String,
    pub hidden_size: usize,
    pub probes: String,
    pub probe: String,
    pub parties: Vec<String>,
    /// Per party: `shared` or the hook of its per-layer probe.
    pub probe_sources: Vec<String>,
    pub layers: Vec<usize>,
    pub neurons: usize,
    pub k: usize,
    pub iqr_c: f64,
    /// Per party: the IQR threshold Q3 + c·IQR of its cosines.
    pub iqr_thresholds: Vec<f64>,
    pub vectors: Vec<VectorRow>,
    /// Per party: is the joint top-k selection above chance? (Absent in older files.)
    #[serde(default)]
    pub chance: Vec<ChanceRow>,
}

/// One party's selection against chance: the mean cosine of its joint top-k vectors, against
/// the same statistic for random directions and for label-shuffled probes' directions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChanceRow {
    pub party: String,
    pub statistic: String,
    pub random: Option<probe_latent::null::ChanceTest>,
    pub shuffled: Option<probe_latent::null::ChanceTest>,
    /// p < 0.05 against every null that was run.
    pub above_chance: bool,
}

impl VectorsJson {
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(VECTORS_JSON);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (run `probe vectors` on the probes first)",
                path.display()
            )
        })?;
        let json: VectorsJson =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if json.format_version != 1 {
            bail!(
                "{}: format version {} (this probe reads 1)",
                path.display(),
                json.format_version
            );
        }
        Ok(json)
    }

    /// V̂ per party (in `parties` order) for one selection mode.
    pub fn selections(&self, mode: &str) -> Result<Vec<Vec<Selected>>> {
        let mut out = vec![Vec::new(); self.parties.len()];
        for v in self.vectors.iter().filter(|v| v.mode == mode) {
            let p = self
                .parties
                .iter()
                .position(|p| p == &v.party)
                .with_context(|| format!("vectors.json names unknown party `{}`", v.party))?;
            out[p].push(Selected {
                layer: v.layer,
                neuron: v.neuron,
                cos: v.cos,
            });
        }
        Ok(out)
    }
}

/// Checks that `model` is the model the probes (or vectors) were made with: the content
/// fingerprint must match, and so must the hidden size.
pub fn check_same_model(
    args: &ModelArgs,
    model: &Model,
    trained_on: &str,
    trained_hash: &str,
    hidden: usize,
    what: &str,
) -> Result<()> {
    let hash = probe_extract::model_fingerprint(&args.model)?;
    let size = model.config().hidden_size;
    if hidden != size {
        bail!(
            "the {what} have {hidden} dimensions but {} has hidden size {size}: they were made \
             with another model ({trained_on})",
            args.model.display()
        );
    }
    if hash != trained_hash {
        bail!(
            "the {what} were made with {trained_on} (fingerprint {}…), not {} (fingerprint {}…)",
            &trained_hash[..trained_hash.len().min(12)],
            args.model.display(),
            &hash[..12]
        );
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
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
    crate::common::check_out_dir(&out)?;
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
    let chance = chance_rows(&args, &probes, &directions, &table, &value_vectors, &device)?;

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
    write_outputs(&out, &json, &table.cos, &directions)?;
    print_summary(&json, args.print);
    eprintln!(
        "{} parties × {} layers × {} neurons scanned in {scan_seconds:.2}s; {} vectors → {}",
        json.parties.len(),
        json.layers.len(),
        json.neurons,
        json.vectors.len(),
        out.display()
    );
    Ok(())
}

/// Each party's joint top-k mean cosine against random directions and against the directions of
/// the label-shuffled probes (`probe train --null-seeds`; all parties' pooled: none of them
/// knows a party).
fn chance_rows(
    args: &Args,
    probes: &probe_train::LoadedProbes,
    directions: &[PartyDirection],
    table: &probe_latent::CosineTable,
    value_vectors: &[(usize, Tensor<2>)],
    device: &probe_lm::burn::tensor::Device,
) -> Result<Vec<ChanceRow>> {
    use probe_latent::null::{chance_test, random_directions, top_k_mean};
    let dim = directions[0].direction.len();
    let null_means = |dirs: Vec<Vec<f32>>, source: &str| -> Result<Vec<f64>> {
        if dirs.is_empty() {
            return Ok(Vec::new());
        }
        let dirs: Vec<PartyDirection> = dirs
            .into_iter()
            .enumerate()
            .map(|(i, d)| PartyDirection {
                party: format!("{source}{i}"),
                source: source.into(),
                direction: d,
            })
            .collect();
        let t = cosine_scan(&dirs, value_vectors, device)?;
        Ok((0..dirs.len())
            .map(|i| top_k_mean(t.party(i), args.k))
            .collect())
    };
    let random = null_means(random_directions(args.null_random, dim, 0), "random")?;
    let shuffled = null_means(
        probes
            .null_directions
            .iter()
            .flatten()
            .map(|d| d.iter().map(|&x| x as f32).collect())
            .collect(),
        "shuffled",
    )?;
    let mut out = Vec::new();
    for (p, dir) in directions.iter().enumerate() {
        let observed = top_k_mean(table.party(p), args.k);
        let random = (!random.is_empty()).then(|| chance_test(observed, &random));
        let shuffled = (!shuffled.is_empty()).then(|| chance_test(observed, &shuffled));
        let tests: Vec<&probe_latent::null::ChanceTest> =
            random.iter().chain(shuffled.iter()).collect();
        out.push(ChanceRow {
            party: dir.party.clone(),
            statistic: format!("mean cosine of the joint top-{} value vectors", args.k),
            above_chance: !tests.is_empty() && tests.iter().all(|t| t.p < 0.05),
            random,
            shuffled,
        });
    }
    Ok(out)
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

fn write_outputs(
    out: &Path,
    json: &VectorsJson,
    cos: &[f32],
    directions: &[PartyDirection],
) -> Result<()> {
    let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let i64_bytes = |v: &[usize]| {
        v.iter()
            .flat_map(|&x| (x as i64).to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let p = json.parties.len();
    let mut entries = vec![
        (
            "cosines".to_string(),
            Dtype::F32,
            vec![p, json.layers.len(), json.neurons],
            f32_bytes(cos),
        ),
        (
            "layers".to_string(),
            Dtype::I64,
            vec![json.layers.len()],
            i64_bytes(&json.layers),
        ),
        (
            "directions".to_string(),
            Dtype::F32,
            vec![p, json.hidden_size],
            f32_bytes(
                &directions
                    .iter()
                    .flat_map(|d| d.direction.iter().copied())
                    .collect::<Vec<_>>(),
            ),
        ),
    ];
    for mode in ["joint", "per-layer", "iqr", "diametric"] {
        let rows: Vec<&VectorRow> = json.vectors.iter().filter(|r| r.mode == mode).collect();
        let party: Vec<usize> = rows
            .iter()
            .map(|r| json.parties.iter().position(|p| p == &r.party).unwrap_or(0))
            .collect();
        let col = |f: &dyn Fn(&VectorRow) -> usize| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
        for (name, values) in [
            ("party", party),
            ("layer", col(&|r| r.layer)),
            ("neuron", col(&|r| r.neuron)),
        ] {
            entries.push((
                format!("{mode}.{name}"),
                Dtype::I64,
                vec![rows.len()],
                i64_bytes(&values),
            ));
        }
        let cos: Vec<f32> = rows.iter().map(|r| r.cos).collect();
        entries.push((
            format!("{mode}.cos"),
            Dtype::F32,
            vec![rows.len()],
            f32_bytes(&cos),
        ));
    }
    let metadata: HashMap<String, String> = [
        ("parties".to_string(), serde_json::to_string(&json.parties)?),
        ("model".to_string(), json.model.clone()),
        ("probe".to_string(), json.probe.clone()),
    ]
    .into_iter()
    .collect();
    write_safetensors(&out.join("vectors.safetensors"), &entries, metadata)?;
    probe_cache::write_atomic(
        &out.join(VECTORS_JSON),
        serde_json::to_string_pretty(json)?.as_bytes(),
    )?;
    let mut csv = String::from("party,mode,rank,layer,neuron,cos,top_tokens\n");
    for r in &json.vectors {
        csv.push_str(&format!(
            "{},{},{},{},{},{:.6},{}\n",
            csv_field(&r.party),
            r.mode,
            r.rank,
            r.layer,
            r.neuron,
            r.cos,
            // Escaped (`\n`, `\t`, …) so that every vector is one line.
            csv_field(
                &r.tokens
                    .iter()
                    .map(|t| t.escape_debug().to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            )
        ));
    }
    probe_cache::write_atomic(&out.join("vectors.csv"), csv.as_bytes())?;
    Ok(())
}

/// Quotes a CSV field when needed (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn print_summary(json: &VectorsJson, per_party: usize) {
    for c in &json.chance {
        let fmt = |t: &Option<probe_latent::null::ChanceTest>| match t {
            Some(t) => format!(
                "z {:+.1}, p {:.3} (null {:.3} ± {:.3}, n {})",
                t.z, t.p, t.mean, t.sd, t.n
            ),
            None => "-".into(),
        };
        let observed = c
            .random
            .as_ref()
            .or(c.shuffled.as_ref())
            .map_or(f64::NAN, |t| t.observed);
        println!(
            "{}: top-{} mean cos {observed:.3}; vs random directions {}; vs label-shuffled probes {}",
            c.party,
            json.k,
            fmt(&c.random),
            fmt(&c.shuffled)
        );
        if !c.above_chance {
            eprintln!(
                "warning: {}'s value-vector selection is not above chance (p ≥ 0.05 against a null): its vectors and the ψ built on them may reflect no party signal",
                c.party
            );
        }
    }
    for (p, party) in json.parties.iter().enumerate() {
        let count = |mode: &str| {
            json.vectors
                .iter()
                .filter(|r| r.party == *party && r.mode == mode)
                .count()
        };
        println!(
            "{party} (probe {}; IQR outliers: {} above cos {:.3})",
            json.probe_sources[p],
            count("iqr"),
            json.iqr_thresholds[p]
        );
        for r in json
            .vectors
            .iter()
            .filter(|r| r.party == *party && r.mode == "joint")
            .take(per_party)
        {
            println!(
                "  #{:<2} L{:<2} n{:<6} cos {:+.3}  {}",
                r.rank,
                r.layer,
                r.neuron,
                r.cos,
                r.tokens
                    .iter()
                    .take(8)
                    .map(|t| format!("{t:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
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
        // The flag's default is `probed`.
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: super::Args,
        }
        let cli = Cli::parse_from(["x", "model.gguf", "--probes", "p"]);
        assert_eq!(cli.args.layers, "probed");
    }
}
