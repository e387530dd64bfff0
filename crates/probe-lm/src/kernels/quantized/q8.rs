//! Decoding kernels that round the activations to 8 bits, as llama.cpp does: each run of 32
//! activations becomes 32 signed bytes and one f32 scale, and a weight block's products are
//! integer multiply-adds (`vpmaddubsw`, or VNNI's `vpdpbusd` where the CPU has it), scaled once
//! per block. This halves the work per weight against the f32 kernels, which matters once the
//! weights are large (a 1B–8B Q4_K model decodes ~2–3× faster).
//!
//! Used only for KV-cached decoding steps (`Transformer::decode_step`, through
//! [`decoding`]): the activations' rounding (≤ 0.4 % of each block's largest value) shifts
//! logits slightly, as it does in llama.cpp; hooks, extraction and prompt scoring run the exact
//! f32 kernels.

#![allow(clippy::missing_safety_doc)]

use std::arch::x86_64::*;
use std::cell::Cell;

use crate::weights::GgmlType;

thread_local! {
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as running a decoding step until the guard drops.
pub(crate) struct DecodingGuard(bool);

pub(crate) fn decoding() -> DecodingGuard {
    DecodingGuard(DECODING.with(|d| d.replace(true)))
}

impl Drop for DecodingGuard {
    fn drop(&mut self) {
        let previous = self.0;
        DECODING.with(|d| d.set(previous));
    }
}

pub(super) fn is_decoding() -> bool {
    DECODING.with(Cell::get)
}

/// One activation row as 8-bit blocks of 32: `q[32 b + j] ≈ x[32 b + j] / d[b]`.
pub(super) struct Q8Row {
    pub(super) q: Vec<i8>,
    pub(super) d: Vec<f32>,
    /// Σ q over each block, and over each half-block of 16 (for Q6_K's per-16 scales).
    pub(super) sum32: Vec<i32>,
    pub(super) sum16: Vec<i32>,
}

impl Q8Row {
    /// Rounds `x` (a whole number of 32-blocks) to nearest, each block scaled by its largest
    /// magnitude over 127.
    pub(super) fn new(x: &[f32]) -> Self {
        let blocks = x.len() / 32;
        let mut q = vec![0i8; x.len()];
        let mut d = Vec::with_capacity(blocks);
        let mut sum32 = Vec::with_capacity(blocks);
        let mut sum16 = Vec::with_capacity(2 * blocks);
        for (xb, qb) in x.chunks_exact(32).zip(q.chunks_exact_mut(32)) {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            for (qv, &v) in qb.iter_mut().zip(xb) {
                *qv = (v * inv).round() as i8;
            }
            let s0: i32 = qb[..16].iter().map(|&v| v as i32).sum();
            let s1: i32 = qb[16..].iter().map(|&v| v as i32).sum();
            d.push(scale);
            sum32.push(s0 + s1);
            sum16.push(s0);
            sum16.push(s1);
        }
        Q8Row { q, d, sum32, sum16 }
    }
}

/// A kernel for one weight row of type `ty` against one 8-bit activation row.
pub(super) type Q8Kernel = unsafe fn(GgmlType, &[u8], &Q8Row, &[f32]) -> f32;

/// The best 8-bit kernel this CPU runs: VNNI's `vpdpbusd` (AVX-VNNI or AVX-512 VNNI), else
/// AVX2's `vpmaddubsw` + `vpmaddwd`; `None` without AVX2 or with `PROBE_EXACT_DECODE` set.
pub(super) fn kernel() -> Option<Q8Kernel> {
    static KERNEL: std::sync::LazyLock<Option<Q8Kernel>> = std::sync::LazyLock::new(|| {
        if std::env::var_os("PROBE_EXACT_DECODE").is_some() {
            return None;
        }
        available().last().map(|&(_, k)| k)
    });
    *KERNEL
}

/// Every 8-bit kernel this CPU can run, best last (the tests hold each to the same sums).
pub(super) fn available() -> Vec<(&'static str, Q8Kernel)> {
    let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    if !avx2 {
        return Vec::new();
    }
    let mut kernels = vec![("avx2", row_avx2 as Q8Kernel)];
    if std::is_x86_feature_detected!("avx512vnni") && std::is_x86_feature_detected!("avx512vl") {
        kernels.push(("avx512vnni", row_avx512vnni as Q8Kernel));
    }
    if std::is_x86_feature_detected!("avxvnni") {
        kernels.push(("avxvnni", row_avxvnni as Q8Kernel));
    }
    kernels
}

/// The types with 8-bit decoding kernels.
pub(super) fn supported(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 | GgmlType::Q4K | GgmlType::Q6K
    )
}

/// `Σ u8 · i8` of 32 byte pairs into eight i32 lanes (four pairs each, in byte order), by
/// each instruction set; inlined into kernels compiled with that set's features.
#[inline(always)]
unsafe fn dot_avx2(u: __m256i, s: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
}

#[inline(always)]
unsafe fn dot_avx512vnni(u: __m256i, s: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
}

#[inline(always)]
unsafe fn dot_avxvnni(u: __m256i, s: __m256i) -> __m256i {
    _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s)
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K super-block.
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

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[inline(always)]
fn f16(table: &[f32], b: &[u8], at: usize) -> f32 {
    table[u16::from_le_bytes([b[at], b[at + 1]]) as usize]
}

/// One weight row against one 8-bit activation row; the body is compiled once per instruction
/// set (`$dot`), with that set's features.
macro_rules! kernels {
    ($dot:ident, $features:literal, $name:ident) => {
        #[target_feature(enable = $features)]
        pub(super) unsafe fn $name(ty: GgmlType, row: &[u8], x: &Q8Row, table: &[f32]) -> f32 {
            let nibbles = _mm_set1_epi8(15);
            let mut acc = _mm256_setzero_ps();
            let mut offsets = 0f32;
            let q = x.q.as_ptr();
            let load_x = |b: usize| _mm256_loadu_si256(q.add(32 * b) as *const __m256i);
            // 16 bytes of nibbles as 32 bytes: low nibbles first, then high ones.
            let unpack = |p: *const u8| {
                let v = _mm_loadu_si128(p as *const __m128i);
                _mm256_set_m128i(
                    _mm_and_si128(_mm_srli_epi16(v, 4), nibbles),
                    _mm_and_si128(v, nibbles),
                )
            };
            match ty {
                GgmlType::Q4_0 | GgmlType::Q4_1 => {
                    let (bytes, qs_at) = if ty == GgmlType::Q4_1 {
                        (20, 4)
                    } else {
                        (18, 2)
                    };
                    for (b, blk) in row.chunks_exact(bytes).enumerate() {
                        let d = f16(table, blk, 0);
                        let p =
                            _mm256_cvtepi32_ps($dot(unpack(blk.as_ptr().add(qs_at)), load_x(b)));
                        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x.d[b]), p, acc);
                        let sum = x.d[b] * x.sum32[b] as f32;
                        offsets += if ty == GgmlType::Q4_1 {
                            f16(table, blk, 2) * sum
                        } else {
                            -8.0 * d * sum
                        };
                    }
                }
                GgmlType::Q8_0 => {
                    for (b, blk) in row.chunks_exact(34).enumerate() {
                        let w = _mm256_loadu_si256(blk.as_ptr().add(2) as *const __m256i);
                        // Signed × signed through u8 × i8: |w| times y with w's sign.
                        let p = _mm256_cvtepi32_ps($dot(
                            _mm256_sign_epi8(w, w),
                            _mm256_sign_epi8(load_x(b), w),
                        ));
                        let s = f16(table, blk, 0) * x.d[b];
                        acc = _mm256_fmadd_ps(_mm256_set1_ps(s), p, acc);
                    }
                }
                GgmlType::Q4K => {
                    let mask = _mm256_set1_epi8(15);
                    for (sb, blk) in row.chunks_exact(144).enumerate() {
                        let d = f16(table, blk, 0);
                        let dmin = f16(table, blk, 2);
                        let scales = &blk[4..16];
                        for c in 0..4 {
                            let raw =
                                _mm256_loadu_si256(blk.as_ptr().add(16 + 32 * c) as *const __m256i);
                            for (half, w) in [
                                _mm256_and_si256(raw, mask),
                                _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask),
                            ]
                            .into_iter()
                            .enumerate()
                            {
                                let sub = 2 * c + half;
                                let b = sb * 8 + sub;
                                let (sc, m) = scale_min_k4(sub, scales);
                                let p = _mm256_cvtepi32_ps($dot(w, load_x(b)));
                                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc * x.d[b]), p, acc);
                                offsets -= dmin * m * x.d[b] * x.sum32[b] as f32;
                            }
                        }
                    }
                }
                GgmlType::Q6K => {
                    let (mask4, mask2) = (_mm256_set1_epi8(15), _mm256_set1_epi8(3));
                    for (sb, blk) in row.chunks_exact(210).enumerate() {
                        let d = f16(table, blk, 208);
                        for half in 0..2 {
                            let ql = blk.as_ptr().add(64 * half);
                            let qh = _mm256_loadu_si256(
                                blk.as_ptr().add(128 + 32 * half) as *const __m256i
                            );
                            let sc = &blk[192 + 8 * half..200 + 8 * half];
                            for k in 0..4 {
                                let low =
                                    _mm256_loadu_si256(ql.add(32 * (k & 1)) as *const __m256i);
                                let low = if k < 2 {
                                    low
                                } else {
                                    _mm256_srli_epi16(low, 4)
                                };
                                let high = match k {
                                    0 => qh,
                                    1 => _mm256_srli_epi16(qh, 2),
                                    2 => _mm256_srli_epi16(qh, 4),
                                    _ => _mm256_srli_epi16(qh, 6),
                                };
                                let w = _mm256_or_si256(
                                    _mm256_and_si256(low, mask4),
                                    _mm256_slli_epi16(_mm256_and_si256(high, mask2), 4),
                                );
                                let b = sb * 8 + half * 4 + k;
                                // Lanes 0..4 hold bytes 0..16 (scale sc[2k]), 4..8 bytes 16..32.
                                let p = _mm256_cvtepi32_ps($dot(w, load_x(b)));
                                let (s0, s1) = (sc[2 * k] as i8 as f32, sc[2 * k + 1] as i8 as f32);
                                let dx = d * x.d[b];
                                let scale = _mm256_setr_ps(s0, s0, s0, s0, s1, s1, s1, s1);
                                acc = _mm256_fmadd_ps(
                                    _mm256_mul_ps(_mm256_set1_ps(dx), scale),
                                    p,
                                    acc,
                                );
                                offsets -= 32.0
                                    * dx
                                    * (s0 * x.sum16[2 * b] as f32 + s1 * x.sum16[2 * b + 1] as f32);
                            }
                        }
                    }
                }
                other => unreachable!("no 8-bit kernel for {other:?}"),
            }
            hsum(acc) + offsets
        }
    };
}

kernels!(dot_avx2, "avx2,fma", row_avx2);
kernels!(dot_avxvnni, "avx2,fma,avxvnni", row_avxvnni);
kernels!(
    dot_avx512vnni,
    "avx2,fma,avx512vnni,avx512vl",
    row_avx512vnni
);
