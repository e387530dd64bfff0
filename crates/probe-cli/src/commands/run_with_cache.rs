//! `probe run-with-cache <model> --hooks ... --out x.safetensors`: hooked activations of a set
//! of prompts, in one safetensors file that `safetensors.numpy.load_file` reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use probe_lm::burn::tensor::{Tensor, TensorData};
use probe_lm::generate::Rng;
use probe_lm::parallel::{run_batches, workers_for};
use probe_lm::{Batch, HookPoint, HookSpec, Logits, Message, Model};
use safetensors::Dtype;

use crate::common::{progress_bar, write_safetensors, ModelArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reduce {
    /// Keep every position: `[n, seq, dim]`, left-padded with zeros (see `attention_mask`).
    None,
    /// The last token of each prompt: `[n, dim]`.
    Last,
    /// Mean over each prompt's real tokens: `[n, dim]`.
    Mean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogitsArg {
    None,
    Last,
    All,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Hook points: names or patterns separated by `;`, e.g.
    /// "blocks.{0.6L..0.9L}.hook_resid_post; blocks.*.mlp.hook_post; hook_embed".
    #[arg(long, default_value = "blocks.{0.6L..0.9L}.hook_resid_post")]
    pub hooks: String,
    /// Output safetensors file.
    #[arg(long, short)]
    pub out: PathBuf,
    /// A prompt (repeatable).
    #[arg(long = "prompt", short = 'p')]
    pub prompts: Vec<String>,
    /// A file of prompts: one per line, or JSONL with a "prompt" field.
    #[arg(long)]
    pub prompts_file: Option<PathBuf>,
    /// Token ids, comma-separated (repeatable); for models without a tokenizer.
    #[arg(long = "ids")]
    pub ids: Vec<String>,
    /// Benchmark input: this many prompts of random token ids (with --seq-len, --seed).
    #[arg(long)]
    pub random_prompts: Option<usize>,
    /// Tokens per random prompt (with --random-prompts).
    #[arg(long, default_value_t = 64)]
    pub seq_len: usize,
    /// Seed of the random prompts (with --random-prompts).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Wrap each prompt as a user turn in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Which positions of each prompt to keep.
    #[arg(long, value_enum, default_value_t = Reduce::None)]
    pub reduce: Reduce,
    /// Also store logits (`logits`).
    #[arg(long, value_enum, default_value_t = LogitsArg::None)]
    pub logits: LogitsArg,
    /// Prompts per forward pass (padded to the longest in the batch).
    #[arg(long, default_value_t = 16, value_parser = crate::common::positive)]
    pub batch_size: usize,
    /// Write {"tokens", "forward_seconds", "tokens_per_second", "steady_tokens_per_second"}
    /// here (for benchmarks; "steady" leaves out the first batch to finish, which on a GPU
    /// carries the kernels' warm-up).
    #[arg(long)]
    pub timing_json: Option<PathBuf>,
}

fn parse_ids(text: &str) -> Result<Vec<u32>> {
    text.split(',')
        .map(|t| {
            t.trim()
                .parse::<u32>()
                .with_context(|| format!("`{t}` in --ids is not a token id"))
        })
        .collect()
}

fn read_prompts_file(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let jsonl = path.extension().is_some_and(|e| e == "jsonl");
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        if jsonl {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
            let p = v["prompt"]
                .as_str()
                .with_context(|| format!("{}:{}: no \"prompt\" string", path.display(), i + 1))?;
            out.push(p.to_string());
        } else {
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// All inputs as token ids, in order: --prompt, --prompts-file, --ids, --random-prompts.
fn collect_inputs(args: &Args, model: &Model) -> Result<Vec<Vec<u32>>> {
    let mut texts = args.prompts.clone();
    if let Some(path) = &args.prompts_file {
        texts.extend(read_prompts_file(path)?);
    }
    let mut seqs = Vec::new();
    if !texts.is_empty() {
        let tok = model.tokenizer()?;
        for t in &texts {
            let text = if args.chat {
                let template = model
                    .chat_template
                    .as_ref()
                    .context("--chat: the model has no chat template")?;
                template.render(&[Message::new("user", t.as_str())], true)?
            } else {
                t.clone()
            };
            seqs.push(tok.encode(&text)?);
        }
    }
    for ids in &args.ids {
        seqs.push(parse_ids(ids)?);
    }
    if let Some(n) = args.random_prompts {
        if args.seq_len == 0 {
            bail!("--seq-len must be positive");
        }
        let mut rng = Rng::new(args.seed);
        let vocab = model.config().vocab_size as u64;
        for _ in 0..n {
            seqs.push(
                (0..args.seq_len)
                    .map(|_| (rng.next_u64() % vocab) as u32)
                    .collect(),
            );
        }
    }
    if seqs.is_empty() {
        bail!("no input: give --prompt, --prompts-file, --ids or --random-prompts");
    }
    if let Some(i) = seqs.iter().position(|s| s.is_empty()) {
        bail!("input {i} has no tokens");
    }
    Ok(seqs)
}

/// One output tensor on the host: its shape without the leading prompt dimension and its
/// data, accumulated over batches.
struct HostActivation {
    shape_tail: Vec<usize>,
    data: Vec<f32>,
}

pub fn run(args: Args) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    crate::common::check_out_file(&args.out, &["safetensors"])?;
    let n_layers = args.model.info()?.config.num_layers;
    let hooks = HookSpec::parse(&args.hooks, n_layers).context("--hooks")?;
    // Without logits only the blocks up to the last hook are needed.
    let blocks = match args.logits {
        LogitsArg::None => Some(hooks.last_layer().map_or(0, |l| l + 1)),
        LogitsArg::Last | LogitsArg::All => None,
    };
    let model = args.model.load_blocks(blocks)?;
    let seqs = collect_inputs(&args, &model)?;
    let pad_id = model.tokenizer.as_ref().map_or(0, |t| t.pad_token_id());
    let max_len = seqs.iter().map(Vec::len).max().unwrap_or(0);
    let total_tokens: usize = seqs.iter().map(Vec::len).sum();
    let logits_mode = match args.logits {
        LogitsArg::None => Logits::None,
        LogitsArg::Last => Logits::Last,
        LogitsArg::All => Logits::All,
    };

    let mut collected: BTreeMap<String, HostActivation> = BTreeMap::new();
    let bar = progress_bar(seqs.len() as u64, "forward");
    let start = Instant::now();
    // (seconds, tokens) when the first batch finished.
    let first_batch = std::sync::OnceLock::<(f64, usize)>::new();
    let done_tokens = std::sync::atomic::AtomicUsize::new(0);
    // Batches run concurrently, one per worker thread: two single-threaded GEMMs on two cores
    // outrun one GEMM split across both (measured in docs/PERFORMANCE.md). Results keep order.
    let chunks: Vec<&[Vec<u32>]> = seqs.chunks(args.batch_size).collect();
    let results: Vec<Result<Vec<(String, HostActivation)>>> = run_batches(
        chunks.len(),
        workers_for(&model.transformer.device()),
        |c| {
            let chunk = chunks[c];
            let batch = Batch::left_padded(chunk, pad_id)?;
            let out = model.transformer.forward(&batch, &hooks, logits_mode)?;
            let mut tensors: Vec<(String, Tensor<3>)> = out
                .cache
                .tensors
                .into_iter()
                .map(|(p, t)| (p.to_string(), t))
                .collect();
            if let Some(l) = out.logits {
                tensors.push(("logits".into(), l));
            }
            let mut host = Vec::with_capacity(tensors.len());
            for (name, t) in tensors {
                let is_last_logits = name == "logits" && logits_mode == Logits::Last;
                let how = if is_last_logits {
                    Reduce::Last
                } else {
                    args.reduce
                };
                let (shape_tail, data) = reduce(t, &batch, how, max_len)?;
                host.push((name, HostActivation { shape_tail, data }));
            }
            let tokens: usize = chunk.iter().map(Vec::len).sum();
            let done = done_tokens.fetch_add(tokens, std::sync::atomic::Ordering::Relaxed) + tokens;
            first_batch.get_or_init(|| (start.elapsed().as_secs_f64(), done));
            bar.inc(chunk.len() as u64);
            bar.set_message(format!(
                "{:.0} tok/s",
                done as f64 / start.elapsed().as_secs_f64()
            ));
            Ok(host)
        },
    );
    for result in results {
        for (name, part) in result? {
            match collected.get_mut(&name) {
                Some(whole) => whole.data.extend(part.data),
                None => {
                    collected.insert(name, part);
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let n = seqs.len();
    let mut ids = vec![pad_id as i64; n * max_len];
    let mut mask = vec![0i64; n * max_len];
    for (i, s) in seqs.iter().enumerate() {
        let pad = max_len - s.len();
        for (j, &t) in s.iter().enumerate() {
            ids[i * max_len + pad + j] = t as i64;
            mask[i * max_len + pad + j] = 1;
        }
    }
    let mut entries: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    entries.push((
        "input_ids".into(),
        Dtype::I64,
        vec![n, max_len],
        ids.iter().flat_map(|v| v.to_le_bytes()).collect(),
    ));
    entries.push((
        "attention_mask".into(),
        Dtype::I64,
        vec![n, max_len],
        mask.iter().flat_map(|v| v.to_le_bytes()).collect(),
    ));
    for (name, c) in collected {
        let mut shape = vec![n];
        shape.extend(c.shape_tail);
        entries.push((
            name,
            Dtype::F32,
            shape,
            c.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
    }
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("model".to_string(), args.model.model.display().to_string());
    metadata.insert(
        "hooks".to_string(),
        hooks
            .points()
            .map(|p: HookPoint| p.to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    metadata.insert(
        "reduce".to_string(),
        format!("{:?}", args.reduce).to_lowercase(),
    );
    metadata.insert("padding".to_string(), "left".to_string());
    write_safetensors(&args.out, &entries, metadata)?;

    eprintln!(
        "{} prompts, {total_tokens} tokens in {secs:.2}s ({:.1} tok/s) → {}",
        n,
        total_tokens as f64 / secs,
        args.out.display()
    );
    if let Some(path) = &args.timing_json {
        let steady = match first_batch.get() {
            Some(&(first_secs, first_tokens)) if total_tokens > first_tokens => {
                (total_tokens - first_tokens) as f64 / (secs - first_secs)
            }
            _ => total_tokens as f64 / secs,
        };
        let v = serde_json::json!({"tokens": total_tokens, "prompts": n, "forward_seconds": secs, "tokens_per_second": total_tokens as f64 / secs, "steady_tokens_per_second": steady});
        std::fs::write(path, v.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Reduces `[b, s, d]` on the device and returns (shape without the batch dim, host data).
fn reduce(
    t: Tensor<3>,
    batch: &Batch,
    how: Reduce,
    max_len: usize,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let [b, s, d] = t.dims();
    let device = t.device();
    let host = |t: Tensor<2>| -> Result<Vec<f32>> {
        t.into_data()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading activations: {e:?}"))
    };
    match how {
        Reduce::Last => Ok((vec![d], host(t.narrow(1, s - 1, 1).reshape([b, d]))?)),
        Reduce::Mean => {
            let mask: Vec<f32> = batch.attention_mask().iter().map(|&m| m as f32).collect();
            let counts: Vec<f32> = batch
                .pad_lens
                .iter()
                .map(|&p| 1.0 / (s - p) as f32)
                .collect();
            let mask: Tensor<3> = Tensor::from_data(TensorData::new(mask, [b, s, 1]), &device);
            let inv: Tensor<2> = Tensor::from_data(TensorData::new(counts, [b, 1]), &device);
            let mean = t.mul(mask).sum_dim(1).reshape([b, d]).mul(inv);
            Ok((vec![d], host(mean)?))
        }
        Reduce::None => {
            let data = host(t.reshape([b * s, d]))?;
            // Re-pad to the longest prompt of the whole run, zeroing pad positions.
            let mut out = vec![0f32; b * max_len * d];
            for (i, &pad) in batch.pad_lens.iter().enumerate() {
                let real = s - pad;
                let src = &data[(i * s + pad) * d..(i + 1) * s * d];
                let dst_start = (i * max_len + (max_len - real)) * d;
                out[dst_start..dst_start + real * d].copy_from_slice(src);
            }
            Ok((vec![max_len, d], out))
        }
    }
}
