//! The tokenizer (and chat template) rebuilt from GGUF metadata, then used: encode, decode,
//! render a conversation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use probe_lm::weights::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    let path = probe_fuzz::scratch_file("tok.gguf", data);
    let Ok(file) = GgufFile::open(&path) else {
        return;
    };
    if let Ok(tok) = probe_lm::Tokenizer::from_gguf(&file) {
        if let Ok(ids) = tok.encode("Hallo Welt, wie geht's? 123 äöü\n\t<|im_start|>") {
            let _ = tok.decode(&ids, true);
            let _ = tok.decode(&ids, false);
        }
        let _ = tok.encode_continuation(" SPD");
    }
    if let Some(src) = file
        .meta("tokenizer.chat_template")
        .and_then(|v| v.as_str())
    {
        let template = probe_lm::ChatTemplate::new(src.to_string(), "<s>".into(), "</s>".into());
        let _ = template.render(
            &[
                probe_lm::Message::new("system", "Du bist 45."),
                probe_lm::Message::new("user", "Wie wählst du?"),
            ],
            true,
        );
    }
});
