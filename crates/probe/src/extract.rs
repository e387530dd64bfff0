//! `extract`: probe prompts from a Wahl-o-Mat election through a model, hooked residual
//! streams reduced to one row per prompt, streamed into a resumable on-disk cache.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use probe_cache::{CacheWriter, Manifest, ShardSplit};
use probe_data::probe_prompts::{build_probe_prompts, TemplateSet};
use probe_data::wahl_o_mat::Election;
use probe_extract::{extract, rows, PositionRule};
use probe_lm::{parse_layers, HookPoint};

use crate::files::sha256_file;
use crate::model::ModelSpec;
use crate::progress::{note, progress_bar};

/// Options of [`ensure_cache`]; `ExtractOptions::new(model, election)` has the CLI's defaults.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    pub model: ModelSpec,
    /// A Wahl-o-Mat election directory (qual-o-mat layout).
    pub election: PathBuf,
    /// Parties to probe (aliases accepted); empty: the six Bundestag parties.
    pub parties: Vec<String>,
    /// Prompt template file (the built-in one unless a copy is on disk).
    pub template_file: PathBuf,
    /// Template ids to use (empty: all).
    pub templates: Vec<String>,
    /// Layers whose `hook_resid_post` is cached: fractions (`0.6L..0.9L`) or indices.
    pub layers: String,
    /// Token positions per prompt: `last-before-answer`, `answer-predicting`, `prompt-mean`.
    pub positions: String,
    /// Storage dtype of the cache: `f32` or `f16`.
    pub cache_dtype: String,
    /// Prompts per shard file.
    pub shard_size: usize,
    /// This job's shards `k/n` (independent jobs share one cache).
    pub shard: ShardSplit,
    /// Prompts per forward pass.
    pub batch_size: usize,
    /// Seed of the party-order shuffling in the prompts.
    pub seed: u64,
    /// The cache directory (default: `out/cache/<model>-<election>-<positions>`).
    pub out: Option<PathBuf>,
    /// Delete an existing cache made with other settings instead of refusing.
    pub overwrite: bool,
}

impl ExtractOptions {
    pub fn new(model: ModelSpec, election: impl Into<PathBuf>) -> Self {
        ExtractOptions {
            model,
            election: election.into(),
            parties: Vec::new(),
            template_file: PathBuf::from("data/templates/probe-prompts.toml"),
            templates: Vec::new(),
            layers: "0.6L..0.9L".into(),
            positions: "last-before-answer".into(),
            cache_dtype: "f32".into(),
            shard_size: 256,
            shard: ShardSplit::default(),
            batch_size: 16,
            seed: 0,
            out: None,
            overwrite: false,
        }
    }
}

/// A cache on disk and whether every shard of it is finished.
#[derive(Debug, Clone)]
pub struct CacheStatus {
    pub dir: PathBuf,
    pub complete: bool,
}

/// Fills (or resumes, or just validates) the cache the options describe.
pub fn ensure_cache(options: &ExtractOptions) -> Result<CacheStatus> {
    let rule = PositionRule::parse(&options.positions)?;
    let split = options.shard;
    if !matches!(options.cache_dtype.as_str(), "f32" | "f16") {
        bail!(
            "--cache-dtype must be f32 or f16, not `{}`",
            options.cache_dtype
        );
    }
    if options.batch_size == 0 || options.shard_size == 0 {
        bail!("--batch-size and --shard-size must be at least 1");
    }
    let election = Election::load(&options.election)
        .with_context(|| format!("loading election {}", options.election.display()))?;
    let parties = election.select_parties(&options.parties)?;
    let templates = TemplateSet::load(&options.template_file)?;
    let chosen = templates
        .select(&options.templates)
        .map_err(anyhow::Error::msg)?;
    let prompts = build_probe_prompts(
        &election,
        &parties,
        &chosen,
        &templates.positions,
        options.seed,
    )?;

    // the model's format and --dtype are checked now: nothing is written for a refused model
    let config = options.model.check()?.config;
    let layers = parse_layers(&options.layers, config.num_layers).context("--layers")?;
    let hooks: Vec<String> = layers
        .iter()
        .map(|&l| HookPoint::ResidPost(l).to_string())
        .collect();
    let stem = options.model.name();
    let out = options.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!("out/cache/{stem}-{}-{}", election.id, rule.name()))
    });
    let mut source = BTreeMap::new();
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
        sha256_file(&options.template_file)?,
    );
    source.insert("seed".to_string(), options.seed.to_string());
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
        model: options.model.path.display().to_string(),
        model_hash: options.model.fingerprint()?,
        dims: vec![config.hidden_size; hooks.len()],
        hooks,
        positions: rule.name().to_string(),
        dtype: options.cache_dtype.clone(),
        label_names: parties.iter().map(|p| Election::display_name(p)).collect(),
        source,
        shard_size: options.shard_size,
        rows: rows(&prompts),
    };
    // The cache (its directory, locks and manifest) is opened before the model loads, so an
    // unwritable or busy `out` fails in a second, not after the load.
    let mut writer = CacheWriter::open(&out, manifest, split, options.overwrite)?;
    let pending = writer.pending();
    let n_pending_rows = writer.pending_rows();
    note(format_args!(
        "{} prompts ({} parties × {} statements × {} templates); {} of {} shards to do → {}",
        prompts.len(),
        parties.len(),
        election.statements.len(),
        chosen.len(),
        pending.len(),
        writer.manifest().n_shards(),
        out.display()
    ));
    let start = Instant::now();
    if pending.is_empty() {
        let complete = writer.is_complete()?;
        return Ok(CacheStatus { dir: out, complete });
    }
    // Only the blocks up to the last cached layer are loaded (no output head).
    let model = options
        .model
        .load_blocks(Some(layers.iter().max().map_or(0, |l| l + 1)))?;
    let bar = progress_bar(n_pending_rows as u64, "extract");
    extract(
        &model,
        &prompts,
        rule,
        &mut writer,
        options.batch_size,
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
    note(format_args!(
        "{n_pending_rows} prompts in {:.1}s; cache {}",
        start.elapsed().as_secs_f64(),
        if complete {
            "complete"
        } else {
            "waiting for other --shard jobs"
        }
    ));
    Ok(CacheStatus { dir: out, complete })
}
