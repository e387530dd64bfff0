//! Allocator settings for hosts that use mimalloc as the global allocator (the `probe`
//! binary and the Python module).

/// mimalloc's `mi_option_purge_delay`: the options enum is append-only with placeholders for
/// retired options (the same index in mimalloc v2 and v3), and a test checks the index against
/// the `MIMALLOC_PURGE_DELAY` variable.
pub const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory mapped instead of handing it back to the kernel shortly after each free:
/// a forward pass frees and reallocates megabyte activation buffers on every op, and faulting
/// zeroed pages back in cost ~20 % of its time (17.9k page faults per 4k tokens, 2.3k without).
/// mimalloc reads its `MIMALLOC_*` variables when it starts, before `main`, so the option is
/// set directly; a user's own `MIMALLOC_PURGE_DELAY` wins.
pub fn keep_freed_memory_mapped() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: plain FFI call with a valid option index and value; mimalloc's options are
        // safe to set at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}
