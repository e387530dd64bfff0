//! The decoder-only transformer shared by Llama, Qwen2 and Mistral, with hooks.

use std::collections::BTreeMap;

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::hooks::{HookPoint, HookSpec};
use crate::layers::attention::{Attention, AttentionMask, LayerKv, SdpaKernel};
use crate::layers::linear::Linear;
use crate::layers::mlp::SwiGluMlp;
use crate::layers::rms_norm::RmsNorm;
use crate::layers::rope::RopeTables;
use crate::layers::to_device;
use crate::weights::Weights;

/// One pre-norm decoder block.
#[derive(Module, Debug)]
pub struct Block {
    pub input_layernorm: RmsNorm,
    pub self_attn: Attention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: SwiGluMlp,
}

#[derive(Module, Debug)]
pub struct Transformer {
    /// `[vocab, hidden]`
    pub embed_tokens: Param<Tensor<2>>,
    pub layers: Vec<Block>,
    pub norm: RmsNorm,
    /// `lm_head.weight` as `[hidden, vocab]`; `None` when tied to the embedding.
    pub lm_head: Option<Linear>,
    #[module(skip)]
    pub config: ModelConfig,
    #[module(skip)]
    inv_freq: Vec<f32>,
    #[module(skip)]
    kernel: SdpaKernel,
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
        progress: &dyn Fn(usize, usize),
    ) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let embed = weights.get("model.embed_tokens.weight", &[c.vocab_size, c.hidden_size])?;
        let embed_tokens = Param::from_tensor(to_device(embed, device));
        let total = c.num_layers + 1;
        let mut layers = Vec::with_capacity(c.num_layers);
        for l in 0..c.num_layers {
            progress(l, total);
            let p = format!("model.layers.{l}");
            layers.push(Block {
                input_layernorm: RmsNorm::load(
                    weights,
                    &format!("{p}.input_layernorm.weight"),
                    c.hidden_size,
                    c.rms_norm_eps,
                    device,
                )?,
                self_attn: Attention::load(weights, &format!("{p}.self_attn"), c, device)?,
                post_attention_layernorm: RmsNorm::load(
                    weights,
                    &format!("{p}.post_attention_layernorm.weight"),
                    c.hidden_size,
                    c.rms_norm_eps,
                    device,
                )?,
                mlp: SwiGluMlp::load(
                    weights,
                    &format!("{p}.mlp"),
                    c.hidden_size,
                    c.intermediate_size,
                    c.mlp_bias,
                    device,
                )?,
            });
        }
        let norm = RmsNorm::load(
            weights,
            "model.norm.weight",
            c.hidden_size,
            c.rms_norm_eps,
            device,
        )?;
        // Some tied checkpoints still ship lm_head.weight; a missing one means tied.
        let lm_head = if c.tie_word_embeddings || !weights.contains("lm_head.weight") {
            None
        } else {
            Some(Linear::load(
                weights,
                "lm_head",
                c.hidden_size,
                c.vocab_size,
                false,
                device,
            )?)
        };
        progress(total, total);
        let kernel = default_kernel(device);
        Ok(Transformer {
            embed_tokens,
            layers,
            norm,
            lm_head,
            inv_freq: config.rope_inv_freq(),
            config,
            kernel,
        })
    }

    pub fn device(&self) -> Device {
        self.embed_tokens.val().device()
    }

    /// Chooses the attention kernel (tests compare the two).
    pub fn set_sdpa_kernel(&mut self, kernel: SdpaKernel) {
        self.kernel = kernel;
    }

    /// Column `neuron` of `down_proj` in layer `layer` is a value vector; this returns the
    /// whole `[intermediate, hidden]` matrix of them, one value vector per row.
    pub fn value_vectors(&self, layer: usize) -> Option<Tensor<2>> {
        self.layers.get(layer).map(|b| b.mlp.down_proj.weight.val())
    }

    /// The unembedding as `[hidden, vocab]`.
    pub fn unembedding(&self) -> Tensor<2> {
        match &self.lm_head {
            Some(l) => l.weight.val(),
            None => self.embed_tokens.val().transpose(),
        }
    }

    /// A full forward pass over a left-padded batch, recording the hooked points. Stops after
    /// the last block any hook needs unless logits are asked for.
    pub fn forward(
        &self,
        batch: &Batch,
        hooks: &HookSpec,
        logits: Logits,
    ) -> Result<ForwardOutput> {
        hooks.validate(self.config.num_layers)?;
        self.check_ids(&batch.input_ids)?;
        let run_layers = if logits == Logits::None {
            hooks.last_layer().map_or(0, |l| l + 1)
        } else {
            self.config.num_layers
        };
        let mut cache = ActivationCache::default();
        let positions = batch.position_ids();
        let hidden = self.run(
            &batch.input_ids,
            &positions,
            batch.batch_size,
            batch.seq_len,
            &batch.pad_lens,
            0,
            None,
            hooks,
            run_layers,
            &mut cache,
        );
        let logits = self.logits(hidden, logits);
        Ok(ForwardOutput { cache, logits })
    }

    /// Runs the prompt of a generation and returns last-position logits and the KV cache.
    pub fn prefill(&self, batch: &Batch) -> Result<(Tensor<3>, KvCache)> {
        self.check_ids(&batch.input_ids)?;
        let mut kv = KvCache {
            layers: vec![None; self.config.num_layers],
            pad_lens: batch.pad_lens.clone(),
            past_len: 0,
        };
        let positions = batch.position_ids();
        let hidden = self.run(
            &batch.input_ids,
            &positions,
            batch.batch_size,
            batch.seq_len,
            &batch.pad_lens,
            0,
            Some(&mut kv),
            &HookSpec::new(),
            self.config.num_layers,
            &mut ActivationCache::default(),
        );
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
        let mut kv = KvCache {
            layers: vec![None; self.config.num_layers],
            pad_lens: vec![0],
            past_len: 0,
        };
        let positions: Vec<i64> = (0..ids.len() as i64).collect();
        self.run(
            ids,
            &positions,
            1,
            ids.len(),
            &[0],
            0,
            Some(&mut kv),
            &HookSpec::new(),
            run_layers,
            &mut ActivationCache::default(),
        );
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
        self.run(
            &ids,
            &positions,
            batch,
            seq,
            &pad_lens,
            past,
            Some(&mut kv),
            hooks,
            run_layers,
            &mut cache,
        );
        Ok(cache)
    }

    /// Feeds one new token per sequence; returns its logits `[batch, 1, vocab]`.
    pub fn decode_step(&self, tokens: &[u32], kv: &mut KvCache) -> Result<Tensor<3>> {
        if tokens.len() != kv.pad_lens.len() {
            return Err(Error::Input(format!(
                "{} tokens for a batch of {}",
                tokens.len(),
                kv.pad_lens.len()
            )));
        }
        self.check_ids(tokens)?;
        let positions: Vec<i64> = kv
            .pad_lens
            .iter()
            .map(|&p| (kv.past_len - p) as i64)
            .collect();
        let pad_lens = kv.pad_lens.clone();
        let past = kv.past_len;
        let hidden = self.run(
            tokens,
            &positions,
            tokens.len(),
            1,
            &pad_lens,
            past,
            Some(kv),
            &HookSpec::new(),
            self.config.num_layers,
            &mut ActivationCache::default(),
        );
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
    /// keys beyond the sliding window.
    fn mask(
        &self,
        batch: usize,
        seq: usize,
        pad_lens: &[usize],
        past: usize,
        device: &Device,
    ) -> AttentionMask {
        let total = past + seq;
        let window = self.config.sliding_window;
        let mut m = Vec::with_capacity(batch * seq * total);
        for &pad in pad_lens.iter().take(batch) {
            for i in 0..seq {
                let q = past + i;
                for j in 0..total {
                    let outside_window = window.is_some_and(|w| q >= w && j <= q - w);
                    m.push(j < pad || j > q || outside_window);
                }
            }
        }
        AttentionMask::new(m, batch, seq, total, device)
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        ids: &[u32],
        positions: &[i64],
        batch: usize,
        seq: usize,
        pad_lens: &[usize],
        past: usize,
        mut kv: Option<&mut KvCache>,
        hooks: &HookSpec,
        run_layers: usize,
        cache: &mut ActivationCache,
    ) -> Tensor<3> {
        let device = self.device();
        let ids_i64: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
        let ids: Tensor<2, Int> =
            Tensor::from_data(TensorData::new(ids_i64, [batch, seq]), &device);
        let mut x = burn::tensor::module::embedding(self.embed_tokens.val(), ids);
        if hooks.contains(HookPoint::Embed) {
            cache.tensors.insert(HookPoint::Embed, x.clone());
        }
        let rope = RopeTables::new(&self.inv_freq, positions, batch, seq, &device);
        let mask = self.mask(batch, seq, pad_lens, past, &device);
        for (l, block) in self.layers.iter().enumerate().take(run_layers) {
            let mut record = |point: HookPoint, t: &Tensor<3>| {
                if hooks.contains(point) {
                    cache.tensors.insert(point, t.clone());
                }
            };
            record(HookPoint::ResidPre(l), &x);
            let slot = kv.as_deref_mut().map(|c| &mut c.layers[l]);
            let (attn, z) = block.self_attn.forward(
                block.input_layernorm.forward(x.clone()),
                &rope,
                &mask,
                slot,
                self.kernel,
                hooks.contains(HookPoint::AttnZ(l)),
            );
            if let Some(z) = z {
                record(HookPoint::AttnZ(l), &z);
            }
            x = x.add(attn);
            record(HookPoint::ResidMid(l), &x);
            let m = block
                .mlp
                .coefficients(block.post_attention_layernorm.forward(x.clone()));
            record(HookPoint::MlpPost(l), &m);
            x = x.add(block.mlp.project(m));
            record(HookPoint::ResidPost(l), &x);
        }
        x
    }

    fn logits(&self, hidden: Tensor<3>, which: Logits) -> Option<Tensor<3>> {
        let [b, s, d] = hidden.dims();
        let h = match which {
            Logits::None => return None,
            Logits::Last => hidden.narrow(1, s - 1, 1),
            Logits::All => hidden,
        };
        let h = self.norm.forward(h);
        Some(match &self.lm_head {
            Some(head) => head.forward(h),
            None => {
                let rows = h.dims()[1];
                h.reshape([b * rows, d])
                    .matmul(self.embed_tokens.val().transpose())
                    .reshape([b, rows, self.config.vocab_size])
            }
        })
    }
}

/// The fused kernel where the backend has a trustworthy one (Flex), the composed one elsewhere:
/// burn-tch's fused path passes burn's "true = masked" mask straight to PyTorch, whose boolean
/// mask means "true = attend", and it cannot share K/V heads.
fn default_kernel(device: &Device) -> SdpaKernel {
    if *device == Device::flex() {
        SdpaKernel::Fused
    } else {
        SdpaKernel::Composed
    }
}
