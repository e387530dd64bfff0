use burn::module::{Module, Param};
use burn::tensor::Tensor;

use super::Loader;
use crate::error::Result;

/// `x / sqrt(mean(x²) + ε) · w`, as transformers' `LlamaRMSNorm`: in half precision the
/// statistics are taken in f32 and the normalised values rounded back before the weight
/// multiplies them.
#[derive(Module, Debug)]
pub struct RmsNorm {
    pub weight: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

impl RmsNorm {
    pub(crate) fn load(loader: &Loader<'_>, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(RmsNorm {
            weight: Param::from_tensor(loader.vector(name, dim)?),
            eps,
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        super::fused::rms_norm(x, self.weight.val(), self.eps)
    }
}
