//! Fused kernels for inference on burn's CPU backend (Flex).
//!
//! burn runs a layer as a chain of whole-tensor ops, and on Flex every op's output is a fresh
//! buffer that is zero-filled and then copied once more into an aligned allocation; the
//! attention's head split and merge are transposing copies; `sigmoid` and `softmax` call libm's
//! scalar `expf` per element. On f32 Flex tensors these layers instead run as:
//!
//! * [`linear`]: one GEMM straight into the output buffer: [`crate::kernels::gemm512`] on AVX-512 CPUs, else
//!   the `gemm` crate, which Flex's own matmul uses;
//! * [`split_heads`] + [`attention`]: the projections' rows go to per-head layout with RoPE in
//!   the same pass, and attention writes each head's output straight into the `[batch, seq,
//!   heads · head_dim]` rows that `o_proj` reads;
//! * [`swiglu`], [`rms_norm`]: one pass each, with a polynomial `exp` that vectorises.
//!
//! Tensors move into and out of these kernels without copies (a uniquely owned Flex buffer
//! becomes a `Vec` and back). Autodiff devices and other backends keep the composed burn ops, so
//! the model stays differentiable; tests check that both paths agree.

mod attention;
mod elementwise;
pub(crate) mod frozen;
mod linear;

pub(crate) use attention::{attention, split_heads};
pub(crate) use elementwise::{geglu, rms_norm, swiglu};
pub(crate) use linear::{block_linear, linear};

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::{DType, Device, Tensor, TensorData};

/// Whether `t` can take the fused path: an f32 tensor on Flex (an autodiff device is not Flex,
/// so gradients always see the composed ops).
pub(crate) fn fusable<const D: usize>(t: &Tensor<D>) -> bool {
    // an autodiff tensor on Flex compares equal to Flex, but its ops must be recorded
    let device = t.device();
    t.dtype() == DType::F32 && device == Device::flex() && !device.is_autodiff()
}

/// The Flex tensor behind `t`, laid out contiguously (copied only if it was strided). Only for
/// tensors [`fusable`] accepted.
fn contiguous<const D: usize>(t: Tensor<D>) -> FlexTensor {
    let t = t
        .try_into_primitive::<Flex>()
        .expect("fusable() checked that the tensor lives on Flex");
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The f32 values of a tensor [`contiguous`] returned.
fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("contiguous f32, as fusable() and contiguous() ensure")
}

/// A Flex tensor owning `data` (no copy).
fn from_vec<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data, shape), &Device::flex())
}

/// One operand of [`matmul_into`]: where the matrix starts, and its row and column strides in
/// elements.
#[derive(Clone, Copy)]
pub(crate) struct Strided {
    pub(crate) at: *const f32,
    pub(crate) row_stride: usize,
    pub(crate) col_stride: usize,
}

impl Strided {
    /// A row-major matrix whose rows are `row_stride` apart.
    pub(crate) fn rows(at: *const f32, row_stride: usize) -> Self {
        Strided {
            at,
            row_stride,
            col_stride: 1,
        }
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, for `[m, k] · [k, n]`; `dst` is
/// row-major with rows `dst_row_stride` apart. Without `accumulate` the destination is only
/// written, never read, so it may be uninitialised.
///
/// # Safety
/// Each pointer must address its whole matrix under its strides, and `dst` must not overlap
/// `lhs` or `rhs`.
pub(crate) unsafe fn matmul_into(
    [m, n, k]: [usize; 3],
    dst: *mut f32,
    dst_row_stride: usize,
    accumulate: bool,
    lhs: Strided,
    rhs: Strided,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: forwarded from the caller; gemm's alpha (1) scales the old dst, beta (1) the
    // product.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.at,
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.at,
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

pub(crate) use probe_util::with_avx2;

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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn pseudo_random(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * 2.0 * scale)
            .collect()
    }

    pub(crate) fn tensor<const D: usize>(
        n_skip: usize,
        scale: f32,
        shape: [usize; D],
    ) -> Tensor<D> {
        let n: usize = shape.iter().product();
        let v = pseudo_random(n + n_skip, scale)[n_skip..].to_vec();
        from_vec(v, shape)
    }

    pub(crate) fn assert_close<const D: usize>(
        fused: Tensor<D>,
        composed: Tensor<D>,
        tolerance: f32,
    ) {
        assert_eq!(fused.dims(), composed.dims());
        let a = fused.into_data().try_into_vec::<f32>().unwrap();
        let b = composed.into_data().try_into_vec::<f32>().unwrap();
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
    fn strided_tensors_are_made_contiguous() {
        let t = tensor(0, 1.0, [3, 4]);
        let want = t
            .clone()
            .transpose()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let flex = contiguous(t.transpose());
        assert_eq!(values(&flex), &want[..]);
    }
}
