//! Measures burn/Flex f32 GEMM throughput for the shapes of a forward pass
//! (`cargo run --release --example gemm_peak`): the ceiling the forward benchmark is read against.

use std::time::Instant;

use probe_lm::burn::tensor::{Device, Tensor, TensorData};

fn bench(device: &Device, m: usize, k: usize, n: usize) -> f64 {
    let a: Tensor<2> = Tensor::from_data(TensorData::new(vec![0.5f32; m * k], [m, k]), device);
    let b: Tensor<2> = Tensor::from_data(TensorData::new(vec![0.25f32; k * n], [k, n]), device);
    let _ = a.clone().matmul(b.clone()).into_data();
    let reps = 20;
    let start = Instant::now();
    for _ in 0..reps {
        let _ = a.clone().matmul(b.clone()).into_data();
    }
    let secs = start.elapsed().as_secs_f64() / reps as f64;
    2.0 * (m * k * n) as f64 / secs / 1e9
}

fn main() {
    let device = Device::flex();
    for (m, k, n) in [
        (512, 2048, 2048),
        (1024, 576, 1536),
        (1024, 1536, 576),
        (1024, 576, 576),
        (1024, 576, 192),
    ] {
        println!("{m}x{k}x{n}: {:.1} GFLOP/s", bench(&device, m, k, n));
    }
}
