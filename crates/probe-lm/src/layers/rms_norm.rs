use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::to_device;
use crate::error::Result;
use crate::weights::Weights;

/// `x / sqrt(mean(x²) + ε) · w`, as transformers' `LlamaRMSNorm`.
#[derive(Module, Debug)]
pub struct RmsNorm {
    pub weight: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

impl RmsNorm {
    pub fn load(
        weights: &Weights,
        name: &str,
        dim: usize,
        eps: f64,
        device: &Device,
    ) -> Result<Self> {
        let w = weights.get(name, &[dim])?;
        Ok(RmsNorm {
            weight: Param::from_tensor(to_device(w, device)),
            eps,
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        super::fused::rms_norm(x, self.weight.val(), self.eps)
    }
}
