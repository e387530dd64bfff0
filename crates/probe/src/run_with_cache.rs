//! `run_with_cache`: hooked activations of a set of prompts, in memory (the CLI writes them
//! to one safetensors file, the Python bindings hand them over as numpy arrays).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use probe_lm::burn::tensor::{Tensor, TensorData};
use probe_lm::generate::Rng;
use probe_lm::parallel::{run_batches, workers_for};
use probe_lm::{Batch, HookSpec, Logits, Message, Model};
use safetensors::Dtype;

use crate::files::write_safetensors;
use crate::progress::progress_bar;

/// Which positions of each prompt to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduce {
    /// Every position: `[n, seq, dim]`, left-padded with zeros (see `attention_mask`).
    #[default]
    None,
    /// The last token of each prompt: `[n, dim]`.
    Last,
    /// The mean over each prompt's real tokens: `[n, dim]`.
    Mean,
}

impl std::str::FromStr for Reduce {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => Reduce::None,
            "last" => Reduce::Last,
            "mean" => Reduce::Mean,
            _ => bail!("reduce must be none, last or mean, not `{s}`"),
        })
    }
}

impl Reduce {
    pub fn name(self) -> &'static str {
        match self {
            Reduce::None => "none",
            Reduce::Last => "last",
            Reduce::Mean => "mean",
        }
    }
}

/// Options of [`run_with_cache`].
#[derive(Debug, Clone)]
pub struct RunWithCacheOptions {
    /// Hook points: names or patterns separated by `;` (`blocks.{0.6L..0.9L}.hook_resid_post`).
    pub hooks: String,
    /// Which positions to keep.
    pub reduce: Reduce,
    /// Also return logits (`logits`): none, the last position's, or all.
    pub logits: Logits,
    /// Prompts per forward pass (padded to the longest in the batch).
    pub batch_size: usize,
}

impl Default for RunWithCacheOptions {
    fn default() -> Self {
        RunWithCacheOptions {
            hooks: "blocks.{0.6L..0.9L}.hook_resid_post".into(),
            reduce: Reduce::None,
            logits: Logits::None,
            batch_size: 16,
        }
    }
}

impl RunWithCacheOptions {
    /// The parsed hooks, checked against the model's depth.
    pub fn hook_spec(&self, n_layers: usize) -> Result<HookSpec> {
        HookSpec::parse(&self.hooks, n_layers).context("--hooks")
    }

    /// Blocks `0..n` that must be loaded: up to the last hook, all (and the head) for logits.
    pub fn blocks_needed(&self, n_layers: usize) -> Result<Option<usize>> {
        let hooks = self.hook_spec(n_layers)?;
        Ok(match self.logits {
            Logits::None => Some(hooks.last_layer().map_or(0, |l| l + 1)),
            Logits::Last | Logits::All => None,
        })
    }
}

/// One returned tensor: `shape` starts with the prompt dimension; `data` is row-major.
#[derive(Debug, Clone)]
pub struct Activation {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// What [`run_with_cache`] returns: the left-padded inputs and every hooked tensor by name.
#[derive(Debug)]
pub struct Activations {
    /// `[n, max_len]`, left-padded with the pad id.
    pub input_ids: Vec<i64>,
    /// `[n, max_len]`: 1 on real tokens, 0 on padding.
    pub attention_mask: Vec<i64>,
    pub n_prompts: usize,
    pub max_len: usize,
    /// Hook name (TransformerLens convention) or `logits` → tensor.
    pub tensors: BTreeMap<String, Activation>,
    /// The hook points recorded, in order.
    pub hooks: Vec<String>,
    pub reduce: Reduce,
    pub timing: Timing,
}

/// Throughput of one run.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Timing {
    pub tokens: usize,
    pub prompts: usize,
    pub forward_seconds: f64,
    pub tokens_per_second: f64,
    /// Leaves out the first batch to finish (on a GPU it carries the kernels' warm-up).
    pub steady_tokens_per_second: f64,
}

impl Activations {
    /// One safetensors file that `safetensors.numpy.load_file` reads, written atomically.
    pub fn save(&self, path: &Path, model: &str) -> Result<()> {
        let (n, len) = (self.n_prompts, self.max_len);
        let ints = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut entries = vec![
            (
                "input_ids".to_string(),
                Dtype::I64,
                vec![n, len],
                ints(&self.input_ids),
            ),
            (
                "attention_mask".to_string(),
                Dtype::I64,
                vec![n, len],
                ints(&self.attention_mask),
            ),
        ];
        for (name, t) in &self.tensors {
            let bytes = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            entries.push((name.clone(), Dtype::F32, t.shape.clone(), bytes));
        }
        let metadata = [
            ("model", model.to_string()),
            ("hooks", self.hooks.join(",")),
            ("reduce", self.reduce.name().to_string()),
            ("padding", "left".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        write_safetensors(path, &entries, metadata)
    }
}

/// Token ids of text prompts, each wrapped as a user turn in the chat template with `chat`.
pub fn tokenize(model: &Model, texts: &[String], chat: bool) -> Result<Vec<Vec<u32>>> {
    let tok = model.tokenizer()?;
    texts
        .iter()
        .map(|t| {
            let text = if chat {
                let template = model
                    .chat_template
                    .as_ref()
                    .context("--chat (chat=True): the model has no chat template")?;
                template.render(&[Message::new("user", t.as_str())], true)?
            } else {
                t.clone()
            };
            Ok(tok.encode(&text)?)
        })
        .collect()
}

/// `n` prompts of `seq_len` uniformly random token ids (benchmark input).
pub fn random_inputs(vocab: usize, n: usize, seq_len: usize, seed: u64) -> Result<Vec<Vec<u32>>> {
    if seq_len == 0 {
        bail!("--seq-len must be positive");
    }
    let mut rng = Rng::new(seed);
    Ok((0..n)
        .map(|_| {
            (0..seq_len)
                .map(|_| (rng.next_u64() % vocab as u64) as u32)
                .collect()
        })
        .collect())
}

/// Runs `inputs` (token ids) through `model` in batches and returns the hooked tensors.
pub fn run_with_cache(
    model: &Model,
    inputs: &[Vec<u32>],
    options: &RunWithCacheOptions,
) -> Result<Activations> {
    if options.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    if inputs.is_empty() {
        bail!("no input: give at least one prompt");
    }
    if let Some(i) = inputs.iter().position(|s| s.is_empty()) {
        bail!("input {i} has no tokens");
    }
    let hooks = options.hook_spec(model.config().num_layers)?;
    let pad_id = model.tokenizer.as_ref().map_or(0, |t| t.pad_token_id());
    let max_len = inputs.iter().map(Vec::len).max().unwrap_or(0);
    let total_tokens: usize = inputs.iter().map(Vec::len).sum();
    let bar = progress_bar(inputs.len() as u64, "forward");
    let start = Instant::now();
    // (seconds, tokens) when the first batch finished.
    let first_batch = OnceLock::<(f64, usize)>::new();
    let done_tokens = AtomicUsize::new(0);
    // Batches run concurrently, one per worker thread: two single-threaded GEMMs on two cores
    // outrun one GEMM split across both (measured in docs/PERFORMANCE.md). Results keep order.
    let chunks: Vec<&[Vec<u32>]> = inputs.chunks(options.batch_size).collect();
    let results: Vec<Result<Vec<(String, Activation)>>> = run_batches(
        chunks.len(),
        workers_for(&model.transformer.device()),
        |c| {
            let chunk = chunks[c];
            let batch = Batch::left_padded(chunk, pad_id)?;
            let out = model.transformer.forward(&batch, &hooks, options.logits)?;
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
                let how = if name == "logits" && options.logits == Logits::Last {
                    Reduce::Last
                } else {
                    options.reduce
                };
                host.push((name, reduce(t, &batch, how, max_len)?));
            }
            let tokens: usize = chunk.iter().map(Vec::len).sum();
            let done = done_tokens.fetch_add(tokens, Ordering::Relaxed) + tokens;
            first_batch.get_or_init(|| (start.elapsed().as_secs_f64(), done));
            bar.inc(chunk.len() as u64);
            bar.set_message(format!(
                "{:.0} tok/s",
                done as f64 / start.elapsed().as_secs_f64()
            ));
            Ok(host)
        },
    );
    let mut tensors: BTreeMap<String, Activation> = BTreeMap::new();
    for result in results {
        for (name, part) in result? {
            match tensors.get_mut(&name) {
                Some(whole) => {
                    whole.shape[0] += part.shape[0];
                    whole.data.extend(part.data);
                }
                None => {
                    tensors.insert(name, part);
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    // the finite-output guard, in the model's order: the first hook where a NaN or an
    // infinity appears is where the checkpoint or adapter broke
    for name in hooks
        .points()
        .map(|p| p.to_string())
        .chain(std::iter::once("logits".to_string()))
    {
        let Some(t) = tensors.get(&name) else {
            continue;
        };
        if let Some((k, x)) = probe_cache::first_non_finite(&t.data) {
            let d = *t.shape.last().unwrap_or(&1);
            let row = k / d.max(1);
            let place = match t.shape.len() {
                3 => format!(
                    "prompt {}, position {}, dimension {}",
                    row / t.shape[1].max(1),
                    row % t.shape[1].max(1),
                    k % d.max(1)
                ),
                _ => format!("prompt {row}, dimension {}", k % d.max(1)),
            };
            bail!(
                "{x} in `{name}` at {place}: the first non-finite value of this run (nothing written; is the checkpoint or the adapter broken?)"
            );
        }
    }

    let n = inputs.len();
    let mut input_ids = vec![pad_id as i64; n * max_len];
    let mut attention_mask = vec![0i64; n * max_len];
    for (i, s) in inputs.iter().enumerate() {
        let pad = max_len - s.len();
        for (j, &t) in s.iter().enumerate() {
            input_ids[i * max_len + pad + j] = t as i64;
            attention_mask[i * max_len + pad + j] = 1;
        }
    }
    let steady = match first_batch.get() {
        Some(&(first_secs, first_tokens)) if total_tokens > first_tokens => {
            (total_tokens - first_tokens) as f64 / (secs - first_secs)
        }
        _ => total_tokens as f64 / secs,
    };
    Ok(Activations {
        input_ids,
        attention_mask,
        n_prompts: n,
        max_len,
        tensors,
        hooks: hooks.points().map(|p| p.to_string()).collect(),
        reduce: options.reduce,
        timing: Timing {
            tokens: total_tokens,
            prompts: n,
            forward_seconds: secs,
            tokens_per_second: total_tokens as f64 / secs,
            steady_tokens_per_second: steady,
        },
    })
}

/// Reduces `[b, s, d]` on the device and returns it on the host.
fn reduce(t: Tensor<3>, batch: &Batch, how: Reduce, max_len: usize) -> Result<Activation> {
    let [b, s, d] = t.dims();
    let device = t.device();
    let host = |t: Tensor<2>| -> Result<Vec<f32>> {
        t.into_data()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading activations: {e:?}"))
    };
    match how {
        Reduce::Last => Ok(Activation {
            shape: vec![b, d],
            data: host(t.narrow(1, s - 1, 1).reshape([b, d]))?,
        }),
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
            Ok(Activation {
                shape: vec![b, d],
                data: host(mean)?,
            })
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
            Ok(Activation {
                shape: vec![b, max_len, d],
                data: out,
            })
        }
    }
}
