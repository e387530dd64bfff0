//! The stages of a study: for every model extract → train → vectors → scale → eval, then
//! compare and one report, each the typed options of one library operation, built from the
//! experiment. `Stage::argv` (the printer, `argv.rs`) says what each would be as a `probe` command line (for
//! `--dry-run` and `study.log`); running a stage calls the library directly.

use std::path::PathBuf;

use anyhow::{Context, Result};
use probe_report::compare::{Baseline, CompareOptions, Metric};

use super::experiment::Experiment;
use crate::compare::CompareRequest;
use crate::eval::{EvalOptions, QuestionSource, VoteQuestion};
use crate::report::ReportRequest;
use crate::scale::ScaleOptions;
use crate::survey::SurveySource;
use crate::vectors::VectorsOptions;
use crate::{ExtractOptions, ModelSpec, PersonaSelection, TrainOptions};

/// The stages, in pipeline order (`--stage` runs up to one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StageKind {
    Extract,
    Train,
    Vectors,
    Scale,
    Eval,
    Compare,
    Report,
}

impl StageKind {
    /// Stages whose work splits into `--shard k/n` jobs.
    pub fn shardable(self) -> bool {
        matches!(
            self,
            StageKind::Extract | StageKind::Scale | StageKind::Eval
        )
    }
}

/// One library operation with its options, as planned.
#[derive(Debug, Clone)]
pub enum StageOp {
    Extract(ExtractOptions),
    Train(TrainOptions),
    Vectors(VectorsOptions),
    Scale(ScaleOptions),
    Eval(EvalOptions),
    Compare(CompareRequest),
    Report(ReportRequest),
}

impl StageOp {
    pub fn kind(&self) -> StageKind {
        match self {
            StageOp::Extract(_) => StageKind::Extract,
            StageOp::Train(_) => StageKind::Train,
            StageOp::Vectors(_) => StageKind::Vectors,
            StageOp::Scale(_) => StageKind::Scale,
            StageOp::Eval(_) => StageKind::Eval,
            StageOp::Compare(_) => StageKind::Compare,
            StageOp::Report(_) => StageKind::Report,
        }
    }

    /// This job's slice `k/n` of a shardable stage (the others have none).
    pub fn set_shard(&mut self, shard: probe_cache::ShardSplit) {
        match self {
            StageOp::Extract(o) => o.shard = shard,
            StageOp::Scale(o) => o.shard = shard,
            StageOp::Eval(o) => o.params.shard = shard,
            _ => {}
        }
    }

    /// Runs the operation (what `probe <command>` runs, without its printed summary).
    pub fn run(&self) -> Result<()> {
        match self {
            StageOp::Extract(o) => crate::ensure_cache(o).map(drop),
            StageOp::Train(o) => crate::train(o).map(drop),
            StageOp::Vectors(o) => crate::vectors::vectors(o).map(drop),
            StageOp::Scale(o) => crate::scale::scale(o).map(drop),
            StageOp::Eval(o) => crate::eval::eval(o).map(drop),
            StageOp::Compare(o) => crate::compare::compare_all(o).map(drop),
            StageOp::Report(o) => crate::report::report(o).map(drop),
        }
    }
}

/// One stage of the study.
#[derive(Debug, Clone)]
pub struct Stage {
    pub kind: StageKind,
    /// Unique within the study: `<model>/extract`, `<model>/eval-coin`, `report`.
    pub id: String,
    pub op: StageOp,
    /// Data files and directories whose contents the stage reads.
    pub inputs: Vec<PathBuf>,
    /// Ids of the stages it builds on.
    pub after: Vec<String>,
}

impl Stage {
    fn new(id: String, op: StageOp, inputs: Vec<PathBuf>, after: Vec<String>) -> Self {
        Stage {
            kind: op.kind(),
            id,
            op,
            inputs,
            after,
        }
    }
}

/// The stages of the study, in order.
pub fn plan(e: &Experiment) -> Result<Vec<Stage>> {
    let mut stages = Vec::new();
    let mut runs = Vec::new();
    let mut report_after = Vec::new();
    let mut report_inputs = Vec::new();
    let device = e
        .device
        .parse()
        .with_context(|| format!("device {:?}", e.device))?;
    for (i, m) in e.models.iter().enumerate() {
        let label = e.label(i);
        let base = e.out.join(&label);
        let cache = base.join("cache");
        // `probe train` writes <probes-dir>/<model stem>/<run>
        let stem = probe_lm::model::model_name(&m.path);
        let run = base.join(&stem).join("run");
        runs.push(run.clone());
        let dtype = m.dtype.as_deref().unwrap_or(&e.dtype);
        let model = ModelSpec {
            device,
            tokenizer: m.tokenizer.clone(),
            dtype: dtype
                .parse()
                .with_context(|| format!("model {label}: dtype {dtype:?}"))?,
            ..ModelSpec::new(&m.path)
        };
        let extract = ExtractOptions {
            parties: e.election.parties.clone(),
            template_file: e.probes.template_file.clone(),
            templates: e.probes.templates.clone(),
            layers: e.layer_spec(),
            positions: e.probes.positions.clone(),
            cache_dtype: e.probes.dtype.clone(),
            shard_size: e.probes.shard_size,
            batch_size: e.probes.batch_size,
            out: Some(cache),
            ..ExtractOptions::new(model.clone(), &e.election.dir)
        };
        let model_inputs = vec![m.path.clone()];
        let data_inputs = vec![e.election.dir.clone(), e.probes.template_file.clone()];
        let id = |name: &str| format!("{label}/{name}");
        stages.push(Stage::new(
            id("extract"),
            StageOp::Extract(extract.clone()),
            [model_inputs.clone(), data_inputs.clone()].concat(),
            vec![],
        ));
        let mut train = TrainOptions::new(extract);
        train.params.folds = e.probes.folds;
        train.probes_dir = base.clone();
        train.run = Some("run".into());
        stages.push(Stage::new(
            id("train"),
            StageOp::Train(train),
            vec![],
            vec![id("extract")],
        ));
        let vectors = VectorsOptions {
            k: e.probes.k,
            ..VectorsOptions::new(model.clone(), &run)
        };
        stages.push(Stage::new(
            id("vectors"),
            StageOp::Vectors(vectors),
            vec![],
            vec![id("train")],
        ));
        let mut last = vec![id("vectors")];
        let persona_selection = |p: &super::experiment::PersonaConfig| PersonaSelection {
            spec: p.spec.clone(),
            personas: None,
            filter: p.filter.clone(),
        };
        if let Some(p) = &e.personas {
            let scale = ScaleOptions {
                personas: persona_selection(p),
                prompts: p.templates.clone(),
                variants: p.variants.clone(),
                select: p.select.clone(),
                negative: p.negative.clone(),
                shard_size: p.shard_size,
                out: Some(run.join("scale-personas")),
                overwrite: true,
                ..ScaleOptions::new(model.clone(), run.join("vectors"))
            };
            stages.push(Stage::new(
                id("scale"),
                StageOp::Scale(scale),
                vec![p.spec.clone(), p.templates.clone()],
                vec![id("vectors")],
            ));
            last = vec![id("scale")];
        }
        for (j, ev) in e.evals.iter().enumerate() {
            let name = e.eval_name(j);
            let out = run.join(format!("eval-{name}"));
            let mut inputs = model_inputs.clone();
            let questions = if ev.vote {
                let p = e.personas.as_ref().expect("checked");
                inputs.extend([e.election.dir.clone(), p.spec.clone()]);
                let survey = survey_source(e, &mut inputs);
                if let Some(source) = &ev.shots_from {
                    if std::path::Path::new(source).is_file() {
                        inputs.push(PathBuf::from(source));
                    }
                }
                QuestionSource::Vote(Box::new(VoteQuestion {
                    election: e.election.dir.clone(),
                    parties: e.election.parties.clone(),
                    personas: persona_selection(p),
                    persona_sample: ev.persona_sample,
                    survey,
                    shots_from: ev.shots_from.clone(),
                    leak_tolerance: probe_eval::questions::DEFAULT_LEAK_TOLERANCE,
                }))
            } else if let Some(q) = &ev.opinionqa {
                inputs.push(q.clone());
                QuestionSource::OpinionQa {
                    dir: q.clone(),
                    attributes: ev.attributes.clone(),
                }
            } else {
                let q = ev.questions.clone().expect("checked: one question set");
                inputs.push(q.clone());
                QuestionSource::Questions(q)
            };
            match &ev.prompts {
                Some(p) => inputs.push(p.clone()),
                None => inputs.push(PathBuf::from(if ev.vote {
                    "data/eval/vote-prompts.toml"
                } else {
                    "data/eval/prompts.toml"
                })),
            }
            let mut eval = EvalOptions {
                question_ids: ev.question_ids.clone(),
                limit: ev.limit,
                prompts: ev.prompts.clone(),
                out: Some(out.clone()),
                overwrite: true,
                ..EvalOptions::new(model.clone(), questions)
            };
            let params = &mut eval.params;
            params.chat = m.kind != "base";
            params.methods = parse_all(&ev.methods).context("eval.methods")?;
            params.steerings = parse_all(&ev.steering).context("eval.steering")?;
            params.n = ev.n;
            params.temperatures = ev.temperature.clone();
            params.shots = ev.shots;
            stages.push(Stage::new(
                id(&format!("eval-{name}")),
                StageOp::Eval(eval),
                inputs,
                vec![],
            ));
            last.push(id(&format!("eval-{name}")));
            if !ev.vote {
                // question sets with their own references: a table per method × steering
                let metrics = e
                    .report
                    .metrics
                    .iter()
                    .map(|m| Metric::parse(m))
                    .collect::<Result<Vec<_>, _>>()
                    .context("report.metrics")?;
                let compare = CompareRequest {
                    predicted: vec![out.join("eval.cells.jsonl")],
                    baselines: vec![Baseline::Uniform, Baseline::Majority],
                    skip_unmatched: ev.opinionqa.is_some(),
                    options: CompareOptions {
                        metrics,
                        by: ["model", "method", "steering"].map(String::from).to_vec(),
                        bootstrap: e.report.bootstrap,
                        ..CompareOptions::default()
                    },
                    out: Some(run.join(format!("compare-{name}.csv"))),
                    ..CompareRequest::default()
                };
                stages.push(Stage::new(
                    id(&format!("compare-{name}")),
                    StageOp::Compare(compare),
                    vec![],
                    vec![id(&format!("eval-{name}"))],
                ));
                last.push(id(&format!("compare-{name}")));
            }
        }
        report_after.extend(last);
        report_inputs.extend(model_inputs);
    }
    // base and instruct of one family side by side in the report
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| {
        let m = &e.models[i];
        (
            m.family.clone().unwrap_or_else(|| e.label(i)),
            m.kind != "base",
        )
    });
    let mut inputs = report_inputs;
    let formats = e
        .report
        .formats
        .iter()
        .map(|f| f.parse().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()
        .context("report.formats")?;
    let mut report = ReportRequest {
        runs: order.iter().map(|&i| runs[i].clone()).collect(),
        survey: survey_source(e, &mut inputs),
        title: e.name.clone(),
        notes: e.report.notes.clone(),
        bootstrap: e.report.bootstrap,
        out: Some(e.out.join("report")),
        ..ReportRequest::default()
    };
    if !formats.is_empty() {
        report.formats = formats;
    }
    stages.push(Stage::new(
        "report".into(),
        StageOp::Report(report),
        inputs,
        report_after,
    ));
    Ok(stages)
}

/// Names (`logp`, `none`, …) as their types.
fn parse_all<T: std::str::FromStr>(names: &[String]) -> Result<Vec<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    names.iter().map(|n| Ok(n.parse()?)).collect()
}

/// The experiment's survey (or built-in election) as the reference of vote evaluations and
/// the report; its CSV joins `inputs`.
fn survey_source(e: &Experiment, inputs: &mut Vec<PathBuf>) -> SurveySource {
    let sv = &e.survey;
    let mut source = SurveySource {
        election: sv.election.clone(),
        ..SurveySource::default()
    };
    if let Some(csv) = &sv.csv {
        inputs.push(csv.clone());
        source.survey = Some(csv.clone());
        if let Some(a) = &sv.answer {
            source.answer = a.clone();
        }
        source.survey_weight = sv.weight.clone();
        source.survey_attributes = sv.attributes.clone();
    }
    source
}
