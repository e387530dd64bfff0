//! Times `cosine_scan` at 7B-model sizes: 32 layers × 14,336 value vectors of 4,096 dims
//! against 6 party directions (one random layer matrix reused, so memory stays at ~235 MB).
//!     MIMALLOC_PURGE_DELAY=-1 cargo run --release -p probe-latent --example scan_speed
//! (the allocator settings of the `probe` binary, which keep freed buffers mapped).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use probe_latent::{cosine_scan, select, PartyDirection, Selection};

fn main() {
    let device = Device::flex();
    let (layers, neurons, hidden, parties) = (32, 14_336, 4_096, 6);
    let vv = Tensor::<2>::random([neurons, hidden], Distribution::Normal(0.0, 1.0), &device);
    let value_vectors: Vec<(usize, Tensor<2>)> = (0..layers).map(|l| (l, vv.clone())).collect();
    let directions: Vec<PartyDirection> = (0..parties)
        .map(|p| PartyDirection {
            party: format!("P{p}"),
            source: "shared".into(),
            direction: (0..hidden)
                .map(|i| ((i * 7 + p * 13) % 17) as f32 - 8.0)
                .collect(),
        })
        .collect();
    let start = Instant::now();
    let table = cosine_scan(&directions, &value_vectors, &device).unwrap();
    let scan = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for p in 0..parties {
        for mode in [
            Selection::Joint { k: 20 },
            Selection::PerLayer { k: 20 },
            Selection::Iqr { c: 2.5 },
            Selection::Diametric { k: 20 },
        ] {
            select(&table, p, mode).unwrap();
        }
    }
    let sel = start.elapsed().as_secs_f64();
    let flops = 2.0 * (layers * neurons * hidden * (parties + 1)) as f64;
    println!(
        "cosine scan {layers} × {neurons} × {hidden} vs {parties} directions: {scan:.2} s ({:.1} GFLOP/s incl. norms); all four selections for every party: {sel:.2} s",
        flops / scan / 1e9
    );
}
