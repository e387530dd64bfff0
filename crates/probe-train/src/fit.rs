//! One binary logistic-regression probe, fitted with linfa-logistic (L-BFGS, L2).

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{s, Array1, Array2, ArrayView2, Axis, ShapeBuilder};

pub use crate::Solver;

use crate::{Result, TrainError};

/// Per-feature standardization, fitted on training rows (population std, like scikit-learn's
/// `StandardScaler`; constant features keep scale 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Scaler {
    /// Fits on rows `rows` of a row-major `[n × dim]` matrix.
    pub fn fit(data: &[f32], dim: usize, rows: &[usize]) -> Scaler {
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0f64; dim];
        for &r in rows {
            for (m, &x) in mean.iter_mut().zip(&data[r * dim..(r + 1) * dim]) {
                *m += x as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0f64; dim];
        for &r in rows {
            for ((v, &x), m) in var.iter_mut().zip(&data[r * dim..(r + 1) * dim]).zip(&mean) {
                *v += (x as f64 - m).powi(2);
            }
        }
        let std = var
            .into_iter()
            .map(|v| {
                let s = (v / n).sqrt();
                if s > 10.0 * f64::EPSILON * 1.0f64.max(s) {
                    s
                } else {
                    1.0
                }
            })
            .collect();
        Scaler { mean, std }
    }
}

/// A fitted probe in standardized feature space: `decision(z) = w·z + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryFit {
    pub weight: Vec<f64>,
    pub bias: f64,
    /// How often each positive row was repeated to balance the classes.
    pub positive_replication: usize,
    /// Max-norm of the gradient of the mean loss at the solution (scikit-learn's criterion).
    pub gradient_norm: f64,
}

impl BinaryFit {
    pub fn decisions(&self, z: ArrayView2<f64>) -> Vec<f64> {
        let w = ndarray::ArrayView1::from(&self.weight[..]);
        z.dot(&w).iter().map(|d| d + self.bias).collect()
    }
}

/// Settings of one fit.
#[derive(Debug, Clone, Copy)]
pub struct FitSettings {
    pub solver: Solver,
    pub c: f64,
    pub max_iterations: u64,
    pub tolerance: f64,
}

/// The repetition of every positive row that balances a `n_pos : n_neg` split: linfa-logistic
/// has no sample weights, and repeating a row k times is exactly weight k in its summed loss.
pub fn replication(n_pos: usize, n_neg: usize) -> usize {
    ((n_neg as f64 / n_pos.max(1) as f64).round() as usize).max(1)
}

/// Fits `truth` on standardized rows `z` (column-major preferred), the positives weighted
/// `round(n_neg / n_pos)` to balance the classes, warm-started from `init` when given.
pub fn fit_binary(
    z: ArrayView2<f64>,
    truth: &[bool],
    settings: FitSettings,
    init: Option<&BinaryFit>,
) -> Result<BinaryFit> {
    let n_pos = truth.iter().filter(|&&t| t).count();
    let n_neg = truth.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Err(TrainError::Data(format!(
            "a training fold has {n_pos} positive and {n_neg} negative rows: both classes are needed"
        )));
    }
    let r = replication(n_pos, n_neg);
    if settings.solver == Solver::Newton {
        let weights: Vec<f64> = truth
            .iter()
            .map(|&t| if t { r as f64 } else { 1.0 })
            .collect();
        let (weight, bias, gradient_norm) = crate::newton::fit(
            z,
            truth,
            &weights,
            settings.c,
            settings.max_iterations,
            settings.tolerance,
            init.map(|f| (&f.weight[..], f.bias)),
        )?;
        return Ok(BinaryFit {
            weight,
            bias,
            positive_replication: r,
            gradient_norm,
        });
    }
    let positives: Vec<usize> = (0..truth.len()).filter(|&i| truth[i]).collect();
    let n_eff = truth.len() + (r - 1) * n_pos;
    let dim = z.ncols();
    let mut x = Array2::<f64>::zeros((n_eff, dim).f());
    x.slice_mut(s![..truth.len(), ..]).assign(&z);
    let extra = z.select(Axis(0), &positives);
    for k in 0..r - 1 {
        let at = truth.len() + k * n_pos;
        x.slice_mut(s![at..at + n_pos, ..]).assign(&extra);
    }
    let mut y: Vec<bool> = truth.to_vec();
    for _ in 0..r - 1 {
        y.extend(std::iter::repeat_n(true, n_pos));
    }
    // linfa labels the more frequent class +1 (the first-seen one on a tie), so its weights
    // may point away from the positives: orient the warm start and the result accordingly.
    let n_true = n_pos * r;
    let sign = if n_true > n_neg || (n_true == n_neg && y[0]) {
        1.0
    } else {
        -1.0
    };
    let y = Array1::from(y);

    // linfa minimises Σ logloss + α/2‖w‖²: scikit-learn's C·Σ logloss + ½‖w‖² with α = 1/C.
    // Its gradient is n_eff times that of the mean loss, so the tolerance scales with n_eff.
    let mut params = LogisticRegression::default()
        .alpha(1.0 / settings.c)
        .max_iterations(settings.max_iterations)
        .gradient_tolerance(settings.tolerance * n_eff as f64);
    if let Some(init) = init {
        let mut p: Vec<f64> = init.weight.iter().map(|w| sign * w).collect();
        p.push(sign * init.bias);
        params = params.initial_params(Array1::from(p));
    }
    let dataset = Dataset::new(x, y);
    let model = params
        .fit(&dataset)
        .map_err(|e| TrainError::Fit(e.to_string()))?;
    debug_assert_eq!(model.labels().pos.class, sign > 0.0);
    let weight: Vec<f64> = model.params().iter().map(|w| sign * w).collect();
    let bias = sign * model.intercept();
    let gradient_norm = mean_loss_gradient_norm(
        dataset.records().view(),
        dataset.targets(),
        &weight,
        bias,
        settings.c,
    );
    Ok(BinaryFit {
        weight,
        bias,
        positive_replication: r,
        gradient_norm,
    })
}

/// ‖∇‖∞ of `mean logloss + ‖w‖²/(2·C·n)`, the quantity scikit-learn's L-BFGS stops on.
fn mean_loss_gradient_norm(x: ArrayView2<f64>, y: &Array1<bool>, w: &[f64], b: f64, c: f64) -> f64 {
    let n = x.nrows() as f64;
    let wv = ndarray::ArrayView1::from(w);
    let mut r = x.dot(&wv);
    for (ri, &yi) in r.iter_mut().zip(y) {
        let p = 1.0 / (1.0 + (-(*ri + b)).exp());
        *ri = p - if yi { 1.0 } else { 0.0 };
    }
    let gw = x.t().dot(&r);
    let gb = r.sum() / n;
    gw.iter()
        .zip(w)
        .map(|(g, wi)| ((g + wi / c) / n).abs())
        .fold(gb.abs(), f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_balances_classes() {
        assert_eq!(replication(10, 50), 5);
        assert_eq!(replication(10, 10), 1);
        assert_eq!(replication(50, 10), 1);
        assert_eq!(replication(3, 10), 3);
    }

    #[test]
    fn separates_a_shifted_gaussian_and_reaches_the_stationary_point() {
        // Two features, positives shifted along the first; deterministic pseudo-noise.
        let n = 120;
        let mut z = Array2::<f64>::zeros((n, 2).f());
        let mut truth = vec![false; n];
        for i in 0..n {
            let u = ((i * 7919) % 101) as f64 / 101.0 - 0.5;
            let v = ((i * 104729) % 97) as f64 / 97.0 - 0.5;
            truth[i] = i % 6 == 0;
            z[[i, 0]] = u + if truth[i] { 1.0 } else { 0.0 };
            z[[i, 1]] = v;
        }
        let settings = FitSettings {
            solver: Solver::Lbfgs,
            c: 1.0,
            max_iterations: 500,
            tolerance: 1e-8,
        };
        let fit = fit_binary(z.view(), &truth, settings, None).unwrap();
        // Newton on sample weights reaches the same optimum as L-BFGS on repeated rows.
        let newton = fit_binary(
            z.view(),
            &truth,
            FitSettings {
                solver: Solver::Newton,
                ..settings
            },
            None,
        )
        .unwrap();
        assert!(newton.gradient_norm < 1e-8);
        for (a, b) in newton.weight.iter().zip(&fit.weight) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert!((newton.bias - fit.bias).abs() < 1e-5);
        assert_eq!(fit.positive_replication, 5);
        assert!(
            fit.weight[0] > 1.0 && fit.weight[1].abs() < fit.weight[0] / 4.0,
            "{fit:?}"
        );
        assert!(fit.gradient_norm < 1e-6, "{}", fit.gradient_norm);
        let warm = fit_binary(z.view(), &truth, settings, Some(&fit)).unwrap();
        assert!((warm.weight[0] - fit.weight[0]).abs() < 1e-5);
    }

    #[test]
    fn one_class_is_an_error() {
        let z = Array2::<f64>::zeros((4, 2));
        let err = fit_binary(
            z.view(),
            &[false; 4],
            FitSettings {
                solver: Solver::Newton,
                c: 1.0,
                max_iterations: 10,
                tolerance: 1e-4,
            },
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("both classes"), "{err}");
    }
}
