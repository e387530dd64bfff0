//! `probe study` plans typed operations and prints each as a command line (dry run,
//! `study.log`, fingerprints). Here every planned line is parsed back by the CLI and must give
//! the planned options exactly: a flag the printer forgets, misnames or renders differently, or
//! a library default that drifts from the CLI's, fails.

use std::path::{Path, PathBuf};

use clap::Parser;
use probe::study::{StageOp, StudyOptions};
use probe_cli::{Cli, Command};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The options the CLI builds from a stage's printed command line.
fn parsed(argv: &[String]) -> StageOp {
    let cli = Cli::try_parse_from(std::iter::once("probe".to_string()).chain(argv.iter().cloned()))
        .unwrap_or_else(|e| panic!("`probe {}` does not parse: {e}", argv.join(" ")));
    match cli.command {
        Command::Extract(a) => StageOp::Extract(a.options().unwrap()),
        Command::Train(a) => StageOp::Train(a.options().unwrap()),
        Command::Vectors(a) => StageOp::Vectors(a.options().unwrap()),
        Command::Scale(a) => StageOp::Scale(a.options().unwrap()),
        Command::Eval(a) => StageOp::Eval(a.options().unwrap()),
        Command::Compare(a) => StageOp::Compare(a.request().unwrap()),
        Command::Report(a) => StageOp::Report(a.request()),
        _ => panic!("`probe {}` is not a study stage", argv.join(" ")),
    }
}

fn check(experiment: &Path) -> usize {
    let (_, stages) = StudyOptions::new(experiment).plan().unwrap();
    for st in &stages {
        let argv = st.argv();
        let planned = format!("{:#?}", st.op);
        let back = format!("{:#?}", parsed(&argv));
        assert_eq!(
            planned,
            back,
            "stage {} printed as `probe {}` parses to other options",
            st.id,
            argv.join(" ")
        );
    }
    stages.len()
}

#[test]
fn every_planned_stage_prints_as_the_command_line_of_its_options() {
    std::env::set_current_dir(root()).unwrap();
    assert_eq!(check(Path::new("examples/demo.toml")), 8);
}

/// An experiment that sets what the examples leave at defaults: a base model with its own
/// tokenizer and dtype, an OpinionQA set with attributes, question ids and a limit, a survey
/// with attributes and a built-in election, report formats.
#[test]
fn options_the_examples_leave_at_defaults_print_too() {
    let dir = std::env::temp_dir().join(format!("probe-study-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = root().canonicalize().unwrap();
    let opinionqa = dir.join("opinionqa");
    std::fs::create_dir_all(&opinionqa).unwrap();
    std::fs::write(opinionqa.join("POLIDEOLOGY_data.json"), b"{}").unwrap();
    // planning reads no model: files that exist where the experiment check looks are enough
    let model = dir.join("model.gguf");
    std::fs::write(&model, b"GGUF").unwrap();
    let tokenizer = dir.join("tokenizer.json");
    std::fs::write(&tokenizer, b"{}").unwrap();
    let toml = format!(
        r#"
name = "every option"
out = "{out}"
device = "cpu"
dtype = "f32"

[[model]]
path = "{model}"
label = "base-model"
kind = "base"
family = "f"
tokenizer = "{tokenizer}"
dtype = "native"

[election]
dir = "{root}/data/demo/wahl-o-mat/2099-demowahl"
parties = ["SA", "FB"]

[probes]
layers = [0.5, 1.0]
positions = "prompt-mean"
dtype = "f16"
shard_size = 64
batch_size = 4
folds = 4
k = 7

[personas]
spec = "{root}/data/personas/paper-grid.toml"
templates = "{root}/data/personas/prompts.toml"
where = ["age=18-24,25-34"]
select = "joint"
negative = "clip"
shard_size = 99

[[eval]]
name = "oqa"
opinionqa = "{oqa}"
attributes = ["POLIDEOLOGY"]
question_ids = ["Q1", "Q2"]
limit = 3
methods = ["logp"]
steering = ["persona"]
n = 5
temperature = [0.5, 1.5]
shots = 2

[[eval]]
vote = true
methods = ["sample"]
steering = ["none"]

[survey]
csv = "{root}/data/demo/survey.csv"
weight = "weight"
attributes = ["age", "education"]
election = "btw2021"

[report]
metrics = ["js"]
bootstrap = 50
formats = ["svg"]
notes = ["a", "b"]
"#,
        out = dir.join("out").display(),
        root = root.display(),
        oqa = opinionqa.display(),
        model = model.display(),
        tokenizer = tokenizer.display(),
    );
    let file = dir.join("every.toml");
    std::fs::write(&file, toml).unwrap();
    assert_eq!(check(&file), 8);
    std::fs::remove_dir_all(&dir).ok();
}
