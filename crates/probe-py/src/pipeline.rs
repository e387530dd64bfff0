//! The prompt-based and reporting stages from Python (`eval`, `compare`, `report`), the whole
//! study (`study`), run in this process.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use probe::compare::CompareRequest;
use probe::eval::{EvalOptions, QuestionSource, Similarity, VoteQuestion};
use probe::report::ReportRequest;
use probe::study::{StageKind, StudyOptions};
use probe::survey::SurveySource;
use probe::PersonaSelection;
use probe_report::compare::{Aggregate, Baseline, CompareOptions, Metric};

use crate::stages::{json_to_py, model_spec};
use crate::{blocking, parse_names, parse_shard};

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn survey_source(
    survey: Option<PathBuf>,
    answer: String,
    survey_weight: Option<String>,
    survey_attributes: Vec<String>,
    election: Option<String>,
) -> SurveySource {
    SurveySource {
        survey,
        answer,
        survey_weight,
        survey_attributes,
        election,
    }
}

/// A JSON file of an output directory as Python objects (None when it was not written),
/// parsed by Python: serde_json's default float parsing may move a value by one ulp.
fn read_json<'py>(py: Python<'py>, path: &std::path::Path) -> PyResult<Bound<'py, PyAny>> {
    if !path.is_file() {
        return Ok(py.None().into_bound(py));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        crate::to_py_err(anyhow::Error::from(e).context(format!("reading {}", path.display())))
    })?;
    py.import("json")?.call_method1("loads", (text,))
}

/// Prompt-based answer distributions (log-p, samples, sequence, verbalized JSON) under
/// none / persona / few-shot steering, for one question set: `questions` (JSONL),
/// `opinionqa` (a folder) or `vote` (an election directory: the voting question of the
/// persona grid, scored against `survey`, few-shot examples from `shots_from`). Resumable.
/// Returns `{"dir", "cells", "summary", "scores"}`: `cells` are `eval.cells.jsonl`'s records,
/// `scores` is `tv.json` (or None).
#[pyfunction]
#[pyo3(signature = (
    model, *, questions=None, opinionqa=None, attribute=Vec::new(), vote=None, parties=Vec::new(),
    persona=PathBuf::from("data/personas/paper-grid.toml"), personas=None, r#where=Vec::new(),
    persona_sample=None, survey=None, answer=String::from("vote"), survey_weight=None,
    survey_attributes=Vec::new(), election=None, shots_from=None,
    leak_tolerance=probe::eval::DEFAULT_LEAK_TOLERANCE, question_ids=Vec::new(),
    limit=None, methods=None, steering=None, n=30, temperature=None, top_p=1.0, shots=5,
    retries=2, batch_size=8, seed=0, chat=true, similarity="auto", prompts=None,
    shard=String::from("0/1"), run=String::from("prompt-eval"), probes_dir=PathBuf::from("probes"),
    out=None, overwrite=false, device="cpu", dtype="native",
))]
#[allow(
    clippy::too_many_arguments,
    reason = "a Python signature: one keyword argument each, as Python users call it"
)]
fn eval<'py>(
    py: Python<'py>,
    model: PathBuf,
    questions: Option<PathBuf>,
    opinionqa: Option<PathBuf>,
    attribute: Vec<String>,
    vote: Option<PathBuf>,
    parties: Vec<String>,
    persona: PathBuf,
    personas: Option<PathBuf>,
    r#where: Vec<String>,
    persona_sample: Option<usize>,
    survey: Option<PathBuf>,
    answer: String,
    survey_weight: Option<String>,
    survey_attributes: Vec<String>,
    election: Option<String>,
    shots_from: Option<String>,
    leak_tolerance: f64,
    question_ids: Vec<String>,
    limit: Option<usize>,
    methods: Option<Vec<String>>,
    steering: Option<Vec<String>>,
    n: usize,
    temperature: Option<Vec<f32>>,
    top_p: f32,
    shots: usize,
    retries: usize,
    batch_size: usize,
    seed: u64,
    chat: bool,
    similarity: &str,
    prompts: Option<PathBuf>,
    shard: String,
    run: String,
    probes_dir: PathBuf,
    out: Option<PathBuf>,
    overwrite: bool,
    device: &str,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let source = match (opinionqa, questions, vote) {
        (Some(dir), None, None) => QuestionSource::OpinionQa {
            dir,
            attributes: attribute,
        },
        (None, Some(path), None) => QuestionSource::Questions(path),
        (None, None, Some(election_dir)) => QuestionSource::Vote(Box::new(VoteQuestion {
            election: election_dir,
            parties,
            personas: PersonaSelection {
                spec: persona,
                personas,
                filter: r#where,
            },
            persona_sample,
            survey: survey_source(survey, answer, survey_weight, survey_attributes, election),
            shots_from,
            leak_tolerance,
        })),
        _ => return Err(PyValueError::new_err(
            "give one question set: questions=<file.jsonl>, opinionqa=<dir> or vote=<election dir>",
        )),
    };
    let mut options = EvalOptions::new(model_spec(model, device, dtype)?, source);
    options.question_ids = question_ids;
    options.limit = limit;
    let params = &mut options.params;
    if let Some(m) = methods {
        params.methods = parse_names(&m, "methods")?;
    }
    if let Some(s) = steering {
        params.steerings = parse_names(&s, "steering")?;
    }
    if let Some(t) = temperature {
        params.temperatures = t;
    }
    params.n = n;
    params.top_p = top_p;
    params.shots = shots;
    params.retries = retries;
    params.batch_size = batch_size;
    params.seed = seed;
    params.chat = chat;
    params.shard = parse_shard(&shard)?;
    options.similarity = match similarity {
        "auto" => Similarity::Auto,
        "given" => Similarity::Given,
        "tfidf" => Similarity::Tfidf,
        "model" => Similarity::Model,
        other => {
            return Err(value_error(format!(
                "similarity must be auto, given, tfidf or model, not {other:?}"
            )))
        }
    };
    options.prompts = prompts;
    options.run = run;
    options.probes_dir = probes_dir;
    options.out = out;
    options.overwrite = overwrite;
    let outcome = blocking::run(py, || probe::eval::eval(&options))?;
    let cells: Vec<serde_json::Value> = outcome.cells.iter().map(|c| c.to_json()).collect();
    let value = serde_json::json!({"dir": outcome.dir, "cells": cells, "summary": outcome.summary});
    let result = json_to_py(py, &value)?;
    result.set_item("scores", read_json(py, &outcome.dir.join("tv.json"))?)?;
    Ok(result)
}

/// Scores predicted cells (JSONL files) against references (JSONL, an OpinionQA folder, a
/// respondent-level `survey` CSV or a built-in `election`) by group, with bootstrap
/// intervals. Returns the rows (list of dicts), as `probe compare --out x.json` writes them.
#[pyfunction]
#[pyo3(signature = (
    predicted=Vec::new(), *, reference=Vec::new(), opinionqa=None, attribute=Vec::new(),
    keep_refused=false, survey=None, answer=String::from("vote"), survey_weight=None,
    survey_attributes=Vec::new(), election=None, baseline=Vec::new(), skip_unmatched=false,
    normalize=false, raw=false, weighted=false, aggregate=None, by=None, metrics=None,
    bootstrap=1000, level=0.95, seed=0, kl_smoothing=1e-4, out=None,
))]
#[allow(
    clippy::too_many_arguments,
    reason = "a Python signature: one keyword argument each, as Python users call it"
)]
fn compare<'py>(
    py: Python<'py>,
    predicted: Vec<PathBuf>,
    reference: Vec<PathBuf>,
    opinionqa: Option<PathBuf>,
    attribute: Vec<String>,
    keep_refused: bool,
    survey: Option<PathBuf>,
    answer: String,
    survey_weight: Option<String>,
    survey_attributes: Vec<String>,
    election: Option<String>,
    baseline: Vec<String>,
    skip_unmatched: bool,
    normalize: bool,
    raw: bool,
    weighted: bool,
    aggregate: Option<&str>,
    by: Option<Vec<String>>,
    metrics: Option<Vec<String>>,
    bootstrap: usize,
    level: f64,
    seed: u64,
    kl_smoothing: f64,
    out: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let metrics = metrics
        .unwrap_or_else(|| vec!["tv".into()])
        .iter()
        .map(|m| Metric::parse(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(value_error)?;
    let baselines = baseline
        .iter()
        .map(|b| match b.as_str() {
            "uniform" => Ok(Baseline::Uniform),
            "majority" => Ok(Baseline::Majority),
            "pooled-majority" => Ok(Baseline::PooledMajority),
            other => Err(value_error(format!(
                "baseline must be uniform, majority or pooled-majority, not {other:?}"
            ))),
        })
        .collect::<PyResult<Vec<_>>>()?;
    let aggregate = match aggregate {
        None => Aggregate::default_for(raw),
        Some("group-mean" | "benchmark") => Aggregate::GroupMean,
        Some("cells") => Aggregate::Cells,
        Some(other) => {
            return Err(value_error(format!(
                "aggregate must be group-mean or cells, not {other:?}"
            )))
        }
    };
    let request = CompareRequest {
        predicted,
        reference,
        opinionqa,
        attributes: attribute,
        keep_refused,
        survey: survey_source(survey, answer, survey_weight, survey_attributes, election),
        baselines,
        skip_unmatched,
        normalize,
        options: CompareOptions {
            metrics,
            by: by.unwrap_or_else(|| vec!["model".into()]),
            bootstrap,
            level,
            seed,
            kl_smoothing,
            weighted,
            aggregate,
            raw,
        },
        out,
    };
    let rows = blocking::run(py, || probe::compare::compare(&request))?;
    json_to_py(py, &serde_json::to_value(rows).map_err(value_error)?)
}

/// The report (report.html, report.md, report.json, figures) over run directories and cells
/// against a survey. Returns `{"dir", "runs", "series", "reference"}`.
#[pyfunction]
#[pyo3(signature = (
    runs=Vec::new(), *, cells=Vec::new(), survey=None, answer=String::from("vote"),
    survey_weight=None, survey_attributes=Vec::new(), election=None, reference=Vec::new(),
    title=String::from("probe report"), notes=Vec::new(), bootstrap=1000, level=0.95, seed=0,
    formats=None, out=None,
))]
#[allow(
    clippy::too_many_arguments,
    reason = "a Python signature: one keyword argument each, as Python users call it"
)]
fn report<'py>(
    py: Python<'py>,
    runs: Vec<PathBuf>,
    cells: Vec<PathBuf>,
    survey: Option<PathBuf>,
    answer: String,
    survey_weight: Option<String>,
    survey_attributes: Vec<String>,
    election: Option<String>,
    reference: Vec<PathBuf>,
    title: String,
    notes: Vec<String>,
    bootstrap: usize,
    level: f64,
    seed: u64,
    formats: Option<Vec<String>>,
    out: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut request = ReportRequest {
        runs,
        cells,
        survey: survey_source(survey, answer, survey_weight, survey_attributes, election),
        reference,
        title,
        notes,
        bootstrap,
        level,
        seed,
        out,
        ..ReportRequest::default()
    };
    if let Some(formats) = formats {
        request.formats = formats
            .iter()
            .map(|f| f.parse())
            .collect::<Result<_, _>>()
            .map_err(value_error)?;
    }
    let outcome = blocking::run(py, || probe::report::report(&request))?;
    let value = serde_json::json!({
        "dir": outcome.dir, "runs": outcome.runs, "series": outcome.series,
        "reference": outcome.reference,
    });
    json_to_py(py, &value)
}

/// Runs an experiment file end to end (`probe study`): every stage for every model, reused
/// when unchanged, then one report. `stage` stops earlier (extract, train, vectors, scale,
/// eval, compare, report). Returns `{"out", "ran", "reused"}`.
#[pyfunction]
#[pyo3(signature = (experiment, *, stage="report", shard=String::from("0/1")))]
fn study<'py>(
    py: Python<'py>,
    experiment: PathBuf,
    stage: &str,
    shard: String,
) -> PyResult<Bound<'py, PyAny>> {
    let stage = match stage {
        "extract" => StageKind::Extract,
        "train" => StageKind::Train,
        "vectors" => StageKind::Vectors,
        "scale" => StageKind::Scale,
        "eval" => StageKind::Eval,
        "compare" => StageKind::Compare,
        "report" => StageKind::Report,
        other => return Err(value_error(format!("unknown stage {other:?}"))),
    };
    let options = StudyOptions {
        experiment,
        stage,
        shard: parse_shard(&shard)?,
    };
    let outcome = blocking::run(py, || probe::study::run(&options))?;
    let value =
        serde_json::json!({"out": outcome.out, "ran": outcome.ran, "reused": outcome.reused});
    json_to_py(py, &value)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(eval, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(report, m)?)?;
    m.add_function(wrap_pyfunction!(study, m)?)?;
    Ok(())
}
