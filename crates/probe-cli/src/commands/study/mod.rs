//! `probe study <experiment.toml>`: extract → train → vectors → scale → eval → compare →
//! report for every model of an experiment file, then one cross-model report.
//!
//! Each stage is an ordinary `probe` command run in-process with arguments built from the
//! experiment. A stage is reused when its fingerprint (SHA-256 over its arguments, the
//! contents of the data files it reads and the fingerprints of the stages it builds on)
//! equals the one recorded when it last finished (`<out>/stages/*.json`); a killed stage
//! resumes through the command's own resume (cache shards, `units.jsonl`).

mod experiment;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::json;
use sha2::{Digest, Sha256};

pub use experiment::Experiment;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The experiment file (TOML; see examples/demo.toml).
    pub experiment: PathBuf,
    /// Run the stages up to this one (earlier ones reused when finished, run when not).
    #[arg(long, value_enum, default_value = "report")]
    pub stage: StageKind,
    /// This job's slice k/n of the shardable stages (extract, scale, eval): the first
    /// unfinished stage up to --stage runs its shard, then the job stops. A final run
    /// without --shard merges.
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// Check the experiment file and print the plan, run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
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
    fn shardable(self) -> bool {
        matches!(
            self,
            StageKind::Extract | StageKind::Scale | StageKind::Eval
        )
    }
}

/// One command to run.
struct Stage {
    kind: StageKind,
    /// Unique within the study: `<model>/extract`, `<model>/eval-coin`, `report`.
    id: String,
    /// The `probe` arguments (without the program name).
    argv: Vec<String>,
    /// Data files and directories whose contents the stage reads.
    inputs: Vec<PathBuf>,
    /// Ids of the stages it builds on.
    after: Vec<String>,
}

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

/// The stages of the study, in order.
fn plan(e: &Experiment) -> Vec<Stage> {
    let mut stages = Vec::new();
    let mut runs = Vec::new();
    let mut report_after = Vec::new();
    let mut report_inputs = Vec::new();
    for (i, m) in e.models.iter().enumerate() {
        let label = e.label(i);
        let base = e.out.join(&label);
        let cache = base.join("cache");
        // `probe train` writes <probes-dir>/<model stem>/<run>
        let stem = crate::common::model_name(&m.path);
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

/// SHA-256 of a file's or a directory's contents (files sorted by path, recursively). Model
/// checkpoints (GGUF files, safetensors) are fingerprinted by size and modification time:
/// hashing tens of GB on every run would cost minutes.
fn hash_input(h: &mut Sha256, path: &Path) -> Result<()> {
    if let Some(text) = probe_data::defaults::embedded(path) {
        // the built-in copy of a default data file: its contents, like any other input
        h.update(path.to_string_lossy().as_bytes());
        h.update(text.as_bytes());
        return Ok(());
    }
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            hash_input(h, &entry)?;
        }
        return Ok(());
    }
    h.update(path.to_string_lossy().as_bytes());
    let big = matches!(
        path.extension().and_then(|x| x.to_str()),
        Some("gguf" | "safetensors" | "bin" | "pt")
    );
    if big {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h.update(format!("{}:{mtime}", meta.len()).as_bytes());
    } else {
        h.update(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    }
    Ok(())
}

fn marker_path(out: &Path, id: &str) -> PathBuf {
    out.join("stages")
        .join(format!("{}.json", id.replace('/', "__")))
}

fn recorded_fingerprint(out: &Path, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(marker_path(out, id)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["fingerprint"].as_str().map(str::to_string)
}

/// A time as ISO 8601 in UTC with milliseconds, e.g. `2026-11-30T20:51:07.250Z` (the civil
/// date from the day count by Howard Hinnant's `civil_from_days`).
fn iso8601_utc(t: std::time::SystemTime) -> String {
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Appends lines stamped with ISO 8601 UTC times to `study.log` (and mirrors them to stderr).
struct StudyLog {
    file: std::fs::File,
}

impl StudyLog {
    fn open(out: &Path) -> Result<Self> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join("study.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(StudyLog { file })
    }

    fn line(&mut self, message: &str) {
        let now = iso8601_utc(std::time::SystemTime::now());
        let _ = writeln!(self.file, "{now} {message}");
        let _ = self.file.flush();
        eprintln!("study: {message}");
    }
}

pub fn run(args: Args) -> Result<()> {
    let split: probe_cache::ShardSplit = args
        .shard
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--shard {}: {e}", args.shard))?;
    let experiment = Experiment::load(&args.experiment)?;
    let stages = plan(&experiment);
    let out = &experiment.out;
    let selected: Vec<&Stage> = stages.iter().filter(|st| st.kind <= args.stage).collect();
    if args.dry_run {
        for st in &selected {
            println!("{:<28} probe {}", st.id, st.argv.join(" "));
        }
        return Ok(());
    }
    let mut log = StudyLog::open(out)?;
    log.line(&format!(
        "start {} ({} models, {} stages up to {:?}, shard {}/{})",
        args.experiment.display(),
        experiment.models.len(),
        selected.len(),
        args.stage,
        split.k,
        split.n
    ));
    std::fs::write(
        out.join("experiment.toml"),
        std::fs::read(&args.experiment)?,
    )
    .with_context(|| format!("writing {}", out.join("experiment.toml").display()))?;
    let started = Instant::now();
    let mut fingerprints: std::collections::HashMap<String, String> = Default::default();
    let (mut ran, mut reused) = (0, 0);
    for (n, st) in selected.iter().enumerate() {
        let mut h = Sha256::new();
        // the arguments, minus the ones that do not change results
        let relevant: Vec<&String> = st.argv.iter().filter(|a| *a != "--overwrite").collect();
        h.update(serde_json::to_vec(&relevant)?);
        for input in &st.inputs {
            hash_input(&mut h, input)?;
        }
        for dep in &st.after {
            h.update(fingerprints.get(dep).map_or("", String::as_str).as_bytes());
        }
        let fingerprint: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        fingerprints.insert(st.id.clone(), fingerprint.clone());
        let position = format!("[{}/{}]", n + 1, selected.len());
        if recorded_fingerprint(out, &st.id).as_deref() == Some(fingerprint.as_str()) {
            log.line(&format!("{position} {} reused", st.id));
            reused += 1;
            continue;
        }
        let sharded = split.n > 1;
        if sharded && !st.kind.shardable() {
            bail!(
                "stage {} is not finished and cannot be sharded; run `probe study {} --stage {:?}` (without --shard) first",
                st.id,
                args.experiment.display(),
                st.kind
            )
        }
        let mut argv = vec!["probe".to_string()];
        argv.extend(st.argv.iter().cloned());
        if sharded {
            argv.extend(["--shard".into(), format!("{}/{}", split.k, split.n)]);
        }
        log.line(&format!(
            "{position} {} started: probe {}",
            st.id,
            st.argv.join(" ")
        ));
        let t = Instant::now();
        let cli = crate::Cli::try_parse_from(&argv)
            .with_context(|| format!("stage {}: bad arguments", st.id))?;
        crate::dispatch(cli.command).with_context(|| format!("stage {}", st.id))?;
        let seconds = t.elapsed().as_secs_f64();
        ran += 1;
        if sharded {
            log.line(&format!(
                "{position} {} shard {}/{} finished in {seconds:.1} s; the stage is complete once every shard ran (then `probe study` without --shard merges)",
                st.id, split.k, split.n
            ));
            return Ok(());
        }
        let marker = marker_path(out, &st.id);
        std::fs::create_dir_all(marker.parent().expect("in stages/"))?;
        probe_cache::write_atomic(
            &marker,
            serde_json::to_string_pretty(&json!({
                "stage": st.id, "fingerprint": fingerprint, "seconds": seconds,
                "argv": st.argv,
            }))?
            .as_bytes(),
        )?;
        log.line(&format!("{position} {} finished in {seconds:.1} s", st.id));
    }
    log.line(&format!(
        "done in {:.1} s: {ran} stages run, {reused} reused",
        started.elapsed().as_secs_f64()
    ));
    if args.stage == StageKind::Report {
        println!(
            "report: {}",
            out.join("report").join("report.html").display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod log_tests {
    /// Reference values from Python: `datetime.fromtimestamp(t, timezone.utc).isoformat()`.
    #[test]
    fn timestamps_are_iso_8601_utc() {
        let at = |secs: u64, millis: u64| {
            super::iso8601_utc(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(secs * 1000 + millis),
            )
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_000_000_000, 0), "2001-09-09T01:46:40.000Z");
        assert_eq!(at(1_796_064_667, 250), "2026-11-30T18:51:07.250Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }
}
