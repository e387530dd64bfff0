//! `probe.metrics`: the metrics crate on numpy arrays or lists (the same functions the
//! report and `probe compare` use, checked there against scipy).

use pyo3::prelude::*;

use crate::to_py_err;

fn wrap<T>(r: probe_metrics::Result<T>) -> PyResult<T> {
    r.map_err(|e| to_py_err(e.into()))
}

/// Total variation distance ½ Σ |p − q| of two distributions.
#[pyfunction]
fn tv(p: Vec<f64>, q: Vec<f64>) -> PyResult<f64> {
    wrap(probe_metrics::divergence::total_variation(&p, &q))
}

/// Jensen–Shannon divergence (natural log, scipy's `jensenshannon(p, q) ** 2`).
#[pyfunction]
fn js_divergence(p: Vec<f64>, q: Vec<f64>) -> PyResult<f64> {
    wrap(probe_metrics::divergence::js_divergence(&p, &q))
}

/// Jensen–Shannon distance: the square root of the divergence (scipy's `jensenshannon`).
#[pyfunction]
fn js_distance(p: Vec<f64>, q: Vec<f64>) -> PyResult<f64> {
    wrap(probe_metrics::divergence::js_distance(&p, &q))
}

/// KL(p ‖ q) in nats (scipy's `entropy(p, q)`); `smoothing=ε` adds ε to every entry of both
/// and renormalizes first.
#[pyfunction]
#[pyo3(signature = (p, q, smoothing=None))]
fn kl(p: Vec<f64>, q: Vec<f64>, smoothing: Option<f64>) -> PyResult<f64> {
    wrap(probe_metrics::divergence::kl_divergence(&p, &q, smoothing))
}

/// 1-D Wasserstein distance between distributions over ordered options (positions default
/// to 0, 1, …); `normalized=True` divides by the positions' range (OpinionQA's W).
#[pyfunction]
#[pyo3(signature = (p, q, positions=None, normalized=false))]
fn wasserstein(
    p: Vec<f64>,
    q: Vec<f64>,
    positions: Option<Vec<f64>>,
    normalized: bool,
) -> PyResult<f64> {
    let positions = positions.as_deref();
    wrap(if normalized {
        probe_metrics::wasserstein::normalized_wasserstein_1d(&p, &q, positions)
    } else {
        probe_metrics::wasserstein::wasserstein_1d(&p, &q, positions)
    })
}

/// Shannon entropy in nats.
#[pyfunction]
fn entropy(p: Vec<f64>) -> PyResult<f64> {
    wrap(probe_metrics::entropy::entropy(&p))
}

/// Entropy divided by ln(number of options): 0 (one option) to 1 (uniform).
#[pyfunction]
fn normalized_entropy(p: Vec<f64>) -> PyResult<f64> {
    wrap(probe_metrics::entropy::normalized_entropy(&p))
}

/// Pearson correlation.
#[pyfunction]
fn pearson(x: Vec<f64>, y: Vec<f64>) -> PyResult<f64> {
    wrap(probe_metrics::correlation::pearson(&x, &y))
}

/// Spearman rank correlation (average ranks for ties).
#[pyfunction]
fn spearman(x: Vec<f64>, y: Vec<f64>) -> PyResult<f64> {
    wrap(probe_metrics::correlation::spearman(&x, &y))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tv, m)?)?;
    m.add_function(wrap_pyfunction!(js_divergence, m)?)?;
    m.add_function(wrap_pyfunction!(js_distance, m)?)?;
    m.add_function(wrap_pyfunction!(kl, m)?)?;
    m.add_function(wrap_pyfunction!(wasserstein, m)?)?;
    m.add_function(wrap_pyfunction!(entropy, m)?)?;
    m.add_function(wrap_pyfunction!(normalized_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(pearson, m)?)?;
    m.add_function(wrap_pyfunction!(spearman, m)?)?;
    Ok(())
}
