//! Every metric against independent implementations (scipy, POT, scikit-learn, numpy), to
//! 1e-9, on ≥ 100 seeded random cases each (fixture: `scripts/metric-fixtures.sh`).

use probe_metrics::alignment::discretization_error;
use probe_metrics::calibration::{expected_calibration_error, fit_temperature};
use probe_metrics::correlation::{pearson, spearman};
use probe_metrics::divergence::{js_distance, kl_divergence, rmse, total_variation};
use probe_metrics::entropy::{entropy, normalized_entropy};
use probe_metrics::ot::{emd, sinkhorn};
use probe_metrics::stats::{linear_regression, percentile, student_t_ppf};
use probe_metrics::wasserstein::{
    arithmetic_barycenter, normalized_wasserstein_1d, w2_barycenter_1d, wasserstein_1d,
};
use probe_metrics::MetricError;
use serde_json::Value;

const TOL: f64 = 1e-9;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn v(x: &Value) -> Vec<f64> {
    x.as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_f64().unwrap())
        .collect()
}

fn f(x: &Value) -> f64 {
    x.as_f64().unwrap()
}

fn close(ours: f64, reference: f64, what: &str, case: usize) {
    assert!(
        (ours - reference).abs() <= TOL * reference.abs().max(1.0),
        "{what} case {case}: ours {ours} vs reference {reference}"
    );
}

fn cases<'a>(fx: &'a Value, key: &str, min: usize) -> &'a Vec<Value> {
    let c = fx[key].as_array().unwrap();
    assert!(c.len() >= min, "{key}: only {} cases", c.len());
    c
}

#[test]
fn entropy_matches_scipy() {
    let fx = fixture();
    for (i, c) in cases(&fx, "entropy", 100).iter().enumerate() {
        let p = v(&c["p"]);
        close(entropy(&p).unwrap(), f(&c["entropy"]), "entropy", i);
        close(
            normalized_entropy(&p).unwrap(),
            f(&c["normalized"]),
            "normalized entropy",
            i,
        );
    }
}

#[test]
fn divergences_match_scipy_and_sklearn() {
    let fx = fixture();
    let mut infinite = 0;
    for (i, c) in cases(&fx, "divergence", 100).iter().enumerate() {
        let (p, q) = (v(&c["p"]), v(&c["q"]));
        close(total_variation(&p, &q).unwrap(), f(&c["tv"]), "tv", i);
        close(
            js_distance(&p, &q).unwrap(),
            f(&c["js_distance"]),
            "js distance",
            i,
        );
        close(rmse(&p, &q).unwrap(), f(&c["rmse"]), "rmse", i);
        close(
            kl_divergence(&p, &q, Some(f(&c["eps"]))).unwrap(),
            f(&c["kl_smoothed"]),
            "smoothed kl",
            i,
        );
        match c["kl"].as_f64() {
            Some(kl) => close(kl_divergence(&p, &q, None).unwrap(), kl, "kl", i),
            None => {
                infinite += 1;
                assert!(matches!(
                    kl_divergence(&p, &q, None),
                    Err(MetricError::InfiniteKl { .. })
                ));
            }
        }
    }
    assert!(
        infinite > 0,
        "the fixture should include q with zeros where p has mass"
    );
}

#[test]
fn wasserstein_1d_matches_scipy() {
    let fx = fixture();
    for (i, c) in cases(&fx, "wasserstein_1d", 100).iter().enumerate() {
        let (p, q, x) = (v(&c["p"]), v(&c["q"]), v(&c["positions"]));
        close(
            wasserstein_1d(&p, &q, Some(&x)).unwrap(),
            f(&c["value"]),
            "w1",
            i,
        );
        close(
            normalized_wasserstein_1d(&p, &q, Some(&x)).unwrap(),
            f(&c["normalized"]),
            "normalized w1",
            i,
        );
    }
}

#[test]
fn exact_ot_matches_pot_emd2_including_unequal_supports() {
    let fx = fixture();
    let mut unequal = 0;
    for (i, c) in cases(&fx, "emd", 100).iter().enumerate() {
        let (a, b, m) = (v(&c["a"]), v(&c["b"]), v(&c["cost"]));
        unequal += usize::from(a.len() != b.len());
        let t = emd(&a, &b, &m).unwrap();
        close(t.cost, f(&c["value"]), "emd", i);
        // The plan is feasible.
        for (row, ai) in a.iter().enumerate() {
            let s: f64 = t.plan[row * b.len()..(row + 1) * b.len()].iter().sum();
            assert!((s - ai).abs() < 1e-9 && t.plan.iter().all(|&x| x >= -1e-12));
        }
    }
    assert!(unequal > 0);
}

#[test]
fn sinkhorn_matches_pot_sinkhorn2() {
    let fx = fixture();
    for (i, c) in cases(&fx, "sinkhorn", 100).iter().enumerate() {
        let (a, b, m) = (v(&c["a"]), v(&c["b"]), v(&c["cost"]));
        let t = sinkhorn(&a, &b, &m, f(&c["reg"]), 200_000, 1e-14).unwrap();
        close(t.cost, f(&c["value"]), "sinkhorn", i);
    }
}

#[test]
fn barycenters_match_numpy() {
    let fx = fixture();
    for (i, c) in cases(&fx, "barycenter", 100).iter().enumerate() {
        let dists: Vec<Vec<f64>> = c["dists"].as_array().unwrap().iter().map(v).collect();
        let (w, x) = (v(&c["weights"]), v(&c["positions"]));
        let mean = arithmetic_barycenter(&dists, Some(&w)).unwrap();
        for (a, b) in mean.iter().zip(v(&c["arithmetic"])) {
            close(*a, b, "arithmetic barycenter", i);
        }
        let (atoms, masses) = w2_barycenter_1d(&dists, &x, Some(&w)).unwrap();
        let (ra, rm) = (v(&c["atoms"]), v(&c["masses"]));
        assert_eq!(atoms.len(), ra.len(), "w2 barycenter case {i}: atom count");
        for (a, b) in atoms.iter().zip(&ra).chain(masses.iter().zip(&rm)) {
            close(*a, *b, "w2 barycenter", i);
        }
    }
}

#[test]
fn correlation_and_regression_match_scipy() {
    let fx = fixture();
    for (i, c) in cases(&fx, "correlation", 100).iter().enumerate() {
        let (x, y) = (v(&c["x"]), v(&c["y"]));
        close(pearson(&x, &y).unwrap(), f(&c["pearson"]), "pearson", i);
        close(spearman(&x, &y).unwrap(), f(&c["spearman"]), "spearman", i);
        let r = linear_regression(&x, &y, 0.95).unwrap();
        close(r.slope, f(&c["slope"]), "slope", i);
        close(r.intercept, f(&c["intercept"]), "intercept", i);
        close(r.r, f(&c["r"]), "r", i);
        close(r.stderr, f(&c["stderr"]), "stderr", i);
        close(r.slope_low, f(&c["slope_low"]), "slope CI low", i);
        close(r.slope_high, f(&c["slope_high"]), "slope CI high", i);
    }
}

#[test]
fn t_quantiles_and_percentiles_match_scipy_and_numpy() {
    let fx = fixture();
    for (i, c) in cases(&fx, "t_ppf", 100).iter().enumerate() {
        close(
            student_t_ppf(f(&c["p"]), f(&c["df"])).unwrap(),
            f(&c["value"]),
            "t ppf",
            i,
        );
    }
    for (i, c) in cases(&fx, "percentile", 100).iter().enumerate() {
        close(
            percentile(&v(&c["values"]), f(&c["q"])).unwrap(),
            f(&c["value"]),
            "percentile",
            i,
        );
    }
}

#[test]
fn discretization_error_matches_exact_multinomial_expectation() {
    let fx = fixture();
    for (i, c) in cases(&fx, "discretization", 100).iter().enumerate() {
        let n = c["n"].as_u64().unwrap() as usize;
        close(
            discretization_error(&v(&c["p"]), n, 1 << 20, 0, 0).unwrap(),
            f(&c["value"]),
            "discretization",
            i,
        );
    }
}

#[test]
fn ece_matches_numpy() {
    let fx = fixture();
    for (i, c) in cases(&fx, "ece", 100).iter().enumerate() {
        let preds: Vec<Vec<f64>> = c["predictions"].as_array().unwrap().iter().map(v).collect();
        let labels: Vec<usize> = c["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_u64().unwrap() as usize)
            .collect();
        let bins = c["bins"].as_u64().unwrap() as usize;
        close(
            expected_calibration_error(&preds, &labels, bins).unwrap(),
            f(&c["value"]),
            "ece",
            i,
        );
    }
}

#[test]
fn temperature_scaling_reaches_scipy_optimum() {
    // The argmin can sit on a kink of TV; compare the attained objective.
    let fx = fixture();
    for (i, c) in cases(&fx, "temperature", 100).iter().enumerate() {
        let cells: Vec<(Vec<f64>, Vec<f64>)> = c["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|yp| (v(&yp[0]), v(&yp[1])))
            .collect();
        let refs: Vec<(&[f64], &[f64])> = cells
            .iter()
            .map(|(y, p)| (y.as_slice(), p.as_slice()))
            .collect();
        let (_, objective) = fit_temperature(&refs, 0.05, 20.0).unwrap();
        assert!(
            objective <= f(&c["objective"]) + 1e-9,
            "temperature case {i}: {objective} > scipy's {}",
            f(&c["objective"])
        );
    }
}
