//! The Wahl-o-Mat (qual-o-mat layout) election loader: one input is the six JSON files of an
//! election directory, separated by `\n@@\n`.
#![no_main]

use libfuzzer_sys::fuzz_target;

const FILES: [&str; 6] = [
    "overview.json",
    "party.json",
    "statement.json",
    "answer.json",
    "opinion.json",
    "comment.json",
];

fuzz_target!(|data: &[u8]| {
    let dir = probe_fuzz::scratch().join("election");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in FILES.iter().zip(probe_fuzz::parts(data, FILES.len())) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    if let Ok(election) = probe_data::wahl_o_mat::Election::load(&dir) {
        let _ = election.select_parties(&[]);
    }
});
