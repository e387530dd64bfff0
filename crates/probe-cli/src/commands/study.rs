//! `probe study <experiment.toml>`: extract → train → vectors → scale → eval → compare →
//! report for every model of an experiment file, then one cross-model report
//! (`probe::study`); each stage's command line is parsed and run in-process here.

use std::path::PathBuf;

use anyhow::Result;
use probe::study::{StageKind, StudyOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The experiment file (TOML; see examples/demo.toml).
    pub experiment: PathBuf,
    /// Run the stages up to this one (earlier ones reused when finished, run when not).
    #[arg(long, value_enum, default_value = "report")]
    pub stage: Stage,
    /// This job's slice k/n of the shardable stages (extract, scale, eval): the first
    /// unfinished stage up to --stage runs its shard, then the job stops. A final run
    /// without --shard merges.
    #[arg(long, default_value = "0/1")]
    pub shard: probe_cache::ShardSplit,
    /// Check the experiment file and print the plan, run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `--stage`: the library's stages as clap values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    Extract,
    Train,
    Vectors,
    Scale,
    Eval,
    Compare,
    Report,
}

impl Stage {
    fn kind(self) -> StageKind {
        match self {
            Stage::Extract => StageKind::Extract,
            Stage::Train => StageKind::Train,
            Stage::Vectors => StageKind::Vectors,
            Stage::Scale => StageKind::Scale,
            Stage::Eval => StageKind::Eval,
            Stage::Compare => StageKind::Compare,
            Stage::Report => StageKind::Report,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let options = StudyOptions {
        experiment: args.experiment.clone(),
        stage: args.stage.kind(),
        shard: args.shard,
    };
    if args.dry_run {
        for st in options.plan()?.1 {
            println!("{:<28} probe {}", st.id, st.argv().join(" "));
        }
        return Ok(());
    }
    let outcome = probe::study::run(&options)?;
    if args.stage == Stage::Report {
        println!(
            "report: {}",
            outcome.out.join("report").join("report.html").display()
        );
    }
    Ok(())
}
