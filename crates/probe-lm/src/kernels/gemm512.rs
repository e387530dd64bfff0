//! `x · W` for many activation rows with an AVX-512 microkernel, for f32 weights and for
//! block-stored ones (dequantized straight into the panels the kernel reads).
//!
//! Why not the `gemm` crate (which Flex's matmul uses): on stable Rust it runs its AVX2 (8-lane)
//! microkernel even on AVX-512 CPUs, and for block weights it needed them dequantized into a
//! row-major tile first and copied once more into its own panels. Here a panel of 32 weights'
//! columns (output features) is packed once into `[k][32]`, the layout the kernel streams, and
//! the activation rows are read in place: each microkernel step broadcasts one value of each of
//! `MR` activation rows against two 16-lane weight vectors, 2·MR fused multiply-adds in 2·MR
//! accumulator registers. Full-width AVX-512 (Zen 5) runs it at ~1.6× the AVX2 kernel's speed
//! (docs/PERFORMANCE.md).

#![allow(clippy::missing_safety_doc)]

use super::OutPtr;
use std::arch::x86_64::*;

use rayon::prelude::*;

use super::DequantizeRows;

/// Activation rows per microtile (the broadcast side): 14 × 2 accumulators + 2 weight vectors
/// + 1 broadcast fill 31 of the 32 vector registers.
const MR: usize = 14;
/// Output features per panel: two 16-lane vectors.
const NR: usize = 32;
/// Depth per pass: a weight panel of `KC × NR` values (32 KiB) stays in the L1 cache while the
/// activation rows of one `MC` block stream past it.
const KC: usize = 256;
/// Activation rows per block: `MC × KC` values (~170 KiB) stay in the L2 cache while every
/// weight panel of the tile passes over them.
const MC: usize = MR * 12;
/// Packed weights per tile at most (4 MiB of f32: all of a SmolLM2 matrix).
const TILE_VALUES: usize = 1 << 20;

/// Whether this CPU runs the kernel (AVX-512F; `PROBE_NO_AVX512` set in the environment turns it
/// off, to compare).
pub(crate) fn available() -> bool {
    static AVAILABLE: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
        std::env::var_os("PROBE_NO_AVX512").is_none() && std::is_x86_feature_detected!("avx512f")
    });
    *AVAILABLE
}

/// The right-hand operand: `d_in` × `d_out`, read column panel by column panel.
#[derive(Clone, Copy)]
pub(crate) enum Weights<'a> {
    /// `[d_in, d_out]` row-major f32 (burn's layout).
    Dense { values: &'a [f32], d_out: usize },
    /// `[d_out, d_in]` stored rows (HF layout: ggml blocks, halves), dequantized panel by panel.
    Rows(&'a dyn DequantizeRows),
}

impl Weights<'_> {
    fn d_out(&self) -> usize {
        match self {
            Weights::Dense { d_out, .. } => *d_out,
            Weights::Rows(m) => m.shape().0,
        }
    }
}

/// `out = x · W` (or `out += x · W` when `accumulate`, e.g. onto a prefilled bias) for `x` =
/// `[n, d_in]` row-major and `out` = `[n, d_out]` row-major. Output features are split over
/// the rayon pool's threads in tiles of at most [`TILE_VALUES`] packed weights.
///
/// # Safety
/// [`available`] returned true; `x.len() == n × d_in`; `out` has room for `n × d_out` values
/// (initialized when `accumulate`) and does not overlap `x`.
pub(crate) unsafe fn matmul(w: Weights<'_>, x: &[f32], n: usize, out: *mut f32, accumulate: bool) {
    let d_out = w.d_out();
    let d_in = x.len().checked_div(n).unwrap_or(0);
    if n == 0 || d_out == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let cap = (TILE_VALUES / d_in.max(1)).max(NR);
    let share = d_out.div_ceil(threads).next_multiple_of(NR);
    let tile = (cap - cap % NR).min(share);
    let tiles = d_out.div_ceil(tile);
    let dst = OutPtr(out);
    let run = |t: usize| {
        let first = t * tile;
        let d = dst;
        // SAFETY: forwarded from the caller; this task alone writes columns
        // `first..first + count`.
        unsafe { matmul_columns(w, first, tile.min(d_out - first), x, n, d.at(0), accumulate) }
    };
    if tiles > 1 && threads > 1 {
        (0..tiles).into_par_iter().for_each(run);
    } else {
        (0..tiles).for_each(run);
    }
}

thread_local! {
    /// Each thread's packed weights and dequantization scratch, kept between products.
    static BUFFERS: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Output columns `first..first + count` of [`matmul`].
#[target_feature(enable = "avx512f")]
unsafe fn matmul_columns(
    w: Weights<'_>,
    first: usize,
    count: usize,
    x: &[f32],
    n: usize,
    out: *mut f32,
    accumulate: bool,
) {
    let ldc = w.d_out();
    let cols = x.len() / n;
    let panels = count.div_ceil(NR);
    BUFFERS.with(|buffers| {
        let (packed, scratch) = &mut *buffers.borrow_mut();
        pack(w, first, count, cols, packed, scratch);
        for k0 in (0..cols).step_by(KC) {
            let kc = KC.min(cols - k0);
            let accumulate = accumulate || k0 > 0;
            for i0 in (0..n).step_by(MC) {
                let mc = MC.min(n - i0);
                for p in 0..panels {
                    let features = NR.min(count - p * NR);
                    let b = packed.as_ptr().add(p * cols * NR + k0 * NR);
                    let c = out.add(first + p * NR);
                    let mut i = i0;
                    while i < i0 + mc {
                        let rows = MR.min(i0 + mc - i);
                        let tile = Tile {
                            a: x.as_ptr().add(i * cols + k0),
                            lda: cols,
                            b,
                            kc,
                            c: c.add(i * ldc),
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

/// Packs output features `first..first + count` into panels of `NR`, each stored `[cols][NR]`
/// (the last panel padded with zeros).
fn pack(
    w: Weights<'_>,
    first: usize,
    count: usize,
    cols: usize,
    packed: &mut Vec<f32>,
    scratch: &mut Vec<f32>,
) {
    let panels = count.div_ceil(NR);
    if packed.len() < panels * NR * cols {
        packed.resize(panels * NR * cols, 0.0);
    }
    for p in 0..panels {
        let f0 = first + p * NR;
        let width = NR.min(count - p * NR);
        let dst = &mut packed[p * NR * cols..][..NR * cols];
        match w {
            Weights::Dense { values, d_out } => {
                for (k, dst) in dst.chunks_exact_mut(NR).enumerate() {
                    dst[..width].copy_from_slice(&values[k * d_out + f0..][..width]);
                    dst[width..].fill(0.0);
                }
            }
            Weights::Rows(m) => {
                if scratch.len() < NR * cols {
                    scratch.resize(NR * cols, 0.0);
                }
                m.dequantize_rows(f0, width, &mut scratch[..width * cols]);
                scratch[width * cols..NR * cols].fill(0.0);
                // SAFETY: `pack` runs only where `available()` (AVX-512F) held.
                unsafe { transpose_panel(&scratch[..NR * cols], cols, dst) };
            }
        }
    }
}

/// `[NR][cols]` → `[cols][NR]`: 16 × 16 squares transposed in registers, the columns past
/// the last whole square one by one.
#[target_feature(enable = "avx512f")]
fn transpose_panel(src: &[f32], cols: usize, dst: &mut [f32]) {
    assert!(src.len() >= NR * cols && dst.len() >= NR * cols);
    let whole = cols - cols % 16;
    for k0 in (0..whole).step_by(16) {
        for h in 0..NR / 16 {
            let mut r = [_mm512_setzero_ps(); 16];
            for (i, r) in r.iter_mut().enumerate() {
                // SAFETY: row 16h + i, columns k0..k0 + 16 lie inside `src` (asserted above).
                *r = unsafe { _mm512_loadu_ps(src.as_ptr().add((16 * h + i) * cols + k0)) };
            }
            transpose16(&mut r);
            for (j, r) in r.iter().enumerate() {
                // SAFETY: row k0 + j, columns 16h..16h + 16 of `[cols][NR]` lie inside `dst`.
                unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add((k0 + j) * NR + 16 * h), *r) };
            }
        }
    }
    for (f, row) in src.chunks_exact(cols).take(NR).enumerate() {
        for k in whole..cols {
            dst[k * NR + f] = row[k];
        }
    }
}

/// Transposes the 16 × 16 matrix whose rows are `r` in place (unpack, then 128-bit lane
/// shuffles: 64 shuffles for 256 values).
#[target_feature(enable = "avx512f")]
fn transpose16(r: &mut [__m512; 16]) {
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for q in 0..4 {
        let b = 4 * q;
        r[b] = _mm512_shuffle_ps::<0x44>(t[b], t[b + 2]);
        r[b + 1] = _mm512_shuffle_ps::<0xEE>(t[b], t[b + 2]);
        r[b + 2] = _mm512_shuffle_ps::<0x44>(t[b + 1], t[b + 3]);
        r[b + 3] = _mm512_shuffle_ps::<0xEE>(t[b + 1], t[b + 3]);
    }
    for h in 0..2 {
        let b = 8 * h;
        for j in 0..4 {
            t[b + j] = _mm512_shuffle_f32x4::<0x88>(r[b + j], r[b + j + 4]);
            t[b + j + 4] = _mm512_shuffle_f32x4::<0xDD>(r[b + j], r[b + j + 4]);
        }
    }
    for j in 0..8 {
        r[j] = _mm512_shuffle_f32x4::<0x88>(t[j], t[j + 8]);
        r[j + 8] = _mm512_shuffle_f32x4::<0xDD>(t[j], t[j + 8]);
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

#[cfg(test)]
mod tests {
    /// The in-register transpose against the definition, for whole squares and a remainder.
    #[test]
    fn panels_transpose_exactly() {
        if !super::available() {
            eprintln!("notice: no AVX-512; the kernel is not used on this CPU");
            return;
        }
        for cols in [16, 48, 53] {
            let src: Vec<f32> = (0..super::NR * cols).map(|v| v as f32).collect();
            let mut dst = vec![0f32; super::NR * cols];
            // SAFETY: AVX-512F was checked above.
            unsafe { super::transpose_panel(&src, cols, &mut dst) };
            for f in 0..super::NR {
                for k in 0..cols {
                    assert_eq!(
                        dst[k * super::NR + f],
                        src[f * cols + k],
                        "cols {cols} f {f} k {k}"
                    );
                }
            }
        }
    }
}
