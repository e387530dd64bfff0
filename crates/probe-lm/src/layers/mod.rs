//! Building blocks shared by every architecture, written once.

pub mod attention;
pub(crate) mod fused;
#[cfg(feature = "tch")]
mod libtorch;
pub mod linear;
pub mod lora;
pub mod mlp;
pub mod rms_norm;
pub mod rope;

use std::sync::Arc;

use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::error::Result;
use crate::kernels::quantized::BlockMatrix;
use crate::precision::Precision;
use crate::weights::{GgmlType, HostTensor, RawTensor, Weights};

/// Moves a host tensor to the device as a rank-`D` f32 tensor.
pub(crate) fn to_device<const D: usize>(t: HostTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(t.data, t.shape), device)
}

/// `op` (a tensor-by-scalar operation) in f32, rounded once to `t`'s type: what PyTorch does for
/// a half tensor and a Python float, where burn would round the scalar to the tensor's type
/// first (`1/√24` is not a bf16 number). A no-op cast in f32.
pub(crate) fn scalar_op<const D: usize>(
    t: Tensor<D>,
    op: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    let dtype = t.dtype();
    op(t.cast(DType::F32)).cast(dtype)
}

/// Gemma's soft-capping, `cap · tanh(t / cap)`, each step rounded to `t`'s type as PyTorch's
/// `t / cap`, `torch.tanh`, `* cap` round.
pub(crate) fn soft_cap<const D: usize>(t: Tensor<D>, cap: f64) -> Tensor<D> {
    let t = scalar_op(t, |t| t.div_scalar(cap)).tanh();
    scalar_op(t, |t| t.mul_scalar(cap))
}

/// A weight matrix as the model holds it (built once per tensor at load time, so the size of
/// a burn tensor handle beside an `Arc` does not matter).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Matrix {
    /// A device tensor in the compute type, `[d_in, d_out]` (burn's row layout).
    Dense(Tensor<2>),
    /// Host blocks `[d_out, d_in]` (HF layout), multiplied in place on the CPU.
    Blocks(Arc<BlockMatrix>),
}

/// Reads tensors from a checkpoint into the form and type [`Precision`] asks for.
pub(crate) struct Loader<'a> {
    pub weights: &'a Weights,
    pub device: &'a Device,
    pub precision: Precision,
}

impl Loader<'_> {
    /// A vector (norm weight, bias) in the compute type, rounded as the weights are.
    pub fn vector(&self, name: &str, len: usize) -> Result<Tensor<1>> {
        let raw = self.weights.copied(name, &[len])?;
        let t: Tensor<1> = self.upload(raw);
        Ok(match self.precision.weight_rounding() {
            Some(half) if half != t.dtype() => t.cast(half).cast(self.precision.compute),
            _ => t,
        })
    }

    /// A vector as f32 values, rounded as the weights are (Gemma's norms, which add 1 in f32).
    pub fn vector_f32(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let mut values = self.weights.get(name, &[len])?.data;
        match self.precision.weight_rounding() {
            Some(DType::BF16) => values
                .iter_mut()
                .for_each(|v| *v = half::bf16::from_f32(*v).to_f32()),
            Some(DType::F16) => values
                .iter_mut()
                .for_each(|v| *v = half::f16::from_f32(*v).to_f32()),
            _ => {}
        }
        Ok(values)
    }

    /// A stored tensor on the device in the compute type, its bytes moved as they are where
    /// the stored type is the compute type (no f32 copy of a bf16 checkpoint on the host).
    fn upload<const D: usize>(&self, raw: RawTensor) -> Tensor<D> {
        let compute = self.precision.compute;
        let stored = match raw.ty {
            GgmlType::F32 => Some(DType::F32),
            GgmlType::F16 => Some(DType::F16),
            GgmlType::BF16 => Some(DType::BF16),
            _ => None,
        };
        let data = match stored {
            Some(dtype) => TensorData::from_bytes_vec(raw.bytes.into_vec(), raw.shape, dtype),
            None => {
                let t = raw.to_f32();
                TensorData::new(t.data, t.shape)
            }
        };
        Tensor::from_data(data, (self.device, compute))
    }

    /// A lookup table (the token embedding) `[rows, cols]`, untransposed: a dense tensor of
    /// the compute type, or host blocks.
    pub fn table(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        let stored = self.weights.stored_type(name)?;
        if self.precision.block_type(stored).is_some() {
            return self.matrix(name, rows, cols);
        }
        Ok(Matrix::Dense(
            self.upload::<2>(self.weights.copied(name, &[rows, cols])?),
        ))
    }

    /// A matrix stored as `[d_out, d_in]` (HF layout).
    pub fn matrix(&self, name: &str, d_out: usize, d_in: usize) -> Result<Matrix> {
        let stored = self.weights.stored_type(name)?;
        if let Some(ty) = self.precision.block_type(stored) {
            let raw = self.weights.mapped(name, &[d_out, d_in])?;
            let m = if ty == stored {
                BlockMatrix::new(raw, name)?
            } else {
                BlockMatrix::to_half(&raw, ty, name)?
            };
            return Ok(Matrix::Blocks(Arc::new(m)));
        }
        let raw = self.weights.copied(name, &[d_out, d_in])?;
        if self.precision.compute == DType::F32 && *self.device == Device::flex() {
            // The fused CPU kernels read the weight contiguous as `[d_in, d_out]`.
            return Ok(Matrix::Dense(to_device(
                linear::transpose(&raw.to_f32()),
                self.device,
            )));
        }
        // Elsewhere the transpose is a view: cuBLAS and libtorch multiply by it directly.
        Ok(Matrix::Dense(self.upload::<2>(raw).transpose()))
    }
}
