//! What a value vector promotes (Geva et al. 2022): the tokens whose logits it raises most
//! when written into the residual stream, read through the final norm's gain and the
//! unembedding. The norm's 1/RMS factor is a positive scalar and does not change the ranking.

use burn::tensor::{Tensor, TensorData};

use crate::{LatentError, Result};

/// Vectors per matrix product: bounds the `[chunk, vocab]` logits held at once.
const CHUNK: usize = 64;

/// The `top` tokens (id, logit) of `unembedding · (gain ⊙ v)` for each vector, highest
/// first. `unembedding` is `[hidden, vocab]`, `gain` the final RMSNorm weight.
pub fn top_tokens(
    unembedding: &Tensor<2>,
    gain: &Tensor<1>,
    vectors: &[Vec<f32>],
    top: usize,
) -> Result<Vec<Vec<(u32, f32)>>> {
    let [hidden, vocab] = unembedding.dims();
    let device = unembedding.device();
    let mut out = Vec::with_capacity(vectors.len());
    for chunk in vectors.chunks(CHUNK) {
        let mut flat = Vec::with_capacity(chunk.len() * hidden);
        for v in chunk {
            if v.len() != hidden {
                return Err(LatentError::Input(format!(
                    "vector of {} dimensions for an unembedding of {hidden}",
                    v.len()
                )));
            }
            flat.extend_from_slice(v);
        }
        let x = Tensor::<2>::from_data(TensorData::new(flat, [chunk.len(), hidden]), &device)
            .mul(gain.clone().unsqueeze::<2>());
        let logits = x
            .matmul(unembedding.clone())
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| LatentError::Input(format!("reading logits: {e:?}")))?;
        for row in logits.chunks_exact(vocab) {
            out.push(top_k(row, top));
        }
    }
    Ok(out)
}

fn top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let order = |a: &usize, b: &usize| row[*b].total_cmp(&row[*a]).then(a.cmp(b));
    let mut idx: Vec<usize> = (0..row.len()).collect();
    let k = k.min(idx.len());
    if k < idx.len() {
        idx.select_nth_unstable_by(k, order);
        idx.truncate(k);
    }
    idx.sort_by(order);
    idx.into_iter().map(|i| (i as u32, row[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn projection_ranks_tokens_by_logit() {
        let device = Device::flex();
        // hidden 2, vocab 4: token j's unembedding column.
        let u = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 0.0, -1.0, 0.5, 0.0, 1.0, 0.0, 0.5], [2, 4]),
            &device,
        );
        let gain = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), &device);
        let got = top_tokens(
            &u,
            &gain,
            &[vec![1.0, 0.0], vec![0.0, 1.0], vec![-1.0, 0.25]],
            2,
        )
        .unwrap();
        // v=(1,0): logits (1, 0, -1, 0.5); v=(0,1)·gain → (0, 2, 0, 1); (-1, 0.5): (-1, 0.5, 1, -0.25).
        assert_eq!(got[0], vec![(0, 1.0), (3, 0.5)]);
        assert_eq!(got[1], vec![(1, 2.0), (3, 1.0)]);
        assert_eq!(got[2], vec![(2, 1.0), (1, 0.5)]);
        assert!(top_tokens(&u, &gain, &[vec![1.0]], 2).is_err());
    }
}
