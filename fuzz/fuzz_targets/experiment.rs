//! The experiment file of `probe study` (TOML), parsed and checked as `probe study --dry-run`
//! does. The module is the CLI's own file, included by path (the CLI is a binary crate).
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/probe-cli/src/commands/study/experiment.rs"]
mod experiment;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = probe_fuzz::scratch_file("experiment.toml", data);
    let _ = experiment::Experiment::load(&path);
});
