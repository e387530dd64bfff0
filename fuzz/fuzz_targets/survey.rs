//! A respondent-level survey: the codebook TOML and its data file (the two parts of one input,
//! joined by `\n@@\n`), loaded and checked as `probe simulate` and `probe finetune` load them
//! (`Survey::load`), then split, checked for answered items and turned into personas.
#![no_main]

use libfuzzer_sys::fuzz_target;
use probe_data::survey::Survey;

fuzz_target!(|data: &[u8]| {
    let parts = probe_fuzz::parts(data, 2);
    probe_fuzz::scratch_file("survey.csv", parts[1]);
    let codebook = probe_fuzz::scratch_file("codebook.toml", parts[0]);
    let Ok(survey) = Survey::load(&codebook) else {
        return;
    };
    for r in &survey.respondents {
        let _ = survey.persona(r);
    }
    if let Ok(split) = survey.split(0, 0.7, 0.1) {
        let _ = survey.check_answered("train", &split.train);
        let _ = survey.check_answered("test", &split.test);
    }
});
