//! Times single probe fits on a real cache: `fit_cache <cache> <hook index> [tol] [C]`.
use ndarray::Array2;
use probe_train::convert::standardized_rows;
use probe_train::fit::{fit_binary, FitSettings, Scaler, Solver};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cache = probe_cache::CacheReader::open(std::path::Path::new(&args[1])).unwrap();
    let f = probe_train::Features::from_cache(&cache).unwrap();
    let h: usize = args[2].parse().unwrap();
    let tol: f64 = args.get(3).map_or(1e-4, |s| s.parse().unwrap());
    let c: f64 = args.get(4).map_or(1.0, |s| s.parse().unwrap());
    let solver: Solver = args.get(5).map_or(Solver::Newton, |s| s.parse().unwrap());
    let folds = probe_train::folds::grouped_stratified_folds(&f.labels, &f.groups, 5, 0).unwrap();
    let train: Vec<usize> = (0..f.n_rows).filter(|&i| folds[i] != 0).collect();
    let scaler = Scaler::fit(&f.matrices[h], f.dim, &train);
    let z: Array2<f64> = standardized_rows(&f.matrices[h], f.dim, &train, &scaler);
    for p in 0..f.label_names.len() {
        let truth: Vec<bool> = train.iter().map(|&i| f.labels[i] == p).collect();
        let t = std::time::Instant::now();
        let fit = fit_binary(
            z.view(),
            &truth,
            FitSettings {
                solver,
                c,
                max_iterations: 1000,
                tolerance: tol,
            },
            None,
        )
        .unwrap();
        println!(
            "{} {:.3}s grad {:.2e} |w| {:.3}",
            f.label_names[p],
            t.elapsed().as_secs_f64(),
            fit.gradient_norm,
            fit.weight.iter().map(|w| w * w).sum::<f64>().sqrt()
        );
    }
}
