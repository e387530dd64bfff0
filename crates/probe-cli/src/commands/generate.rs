//! `probe generate <model> "<prompt>"`: greedy or sampled continuation with a KV cache.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use probe_lm::{generate, GenerateParams};

use crate::common::ModelArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt; several may be given and are decoded as one left-padded batch.
    #[arg(required = true)]
    pub prompts: Vec<String>,
    /// Number of tokens to generate.
    #[arg(short = 'n', long, default_value_t = 32)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(short, long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling: sample from the smallest set of tokens whose probability reaches p (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// 0 disables top-k.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Random seed of the sampler (the same seed gives the same continuation).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when the continuation contains this string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Wrap the prompt as a user turn in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Print one JSON object per prompt instead of text.
    #[arg(long)]
    pub json: bool,
    /// Keep decoding past end-of-sequence tokens (for benchmarks).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Write {"prefill_seconds", "decode_tokens", "decode_seconds", "decode_tokens_per_second"}
    /// here (decode = every token after the first, which comes with the prefill).
    #[arg(long)]
    pub timing_json: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let params = GenerateParams {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        seed: args.seed,
        stop: args.stop.clone(),
        ignore_eos: args.ignore_eos,
    };
    params.check()?;
    let model = args.model.load()?;
    let tok = model.tokenizer()?;
    let prompts = probe::tokenize(&model, &args.prompts, args.chat)?;
    let start = Instant::now();
    let bar = crate::common::progress_bar(args.max_new_tokens as u64, "generating");
    let mut first_token_secs = None;
    let gens = generate(&model.transformer, tok, &prompts, &params, |n| {
        if n == 1 {
            first_token_secs = Some(start.elapsed().as_secs_f64());
        }
        bar.set_position(n as u64)
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    for (prompt, g) in args.prompts.iter().zip(&gens) {
        if args.json {
            let v = serde_json::json!({"prompt": prompt, "text": g.text, "token_ids": g.token_ids, "finish_reason": g.finish_reason});
            writeln!(out, "{v}")?;
        } else if gens.len() == 1 {
            writeln!(out, "{}", g.text)?;
        } else {
            writeln!(out, "{prompt:?} → {:?}", g.text)?;
        }
    }
    let new_tokens: usize = gens.iter().map(|g| g.token_ids.len()).sum();
    if let Some(path) = &args.timing_json {
        let steps = gens.iter().map(|g| g.token_ids.len()).max().unwrap_or(0);
        let prefill = first_token_secs.unwrap_or(secs);
        let decode_tokens = steps.saturating_sub(1) * gens.len();
        let v = serde_json::json!({
            "prompts": gens.len(), "prefill_seconds": prefill, "decode_tokens": decode_tokens,
            "decode_seconds": secs - prefill,
            "decode_tokens_per_second": decode_tokens as f64 / (secs - prefill).max(1e-9),
        });
        std::fs::write(path, v.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "{new_tokens} tokens in {secs:.2}s ({:.1} tok/s)",
        new_tokens as f64 / secs
    );
    Ok(())
}
