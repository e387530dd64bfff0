//! Hand-written AVX-512 and AVX2 dot kernels for the block types decoding spends its time on
//! (Q8_0, Q4_0, Q4_1). The portable kernels in `dot` compile to separate multiplies and adds
//! (Rust does not fuse `a * b + c`) and re-check the f16 table per block; these use FMA and keep
//! two accumulators in flight, ~2× the portable speed (examples/qdot_speed.rs). Same arithmetic
//! as the portable kernels: f32 activations, each block's sum scaled once, offsets folded out.

#![allow(clippy::missing_safety_doc)]

use std::arch::x86_64::*;

use super::dot::Activations;

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
