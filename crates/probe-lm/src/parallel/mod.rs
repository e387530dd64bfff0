//! Data parallelism over batches for CPU inference.
//!
//! On few cores, one forward pass per core, each with single-threaded kernels, beats one
//! forward pass whose GEMMs are split across all cores (the split scales poorly at these
//! sizes; see docs/PERFORMANCE.md). Each worker runs inside its own one-thread rayon pool,
//! so the backend's `rayon` parallelism inside a kernel stays on that worker's core instead
//! of stealing work from the other batch.

pub mod spin;

use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `job(i)` for i in 0..n on `workers` threads (one-thread rayon pool each), taking jobs
/// in order as workers free up, and returns the results in job order.
pub fn run_batches<T: Send>(n: usize, workers: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let workers = workers.clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let results: Vec<Vec<(usize, T)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build();
                    let mut done = Vec::new();
                    let mut work = || loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        done.push((i, job(i)));
                    };
                    match pool {
                        Ok(pool) => pool.install(&mut work),
                        Err(_) => work(),
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("batch worker panicked"))
            .collect()
    });
    for (i, r) in results.into_iter().flatten() {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .map(|s| s.expect("every job ran"))
        .collect()
}

/// Worker count: `RAYON_NUM_THREADS` if set, else the available cores.
pub fn default_workers() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Concurrent forward passes for `device`: one per core on the CPU; one on a GPU, which runs a
/// batch's kernels in parallel itself (several would only compete for its memory).
pub fn workers_for(device: &burn::tensor::Device) -> usize {
    if *device == burn::tensor::Device::flex() {
        default_workers()
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_job_order() {
        let out = super::run_batches(10, 3, |i| i * i);
        assert_eq!(out, (0..10).map(|i| i * i).collect::<Vec<_>>());
        assert!(super::run_batches(0, 2, |i| i).is_empty());
    }
}
