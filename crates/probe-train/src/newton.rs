//! Weighted logistic regression by Newton's method (IRLS) with a backtracking line search.
//!
//! The probes' problem is nearly separable (576 features, ~2000 rows, weak L2), where L-BFGS —
//! linfa-logistic's and scikit-learn's alike — needs 500+ iterations per fit. Newton's method
//! needs ~10: each builds the exact Hessian `Xᵀ diag(s·p(1−p)) X + I/C` with one GEMM and
//! solves it by Cholesky. Sample weights enter the loss directly, so no rows are repeated.

use ndarray::{Array2, ArrayView2, Axis, ShapeBuilder};

use crate::{Result, TrainError};

/// Minimises `Σᵢ sᵢ·log(1 + exp(−yᵢ(xᵢ·w + b))) + ‖w‖²/(2C)` (y ∈ {±1}).
/// Returns (w, b, ‖∇‖∞ of the objective divided by Σ sᵢ).
pub fn fit(
    x: ArrayView2<f64>,
    truth: &[bool],
    sample_weight: &[f64],
    c: f64,
    max_iterations: u64,
    tolerance: f64,
    init: Option<(&[f64], f64)>,
) -> Result<(Vec<f64>, f64, f64)> {
    let d = x.ncols();
    let total_weight: f64 = sample_weight.iter().sum();
    let mut w = vec![0f64; d];
    let mut b = 0.0;
    if let Some((w0, b0)) = init {
        w.copy_from_slice(w0);
        b = b0;
    }
    let target: Vec<f64> = truth.iter().map(|&t| if t { 1.0 } else { 0.0 }).collect();
    // The objective from the margins z = Xw (without b): the line search moves along
    // z + α·X·step, so it needs no matrix product per trial.
    let objective = |z: &[f64], b: f64, w: &[f64]| -> f64 {
        let loss: f64 = z
            .iter()
            .zip(&target)
            .zip(sample_weight)
            .map(|((&z, &t), &s)| {
                let m = if t > 0.5 { -(z + b) } else { z + b };
                s * softplus(m)
            })
            .sum();
        loss + dot(w, w) / (2.0 * c)
    };
    let mut z = matvec(x, &w);
    let mut value = objective(&z, b, &w);
    let mut gradient_norm = f64::INFINITY;
    let mut last_gradient_norm = f64::INFINITY;
    let mut factor: Option<Vec<f64>> = None;
    for _ in 0..max_iterations {
        let mut residual = vec![0f64; z.len()];
        let mut curvature = vec![0f64; z.len()];
        for (i, &zi) in z.iter().enumerate() {
            let p = sigmoid(zi + b);
            residual[i] = sample_weight[i] * (p - target[i]);
            curvature[i] = sample_weight[i] * p * (1.0 - p);
        }
        let grad_w: Vec<f64> = transposed_matvec(x, &residual)
            .iter()
            .zip(&w)
            .map(|(g, wi)| g + wi / c)
            .collect();
        let grad_b: f64 = residual.iter().sum();
        gradient_norm = grad_w.iter().fold(grad_b.abs(), |m, g| m.max(g.abs())) / total_weight;
        if gradient_norm < tolerance {
            break;
        }
        // A Hessian is worth its GEMM while far from the optimum; once a step has cut the
        // gradient at least fourfold, the factor from before keeps doing so for a few steps
        // (warm starts begin near the optimum), costing only two matrix-vector products.
        let stale = factor
            .as_ref()
            .is_none_or(|_| gradient_norm > 0.25 * last_gradient_norm);
        if stale {
            factor = Some(hessian_factor(x, &curvature, c)?);
        }
        last_gradient_norm = gradient_norm;
        let mut step: Vec<f64> = grad_w.iter().map(|g| -g).collect();
        step.push(-grad_b);
        cholesky_solve(factor.as_ref().expect("set above"), d + 1, &mut step);
        let slope = dot(&grad_w, &step[..d]) + grad_b * step[d];
        let z_step = matvec(x, &step[..d]);
        let mut alpha = 1.0;
        loop {
            let w_new: Vec<f64> = w.iter().zip(&step).map(|(w, s)| w + alpha * s).collect();
            let z_new: Vec<f64> = z.iter().zip(&z_step).map(|(z, s)| z + alpha * s).collect();
            let b_new = b + alpha * step[d];
            let v = objective(&z_new, b_new, &w_new);
            // Near the optimum the decrease falls below the objective's rounding and Armijo
            // cannot see it: then the full Newton step is taken as is.
            let unresolvable = -slope < 1e-12 * (1.0 + value.abs());
            if v <= value + 1e-4 * alpha * slope || unresolvable || alpha < 1e-10 {
                w = w_new;
                z = z_new;
                b = b_new;
                value = v;
                break;
            }
            alpha *= 0.5;
        }
    }
    Ok((w, b, gradient_norm))
}

/// `X·v`, accumulated column by column (contiguous in the column-major training matrix).
fn matvec(x: ArrayView2<f64>, v: &[f64]) -> Vec<f64> {
    let mut out = vec![0f64; x.nrows()];
    for (col, &vj) in x.axis_iter(Axis(1)).zip(v) {
        match col.as_slice() {
            Some(col) => out.iter_mut().zip(col).for_each(|(o, &c)| *o += vj * c),
            None => out
                .iter_mut()
                .zip(col.iter())
                .for_each(|(o, &c)| *o += vj * c),
        }
    }
    out
}

/// `Xᵀ·r`: one dot product per (contiguous) column.
fn transposed_matvec(x: ArrayView2<f64>, r: &[f64]) -> Vec<f64> {
    x.axis_iter(Axis(1))
        .map(|col| match col.as_slice() {
            Some(col) => dot(col, r),
            None => col.iter().zip(r).map(|(a, b)| a * b).sum(),
        })
        .collect()
}

/// A dot product with four accumulators, so it vectorises (a single f64 sum cannot be
/// reordered by the compiler).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    acc[0] + acc[1] + acc[2] + acc[3] + tail
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// log(1 + eᵐ) without overflow.
fn softplus(m: f64) -> f64 {
    if m > 0.0 {
        m + (-m).exp().ln_1p()
    } else {
        m.exp().ln_1p()
    }
}

/// The Cholesky factor of the Hessian `[[Xᵀ D X + I/C, Xᵀ D 1], [1ᵀ D X, 1ᵀ D 1]]` of the
/// (w, b) system. The `Xᵀ D X` GEMM, the bulk of a Newton step, runs in f32: the factor only
/// steers the step, while gradient and objective (what convergence is judged on) stay f64.
fn hessian_factor(x: ArrayView2<f64>, curvature: &[f64], c: f64) -> Result<Vec<f64>> {
    let (n, d) = x.dim();
    let mut scaled = Array2::<f32>::zeros((n, d).f());
    let root: Vec<f64> = curvature.iter().map(|v| v.sqrt()).collect();
    for (mut dst, src) in scaled.axis_iter_mut(Axis(1)).zip(x.axis_iter(Axis(1))) {
        for ((o, &v), &r) in dst.iter_mut().zip(src).zip(&root) {
            *o = (v * r) as f32;
        }
    }
    let mut xtdx = vec![0f32; d * d];
    // SAFETY: `scaled` is n×d column-major (element (k, j) at k + j·n); lhs = scaledᵀ (d×n,
    // element (i, k) at k + i·n), rhs = scaled, dst = d×d row-major; all in bounds.
    unsafe {
        gemm::gemm(
            d,
            d,
            n,
            xtdx.as_mut_ptr(),
            1,
            d as isize,
            false,
            scaled.as_ptr(),
            1,
            n as isize,
            scaled.as_ptr(),
            n as isize,
            1,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    let xtd1 = transposed_matvec(x, curvature);
    let m = d + 1;
    let mut h = vec![0f64; m * m];
    for i in 0..d {
        for j in 0..=i {
            h[i * m + j] = xtdx[i * d + j] as f64;
        }
        h[i * m + i] += 1.0 / c;
        h[d * m + i] = xtd1[i];
    }
    h[d * m + d] = curvature.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    cholesky_factor(&mut h, m)?;
    Ok(h)
}

/// Overwrites the lower triangle of symmetric positive definite `a` (row-major) with L, A = LLᵀ.
fn cholesky_factor(a: &mut [f64], n: usize) -> Result<()> {
    for j in 0..n {
        let row_j = &mut a[j * n..(j + 1) * n];
        let diag = row_j[j] - dot(&row_j[..j], &row_j[..j]);
        if !(diag > 0.0 && diag.is_finite()) {
            return Err(TrainError::Fit(format!(
                "Hessian not positive definite at column {j} (non-finite features?)"
            )));
        }
        row_j[j] = diag.sqrt();
        for i in j + 1..n {
            let (upper, lower) = a.split_at_mut(i * n);
            let row_j = &upper[j * n..j * n + j + 1];
            let row_i = &mut lower[..n];
            let inner = dot(&row_i[..j], &row_j[..j]);
            row_i[j] = (row_i[j] - inner) / row_j[j];
        }
    }
    Ok(())
}

/// Solves `L Lᵀ x = rhs` in place with the factor from [`cholesky_factor`].
fn cholesky_solve(l: &[f64], n: usize, rhs: &mut [f64]) {
    for i in 0..n {
        let dot: f64 = (0..i).map(|k| l[i * n + k] * rhs[k]).sum();
        rhs[i] = (rhs[i] - dot) / l[i * n + i];
    }
    for i in (0..n).rev() {
        let dot: f64 = (i + 1..n).map(|k| l[k * n + i] * rhs[k]).sum();
        rhs[i] = (rhs[i] - dot) / l[i * n + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_known_system() {
        // A = [[4, 2], [2, 3]], x = [1, -1] → b = [2, -1].
        let mut a = vec![4.0, 0.0, 2.0, 3.0];
        let mut rhs = vec![2.0, -1.0];
        cholesky_factor(&mut a, 2).unwrap();
        cholesky_solve(&a, 2, &mut rhs);
        assert!((rhs[0] - 1.0).abs() < 1e-12 && (rhs[1] + 1.0).abs() < 1e-12);
        let mut singular = vec![0.0, 0.0, 0.0, 0.0];
        assert!(cholesky_factor(&mut singular, 2).is_err());
    }

    #[test]
    fn weights_equal_repeated_rows() {
        // Weight 3 on the positives is the same problem as the positives repeated 3 times.
        let x = ndarray::arr2(&[
            [0.5, 1.0],
            [1.5, -0.5],
            [-1.0, 0.2],
            [0.1, -1.2],
            [2.0, 0.3],
        ]);
        let truth = [true, false, false, true, false];
        let weights: Vec<f64> = truth.iter().map(|&t| if t { 3.0 } else { 1.0 }).collect();
        let (w, b, g) = fit(x.view(), &truth, &weights, 2.0, 100, 1e-10, None).unwrap();
        assert!(g < 1e-10);
        let mut rows = vec![];
        let mut t = vec![];
        for (i, &ti) in truth.iter().enumerate() {
            for _ in 0..if ti { 3 } else { 1 } {
                rows.extend(x.row(i).iter().copied());
                t.push(ti);
            }
        }
        let xr = Array2::from_shape_vec((t.len(), 2), rows).unwrap();
        let (wr, br, gr) = fit(xr.view(), &t, &vec![1.0; t.len()], 2.0, 100, 1e-10, None).unwrap();
        assert!(gr < 1e-10, "{gr}");
        for (a, b) in w.iter().zip(&wr) {
            assert!((a - b).abs() < 1e-8, "{a} {b}");
        }
        assert!((b - br).abs() < 1e-8);
    }
}

#[cfg(test)]
mod gemm_tests {
    use super::*;

    #[test]
    fn hessian_equals_the_dense_product() {
        let x =
            ndarray::Array2::from_shape_fn((7, 3).f(), |(i, j)| ((i * 3 + j) as f64 * 0.37).sin());
        let curvature = ndarray::Array1::from_shape_fn(7, |i| 0.1 + i as f64 * 0.05);
        let c = 2.0;
        let l = hessian_factor(x.view(), curvature.as_slice().unwrap(), c).unwrap();
        let m = 4;
        // Rebuild H = L·Lᵀ and compare with the definition.
        let mut xa = ndarray::Array2::<f64>::zeros((7, 4));
        xa.slice_mut(ndarray::s![.., ..3]).assign(&x);
        xa.column_mut(3).fill(1.0);
        let dm = ndarray::Array2::from_diag(&curvature);
        let mut h = xa.t().dot(&dm).dot(&xa);
        for i in 0..3 {
            h[[i, i]] += 1.0 / c;
        }
        for i in 0..m {
            for j in 0..=i {
                let llt: f64 = (0..=j).map(|k| l[i * m + k] * l[j * m + k]).sum();
                assert!(
                    (llt - h[[i, j]]).abs() < 1e-5 * (1.0 + h[[i, j]].abs()),
                    "{i},{j}: {llt} vs {}",
                    h[[i, j]]
                );
            }
        }
    }
}
