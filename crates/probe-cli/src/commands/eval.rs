//! `probe eval`: prompt-based answer distributions (log-p, samples, sequence, verbalized) under
//! no / persona / few-shot steering, per question and group, as `probe compare` cells.
//! Resumable (`units.jsonl`), shardable (`--shard k/n`).

use probe_eval::prompts::{Method, Steering};
use probe_eval::run::EvalParams;
use std::path::PathBuf;

use anyhow::{bail, Result};
use probe::eval::{EvalOptions, QuestionSource, VoteQuestion};

use super::report::SurveyArgs;
use crate::common::{ModelArgs, PersonaArgs};

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
    /// Refuse a --shots-from source any of whose group distributions is within this total
    /// variation of a scored group's: a rounded, reweighted or re-aggregated copy of the
    /// scored vote (e.g. vote recall from the same election's survey) is still the answer.
    #[arg(long, default_value_t = probe_eval::questions::DEFAULT_LEAK_TOLERANCE)]
    pub leak_tolerance: f64,
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
    pub methods: Vec<Method>,
    /// Steerings: none, persona, fewshot.
    #[arg(long, value_delimiter = ',', default_value = "none,persona,fewshot")]
    pub steering: Vec<Steering>,
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
    /// Few-shot examples per prompt, chosen by probe's `nearest-spread` rule: among the
    /// questions most similar by --similarity, greedily those whose distributions differ most,
    /// starting from the most similar (like the benchmark's App. A.8 in spirit; not its
    /// sentence-embedding similarity).
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
    pub shard: probe_cache::ShardSplit,
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

impl Args {
    pub fn options(&self) -> Result<EvalOptions> {
        let questions = match (&self.opinionqa, &self.questions, &self.vote) {
            (Some(dir), None, None) => QuestionSource::OpinionQa {
                dir: dir.clone(),
                attributes: self.attribute.clone(),
            },
            (None, Some(path), None) => QuestionSource::Questions(path.clone()),
            (None, None, Some(election)) => QuestionSource::Vote(Box::new(VoteQuestion {
                election: election.clone(),
                parties: self.parties.clone(),
                personas: self.grid.selection(),
                persona_sample: self.persona_sample,
                survey: self.survey.source(),
                shots_from: self.shots_from.clone(),
                leak_tolerance: self.leak_tolerance,
            })),
            _ => bail!(
                "give one question set: --opinionqa <dir>, --questions <file.jsonl> or --vote <election dir>"
            ),
        };
        Ok(EvalOptions {
            model: self.model.spec()?,
            questions,
            question_ids: self.question_ids.clone(),
            limit: self.limit,
            params: EvalParams {
                methods: self.methods.clone(),
                steerings: self.steering.clone(),
                n: self.n,
                temperatures: self.temperature.clone(),
                top_p: self.top_p,
                shots: self.shots,
                retries: self.retries,
                batch_size: self.batch_size,
                seed: self.seed,
                chat: !self.no_chat,
                shard: self.shard,
            },
            similarity: match self.similarity {
                Similarity::Auto => probe::eval::Similarity::Auto,
                Similarity::Given => probe::eval::Similarity::Given,
                Similarity::Tfidf => probe::eval::Similarity::Tfidf,
                Similarity::Model => probe::eval::Similarity::Model,
            },
            prompts: self.prompts.clone(),
            run: self.run.clone(),
            probes_dir: self.probes_dir.clone(),
            out: self.out.clone(),
            overwrite: self.overwrite,
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    let outcome = probe::eval::eval(&args.options()?)?;
    if let Some(scores) = &outcome.scores {
        print!("{scores}");
    }
    Ok(())
}
