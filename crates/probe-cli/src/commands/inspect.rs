//! `probe inspect <model>`: what a checkpoint is, without loading its weights.

use std::path::PathBuf;

use anyhow::{Context, Result};
use probe_lm::hooks::{hook_meaning, LAYER_HOOK_KINDS};
use probe_lm::memory::human_bytes;
use probe_lm::precision::dtype_name;
use probe_lm::{DtypeChoice, ModelInfo};

/// The weights' memory under one `--dtype`.
struct WeightMemory {
    choice: DtypeChoice,
    /// `None`: the format cannot take this choice on the CPU.
    cpu: Option<u64>,
    gpu: u64,
    gpu_compute: &'static str,
}

fn memory_table(info: &ModelInfo) -> Vec<WeightMemory> {
    [
        DtypeChoice::Native,
        DtypeChoice::F32,
        DtypeChoice::Bf16,
        DtypeChoice::F16,
    ]
    .into_iter()
    .map(|choice| {
        let compute = info.gpu_compute_dtype(choice);
        WeightMemory {
            choice,
            cpu: info.cpu_weight_bytes(choice, None),
            gpu: info.gpu_weight_bytes(compute, None),
            gpu_compute: dtype_name(compute),
        }
    })
    .collect()
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A .gguf file or an HF model directory.
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the model's tokenizer (for a GGUF, rebuilt from its metadata) as an HF
    /// `tokenizer.json` here.
    #[arg(long)]
    pub save_tokenizer: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let info = ModelInfo::read(&args.model)
        .with_context(|| format!("inspecting {}", args.model.display()))?;
    if let Some(path) = &args.save_tokenizer {
        probe_lm::Tokenizer::from_checkpoint(&args.model)?
            .save(path)
            .with_context(|| format!("saving the tokenizer of {}", args.model.display()))?;
        eprintln!("wrote {}", path.display());
    }
    let c = &info.config;
    let memory = memory_table(&info);
    // built and tried, as generate and eval will: presence alone proves nothing
    let text = probe_lm::model::check_text_side(&args.model, None)?;
    if args.json {
        let mut v = serde_json::to_value(&info)?;
        v["text_side"] = serde_json::json!({
            "tokenizer_vocab": text.tokenizer.as_ref().ok(),
            "tokenizer_error": text.tokenizer.as_ref().err(),
            "round_trip_warning": text.round_trip,
            "chat_template_error": text.chat_template.as_ref().and_then(|r| r.as_ref().err()),
        });
        v["weight_memory_bytes"] = serde_json::to_value(
            memory
                .iter()
                .map(|m| {
                    serde_json::json!({"dtype": m.choice.to_string(), "cpu": m.cpu, "gpu": m.gpu, "gpu_compute": m.gpu_compute})
                })
                .collect::<Vec<_>>(),
        )?;
        println!("{}", serde_json::to_string_pretty(&v)?);
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
    for (label, text) in c.describe_switches() {
        println!("{label:<15}{text}");
    }
    println!(
        "tokenizer      {}",
        match (&text.tokenizer, &text.round_trip) {
            (Ok(n), None) => format!("yes, {n} tokens"),
            (Ok(n), Some(warning)) => format!("yes, {n} tokens (warning: {warning})"),
            (Err(_), _) if !info.has_tokenizer => "no (pass --tokenizer)".to_string(),
            (Err(e), _) => format!("BROKEN: {e}"),
        }
    );
    println!(
        "chat template  {}",
        match &text.chat_template {
            None => "no".to_string(),
            Some(Ok(())) => "yes (renders)".to_string(),
            Some(Err(e)) => format!("BROKEN: {e}"),
        }
    );
    println!("memory         weights under each --dtype (activations come on top):");
    for m in &memory {
        let cpu = m
            .cpu
            .map_or_else(|| "not for this format".to_string(), human_bytes);
        println!(
            "                 {:<7} CPU {:<22} GPU {} ({})",
            m.choice.to_string(),
            cpu,
            human_bytes(m.gpu),
            m.gpu_compute
        );
    }
    let last = c.num_layers.saturating_sub(1);
    let meaning = |kind: &str| hook_meaning(kind, &c.switches);
    println!(
        "hook points    {:<34}{}",
        "hook_embed",
        meaning("hook_embed")
    );
    for kind in LAYER_HOOK_KINDS {
        let name = format!("blocks.{{0..{last}}}.{kind}");
        println!("               {name:<34}{}", meaning(kind));
    }
    let probe_layers = probe_lm::parse_layers("0.6L..0.9L", c.num_layers)?;
    println!(
        "probe layers   0.6L..0.9L = {}..={}",
        probe_layers.first().unwrap_or(&0),
        probe_layers.last().unwrap_or(&0)
    );
    Ok(())
}
