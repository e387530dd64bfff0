use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, DType, Device, Tensor, TensorData};

use super::fused;
use super::linear::Linear;
use super::rms_norm::RmsNorm;
use super::rope::RopeTables;
use super::Loader;
use crate::config::ModelConfig;
use crate::error::Result;

/// Keys and values of the positions seen so far, `[batch, kv_heads, past, head_dim]`.
#[derive(Debug, Clone)]
pub struct LayerKv {
    pub k: Tensor<4>,
    pub v: Tensor<4>,
}

/// Which keys each query may not see: `[batch, 1, seq, keys]`, true where a key is hidden
/// (padding, the future, beyond a sliding window), as a device tensor and on the host.
#[derive(Debug, Clone)]
pub struct AttentionMask {
    pub tensor: Tensor<4, Bool>,
    hidden: Vec<bool>,
    /// Nothing hidden but the future (no padding, no past, no window): fused kernels may take
    /// their causal fast path instead of reading the mask.
    pub causal_only: bool,
}

impl AttentionMask {
    /// `hidden` is `[batch, seq, keys]` row-major.
    pub fn new(hidden: Vec<bool>, batch: usize, seq: usize, keys: usize, device: &Device) -> Self {
        assert_eq!(hidden.len(), batch * seq * keys, "mask shape");
        let tensor = Tensor::from_data(
            TensorData::new(hidden.clone(), [batch, 1, seq, keys]),
            device,
        );
        AttentionMask {
            tensor,
            hidden,
            causal_only: false,
        }
    }
}

/// How scaled dot-product attention is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpaKernel {
    /// A fused kernel: on Flex f32 probe's own (`layers::fused`), elsewhere the backend's.
    Fused,
    /// Plain tensor ops (matmul, masked softmax): works on every backend and under autodiff.
    Composed,
}

/// Grouped-query self-attention with RoPE; Gemma's q/k norms, query scale and soft-capping
/// where the config has them.
#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    /// RMSNorm of each query / key head before RoPE (Gemma 3).
    pub q_norm: Option<RmsNorm>,
    pub k_norm: Option<RmsNorm>,
    #[module(skip)]
    pub n_heads: usize,
    #[module(skip)]
    pub n_kv_heads: usize,
    #[module(skip)]
    pub head_dim: usize,
    /// Multiplies the scores: `head_dim^-1/2`, or Gemma's `query_pre_attn_scalar^-1/2`.
    #[module(skip)]
    pub scale: f64,
    /// `cap · tanh(score / cap)` after scaling, before the mask (Gemma 2).
    #[module(skip)]
    pub softcap: Option<f64>,
}

impl Attention {
    pub(crate) fn load(loader: &Loader<'_>, prefix: &str, c: &ModelConfig) -> Result<Self> {
        let (d, hd) = (c.hidden_size, c.head_dim);
        let linear = |name: &str, d_in, d_out, bias| {
            Linear::load(loader, &format!("{prefix}.{name}"), d_in, d_out, bias)
        };
        let s = &c.switches;
        let head_norm = |name: &str| -> Result<Option<RmsNorm>> {
            s.qk_norm
                .then(|| {
                    RmsNorm::load_for(
                        loader,
                        &format!("{prefix}.{name}.weight"),
                        hd,
                        c.rms_norm_eps,
                        s,
                    )
                })
                .transpose()
        };
        Ok(Attention {
            q_proj: linear("q_proj", d, c.num_heads * hd, c.qkv_bias)?,
            k_proj: linear("k_proj", d, c.num_kv_heads * hd, c.qkv_bias)?,
            v_proj: linear("v_proj", d, c.num_kv_heads * hd, c.qkv_bias)?,
            o_proj: linear("o_proj", c.num_heads * hd, d, c.o_bias)?,
            q_norm: head_norm("q_norm")?,
            k_norm: head_norm("k_norm")?,
            n_heads: c.num_heads,
            n_kv_heads: c.num_kv_heads,
            head_dim: hd,
            // transformers multiplies by `scalar ** -0.5` (a Python float)
            scale: s.query_pre_attn_scalar.unwrap_or(hd as f64).powf(-0.5),
            softcap: s.attn_logit_softcap,
        })
    }

    fn heads(&self, x: Tensor<3>, n: usize) -> Tensor<4> {
        let [b, s, _] = x.dims();
        x.reshape([b, s, n, self.head_dim]).swap_dims(1, 2)
    }

    /// Returns the attention output after `o_proj` and the per-head outputs before it
    /// (`attn.hook_z`, flattened over heads), the latter only when `want_z`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        rope: &RopeTables,
        mask: &AttentionMask,
        kv: Option<&mut Option<LayerKv>>,
        kernel: SdpaKernel,
        want_z: bool,
    ) -> (Tensor<3>, Option<Tensor<3>>) {
        let [b, s, _] = x.dims();
        let mut q = self.q_proj.forward(x.clone());
        let mut k = self.k_proj.forward(x.clone());
        let v = self.v_proj.forward(x);
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward_heads(q, self.head_dim);
            k = kn.forward_heads(k, self.head_dim);
        }
        // On Flex the projections go to head layout (and RoPE) in one pass each, and attention
        // writes `[batch, seq, heads·head_dim]` directly; elsewhere burn's ops do it.
        let own_kernels = kernel == SdpaKernel::Fused && fused::fusable(&q);
        let (q, mut k, mut v) = if own_kernels {
            let tables = Some(rope.host_tables());
            (
                fused::split_heads(q, self.n_heads, self.head_dim, tables),
                fused::split_heads(k, self.n_kv_heads, self.head_dim, tables),
                fused::split_heads(v, self.n_kv_heads, self.head_dim, None),
            )
        } else {
            (
                rope.apply(self.heads(q, self.n_heads)),
                rope.apply(self.heads(k, self.n_kv_heads)),
                self.heads(v, self.n_kv_heads),
            )
        };
        if let Some(slot) = kv {
            if let Some(past) = slot.take() {
                k = Tensor::cat(vec![past.k, k], 2);
                v = Tensor::cat(vec![past.v, v], 2);
            }
            *slot = Some(LayerKv {
                k: k.clone(),
                v: v.clone(),
            });
        }
        let merge_heads = |z: Tensor<4>| {
            z.swap_dims(1, 2)
                .reshape([b, s, self.n_heads * self.head_dim])
        };
        let z = match kernel {
            SdpaKernel::Fused if own_kernels => {
                fused::attention(q, k, v, &mask.hidden, self.scale, self.softcap)
            }
            // PyTorch's fused kernels know no soft-capping (transformers runs Gemma 2 eagerly)
            SdpaKernel::Fused if self.softcap.is_none() => {
                merge_heads(self.backend_sdpa(q, k, v, mask))
            }
            _ => merge_heads(self.composed_sdpa(q, k, v, mask.tensor.clone())),
        };
        let hook_z = want_z.then(|| z.clone());
        (self.o_proj.forward(z), hook_z)
    }

    /// K/V heads repeated to one per query head (grouped-query attention).
    fn expand_kv(&self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let rep = self.n_heads / self.n_kv_heads;
        if rep == 1 {
            return (k, v);
        }
        let [b, kvh, t, hd] = k.dims();
        let expand = |x: Tensor<4>| {
            x.unsqueeze_dim::<5>(2)
                .repeat_dim(2, rep)
                .reshape([b, kvh * rep, t, hd])
        };
        (expand(k), expand(v))
    }

    /// The backend's fused attention (libtorch: PyTorch's `scaled_dot_product_attention`,
    /// flash / memory-efficient kernels on a GPU).
    fn backend_sdpa(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: &AttentionMask,
    ) -> Tensor<4> {
        #[cfg(feature = "tch")]
        if crate::device::is_libtorch(&q.device()) {
            // burn's mask marks hidden keys; PyTorch's marks the ones to attend.
            let attend = (!mask.causal_only).then(|| mask.tensor.clone().bool_not());
            return super::libtorch::attention(q, k, v, attend, mask.causal_only, Some(self.scale));
        }
        let (k, v) = self.expand_kv(k, v);
        let dtype = q.dtype();
        let libtorch = crate::device::is_libtorch(&q.device());
        // PyTorch's kernels accumulate half-precision attention in f32 and round once; other
        // backends get f32 inputs to do the same.
        let upcast = !libtorch && dtype != DType::F32;
        let (q, k, v) = if upcast {
            (q.cast(DType::F32), k.cast(DType::F32), v.cast(DType::F32))
        } else {
            (q, k, v)
        };
        // burn's mask marks hidden keys; burn-tch hands it to PyTorch unchanged, where `true`
        // means "attend".
        let mask_tensor = if libtorch {
            mask.tensor.clone().bool_not()
        } else {
            mask.tensor.clone()
        };
        let [b, h, sq, t] = [q.dims()[0], q.dims()[1], q.dims()[2], k.dims()[2]];
        let z = burn::tensor::module::attention(
            q,
            k,
            v,
            Some(mask_tensor.expand([b, h, sq, t])),
            None,
            burn::tensor::ops::AttentionModuleOptions {
                scale: Some(self.scale),
                softcap: None,
                is_causal: false,
            },
        );
        z.cast(dtype)
    }

    /// Attention from plain tensor ops. Half-precision inputs are computed in f32 and the
    /// output rounded once, as PyTorch's fused kernels (transformers' default) do.
    fn composed_sdpa(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: Tensor<4, Bool>,
    ) -> Tensor<4> {
        let (k, v) = self.expand_kv(k, v);
        let dtype = q.dtype();
        if let Some(cap) = self.softcap {
            return Self::eager_softcapped(q, k, v, mask, self.scale, cap);
        }
        let (q, k, v) = (q.cast(DType::F32), k.cast(DType::F32), v.cast(DType::F32));
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(self.scale);
        // A large finite fill (not -inf) keeps fully masked rows (left padding) finite:
        // they become uniform instead of NaN, and NaN would leak through 0·NaN later.
        let [b, h, sq, t] = scores.dims();
        let scores = scores.mask_fill(mask.expand([b, h, sq, t]), -1.0e30);
        softmax(scores, 3).matmul(v).cast(dtype)
    }

    /// Soft-capped attention as transformers computes it (eagerly, Gemma 2 has no fused
    /// kernel): every step in the activations' type, the softmax in f32 and rounded back.
    /// In f32 this is the plain computation.
    fn eager_softcapped(
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: Tensor<4, Bool>,
        scale: f64,
        cap: f64,
    ) -> Tensor<4> {
        let dtype = q.dtype();
        let scores = q.matmul(k.swap_dims(2, 3));
        let scores = super::scalar_op(scores, |t| t.mul_scalar(scale));
        let scores = super::soft_cap(scores, cap).cast(DType::F32);
        let [b, h, sq, t] = scores.dims();
        let scores = scores.mask_fill(mask.expand([b, h, sq, t]), -1.0e30);
        softmax(scores, 3).cast(dtype).matmul(v)
    }
}
