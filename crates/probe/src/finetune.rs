//! `finetune`: LoRA adapters trained on a survey's training respondents (arXiv 2403.20252):
//! each respondent × item prompt of `probe simulate` with the respondent's option as target,
//! cross-entropy plus an optional numerical penalty, AdamW with a cosine schedule, early
//! stopping on the validation respondents, checkpoints that resume after a kill. The best
//! adapter is written in PEFT's layout to `<out>/adapter`, which every command takes as
//! `--adapter`.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use probe_finetune::data::{examples, PromptStyle};
use probe_finetune::loss::LetterForms;
use probe_finetune::train::{Event, FinetuneParams, Outcome, TrainingData};
use probe_lm::burn::module::Module;
use serde_json::json;

use crate::files::check_out_dir;
use crate::model::ModelSpec;
use crate::progress::{note, progress_bar};
use crate::simulate::{load_survey, SplitOptions};

/// Options of [`finetune`]; `FinetuneOptions::new(model, survey)` has the CLI's defaults.
#[derive(Debug, Clone)]
pub struct FinetuneOptions {
    /// The base model, every weight frozen: `dtype` f32 holds dense f32 weights; `native`
    /// keeps a GGUF's quantized blocks (LoRA on quantized blocks — not QLoRA's NF4: forward on the block kernels, backward
    /// dequantizing a panel of rows at a time).
    pub model: ModelSpec,
    /// The survey's folder (with `codebook.toml`) or its codebook.
    pub survey: PathBuf,
    pub split: SplitOptions,
    /// Prompt with each respondent's persona (as `probe simulate` does by default).
    pub persona: bool,
    pub chat: bool,
    pub params: FinetuneParams,
    /// Only the first N training respondents (and validation respondents), in survey order.
    pub limit: Option<usize>,
    pub validation_limit: Option<usize>,
    pub probes_dir: PathBuf,
    /// Output folder (default `<probes_dir>/<model>/finetune-<survey>`).
    pub out: Option<PathBuf>,
    /// Delete a checkpoint made with other settings instead of refusing.
    pub overwrite: bool,
}

impl FinetuneOptions {
    pub fn new(model: ModelSpec, survey: impl Into<PathBuf>) -> Self {
        FinetuneOptions {
            model,
            survey: survey.into(),
            split: SplitOptions::default(),
            persona: true,
            chat: true,
            params: FinetuneParams::default(),
            limit: None,
            validation_limit: None,
            probes_dir: PathBuf::from("probes"),
            out: None,
            overwrite: false,
        }
    }
}

#[derive(Debug)]
pub struct FinetuneOutcome {
    pub dir: PathBuf,
    /// The best adapter, PEFT layout.
    pub adapter: PathBuf,
    pub train_examples: usize,
    pub validation_examples: usize,
    pub training: Outcome,
}

/// Trains (or resumes) the adapter; writes `adapter/`, `history.jsonl`, `training.json`.
pub fn finetune(options: &FinetuneOptions) -> Result<FinetuneOutcome> {
    options.params.check()?;
    if options.model.adapter.is_some() {
        bail!("finetune trains a new adapter on the base model: leave out --adapter");
    }
    let survey = load_survey(&options.survey)?;
    let split = survey.split(
        options.split.seed,
        options.split.train,
        options.split.validation,
    )?;
    let mut train_ids = split.train.clone();
    let mut validation_ids = split.validation.clone();
    if let Some(n) = options.limit {
        train_ids.truncate(n);
    }
    if let Some(n) = options.validation_limit {
        validation_ids.truncate(n);
    }
    // the same rule as `simulate`: every item answered where it is trained and validated on
    survey.check_answered("train", &train_ids)?;
    if !validation_ids.is_empty() {
        survey.check_answered("validation", &validation_ids)?;
    }
    let stem = options.model.name();
    let out = options.out.clone().unwrap_or_else(|| {
        options
            .probes_dir
            .join(&stem)
            .join(format!("finetune-{}", survey.codebook.name))
    });
    check_out_dir(&out)?;

    // frozen weights on the autodiff device (only the adapters get gradients): dense f32
    // with `--dtype f32`, else as stored — a GGUF's quantized blocks stay quantized (LoRA on quantized blocks, not NF4)
    let spec = options.model.clone();
    let device = spec.device.device()?.autodiff();
    let mut model = spec.load_on(&device)?;
    model.transformer = model.transformer.no_grad();
    let tokenizer = model.tokenizer()?;
    let style = PromptStyle {
        tokenizer,
        chat_template: model.chat_template.as_ref(),
        chat: options.chat,
        persona: options.persona,
    };
    let train = examples(&survey, &train_ids, &style)?;
    let validation = examples(&survey, &validation_ids, &style)?;
    if train.is_empty() {
        bail!(
            "the train split of {} has no answered item; change the split fractions",
            survey.codebook.name
        );
    }
    let n_letters = survey
        .codebook
        .items
        .iter()
        .map(|i| i.options.len())
        .max()
        .unwrap_or(2);
    let forms = LetterForms::new(tokenizer, n_letters)?;

    let settings = json!({
        "model": crate::files::fingerprint_model(&options.model.path)?,
        "dtype": options.model.dtype.to_string(),
        "survey": survey.codebook.name, "data": crate::files::sha256_file(&survey.path)?,
        "split": {"seed": options.split.seed, "train": options.split.train, "validation": options.split.validation},
        "limit": options.limit, "validation_limit": options.validation_limit,
        "persona": options.persona, "chat": options.chat, "params": options.params,
        "prompts": probe_eval::stable_hash(&train.iter().chain(&validation)
            .map(|e| format!("{:?}", e.ids)).collect::<Vec<_>>().join("|")),
    });
    let fingerprint = format!("{:016x}", probe_eval::stable_hash(&settings.to_string()));
    let checkpoint = out.join("checkpoint");
    // a run of other settings in `out` (its settings.json or its checkpoint): refused before
    // any file changes, or with --overwrite removed whole so nothing of it looks current
    let old_settings = std::fs::read_to_string(out.join("settings.json")).ok();
    let old_state = std::fs::read_to_string(checkpoint.join("state.json")).ok();
    let other_run = [&old_settings, &old_state]
        .into_iter()
        .flatten()
        .any(|old| !old.contains(&fingerprint));
    if other_run {
        if !options.overwrite {
            bail!(
                "{} holds a fine-tuning run of other data or settings; use another --out or --overwrite",
                out.display()
            );
        }
        if checkpoint.is_dir() {
            std::fs::remove_dir_all(&checkpoint)
                .with_context(|| format!("removing {}", checkpoint.display()))?;
        }
        let adapter = out.join("adapter");
        if adapter.is_dir() {
            std::fs::remove_dir_all(&adapter)
                .with_context(|| format!("removing {}", adapter.display()))?;
        }
        for f in ["history.jsonl", "training.json", "settings.json"] {
            let _ = std::fs::remove_file(out.join(f));
        }
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    probe_cache::write_atomic(
        &out.join("settings.json"),
        serde_json::to_string_pretty(&json!({"fingerprint": fingerprint, "settings": settings}))?
            .as_bytes(),
    )?;
    note(format_args!(
        "finetune: {} training examples ({} respondents), {} validation examples ({} respondents); LoRA r = {} on {} → {}",
        train.len(),
        train_ids.len(),
        validation.len(),
        validation_ids.len(),
        options.params.rank,
        options.params.targets.join(","),
        out.display()
    ));

    let bar = progress_bar(0, "finetune");
    let started = std::time::Instant::now();
    let mut on_event = |event: &Event| -> ControlFlow<()> {
        match event {
            Event::Step {
                step,
                total,
                loss,
                lr,
                tokens,
            } => {
                bar.set_length(*total as u64);
                bar.set_position(*step as u64);
                bar.set_message(format!(
                    "loss {loss:.4}, lr {lr:.2e}, {:.0} tok/s",
                    *tokens as f64 / started.elapsed().as_secs_f64().max(1e-9)
                ));
            }
            Event::Validation {
                step,
                loss,
                improved,
            } => bar.println(format!(
                "step {step}: validation loss {loss:.4}{}",
                if *improved { " (best)" } else { "" }
            )),
            Event::Checkpoint { .. } => {}
        }
        ControlFlow::Continue(())
    };
    let data = TrainingData {
        forms: &forms,
        train: &train,
        validation: &validation,
    };
    let training = probe_finetune::train::finetune(
        &mut model.transformer,
        &data,
        &options.params,
        &fingerprint,
        &checkpoint,
        &mut on_event,
    )?;
    bar.finish_and_clear();
    if training.resumed_from > 0 {
        note(format_args!(
            "resumed from the checkpoint at step {}",
            training.resumed_from
        ));
    }

    let adapter = out.join("adapter");
    let mut config = options.params.adapter_config();
    config.base_model_name_or_path = Some(options.model.path.display().to_string());
    let tensors = model.transformer.adapter_tensors()?;
    probe_lm::adapter::save_adapter(&adapter, &config, &tensors)?;
    let mut history = Vec::new();
    for r in &training.history {
        writeln!(history, "{}", serde_json::to_string(r)?)?;
    }
    probe_cache::write_atomic(&out.join("history.jsonl"), &history)?;
    let steps_run = (training.steps - training.resumed_from).max(1) as f64;
    let examples_per_step = (options.params.batch_size * options.params.grad_accum) as f64;
    let summary = probe_schema::finetune::TrainingSummary {
        format_version:
            <probe_schema::finetune::TrainingSummary as probe_schema::Artifact>::FORMAT_VERSION,
        steps: training.steps,
        total_steps: training.total_steps,
        best_step: training.best_step,
        best_validation_loss: training.best_validation_loss,
        stopped_early: training.stopped_early,
        resumed_from: training.resumed_from,
        train_examples: train.len(),
        validation_examples: validation.len(),
        this_run: probe_schema::finetune::FinetuneThisRun {
            seconds: training.seconds,
            step_seconds: training.step_seconds,
            tokens: training.tokens,
            tokens_per_s: training.tokens as f64 / training.step_seconds.max(1e-9),
            tokens_per_example: training.tokens as f64 / steps_run / examples_per_step,
        },
    };
    probe_schema::write(&out.join("training.json"), &summary)?;
    Ok(FinetuneOutcome {
        dir: out,
        adapter,
        train_examples: train.len(),
        validation_examples: validation.len(),
        training,
    })
}

#[cfg(test)]
mod naming_tests {
    /// "QLoRA" names NF4 quantization of a 16-bit checkpoint (Dettmers et al. 2023), which
    /// probe does not do: wherever the docs or the CLI say it, they say so (NF4 within reach).
    #[test]
    fn lora_on_quantized_blocks_is_not_called_qlora() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for file in [
            "README.md",
            "docs/GUIDE.md",
            "docs/PERFORMANCE.md",
            "docs/CLI.md",
            "crates/probe-cli/src/commands/finetune.rs",
            "crates/probe/src/finetune.rs",
        ] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            for (at, _) in text.match_indices("QLoRA") {
                let from = text.floor_char_boundary(at.saturating_sub(400));
                let to = text.ceil_char_boundary((at + 400).min(text.len()));
                assert!(
                    text[from..to].contains("NF4"),
                    "{file} calls LoRA on quantized blocks QLoRA without saying it is not NF4: …{}…",
                    &text[from..to]
                );
            }
        }
    }
}
