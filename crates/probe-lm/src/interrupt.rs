//! Cooperative interruption: a host (the Python bindings on Ctrl-C) asks long work to stop,
//! and every forward pass, prefill and decode step checks the request before it starts, so a
//! run ends within one batch with [`Error::Interrupted`](crate::Error::Interrupted) instead
//! of running to the end in a thread nobody waits for.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks the running work to stop at its next forward pass.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Forgets a request (before new work starts).
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// `Err(Interrupted)` once a stop was asked for.
pub fn check() -> crate::Result<()> {
    if requested() {
        Err(crate::Error::Interrupted)
    } else {
        Ok(())
    }
}
