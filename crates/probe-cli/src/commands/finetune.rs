//! `probe finetune`: LoRA adapters trained on a survey's training respondents' answers
//! (burn autodiff on the CPU), validated and early-stopped on the validation respondents,
//! resumable after a kill; the adapter in PEFT's layout for `--adapter`. Under `--dtype
//! native` a GGUF's quantized blocks stay frozen and quantized while the adapters train: LoRA
//! on quantized blocks, not QLoRA's NF4 quantization of a 16-bit checkpoint (docs/GUIDE.md §7).

use std::path::PathBuf;

use anyhow::Result;
use probe::finetune::FinetuneOptions;
use probe_finetune::train::FinetuneParams;

use crate::common::ModelArgs;

/// Trains LoRA adapters on a survey's answers. With `--dtype native` (the default) a GGUF's
/// quantized blocks stay quantized under the adapters (LoRA on quantized blocks; not QLoRA's
/// NF4 quantization, which probe does not do); `--dtype f32` trains on dense weights.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The survey: a folder with `codebook.toml` (e.g. data/surveys/anes96) or a codebook.
    #[arg(long)]
    pub survey: PathBuf,
    /// LoRA rank.
    #[arg(long, default_value_t = 8, value_parser = crate::common::positive)]
    pub rank: usize,
    /// LoRA alpha (the update is scaled by alpha / rank).
    #[arg(long, default_value_t = 16.0)]
    pub alpha: f64,
    /// Dropout on the adapters' inputs while training.
    #[arg(long, default_value_t = 0.05)]
    pub lora_dropout: f64,
    /// Projections to adapt.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    )]
    pub target_modules: Vec<String>,
    /// Peak learning rate (AdamW, linear warm-up, cosine decay to 0).
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// AdamW's decoupled weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Fraction of the steps spent warming up.
    #[arg(long, default_value_t = 0.05)]
    pub warmup_ratio: f64,
    /// Passes over the training examples (a seeded shuffle each).
    #[arg(long, default_value_t = 1, value_parser = crate::common::positive)]
    pub epochs: usize,
    /// Examples per forward and backward pass.
    #[arg(long, default_value_t = 8, value_parser = crate::common::positive)]
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1, value_parser = crate::common::positive)]
    pub grad_accum: usize,
    /// Stop after N optimizer steps (the schedule spans them).
    #[arg(long, value_parser = crate::common::positive)]
    pub max_steps: Option<usize>,
    /// Weight λ of the numerical penalty: λ·E|v(predicted) − v(true)| on ordinal and numeric
    /// items, values scaled to [0, 1] (0: cross-entropy only).
    #[arg(long, default_value_t = 0.0)]
    pub numeric_penalty: f64,
    /// Validate every N optimizer steps (default: at each epoch's end).
    #[arg(long, default_value_t = 0)]
    pub eval_every: usize,
    /// Validations without improvement before stopping (0: never stop early).
    #[arg(long, default_value_t = 2)]
    pub patience: usize,
    /// Checkpoint every N optimizer steps (and at each validation).
    #[arg(long, default_value_t = 20, value_parser = crate::common::positive)]
    pub checkpoint_every: usize,
    /// Seed of the adapters' initialization, the example order and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Only the first N training respondents (survey order).
    #[arg(long, value_parser = crate::common::positive)]
    pub limit: Option<usize>,
    /// Only the first N validation respondents.
    #[arg(long, value_parser = crate::common::positive)]
    pub validation_limit: Option<usize>,
    #[command(flatten)]
    pub split: crate::common::SplitArgs,
    /// Prompts without the respondent's persona.
    #[arg(long)]
    pub no_persona: bool,
    /// Plain-text prompts even when the model has a chat template.
    #[arg(long)]
    pub no_chat: bool,
    /// Root of run outputs.
    #[arg(long, default_value = "probes")]
    pub probes_dir: PathBuf,
    /// Output folder (default `<probes-dir>/<model>/finetune-<survey>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start over when the folder holds a checkpoint of other settings.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: Args) -> Result<()> {
    let mut options = FinetuneOptions::new(args.model.spec()?, args.survey);
    options.params = FinetuneParams {
        rank: args.rank,
        alpha: args.alpha,
        dropout: args.lora_dropout,
        targets: args.target_modules,
        learning_rate: args.lr,
        weight_decay: args.weight_decay,
        epochs: args.epochs,
        batch_size: args.batch_size,
        grad_accum: args.grad_accum,
        warmup_ratio: args.warmup_ratio,
        numeric_penalty: args.numeric_penalty,
        patience: args.patience,
        eval_every: args.eval_every,
        checkpoint_every: args.checkpoint_every,
        max_steps: args.max_steps,
        seed: args.seed,
    };
    options.split = args.split.options();
    options.persona = !args.no_persona;
    options.chat = !args.no_chat;
    options.limit = args.limit;
    options.validation_limit = args.validation_limit;
    options.probes_dir = args.probes_dir;
    options.out = args.out;
    options.overwrite = args.overwrite;
    let outcome = probe::finetune::finetune(&options)?;
    let t = &outcome.training;
    println!(
        "{} steps of {} ({} training, {} validation examples){}; {:.0} tokens/s (forward + backward) this run",
        t.steps,
        t.total_steps,
        outcome.train_examples,
        outcome.validation_examples,
        if t.stopped_early { ", stopped early" } else { "" },
        t.tokens as f64 / t.step_seconds.max(1e-9)
    );
    if let (Some(step), Some(loss)) = (t.best_step, t.best_validation_loss) {
        println!("best validation loss {loss:.4} at step {step}");
    }
    println!("adapter → {}", outcome.adapter.display());
    Ok(())
}
