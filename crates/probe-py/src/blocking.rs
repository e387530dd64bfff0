//! Long calls run in a worker thread while the calling thread, without the GIL, waits for
//! them and wakes every 100 ms to let Python handle signals: Ctrl-C raises
//! `KeyboardInterrupt` once the work has stopped at its next forward pass
//! (`probe_lm::interrupt`), and other Python threads run meanwhile.

use std::sync::mpsc;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::to_py_err;

pub fn run<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> anyhow::Result<T> + Send,
) -> PyResult<T> {
    probe_lm::interrupt::clear();
    std::thread::scope(|scope| {
        let (done_tx, mut done_rx) = mpsc::channel::<()>();
        let handle = scope.spawn(move || {
            let result = work();
            let _ = done_tx.send(());
            result
        });
        loop {
            let (rx, finished) = py.detach(move || {
                let got = done_rx.recv_timeout(Duration::from_millis(100));
                let finished = !matches!(got, Err(mpsc::RecvTimeoutError::Timeout));
                (done_rx, finished)
            });
            done_rx = rx;
            if finished {
                break;
            }
            if let Err(signal) = py.check_signals() {
                // stop the work at its next forward pass, wait for it, then raise
                probe_lm::interrupt::request();
                let _ = py.detach(|| handle.join());
                probe_lm::interrupt::clear();
                return Err(signal);
            }
        }
        match handle.join() {
            Ok(result) => result.map_err(to_py_err),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                Err(PyRuntimeError::new_err(format!(
                    "probe panicked: {message}"
                )))
            }
        }
    })
}
