//! `probe run-with-cache <model> --hooks ... --out x.safetensors`: hooked activations of a set
//! of prompts, in one safetensors file that `safetensors.numpy.load_file` reads.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use probe::run_with_cache::{self, RunWithCacheOptions};
use probe_lm::{Logits, Model};

use crate::common::ModelArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reduce {
    /// Keep every position: `[n, seq, dim]`, left-padded with zeros (see `attention_mask`).
    None,
    /// The last token of each prompt: `[n, dim]`.
    Last,
    /// Mean over each prompt's real tokens: `[n, dim]`.
    Mean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogitsArg {
    None,
    Last,
    All,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Hook points: names or patterns separated by `;`, e.g.
    /// "blocks.{0.6L..0.9L}.hook_resid_post; blocks.*.mlp.hook_post; hook_embed".
    #[arg(long, default_value = "blocks.{0.6L..0.9L}.hook_resid_post")]
    pub hooks: String,
    /// Output safetensors file.
    #[arg(long, short)]
    pub out: PathBuf,
    /// A prompt (repeatable).
    #[arg(long = "prompt", short = 'p')]
    pub prompts: Vec<String>,
    /// A file of prompts: one per line, or JSONL with a "prompt" field.
    #[arg(long)]
    pub prompts_file: Option<PathBuf>,
    /// Token ids, comma-separated (repeatable); for models without a tokenizer.
    #[arg(long = "ids")]
    pub ids: Vec<String>,
    /// Benchmark input: this many prompts of random token ids (with --seq-len, --seed).
    #[arg(long)]
    pub random_prompts: Option<usize>,
    /// Tokens per random prompt (with --random-prompts).
    #[arg(long, default_value_t = 64)]
    pub seq_len: usize,
    /// Seed of the random prompts (with --random-prompts).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Wrap each prompt as a user turn in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Which positions of each prompt to keep.
    #[arg(long, value_enum, default_value_t = Reduce::None)]
    pub reduce: Reduce,
    /// Also store logits (`logits`).
    #[arg(long, value_enum, default_value_t = LogitsArg::None)]
    pub logits: LogitsArg,
    /// Prompts per forward pass (padded to the longest in the batch).
    #[arg(long, default_value_t = 16, value_parser = crate::common::positive)]
    pub batch_size: usize,
    /// Write {"tokens", "forward_seconds", "tokens_per_second", "steady_tokens_per_second"}
    /// here (for benchmarks; "steady" leaves out the first batch to finish, which on a GPU
    /// carries the kernels' warm-up).
    #[arg(long)]
    pub timing_json: Option<PathBuf>,
}

fn parse_ids(text: &str) -> Result<Vec<u32>> {
    text.split(',')
        .map(|t| {
            t.trim()
                .parse::<u32>()
                .with_context(|| format!("`{t}` in --ids is not a token id"))
        })
        .collect()
}

fn read_prompts_file(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let jsonl = path.extension().is_some_and(|e| e == "jsonl");
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        if jsonl {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
            let p = v["prompt"]
                .as_str()
                .with_context(|| format!("{}:{}: no \"prompt\" string", path.display(), i + 1))?;
            out.push(p.to_string());
        } else {
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// All inputs as token ids, in order: --prompt, --prompts-file, --ids, --random-prompts.
fn collect_inputs(args: &Args, model: &Model) -> Result<Vec<Vec<u32>>> {
    let mut texts = args.prompts.clone();
    if let Some(path) = &args.prompts_file {
        texts.extend(read_prompts_file(path)?);
    }
    let mut seqs = Vec::new();
    if !texts.is_empty() {
        seqs = run_with_cache::tokenize(model, &texts, args.chat)?;
    }
    for ids in &args.ids {
        seqs.push(parse_ids(ids)?);
    }
    if let Some(n) = args.random_prompts {
        let vocab = model.config().vocab_size;
        seqs.extend(run_with_cache::random_inputs(
            vocab,
            n,
            args.seq_len,
            args.seed,
        )?);
    }
    if seqs.is_empty() {
        bail!("no input: give --prompt, --prompts-file, --ids or --random-prompts");
    }
    Ok(seqs)
}

impl Args {
    pub fn options(&self) -> RunWithCacheOptions {
        RunWithCacheOptions {
            hooks: self.hooks.clone(),
            reduce: match self.reduce {
                Reduce::None => run_with_cache::Reduce::None,
                Reduce::Last => run_with_cache::Reduce::Last,
                Reduce::Mean => run_with_cache::Reduce::Mean,
            },
            logits: match self.logits {
                LogitsArg::None => Logits::None,
                LogitsArg::Last => Logits::Last,
                LogitsArg::All => Logits::All,
            },
            batch_size: self.batch_size,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    crate::common::check_out_file(&args.out, &["safetensors"])?;
    let options = args.options();
    let n_layers = args.model.info()?.config.num_layers;
    let model = args.model.load_blocks(options.blocks_needed(n_layers)?)?;
    let seqs = collect_inputs(&args, &model)?;
    let acts = run_with_cache::run_with_cache(&model, &seqs, &options)?;
    acts.save(&args.out, &args.model.model.display().to_string())?;
    let t = acts.timing;
    eprintln!(
        "{} prompts, {} tokens in {:.2}s ({:.1} tok/s) → {}",
        t.prompts,
        t.tokens,
        t.forward_seconds,
        t.tokens_per_second,
        args.out.display()
    );
    if let Some(path) = &args.timing_json {
        std::fs::write(path, serde_json::to_string(&t)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
