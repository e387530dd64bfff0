//! Dequantization of the ggml block formats, following llama.cpp's `dequantize_row_*`
//! (ggml-quants.c) element for element, so a GGUF model computes what llama.cpp computes.

use half::{bf16, f16};

/// The ggml tensor types probe can read. The discriminants are ggml's on-disk codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
}

/// The formats listed in error messages.
pub const SUPPORTED_GGML_TYPES: &str =
    "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K";

const QK_K: usize = 256;

impl GgmlType {
    /// Maps ggml's type code; `Err` carries a readable name for the unsupported ones.
    pub fn from_code(code: u32) -> Result<Self, String> {
        Ok(match code {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            12 => GgmlType::Q4K,
            13 => GgmlType::Q5K,
            14 => GgmlType::Q6K,
            30 => GgmlType::BF16,
            other => {
                let name = match other {
                    9 => "Q8_1",
                    10 => "Q2_K",
                    11 => "Q3_K",
                    15 => "Q8_K",
                    16..=23 => "IQ-family",
                    24 => "I8",
                    25 => "I16",
                    26 => "I32",
                    27 => "I64",
                    28 => "F64",
                    29 => "IQ1_M",
                    34 => "TQ1_0",
                    35 => "TQ2_0",
                    _ => "unknown",
                };
                return Err(format!("{name} (ggml type {other})"));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::BF16 => "BF16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q4K => "Q4_K",
            GgmlType::Q5K => "Q5_K",
            GgmlType::Q6K => "Q6_K",
        }
    }

    /// (elements per block, bytes per block)
    pub fn block_layout(self) -> (usize, usize) {
        match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 | GgmlType::BF16 => (1, 2),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q5_0 => (32, 22),
            GgmlType::Q5_1 => (32, 24),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Q4K => (QK_K, 144),
            GgmlType::Q5K => (QK_K, 176),
            GgmlType::Q6K => (QK_K, 210),
        }
    }

    /// Bytes taken by `n_elements`, or `None` if `n_elements` is not a whole number of blocks.
    pub fn byte_size(self, n_elements: u64) -> Option<u64> {
        let (block, bytes) = self.block_layout();
        if !n_elements.is_multiple_of(block as u64) {
            return None;
        }
        (n_elements / block as u64).checked_mul(bytes as u64)
    }
}

/// Every f16 bit pattern as f32 (256 KiB, as llama.cpp keeps it): a block's scales are
/// converted by one load instead of a call into `half`, which checks the CPU's features on
/// every conversion.
pub(crate) static F16_TO_F32: std::sync::LazyLock<Box<[f32]>> = std::sync::LazyLock::new(|| {
    (0..=u16::MAX)
        .map(|bits| f16::from_bits(bits).to_f32())
        .collect()
});

#[inline(always)]
fn f16_at(bytes: &[u8], at: usize) -> f32 {
    F16_TO_F32[u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize]
}

/// Little-endian f16 values to f32: `half`'s SIMD conversion (F16C) where the bytes are
/// aligned for it, else one table load per value.
pub(crate) fn f16_to_f32(data: &[u8], out: &mut [f32]) {
    use half::slice::HalfFloatSliceExt;
    // SAFETY: f16 is a plain 2-byte value with no invalid bit patterns; `align_to` returns an
    // empty middle unless the bytes are aligned for it.
    let (head, halves, _) = unsafe { data.align_to::<f16>() };
    if head.is_empty() && halves.len() == out.len() && cfg!(target_endian = "little") {
        halves.convert_to_f32_slice(out);
        return;
    }
    for (b, y) in data.chunks_exact(2).zip(out.iter_mut()) {
        *y = f16_at(b, 0);
    }
}

/// Dequantizes `data` (exactly `ty.byte_size(out.len())` bytes) into `out`: compiled a second
/// time for AVX2 + FMA and chosen at run time (the crate is built for baseline x86-64).
pub fn dequantize(ty: GgmlType, data: &[u8], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        fn avx2(ty: GgmlType, data: &[u8], out: &mut [f32]) {
            dequantize_portable(ty, data, out)
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU was just checked to have the features `avx2` needs.
            return unsafe { avx2(ty, data, out) };
        }
    }
    dequantize_portable(ty, data, out)
}

#[inline(always)]
fn dequantize_portable(ty: GgmlType, data: &[u8], out: &mut [f32]) {
    let (block, bytes) = ty.block_layout();
    debug_assert_eq!(data.len(), out.len() / block * bytes);
    let blocks = data.chunks_exact(bytes).zip(out.chunks_exact_mut(block));
    match ty {
        GgmlType::F32 => {
            for (b, y) in blocks {
                y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => f16_to_f32(data, out),
        GgmlType::BF16 => {
            for (b, y) in blocks {
                y[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        GgmlType::Q4_0 => blocks.for_each(|(b, y)| dequant_q4(b, y, f16_at(b, 0), None)),
        GgmlType::Q4_1 => {
            blocks.for_each(|(b, y)| dequant_q4(b, y, f16_at(b, 0), Some(f16_at(b, 2))))
        }
        GgmlType::Q5_0 => blocks.for_each(|(b, y)| dequant_q5(b, y, f16_at(b, 0), None)),
        GgmlType::Q5_1 => {
            blocks.for_each(|(b, y)| dequant_q5(b, y, f16_at(b, 0), Some(f16_at(b, 2))))
        }
        GgmlType::Q8_0 => {
            for (b, y) in blocks {
                let d = f16_at(b, 0);
                for (yj, &q) in y.iter_mut().zip(&b[2..34]) {
                    *yj = (q as i8) as f32 * d;
                }
            }
        }
        GgmlType::Q4K => blocks.for_each(|(b, y)| dequant_q4k(b, y)),
        GgmlType::Q5K => blocks.for_each(|(b, y)| dequant_q5k(b, y)),
        GgmlType::Q6K => blocks.for_each(|(b, y)| dequant_q6k(b, y)),
    }
}

/// Q4_0 (`x = (q - 8) d`) and Q4_1 (`x = q d + m`): low nibbles fill elements 0..16,
/// high nibbles 16..32.
#[inline(always)]
fn dequant_q4(b: &[u8], y: &mut [f32], d: f32, min: Option<f32>) {
    let qs = match min {
        Some(_) => &b[4..20],
        None => &b[2..18],
    };
    let (lo_off, m) = match min {
        Some(m) => (0.0, m),
        None => (-8.0, 0.0),
    };
    for (j, &q) in qs.iter().enumerate() {
        y[j] = ((q & 0x0f) as f32 + lo_off) * d + m;
        y[j + 16] = ((q >> 4) as f32 + lo_off) * d + m;
    }
}

/// Q5_0 / Q5_1: a 4-bit nibble plus a fifth bit from the 32-bit `qh` mask.
#[inline(always)]
fn dequant_q5(b: &[u8], y: &mut [f32], d: f32, min: Option<f32>) {
    let (qh_at, qs_at) = if min.is_some() { (4, 8) } else { (2, 6) };
    let qh = u32::from_le_bytes([b[qh_at], b[qh_at + 1], b[qh_at + 2], b[qh_at + 3]]);
    let qs = &b[qs_at..qs_at + 16];
    for (j, &q) in qs.iter().enumerate() {
        let xh0 = ((qh >> j) << 4) & 0x10;
        let xh1 = (qh >> (j + 12)) & 0x10;
        let q0 = ((q & 0x0f) as u32 | xh0) as f32;
        let q1 = ((q >> 4) as u32 | xh1) as f32;
        match min {
            Some(m) => {
                y[j] = q0 * d + m;
                y[j + 16] = q1 * d + m;
            }
            None => {
                y[j] = (q0 - 16.0) * d;
                y[j + 16] = (q1 - 16.0) * d;
            }
        }
    }
}

/// The 6-bit scale and min of sub-block `j` packed into the 12 `scales` bytes of Q4_K/Q5_K.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

#[inline(always)]
fn dequant_q4k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let scales = &b[4..16];
    let qs = &b[16..144];
    for (chunk, (q, out)) in qs.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        for l in 0..32 {
            out[l] = d1 * (q[l] & 0x0f) as f32 - m1;
            out[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

#[inline(always)]
fn dequant_q5k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    let ql = &b[48..176];
    for (chunk, (q, out)) in ql.chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        let (u1, u2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16.0 } else { 0.0 };
            let h2 = if qh[l] & u2 != 0 { 16.0 } else { 0.0 };
            out[l] = d1 * ((q[l] & 0x0f) as f32 + h1) - m1;
            out[l + 32] = d2 * ((q[l] >> 4) as f32 + h2) - m2;
        }
    }
}

#[inline(always)]
fn dequant_q6k(b: &[u8], y: &mut [f32]) {
    let ql_all = &b[0..128];
    let qh_all = &b[128..192];
    let sc_all = &b[192..208];
    let d = f16_at(b, 208);
    for half in 0..2 {
        let ql = &ql_all[64 * half..];
        let qh = &qh_all[32 * half..];
        let sc = &sc_all[8 * half..];
        let out = &mut y[128 * half..128 * (half + 1)];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            out[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            out[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            out[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            out[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n_elements` of `ty` as random but well-formed blocks: random quants, and scales (f16)
    /// or plain values drawn so that every dequantized value is finite and of order one.
    pub(crate) fn random_blocks(ty: GgmlType, n_elements: usize, seed: u64) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut unit = |scale: f32| ((next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale;
        let (block, bytes) = ty.block_layout();
        let n_blocks = n_elements / block;
        let mut out = Vec::with_capacity(n_blocks * bytes);
        let put_f16 = |b: &mut Vec<u8>, at: usize, v: f32| {
            b[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes())
        };
        for _ in 0..n_blocks {
            let mut b = vec![0u8; bytes];
            match ty {
                GgmlType::F32 => b.copy_from_slice(&unit(4.0).to_le_bytes()),
                GgmlType::F16 => put_f16(&mut b, 0, unit(4.0)),
                GgmlType::BF16 => b.copy_from_slice(&bf16::from_f32(unit(4.0)).to_le_bytes()),
                _ => {
                    for v in b.iter_mut() {
                        *v = (unit(512.0) as i32 & 0xff) as u8;
                    }
                    match ty {
                        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => {
                            put_f16(&mut b, 0, unit(0.1))
                        }
                        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => {
                            put_f16(&mut b, 0, unit(0.1));
                            put_f16(&mut b, 2, unit(0.1));
                        }
                        GgmlType::Q6K => put_f16(&mut b, 208, unit(0.01)),
                        _ => unreachable!(),
                    }
                }
            }
            out.extend_from_slice(&b);
        }
        out
    }

    #[test]
    fn q8_0_block_scales_signed_bytes() {
        let mut block = vec![0u8; 34];
        block[0..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        for j in 0..32 {
            block[2 + j] = (j as i8 - 16) as u8;
        }
        let mut out = vec![0.0; 32];
        dequantize(GgmlType::Q8_0, &block, &mut out);
        let expected: Vec<f32> = (0..32).map(|j| (j as f32 - 16.0) * 0.5).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn q4_1_uses_low_then_high_nibbles() {
        let mut block = vec![0u8; 20];
        block[0..2].copy_from_slice(&f16::from_f32(2.0).to_le_bytes());
        block[2..4].copy_from_slice(&f16::from_f32(-1.0).to_le_bytes());
        for j in 0..16 {
            block[4 + j] = (j as u8) | ((15 - j as u8) << 4);
        }
        let mut out = vec![0.0; 32];
        dequantize(GgmlType::Q4_1, &block, &mut out);
        for j in 0..16 {
            assert_eq!(out[j], j as f32 * 2.0 - 1.0);
            assert_eq!(out[j + 16], (15 - j) as f32 * 2.0 - 1.0);
        }
    }

    #[test]
    fn q4_0_is_centred_on_eight() {
        let mut block = vec![0u8; 18];
        block[0..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
        block[2] = 0x0f; // element 0 -> 15-8, element 16 -> 0-8
        let mut out = vec![0.0; 32];
        dequantize(GgmlType::Q4_0, &block, &mut out);
        assert_eq!(out[0], 7.0);
        assert_eq!(out[16], -8.0);
        assert_eq!(out[1], -8.0);
    }

    #[test]
    fn byte_size_rejects_partial_blocks() {
        assert_eq!(GgmlType::Q4_1.byte_size(64), Some(40));
        assert_eq!(GgmlType::Q4_1.byte_size(33), None);
        assert_eq!(GgmlType::Q6K.byte_size(512), Some(420));
    }
}
