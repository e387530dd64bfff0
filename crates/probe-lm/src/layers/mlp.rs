use burn::module::Module;
use burn::tensor::Tensor;

use super::linear::Linear;
use super::Loader;
use crate::error::Result;

/// SwiGLU: `down(silu(gate x) ⊙ up x)`. The product `m = silu(gate x) ⊙ up x` is
/// `mlp.hook_post`: the coefficients of the value vectors (columns of `down_proj`).
#[derive(Module, Debug)]
pub struct SwiGluMlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl SwiGluMlp {
    pub(crate) fn load(
        loader: &Loader<'_>,
        prefix: &str,
        hidden: usize,
        intermediate: usize,
        bias: bool,
    ) -> Result<Self> {
        let linear = |name: &str, d_in, d_out| {
            Linear::load(loader, &format!("{prefix}.{name}"), d_in, d_out, bias)
        };
        Ok(SwiGluMlp {
            gate_proj: linear("gate_proj", hidden, intermediate)?,
            up_proj: linear("up_proj", hidden, intermediate)?,
            down_proj: linear("down_proj", intermediate, hidden)?,
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
