//! Single-thread speed of the block kernels for one activation row (decoding) and 64 rows
//! (prefill), per storage type: weight GB/s and multiply-adds per second.
use probe_lm::kernels::quantized::BlockMatrix;
use probe_lm::weights::{GgmlType, HostBytes, RawTensor};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let (rows, cols) = (4096usize, 4096usize);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q8_0,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::F32,
    ] {
        let (block, bytes) = ty.block_layout();
        let n_bytes = rows * cols / block * bytes;
        // Valid-ish blocks: small scales everywhere (every 2-byte pair a small f16 or bf16).
        let data: Vec<u8> = (0..n_bytes)
            .map(|i| {
                if i % 2 == 1 {
                    0x20
                } else {
                    (i * 37 % 251) as u8
                }
            })
            .collect();
        let m = BlockMatrix::new(
            RawTensor {
                ty,
                shape: vec![rows, cols],
                bytes: HostBytes::Owned(Arc::new(data)),
            },
            "w",
        )
        .unwrap();
        for n in [1usize, 64] {
            let x: Vec<f32> = (0..n * cols)
                .map(|i| ((i % 97) as f32 - 48.0) / 50.0)
                .collect();
            let reps = if n == 1 { 50 } else { 4 };
            pool.install(|| {
                m.matmul(&x, n);
            });
            let t = Instant::now();
            pool.install(|| {
                for _ in 0..reps {
                    std::hint::black_box(m.matmul(&x, n));
                }
            });
            let secs = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{:>5} n={n:<3} {:7.2} ms  {:6.1} GB/s of weights  {:6.1} GMAC/s",
                ty.name(),
                secs * 1e3,
                n_bytes as f64 / secs / 1e9,
                (rows * cols * n) as f64 / secs / 1e9
            );
        }
    }
}
