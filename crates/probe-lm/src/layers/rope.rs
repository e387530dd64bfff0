use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::config::{rope_inv_freq, RopeScaling};

/// The inverse RoPE frequencies of `head_dim` for base `theta` and `scaling` that a forward
/// uses on `device`. On libtorch they come from PyTorch itself, by the very ops transformers
/// runs (f32 `pow`, reciprocal, llama3's smoothing), so a half-precision forward rotates by the
/// same rounded angles as transformers; elsewhere from [`rope_inv_freq`] (f64, rounded once).
pub(crate) fn inv_freq_for(
    head_dim: usize,
    theta: f64,
    scaling: Option<&RopeScaling>,
    device: &Device,
) -> Vec<f32> {
    #[cfg(feature = "tch")]
    if crate::device::is_libtorch(device) {
        return torch_inv_freq(head_dim, theta, scaling);
    }
    let _ = device;
    rope_inv_freq(head_dim, theta, scaling)
}

/// transformers' `_compute_default_rope_parameters` (and its linear / llama3 rescalings), op
/// for op with libtorch on the CPU, as transformers computes them when it builds a model.
#[cfg(feature = "tch")]
fn torch_inv_freq(head_dim: usize, theta: f64, scaling: Option<&RopeScaling>) -> Vec<f32> {
    use tch::{Kind, Tensor};
    let hd = head_dim as i64;
    let exponents = Tensor::arange_start_step(0, hd, 2, (Kind::Int64, tch::Device::Cpu))
        .to_kind(Kind::Float)
        / hd as f64;
    // `1.0 / (base ** e)`: Python's reflected division is `reciprocal() * 1.0`.
    let inv = Tensor::pow_scalar(theta, &exponents).reciprocal();
    let inv = match scaling {
        None => inv,
        Some(RopeScaling::Linear { factor }) => inv / *factor,
        Some(RopeScaling::Factors(div)) => inv / Tensor::from_slice(div),
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old,
        }) => {
            let (low_wavelen, high_wavelen) = (old / low_freq_factor, old / high_freq_factor);
            let wavelen = inv.reciprocal() * (2.0 * std::f64::consts::PI);
            // tch's `a.where_self(cond, b)` is `torch.where(cond, a, b)`.
            let llama = (&inv / *factor).where_self(&wavelen.gt(low_wavelen), &inv);
            let smooth = (wavelen.reciprocal() * *old - *low_freq_factor)
                / (high_freq_factor - low_freq_factor);
            let smoothed = (-&smooth + 1.0) * &llama / *factor + &smooth * &llama;
            let medium = wavelen
                .lt(high_wavelen)
                .logical_not()
                .logical_and(&wavelen.gt(low_wavelen).logical_not());
            smoothed.where_self(&medium, &llama)
        }
    };
    Vec::<f32>::try_from(inv.to_kind(Kind::Float))
        .unwrap_or_else(|_| rope_inv_freq(head_dim, theta, scaling))
}

/// cos/sin tables for one forward call, shaped `[batch, 1, seq, head_dim]` so they broadcast
/// over heads. Built per call from explicit position ids, so left-padded sequences rotate
/// from their own first real token.
pub struct RopeTables {
    pub cos: Tensor<4>,
    pub sin: Tensor<4>,
    /// The same tables on the host, for the fused CPU kernels.
    cos_values: Vec<f32>,
    sin_values: Vec<f32>,
}

impl RopeTables {
    /// `positions` is `[batch * seq]` row-major. The device tables are rounded to `dtype`, the
    /// activations' type (transformers computes cos/sin in f32 and casts them likewise).
    pub fn new(
        inv_freq: &[f32],
        positions: &[i64],
        batch: usize,
        seq: usize,
        device: &Device,
        dtype: DType,
    ) -> Self {
        let half = inv_freq.len();
        let head_dim = 2 * half;
        if *device != Device::flex() {
            return Self::on_device(inv_freq, positions, batch, seq, device, dtype);
        }
        let mut cos = Vec::with_capacity(batch * seq * head_dim);
        let mut sin = Vec::with_capacity(batch * seq * head_dim);
        for &p in positions {
            // transformers multiplies in float32, then takes cos/sin of the float32 angle.
            let angles: Vec<f32> = inv_freq.iter().map(|&f| p as f32 * f).collect();
            for _ in 0..2 {
                cos.extend(angles.iter().map(|&a| (a as f64).cos() as f32));
                sin.extend(angles.iter().map(|&a| (a as f64).sin() as f32));
            }
        }
        let shape = [batch, 1, seq, head_dim];
        RopeTables {
            cos: Tensor::from_data(TensorData::new(cos.clone(), shape), (device, dtype)),
            sin: Tensor::from_data(TensorData::new(sin.clone(), shape), (device, dtype)),
            cos_values: cos,
            sin_values: sin,
        }
    }

    /// The tables computed where the forward runs, as transformers does: f32 angles
    /// (position × inverse frequency), `cos`/`sin` by the device's own kernels, then rounded to
    /// the activations' type. No host copy: only the CPU kernels read one.
    fn on_device(
        inv_freq: &[f32],
        positions: &[i64],
        batch: usize,
        seq: usize,
        device: &Device,
        dtype: DType,
    ) -> Self {
        let half = inv_freq.len();
        let pos: Vec<f32> = positions.iter().map(|&p| p as f32).collect();
        let pos: Tensor<3> = Tensor::from_data(TensorData::new(pos, [batch, seq, 1]), device);
        let inv: Tensor<3> =
            Tensor::from_data(TensorData::new(inv_freq.to_vec(), [1, 1, half]), device);
        let angles = pos.mul(inv);
        let emb = Tensor::cat(vec![angles.clone(), angles], 2).reshape([batch, 1, seq, 2 * half]);
        RopeTables {
            cos: emb.clone().cos().cast(dtype),
            sin: emb.sin().cast(dtype),
            cos_values: Vec::new(),
            sin_values: Vec::new(),
        }
    }

    /// The host cos/sin tables, `[batch, seq, head_dim]`, for the fused CPU kernels.
    pub(crate) fn host_tables(&self) -> (&[f32], &[f32]) {
        (&self.cos_values, &self.sin_values)
    }

    /// `x·cos + rotate_half(x)·sin` on `[batch, heads, seq, head_dim]` (HF convention: the two
    /// halves of each head form the rotated pairs).
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, _, head_dim] = x.dims();
        let half = head_dim / 2;
        let x1 = x.clone().narrow(3, 0, half);
        let x2 = x.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x.mul(self.cos.clone()).add(rotated.mul(self.sin.clone()))
    }
}
