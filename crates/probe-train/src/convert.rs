//! The one place where activations change representation: cache rows (`f32`, row-major) and
//! burn tensors on one side, ndarray 0.16 matrices (what linfa fits on) on the other.

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::{Array2, ArrayView2, ShapeBuilder};

use crate::{fit::Scaler, Result, TrainError};

/// The standardized rows `rows` of a row-major `[n × dim]` matrix, as f64 in column-major
/// (Fortran) order: linfa's gradient `Xᵀ·r` then walks contiguous columns.
pub fn standardized_rows(data: &[f32], dim: usize, rows: &[usize], scaler: &Scaler) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros((rows.len(), dim).f());
    for (j, mut col) in out.columns_mut().into_iter().enumerate() {
        let (mean, std) = (scaler.mean[j], scaler.std[j]);
        for (dst, &r) in col.iter_mut().zip(rows) {
            *dst = (data[r * dim + j] as f64 - mean) / std;
        }
    }
    out
}

/// A 2-D burn tensor as an ndarray matrix.
pub fn tensor_to_array(t: Tensor<2>) -> Result<Array2<f32>> {
    let [r, c] = t.dims();
    let v = t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Data(format!("reading a tensor: {e:?}")))?;
    Array2::from_shape_vec((r, c), v).map_err(|e| TrainError::Data(e.to_string()))
}

/// An ndarray matrix as a 2-D burn tensor on `device`.
pub fn array_to_tensor(a: ArrayView2<f32>, device: &Device) -> Tensor<2> {
    let (r, c) = a.dim();
    let v: Vec<f32> = a.iter().copied().collect();
    Tensor::from_data(TensorData::new(v, [r, c]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_burn() {
        let a = Array2::from_shape_fn((3, 4), |(i, j)| (i * 10 + j) as f32 - 5.5);
        let t = array_to_tensor(a.view(), &Device::flex());
        assert_eq!(t.dims(), [3, 4]);
        assert_eq!(tensor_to_array(t).unwrap(), a);
        // A transposed (non-contiguous) view keeps its logical order.
        let t = array_to_tensor(a.t(), &Device::flex());
        assert_eq!(tensor_to_array(t).unwrap(), a.t());
    }

    #[test]
    fn standardizes_selected_rows() {
        let data = [1.0f32, 10.0, 3.0, 20.0, 5.0, 30.0];
        let scaler = Scaler::fit(&data, 2, &[0, 2]);
        let z = standardized_rows(&data, 2, &[2, 1], &scaler);
        assert_eq!(z[[0, 0]], 1.0);
        assert_eq!(z[[0, 1]], 1.0);
        assert_eq!(z[[1, 0]], 0.0);
        assert_eq!(z[[1, 1]], 0.0);
    }
}
