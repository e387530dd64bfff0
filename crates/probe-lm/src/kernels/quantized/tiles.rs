//! Products of many activation rows with a block-stored matrix. On AVX-512 CPUs the weights are
//! dequantized straight into the panels of `kernels::gemm512`. Elsewhere a tile of weight rows is
//! dequantized into f32, then multiplied by the f32 GEMM (the `gemm` crate, which burn's CPU
//! backend uses too). Dequantizing costs one pass over the weights per product, small next to
//! the GEMM once there are more than a few activation rows. Tiles are as large as memory allows
//! (4 MiB of f32, a whole matrix of a small model): the GEMM packs the activations once per
//! tile, and with 256-row tiles that repacking cost 13 % of prefill (measured on SmolLM2).

use crate::kernels::OutPtr;
use rayon::prelude::*;

use super::BlockMatrix;

/// Weight rows per tile: at most 1 Mi values (4 MiB of f32; all of a SmolLM2 matrix), and
/// when several threads share the product, at most an even share each (rounded to 32 rows, the
/// AVX-512 kernel's panel).
fn tile_rows(rows: usize, cols: usize, threads: usize) -> usize {
    let cap = ((1 << 20) / cols.max(1)).max(1);
    let cap = if cap >= 32 { cap - cap % 32 } else { cap };
    let share = rows.div_ceil(threads.max(1)).next_multiple_of(32);
    cap.min(share).max(1)
}

thread_local! {
    /// Each thread's tile buffer, kept between products: a fresh 4 MiB buffer per product would
    /// be zero-filled first (one more pass over memory per weight matrix).
    static TILE: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `x · Wᵀ` for `x` = `[n, cols]`: `[n, rows]`.
pub(super) fn matmul(m: &BlockMatrix, x: &[f32], n: usize) -> Vec<f32> {
    let rows = m.rows;
    let mut out: Vec<f32> = Vec::with_capacity(n * rows);
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::gemm512::available() {
        use crate::kernels::gemm512;
        // SAFETY: the kernel is available; `x` is `[n, cols]`; `out` has room for `n × rows`
        // values, all of which the product writes.
        unsafe {
            gemm512::matmul(gemm512::Weights::Rows(m), x, n, out.as_mut_ptr(), false);
            out.set_len(n * rows);
        }
        return out;
    }
    tiled(m, x, n, out)
}

/// [`matmul`] through dequantized row-major tiles and the `gemm` crate (CPUs without AVX-512).
fn tiled(m: &BlockMatrix, x: &[f32], n: usize, mut out: Vec<f32>) -> Vec<f32> {
    let (rows, cols) = (m.rows, m.cols);
    let dst = OutPtr(out.as_mut_ptr());
    let threads = rayon::current_num_threads();
    let tile = tile_rows(rows, cols, threads);
    let tiles = rows.div_ceil(tile);
    let gemm_tile = |w: &[f32], first: usize, count: usize| {
        // SAFETY: `dst` has room for `n × rows` values; this tile writes columns
        // `first..first + count` of every row and no other task writes them. `x` is `[n, cols]`
        // row-major; `w` is `[count, cols]` row-major, read as the `[cols, count]` right
        // operand (row stride 1, column stride `cols`).
        unsafe {
            let d = dst;
            // outᵀ[first.., :] = W · xᵀ: the weight tile is the GEMM's left operand, read row by
            // row as stored, and x's rows are the right operand's columns.
            gemm::gemm(
                count,
                n,
                cols,
                d.at(first),
                rows as isize,
                1,
                false,
                w.as_ptr(),
                1,
                cols as isize,
                x.as_ptr(),
                cols as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    };
    let run = |t: usize| {
        let first = t * tile;
        let count = tile.min(rows - first);
        TILE.with(|tile| {
            let mut tile = tile.borrow_mut();
            if tile.len() < count * cols {
                tile.resize(count * cols, 0.0);
            }
            let w = &mut tile[..count * cols];
            m.dequantize_rows(first, count, w);
            gemm_tile(w, first, count);
        });
    };
    if tiles > 1 && threads > 1 {
        (0..tiles).into_par_iter().for_each(run);
    } else {
        (0..tiles).for_each(run);
    }
    // SAFETY: the tiles together wrote every column of every row.
    unsafe { out.set_len(n * rows) };
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{activations, matrix};
    use crate::weights::GgmlType;

    /// Both routes (the AVX-512 panels where the CPU has them, and the portable tiles) give the
    /// same product, for a row count that leaves a partial panel and an odd activation count.
    #[test]
    fn the_portable_tiles_equal_the_default_route() {
        for ty in [GgmlType::Q4_1, GgmlType::Q4K, GgmlType::Q6K, GgmlType::F16] {
            let cols = ty.block_layout().0.max(32) * 3;
            let m = matrix(ty, 45, cols, 7);
            let n = 33;
            let x = activations(n * cols, 3);
            let want = super::matmul(&m, &x, n);
            let got = super::tiled(&m, &x, n, Vec::with_capacity(n * 45));
            let scale = want.iter().fold(1f32, |a, v| a.max(v.abs()));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * scale, "{}: {g} vs {w}", ty.name());
            }
        }
    }
}
