//! `probe train`: party-vs-rest logistic-regression probes on a residual cache (extracted
//! first when missing), cross-validated by statement, saved to `probes/<model>/<run>/`.

use std::path::PathBuf;

use anyhow::Result;
use probe::train::{best_layer, pooled_shared_score};
use probe_extract::PositionRule;
use probe_train::{ProbeParams, TrainReport};

use super::extract;

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
    /// vectors` then compares its selections with theirs. Fewer than 20 cannot give p < 0.05
    /// (the smallest p is 1/(N+1)): their verdicts read "undetermined". 0 skips it.
    #[arg(long, default_value_t = probe::train::DEFAULT_NULL_SEEDS)]
    pub null_seeds: u64,
    /// Root of the probe store.
    #[arg(long, default_value = "probes")]
    pub probes_dir: PathBuf,
    /// Run name (default: <election>-<positions>); probes go to <probes-dir>/<model>/<run>/.
    #[arg(long)]
    pub run: Option<String>,
}

impl Args {
    pub fn options(&self) -> Result<probe::TrainOptions> {
        Ok(probe::TrainOptions {
            extract: self.extract.options()?,
            params: ProbeParams {
                solver: self.solver.parse().map_err(anyhow::Error::msg)?,
                c: self.c,
                folds: self.folds,
                seed: self.cv_seed,
                max_iterations: self.max_iter,
                tolerance: self.tol,
                per_layer: !self.no_per_layer,
                shared: !self.no_shared,
            },
            null_seeds: self.null_seeds,
            probes_dir: self.probes_dir.clone(),
            run: self.run.clone(),
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    let outcome = probe::train(&args.options()?)?;
    let report = &outcome.report;
    print_summary(report, &outcome.positions);
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    eprintln!(
        "{} fits in {:.1}s (per-layer {:.1}s, shared {:.1}s) → {}",
        report.fits,
        report.seconds,
        report.per_layer_seconds,
        report.shared_seconds,
        outcome.dir.display()
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
    if let Some(pooled) = pooled_shared_score(report) {
        println!("shared probe, all layers' rows pooled: mean balanced accuracy {pooled:.3}");
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
                "  {:<12} {:.3} vs {:.3} ± {:.3}  (p = {:.3}): {}",
                party,
                null.observed[p],
                null.mean[p],
                null.sd[p],
                null.p_value[p],
                null.verdict
                    .get(p)
                    .copied()
                    .unwrap_or_default()
                    .describe(null.seeds.len())
            );
        }
    }
}
