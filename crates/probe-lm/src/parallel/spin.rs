//! A spinning thread pool for the many small products of batch-1 decoding.
//!
//! Decoding a token runs ~200 matrix-vector products of 0.05–0.5 ms each. Handing each to
//! rayon costs a wake-up through the kernel (futex, `sched_yield`): ~20 % of decoding time on
//! two cores, measured. Here the workers spin on an epoch counter between jobs, so a job starts
//! within a few hundred nanoseconds, as llama.cpp's thread pool does; a worker that has seen no
//! job for a while parks and is unparked by the next one.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks.
const SPIN_FOR: Duration = Duration::from_millis(2);

type Job = dyn Fn(usize) + Sync;

struct Shared {
    /// Bumped once per job; workers run a job when they see a new value.
    epoch: AtomicU64,
    /// The current job, valid from its epoch's bump until `running` reaches zero.
    job: UnsafeCell<Option<&'static Job>>,
    n_tasks: AtomicUsize,
    next_task: AtomicUsize,
    /// Workers still inside the current job.
    running: AtomicUsize,
    parked: Mutex<Vec<Thread>>,
    any_parked: AtomicBool,
}

// SAFETY: `job` is written only by the thread that holds `SpinPool::busy`, before it bumps
// `epoch` (Release), and read by workers after they observe that bump (Acquire); the writer
// waits for `running` to reach zero before the borrow it stored ends.
unsafe impl Sync for Shared {}

pub struct SpinPool {
    shared: Arc<Shared>,
    workers: usize,
    busy: Mutex<()>,
}

impl SpinPool {
    fn new(workers: usize) -> Self {
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            n_tasks: AtomicUsize::new(0),
            next_task: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            parked: Mutex::new(Vec::new()),
            any_parked: AtomicBool::new(false),
        });
        // Where a thread cannot be started, the pool runs with the ones that could (every job
        // also runs on its caller).
        let spawned = (0..workers)
            .take_while(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("probe-spin-{i}"))
                    .spawn(move || worker(&shared))
                    .is_ok()
            })
            .count();
        SpinPool {
            shared,
            workers: spawned,
            busy: Mutex::new(()),
        }
    }

    /// Threads a job runs on: the workers and the caller.
    pub fn threads(&self) -> usize {
        self.workers + 1
    }

    /// Runs `task(i)` for every `i < n_tasks` on the workers and the calling thread, and
    /// returns when all are done. A call while another is running (another thread's) runs on
    /// the caller alone.
    pub fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        let guard = match self.busy.try_lock() {
            Ok(g) if self.workers > 0 && n_tasks > 1 => g,
            _ => {
                (0..n_tasks).for_each(task);
                return;
            }
        };
        let s = &*self.shared;
        // SAFETY: the borrow is stored only until this function returns, and this function
        // returns only after every worker has left the job (`running` == 0).
        let job: &'static Job =
            unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync + '_), &'static Job>(task) };
        // SAFETY: no worker reads `job` between jobs (see `Shared`), and `busy` is held.
        unsafe { *s.job.get() = Some(job) };
        s.n_tasks.store(n_tasks, Ordering::Relaxed);
        s.next_task.store(0, Ordering::Relaxed);
        s.running.store(self.workers, Ordering::Relaxed);
        // SeqCst here and in `worker`: a worker that lists itself as parked and then finds
        // no new epoch, and this bump followed by finding nobody listed, cannot both happen.
        s.epoch.fetch_add(1, Ordering::SeqCst);
        if s.any_parked.load(Ordering::SeqCst) {
            let parked = {
                let mut list = s.parked.lock().unwrap_or_else(|e| e.into_inner());
                s.any_parked.store(false, Ordering::SeqCst);
                std::mem::take(&mut *list)
            };
            parked.iter().for_each(Thread::unpark);
        }
        take_tasks(s, task);
        while s.running.load(Ordering::Acquire) != 0 {
            std::hint::spin_loop();
        }
        // SAFETY: every worker has left the job.
        unsafe { *s.job.get() = None };
        drop(guard);
    }
}

fn take_tasks(s: &Shared, task: &(dyn Fn(usize) + Sync + '_)) {
    let n = s.n_tasks.load(Ordering::Relaxed);
    loop {
        let i = s.next_task.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return;
        }
        task(i);
    }
}

fn worker(s: &Shared) {
    // The epoch the pool was created with, not the current one: a worker that starts after
    // the first job was published must still take part in it.
    let mut seen = 0;
    loop {
        let idle_since = Instant::now();
        let mut spins = 0u32;
        // In the parked list until the next job's publisher drains it.
        let mut listed = false;
        let epoch = loop {
            let e = s.epoch.load(Ordering::Acquire);
            if e != seen {
                break e;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) && idle_since.elapsed() > SPIN_FOR {
                if !listed {
                    // Listed before the re-check below, so a job published in between finds
                    // this thread and unparks it.
                    let mut list = s.parked.lock().unwrap_or_else(|e| e.into_inner());
                    list.push(std::thread::current());
                    s.any_parked.store(true, Ordering::SeqCst);
                    listed = true;
                }
                if s.epoch.load(Ordering::SeqCst) == seen {
                    std::thread::park_timeout(Duration::from_millis(50));
                }
                continue;
            }
            std::hint::spin_loop();
        };
        seen = epoch;
        // SAFETY: the epoch's bump (Acquire above) published `job`, which stays valid until
        // this worker decrements `running`.
        if let Some(job) = unsafe { *s.job.get() } {
            take_tasks(s, job);
        }
        s.running.fetch_sub(1, Ordering::Release);
    }
}

/// The process's pool: one worker per core beyond the caller's.
pub fn pool() -> &'static SpinPool {
    static POOL: LazyLock<SpinPool> = LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        SpinPool::new(
            crate::parallel::default_workers()
                .min(cores)
                .saturating_sub(1),
        )
    });
    &POOL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_across_many_jobs() {
        let pool = SpinPool::new(2);
        for n in [0usize, 1, 2, 3, 17, 100] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            pool.run(n, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "n = {n}"
            );
        }
        // After the workers park, a job still reaches them.
        std::thread::sleep(SPIN_FOR * 3);
        let count = AtomicUsize::new(0);
        pool.run(64, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 64);
    }

    #[test]
    fn concurrent_callers_each_finish_their_job() {
        let pool = SpinPool::new(1);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        let count = AtomicUsize::new(0);
                        pool.run(8, &|_| {
                            count.fetch_add(1, Ordering::Relaxed);
                        });
                        assert_eq!(count.load(Ordering::Relaxed), 8);
                    }
                });
            }
        });
    }
}
