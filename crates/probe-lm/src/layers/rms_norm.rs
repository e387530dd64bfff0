use burn::module::{Module, Param};
use burn::tensor::{DType, Tensor, TensorData};

use super::Loader;
use crate::config::BlockSwitches;
use crate::error::Result;

/// `x / sqrt(mean(x²) + ε) · w`. Llama's (`LlamaRMSNorm`): in half precision the statistics
/// are taken in f32 and the normalised values rounded back before the weight multiplies them.
/// Gemma's (`in_f32`): the weight is `1 + w`, kept in f32, and the product is rounded once.
#[derive(Module, Debug)]
pub struct RmsNorm {
    pub weight: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
    #[module(skip)]
    pub in_f32: bool,
}

impl RmsNorm {
    /// Llama's norm (Llama, Qwen2, Mistral).
    pub(crate) fn load(loader: &Loader<'_>, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(RmsNorm {
            weight: Param::from_tensor(loader.vector(name, dim)?),
            eps,
            in_f32: false,
        })
    }

    /// The norm the model's switches ask for (Gemma's or Llama's).
    pub(crate) fn load_for(
        loader: &Loader<'_>,
        name: &str,
        dim: usize,
        eps: f64,
        switches: &BlockSwitches,
    ) -> Result<Self> {
        if !switches.norm_in_f32 {
            return Self::load(loader, name, dim, eps);
        }
        let mut weight = loader.vector_f32(name, dim)?;
        // transformers: `1.0 + self.weight.float()`
        for w in &mut weight {
            *w += switches.norm_weight_offset;
        }
        Ok(RmsNorm {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(weight, [dim]),
                (loader.device, DType::F32),
            )),
            eps,
            in_f32: true,
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        super::fused::rms_norm(x, self.weight.val(), self.eps, self.in_f32)
    }

    /// The norm of every head of `[batch, seq, heads · head_dim]` (Gemma 3's q/k norms).
    pub fn forward_heads(&self, x: Tensor<3>, head_dim: usize) -> Tensor<3> {
        let [b, s, width] = x.dims();
        self.forward(x.reshape([b, s * width / head_dim, head_dim]))
            .reshape([b, s, width])
    }
}
