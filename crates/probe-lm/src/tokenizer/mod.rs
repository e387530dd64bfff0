//! Tokenizers from `tokenizer.json` or from GGUF metadata (`tokenizer.ggml.*`), so a lone
//! `.gguf` file is a complete model.

use std::path::Path;

use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

use crate::error::{Error, Result};
use crate::weights::gguf::GgufFile;

mod sentencepiece;

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_CONTROL: u64 = 3;
const TOKEN_TYPE_USER_DEFINED: u64 = 4;

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The GGUF pre-tokenizer names probe can rebuild.
pub const SUPPORTED_GGUF_PRE: &str = "default, gpt2, gpt-2, smollm, llama3, llama-bpe, qwen2";

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos_token_id: Option<u32>,
    eos_token_ids: Vec<u32>,
    /// Whether `encode` prepends BOS itself (GGUF `add_bos_token`); for `tokenizer.json` the
    /// file's own post-processor decides.
    prepend_bos: bool,
    pad_token_id: Option<u32>,
}

fn tok_err(e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(e.to_string())
}

impl Tokenizer {
    /// Loads an HF `tokenizer.json`; BOS/EOS/pad ids come from `tokenizer_config.json` beside
    /// it when present.
    pub fn from_file(path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        let config = path
            .parent()
            .map(|d| d.join("tokenizer_config.json"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let token_id = |key: &str| -> Option<u32> {
            let v = config.as_ref()?.get(key)?;
            let text = v.as_str().or_else(|| v.get("content")?.as_str())?;
            inner.token_to_id(text)
        };
        Ok(Tokenizer {
            bos_token_id: token_id("bos_token"),
            eos_token_ids: token_id("eos_token").into_iter().collect(),
            pad_token_id: token_id("pad_token"),
            prepend_bos: false,
            inner,
        })
    }

    /// Rebuilds the byte-level BPE tokenizer stored in GGUF metadata; errors name the file.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        Self::from_gguf_metadata(file).map_err(|e| match e {
            Error::Tokenizer(m) => Error::Tokenizer(format!("{}: {m}", file.path().display())),
            other => other,
        })
    }

    fn from_gguf_metadata(file: &GgufFile) -> Result<Self> {
        let model = file.meta_str("tokenizer.ggml.model")?;
        let arch = file.meta_str("general.architecture").unwrap_or_default();
        let sentencepiece = model == "llama" && matches!(arch, "gemma" | "gemma2" | "gemma3");
        if model != "gpt2" && !sentencepiece {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer model `{model}` of a `{arch}` model is not supported yet \
                 (supported: gpt2 byte-level BPE, Gemma's SentencePiece); put the model's \
                 tokenizer.json next to the file and pass --tokenizer"
            )));
        }
        let tokens = file
            .meta_required("tokenizer.ggml.tokens")?
            .as_array()
            .ok_or_else(|| tok_err("tokenizer.ggml.tokens is not an array"))?;
        let mut strings = Vec::with_capacity(tokens.len());
        for (id, t) in tokens.iter().enumerate() {
            let s = t
                .as_str()
                .ok_or_else(|| tok_err(format!("token {id} is not a string")))?;
            strings.push(if sentencepiece {
                sentencepiece::respell(s)
            } else {
                s.to_string()
            });
        }
        let mut inner = if sentencepiece {
            let types: Option<Vec<u64>> = file
                .meta("tokenizer.ggml.token_type")
                .and_then(|t| t.as_array())
                .map(|t| t.iter().map(|v| v.as_u64().unwrap_or(u64::MAX)).collect());
            let scores: Option<Vec<f64>> = file
                .meta("tokenizer.ggml.scores")
                .and_then(|t| t.as_array())
                .map(|t| t.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect());
            sentencepiece::check_vocabulary(&strings, types.as_deref(), scores.as_deref())?;
            sentencepiece::gemma_tokenizer(&strings)?
        } else {
            byte_level_bpe(file, &strings)?
        };

        // Control tokens (<|im_start|>, <|endoftext|>, ...) must match as wholes in text.
        if let Some(types) = file
            .meta("tokenizer.ggml.token_type")
            .and_then(|t| t.as_array())
        {
            if types.len() != strings.len() {
                return Err(tok_err(format!(
                    "tokenizer.ggml.token_type has {} entries for {} tokens",
                    types.len(),
                    strings.len()
                )));
            }
            let mut special = Vec::new();
            let mut user = Vec::new();
            for (id, ty) in types.iter().enumerate() {
                let piece = strings[id].as_str();
                match ty.as_u64() {
                    Some(TOKEN_TYPE_CONTROL) => special.push(AddedToken::from(piece, true)),
                    // matched in the raw text, as llama.cpp and transformers do
                    Some(TOKEN_TYPE_USER_DEFINED) if inner.token_to_id(piece).is_some() => {
                        user.push(AddedToken::from(piece, false).normalized(false))
                    }
                    _ => {}
                }
            }
            inner.add_special_tokens(&special);
            inner.add_tokens(&user);
        }
        let id = |key: &str| file.meta(key).and_then(|v| v.as_u64()).map(|v| v as u32);
        for key in [
            "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.padding_token_id",
            "tokenizer.ggml.unknown_token_id",
        ] {
            if let Some(v) = file.meta(key).and_then(|v| v.as_u64()) {
                if v >= strings.len() as u64 {
                    return Err(tok_err(format!(
                        "{key} {v} lies outside the {} tokens of tokenizer.ggml.tokens",
                        strings.len()
                    )));
                }
            }
        }
        let bos_token_id = id("tokenizer.ggml.bos_token_id");
        let add_bos = file
            .meta("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        // BOS as HF tokenizers add it, by a post-processor, so a tokenizer.json written by
        // `save` (`probe inspect --save-tokenizer`) adds it too; `encode` prepends it itself
        // only where a template cannot name the token
        let mut prepend_bos = false;
        if let (true, Some(bos)) = (add_bos, bos_token_id) {
            match bos_template(&inner, bos) {
                Some(template) => {
                    inner.with_post_processor(Some(template));
                }
                None => prepend_bos = true,
            }
        }
        Ok(Tokenizer {
            bos_token_id,
            eos_token_ids: id("tokenizer.ggml.eos_token_id").into_iter().collect(),
            pad_token_id: id("tokenizer.ggml.padding_token_id"),
            prepend_bos,
            inner,
        })
    }

    /// The tokenizer of a checkpoint: a GGUF's (rebuilt from its metadata) or an HF
    /// directory's `tokenizer.json`.
    pub fn from_checkpoint(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Self::from_file(&path.join("tokenizer.json"));
        }
        Self::from_gguf(&GgufFile::open(path)?)
    }

    /// Writes the tokenizer as a HuggingFace `tokenizer.json` (e.g. one rebuilt from a GGUF's
    /// metadata, for transformers or for an HF checkpoint that lacks one).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner
            .save(path, false)
            .map_err(|e| Error::Tokenizer(format!("writing {}: {e}", path.display())))
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, true).map_err(tok_err)?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if self.prepend_bos {
            if let Some(bos) = self.bos_token_id {
                ids.push(bos);
            }
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// Encodes text that continues a sequence: no BOS, no other special tokens added.
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(tok_err)?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(tok_err)
    }

    /// The string of one token, for vocabulary projections; byte-level pieces decoded.
    pub fn token_text(&self, id: u32) -> String {
        self.inner
            .decode(&[id], false)
            .unwrap_or_else(|_| self.inner.id_to_token(id).unwrap_or_default())
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_token_id
    }

    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos_token_ids
    }

    pub fn set_eos_token_ids(&mut self, ids: Vec<u32>) {
        self.eos_token_ids = ids;
    }

    /// The id used for left padding: the pad token, else EOS, else 0. Padded positions are
    /// masked, so the choice never changes results.
    pub fn pad_token_id(&self) -> u32 {
        self.pad_token_id
            .or_else(|| self.eos_token_ids.first().copied())
            .unwrap_or(0)
    }
}

/// The byte-level BPE (`tokenizer.ggml.model` = `gpt2`) of a GGUF: its pieces, merges and
/// pre-tokenizer.
fn byte_level_bpe(file: &GgufFile, pieces: &[String]) -> Result<tokenizers::Tokenizer> {
    let mut vocab = ahash_vocab(pieces.len());
    for (id, piece) in pieces.iter().enumerate() {
        vocab.insert(piece.clone(), id as u32);
    }
    let merges = match file
        .meta("tokenizer.ggml.merges")
        .and_then(|m| m.as_array())
    {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let text = m.as_str().unwrap_or_default();
                text.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| tok_err(format!("merge {i} `{text}` is not `a b`")))
            })
            .collect::<Result<Vec<_>>>()?,
        None => return Err(tok_err("GGUF has no tokenizer.ggml.merges")),
    };
    let pre = file
        .meta("tokenizer.ggml.pre")
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    let (pre_tokenizer, ignore_merges) = gguf_pre_tokenizer(pre)?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(tok_err)?;
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(pre_tokenizer));
    inner.with_decoder(Some(ByteLevel::default()));
    Ok(inner)
}

/// `<bos> $A` (and `<bos> $A <bos> $B` for pairs), as HF's Llama 3 and Gemma tokenizers
/// declare it; `None` when the token's text cannot stand in a template (it has a space).
fn bos_template(
    inner: &tokenizers::Tokenizer,
    bos: u32,
) -> Option<tokenizers::processors::template::TemplateProcessing> {
    let text = inner.id_to_token(bos)?;
    if text.contains(char::is_whitespace) || text.contains(':') {
        return None;
    }
    tokenizers::processors::template::TemplateProcessing::builder()
        .try_single(format!("{text}:0 $A:0"))
        .ok()?
        .try_pair(format!("{text}:0 $A:0 {text}:1 $B:1"))
        .ok()?
        .special_tokens(vec![(text.clone(), bos)])
        .build()
        .ok()
}

fn ahash_vocab(capacity: usize) -> Vocab {
    let mut v = Vocab::default();
    v.reserve(capacity);
    v
}

/// The pre-tokenizer HF uses for the tokenizer llama.cpp calls `pre`.
fn gguf_pre_tokenizer(pre: &str) -> Result<(PreTokenizerWrapper, bool)> {
    let byte_level =
        |use_regex: bool| -> PreTokenizerWrapper { ByteLevel::new(false, true, use_regex).into() };
    let split = |pattern: &str| -> Result<PreTokenizerWrapper> {
        let regex = SplitPattern::Regex(pattern.to_string());
        Ok(Split::new(regex, SplitDelimiterBehavior::Isolated, false)
            .map_err(tok_err)?
            .into())
    };
    Ok(match pre {
        "default" | "gpt2" | "gpt-2" => (byte_level(true), false),
        // SmolLM: GPT-2 byte level with every digit split off.
        "smollm" => (
            Sequence::new(vec![Digits::new(true).into(), byte_level(true)]).into(),
            false,
        ),
        "llama3" | "llama-bpe" => (
            Sequence::new(vec![split(LLAMA3_SPLIT)?, byte_level(false)]).into(),
            true,
        ),
        "qwen2" => (
            Sequence::new(vec![split(QWEN2_SPLIT)?, byte_level(false)]).into(),
            false,
        ),
        other => {
            return Err(Error::Tokenizer(format!(
                "GGUF pre-tokenizer `{other}` is not supported (supported: {SUPPORTED_GGUF_PRE}); \
                 pass the model's tokenizer.json with --tokenizer"
            )))
        }
    })
}
