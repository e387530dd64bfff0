//! SplitMix64 (Steele, Lea & Flood 2014, the generator Java's `SplittableRandom` and the
//! xoshiro authors' seeding use): 64 bits of state, one add and a bijective finalizer per draw.
//! It is not cryptographic; it is small, fast and gives the same stream on every platform and
//! release, which is what seeded folds, nulls, bootstraps and sampling need.

/// The golden-ratio increment (2⁶⁴/φ, odd) that SplitMix64 adds per draw.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finalizer: a bijection of `u64` in which every input bit moves every output bit
/// (used alone to scramble hashes and seeds).
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded SplitMix64 stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// The stream of a user's seed: the state starts at `seed ^ GAMMA`, so seed 0 does not
    /// start at state 0 (probe's samplers and bootstraps).
    pub fn new(seed: u64) -> Self {
        SplitMix64::from_state(seed ^ GAMMA)
    }

    /// The stream whose first draw advances from `state` as given (callers that derive the
    /// state themselves, e.g. a seed mixed with a site's own constant or a hash).
    pub fn from_state(state: u64) -> Self {
        SplitMix64 { state }
    }

    /// The state now: [`from_state`](Self::from_state) of it continues this stream.
    pub fn state(&self) -> u64 {
        self.state
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` by scaling a [0, 1) draw (0 for `n` = 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }

    /// Uniform in `0..=i` by the remainder of 64 bits (the Fisher–Yates step's draw; its bias,
    /// below 2⁻⁴⁰ for any slice that fits in memory, is far under any seeded test's tolerance).
    pub fn up_to(&mut self, i: usize) -> usize {
        (self.next_u64() % (i as u64 + 1)) as usize
    }

    /// Fisher–Yates: every permutation of `items` equally likely, the same one for the same
    /// stream on every platform.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.up_to(i);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference stream: Vigna's `splitmix64.c` (prng.di.unimi.it) seeded with x = 1234567
    /// gives these first draws; `from_state` is that C code's `x`.
    #[test]
    fn matches_the_reference_implementation() {
        let mut r = SplitMix64::from_state(1_234_567);
        let want = [
            6_457_827_717_110_365_317u64,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ];
        for w in want {
            assert_eq!(r.next_u64(), w);
        }
    }

    #[test]
    fn seeds_are_offset_by_gamma_and_the_state_resumes() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::from_state(7 ^ GAMMA);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut c = SplitMix64::from_state(a.state());
        assert_eq!(a.next_u64(), c.next_u64());
    }

    #[test]
    fn draws_stay_in_range_and_shuffles_permute() {
        let mut r = SplitMix64::new(3);
        for n in [1usize, 2, 7, 1000] {
            for _ in 0..200 {
                assert!(r.below(n) < n);
                assert!(r.up_to(n) <= n);
                let u = r.next_f64();
                assert!((0.0..1.0).contains(&u));
            }
        }
        assert_eq!(r.below(0), 0);
        let mut v: Vec<usize> = (0..50).collect();
        r.shuffle(&mut v);
        assert_ne!(
            v,
            (0..50).collect::<Vec<_>>(),
            "50! permutations: identity is a bug"
        );
        v.sort_unstable();
        assert_eq!(v, (0..50).collect::<Vec<_>>());
    }
}
