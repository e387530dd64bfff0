//! `probe scale --persona <spec>`: every persona × prompt variant through the model, the MLP
//! coefficients of the parties' value vectors at the last token, scaling factors m_p^n and
//! the party distributions ψ, ψ_g, ψ_{j,g}. Resumable and shardable like `probe extract`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use probe::scale::ScaleOptions;
use probe_latent::scale::Distribution;
use probe_latent::Summary;

use crate::common::{ModelArgs, PersonaArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A `probe vectors` output directory (default: <probes>/vectors of --probes).
    #[arg(long)]
    pub vectors: Option<PathBuf>,
    /// A `probe train` run directory, whose `vectors/` is used when --vectors is not given.
    #[arg(long)]
    pub probes: Option<PathBuf>,
    #[command(flatten)]
    pub grid: PersonaArgs,
    /// Prompt templates (the variants j).
    #[arg(long, default_value = "data/personas/prompts.toml")]
    pub prompts: PathBuf,
    /// Variant ids to use, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub variants: Vec<String>,
    /// Which selection of `probe vectors` is V̂: joint (eq. 8; default), per-layer or iqr.
    #[arg(long, default_value = "joint")]
    pub select: String,
    /// Negative scaling factors: clip (default; = the paper's formula when none are
    /// negative), shift (subtract the run's minimum) or softmax (per row).
    #[arg(long, default_value = "clip")]
    pub negative: String,
    /// Prompts per forward batch; batches follow the prompts' shared prefixes, whose K/V
    /// are computed once per batch.
    #[arg(long, default_value_t = 16, value_parser = crate::common::positive)]
    pub batch_size: usize,
    /// Prompts per shard file.
    #[arg(long, default_value_t = 1024, value_parser = crate::common::positive)]
    pub shard_size: usize,
    /// Fill only shards i with i mod n = k; the job that finds the cache complete writes ψ.
    #[arg(long, default_value = "0/1")]
    pub shard: probe_cache::ShardSplit,
    /// Output directory (default: <vectors>/../scale-<spec>).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Delete existing output made with other settings instead of refusing.
    #[arg(long)]
    pub overwrite: bool,
}

impl Args {
    pub fn options(&self) -> Result<ScaleOptions> {
        let vectors = match (&self.vectors, &self.probes) {
            (Some(v), _) => v.clone(),
            (None, Some(p)) => p.join("vectors"),
            (None, None) => bail!("give --vectors <dir> (from `probe vectors`) or --probes <run>"),
        };
        Ok(ScaleOptions {
            model: self.model.spec()?,
            vectors,
            personas: self.grid.selection(),
            prompts: self.prompts.clone(),
            variants: self.variants.clone(),
            select: self.select.clone(),
            negative: self.negative.clone(),
            batch_size: self.batch_size,
            shard_size: self.shard_size,
            shard: self.shard,
            out: self.out.clone(),
            overwrite: self.overwrite,
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    let outcome = probe::scale::scale(&args.options()?)?;
    if let Some(summary) = &outcome.summary {
        print_summary(summary, outcome.negative_coefficients, outcome.coefficients);
        eprintln!(
            "rows.csv, rows.jsonl, psi.json, psi.csv, psi.cells.jsonl (for `probe compare`) → {}",
            outcome.dir.display()
        );
    }
    Ok(())
}

fn print_summary(summary: &Summary, negative_coefficients: usize, coefficients: usize) {
    let fmt = |d: &Distribution| match &d.psi {
        Some(psi) => psi
            .0
            .iter()
            .map(|(p, x)| format!("{p} {:.3}", x))
            .collect::<Vec<_>>()
            .join("  "),
        None => "undefined (every factor ≤ 0)".into(),
    };
    println!("ψ (all {} rows): {}", summary.all.rows, fmt(&summary.all));
    for (attr, values) in &summary.by_group.0 {
        for (value, d) in &values.0 {
            println!("  ψ[{attr}={value}]: {}", fmt(d));
        }
    }
    for (variant, v) in &summary.by_variant.0 {
        println!("  ψ_j[{variant}]: {}", fmt(&v.all));
    }
    println!(
        "negative: {} of {} coefficients m_i; {} of {} scaling factors m_p^n (--negative {}); {} rows with no positive factor",
        negative_coefficients,
        coefficients,
        summary.negative_factors.count,
        summary.negative_factors.of,
        summary.negative,
        summary.undefined_rows
    );
}
