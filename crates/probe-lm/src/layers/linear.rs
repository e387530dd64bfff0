use std::sync::Arc;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::lora::Lora;
use super::{fused, Loader, Matrix};
use crate::error::Result;
use crate::kernels::quantized::{transpose_values, BlockMatrix};
use crate::weights::HostTensor;

/// `y = x Wᵀ + b`. `W` is either a device tensor stored `[d_in, d_out]` (burn's row layout,
/// transposed from HF's `[d_out, d_in]` at load time) or host blocks in HF layout that the CPU
/// kernels multiply in place (`--dtype native` on a quantized GGUF).
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Option<Param<Tensor<2>>>,
    #[module(skip)]
    pub blocks: Option<Arc<BlockMatrix>>,
    pub bias: Option<Param<Tensor<1>>>,
    /// A LoRA adapter applied on the fly.
    pub lora: Option<Lora>,
    /// For training on Flex: the frozen weight and its transpose as plain tensors, so the
    /// projection runs on the fused kernels under autodiff ([`Linear::prepare_frozen`]).
    #[module(skip)]
    pub frozen: Option<(Tensor<2>, Tensor<2>)>,
}

pub(crate) fn transpose(t: &HostTensor) -> HostTensor {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    HostTensor {
        shape: vec![cols, rows],
        data: transpose_values(&t.data, rows, cols),
    }
}

impl Linear {
    /// Loads `{prefix}.weight` (HF shape `[d_out, d_in]`) and, if asked, `{prefix}.bias`.
    pub(crate) fn load(
        loader: &Loader<'_>,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
    ) -> Result<Self> {
        let weight = loader.matrix(&format!("{prefix}.weight"), d_out, d_in)?;
        let bias = if bias {
            Some(Param::from_tensor(
                loader.vector(&format!("{prefix}.bias"), d_out)?,
            ))
        } else {
            None
        };
        Ok(Self::from_matrix(weight, bias))
    }

    pub fn from_matrix(weight: Matrix, bias: Option<Param<Tensor<1>>>) -> Self {
        match weight {
            Matrix::Dense(w) => Linear {
                weight: Some(Param::from_tensor(w)),
                blocks: None,
                bias,
                lora: None,
                frozen: None,
            },
            Matrix::Blocks(b) => Linear {
                weight: None,
                blocks: Some(b),
                bias,
                lora: None,
                frozen: None,
            },
        }
    }

    /// `(d_in, d_out)`.
    pub fn dims(&self) -> (usize, usize) {
        match (&self.weight, &self.blocks) {
            (Some(w), _) => {
                let [d_in, d_out] = w.val().dims();
                (d_in, d_out)
            }
            (None, Some(b)) => {
                let (rows, cols) = b.shape();
                (cols, rows)
            }
            (None, None) => unreachable!("a Linear holds a weight"),
        }
    }

    /// The weight as an f32 `[d_in, d_out]` tensor on `device` (dequantized or widened when it
    /// is held otherwise).
    pub fn weight_f32(&self, device: &Device) -> Tensor<2> {
        match (&self.weight, &self.blocks) {
            (Some(w), _) => w.val().cast(burn::tensor::DType::F32),
            (None, Some(b)) => {
                let (rows, cols) = b.shape();
                super::to_device(
                    HostTensor {
                        shape: vec![cols, rows],
                        data: b.to_f32_transposed(),
                    },
                    device,
                )
            }
            (None, None) => unreachable!("a Linear holds a weight"),
        }
    }

    /// Applies the layer to `[..., d_in]`. Leading dimensions are folded into one so the
    /// backend runs a single large GEMM (weights packed once) instead of one per batch row.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        let d_in = dims[D - 1];
        let rows = dims[..D - 1].iter().product::<usize>();
        let x = x.reshape([rows, d_in]);
        let delta = self.lora.as_ref().map(|l| l.delta(x.clone()));
        let bias = self.bias.as_ref().map(Param::val);
        let y = match (&self.weight, &self.blocks) {
            (None, Some(blocks)) => {
                let y = fused::frozen::any_block_linear(x, blocks);
                match bias {
                    Some(b) => y.add(b.unsqueeze::<2>()),
                    None => y,
                }
            }
            (Some(_), _) if self.frozen.is_some() && fused::frozen::applies(&x) => {
                let (w, wt) = self.frozen.as_ref().expect("checked");
                let y = fused::frozen::frozen_linear(x, w, wt);
                match bias {
                    Some(b) => y.add(b.unsqueeze::<2>()),
                    None => y,
                }
            }
            (Some(w), _) => {
                let w = w.val();
                if fused::fusable(&x)
                    && fused::fusable(&w)
                    && bias.as_ref().is_none_or(fused::fusable)
                {
                    fused::linear(x, &w, bias.as_ref())
                } else {
                    let y = x.matmul(w);
                    match bias {
                        Some(b) => y.add(b.unsqueeze::<2>()),
                        None => y,
                    }
                }
            }
            (None, None) => unreachable!("a Linear holds a weight"),
        };
        let y = match delta {
            Some(d) => y.add(d),
            None => y,
        };
        let d_out = y.dims()[1];
        let mut out_shape = dims;
        out_shape[D - 1] = d_out;
        y.reshape(out_shape)
    }
}

impl Linear {
    /// Prepares a dense f32 weight on an autodiff Flex device for training: the plain weight
    /// and its transpose, so forward and backward run the fused kernels (gradients flow to
    /// the input only: the weight stays frozen). Other weights keep burn's ops.
    pub fn prepare_frozen(&mut self) {
        if let Some(w) = &self.weight {
            let w = w.val();
            if fused::frozen::applies(&w) {
                self.frozen = Some((
                    fused::frozen::inner(w.clone()),
                    fused::frozen::transposed(&w),
                ));
            }
        }
    }

    /// Folds the adapter into a dense weight (`W + s·A B`) and drops it; a block-stored
    /// weight cannot take it (it would have to be quantized again) and is refused.
    pub fn merge_lora(&mut self) -> std::result::Result<(), &'static str> {
        let Some(lora) = self.lora.take() else {
            return Ok(());
        };
        match &self.weight {
            Some(w) => {
                let w = w.val();
                let merged = w.clone().add(lora.product().cast(w.dtype()));
                self.weight = Some(Param::from_tensor(merged));
                Ok(())
            }
            None => {
                self.lora = Some(lora);
                Err("a quantized (block-stored) weight cannot be merged; apply the adapter on the fly or load with --dtype f32")
            }
        }
    }
}
