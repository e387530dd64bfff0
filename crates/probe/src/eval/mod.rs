//! `eval`: prompt-based answer distributions (log-p, samples, sequence, verbalized) under
//! no / persona / few-shot steering (Meister et al. 2024), per question and group, as
//! `compare` cells. Resumable (`units.jsonl`), shardable (`shard k/n`).

mod scores;
mod vote;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use probe_data::cells::Cell;
use probe_eval::prompts::{Steering, Templates};
use probe_eval::questions::QuestionSet;
use probe_eval::run::{read_records, resume, units, EvalParams, Runner, UnitLog};
use serde_json::json;

pub use probe_eval::questions::DEFAULT_LEAK_TOLERANCE;
pub use scores::{OwnScores, Scores, VoteTv};
pub use vote::VoteQuestion;

use crate::files::check_out_dir;
use crate::model::ModelSpec;
use crate::progress::{note, progress_bar};

/// Which questions to ask.
#[derive(Debug, Clone)]
pub enum QuestionSource {
    /// An OpinionQA folder and the attributes (groups) to evaluate (empty: all).
    OpinionQa {
        dir: PathBuf,
        attributes: Vec<String>,
    },
    /// A generic question set (JSONL: id, question, options, groups).
    Questions(PathBuf),
    /// The voting question of the persona grid over an election's parties.
    Vote(Box<VoteQuestion>),
}

/// How few-shot neighbours are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Similarity {
    /// `given` when the set has them, else `tfidf`.
    Auto,
    /// question_similarity_top10.json / the JSONL's `similar`.
    Given,
    /// TF-IDF over the question texts.
    Tfidf,
    /// The model's mean-pooled middle-layer residual stream.
    Model,
}

impl Similarity {
    /// The name `probe eval --similarity` takes.
    pub fn name(self) -> &'static str {
        match self {
            Similarity::Auto => "auto",
            Similarity::Given => "given",
            Similarity::Tfidf => "tfidf",
            Similarity::Model => "model",
        }
    }
}

/// Options of [`eval`]; `EvalOptions::new(model, questions)` has the CLI's defaults.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub model: ModelSpec,
    pub questions: QuestionSource,
    /// Only these question ids.
    pub question_ids: Vec<String>,
    /// Only the first N questions (in id order).
    pub limit: Option<usize>,
    /// Methods, steerings, samples, temperatures, shots, retries, batch size, seed, chat
    /// template and this job's shard: what the runner takes.
    pub params: EvalParams,
    pub similarity: Similarity,
    /// Prompt templates (default: data/eval/prompts.toml; vote-prompts.toml for the vote).
    pub prompts: Option<PathBuf>,
    /// Run name under `<probes_dir>/<model>/`.
    pub run: String,
    pub probes_dir: PathBuf,
    /// Output directory (default `<probes_dir>/<model>/<run>/eval-<dataset>`).
    pub out: Option<PathBuf>,
    /// Delete existing output made with other settings instead of refusing.
    pub overwrite: bool,
}

impl EvalOptions {
    pub fn new(model: ModelSpec, questions: QuestionSource) -> Self {
        EvalOptions {
            model,
            questions,
            question_ids: Vec::new(),
            limit: None,
            params: EvalParams::default(),
            similarity: Similarity::Auto,
            prompts: None,
            run: "prompt-eval".into(),
            probes_dir: PathBuf::from("probes"),
            out: None,
            overwrite: false,
        }
    }
}

/// The cells of every shard so far, the summary and the scores against the reference.
#[derive(Debug)]
pub struct EvalOutcome {
    pub dir: PathBuf,
    pub cells: Vec<Cell>,
    /// `summary.json`: units done, this run's throughput, failures by method × steering.
    pub summary: probe_schema::eval::EvalSummary,
    /// TV and friends against the survey (vote) or the cells' own references; `None` when
    /// nothing has a reference.
    pub scores: Option<Scores>,
}

/// Runs (or resumes) the units of this shard, then turns every record so far into cells,
/// `summary.json`, `eval.cells.jsonl` and the scores (`tv.json`).
pub fn eval(options: &EvalOptions) -> Result<EvalOutcome> {
    let args = options;
    let params = &args.params;
    params.check()?;
    let prompts_path = args.prompts.clone().unwrap_or_else(|| {
        PathBuf::from(if matches!(args.questions, QuestionSource::Vote(_)) {
            "data/eval/vote-prompts.toml"
        } else {
            "data/eval/prompts.toml"
        })
    });
    let templates = Templates::load(&prompts_path)?;
    let mut vote_reference = None;
    let mut set = match &args.questions {
        QuestionSource::OpinionQa { dir, attributes } => QuestionSet::opinionqa(dir, attributes)?,
        QuestionSource::Questions(path) => QuestionSet::jsonl(path)?,
        QuestionSource::Vote(vote) => {
            let (set, reference) = vote.question_set(&templates, &prompts_path, params)?;
            vote_reference = reference;
            set
        }
    };
    if !args.question_ids.is_empty() {
        set.select(&args.question_ids)?;
    }
    if let Some(n) = args.limit {
        set.truncate(n);
    }
    if set.questions.iter().all(|q| q.groups.is_empty()) {
        bail!("{}: no question has group reference data", set.dataset);
    }
    match args.similarity {
        Similarity::Given if set.similar.is_empty() => bail!(
            "--similarity given: {} has no question similarities (question_similarity_top10.json, or `similar` in the JSONL)",
            set.dataset
        ),
        Similarity::Auto if set.similar.is_empty() => {
            set.similar = probe_eval::questions::tfidf_similar(&set.pool)
        }
        Similarity::Tfidf => set.similar = probe_eval::questions::tfidf_similar(&set.pool),
        _ => {}
    }

    let stem = args.model.name();
    crate::files::check_component(&args.run, "--run")?;
    let out = args.out.clone().unwrap_or_else(|| {
        args.probes_dir
            .join(&stem)
            .join(&args.run)
            .join(format!("eval-{}", set.dataset))
    });
    // an unwritable --out fails now, not after the model has run
    check_out_dir(&out)?;

    let model = args.model.load()?;
    let tokenizer = model.tokenizer()?;
    if args.similarity == Similarity::Model && params.steerings.contains(&Steering::Fewshot) {
        let started = Instant::now();
        set.similar = probe_eval::similarity::model_similar(
            &model.transformer,
            tokenizer,
            &set.pool,
            params.batch_size,
        )?;
        note(format_args!(
            "few-shot neighbours of {} questions from the model's hidden states in {:.1} s",
            set.pool.len(),
            started.elapsed().as_secs_f64()
        ));
    }
    // the settings a resumed run must share
    let question_ids: Vec<&str> = set.questions.iter().map(|q| q.id.as_str()).collect();
    let settings = json!({
        "model": args.model.path, "dataset": set.dataset, "questions": question_ids,
        "methods": params.methods, "steering": params.steerings, "n": params.n,
        "temperature": params.temperatures, "top_p": params.top_p, "shots": params.shots,
        "retries": params.retries, "seed": params.seed, "chat": params.chat,
        "similarity": format!("{:?}", args.similarity).to_lowercase(),
        "prompts": std::fs::read_to_string(&prompts_path)?,
        "groups": probe_eval::stable_hash(&set.questions.iter()
            .flat_map(|q| q.groups.iter().map(|g| format!("{}.{}:{:?}", g.attribute, g.group, g.distribution)))
            .collect::<Vec<_>>().join("|")),
        "shots": probe_eval::stable_hash(&format!("{:?}", set.scopes)),
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let manifest = out.join("manifest.json");
    // a first run that fails before any unit finishes removes what it wrote (below)
    let fresh = !manifest.is_file();
    if manifest.is_file() {
        let old: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest)?)?;
        if old["settings"] != settings {
            if !args.overwrite {
                bail!(
                    "{} holds a run with other settings; use another --out or --overwrite",
                    out.display()
                );
            }
            for f in ["units.jsonl", "eval.cells.jsonl", "summary.json"] {
                let _ = std::fs::remove_file(out.join(f));
            }
        }
    }
    probe_cache::write_atomic(
        &manifest,
        serde_json::to_string_pretty(&json!({"format_version": 1, "settings": settings}))?
            .as_bytes(),
    )?;

    if args.similarity != Similarity::Given && params.steerings.contains(&Steering::Fewshot) {
        // the neighbours this run used, for audit
        let sorted: BTreeMap<&String, &Vec<String>> = set.similar.iter().collect();
        probe_cache::write_atomic(
            &out.join("similar.json"),
            serde_json::to_string_pretty(&sorted)?.as_bytes(),
        )?;
    }
    let log_path = out.join("units.jsonl");
    let finished = resume(&log_path)?;
    let all = units(&set, params);
    let todo: Vec<_> = all
        .iter()
        .filter(|u| !finished.contains(&u.key(&set)))
        .cloned()
        .collect();
    note(format_args!(
        "eval: {} questions, {} units in shard {}/{} ({} finished before), {} to do → {}",
        set.questions.len(),
        all.len(),
        params.shard.k,
        params.shard.n,
        all.len() - todo.len(),
        todo.len(),
        out.display()
    ));
    let runner = Runner {
        transformer: &model.transformer,
        tokenizer,
        chat_template: model.chat_template.as_ref(),
        model_name: stem.clone(),
        templates: &templates,
    };
    let mut log = UnitLog::open(&log_path)?;
    let bar = progress_bar(todo.len() as u64, "eval");
    let start = Instant::now();
    let tally = runner.run(&set, &todo, params, |record, tally| {
        log.append(&record)?;
        bar.inc(1);
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "{:.0} prompt tok/s, {:.1} gen tok/s, {} parse failures",
            tally.prompt_tokens as f64 / secs,
            tally.generated_tokens as f64 / secs,
            tally.parse_failures
        ));
        Ok(())
    });
    bar.finish_and_clear();
    let tally = match tally {
        Ok(tally) => tally,
        Err(e) => {
            if fresh && !log_path.exists() {
                for f in ["manifest.json", "similar.json"] {
                    let _ = std::fs::remove_file(out.join(f));
                }
                let _ = std::fs::remove_dir(&out); // only if empty
            }
            return Err(e.into());
        }
    };
    let seconds = start.elapsed().as_secs_f64();

    // every record of every shard so far → cells and a summary
    let records = read_records(&log_path)?;
    let total_units = units(
        &set,
        &EvalParams {
            shard: probe_cache::ShardSplit::default(),
            ..params.clone()
        },
    )
    .len();
    let mut cells: Vec<Cell> = Vec::new();
    let mut per_setting: BTreeMap<(String, String), (usize, usize, usize, usize)> = BTreeMap::new();
    for r in &records {
        let labels = &r["cell"];
        let key = (
            labels["method"].as_str().unwrap_or("").to_string(),
            labels["steering"].as_str().unwrap_or("").to_string(),
        );
        let e = per_setting.entry(key).or_default();
        e.0 += 1;
        if r["ok"].as_bool() == Some(true) {
            let obj = labels.as_object().context("a unit record without a cell")?;
            cells.push(probe_data::cells::parse_cell(obj, true).map_err(anyhow::Error::msg)?);
        } else {
            e.1 += 1;
        }
        if let Some(attempts) = r["audit"]["attempts"].as_array() {
            e.2 += attempts.len();
            e.3 += attempts.iter().filter(|a| a.get("error").is_some()).count();
        }
    }
    let summary = probe_schema::eval::EvalSummary {
        format_version: <probe_schema::eval::EvalSummary as probe_schema::Artifact>::FORMAT_VERSION,
        units: records.len(),
        of: total_units,
        complete: records.len() >= total_units,
        this_run: probe_schema::eval::EvalThisRun {
            units: tally.units,
            seconds,
            tally: tally.clone(),
            prompt_tokens_per_s: tally.prompt_tokens as f64 / seconds.max(1e-9),
            generated_tokens_per_s: tally.generated_tokens as f64 / seconds.max(1e-9),
        },
        by_setting: per_setting
            .iter()
            .map(
                |((m, s), &(units, failed_units, attempts, parse_failures))| {
                    probe_schema::eval::EvalSetting {
                        method: m.clone(),
                        steering: s.clone(),
                        units,
                        failed_units,
                        attempts,
                        parse_failures,
                        parse_failure_rate: Some(if attempts > 0 {
                            parse_failures as f64 / attempts as f64
                        } else {
                            0.0
                        }),
                    }
                },
            )
            .collect(),
    };
    probe_schema::write(&out.join("summary.json"), &summary)?;
    let mut text = String::new();
    for c in &cells {
        text.push_str(&c.to_json().to_string());
        text.push('\n');
    }
    probe_cache::write_atomic(&out.join("eval.cells.jsonl"), text.as_bytes())?;
    note(format_args!(
        "{} of {total_units} units done ({} this run in {seconds:.1} s: {:.0} prompt tokens/s, {:.1} generated tokens/s, {} parse failures in {} attempts, {} failed units)",
        records.len(),
        tally.units,
        tally.prompt_tokens as f64 / seconds.max(1e-9),
        tally.generated_tokens as f64 / seconds.max(1e-9),
        tally.parse_failures,
        tally.attempts,
        tally.failed_units
    ));
    let scores = if let Some(reference) = &vote_reference {
        Some(Scores::Vote(scores::vote_scores(
            &cells, &stem, reference, &out,
        )?))
    } else if cells.iter().any(|c| c.reference.is_some()) {
        Some(Scores::Own(scores::own_scores(&cells, &out)?))
    } else {
        None
    };
    Ok(EvalOutcome {
        dir: out,
        cells,
        summary,
        scores,
    })
}
