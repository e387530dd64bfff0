//! The CPU kernels under the layers: the AVX-512 GEMM ([`gemm512`]), matrices stored as their
//! file stores them (ggml blocks, 16-bit halves; [`quantized`]) with their dot products and
//! tiled products. Kernels see slices and raw buffers, never burn tensors or layers: `layers`
//! depends on them, never the other way round.

#[cfg(target_arch = "x86_64")]
pub(crate) mod gemm512;
pub mod quantized;

/// A raw output pointer that may cross threads. Every parallel kernel here splits its output
/// into disjoint ranges, one per task, of one buffer that outlives the tasks.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);
// SAFETY: the tasks write disjoint ranges of one buffer that outlives them (each user says
// which ranges at its call).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer `offset` values in (a method, so closures capture the `Sync` wrapper, not
    /// its field, which Rust 2021 closures would capture alone).
    pub(crate) fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: `add` stays in bounds: callers pass offsets inside their own range.
        unsafe { self.0.add(offset) }
    }
}

/// A `rows × cols` matrix (HF layout: one row per output feature) that hands out f32 copies of
/// consecutive rows: how the GEMM packs its panels from stored formats it does not know.
pub(crate) trait DequantizeRows: Sync {
    /// `(rows, cols)`.
    fn shape(&self) -> (usize, usize);
    /// Rows `first..first + count` as f32 into `out` (`count × cols` values, row-major).
    fn dequantize_rows(&self, first: usize, count: usize, out: &mut [f32]);
}
