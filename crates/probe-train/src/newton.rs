//! Weighted logistic regression by Newton's method (IRLS) with a backtracking line search.
//!
//! The probes' problem is nearly separable (576 features, ~2000 rows, weak L2), where L-BFGS —
//! linfa-logistic's and scikit-learn's alike — needs 500+ iterations per fit. Newton's method
//! needs ~10: each builds the exact Hessian `Xᵀ diag(s·p(1−p)) X + I/C` with one GEMM and
//! solves it by Cholesky. Sample weights enter the loss directly, so no rows are repeated.

use ndarray::ArrayView2;

use crate::{Result, TrainError};

/// Rows of the Hessian computed per GEMM (see [`hessian_factor`]).
const HESSIAN_BAND: usize = 64;

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
    let (n, d) = x.dim();
    // Every sweep below reads whole columns: column-major (what `standardized_rows` gives)
    // costs no copy.
    let transposed = x.t();
    let columns = transposed.as_standard_layout();
    let x = Columns {
        data: columns.as_slice().expect("standard layout is contiguous"),
        n,
        d,
    };
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
    let mut z = x.matvec(&w);
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
        let grad_w: Vec<f64> = x
            .transposed_matvec(&residual)
            .iter()
            .zip(&w)
            .map(|(g, wi)| g + wi / c)
            .collect();
        let grad_b: f64 = residual.iter().sum();
        gradient_norm = grad_w.iter().fold(grad_b.abs(), |m, g| m.max(g.abs())) / total_weight;
        if gradient_norm < tolerance {
            break;
        }
        // A fresh Hessian costs a GEMM and a Cholesky; a step with the old factor costs two
        // matrix-vector products. So the old factor is kept while each step still halves the
        // gradient (measured on the 2025 Bundestag cache: 1,296 Hessians and 3,963 steps for
        // 396 fits, against 1,746 and 2,715 when demanding a fourfold cut; ~10 % less time).
        let stale = factor
            .as_ref()
            .is_none_or(|_| gradient_norm > 0.5 * last_gradient_norm);
        if stale {
            factor = Some(hessian_factor(&x, &curvature, c)?);
        }
        last_gradient_norm = gradient_norm;
        let mut step: Vec<f64> = grad_w.iter().map(|g| -g).collect();
        step.push(-grad_b);
        cholesky_solve(factor.as_ref().expect("set above"), d + 1, &mut step);
        let slope = dot(&grad_w, &step[..d]) + grad_b * step[d];
        let z_step = x.matvec(&step[..d]);
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

/// The training matrix, n rows of d features, column-major.
struct Columns<'a> {
    data: &'a [f64],
    n: usize,
    d: usize,
}

impl Columns<'_> {
    fn columns(&self) -> std::slice::ChunksExact<'_, f64> {
        self.data.chunks_exact(self.n)
    }

    /// `X·v`: the columns summed with weights v.
    fn matvec(&self, v: &[f64]) -> Vec<f64> {
        let mut out = vec![0f64; self.n];
        add_weighted_columns(&mut out, self.data, v);
        out
    }

    /// `Xᵀ·r`: one dot product per column.
    fn transposed_matvec(&self, r: &[f64]) -> Vec<f64> {
        let mut out = vec![0f64; self.d];
        dot_columns(&mut out, self.data, r);
        out
    }
}

use probe_util::with_avx2;

/// A dot product with sixteen accumulators, so it vectorises (a single f64 sum cannot be
/// reordered by the compiler) and hides the adds' latency. Inlined into its callers, so inside
/// a `with_avx2!` function it runs four lanes wide; the CPU check happens once per sweep.
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}

with_avx2! {
    /// `out[j] = columnⱼ · r` for the columns of length `r.len()` in `data`.
    fn dot_columns(out: &mut [f64], data: &[f64], r: &[f64]) -> () {
        for (o, column) in out.iter_mut().zip(data.chunks_exact(r.len())) {
            *o = dot(column, r);
        }
    }
}

with_avx2! {
    /// `out += Σⱼ vⱼ·columnⱼ`, four columns per pass over `out`.
    fn add_weighted_columns(out: &mut [f64], data: &[f64], v: &[f64]) -> () {
        let n = out.len();
        let mut blocks = data.chunks_exact(4 * n).zip(v.chunks_exact(4));
        for (block, w) in blocks.by_ref() {
            let (c0, rest) = block.split_at(n);
            let (c1, rest) = rest.split_at(n);
            let (c2, c3) = rest.split_at(n);
            for i in 0..n {
                out[i] += w[0] * c0[i] + w[1] * c1[i] + w[2] * c2[i] + w[3] * c3[i];
            }
        }
        let done = v.len() / 4 * 4;
        for (column, &vj) in data[done * n..].chunks_exact(n).zip(&v[done..]) {
            out.iter_mut().zip(column).for_each(|(o, &x)| *o += vj * x);
        }
    }
}

with_avx2! {
    /// `dst[i] = (column[i] · root[i])` in f32: one column of the Hessian's scaled matrix.
    fn scale_to_f32(dst: &mut [f32], column: &[f64], root: &[f64]) -> () {
        for ((o, &x), &r) in dst.iter_mut().zip(column).zip(root) {
            *o = (x * r) as f32;
        }
    }
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
fn hessian_factor(x: &Columns, curvature: &[f64], c: f64) -> Result<Vec<f64>> {
    let (n, d) = (x.n, x.d);
    let m = d + 1;
    // [X | 1] with every row scaled by √curvature, column-major: its Gram matrix is the whole
    // (w, b) Hessian, bias row included, in one product. (Column-major packs faster into the
    // GEMM than row-major here: 154 vs 188 ms for 20 000 rows.)
    let root: Vec<f64> = curvature.iter().map(|v| v.sqrt()).collect();
    let mut scaled = vec![0f32; n * m];
    for (dst, column) in scaled.chunks_exact_mut(n).zip(x.columns()) {
        scale_to_f32(dst, column, &root);
    }
    for (o, &r) in scaled[n * d..].iter_mut().zip(&root) {
        *o = r as f32;
    }
    // Only the lower triangle is read, so the GEMM runs per band of rows against the columns
    // up to the band's end: with bands of 64, ~56 % of a full product's flops (a SYRK).
    let mut gram = vec![0f32; m * m];
    for start in (0..m).step_by(HESSIAN_BAND) {
        let end = (start + HESSIAN_BAND).min(m);
        // SAFETY: `scaled` is n×m column-major (element (k, j) at k + j·n); lhs = rows
        // start..end of scaledᵀ (element (i, k) at k + (start + i)·n), rhs = columns 0..end of
        // scaled, dst = rows start..end, columns 0..end of the m×m row-major `gram`; all in
        // bounds since end ≤ m.
        unsafe {
            gemm::gemm(
                end - start,
                end,
                n,
                gram.as_mut_ptr().add(start * m),
                1,
                m as isize,
                false,
                scaled.as_ptr().add(start * n),
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
    }
    let mut h: Vec<f64> = gram.iter().map(|&v| v as f64).collect();
    for i in 0..d {
        h[i * m + i] += 1.0 / c;
    }
    h[d * m + d] = h[d * m + d].max(f64::MIN_POSITIVE);
    cholesky_factor(&mut h, m)?;
    Ok(h)
}

/// Columns of the Cholesky factor computed per block (see [`cholesky_factor`]).
const CHOLESKY_BLOCK: usize = 32;

/// Overwrites the lower triangle of symmetric positive definite `a` (row-major) with L, A = LLᵀ.
///
/// Left-looking and blocked: before a block of columns is factored, the contribution of all
/// columns left of it comes off in one f64 GEMM, which is most of the n³/3 work; only the
/// block's own columns run as dot products. (Unblocked, the dot products were a fifth of a
/// `probe train`.)
fn cholesky_factor(a: &mut [f64], n: usize) -> Result<()> {
    assert_eq!(a.len(), n * n, "cholesky_factor: a is not n×n");
    for start in (0..n).step_by(CHOLESKY_BLOCK) {
        let end = (start + CHOLESKY_BLOCK).min(n);
        if start > 0 {
            let base = a.as_mut_ptr();
            // SAFETY: A[start.., start..end] −= L[start.., ..start] · L[start..end, ..start]ᵀ.
            // dst covers columns start..end of rows start..n; lhs and rhs read columns
            // 0..start of rows start..n: disjoint parts of `a`, all in bounds (row-major n×n).
            unsafe {
                gemm::gemm(
                    n - start,
                    end - start,
                    start,
                    base.add(start * n + start),
                    1,
                    n as isize,
                    true,
                    base.add(start * n) as *const f64,
                    1,
                    n as isize,
                    base.add(start * n) as *const f64,
                    n as isize,
                    1,
                    1.0f64,
                    -1.0f64,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        factor_block_columns(a, n, start, end)?;
    }
    Ok(())
}

with_avx2! {
    /// Columns `start..end` of L, once every column left of `start` has been subtracted from
    /// them: dot products within the block only.
    fn factor_block_columns(a: &mut [f64], n: usize, start: usize, end: usize) -> Result<()> {
        for j in start..end {
            let row_j = &mut a[j * n..(j + 1) * n];
            let diag = row_j[j] - dot(&row_j[start..j], &row_j[start..j]);
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
                let inner = dot(&row_i[start..j], &row_j[start..j]);
                row_i[j] = (row_i[j] - inner) / row_j[j];
            }
        }
        Ok(())
    }
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
    use ndarray::Array2;

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
    fn blocked_cholesky_reproduces_its_matrix() {
        // Several blocks and a partial last one: A = BBᵀ + n·I, L·Lᵀ must give A back.
        let n = 2 * CHOLESKY_BLOCK + 13;
        let b: Vec<f64> = (0..n * n).map(|i| ((i as f64) * 0.731).sin()).collect();
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>()
                    + if i == j { n as f64 } else { 0.0 };
            }
        }
        let mut l = a.clone();
        cholesky_factor(&mut l, n).unwrap();
        for i in 0..n {
            for j in 0..=i {
                let llt: f64 = (0..=j).map(|k| l[i * n + k] * l[j * n + k]).sum();
                assert!((llt - a[i * n + j]).abs() < 1e-9 * a[i * n + i], "{i},{j}");
            }
        }
        let x: Vec<f64> = (0..n).map(|i| i as f64 - 40.0).collect();
        let mut rhs: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| a[i * n + j] * x[j]).sum())
            .collect();
        cholesky_solve(&l, n, &mut rhs);
        for (got, want) in rhs.iter().zip(&x) {
            assert!((got - want).abs() < 1e-8, "{got} vs {want}");
        }
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
    use ndarray::ShapeBuilder;

    #[test]
    fn hessian_equals_the_dense_product() {
        // One band, and several with a partial last one.
        for (n, d) in [(7, 3), (97, 2 * HESSIAN_BAND + 22)] {
            let x = ndarray::Array2::from_shape_fn((n, d).f(), |(i, j)| {
                ((i * d + j) as f64 * 0.37).sin()
            });
            let curvature = ndarray::Array1::from_shape_fn(n, |i| 0.1 + (i % 7) as f64 * 0.05);
            let c = 2.0;
            let columns = Columns {
                data: x.as_slice_memory_order().unwrap(),
                n,
                d,
            };
            let l = hessian_factor(&columns, curvature.as_slice().unwrap(), c).unwrap();
            let m = d + 1;
            // Rebuild H = L·Lᵀ and compare with the definition.
            let mut xa = ndarray::Array2::<f64>::zeros((n, m));
            xa.slice_mut(ndarray::s![.., ..d]).assign(&x);
            xa.column_mut(d).fill(1.0);
            let dm = ndarray::Array2::from_diag(&curvature);
            let mut h = xa.t().dot(&dm).dot(&xa);
            for i in 0..d {
                h[[i, i]] += 1.0 / c;
            }
            for i in 0..m {
                for j in 0..=i {
                    let llt: f64 = (0..=j).map(|k| l[i * m + k] * l[j * m + k]).sum();
                    assert!(
                        (llt - h[[i, j]]).abs() < 1e-4 * (1.0 + h[[i, j]].abs()),
                        "{n}×{d} at {i},{j}: {llt} vs {}",
                        h[[i, j]]
                    );
                }
            }
        }
    }
}
