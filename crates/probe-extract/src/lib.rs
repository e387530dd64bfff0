//! `probe-extract`: probe prompts → token ids → forward pass with hooks → one row per prompt
//! (the hooked vectors reduced over the chosen positions) → cache shards.

use std::path::Path;

use probe_cache::{CacheWriter, Manifest, Row};
use probe_data::probe_prompts::ProbePrompt;
use probe_lm::{Batch, HookPoint, HookSpec, Logits, Model, Tokenizer};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Model(#[from] probe_lm::Error),
    #[error(transparent)]
    Cache(#[from] probe_cache::CacheError),
    #[error("{0}")]
    Input(String),
}

pub type Result<T, E = ExtractError> = std::result::Result<T, E>;

/// Per batch: (row index within the shard, one reduced vector per hook).
type BatchRows = Vec<(usize, Vec<Vec<f32>>)>;

/// Shorter common prefixes are not worth a separate prefix pass.
const MIN_SHARED: usize = 8;

/// The longest prefix all rows share that still leaves every reduced position (and at least
/// one token) of every row after it.
fn shared_prefix<'a>(mut rows: impl Iterator<Item = &'a (Vec<u32>, Vec<usize>)>) -> usize {
    let Some((first, first_pos)) = rows.next() else {
        return 0;
    };
    let mut shared = first_pos
        .iter()
        .copied()
        .min()
        .unwrap_or(0)
        .min(first.len() - 1);
    for (ids, positions) in rows {
        let common = first.iter().zip(ids).take_while(|(a, b)| a == b).count();
        let earliest = positions.iter().copied().min().unwrap_or(0);
        shared = shared.min(common).min(earliest).min(ids.len() - 1);
    }
    shared
}

/// Cuts rows in token order into batches of at most `size`, preferring to cut where the
/// common prefix would shrink: once a batch is half full it ends before a row that shares
/// less with it than its members share with each other, so batches follow the branches of
/// the prompts' prefix tree instead of straddling them (on the persona grid this skips about
/// a third more tokens than fixed-size cuts).
fn prefix_batches<'a>(
    order: &'a [usize],
    inputs: &[(Vec<u32>, Vec<usize>)],
    size: usize,
) -> Vec<&'a [usize]> {
    let common = |a: usize, b: usize| {
        inputs[a]
            .0
            .iter()
            .zip(&inputs[b].0)
            .take_while(|(x, y)| x == y)
            .count()
    };
    let mut out = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let first = order[start];
        let mut end = start + 1;
        let mut shared = inputs[first].0.len();
        while end < order.len() && end - start < size {
            let next = common(first, order[end]);
            if end - start >= size.div_ceil(2) && next < shared {
                break;
            }
            shared = shared.min(next);
            end += 1;
        }
        out.push(&order[start..end]);
        start = end;
    }
    out
}

/// Which token positions of a teacher-forced probe prompt become the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionRule {
    /// The last prompt token before the party's name: sees the opinion, never the answer.
    LastBeforeAnswer,
    /// The mean over the positions that predict the answer's tokens (the authors' code).
    /// Leaky: from the second answer token on, those positions already contain the name.
    AnswerPredicting,
    /// The mean over all prompt tokens (answer excluded).
    PromptMean,
}

impl PositionRule {
    pub const NAMES: &'static str = "last-before-answer, answer-predicting, prompt-mean";

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "last-before-answer" | "last" => Ok(PositionRule::LastBeforeAnswer),
            "answer-predicting" => Ok(PositionRule::AnswerPredicting),
            "prompt-mean" => Ok(PositionRule::PromptMean),
            other => Err(ExtractError::Input(format!(
                "unknown position rule `{other}` (known: {})",
                Self::NAMES
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PositionRule::LastBeforeAnswer => "last-before-answer",
            PositionRule::AnswerPredicting => "answer-predicting",
            PositionRule::PromptMean => "prompt-mean",
        }
    }

    /// Whether the rule's positions can see answer tokens (a probe on them reads the name).
    pub fn sees_answer(self) -> bool {
        self == PositionRule::AnswerPredicting
    }
}

/// Token ids fed to the model and the positions (indices into them) reduced into the row.
pub fn tokenize(
    tok: &Tokenizer,
    prompt: &ProbePrompt,
    rule: PositionRule,
) -> Result<(Vec<u32>, Vec<usize>)> {
    let mut ids = tok.encode(&prompt.prompt)?;
    let p = ids.len();
    if p == 0 {
        return Err(ExtractError::Input(format!(
            "prompt {} has no tokens",
            prompt.id
        )));
    }
    let positions = match rule {
        // Causal attention: tokens after position p−1 cannot change it, so they are not fed.
        PositionRule::LastBeforeAnswer => vec![p - 1],
        PositionRule::PromptMean => (0..p).collect(),
        PositionRule::AnswerPredicting => {
            let answer = tok.encode_continuation(&prompt.answer)?;
            if answer.is_empty() {
                return Err(ExtractError::Input(format!(
                    "prompt {}: empty answer",
                    prompt.id
                )));
            }
            ids.extend_from_slice(&answer[..answer.len() - 1]);
            (p - 1..p - 1 + answer.len()).collect()
        }
    };
    Ok((ids, positions))
}

/// A content fingerprint of a model: SHA-256 over each file's name, size and first and last
/// MiB (a `.gguf` file, or the checkpoint's config, tokenizer and safetensors files). Cheap
/// on multi-GB checkpoints, and any re-quantization or re-export changes it.
pub fn model_fingerprint(path: &Path) -> Result<String> {
    let io =
        |e: std::io::Error| ExtractError::Input(format!("fingerprinting {}: {e}", path.display()));
    let mut files: Vec<std::path::PathBuf> = if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.ends_with(".safetensors")
                            || n == "config.json"
                            || n == "tokenizer.json"
                            || n.ends_with(".index.json")
                    })
            })
            .collect()
    };
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(&f).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        h.update(
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
                .as_bytes(),
        );
        h.update(len.to_le_bytes());
        let mut buf = vec![0u8; (1 << 20).min(len as usize)];
        file.read_exact(&mut buf).map_err(io)?;
        h.update(&buf);
        if len > (2 << 20) {
            file.seek(SeekFrom::End(-(1 << 20))).map_err(io)?;
            file.read_exact(&mut buf).map_err(io)?;
            h.update(&buf);
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Cache rows of the prompts, in order.
pub fn rows(prompts: &[ProbePrompt]) -> Vec<Row> {
    prompts
        .iter()
        .map(|p| Row {
            id: p.id.clone(),
            label: Some(p.label),
            group: Some(p.statement.to_string()),
            meta: [
                ("template".to_string(), p.template.clone()),
                ("position".to_string(), p.position.as_str().to_string()),
            ]
            .into_iter()
            .collect(),
        })
        .collect()
}

/// Fills every pending shard of `writer`; calls `progress(prompts_done, tokens_done)` after
/// each batch.
pub fn extract(
    model: &Model,
    prompts: &[ProbePrompt],
    rule: PositionRule,
    writer: &mut CacheWriter,
    batch_size: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<()> {
    if writer.manifest().rows.len() != prompts.len() {
        return Err(ExtractError::Input(format!(
            "{} prompts for a cache of {} rows",
            prompts.len(),
            writer.manifest().rows.len()
        )));
    }
    let tok = model.tokenizer()?;
    let columns = vec![None; writer.manifest().hooks.len()];
    fill_cache(
        model,
        writer,
        &|row| tokenize(tok, &prompts[row], rule),
        &columns,
        batch_size,
        false,
        progress,
    )
}

/// Fills every pending shard of `writer` with the manifest's hook points: row `r` is the
/// model run on `inputs(r) = (token ids, positions)`, each hooked vector averaged over those
/// positions and, where `columns[h]` is given, reduced to those columns (e.g. the few MLP
/// neurons a selection needs). Calls `progress(prompts_done, tokens_done)` after each batch.
///
/// With `share_prefixes`, prompts are batched in lexicographic token order and a batch's
/// common prefix (up to its first reduced position) is computed once and continued for every
/// row: for templated prompts (a persona grid) this skips most of the tokens.
pub fn fill_cache(
    model: &Model,
    writer: &mut CacheWriter,
    inputs: &(dyn Fn(usize) -> Result<(Vec<u32>, Vec<usize>)> + Sync),
    columns: &[Option<Vec<usize>>],
    batch_size: usize,
    share_prefixes: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<()> {
    let manifest: Manifest = writer.manifest().clone();
    let points: Vec<HookPoint> = manifest
        .hooks
        .iter()
        .map(|h| HookPoint::parse(h, model.config().num_layers))
        .collect::<probe_lm::Result<_>>()?;
    if columns.len() != points.len() {
        return Err(ExtractError::Input(format!(
            "{} column selections for {} hook points",
            columns.len(),
            points.len()
        )));
    }
    for ((point, dim), cols) in points.iter().zip(&manifest.dims).zip(columns) {
        let want = cols.as_ref().map_or(*dim, Vec::len);
        if want != *dim {
            return Err(ExtractError::Input(format!(
                "{point}: {want} columns selected for a cache dimension of {dim}"
            )));
        }
    }
    let hooks = HookSpec::from_points(points.iter().copied());
    let pad = model.tokenizer()?.pad_token_id();
    let done_prompts = std::sync::atomic::AtomicUsize::new(0);
    let done_tokens = std::sync::atomic::AtomicUsize::new(0);
    for shard in writer.pending() {
        let (start, end) = manifest.shard_rows(shard);
        let mut shard_inputs = Vec::with_capacity(end - start);
        for row in start..end {
            let (ids, positions) = inputs(row)?;
            if ids.is_empty() || positions.is_empty() || positions.iter().any(|&p| p >= ids.len()) {
                return Err(ExtractError::Input(format!(
                    "row {} (`{}`): no tokens or positions outside the prompt",
                    row, manifest.rows[row].id
                )));
            }
            shard_inputs.push((ids, positions));
        }
        let inputs = shard_inputs;
        // Batch prompts of similar length together (less padding), or neighbours in token
        // order (long common prefixes); rows go back in order.
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        if share_prefixes {
            order.sort_by(|&a, &b| inputs[a].0.cmp(&inputs[b].0));
        } else {
            order.sort_by_key(|&i| inputs[i].0.len());
        }
        let batches: Vec<&[usize]> = if share_prefixes {
            prefix_batches(&order, &inputs, batch_size.max(1))
        } else {
            order.chunks(batch_size.max(1)).collect()
        };
        let results: Vec<Result<BatchRows>> = probe_lm::parallel::run_batches(
            batches.len(),
            probe_lm::parallel::workers_for(&model.transformer.device()),
            |b| {
                let members = batches[b];
                let seqs: Vec<Vec<u32>> = members.iter().map(|&i| inputs[i].0.clone()).collect();
                let shared = if share_prefixes {
                    shared_prefix(members.iter().map(|&i| &inputs[i]))
                } else {
                    0
                };
                // Per row: the index of prompt position 0 in the hooked tensors' seq axis.
                let (cache, seq_len, origin): (_, usize, Vec<isize>) = if shared >= MIN_SHARED {
                    let kv = model.transformer.prefix(&seqs[0][..shared], &hooks)?;
                    let suffixes: Vec<Vec<u32>> =
                        seqs.iter().map(|s| s[shared..].to_vec()).collect();
                    let longest = suffixes.iter().map(Vec::len).max().unwrap_or(0);
                    let cache = model
                        .transformer
                        .forward_continuations(&kv, &suffixes, pad, &hooks)?;
                    (cache, longest, vec![-(shared as isize); seqs.len()])
                } else {
                    let batch = Batch::left_padded(&seqs, pad)?;
                    let out = model.transformer.forward(&batch, &hooks, Logits::None)?;
                    let origin = batch.pad_lens.iter().map(|&p| p as isize).collect();
                    (out.cache, batch.seq_len, origin)
                };
                let mut per_row: Vec<(usize, Vec<Vec<f32>>)> = members
                    .iter()
                    .map(|&i| (i, Vec::with_capacity(points.len())))
                    .collect();
                for (point, cols) in points.iter().zip(columns) {
                    let t = cache.get(*point).expect("hooked");
                    let width = t.dims()[2];
                    if let Some(&c) = cols.iter().flatten().find(|&&c| c >= width) {
                        return Err(ExtractError::Input(format!(
                            "{point}: column {c} selected from a width of {width}"
                        )));
                    }
                    let data =
                        t.clone().into_data().try_into_vec::<f32>().map_err(|e| {
                            ExtractError::Input(format!("reading activations: {e:?}"))
                        })?;
                    for (b, (i, row)) in per_row.iter_mut().enumerate() {
                        let positions = &inputs[*i].1;
                        let mut v = vec![0f32; width];
                        for &pos in positions {
                            let at = (b * seq_len + (origin[b] + pos as isize) as usize) * width;
                            v.iter_mut()
                                .zip(&data[at..at + width])
                                .for_each(|(a, x)| *a += x);
                        }
                        let n = positions.len() as f32;
                        v.iter_mut().for_each(|a| *a /= n);
                        row.push(match cols {
                            Some(cols) => cols.iter().map(|&c| v[c]).collect(),
                            None => v,
                        });
                    }
                }
                let tokens: usize = seqs.iter().map(Vec::len).sum();
                progress(
                    done_prompts.fetch_add(members.len(), std::sync::atomic::Ordering::Relaxed)
                        + members.len(),
                    done_tokens.fetch_add(tokens, std::sync::atomic::Ordering::Relaxed) + tokens,
                );
                Ok(per_row)
            },
        );
        let mut blocks: Vec<Vec<f32>> = manifest
            .dims
            .iter()
            .map(|d| vec![0f32; (end - start) * d])
            .collect();
        for r in results {
            for (i, vectors) in r? {
                for ((block, v), dim) in blocks.iter_mut().zip(vectors).zip(&manifest.dims) {
                    block[i * dim..(i + 1) * dim].copy_from_slice(&v);
                }
            }
        }
        writer.write_shard(shard, &blocks)?;
    }
    Ok(())
}
