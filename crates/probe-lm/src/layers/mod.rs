//! Building blocks shared by every architecture, written once.

pub mod attention;
mod fused;
pub mod linear;
pub mod mlp;
pub mod rms_norm;
pub mod rope;

use burn::tensor::{Device, Tensor, TensorData};

use crate::weights::HostTensor;

/// Moves a host tensor to the device as a rank-`D` float tensor.
pub(crate) fn to_device<const D: usize>(t: HostTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.data, t.shape), device)
}
