//! `probe`: latent-space interpretability of language models for survey simulation.
//! This file only parses arguments and dispatches; each subcommand lives in `commands/`.

// Forward passes allocate and free many large activation buffers; glibc returns them to the
// kernel and page-faults them back in on every op, which mimalloc avoids.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod commands;
mod common;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "probe", version, about = "Latent-space interpretability of LLMs for survey simulation", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a model's architecture, layers, hook points, dtypes and parameter count.
    Inspect(commands::inspect::Args),
    /// Continue a prompt (greedy or sampled) with a KV cache.
    Generate(commands::generate::Args),
    /// Run prompts through a model and save hooked activations to safetensors.
    RunWithCache(commands::run_with_cache::Args),
    /// Download datasets (Wahl-o-Mat elections) for users with internet.
    Data(commands::data::Args),
    /// Cache residual streams of Wahl-o-Mat probe prompts (resumable, shardable).
    Extract(commands::extract::Args),
    /// Train per-party probes (party vs rest) on a residual cache, extracting it first if needed.
    Train(commands::train::Args),
    /// Rank each party's MLP value vectors by cosine with its probe; show the tokens they promote.
    Vectors(commands::vectors::Args),
    /// Persona scaling factors and party distributions ψ from the parties' value vectors.
    Scale(commands::scale::Args),
    /// Prompt-based answer distributions: log-p, samples, sequences, verbalized JSON under no / persona / few-shot steering.
    Eval(Box<commands::eval::Args>),
    /// Compare model distributions with survey references: metrics by group, bootstrap CIs.
    Compare(commands::compare::Args),
    /// Report: figures and tables of every distribution in run directories against a survey (HTML, Markdown, SVG, JSON).
    Report(commands::report::Args),
}

fn main() {
    // Keep freed activation memory mapped instead of handing it back to the kernel after
    // every op; re-faulting it cost ~6% of a forward pass (zeroed pages in the profile).
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: single-threaded at this point; nothing else reads the environment yet.
        unsafe { std::env::set_var("MIMALLOC_PURGE_DELAY", "-1") };
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Generate(args) => commands::generate::run(args),
        Command::RunWithCache(args) => commands::run_with_cache::run(args),
        Command::Eval(args) => commands::eval::run(*args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Extract(args) => commands::extract::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Data(args) => commands::data::run(args),
        Command::Vectors(args) => commands::vectors::run(args),
        Command::Scale(args) => commands::scale::run(args),
    };
    if let Err(err) = result {
        // One line, outermost context first: "error: loading model x: missing tensor `y` in z".
        let chain: Vec<String> = err.chain().map(|c| c.to_string()).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(1);
    }
}
