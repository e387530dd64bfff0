//! The stages of a study: for every model extract → train → vectors → scale → eval, then
//! compare and one report, each an ordinary `probe` command line built from the experiment.

use std::path::PathBuf;

use super::experiment::Experiment;

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

/// One command to run.
pub struct Stage {
    pub kind: StageKind,
    /// Unique within the study: `<model>/extract`, `<model>/eval-coin`, `report`.
    pub id: String,
    /// The `probe` arguments (without the program name).
    pub argv: Vec<String>,
    /// Data files and directories whose contents the stage reads.
    pub inputs: Vec<PathBuf>,
    /// Ids of the stages it builds on.
    pub after: Vec<String>,
}

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

/// The stages of the study, in order.
pub fn plan(e: &Experiment) -> Vec<Stage> {
    let mut stages = Vec::new();
    let mut runs = Vec::new();
    let mut report_after = Vec::new();
    let mut report_inputs = Vec::new();
    for (i, m) in e.models.iter().enumerate() {
        let label = e.label(i);
        let base = e.out.join(&label);
        let cache = base.join("cache");
        // `probe train` writes <probes-dir>/<model stem>/<run>
        let stem = probe_lm::model::model_name(&m.path);
        let run = base.join(&stem).join("run");
        runs.push(run.clone());
        let mut model_args = vec![
            s(&m.path),
            "--device".into(),
            e.device.clone(),
            "--dtype".into(),
            m.dtype.clone().unwrap_or_else(|| e.dtype.clone()),
        ];
        if let Some(t) = &m.tokenizer {
            model_args.extend(["--tokenizer".into(), s(t)]);
        }
        let mut extract_args = model_args.clone();
        extract_args.extend([
            "--election".into(),
            s(&e.election.dir),
            "--template-file".into(),
            s(&e.probes.template_file),
            "--layers".into(),
            e.layer_spec(),
            "--positions".into(),
            e.probes.positions.clone(),
            "--cache-dtype".into(),
            e.probes.dtype.clone(),
            "--shard-size".into(),
            e.probes.shard_size.to_string(),
            "--batch-size".into(),
            e.probes.batch_size.to_string(),
            "--out".into(),
            s(&cache),
        ]);
        if !e.election.parties.is_empty() {
            extract_args.extend(["--parties".into(), e.election.parties.join(",")]);
        }
        if !e.probes.templates.is_empty() {
            extract_args.extend(["--templates".into(), e.probes.templates.join(",")]);
        }
        let model_inputs = vec![m.path.clone()];
        let data_inputs = vec![e.election.dir.clone(), e.probes.template_file.clone()];
        let id = |name: &str| format!("{label}/{name}");
        stages.push(Stage {
            kind: StageKind::Extract,
            id: id("extract"),
            argv: [vec!["extract".to_string()], extract_args.clone()].concat(),
            inputs: [model_inputs.clone(), data_inputs.clone()].concat(),
            after: vec![],
        });
        let mut train = [vec!["train".to_string()], extract_args.clone()].concat();
        train.extend([
            "--folds".into(),
            e.probes.folds.to_string(),
            "--probes-dir".into(),
            s(&base),
            "--run".into(),
            "run".into(),
        ]);
        stages.push(Stage {
            kind: StageKind::Train,
            id: id("train"),
            argv: train,
            inputs: vec![],
            after: vec![id("extract")],
        });
        let mut vectors = [vec!["vectors".to_string()], model_args.clone()].concat();
        vectors.extend([
            "--probes".into(),
            s(&run),
            "-k".into(),
            e.probes.k.to_string(),
            "--print".into(),
            "0".into(),
        ]);
        stages.push(Stage {
            kind: StageKind::Vectors,
            id: id("vectors"),
            argv: vectors,
            inputs: vec![],
            after: vec![id("train")],
        });
        let mut last = vec![id("vectors")];
        if let Some(p) = &e.personas {
            let mut scale = [vec!["scale".to_string()], model_args.clone()].concat();
            scale.extend([
                "--probes".into(),
                s(&run),
                "--persona".into(),
                s(&p.spec),
                "--prompts".into(),
                s(&p.templates),
                "--select".into(),
                p.select.clone(),
                "--negative".into(),
                p.negative.clone(),
                "--shard-size".into(),
                p.shard_size.to_string(),
                "--out".into(),
                s(run.join("scale-personas")),
                "--overwrite".into(),
            ]);
            if !p.variants.is_empty() {
                scale.extend(["--variants".into(), p.variants.join(",")]);
            }
            for f in &p.filter {
                scale.extend(["--where".into(), f.clone()]);
            }
            stages.push(Stage {
                kind: StageKind::Scale,
                id: id("scale"),
                argv: scale,
                inputs: vec![p.spec.clone(), p.templates.clone()],
                after: vec![id("vectors")],
            });
            last = vec![id("scale")];
        }
        for (j, ev) in e.evals.iter().enumerate() {
            let name = e.eval_name(j);
            let out = run.join(format!("eval-{name}"));
            let mut argv = [vec!["eval".to_string()], model_args.clone()].concat();
            let mut inputs = model_inputs.clone();
            if let Some(q) = &ev.questions {
                argv.extend(["--questions".into(), s(q)]);
                inputs.push(q.clone());
            }
            if let Some(q) = &ev.opinionqa {
                argv.extend(["--opinionqa".into(), s(q)]);
                inputs.push(q.clone());
                if !ev.attributes.is_empty() {
                    argv.extend(["--attribute".into(), ev.attributes.join(",")]);
                }
            }
            if ev.vote {
                let p = e.personas.as_ref().expect("checked");
                argv.extend(["--vote".into(), s(&e.election.dir)]);
                argv.extend(["--persona".into(), s(&p.spec)]);
                inputs.extend([e.election.dir.clone(), p.spec.clone()]);
                if !e.election.parties.is_empty() {
                    argv.extend(["--parties".into(), e.election.parties.join(",")]);
                }
                for f in &p.filter {
                    argv.extend(["--where".into(), f.clone()]);
                }
                if let Some(n) = ev.persona_sample {
                    argv.extend(["--persona-sample".into(), n.to_string()]);
                }
                survey_args(e, &mut argv, &mut inputs);
                if let Some(source) = &ev.shots_from {
                    argv.extend(["--shots-from".into(), source.clone()]);
                    if std::path::Path::new(source).is_file() {
                        inputs.push(PathBuf::from(source));
                    }
                }
            }
            if !ev.question_ids.is_empty() {
                argv.extend(["--question-ids".into(), ev.question_ids.join(",")]);
            }
            if let Some(n) = ev.limit {
                argv.extend(["--limit".into(), n.to_string()]);
            }
            if let Some(p) = &ev.prompts {
                argv.extend(["--prompts".into(), s(p)]);
                inputs.push(p.clone());
            } else {
                inputs.push(PathBuf::from(if ev.vote {
                    "data/eval/vote-prompts.toml"
                } else {
                    "data/eval/prompts.toml"
                }));
            }
            if m.kind == "base" {
                argv.push("--no-chat".into());
            }
            argv.extend([
                "--methods".into(),
                ev.methods.join(","),
                "--steering".into(),
                ev.steering.join(","),
                "--n".into(),
                ev.n.to_string(),
                "--temperature".into(),
                ev.temperature
                    .iter()
                    .map(f32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                "--shots".into(),
                ev.shots.to_string(),
                "--out".into(),
                s(&out),
                "--overwrite".into(),
            ]);
            stages.push(Stage {
                kind: StageKind::Eval,
                id: id(&format!("eval-{name}")),
                argv,
                inputs,
                after: vec![],
            });
            last.push(id(&format!("eval-{name}")));
            if !ev.vote {
                // question sets with their own references: a table per method × steering
                let mut compare = vec![
                    "compare".to_string(),
                    "--predicted".into(),
                    s(out.join("eval.cells.jsonl")),
                    "--baseline".into(),
                    "uniform".into(),
                    "--baseline".into(),
                    "majority".into(),
                    "--by".into(),
                    "model,method,steering".into(),
                    "--metrics".into(),
                    e.report.metrics.join(","),
                    "--bootstrap".into(),
                    e.report.bootstrap.to_string(),
                    "--out".into(),
                    s(run.join(format!("compare-{name}.csv"))),
                ];
                if ev.opinionqa.is_some() {
                    compare.push("--skip-unmatched".into());
                }
                stages.push(Stage {
                    kind: StageKind::Compare,
                    id: id(&format!("compare-{name}")),
                    argv: compare,
                    inputs: vec![],
                    after: vec![id(&format!("eval-{name}"))],
                });
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
    let mut report = vec!["report".to_string()];
    report.extend(order.iter().map(|&i| s(&runs[i])));
    let mut inputs = report_inputs;
    survey_args(e, &mut report, &mut inputs);
    report.extend([
        "--title".into(),
        e.name.clone(),
        "--bootstrap".into(),
        e.report.bootstrap.to_string(),
        "--out".into(),
        s(e.out.join("report")),
    ]);
    for note in &e.report.notes {
        report.extend(["--note".into(), note.clone()]);
    }
    if !e.report.formats.is_empty() {
        report.extend(["--format".into(), e.report.formats.join(",")]);
    }
    stages.push(Stage {
        kind: StageKind::Report,
        id: "report".into(),
        argv: report,
        inputs,
        after: report_after,
    });
    stages
}

fn survey_args(e: &Experiment, argv: &mut Vec<String>, inputs: &mut Vec<PathBuf>) {
    let sv = &e.survey;
    if let Some(csv) = &sv.csv {
        argv.extend(["--survey".into(), s(csv)]);
        inputs.push(csv.clone());
        if let Some(a) = &sv.answer {
            argv.extend(["--answer".into(), a.clone()]);
        }
        if let Some(w) = &sv.weight {
            argv.extend(["--survey-weight".into(), w.clone()]);
        }
        if !sv.attributes.is_empty() {
            argv.extend(["--survey-attributes".into(), sv.attributes.join(",")]);
        }
    }
    if let Some(id) = &sv.election {
        argv.extend(["--election".into(), id.clone()]);
    }
}
