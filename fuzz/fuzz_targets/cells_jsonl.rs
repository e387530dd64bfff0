//! The cells JSONL reader (every distribution `compare` and `report` read), strict and
//! normalizing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use probe_data::cells::{read_jsonl_with, SumPolicy};

fuzz_target!(|data: &[u8]| {
    let path = probe_fuzz::scratch_file("cells.jsonl", data);
    for policy in [SumPolicy::Strict, SumPolicy::Normalize] {
        if let Ok((cells, _)) = read_jsonl_with(&path, policy) {
            let _ = probe_report::compare::join(&cells, &cells);
        }
    }
});
