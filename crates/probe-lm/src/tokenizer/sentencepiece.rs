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
