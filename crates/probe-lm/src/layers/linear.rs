use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::{fused, to_device};
use crate::error::Result;
use crate::weights::{HostTensor, Weights};

/// `y = x W + b` with `W` stored `[d_in, d_out]` (burn's row layout), transposed once at load
/// time from the HF `[d_out, d_in]` layout.
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
}

pub(crate) fn transpose(t: &HostTensor) -> HostTensor {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let mut out = vec![0f32; t.data.len()];
    // Blocked so both sides stay in cache for large matrices.
    const B: usize = 64;
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    out[c * rows + r] = t.data[r * cols + c];
                }
            }
        }
    }
    HostTensor {
        shape: vec![cols, rows],
        data: out,
    }
}

impl Linear {
    /// Loads `{prefix}.weight` (HF shape `[d_out, d_in]`) and, if asked, `{prefix}.bias`.
    pub fn load(
        weights: &Weights,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
        device: &Device,
    ) -> Result<Self> {
        let w = weights.get(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let weight = Param::from_tensor(to_device(transpose(&w), device));
        let bias = if bias {
            let b = weights.get(&format!("{prefix}.bias"), &[d_out])?;
            Some(Param::from_tensor(to_device(b, device)))
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    /// Applies the layer to `[..., d_in]`. Leading dimensions are folded into one so the
    /// backend runs a single large GEMM (weights packed once) instead of one per batch row.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        let d_in = dims[D - 1];
        let rows = dims[..D - 1].iter().product::<usize>();
        let w = self.weight.val();
        let d_out = w.dims()[1];
        let x = x.reshape([rows, d_in]);
        let bias = self.bias.as_ref().map(Param::val);
        let y =
            if fused::fusable(&x) && fused::fusable(&w) && bias.as_ref().is_none_or(fused::fusable)
            {
                fused::linear(x, &w, bias.as_ref())
            } else {
                let y = x.matmul(w);
                match bias {
                    Some(b) => y.add(b.unsqueeze::<2>()),
                    None => y,
                }
            };
        let mut out_shape = dims;
        out_shape[D - 1] = d_out;
        y.reshape(out_shape)
    }
}
