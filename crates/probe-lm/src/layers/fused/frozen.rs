//! A frozen weight's linear layer under autodiff on Flex, on the fused GEMM both ways.
//!
//! Training LoRA adapters differentiates through every base projection, but only with
//! respect to its input: `y = x W` gives `dx = dy Wᵀ` and no `dW`. burn's own matmul would
//! record `x W` and compute `dy Wᵀ` with the `gemm` crate's AVX2 kernel; this op records one
//! node whose forward and backward both run [`linear`]'s AVX-512 kernel, the backward against
//! a contiguous `Wᵀ` prepared once ([`transposed`]).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Device, Tensor};

use super::linear;

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
    let t = super::super::blocks::transpose_values(&values, d_in, d_out);
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
