use burn::tensor::{DType, Device, Tensor, TensorData};

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
