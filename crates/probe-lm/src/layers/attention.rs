use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Tensor};

use super::linear::Linear;
use super::rope::RopeTables;
use crate::config::ModelConfig;
use crate::error::Result;
use crate::weights::Weights;

/// Keys and values of the positions seen so far, `[batch, kv_heads, past, head_dim]`.
#[derive(Debug, Clone)]
pub struct LayerKv {
    pub k: Tensor<4>,
    pub v: Tensor<4>,
}

/// How scaled dot-product attention is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpaKernel {
    /// The backend's fused kernel (Flex: GQA without repeating K/V, no score tensor kept).
    Fused,
    /// Plain tensor ops (matmul, masked softmax): works on every backend and under autodiff.
    Composed,
}

/// Grouped-query self-attention with RoPE.
#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    #[module(skip)]
    pub n_heads: usize,
    #[module(skip)]
    pub n_kv_heads: usize,
    #[module(skip)]
    pub head_dim: usize,
}

impl Attention {
    pub fn load(weights: &Weights, prefix: &str, c: &ModelConfig, device: &Device) -> Result<Self> {
        let (d, hd) = (c.hidden_size, c.head_dim);
        let p = |name: &str| format!("{prefix}.{name}");
        Ok(Attention {
            q_proj: Linear::load(
                weights,
                &p("q_proj"),
                d,
                c.num_heads * hd,
                c.qkv_bias,
                device,
            )?,
            k_proj: Linear::load(
                weights,
                &p("k_proj"),
                d,
                c.num_kv_heads * hd,
                c.qkv_bias,
                device,
            )?,
            v_proj: Linear::load(
                weights,
                &p("v_proj"),
                d,
                c.num_kv_heads * hd,
                c.qkv_bias,
                device,
            )?,
            o_proj: Linear::load(weights, &p("o_proj"), c.num_heads * hd, d, c.o_bias, device)?,
            n_heads: c.num_heads,
            n_kv_heads: c.num_kv_heads,
            head_dim: hd,
        })
    }

    fn heads(&self, x: Tensor<3>, n: usize) -> Tensor<4> {
        let [b, s, _] = x.dims();
        x.reshape([b, s, n, self.head_dim]).swap_dims(1, 2)
    }

    /// Returns the attention output after `o_proj` and the per-head outputs before it
    /// (`attn.hook_z`, flattened over heads), the latter only when `want_z`.
    ///
    /// `mask` is `[batch, 1, seq, past + seq]`, `true` where a key must be ignored.
    pub fn forward(
        &self,
        x: Tensor<3>,
        rope: &RopeTables,
        mask: Tensor<4, Bool>,
        kv: Option<&mut Option<LayerKv>>,
        kernel: SdpaKernel,
        want_z: bool,
    ) -> (Tensor<3>, Option<Tensor<3>>) {
        let [b, s, _] = x.dims();
        let q = rope.apply(self.heads(self.q_proj.forward(x.clone()), self.n_heads));
        let mut k = rope.apply(self.heads(self.k_proj.forward(x.clone()), self.n_kv_heads));
        let mut v = self.heads(self.v_proj.forward(x), self.n_kv_heads);
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
        let z = match kernel {
            SdpaKernel::Fused => burn::tensor::module::attention(
                q,
                k,
                v,
                Some(mask),
                None,
                burn::tensor::ops::AttentionModuleOptions {
                    scale: None,
                    softcap: None,
                    is_causal: false,
                },
            ),
            SdpaKernel::Composed => self.composed_sdpa(q, k, v, mask),
        };
        let z = z
            .swap_dims(1, 2)
            .reshape([b, s, self.n_heads * self.head_dim]);
        let hook_z = want_z.then(|| z.clone());
        (self.o_proj.forward(z), hook_z)
    }

    fn composed_sdpa(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: Tensor<4, Bool>,
    ) -> Tensor<4> {
        let rep = self.n_heads / self.n_kv_heads;
        let (k, v) = if rep > 1 {
            let [b, kvh, t, hd] = k.dims();
            let expand = |x: Tensor<4>| {
                x.unsqueeze_dim::<5>(2)
                    .repeat_dim(2, rep)
                    .reshape([b, kvh * rep, t, hd])
            };
            (expand(k), expand(v))
        } else {
            (k, v)
        };
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
        // A large finite fill (not -inf) keeps fully masked rows (left padding) finite:
        // they become uniform instead of NaN, and NaN would leak through 0·NaN later.
        let [b, h, sq, t] = scores.dims();
        let scores = scores.mask_fill(mask.expand([b, h, sq, t]), -1.0e30);
        softmax(scores, 3).matmul(v)
    }
}
