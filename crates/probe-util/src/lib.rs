//! The helpers every `probe` crate shares, written once: the seeded random numbers that make
//! every seeded result reproducible ([`SplitMix64`]) and the atomic file write that keeps a
//! killed job from leaving half a file ([`write_atomic`]). No dependencies, so any crate of
//! the pipeline, the runtime included, can use them.

mod fs;
mod rng;

pub use fs::{temporary_path, write_atomic};
pub use rng::{mix, SplitMix64};
