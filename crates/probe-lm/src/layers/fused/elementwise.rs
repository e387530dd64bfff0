//! SwiGLU and RMSNorm, one pass over the data each.

use burn::tensor::{DType, Device, Tensor};

use super::{contiguous, exp, from_vec, fusable, values, with_avx2};

with_avx2! {
    /// `gate ← silu(gate)·up = gate·up / (1 + e^(−gate))`.
    fn swiglu_in_place(gate: &mut [f32], up: &[f32]) {
        for (g, &u) in gate.iter_mut().zip(up) {
            *g = *g * u / (1.0 + exp(-*g));
        }
    }
}

with_avx2! {
    /// Appends each row of `x / √(mean(x²) + eps) · weight` to `out` (appending, not
    /// overwriting, spares zero-filling the output first).
    fn rms_norm_rows(x: &[f32], out: &mut Vec<f32>, weight: &[f32], eps: f32) {
        let d = weight.len();
        for row in x.chunks_exact(d) {
            // Eight partial sums so the reduction vectorises.
            let mut acc = [0f32; 8];
            let mut chunks = row.chunks_exact(8);
            for c in chunks.by_ref() {
                for k in 0..8 {
                    acc[k] += c[k] * c[k];
                }
            }
            let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
            let mean = (acc.iter().sum::<f32>() + tail) / d as f32;
            let inv = 1.0 / (mean + eps).sqrt();
            out.extend(row.iter().zip(weight).map(|(&v, &w)| v * inv * w));
        }
    }
}

with_avx2! {
    /// `gate ← gelu_tanh(gate)·up`, with `tanh y = 1 − 2 / (e^(2y) + 1)` (exact at both
    /// saturations; near 0 its absolute error, ~1e-7, is small against the 1 it is added to).
    fn geglu_in_place(gate: &mut [f32], up: &[f32]) {
        const SQRT_2_OVER_PI: f32 = 0.797_884_6;
        for (g, &u) in gate.iter_mut().zip(up) {
            let x = *g;
            let y = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
            let tanh = 1.0 - 2.0 / (exp(2.0 * y) + 1.0);
            *g = 0.5 * x * (1.0 + tanh) * u;
        }
    }
}

/// `gelu_tanh(gate)·up`, the GeGLU MLP's coefficients (Gemma's `gelu_pytorch_tanh`).
pub(crate) fn geglu(gate: Tensor<3>, up: Tensor<3>) -> Tensor<3> {
    #[cfg(feature = "tch")]
    if crate::device::is_libtorch(&gate.device()) {
        return crate::layers::libtorch::geglu(gate, up);
    }
    if !(fusable(&gate) && fusable(&up) && gate.dims() == up.dims()) {
        // PyTorch computes the activation in f32 for half-precision inputs and rounds once
        let dtype = gate.dtype();
        return burn::tensor::activation::gelu_approximate(gate.cast(DType::F32))
            .cast(dtype)
            .mul(up);
    }
    let (mut gate, up) = (gate.into_data(), up.into_data());
    geglu_in_place(
        gate.as_mut_slice::<f32>().expect("f32, checked above"),
        up.as_slice::<f32>().expect("f32, checked above"),
    );
    Tensor::from_data(gate, &Device::flex())
}

/// `silu(gate)·up`, the SwiGLU MLP's coefficients.
pub(crate) fn swiglu(gate: Tensor<3>, up: Tensor<3>) -> Tensor<3> {
    #[cfg(feature = "tch")]
    if crate::device::is_libtorch(&gate.device()) {
        return crate::layers::libtorch::swiglu(gate, up);
    }
    if !(fusable(&gate) && fusable(&up) && gate.dims() == up.dims()) {
        let dtype = gate.dtype();
        if dtype == DType::F32 {
            return burn::tensor::activation::silu(gate).mul(up);
        }
        // PyTorch computes silu in f32 and rounds once (burn would round sigmoid(x) first),
        // then multiplies by `up` in the activations' type, as transformers' MLP does.
        return burn::tensor::activation::silu(gate.cast(DType::F32))
            .cast(dtype)
            .mul(up);
    }
    // into_data copies only when the tensor is shared or strided
    let (mut gate, up) = (gate.into_data(), up.into_data());
    swiglu_in_place(
        gate.as_mut_slice::<f32>().expect("f32, checked above"),
        up.as_slice::<f32>().expect("f32, checked above"),
    );
    Tensor::from_data(gate, &Device::flex())
}

/// RMSNorm of the last dimension, scaled by `weight`. The input (the residual stream, which
/// the caller keeps) is read in place and the result written to a new buffer in one pass.
/// `in_f32`: Gemma's rounding (the product taken in f32, rounded once), else Llama's.
pub(crate) fn rms_norm(x: Tensor<3>, weight: Tensor<1>, eps: f64, in_f32: bool) -> Tensor<3> {
    let dims = x.dims();
    #[cfg(feature = "tch")]
    if crate::device::is_libtorch(&x.device()) {
        return crate::layers::libtorch::rms_norm(x, weight, eps, in_f32);
    }
    if !(fusable(&x) && fusable(&weight) && dims[2] == weight.dims()[0]) {
        // transformers: statistics in f32; Llama rounds the normalised values back to the
        // input's type before the weight, Gemma multiplies in f32 and rounds after.
        let dtype = x.dtype();
        let x32 = x.cast(DType::F32);
        let inv_rms = x32
            .clone()
            .square()
            .mean_dim(2)
            .add_scalar(eps)
            .sqrt()
            .recip();
        if in_f32 {
            return x32
                .mul(inv_rms)
                .mul(weight.cast(DType::F32).unsqueeze::<3>())
                .cast(dtype);
        }
        return x32
            .mul(inv_rms)
            .cast(dtype)
            .mul(weight.cast(dtype).unsqueeze::<3>());
    }
    let (x, weight) = (contiguous(x), contiguous(weight));
    let x = values(&x);
    let mut out = Vec::with_capacity(x.len());
    rms_norm_rows(x, &mut out, values(&weight), eps as f32);
    from_vec(out, dims)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_close, tensor};
    use super::*;

    #[test]
    fn fused_ops_equal_the_composed_ones() {
        let shape = [2, 5, 40];
        let (gate, up) = (tensor(3, 12.0, shape), tensor(7, 3.0, shape));
        assert!(fusable(&gate));
        assert_close(
            swiglu(gate.clone(), up.clone()),
            burn::tensor::activation::silu(gate.clone()).mul(up.clone()),
            1e-6,
        );
        assert_close(
            geglu(gate.clone(), up.clone()),
            burn::tensor::activation::gelu_approximate(gate).mul(up),
            1e-6,
        );
        let weight: Tensor<1> = tensor(0, 2.0, [40]);
        let x = tensor(11, 4.0, shape);
        let before = x.clone().into_data();
        let composed = {
            let inv = x
                .clone()
                .square()
                .mean_dim(2)
                .add_scalar(1e-5)
                .sqrt()
                .recip();
            x.clone().mul(inv).mul(weight.clone().unsqueeze::<3>())
        };
        // The residual stream is shared with the caller: read, not changed.
        assert_close(
            rms_norm(x.clone(), weight.clone(), 1e-5, false),
            composed.clone(),
            1e-6,
        );
        assert_eq!(x.clone().into_data(), before);
        // A strided input gives the same result.
        let strided = x.swap_dims(0, 1).swap_dims(0, 1);
        assert_close(
            rms_norm(strided.clone(), weight.clone(), 1e-5, false),
            composed.clone(),
            1e-6,
        );
        // Gemma's rounding order is the same computation in f32
        assert_close(rms_norm(strided, weight, 1e-5, true), composed, 1e-6);
    }
}
