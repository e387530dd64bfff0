//! `probe simulate`: one simulated respondent per real respondent of a survey, persona from the
//! respondent's own demographics, every item asked; the table scored against the real one.
//! Resumable (`respondents.jsonl`), shardable (`--shard k/n`).

use std::path::PathBuf;

use anyhow::Result;
use probe::simulate::{Respondents, SimulateOptions};

use crate::common::ModelArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The survey: a folder with `codebook.toml` (e.g. data/surveys/anes96) or a codebook.
    #[arg(long)]
    pub survey: PathBuf,
    /// Ask without the persona (every twin the same unsteered model: the null).
    #[arg(long)]
    pub no_persona: bool,
    /// Sampling temperatures of the answers; several make a sweep (0: the most probable option).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub temperature: Vec<f32>,
    /// Which respondents: all, train, validation or test (of the seeded split).
    #[arg(long, default_value = "all")]
    pub respondents: String,
    /// Only the first N selected respondents (in survey order).
    #[arg(long, value_parser = crate::common::positive)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub split: crate::common::SplitArgs,
    /// Seed of the sampled answers.
    #[arg(long, default_value_t = 0)]
    pub sample_seed: u64,
    /// Prompts per forward pass.
    #[arg(long, default_value_t = 8, value_parser = crate::common::positive)]
    pub batch_size: usize,
    /// Plain-text prompts even when the model has a chat template.
    #[arg(long)]
    pub no_chat: bool,
    /// This job's slice of the respondents, k/n.
    #[arg(long, default_value = "0/1")]
    pub shard: probe_cache::ShardSplit,
    #[command(flatten)]
    pub intervals: crate::common::BootstrapArgs,
    /// Smoothing ε for KL.
    #[arg(long, default_value_t = 1e-4, value_parser = crate::common::non_negative)]
    pub kl_smoothing: f64,
    /// Spearman instead of Pearson correlations between items.
    #[arg(long)]
    pub spearman: bool,
    /// Root of run outputs.
    #[arg(long, default_value = "probes")]
    pub probes_dir: PathBuf,
    /// Another finished simulation of the same respondents (e.g. the base model's, when this
    /// one runs a fine-tuned adapter): scored beside this one, and this one minus it by a
    /// paired bootstrap over the respondents.
    #[arg(long)]
    pub versus: Option<PathBuf>,
    /// Output directory (default `<probes-dir>/<model>/simulate-<survey>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Delete an existing simulation made with other settings instead of refusing.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: Args) -> Result<()> {
    let mut options = SimulateOptions::new(args.model.spec()?, args.survey);
    options.persona = !args.no_persona;
    options.temperatures = args.temperature;
    options.respondents = Respondents::parse(&args.respondents)?;
    options.limit = args.limit;
    options.split = args.split.options();
    options.seed = args.sample_seed;
    options.batch_size = args.batch_size;
    options.chat = !args.no_chat;
    options.shard = args.shard;
    options.bootstrap = args.intervals.settings();
    options.kl_smoothing = args.kl_smoothing;
    options.spearman = args.spearman;
    options.probes_dir = args.probes_dir;
    options.versus = args.versus;
    options.out = args.out;
    options.overwrite = args.overwrite;
    let outcome = probe::simulate::simulate(&options)?;
    match &outcome.scores {
        Some(scores) => print!("{}", probe::simulate::ScoresTable(scores)),
        None => println!(
            "{} of {} respondents simulated (other shards pending)",
            outcome.done, outcome.selected
        ),
    }
    println!("→ {}", outcome.dir.display());
    Ok(())
}
