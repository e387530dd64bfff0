//! The helpers every `probe` crate shares, written once: the seeded random numbers that make
//! every seeded result reproducible ([`SplitMix64`]) and the atomic file write that keeps a
//! killed job from leaving half a file ([`write_atomic`]), and the AVX2 dispatch of hot loops
//! ([`with_avx2!`]). No dependencies, so any crate of the pipeline, the runtime included, can
//! use them.

mod fs;
mod rng;
mod shard;

pub use fs::{temporary_path, write_atomic};
pub use rng::{mix, SplitMix64};
pub use shard::ShardSplit;

/// Compiles a function's body twice, once for AVX2 + FMA, chosen at run time when the CPU has
/// them: the workspace builds for baseline x86-64, where f32 loops vectorise only four lanes
/// wide and f64 loops two. Callers keep the body's loops simple (and `#[inline(always)]` helpers
/// inside), so the AVX2 copy vectorises them eight (f32) or four (f64) lanes wide; the CPU check
/// happens once per call.
#[macro_export]
macro_rules! with_avx2 {
    ($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $crate::with_avx2! { $(#[$attr])* fn $name($($arg: $ty),*) -> () $body }
    };
    ($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$attr])*
        fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn portable($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) -> $ret {
                    portable($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU was just checked to have the features `avx2` needs.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}
