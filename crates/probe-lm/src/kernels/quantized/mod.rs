//! Matrices kept on the host as their file stores them — ggml blocks (Q4_K, Q8_0, …) or 16-bit
//! halves — and multiplied by f32 activations in place, as llama.cpp and candle do:
//!
//! * a few rows (decoding, batch 1): [`dot`], one pass over the weights per product, which
//!   is what bounds decoding speed (bytes read per token);
//! * many rows (prefill, extraction): [`tiles`], a tile of weight rows dequantized into a
//!   buffer that stays in cache, then the f32 GEMM microkernel on it.
//!
//! Outputs are f32; only the weights are compressed.

mod activations;
mod dot;
#[cfg(target_arch = "x86_64")]
mod q8;
mod tiles;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Marks the current thread as running a KV-cached decoding step until the returned guard
/// drops: block products then round their activations to 8 bits (see `q8`).
pub(crate) fn decoding() -> impl Drop {
    #[cfg(target_arch = "x86_64")]
    {
        q8::decoding()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        struct NoOp;
        impl Drop for NoOp {
            fn drop(&mut self) {}
        }
        NoOp
    }
}

use std::sync::Arc;

use half::{bf16, f16};

use crate::error::{Error, Result};
use crate::weights::quant::dequantize;
use crate::weights::{GgmlType, HostBytes, RawTensor};

/// Rows of activations up to which products go through [`dot`] rather than [`tiles`].
const DOT_MAX_ROWS: usize = 8;

/// A `[rows, cols]` weight matrix (HF layout: `rows` = outputs, `cols` = inputs) whose rows are
/// whole blocks of `ty`.
#[derive(Clone)]
pub struct BlockMatrix {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    bytes: HostBytes,
}

impl std::fmt::Debug for BlockMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BlockMatrix({} [{}, {}])",
            self.ty.name(),
            self.rows,
            self.cols
        )
    }
}

impl crate::kernels::DequantizeRows for BlockMatrix {
    fn shape(&self) -> (usize, usize) {
        BlockMatrix::shape(self)
    }
    fn dequantize_rows(&self, first: usize, count: usize, out: &mut [f32]) {
        BlockMatrix::dequantize_rows(self, first, count, out)
    }
}

impl BlockMatrix {
    /// Takes a stored matrix as it is (no copy for a mapped one).
    pub fn new(raw: RawTensor, name: &str) -> Result<Self> {
        let (rows, cols) = match raw.shape[..] {
            [r, c] => (r, c),
            _ => {
                return Err(Error::ShapeMismatch {
                    name: format!("{name} (a matrix was expected)"),
                    expected: vec![],
                    actual: raw.shape.clone(),
                })
            }
        };
        let (block, block_bytes) = raw.ty.block_layout();
        if !cols.is_multiple_of(block) {
            return Err(Error::Input(format!(
                "{name}: rows of {cols} values are not whole {} blocks of {block}",
                raw.ty.name()
            )));
        }
        let row_bytes = cols / block * block_bytes;
        if raw.bytes.len() != rows * row_bytes {
            return Err(Error::Input(format!(
                "{name}: {} bytes for {rows} rows of {row_bytes} ({} [{rows}, {cols}])",
                raw.bytes.len(),
                raw.ty.name()
            )));
        }
        Ok(BlockMatrix {
            ty: raw.ty,
            rows,
            cols,
            row_bytes,
            bytes: raw.bytes,
        })
    }

    /// A stored matrix converted to 16-bit halves (`F16` or `BF16`), rounding to nearest.
    pub fn to_half(raw: &RawTensor, half_ty: GgmlType, name: &str) -> Result<Self> {
        if raw.ty == half_ty {
            return Self::new(raw.clone(), name);
        }
        let values = raw.to_f32();
        let bytes: Vec<u8> = match half_ty {
            GgmlType::BF16 => values
                .data
                .iter()
                .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                .collect(),
            GgmlType::F16 => values
                .data
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect(),
            other => unreachable!("to_half with {other:?}"),
        };
        Self::new(
            RawTensor {
                ty: half_ty,
                shape: raw.shape.clone(),
                bytes: HostBytes::Owned(Arc::new(bytes)),
            },
            name,
        )
    }

    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// `(rows, cols)`: outputs, inputs.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Bytes of the stored blocks.
    pub fn stored_bytes(&self) -> usize {
        self.bytes.len()
    }

    fn row_bytes(&self, first: usize, n: usize) -> &[u8] {
        &self.bytes[first * self.row_bytes..(first + n) * self.row_bytes]
    }

    /// Rows `first..first + n` as f32, row-major into `out` (`n · cols` values).
    pub fn dequantize_rows(&self, first: usize, n: usize, out: &mut [f32]) {
        let (bytes, out) = (self.row_bytes(first, n), &mut out[..n * self.cols]);
        #[cfg(target_arch = "x86_64")]
        if matches!(self.ty, GgmlType::Q4_0 | GgmlType::Q4_1)
            && *dot::LEVEL == dot::SimdLevel::Avx512
        {
            let table: &[f32] = &crate::weights::quant::F16_TO_F32;
            // SAFETY: LEVEL was read from the CPU's feature flags; `bytes` holds whole blocks
            // for `out`.
            return unsafe {
                x86::dequantize_q4_avx512(bytes, out, table, self.ty == GgmlType::Q4_1)
            };
        }
        dequantize(self.ty, bytes, out);
    }

    /// Rows picked by index (an embedding lookup), `[ids.len(), cols]`.
    pub fn gather_rows(&self, ids: &[usize]) -> Vec<f32> {
        let mut out = vec![0f32; ids.len() * self.cols];
        for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(self.cols)) {
            self.dequantize_rows(id, 1, dst);
        }
        out
    }

    /// The whole matrix as f32, transposed to `[cols, rows]` (burn's `[d_in, d_out]`).
    pub fn to_f32_transposed(&self) -> Vec<f32> {
        let mut rows = vec![0f32; self.rows * self.cols];
        self.dequantize_rows(0, self.rows, &mut rows);
        transpose_values(&rows, self.rows, self.cols)
    }

    /// `x · Wᵀ` for `x` = `[n, cols]` row-major: `[n, rows]` row-major.
    pub fn matmul(&self, x: &[f32], n: usize) -> Vec<f32> {
        assert_eq!(x.len(), n * self.cols, "BlockMatrix::matmul: input width");
        if n <= DOT_MAX_ROWS {
            dot::matmul(self, x, n)
        } else {
            tiles::matmul(self, x, n)
        }
    }
}

/// `data` (`rows × cols`, row-major) transposed to `cols × rows`.
pub(crate) fn transpose_values(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    // Blocked so both sides stay in cache for large matrices.
    const B: usize = 64;
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    out[c * rows + r] = data[r * cols + c];
                }
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::weights::quant::tests::random_blocks;

    /// `x · Wᵀ` by dequantizing the whole matrix first: the reference for both paths.
    fn reference(m: &BlockMatrix, x: &[f32], n: usize) -> Vec<f32> {
        let mut w = vec![0f32; m.rows * m.cols];
        m.dequantize_rows(0, m.rows, &mut w);
        let mut out = vec![0f32; n * m.rows];
        for r in 0..n {
            for o in 0..m.rows {
                let mut acc = 0f64;
                for k in 0..m.cols {
                    acc += x[r * m.cols + k] as f64 * w[o * m.cols + k] as f64;
                }
                out[r * m.rows + o] = acc as f32;
            }
        }
        out
    }

    pub(crate) fn matrix(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> BlockMatrix {
        let bytes = random_blocks(ty, rows * cols, seed);
        BlockMatrix::new(
            RawTensor {
                ty,
                shape: vec![rows, cols],
                bytes: HostBytes::Owned(Arc::new(bytes)),
            },
            "test",
        )
        .unwrap()
    }

    pub(crate) fn activations(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    /// Every block type, at row lengths of one block, several blocks and an odd number of
    /// blocks, for 1..=3 rows (the dot kernels) and 13 / 70 / 200 rows (the tiled GEMM; 200
    /// crosses an activation block of the AVX-512 kernel).
    #[test]
    fn both_paths_equal_dequantize_then_matmul() {
        let types = [
            GgmlType::F32,
            GgmlType::F16,
            GgmlType::BF16,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q8_0,
            GgmlType::Q4K,
            GgmlType::Q5K,
            GgmlType::Q6K,
        ];
        for ty in types {
            let block = ty.block_layout().0.max(32);
            for cols in [block, 3 * block, 7 * block] {
                let m = matrix(ty, 37, cols, cols as u64);
                for n in [1, 2, 3, 13, 70, 200] {
                    let x = activations(n * cols, n as u64);
                    let got = m.matmul(&x, n);
                    let want = reference(&m, &x, n);
                    let scale = want.iter().fold(0f32, |a, v| a.max(v.abs())).max(1.0);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        // The dot kernels quantize activations to 8 bits, as llama.cpp does.
                        let tol = if n <= DOT_MAX_ROWS {
                            dot::tolerance(ty)
                        } else {
                            1e-5
                        };
                        assert!(
                            (g - w).abs() <= tol * scale,
                            "{} cols {cols} n {n} element {i}: {g} vs {w} (scale {scale})",
                            ty.name()
                        );
                    }
                }
            }
        }
    }

    /// The 8-bit decoding kernels (`--fast-decode`) against dequantize-then-matmul: every type
    /// they take, odd block counts, 1..=3 activation rows; the error bound is the activations'
    /// rounding (half a step of each block's largest value over 127).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn eight_bit_decoding_kernels_stay_within_their_rounding() {
        if q8::kernel().is_none() {
            eprintln!("notice: no AVX2; the 8-bit kernels are not used on this CPU");
            return;
        }
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q8_0,
            GgmlType::Q4K,
            GgmlType::Q6K,
        ] {
            let block = ty.block_layout().0;
            for cols in [block, 3 * block, 7 * block] {
                let m = matrix(ty, 29, cols, cols as u64 + 1);
                for n in [1, 2, 3] {
                    let x = activations(n * cols, n as u64 + 7);
                    let got = {
                        let _decoding = decoding();
                        m.matmul(&x, n)
                    };
                    let (exact, want) = (m.matmul(&x, n), reference(&m, &x, n));
                    let mut w = vec![0f32; m.rows * cols];
                    m.dequantize_rows(0, m.rows, &mut w);
                    for r in 0..n {
                        let xr = &x[r * cols..][..cols];
                        // Exactly: the dequantized weights times the rounded activations, up
                        // to f32 summation, for every kernel this CPU runs (a saturating or
                        // misplaced integer step would show here, not in the rounding bound).
                        let q = q8::Q8Row::new(xr);
                        let rounded: Vec<f32> =
                            q.q.iter()
                                .enumerate()
                                .map(|(k, &v)| v as f32 * q.d[k / 32])
                                .collect();
                        let emulated = reference(&m, &rounded, 1);
                        let magnitudes: Vec<f32> = w
                            .chunks_exact(cols)
                            .map(|wo| wo.iter().zip(&rounded).map(|(w, x)| (w * x).abs()).sum())
                            .collect();
                        for (name, kernel) in q8::available() {
                            for (o, &magnitude) in magnitudes.iter().enumerate() {
                                let row = m.row_bytes(o, 1);
                                // SAFETY: `available` lists only kernels this CPU runs; `row`
                                // holds whole blocks of `ty` for `q`'s length.
                                let g = unsafe {
                                    kernel(ty, row, &q, &crate::weights::quant::F16_TO_F32)
                                };
                                assert!(
                                    (g - emulated[o]).abs() <= 1e-5 * magnitude + 1e-6,
                                    "{name} {} cols {cols} row {o}: {g} vs the rounded \
                                     activations' {} (Σ|w·x| {magnitude})",
                                    ty.name(),
                                    emulated[o]
                                );
                            }
                        }
                        // Σ|w|·(step/2) over the row: the rounding's worst case.
                        let steps: Vec<f32> = xr
                            .chunks(32)
                            .flat_map(|b| {
                                let step = b.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
                                std::iter::repeat_n(step / 2.0, b.len())
                            })
                            .collect();
                        for o in 0..m.rows {
                            let bound: f32 = w[o * cols..][..cols]
                                .iter()
                                .zip(&steps)
                                .map(|(w, s)| w.abs() * s)
                                .sum();
                            let (g, e) = (got[r * m.rows + o], want[r * m.rows + o]);
                            assert!(
                                (g - e).abs() <= bound * 1.01 + 1e-4 * (1.0 + e.abs()),
                                "{} cols {cols} row {o}: {g} vs {e} (bound {bound})",
                                ty.name()
                            );
                        }
                    }
                    assert_ne!(got, exact, "{}: the 8-bit kernel was not used", ty.name());
                }
            }
        }
    }

    #[test]
    fn malformed_matrices_are_refused() {
        let raw = |ty: GgmlType, shape: Vec<usize>, len: usize| RawTensor {
            ty,
            shape,
            bytes: HostBytes::Owned(Arc::new(vec![0u8; len])),
        };
        let err = BlockMatrix::new(raw(GgmlType::Q4_0, vec![2, 48], 54), "w")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not whole Q4_0 blocks"), "{err}");
        let err = BlockMatrix::new(raw(GgmlType::Q4_0, vec![2, 64], 71), "w")
            .unwrap_err()
            .to_string();
        assert!(err.contains("71 bytes"), "{err}");
        assert!(BlockMatrix::new(raw(GgmlType::Q4_0, vec![64], 36), "w").is_err());
    }

    #[test]
    fn gather_and_transpose_dequantize_rows() {
        let m = matrix(GgmlType::Q4K, 5, 256, 3);
        let mut all = vec![0f32; 5 * 256];
        m.dequantize_rows(0, 5, &mut all);
        assert_eq!(
            m.gather_rows(&[3, 0]),
            [&all[768..1024], &all[..256]].concat()
        );
        let t = m.to_f32_transposed();
        assert_eq!(t[7 * 5 + 2], all[2 * 256 + 7]);
    }

    #[test]
    fn half_conversion_rounds_to_nearest() {
        let values: Vec<f32> = vec![1.0, -2.5, 1.0 / 3.0, 1000.1];
        let raw = RawTensor {
            ty: GgmlType::F32,
            shape: vec![1, 4],
            bytes: HostBytes::Owned(Arc::new(
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )),
        };
        for ty in [GgmlType::BF16, GgmlType::F16] {
            let m = BlockMatrix::to_half(&raw, ty, "w").unwrap();
            let mut out = vec![0f32; 4];
            m.dequantize_rows(0, 1, &mut out);
            for (o, v) in out.iter().zip(&values) {
                let step = if ty == GgmlType::BF16 {
                    1.0 / 128.0
                } else {
                    1.0 / 1024.0
                };
                assert!((o - v).abs() <= v.abs() * step, "{o} vs {v}");
            }
        }
    }
}
