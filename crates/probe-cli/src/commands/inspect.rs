//! `probe inspect <model>`: what a checkpoint is, without loading its weights.

use std::path::PathBuf;

use anyhow::{Context, Result};
use probe_lm::hooks::LAYER_HOOK_KINDS;
use probe_lm::ModelInfo;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A .gguf file or an HF model directory.
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let info = ModelInfo::read(&args.model)
        .with_context(|| format!("inspecting {}", args.model.display()))?;
    let c = &info.config;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    let dtypes: Vec<String> = info
        .weight_dtypes
        .iter()
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect();
    println!("model          {}", info.path.display());
    println!("format         {:?}", info.format);
    println!("architecture   {}", c.architecture.name());
    println!(
        "parameters     {} ({:.1} M)",
        c.parameter_count(),
        c.parameter_count() as f64 / 1e6
    );
    println!("weights        {}", dtypes.join(", "));
    println!("layers         {}", c.num_layers);
    println!("hidden size    {}", c.hidden_size);
    println!(
        "mlp size       {} (value vectors per layer)",
        c.intermediate_size
    );
    println!(
        "heads          {} query / {} key-value, head_dim {}",
        c.num_heads, c.num_kv_heads, c.head_dim
    );
    println!("vocab          {}", c.vocab_size);
    println!(
        "rope           theta {}{}",
        c.rope_theta,
        c.rope_scaling
            .as_ref()
            .map(|s| format!(", scaling {s:?}"))
            .unwrap_or_default()
    );
    println!("tied embedding {}", c.tie_word_embeddings);
    println!(
        "tokenizer      {}",
        if info.has_tokenizer {
            "yes"
        } else {
            "no (pass --tokenizer)"
        }
    );
    println!(
        "chat template  {}",
        if info.has_chat_template { "yes" } else { "no" }
    );
    let last = c.num_layers.saturating_sub(1);
    println!("hook points    hook_embed");
    for kind in LAYER_HOOK_KINDS {
        println!("               blocks.{{0..{last}}}.{kind}");
    }
    let probe_layers = probe_lm::parse_layers("0.6L..0.9L", c.num_layers)?;
    println!(
        "probe layers   0.6L..0.9L = {}..={}",
        probe_layers.first().unwrap_or(&0),
        probe_layers.last().unwrap_or(&0)
    );
    Ok(())
}
