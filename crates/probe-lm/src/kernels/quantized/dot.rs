//! Products of a few activation rows with a block-stored matrix, one pass over the weights.
//!
//! Each weight row is read once and dotted with every activation row while it sits in L1.
//! Blocks are unpacked straight into f32 lanes and multiplied with the f32 activations, so the
//! result equals dequantize-then-matmul up to the order of the additions (llama.cpp instead
//! rounds the activations to 8 bits; probe keeps them exact). Each block's offset term (the
//! `-8`, `-16`, `-32` centres and the `min`s) is folded out of the inner loop through sums of
//! the activations per 16 values, computed once per activation row.
//!
//! The kernels are plain Rust written so that LLVM vectorises the inner loops: 16 or 32
//! independent lanes per block, accumulated lane-wise and reduced once per row. They are
//! compiled three times — baseline x86-64, AVX2 + FMA, AVX-512 — and the best the CPU has is
//! chosen at run time.

use crate::kernels::OutPtr;
use half::bf16;

use super::activations::Activations;
use super::BlockMatrix;
use crate::weights::GgmlType;

/// Weight bytes per parallel task: below this, splitting costs more than it gains.
const TASK_BYTES: usize = 64 * 1024;

use crate::weights::quant::F16_TO_F32;

#[inline(always)]
fn f16_at(b: &[u8], at: usize) -> f32 {
    F16_TO_F32[u16::from_le_bytes([b[at], b[at + 1]]) as usize]
}

/// Compiles a kernel three times (baseline, AVX2 + FMA, AVX-512) and dispatches at run time.
macro_rules! simd_kernel {
    ($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$attr])*
        fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn portable($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
                fn avx512($($arg: $ty),*) -> $ret {
                    portable($($arg),*)
                }
                #[target_feature(enable = "avx2,fma,f16c")]
                fn avx2($($arg: $ty),*) -> $ret {
                    portable($($arg),*)
                }
                match *crate::kernels::quantized::dot::LEVEL {
                    // SAFETY: LEVEL was read from the CPU's feature flags.
                    SimdLevel::Avx512 => return unsafe { avx512($($arg),*) },
                    SimdLevel::Avx2 => return unsafe { avx2($($arg),*) },
                    SimdLevel::Baseline => {}
                }
            }
            portable($($arg),*)
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SimdLevel {
    Baseline,
    Avx2,
    Avx512,
}

/// The widest vector instructions this CPU has (read once).
pub(crate) static LEVEL: std::sync::LazyLock<SimdLevel> = std::sync::LazyLock::new(|| {
    #[cfg(target_arch = "x86_64")]
    {
        let has = |f: &str| match f {
            "avx512" => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
            }
            _ => {
                std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                    && std::is_x86_feature_detected!("f16c")
            }
        };
        if std::env::var_os("PROBE_NO_AVX512").is_none() && has("avx512") && has("avx2") {
            return SimdLevel::Avx512;
        }
        if has("avx2") {
            return SimdLevel::Avx2;
        }
    }
    SimdLevel::Baseline
});

simd_kernel! {
    /// Σ over rows of `dot(weight row, x)` for one weight row and each activation row;
    /// writes `out[r]` for every activation row `r`.
    fn dot_rows(ty: GgmlType, row: &[u8], xs: &[Activations<'_>], out: &mut [f32]) -> () {
        for (a, o) in xs.iter().zip(out.iter_mut()) {
            *o = match ty {
                GgmlType::F32 => dot_f32(row, a.x),
                GgmlType::F16 => dot_f16(row, a.x),
                GgmlType::BF16 => dot_bf16(row, a.x),
                GgmlType::Q4_0 => dot_q4(row, a, false),
                GgmlType::Q4_1 => dot_q4(row, a, true),
                GgmlType::Q5_0 => dot_q5(row, a, false),
                GgmlType::Q5_1 => dot_q5(row, a, true),
                GgmlType::Q8_0 => dot_q8_0(row, a.x),
                GgmlType::Q4K => dot_q4k(row, a),
                GgmlType::Q5K => dot_q5k(row, a),
                GgmlType::Q6K => dot_q6k(row, a),
            };
        }
    }
}

/// One weight row's dot product with one activation row.
type RowKernel = fn(&[u8], &Activations<'_>, &[f32]) -> f32;

/// The hand-written x86 kernel for `ty` on this CPU, if there is one (chosen once per product,
/// not per row: a row of a small matrix is only a few hundred bytes).
fn fast_kernel(ty: GgmlType) -> Option<RowKernel> {
    #[cfg(target_arch = "x86_64")]
    {
        use super::x86;
        if *LEVEL == SimdLevel::Baseline {
            return None;
        }
        // SAFETY (each): LEVEL was read from the CPU's feature flags, and every row handed to
        // a kernel holds whole blocks of `ty` for its activation row (BlockMatrix::new and
        // `matmul` check the lengths).
        let kernel: RowKernel = match (*LEVEL, ty) {
            (SimdLevel::Avx512, GgmlType::Q8_0) => |r, a, t| unsafe { x86::q8_0_avx512(r, a.x, t) },
            (SimdLevel::Avx512, GgmlType::Q4_0) => {
                |r, a, t| unsafe { x86::q4_avx512(r, a, t, false) }
            }
            (SimdLevel::Avx512, GgmlType::Q4_1) => {
                |r, a, t| unsafe { x86::q4_avx512(r, a, t, true) }
            }
            (SimdLevel::Avx2, GgmlType::Q8_0) => |r, a, t| unsafe { x86::q8_0_avx2(r, a.x, t) },
            (SimdLevel::Avx2, GgmlType::Q4_0) => |r, a, t| unsafe { x86::q4_avx2(r, a, t, false) },
            (SimdLevel::Avx2, GgmlType::Q4_1) => |r, a, t| unsafe { x86::q4_avx2(r, a, t, true) },
            (_, GgmlType::Q4K) => |r, a, t| unsafe { x86::q4k_avx2(r, a, t) },
            (_, GgmlType::Q6K) => |r, a, t| unsafe { x86::q6k_avx2(r, a, t) },
            _ => return None,
        };
        Some(kernel)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = ty;
        None
    }
}

#[inline(always)]
fn reduce<const N: usize>(acc: [f32; N]) -> f32 {
    acc.iter().sum()
}

#[inline(always)]
fn dot_f32(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut w = row.chunks_exact(64);
    let mut xc = x.chunks_exact(16);
    for (w, x) in w.by_ref().zip(xc.by_ref()) {
        for j in 0..16 {
            let v = f32::from_le_bytes([w[4 * j], w[4 * j + 1], w[4 * j + 2], w[4 * j + 3]]);
            acc[j] += v * x[j];
        }
    }
    let tail: f32 = w
        .remainder()
        .chunks_exact(4)
        .zip(xc.remainder())
        .map(|(b, x)| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * x)
        .sum();
    reduce(acc) + tail
}

/// F16 rows are widened to f32 in one SIMD pass (F16C), then dotted as f32.
#[inline(always)]
fn dot_f16(row: &[u8], x: &[f32]) -> f32 {
    thread_local! {
        static WIDE: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    WIDE.with(|wide| {
        let mut wide = wide.borrow_mut();
        wide.resize(x.len(), 0.0);
        crate::weights::quant::f16_to_f32(row, &mut wide);
        let mut acc = [0f32; 16];
        let mut wc = wide.chunks_exact(16);
        let mut xc = x.chunks_exact(16);
        for (w, x) in wc.by_ref().zip(xc.by_ref()) {
            for j in 0..16 {
                acc[j] += w[j] * x[j];
            }
        }
        let tail: f32 = wc
            .remainder()
            .iter()
            .zip(xc.remainder())
            .map(|(w, x)| w * x)
            .sum();
        reduce(acc) + tail
    })
}

#[inline(always)]
fn bf16_value(lo: u8, hi: u8) -> f32 {
    // A bf16 is the top half of an f32: widening is a shift.
    f32::from_bits(((hi as u32) << 24) | ((lo as u32) << 16))
}

#[inline(always)]
fn dot_bf16(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut w = row.chunks_exact(32);
    let mut xc = x.chunks_exact(16);
    for (w, x) in w.by_ref().zip(xc.by_ref()) {
        for j in 0..16 {
            acc[j] += bf16_value(w[2 * j], w[2 * j + 1]) * x[j];
        }
    }
    let tail: f32 = w
        .remainder()
        .chunks_exact(2)
        .zip(xc.remainder())
        .map(|(b, x)| bf16::from_le_bytes([b[0], b[1]]).to_f32() * x)
        .sum();
    reduce(acc) + tail
}

/// Q4_0 (`(q − 8)·d`) and Q4_1 (`q·d + m`): nibble j is element j, its high half element j+16.
#[inline(always)]
fn dot_q4(row: &[u8], a: &Activations<'_>, with_min: bool) -> f32 {
    let (bytes, qs_at) = if with_min { (20, 4) } else { (18, 2) };
    let mut acc = [0f32; 16];
    let mut offsets = 0f32;
    for (b, (blk, x)) in row
        .chunks_exact(bytes)
        .zip(a.x.chunks_exact(32))
        .enumerate()
    {
        let d = f16_at(blk, 0);
        let q: &[u8; 16] = blk[qs_at..qs_at + 16].try_into().expect("16 quant bytes");
        let (lo, hi): (&[f32; 16], &[f32; 16]) = (
            x[..16].try_into().expect("32 values"),
            x[16..].try_into().expect("32 values"),
        );
        // Shaped for the vectoriser: one 16-lane product, one fused add, one scaled add.
        let mut t = [0f32; 16];
        for j in 0..16 {
            t[j] = (q[j] & 15) as f32 * lo[j];
        }
        for j in 0..16 {
            t[j] += (q[j] >> 4) as f32 * hi[j];
        }
        for j in 0..16 {
            acc[j] += d * t[j];
        }
        offsets += if with_min {
            f16_at(blk, 2) * a.sum32(b)
        } else {
            -8.0 * d * a.sum32(b)
        };
    }
    reduce(acc) + offsets
}

/// Q5_0 (`(q − 16)·d`) and Q5_1 (`q·d + m`): a nibble plus a fifth bit from the `qh` mask.
#[inline(always)]
fn dot_q5(row: &[u8], a: &Activations<'_>, with_min: bool) -> f32 {
    let (bytes, qh_at) = if with_min { (24, 4) } else { (22, 2) };
    let mut acc = [0f32; 16];
    let mut offsets = 0f32;
    for (b, (blk, x)) in row
        .chunks_exact(bytes)
        .zip(a.x.chunks_exact(32))
        .enumerate()
    {
        let d = f16_at(blk, 0);
        let qh = u32::from_le_bytes([blk[qh_at], blk[qh_at + 1], blk[qh_at + 2], blk[qh_at + 3]]);
        let q = &blk[qh_at + 4..qh_at + 20];
        for j in 0..16 {
            let lo = (q[j] & 15) as u32 | (((qh >> j) & 1) << 4);
            let hi = (q[j] >> 4) as u32 | (((qh >> (j + 16)) & 1) << 4);
            acc[j] += d * (lo as f32 * x[j] + hi as f32 * x[j + 16]);
        }
        offsets += if with_min {
            f16_at(blk, 2) * a.sum32(b)
        } else {
            -16.0 * d * a.sum32(b)
        };
    }
    reduce(acc) + offsets
}

#[inline(always)]
fn dot_q8_0(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 32];
    for (blk, x) in row.chunks_exact(34).zip(x.chunks_exact(32)) {
        let d = f16_at(blk, 0);
        let q = &blk[2..34];
        for j in 0..32 {
            acc[j] += d * (q[j] as i8 as f32 * x[j]);
        }
    }
    reduce(acc)
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K super-block.
#[inline(always)]
fn scale_min_k4(j: usize, q: &[u8]) -> (f32, f32) {
    let (s, m) = if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    };
    (s as f32, m as f32)
}

/// Q4_K: super-blocks of 256 in 8 sub-blocks of 32, each `d·sc·q − dmin·m`; chunk c of 32
/// bytes holds sub-block 2c in its low nibbles and 2c + 1 in its high nibbles.
#[inline(always)]
fn dot_q4k(row: &[u8], a: &Activations<'_>) -> f32 {
    let mut acc = [0f32; 32];
    let mut offsets = 0f32;
    for (sb, (blk, x)) in row.chunks_exact(144).zip(a.x.chunks_exact(256)).enumerate() {
        let d = f16_at(blk, 0);
        let dmin = f16_at(blk, 2);
        let scales = &blk[4..16];
        for c in 0..4 {
            let q = &blk[16 + 32 * c..48 + 32 * c];
            let (s1, m1) = scale_min_k4(2 * c, scales);
            let (s2, m2) = scale_min_k4(2 * c + 1, scales);
            let (d1, d2) = (d * s1, d * s2);
            let x1 = &x[64 * c..64 * c + 32];
            let x2 = &x[64 * c + 32..64 * c + 64];
            for j in 0..32 {
                acc[j] += d1 * (q[j] & 15) as f32 * x1[j] + d2 * (q[j] >> 4) as f32 * x2[j];
            }
            let base = sb * 8 + 2 * c;
            offsets -= dmin * (m1 * a.sum32(base) + m2 * a.sum32(base + 1));
        }
    }
    reduce(acc) + offsets
}

/// Q5_K: Q4_K's layout plus a fifth bit per value in the 32 `qh` bytes (bit 2c for the low
/// nibbles of chunk c, bit 2c + 1 for its high nibbles).
#[inline(always)]
fn dot_q5k(row: &[u8], a: &Activations<'_>) -> f32 {
    let mut acc = [0f32; 32];
    let mut offsets = 0f32;
    for (sb, (blk, x)) in row.chunks_exact(176).zip(a.x.chunks_exact(256)).enumerate() {
        let d = f16_at(blk, 0);
        let dmin = f16_at(blk, 2);
        let scales = &blk[4..16];
        let qh = &blk[16..48];
        for c in 0..4 {
            let q = &blk[48 + 32 * c..80 + 32 * c];
            let (s1, m1) = scale_min_k4(2 * c, scales);
            let (s2, m2) = scale_min_k4(2 * c + 1, scales);
            let (d1, d2) = (d * s1, d * s2);
            let x1 = &x[64 * c..64 * c + 32];
            let x2 = &x[64 * c + 32..64 * c + 64];
            for j in 0..32 {
                let h1 = ((qh[j] >> (2 * c)) & 1) << 4;
                let h2 = ((qh[j] >> (2 * c + 1)) & 1) << 4;
                acc[j] +=
                    d1 * ((q[j] & 15) | h1) as f32 * x1[j] + d2 * ((q[j] >> 4) | h2) as f32 * x2[j];
            }
            let base = sb * 8 + 2 * c;
            offsets -= dmin * (m1 * a.sum32(base) + m2 * a.sum32(base + 1));
        }
    }
    reduce(acc) + offsets
}

/// Q6_K: super-blocks of 256 as two halves of 128; value `d·sc·(q − 32)` with a signed scale
/// per 16 values and q = 4 low bits from `ql` + 2 high bits from `qh`.
#[inline(always)]
fn dot_q6k(row: &[u8], a: &Activations<'_>) -> f32 {
    let mut acc = [0f32; 32];
    let mut offsets = 0f32;
    for (sb, (blk, x)) in row.chunks_exact(210).zip(a.x.chunks_exact(256)).enumerate() {
        let d = f16_at(blk, 208);
        for half in 0..2 {
            let ql = &blk[64 * half..64 * half + 64];
            let qh = &blk[128 + 32 * half..160 + 32 * half];
            let sc = &blk[192 + 8 * half..200 + 8 * half];
            let x = &x[128 * half..128 * half + 128];
            // Quarter k of the half covers values 32k..32k + 32: scales sc[2k], sc[2k + 1].
            for k in 0..4 {
                let xk = &x[32 * k..32 * k + 32];
                let ql = &ql[32 * (k & 1)..32 * (k & 1) + 32];
                let (s_lo, s_hi) = (d * sc[2 * k] as i8 as f32, d * sc[2 * k + 1] as i8 as f32);
                let (nibble_shift, qh_shift) = (4 * (k >> 1) as u32, 2 * k as u32);
                for j in 0..16 {
                    let q = ((ql[j] >> nibble_shift) & 15) | (((qh[j] >> qh_shift) & 3) << 4);
                    acc[j] += s_lo * q as f32 * xk[j];
                }
                for j in 16..32 {
                    let q = ((ql[j] >> nibble_shift) & 15) | (((qh[j] >> qh_shift) & 3) << 4);
                    acc[j] += s_hi * q as f32 * xk[j];
                }
                let g = (sb * 256 + 128 * half + 32 * k) / 16;
                offsets -= 32.0 * (s_lo * a.sums16[g] + s_hi * a.sums16[g + 1]);
            }
        }
    }
    reduce(acc) + offsets
}

/// `x · Wᵀ` for a few rows of `x`, the weight rows split over the spinning pool.
pub(super) fn matmul(m: &BlockMatrix, x: &[f32], n: usize) -> Vec<f32> {
    let acts: Vec<Activations<'_>> = x.chunks_exact(m.cols).map(Activations::new).collect();
    // Computed as [rows, n] (each weight row's results together), transposed at the end.
    let mut by_row = vec![0f32; m.rows * n];
    let pool = crate::parallel::spin::pool();
    let split = m.rows * m.row_bytes > TASK_BYTES && rayon::current_num_threads() > 1;
    // One contiguous share per thread: no task counter bouncing between cores, and each
    // thread streams its rows in order.
    let rows_per_task = if split && pool.threads() > 1 {
        m.rows.div_ceil(pool.threads())
    } else {
        m.rows
    };
    let fast = fast_kernel(m.ty);
    let table: &[f32] = &F16_TO_F32;
    // Decoding steps round the activations to 8 bits where a kernel exists (see `q8`).
    #[cfg(target_arch = "x86_64")]
    let q8 = match super::q8::kernel() {
        Some(kernel) if super::q8::is_decoding() && super::q8::supported(m.ty) => Some((
            kernel,
            x.chunks_exact(m.cols)
                .map(super::q8::Q8Row::new)
                .collect::<Vec<_>>(),
        )),
        _ => None,
    };
    let work = |(chunk, out): (usize, &mut [f32])| {
        let first = chunk * rows_per_task;
        #[cfg(target_arch = "x86_64")]
        if let Some((kernel, rows)) = &q8 {
            for (i, o) in out.chunks_exact_mut(n).enumerate() {
                let row = m.row_bytes(first + i, 1);
                for (x, v) in rows.iter().zip(o.iter_mut()) {
                    // SAFETY: `kernel` was chosen for this CPU's features, supports `m.ty`,
                    // and `row` holds whole blocks for `x`'s length.
                    *v = unsafe { kernel(m.ty, row, x, table) };
                }
            }
            return;
        }
        match fast {
            Some(kernel) => {
                for (i, o) in out.chunks_exact_mut(n).enumerate() {
                    let row = m.row_bytes(first + i, 1);
                    for (a, v) in acts.iter().zip(o.iter_mut()) {
                        *v = kernel(row, a, table);
                    }
                }
            }
            None => {
                for (i, o) in out.chunks_exact_mut(n).enumerate() {
                    dot_rows(m.ty, m.row_bytes(first + i, 1), &acts, o);
                }
            }
        }
    };
    // Split over the spinning pool when the caller may use every core (not inside one of
    // `run_batches`' one-thread pools, where the other cores run other batches).
    let chunk = rows_per_task * n;
    if m.rows > rows_per_task {
        let tasks = by_row.len().div_ceil(chunk);
        let (out, len) = (OutPtr(by_row.as_mut_ptr()), by_row.len());
        pool.run(tasks, &|t| {
            let start = t * chunk;
            let end = (start + chunk).min(len);
            // SAFETY: task t alone writes `by_row[start..end]`, and `run` returns only after
            // every task has finished.
            let slice = unsafe { std::slice::from_raw_parts_mut(out.at(start), end - start) };
            work((t, slice));
        });
    } else {
        by_row.chunks_mut(chunk).enumerate().for_each(work);
    }
    if n == 1 {
        return by_row;
    }
    let mut out = vec![0f32; n * m.rows];
    for (o, vals) in by_row.chunks_exact(n).enumerate() {
        for (r, v) in vals.iter().enumerate() {
            out[r * m.rows + o] = *v;
        }
    }
    out
}

/// How far these kernels may differ from dequantize-then-matmul, relative to the output's
/// scale: only the order of the additions differs.
#[cfg(test)]
pub(super) fn tolerance(_ty: GgmlType) -> f32 {
    2e-5
}
