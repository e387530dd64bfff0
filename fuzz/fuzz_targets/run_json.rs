//! The JSON files of a run that `probe report` draws, read by their schemas and checked for
//! meaning: one input is tried as `psi.json`, `scores.json`, `probes.json` and `vectors.json`
//! (the schema types and the validators the writers share), then as a run folder's `scale-x/psi.json`, `vectors/vectors.json` and (with its
//! completion marker) `simulate-x/scores.json` read by `load_run`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use probe_report::report::validate;
use probe_schema::{from_text, probes, psi, simulation, vectors};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let file = std::path::Path::new("x.json");
        if let Ok(json) = from_text::<psi::Summary>(text, file) {
            let _ = validate::psi(&json, file);
        }
        if let Ok(json) = from_text::<simulation::SimulationScores>(text, file) {
            let _ = validate::scores(&json, file);
        }
        if let Ok(json) = from_text::<probes::ProbesJson>(text, file) {
            let _ = validate::probes(&json, file);
        }
        if let Ok(json) = from_text::<vectors::VectorsJson>(text, file) {
            let _ = validate::vectors(&json, file);
        }
    }
    let run = probe_fuzz::scratch().join("run");
    let _ = std::fs::remove_dir_all(&run);
    for (dir, name) in [
        ("scale-x", "psi.json"),
        ("simulate-x", "scores.json"),
        ("vectors", "vectors.json"),
    ] {
        std::fs::create_dir_all(run.join(dir)).expect("run folder");
        std::fs::write(run.join(dir).join(name), data).expect("file");
    }
    std::fs::write(run.join("simulate-x").join("complete.json"), "{}").expect("marker");
    let _ = probe_report::report::load_run(&run);
});
