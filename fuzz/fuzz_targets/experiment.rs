//! The experiment file of `probe study` (TOML), parsed and checked as `probe study --dry-run`
//! does (`probe::study::Experiment::load`, including the contents of every file it names).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = probe_fuzz::scratch_file("experiment.toml", data);
    let _ = probe::study::Experiment::load(&path);
});
