//! The JSON files of a run that `probe report` draws, checked for meaning: one input is tried
//! as `psi.json`, `scores.json`, `probes.json` and `vectors.json` (the validators the writers
//! share), then as a run folder's `scale-x/psi.json`, `vectors/vectors.json` and (with its
//! completion marker) `simulate-x/scores.json` read by `load_run`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use probe_report::report::validate;

fuzz_target!(|data: &[u8]| {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) {
        let file = std::path::Path::new("x.json");
        let _ = validate::psi(&json, file);
        let _ = validate::scores(&json, file);
        let _ = validate::probes(&json, file);
        let _ = validate::vectors(&json, file);
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
