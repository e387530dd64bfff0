//! A frozen weight's linear layer under autodiff on Flex, on the fused GEMM both ways.
//!
//! Training LoRA adapters differentiates through every base projection, but only with
//! respect to its input: `y = x W` gives `dx = dy Wᵀ` and no `dW`. burn's own matmul would
//! record `x W` and compute `dy Wᵀ` with the `gemm` crate's AVX2 kernel; this op records one
//! node whose forward and backward both run [`linear`]'s AVX-512 kernel, the backward against
//! a contiguous `Wᵀ` prepared once ([`transposed`]).
//!
//! QLoRA: a block-stored (quantized) weight stays quantized. Its forward is the block kernel
//! of inference; its backward dequantizes `W` a panel of rows at a time into a small buffer
//! (a few MB, never the whole matrix) and accumulates `dy[:, panel] · W[panel, :]`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Device, Tensor};

use std::sync::Arc;

use super::{block_linear, linear};
use crate::kernels::quantized::BlockMatrix;

/// Whether `x` is an f32 autodiff tensor on Flex: the inputs this op takes.
pub(crate) fn applies<const D: usize>(x: &Tensor<D>) -> bool {
    let device = x.device();
    x.dtype() == DType::F32 && device.is_autodiff() && device == Device::flex()
}

/// The plain Flex tensor behind an (untracked) autodiff tensor, e.g. a frozen weight.
pub(crate) fn inner(t: Tensor<2>) -> Tensor<2> {
    let t = t
        .try_into_primitive::<Autodiff<Flex>>()
        .expect("applies() checked that the tensor is an autodiff tensor on Flex");
    Tensor::from_primitive::<Flex>(t.into_primitive())
}

/// `Wᵀ` of a `[d_in, d_out]` weight as a contiguous plain Flex tensor `[d_out, d_in]`.
pub(crate) fn transposed(weight: &Tensor<2>) -> Tensor<2> {
    let w = if weight.device().is_autodiff() {
        inner(weight.clone())
    } else {
        weight.clone()
    };
    let [d_in, d_out] = w.dims();
    let values = w
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("an f32 weight");
    let t = crate::kernels::quantized::transpose_values(&values, d_in, d_out);
    Tensor::from_data(
        burn::tensor::TensorData::new(t, [d_out, d_in]),
        &Device::flex(),
    )
}

#[derive(Debug)]
struct FrozenLinear;

impl Backward<Flex, 1> for FrozenLinear {
    /// `Wᵀ`, `[d_out, d_in]`.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let weight_t = Tensor::<2>::from_primitive::<Flex>(ops.state);
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let dy = Tensor::<2>::from_primitive::<Flex>(grad);
            linear(dy, &weight_t, None)
                .try_into_primitive::<Flex>()
                .expect("the fused kernel returns a Flex tensor")
        });
    }
}

/// `x W` for an autodiff `x` `[rows, d_in]` and a frozen `W` (`weight`, plain `[d_in, d_out]`;
/// `weight_t`, plain `[d_out, d_in]`).
pub(crate) fn frozen_linear(x: Tensor<2>, weight: &Tensor<2>, weight_t: &Tensor<2>) -> Tensor<2> {
    let x = x
        .try_into_primitive::<Autodiff<Flex>>()
        .expect("applies() checked that the input is an autodiff tensor on Flex");
    let x_inner = Tensor::<2>::from_primitive::<Flex>(x.primitive().clone());
    let y = linear(x_inner, weight, None)
        .try_into_primitive::<Flex>()
        .expect("the fused kernel returns a Flex tensor");
    let out = match FrozenLinear
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = weight_t
                .clone()
                .try_into_primitive::<Flex>()
                .expect("Wᵀ is a plain Flex tensor");
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive::<Autodiff<Flex>>(out)
}

/// Rows of `W` dequantized per backward panel: about 4 MB of f32 at a time.
const PANEL_VALUES: usize = 1 << 20;

#[derive(Debug)]
struct FrozenBlockLinear;

impl Backward<Flex, 1> for FrozenBlockLinear {
    /// `W` as blocks, `[d_out, d_in]` (HF layout).
    type State = Arc<BlockMatrix>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let weight = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let dy = Tensor::<2>::from_primitive::<Flex>(grad);
            block_input_gradient(dy, &weight)
                .try_into_primitive::<Flex>()
                .expect("the fused kernel returns a Flex tensor")
        });
    }
}

/// `dy · W` for `dy` `[rows, d_out]` and block-stored `W` `[d_out, d_in]`, panel by panel.
pub(crate) fn block_input_gradient(dy: Tensor<2>, weight: &BlockMatrix) -> Tensor<2> {
    let [rows, d_out] = dy.dims();
    let (w_rows, d_in) = weight.shape();
    assert_eq!(w_rows, d_out, "block gradient: dy width vs weight rows");
    let dy = dy
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("an f32 gradient");
    let panel = (PANEL_VALUES / d_in.max(1)).clamp(1, d_out.max(1));
    let mut total: Option<Tensor<2>> = None;
    let mut start = 0;
    while start < d_out {
        let n = panel.min(d_out - start);
        let mut w = vec![0f32; n * d_in];
        weight.dequantize_rows(start, n, &mut w);
        let mut part = Vec::with_capacity(rows * n);
        for r in 0..rows {
            part.extend_from_slice(&dy[r * d_out + start..r * d_out + start + n]);
        }
        let device = Device::flex();
        let product = linear(
            Tensor::from_data(burn::tensor::TensorData::new(part, [rows, n]), &device),
            &Tensor::from_data(burn::tensor::TensorData::new(w, [n, d_in]), &device),
            None,
        );
        total = Some(match total {
            Some(t) => t.add(product),
            None => product,
        });
        start += n;
    }
    total.unwrap_or_else(|| Tensor::zeros([rows, d_in], &Device::flex()))
}

/// `x Wᵀ` for an autodiff `x` `[rows, d_in]` and a frozen block-stored `W` `[d_out, d_in]`.
pub(crate) fn frozen_block_linear(x: Tensor<2>, weight: &Arc<BlockMatrix>) -> Tensor<2> {
    let x = x
        .try_into_primitive::<Autodiff<Flex>>()
        .expect("applies() checked that the input is an autodiff tensor on Flex");
    let x_inner = Tensor::<2>::from_primitive::<Flex>(x.primitive().clone());
    let y = block_linear(x_inner, weight)
        .try_into_primitive::<Flex>()
        .expect("the block kernel returns a Flex tensor");
    let out = match FrozenBlockLinear
        .prepare::<NoCheckpointing>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(weight.clone(), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive::<Autodiff<Flex>>(out)
}

/// A block-stored weight's linear layer for inference or, under autodiff, frozen (QLoRA).
pub(crate) fn any_block_linear(x: Tensor<2>, weight: &Arc<BlockMatrix>) -> Tensor<2> {
    if applies(&x) {
        frozen_block_linear(x, weight)
    } else {
        block_linear(x, weight)
    }
}
