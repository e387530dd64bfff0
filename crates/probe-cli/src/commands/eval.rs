//! `probe eval`: prompt-based answer distributions (log-p, samples, sequence, verbalized) under
//! no / persona / few-shot steering, per question and group, as `probe compare` cells.
//! Resumable (`units.jsonl`), shardable (`--shard k/n`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use probe_data::cells::Cell;
use probe_eval::prompts::{Method, Steering, Templates};
use probe_eval::questions::QuestionSet;
use probe_eval::run::{read_records, resume, units, EvalParams, Runner, UnitLog};
use probe_report::compare::{
    baseline_cells, compare, join, own_references, Baseline, CompareOptions, Metric,
};
use serde_json::json;

use super::report::SurveyArgs;
use crate::common::{progress_bar, ModelArgs, PersonaArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// An OpinionQA folder (`<ATTR>_data.json`, `info.csv`, `metadata.csv`,
    /// `question_similarity_top10.json`).
    #[arg(long)]
    pub opinionqa: Option<PathBuf>,
    /// OpinionQA attributes (groups) to evaluate, e.g. POLPARTY (default: all in the folder).
    #[arg(long, value_delimiter = ',')]
    pub attribute: Vec<String>,
    /// A generic question set (JSONL: id, question, options, groups).
    #[arg(long)]
    pub questions: Option<PathBuf>,
    /// The voting question of the persona grid over this Wahl-o-Mat election's parties:
    /// options = parties, groups = the personas of --persona/--where (asked under persona and
    /// few-shot steering) and the population (asked unsteered).
    #[arg(long, value_name = "ELECTION_DIR")]
    pub vote: Option<PathBuf>,
    /// Parties of the voting question (default: the election's six Bundestag parties).
    #[arg(long, value_delimiter = ',')]
    pub parties: Vec<String>,
    /// The voting question's personas.
    #[command(flatten)]
    pub grid: PersonaArgs,
    /// A seeded random subset of N personas (the whole grid is 12,600).
    #[arg(long, value_parser = crate::common::positive)]
    pub persona_sample: Option<usize>,
    /// The survey (or election result) the voting question's cells are scored against.
    #[command(flatten)]
    pub survey: SurveyArgs,
    /// Where the voting question's few-shot examples come from: the vote by group of another
    /// election or survey (a respondent CSV with the same --answer / --survey-weight columns,
    /// or a built-in result such as btw2021). Never the scored survey itself: that would put
    /// the answer in the prompt, and is refused.
    #[arg(long)]
    pub shots_from: Option<String>,
    /// Only these question ids.
    #[arg(long, value_delimiter = ',')]
    pub question_ids: Vec<String>,
    /// Only the first N questions (in id order).
    #[arg(long, value_parser = crate::common::positive)]
    pub limit: Option<usize>,
    /// Expression methods: logp, sample, sequence, verbalize.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "logp,sample,sequence,verbalize"
    )]
    pub methods: Vec<String>,
    /// Steerings: none, persona, fewshot.
    #[arg(long, value_delimiter = ',', default_value = "none,persona,fewshot")]
    pub steering: Vec<String>,
    /// Answers per sequence and samples per unit.
    #[arg(long, default_value_t = 30, value_parser = crate::common::positive)]
    pub n: usize,
    /// Sampling temperature of the `sample` method; several (0.5,1,2) sweep it, each as its
    /// own method `sample@T`.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub temperature: Vec<f32>,
    /// Nucleus sampling for `sample`, `sequence` and `verbalize` (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Few-shot examples per prompt.
    #[arg(long, default_value_t = 5)]
    pub shots: usize,
    /// Sampled retries after an unparsable sequence / verbalization.
    #[arg(long, default_value_t = 2)]
    pub retries: usize,
    /// Prompts per forward pass.
    #[arg(long, default_value_t = 8, value_parser = crate::common::positive)]
    pub batch_size: usize,
    /// Seed of sampling and of the few-shot and persona draws (the same seed gives the same cells).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Plain-text prompts even when the model has a chat template.
    #[arg(long)]
    pub no_chat: bool,
    /// Few-shot neighbours: `given` (question_similarity_top10.json / the JSONL's `similar`),
    /// `tfidf` (question texts), `model` (the model's mean-pooled middle-layer residual stream),
    /// `auto` (given when the set has them, else tfidf).
    #[arg(long, value_enum, default_value = "auto")]
    pub similarity: Similarity,
    /// Prompt templates (default: data/eval/prompts.toml; data/eval/vote-prompts.toml with
    /// --vote).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// This job's slice of the units, k/n.
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// Run name under probes/<model>/ (the report reads eval-*/ of a run directory).
    #[arg(long, default_value = "prompt-eval")]
    pub run: String,
    /// Where runs live: the default --out is <probes-dir>/<model>/<run>/eval-<dataset>.
    #[arg(long, default_value = "probes")]
    pub probes_dir: PathBuf,
    /// Output directory (default: <probes-dir>/<model>/<run>/eval-<dataset>).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Delete existing output made with other settings instead of refusing.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Similarity {
    Auto,
    Given,
    Tfidf,
    Model,
}

pub fn run(args: Args) -> Result<()> {
    let params = EvalParams {
        methods: args
            .methods
            .iter()
            .map(|m| Method::parse(m))
            .collect::<Result<_, _>>()?,
        steerings: args
            .steering
            .iter()
            .map(|s| Steering::parse(s))
            .collect::<Result<_, _>>()?,
        n: args.n,
        temperatures: args.temperature.clone(),
        top_p: args.top_p,
        shots: args.shots,
        retries: args.retries,
        batch_size: args.batch_size,
        seed: args.seed,
        chat: !args.no_chat,
        shard: {
            let split: probe_cache::ShardSplit = args
                .shard
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--shard {}: {e}", args.shard))?;
            (split.k, split.n)
        },
    };
    params.check()?;
    let prompts_path = args.prompts.clone().unwrap_or_else(|| {
        PathBuf::from(if args.vote.is_some() {
            "data/eval/vote-prompts.toml"
        } else {
            "data/eval/prompts.toml"
        })
    });
    let templates = Templates::load(&prompts_path)?;
    let mut vote_reference = None;
    let mut set = match (&args.opinionqa, &args.questions, &args.vote) {
        (Some(dir), None, None) => QuestionSet::opinionqa(dir, &args.attribute)?,
        (None, Some(path), None) => QuestionSet::jsonl(path)?,
        (None, None, Some(election)) => {
            let (set, reference) = vote_set(&args, election, &templates, &prompts_path, &params)?;
            vote_reference = reference;
            set
        }
        _ => bail!(
            "give one question set: --opinionqa <dir>, --questions <file.jsonl> or --vote <election dir>"
        ),
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
    let out = args.out.clone().unwrap_or_else(|| {
        args.probes_dir
            .join(&stem)
            .join(&args.run)
            .join(format!("eval-{}", set.dataset))
    });
    // an unwritable --out fails now, not after the model has run
    crate::common::check_out_dir(&out)?;

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
        eprintln!(
            "few-shot neighbours of {} questions from the model's hidden states in {:.1} s",
            set.pool.len(),
            started.elapsed().as_secs_f64()
        );
    }
    // the settings a resumed run must share
    let question_ids: Vec<&str> = set.questions.iter().map(|q| q.id.as_str()).collect();
    let settings = json!({
        "model": args.model.model, "dataset": set.dataset, "questions": question_ids,
        "methods": args.methods, "steering": args.steering, "n": args.n,
        "temperature": args.temperature, "top_p": args.top_p, "shots": args.shots,
        "retries": args.retries, "seed": args.seed, "chat": !args.no_chat,
        "similarity": format!("{:?}", args.similarity).to_lowercase(),
        "prompts": std::fs::read_to_string(&prompts_path)?,
        "groups": probe_eval::stable_hash(&set.questions.iter()
            .flat_map(|q| q.groups.iter().map(|g| format!("{}.{}:{:?}", g.attribute, g.group, g.distribution)))
            .collect::<Vec<_>>().join("|")),
        "shots": probe_eval::stable_hash(&format!("{:?}", set.scopes)),
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let manifest = out.join("manifest.json");
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
    let all = units(&set, &params);
    let todo: Vec<_> = all
        .iter()
        .filter(|u| !finished.contains(&u.key(&set)))
        .cloned()
        .collect();
    eprintln!(
        "eval: {} questions, {} units in shard {}/{} ({} finished before), {} to do → {}",
        set.questions.len(),
        all.len(),
        params.shard.0,
        params.shard.1,
        all.len() - todo.len(),
        todo.len(),
        out.display()
    );
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
    let tally = runner.run(&set, &todo, &params, |record, tally| {
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
    })?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();

    // every record of every shard so far → cells and a summary
    let records = read_records(&log_path)?;
    let total_units = units(
        &set,
        &EvalParams {
            shard: (0, 1),
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
    let summary = json!({
        "units": records.len(),
        "of": total_units,
        "complete": records.len() >= total_units,
        "this_run": {"units": tally.units, "seconds": seconds, "tally": tally,
                     "prompt_tokens_per_s": tally.prompt_tokens as f64 / seconds.max(1e-9),
                     "generated_tokens_per_s": tally.generated_tokens as f64 / seconds.max(1e-9)},
        "by_setting": per_setting.iter().map(|((m, s), (n, failed, attempts, parse_failures))| json!({
            "method": m, "steering": s, "units": n, "failed_units": failed,
            "attempts": attempts, "parse_failures": parse_failures,
            "parse_failure_rate": if *attempts > 0 { *parse_failures as f64 / *attempts as f64 } else { 0.0 },
        })).collect::<Vec<_>>(),
    });
    probe_cache::write_atomic(
        &out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    let mut text = String::new();
    for c in &cells {
        text.push_str(&c.to_json().to_string());
        text.push('\n');
    }
    probe_cache::write_atomic(&out.join("eval.cells.jsonl"), text.as_bytes())?;
    eprintln!(
        "{} of {total_units} units done ({} this run in {seconds:.1} s: {:.0} prompt tokens/s, {:.1} generated tokens/s, {} parse failures in {} attempts, {} failed units)",
        records.len(),
        tally.units,
        tally.prompt_tokens as f64 / seconds.max(1e-9),
        tally.generated_tokens as f64 / seconds.max(1e-9),
        tally.parse_failures,
        tally.attempts,
        tally.failed_units
    );
    if let Some(reference) = &vote_reference {
        print_vote_tv(&cells, &stem, reference, &out)?;
    } else if cells.iter().any(|c| c.reference.is_some()) {
        print_tv(&cells, &out)?;
    }
    Ok(())
}

/// The voting question over `election`'s parties for the personas of the spec, with the
/// survey's groups as few-shot examples when a survey or election result is given.
fn vote_set(
    args: &Args,
    election: &std::path::Path,
    templates: &Templates,
    prompts_path: &std::path::Path,
    params: &EvalParams,
) -> Result<(QuestionSet, Option<probe_report::report::Reference>)> {
    let loaded = probe_data::wahl_o_mat::Election::load(election)?;
    let parties: Vec<String> = loaded
        .select_parties(&args.parties)?
        .into_iter()
        .map(probe_data::wahl_o_mat::Election::display_name)
        .collect();
    let spec = args.grid.spec()?;
    let mut personas = args.grid.select(&spec)?;
    if let Some(n) = args.persona_sample {
        if n == 0 {
            bail!("--persona-sample must be ≥ 1");
        }
        // a seeded subset, kept in grid order
        let mut order: Vec<(u64, usize)> = personas
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    probe_eval::stable_hash(&format!("{}:{}", params.seed, p.id)),
                    i,
                )
            })
            .collect();
        order.sort();
        let mut keep: Vec<usize> = order.into_iter().take(n).map(|(_, i)| i).collect();
        keep.sort();
        personas = keep.into_iter().map(|i| personas[i].clone()).collect();
    }
    let language = templates.language.as_deref().unwrap_or("de");
    let question = templates.vote_question.as_deref().with_context(|| {
        format!(
            "{}: no `vote_question` (the voting question's text); see data/eval/vote-prompts.toml",
            prompts_path.display()
        )
    })?;
    let name = election
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("election");
    let mut set = QuestionSet::vote(
        &format!("vote-{name}"),
        question,
        &parties,
        &personas,
        &spec,
        language,
    )?;
    let reference = args.survey.reference(Some(&parties), None)?;
    if params.steerings.contains(&Steering::Fewshot) {
        let Some(source) = &args.shots_from else {
            bail!(
                "few-shot steering of the voting question needs --shots-from: showing the scored survey's own vote by group would put the answer in the prompt. Give the vote by group of another election or survey (--shots-from <csv> or btw2021), or leave fewshot out of --steering"
            );
        };
        if args
            .survey
            .survey
            .as_ref()
            .is_some_and(|p| p.as_os_str() == source.as_str())
            || args.survey.election.as_deref() == Some(source.as_str())
        {
            bail!(
                "--shots-from {source} is the survey the cells are scored against: that puts the answer in the prompt. Take the examples from another election or survey"
            );
        }
        let mut shots_args = args.survey.clone();
        if std::path::Path::new(source).is_file() {
            (shots_args.survey, shots_args.election) = (Some(source.into()), None);
        } else {
            (shots_args.survey, shots_args.election) = (None, Some(source.clone()));
        }
        let shots = shots_args
            .reference(Some(&parties), None)?
            .with_context(|| format!("--shots-from {source}: no distributions"))?;
        let scored: &[Cell] = reference.as_ref().map_or(&[], |r| &r.cells);
        let name = std::path::Path::new(source)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(source);
        set.set_shot_scopes(&shots.cells, scored, name, &spec, language)?;
        if !set.scopes.iter().any(|s| s.attribute != "all") {
            bail!("--shots-from {source} has no groups (attribute/value) to show as few-shot examples");
        }
    }
    eprintln!(
        "voting question: {} parties ({}), {} personas, {} groups of another survey for few-shot examples",
        parties.len(),
        parties.join(", "),
        personas.len(),
        set.scopes.len().saturating_sub(1)
    );
    Ok((set, reference))
}

/// TV per method × steering of the pooled voting distributions (everyone and each attribute
/// value the reference has) against the survey or election result.
fn print_vote_tv(
    cells: &[Cell],
    model: &str,
    reference: &probe_report::report::Reference,
    out: &std::path::Path,
) -> Result<()> {
    let series = probe_report::report::series_from_cells(cells, model)?;
    println!(
        "{:<12} {:<9} {:>7} {:>10} {:>12}",
        "method", "steering", "scopes", "TV(all)", "mean TV"
    );
    let mut rows = Vec::new();
    for s in &series {
        let mut tvs: Vec<(String, f64)> = Vec::new();
        for c in &reference.cells {
            let scope = (
                c.labels.get("attribute").cloned().unwrap_or("all".into()),
                c.labels.get("value").cloned().unwrap_or("all".into()),
            );
            let (Some(p), Some((r, _))) = (
                s.pooled.get(&scope),
                probe_report::report::align_reference(c, &s.options),
            ) else {
                continue;
            };
            tvs.push((
                format!("{}={}", scope.0, scope.1),
                probe_metrics::divergence::total_variation(p, &r)?,
            ));
        }
        if tvs.is_empty() {
            continue;
        }
        let all = tvs.iter().find(|(k, _)| k == "all=all").map(|t| t.1);
        let mean = tvs.iter().map(|t| t.1).sum::<f64>() / tvs.len() as f64;
        let label = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
        println!(
            "{:<12} {:<9} {:>7} {:>10} {:>12.4}",
            label("method"),
            label("steering"),
            tvs.len(),
            all.map_or("-".into(), |v| format!("{v:.4}")),
            mean
        );
        rows.push(json!({"method": label("method"), "steering": label("steering"),
            "tv_all": all, "mean_tv": mean, "by_scope": tvs.iter().map(|(k, v)| json!({"scope": k, "tv": v})).collect::<Vec<_>>()}));
    }
    probe_cache::write_atomic(
        &out.join("tv.json"),
        serde_json::to_string_pretty(
            &json!({"reference": reference.name, "notes": reference.notes, "tv": rows}),
        )?
        .as_bytes(),
    )?;
    Ok(())
}

/// The benchmark's A of `sequence` and of `verbalize` under `steering`, each over only the
/// cells (group, question) both have, and how many those are; `None` when they share none.
fn shared_cell_scores(
    pairs: &[probe_report::compare::Pair],
    steering: &str,
) -> Result<Option<(f64, f64, usize)>> {
    let key = |p: &probe_report::compare::Pair| {
        let l = &p.labels;
        (
            l.get("attribute").cloned(),
            l.get("group").cloned(),
            l.get("question").cloned(),
        )
    };
    let of = |method: &str| -> Vec<&probe_report::compare::Pair> {
        pairs
            .iter()
            .filter(|p| {
                p.labels.get("method").map(String::as_str) == Some(method)
                    && p.labels.get("steering").map(String::as_str) == Some(steering)
            })
            .collect()
    };
    let (seq, verb) = (of("sequence"), of("verbalize"));
    let in_verb: std::collections::HashSet<_> = verb.iter().map(|p| key(p)).collect();
    let shared: std::collections::HashSet<_> = seq
        .iter()
        .map(|p| key(p))
        .filter(|k| in_verb.contains(k))
        .collect();
    if shared.is_empty() {
        return Ok(None);
    }
    let score = |set: &[&probe_report::compare::Pair]| -> Result<f64> {
        let kept: Vec<probe_report::compare::Pair> = set
            .iter()
            .filter(|p| shared.contains(&key(p)))
            .map(|p| (*p).clone())
            .collect();
        let rows = compare(
            &kept,
            &CompareOptions {
                bootstrap: 1,
                ..CompareOptions::default()
            },
        )?;
        Ok(rows[0].estimate.value)
    };
    Ok(Some((score(&seq)?, score(&verb)?, shared.len())))
}

/// TV per method × steering against the cells' own references, with the baselines.
fn print_tv(cells: &[Cell], out: &std::path::Path) -> Result<()> {
    let references = own_references(cells);
    let mut predicted = cells.to_vec();
    predicted.extend(baseline_cells(&references, Baseline::Uniform));
    predicted.extend(baseline_cells(&references, Baseline::Majority));
    for c in predicted.iter_mut() {
        if c.labels
            .get("model")
            .is_some_and(|m| m.starts_with("baseline-"))
        {
            let m = c.labels["model"].clone();
            c.labels.insert("method".into(), m);
            c.labels.insert("steering".into(), "-".into());
        }
        c.reference = None;
    }
    let pairs = join(&predicted, &references)?;
    let rows = compare(
        &pairs,
        &CompareOptions {
            metrics: vec![Metric::Tv],
            by: vec!["method".into(), "steering".into()],
            ..CompareOptions::default()
        },
    )?;
    println!(
        "{:<18} {:<9} {:>6} {:>6} {:>8}  {:<18} {:>7} {:>7}",
        "method", "steering", "cells", "groups", "TV", "95% CI", "ECE", "floor"
    );
    for r in &rows {
        let opt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.4}"));
        println!(
            "{:<18} {:<9} {:>6} {:>6} {:>8.4}  {:<18} {:>7} {:>7}",
            r.group["method"],
            r.group["steering"],
            r.n_cells,
            r.n_groups.map_or("-".into(), |g| g.to_string()),
            r.estimate.value,
            r.interval_text(),
            opt(r.calibration_ece),
            opt(r.discretization_floor)
        );
    }
    // log-p with temperature scaling: τ* fitted per steering on these cells (in-sample)
    let mut scaled = serde_json::Map::new();
    for steering in ["none", "persona", "fewshot"] {
        let pairs: Vec<(&[f64], &[f64])> = cells
            .iter()
            .filter(|c| {
                c.labels.get("method").map(String::as_str) == Some("logp")
                    && c.labels.get("steering").map(String::as_str) == Some(steering)
            })
            .filter_map(|c| Some((c.reference.as_deref()?, c.predicted.as_deref()?)))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let (tau, tv) = probe_metrics::calibration::fit_temperature(&pairs, 0.05, 20.0)?;
        println!(
            "{:<18} {:<9} {:>6} {:>8.4}  (τ* = {tau:.3}, fitted on these cells)",
            "logp-scaled",
            steering,
            pairs.len(),
            tv
        );
        scaled.insert(
            steering.into(),
            json!({"tau": tau, "tv": tv, "cells": pairs.len()}),
        );
    }
    // knowledge-to-simulation gap per steering: A(sequence) / A(verbalize) − 1, both scored
    // over the (group, question) cells both methods parsed, so that neither is scored on
    // questions the other failed.
    let mut gaps = serde_json::Map::new();
    for steering in ["none", "persona", "fewshot"] {
        if let Some((seq, verb, cells)) = shared_cell_scores(&pairs, steering)? {
            if let Ok(ks) = probe_metrics::alignment::knowledge_to_simulation_gap(seq, verb) {
                println!(
                    "knowledge-to-simulation gap ({steering}): {ks:+.3} over {cells} shared cells"
                );
                gaps.insert(
                    steering.into(),
                    json!({"gap": ks, "a_sequence": seq, "a_verbalize": verb, "shared_cells": cells}),
                );
            }
        }
    }
    probe_cache::write_atomic(
        &out.join("tv.json"),
        serde_json::to_string_pretty(&json!({"tv": rows, "logp_temperature_scaled": scaled, "knowledge_to_simulation_gap": gaps}))?
            .as_bytes(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use probe_report::compare::Pair;

    fn pair(method: &str, question: &str, predicted: f64) -> Pair {
        let labels = [
            ("method", method),
            ("steering", "none"),
            ("attribute", "SEX"),
            ("group", "Male"),
            ("question", question),
        ];
        Pair {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            options: vec!["a".into(), "b".into()],
            predicted: vec![predicted, 1.0 - predicted],
            reference: vec![0.5, 0.5],
            ordinal: None,
            weight: 1.0,
        }
    }

    /// `sequence` parsed q1 and q2, `verbalize` only q1: the gap compares both on q1 alone.
    #[test]
    fn knowledge_to_simulation_gap_uses_only_shared_cells() {
        let pairs = [
            pair("sequence", "q1", 0.7),
            pair("sequence", "q2", 1.0),
            pair("verbalize", "q1", 0.6),
        ];
        let (seq, verb, shared) = super::shared_cell_scores(&pairs, "none").unwrap().unwrap();
        assert_eq!(shared, 1);
        assert!((seq - 0.2).abs() < 1e-12, "{seq}");
        assert!((verb - 0.1).abs() < 1e-12, "{verb}");
        assert!(super::shared_cell_scores(&pairs, "persona")
            .unwrap()
            .is_none());
    }
}
