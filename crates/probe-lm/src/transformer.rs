//! The decoder-only transformer shared by Llama, Qwen2, Mistral and Gemma 2/3, with hooks.
//! Gemma's departures are switches of the config ([`crate::config::BlockSwitches`]).

use std::collections::BTreeMap;

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::hooks::{HookPoint, HookSpec};
use crate::kernels::quantized::BlockMatrix;
use crate::layers::attention::{Attention, AttentionMask, LayerKv, SdpaKernel};
use crate::layers::linear::Linear;
use crate::layers::mlp::GatedMlp;
use crate::layers::rms_norm::RmsNorm;
use crate::layers::rope::RopeTables;
use crate::layers::{Loader, Matrix};
use crate::precision::Precision;
use crate::weights::Weights;

/// One pre-norm decoder block, its norms named by where they sit (HF names differ: Llama's
/// `post_attention_layernorm` is the MLP's input norm, Gemma's is the attention output's).
#[derive(Module, Debug)]
pub struct Block {
    /// Before attention (`input_layernorm`).
    pub attn_norm: RmsNorm,
    pub self_attn: Attention,
    /// On the attention output, before the residual add (Gemma's `post_attention_layernorm`).
    pub attn_out_norm: Option<RmsNorm>,
    /// Before the MLP (Llama's `post_attention_layernorm`, Gemma's
    /// `pre_feedforward_layernorm`).
    pub mlp_norm: RmsNorm,
    pub mlp: GatedMlp,
    /// On the MLP output, before the residual add (Gemma's `post_feedforward_layernorm`).
    pub mlp_out_norm: Option<RmsNorm>,
}

/// What every block of one pass shares besides the residual stream: the RoPE tables and the
/// attention mask for the block's kind (global or sliding), and the attention kernel.
pub struct BlockInputs<'a> {
    pub rope: &'a RopeTables,
    pub mask: &'a AttentionMask,
    pub kernel: SdpaKernel,
}

/// Where a pass hands its hook points (TransformerLens's names, [`HookPoint`]): the hooked ones
/// are recorded, as f32 whatever the compute type, into an [`ActivationCache`].
pub struct HookSite<'a> {
    spec: &'a HookSpec,
    cache: &'a mut ActivationCache,
}

impl<'a> HookSite<'a> {
    pub fn new(spec: &'a HookSpec, cache: &'a mut ActivationCache) -> Self {
        HookSite { spec, cache }
    }

    /// Whether `point` is hooked (a block computes what only a hook reads, e.g. `attn.hook_z`,
    /// only then).
    pub fn wants(&self, point: HookPoint) -> bool {
        self.spec.contains(point)
    }

    /// The activation at `point`, recorded when hooked.
    pub fn at(&mut self, point: HookPoint, t: &Tensor<3>) {
        if self.spec.contains(point) {
            self.cache.tensors.insert(point, t.clone().cast(DType::F32));
        }
    }
}

impl Block {
    /// Block `layer`: the residual stream before it (`blocks.{layer}.hook_resid_pre`) → the
    /// stream after it (`hook_resid_post`), through attention (`hook_resid_mid` between) and the
    /// gated MLP (`mlp.hook_post`: its coefficients), each output normed first where the
    /// architecture does (Gemma). `kv` is this layer's slot of a KV cache, filled or extended.
    pub fn forward(
        &self,
        layer: usize,
        mut x: Tensor<3>,
        inputs: &BlockInputs<'_>,
        kv: Option<&mut Option<LayerKv>>,
        hooks: &mut HookSite<'_>,
    ) -> Tensor<3> {
        hooks.at(HookPoint::ResidPre(layer), &x);
        let (mut attn, z) = self.self_attn.forward(
            self.attn_norm.forward(x.clone()),
            inputs.rope,
            inputs.mask,
            kv,
            inputs.kernel,
            hooks.wants(HookPoint::AttnZ(layer)),
        );
        if let Some(z) = z {
            hooks.at(HookPoint::AttnZ(layer), &z);
        }
        if let Some(norm) = &self.attn_out_norm {
            attn = norm.forward(attn);
        }
        x = x.add(attn);
        hooks.at(HookPoint::ResidMid(layer), &x);
        let m = self.mlp.coefficients(self.mlp_norm.forward(x.clone()));
        hooks.at(HookPoint::MlpPost(layer), &m);
        let mut out = self.mlp.project(m);
        if let Some(norm) = &self.mlp_out_norm {
            out = norm.forward(out);
        }
        x = x.add(out);
        hooks.at(HookPoint::ResidPost(layer), &x);
        x
    }
}

/// The tokens of one pass: `batch × seq` ids (row-major) at `positions`, each row after
/// `pad_lens[row]` padding positions and `past` positions already in the KV cache.
struct Step<'a> {
    ids: &'a [u32],
    positions: &'a [i64],
    batch: usize,
    seq: usize,
    pad_lens: &'a [usize],
    past: usize,
}

impl<'a> Step<'a> {
    /// A whole left-padded batch with nothing cached before it, at its `positions`
    /// ([`Batch::position_ids`]).
    fn prompt(batch: &'a Batch, positions: &'a [i64]) -> Self {
        Step {
            ids: &batch.input_ids,
            positions,
            batch: batch.batch_size,
            seq: batch.seq_len,
            pad_lens: &batch.pad_lens,
            past: 0,
        }
    }
}

/// The token embedding `[vocab, hidden]`: a device tensor, or host blocks on the CPU (a
/// lookup dequantizes only the rows it needs).
#[derive(Module, Debug)]
pub struct Embedding {
    pub table: Option<Param<Tensor<2>>>,
    #[module(skip)]
    pub blocks: Option<Arc<BlockMatrix>>,
}

impl Embedding {
    fn load(loader: &Loader<'_>, vocab: usize, hidden: usize) -> Result<Self> {
        // As blocks, `[vocab, hidden]` is also HF's `[d_out, d_in]` of a tied unembedding.
        Ok(
            match loader.table("model.embed_tokens.weight", vocab, hidden)? {
                Matrix::Dense(t) => Embedding {
                    table: Some(Param::from_tensor(t)),
                    blocks: None,
                },
                Matrix::Blocks(b) => Embedding {
                    table: None,
                    blocks: Some(b),
                },
            },
        )
    }

    fn forward(&self, ids: &[u32], batch: usize, seq: usize, device: &Device) -> Tensor<3> {
        match (&self.table, &self.blocks) {
            (Some(table), _) => {
                let ids_i64: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
                let ids: Tensor<2, Int> =
                    Tensor::from_data(TensorData::new(ids_i64, [batch, seq]), device);
                burn::tensor::module::embedding(table.val(), ids)
            }
            (None, Some(blocks)) => {
                let rows: Vec<usize> = ids.iter().map(|&t| t as usize).collect();
                let hidden = blocks.shape().1;
                Tensor::from_data(
                    TensorData::new(blocks.gather_rows(&rows), [batch, seq, hidden]),
                    device,
                )
            }
            (None, None) => unreachable!("an embedding holds a table"),
        }
    }

    /// `[vocab, hidden]` as f32.
    pub fn table_f32(&self, device: &Device) -> Tensor<2> {
        match (&self.table, &self.blocks) {
            (Some(t), _) => t.val().cast(DType::F32),
            (None, Some(b)) => {
                let (vocab, hidden) = b.shape();
                let mut data = vec![0f32; vocab * hidden];
                b.dequantize_rows(0, vocab, &mut data);
                Tensor::from_data(TensorData::new(data, [vocab, hidden]), device)
            }
            (None, None) => unreachable!("an embedding holds a table"),
        }
    }
}

/// What [`Transformer::load`] reads.
#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    pub precision: Precision,
    /// Load only blocks `0..n` and no output head (final norm, `lm_head`): enough for hooks up
    /// to block n − 1, and all a 70B model hooked at 0.6L–0.9L needs on one GPU.
    pub blocks: Option<usize>,
}

impl Default for LoadPlan {
    fn default() -> Self {
        LoadPlan {
            precision: Precision::f32_dense(),
            blocks: None,
        }
    }
}

#[derive(Module, Debug)]
pub struct Transformer {
    pub embed_tokens: Embedding,
    /// Blocks `0..layers.len()`: all of them, or those a hooks-only load asked for.
    pub layers: Vec<Block>,
    /// The final norm, `None` when the model was loaded without its head.
    pub norm: Option<RmsNorm>,
    /// `lm_head.weight`; `None` when tied to the embedding or not loaded.
    pub lm_head: Option<Linear>,
    #[module(skip)]
    pub config: ModelConfig,
    #[module(skip)]
    inv_freq: Vec<f32>,
    /// The sliding layers' own RoPE frequencies (Gemma 3), if they have their own.
    #[module(skip)]
    inv_freq_local: Option<Vec<f32>>,
    #[module(skip)]
    kernel: SdpaKernel,
    #[module(skip)]
    precision: Precision,
    #[module(skip)]
    fast_decode: bool,
    #[module(skip)]
    device: Device,
}

/// Token ids of several sequences, left-padded to one length.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[batch * seq]`, row-major.
    pub input_ids: Vec<u32>,
    pub batch_size: usize,
    pub seq_len: usize,
    /// Leading pad positions of each sequence.
    pub pad_lens: Vec<usize>,
}

impl Batch {
    /// Left-pads `seqs` with `pad_id`: the last real token of every sequence is at `seq_len - 1`.
    pub fn left_padded(seqs: &[Vec<u32>], pad_id: u32) -> Result<Self> {
        if seqs.is_empty() {
            return Err(Error::Input("empty batch".into()));
        }
        if let Some(i) = seqs.iter().position(|s| s.is_empty()) {
            return Err(Error::Input(format!(
                "sequence {i} of the batch has no tokens"
            )));
        }
        let seq_len = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut input_ids = Vec::with_capacity(seqs.len() * seq_len);
        let mut pad_lens = Vec::with_capacity(seqs.len());
        for s in seqs {
            let pad = seq_len - s.len();
            pad_lens.push(pad);
            input_ids.extend(std::iter::repeat_n(pad_id, pad));
            input_ids.extend_from_slice(s);
        }
        Ok(Batch {
            input_ids,
            batch_size: seqs.len(),
            seq_len,
            pad_lens,
        })
    }

    /// 1 on real tokens, 0 on padding (HF `attention_mask`).
    pub fn attention_mask(&self) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.input_ids.len());
        for &pad in &self.pad_lens {
            out.extend((0..self.seq_len).map(|j| i64::from(j >= pad)));
        }
        out
    }

    /// Positions counted from each sequence's first real token (pads get 0).
    pub fn position_ids(&self) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.input_ids.len());
        for &pad in &self.pad_lens {
            out.extend((0..self.seq_len).map(|j| j.saturating_sub(pad) as i64));
        }
        out
    }
}

/// Which positions get logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    None,
    Last,
    All,
}

/// Recorded activations, keyed by hook point; each `[batch, seq, dim]`.
#[derive(Debug, Default)]
pub struct ActivationCache {
    pub tensors: BTreeMap<HookPoint, Tensor<3>>,
}

impl ActivationCache {
    pub fn get(&self, point: HookPoint) -> Option<&Tensor<3>> {
        self.tensors.get(&point)
    }
}

pub struct ForwardOutput {
    pub cache: ActivationCache,
    /// `[batch, 1 or seq, vocab]` when asked for.
    pub logits: Option<Tensor<3>>,
}

/// Past keys/values of every layer plus the padding of the batch they belong to.
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<Option<LayerKv>>,
    pad_lens: Vec<usize>,
    past_len: usize,
}

impl KvCache {
    pub fn past_len(&self) -> usize {
        self.past_len
    }

    /// The cache of some of the batch's sequences (in the order given), to go on decoding
    /// only those, e.g. retrying some prompts of a batch without prefilling them again.
    pub fn select_rows(&self, rows: &[usize]) -> Result<KvCache> {
        let batch = self.pad_lens.len();
        if let Some(r) = rows.iter().find(|&&r| r >= batch) {
            return Err(Error::Input(format!("row {r} of a batch of {batch}")));
        }
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                layer.as_ref().map(|kv| {
                    let index = row_index(rows, &kv.k.device());
                    LayerKv {
                        k: kv.k.clone().select(0, index.clone()),
                        v: kv.v.clone().select(0, index),
                    }
                })
            })
            .collect();
        Ok(KvCache {
            layers,
            pad_lens: rows.iter().map(|&r| self.pad_lens[r]).collect(),
            past_len: self.past_len,
        })
    }
}

fn row_index(rows: &[usize], device: &Device) -> Tensor<1, Int> {
    let ids: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    Tensor::from_data(TensorData::new(ids, [rows.len()]), device)
}

/// Rows of a `[batch, …]` tensor (the last-position logits of a prefill).
pub fn select_rows<const D: usize>(t: &Tensor<D>, rows: &[usize]) -> Tensor<D> {
    t.clone().select(0, row_index(rows, &t.device()))
}

impl Transformer {
    pub fn load(
        config: ModelConfig,
        weights: &Weights,
        device: &Device,
        plan: LoadPlan,
        progress: &dyn Fn(usize, usize),
    ) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let loader = Loader {
            weights,
            device,
            precision: plan.precision,
        };
        let n_blocks = match plan.blocks {
            Some(n) if n > c.num_layers => {
                return Err(Error::Input(format!(
                    "asked to load {n} blocks of a model with {}",
                    c.num_layers
                )))
            }
            Some(n) => n,
            None => c.num_layers,
        };
        let with_head = plan.blocks.is_none();
        let total = n_blocks + 1;
        progress(0, total);
        let embed_tokens = Embedding::load(&loader, c.vocab_size, c.hidden_size)?;
        let mut layers = Vec::with_capacity(n_blocks);
        let switches = &c.switches;
        for l in 0..n_blocks {
            let p = format!("model.layers.{l}");
            let norm = |name: &str| {
                RmsNorm::load_for(
                    &loader,
                    &format!("{p}.{name}.weight"),
                    c.hidden_size,
                    c.rms_norm_eps,
                    switches,
                )
            };
            let sandwich = switches.sandwich_norms;
            layers.push(Block {
                attn_norm: norm("input_layernorm")?,
                self_attn: Attention::load(&loader, &format!("{p}.self_attn"), c)?,
                attn_out_norm: sandwich
                    .then(|| norm("post_attention_layernorm"))
                    .transpose()?,
                mlp_norm: norm(if sandwich {
                    "pre_feedforward_layernorm"
                } else {
                    "post_attention_layernorm"
                })?,
                mlp: GatedMlp::load(
                    &loader,
                    &format!("{p}.mlp"),
                    c.hidden_size,
                    c.intermediate_size,
                    c.mlp_bias,
                    switches.activation,
                )?,
                mlp_out_norm: sandwich
                    .then(|| norm("post_feedforward_layernorm"))
                    .transpose()?,
            });
            progress(l + 1, total);
        }
        let (norm, lm_head) = if with_head {
            let norm = RmsNorm::load_for(
                &loader,
                "model.norm.weight",
                c.hidden_size,
                c.rms_norm_eps,
                switches,
            )?;
            // Some tied checkpoints still ship lm_head.weight (ignored, as transformers does).
            // An untied config without one is refused: transformers would initialize a random
            // head, and reusing the embedding would give logits no reference reproduces.
            if !c.tie_word_embeddings && !weights.contains("lm_head.weight") {
                return Err(Error::Config(
                    "the checkpoint has no `lm_head.weight`, but config.json has \
                     tie_word_embeddings = false (or leaves it out, which means false for this \
                     architecture); if the output head is the embedding, set it to true"
                        .into(),
                ));
            }
            let lm_head = if c.tie_word_embeddings {
                None
            } else {
                Some(Linear::load(
                    &loader,
                    "lm_head",
                    c.hidden_size,
                    c.vocab_size,
                    false,
                )?)
            };
            (Some(norm), lm_head)
        } else {
            (None, None)
        };
        progress(total, total);
        let kernel = default_kernel(device);
        let inv_freq = crate::layers::rope::inv_freq_for(
            c.head_dim,
            c.rope_theta,
            c.rope_scaling.as_ref(),
            device,
        );
        let inv_freq_local = c.switches.local_rope.as_ref().map(|local| {
            crate::layers::rope::inv_freq_for(
                c.head_dim,
                local.theta,
                local.scaling.as_ref(),
                device,
            )
        });
        Ok(Transformer {
            embed_tokens,
            layers,
            norm,
            lm_head,
            inv_freq,
            inv_freq_local,
            config,
            kernel,
            precision: plan.precision,
            fast_decode: false,
            device: device.clone(),
        })
    }

    /// Where the model computes (with block-stored embeddings the table has no device; an
    /// autodiff device must still reach the activations made from it).
    pub fn device(&self) -> Device {
        match &self.embed_tokens.table {
            Some(t) => t.val().device(),
            None => self.device.clone(),
        }
    }

    /// Decoding steps with block-stored weights round the activations to 8 bits, as llama.cpp
    /// does (`kernels::quantized::q8`): 1.5–2.5× faster on K-quant models, logits shifted by that
    /// rounding. Off by default: decoding then computes what the dequantized model computes.
    pub fn set_fast_decode(&mut self, on: bool) {
        self.fast_decode = on;
    }

    pub fn fast_decode(&self) -> bool {
        self.fast_decode
    }

    /// How the weights are held and the type the forward computes in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Whether the final norm and the unembedding were loaded (see [`LoadPlan::blocks`]).
    pub fn has_head(&self) -> bool {
        self.norm.is_some()
    }

    /// Checks that the loaded blocks (and head) cover a forward through `run_layers` blocks.
    fn check_loaded(&self, run_layers: usize, logits: bool) -> Result<()> {
        let loaded = self.layers.len();
        if run_layers > loaded || (logits && !self.has_head()) {
            let need = if logits {
                format!("all {} blocks and the output head", self.config.num_layers)
            } else {
                format!("blocks 0..{run_layers}")
            };
            return Err(Error::Input(format!(
                "this model was loaded with blocks 0..{loaded} only and no output head; this \
                 needs {need}: load it without a block limit"
            )));
        }
        Ok(())
    }

    /// Chooses the attention kernel (tests compare the two).
    pub fn set_sdpa_kernel(&mut self, kernel: SdpaKernel) {
        self.kernel = kernel;
    }

    /// Column `neuron` of `down_proj` in layer `layer` is a value vector; this returns the
    /// whole `[intermediate, hidden]` matrix of them, one value vector per row, as f32.
    pub fn value_vectors(&self, layer: usize) -> Option<Tensor<2>> {
        let device = self.device();
        self.layers
            .get(layer)
            .map(|b| b.mlp.down_proj.weight_f32(&device))
    }

    /// The unembedding as `[hidden, vocab]`, f32.
    pub fn unembedding(&self) -> Tensor<2> {
        let device = self.device();
        match &self.lm_head {
            Some(l) => l.weight_f32(&device),
            None => self.embed_tokens.table_f32(&device).transpose(),
        }
    }

    /// The final norm's weight as f32, `None` when the head was not loaded.
    pub fn final_norm_weight(&self) -> Option<Tensor<1>> {
        self.norm.as_ref().map(|n| n.weight.val().cast(DType::F32))
    }

    /// The longest prompt of `batch` must fit the model's context: positions past
    /// `max_position_embeddings` were never trained, and would be run in silence.
    fn check_context(&self, batch: &Batch) -> Result<()> {
        let longest = batch.seq_len - batch.pad_lens.iter().copied().min().unwrap_or(0);
        let context = self.config.max_position_embeddings;
        if longest > context {
            return Err(crate::Error::Input(format!(
                "a prompt of {longest} tokens is longer than the model's context of {context} tokens"
            )));
        }
        Ok(())
    }

    /// A full forward pass over a left-padded batch, recording the hooked points. Stops after
    /// the last block any hook needs unless logits are asked for.
    pub fn forward(
        &self,
        batch: &Batch,
        hooks: &HookSpec,
        logits: Logits,
    ) -> Result<ForwardOutput> {
        crate::interrupt::check()?;
        hooks.validate(self.config.num_layers)?;
        self.check_ids(&batch.input_ids)?;
        self.check_context(batch)?;
        let run_layers = if logits == Logits::None {
            hooks.last_layer().map_or(0, |l| l + 1)
        } else {
            self.config.num_layers
        };
        self.check_loaded(run_layers, logits != Logits::None)?;
        let mut cache = ActivationCache::default();
        let positions = batch.position_ids();
        let step = Step::prompt(batch, &positions);
        let hidden = self.run(
            &step,
            None,
            &mut HookSite::new(hooks, &mut cache),
            run_layers,
        );
        let logits = self.logits(hidden, logits);
        Ok(ForwardOutput { cache, logits })
    }

    /// Runs the prompt of a generation and returns last-position logits and the KV cache.
    pub fn prefill(&self, batch: &Batch) -> Result<(Tensor<3>, KvCache)> {
        crate::interrupt::check()?;
        self.check_ids(&batch.input_ids)?;
        self.check_context(batch)?;
        self.check_loaded(self.config.num_layers, true)?;
        let mut kv = KvCache {
            layers: vec![None; self.config.num_layers],
            pad_lens: batch.pad_lens.clone(),
            past_len: 0,
        };
        let positions = batch.position_ids();
        let step = Step::prompt(batch, &positions);
        let hidden = self.run_unhooked(&step, Some(&mut kv), self.config.num_layers);
        kv.past_len = batch.seq_len;
        let logits = self.logits(hidden, Logits::Last).expect("asked for logits");
        Ok((logits, kv))
    }

    /// The keys and values of one shared prompt prefix (batch of 1), through the layers that
    /// `hooks` needs, for [`Self::forward_continuations`].
    pub fn prefix(&self, ids: &[u32], hooks: &HookSpec) -> Result<KvCache> {
        if ids.is_empty() {
            return Err(Error::Input("empty prefix".into()));
        }
        hooks.validate(self.config.num_layers)?;
        self.check_ids(ids)?;
        let run_layers = hooks.last_layer().map_or(0, |l| l + 1);
        self.check_loaded(run_layers, false)?;
        let mut kv = KvCache {
            layers: vec![None; self.config.num_layers],
            pad_lens: vec![0],
            past_len: 0,
        };
        let positions: Vec<i64> = (0..ids.len() as i64).collect();
        let step = Step {
            ids,
            positions: &positions,
            batch: 1,
            seq: ids.len(),
            pad_lens: &[0],
            past: 0,
        };
        self.run_unhooked(&step, Some(&mut kv), run_layers);
        kv.past_len = ids.len();
        Ok(kv)
    }

    /// Runs several continuations of one prefix in a batch, recording `hooks`: each row is
    /// `prefix ++ suffixes[b]`, with the prefix computed once. Suffixes are right-padded with
    /// `pad_id`; causal attention keeps the padding invisible to every real token, so row b's
    /// activations at suffix positions `0..suffixes[b].len()` equal those of the full prompt
    /// run alone. Returned tensors are `[batch, longest suffix, dim]`.
    pub fn forward_continuations(
        &self,
        prefix: &KvCache,
        suffixes: &[Vec<u32>],
        pad_id: u32,
        hooks: &HookSpec,
    ) -> Result<ActivationCache> {
        crate::interrupt::check()?;
        hooks.validate(self.config.num_layers)?;
        if prefix.pad_lens.len() != 1 {
            return Err(Error::Input(
                "a shared prefix must be a batch of one".into(),
            ));
        }
        if suffixes.is_empty() || suffixes.iter().any(Vec::is_empty) {
            return Err(Error::Input(
                "every continuation needs at least one token".into(),
            ));
        }
        let batch = suffixes.len();
        let seq = suffixes.iter().map(Vec::len).max().unwrap_or(0);
        let past = prefix.past_len;
        let mut ids = Vec::with_capacity(batch * seq);
        for s in suffixes {
            self.check_ids(s)?;
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(pad_id, seq - s.len()));
        }
        let positions: Vec<i64> = (0..batch)
            .flat_map(|_| (past..past + seq).map(|p| p as i64))
            .collect();
        let mut kv = KvCache {
            layers: prefix
                .layers
                .iter()
                .map(|l| {
                    l.as_ref().map(|l| LayerKv {
                        k: l.k.clone().repeat_dim(0, batch),
                        v: l.v.clone().repeat_dim(0, batch),
                    })
                })
                .collect(),
            pad_lens: vec![0; batch],
            past_len: past,
        };
        let run_layers = hooks.last_layer().map_or(0, |l| l + 1);
        if prefix.layers.iter().take(run_layers).any(Option::is_none) {
            return Err(Error::Input(
                "the prefix was computed for fewer layers than these hooks need".into(),
            ));
        }
        let mut cache = ActivationCache::default();
        let pad_lens = vec![0; batch];
        let step = Step {
            ids: &ids,
            positions: &positions,
            batch,
            seq,
            pad_lens: &pad_lens,
            past,
        };
        self.run(
            &step,
            Some(&mut kv),
            &mut HookSite::new(hooks, &mut cache),
            run_layers,
        );
        Ok(cache)
    }

    /// Feeds one new token per sequence; returns its logits `[batch, 1, vocab]`.
    pub fn decode_step(&self, tokens: &[u32], kv: &mut KvCache) -> Result<Tensor<3>> {
        crate::interrupt::check()?;
        if tokens.len() != kv.pad_lens.len() {
            return Err(Error::Input(format!(
                "{} tokens for a batch of {}",
                tokens.len(),
                kv.pad_lens.len()
            )));
        }
        self.check_ids(tokens)?;
        self.check_loaded(self.config.num_layers, true)?;
        // With fast decoding, block-stored weights take 8-bit activations for this step.
        let _decoding = self.fast_decode.then(crate::kernels::quantized::decoding);
        let positions: Vec<i64> = kv
            .pad_lens
            .iter()
            .map(|&p| (kv.past_len - p) as i64)
            .collect();
        let pad_lens = kv.pad_lens.clone();
        let past = kv.past_len;
        let step = Step {
            ids: tokens,
            positions: &positions,
            batch: tokens.len(),
            seq: 1,
            pad_lens: &pad_lens,
            past,
        };
        let hidden = self.run_unhooked(&step, Some(kv), self.config.num_layers);
        kv.past_len += 1;
        Ok(self.logits(hidden, Logits::Last).expect("asked for logits"))
    }

    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        match ids.iter().find(|&&t| t as usize >= self.config.vocab_size) {
            Some(t) => Err(Error::Input(format!(
                "token id {t} is outside the vocabulary (size {})",
                self.config.vocab_size
            ))),
            None => Ok(()),
        }
    }

    /// `[batch, 1, seq, past + seq]`, true where a key is hidden: padding, the future, and
    /// keys beyond `window` (a query sees itself and the `window − 1` keys before it).
    fn mask(
        &self,
        batch: usize,
        seq: usize,
        pad_lens: &[usize],
        past: usize,
        window: Option<usize>,
        device: &Device,
    ) -> AttentionMask {
        let total = past + seq;
        // A padding query sees no key at all; backends' fused kernels (PyTorch's) turn such a
        // row into NaN, which later reaches real tokens as 0·NaN. There it sees itself instead
        // (its output is padding either way). probe's CPU kernel writes zeros for it.
        let pad_sees_itself = *device != Device::flex();
        let mut m = Vec::with_capacity(batch * seq * total);
        for &pad in pad_lens.iter().take(batch) {
            for i in 0..seq {
                let q = past + i;
                for j in 0..total {
                    let outside_window = window.is_some_and(|w| q >= w && j <= q - w);
                    let hidden = j < pad || j > q || outside_window;
                    m.push(hidden && !(pad_sees_itself && q < pad && j == q));
                }
            }
        }
        let mut mask = AttentionMask::new(m, batch, seq, total, device);
        mask.causal_only =
            past == 0 && window.is_none_or(|w| seq <= w) && pad_lens.iter().all(|&p| p == 0);
        mask
    }

    /// The blocks `0..run_layers` over `step`, from the embedding to the last block's residual
    /// stream (`hook_embed` and every block's hook points handed to `hooks`).
    fn run(
        &self,
        step: &Step<'_>,
        mut kv: Option<&mut KvCache>,
        hooks: &mut HookSite<'_>,
        run_layers: usize,
    ) -> Tensor<3> {
        let device = self.device();
        let compute = self.precision.compute;
        let Step {
            ids,
            positions,
            batch,
            seq,
            pad_lens,
            past,
        } = *step;
        let mut x = self.embed_tokens.forward(ids, batch, seq, &device);
        if self.config.switches.scale_embedding {
            // transformers: `embed * tensor(hidden ** 0.5).to(dtype)`: the factor rounded to
            // the activations' type first
            let factor = (self.config.hidden_size as f64).sqrt();
            let factor = Tensor::<1>::from_data(TensorData::new(vec![factor as f32], [1]), &device)
                .cast(x.dtype());
            x = x.mul(factor.unsqueeze::<3>());
        }
        hooks.at(HookPoint::Embed, &x);
        // Global and sliding layers may differ in window and RoPE: tables and masks for each
        // kind the run meets, built once.
        let c = &self.config;
        let slides = |l: usize| c.layer_slides(l);
        let any_sliding = (0..run_layers).any(slides);
        let any_full = (0..run_layers).any(|l| !slides(l));
        let rope = RopeTables::new(&self.inv_freq, positions, batch, seq, &device, compute);
        let rope_local = match (&self.inv_freq_local, any_sliding) {
            (Some(inv), true) => Some(RopeTables::new(
                inv, positions, batch, seq, &device, compute,
            )),
            _ => None,
        };
        let full_mask = any_full.then(|| self.mask(batch, seq, pad_lens, past, None, &device));
        let sliding_mask =
            any_sliding.then(|| self.mask(batch, seq, pad_lens, past, c.sliding_window, &device));
        let full = full_mask.as_ref().map(|mask| BlockInputs {
            rope: &rope,
            mask,
            kernel: self.kernel,
        });
        let sliding = sliding_mask.as_ref().map(|mask| BlockInputs {
            rope: rope_local.as_ref().unwrap_or(&rope),
            mask,
            kernel: self.kernel,
        });
        for (l, block) in self.layers.iter().enumerate().take(run_layers) {
            let inputs = if slides(l) {
                sliding.as_ref().expect("built for sliding layers")
            } else {
                full.as_ref().expect("built for full layers")
            };
            let slot = kv.as_deref_mut().map(|c| &mut c.layers[l]);
            x = block.forward(l, x, inputs, slot, hooks);
        }
        x
    }

    /// [`Self::run`] with no hook point recorded (prefill, prefixes, decoding).
    fn run_unhooked(
        &self,
        step: &Step<'_>,
        kv: Option<&mut KvCache>,
        run_layers: usize,
    ) -> Tensor<3> {
        let mut none = ActivationCache::default();
        self.run(
            step,
            kv,
            &mut HookSite::new(&HookSpec::new(), &mut none),
            run_layers,
        )
    }

    /// Logits as f32 (callers checked that the head is loaded).
    fn logits(&self, hidden: Tensor<3>, which: Logits) -> Option<Tensor<3>> {
        let [b, s, d] = hidden.dims();
        let h = match which {
            Logits::None => return None,
            Logits::Last => hidden.narrow(1, s - 1, 1),
            Logits::All => hidden,
        };
        let h = self.norm.as_ref().expect("head loaded").forward(h);
        let rows = h.dims()[1];
        let logits = match (&self.lm_head, &self.embed_tokens) {
            (Some(head), _) => head.forward(h),
            (
                None,
                Embedding {
                    table: Some(table), ..
                },
            ) => h
                .reshape([b * rows, d])
                .matmul(table.val().transpose())
                .reshape([b, rows, self.config.vocab_size]),
            (
                None,
                Embedding {
                    blocks: Some(blocks),
                    ..
                },
            ) => crate::layers::fused::frozen::any_block_linear(h.reshape([b * rows, d]), blocks)
                .reshape([b, rows, self.config.vocab_size]),
            (None, _) => unreachable!("an embedding holds a table"),
        };
        // Gemma: `cap · tanh(logits / cap)` in the compute type, as transformers caps them
        let logits = match self.config.switches.final_logit_softcap {
            Some(cap) => crate::layers::soft_cap(logits, cap),
            None => logits,
        };
        Some(logits.cast(DType::F32))
    }
}

/// Fused attention where it is known to be right: probe's own kernel on Flex, PyTorch's
/// `scaled_dot_product_attention` on libtorch (given the mask inverted, as burn-tch passes
/// burn's "true = hidden" mask unchanged to PyTorch's "true = attend", and K/V heads repeated);
/// composed ops elsewhere (autodiff, other backends).
fn default_kernel(device: &Device) -> SdpaKernel {
    if device.is_autodiff() {
        SdpaKernel::Composed
    } else if *device == Device::flex() || crate::device::is_libtorch(device) {
        SdpaKernel::Fused
    } else {
        SdpaKernel::Composed
    }
}
