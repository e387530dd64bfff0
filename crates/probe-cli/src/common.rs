//! Pieces every subcommand shares: device and model options, loading with a progress bar.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use probe_lm::{DeviceSpec, LoadOptions, Model};

/// Where the model is and where it runs.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// A .gguf file or an HF model directory (config.json + *.safetensors [+ tokenizer.json]).
    pub model: PathBuf,
    /// cpu, cuda or cuda:N (cuda needs a binary built with scripts/build-tch.sh).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// A tokenizer.json to use instead of the model's own.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

impl ModelArgs {
    pub fn load(&self) -> Result<Model> {
        let spec: DeviceSpec = self.device.parse()?;
        let device = spec.device()?;
        let bar = progress_bar(0, "loading");
        bar.set_message(self.model.display().to_string());
        let on_progress = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        let model = Model::load(
            &self.model,
            &device,
            LoadOptions {
                tokenizer: self.tokenizer.clone(),
                progress: Some(&on_progress),
            },
        )
        .with_context(|| format!("loading model {}", self.model.display()))?;
        bar.finish_and_clear();
        Ok(model)
    }
}

pub fn progress_bar(len: u64, prefix: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10.cyan} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
