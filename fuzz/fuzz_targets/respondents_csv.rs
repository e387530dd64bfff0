//! A respondent CSV as `probe compare --survey` and `probe report --survey` read it: answers,
//! weights and grouping attributes (`read_respondents`), then the weighted reference cells.
#![no_main]

use libfuzzer_sys::fuzz_target;
use probe_data::respondents::{read_respondents, RespondentOptions};

fuzz_target!(|data: &[u8]| {
    let path = probe_fuzz::scratch_file("respondents.csv", data);
    let mut options = RespondentOptions::new("vote");
    options.weight = Some("weight".into());
    let Ok(r) = read_respondents(&path, &options) else {
        return;
    };
    let answers = r.answers();
    let _ = r.reference_cells(&answers, &Default::default());
    let _ = r.scope_units(&answers);
});
