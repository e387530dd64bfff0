//! Individual-level simulation and fine-tuning from Python: `probe.simulate` and
//! `probe.finetune`, the CLI's commands of the same names as keyword arguments.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use probe::finetune::FinetuneOptions;
use probe::simulate::{Respondents, SimulateOptions, SplitOptions};
use probe_finetune::train::FinetuneParams;

use crate::blocking;
use crate::stages::{json_to_py, model_spec};

fn split(seed: u64, train: f64, validation: f64) -> SplitOptions {
    SplitOptions {
        seed,
        train,
        validation,
    }
}

/// Simulates every selected respondent of a survey (`probe simulate`): the persona from their
/// own demographics, every item asked; per item the options' distribution and a draw per
/// temperature. Returns `{"dir", "done", "selected", "scores"}` (`scores` as `scores.json`,
/// `None` until every shard is done); the table is `<dir>/answers.csv`.
#[pyfunction]
#[pyo3(signature = (
    model, survey, *, adapter=None, persona=true, temperature=None, respondents="all",
    limit=None, split_seed=0, train_fraction=0.7, validation_fraction=0.1, sample_seed=0,
    batch_size=8, chat=true, shard=String::from("0/1"), bootstrap=1000, level=0.95, seed=0,
    kl_smoothing=1e-4, spearman=false, probes_dir=PathBuf::from("probes"), versus=None,
    out=None, overwrite=false, device="cpu", dtype="native",
))]
#[allow(
    clippy::too_many_arguments,
    reason = "a Python signature: one keyword argument each, as Python users call it"
)]
fn simulate<'py>(
    py: Python<'py>,
    model: PathBuf,
    survey: PathBuf,
    adapter: Option<PathBuf>,
    persona: bool,
    temperature: Option<Vec<f32>>,
    respondents: &str,
    limit: Option<usize>,
    split_seed: u64,
    train_fraction: f64,
    validation_fraction: f64,
    sample_seed: u64,
    batch_size: usize,
    chat: bool,
    shard: String,
    bootstrap: usize,
    level: f64,
    seed: u64,
    kl_smoothing: f64,
    spearman: bool,
    probes_dir: PathBuf,
    versus: Option<PathBuf>,
    out: Option<PathBuf>,
    overwrite: bool,
    device: &str,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let mut spec = model_spec(model, device, dtype)?;
    spec.adapter = adapter;
    let mut options = SimulateOptions::new(spec, survey);
    options.versus = versus;
    options.persona = persona;
    if let Some(t) = temperature {
        options.temperatures = t;
    }
    options.respondents =
        Respondents::parse(respondents).map_err(|e| PyValueError::new_err(e.to_string()))?;
    options.limit = limit;
    options.split = split(split_seed, train_fraction, validation_fraction);
    options.seed = sample_seed;
    options.batch_size = batch_size;
    options.chat = chat;
    options.shard = crate::parse_shard(&shard)?;
    options.bootstrap = probe_metrics::individual::Bootstrap {
        resamples: bootstrap,
        level,
        seed,
    };
    options.kl_smoothing = kl_smoothing;
    options.spearman = spearman;
    options.probes_dir = probes_dir;
    options.out = out;
    options.overwrite = overwrite;
    let outcome = blocking::run(py, || probe::simulate::simulate(&options))?;
    let value = serde_json::json!({
        "dir": outcome.dir, "done": outcome.done, "selected": outcome.selected,
        "scores": outcome.scores,
    });
    json_to_py(py, &value)
}

/// Trains a LoRA adapter on a survey's training respondents (`probe finetune`), resumable;
/// the adapter in PEFT's layout. Returns `{"dir", "adapter", "steps", "best_step",
/// "best_validation_loss", "stopped_early", "resumed_from", "history", "tokens_per_s"}`.
#[pyfunction]
#[pyo3(signature = (
    model, survey, *, rank=8, alpha=16.0, lora_dropout=0.05, target_modules=None, lr=2e-4,
    weight_decay=0.0, warmup_ratio=0.05, epochs=1, batch_size=8, grad_accum=1, max_steps=None,
    numeric_penalty=0.0, eval_every=0, patience=2, checkpoint_every=20, seed=0, limit=None,
    validation_limit=None, split_seed=0, train_fraction=0.7, validation_fraction=0.1,
    persona=true, chat=true, probes_dir=PathBuf::from("probes"), out=None, overwrite=false,
    device="cpu", dtype="native",
))]
#[allow(
    clippy::too_many_arguments,
    reason = "a Python signature: one keyword argument each, as Python users call it"
)]
fn finetune<'py>(
    py: Python<'py>,
    model: PathBuf,
    survey: PathBuf,
    rank: usize,
    alpha: f64,
    lora_dropout: f64,
    target_modules: Option<Vec<String>>,
    lr: f64,
    weight_decay: f64,
    warmup_ratio: f64,
    epochs: usize,
    batch_size: usize,
    grad_accum: usize,
    max_steps: Option<usize>,
    numeric_penalty: f64,
    eval_every: usize,
    patience: usize,
    checkpoint_every: usize,
    seed: u64,
    limit: Option<usize>,
    validation_limit: Option<usize>,
    split_seed: u64,
    train_fraction: f64,
    validation_fraction: f64,
    persona: bool,
    chat: bool,
    probes_dir: PathBuf,
    out: Option<PathBuf>,
    overwrite: bool,
    device: &str,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let mut options = FinetuneOptions::new(model_spec(model, device, dtype)?, survey);
    let defaults = FinetuneParams::default();
    options.params = FinetuneParams {
        rank,
        alpha,
        dropout: lora_dropout,
        targets: target_modules.unwrap_or(defaults.targets),
        learning_rate: lr,
        weight_decay,
        epochs,
        batch_size,
        grad_accum,
        warmup_ratio,
        numeric_penalty,
        patience,
        eval_every,
        checkpoint_every,
        max_steps,
        seed,
    };
    options
        .params
        .check()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    options.split = split(split_seed, train_fraction, validation_fraction);
    options.persona = persona;
    options.chat = chat;
    options.limit = limit;
    options.validation_limit = validation_limit;
    options.probes_dir = probes_dir;
    options.out = out;
    options.overwrite = overwrite;
    let outcome = blocking::run(py, || probe::finetune::finetune(&options))?;
    let t = &outcome.training;
    let value = serde_json::json!({
        "dir": outcome.dir, "adapter": outcome.adapter, "steps": t.steps,
        "best_step": t.best_step, "best_validation_loss": t.best_validation_loss,
        "stopped_early": t.stopped_early, "resumed_from": t.resumed_from,
        "history": t.history,
        "tokens_per_s": t.tokens as f64 / t.step_seconds.max(1e-9),
    });
    json_to_py(py, &value)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(finetune, m)?)?;
    Ok(())
}
