//! Cross-validated training of every party-vs-rest probe, per layer and shared across layers.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{concatenate, Array2, Axis};
use rayon::prelude::*;

use crate::convert::standardized_rows;
use crate::fit::{fit_binary, BinaryFit, FitSettings, Scaler};
use crate::folds::grouped_stratified_folds;
use crate::metrics::{self, Scores};
use crate::{CvResult, HookSummary, TrainReport};
use crate::{Features, Result, TrainError, ValidProbeParams};

/// A probe ready to apply to raw activations: standardize, then `w·z + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub scaler: Scaler,
    /// Weights in standardized space.
    pub weight: Vec<f64>,
    pub bias: f64,
}

impl Probe {
    /// The probe's direction in activation space, `w / std`: `decision(x) = direction·x +
    /// raw_bias`. This is the vector to compare with MLP value vectors.
    pub fn direction(&self) -> Vec<f64> {
        self.weight
            .iter()
            .zip(&self.scaler.std)
            .map(|(w, s)| w / s)
            .collect()
    }

    pub fn raw_bias(&self) -> f64 {
        self.bias
            - self
                .direction()
                .iter()
                .zip(&self.scaler.mean)
                .map(|(d, m)| d * m)
                .sum::<f64>()
    }

    /// Decision value (log-odds of the party) of one raw activation vector.
    pub fn decision(&self, x: &[f32]) -> f64 {
        x.iter()
            .zip(&self.weight)
            .zip(self.scaler.mean.iter().zip(&self.scaler.std))
            .map(|((&x, w), (m, s))| w * (x as f64 - m) / s)
            .sum::<f64>()
            + self.bias
    }
}

/// Trained probes: `per_layer[party][hook]`, `shared[party]` (empty when not trained).
#[derive(Debug, Clone)]
pub struct TrainedProbes {
    pub per_layer: Vec<Vec<Probe>>,
    pub shared: Vec<Probe>,
    pub report: TrainReport,
    /// Directions of the label-shuffled shared probes, `[seed][party][dim]` (empty when the
    /// null was not trained).
    pub null_directions: Vec<Vec<Vec<f64>>>,
}

/// The progress callback of [`train`]: `(fits done, fits in all)`; `Break` stops.
pub type Progress<'a> = dyn Fn(usize, usize) -> ControlFlow<()> + Sync + 'a;

struct Fold {
    train: Vec<usize>,
    test: Vec<usize>,
}

/// Fits and cross-validates all probes; `progress(done, total)` counts fits and returns
/// `Break` to stop: no new fit starts, and the call ends with [`TrainError::Interrupted`].
pub fn train(
    features: &Features,
    params: &ValidProbeParams,
    progress: &Progress<'_>,
) -> Result<TrainedProbes> {
    let start = std::time::Instant::now();
    let k = params.folds;
    let n_parties = features.label_names.len();
    let n_hooks = features.hooks.len();
    let fold_of = grouped_stratified_folds(&features.labels, &features.groups, k, params.seed)?;
    // Folds 0..k are the CV splits; fold k trains on everything (the saved probe).
    let folds: Vec<Fold> = (0..=k)
        .map(|f| Fold {
            train: (0..features.n_rows).filter(|&i| fold_of[i] != f).collect(),
            test: (0..features.n_rows).filter(|&i| fold_of[i] == f).collect(),
        })
        .collect();
    let settings = FitSettings {
        solver: params.solver,
        c: params.c,
        max_iterations: params.max_iterations,
        tolerance: params.tolerance,
    };
    let per_layer_fits = usize::from(params.per_layer) * n_parties * (k + 1) * n_hooks;
    let total = per_layer_fits + usize::from(params.shared) * (k + 1) * n_parties;
    let done = AtomicUsize::new(0);
    // counts a finished fit; an error once the host asked to stop (rayon's collect into a
    // Result then starts no further fit)
    let tick = || match progress(done.fetch_add(1, Ordering::Relaxed) + 1, total) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(TrainError::Interrupted),
    };
    let truth = |rows: &[usize], p: usize| -> Vec<bool> {
        rows.iter().map(|&i| features.labels[i] == p).collect()
    };
    let mut all_fits: Vec<BinaryFit> = Vec::new();

    let mut per_layer: Vec<Vec<Probe>> = vec![Vec::new(); n_parties];
    let mut per_layer_cv = Vec::new();
    let mut per_layer_scores: Vec<Vec<Vec<Scores>>> = vec![vec![Vec::new(); n_hooks]; n_parties];
    if params.per_layer {
        // Every fit starts from zero: warm starts from the neighbouring layer's optimum were
        // measured 2.5× slower (|w| ≈ 19 there, so the neighbour's weights are a poor start).
        for (h, data) in features.matrices.iter().enumerate() {
            let scalers: Vec<Scaler> = folds
                .par_iter()
                .map(|f| Scaler::fit(data, features.dim, &f.train))
                .collect();
            let train_z: Vec<Array2<f64>> = folds
                .par_iter()
                .zip(&scalers)
                .map(|(f, s)| standardized_rows(data, features.dim, &f.train, s))
                .collect();
            let jobs: Vec<(usize, usize)> = (0..=k)
                .flat_map(|f| (0..n_parties).map(move |p| (f, p)))
                .collect();
            let fits = jobs
                .par_iter()
                .map(|&(f, p)| {
                    let fit = fit_binary(
                        train_z[f].view(),
                        &truth(&folds[f].train, p),
                        settings,
                        None,
                    );
                    tick()?;
                    fit
                })
                .collect::<Result<Vec<BinaryFit>>>()?;
            // Each CV fold's test rows, standardized once for all parties.
            let test_z: Vec<Array2<f64>> = (0..k)
                .map(|f| standardized_rows(data, features.dim, &folds[f].test, &scalers[f]))
                .collect();
            for (&(f, p), fit) in jobs.iter().zip(&fits) {
                if f < k {
                    per_layer_scores[p][h].push(metrics::score(
                        &truth(&folds[f].test, p),
                        &fit.decisions(test_z[f].view()),
                    ));
                } else {
                    per_layer[p].push(Probe {
                        scaler: scalers[k].clone(),
                        weight: fit.weight.clone(),
                        bias: fit.bias,
                    });
                }
            }
            all_fits.extend(fits);
        }
        for p in 0..n_parties {
            for h in 0..n_hooks {
                per_layer_cv.push(CvResult {
                    party: features.label_names[p].clone(),
                    hook: features.hooks[h].clone(),
                    mean: metrics::mean(&per_layer_scores[p][h]),
                    folds: per_layer_scores[p][h].clone(),
                });
            }
        }
    }

    let per_layer_seconds = start.elapsed().as_secs_f64();
    let mut shared = Vec::new();
    let mut shared_cv = Vec::new();
    let mut shared_scores: Vec<Vec<Vec<Scores>>> = vec![vec![Vec::new(); n_hooks + 1]; n_parties];
    if params.shared {
        // Each (row, layer) is a sample: stack the layers' rows into one matrix.
        let stacked: Vec<f32> = features.matrices.concat();
        let n = features.n_rows;
        for f in 0..=k {
            let fold = &folds[f];
            let rows: Vec<usize> = (0..n_hooks)
                .flat_map(|h| fold.train.iter().map(move |&i| h * n + i))
                .collect();
            let scaler = Scaler::fit(&stacked, features.dim, &rows);
            let z = standardized_rows(&stacked, features.dim, &rows, &scaler);
            let fits: Vec<Result<BinaryFit>> = (0..n_parties)
                .into_par_iter()
                .map(|p| {
                    let t: Vec<bool> = rows.iter().map(|&r| features.labels[r % n] == p).collect();
                    let fit = fit_binary(z.view(), &t, settings, None);
                    tick()?;
                    fit
                })
                .collect();
            let fits: Vec<BinaryFit> = fits.into_iter().collect::<Result<_>>()?;
            if f < k {
                let tests: Vec<Array2<f64>> = features
                    .matrices
                    .iter()
                    .map(|data| standardized_rows(data, features.dim, &fold.test, &scaler))
                    .collect();
                let pooled =
                    concatenate(Axis(0), &tests.iter().map(|t| t.view()).collect::<Vec<_>>())
                        .expect("same width");
                for (p, fit) in fits.iter().enumerate() {
                    let t = truth(&fold.test, p);
                    for (h, z) in tests.iter().enumerate() {
                        shared_scores[p][h].push(metrics::score(&t, &fit.decisions(z.view())));
                    }
                    let pooled_truth: Vec<bool> =
                        t.iter().copied().cycle().take(t.len() * n_hooks).collect();
                    shared_scores[p][n_hooks]
                        .push(metrics::score(&pooled_truth, &fit.decisions(pooled.view())));
                }
            } else {
                shared = fits
                    .iter()
                    .map(|fit| Probe {
                        scaler: scaler.clone(),
                        weight: fit.weight.clone(),
                        bias: fit.bias,
                    })
                    .collect();
            }
            all_fits.extend(fits);
        }
        for p in 0..n_parties {
            for h in 0..=n_hooks {
                shared_cv.push(CvResult {
                    party: features.label_names[p].clone(),
                    hook: features
                        .hooks
                        .get(h)
                        .cloned()
                        .unwrap_or_else(|| "all".into()),
                    mean: metrics::mean(&shared_scores[p][h]),
                    folds: shared_scores[p][h].clone(),
                });
            }
        }
    }

    let summary = (0..n_hooks)
        .map(|h| {
            let over_parties = |scores: &Vec<Vec<Vec<Scores>>>| {
                let means: Vec<Scores> = (0..n_parties)
                    .map(|p| metrics::mean(&scores[p][h]))
                    .collect();
                metrics::mean(&means)
            };
            HookSummary {
                hook: features.hooks[h].clone(),
                per_layer: params.per_layer.then(|| over_parties(&per_layer_scores)),
                shared: params.shared.then(|| over_parties(&shared_scores)),
            }
        })
        .collect();
    let positive_replication = (0..n_parties)
        .map(|p| {
            let n_pos = features.labels.iter().filter(|&&l| l == p).count();
            crate::fit::replication(n_pos, features.n_rows - n_pos)
        })
        .collect();
    let max_gradient_norm = all_fits.iter().map(|f| f.gradient_norm).fold(0.0, f64::max);
    let unconverged_fits = all_fits
        .iter()
        .filter(|f| f.gradient_norm > params.tolerance)
        .count();
    Ok(TrainedProbes {
        per_layer,
        shared,
        null_directions: Vec::new(),
        report: TrainReport {
            params: (**params).clone(),
            parties: features.label_names.clone(),
            hooks: features.hooks.clone(),
            positive_replication,
            folds: fold_of,
            per_layer: per_layer_cv,
            shared: shared_cv,
            summary,
            max_gradient_norm,
            unconverged_fits,
            fits: all_fits.len(),
            seconds: start.elapsed().as_secs_f64(),
            per_layer_seconds,
            shared_seconds: start.elapsed().as_secs_f64() - per_layer_seconds,
            null: None,
        },
    })
}
