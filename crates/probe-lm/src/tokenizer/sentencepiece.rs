//! Gemma's SentencePiece vocabulary as llama.cpp stores it (`tokenizer.ggml.model` = `llama`:
//! pieces, scores, types, no merges), rebuilt as transformers rebuilds it from a GGUF
//! (`integrations/gguf/gguf_tokenizer_mapping.py`, `gemma_tokenizer`), so `probe` tokenizes a
//! lone Gemma GGUF exactly as `AutoTokenizer.from_pretrained(..., gguf_file=...)` does:
//!
//! * pieces made only of spaces are stored as spaces, but looked up as `▁` runs: respelled;
//! * the merges are recovered from the vocabulary: every split of a piece into two pieces, the
//!   earlier piece in the file merging first (Gemma's scores do not follow its merge order);
//! * BPE with byte fallback, spaces normalised to `▁`, no prefix space.

use std::collections::HashMap;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{DecoderWrapper, SplitDelimiterBehavior};

use super::tok_err;
use crate::error::Result;

const SPACE: char = '▁';

/// A piece as the tokenizer looks it up: a run of spaces becomes a run of `▁`.
pub(super) fn respell(piece: &str) -> String {
    if piece.contains(' ') && piece.trim().is_empty() {
        SPACE.to_string().repeat(piece.chars().count())
    } else {
        piece.to_string()
    }
}

/// Recovering merges tries every split of every piece: Σ len² work. Gemma 3's 262k pieces of
/// at most 48 bytes cost ~3e7; a file whose pieces would cost more than this is refused
/// rather than left to run for hours.
const MERGE_WORK_LIMIT: u64 = 2_000_000_000;

/// llama.cpp's token types of a SentencePiece vocabulary.
const TYPE_NORMAL: u64 = 1;
const TYPE_BYTE: u64 = 6;

/// The most normal pieces (per thousand) that may lack a split into two pieces of the
/// vocabulary: a BPE vocabulary builds every piece by a merge, and Gemma 3's 255,474 normal
/// pieces all split; a corrupted vocabulary (pieces with flipped bytes) does not.
const UNSPLITTABLE_PER_MILLE: usize = 1;

/// Consistency of a SentencePiece vocabulary as a GGUF stores it, before anything is built
/// from it: one type and one finite score per piece, no piece twice, the 256 byte-fallback
/// pieces `<0x00>`…`<0xFF>` typed as bytes, and the normal pieces splittable into two pieces
/// (what the merges are recovered from). A vocabulary that fails would tokenize text into
/// other, usually many more, ids with no other sign.
pub(super) fn check_vocabulary(
    pieces: &[String],
    types: Option<&[u64]>,
    scores: Option<&[f64]>,
) -> Result<()> {
    let n = pieces.len();
    if let Some(types) = types.filter(|t| t.len() != n) {
        return Err(tok_err(format!(
            "tokenizer.ggml.token_type has {} entries for {n} tokens",
            types.len()
        )));
    }
    if let Some(scores) = scores {
        if scores.len() != n {
            return Err(tok_err(format!(
                "tokenizer.ggml.scores has {} entries for {n} tokens",
                scores.len()
            )));
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(tok_err(format!(
                "tokenizer.ggml.scores[{i}] (piece `{}`) is {}, not a finite score",
                pieces[i], scores[i]
            )));
        }
    }
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(n);
    for (id, piece) in pieces.iter().enumerate() {
        if let Some(earlier) = first.insert(piece, id) {
            // transformers keeps the last id of a repeated piece: only a few are tolerated in
            // real files, so a repeat is reported with where both are
            if types.is_some_and(|t| t[id] == TYPE_NORMAL && t[earlier] == TYPE_NORMAL) {
                return Err(tok_err(format!(
                    "piece `{piece}` is token {earlier} and token {id}: a corrupted vocabulary?"
                )));
            }
        }
    }
    let Some(types) = types else { return Ok(()) };
    for byte in 0..=255u8 {
        let piece = format!("<0x{byte:02X}>");
        match first.get(piece.as_str()) {
            Some(&id) if types[id] == TYPE_BYTE => {}
            Some(&id) => {
                return Err(tok_err(format!(
                    "byte-fallback piece `{piece}` (token {id}) has token type {}, not {TYPE_BYTE} (byte)",
                    types[id]
                )))
            }
            // a vocabulary without byte fallback has none of them
            None if byte == 0 => break,
            None => {
                return Err(tok_err(format!(
                    "byte-fallback piece `{piece}` is missing (the vocabulary has `<0x00>`)"
                )))
            }
        }
    }
    let normal: Vec<usize> = (0..n)
        .filter(|&i| types[i] == TYPE_NORMAL && pieces[i].chars().count() >= 2)
        .collect();
    let unsplittable: Vec<usize> = normal
        .iter()
        .copied()
        .filter(|&i| {
            let p = pieces[i].as_str();
            !p.char_indices()
                .skip(1)
                .any(|(k, _)| first.contains_key(&p[..k]) && first.contains_key(&p[k..]))
        })
        .collect();
    if unsplittable.len() * 1000 > normal.len() * UNSPLITTABLE_PER_MILLE {
        let examples: Vec<String> = unsplittable
            .iter()
            .take(5)
            .map(|&i| format!("{i} `{}`", pieces[i]))
            .collect();
        return Err(tok_err(format!(
            "{} of {} normal pieces cannot be split into two pieces of the vocabulary (a BPE vocabulary builds each by a merge; e.g. tokens {}): the vocabulary is corrupted",
            unsplittable.len(),
            normal.len(),
            examples.join(", ")
        )));
    }
    Ok(())
}

/// The BPE tokenizer of Gemma's pieces (respelled, in file order).
pub(super) fn gemma_tokenizer(pieces: &[String]) -> Result<tokenizers::Tokenizer> {
    let work: u64 = pieces.iter().map(|p| (p.len() as u64).pow(2)).sum();
    if work > MERGE_WORK_LIMIT {
        let longest = pieces.iter().map(String::len).max().unwrap_or(0);
        return Err(tok_err(format!(
            "the SentencePiece vocabulary's pieces are too long to recover merges from \
             ({} pieces, the longest {longest} bytes)",
            pieces.len()
        )));
    }
    // A piece listed twice keeps its last id (a Python dict built in file order), but its
    // first place in the order the merges are collected in.
    let mut vocab: HashMap<&str, u32> = HashMap::with_capacity(pieces.len());
    let mut order: Vec<&str> = Vec::with_capacity(pieces.len());
    for (id, piece) in pieces.iter().enumerate() {
        if vocab.insert(piece, id as u32).is_none() {
            order.push(piece);
        }
    }
    let merges = recover_merges(&order, &vocab);
    let bpe = BPE::builder()
        .vocab_and_merges(
            vocab
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<tokenizers::models::bpe::Vocab>(),
            merges,
        )
        .unk_token("<unk>".into())
        .fuse_unk(true)
        .byte_fallback(true)
        .build()
        .map_err(tok_err)?;
    let mut tokenizer = tokenizers::Tokenizer::new(bpe);
    tokenizer.with_normalizer(Some(Replace::new(" ", SPACE.to_string()).map_err(tok_err)?));
    // transformers' GemmaTokenizer splits on " ", which the normaliser has already replaced:
    // kept for the same pipeline, a no-op on normalised text
    tokenizer.with_pre_tokenizer(Some(
        Split::new(
            SplitPattern::String(" ".into()),
            SplitDelimiterBehavior::MergedWithPrevious,
            false,
        )
        .map_err(tok_err)?,
    ));
    tokenizer.with_decoder(Some(DecoderSequence::new(vec![
        DecoderWrapper::Replace(Replace::new(SPACE.to_string(), " ").map_err(tok_err)?),
        DecoderWrapper::ByteFallback(ByteFallback::new()),
        DecoderWrapper::Fuse(Fuse::new()),
    ])));
    Ok(tokenizer)
}

/// transformers' `generate_merges` with file positions as scores: for each piece, every split
/// into two pieces (ordered by their ids), then all of them ranked by the piece's position,
/// longer left and then longer right halves first among equals; a stable sort otherwise keeps
/// the order of collection.
fn recover_merges(order: &[&str], vocab: &HashMap<&str, u32>) -> Vec<(String, String)> {
    struct Merge<'a> {
        left: &'a str,
        right: &'a str,
        rank: u32,
        left_chars: usize,
        right_chars: usize,
    }
    let mut merges: Vec<Merge<'_>> = Vec::new();
    for &piece in order {
        let rank = vocab[piece];
        let start = merges.len();
        for (at, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(at);
            if vocab.contains_key(left) && vocab.contains_key(right) {
                merges.push(Merge {
                    left,
                    right,
                    rank,
                    left_chars: left.chars().count(),
                    right_chars: right.chars().count(),
                });
            }
        }
        merges[start..].sort_by_key(|m| (vocab[m.left], vocab[m.right]));
    }
    // score −position, descending: the earliest piece first
    merges.sort_by(|a, b| {
        a.rank
            .cmp(&b.rank)
            .then(b.left_chars.cmp(&a.left_chars))
            .then(b.right_chars.cmp(&a.right_chars))
    });
    merges
        .into_iter()
        .map(|m| (m.left.to_string(), m.right.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy SentencePiece vocabulary: control pieces, the 256 byte pieces, then normal
    /// pieces that each split into two earlier ones.
    fn vocabulary() -> (Vec<String>, Vec<u64>, Vec<f64>) {
        let mut pieces: Vec<String> = ["<pad>", "<eos>", "<bos>"].map(String::from).to_vec();
        let mut types = vec![3, 3, 3];
        for b in 0..=255u8 {
            pieces.push(format!("<0x{b:02X}>"));
            types.push(TYPE_BYTE);
        }
        let normal = ["a", "b", "c", "▁", "ab", "bc", "abc", "▁a", "▁ab", "▁abc"];
        for p in normal {
            pieces.push(p.to_string());
            types.push(TYPE_NORMAL);
        }
        let scores = (0..pieces.len()).map(|i| -(i as f64)).collect();
        (pieces, types, scores)
    }

    #[test]
    fn a_consistent_vocabulary_passes_and_corruptions_are_named() {
        let (pieces, types, scores) = vocabulary();
        check_vocabulary(&pieces, Some(&types), Some(&scores)).unwrap();
        // a piece whose bytes were flipped no longer splits into two pieces
        let mut bad = pieces.clone();
        let at = bad.iter().position(|p| p == "▁abc").unwrap();
        bad[at] = "▁aqc".into();
        let e = check_vocabulary(&bad, Some(&types), Some(&scores))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1 of 6 normal pieces") && e.contains("▁aqc"),
            "{e}"
        );
        // a corrupted piece that equals another one
        let mut bad = pieces.clone();
        bad[at] = "abc".into();
        let e = check_vocabulary(&bad, Some(&types), Some(&scores))
            .unwrap_err()
            .to_string();
        assert!(e.contains("piece `abc`"), "{e}");
        // a byte piece with another type, a missing byte piece, a NaN score, short arrays
        let mut t = types.clone();
        t[3 + 0x41] = TYPE_NORMAL;
        let e = check_vocabulary(&pieces, Some(&t), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("<0x41>"), "{e}");
        let mut bad = pieces.clone();
        bad[3 + 0x7f] = "x".into();
        let e = check_vocabulary(&bad, Some(&types), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("<0x7F>") && e.contains("missing"), "{e}");
        let mut s = scores.clone();
        s[5] = f64::NAN;
        let e = check_vocabulary(&pieces, None, Some(&s))
            .unwrap_err()
            .to_string();
        assert!(e.contains("scores[5]"), "{e}");
        let e = check_vocabulary(&pieces, Some(&types[1..]), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("token_type"), "{e}");
    }

    #[test]
    fn runs_of_spaces_are_respelled() {
        assert_eq!(respell("   "), "▁▁▁");
        assert_eq!(respell("a b"), "a b");
        assert_eq!(respell("\n\n"), "\n\n");
    }

    #[test]
    fn a_vocabulary_of_huge_pieces_is_refused_not_ground_through() {
        let pieces = vec!["x".repeat(50_000); 1000];
        let err = gemma_tokenizer(&pieces).unwrap_err().to_string();
        assert!(err.contains("too long"), "{err}");
    }

    #[test]
    fn earlier_pieces_merge_first() {
        // "ab" is listed before "bc": in "abc", a+b merges first though b+c would too
        let pieces: Vec<String> = ["<unk>", "a", "b", "c", "ab", "bc", "abc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let tokenizer = gemma_tokenizer(&pieces).unwrap();
        let ids = tokenizer.encode("abc", false).unwrap().get_ids().to_vec();
        assert_eq!(ids, vec![6]);
        let ids = tokenizer.encode("bca", false).unwrap().get_ids().to_vec();
        assert_eq!(ids, vec![5, 1]);
        assert_eq!(tokenizer.decode(&[4, 3], false).unwrap(), "abc");
    }
}
