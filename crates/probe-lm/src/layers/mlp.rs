use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::linear::Linear;
use crate::error::Result;
use crate::weights::Weights;

/// SwiGLU: `down(silu(gate x) ⊙ up x)`. The product `m = silu(gate x) ⊙ up x` is
/// `mlp.hook_post`: the coefficients of the value vectors (columns of `down_proj`).
#[derive(Module, Debug)]
pub struct SwiGluMlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl SwiGluMlp {
    pub fn load(
        weights: &Weights,
        prefix: &str,
        hidden: usize,
        intermediate: usize,
        bias: bool,
        device: &Device,
    ) -> Result<Self> {
        Ok(SwiGluMlp {
            gate_proj: Linear::load(
                weights,
                &format!("{prefix}.gate_proj"),
                hidden,
                intermediate,
                bias,
                device,
            )?,
            up_proj: Linear::load(
                weights,
                &format!("{prefix}.up_proj"),
                hidden,
                intermediate,
                bias,
                device,
            )?,
            down_proj: Linear::load(
                weights,
                &format!("{prefix}.down_proj"),
                intermediate,
                hidden,
                bias,
                device,
            )?,
        })
    }

    /// The coefficients `m` (hook_post).
    pub fn coefficients(&self, x: Tensor<3>) -> Tensor<3> {
        super::fused::swiglu(self.gate_proj.forward(x.clone()), self.up_proj.forward(x))
    }

    pub fn project(&self, coefficients: Tensor<3>) -> Tensor<3> {
        self.down_proj.forward(coefficients)
    }
}
