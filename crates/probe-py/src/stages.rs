//! The pipeline's stages as Python functions over the library's operations; each returns
//! plain dicts and lists (JSON-shaped: `pandas.DataFrame(result["summary"])` works).

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use probe::scale::ScaleOptions;
use probe::vectors::VectorsOptions;
use probe::{ExtractOptions, ModelSpec, PersonaSelection, TrainOptions};
use probe_lm::DeviceSpec;

use crate::blocking;

pub(crate) fn json_to_py<'py>(
    py: Python<'py>,
    value: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?
        .call_method1("loads", (value.to_string(),))
}

pub(crate) fn model_spec(path: PathBuf, device: &str, dtype: &str) -> PyResult<ModelSpec> {
    Ok(ModelSpec {
        device: device
            .parse::<DeviceSpec>()
            .map_err(|e| PyValueError::new_err(e.to_string()))?,
        dtype: dtype
            .parse()
            .map_err(|e: probe_lm::Error| PyValueError::new_err(e.to_string()))?,
        ..ModelSpec::new(path)
    })
}

/// Extracts (or reuses) the residual cache of an election's probe prompts, trains the
/// per-party probes (cross-validated by statement) and saves them to
/// `<probes_dir>/<model>/<run>/`. Returns `{"dir", "cache", "positions", "scores", "report",
/// "warnings"}`: `scores` has one flat record per (probe, hook, party) with the mean CV
/// scores (`pandas.DataFrame(result["scores"])`); `report` is `probes.json`'s report.
#[pyfunction]
#[pyo3(signature = (
    model, election, *, parties=Vec::new(), layers="0.6L..0.9L", positions="last-before-answer",
    templates=Vec::new(), template_file=None, cache=None, cache_dtype="f32", batch_size=16,
    seed=0, folds=5, c=1.0, cv_seed=0, null_seeds=20, probes_dir=PathBuf::from("probes"), run=None,
    device="cpu", dtype="native",
))]
#[allow(
    clippy::too_many_arguments,
    reason = "a Python signature: one keyword argument each, as Python users call it"
)]
fn train<'py>(
    py: Python<'py>,
    model: PathBuf,
    election: PathBuf,
    parties: Vec<String>,
    layers: &str,
    positions: &str,
    templates: Vec<String>,
    template_file: Option<PathBuf>,
    cache: Option<PathBuf>,
    cache_dtype: &str,
    batch_size: usize,
    seed: u64,
    folds: usize,
    c: f64,
    cv_seed: u64,
    null_seeds: u64,
    probes_dir: PathBuf,
    run: Option<String>,
    device: &str,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let mut extract = ExtractOptions::new(model_spec(model, device, dtype)?, election);
    extract.parties = parties;
    extract.layers = layers.into();
    extract.positions = positions.into();
    extract.templates = templates;
    if let Some(t) = template_file {
        extract.template_file = t;
    }
    extract.out = cache;
    extract.cache_dtype = cache_dtype.into();
    extract.batch_size = batch_size;
    extract.seed = seed;
    let mut options = TrainOptions::new(extract);
    options.params.folds = folds;
    options.params.c = c;
    options.params.seed = cv_seed;
    options.null_seeds = null_seeds;
    options.probes_dir = probes_dir;
    options.run = run;
    let outcome = blocking::run(py, || probe::train(&options))?;
    // one flat record per (probe, hook, party): `pandas.DataFrame(result["scores"])`
    let report = &outcome.report;
    let scores: Vec<serde_json::Value> =
        [("per-layer", &report.per_layer), ("shared", &report.shared)]
            .into_iter()
            .flat_map(|(probe, rows)| {
                rows.iter().map(move |r| {
                    serde_json::json!({
                        "probe": probe, "hook": r.hook, "party": r.party,
                        "balanced_accuracy": r.mean.balanced_accuracy, "accuracy": r.mean.accuracy,
                        "auc": r.mean.auc, "f1": r.mean.f1, "folds": r.folds.len(),
                    })
                })
            })
            .collect();
    let value = serde_json::json!({
        "dir": outcome.dir,
        "cache": outcome.cache,
        "positions": outcome.positions,
        "scores": scores,
        "report": outcome.report,
        "warnings": outcome.warnings,
    });
    json_to_py(py, &value)
}

/// Ranks each party's MLP value vectors by cosine with its probe direction (joint top-k,
/// per layer, IQR outliers, most negative), projects them to the vocabulary and tests each
/// party's selection against chance; saves to `<probes>/vectors/` (or `out`). Returns
/// `{"dir", "vectors"}`; `vectors` is `vectors.json` (`vectors["vectors"]` is one record per
/// selected vector).
#[pyfunction]
#[pyo3(signature = (
    model, probes, *, probe="shared", layers="probed", k=20, iqr_c=2.5, top_tokens=10,
    null_random=200, out=None, device="cpu", dtype="native",
))]
#[allow(
    clippy::too_many_arguments,
    reason = "a Python signature: one keyword argument each, as Python users call it"
)]
fn vectors<'py>(
    py: Python<'py>,
    model: PathBuf,
    probes: PathBuf,
    probe: &str,
    layers: &str,
    k: usize,
    iqr_c: f64,
    top_tokens: usize,
    null_random: usize,
    out: Option<PathBuf>,
    device: &str,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let options = VectorsOptions {
        probe: probe.into(),
        layers: layers.into(),
        k,
        iqr_c,
        top_tokens,
        null_random,
        out,
        ..VectorsOptions::new(model_spec(model, device, dtype)?, probes)
    };
    let outcome = blocking::run(py, || probe::vectors::vectors(&options))?;
    let value = serde_json::json!({"dir": outcome.dir, "vectors": outcome.vectors});
    json_to_py(py, &value)
}

/// Runs every persona × prompt variant, reads the MLP coefficients of the selected value
/// vectors and writes scaling factors and ψ to `<vectors>/../scale-<spec>/` (or `out`).
/// Returns `{"dir", "table", "psi", "negative_coefficients", "coefficients"}`: `table` is
/// psi.csv's long format (one record per variant, attribute, value and party), `psi` is
/// `psi.json`'s distributions (`psi["all"]["psi"]`: party → share); both empty or `None`
/// while other shards are pending.
#[pyfunction]
#[pyo3(signature = (
    model, vectors, *, persona=PathBuf::from("data/personas/paper-grid.toml"), personas=None, r#where=Vec::new(),
    prompts=PathBuf::from("data/personas/prompts.toml"), variants=Vec::new(), select="joint", negative="clip",
    batch_size=16, shard_size=1024, shard="0/1", out=None, overwrite=false, device="cpu",
    dtype="native",
))]
#[allow(
    clippy::too_many_arguments,
    reason = "a Python signature: one keyword argument each, as Python users call it"
)]
fn scale<'py>(
    py: Python<'py>,
    model: PathBuf,
    vectors: PathBuf,
    persona: PathBuf,
    personas: Option<PathBuf>,
    r#where: Vec<String>,
    prompts: PathBuf,
    variants: Vec<String>,
    select: &str,
    negative: &str,
    batch_size: usize,
    shard_size: usize,
    shard: &str,
    out: Option<PathBuf>,
    overwrite: bool,
    device: &str,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let options = ScaleOptions {
        personas: PersonaSelection {
            spec: persona,
            personas,
            filter: r#where,
        },
        prompts,
        variants,
        select: select.into(),
        negative: negative.into(),
        batch_size,
        shard_size,
        shard: crate::parse_shard(shard)?,
        out,
        overwrite,
        ..ScaleOptions::new(model_spec(model, device, dtype)?, vectors)
    };
    let outcome = blocking::run(py, || probe::scale::scale(&options))?;
    // ψ in psi.csv's long format: one record per (variant, attribute, value, party)
    let table: Vec<serde_json::Value> = outcome
        .summary
        .iter()
        .flat_map(probe::scale::scopes)
        .flat_map(|(variant, attribute, value, d)| {
            d.psi.iter().flat_map(move |psi| {
                psi.0.iter().map(move |(party, x)| {
                    serde_json::json!({
                        "variant": variant, "attribute": attribute, "value": value,
                        "party": party, "psi": x, "rows": d.rows, "weight": d.weight,
                    })
                })
            })
        })
        .collect();
    let value = serde_json::json!({
        "dir": outcome.dir,
        "table": table,
        "psi": outcome.summary,
        "negative_coefficients": outcome.negative_coefficients,
        "coefficients": outcome.coefficients,
    });
    json_to_py(py, &value)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(vectors, m)?)?;
    m.add_function(wrap_pyfunction!(scale, m)?)?;
    Ok(())
}
