use burn::module::Module;
use burn::tensor::Tensor;

use super::linear::Linear;
use super::Loader;
use crate::config::Activation;
use crate::error::Result;

/// A gated MLP, `down(act(gate x) ⊙ up x)`: SwiGLU (silu; Llama, Qwen2, Mistral) or GeGLU
/// (GELU's tanh form; Gemma). The product `m = act(gate x) ⊙ up x` is `mlp.hook_post`: the
/// coefficients of the value vectors (columns of `down_proj`).
#[derive(Module, Debug)]
pub struct GatedMlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    #[module(skip)]
    pub activation: Activation,
}

impl GatedMlp {
    pub(crate) fn load(
        loader: &Loader<'_>,
        prefix: &str,
        hidden: usize,
        intermediate: usize,
        bias: bool,
        activation: Activation,
    ) -> Result<Self> {
        let linear = |name: &str, d_in, d_out| {
            Linear::load(loader, &format!("{prefix}.{name}"), d_in, d_out, bias)
        };
        Ok(GatedMlp {
            gate_proj: linear("gate_proj", hidden, intermediate)?,
            up_proj: linear("up_proj", hidden, intermediate)?,
            down_proj: linear("down_proj", intermediate, hidden)?,
            activation,
        })
    }

    /// The coefficients `m` (hook_post).
    pub fn coefficients(&self, x: Tensor<3>) -> Tensor<3> {
        let (gate, up) = (self.gate_proj.forward(x.clone()), self.up_proj.forward(x));
        match self.activation {
            Activation::Silu => super::fused::swiglu(gate, up),
            Activation::GeluTanh => super::fused::geglu(gate, up),
        }
    }

    pub fn project(&self, coefficients: Tensor<3>) -> Tensor<3> {
        self.down_proj.forward(coefficients)
    }
}
