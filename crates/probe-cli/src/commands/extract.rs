//! `probe extract`: probe prompts from a Wahl-o-Mat election through a model, hooked residual
//! streams reduced to one row per prompt, streamed into a resumable on-disk cache.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use probe_cache::{CacheWriter, Manifest, ShardSplit};
use probe_data::probe_prompts::{build_probe_prompts, TemplateSet};
use probe_data::wahl_o_mat::Election;
use probe_extract::{extract, model_fingerprint, rows, PositionRule};
use probe_lm::{parse_layers, HookPoint};

use crate::common::{progress_bar, sha256_file, ModelArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A Wahl-o-Mat election directory (qual-o-mat layout), e.g. data/demo/wahl-o-mat/2099-demowahl.
    #[arg(long)]
    pub election: PathBuf,
    /// Parties to probe, comma-separated (aliases accepted); default: the six Bundestag parties.
    #[arg(long, value_delimiter = ',')]
    pub parties: Vec<String>,
    /// Prompt template file.
    #[arg(long, default_value = "data/templates/probe-prompts.toml")]
    pub template_file: PathBuf,
    /// Template ids to use, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub templates: Vec<String>,
    /// Layers whose `hook_resid_post` is cached: fractions (0.6L..0.9L) or indices.
    #[arg(long, default_value = "0.6L..0.9L")]
    pub layers: String,
    /// Token positions per prompt: last-before-answer (default, leak-free), answer-predicting
    /// (the authors' rule; sees the answer), prompt-mean.
    #[arg(long, default_value = "last-before-answer")]
    pub positions: String,
    /// Storage dtype of the cache: f32 or f16 (the model's own is `--dtype`).
    #[arg(long, default_value = "f32")]
    pub cache_dtype: String,
    /// Prompts per shard file.
    #[arg(long, default_value_t = 256, value_parser = crate::common::positive)]
    pub shard_size: usize,
    /// Fill only shards i with i mod n = k (independent jobs, e.g. a SLURM array, share one cache).
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// Prompts per forward pass (prompts of similar length are batched together).
    #[arg(long, default_value_t = 16, value_parser = crate::common::positive)]
    pub batch_size: usize,
    /// Seed of the party-order shuffling in the prompts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The activation cache directory (default: out/cache/<model>-<election>-<positions>).
    /// `probe train` writes its probes elsewhere: under --probes-dir.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Delete an existing cache made with other settings instead of refusing.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: Args) -> Result<()> {
    ensure_cache(&args).map(|_| ())
}

/// Fills (or resumes, or just validates) the cache `args` describe; returns its directory and
/// whether every shard is finished.
pub fn ensure_cache(args: &Args) -> Result<(PathBuf, bool)> {
    let rule = PositionRule::parse(&args.positions)?;
    let split: ShardSplit = args
        .shard
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--shard {e}"))?;
    if !matches!(args.cache_dtype.as_str(), "f32" | "f16") {
        anyhow::bail!(
            "--cache-dtype must be f32 or f16, not `{}`",
            args.cache_dtype
        );
    }
    let election = Election::load(&args.election)
        .with_context(|| format!("loading election {}", args.election.display()))?;
    let parties = election.select_parties(&args.parties)?;
    let templates = TemplateSet::load(&args.template_file)?;
    let chosen = templates
        .select(&args.templates)
        .map_err(anyhow::Error::msg)?;
    let prompts = build_probe_prompts(
        &election,
        &parties,
        &chosen,
        &templates.positions,
        args.seed,
    )?;

    let config = args.model.info()?.config;
    let layers = parse_layers(&args.layers, config.num_layers).context("--layers")?;
    let hooks: Vec<String> = layers
        .iter()
        .map(|&l| HookPoint::ResidPost(l).to_string())
        .collect();
    let stem = args.model.name();
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!("out/cache/{stem}-{}-{}", election.id, rule.name()))
    });
    let mut source = std::collections::BTreeMap::new();
    source.insert("election".to_string(), election.id.clone());
    source.insert(
        "templates".to_string(),
        chosen
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    source.insert(
        "template_file_sha256".to_string(),
        sha256_file(&args.template_file)?,
    );
    source.insert("seed".to_string(), args.seed.to_string());
    // the prompts themselves: an election edited under the same directory name (a changed
    // statement text) must not reuse the old activations
    source.insert(
        "inputs_sha256".to_string(),
        probe_cache::fingerprint_texts(
            prompts
                .iter()
                .flat_map(|p| [p.id.as_str(), p.prompt.as_str(), p.answer.as_str()]),
        ),
    );
    let manifest = Manifest {
        format_version: probe_cache::FORMAT_VERSION,
        model: args.model.model.display().to_string(),
        model_hash: model_fingerprint(&args.model.model)?,
        dims: vec![config.hidden_size; hooks.len()],
        hooks,
        positions: rule.name().to_string(),
        dtype: args.cache_dtype.clone(),
        label_names: parties.iter().map(|p| Election::display_name(p)).collect(),
        source,
        shard_size: args.shard_size.max(1),
        rows: rows(&prompts),
    };
    // The cache (its directory, locks and manifest) is opened before the model loads, so an
    // unwritable or busy --out fails in a second, not after the load.
    let mut writer = CacheWriter::open(&out, manifest, split, args.overwrite)?;
    let pending = writer.pending();
    let n_pending_rows: usize = pending
        .iter()
        .map(|&i| {
            let (s, e) = writer.manifest().shard_rows(i);
            e - s
        })
        .sum();
    eprintln!(
        "{} prompts ({} parties × {} statements × {} templates); {} of {} shards to do → {}",
        prompts.len(),
        parties.len(),
        election.statements.len(),
        chosen.len(),
        pending.len(),
        writer.manifest().n_shards(),
        out.display()
    );
    let start = Instant::now();
    if pending.is_empty() {
        let complete = writer.is_complete()?;
        return Ok((out, complete));
    }
    // Only the blocks up to the last cached layer are loaded (no output head).
    let model = args
        .model
        .load_blocks(Some(layers.iter().max().map_or(0, |l| l + 1)))?;
    let bar = progress_bar(n_pending_rows as u64, "extract");
    extract(
        &model,
        &prompts,
        rule,
        &mut writer,
        args.batch_size,
        &|done, tokens| {
            bar.set_position(done as u64);
            bar.set_message(format!(
                "{:.0} tok/s",
                tokens as f64 / start.elapsed().as_secs_f64()
            ));
        },
    )?;
    bar.finish_and_clear();
    let complete = writer.is_complete()?;
    eprintln!(
        "{n_pending_rows} prompts in {:.1}s; cache {}",
        start.elapsed().as_secs_f64(),
        if complete {
            "complete"
        } else {
            "waiting for other --shard jobs"
        }
    );
    Ok((out, complete))
}
