//! Grouped-query attention without the layout copies around it.
//!
//! The composed path views the projections as `[batch, seq, heads, head_dim]`, transposes them
//! to `[batch, heads, seq, head_dim]` (a copy), rotates q and k (another pass), and after
//! attention transposes the output back (a third copy) for `o_proj`. Here [`split_heads`] does
//! the transpose and the rotation in one pass, and [`attention`] writes each head's output
//! straight into the columns of the `[batch, seq, heads · head_dim]` rows that `o_proj` reads.

use crate::kernels::OutPtr;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::{contiguous, exp, from_vec, matmul_into, values, with_avx2, Strided};

with_avx2! {
    /// Appends the rows of `src` (`[batch, seq, heads · head_dim]`) to `dst` as `[batch, heads,
    /// seq, head_dim]`, rotated by RoPE when `cos`/`sin` (`[batch, seq, head_dim]`) are not
    /// empty: HF's rotate-half convention, `(x₁, x₂) ← (x₁c − x₂s, x₂c + x₁s)`.
    fn split_rows(
        src: &[f32],
        dst: &mut Vec<f32>,
        shape: [usize; 4],
        cos: &[f32],
        sin: &[f32]
    ) {
        let [batch, seq, heads, head_dim] = shape;
        let width = heads * head_dim;
        let half = head_dim / 2;
        for b in 0..batch {
            for h in 0..heads {
                for i in 0..seq {
                    let row = b * seq + i;
                    let x = &src[row * width + h * head_dim..][..head_dim];
                    if cos.is_empty() {
                        dst.extend_from_slice(x);
                        continue;
                    }
                    let c = &cos[row * head_dim..][..head_dim];
                    let s = &sin[row * head_dim..][..head_dim];
                    let (x1, x2) = x.split_at(half);
                    dst.extend(
                        x1.iter().zip(x2).zip(&c[..half]).zip(&s[..half])
                            .map(|(((a, b), c), s)| a * c - b * s),
                    );
                    dst.extend(
                        x2.iter().zip(x1).zip(&c[half..]).zip(&s[half..])
                            .map(|(((b, a), c), s)| b * c + a * s),
                    );
                }
            }
        }
    }
}

/// `[batch, seq, heads · head_dim]` projections as `[batch, heads, seq, head_dim]` heads,
/// rotated when `rope` gives the host cos/sin tables (`[batch, seq, head_dim]`).
pub(crate) fn split_heads(
    x: Tensor<3>,
    heads: usize,
    head_dim: usize,
    rope: Option<(&[f32], &[f32])>,
) -> Tensor<4> {
    let [batch, seq, width] = x.dims();
    assert_eq!(width, heads * head_dim, "split_heads: width vs heads");
    let (cos, sin) = rope.unwrap_or((&[], &[]));
    assert!(
        cos.is_empty() || (cos.len() == batch * seq * head_dim && sin.len() == cos.len()),
        "split_heads: rope tables vs shape"
    );
    assert!(
        head_dim.is_multiple_of(2) || cos.is_empty(),
        "rope needs an even head_dim"
    );
    let x = contiguous(x);
    let mut out = Vec::with_capacity(batch * seq * width);
    split_rows(
        values(&x),
        &mut out,
        [batch, seq, heads, head_dim],
        cos,
        sin,
    );
    from_vec(out, [batch, heads, seq, head_dim])
}

/// Lanes of the partial maxima and sums, so the row reductions vectorise (f32 reductions in
/// one accumulator do not: their order is fixed).
const LANES: usize = 8;

with_avx2! {
    /// Row-wise softmax of `scores · scale` over the keys that `hidden` does not hide, the
    /// scaled scores soft-capped first when `softcap` (`cap · tanh(s / cap)`) is not 0. A row
    /// with every key hidden (a padding query) gets weight 0 everywhere, as Flex's kernel does.
    fn masked_softmax(scores: &mut [f32], hidden: &[bool], keys: usize, scale: f32, softcap: f32) {
        for (row, hidden) in scores.chunks_exact_mut(keys).zip(hidden.chunks_exact(keys)) {
            if softcap != 0.0 {
                // libm's tanh: the cap magnifies any error of a fast approximation
                for (s, &h) in row.iter_mut().zip(hidden) {
                    *s = if h { f32::NEG_INFINITY } else { (*s * scale / softcap).tanh() * softcap };
                }
            } else {
                for (s, &h) in row.iter_mut().zip(hidden) {
                    *s = if h { f32::NEG_INFINITY } else { *s * scale };
                }
            }
            // a NaN score (a NaN in q or k) must stay NaN, as in transformers: the vector max
            // ignores it and the clamped `exp` would turn it into a weight of ~0, so a broken
            // checkpoint would give plausible outputs
            if row.iter().any(|s| s.is_nan()) {
                row.fill(f32::NAN);
                continue;
            }
            let mut lanes = [f32::NEG_INFINITY; LANES];
            let mut chunks = row.chunks_exact(LANES);
            for c in chunks.by_ref() {
                for k in 0..LANES {
                    lanes[k] = lanes[k].max(c[k]);
                }
            }
            let max = chunks
                .remainder()
                .iter()
                .chain(&lanes)
                .fold(f32::NEG_INFINITY, |m, &s| m.max(s));
            if max == f32::NEG_INFINITY {
                row.fill(0.0);
                continue;
            }
            // exp saturates at e⁻⁸⁷ instead of reaching 0, so hidden keys are zeroed explicitly.
            for (s, &h) in row.iter_mut().zip(hidden) {
                *s = if h { 0.0 } else { exp(*s - max) };
            }
            let mut lanes = [0f32; LANES];
            let mut chunks = row.chunks_exact(LANES);
            for c in chunks.by_ref() {
                for k in 0..LANES {
                    lanes[k] += c[k];
                }
            }
            let sum: f32 = lanes.iter().chain(chunks.remainder()).sum();
            let inv = 1.0 / sum;
            for s in row.iter_mut() {
                *s *= inv;
            }
        }
    }
}

with_avx2! {
    /// One query against its keys, for decoding: `scores[j] = q · k_j` (rows of `k` are
    /// `head_dim` apart), then the weighted sum of the rows of `v` into `out`, once
    /// `masked_softmax` has turned the scores into weights. The general path's two GEMM calls
    /// cost more to set up than these few hundred multiply-adds.
    fn single_query_scores(q: &[f32], k: &[f32], scores: &mut [f32]) {
        let head_dim = q.len();
        for (s, k) in scores.iter_mut().zip(k.chunks_exact(head_dim)) {
            let mut lanes = [0f32; LANES];
            let mut qc = q.chunks_exact(LANES);
            let mut kc = k.chunks_exact(LANES);
            for (a, b) in qc.by_ref().zip(kc.by_ref()) {
                for l in 0..LANES {
                    lanes[l] += a[l] * b[l];
                }
            }
            let tail: f32 = qc.remainder().iter().zip(kc.remainder()).map(|(a, b)| a * b).sum();
            *s = lanes.iter().sum::<f32>() + tail;
        }
    }
}

with_avx2! {
    /// `out = Σ_j weights[j] · v_j` (rows of `v` are `out.len()` apart).
    fn weighted_rows(weights: &[f32], v: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        for (&w, row) in weights.iter().zip(v.chunks_exact(out.len())) {
            if w != 0.0 {
                for (o, &x) in out.iter_mut().zip(row) {
                    *o += w * x;
                }
            }
        }
    }
}

/// Scaled dot-product attention of `q` (`[batch, heads, seq, head_dim]`) over `k`, `v`
/// (`[batch, kv_heads, keys, head_dim]`, each kv head shared by `heads / kv_heads` query
/// heads); `hidden` (`[batch, seq, keys]`) is true where a key must be ignored; scores are
/// multiplied by `scale` and, with `softcap`, capped. Returns `[batch, seq, heads · head_dim]`,
/// the layout `o_proj` reads.
pub(crate) fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    hidden: &[bool],
    scale: f64,
    softcap: Option<f64>,
) -> Tensor<3> {
    let [batch, heads, seq, head_dim] = q.dims();
    let [kv_batch, kv_heads, keys, kv_dim] = k.dims();
    assert!(
        kv_batch == batch && kv_dim == head_dim && v.dims() == k.dims(),
        "attention: q {:?}, k {:?}, v {:?}",
        q.dims(),
        k.dims(),
        v.dims()
    );
    assert!(
        kv_heads > 0 && heads.is_multiple_of(kv_heads),
        "attention: heads vs kv heads"
    );
    assert_eq!(hidden.len(), batch * seq * keys, "attention: mask shape");
    let group = heads / kv_heads;
    let width = heads * head_dim;
    let scale = scale as f32;
    let softcap = softcap.unwrap_or(0.0) as f32;
    let (q, k, v) = (contiguous(q), contiguous(k), contiguous(v));
    let (q, k, v) = (values(&q), values(&k), values(&v));
    let mut out = vec![0f32; batch * seq * width];
    if out.is_empty() || keys == 0 {
        return from_vec(out, [batch, seq, width]);
    }
    // One sequence at a time: its output rows are one contiguous block.
    let sequence = |scores: &mut Vec<f32>, (b, out): (usize, &mut [f32])| {
        scores.resize(seq * keys, 0.0);
        let hidden = &hidden[b * seq * keys..][..seq * keys];
        for h in 0..heads {
            let q = &q[(b * heads + h) * seq * head_dim..][..seq * head_dim];
            let kv = (b * kv_heads + h / group) * keys * head_dim;
            let (k, v) = (&k[kv..][..keys * head_dim], &v[kv..][..keys * head_dim]);
            if seq == 1 {
                single_query_scores(q, k, scores);
                masked_softmax(scores, hidden, keys, scale, softcap);
                weighted_rows(scores, v, &mut out[h * head_dim..][..head_dim]);
                continue;
            }
            // SAFETY (both GEMMs): every pointer addresses a slice of the stated extent:
            // scores `[seq, keys]`, q `[seq, head_dim]`, k and v `[keys, head_dim]` (k read
            // transposed through its strides), and the output columns `h·head_dim..` of `seq`
            // rows of `width`. Neither accumulates, so the destinations are only written.
            unsafe {
                matmul_into(
                    [seq, keys, head_dim],
                    scores.as_mut_ptr(),
                    keys,
                    false,
                    Strided::rows(q.as_ptr(), head_dim),
                    Strided {
                        at: k.as_ptr(),
                        row_stride: 1,
                        col_stride: head_dim,
                    },
                    gemm::Parallelism::None,
                );
            }
            masked_softmax(scores, hidden, keys, scale, softcap);
            unsafe {
                matmul_into(
                    [seq, head_dim, keys],
                    out[h * head_dim..].as_mut_ptr(),
                    width,
                    false,
                    Strided::rows(scores.as_ptr(), keys),
                    Strided::rows(v.as_ptr(), head_dim),
                    gemm::Parallelism::None,
                );
            }
        }
    };
    let pool = crate::parallel::spin::pool();
    if seq == 1 && batch == 1 && rayon::current_num_threads() > 1 && pool.threads() > 1 {
        // Decoding one sequence: its heads over the spinning pool (as its products are),
        // each writing its own `head_dim` columns.
        let o = OutPtr(out.as_mut_ptr());
        pool.run(heads, &|h| {
            let kv = (h / group) * keys * head_dim;
            let (k, v) = (&k[kv..][..keys * head_dim], &v[kv..][..keys * head_dim]);
            let mut scores = vec![0f32; keys];
            single_query_scores(&q[h * head_dim..][..head_dim], k, &mut scores);
            masked_softmax(&mut scores, hidden, keys, scale, softcap);
            // SAFETY: head h alone writes `out[h·head_dim..(h + 1)·head_dim]`, and `run`
            // returns only after every head has finished.
            let out = unsafe { std::slice::from_raw_parts_mut(o.at(h * head_dim), head_dim) };
            weighted_rows(&scores, v, out);
        });
    } else if rayon::current_num_threads() > 1 && batch > 1 {
        out.par_chunks_mut(seq * width)
            .enumerate()
            .for_each_init(Vec::new, sequence);
    } else {
        let mut scores = Vec::new();
        out.chunks_mut(seq * width)
            .enumerate()
            .for_each(|block| sequence(&mut scores, block));
    }
    from_vec(out, [batch, seq, width])
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_close, tensor};
    use super::*;
    use burn::tensor::activation::softmax;
    use burn::tensor::{Bool, Device, TensorData};

    /// The composed reference: repeat kv heads, masked softmax with a large finite fill.
    fn reference(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, hidden: &[bool]) -> Tensor<3> {
        reference_scaled(q, k, v, hidden, None, None)
    }

    fn reference_scaled(
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        hidden: &[bool],
        scale: Option<f64>,
        softcap: Option<f64>,
    ) -> Tensor<3> {
        let [b, h, s, d] = q.dims();
        let [_, kvh, t, _] = k.dims();
        let rep = h / kvh;
        let expand = |x: Tensor<4>| {
            x.unsqueeze_dim::<5>(2)
                .repeat_dim(2, rep)
                .reshape([b, h, t, d])
        };
        let mask: Tensor<4, Bool> = Tensor::from_data(
            TensorData::new(hidden.to_vec(), [b, 1, s, t]),
            &Device::flex(),
        );
        let mut scores = q
            .matmul(expand(k).swap_dims(2, 3))
            .mul_scalar(scale.unwrap_or(1.0 / (d as f64).sqrt()));
        if let Some(cap) = softcap {
            scores = scores.div_scalar(cap).tanh().mul_scalar(cap);
        }
        let scores = scores.mask_fill(mask.expand([b, h, s, t]), -1.0e30);
        softmax(scores, 3)
            .matmul(expand(v))
            .swap_dims(1, 2)
            .reshape([b, s, h * d])
    }

    #[test]
    fn attention_equals_the_composed_ops() {
        // Batch 3, 6 query heads sharing 2 kv heads, 5 queries after 2 cached keys; the first
        // sequence is left-padded by 2, the last has a sliding window of 3.
        let (b, h, kvh, s, past, d) = (3, 6, 2, 5, 2, 8);
        let t = past + s;
        let mut hidden = Vec::new();
        for seq in 0..b {
            for i in 0..s {
                for j in 0..t {
                    let q = past + i;
                    let window = seq == 2 && q >= 3 && j <= q - 3;
                    hidden.push((seq == 0 && j < 2) || j > q || window);
                }
            }
        }
        let q = tensor(1, 1.0, [b, h, s, d]);
        let k = tensor(2, 1.0, [b, kvh, t, d]);
        let v = tensor(3, 1.0, [b, kvh, t, d]);
        let fused = attention(
            q.clone(),
            k.clone(),
            v.clone(),
            &hidden,
            default_scale(d),
            None,
        );
        assert_close(
            fused,
            reference(q.clone(), k.clone(), v.clone(), &hidden),
            1e-5,
        );
        // Gemma: another query scale, and soft-capped scores (scaled up so the cap bites)
        let (q, scale, cap) = (q.mul_scalar(4.0), 0.2, Some(1.5));
        let fused = attention(q.clone(), k.clone(), v.clone(), &hidden, scale, cap);
        let want = reference_scaled(q.clone(), k.clone(), v.clone(), &hidden, Some(scale), cap);
        let uncapped = reference_scaled(q, k, v, &hidden, Some(scale), None);
        let gap = want.clone().sub(uncapped).abs().max().into_scalar::<f32>();
        assert!(gap > 1e-2, "the cap changes the output ({gap})");
        assert_close(fused, want, 1e-5);
    }

    fn default_scale(head_dim: usize) -> f64 {
        1.0 / (head_dim as f64).sqrt()
    }

    #[test]
    fn one_query_decoding_equals_the_composed_ops() {
        // Decoding: one query per sequence over 7 cached keys; GQA 6/2, a head_dim that is not
        // a multiple of the lanes, the first sequence left-padded by 3, the second a pad query.
        let (b, h, kvh, t, d) = (3, 6, 2, 7, 20);
        let mut hidden = Vec::new();
        for seq in 0..b {
            for j in 0..t {
                hidden.push((seq == 0 && j < 3) || seq == 1);
            }
        }
        let q = tensor(4, 1.0, [b, h, 1, d]);
        let k = tensor(5, 1.0, [b, kvh, t, d]);
        let v = tensor(6, 1.0, [b, kvh, t, d]);
        let fused = attention(
            q.clone(),
            k.clone(),
            v.clone(),
            &hidden,
            default_scale(d),
            None,
        );
        let values = fused.clone().into_data().try_into_vec::<f32>().unwrap();
        assert!(values[h * d..2 * h * d].iter().all(|&x| x == 0.0));
        let mut want = reference(q, k, v, &hidden)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        // The composed reference spreads a pad query uniformly; the kernel writes zeros.
        want[h * d..2 * h * d].fill(0.0);
        assert_close(fused, from_vec(want, [b, 1, h * d]), 1e-5);
    }

    #[test]
    fn a_query_with_every_key_hidden_gets_zeros() {
        let (q, k, v) = (
            tensor(1, 1.0, [1, 2, 2, 4]),
            tensor(2, 1.0, [1, 1, 2, 4]),
            tensor(3, 1.0, [1, 1, 2, 4]),
        );
        let out = attention(q, k, v, &[true, true, false, true], 0.5, None);
        let out = out.into_data().try_into_vec::<f32>().unwrap();
        assert!(out[..8].iter().all(|&x| x == 0.0), "{out:?}");
        assert!(out[8..].iter().any(|&x| x != 0.0));
    }

    /// A NaN in a query reaches that query's output, as the composed reference (and
    /// transformers) give: a NaN score must not become a weight of ~0.
    #[test]
    fn a_nan_score_stays_nan() {
        let (k, v) = (tensor(2, 1.0, [1, 1, 3, 4]), tensor(3, 1.0, [1, 1, 3, 4]));
        let mut q: Vec<f32> = tensor::<4>(1, 1.0, [1, 1, 3, 4])
            .into_data()
            .try_into_vec()
            .unwrap();
        q[4] = f32::NAN; // query position 1
        let q = from_vec(q, [1, 1, 3, 4]);
        let hidden = [false, true, true, false, false, true, false, false, false];
        let want = reference(q.clone(), k.clone(), v.clone(), &hidden)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let got = attention(q, k, v, &hidden, 0.5, None)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!(want[4..8].iter().all(|x| x.is_nan()), "{want:?}");
        assert!(got[4..8].iter().all(|x| x.is_nan()), "{got:?}");
        assert!(
            got[..4].iter().chain(&got[8..]).all(|x| x.is_finite()),
            "{got:?}"
        );
    }

    #[test]
    fn split_heads_transposes_and_rotates() {
        let (b, s, heads, d) = (2, 3, 4, 6);
        let x: Tensor<3> = tensor(4, 1.0, [b, s, heads * d]);
        let heads_view = x.clone().reshape([b, s, heads, d]).swap_dims(1, 2);
        assert_close(
            split_heads(x.clone(), heads, d, None),
            heads_view.clone(),
            0.0,
        );
        let table: Vec<f32> = tensor::<3>(5, 1.0, [b, s, d])
            .into_data()
            .try_into_vec()
            .unwrap();
        let sin: Vec<f32> = tensor::<3>(6, 1.0, [b, s, d])
            .into_data()
            .try_into_vec()
            .unwrap();
        let tables = |v: &Vec<f32>| from_vec(v.clone(), [b, 1, s, d]);
        let half = d / 2;
        let x1 = heads_view.clone().narrow(3, 0, half);
        let x2 = heads_view.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        let composed = heads_view
            .mul(tables(&table))
            .add(rotated.mul(tables(&sin)));
        assert_close(
            split_heads(x, heads, d, Some((&table, &sin))),
            composed,
            1e-6,
        );
    }
}
