//! `y = x W + b` as one GEMM into the output buffer.

use burn::tensor::Tensor;

use super::{contiguous, from_vec, fusable, matmul_into, values, Strided};
use crate::kernels::quantized::BlockMatrix;

/// Below this many multiply-adds one thread does the whole product (Flex's own threshold).
const PARALLEL_WORK: usize = 192 * 192 * 192;

/// `x [rows, d_in] · weight [d_in, d_out] (+ bias)` on Flex f32 tensors (see `fusable`).
/// Flex's matmul would zero-fill its output and copy it once more before the GEMM writes it;
/// here the GEMM writes the output buffer directly, or adds onto rows prefilled with the bias.
pub(crate) fn linear(x: Tensor<2>, weight: &Tensor<2>, bias: Option<&Tensor<1>>) -> Tensor<2> {
    let [rows, d_in] = x.dims();
    let d_out = weight.dims()[1];
    assert_eq!(weight.dims()[0], d_in, "linear: input width vs weight rows");
    let (x, weight) = (contiguous(x), contiguous(weight.clone()));
    let (x, weight) = (values(&x), values(&weight));
    let len = rows * d_out;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let bias = bias.map(|b| contiguous(b.clone()));
    if let Some(bias) = &bias {
        let bias = values(bias);
        assert_eq!(bias.len(), d_out, "linear: bias width");
        for _ in 0..rows {
            out.extend_from_slice(bias);
        }
    }
    if d_in == 0 || len == 0 {
        // No products to add: the bias alone, or zeros.
        out.resize(len, 0.0);
        return from_vec(out, [rows, d_out]);
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::gemm512::available() {
        let w = crate::kernels::gemm512::Weights::Dense {
            values: weight,
            d_out,
        };
        // SAFETY: the kernel is available; `x` is `[rows, d_in]`; `out` has room for
        // `rows × d_out` values, prefilled with the bias when there is one (then added onto),
        // else all written by the product.
        unsafe {
            crate::kernels::gemm512::matmul(w, x, rows, out.as_mut_ptr(), bias.is_some());
            out.set_len(len);
        }
        return from_vec(out, [rows, d_out]);
    }
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 && rows * d_in * d_out >= PARALLEL_WORK {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `out` has room for `rows × d_out` values at row stride `d_out`; `x` and `weight`
    // are contiguous row-major `[rows, d_in]` and `[d_in, d_out]` (checked above). Without a
    // bias the GEMM writes every output element without reading it (dst = x·W); with the bias
    // prefilled it adds onto it (dst += x·W). Either way every element is initialised before
    // `set_len`.
    unsafe {
        matmul_into(
            [rows, d_out, d_in],
            out.as_mut_ptr(),
            d_out,
            bias.is_some(),
            Strided::rows(x.as_ptr(), d_in),
            Strided::rows(weight.as_ptr(), d_out),
            parallelism,
        );
        out.set_len(len);
    }
    from_vec(out, [rows, d_out])
}

/// `x [rows, d_in] · Wᵀ` for a block-stored `W` (`[d_out, d_in]`): blocks live only on the CPU,
/// with f32 activations.
pub(crate) fn block_linear(x: Tensor<2>, weight: &BlockMatrix) -> Tensor<2> {
    assert!(
        fusable(&x),
        "block-stored weights take f32 activations on the CPU"
    );
    let [rows, d_in] = x.dims();
    let (d_out, cols) = weight.shape();
    assert_eq!(cols, d_in, "block_linear: input width vs weight columns");
    let x = contiguous(x);
    from_vec(weight.matmul(values(&x), rows), [rows, d_out])
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_close, tensor};
    use super::*;

    #[test]
    fn linear_equals_matmul_plus_bias() {
        let x: Tensor<2> = tensor(1, 2.0, [37, 24]);
        let w: Tensor<2> = tensor(5, 0.5, [24, 19]);
        let b: Tensor<1> = tensor(9, 1.0, [19]);
        let want = x.clone().matmul(w.clone());
        assert_close(linear(x.clone(), &w, None), want.clone(), 1e-5);
        assert_close(
            linear(x.clone(), &w, Some(&b)),
            want.add(b.clone().unsqueeze::<2>()),
            1e-5,
        );
        // Strided input (a transposed view) and a large product that takes the threaded path.
        let xt: Tensor<2> = tensor(2, 1.0, [64, 300]);
        let big_w: Tensor<2> = tensor(3, 0.1, [64, 400]);
        let want = xt.clone().transpose().matmul(big_w.clone());
        assert_close(linear(xt.transpose(), &big_w, None), want, 1e-4);
        // Empty inner dimension: only the bias.
        let empty: Tensor<2> = from_vec(Vec::new(), [3, 0]);
        let no_w: Tensor<2> = from_vec(Vec::new(), [0, 19]);
        assert_close(
            linear(empty, &no_w, Some(&b)),
            b.unsqueeze::<2>().repeat_dim(0, 3),
            0.0,
        );
    }
}
