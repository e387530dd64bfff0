//! Times one probe fit on synthetic data shaped like a Wahl-o-Mat cache layer
//! (2000 rows × 576 dims, 1:5 classes). `cargo run --release -p probe-train --example fit_speed`
use ndarray::{Array2, ShapeBuilder};
use probe_train::fit::{fit_binary, FitSettings, Solver};

fn main() {
    let (n, d) = (2000usize, 576usize);
    let mut s = 1u64;
    let mut rnd = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let truth: Vec<bool> = (0..n).map(|i| i % 6 == 0).collect();
    let mut z = Array2::<f64>::zeros((n, d).f());
    for i in 0..n {
        for j in 0..d {
            z[[i, j]] = rnd() * 1.7 + if truth[i] && j < 20 { 0.3 } else { 0.0 };
        }
    }
    for tol in [1e-4, 1e-6] {
        let t = std::time::Instant::now();
        let fit = fit_binary(
            z.view(),
            &truth,
            FitSettings {
                solver: Solver::Lbfgs,
                c: 1.0,
                max_iterations: 1000,
                tolerance: tol,
            },
            None,
        )
        .unwrap();
        println!(
            "tol {tol:e}: {:.3}s, grad {:.2e}, w0 {:.5}",
            t.elapsed().as_secs_f64(),
            fit.gradient_norm,
            fit.weight[0]
        );
    }
}
