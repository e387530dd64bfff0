//! `probe train`: party-vs-rest logistic-regression probes on a residual cache (extracted
//! first when missing), cross-validated by statement, saved to `probes/<model>/<run>/`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use probe_cache::CacheReader;
use probe_extract::PositionRule;
use probe_train::{Features, ProbeParams, Provenance, TrainReport};

use super::extract;
use crate::common::progress_bar;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub extract: extract::Args,
    /// Optimiser: newton (exact Hessian, sample weights; default) or lbfgs (linfa-logistic,
    /// positives repeated). Same objective, same optimum.
    #[arg(long, default_value = "newton")]
    pub solver: String,
    /// Inverse L2 strength (scikit-learn's C) on standardized features.
    #[arg(long = "C", default_value_t = 1.0)]
    pub c: f64,
    /// Cross-validation folds (grouped by statement, stratified by party).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Seed of the fold assignment.
    #[arg(long, default_value_t = 0)]
    pub cv_seed: u64,
    /// Most solver iterations per probe fit.
    #[arg(long, default_value_t = 1000)]
    pub max_iter: u64,
    /// Stop L-BFGS when ‖∇ mean loss‖ falls below this.
    #[arg(long, default_value_t = 1e-4)]
    pub tol: f64,
    /// Skip the per-layer probes.
    #[arg(long)]
    pub no_per_layer: bool,
    /// Skip the probe shared across layers.
    #[arg(long)]
    pub no_shared: bool,
    /// Chance level: train the shared probe this many more times on party labels shuffled
    /// within each statement (same grouped CV), and report the accuracies they reach; `probe
    /// vectors` then compares its selections with theirs. 0 skips it.
    #[arg(long, default_value_t = 3)]
    pub null_seeds: u64,
    /// Root of the probe store.
    #[arg(long, default_value = "probes")]
    pub probes_dir: PathBuf,
    /// Run name (default: <election>-<positions>); probes go to <probes-dir>/<model>/<run>/.
    #[arg(long)]
    pub run: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let params = ProbeParams {
        solver: args.solver.parse().map_err(anyhow::Error::msg)?,
        c: args.c,
        folds: args.folds,
        seed: args.cv_seed,
        max_iterations: args.max_iter,
        tolerance: args.tol,
        per_layer: !args.no_per_layer,
        shared: !args.no_shared,
    }
    .check()?;
    // an unwritable probes directory fails now, not after extraction and training
    crate::common::check_out_dir(&args.probes_dir)?;
    let (cache_dir, complete) = extract::ensure_cache(&args.extract)?;
    if !complete {
        anyhow::bail!(
            "cache {} is not finished yet (other --shard jobs pending); run `probe train` once all jobs are done",
            cache_dir.display()
        );
    }
    let cache = CacheReader::open(&cache_dir)?;
    let manifest = cache.manifest().clone();
    let features = Features::from_cache(&cache)?;
    eprintln!(
        "training on {} rows × {} hooks × {} dims, {} parties, {}-fold CV by statement",
        features.n_rows,
        features.hooks.len(),
        features.dim,
        features.label_names.len(),
        params.folds
    );
    let bar = progress_bar(0, "train");
    let mut probes = probe_train::train(&features, &params, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let seeds: Vec<u64> = (1..=args.null_seeds).collect();
    if !seeds.is_empty() && params.shared {
        eprintln!(
            "chance level: the shared probe on labels shuffled within statements, {} seeds",
            seeds.len()
        );
    }
    if let Some(null) = probe_train::null::train_null(&features, &params, &seeds, &probes.report)? {
        probes.report.null = Some(null.report);
        probes.null_directions = null.directions;
    }

    let stem = args.extract.model.name();
    let election = manifest.source.get("election").cloned().unwrap_or_default();
    let run = args
        .run
        .clone()
        .unwrap_or_else(|| format!("{election}-{}", manifest.positions));
    let out = args.probes_dir.join(stem).join(run);
    probe_train::save(
        &out,
        &probes,
        &Provenance {
            model: manifest.model.clone(),
            model_hash: manifest.model_hash.clone(),
            cache: cache_dir.display().to_string(),
            positions: manifest.positions.clone(),
            data_sha256: features.sha256.clone(),
        },
    )
    .with_context(|| format!("saving probes to {}", out.display()))?;

    print_summary(&probes.report, &manifest.positions);
    if let Some(warning) = leak_warning(&probes.report, &manifest.positions) {
        eprintln!("warning: {warning}");
    }
    if probes.report.unconverged_fits > 0 {
        eprintln!(
            "warning: {} of {} fits stopped above tolerance (max ‖∇‖∞ {:.2e}); raise --max-iter",
            probes.report.unconverged_fits, probes.report.fits, probes.report.max_gradient_norm
        );
    }
    eprintln!(
        "{} fits in {:.1}s (per-layer {:.1}s, shared {:.1}s) → {}",
        probes.report.fits,
        probes.report.seconds,
        probes.report.per_layer_seconds,
        probes.report.shared_seconds,
        out.display()
    );
    Ok(())
}

fn print_summary(report: &TrainReport, positions: &str) {
    let leaky = PositionRule::parse(positions).is_ok_and(|r| r.sees_answer());
    println!(
        "mean over {} parties of {}-fold CV scores; positions: {positions}{}",
        report.parties.len(),
        report.params.folds,
        if leaky {
            " (LEAKY: these positions see the answer)"
        } else {
            " (leak-free)"
        }
    );
    println!(
        "{:<28} {:>9} {:>7} {:>7} {:>7}   {:>9} {:>7}",
        "hook", "bal.acc", "acc", "AUC", "F1", "shared", "AUC"
    );
    for s in &report.summary {
        let fmt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
        println!(
            "{:<28} {:>9} {:>7} {:>7} {:>7}   {:>9} {:>7}",
            s.hook,
            fmt(s.per_layer.map(|x| x.balanced_accuracy)),
            fmt(s.per_layer.map(|x| x.accuracy)),
            fmt(s.per_layer.map(|x| x.auc)),
            fmt(s.per_layer.map(|x| x.f1)),
            fmt(s.shared.map(|x| x.balanced_accuracy)),
            fmt(s.shared.map(|x| x.auc)),
        );
    }
    // the shared probe scored on every layer's rows at once (only in probes.json before)
    let pooled: Vec<f64> = report
        .shared
        .iter()
        .filter(|r| r.hook == "all")
        .map(|r| r.mean.balanced_accuracy)
        .collect();
    if !pooled.is_empty() {
        println!(
            "shared probe, all layers' rows pooled: mean balanced accuracy {:.3}",
            pooled.iter().sum::<f64>() / pooled.len() as f64
        );
    }
    if let Some((best, score)) = best_layer(report) {
        println!("best layer {best}: mean balanced accuracy {score:.3}; per party:");
        for r in report.per_layer.iter().filter(|r| r.hook == best) {
            println!(
                "  {:<12} bal.acc {:.3}  AUC {:.3}  F1 {:.3}",
                r.party, r.mean.balanced_accuracy, r.mean.auc, r.mean.f1
            );
        }
    }
    if let Some(null) = &report.null {
        println!(
            "chance level (shared probe, labels shuffled within statements, {} seeds): observed vs shuffled bal.acc",
            null.seeds.len()
        );
        for (p, party) in report.parties.iter().enumerate() {
            println!(
                "  {:<12} {:.3} vs {:.3} ± {:.3}  (p = {:.2}){}",
                party,
                null.observed[p],
                null.mean[p],
                null.sd[p],
                null.p_value[p],
                if null.observed[p] <= null.mean[p] + 2.0 * null.sd[p] {
                    "  ← not above chance"
                } else {
                    ""
                }
            );
        }
    }
}

/// The hook with the highest mean balanced accuracy of the per-layer (else shared) probes.
fn best_layer(report: &TrainReport) -> Option<(String, f64)> {
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

/// A warning when probes on positions that can see the answer look near-perfect: they then
/// read the party's name in the input, not the model's representation of the opinion.
fn leak_warning(report: &TrainReport, positions: &str) -> Option<String> {
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
