//! `simulate`: one simulated respondent per real one (arXiv 2403.20252). Each respondent's own
//! demographic columns become a persona; the model answers every survey item; per item it gives
//! the options' distribution and a sampled answer at each temperature. Resumable (one record per
//! respondent in `respondents.jsonl`), shardable (`shard k/n` over respondents); the seeded
//! train / validation / test split is saved in `split.json`, and `scores.json` scores the
//! simulated table against the real one ([`scores`]).

pub mod baselines;
pub mod scores;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use probe_data::survey::{Split, Survey};
use probe_eval::run::{read_records, resume, UnitLog};
use probe_eval::simulate::{encode_prompt, item_prompt, ItemPrompt, Simulator};
use serde_json::{json, Value};

pub use scores::{ScoresTable, SimulationScores, SplitScores};

use crate::files::check_out_dir;
use crate::model::ModelSpec;
use crate::progress::{note, progress_bar};

/// Which respondents to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Respondents {
    All,
    Train,
    Validation,
    Test,
}

impl Respondents {
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "all" => Respondents::All,
            "train" => Respondents::Train,
            "validation" => Respondents::Validation,
            "test" => Respondents::Test,
            other => bail!("respondents `{other}`: expected all, train, validation or test"),
        })
    }
}

/// The seeded split of the respondents and the fractions it was made with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitOptions {
    pub seed: u64,
    pub train: f64,
    pub validation: f64,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions {
            seed: 0,
            train: 0.7,
            validation: 0.1,
        }
    }
}

/// Loads a survey from its folder (`codebook.toml` inside) or its codebook file.
pub fn load_survey(path: &Path) -> Result<Survey> {
    let codebook = if path.is_dir() {
        path.join("codebook.toml")
    } else {
        path.to_path_buf()
    };
    Ok(Survey::load(&codebook)?)
}

/// The split's respondent indices by name, and each respondent's split name.
pub fn split_names(split: &Split, n: usize) -> Vec<&'static str> {
    let mut names = vec![""; n];
    for (name, part) in [
        ("train", &split.train),
        ("validation", &split.validation),
        ("test", &split.test),
    ] {
        for &i in part {
            names[i] = name;
        }
    }
    names
}

/// Options of [`simulate`]; `SimulateOptions::new(model, survey)` has the CLI's defaults.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub model: ModelSpec,
    /// The survey's folder (with `codebook.toml`) or its codebook.
    pub survey: PathBuf,
    /// Steer with each respondent's persona (else every twin is asked unsteered: the null).
    pub persona: bool,
    /// Sampling temperatures of the answers (0: the most probable option).
    pub temperatures: Vec<f32>,
    pub split: SplitOptions,
    pub respondents: Respondents,
    /// Only the first N respondents of the selection (by position in the survey).
    pub limit: Option<usize>,
    pub seed: u64,
    /// Prompts per forward pass.
    pub batch_size: usize,
    /// Prompts in the model's chat template when it has one.
    pub chat: bool,
    /// This job's slice of the respondents, k/n.
    pub shard: probe_cache::ShardSplit,
    pub bootstrap: probe_metrics::individual::Bootstrap,
    pub kl_smoothing: f64,
    pub spearman: bool,
    pub probes_dir: PathBuf,
    /// Another finished simulation of the same respondents (e.g. the base model's, beside a
    /// fine-tuned one): scored beside this one, with paired differences.
    pub versus: Option<PathBuf>,
    /// Output directory (default `<probes_dir>/<model>/simulate-<survey>`).
    pub out: Option<PathBuf>,
    pub overwrite: bool,
}

impl SimulateOptions {
    pub fn new(model: ModelSpec, survey: impl Into<PathBuf>) -> Self {
        SimulateOptions {
            model,
            survey: survey.into(),
            persona: true,
            temperatures: vec![1.0],
            split: SplitOptions::default(),
            respondents: Respondents::All,
            limit: None,
            seed: 0,
            batch_size: 8,
            chat: true,
            shard: probe_cache::ShardSplit::default(),
            bootstrap: probe_metrics::individual::Bootstrap {
                resamples: 1000,
                level: 0.95,
                seed: 0,
            },
            kl_smoothing: 1e-4,
            spearman: false,
            probes_dir: PathBuf::from("probes"),
            versus: None,
            out: None,
            overwrite: false,
        }
    }

    fn check(&self) -> Result<(usize, usize)> {
        if self.temperatures.is_empty() {
            bail!("give at least one sampling temperature");
        }
        if let Some(t) = self
            .temperatures
            .iter()
            .find(|t| !(**t >= 0.0 && t.is_finite()))
        {
            bail!("sampling temperature {t} must be ≥ 0 (0: the most probable option)");
        }
        if self.batch_size == 0 {
            bail!("batch size must be ≥ 1");
        }
        if self.limit == Some(0) {
            bail!("--limit 0 simulates nobody");
        }
        // checked before any model runs, not when the finished table is scored
        if !(self.bootstrap.level > 0.0 && self.bootstrap.level < 1.0) {
            bail!(
                "--level {}: a confidence level is between 0 and 1",
                self.bootstrap.level
            );
        }
        if self.bootstrap.resamples == 0 {
            bail!("--bootstrap 0: the intervals need at least one resample");
        }
        if !(self.kl_smoothing.is_finite() && self.kl_smoothing >= 0.0) {
            bail!(
                "--kl-smoothing {}: must be a finite number ≥ 0",
                self.kl_smoothing
            );
        }
        Ok((self.shard.k, self.shard.n))
    }
}

#[derive(Debug)]
pub struct SimulateOutcome {
    pub dir: PathBuf,
    /// Respondents simulated so far (every shard) of those selected.
    pub done: usize,
    pub selected: usize,
    /// `None` until every selected respondent is simulated.
    pub scores: Option<SimulationScores>,
}

/// Simulates (or resumes) this shard's respondents, then scores the table when complete.
pub fn simulate(options: &SimulateOptions) -> Result<SimulateOutcome> {
    let (shard_k, shard_n) = options.check()?;
    let survey = load_survey(&options.survey)?;
    let split = survey.split(
        options.split.seed,
        options.split.train,
        options.split.validation,
    )?;
    let names = split_names(&split, survey.respondents.len());
    let mut selected: Vec<usize> = match options.respondents {
        Respondents::All => (0..survey.respondents.len()).collect(),
        Respondents::Train => split.train.clone(),
        Respondents::Validation => split.validation.clone(),
        Respondents::Test => split.test.clone(),
    };
    if selected.is_empty() {
        bail!(
            "the {:?} split of {} is empty; change the split fractions",
            options.respondents,
            survey.codebook.name
        );
    }
    if let Some(n) = options.limit {
        selected.truncate(n);
    }
    // a persona that names a missing demographic cannot be written: that respondent is left out
    let personas: Vec<Option<String>> = survey
        .respondents
        .iter()
        .map(|r| survey.persona(r))
        .collect();
    let before = selected.len();
    if options.persona {
        selected.retain(|&i| personas[i].is_some());
    }
    if selected.len() < before {
        note(format_args!(
            "{} of {before} respondents lack a demographic the persona names and are left out",
            before - selected.len()
        ));
    }
    if selected.is_empty() {
        bail!("no selected respondent has every demographic the persona names");
    }
    // every part that is scored (all selected, each split among them) and the training split
    // the baselines learn from: refused now, not after the model has run
    survey.check_answered("selected", &selected)?;
    for (name, part) in [
        ("train", &split.train),
        ("validation", &split.validation),
        ("test", &split.test),
    ] {
        let among: Vec<usize> = selected
            .iter()
            .copied()
            .filter(|i| names[*i] == name)
            .collect();
        if !among.is_empty() && among.len() < selected.len() {
            survey.check_answered(&format!("selected {name}"), &among)?;
        }
        if name == "train" {
            survey.check_answered("train", part)?;
        }
    }
    for item in &survey.codebook.items {
        item_prompt(None, item)?;
    }

    let stem = options.model.name();
    let out = options.out.clone().unwrap_or_else(|| {
        options
            .probes_dir
            .join(&stem)
            .join(format!("simulate-{}", survey.codebook.name))
    });
    check_out_dir(&out)?;
    let settings = json!({
        "model": options.model.path, "survey": survey.codebook.name,
        "data": crate::files::sha256_file(&survey.path)?,
        "persona": options.persona, "temperatures": options.temperatures,
        "split": {"seed": options.split.seed, "train": options.split.train, "validation": options.split.validation},
        "respondents": options.respondents, "limit": options.limit, "seed": options.seed,
        "chat": options.chat,
        "prompts": probe_eval::stable_hash(&survey.codebook.items.iter()
            .map(|i| item_prompt(Some(&survey.codebook.persona), i).unwrap_or_default())
            .collect::<Vec<_>>().join("|")),
    });
    // a --versus run must hold the same respondents: refused now, not after the model ran
    let versus = match &options.versus {
        Some(dir) => Some(versus_table(dir, &survey, &settings, &selected, options)?),
        None => None,
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let manifest = out.join("manifest.json");
    if manifest.is_file() {
        let old: Value = serde_json::from_str(&std::fs::read_to_string(&manifest)?)
            .with_context(|| format!("reading {}", manifest.display()))?;
        if old["settings"] != settings {
            if !options.overwrite {
                bail!(
                    "{} holds a simulation with other settings; use another --out or --overwrite",
                    out.display()
                );
            }
            for f in [
                "respondents.jsonl",
                "answers.csv",
                "scores.json",
                "simulate.cells.jsonl",
            ] {
                let _ = std::fs::remove_file(out.join(f));
            }
        }
    }
    // this run is not complete until it says so at the end, whatever an earlier one left
    probe_cache::clear_complete(&out)?;
    // a first run that fails before any respondent finishes removes what it wrote (below)
    let fresh = !manifest.is_file();
    probe_cache::write_atomic(
        &manifest,
        serde_json::to_string_pretty(&json!({"format_version": 1, "settings": settings}))?
            .as_bytes(),
    )?;
    let ids = |part: &[usize]| -> Vec<&str> {
        part.iter()
            .map(|&i| survey.respondents[i].id.as_str())
            .collect()
    };
    probe_cache::write_atomic(
        &out.join("split.json"),
        serde_json::to_string_pretty(&json!({
            "seed": split.seed, "train_fraction": options.split.train,
            "validation_fraction": options.split.validation,
            "train": ids(&split.train), "validation": ids(&split.validation), "test": ids(&split.test),
        }))?
        .as_bytes(),
    )?;

    let log_path = out.join("respondents.jsonl");
    let finished = resume(&log_path)?;
    let todo: Vec<usize> = selected
        .iter()
        .enumerate()
        .filter(|(k, i)| k % shard_n == shard_k && !finished.contains(&survey.respondents[**i].id))
        .map(|(_, &i)| i)
        .collect();
    note(format_args!(
        "simulate: {} respondents × {} items of {} (shard {shard_k}/{shard_n}: {} to do) → {}",
        selected.len(),
        survey.codebook.items.len(),
        survey.codebook.name,
        todo.len(),
        out.display()
    ));
    let simulated = (|| -> Result<()> {
        if !todo.is_empty() {
            let model = options.model.load()?;
            let tokenizer = model.tokenizer()?;
            let simulator = Simulator {
                transformer: &model.transformer,
                tokenizer,
                temperatures: &options.temperatures,
                seed: options.seed,
            };
            let mut log = UnitLog::open(&log_path)?;
            let bar = progress_bar(todo.len() as u64, "simulate");
            let start = Instant::now();
            let mut tokens = 0usize;
            // a chunk holds whole respondents (about four batches' worth), logged when it finishes
            let per_batch = (4 * options.batch_size / survey.codebook.items.len()).max(1);
            for chunk in todo.chunks(per_batch) {
                let mut prompts = Vec::new();
                for &r in chunk {
                    let persona = options.persona.then(|| personas[r].as_deref()).flatten();
                    for item in &survey.codebook.items {
                        let text = item_prompt(persona, item)?;
                        let (_, ids) = encode_prompt(
                            tokenizer,
                            model.chat_template.as_ref(),
                            options.chat,
                            &text,
                        )?;
                        tokens += ids.len();
                        prompts.push(ItemPrompt {
                            key: format!("{}|{}", survey.respondents[r].id, item.column),
                            ids,
                            n_options: item.options.len(),
                        });
                    }
                }
                // one batch per core, each on single-threaded kernels (as `run-with-cache` does)
                let batches: Vec<&[ItemPrompt]> = prompts.chunks(options.batch_size).collect();
                let workers = probe_lm::parallel::workers_for(&model.transformer.device());
                let mut answers = Vec::with_capacity(prompts.len());
                for result in probe_lm::parallel::run_batches(batches.len(), workers, |i| {
                    simulator.answer(batches[i])
                }) {
                    answers.extend(result?);
                }
                for (&r, twin) in chunk
                    .iter()
                    .zip(answers.chunks(survey.codebook.items.len()))
                {
                    let respondent = &survey.respondents[r];
                    let items: Vec<Value> = survey
                        .codebook
                        .items
                        .iter()
                        .zip(twin)
                        .zip(&respondent.answers)
                        .map(|((item, a), real)| {
                            json!({"item": item.column, "real": real, "p": a.p,
                               "letter_mass": a.letter_mass, "sampled": a.sampled})
                        })
                        .collect();
                    log.append(&json!({
                        "key": respondent.id, "index": r, "split": names[r],
                        "persona": options.persona.then(|| personas[r].clone()).flatten(),
                        "items": items,
                    }))?;
                    bar.inc(1);
                }
                bar.set_message(format!(
                    "{:.0} prompt tok/s",
                    tokens as f64 / start.elapsed().as_secs_f64().max(1e-9)
                ));
            }
            bar.finish_and_clear();
            note(format_args!(
                "simulated {} respondents in {:.1} s ({:.0} prompt tokens/s)",
                todo.len(),
                start.elapsed().as_secs_f64(),
                tokens as f64 / start.elapsed().as_secs_f64().max(1e-9)
            ));
        }
        Ok(())
    })();
    if let Err(e) = simulated {
        if fresh && !log_path.exists() {
            for f in ["manifest.json", "split.json"] {
                let _ = std::fs::remove_file(out.join(f));
            }
            let _ = std::fs::remove_dir(&out); // only if empty
        }
        return Err(e);
    }

    let records = read_records(&log_path)?;
    let table = scores::Table::from_records(&survey, &records, &selected, &options.temperatures)?;
    let done = table.rows.len();
    if done < selected.len() {
        note(format_args!(
            "{done} of {} respondents simulated; scores follow when every shard is done",
            selected.len()
        ));
        return Ok(SimulateOutcome {
            dir: out,
            done,
            selected: selected.len(),
            scores: None,
        });
    }
    let baseline_tables = baselines::Baseline::ALL
        .iter()
        .map(|&b| baselines::baseline_table(&survey, &split, b, &table, options.seed))
        .collect::<Result<Vec<_>>>()?;
    let mut comparators: Vec<scores::Comparator> = baselines::Baseline::ALL
        .iter()
        .zip(&baseline_tables)
        .map(|(b, table)| scores::Comparator {
            name: b.name().into(),
            description: b.description().into(),
            table,
        })
        .collect();
    if let Some((name, t)) = &versus {
        comparators.push(scores::Comparator {
            name: name.clone(),
            description: format!(
                "another simulation of the same respondents ({})",
                options
                    .versus
                    .as_ref()
                    .map_or(String::new(), |d| d.display().to_string())
            ),
            table: t,
        });
    }
    let scores = scores::score(&survey, &table, &names, options, &stem, &comparators)?;
    // everything is computed and checked before the first output is written; the marker last
    let mut cells = String::new();
    for c in scores::cells(&survey, &scores, options, &stem)? {
        cells.push_str(&c.to_json().to_string());
        cells.push('\n');
    }
    // the report's own rules (finite estimates, ordered intervals, marginals summing to 1)
    // hold before anything is written
    probe_report::report::validate::scores(&scores, &out.join("scores.json"))?;
    table.write_answers(&survey, &names, &out.join("answers.csv"))?;
    probe_cache::write_atomic(&out.join("simulate.cells.jsonl"), cells.as_bytes())?;
    probe_schema::write(&out.join("scores.json"), &scores)?;
    probe_cache::mark_complete(
        &out,
        "simulate",
        &["answers.csv", "simulate.cells.jsonl", "scores.json"],
    )?;
    Ok(SimulateOutcome {
        dir: out,
        done,
        selected: selected.len(),
        scores: Some(scores),
    })
}

/// The table of another finished simulation (`--versus`) of the same respondents: same survey
/// data, split, selection and temperatures (its model and persona setting may differ).
fn versus_table(
    dir: &Path,
    survey: &Survey,
    settings: &Value,
    selected: &[usize],
    options: &SimulateOptions,
) -> Result<(String, scores::Table)> {
    let manifest = dir.join("manifest.json");
    let other: Value = serde_json::from_str(
        &std::fs::read_to_string(&manifest)
            .with_context(|| format!("--versus: reading {}", manifest.display()))?,
    )
    .with_context(|| format!("--versus: parsing {}", manifest.display()))?;
    let theirs = &other["settings"];
    for key in [
        "survey",
        "data",
        "split",
        "respondents",
        "limit",
        "temperatures",
    ] {
        if theirs[key] != settings[key] {
            bail!(
                "--versus {}: its `{key}` ({}) differs from this simulation's ({}): a paired comparison needs the same respondents and temperatures",
                dir.display(),
                theirs[key],
                settings[key]
            );
        }
    }
    let records = read_records(&dir.join("respondents.jsonl"))?;
    let table = scores::Table::from_records(survey, &records, selected, &options.temperatures)?;
    if table.rows.len() != selected.len() {
        bail!(
            "--versus {}: {} of {} respondents simulated; finish it first",
            dir.display(),
            table.rows.len(),
            selected.len()
        );
    }
    // its scores name the model as its folders do (with `+adapter`); else the model file
    let scored = dir
        .join("scores.json")
        .is_file()
        .then(|| probe_schema::read_in::<SimulationScores>(dir))
        .transpose()?;
    let model = scored.map(|s| s.model).unwrap_or_else(|| {
        Path::new(theirs["model"].as_str().unwrap_or("other"))
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("other")
            .to_string()
    });
    let persona = if theirs["persona"].as_bool() == Some(false) {
        "no persona"
    } else {
        "persona"
    };
    Ok((format!("{model} · {persona} (--versus)"), table))
}
