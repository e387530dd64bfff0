//! `probe extract`: probe prompts from a Wahl-o-Mat election through a model, hooked residual
//! streams reduced to one row per prompt, streamed into a resumable on-disk cache.

use std::path::PathBuf;

use anyhow::Result;

use crate::common::ModelArgs;

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
    pub shard: probe_cache::ShardSplit,
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

impl Args {
    pub fn options(&self) -> Result<probe::ExtractOptions> {
        Ok(probe::ExtractOptions {
            model: self.model.spec()?,
            election: self.election.clone(),
            parties: self.parties.clone(),
            template_file: self.template_file.clone(),
            templates: self.templates.clone(),
            layers: self.layers.clone(),
            positions: self.positions.clone(),
            cache_dtype: self.cache_dtype.clone(),
            shard_size: self.shard_size,
            shard: self.shard,
            batch_size: self.batch_size,
            seed: self.seed,
            out: self.out.clone(),
            overwrite: self.overwrite,
        })
    }
}

/// Fills (or resumes, or just validates) the cache `args` describe; returns its directory and
/// whether every shard is finished.
pub fn ensure_cache(args: &Args) -> Result<(PathBuf, bool)> {
    let status = probe::ensure_cache(&args.options()?)?;
    Ok((status.dir, status.complete))
}
