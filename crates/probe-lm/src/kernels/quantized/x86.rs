//! Hand-written AVX-512 and AVX2 dot kernels for the block types decoding spends its time on
//! (Q8_0, Q4_0, Q4_1). The portable kernels in `dot` compile to separate multiplies and adds
//! (Rust does not fuse `a * b + c`) and re-check the f16 table per block; these use FMA and keep
//! two accumulators in flight, ~2× the portable speed (examples/qdot_speed.rs). Same arithmetic
//! as the portable kernels: f32 activations, each block's sum scaled once, offsets folded out.

#![allow(clippy::missing_safety_doc)]

use std::arch::x86_64::*;

use super::activations::Activations;

#[inline(always)]
fn scale(table: &[f32], blk: &[u8], at: usize) -> f32 {
    table[u16::from_le_bytes([blk[at], blk[at + 1]]) as usize]
}

/// Q8_0: `d · q` with 32 signed bytes per block.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
pub(super) unsafe fn q8_0_avx512(row: &[u8], x: &[f32], table: &[f32]) -> f32 {
    let block = |blk: &[u8], x: &[f32], acc: __m512| {
        let d = _mm512_set1_ps(scale(table, blk, 0));
        let p = blk.as_ptr().add(2) as *const __m128i;
        let q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p)));
        let q1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p.add(1))));
        let t = _mm512_mul_ps(q0, _mm512_loadu_ps(x.as_ptr()));
        let t = _mm512_fmadd_ps(q1, _mm512_loadu_ps(x.as_ptr().add(16)), t);
        _mm512_fmadd_ps(d, t, acc)
    };
    // Two blocks per step into two accumulators: the FMA chains overlap.
    let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut pairs = row.chunks_exact(68).zip(x.chunks_exact(64));
    for (blk, x) in pairs.by_ref() {
        acc0 = block(&blk[..34], &x[..32], acc0);
        acc1 = block(&blk[34..], &x[32..], acc1);
    }
    let blocks = row.len() / 34;
    if blocks % 2 == 1 {
        acc0 = block(&row[row.len() - 34..], &x[32 * (blocks - 1)..], acc0);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
}

/// Q4_0 (`(q − 8)·d`) and Q4_1 (`q·d + m`): low nibbles are elements 0..16, high 16..32.
/// The block body is a macro rather than a closure, so that it is compiled with the
/// function's target features and its FMA chains stay in registers.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
pub(super) unsafe fn q4_avx512(
    row: &[u8],
    a: &Activations<'_>,
    table: &[f32],
    with_min: bool,
) -> f32 {
    let (bytes, qs_at) = if with_min { (20, 4) } else { (18, 2) };
    let mask = _mm_set1_epi8(15);
    let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let (mut off0, mut off1) = (0f32, 0f32);
    let n = row.len() / bytes;
    let (rp, xp) = (row.as_ptr(), a.x.as_ptr());
    macro_rules! block {
        ($b:expr, $acc:ident, $off:ident) => {{
            let blk = rp.add($b * bytes);
            let x = xp.add(32 * $b);
            let d = table[u16::from_le_bytes([*blk, *blk.add(1)]) as usize];
            let qs = _mm_loadu_si128(blk.add(qs_at) as *const __m128i);
            let lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(qs, mask)));
            let hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(
                _mm_srli_epi16(qs, 4),
                mask,
            )));
            let t = _mm512_mul_ps(lo, _mm512_loadu_ps(x));
            let t = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x.add(16)), t);
            $acc = _mm512_fmadd_ps(_mm512_set1_ps(d), t, $acc);
            $off += if with_min {
                table[u16::from_le_bytes([*blk.add(2), *blk.add(3)]) as usize] * a.sum32($b)
            } else {
                -8.0 * d * a.sum32($b)
            };
        }};
    }
    let mut b = 0;
    while b + 1 < n {
        block!(b, acc0, off0);
        block!(b + 1, acc1, off1);
        b += 2;
    }
    if b < n {
        block!(b, acc0, off0);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + off0 + off1
}

#[inline(always)]
unsafe fn hsum256(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// Eight bytes widened to eight f32 lanes (signed or unsigned).
#[inline(always)]
unsafe fn widen8(v: __m128i, signed: bool) -> __m256 {
    if signed {
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))
    } else {
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v))
    }
}

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn q8_0_avx2(row: &[u8], x: &[f32], table: &[f32]) -> f32 {
    let block = |blk: &[u8], x: &[f32], acc: __m256| {
        let d = _mm256_set1_ps(scale(table, blk, 0));
        let p = blk.as_ptr().add(2);
        let q = |k: usize| widen8(_mm_loadl_epi64(p.add(8 * k) as *const __m128i), true);
        let xp = x.as_ptr();
        let t = _mm256_mul_ps(q(0), _mm256_loadu_ps(xp));
        let t = _mm256_fmadd_ps(q(1), _mm256_loadu_ps(xp.add(8)), t);
        let t = _mm256_fmadd_ps(q(2), _mm256_loadu_ps(xp.add(16)), t);
        let t = _mm256_fmadd_ps(q(3), _mm256_loadu_ps(xp.add(24)), t);
        _mm256_fmadd_ps(d, t, acc)
    };
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for (blk, x) in row.chunks_exact(68).zip(x.chunks_exact(64)) {
        acc0 = block(&blk[..34], &x[..32], acc0);
        acc1 = block(&blk[34..], &x[32..], acc1);
    }
    let blocks = row.len() / 34;
    if blocks % 2 == 1 {
        acc0 = block(&row[row.len() - 34..], &x[32 * (blocks - 1)..], acc0);
    }
    hsum256(_mm256_add_ps(acc0, acc1))
}

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn q4_avx2(
    row: &[u8],
    a: &Activations<'_>,
    table: &[f32],
    with_min: bool,
) -> f32 {
    let (bytes, qs_at) = if with_min { (20, 4) } else { (18, 2) };
    let mask = _mm_set1_epi8(15);
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let (mut off0, mut off1) = (0f32, 0f32);
    let n = row.len() / bytes;
    let (rp, xp) = (row.as_ptr(), a.x.as_ptr());
    macro_rules! block {
        ($b:expr, $acc:ident, $off:ident) => {{
            let blk = rp.add($b * bytes);
            let x = xp.add(32 * $b);
            let d = table[u16::from_le_bytes([*blk, *blk.add(1)]) as usize];
            let qs = _mm_loadu_si128(blk.add(qs_at) as *const __m128i);
            let lo = _mm_and_si128(qs, mask);
            let hi = _mm_and_si128(_mm_srli_epi16(qs, 4), mask);
            let w = |v: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
            let t = _mm256_mul_ps(w(lo), _mm256_loadu_ps(x));
            let t = _mm256_fmadd_ps(w(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x.add(8)), t);
            let t = _mm256_fmadd_ps(w(hi), _mm256_loadu_ps(x.add(16)), t);
            let t = _mm256_fmadd_ps(w(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x.add(24)), t);
            $acc = _mm256_fmadd_ps(_mm256_set1_ps(d), t, $acc);
            $off += if with_min {
                table[u16::from_le_bytes([*blk.add(2), *blk.add(3)]) as usize] * a.sum32($b)
            } else {
                -8.0 * d * a.sum32($b)
            };
        }};
    }
    let mut b = 0;
    while b + 1 < n {
        block!(b, acc0, off0);
        block!(b + 1, acc1, off1);
        b += 2;
    }
    if b < n {
        block!(b, acc0, off0);
    }
    hsum256(_mm256_add_ps(acc0, acc1)) + off0 + off1
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

/// 32 bytes of 0..63 (each a quant) times 32 activations, as four 8-lane products summed:
/// `[Σ q·x over bytes 0..16, Σ over 16..32]`, kept apart for per-16 scales.
#[inline(always)]
unsafe fn dot32_halves(q: __m256i, x: *const f32) -> (__m256, __m256) {
    let w = |v: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
    let lo = _mm256_castsi256_si128(q);
    let hi = _mm256_extracti128_si256(q, 1);
    let a = _mm256_mul_ps(w(lo), _mm256_loadu_ps(x));
    let a = _mm256_fmadd_ps(w(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x.add(8)), a);
    let b = _mm256_mul_ps(w(hi), _mm256_loadu_ps(x.add(16)));
    let b = _mm256_fmadd_ps(w(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x.add(24)), b);
    (a, b)
}

/// Q4_K: super-blocks of 256 in 8 sub-blocks of 32, each `d·sc·q − dmin·m`; chunk c of 32
/// bytes holds sub-block 2c in its low nibbles and 2c + 1 in its high ones.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn q4k_avx2(row: &[u8], a: &Activations<'_>, table: &[f32]) -> f32 {
    let mask = _mm256_set1_epi8(15);
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut offsets = 0f32;
    for (sb, (blk, x)) in row.chunks_exact(144).zip(a.x.chunks_exact(256)).enumerate() {
        let d = table[u16::from_le_bytes([blk[0], blk[1]]) as usize];
        let dmin = table[u16::from_le_bytes([blk[2], blk[3]]) as usize];
        let scales = &blk[4..16];
        for c in 0..4 {
            let q = _mm256_loadu_si256(blk.as_ptr().add(16 + 32 * c) as *const __m256i);
            let (s1, m1) = scale_min_k4(2 * c, scales);
            let (s2, m2) = scale_min_k4(2 * c + 1, scales);
            let x1 = x.as_ptr().add(64 * c);
            let (a0, a1) = dot32_halves(_mm256_and_si256(q, mask), x1);
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d * s1), _mm256_add_ps(a0, a1), acc0);
            let (b0, b1) =
                dot32_halves(_mm256_and_si256(_mm256_srli_epi16(q, 4), mask), x1.add(32));
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d * s2), _mm256_add_ps(b0, b1), acc1);
            let base = sb * 8 + 2 * c;
            offsets -= dmin * (m1 * a.sum32(base) + m2 * a.sum32(base + 1));
        }
    }
    hsum256(_mm256_add_ps(acc0, acc1)) + offsets
}

/// Q6_K: super-blocks of 256 as two halves of 128; value `d·sc·(q − 32)` with a signed scale
/// per 16 values and q = 4 low bits from `ql` + 2 high bits from `qh`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn q6k_avx2(row: &[u8], a: &Activations<'_>, table: &[f32]) -> f32 {
    let mask4 = _mm256_set1_epi8(15);
    let mask2 = _mm256_set1_epi8(3);
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut offsets = 0f32;
    for (sb, (blk, x)) in row.chunks_exact(210).zip(a.x.chunks_exact(256)).enumerate() {
        let d = table[u16::from_le_bytes([blk[208], blk[209]]) as usize];
        for half in 0..2 {
            let ql = blk.as_ptr().add(64 * half);
            let qh = _mm256_loadu_si256(blk.as_ptr().add(128 + 32 * half) as *const __m256i);
            let sc = &blk[192 + 8 * half..200 + 8 * half];
            for k in 0..4 {
                let low = _mm256_loadu_si256(ql.add(32 * (k & 1)) as *const __m256i);
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
                let q = _mm256_or_si256(
                    _mm256_and_si256(low, mask4),
                    _mm256_slli_epi16(_mm256_and_si256(high, mask2), 4),
                );
                let (s_lo, s_hi) = (d * sc[2 * k] as i8 as f32, d * sc[2 * k + 1] as i8 as f32);
                let (a0, a1) = dot32_halves(q, x.as_ptr().add(128 * half + 32 * k));
                acc0 = _mm256_fmadd_ps(_mm256_set1_ps(s_lo), a0, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_set1_ps(s_hi), a1, acc1);
                let g = (sb * 256 + 128 * half + 32 * k) / 16;
                offsets -= 32.0 * (s_lo * a.sums16[g] + s_hi * a.sums16[g + 1]);
            }
        }
    }
    hsum256(_mm256_add_ps(acc0, acc1)) + offsets
}

/// Q4_0 / Q4_1 rows dequantized to f32 (the tiled GEMM's input), 16 values per instruction.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
pub(crate) unsafe fn dequantize_q4_avx512(
    data: &[u8],
    out: &mut [f32],
    table: &[f32],
    with_min: bool,
) {
    let (bytes, qs_at) = if with_min { (20, 4) } else { (18, 2) };
    let mask = _mm_set1_epi8(15);
    for (blk, y) in data.chunks_exact(bytes).zip(out.chunks_exact_mut(32)) {
        let d = _mm512_set1_ps(table[u16::from_le_bytes([blk[0], blk[1]]) as usize]);
        let m = if with_min {
            _mm512_set1_ps(table[u16::from_le_bytes([blk[2], blk[3]]) as usize])
        } else {
            _mm512_mul_ps(d, _mm512_set1_ps(-8.0))
        };
        let qs = _mm_loadu_si128(blk.as_ptr().add(qs_at) as *const __m128i);
        let lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(qs, mask)));
        let hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(
            _mm_srli_epi16(qs, 4),
            mask,
        )));
        _mm512_storeu_ps(y.as_mut_ptr(), _mm512_fmadd_ps(lo, d, m));
        _mm512_storeu_ps(y.as_mut_ptr().add(16), _mm512_fmadd_ps(hi, d, m));
    }
}
