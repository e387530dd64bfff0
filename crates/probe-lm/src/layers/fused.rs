//! Fused element-wise kernels for inference on burn's CPU backend (Flex).
//!
//! burn runs `silu(gate)·up`, RMSNorm and RoPE as chains of whole-tensor ops: each op reads and
//! writes the whole activation, and `sigmoid` calls libm's scalar `expf` per element (5 % of a
//! forward pass alone). On Flex tensors these run instead as one pass each over the data, with
//! a polynomial `exp` that vectorises; a uniquely owned Flex buffer moves into `TensorData` and
//! back without a copy. Autodiff devices and other backends keep the composed ops, so the
//! model stays differentiable; tests check that both paths agree.

use burn::tensor::{DType, Device, Tensor};

/// Whether `t` can take the fused path: an f32 tensor on Flex (an autodiff device is not Flex,
/// so gradients always see the composed ops).
pub(crate) fn fusable<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32 && t.device() == Device::flex()
}

/// Compiles `$body` twice, once for AVX2 + FMA, chosen at run time when the CPU has them: the
/// crate is built for baseline x86-64, where f32 loops vectorise only four lanes wide.
macro_rules! with_avx2 {
    ($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$attr])*
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn portable($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    portable($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU was just checked to have the features `avx2` needs.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}

/// `eˣ` in f32 without branches, so loops over it vectorise: Cephes' `expf` (range reduction
/// by ln 2 in two parts, degree-6 polynomial, exponent by bit construction), within 2 ulp of
/// libm for the inputs activations produce; saturates to 0 / f32::MAX-scale outside ±87.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer in f32 arithmetic.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let poly = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    poly * scale
}

with_avx2! {
    /// `gate ← silu(gate)·up = gate·up / (1 + e^(−gate))`.
    fn swiglu_in_place(gate: &mut [f32], up: &[f32]) {
        for (g, &u) in gate.iter_mut().zip(up) {
            *g = *g * u / (1.0 + exp(-*g));
        }
    }
}

with_avx2! {
    /// Each row of `x ← x / √(mean(x²) + eps) · weight`.
    fn rms_norm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
        let d = weight.len();
        for row in x.chunks_exact_mut(d) {
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
            for (v, &w) in row.iter_mut().zip(weight) {
                *v = *v * inv * w;
            }
        }
    }
}

with_avx2! {
    /// Rotates each head vector of `x` (`[batch, heads, seq, head_dim]`) by its position's
    /// angles, HF's rotate-half convention: `(x₁, x₂) ← (x₁c − x₂s, x₂c + x₁s)`. `cos` and
    /// `sin` are `[batch, seq, head_dim]`.
    fn rope_in_place(
        x: &mut [f32],
        cos: &[f32],
        sin: &[f32],
        heads: usize,
        seq: usize,
        head_dim: usize
    ) {
        let table = seq * head_dim;
        let half = head_dim / 2;
        for (h_index, head) in x.chunks_exact_mut(table).enumerate() {
            let b = h_index / heads;
            let (cos, sin) = (&cos[b * table..(b + 1) * table], &sin[b * table..(b + 1) * table]);
            for ((v, c), s) in head
                .chunks_exact_mut(head_dim)
                .zip(cos.chunks_exact(head_dim))
                .zip(sin.chunks_exact(head_dim))
            {
                let (x1, x2) = v.split_at_mut(half);
                for i in 0..half {
                    let (a, b) = (x1[i], x2[i]);
                    x1[i] = a * c[i] - b * s[i];
                    x2[i] = b * c[half + i] + a * s[half + i];
                }
            }
        }
    }
}

/// `silu(gate)·up`, the SwiGLU MLP's coefficients.
pub(crate) fn swiglu(gate: Tensor<3>, up: Tensor<3>) -> Tensor<3> {
    if !(fusable(&gate) && fusable(&up) && gate.dims() == up.dims()) {
        return burn::tensor::activation::silu(gate).mul(up);
    }
    // into_data copies only when the tensor is shared or strided
    let (mut gate, up) = (gate.into_data(), up.into_data());
    swiglu_in_place(
        gate.as_mut_slice::<f32>().expect("f32, checked above"),
        up.as_slice::<f32>().expect("f32, checked above"),
    );
    Tensor::from_data(gate, &Device::flex())
}

/// RMSNorm of the last dimension, scaled by `weight`.
pub(crate) fn rms_norm(x: Tensor<3>, weight: Tensor<1>, eps: f64) -> Tensor<3> {
    if !(fusable(&x) && fusable(&weight) && x.dims()[2] == weight.dims()[0]) {
        let inv_rms = x
            .clone()
            .square()
            .mean_dim(2)
            .add_scalar(eps)
            .sqrt()
            .recip();
        return x.mul(inv_rms).mul(weight.unsqueeze::<3>());
    }
    let (mut x, weight) = (x.into_data(), weight.into_data());
    rms_norm_in_place(
        x.as_mut_slice::<f32>().expect("f32, checked above"),
        weight.as_slice::<f32>().expect("f32, checked above"),
        eps as f32,
    );
    Tensor::from_data(x, &Device::flex())
}

/// Rotary embedding of `[batch, heads, seq, head_dim]` with host tables `[batch, seq,
/// head_dim]`; `composed` when `x` cannot take the fused path.
pub(crate) fn rope(
    x: Tensor<4>,
    cos: &[f32],
    sin: &[f32],
    composed: impl FnOnce(Tensor<4>) -> Tensor<4>,
) -> Tensor<4> {
    let [batch, heads, seq, head_dim] = x.dims();
    if !(fusable(&x) && cos.len() == batch * seq * head_dim && sin.len() == cos.len())
        || head_dim % 2 != 0
    {
        return composed(x);
    }
    let mut x = x.into_data();
    rope_in_place(
        x.as_mut_slice::<f32>().expect("f32, checked above"),
        cos,
        sin,
        heads,
        seq,
        head_dim,
    );
    Tensor::from_data(x, &Device::flex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn pseudo_random(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * 2.0 * scale)
            .collect()
    }

    fn assert_close(fused: Tensor<3>, composed: Tensor<3>, tolerance: f32) {
        let a = fused.into_data().try_into_vec::<f32>().unwrap();
        let b = composed.into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= tolerance * (1.0 + y.abs()),
                "element {i}: fused {x} vs composed {y}"
            );
        }
    }

    #[test]
    fn exp_matches_libm_over_the_activation_range() {
        let mut worst = 0f32;
        for i in -80_000..=80_000 {
            let x = i as f32 * 1e-3;
            let (got, want) = (exp(x), x.exp());
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(-200.0), (-87.0f32).exp());
        assert!(exp(200.0).is_finite());
    }

    #[test]
    fn fused_ops_equal_the_composed_ones() {
        let device = Device::flex();
        let shape = [2, 5, 40];
        let t = |scale: f32, seed: usize| -> Tensor<3> {
            let mut v = pseudo_random(2 * 5 * 40 + seed, scale);
            v.drain(..seed);
            Tensor::from_data(TensorData::new(v, shape), &device)
        };
        let (gate, up) = (t(12.0, 3), t(3.0, 7));
        assert!(fusable(&gate));
        assert_close(
            swiglu(gate.clone(), up.clone()),
            burn::tensor::activation::silu(gate).mul(up),
            1e-6,
        );
        let weight: Tensor<1> =
            Tensor::from_data(TensorData::new(pseudo_random(40, 2.0), [40]), &device);
        let x = t(4.0, 11);
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
        // A shared input (the residual stream is cloned before its norm) is copied, not changed.
        assert_close(rms_norm(x.clone(), weight, 1e-5), composed, 1e-6);
        assert_eq!(x.into_data(), before);
    }

    #[test]
    fn fused_rope_equals_rotate_half() {
        let device = Device::flex();
        let (batch, heads, seq, head_dim) = (2, 3, 4, 8);
        let n = batch * heads * seq * head_dim;
        let x: Tensor<4> = Tensor::from_data(
            TensorData::new(pseudo_random(n, 1.0), [batch, heads, seq, head_dim]),
            &device,
        );
        let table = batch * seq * head_dim;
        let cos = pseudo_random(table + 5, 1.0)[5..].to_vec();
        let sin = pseudo_random(table + 9, 1.0)[9..].to_vec();
        let tables = |v: &Vec<f32>| -> Tensor<4> {
            Tensor::from_data(
                TensorData::new(v.clone(), [batch, 1, seq, head_dim]),
                &device,
            )
        };
        let half = head_dim / 2;
        let x1 = x.clone().narrow(3, 0, half);
        let x2 = x.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        let composed = x.clone().mul(tables(&cos)).add(rotated.mul(tables(&sin)));
        // Non-contiguous input, as the attention's head split gives.
        let permuted = x.swap_dims(1, 2).swap_dims(1, 2);
        let fused = rope(permuted, &cos, &sin, |_| panic!("fusable"));
        let [b, h, s, d] = fused.dims();
        assert_close(
            fused.reshape([b * h, s, d]),
            composed.reshape([b * h, s, d]),
            1e-6,
        );
    }
}
