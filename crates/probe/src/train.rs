//! `train`: party-vs-rest logistic-regression probes on a residual cache (extracted first
//! when missing), cross-validated by statement, saved to `<probes_dir>/<model>/<run>/`.

use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use probe_cache::CacheReader;
use probe_extract::PositionRule;
use probe_train::{Features, ProbeParams, Provenance, TrainReport};

use crate::extract::{ensure_cache, ExtractOptions};
use crate::files::check_out_dir;
use crate::progress::{note, progress_bar};

/// Label-shuffled seeds by default: the fewest whose permutation p-value can fall below 0.05
/// (1/21); each is one more shared-probe fit per party, seconds on the demo's caches.
pub const DEFAULT_NULL_SEEDS: u64 = 20;

/// Options of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The activation cache to train on (filled first when missing).
    pub extract: ExtractOptions,
    /// Solver, C, folds, fold seed, iterations, tolerance, which probes.
    pub params: ProbeParams,
    /// Chance level: the shared probe retrained on party labels shuffled within each
    /// statement, once per seed `1..=null_seeds` (0 skips it). Fewer than 20 cannot give
    /// p < 0.05: their verdicts read "undetermined".
    pub null_seeds: u64,
    /// Root of the probe store.
    pub probes_dir: PathBuf,
    /// Run name (default `<election>-<positions>`); probes go to `<probes_dir>/<model>/<run>/`.
    pub run: Option<String>,
}

impl TrainOptions {
    pub fn new(extract: ExtractOptions) -> Self {
        TrainOptions {
            extract,
            params: ProbeParams::default(),
            null_seeds: DEFAULT_NULL_SEEDS,
            probes_dir: PathBuf::from("probes"),
            run: None,
        }
    }
}

/// Trained probes on disk and what their training measured.
#[derive(Debug)]
pub struct TrainOutcome {
    /// Where the probes were saved (`probes.safetensors`, `probes.json`).
    pub dir: PathBuf,
    /// The cache they were trained on.
    pub cache: PathBuf,
    /// The cache's position rule.
    pub positions: String,
    pub report: TrainReport,
    /// Things to tell the user: leaky near-perfect probes, fits stopped above tolerance.
    pub warnings: Vec<String>,
}

/// Extracts (when needed), trains, runs the chance-level null and saves.
pub fn train(options: &TrainOptions) -> Result<TrainOutcome> {
    let params = options
        .params
        .clone()
        .check()
        .map_err(probe_train::TrainError::Params)?;
    // an unwritable probes directory fails now, not after extraction and training
    check_out_dir(&options.probes_dir)?;
    let cache_status = ensure_cache(&options.extract)?;
    let cache_dir = cache_status.dir;
    if !cache_status.complete {
        bail!(
            "cache {} is not finished yet (other --shard jobs pending); run `probe train` once all jobs are done",
            cache_dir.display()
        );
    }
    let cache = CacheReader::open(&cache_dir)?;
    let manifest = cache.manifest().clone();
    let features = Features::from_cache(&cache)?;
    note(format_args!(
        "training on {} rows × {} hooks × {} dims, {} parties, {}-fold CV by statement",
        features.n_rows,
        features.hooks.len(),
        features.dim,
        features.label_names.len(),
        params.folds
    ));
    let bar = progress_bar(0, "train");
    // Ctrl-C in the Python bindings (probe_lm::interrupt) stops training after the running fits
    let keep_going = || {
        if probe_lm::interrupt::requested() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let mut probes = probe_train::train(&features, &params, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        keep_going()
    })?;
    bar.finish_and_clear();
    let seeds: Vec<u64> = (1..=options.null_seeds).collect();
    if !seeds.is_empty() && params.shared {
        note(format_args!(
            "chance level: the shared probe on labels shuffled within statements, {} seeds",
            seeds.len()
        ));
    }
    let null =
        probe_train::null::train_null(&features, &params, &seeds, &probes.report, &|_, _| {
            keep_going()
        })?;
    if let Some(null) = null {
        probes.report.null = Some(null.report);
        probes.null_directions = null.directions;
    }

    let election = manifest.source.get("election").cloned().unwrap_or_default();
    let run = options
        .run
        .clone()
        .unwrap_or_else(|| format!("{election}-{}", manifest.positions));
    let out = options
        .probes_dir
        .join(options.extract.model.name())
        .join(run);
    probe_train::save(
        &out,
        &probes,
        &Provenance {
            model: manifest.model.clone(),
            adapter: options.extract.model.adapter_name(),
            model_hash: manifest.model_hash.clone(),
            cache: cache_dir.display().to_string(),
            positions: manifest.positions.clone(),
            data_sha256: features.sha256.clone(),
        },
    )
    .with_context(|| format!("saving probes to {}", out.display()))?;

    let report = probes.report;
    let mut warnings = Vec::new();
    if let Some(w) = leak_warning(&report, &manifest.positions) {
        warnings.push(w);
    }
    if report.unconverged_fits > 0 {
        warnings.push(format!(
            "{} of {} fits stopped above tolerance (max ‖∇‖∞ {:.2e}); raise --max-iter",
            report.unconverged_fits, report.fits, report.max_gradient_norm
        ));
    }
    Ok(TrainOutcome {
        dir: out,
        cache: cache_dir,
        positions: manifest.positions,
        report,
        warnings,
    })
}

/// The hook with the highest mean balanced accuracy of the per-layer (else shared) probes.
pub fn best_layer(report: &TrainReport) -> Option<(String, f64)> {
    report
        .summary
        .iter()
        .filter_map(|s| {
            s.per_layer
                .or(s.shared)
                .map(|x| (s.hook.clone(), x.balanced_accuracy))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// The shared probe's mean balanced accuracy on every layer's rows at once.
pub fn pooled_shared_score(report: &TrainReport) -> Option<f64> {
    let pooled: Vec<f64> = report
        .shared
        .iter()
        .filter(|r| r.hook == "all")
        .map(|r| r.mean.balanced_accuracy)
        .collect();
    (!pooled.is_empty()).then(|| pooled.iter().sum::<f64>() / pooled.len() as f64)
}

/// A warning when probes on positions that can see the answer look near-perfect: they then
/// read the party's name in the input, not the model's representation of the opinion.
pub fn leak_warning(report: &TrainReport, positions: &str) -> Option<String> {
    let rule = PositionRule::parse(positions).ok()?;
    let (hook, score) = best_layer(report)?;
    (rule.sees_answer() && score >= 0.95).then(|| {
        format!(
            "balanced accuracy {score:.3} at {hook} with positions `{positions}`, which contain the \
             teacher-forced party name: the probe reads the name, not the opinion. Report \
             `--positions last-before-answer` as the headline."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_train::{HookSummary, Scores};

    fn report(bal: f64) -> TrainReport {
        let s = Scores {
            accuracy: bal,
            balanced_accuracy: bal,
            auc: bal,
            f1: bal,
            n: 10,
        };
        TrainReport {
            params: ProbeParams::default(),
            parties: vec!["A".into(), "B".into()],
            hooks: vec!["blocks.1.hook_resid_post".into()],
            positive_replication: vec![1, 1],
            folds: vec![],
            per_layer: vec![],
            shared: vec![],
            summary: vec![HookSummary {
                hook: "blocks.1.hook_resid_post".into(),
                per_layer: Some(s),
                shared: None,
            }],
            max_gradient_norm: 0.0,
            unconverged_fits: 0,
            fits: 0,
            seconds: 0.0,
            per_layer_seconds: 0.0,
            shared_seconds: 0.0,
            null: None,
        }
    }

    #[test]
    fn warns_only_for_near_perfect_leaky_probes() {
        assert!(leak_warning(&report(1.0), "answer-predicting").is_some());
        assert!(leak_warning(&report(0.7), "answer-predicting").is_none());
        assert!(leak_warning(&report(1.0), "last-before-answer").is_none());
    }
}
