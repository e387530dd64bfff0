//! The voting question of `eval`: the election's parties as options, the personas of the
//! grid as groups, few-shot examples from another election or survey (never the scored one).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use probe_data::cells::Cell;
use probe_eval::prompts::{Steering, Templates};
use probe_eval::questions::QuestionSet;
use probe_eval::run::EvalParams;

use crate::personas::PersonaSelection;
use crate::progress::note;
use crate::survey::SurveySource;

/// The voting question's election, personas, scored survey and few-shot source.
#[derive(Debug, Clone)]
pub struct VoteQuestion {
    /// A Wahl-o-Mat election directory: its parties are the options.
    pub election: PathBuf,
    /// Parties (default: the election's six Bundestag parties).
    pub parties: Vec<String>,
    pub personas: PersonaSelection,
    /// A seeded random subset of N personas.
    pub persona_sample: Option<usize>,
    /// The survey (or election result) the cells are scored against.
    pub survey: SurveySource,
    /// The few-shot examples' source: a respondent CSV or a built-in result; never the
    /// scored survey.
    pub shots_from: Option<String>,
    /// A few-shot source any of whose group distributions is within this TV of a scored
    /// group's is refused as a copy of the target.
    pub leak_tolerance: f64,
}

impl VoteQuestion {
    pub fn new(election: impl Into<PathBuf>) -> Self {
        VoteQuestion {
            election: election.into(),
            parties: Vec::new(),
            personas: PersonaSelection::default(),
            persona_sample: None,
            survey: SurveySource::default(),
            shots_from: None,
            leak_tolerance: probe_eval::questions::DEFAULT_LEAK_TOLERANCE,
        }
    }

    /// The question set (and the reference it is scored against).
    pub fn question_set(
        &self,
        templates: &Templates,
        prompts_path: &Path,
        params: &EvalParams,
    ) -> Result<(QuestionSet, Option<probe_report::report::Reference>)> {
        let args = self;
        let election = self.election.as_path();
        let loaded = probe_data::wahl_o_mat::Election::load(election)?;
        let parties: Vec<String> = loaded
            .select_parties(&args.parties)?
            .into_iter()
            .map(probe_data::wahl_o_mat::Election::display_name)
            .collect();
        let spec = args.personas.load_spec()?;
        let mut personas = args.personas.select(&spec)?;
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
            if Path::new(source).is_file() {
                (shots_args.survey, shots_args.election) = (Some(source.into()), None);
            } else {
                (shots_args.survey, shots_args.election) = (None, Some(source.clone()));
            }
            let shots = shots_args
                .reference(Some(&parties), None)?
                .with_context(|| format!("--shots-from {source}: no distributions"))?;
            let scored: &[Cell] = reference.as_ref().map_or(&[], |r| &r.cells);
            let name = Path::new(source)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(source);
            set.set_shot_scopes(
                &shots.cells,
                scored,
                name,
                &spec,
                language,
                args.leak_tolerance,
            )?;
            if !set.scopes.iter().any(|s| s.attribute != "all") {
                bail!("--shots-from {source} has no groups (attribute/value) to show as few-shot examples");
            }
        }
        note(format_args!(
        "voting question: {} parties ({}), {} personas, {} groups of another survey for few-shot examples",
        parties.len(),
        parties.join(", "),
        personas.len(),
        set.scopes.len().saturating_sub(1)
    ));
        Ok((set, reference))
    }
}
