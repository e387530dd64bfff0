//! `x · Wᵀ` for many activation rows with an AVX-512 microkernel, the weights dequantized
//! straight into the panels it reads.
//!
//! Why not the `gemm` crate here, as for f32 weights: on stable Rust it runs its AVX2 (8-lane)
//! microkernel even on AVX-512 CPUs, and it packs its operands itself, so block weights had to
//! be dequantized into a row-major tile first and then copied once more into its panels. Here a
//! panel of 32 weight rows is dequantized and transposed once into `[k][32]` (the layout the
//! kernel streams), and the activation rows are read in place: each microkernel step
//! broadcasts one value of each of `MR` activation rows against two 16-lane vectors of weights,
//! 2·MR fused multiply-adds per step in 2·MR registers. See docs/PERFORMANCE.md for the speed.

#![allow(clippy::missing_safety_doc)]

use std::arch::x86_64::*;

use super::BlockMatrix;

/// Activation rows per microtile (the broadcast side): 14 × 2 accumulators + 2 weight vectors
/// + 1 broadcast fill 31 of the 32 vector registers.
const MR: usize = 14;
/// Weight rows (output features) per panel: two 16-lane vectors.
const NR: usize = 32;
/// Depth per pass: a weight panel of `KC × NR` values (32 KiB) stays in the L1 cache while the
/// activation rows of one `MC` block stream past it.
const KC: usize = 256;
/// Activation rows per block: `MC × KC` values (~170 KiB) stay in the L2 cache while every
/// weight panel of the tile passes over them.
const MC: usize = MR * 12;

thread_local! {
    /// Each thread's packed weights and dequantization scratch, kept between products.
    static BUFFERS: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// `out[i, first..first + count] = x[i] · W[first..first + count]ᵀ` for every activation row
/// `i` of `x` (`[n, cols]`); `out` is `[n, ldc]` row-major and may be uninitialized.
///
/// # Safety
/// The CPU has AVX-512F; `out` has room for `n × ldc` values and `first + count ≤ ldc`; no
/// other thread writes columns `first..first + count` meanwhile.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn matmul_rows(
    m: &BlockMatrix,
    first: usize,
    count: usize,
    x: &[f32],
    n: usize,
    out: *mut f32,
    ldc: usize,
) {
    let cols = m.cols;
    let panels = count.div_ceil(NR);
    BUFFERS.with(|buffers| {
        let (packed, scratch) = &mut *buffers.borrow_mut();
        pack_weights(m, first, count, packed, scratch);
        for k0 in (0..cols).step_by(KC) {
            let kc = KC.min(cols - k0);
            let accumulate = k0 > 0;
            for i0 in (0..n).step_by(MC) {
                let mc = MC.min(n - i0);
                for p in 0..panels {
                    let features = NR.min(count - p * NR);
                    let b = packed.as_ptr().add(p * cols * NR + k0 * NR);
                    let c = out.add(first + p * NR);
                    let mut i = i0;
                    while i < i0 + mc {
                        let rows = MR.min(i0 + mc - i);
                        let a = x.as_ptr().add(i * cols + k0);
                        let c = c.add(i * ldc);
                        let tile = Tile {
                            a,
                            lda: cols,
                            b,
                            kc,
                            c,
                            ldc,
                            features,
                            accumulate,
                        };
                        dispatch(rows, &tile);
                        i += rows;
                    }
                }
            }
        }
    });
}

/// Dequantizes weight rows `first..first + count` into panels of `NR` rows, each stored
/// `[cols][NR]` (the last panel padded with zero rows).
fn pack_weights(
    m: &BlockMatrix,
    first: usize,
    count: usize,
    packed: &mut Vec<f32>,
    scratch: &mut Vec<f32>,
) {
    let cols = m.cols;
    let panels = count.div_ceil(NR);
    if packed.len() < panels * NR * cols {
        packed.resize(panels * NR * cols, 0.0);
    }
    if scratch.len() < NR * cols {
        scratch.resize(NR * cols, 0.0);
    }
    for p in 0..panels {
        let rows = NR.min(count - p * NR);
        m.dequantize_rows(first + p * NR, rows, &mut scratch[..rows * cols]);
        scratch[rows * cols..NR * cols].fill(0.0);
        transpose_panel(
            &scratch[..NR * cols],
            cols,
            &mut packed[p * NR * cols..][..NR * cols],
        );
    }
}

/// `[NR][cols]` → `[cols][NR]`, in 16-column strips so that each source line is read once.
fn transpose_panel(src: &[f32], cols: usize, dst: &mut [f32]) {
    for k0 in (0..cols).step_by(16) {
        let width = 16.min(cols - k0);
        for (f, row) in src.chunks_exact(cols).enumerate() {
            for (dk, &v) in row[k0..k0 + width].iter().enumerate() {
                dst[(k0 + dk) * NR + f] = v;
            }
        }
    }
}

/// One microtile's operands: `a` = activation rows (stride `lda`), `b` = a packed panel
/// (`[kc][NR]`), `c` = the output rows (stride `ldc`), of which `features` columns are written.
struct Tile {
    a: *const f32,
    lda: usize,
    b: *const f32,
    kc: usize,
    c: *mut f32,
    ldc: usize,
    features: usize,
    accumulate: bool,
}

/// Runs the kernel compiled for exactly `rows` activation rows (each keeps its accumulators in
/// registers; a run-time row count would not).
#[target_feature(enable = "avx512f")]
unsafe fn dispatch(rows: usize, t: &Tile) {
    match rows {
        1 => kernel::<1>(t),
        2 => kernel::<2>(t),
        3 => kernel::<3>(t),
        4 => kernel::<4>(t),
        5 => kernel::<5>(t),
        6 => kernel::<6>(t),
        7 => kernel::<7>(t),
        8 => kernel::<8>(t),
        9 => kernel::<9>(t),
        10 => kernel::<10>(t),
        11 => kernel::<11>(t),
        12 => kernel::<12>(t),
        13 => kernel::<13>(t),
        _ => kernel::<MR>(t),
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn kernel<const R: usize>(t: &Tile) {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    let mut a = [std::ptr::null::<f32>(); R];
    for (i, a) in a.iter_mut().enumerate() {
        *a = t.a.add(i * t.lda);
    }
    let mut b = t.b;
    for k in 0..t.kc {
        let b0 = _mm512_loadu_ps(b);
        let b1 = _mm512_loadu_ps(b.add(16));
        for i in 0..R {
            let v = _mm512_set1_ps(*a[i].add(k));
            acc[i][0] = _mm512_fmadd_ps(v, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(v, b1, acc[i][1]);
        }
        b = b.add(NR);
    }
    // Columns past `features` belong to the next tile (or past the row): masked out.
    let lanes = |from: usize| -> __mmask16 {
        let n = t.features.saturating_sub(from).min(16);
        ((1u32 << n) - 1) as __mmask16
    };
    let masks = [lanes(0), lanes(16)];
    for (i, acc) in acc.iter().enumerate() {
        let c = t.c.add(i * t.ldc);
        for (h, &v) in acc.iter().enumerate() {
            let (p, mask) = (c.add(16 * h), masks[h]);
            let v = if t.accumulate {
                _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, p))
            } else {
                v
            };
            _mm512_mask_storeu_ps(p, mask, v);
        }
    }
}
